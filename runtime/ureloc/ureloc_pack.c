/*
 * The user template store (ureloc.h) as the database keeps it across boots
 * (ureloc_pack; docs/user-mode.md "Sharing user translations across
 * boots"): kmod/'s template pack (kmod_pack_build) and fingerprint index
 * (kmod_index_add) of the templates kept, one "module" whose sections are
 * 4 GiB windows of the guest's virtual address space.  A template's offset
 * is its address in its window (the section's nominal address is the
 * window's base), so a binder's placement (docs/kmod.md "Binding") is a
 * program's slide; templates at an address already taken (another program,
 * or another physical copy of the same code) go to the next section with
 * that base ("copy" k: section name user.k).
 *
 * Invariants
 *  1. Templates are taken oldest first (the order the run first made them)
 *     while the pack's cost by the binder's measure (its raw bytes plus what
 *     kmod_pack_parse allocates, kmod_index.c's pack_cost) stays within the
 *     budget: a binder given that budget never refuses the pack for size.
 *  2. At most MAX_SECTIONS sections (the index's u8); a template of a later
 *     copy, or one across a window's end, is left out.
 */
#include "kmod/kmod.h"
#include "pretrans/base/vec.h"
#include "runtime/ureloc/ureloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_BITS  32
#define MAX_SECTIONS 256
/* the header, the sections (80 bytes each and their parse) and the parse's
 * spare exit and relocation entries */
#define PACK_SLACK (64u << 10)

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
	uint64_t budget;
	bool full, nomem;
};

/* What one template adds to the pack and to its parse (kmod_index.c's
 * pack_cost, per template: the record, its kmod_tmpl, its exits and
 * relocation records). */
static uint64_t tmpl_cost(const struct xlat_tmpl *t, uint32_t pcmap_len)
{
	return 40 + t->guest_len + t->code_len + (uint64_t)t->n_exits * 20 + pcmap_len +
	       (uint64_t)t->n_relocs * XLAT_RELOC_BYTES + sizeof(struct kmod_tmpl) +
	       XLAT_MAX_EXITS * sizeof(struct bt_exit) +
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
	if (c->bytes + cost + PACK_SLACK > c->budget) {
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

enum bt_status ureloc_pack(struct ureloc *u, uint64_t budget, struct ureloc_pack *out)
{
	memset(out, 0, sizeof(*out));
	struct collect c = {.budget = budget};
	ureloc_foreach(u, collect_one, &c);
	out->full = c.full;
	if (c.nomem || c.n == 0) {
		free(c.e);
		return c.nomem ? BT_ERR_NOMEM : BT_OK;
	}
	qsort(c.e, c.n, sizeof(*c.e), by_va);
	for (size_t i = 1; i < c.n; i++)
		if (c.e[i].va == c.e[i - 1].va)
			c.e[i].copy = c.e[i - 1].copy + 1;
	qsort(c.e, c.n, sizeof(*c.e), by_section);
	struct kmod_pack_section *secs = calloc(MAX_SECTIONS, sizeof(*secs));
	struct kmod_tmpl *kts = malloc(c.n * sizeof(*kts));
	struct kmod_index_writer w = {0};
	enum bt_status s = BT_ERR_NOMEM;
	size_t n = c.n;
	if (!secs || !kts)
		goto out;
	out->nsecs = sections(c.e, &n, secs);
	for (size_t i = 0; i < n; i++)
		kts[i] = c.e[i].kt;
	if ((s = kmod_pack_build(secs, out->nsecs, kts, n, &out->pack, &out->pack_len)) != BT_OK ||
	    (s = kmod_index_add(&w, out->pack, out->pack_len)) != BT_OK ||
	    (s = kmod_index_finish(&w, &out->index, &out->index_len)) != BT_OK)
		goto out;
	out->n = n;
out:
	kmod_index_writer_fini(&w);
	free(kts);
	free(secs);
	free(c.e);
	if (s != BT_OK)
		ureloc_pack_fini(out);
	return s;
}

void ureloc_pack_fini(struct ureloc_pack *p)
{
	free(p->pack);
	free(p->index);
	memset(p, 0, sizeof(*p));
}
