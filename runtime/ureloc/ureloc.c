/*
 * The user template store (ureloc.h): a chained hash table on the
 * guest-physical address of a block's first byte, and a FIFO of the same
 * entries for the budget.  One allocation per entry: the struct, then its
 * relocation records, guest bytes, host code and pc map; or, for an entry
 * of ureloc_add_ref, the struct alone, pointing at the lender's.
 */
#include "runtime/ureloc/ureloc.h"

#include <stdlib.h>
#include <string.h>

#define URELOC_BUCKETS	 (1u << 16)
#define URELOC_MAX_GUEST 1024 /* XLAT_HARD_MAX_INSNS * 16 bytes */

struct ureloc_ent {
	struct ureloc_ent *next;	  /* hash chain */
	struct ureloc_ent *older, *newer; /* FIFO, oldest at u->oldest */
	gpa_t gpa;
	gva_t va; /* where it was translated */
	uint64_t guest_hash;
	size_t size; /* bytes of the allocation */
	uint32_t guest_len, n_insns, flags, code_len, pcmap_len, n_exits, n_relocs;
	struct bt_exit exits[XLAT_MAX_EXITS];
	/* into own[] (ureloc_add) or the lender's memory (ureloc_add_ref) */
	const struct xlat_reloc *relocs;
	const uint8_t *guest, *code, *pcmap;
	struct xlat_reloc own[]; /* ureloc_add: then guest, code, pcmap bytes */
};

struct ureloc {
	struct ureloc_ent *buckets[URELOC_BUCKETS];
	struct ureloc_ent *oldest, *newest;
	size_t budget;
	uint8_t *code; /* ureloc_find's output, code_cap bytes */
	size_t code_cap;
	struct ureloc_stats st;
};

/* The template of e (pointers into e or its lender). */
static void ent_tmpl(struct ureloc_ent *e, struct xlat_tmpl *t)
{
	*t = (struct xlat_tmpl){
	    .guest_start = e->va,
	    .guest_len = e->guest_len,
	    .flags = e->flags,
	    .guest = e->guest,
	    .code = e->code,
	    .code_len = e->code_len,
	    .exits = e->exits,
	    .n_exits = e->n_exits,
	    .relocs = e->relocs,
	    .n_relocs = e->n_relocs,
	};
}

static struct ureloc_ent **bucket(struct ureloc *u, gpa_t gpa)
{
	uint64_t h = gpa * 0x9e3779b97f4a7c15ull;
	return &u->buckets[h >> (64 - 16)];
}

enum bt_status ureloc_create(size_t budget, struct ureloc **out)
{
	if (!out)
		return BT_ERR_INVALID;
	struct ureloc *u = calloc(1, sizeof(*u));
	if (!u)
		return BT_ERR_NOMEM;
	u->budget = budget;
	*out = u;
	return BT_OK;
}

void ureloc_destroy(struct ureloc *u)
{
	if (!u)
		return;
	for (struct ureloc_ent *e = u->oldest, *n; e; e = n) {
		n = e->newer;
		free(e);
	}
	free(u->code);
	free(u);
}

/* Unlink e from its chain and the FIFO and free it. */
static void drop(struct ureloc *u, struct ureloc_ent *e)
{
	struct ureloc_ent **p = bucket(u, e->gpa);
	while (*p != e)
		p = &(*p)->next;
	*p = e->next;
	if (e->older)
		e->older->newer = e->newer;
	else
		u->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		u->newest = e->older;
	u->st.entries--;
	u->st.bytes -= e->size;
	free(e);
}

static struct ureloc_ent *lookup(struct ureloc *u, gpa_t gpa)
{
	struct ureloc_ent *e = *bucket(u, gpa);
	while (e && e->gpa != gpa)
		e = e->next;
	return e;
}

static enum bt_status add(struct ureloc *u, gpa_t gpa, const struct xlat_tmpl *t,
			  const struct bt_block *b, bool borrow)
{
	if (!u || !t || !b || t->guest_len != b->guest_len || t->code_len != b->code_len ||
	    t->n_exits > XLAT_MAX_EXITS)
		return BT_ERR_INVALID;
	if (t->guest_len > URELOC_MAX_GUEST)
		return BT_OK;
	size_t size = sizeof(struct ureloc_ent);
	if (!borrow)
		size += t->n_relocs * sizeof(struct xlat_reloc) + t->guest_len + t->code_len +
			b->pcmap_len;
	if (size > u->budget)
		return BT_OK;
	if (t->code_len > u->code_cap) {
		uint8_t *c = realloc(u->code, t->code_len);
		if (!c)
			return BT_ERR_NOMEM;
		u->code = c;
		u->code_cap = t->code_len;
	}
	struct ureloc_ent *e = malloc(size);
	if (!e)
		return BT_ERR_NOMEM;
	struct ureloc_ent *old = lookup(u, gpa);
	if (old) {
		drop(u, old);
		u->st.replaced++;
	}
	while (u->oldest && u->st.bytes + size > u->budget) {
		drop(u, u->oldest);
		u->st.evicted++;
	}
	memset(e, 0, sizeof(*e));
	e->gpa = gpa;
	e->va = t->guest_start;
	e->guest_hash = b->guest_hash;
	e->size = size;
	e->guest_len = t->guest_len;
	e->n_insns = b->n_insns;
	e->flags = b->flags;
	e->code_len = t->code_len;
	e->pcmap_len = b->pcmap_len;
	e->n_exits = t->n_exits;
	e->n_relocs = t->n_relocs;
	memcpy(e->exits, t->exits, t->n_exits * sizeof(*t->exits));
	if (borrow) {
		e->relocs = t->relocs;
		e->guest = t->guest;
		e->code = t->code;
		e->pcmap = b->pcmap;
	} else {
		uint8_t *guest = (uint8_t *)(e->own + t->n_relocs), *code = guest + t->guest_len,
			*pcmap = code + t->code_len;
		memcpy(e->own, t->relocs, t->n_relocs * sizeof(*t->relocs));
		memcpy(guest, t->guest, t->guest_len);
		memcpy(code, t->code, t->code_len);
		memcpy(pcmap, b->pcmap, b->pcmap_len);
		e->relocs = e->own;
		e->guest = guest;
		e->code = code;
		e->pcmap = pcmap;
	}
	struct ureloc_ent **p = bucket(u, gpa);
	e->next = *p;
	*p = e;
	e->older = u->newest;
	if (u->newest)
		u->newest->newer = e;
	else
		u->oldest = e;
	u->newest = e;
	u->st.added++;
	u->st.entries++;
	u->st.bytes += size;
	return BT_OK;
}

enum bt_status ureloc_add(struct ureloc *u, gpa_t gpa, const struct xlat_tmpl *t,
			  const struct bt_block *b)
{
	return add(u, gpa, t, b, false);
}

enum bt_status ureloc_add_ref(struct ureloc *u, gpa_t gpa, const struct xlat_tmpl *t,
			      const struct bt_block *b)
{
	return add(u, gpa, t, b, true);
}

bool ureloc_find(struct ureloc *u, gpa_t gpa, gva_t va, const struct xlat_source *src,
		 struct bt_block *out)
{
	struct ureloc_ent *e = lookup(u, gpa);
	if (!e) {
		u->st.none++;
		return false;
	}
	/* invariant 1: the same page offset */
	if (((va ^ gpa) & (GUEST_PAGE_SIZE - 1)) != 0) {
		u->st.none++;
		return false;
	}
	uint8_t g[URELOC_MAX_GUEST];
	if (src->read(src->opaque, va, g, e->guest_len) != e->guest_len) {
		u->st.unread++;
		return false;
	}
	if (xlat_hash_bytes(g, e->guest_len) != e->guest_hash) {
		u->st.stale++;
		drop(u, e); /* the page holds other code now */
		return false;
	}
	struct xlat_tmpl t;
	ent_tmpl(e, &t);
	memset(out, 0, sizeof(*out));
	enum xlat_tmpl_result r = xlat_tmpl_instantiate(&t, va, g, u->code, out->exits);
	if (r != XLAT_TMPL_OK) {
		u->st.refused[r < XLAT_NTMPL_RESULTS ? r : 0]++;
		return false;
	}
	out->guest_start = va;
	out->guest_len = e->guest_len;
	out->n_insns = e->n_insns;
	out->guest_hash = e->guest_hash;
	out->flags = e->flags;
	out->code = u->code;
	out->code_len = e->code_len;
	out->n_exits = e->n_exits;
	out->pcmap = e->pcmap;
	out->pcmap_len = e->pcmap_len;
	u->st.hits++;
	return true;
}

void ureloc_foreach(struct ureloc *u, ureloc_fn cb, void *opaque)
{
	for (struct ureloc_ent *e = u->oldest; e; e = e->newer) {
		struct xlat_tmpl t;
		ent_tmpl(e, &t);
		if (cb(opaque, e->gpa, &t, e->n_insns, e->pcmap, e->pcmap_len))
			return;
	}
}

const struct ureloc_stats *ureloc_stats(const struct ureloc *u)
{
	return &u->st;
}
