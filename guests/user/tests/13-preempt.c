/*
 * preempt: parent and child both spin on compute without any syscall for
 * 300 ms of TSC time, recording gaps in their own rdtsc stream.  With
 * timer preemption of user code each process loses a good share of the
 * window to the other (the gaps add up to >= 20% of it); without it one
 * process would run its whole window undisturbed.  Both must also finish.
 */
#include "guests/user/ulib/utest.h"

#define WINDOW_MS 300

/* TSC ticks per millisecond, measured against CLOCK_MONOTONIC. */
static uint64_t tsc_per_ms(void)
{
	struct timespec req = {0, 20 * 1000 * 1000};
	uint64_t n0 = ut_now_ns(), c0 = rdtsc();
	nanosleep(&req, NULL);
	uint64_t n1 = ut_now_ns(), c1 = rdtsc();
	uint64_t ns = n1 - n0;
	return ns ? (c1 - c0) * 1000000ull / ns : 0;
}

/* Spin for WINDOW_MS; return the stolen time (sum of gaps > 0.5 ms) in ticks. */
static uint64_t spin(uint64_t per_ms)
{
	uint64_t start = rdtsc(), prev = start, stolen = 0;
	uint64_t end = start + per_ms * WINDOW_MS, gap_min = per_ms / 2;
	volatile unsigned long x = 1;

	for (;;) {
		for (int i = 0; i < 50; i++)
			x = x * 3 + 1;
		uint64_t now = rdtsc();
		if (now - prev > gap_min)
			stolen += now - prev;
		prev = now;
		if (now >= end)
			break;
	}
	return stolen;
}

int main(void)
{
	uint64_t per_ms = tsc_per_ms();
	UT_CHECKF(per_ms > 1000, "TSC rate %llu ticks/ms", (unsigned long long)per_ms);
	if (per_ms <= 1000)
		return 1;

	pid_t pid = fork();
	if (pid == 0) {
		uint64_t stolen = spin(per_ms);
		_exit(stolen * 5 >= per_ms * WINDOW_MS ? 0 : 1);
	}
	UT_CHECK(pid > 0);
	uint64_t stolen = spin(per_ms);
	printf("# parent lost %llu ms of %d\n", (unsigned long long)(stolen / per_ms), WINDOW_MS);
	UT_CHECKF(stolen * 5 >= per_ms * WINDOW_MS, "parent was never preempted (lost %llu ms)",
		  (unsigned long long)(stolen / per_ms));
	int status = -1;
	UT_CHECK(waitpid(pid, &status, 0) == pid);
	UT_CHECKF(status == 0, "child was never preempted: status %#x", status);
	return UT_DONE();
}
