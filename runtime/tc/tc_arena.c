/*
 * The descriptor arena (tc_arena.h): a list of 2 MiB chunks, each 2 MiB
 * aligned so the host can back it with one transparent huge page.
 */
#include "runtime/tc/tc_arena.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK (2ull << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct tc_arena_chunk {
	struct tc_arena_chunk *next;
	size_t used; /* bytes of the chunk in use, this header included */
};

#define HDR ((sizeof(struct tc_arena_chunk) + 15) & ~(size_t)15)

static struct tc_arena_chunk *chunk_new(void)
{
	uint8_t *p =
	    mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint8_t *c = (uint8_t *)(((uintptr_t)p + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
	if (c > p)
		munmap(p, (size_t)(c - p));
	if (c + CHUNK < p + 2 * CHUNK)
		munmap(c + CHUNK, (size_t)(p + 2 * CHUNK - (c + CHUNK)));
	/* both only speed-ups: without them the pages fault in one by one */
	(void)madvise(c, CHUNK, MADV_HUGEPAGE);
	(void)madvise(c, CHUNK, MADV_POPULATE_WRITE);
	struct tc_arena_chunk *k = (struct tc_arena_chunk *)(void *)c;
	k->next = NULL;
	k->used = HDR;
	return k;
}

void *tc_arena_alloc(struct tc_arena *a, size_t len)
{
	if (len == 0 || len > TC_ARENA_MAX)
		return NULL;
	len = (len + 15) & ~(size_t)15;
	struct tc_arena_chunk *c = a->cur;
	if (!c || c->used + len > CHUNK) {
		struct tc_arena_chunk *n = c ? c->next : a->first;
		if (n) {
			n->used = HDR; /* kept from before the last reset */
		} else {
			if (!(n = chunk_new()))
				return NULL;
			if (c)
				c->next = n;
			else
				a->first = n;
		}
		a->cur = c = n;
	}
	uint8_t *p = (uint8_t *)c + c->used;
	c->used += len;
	a->bytes += len;
	memset(p, 0, len);
	return p;
}

void tc_arena_reset(struct tc_arena *a)
{
	a->cur = NULL;
	a->bytes = 0;
}

void tc_arena_destroy(struct tc_arena *a)
{
	struct tc_arena_chunk *c = a->first, *n;
	for (; c; c = n) {
		n = c->next;
		munmap(c, CHUNK);
	}
	a->first = a->cur = NULL;
	a->bytes = 0;
}
