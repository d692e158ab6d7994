/*
 * Relocatable user translations within a run (docs/user-mode.md, "Sharing
 * user translations across address spaces").  A store of templates
 * (pretrans/xlat/xlat_tmpl.h) of user blocks, keyed by the guest-physical
 * address their first byte had when translated: another process running
 * the same physical code page at another virtual address (a shared
 * library or an executable under ASLR) gets the block instantiated there
 * instead of translated, byte-identical to what the translator would make
 * (the template's claim), or nothing.
 *
 * Entry lifecycle:
 *   (none) --ureloc_add--> KEPT --ureloc_add at the same gpa--> replaced
 *   KEPT --over the budget, oldest first [ureloc_add]--> evicted
 *   KEPT --ureloc_find: bytes at va hash otherwise--> dropped (stale)
 *
 * Invariants
 *  1. An entry is found only by the exact guest-physical address (page and
 *     offset) of its block's first byte, so the guest virtual address it is
 *     instantiated at has the same page offset as the one it was made at
 *     (the shift is a multiple of the page size).
 *  2. Nothing is trusted from the store: ureloc_find reads the guest bytes at
 *     va now (through the caller's source: the same fetch, rights and
 *     faults as the translator), requires their hash to be the entry's and
 *     xlat_tmpl_instantiate() to accept them (equal outside the recorded
 *     fields, every value keeping its form); the block it returns is then
 *     what xlat_translate() gives for those bytes at va.  The caller
 *     installs it like a translation (pages write-watched, hash of the
 *     bytes it was made from), so nothing stale runs.
 *  3. The entries' bytes (struct ureloc_ent and its arrays, the arrays
 *     not for a borrowed entry) stay within the budget given at
 *     creation: adding evicts the oldest first.
 *  4. Pure data: no host effects, no guest memory access but the source.
 *  5. ureloc_pack packs at most the budget it is given (ureloc_pack.c).
 *  6. An entry of ureloc_add_ref reads its lender's memory, never writes
 *     it; the lender keeps it unchanged until ureloc_destroy.  Invariant
 *     3 counts the store's own allocations.
 */
#ifndef BT_RUNTIME_URELOC_URELOC_H
#define BT_RUNTIME_URELOC_URELOC_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/xlat.h"
#include "pretrans/xlat/xlat_tmpl.h"

#include <stddef.h>

struct ureloc;

struct ureloc_stats {
	uint64_t added;			      /* templates kept */
	uint64_t replaced;		      /* ... that replaced one at the same address */
	uint64_t evicted;		      /* dropped for the budget */
	uint64_t hits;			      /* blocks instantiated (ureloc_find true) */
	uint64_t none;			      /* misses with no template at the address */
	uint64_t stale;			      /* the bytes there hash otherwise now (dropped) */
	uint64_t unread;		      /* the bytes could not all be read at va */
	uint64_t refused[XLAT_NTMPL_RESULTS]; /* xlat_tmpl_instantiate said no */
	uint64_t entries, bytes;	      /* kept now */
};

/* budget: the most bytes entries may hold (invariant 3). */
enum bt_status ureloc_create(size_t budget, struct ureloc **out);
void ureloc_destroy(struct ureloc *u);

/* Keep template t of block b (xlat_translate_tmpl's pair) made at
 * guest-physical address gpa (of b->guest_start).  A template bigger than
 * the whole budget is not kept (BT_OK).  BT_ERR_NOMEM leaves the store as
 * it was. */
enum bt_status ureloc_add(struct ureloc *u, gpa_t gpa, const struct xlat_tmpl *t,
			  const struct bt_block *b);
/* ureloc_add without the copy: the entry points at t's guest bytes, host
 * code and relocation records and at b's pc map, which must stay as they
 * are until ureloc_destroy (invariant 6; the database's template pack,
 * which its binder holds for the whole run: runtime/vm/vm_udb.c).  Costs
 * the budget the entry's struct only. */
enum bt_status ureloc_add_ref(struct ureloc *u, gpa_t gpa, const struct xlat_tmpl *t,
			      const struct bt_block *b);

/* The block at va, whose first byte is at guest-physical address gpa now,
 * from the template made there (invariant 2): true with *out filled (its
 * code and pc map are the store's until the next ureloc_* call), or false
 * (the caller translates). */
bool ureloc_find(struct ureloc *u, gpa_t gpa, gva_t va, const struct xlat_source *src,
		 struct bt_block *out);

/* Every template kept, oldest first (the order they were made in): t made
 * at guest-physical address gpa, with its block's instruction count and pc
 * map (pointers valid during the call); cb returns non-zero to stop.  What
 * --learn stores in the database (docs/user-mode.md). */
typedef int (*ureloc_fn)(void *opaque, gpa_t gpa, const struct xlat_tmpl *t, uint32_t n_insns,
			 const uint8_t *pcmap, uint32_t pcmap_len);
void ureloc_foreach(struct ureloc *u, ureloc_fn cb, void *opaque);
const struct ureloc_stats *ureloc_stats(const struct ureloc *u);

/* The templates kept, for the database (ureloc_pack.c, which says how):
 * kmod/'s template pack and its fingerprint index, in malloc'd buffers, n
 * templates (0: none kept, no buffers), oldest first while the pack costs a
 * binder at most `budget` bytes (full: some did not fit). */
struct ureloc_pack {
	uint8_t *pack, *index;
	size_t pack_len, index_len, n;
	uint32_t nsecs;
	bool full;
};
enum bt_status ureloc_pack(struct ureloc *u, uint64_t budget, struct ureloc_pack *out);
void ureloc_pack_fini(struct ureloc_pack *p);

#endif
