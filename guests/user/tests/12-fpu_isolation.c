/*
 * fpu_isolation: two processes load different patterns into xmm0-xmm15 and
 * different MXCSR rounding modes, then yield and sleep many times inside
 * one asm block (so the compiler cannot touch the registers), and check
 * every register afterwards: the kernel's FXSAVE/FXRSTOR on switches (and
 * a VMM's SIMD state hand-off) must not leak state between processes.
 */
#include "guests/user/ulib/utest.h"

struct xmm_state {
	uint64_t x[16][2];
};

/*
 * Load in[] into xmm0-15 and mxcsr, make `yields` sched_yield calls and one
 * nanosleep(1 ms) when sleep != 0, store xmm0-15 and mxcsr into out.
 */
static void fpu_round(const struct xmm_state *in, struct xmm_state *out, uint32_t mxcsr_in,
		      uint32_t *mxcsr_out, long yields, int sleep)
{
	static const struct timespec ms = {0, 1000000};
	uint32_t m = mxcsr_in;

	__asm__ volatile("ldmxcsr %[m]\n\t"
			 "movdqu 0x00(%[in]), %%xmm0\n\t"
			 "movdqu 0x10(%[in]), %%xmm1\n\t"
			 "movdqu 0x20(%[in]), %%xmm2\n\t"
			 "movdqu 0x30(%[in]), %%xmm3\n\t"
			 "movdqu 0x40(%[in]), %%xmm4\n\t"
			 "movdqu 0x50(%[in]), %%xmm5\n\t"
			 "movdqu 0x60(%[in]), %%xmm6\n\t"
			 "movdqu 0x70(%[in]), %%xmm7\n\t"
			 "movdqu 0x80(%[in]), %%xmm8\n\t"
			 "movdqu 0x90(%[in]), %%xmm9\n\t"
			 "movdqu 0xa0(%[in]), %%xmm10\n\t"
			 "movdqu 0xb0(%[in]), %%xmm11\n\t"
			 "movdqu 0xc0(%[in]), %%xmm12\n\t"
			 "movdqu 0xd0(%[in]), %%xmm13\n\t"
			 "movdqu 0xe0(%[in]), %%xmm14\n\t"
			 "movdqu 0xf0(%[in]), %%xmm15\n\t"
			 "test %[sleep], %[sleep]\n\t"
			 "jz 2f\n\t"
			 "mov $35, %%eax\n\t"
			 "mov %[ms], %%rdi\n\t"
			 "xor %%esi, %%esi\n\t"
			 "syscall\n\t"
			 "2:\n\t"
			 "test %[n], %[n]\n\t"
			 "jz 3f\n\t"
			 "1:\n\t"
			 "mov $24, %%eax\n\t"
			 "syscall\n\t"
			 "dec %[n]\n\t"
			 "jnz 1b\n\t"
			 "3:\n\t"
			 "movdqu %%xmm0, 0x00(%[out])\n\t"
			 "movdqu %%xmm1, 0x10(%[out])\n\t"
			 "movdqu %%xmm2, 0x20(%[out])\n\t"
			 "movdqu %%xmm3, 0x30(%[out])\n\t"
			 "movdqu %%xmm4, 0x40(%[out])\n\t"
			 "movdqu %%xmm5, 0x50(%[out])\n\t"
			 "movdqu %%xmm6, 0x60(%[out])\n\t"
			 "movdqu %%xmm7, 0x70(%[out])\n\t"
			 "movdqu %%xmm8, 0x80(%[out])\n\t"
			 "movdqu %%xmm9, 0x90(%[out])\n\t"
			 "movdqu %%xmm10, 0xa0(%[out])\n\t"
			 "movdqu %%xmm11, 0xb0(%[out])\n\t"
			 "movdqu %%xmm12, 0xc0(%[out])\n\t"
			 "movdqu %%xmm13, 0xd0(%[out])\n\t"
			 "movdqu %%xmm14, 0xe0(%[out])\n\t"
			 "movdqu %%xmm15, 0xf0(%[out])\n\t"
			 "stmxcsr %[m]\n\t"
			 : [m] "+m"(m), [n] "+r"(yields)
			 : [in] "r"(in), [out] "r"(out), [sleep] "r"(sleep), [ms] "r"(&ms)
			 : "rax", "rcx", "rdx", "rdi", "rsi", "r11", "memory", "xmm0", "xmm1",
			   "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
			   "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	*mxcsr_out = m;
}

/* Returns the number of mismatching registers over all rounds. */
static int run(uint64_t seed, uint32_t mxcsr)
{
	struct xmm_state in, out;
	int bad = 0;

	for (int round = 0; round < 60; round++) {
		for (int r = 0; r < 16; r++) {
			in.x[r][0] = seed * 0x9e3779b97f4a7c15ull +
				     (uint64_t)r * 0x0101010101010101ull + (uint64_t)round;
			in.x[r][1] = ~in.x[r][0] ^ seed;
		}
		uint32_t mo = 0;
		fpu_round(&in, &out, mxcsr, &mo, 5, round % 10 == 0);
		for (int r = 0; r < 16; r++)
			if (in.x[r][0] != out.x[r][0] || in.x[r][1] != out.x[r][1])
				bad++;
		if (mo != mxcsr)
			bad++;
	}
	return bad;
}

int main(void)
{
	/* round-to-nearest vs round-toward-zero, all exceptions masked */
	const uint32_t mx_parent = 0x1f80, mx_child = 0x7f80;

	pid_t pid = fork();
	if (pid == 0)
		_exit(run(0xc0ffee, mx_child) ? 1 : 0);
	UT_CHECK(pid > 0);
	int bad = run(0x5eed, mx_parent);
	UT_CHECKF(bad == 0, "parent: %d register mismatches", bad);
	int status = -1;
	UT_CHECK(waitpid(pid, &status, 0) == pid);
	UT_CHECKF(status == 0, "child saw foreign SIMD state: status %#x", status);
	return UT_DONE();
}
