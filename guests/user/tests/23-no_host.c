/*
 * no_host: guest user code reaches the guest kernel and nothing else, in
 * every user mode of btvm (direct in a stub, translated, adaptive):
 *  - system calls the guest kernel does not implement (socket, openat,
 *    ptrace, process_vm_readv) answer -ENOSYS: had one reached the host,
 *    it would have succeeded (or btvm's sandbox would have killed btvm);
 *  - getpid is the guest's pid (small), not a host pid;
 *  - memory the guest kernel never mapped for this process cannot be read
 *    or written, wherever btvm keeps its own state: below the program, far
 *    above it, the top of the lower half, and btvm's stub page (whose
 *    address, USTUB_BASE, is public): each try kills a child with SIGSEGV;
 *  - a page the guest maps and unmaps is gone after munmap, for reads and
 *    writes, although the same physical page stays guest RAM.
 */
#include "guests/user/tests/sens.h"

#define ENOSYS_ 38

static volatile long *volatile target;

static void touch_read(void)
{
	(void)*target;
}

static void touch_write(void)
{
	*target = 0x5a5a;
}

static int killed_by_segv(int status)
{
	return (status & 0x7f) == 11;
}

int main(void)
{
	static const long absent[] = {41 /* socket */, 257 /* openat */, 101 /* ptrace */,
				      310 /* process_vm_readv */, 56 /* clone */};
	for (unsigned i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		long r = sens_syscall3(absent[i], 1, 1, 0);
		UT_CHECKF(r == -ENOSYS_, "system call %ld returned %ld, not -ENOSYS", absent[i], r);
	}
	long pid = sens_syscall3(SYS_getpid, 0, 0, 0);
	UT_CHECKF(pid > 0 && pid < 4096, "getpid %ld is not a guest pid", pid);

	static const unsigned long never[] = {0x10000ul, 0x7ff000000000ul, 0x7ffffffff000ul,
					      0x3ff000000000ul /* USTUB_BASE */};
	for (unsigned i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		target = (volatile long *)never[i];
		UT_CHECKF(killed_by_segv(ut_run_child(touch_read)), "read of %#lx did not fault",
			  never[i]);
		UT_CHECKF(killed_by_segv(ut_run_child(touch_write)), "write of %#lx did not fault",
			  never[i]);
	}

	long m = ulib_syscall(SYS_mmap, 0, 4096, 3 /* RW */, 0x22 /* private|anon */, -1, 0);
	UT_CHECK(m > 0);
	if (m > 0) {
		*(volatile long *)m = 7;
		UT_CHECK(*(volatile long *)m == 7);
		UT_CHECK(sens_syscall3(SYS_munmap, m, 4096, 0) == 0);
		target = (volatile long *)m;
		UT_CHECK(killed_by_segv(ut_run_child(touch_read)));
		UT_CHECK(killed_by_segv(ut_run_child(touch_write)));
	}
	return UT_DONE();
}
