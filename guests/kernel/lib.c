/*
 * Freestanding string and memory helpers (gcc may also emit calls to
 * memcpy/memset/memmove/memcmp itself, so these names are required).
 */
#include "guests/kernel/kernel.h"

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return d;
}

char *strncpy_z(char *d, const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return d;
	for (; i + 1 < n && s[i]; i++)
		d[i] = s[i];
	d[i] = 0;
	return d;
}
