/*
 * munmap: after munmap, touching the page is an unresolvable #PF: a child
 * that does it is killed with SIGSEGV and the parent sees that in wait4.
 * Neighbouring pages stay mapped with their contents.
 */
#include "guests/user/ulib/utest.h"

static volatile unsigned char *g_page;

static void touch_unmapped(void)
{
	g_page[4096] = 1;
}

static void read_unmapped(void)
{
	(void)g_page[4096 + 17];
}

int main(void)
{
	unsigned char *p =
	    mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(p != MAP_FAILED);
	if (p == MAP_FAILED)
		return 1;
	for (int i = 0; i < 4; i++)
		p[i * 4096] = (unsigned char)(0x10 + i);
	UT_CHECK(munmap(p + 4096, 4096) == 0);
	g_page = p;

	int st = ut_run_child(touch_unmapped);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "write to unmapped page: status %#x", st);
	st = ut_run_child(read_unmapped);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "read of unmapped page: status %#x", st);

	UT_CHECK(p[0] == 0x10 && p[2 * 4096] == 0x12 && p[3 * 4096] == 0x13);
	/* unmapping after the page was touched in the parent too */
	UT_CHECK(munmap(p + 3 * 4096, 4096) == 0);
	g_page = p + 2 * 4096;
	st = ut_run_child(read_unmapped);
	UT_CHECKF(st != -1 && WTERMSIG(st) == SIGSEGV, "read of unmapped page: status %#x", st);
	UT_CHECK(p[2 * 4096] == 0x12);
	return UT_DONE();
}
