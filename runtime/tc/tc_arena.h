/*
 * A bump arena for the runtime's many small descriptors that live until a
 * flush (the code cache's blocks and pc maps): host memory taken 2 MiB at
 * a time, as transparent huge pages where the host allows them and
 * populated in one system call otherwise.
 *
 * Why: on this project's hosts (themselves VMs) a first touch of a 4 KiB
 * page costs 11-20 us; a warm Debian boot installs ~67,000 blocks, and
 * with malloc their ~30 MB of descriptors cost ~7,000 page faults
 * (docs/runtime.md "Getting code").  One huge page is one fault.
 *
 * Not thread-safe (one per code cache, used by the vCPU thread).
 */
#ifndef BT_RUNTIME_TC_TC_ARENA_H
#define BT_RUNTIME_TC_TC_ARENA_H

#include <stddef.h>

struct tc_arena_chunk;

struct tc_arena {
	struct tc_arena_chunk *first, *cur;
	size_t bytes; /* handed out since the last reset */
};

/* len bytes, zeroed, 16-byte aligned; NULL if the host has no memory.
 * len must be at most TC_ARENA_MAX. */
#define TC_ARENA_MAX (64u << 10)
void *tc_arena_alloc(struct tc_arena *a, size_t len);

/* Forget everything handed out (the memory is kept for reuse). */
void tc_arena_reset(struct tc_arena *a);

/* Give the memory back to the host. */
void tc_arena_destroy(struct tc_arena *a);

#endif
