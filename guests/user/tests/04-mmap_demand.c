/*
 * mmap_demand: a large anonymous mapping is demand-zeroed.  Touch sparse
 * pages (first read sees zero), write a pattern, verify it; a second
 * mapping does not overlap; MAP_FIXED at a hint; the fault path must not
 * hand out stale or shared pages.
 */
#include "guests/user/ulib/utest.h"

#define BIG (64ul << 20)

int main(void)
{
	unsigned char *p =
	    mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(p != MAP_FAILED);
	if (p == MAP_FAILED)
		return 1;
	UT_CHECKF(((uintptr_t)p & 4095) == 0, "mmap returned %p", (void *)p);

	unsigned long touched = 0;
	for (unsigned long off = 0; off < BIG; off += 97 * 4096 + 136) {
		UT_CHECKF(p[off] == 0, "byte at +%#lx not zero", off);
		p[off] = (unsigned char)(off >> 12);
		touched++;
	}
	for (unsigned long off = 0; off < BIG; off += 97 * 4096 + 136)
		UT_CHECKF(p[off] == (unsigned char)(off >> 12), "byte at +%#lx lost", off);
	/* bytes next to touched ones on the same page are still zero */
	UT_CHECK(p[1] == 0 && p[4095] == 0);
	/* last page of the mapping */
	UT_CHECK(p[BIG - 1] == 0);
	p[BIG - 1] = 0x5a;
	UT_CHECK(p[BIG - 1] == 0x5a);
	UT_CHECK(touched > 100);

	unsigned char *q =
	    mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(q != MAP_FAILED);
	UT_CHECK(q + (1 << 16) <= p || q >= p + BIG);
	for (int i = 0; i < (1 << 16); i += 4096)
		UT_CHECK(q[i] == 0);

	/* MAP_FIXED at an address we choose */
	unsigned char *want = (unsigned char *)0x200000000ul;
	unsigned char *f = mmap(want, 8192, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	UT_CHECKF(f == want, "MAP_FIXED returned %p", (void *)f);
	if (f == want) {
		UT_CHECK(f[0] == 0 && f[8191] == 0);
		f[4096] = 7;
		UT_CHECK(f[4096] == 7);
	}

	/* a length of zero is refused */
	UT_CHECK(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
	UT_CHECK(munmap(p, BIG) == 0);
	return UT_DONE();
}
