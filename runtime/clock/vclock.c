/*
 * Virtual clock: owns the time source and the list of armed timers.
 *
 * Invariants
 *  1. The armed list is sorted by deadline (ties keep arming order) and holds
 *     exactly the timers with armed == true.
 *  2. Virtual time never goes backwards: now = source - origin, and a
 *     manual clock only moves forward.
 *  3. A callback runs with its timer already disarmed, so it may re-arm it,
 *     arm or cancel other timers.
 */
#include "runtime/clock/vclock.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"

#include <stdlib.h>

#define VCLOCK_RUN_MAX 4096

struct vclock {
	bool manual;
	uint64_t origin; /* monotonic ns at creation */
	uint64_t manual_now;
	uint64_t manual_step; /* added after each read (vclock_set_read_step) */
	uint64_t last;	      /* last value returned, for invariant 2 */
	struct vclock_timer *armed;
};

enum bt_status vclock_create(struct vclock **out)
{
	if (!out)
		return BT_ERR_INVALID;
	struct vclock *c = calloc(1, sizeof(*c));
	if (!c)
		return BT_ERR_NOMEM;
	c->origin = bt_now_ns();
	*out = c;
	return BT_OK;
}

enum bt_status vclock_create_manual(uint64_t start_ns, struct vclock **out)
{
	if (!out)
		return BT_ERR_INVALID;
	struct vclock *c = calloc(1, sizeof(*c));
	if (!c)
		return BT_ERR_NOMEM;
	c->manual = true;
	c->manual_now = start_ns;
	*out = c;
	return BT_OK;
}

void vclock_destroy(struct vclock *clock)
{
	if (!clock)
		return;
	for (struct vclock_timer *t = clock->armed; t; t = t->next)
		t->armed = false;
	free(clock);
}

uint64_t vclock_now_ns(struct vclock *clock)
{
	uint64_t now = clock->manual ? clock->manual_now : bt_now_ns() - clock->origin;
	if (clock->manual)
		clock->manual_now += clock->manual_step;
	if (now < clock->last)
		now = clock->last;
	clock->last = now;
	return now;
}

bool vclock_is_manual(const struct vclock *clock)
{
	return clock->manual;
}

enum bt_status vclock_set_read_step(struct vclock *clock, uint64_t step_ns)
{
	if (!clock || !clock->manual)
		return BT_ERR_INVALID;
	clock->manual_step = step_ns;
	return BT_OK;
}

enum bt_status vclock_advance(struct vclock *clock, uint64_t delta_ns)
{
	if (!clock || !clock->manual || UINT64_MAX - clock->manual_now < delta_ns)
		return BT_ERR_INVALID;
	clock->manual_now += delta_ns;
	return BT_OK;
}

enum bt_status vclock_set(struct vclock *clock, uint64_t now_ns)
{
	if (!clock || !clock->manual || now_ns < clock->manual_now)
		return BT_ERR_INVALID;
	clock->manual_now = now_ns;
	return BT_OK;
}

void vclock_timer_init(struct vclock_timer *t, struct vclock *clock, vclock_timer_fn *fn,
		       void *opaque)
{
	*t = (struct vclock_timer){.clock = clock, .fn = fn, .opaque = opaque};
}

static void timer_unlink(struct vclock_timer *t)
{
	struct vclock_timer **pp = &t->clock->armed;
	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
	t->next = NULL;
	t->armed = false;
}

void vclock_timer_arm(struct vclock_timer *t, uint64_t deadline_ns)
{
	if (t->armed)
		timer_unlink(t);
	t->deadline = deadline_ns;
	struct vclock_timer **pp = &t->clock->armed;
	while (*pp && (*pp)->deadline <= deadline_ns)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	t->armed = true;
}

void vclock_timer_cancel(struct vclock_timer *t)
{
	if (t->armed)
		timer_unlink(t);
}

bool vclock_timer_armed(const struct vclock_timer *t)
{
	return t->armed;
}

uint64_t vclock_next_deadline(const struct vclock *clock)
{
	return clock->armed ? clock->armed->deadline : VCLOCK_NEVER;
}

unsigned vclock_run_expired(struct vclock *clock)
{
	unsigned ran = 0;
	uint64_t now = vclock_now_ns(clock);
	while (clock->armed && clock->armed->deadline <= now) {
		if (ran == VCLOCK_RUN_MAX) {
			bt_warn(LOG_DEV,
				"vclock: %u timer callbacks in one pass; deferring the rest", ran);
			break;
		}
		struct vclock_timer *t = clock->armed;
		clock->armed = t->next;
		t->next = NULL;
		t->armed = false;
		t->fn(t->opaque, t->deadline);
		ran++;
	}
	return ran;
}

enum bt_status vclock_run_until(struct vclock *clock, uint64_t target_ns)
{
	if (!clock || !clock->manual || target_ns < clock->manual_now)
		return BT_ERR_INVALID;
	for (;;) {
		vclock_run_expired(clock);
		uint64_t next = vclock_next_deadline(clock);
		if (next > target_ns)
			break;
		if (next <= clock->manual_now) {
			bt_err(LOG_DEV, "vclock: a timer keeps re-arming in the past");
			return BT_ERR_INTERNAL;
		}
		clock->manual_now = next;
	}
	clock->manual_now = target_ns;
	vclock_run_expired(clock);
	return BT_OK;
}
