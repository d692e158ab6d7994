/*
 * Unit tests for pretrans/base's small helpers: the growable array
 * (vec.h: growth, contents kept, overflow refused with the array intact)
 * and the monotonic clock (clock.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pretrans/base/clock.h"
#include "pretrans/base/status.h"
#include "pretrans/base/vec.h"

static void test_vec_grows_and_keeps(void **state)
{
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	for (uint32_t i = 0; i < 100000; i++) {
		assert_true(BT_VEC_RESERVE(v, cap, n + 1, 16));
		assert_true(cap >= n + 1);
		v[n++] = i * 7u;
	}
	assert_true(cap >= 100000 && cap < 2 * 131072);
	for (uint32_t i = 0; i < 100000; i++)
		assert_int_equal(v[i], i * 7u);
	free(v);
}

static void test_vec_first_capacity(void **state)
{
	char *v = NULL;
	size_t cap = 0;
	assert_true(BT_VEC_RESERVE(v, cap, 1, 64));
	assert_int_equal(cap, 64);
	assert_true(BT_VEC_RESERVE(v, cap, 64, 64)); /* no growth needed */
	assert_int_equal(cap, 64);
	assert_true(BT_VEC_RESERVE(v, cap, 1000, 64)); /* a jump past 2x */
	assert_int_equal(cap, 1024);
	free(v);
	v = NULL;
	cap = 0;
	assert_true(BT_VEC_RESERVE(v, cap, 3, 0)); /* min_cap 0 starts at 1 */
	assert_int_equal(cap, 4);
	free(v);
}

static void test_vec_overflow_refused(void **state)
{
	uint64_t *v = NULL;
	size_t cap = 0;
	assert_true(BT_VEC_RESERVE(v, cap, 8, 8));
	v[7] = 42;
	uint64_t *before = v;
	assert_false(BT_VEC_RESERVE(v, cap, SIZE_MAX / 4, 8)); /* bytes overflow */
	assert_false(BT_VEC_RESERVE(v, cap, SIZE_MAX, 8));     /* count overflow */
	assert_ptr_equal(v, before);
	assert_int_equal(cap, 8);
	assert_int_equal(v[7], 42);
	free(v);
}

static void test_clock_monotonic(void **state)
{
	uint64_t a = bt_now_ns();
	usleep(2000);
	uint64_t b = bt_now_ns();
	assert_true(a > 0);
	assert_true(b - a >= 2000000);
	assert_true(b - a < 10ull * 1000000000ull);
}

/* The exit statuses docs/pretrans.md and docs/diff.md document. */
static void test_status_exit(void **state)
{
	assert_int_equal(bt_status_exit(BT_OK), 0);
	assert_int_equal(bt_status_exit(BT_ERR_INVALID), 1);
	const enum bt_status input[] = {BT_ERR_FORMAT, BT_ERR_VERSION,	BT_ERR_UNSUPPORTED,
					BT_ERR_RANGE,  BT_ERR_NOTFOUND, BT_ERR_DB};
	for (size_t i = 0; i < sizeof(input) / sizeof(input[0]); i++)
		assert_int_equal(bt_status_exit(input[i]), 2);
	assert_int_equal(bt_status_exit(BT_ERR_IO), 4);
	assert_int_equal(bt_status_exit(BT_ERR_NOMEM), 3);
	assert_int_equal(bt_status_exit(BT_ERR_INTERNAL), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vec_grows_and_keeps),	 cmocka_unit_test(test_vec_first_capacity),
	    cmocka_unit_test(test_vec_overflow_refused), cmocka_unit_test(test_clock_monotonic),
	    cmocka_unit_test(test_status_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
