/*
 * Real gcc-compiled functions for the differential test: translated from
 * their own bytes in this binary (section xlat_funcs) and run against the
 * native call.  Loops, a jump table, recursion, table lookups, division.
 */
#include "tests/xlat/funcs.h"

#define FN	  __attribute__((section("xlat_funcs"), noinline, used))
#define NOLIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))

static uint32_t crc_table[256];

FN NOLIBCALL void xf_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

FN uint64_t xf_crc32(const uint8_t *p, uint64_t n)
{
	uint32_t c = 0xffffffffu;
	for (uint64_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

FN NOLIBCALL uint64_t xf_isort(int64_t *a, uint64_t n)
{
	for (uint64_t i = 1; i < n; i++) {
		int64_t v = a[i];
		uint64_t j = i;
		while (j > 0 && a[j - 1] > v) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = v;
	}
	return n ? (uint64_t)a[0] : 0;
}

FN NOLIBCALL uint64_t xf_copy(uint8_t *d, const uint8_t *s, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		d[i] = (uint8_t)(s[i] ^ 0x5a);
	return n;
}

FN uint64_t xf_switch(uint64_t x, uint64_t y)
{
	switch (x % 12) {
	case 0:
		return y + 1;
	case 1:
		return y * 3;
	case 2:
		return y ^ 0x1234;
	case 3:
		return y >> 3;
	case 4:
		return y - 77;
	case 5:
		return ~y;
	case 6:
		return y * y;
	case 7:
		return y / 7;
	case 8:
		return y % 1000;
	case 9:
		return y << 5;
	case 10:
		return (y & 0xff) | 0x100;
	default:
		return 42;
	}
}

FN uint64_t xf_fib(uint64_t n)
{
	return n < 2 ? n : xf_fib(n - 1) + xf_fib(n - 2);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Calls through a function pointer (indirect call + ret through the IBL). */
FN uint64_t xf_apply(int64_t *a, uint64_t n, int (*cmp)(const void *, const void *))
{
	uint64_t inversions = 0;
	for (uint64_t i = 0; i + 1 < n; i++)
		if (cmp(&a[i], &a[i + 1]) > 0)
			inversions++;
	return inversions;
}

FN int xf_cmp(const void *a, const void *b)
{
	return cmp_i64(a, b);
}

FN uint64_t xf_divmix(uint64_t a, uint64_t b)
{
	uint64_t r = 0;
	for (uint64_t i = 1; i < 50; i++) {
		r += a / (b | i) + (uint64_t)((int64_t)a % (int64_t)(i * 3 + 1));
		a = a * 6364136223846793005ull + 1442695040888963407ull;
	}
	return r;
}
