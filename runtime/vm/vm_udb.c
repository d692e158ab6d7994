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
 * bytes outside the recorded fields).  The pack is one "module" whose
 * sections are 4 GiB windows of the virtual address space: a template's
 * offset is its address in its window (nominal: the window's base), and
 * templates at an address already taken (another program, or another
 * physical copy of the same code) go to the next section with that base.
 * So the binder's placements work as for modules: after one block of a
 * program is bound at a slide, its other blocks are tried at the same
 * slide first.
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
 *  1. The pack written holds at most VM_UDB_BUDGET bytes by the binder's
 *     measure (raw pack plus what kmod_pack_parse allocates), templates
 *     taken oldest first (the order the boot first ran them) until the
 *     next would not fit, so the binder never refuses it for size.
 *  2. Written only inside the learn transaction vm_learn opens (never
 *     when the database is untrusted or not this image's: vm_finish).
 *  3. A missing, malformed or untrusted index serves nothing; the VM runs.
 */
#include "kmod/kmod.h"
#include "pretrans/base/log.h"
#include "runtime/vm/vm_int.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The user templates a database keeps and a boot holds (invariant 1): the
 * whole pack is inflated on the first match, so this bounds what that
 * costs a warm boot (~10-20 ms for a full pack on this host) and its
 * memory.  Debian's busybox boot needs ~2,100 templates (~2.5 MB); a
 * Debian 12 boot to a login made 97,700 (107 MB), of which the first
 * ~30,000 fit. */
#define VM_UDB_BUDGET (32ull << 20)
#define WINDOW_BITS   32
#define MAX_SECTIONS  256 /* the index's u8 section */

static enum bt_status fetch(void *opaque, uint32_t mod, uint8_t **raw, size_t *len)
{
	struct vm *vm = opaque;
	uint8_t *p;
	size_t n;
	uint64_t items;
	if (mod != 0)
		return BT_ERR_NOTFOUND;
	BT_TRY(tcdb_user_tmpl_get(vm->db, false, &p, &n, &items));
	*raw = malloc(n ? n : 1); /* the binder frees with free() */
	if (*raw)
		memcpy(*raw, p, n);
	tcdb_module_index_free(p, n);
	if (!*raw)
		return BT_ERR_NOMEM;
	*len = n;
	return BT_OK;
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
	tcdb_module_index_free(raw, len);
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
				    struct xlat_block *xb)
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

/* ------------------------------------------------------------ writing */

struct ent {
	struct kmod_tmpl kt;
	gva_t va;
	uint32_t order; /* oldest first */
	uint32_t copy;	/* templates at the same va before this one */
};

struct collect {
	struct ent *e;
	size_t n, cap;
	uint64_t bytes; /* the binder's measure of the pack so far */
	bool full, nomem;
};

/* What one template adds to the pack and to its parse (kmod_index.c's
 * pack_cost, per template: the record, its kmod_tmpl, its exits and
 * relocation records). */
static uint64_t tmpl_cost(const struct xlat_tmpl *t, uint32_t pcmap_len)
{
	return 40 + t->guest_len + t->code_len + (uint64_t)t->n_exits * 20 + pcmap_len +
	       (uint64_t)t->n_relocs * XLAT_RELOC_BYTES + sizeof(struct kmod_tmpl) +
	       XLAT_MAX_EXITS * sizeof(struct xlat_exit) +
	       (uint64_t)t->n_relocs * sizeof(struct xlat_reloc);
}

static int collect_one(void *opaque, gpa_t gpa, const struct xlat_tmpl *t, uint32_t n_insns,
		       const uint8_t *pcmap, uint32_t pcmap_len)
{
	(void)gpa;
	struct collect *c = opaque;
	gva_t off = t->guest_start & ((1ull << WINDOW_BITS) - 1);
	if (off + t->guest_len > (1ull << WINDOW_BITS)) /* across a window: not kept */
		return 0;
	uint64_t cost = tmpl_cost(t, pcmap_len);
	/* the sections (at most MAX_SECTIONS of 80 bytes and their parse) and
	 * the parse's spare entries: 64 KiB of slack */
	if (c->bytes + cost > VM_UDB_BUDGET - (64u << 10)) {
		c->full = true;
		return 1;
	}
	if (!BT_VEC_RESERVE(c->e, c->cap, c->n + 1, 1024)) {
		c->nomem = true;
		return 1;
	}
	struct ent *e = &c->e[c->n];
	memset(e, 0, sizeof(*e));
	e->kt.t = *t;
	e->kt.n_insns = n_insns;
	e->kt.pcmap = pcmap;
	e->kt.pcmap_len = pcmap_len;
	e->va = t->guest_start;
	e->order = (uint32_t)c->n++;
	c->bytes += cost;
	return 0;
}

static int by_va(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	if (x->va != y->va)
		return x->va < y->va ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Section order: (copy, window), then offset in the window. */
static int by_section(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	gva_t wx = x->va >> WINDOW_BITS, wy = y->va >> WINDOW_BITS;
	if (x->copy != y->copy)
		return x->copy < y->copy ? -1 : 1;
	if (wx != wy)
		return wx < wy ? -1 : 1;
	return x->va < y->va ? -1 : x->va > y->va;
}

/* Sections of the sorted entries (and each entry's kt.sec); entries past
 * MAX_SECTIONS are dropped.  Returns the number of sections. */
static uint32_t sections(struct ent *e, size_t *n, struct kmod_pack_section *secs)
{
	uint32_t ns = 0, copy = 0;
	size_t kept = 0;
	for (size_t i = 0; i < *n; i++) {
		gva_t base = e[i].va & ~((1ull << WINDOW_BITS) - 1);
		if (ns == 0 || e[i].copy != copy || base != secs[ns - 1].nominal) {
			if (ns == MAX_SECTIONS)
				break; /* sorted by copy: the rest are later copies */
			copy = e[i].copy;
			secs[ns] = (struct kmod_pack_section){.nominal = base,
							      .size = 1ull << WINDOW_BITS};
			snprintf(secs[ns].name, sizeof(secs[ns].name), "user.%u", copy);
			ns++;
		}
		e[i].kt.sec = ns - 1;
		e[i].kt.offset = e[i].va - base;
		e[kept++] = e[i];
	}
	*n = kept;
	return ns;
}

enum bt_status vm_udb_write(struct vm *vm)
{
	struct collect c = {0};
	ureloc_foreach(vm->ureloc, collect_one, &c);
	if (c.nomem || c.n == 0) { /* none kept this boot: the previous pair stays */
		free(c.e);
		return c.nomem ? BT_ERR_NOMEM : BT_OK;
	}
	qsort(c.e, c.n, sizeof(*c.e), by_va);
	for (size_t i = 1; i < c.n; i++)
		if (c.e[i].va == c.e[i - 1].va)
			c.e[i].copy = c.e[i - 1].copy + 1;
	qsort(c.e, c.n, sizeof(*c.e), by_section);
	struct kmod_pack_section *secs = calloc(MAX_SECTIONS, sizeof(*secs));
	struct kmod_tmpl *kts = malloc((c.n ? c.n : 1) * sizeof(*kts));
	enum bt_status s = BT_ERR_NOMEM;
	uint8_t *pack = NULL, *index = NULL;
	size_t pack_len, index_len, n = c.n;
	struct kmod_index_writer w = {0};
	if (!secs || !kts)
		goto out;
	uint32_t ns = sections(c.e, &n, secs);
	for (size_t i = 0; i < n; i++)
		kts[i] = c.e[i].kt;
	if ((s = kmod_pack_build(secs, ns, kts, n, &pack, &pack_len)) != BT_OK ||
	    (s = kmod_index_add(&w, pack, pack_len)) != BT_OK ||
	    (s = kmod_index_finish(&w, &index, &index_len)) != BT_OK)
		goto out;
	s = tcdb_user_tmpl_put(vm->db, pack, pack_len, index, index_len, n);
	if (s == BT_OK) {
		vm->st.user_stored = n;
		bt_info(LOG_DB,
			"%s: %zu user templates stored (%zu bytes, %u sections)%s; index %zu bytes",
			vm->cfg.tcdb, n, pack_len, ns, c.full ? ", the rest over the budget" : "",
			index_len);
	}
out:
	kmod_index_writer_fini(&w);
	free(index);
	free(pack);
	free(kts);
	free(secs);
	free(c.e);
	return s;
}
