/*
 * sleep_clock: nanosleep(50 ms) advances CLOCK_MONOTONIC by >= 45 ms (and
 * by less than 5 s); CLOCK_MONOTONIC never goes backwards; CLOCK_REALTIME
 * (CMOS RTC at boot plus ticks) is after 2020-01-01; bad arguments fail.
 */
#include "guests/user/ulib/utest.h"

int main(void)
{
	struct timespec a, b, rt;

	UT_CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
	UT_CHECK(a.tv_nsec >= 0 && a.tv_nsec < 1000000000);
	struct timespec req = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
	UT_CHECK(nanosleep(&req, NULL) == 0);
	UT_CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0);
	long long ns = (long long)(b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec);
	printf("# slept %lld us\n", ns / 1000);
	UT_CHECKF(ns >= 45000000ll, "nanosleep(50 ms) took only %lld ns", ns);
	UT_CHECKF(ns < 5000000000ll, "nanosleep(50 ms) took %lld ns", ns);

	/* monotonic */
	uint64_t prev = ut_now_ns();
	int backwards = 0;
	for (int i = 0; i < 2000; i++) {
		uint64_t now = ut_now_ns();
		backwards += now < prev;
		prev = now;
	}
	UT_CHECK(backwards == 0);

	/* resolution: the clock moves during a short busy loop of ~2 ms */
	uint64_t t0 = ut_now_ns(), t1 = t0;
	for (long i = 0; i < 100000000 && t1 - t0 < 2000000; i++)
		t1 = ut_now_ns();
	UT_CHECKF(t1 - t0 >= 2000000, "clock did not reach +2 ms (%llu ns)",
		  (unsigned long long)(t1 - t0));

	UT_CHECK(clock_gettime(CLOCK_REALTIME, &rt) == 0);
	printf("# realtime %ld\n", (long)rt.tv_sec);
	UT_CHECKF(rt.tv_sec > 1577836800l, "CLOCK_REALTIME %ld is before 2020", (long)rt.tv_sec);
	UT_CHECKF(rt.tv_sec < 4102444800l, "CLOCK_REALTIME %ld is after 2100", (long)rt.tv_sec);

	/* zero sleep returns at once; bad arguments are refused */
	struct timespec zero = {0, 0};
	UT_CHECK(nanosleep(&zero, NULL) == 0);
	struct timespec bad = {0, 1000000000};
	UT_CHECK(nanosleep(&bad, NULL) == -1);
	UT_CHECK(clock_gettime(12345, &rt) == -1);
	UT_CHECK(clock_gettime(CLOCK_MONOTONIC, (struct timespec *)0x10) == -1);
	return UT_DONE();
}
