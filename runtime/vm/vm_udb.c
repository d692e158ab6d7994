/*
 * Guest user code from the database (docs/user-mode.md, "Sharing user
 * translations across boots"): a --learn boot stores the user templates it
 * kept (runtime/ureloc) as one template pack with its fingerprint index,
 * in kmod/'s formats (kmod_pack_build, kmod_index_add); a later boot loads
 * the index at start and, on a user miss the in-run store does not answer,
 * finds a template by the bytes at RIP through kmod/'s binder (the pack
 * fetched, tag checked, on the first fingerprint match) and instantiates
 * it there.
 *
 * Why content, not addresses: guest-physical addresses change from boot to
 * boot, and virtual ones with ASLR; a template is keyed by what the
 * module binder keys it by (page offset, first byte, hash of its first
 * bytes outside the recorded fields).  How the store becomes one "module"
 * of 4 GiB-window sections, so that the binder's placements are programs'
 * slides, is runtime/ureloc/ureloc_pack.c.
 *
 * Why nothing stale or foreign runs (docs/kmod.md "Binding"'s argument):
 * xlat_tmpl_instantiate() refuses unless the bytes at RIP equal the
 * template's outside its recorded fields and every value keeps its form,
 * and what it returns is then what the translator makes of those bytes at
 * RIP; the block is installed like a translation (hashed over those bytes,
 * write-watched); --verify-db re-translates it and compares.  Host code
 * comes only from the template pack whose tag matched, only after the
 * index (tagged too) and the pack agree entry by entry.
 *
 * Invariants
 *  1. The pack written costs the binder at most VM_UDB_BUDGET bytes (raw
 *     pack plus what kmod_pack_parse allocates; ureloc_pack takes the
 *     templates oldest first until the next would not fit), the binder's
 *     budget here, so it never refuses the pack for size.
 *  2. Written only inside the learn transaction vm_learn opens (never
 *     when the database is untrusted or not this image's: vm_finish).
 *  3. A missing, malformed or untrusted index serves nothing; the VM runs.
 *  4. A template vm_udb_find returns, its guest bytes, code, relocation
 *     records and pc map, stay as they are until vm_udb_free, which runs
 *     after ureloc_destroy (vm.c): the in-run store keeps them by reference
 *     (ureloc_add_ref), not a copy.  The binder's one pack is never
 *     evicted: it is the only module (kmod_binder_open with 1) and fits
 *     the budget (invariant 1), and the binder frees nothing of a resident
 *     pack before kmod_binder_destroy.
 */
#include "kmod/kmod.h"
#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "runtime/vm/vm_int.h"

#include <stdlib.h>

/* The user templates a database keeps and a boot holds (invariant 1): the
 * whole pack is inflated on the first match, so this bounds what that
 * costs a warm boot and its memory.  Debian's busybox boot stores 3,145
 * templates (2.3 MB raw; fetched, tag-checked and inflated in ~3 ms into
 * malloc'd memory, parsed in ~0.9 ms, checked against the index in ~0.7
 * ms: docs/user-mode.md); a Debian 12 boot to a login made 97,700 (107
 * MB), of which the first ~30,000 fit. */
#define VM_UDB_BUDGET (32ull << 20)

static enum bt_status fetch(void *opaque, uint32_t mod, uint8_t **raw, size_t *len)
{
	struct vm *vm = opaque;
	uint64_t items;
	if (mod != 0)
		return BT_ERR_NOTFOUND;
	/* malloc'd, as the binder frees it: taken as it is, no copy */
	return tcdb_user_tmpl_get(vm->db, false, raw, len, &items);
}

enum bt_status vm_udb_load(struct vm *vm)
{
	uint8_t *raw;
	size_t len;
	uint64_t n;
	uint64_t t0 = bt_now_ns();
	enum bt_status s = tcdb_user_tmpl_get(vm->db, true, &raw, &len, &n);
	if (s == BT_ERR_AUTH || s == BT_ERR_NOTFOUND) /* untrusted (said), or none */
		return BT_OK;
	if (s != BT_OK)
		return s;
	size_t nfp = 0;
	s = kmod_binder_open(raw, len, 1, fetch, vm, VM_UDB_BUDGET, &vm->udb, &nfp);
	free(raw);
	if (s == BT_OK && nfp != n) { /* the pack's item count says otherwise */
		vm_udb_free(vm);
		s = BT_ERR_FORMAT;
	}
	if (s == BT_ERR_FORMAT)
		bt_warn(LOG_DB,
			"%s: the user-template index is malformed: user code is translated at "
			"run time; the next --learn boot writes a new one",
			vm->cfg.tcdb);
	if (s != BT_OK)
		return s == BT_ERR_FORMAT ? BT_OK : s;
	vm->udb_indexed = nfp;
	bt_info(LOG_DB, "%s: %zu user templates' fingerprints (%zu bytes) loaded in %.1f ms",
		vm->cfg.tcdb, nfp, len, (double)(bt_now_ns() - t0) / 1e6);
	return BT_OK;
}

void vm_udb_free(struct vm *vm)
{
	kmod_binder_destroy(vm->udb);
	vm->udb = NULL;
}

const struct xlat_tmpl *vm_udb_find(struct vm *vm, gva_t rip, const uint8_t *bytes, size_t got,
				    struct bt_block *xb)
{
	bool found = false;
	if (!vm->udb)
		return NULL;
	/* no neighbour test (src NULL): one "module", nothing to tell apart */
	enum bt_status s = kmod_binder_find(vm->udb, NULL, rip, bytes, got, xb, &found);
	if (s != BT_OK && s != BT_ERR_AUTH) /* AUTH: tcdb said it */
		bt_err(LOG_DB, "user templates at %#llx: %s", (unsigned long long)rip,
		       bt_status_str(s));
	if (s != BT_OK || !found)
		return NULL;
	return &kmod_binder_last(vm->udb)->t;
}

size_t vm_udb_indexed(const struct vm *vm)
{
	return vm->udb_indexed;
}

const struct kmod_bind_stats *vm_udb_stats(const struct vm *vm)
{
	return vm->udb ? kmod_binder_stats(vm->udb) : NULL;
}

enum bt_status vm_udb_write(struct vm *vm)
{
	struct ureloc_pack p;
	BT_TRY(ureloc_pack(vm->ureloc, VM_UDB_BUDGET, &p));
	enum bt_status s = BT_OK;
	if (p.n) /* none kept this boot: the previous pair stays */
		s = tcdb_user_tmpl_put(vm->db, p.pack, p.pack_len, p.index, p.index_len, p.n);
	if (s == BT_OK && p.n) {
		vm->st.user_stored = p.n;
		bt_info(LOG_DB,
			"%s: %zu user templates stored (%zu bytes, %u sections)%s; index %zu bytes",
			vm->cfg.tcdb, p.n, p.pack_len, p.nsecs,
			p.full ? ", the rest over the budget" : "", p.index_len);
	}
	ureloc_pack_fini(&p);
	return s;
}
