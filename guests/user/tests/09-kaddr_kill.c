/*
 * kaddr_kill: user code cannot read or write kernel memory (U/S bit) nor
 * jump to it, and a NULL dereference faults: each child is killed with
 * SIGSEGV.  When user code runs natively in a stub process, the kernel's
 * higher half must simply not be there.
 */
#include "guests/user/ulib/utest.h"

/* addresses through volatile variables: the compiler must not reason about them */
static volatile long *volatile kernel_text = (volatile long *)0xffffffff80000000ul;
static volatile long *volatile kernel_data = (volatile long *)0xffffffff80200000ul;
static volatile long *volatile null_ptr = (volatile long *)8;
static volatile long *volatile noncanonical = (volatile long *)0x0000900000000000ul;

static void read_kernel(void)
{
	(void)*kernel_text;
}

static void write_kernel(void)
{
	*kernel_data = 1;
}

static void jump_kernel(void)
{
	((void (*)(void))kernel_text)();
}

static void read_null(void)
{
	(void)*null_ptr;
}

static void read_noncanonical(void)
{
	(void)*noncanonical;
}

int main(void)
{
	int st = ut_run_child(read_kernel);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "read kernel: status %#x", st);
	st = ut_run_child(write_kernel);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "write kernel: status %#x", st);
	st = ut_run_child(jump_kernel);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "jump to kernel: status %#x", st);
	st = ut_run_child(read_null);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "NULL read: status %#x", st);
	st = ut_run_child(read_noncanonical);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "non-canonical read: status %#x", st);
	return UT_DONE();
}
