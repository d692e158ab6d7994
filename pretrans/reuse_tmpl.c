/*
 * Block templates of a build, and --reuse of moved functions through them
 * (reuse.h, docs/diff.md "Reusing moved functions").
 *
 * Every build records, for each block the walk translates, the template
 * xlat_translate_tmpl() describes (none for a block whose end depends on
 * the instruction after it): its relocation records and the hash of its
 * guest bytes with the recorded fields zeroed ("masked hash").  They are
 * stored as one pack, sorted by start:
 *
 *   "RTP1" u32 0 u64 n
 *   n x { u64 start, u64 masked hash, u32 n_relocs, n_relocs records
 *         (XLAT_RELOC_BYTES each, xlat_relocs_encode) }      starts ascending
 *
 * A --reuse build that finds no block of OLD at a start va (or other bytes
 * there) looks at the NEW function holding va: when reuse_map_functions()
 * paired it with an OLD function at another address, the OLD block at the
 * same offset in that function is a candidate.  It is used when
 *   1. OLD has a template for it (its records pass xlat_tmpl_check),
 *   2. NEW's bytes over the block's length, the recorded fields zeroed,
 *      hash to OLD's masked hash (the 64-bit hash the same-address reuse and
 *      the runtime already trust for a block's bytes), so they equal OLD's
 *      bytes outside the recorded fields, and
 *   3. xlat_tmpl_instantiate() at va succeeds (no FORM or PAGE refusal);
 * its claim then makes the block what xlat_translate() gives at va for those
 * bytes.  The block's template is OLD's (records depend on the bytes outside
 * the fields and on the value classes, both checked equal), so the template
 * pack written is the full build's too.
 *
 * Invariants
 *  1. A worker's entries are those of the blocks its walker kept, in walk
 *     order; the writer appends them in region order; reuse_tmpls_write
 *     keeps the first of one start (tcdb_add_block keeps the first row).
 *  2. OLD's pack is untrusted input: every entry is bounds-checked when
 *     parsed, every template with xlat_tmpl_check() before use.
 */
#include "pretrans/reuse_int.h"

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"
#include "pretrans/discover.h"
#include "pretrans/xlat/xlat_tmpl.h"

#include <stdlib.h>
#include <string.h>

#define TPACK_MAGIC "RTP1"
#define TPACK_HDR   16
#define TPACK_ENT   20 /* u64 start, u64 masked hash, u32 n_relocs */
#define GUEST_MAX   4096

/* ---------------------------------------------------------------- entries */

void reuse_tmpls_fini(struct reuse_tmpls *t)
{
	free(t->e);
	free(t->data);
	*t = (struct reuse_tmpls){0};
}

static enum bt_status tmpls_add(struct reuse_tmpls *t, gva_t start, uint64_t masked_hash,
				const uint8_t *recs, uint32_t n_relocs)
{
	size_t bytes = (size_t)n_relocs * XLAT_RELOC_BYTES;
	if (!BT_VEC_RESERVE(t->e, t->cap, t->n + 1, 256) ||
	    !BT_VEC_RESERVE(t->data, t->cap_data, t->len + bytes, 16384))
		return BT_ERR_NOMEM;
	t->e[t->n] = (struct reuse_tmpl_ent){.start = start,
					     .masked_hash = masked_hash,
					     .rec_off = (uint32_t)t->len,
					     .n_relocs = n_relocs,
					     .seq = t->n};
	if (bytes)
		memcpy(t->data + t->len, recs, bytes);
	t->len += bytes;
	t->n++;
	return BT_OK;
}

enum bt_status reuse_tmpls_move(struct reuse_tmpls *dst, struct reuse_tmpls *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct reuse_tmpl_ent *e = &src->e[i];
		if (dst->len + (size_t)e->n_relocs * XLAT_RELOC_BYTES > UINT32_MAX)
			return BT_ERR_RANGE;
		BT_TRY(tmpls_add(dst, e->start, e->masked_hash, src->data + e->rec_off,
				 e->n_relocs));
	}
	src->n = src->len = 0;
	return BT_OK;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct reuse_tmpl_ent *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

enum bt_status reuse_tmpls_write(struct reuse_tmpls *t, struct tcdb *db, size_t *bytes)
{
	qsort(t->e, t->n, sizeof(*t->e), ent_cmp);
	size_t n = 0, len = TPACK_HDR;
	for (size_t i = 0; i < t->n; i++)
		if (!i || t->e[i].start != t->e[i - 1].start) {
			len += TPACK_ENT + (size_t)t->e[i].n_relocs * XLAT_RELOC_BYTES;
			n++;
		}
	uint8_t *raw = malloc(len), *p = raw;
	if (!raw)
		return BT_ERR_NOMEM;
	memcpy(p, TPACK_MAGIC, 4);
	bt_put32(p + 4, 0);
	bt_put64(p + 8, n);
	p += TPACK_HDR;
	for (size_t i = 0; i < t->n; i++) {
		const struct reuse_tmpl_ent *e = &t->e[i];
		if (i && e->start == t->e[i - 1].start)
			continue;
		bt_put64(p, e->start);
		bt_put64(p + 8, e->masked_hash);
		bt_put32(p + 16, e->n_relocs);
		p += TPACK_ENT;
		memcpy(p, t->data + e->rec_off, (size_t)e->n_relocs * XLAT_RELOC_BYTES);
		p += (size_t)e->n_relocs * XLAT_RELOC_BYTES;
	}
	enum bt_status s = tcdb_templates_put(db, raw, len, n);
	free(raw);
	*bytes = len;
	return s;
}

/* ---------------------------------------------------------------- OLD's pack */

void reuse_tmpl_free(struct reuse *r)
{
	free(r->t);
	free(r->fm);
	tcdb_module_index_free(r->tpack, r->tpack_len);
	r->t = NULL;
	r->fm = NULL;
	r->tpack = NULL;
}

enum bt_status reuse_tmpl_load(struct reuse *r, const char *path)
{
	uint64_t n;
	enum bt_status s = tcdb_templates_get(r->db, &r->tpack, &r->tpack_len, &n);
	if (s == BT_ERR_NOTFOUND) {
		bt_err(LOG_CORE,
		       "--reuse %s: the database has no block templates (written by an earlier "
		       "pretrans, or re-signed): a build from it could not store the templates "
		       "a full build stores; build without --reuse once",
		       path);
		return BT_ERR_VERSION;
	}
	if (s != BT_OK)
		return s;
	const uint8_t *p = r->tpack, *end = r->tpack + r->tpack_len;
	if (r->tpack_len < TPACK_HDR || memcmp(p, TPACK_MAGIC, 4) || bt_get64(p + 8) != n ||
	    n > r->tpack_len / TPACK_ENT)
		goto bad;
	r->t = calloc(n ? n : 1, sizeof(*r->t));
	if (!r->t)
		return BT_ERR_NOMEM;
	p += TPACK_HDR;
	for (uint64_t i = 0; i < n; i++) {
		if ((size_t)(end - p) < TPACK_ENT)
			goto bad;
		struct reuse_old_tmpl *t = &r->t[i];
		t->start = bt_get64(p);
		t->masked_hash = bt_get64(p + 8);
		t->n_relocs = bt_get32(p + 16);
		p += TPACK_ENT;
		if (t->n_relocs > XLAT_TMPL_MAX_RELOCS ||
		    (size_t)(end - p) < (size_t)t->n_relocs * XLAT_RELOC_BYTES ||
		    (i && t->start <= r->t[i - 1].start))
			goto bad;
		t->recs = p;
		p += (size_t)t->n_relocs * XLAT_RELOC_BYTES;
	}
	if (p != end)
		goto bad;
	r->n_t = n;
	return BT_OK;
bad:
	bt_err(LOG_DB, "--reuse %s: its block-template pack is malformed; build without --reuse",
	       path);
	return BT_ERR_FORMAT;
}

static const struct reuse_old_tmpl *tmpl_find(const struct reuse *r, gva_t va)
{
	size_t lo = 0, hi = r->n_t;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->t[mid].start < va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n_t && r->t[lo].start == va ? &r->t[lo] : NULL;
}

/* ---------------------------------------------------------------- functions */

struct fn {
	const char *name;
	gva_t addr;
	uint64_t size;
};

struct fn_list {
	struct fn *f;
	size_t n, cap;
	char **names; /* OLD's names, owned */
	size_t n_names, cap_names;
	enum bt_status s;
};

static int fn_cmp(const void *a, const void *b)
{
	const struct fn *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int old_fn(void *opaque, const struct tcdb_function *f)
{
	struct fn_list *l = opaque;
	if (f->kind != DISCOVER_FUNC || !f->name[0])
		return 0;
	char *name = strdup(f->name);
	if (!name || !BT_VEC_RESERVE(l->f, l->cap, l->n + 1, 1024) ||
	    !BT_VEC_RESERVE(l->names, l->cap_names, l->n_names + 1, 1024)) {
		free(name);
		l->s = BT_ERR_NOMEM;
		return 1;
	}
	l->names[l->n_names++] = name;
	l->f[l->n++] = (struct fn){.name = name, .addr = f->address, .size = f->size};
	return 0;
}

static int fmap_cmp(const void *a, const void *b)
{
	const struct reuse_fmap *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The one entry of g[0, n) with this size, or NULL (none or several). */
static const struct fn *unique_size(const struct fn *g, size_t n, uint64_t size)
{
	const struct fn *hit = NULL;
	for (size_t i = 0; i < n; i++)
		if (g[i].size == size) {
			if (hit)
				return NULL;
			hit = &g[i];
		}
	return hit;
}

/* Pair one name's functions: by rank when both sides have as many, else
 * those whose size is unique on both sides. */
static enum bt_status pair_group(struct reuse *r, size_t *cap, const struct fn *o, size_t no,
				 const struct fn *nw, size_t nn)
{
	for (size_t i = 0; i < nn; i++) {
		const struct fn *old = no == nn ? &o[i] : NULL;
		if (!old && unique_size(nw, nn, nw[i].size))
			old = unique_size(o, no, nw[i].size);
		if (!old || old->addr == nw[i].addr)
			continue;
		if (!BT_VEC_RESERVE(r->fm, *cap, r->n_fm + 1, 1024))
			return BT_ERR_NOMEM;
		r->fm[r->n_fm++] = (struct reuse_fmap){.start = nw[i].addr,
						       .end = nw[i].addr + nw[i].size,
						       .delta = (int64_t)(old->addr - nw[i].addr)};
	}
	return BT_OK;
}

enum bt_status reuse_map_functions(struct reuse *r, const struct discover_plan *plan)
{
	struct fn_list ol = {0};
	struct fn *nw = NULL;
	size_t nn = 0, cap = 0;
	enum bt_status s = tcdb_foreach_function(r->db, old_fn, &ol);
	if (s == BT_OK)
		s = ol.s;
	if (s == BT_OK && !(nw = calloc(plan->n ? plan->n : 1, sizeof(*nw))))
		s = BT_ERR_NOMEM;
	if (s != BT_OK)
		goto out;
	for (size_t i = 0; i < plan->n; i++)
		if (plan->f[i].kind == DISCOVER_FUNC && plan->f[i].name && plan->f[i].name[0])
			nw[nn++] = (struct fn){.name = plan->f[i].name,
					       .addr = plan->f[i].start,
					       .size = plan->f[i].end - plan->f[i].start};
	qsort(ol.f, ol.n, sizeof(*ol.f), fn_cmp);
	qsort(nw, nn, sizeof(*nw), fn_cmp);
	for (size_t i = 0, j = 0; i < ol.n && j < nn && s == BT_OK;) {
		int c = strcmp(ol.f[i].name, nw[j].name);
		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0) {
			j++;
			continue;
		}
		size_t ie = i, je = j;
		while (ie < ol.n && !strcmp(ol.f[ie].name, ol.f[i].name))
			ie++;
		while (je < nn && !strcmp(nw[je].name, nw[j].name))
			je++;
		s = pair_group(r, &cap, ol.f + i, ie - i, nw + j, je - j);
		i = ie;
		j = je;
	}
	qsort(r->fm, r->n_fm, sizeof(*r->fm), fmap_cmp);
out:
	for (size_t i = 0; i < ol.n_names; i++)
		free(ol.names[i]);
	free(ol.names);
	free(ol.f);
	free(nw);
	return s;
}

/* The paired function holding va, or NULL. */
static const struct reuse_fmap *fmap_find(const struct reuse *r, gva_t va)
{
	size_t lo = 0, hi = r->n_fm;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->fm[mid].start <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && va < r->fm[lo - 1].end ? &r->fm[lo - 1] : NULL;
}

/* ---------------------------------------------------------------- workers */

struct reuse_worker {
	struct reuse *r; /* NULL: a full build */
	struct reuse_tmpls rec;
	uint8_t *code; /* an instantiated block's code */
	size_t code_cap;
	struct xlat_reloc rel[XLAT_TMPL_MAX_RELOCS];
	uint8_t enc[XLAT_TMPL_MAX_RELOCS * XLAT_RELOC_BYTES];
};

enum bt_status reuse_worker_create(struct reuse *r, struct reuse_worker **out)
{
	struct reuse_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return BT_ERR_NOMEM;
	w->r = r;
	*out = w;
	return BT_OK;
}

void reuse_worker_destroy(struct reuse_worker *w)
{
	if (!w)
		return;
	reuse_tmpls_fini(&w->rec);
	free(w->code);
	free(w);
}

enum bt_status reuse_worker_take(struct reuse_worker *w, struct reuse_tmpls *out)
{
	return reuse_tmpls_move(out, &w->rec);
}

/* Hash of guest[0, len) with the bytes of t's recorded fields zeroed. */
static uint64_t masked_hash(const struct xlat_tmpl *t, const uint8_t *guest)
{
	uint8_t mask[GUEST_MAX / 8], b[GUEST_MAX];
	xlat_tmpl_field_mask(t, mask);
	for (uint32_t i = 0; i < t->guest_len; i++)
		b[i] = (mask[i / 8] >> (i % 8) & 1) ? 0 : guest[i];
	return xlat_hash_bytes(b, t->guest_len);
}

/* OLD's template of the block at the same offset of va's function, at its
 * old address, instantiated at va (the file comment's three conditions). */
static bool serve_moved(struct reuse_worker *w, const struct xlat_source *src, gva_t va,
			struct xlat_block *out)
{
	struct reuse *r = w->r;
	const struct reuse_fmap *fm = fmap_find(r, va);
	if (!fm)
		return false;
	gva_t ova = va + (gva_t)fm->delta;
	const struct reuse_blk *b = reuse_find(r, ova);
	const struct reuse_old_tmpl *ot = b ? tmpl_find(r, ova) : NULL;
	uint8_t guest[GUEST_MAX];
	if (!ot || b->len > GUEST_MAX || src->read(src->opaque, va, guest, b->len) != b->len)
		return false;
	uint32_t nrel;
	struct tcdb_block p;
	if (xlat_relocs_decode(ot->recs, (size_t)ot->n_relocs * XLAT_RELOC_BYTES, w->rel,
			       XLAT_TMPL_MAX_RELOCS, &nrel) != BT_OK ||
	    !reuse_payload(r, b, &p))
		return false;
	struct xlat_exit ex[XLAT_MAX_EXITS], oex[XLAT_MAX_EXITS];
	if (p.n_exits > XLAT_MAX_EXITS)
		return false;
	for (uint32_t i = 0; i < p.n_exits; i++)
		oex[i] = (struct xlat_exit){.kind = p.exits[i].kind,
					    .patch_off = p.exits[i].patch_off,
					    .stub_off = p.exits[i].stub_off,
					    .target = p.exits[i].target};
	struct xlat_tmpl t = {.guest_start = ova,
			      .guest_len = b->len,
			      .flags = b->flags,
			      .guest = guest, /* equal outside the fields: checked below */
			      .code = p.code,
			      .code_len = p.code_len,
			      .exits = oex,
			      .n_exits = p.n_exits,
			      .relocs = w->rel,
			      .n_relocs = nrel};
	if (xlat_tmpl_check(&t) != BT_OK || masked_hash(&t, guest) != ot->masked_hash)
		goto refused;
	if (p.code_len > w->code_cap) {
		uint8_t *c = realloc(w->code, p.code_len);
		if (!c)
			return false;
		w->code = c;
		w->code_cap = p.code_len;
	}
	if (xlat_tmpl_instantiate(&t, va, guest, w->code, ex) != XLAT_TMPL_OK)
		goto refused;
	if (tmpls_add(&w->rec, va, ot->masked_hash, ot->recs, ot->n_relocs) != BT_OK)
		return false;
	memset(out, 0, sizeof(*out));
	out->guest_start = va;
	out->guest_len = b->len;
	out->n_insns = b->n_insns;
	out->guest_hash = xlat_hash_bytes(guest, b->len);
	out->flags = b->flags;
	out->refusal = XLAT_OK;
	out->code = w->code;
	out->code_len = p.code_len;
	memcpy(out->exits, ex, p.n_exits * sizeof(ex[0]));
	out->n_exits = p.n_exits;
	out->pcmap = p.pcmap;
	out->pcmap_len = p.pcmap_len;
	__atomic_fetch_add(&r->served, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->served_moved, 1, __ATOMIC_RELAXED);
	return true;
refused:
	__atomic_fetch_add(&r->moved_refused, 1, __ATOMIC_RELAXED);
	return false;
}

enum bt_status reuse_translate(void *opaque, struct xlat_ctx *ctx, const struct xlat_source *src,
			       gva_t va, struct xlat_block *out)
{
	struct reuse_worker *w = opaque;
	struct reuse *r = w->r;
	if (r && reuse_serve(r, src, va, out)) {
		/* the same bytes at the same address: OLD's template, or none
		 * (OLD's translation of them had none either) */
		const struct reuse_old_tmpl *ot = tmpl_find(r, va);
		return ot ? tmpls_add(&w->rec, va, ot->masked_hash, ot->recs, ot->n_relocs)
			  : BT_OK;
	}
	if (r && serve_moved(w, src, va, out))
		return BT_OK;
	if (r)
		reuse_missed(r);
	struct xlat_tmpl t;
	enum xlat_tmpl_result res;
	BT_TRY(xlat_translate_tmpl(ctx, src, va, out, &t, &res));
	if (res != XLAT_TMPL_OK || t.guest_len > GUEST_MAX)
		return BT_OK;
	xlat_relocs_encode(t.relocs, t.n_relocs, w->enc);
	return tmpls_add(&w->rec, va, masked_hash(&t, t.guest), w->enc, t.n_relocs);
}
