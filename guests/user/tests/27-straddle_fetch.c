/*
 * straddle_fetch: an instruction that starts on a present page and ends on
 * a page the kernel has not mapped yet (demand-zero) must fault fetching
 * its second part -- a #PF the kernel resolves -- and then run; it is not
 * an invalid instruction.  `mov $imm32, %ecx` (b9) is the last byte of page
 * 0, its zero immediate comes from page 1, which then holds 2,046
 * `add %al, (%rax)` (00 00) up to page 2, which starts with `ret`.  A
 * translator that decodes only the bytes it can read raised #UD here
 * (Debian's login died in pam_unix.so under btvm's translated user mode).
 */
#include "guests/user/ulib/utest.h"

static unsigned char *g_code;
static unsigned char g_scratch;

/* Exits 0 when the instruction ran: ecx took its zero immediate, and the
 * adds on page 1 left g_scratch = 2,046 * al (mod 256). */
static void run_straddle(void)
{
	unsigned long rcx = 0x5555, rax = (unsigned long)&g_scratch;
	unsigned char al = (unsigned char)rax;
	g_scratch = 0;
	__asm__ volatile("call *%[fn]"
			 : "+c"(rcx), "+a"(rax)
			 : [fn] "r"(g_code + 4095)
			 : "memory", "cc");
	_exit(rcx != 0 ? 2 : g_scratch != (unsigned char)(2046u * al) ? 3 : 0);
}

int main(void)
{
	unsigned char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(p != MAP_FAILED);
	if (p == MAP_FAILED)
		return 1;
	p[4095] = 0xb9;	    /* mov $imm32, %ecx: the immediate is on page 1 */
	p[2 * 4096] = 0xc3; /* ret; page 1 is never touched before the call */
	g_code = p;
	int st = ut_run_child(run_straddle);
	UT_CHECKF(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: wait status %#x", st);
	return UT_DONE();
}
