/*
 * de_kill: integer division by zero and INT64_MIN / -1 raise #DE: the
 * process is killed with SIGFPE.
 */
#include "guests/user/ulib/utest.h"

static volatile long divisor_zero = 0;
static volatile long divisor_m1 = -1;

static void do_div0(void)
{
	volatile long r = 1000 / divisor_zero;
	(void)r;
}

static void do_idiv_overflow(void)
{
	long lo = INT64_MIN, hi = -1, d = divisor_m1;
	__asm__ volatile("idivq %2" : "+a"(lo), "+d"(hi) : "r"(d));
}

int main(void)
{
	int st = ut_run_child(do_div0);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGFPE, "div by zero: wait status %#x", st);
	st = ut_run_child(do_idiv_overflow);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGFPE, "idiv overflow: wait status %#x", st);
	return UT_DONE();
}
