/*
 * gp_kill: privileged instructions in user mode raise #GP; the kernel kills
 * the process (SIGSEGV in wait4) and carries on.  Covers cli, hlt, a
 * control-register read, an I/O port access and wrmsr: the instructions a
 * translator treats as sensitive must still fault when user code runs
 * natively.
 */
#include "guests/user/ulib/utest.h"

static void do_cli(void)
{
	__asm__ volatile("cli");
}

static void do_hlt(void)
{
	__asm__ volatile("hlt");
}

static void do_mov_cr3(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
}

static void do_in(void)
{
	unsigned char v;
	__asm__ volatile("inb $0x80, %0" : "=a"(v));
}

static void do_wrmsr(void)
{
	__asm__ volatile("wrmsr" ::"c"(0xc0000080u), "a"(0), "d"(0));
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} cases[] = {{"cli", do_cli},
		     {"hlt", do_hlt},
		     {"mov cr3", do_mov_cr3},
		     {"inb", do_in},
		     {"wrmsr", do_wrmsr}};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = ut_run_child(cases[i].fn);
		UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "%s: wait status %#x", cases[i].name,
			  st);
	}
	/* and the parent itself is still fine */
	UT_CHECK(getpid() > 0);
	return UT_DONE();
}
