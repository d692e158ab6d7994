/*
 * stub_page: map, write and read back the lowest page a Linux process may
 * map by default (0x10000, where btvm's user stub kept its own code page),
 * the page where the stub's code page now starts (0x3ff000000000) and the
 * one it moves to when a guest takes that place (2 MiB below), in the
 * parent and, after fork, in a child writing the same pages
 * (copy-on-write).  After the first write (one byte) the rest of each page
 * is zero (the guest's page, never the stub's code), and every page keeps
 * what was written.
 */
#include "guests/user/ulib/utest.h"

#define LOW_PAGE   0x10000ul
#define MOVED_PAGE 0x3ff000000000ul
#define MOVED_NEXT (MOVED_PAGE - 0x200000ul)

static const uintptr_t pages[] = {LOW_PAGE, MOVED_PAGE, MOVED_NEXT};

/* Map page a, write one byte, check the rest is zero, fill it with a
 * pattern from seed. */
static int map_fill(uintptr_t a, unsigned seed)
{
	volatile unsigned char *p = mmap((void *)a, 4096, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	UT_CHECKF(p == (void *)a, "mmap(%#lx, MAP_FIXED) = %p", (unsigned long)a, (void *)p);
	if (p != (void *)a)
		return 0;
	p[8] = 0xa5;
	unsigned nonzero = p[8] != 0xa5;
	for (unsigned i = 0; i < 4096; i++)
		nonzero += i != 8 && p[i] != 0;
	UT_CHECKF(nonzero == 0, "fresh page %#lx has %u non-zero bytes", (unsigned long)a, nonzero);
	for (unsigned i = 0; i < 4096; i++)
		p[i] = (unsigned char)(seed + i * 7);
	return 1;
}

static unsigned mismatches(uintptr_t a, unsigned seed)
{
	const volatile unsigned char *p = (const volatile unsigned char *)a;
	unsigned bad = 0;
	for (unsigned i = 0; i < 4096; i++)
		bad += p[i] != (unsigned char)(seed + i * 7);
	return bad;
}

int main(void)
{
	for (unsigned k = 0; k < 3; k++)
		if (!map_fill(pages[k], 0x10 + k))
			return 1;
	for (unsigned k = 0; k < 3; k++)
		UT_CHECKF(mismatches(pages[k], 0x10 + k) == 0, "page %#lx lost its contents",
			  (unsigned long)pages[k]);

	pid_t pid = fork();
	if (pid == 0) {
		unsigned bad = 0;
		for (unsigned k = 0; k < 3; k++) {
			bad += mismatches(pages[k], 0x10 + k);
			for (unsigned i = 0; i < 4096; i++)
				((volatile unsigned char *)pages[k])[i] =
				    (unsigned char)(0x80 + k + i * 7);
			bad += mismatches(pages[k], 0x80 + k);
		}
		_exit(bad ? 1 : 0);
	}
	UT_CHECK(pid > 0);
	int st = -1;
	UT_CHECK(waitpid(pid, &st, 0) == pid);
	UT_CHECKF(st == 0, "child: status %#x", st);
	for (unsigned k = 0; k < 3; k++)
		UT_CHECKF(mismatches(pages[k], 0x10 + k) == 0,
			  "page %#lx changed under the child's writes", (unsigned long)pages[k]);
	for (unsigned k = 0; k < 3; k++)
		UT_CHECK(munmap((void *)pages[k], 4096) == 0);
	return UT_DONE();
}
