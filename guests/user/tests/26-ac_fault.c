/*
 * ac_fault: alignment checking raises #AC (SIGBUS, as on Linux) for user
 * data accesses that lack their size's alignment while RFLAGS.AC is set
 * (CR0.AM is set by the test kernel): a misaligned 4-byte load, a
 * misaligned 8-byte store, and a push through a misaligned stack pointer.
 * QEMU TCG implements no alignment checking (qemu-lacks.txt): the truth
 * here is the host CPU (check-guest-user-native) and btvm in every user
 * mode.
 */
#include "guests/user/tests/sens.h"

static uint64_t buf[4];

static void ac_load(void)
{
	uint32_t v;
	__asm__ volatile("pushfq\n\t"
			 "orq %2, (%%rsp)\n\t"
			 "popfq\n\t"
			 "movl (%1), %0\n\t"
			 "ud2"
			 : "=r"(v)
			 : "r"((uint8_t *)buf + 1), "i"(RFLAGS_AC)
			 : "memory", "cc");
	(void)v;
	_exit(0);
}

static void ac_store(void)
{
	__asm__ volatile("pushfq\n\t"
			 "orq %1, (%%rsp)\n\t"
			 "popfq\n\t"
			 "movq %%rax, (%0)\n\t"
			 "ud2"
			 :
			 : "r"((uint8_t *)buf + 4), "i"(RFLAGS_AC), "a"(0)
			 : "memory", "cc");
	_exit(0);
}

static void ac_push(void)
{
	__asm__ volatile("pushfq\n\t"
			 "orq %0, (%%rsp)\n\t"
			 "popfq\n\t"
			 "subq $4, %%rsp\n\t"
			 "pushq $0\n\t"
			 "ud2"
			 :
			 : "i"(RFLAGS_AC)
			 : "memory", "cc");
	_exit(0);
}

int main(void)
{
	SENS_EXPECT_KILL(ac_load, SIGBUS);
	SENS_EXPECT_KILL(ac_store, SIGBUS);
	SENS_EXPECT_KILL(ac_push, SIGBUS);
	return UT_DONE();
}
