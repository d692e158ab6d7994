/*
 * fsgsbase: the FS and GS bases of a process.  arch_prctl(ARCH_SET_FS/GS)
 * sets them (%fs:/%gs: operands then read through them), ARCH_GET_* reads
 * them back, an address past the user half is EPERM, and they survive
 * other processes running in between.  When the kernel reports
 * HWCAP2_FSGSBASE (it set CR4.FSGSBASE because CPUID offers it),
 * rd/wr{fs,gs}base act on the same bases.  Without it they are #UD, which
 * is not run here: a kill prints a line, and the output must not depend on
 * the CPU model (QEMU's -cpu max has FSGSBASE, btvm's vCPU only with
 * CPU_FEAT_FSGSBASE); tests/unit/test_cpu_user.c checks the #UD.
 */
#include "guests/user/tests/sens.h"

static uint64_t fsbuf[2] = {0x0123456789abcdefull, 1};
static uint64_t gsbuf[2] = {0xfedcba9876543210ull, 2};
static uint64_t gsbuf2[2] = {0x5555aaaa5555aaaaull, 3};

static uint64_t fs0(void)
{
	uint64_t v;
	__asm__ volatile("movq %%fs:0, %0" : "=r"(v) : : "memory");
	return v;
}

static uint64_t gs8(void)
{
	uint64_t v;
	__asm__ volatile("movq %%gs:8, %0" : "=r"(v) : : "memory");
	return v;
}

static uint64_t get_base(int code)
{
	uint64_t v = 0;
	UT_CHECK(sens_syscall3(SYS_arch_prctl, code, (long)&v, 0) == 0);
	return v;
}

static void child_other_bases(void)
{
	SENS_CHILD_START();
	/* runs between the parent's checks with bases of its own */
	UT_CHECK(sens_syscall3(SYS_arch_prctl, ARCH_SET_FS, (long)gsbuf, 0) == 0);
	UT_CHECK(sens_syscall3(SYS_arch_prctl, ARCH_SET_GS, (long)fsbuf, 0) == 0);
	sched_yield();
	UT_CHECK(fs0() == gsbuf[0]);
	_exit(UT_DONE());
}

int main(void)
{
	UT_CHECK(sens_syscall3(SYS_arch_prctl, ARCH_SET_FS, (long)fsbuf, 0) == 0);
	UT_CHECK(sens_syscall3(SYS_arch_prctl, ARCH_SET_GS, (long)gsbuf, 0) == 0);
	UT_CHECK(fs0() == fsbuf[0]);
	UT_CHECK(gs8() == gsbuf[1]);
	UT_CHECK(get_base(ARCH_GET_FS) == (uint64_t)fsbuf);
	UT_CHECK(get_base(ARCH_GET_GS) == (uint64_t)gsbuf);
	UT_CHECK(sens_syscall3(SYS_arch_prctl, ARCH_SET_FS, 0x00007ffffffff000l, 0) == -EPERM);
	UT_CHECK(sens_syscall3(SYS_arch_prctl, 0x9999, 0, 0) == -EINVAL);
	/* another process with other bases runs, ours are back afterwards */
	SENS_EXPECT_EXIT0(child_other_bases);
	for (int i = 0; i < 3; i++)
		sched_yield();
	UT_CHECK(fs0() == fsbuf[0]);
	UT_CHECK(gs8() == gsbuf[1]);

	if (sens_getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) {
		uint64_t f, g;
		__asm__ volatile("rdfsbase %0; rdgsbase %1" : "=r"(f), "=r"(g));
		UT_CHECK(f == (uint64_t)fsbuf && g == (uint64_t)gsbuf);
		__asm__ volatile("wrgsbase %0" : : "r"((uint64_t)gsbuf2) : "memory");
		UT_CHECK(gs8() == gsbuf2[1]);
		UT_CHECK(get_base(ARCH_GET_GS) == (uint64_t)gsbuf2);
		sched_yield(); /* a context switch keeps what wrgsbase wrote */
		UT_CHECK(gs8() == gsbuf2[1]);
		__asm__ volatile("wrfsbase %0" : : "r"((uint64_t)gsbuf2) : "memory");
		UT_CHECK(get_base(ARCH_GET_FS) == (uint64_t)gsbuf2);
		/* a non-canonical base is #GP(0) by the SDM; QEMU 7.2 TCG takes
		 * it (test_cpu_user checks btvm's vCPU), so it is not run here */
	}
	UT_CHECK(sens_syscall3(SYS_arch_prctl, ARCH_SET_FS, 0, 0) == 0);
	UT_CHECK(sens_syscall3(SYS_arch_prctl, ARCH_SET_GS, 0, 0) == 0);
	return UT_DONE();
}
