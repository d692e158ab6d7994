/*
 * Synthetic "kernel" for the pretrans diff tests, part A.  Built three
 * times by guests/diffpair/module.mk:
 *   base    as is
 *   change  -DDP_CHANGE: checksum() changes, old_func() is removed,
 *           new_func() is added, util_name() is renamed util_renamed()
 *   shift   as base, linked after pad.S (text, rodata and data padding):
 *           a pure layout shift, every address moves
 * Every function is noinline and exported or referenced, so the compiler
 * keeps one symbol per function in every variant.
 */
#include "guests/diffpair/diffpair.h"

char dp_log[256];
unsigned long dp_log_len;
const unsigned dp_table[8] = {3, 1, 4, 1, 5, 9, 2, 6};

/* Same name as the static helper() in diffpair_b.c. */
static NOINLINE int helper(int x)
{
	return x * 3 + 1;
}

NOINLINE int add3(int a, int b, int c)
{
	return a + b + c;
}

NOINLINE void log_msg(const char *s)
{
	while (*s && dp_log_len < sizeof(dp_log) - 1)
		dp_log[dp_log_len++] = *s++;
	dp_log[dp_log_len] = 0;
}

NOINLINE unsigned checksum(const unsigned char *p, unsigned long n)
{
	unsigned h = 0;
	for (unsigned long i = 0; i < n; i++)
#ifdef DP_CHANGE
		h = h * 33 + p[i] + 7;
#else
		h = h * 31 + p[i];
#endif
	return h;
}

NOINLINE int classify(int v)
{
	switch (v) {
	case 0:
		log_msg("zero");
		return 10;
	case 1:
		log_msg("one");
		return 11;
	case 2:
		return helper(v) + 12;
	case 3:
		log_msg("three");
		return 13;
	case 4:
		return add3(v, v, 14);
	case 5:
		log_msg("five");
		return 15;
	case 6:
		return 16 + (int)dp_table[v];
	case 7:
		log_msg("seven");
		return 17;
	default:
		return -1;
	}
}

NOINLINE unsigned long fib(unsigned n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

#ifndef DP_CHANGE
NOINLINE int old_func(int x)
{
	return x ^ 0x5a5a;
}
#else
NOINLINE int new_func(int x, int y)
{
	return x * y - 0x1234;
}
#endif

#ifndef DP_CHANGE
NOINLINE int util_name(int x)
#else
NOINLINE int util_renamed(int x)
#endif
{
	int r = 0;
	for (int i = 0; i < x; i++)
		r += (int)dp_table[i & 7] * i;
	return r;
}

NOINLINE unsigned long start(void)
{
	log_msg("diffpair start\n");
	unsigned long r = (unsigned long)classify(helper(1));
	r += checksum((const unsigned char *)dp_log, dp_log_len);
	r += fib(10) + (unsigned long)b_entry(3);
	return r;
}
