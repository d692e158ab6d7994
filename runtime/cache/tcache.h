/*
 * The code cache: translated blocks installed in executable host memory,
 * looked up by guest RIP, chained to each other, indexed by the guest
 * physical pages their bytes came from, and invalidated when those pages
 * are written.
 *
 * Block lifecycle (function for each transition):
 *
 *      (struct bt_block: translated or a database row's)
 *                 |  tcache_install
 *                 v
 *   +-------> INSTALLED  --tcache_chain-->  (exit i patched to target)
 *   |             |       (unchained when its target dies)
 *   |             |  tcache_invalidate_range / _page / _block
 *   |             v
 *   |           DEAD  (unchained both ways, out of the RIP hash, the page
 *   |             |    index and the IBL table; code kept until a flush)
 *   |             |  tcache_flush (also when code memory runs out)
 *   +-------------+--> freed
 *
 * Invariants
 *  1. A chained exit's rel32 points at the entry of a live block; every
 *     chained exit is on its target's incoming list, so killing a block
 *     restores every jump into it to the jumper's own exit stub first.
 *  2. A live block is on the page list of every guest-physical page its
 *     bytes span (one or two), and such pages carry GUESTMEM_PAGE_CODE, so
 *     a write to them reaches tcache_invalidate_range before it lands.
 *  3. The IBL table (vcpu_abi.ibl) only names live blocks.
 *  4. Host code is written through a separate RW view of the same memory;
 *     the executable view is never writable.
 *  5. User blocks (translated for CPL 3) and kernel blocks never meet: each
 *     has its own lookup (tcache_lookup: kernel; tcache_lookup_user: user,
 *     by guest virtual address AND the guest-physical page it maps to now,
 *     so every address space finds its own code at a shared address), its
 *     own IBL table (ibl / uibl), and chains only to its own kind.  A user
 *     block chains only to a block whose pages are among its own (same
 *     virtual and physical page): such a jump stays valid in any address
 *     space where the source is valid, so a CR3 load needs no unchaining,
 *     only the uibl table cleared (tcache_uibl_clear).
 *  6. A uibl entry matches only in the address space (tag) it was put in
 *     (vcpu_abi.h uibl_tag): clearing is a fresh tag, and a PCID keeps its
 *     tag while another runs, so its entries match again when the guest
 *     switches back keeping its TLB (tcache_uibl_switch), as the
 *     soft-MMU's TLB entries do (runtime/mmu/mmu_pcid.c).  Killing a block
 *     empties its entry whatever its tag.

 *  7. The preloaded region (tcache_preload) holds the bytes its owner
 *     wrote, except the rel32 of the chained exits of the live blocks
 *     installed in place there; at most one live block runs from a given
 *     address of it.  A flush restores those rel32 to their stubs, so the
 *     region is again what its owner wrote, and keeps it.
 */
#ifndef BT_RUNTIME_CACHE_TCACHE_H
#define BT_RUNTIME_CACHE_TCACHE_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/vcpu_abi.h"
#include "pretrans/xlat/xlat.h"

struct guestmem;

enum tcache_origin {
	TCACHE_FROM_RUNTIME = 0, /* translated on a miss */
	TCACHE_FROM_DB = 1,	 /* loaded from the translation database */
};

struct tcache_block;

/* One (block, exit) pair chained into a target: lives inside the source. */
struct tcache_link {
	struct tcache_block *from;
	struct tcache_block *to;
	struct tcache_link *prev, *next; /* on to->incoming */
};

struct tcache_block {
	struct tcache_block *hash_next;
	uint8_t origin; /* enum tcache_origin */
	uint8_t dead;
	uint8_t learned;  /* written back to the database already */
	uint8_t user;	  /* translated for CPL 3 (XLAT_OPT_USER), see below */
	uint8_t step;	  /* one instruction (XLAT_OPT_STEP): tcache_install_step */
	uint8_t in_place; /* runs from the preloaded region, pc map borrowed (invariant 7) */
	/* The block record as installed: blk.code is the executable entry
	 * (never written through: invariant 4), blk.pcmap the cache's copy
	 * (borrowed when in_place), blk.exits as translated (unchained: the
	 * code's rel32 say which are chained, out[] to what). */
	struct bt_block blk;
	gpa_t gpa[2]; /* guest pages of the bytes; gpa[1] == TCACHE_NO_PAGE if one */
	/* blk.n_exits of them, allocated with the descriptor */
	struct tcache_link *out; /* out[i].to != NULL: exit i chained */
	struct tcache_link *incoming;
	uint64_t execs;	    /* dispatcher entries (not chained ones) */
	uint64_t map_epoch; /* the runtime's mapping epoch when va->gpa was last checked */
	struct tcache_block *host_next; /* in_place: the region's host-address hash */
	/* page indexes: [0] guest-physical pages, [1] guest-virtual pages;
	 * pg[k][1] == TCACHE_NO_PAGE for a one-page block */
	uint64_t pg[2][2];
	struct tcache_block *pg_next[2][2];
};

#define TCACHE_NO_PAGE (~(gpa_t)0)

struct tcache_stats {
	uint64_t installed, from_db, from_runtime;
	uint64_t chains, unchains;
	uint64_t invalidations; /* blocks killed by writes or explicit requests */
	uint64_t page_invalidations;
	uint64_t flushes;
	uint64_t lookups, lookup_hits;
	uint64_t user_installed, user_chain_refused; /* user blocks; chains refused
						      * by invariant 5 */
	uint64_t uibl_tags; /* user IBL tags handed out (a fresh one: an empty table) */
	uint64_t uibl_kept; /* switches back to a PCID that found its tag kept */
	uint64_t code_bytes;
	uint64_t in_place; /* installed from the preloaded region, nothing copied */
};

struct tcache; /* opaque */

/* code_size: bytes of executable memory (rounded up to pages). gm may be
 * NULL (no page flags are maintained: unit tests). */
enum bt_status tcache_create(size_t code_size, struct guestmem *gm, struct vcpu_abi *abi,
			     struct tcache **out);
void tcache_destroy(struct tcache *tc);

/* On an empty cache: reserve its first len bytes for host code the caller
 * writes through *rw before any of it runs (a boot profile's code, in the
 * order a boot first uses it: docs/runtime.md "Getting code").  A kernel
 * block later installed with xb->code at a 16-byte aligned place of that
 * region is installed in place: its code is not copied and its pc map is
 * borrowed, so xb->pcmap must stay valid until tcache_destroy.  The
 * region stays across flushes (invariant 7).  BT_ERR_INVALID if blocks
 * were installed already; BT_ERR_NOMEM if it would fill the cache. */
enum bt_status tcache_preload(struct tcache *tc, size_t len, uint8_t **rw);

/* Install a translated block whose guest bytes live at gpa0 (and gpa1 for a
 * block spanning two pages, else TCACHE_NO_PAGE).  Copies code, exits and
 * pc map.  Replaces (kills) a live block with the same va.  Flushes the
 * whole cache first if code memory is exhausted (*out is then still valid).
 * Code inside the preloaded region is used in place (tcache_preload).
 */
enum bt_status tcache_install(struct tcache *tc, const struct bt_block *xb, gpa_t gpa0, gpa_t gpa1,
			      enum tcache_origin origin, struct tcache_block **out);

/* The same for a user block (invariant 5): translated for CPL 3 from the
 * bytes at va, whose first byte is on guest-physical page gpa0 now.  A
 * live user block with the same va and pages is replaced. */
enum bt_status tcache_install_user(struct tcache *tc, const struct bt_block *xb, gpa_t gpa0,
				   gpa_t gpa1, struct tcache_block **out);
/* The same for a one-instruction block (XLAT_OPT_STEP), user or kernel:
 * it lives beside the ordinary block at va, is found only by
 * tcache_lookup_step (user) or not at all (kernel: the runtime runs it
 * once and kills it), never enters an IBL table and never chains, so
 * nothing but the runtime's stepping loop runs it. */
enum bt_status tcache_install_step(struct tcache *tc, const struct bt_block *xb, gpa_t gpa0,
				   gpa_t gpa1, bool user, struct tcache_block **out);

/* Live kernel block starting at va, or NULL. */
struct tcache_block *tcache_lookup(struct tcache *tc, gva_t va);
/* Live user block starting at va whose first page is gpa0 (any address in
 * it), or NULL.  The caller checks gpa[1] of a two-page block. */
struct tcache_block *tcache_lookup_user(struct tcache *tc, gva_t va, gpa_t gpa0);
struct tcache_block *tcache_lookup_step(struct tcache *tc, gva_t va, gpa_t gpa0);

/* Block whose host code contains host address pc (live or dead), or NULL. */
struct tcache_block *tcache_find_host(struct tcache *tc, const void *pc);

/* Chain exit `exit` of `from` to `to` (both live, exit chainable). */
enum bt_status tcache_chain(struct tcache *tc, struct tcache_block *from, unsigned exit,
			    struct tcache_block *to);
/* Put block into its IBL table (indirect branches and returns find it). */
void tcache_ibl_insert(struct tcache *tc, struct tcache_block *b);
/* Empty the user IBL table (a CR3 load: another address space). */
void tcache_uibl_clear(struct tcache *tc);
/* Drop the user IBL entries of blocks with bytes in [lo, hi) (an invlpg). */
void tcache_uibl_drop(struct tcache *tc, gva_t lo, gva_t hi);
/* A CR3 load changed the PCID (mmu MMU_FLUSH_PCID): `old_pcid` keeps its
 * tag, and `new_pcid` gets its own back if `kept` (the soft-MMU kept its
 * TLB entries too), else a fresh one. */
void tcache_uibl_switch(struct tcache *tc, unsigned old_pcid, unsigned new_pcid, bool kept);
/* Forget every PCID's user IBL entries (a fresh tag for the current one). */
void tcache_uibl_forget(struct tcache *tc);
/* Code mappings may have changed: page_gpa gives the guest-physical page
 * each guest-virtual page of kernel code maps to now (~0: not executable),
 * asked once per page, and the kernel blocks made from another page die
 * (user blocks are left alone: invariant 5).  A page whose blocks all came
 * from the page it still maps to costs one call and nothing else; the
 * survivors are still checked once more when the dispatcher next reaches
 * them (map_epoch).  Returns how many blocks were killed. */
size_t tcache_revalidate_pages(struct tcache *tc, gpa_t (*page_gpa)(void *opaque, gva_t page),
			       void *opaque);

/* Kill every block whose guest bytes meet [gpa, gpa + len), a range inside
 * one guest-physical page (a write about to land).  Blocks elsewhere on
 * the page live on, and the page stays write-watched while any does.
 * Returns how many blocks were killed. */
unsigned tcache_invalidate_range(struct tcache *tc, gpa_t gpa, size_t len);
/* The same for the whole page holding gpa. */
unsigned tcache_invalidate_page(struct tcache *tc, gpa_t gpa);
void tcache_invalidate_block(struct tcache *tc, struct tcache_block *b);
/* Kill every kernel block whose bytes lie at guest-virtual [lo, hi) (a
 * mapping changed under them).  Returns how many were killed.  User blocks
 * stay: they are checked against the mapping when entered (invariant 5). */
unsigned tcache_invalidate_va(struct tcache *tc, gva_t lo, gva_t hi);
/* Live kernel blocks in the lower (user) half of the address space. */
uint64_t tcache_live_low(const struct tcache *tc);
/* Drop everything. */
void tcache_flush(struct tcache *tc);
/* Changes at every flush: block pointers from before are dangling. */
uint64_t tcache_generation(const struct tcache *tc);

/* Iterate live blocks (for --learn write-back). */
/* Write a line per installed block to fd (perf's /tmp/perf-PID.map format:
 * host start, length, "btvm:k:VA" or "btvm:u:VA"), -1: stop.  The caller
 * owns fd. */
void tcache_set_perf_map(struct tcache *tc, int fd);

void tcache_for_each(struct tcache *tc, void (*fn)(void *opaque, struct tcache_block *b),
		     void *opaque);

void tcache_get_stats(const struct tcache *tc, struct tcache_stats *out);

#endif
