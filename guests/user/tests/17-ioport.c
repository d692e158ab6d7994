/*
 * ioport: port I/O from user mode as Linux 6.1 grants it.  Without
 * permission in/out raise #GP; ioperm(2) opens single ports through the
 * TSS I/O permission bitmap (a word access needs both ports); iopl(3) is
 * emulated with an all-open bitmap, so in/out work but cli still faults and
 * RFLAGS.IOPL stays 0; both are inherited by fork.  Port 0x80 (the POST
 * port) is written and read; nothing listens there.
 */
#include "guests/user/tests/sens.h"

static void outb80(void)
{
	__asm__ volatile("outb %%al, $0x80" : : "a"(0));
}

static void outb81(void)
{
	__asm__ volatile("outb %%al, $0x81" : : "a"(0));
}

static void outw7f(void)
{
	__asm__ volatile("outw %%ax, %%dx" : : "a"(0), "d"(0x7f));
}

static void do_cli(void)
{
	__asm__ volatile("cli");
}

static void child_outb80_ok(void)
{
	outb80();
	_exit(0);
}

static void in_out_80(void)
{
	uint8_t v;
	outb80();
	__asm__ volatile("inb $0x80, %%al" : "=a"(v));
	(void)v;
}

int main(void)
{
	SENS_EXPECT_KILL(outb80, SIGSEGV);
	/* iopl(3): every port, through the emulation */
	UT_CHECK(sens_syscall3(SYS_iopl, 3, 0, 0) == 0);
	in_out_80();
	outb81();
	UT_CHECKF((read_flags() & RFLAGS_IOPL) == 0, "IOPL %lu after iopl(3)",
		  (unsigned long)((read_flags() & RFLAGS_IOPL) >> 12));
	SENS_EXPECT_EXIT0(child_outb80_ok);
	SENS_EXPECT_KILL(do_cli, SIGSEGV);
	UT_CHECK(sens_syscall3(SYS_iopl, 0, 0, 0) == 0);
	SENS_EXPECT_KILL(outb80, SIGSEGV);
	UT_CHECK(sens_syscall3(SYS_iopl, 4, 0, 0) == -EINVAL);
	/* ioperm: port 0x80 only */
	UT_CHECK(sens_syscall3(SYS_ioperm, 0x80, 1, 1) == 0);
	in_out_80();
	SENS_EXPECT_EXIT0(child_outb80_ok);
	SENS_EXPECT_KILL(outb81, SIGSEGV);
	SENS_EXPECT_KILL(outw7f, SIGSEGV);
	UT_CHECK(sens_syscall3(SYS_ioperm, 0x7f, 1, 1) == 0);
	outw7f();
	UT_CHECK(sens_syscall3(SYS_ioperm, 0x7f, 2, 0) == 0);
	SENS_EXPECT_KILL(outb80, SIGSEGV);
	UT_CHECK(sens_syscall3(SYS_ioperm, 0xffff, 2, 1) == -EINVAL);
	return UT_DONE();
}
