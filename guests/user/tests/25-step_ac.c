/*
 * step_ac: single-stepping (RFLAGS.TF) and alignment checking (RFLAGS.AC
 * with CR0.AM, which the test kernel sets as Linux does) in user code.
 * TF traps after each instruction: after an indirect jump (at its target,
 * before the ud2 there runs) and after each iteration of a rep string
 * instruction (before the iteration that would fault).  AC lets aligned
 * accesses, byte accesses and anything after AC is cleared through (the
 * #AC itself: 26-ac_fault, which QEMU TCG cannot run).  btvm's translated
 * user mode runs such code one instruction a block (docs/user-mode.md).
 */
#include "guests/user/tests/sens.h"

#define PAGE 4096ul

/* popf sets TF: the trap comes after the next instruction, the jump; the
 * ud2 at its target must not run (SIGTRAP, not SIGILL). */
static void tf_indirect_jump(void)
{
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
			 "pushfq\n\t"
			 "orq %0, (%%rsp)\n\t"
			 "popfq\n\t"
			 "jmp *%%rax\n\t"
			 "1: ud2"
			 :
			 : "i"(RFLAGS_TF)
			 : "rax", "memory", "cc");
	_exit(0);
}

static uint8_t *src_page;

/* rep movsb of 3 bytes whose second source byte lies on an unmapped page:
 * single-stepped, the first iteration traps (SIGTRAP) before the second
 * can fault (SIGSEGV). */
static void tf_rep_iteration(void)
{
	static uint8_t dst[8];
	__asm__ volatile("pushfq\n\t"
			 "orq %3, (%%rsp)\n\t"
			 "popfq\n\t"
			 "rep movsb\n\t"
			 "ud2"
			 :
			 : "S"(src_page + PAGE - 1), "D"(dst), "c"(3ul), "i"(RFLAGS_TF)
			 : "memory", "cc");
	_exit(0);
}

/* AC set: aligned word/dword/qword loads, a byte load at an odd address,
 * a push and a pop (8-aligned stack); then AC clear and a misaligned load
 * that must not trap.  Returns the sum of what was loaded. */
static uint64_t ac_aligned(const uint64_t *q)
{
	uint64_t sum, t;
	__asm__ volatile("pushfq\n\t"
			 "orq %3, (%%rsp)\n\t"
			 "popfq\n\t"
			 "movq (%2), %0\n\t"
			 "movl 8(%2), %k1\n\t"
			 "addq %1, %0\n\t"
			 "movzwl 12(%2), %k1\n\t"
			 "addq %1, %0\n\t"
			 "movzbl 3(%2), %k1\n\t"
			 "addq %1, %0\n\t"
			 "pushq %0\n\t"
			 "popq %0\n\t"
			 "pushfq\n\t"
			 "andq %4, (%%rsp)\n\t"
			 "popfq\n\t"
			 "movl 1(%2), %k1\n\t"
			 "addq %1, %0"
			 : "=&r"(sum), "=&r"(t)
			 : "r"(q), "i"(RFLAGS_AC), "i"(~RFLAGS_AC)
			 : "memory", "cc");
	return sum;
}

int main(void)
{
	SENS_EXPECT_KILL(tf_indirect_jump, SIGTRAP);

	src_page = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(src_page != MAP_FAILED);
	UT_CHECK(munmap(src_page + PAGE, PAGE) == 0);
	src_page[PAGE - 1] = 0x5a;
	SENS_EXPECT_KILL(tf_rep_iteration, SIGTRAP);

	static uint64_t q[2] = {0x0102030405060708ul, 0x0000111122223333ul};
	uint64_t want = 0x0102030405060708ul + 0x22223333u + 0x1111u + 0x05u + 0x04050607u;
	uint64_t got = ac_aligned(q);
	UT_CHECKF(got == want, "sum %#lx, expected %#lx", (unsigned long)got, (unsigned long)want);
	UT_CHECK(!(read_flags() & RFLAGS_AC));
	return UT_DONE();
}
