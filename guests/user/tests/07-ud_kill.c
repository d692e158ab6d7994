/*
 * ud_kill: ud2 raises #UD: the process is killed with SIGILL.  int3 raises
 * #BP: killed with SIGTRAP.  Both are instructions a translator rewrites
 * in kernel code; in user code they must reach the guest kernel unchanged.
 */
#include "guests/user/ulib/utest.h"

static void do_ud2(void)
{
	__asm__ volatile("ud2");
}

static void do_int3(void)
{
	__asm__ volatile("int3");
}

int main(void)
{
	int st = ut_run_child(do_ud2);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGILL, "ud2: wait status %#x", st);
	st = ut_run_child(do_int3);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGTRAP, "int3: wait status %#x", st);
	return UT_DONE();
}
