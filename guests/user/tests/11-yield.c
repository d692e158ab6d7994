/*
 * yield: two runnable processes alternate with sched_yield.  The child does
 * a fixed chunk of work between yields; the parent times its own yields and
 * most of them must last at least half a chunk, i.e. sched_yield really
 * switched to the child (a yield that returns at once fails the test).
 */
#include "guests/user/ulib/utest.h"

#define CHUNK_ITERS 200000
#define ROUNDS	    40

static volatile unsigned long sink;

static void chunk(void)
{
	unsigned long x = sink;
	for (int i = 0; i < CHUNK_ITERS; i++)
		x = x * 6364136223846793005ul + 1442695040888963407ul;
	sink = x;
}

int main(void)
{
	/* calibrate: the fastest of a few chunks */
	uint64_t best = ~0ull;
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = ut_now_ns();
		chunk();
		uint64_t t = ut_now_ns() - t0;
		if (t < best)
			best = t;
	}
	printf("# chunk %llu us\n", (unsigned long long)(best / 1000));

	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < ROUNDS * 3; i++) {
			chunk();
			if (sched_yield() != 0)
				_exit(1);
		}
		_exit(0);
	}
	UT_CHECK(pid > 0);
	int long_yields = 0;
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t t0 = ut_now_ns();
		UT_CHECK(sched_yield() == 0);
		if (ut_now_ns() - t0 >= best / 2)
			long_yields++;
	}
	printf("# %d of %d yields ran the other process\n", long_yields, ROUNDS);
	UT_CHECKF(long_yields >= ROUNDS / 2, "only %d of %d yields switched", long_yields, ROUNDS);
	int status = -1;
	UT_CHECK(waitpid(pid, &status, 0) == pid);
	UT_CHECKF(status == 0, "child status %#x", status);
	/* alone, a yield is quick and returns 0 */
	UT_CHECK(sched_yield() == 0);
	return UT_DONE();
}
