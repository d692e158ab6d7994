/*
 * ulib string and memory functions.  Plain byte loops: the guest programs
 * are compiled -ffreestanding, and these must not call themselves (the
 * loops are marked so gcc does not turn them back into memcpy/memset calls).
 */
#include "guests/user/ulib/ulib.h"

#define ULIB_NO_LOOP_PATTERNS __attribute__((optimize("no-tree-loop-distribute-patterns")))

ULIB_NO_LOOP_PATTERNS void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n >= 8) {
		uint64_t v;
		__builtin_memcpy(&v, s, 8);
		__builtin_memcpy(d, &v, 8);
		d += 8;
		s += 8;
		n -= 8;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

ULIB_NO_LOOP_PATTERNS void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

char *getenv(const char *name)
{
	size_t n = strlen(name);

	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}
