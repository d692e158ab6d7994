/*
 * Unit tests for runtime/clock: manual time, timer ordering, re-arming from
 * callbacks, run_until stepping, and the monotonic source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/clock/vclock.h"

#include <time.h>

struct rec {
	struct vclock *clock;
	struct vclock_timer t;
	unsigned calls;
	uint64_t last_deadline, last_now;
	uint64_t period; /* re-arm period, 0 = one shot */
};

static void on_timer(void *opaque, uint64_t deadline)
{
	struct rec *r = opaque;
	r->calls++;
	r->last_deadline = deadline;
	r->last_now = vclock_now_ns(r->clock);
	if (r->period)
		vclock_timer_arm(&r->t, deadline + r->period);
}

static void test_manual_time(void **state)
{
	struct vclock *c;
	assert_int_equal(vclock_create_manual(1000, &c), BT_OK);
	assert_true(vclock_is_manual(c));
	assert_int_equal(vclock_now_ns(c), 1000);
	assert_int_equal(vclock_advance(c, 500), BT_OK);
	assert_int_equal(vclock_now_ns(c), 1500);
	assert_int_equal(vclock_set(c, 1400), BT_ERR_INVALID); /* never backwards */
	assert_int_equal(vclock_set(c, 2000), BT_OK);
	assert_int_equal(vclock_now_ns(c), 2000);
	assert_true(vclock_next_deadline(c) == VCLOCK_NEVER);
	vclock_destroy(c);
}

static void test_timer_order_and_cancel(void **state)
{
	struct vclock *c;
	assert_int_equal(vclock_create_manual(0, &c), BT_OK);
	struct rec a = {.clock = c}, b = {.clock = c}, d = {.clock = c};
	vclock_timer_init(&a.t, c, on_timer, &a);
	vclock_timer_init(&b.t, c, on_timer, &b);
	vclock_timer_init(&d.t, c, on_timer, &d);
	vclock_timer_arm(&a.t, 300);
	vclock_timer_arm(&b.t, 100);
	vclock_timer_arm(&d.t, 200);
	assert_int_equal(vclock_next_deadline(c), 100);
	vclock_timer_cancel(&d.t);
	assert_false(vclock_timer_armed(&d.t));
	vclock_timer_arm(&a.t, 50); /* re-arming moves it */
	assert_int_equal(vclock_next_deadline(c), 50);
	assert_int_equal(vclock_run_expired(c), 0);

	/* both expired: each runs once and sees its own deadline */
	assert_int_equal(vclock_advance(c, 1000), BT_OK);
	assert_int_equal(vclock_run_expired(c), 2);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.last_deadline, 50);
	assert_int_equal(b.last_deadline, 100);
	assert_int_equal(d.calls, 0);
	assert_true(vclock_next_deadline(c) == VCLOCK_NEVER);
	vclock_destroy(c);
}

static char order_log[8];
static unsigned order_n;

static void log_order(void *opaque, uint64_t deadline)
{
	order_log[order_n++] = *(const char *)opaque;
}

static void test_same_deadline_keeps_arming_order(void **state)
{
	struct vclock *c;
	struct vclock_timer t[3];
	static const char tags[3] = {'x', 'y', 'z'};
	assert_int_equal(vclock_create_manual(0, &c), BT_OK);
	order_n = 0;
	vclock_timer_init(&t[0], c, log_order, (void *)&tags[0]);
	vclock_timer_init(&t[1], c, log_order, (void *)&tags[1]);
	vclock_timer_init(&t[2], c, log_order, (void *)&tags[2]);
	vclock_timer_arm(&t[2], 70);
	vclock_timer_arm(&t[0], 50);
	vclock_timer_arm(&t[1], 50);
	assert_int_equal(vclock_advance(c, 100), BT_OK);
	assert_int_equal(vclock_run_expired(c), 3);
	assert_memory_equal(order_log, "xyz", 3);
	vclock_destroy(c);
}

static void test_periodic_run_until(void **state)
{
	struct vclock *c;
	assert_int_equal(vclock_create_manual(0, &c), BT_OK);
	struct rec r = {.clock = c, .period = 1000};
	vclock_timer_init(&r.t, c, on_timer, &r);
	vclock_timer_arm(&r.t, 1000);
	/* run_until stops at each deadline: callbacks see now == deadline */
	assert_int_equal(vclock_run_until(c, 10500), BT_OK);
	assert_int_equal(r.calls, 10);
	assert_int_equal(r.last_deadline, 10000);
	assert_int_equal(r.last_now, 10000);
	assert_int_equal(vclock_now_ns(c), 10500);
	assert_int_equal(vclock_next_deadline(c), 11000);
	/* a big jump then run_expired catches up in one call, earliest first */
	assert_int_equal(vclock_advance(c, 5000), BT_OK);
	assert_int_equal(vclock_run_expired(c), 5);
	assert_int_equal(r.calls, 15);
	vclock_destroy(c);
}

static void rearm_now(void *opaque, uint64_t deadline)
{
	struct vclock_timer *t = opaque;
	vclock_timer_arm(t, deadline); /* a broken device: always in the past */
}

static void test_runaway_timer_bounded(void **state)
{
	struct vclock *c;
	struct vclock_timer t;
	assert_int_equal(vclock_create_manual(0, &c), BT_OK);
	vclock_timer_init(&t, c, rearm_now, &t);
	vclock_timer_arm(&t, 10);
	assert_int_equal(vclock_advance(c, 100), BT_OK);
	assert_int_equal(vclock_run_expired(c), 4096);
	assert_int_equal(vclock_run_until(c, 200), BT_ERR_INTERNAL);
	vclock_destroy(c);
}

static void test_monotonic_source(void **state)
{
	struct vclock *c;
	assert_int_equal(vclock_create(&c), BT_OK);
	assert_false(vclock_is_manual(c));
	assert_int_equal(vclock_advance(c, 1), BT_ERR_INVALID);
	uint64_t t0 = vclock_now_ns(c);
	assert_true(t0 < VCLOCK_NS_PER_SEC); /* starts near zero */
	struct timespec ts = {.tv_nsec = 2000000};
	nanosleep(&ts, NULL);
	uint64_t t1 = vclock_now_ns(c);
	assert_true(t1 >= t0 + 2000000);
	vclock_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_manual_time),
	    cmocka_unit_test(test_timer_order_and_cancel),
	    cmocka_unit_test(test_same_deadline_keeps_arming_order),
	    cmocka_unit_test(test_periodic_run_until),
	    cmocka_unit_test(test_runaway_timer_bounded),
	    cmocka_unit_test(test_monotonic_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
