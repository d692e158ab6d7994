/*
 * syscall_flags: user-writable RFLAGS bits across a system call and the
 * ones user code cannot write.  AC and DF set by popf survive the call;
 * popf cannot set IOPL or clear IF at CPL 3 (silently ignored).  TF: a
 * popf that sets it traps after the next instruction; when that is a
 * syscall, SFMASK clears TF for the kernel (no #DB there), the call runs
 * (its output appears), and the #DB comes after SYSRET restores TF:
 * the child dies of SIGTRAP in user mode.
 */
#include "guests/user/tests/sens.h"

static void tf_across_syscall(void)
{
	static const char msg[] = "# tf: the syscall ran\n";
	long nr = SYS_write;
	__asm__ volatile("pushfq\n\t"
			 "orq %1, (%%rsp)\n\t"
			 "popfq\n\t"
			 "syscall\n\t"
			 "nop\n\t"
			 "nop"
			 : "+a"(nr)
			 : "i"(RFLAGS_TF), "D"(1), "S"(msg), "d"(sizeof(msg) - 1)
			 : "rcx", "r11", "memory", "cc");
	_exit(0); /* not reached: #DB after the first nop */
}

int main(void)
{
	/* AC and DF: set, syscall, read back, clear, all in one asm block (no
	 * C code may run with DF set) */
	uint64_t nr = SYS_getpid;
	uint64_t after = sens_syscall_with_flags(&nr, RFLAGS_AC | RFLAGS_DF);
	UT_CHECKF((after & (RFLAGS_AC | RFLAGS_DF)) == (RFLAGS_AC | RFLAGS_DF),
		  "flags %#lx after the syscall", (unsigned long)after);
	UT_CHECK((long)nr > 0);
	UT_CHECK(!(read_flags() & (RFLAGS_AC | RFLAGS_DF)));
	/* IOPL and IF are not user-writable: popf keeps them */
	uint64_t f;
	__asm__ volatile("pushfq\n\t"
			 "movq (%%rsp), %0\n\t"
			 "orq %1, (%%rsp)\n\t"
			 "andq %2, (%%rsp)\n\t"
			 "popfq\n\t"
			 "pushfq\n\t"
			 "popq %0"
			 : "=&r"(f)
			 : "r"(RFLAGS_IOPL), "r"(~RFLAGS_IF)
			 : "memory", "cc");
	UT_CHECKF((f & RFLAGS_IOPL) == 0 && (f & RFLAGS_IF), "flags %#lx after popf",
		  (unsigned long)f);
	SENS_EXPECT_KILL(tf_across_syscall, SIGTRAP);
	return UT_DONE();
}
