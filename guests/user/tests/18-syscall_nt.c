/*
 * syscall_nt: RFLAGS.NT set by user code survives a system call (SFMASK
 * clears it for the kernel; SYSRET restores it from R11), as Linux 6.1's
 * syscall_nt selftest expects.  The flags live in the vCPU: a translator
 * or a direct-execution boundary that drops NT fails here.  NT with AC
 * (CR0.AM is set: alignment checking on) too: btvm's translated user mode
 * runs that one instruction a block.
 */
#include "guests/user/tests/sens.h"

int main(void)
{
	uint64_t nr = SYS_getppid;
	uint64_t after = sens_syscall_with_flags(&nr, RFLAGS_NT);
	UT_CHECKF(after & RFLAGS_NT, "flags %#lx after the syscall: NT lost", (unsigned long)after);
	UT_CHECK((long)nr > 0);
	UT_CHECK(!(read_flags() & RFLAGS_NT));
	nr = SYS_getppid;
	after = sens_syscall_with_flags(&nr, RFLAGS_NT | RFLAGS_AC);
	UT_CHECKF((after & (RFLAGS_NT | RFLAGS_AC)) == (RFLAGS_NT | RFLAGS_AC),
		  "flags %#lx after the syscall with NT|AC", (unsigned long)after);
	UT_CHECK((long)nr > 0);
	UT_CHECK(!(read_flags() & (RFLAGS_NT | RFLAGS_AC)));
	return UT_DONE();
}
