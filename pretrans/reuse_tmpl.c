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
 *   "RTP2" u32 predicted u64 n
 *   n x { varint start - previous start (the first: start), u64 masked hash,
 *         [u64 guest hash, varint guest length: predicted], varint n_relocs,
 *         varint record bytes, the records }
 * starts ascending; in the pack of the predicted-patching versions (a second
 * pack, `predicted` 1) a start may come twice (the final text and the text
 * before the alternatives), in the order build_predict.c made them.
 *   a record: varint zigzag(host_off - previous host_off), u8 kind | width
 *   code << 2 | (shift == 32) << 5 (XLAT_RELOC_TLB: 0 | width code << 2 | 1
 *   << 6), u8 flags, [u8 shift: XLAT_RELOC_TLB], [varint goff, u8 gw: with
 *   XLAT_RV_FIELD], [u8 class: with XLAT_RV_FORM], varint zigzag(addend)
 *
 * (7-8 bytes a record where xlat_relocs_encode takes 24: Debian's vmlinux
 * has millions of them.)
 *
 * A --reuse build that finds no block of OLD at a start va (or other bytes
 * there) looks at the NEW function holding va: when reuse_map_functions()
 * (reuse_map.c) paired it with an OLD function at another address or of
 * another size, the OLD blocks at the same offset from that function's
 * start, then from its end, are candidates.  One is used when
 *   1. OLD has a template for it (its records pass xlat_tmpl_check),
 *   2. NEW's bytes over the block's length, the recorded fields zeroed,
 *      hash to OLD's masked hash (the 64-bit hash the same-address reuse and
 *      the runtime already trust for a block's bytes), so they equal OLD's
 *      bytes outside the recorded fields, and
 *   3. xlat_tmpl_instantiate() at va succeeds (no FORM or PAGE refusal);
 * its claim then makes the block what xlat_translate() gives at va for those
 * bytes.  The block's template is OLD's (records depend on the bytes
 * outside the fields and on the value classes, both checked equal), so the
 * template pack written is the full build's too.  The predicted-patching
 * versions (build_predict.c, translated from the bytes the predicted
 * patching leaves) go the same way with OLD's predicted versions
 * (tcdb_lookup_match, by guest length and hash) and their templates.
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
#include "pretrans/xlat/xlat_tmpl.h"

#include <stdlib.h>
#include <string.h>

#define TPACK_MAGIC "RTP2"
#define TPACK_HDR   16
#define TPACK_ENT   11 /* the least an entry takes: 1 + 8 + 1 + 1 */
#define GUEST_MAX   4096
#define REC_MAX	    32 /* the most bytes one record takes */

/* ---------------------------------------------------------------- record codec */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* A varint at *p (below end) into *v; false if it runs past end or 64 bits. */
static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned sh = 0; *p < end && sh < 64; sh += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static const uint8_t width_of_code[5] = {0, 1, 2, 4, 8};

/* Encode n records into out (at most n * REC_MAX bytes); false when one has
 * a form the codec has no room for (then the block gets no template: the
 * same in every build). */
static bool recs_encode(const struct xlat_reloc *r, uint32_t n, uint8_t *out, size_t *len)
{
	uint8_t *p = out;
	uint32_t prev = 0;
	for (uint32_t i = 0; i < n; i++) {
		unsigned wc = 0;
		while (wc < 5 && width_of_code[wc] != r[i].width)
			wc++;
		bool tlb = r[i].kind == XLAT_RELOC_TLB;
		if (wc == 5 || (tlb && r[i].shift > 16) ||
		    (!tlb && (r[i].kind > 3 || (r[i].shift != 0 && r[i].shift != 32))))
			return false;
		p = put_varint(p, zigzag((int64_t)r[i].host_off - (int64_t)prev));
		prev = r[i].host_off;
		*p++ = (uint8_t)((tlb ? 0 : r[i].kind) | wc << 2 | (!tlb && r[i].shift == 32) << 5 |
				 tlb << 6);
		*p++ = r[i].flags;
		if (tlb)
			*p++ = r[i].shift;
		if (r[i].flags & XLAT_RV_FIELD) {
			p = put_varint(p, r[i].goff);
			*p++ = r[i].gw;
		}
		if (r[i].flags & XLAT_RV_FORM)
			*p++ = r[i].cls;
		p = put_varint(p, zigzag((int64_t)r[i].addend));
	}
	*len = (size_t)(p - out);
	return true;
}

/* Decode n records of [p, end) (untrusted: bounded here, checked by
 * xlat_tmpl_check after). */
static bool recs_decode(const uint8_t *p, const uint8_t *end, uint32_t n, struct xlat_reloc *out)
{
	int64_t prev = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t d, a, goff = 0;
		if (!get_varint(&p, end, &d) || end - p < 2)
			return false;
		int64_t off = prev + unzigzag(d);
		uint8_t k = *p++, flags = *p++, gw = 0, cls = 0, shift = (k >> 5 & 1) ? 32 : 0;
		bool tlb = (k >> 6) & 1;
		if (off < 0 || off > UINT32_MAX || ((k >> 2) & 7) >= 5 || (k >> 7) ||
		    (tlb && (k & 0x23)))
			return false;
		if (tlb) {
			if (p == end)
				return false;
			shift = *p++;
		}
		if ((flags & XLAT_RV_FIELD) &&
		    (!get_varint(&p, end, &goff) || goff > UINT16_MAX || p == end || !(gw = *p++)))
			return false;
		if (flags & XLAT_RV_FORM) {
			if (p == end)
				return false;
			cls = *p++;
		}
		if (!get_varint(&p, end, &a))
			return false;
		out[i] = (struct xlat_reloc){.host_off = (uint32_t)off,
					     .kind = tlb ? XLAT_RELOC_TLB : k & 3,
					     .width = width_of_code[(k >> 2) & 7],
					     .shift = shift,
					     .flags = flags,
					     .goff = (uint16_t)goff,
					     .gw = gw,
					     .cls = cls,
					     .addend = (uint64_t)unzigzag(a)};
		prev = off;
	}
	return p == end;
}

/* ---------------------------------------------------------------- entries */

void reuse_tmpls_fini(struct reuse_tmpls *t)
{
	free(t->e);
	free(t->data);
	*t = (struct reuse_tmpls){0};
}

static enum bt_status tmpls_add(struct reuse_tmpls *t, gva_t start, uint64_t masked_hash,
				const uint8_t *recs, uint32_t n_relocs, uint32_t bytes,
				uint32_t guest_len, uint64_t guest_hash)
{
	if (t->len + bytes > UINT32_MAX)
		return BT_ERR_RANGE;
	if (!BT_VEC_RESERVE(t->e, t->cap, t->n + 1, 256) ||
	    !BT_VEC_RESERVE(t->data, t->cap_data, t->len + bytes, 16384))
		return BT_ERR_NOMEM;
	t->e[t->n] = (struct reuse_tmpl_ent){.start = start,
					     .masked_hash = masked_hash,
					     .rec_off = (uint32_t)t->len,
					     .rec_len = bytes,
					     .n_relocs = n_relocs,
					     .guest_len = guest_len,
					     .guest_hash = guest_hash,
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
		BT_TRY(tmpls_add(dst, e->start, e->masked_hash, src->data + e->rec_off, e->n_relocs,
				 e->rec_len, e->guest_len, e->guest_hash));
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

/* Entry i is written: the first of its start, or any in the predicted pack. */
static bool written(const struct reuse_tmpls *t, size_t i, bool predicted)
{
	return predicted || !i || t->e[i].start != t->e[i - 1].start;
}

enum bt_status reuse_tmpls_write(struct reuse_tmpls *t, struct tcdb *db, bool predicted,
				 size_t *bytes)
{
	qsort(t->e, t->n, sizeof(*t->e), ent_cmp);
	size_t n = 0, len = TPACK_HDR;
	for (size_t i = 0; i < t->n; i++)
		if (written(t, i, predicted)) {
			/* varints at most 10 bytes */
			len += 10 + 8 + 8 + 10 + 10 + 10 + t->e[i].rec_len;
			n++;
		}
	uint8_t *raw = malloc(len), *p = raw;
	if (!raw)
		return BT_ERR_NOMEM;
	memcpy(p, TPACK_MAGIC, 4);
	bt_put32(p + 4, predicted);
	bt_put64(p + 8, n);
	p += TPACK_HDR;
	gva_t prev = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct reuse_tmpl_ent *e = &t->e[i];
		if (!written(t, i, predicted))
			continue;
		p = put_varint(p, e->start - prev);
		prev = e->start;
		bt_put64(p, e->masked_hash);
		p += 8;
		if (predicted) {
			bt_put64(p, e->guest_hash);
			p = put_varint(p + 8, e->guest_len);
		}
		p = put_varint(p, e->n_relocs);
		p = put_varint(p, e->rec_len);
		memcpy(p, t->data + e->rec_off, e->rec_len);
		p += e->rec_len;
	}
	len = (size_t)(p - raw);
	enum bt_status s = tcdb_templates_put(db, predicted, raw, len, n);
	free(raw);
	*bytes = len;
	return s;
}

/* ---------------------------------------------------------------- OLD's pack */

void reuse_tmpl_free(struct reuse *r)
{
	free(r->t);
	free(r->pt);
	free(r->fm);
	tcdb_module_index_free(r->tpack, r->tpack_len);
	tcdb_module_index_free(r->ppack, r->ppack_len);
	r->t = r->pt = NULL;
	r->fm = NULL;
	r->tpack = r->ppack = NULL;
}

/* Parse a template pack (untrusted) into *out, *n entries. */
static bool parse_pack(const uint8_t *raw, size_t len, uint64_t n_items, bool predicted,
		       struct reuse_old_tmpl **out, size_t *n)
{
	const uint8_t *p = raw, *end = raw + len;
	if (len < TPACK_HDR || memcmp(p, TPACK_MAGIC, 4) || bt_get32(p + 4) != predicted ||
	    bt_get64(p + 8) != n_items || n_items > len / TPACK_ENT)
		return false;
	struct reuse_old_tmpl *t = calloc(n_items ? n_items : 1, sizeof(*t));
	if (!t)
		return false;
	p += TPACK_HDR;
	gva_t prev = 0;
	uint64_t i = 0;
	for (; i < n_items; i++) {
		uint64_t d, nrel, blen, glen = 0;
		if (!get_varint(&p, end, &d) || (i && !d && !predicted) || end - p < 8)
			break;
		t[i].start = prev + d;
		prev = t[i].start;
		t[i].masked_hash = bt_get64(p);
		p += 8;
		if (predicted) {
			if (end - p < 8)
				break;
			t[i].guest_hash = bt_get64(p);
			p += 8;
			if (!get_varint(&p, end, &glen) || glen == 0 || glen > GUEST_MAX)
				break;
			t[i].guest_len = (uint32_t)glen;
		}
		if (!get_varint(&p, end, &nrel) || !get_varint(&p, end, &blen) ||
		    nrel > XLAT_TMPL_MAX_RELOCS || blen > (uint64_t)(end - p) ||
		    blen > nrel * REC_MAX)
			break;
		t[i].n_relocs = (uint32_t)nrel;
		t[i].rec_len = (uint32_t)blen;
		t[i].recs = p;
		p += blen;
	}
	if (i != n_items || p != end) {
		free(t);
		return false;
	}
	*out = t;
	*n = n_items;
	return true;
}

enum bt_status reuse_tmpl_load(struct reuse *r, const char *path)
{
	uint64_t n;
	enum bt_status s = tcdb_templates_get(r->db, false, &r->tpack, &r->tpack_len, &n);
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
	if (!parse_pack(r->tpack, r->tpack_len, n, false, &r->t, &r->n_t))
		goto bad;
	/* the predicted versions' templates: optional (none for an image
	 * without Linux's patch tables), and of use only when OLD's predicted
	 * versions were made for this build's CPU profile */
	s = tcdb_templates_get(r->db, true, &r->ppack, &r->ppack_len, &n);
	if (s == BT_ERR_NOTFOUND)
		return BT_OK;
	if (s != BT_OK)
		return s;
	if (!parse_pack(r->ppack, r->ppack_len, n, true, &r->pt, &r->n_pt))
		goto bad;
	size_t n_blocks;
	BT_TRY(tcdb_load_index(r->db, &n_blocks));
	r->pred_loaded = tcdb_predicted_entries(r->db) > 0 && !tcdb_untrusted(r->db);
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

/* ---------------------------------------------------------------- workers */

struct reuse_worker {
	struct reuse *r; /* NULL: a full build */
	struct reuse_tmpls rec;
	uint8_t *code; /* an instantiated block's code */
	size_t code_cap;
	uint8_t *pcmap; /* a predicted version's pc map (OLD's, copied) */
	size_t pcmap_cap;
	struct xlat_reloc rel[XLAT_TMPL_MAX_RELOCS];
	uint8_t enc[XLAT_TMPL_MAX_RELOCS * REC_MAX];
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
	free(w->pcmap);
	free(w);
}

enum bt_status reuse_worker_take(struct reuse_worker *w, struct reuse_tmpls *out)
{
	return reuse_tmpls_move(out, &w->rec);
}

/* *buf holds at least n bytes (false: out of memory). */
static bool grow(uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return true;
	uint8_t *b = realloc(*buf, n);
	if (!b)
		return false;
	*buf = b;
	*cap = n;
	return true;
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

/* OLD's template of the block at ova instantiated at va (the file
 * comment's three conditions). */
static bool serve_at(struct reuse_worker *w, const struct xlat_source *src, gva_t va, gva_t ova,
		     struct bt_block *out)
{
	struct reuse *r = w->r;
	const struct reuse_blk *b = reuse_find(r, ova);
	const struct reuse_old_tmpl *ot = b ? tmpl_find(r, ova) : NULL;
	uint8_t guest[GUEST_MAX];
	if (!ot || b->len > GUEST_MAX || src->read(src->opaque, va, guest, b->len) != b->len)
		return false;
	uint32_t nrel = ot->n_relocs;
	struct bt_block p;
	if (!recs_decode(ot->recs, ot->recs + ot->rec_len, nrel, w->rel) ||
	    !reuse_payload(r, b, &p))
		goto refused;
	struct bt_exit ex[XLAT_MAX_EXITS];
	if (p.n_exits > XLAT_MAX_EXITS)
		return false;
	struct xlat_tmpl t = {.guest_start = ova,
			      .guest_len = b->len,
			      .flags = b->flags,
			      .guest = guest, /* equal outside the fields: checked below */
			      .code = p.code,
			      .code_len = p.code_len,
			      .exits = p.exits,
			      .n_exits = p.n_exits,
			      .relocs = w->rel,
			      .n_relocs = nrel};
	if (xlat_tmpl_check(&t) != BT_OK || masked_hash(&t, guest) != ot->masked_hash)
		goto refused;
	if (!grow(&w->code, &w->code_cap, p.code_len))
		return false;
	if (xlat_tmpl_instantiate(&t, va, guest, w->code, ex) != XLAT_TMPL_OK)
		goto refused;
	if (tmpls_add(&w->rec, va, ot->masked_hash, ot->recs, ot->n_relocs, ot->rec_len, b->len,
		      0) != BT_OK)
		return false;
	/* OLD's record at va: its code and exits instantiated, its pc map as is
	 * (guest offsets are relative) */
	*out = p;
	out->guest_start = va;
	out->guest_hash = xlat_hash_bytes(guest, b->len);
	out->code = w->code;
	memcpy(out->exits, ex, p.n_exits * sizeof(ex[0]));
	__atomic_fetch_add(&r->served, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->served_moved, 1, __ATOMIC_RELAXED);
	return true;
refused:
	__atomic_fetch_add(&r->moved_refused, 1, __ATOMIC_RELAXED);
	return false;
}

static bool serve_moved(struct reuse_worker *w, const struct xlat_source *src, gva_t va,
			struct bt_block *out)
{
	gva_t ova[2];
	size_t n = reuse_candidates(w->r, va, ova);
	for (size_t i = 0; i < n; i++)
		if (serve_at(w, src, va, ova[i], out))
			return true;
	return false;
}

/* Translate va as a full build does and record the block's template for a
 * later --reuse (when the translator describes it). */
static enum bt_status translate_recorded(struct reuse_worker *w, struct xlat_ctx *ctx,
					 const struct xlat_source *src, gva_t va,
					 struct bt_block *out)
{
	struct xlat_tmpl t;
	enum xlat_tmpl_result res;
	BT_TRY(xlat_translate_tmpl(ctx, src, va, out, &t, &res));
	size_t len;
	if (res != XLAT_TMPL_OK || t.guest_len > GUEST_MAX || t.n_relocs > XLAT_TMPL_MAX_RELOCS ||
	    !recs_encode(t.relocs, t.n_relocs, w->enc, &len))
		return BT_OK;
	return tmpls_add(&w->rec, va, masked_hash(&t, t.guest), w->enc, t.n_relocs, (uint32_t)len,
			 out->guest_len, out->guest_hash);
}

enum bt_status reuse_translate(void *opaque, struct xlat_ctx *ctx, const struct xlat_source *src,
			       gva_t va, struct bt_block *out)
{
	struct reuse_worker *w = opaque;
	struct reuse *r = w->r;
	if (r && reuse_serve(r, src, va, out)) {
		/* the same bytes at the same address: OLD's template, or none
		 * (OLD's translation of them had none either) */
		const struct reuse_old_tmpl *ot = tmpl_find(r, va);
		return ot ? tmpls_add(&w->rec, va, ot->masked_hash, ot->recs, ot->n_relocs,
				      ot->rec_len, out->guest_len, 0)
			  : BT_OK;
	}
	if (r && serve_moved(w, src, va, out))
		return BT_OK;
	if (r)
		reuse_missed(r);
	return translate_recorded(w, ctx, src, va, out);
}

/* ---------------------------------------------------------------- predicted versions */

struct want_version {
	uint32_t len;
	uint64_t hash;
};

static bool version_is(void *opaque, gva_t va, uint32_t guest_len, uint64_t guest_hash)
{
	(void)va;
	const struct want_version *v = opaque;
	return guest_len == v->len && guest_hash == v->hash;
}

/* OLD's predicted version ot (at the same offset of va's paired function)
 * instantiated at va for the patched bytes guest[0, n). */
static bool serve_pred_one(struct reuse_worker *w, const struct reuse_old_tmpl *ot, gva_t va,
			   const uint8_t *guest, size_t n, struct bt_block *out)
{
	struct reuse *r = w->r;
	if (ot->guest_len > n ||
	    !recs_decode(ot->recs, ot->recs + ot->rec_len, ot->n_relocs, w->rel))
		return false;
	struct xlat_tmpl t = {.guest_start = ot->start,
			      .guest_len = ot->guest_len,
			      .guest = guest,
			      .relocs = w->rel,
			      .n_relocs = ot->n_relocs};
	if (masked_hash(&t, guest) != ot->masked_hash)
		return false;
	struct tcdb_block row;
	const struct bt_block *b = &row.blk;
	struct want_version v = {ot->guest_len, ot->guest_hash};
	unsigned tried;
	pthread_mutex_lock(&r->mu);
	bool found = tcdb_lookup_match(r->db, ot->start, version_is, &v, &row, &tried) == BT_OK &&
		     row.origin == TCDB_ORIGIN_PREDICTED && b->guest_len == ot->guest_len &&
		     b->n_exits <= XLAT_MAX_EXITS && grow(&w->code, &w->code_cap, b->code_len) &&
		     grow(&w->pcmap, &w->pcmap_cap, b->pcmap_len);
	struct bt_exit ex[XLAT_MAX_EXITS];
	if (found) { /* b points into OLD's memory until its next call: copy */
		memcpy(w->pcmap, b->pcmap, b->pcmap_len);
		t.flags = b->flags;
		t.code = b->code;
		t.code_len = b->code_len;
		t.exits = b->exits; /* the record is ours: stays valid */
		t.n_exits = b->n_exits;
		found = xlat_tmpl_check(&t) == BT_OK &&
			xlat_tmpl_instantiate(&t, va, guest, w->code, ex) == XLAT_TMPL_OK;
	}
	pthread_mutex_unlock(&r->mu);
	if (!found || tmpls_add(&w->rec, va, ot->masked_hash, ot->recs, ot->n_relocs, ot->rec_len,
				ot->guest_len, xlat_hash_bytes(guest, ot->guest_len)) != BT_OK)
		return false;
	/* OLD's predicted record at va: code and exits instantiated, the pc
	 * map copied (guest offsets are relative) */
	*out = *b;
	out->guest_start = va;
	out->guest_hash = xlat_hash_bytes(guest, b->guest_len);
	out->code = w->code;
	memcpy(out->exits, ex, b->n_exits * sizeof(ex[0]));
	out->pcmap = w->pcmap;
	return true;
}

/* The predicted versions OLD has at ova, tried in turn. */
static bool serve_pred_at(struct reuse_worker *w, gva_t va, gva_t ova, const uint8_t *guest,
			  size_t n, struct bt_block *out)
{
	const struct reuse *r = w->r;
	size_t lo = 0, hi = r->n_pt;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->pt[mid].start < ova)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < r->n_pt && r->pt[lo].start == ova; lo++)
		if (serve_pred_one(w, &r->pt[lo], va, guest, n, out))
			return true;
	return false;
}

static bool serve_pred(struct reuse_worker *w, const struct xlat_source *src, gva_t va,
		       struct bt_block *out)
{
	/* where candidates() says, and at the same address (a predicted
	 * version has no same-address copy of its own: its bytes are not the
	 * image's) */
	gva_t ova[3];
	size_t n = reuse_candidates(w->r, va, ova);
	ova[n++] = va;
	uint8_t guest[GUEST_MAX];
	size_t len = src->read(src->opaque, va, guest, sizeof(guest));
	for (size_t i = 0; i < n; i++)
		if (serve_pred_at(w, va, ova[i], guest, len, out))
			return true;
	return false;
}

enum bt_status reuse_translate_predicted(struct reuse_worker *w, struct xlat_ctx *ctx,
					 const struct xlat_source *src, gva_t va,
					 struct bt_block *out)
{
	if (w->r && w->r->pred_loaded && serve_pred(w, src, va, out)) {
		__atomic_fetch_add(&w->r->pred_served, 1, __ATOMIC_RELAXED);
		return BT_OK;
	}
	if (w->r)
		__atomic_fetch_add(&w->r->pred_missed, 1, __ATOMIC_RELAXED);
	return translate_recorded(w, ctx, src, va, out);
}
