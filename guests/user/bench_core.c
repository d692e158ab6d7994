/*
 * bench_core: benchmark kernels shared by the guest and the native build.
 * Invariant: identical source for both targets (only bench_plat.h differs),
 * so a native/guest ratio compares the same instructions.
 */
#include "guests/user/bench_core.h"

#include "guests/user/bench_plat.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long bench_raw_getpid(void)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(39l) : "rcx", "r11", "memory");
	return ret;
}

int bench_getpid(uint64_t iters, struct bench_time *t)
{
	long first = bench_raw_getpid();
	int bad = 0;
	uint64_t n0 = bench_now_ns(), c0 = rdtsc();

	for (uint64_t i = 0; i < iters; i++)
		bad |= bench_raw_getpid() != first;
	t->cycles = rdtsc() - c0;
	t->ns = bench_now_ns() - n0;
	t->iters = iters;
	return bad || first <= 0 ? -1 : 0;
}

int bench_dep_loop(uint64_t iters, struct bench_time *t, uint64_t *out)
{
	uint64_t x = 0x12345678;
	uint64_t n0 = bench_now_ns(), c0 = rdtsc();

	for (uint64_t i = 0; i < iters; i++) {
		x = x * 0x5851f42d4c957f2dull + i;
		__asm__ volatile("" : "+r"(x)); /* keep one step per iteration */
	}
	t->cycles = rdtsc() - c0;
	t->ns = bench_now_ns() - n0;
	t->iters = iters;
	*out = x;
	return 0;
}

static uint32_t bench_crc_table[256];

static void bench_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		bench_crc_table[i] = c;
	}
}

static uint32_t bench_crc32_table(const uint8_t *buf, uint64_t len)
{
	uint32_t c = 0xffffffffu;

	for (uint64_t i = 0; i < len; i++)
		c = bench_crc_table[(c ^ buf[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

uint32_t bench_crc32_bitwise(const uint8_t *buf, uint64_t len)
{
	uint32_t c = 0xffffffffu;

	for (uint64_t i = 0; i < len; i++) {
		c ^= buf[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return c ^ 0xffffffffu;
}

int bench_crc32(const uint8_t *buf, uint64_t len, unsigned reps, struct bench_time *t,
		uint32_t *crc)
{
	uint32_t first = 0;
	int bad = 0;

	bench_crc_init();
	uint64_t n0 = bench_now_ns(), c0 = rdtsc();
	for (unsigned r = 0; r < reps; r++) {
		uint32_t c = bench_crc32_table(buf, len);
		if (r == 0)
			first = c;
		bad |= c != first;
	}
	t->cycles = rdtsc() - c0;
	t->ns = bench_now_ns() - n0;
	t->iters = (uint64_t)reps * len;
	*crc = first;
	return bad ? -1 : 0;
}

int bench_fork_wait(uint64_t iters, struct bench_time *t)
{
	int bad = 0;
	uint64_t n0 = bench_now_ns(), c0 = rdtsc();

	for (uint64_t i = 0; i < iters; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		int status = -1;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
			bad = 1;
	}
	t->cycles = rdtsc() - c0;
	t->ns = bench_now_ns() - n0;
	t->iters = iters;
	return bad ? -1 : 0;
}

int bench_page_fault(uint64_t pages, struct bench_time *t)
{
	volatile uint8_t *p =
	    mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int bad = 0;

	if (p == MAP_FAILED)
		return -1;
	uint64_t n0 = bench_now_ns(), c0 = rdtsc();
	for (uint64_t i = 0; i < pages; i++)
		p[i * 4096] = (uint8_t)i;
	t->cycles = rdtsc() - c0;
	t->ns = bench_now_ns() - n0;
	t->iters = pages;
	for (uint64_t i = 0; i < pages; i++)
		bad |= p[i * 4096] != (uint8_t)i;
	munmap((void *)p, pages * 4096);
	return bad ? -1 : 0;
}
