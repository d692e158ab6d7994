/*
 * kmod/ (kmod.h): a relocated module's code as templates, and the pack
 * that carries them in the database.
 *
 * Block starts: every function symbol of a code section (its start if it
 * has none), every place in it a data section's relocation names (switch
 * tables, function pointers, exception fixups: kmod_code_refs), then every
 * direct branch/fall target inside the same section, and the end of a
 * block inside its function that may continue there (a call, a privileged
 * instruction, a cut; not after jmp or ret): a worklist, each offset
 * translated once.  A block the translator refuses
 * is not stored (the runtime meets it as a miss); one that is translated but
 * not relocatable is counted and not stored either.
 *
 * Pack format (little-endian; docs/kmod.md, "Pack"):
 *   "KMT1" u32 nsecs u32 ntmpls
 *   nsecs x { char name[64], u64 nominal, u64 size }
 *   ntmpls x { u32 sec, u64 offset, u32 guest_len, u32 flags, u32 code_len,
 *              u32 n_exits, u32 pcmap_len, u32 n_relocs, u32 n_insns,
 *              guest bytes, code, exits (kind u8, flags u8, pad u16,
 *              patch_off u32, stub_off u32, target u64 = 20 bytes each),
 *              pc map, relocation records (XLAT_RELOC_BYTES each) }
 * Templates are written in (section, offset) order.
 */
#include "kmod/kmod.h"

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"
#include "pretrans/elf/elfimg.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#define PACK_MAGIC	"KMT1"
#define PACK_SEC_BYTES	(64 + 16)
#define PACK_HDR_BYTES	40
#define PACK_EXIT_BYTES 20

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static bool put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t c = b->cap ? b->cap : 1 << 16;
		while (c < b->n + n)
			c *= 2;
		uint8_t *q = realloc(b->p, c);
		if (!q)
			return false;
		b->p = q;
		b->cap = c;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return true;
}

static bool put32(struct buf *b, uint32_t v)
{
	uint8_t x[4];
	bt_put32(x, v);
	return put(b, x, 4);
}

static bool put64(struct buf *b, uint64_t v)
{
	uint8_t x[8];
	bt_put64(x, v);
	return put(b, x, 8);
}

/* One template record of the pack format (the header's comment). */
static bool put_tmpl(struct buf *b, uint32_t sec, uint64_t off, const struct xlat_tmpl *t,
		     uint32_t n_insns, const uint8_t *pcmap, uint32_t pcmap_len)
{
	bool ok = put32(b, sec) && put64(b, off) && put32(b, t->guest_len) && put32(b, t->flags) &&
		  put32(b, t->code_len) && put32(b, t->n_exits) && put32(b, pcmap_len) &&
		  put32(b, t->n_relocs) && put32(b, n_insns) && put(b, t->guest, t->guest_len) &&
		  put(b, t->code, t->code_len);
	for (uint32_t x = 0; ok && x < t->n_exits; x++) {
		uint8_t e[PACK_EXIT_BYTES] = {t->exits[x].kind, t->exits[x].flags};
		bt_put32(e + 4, t->exits[x].patch_off);
		bt_put32(e + 8, t->exits[x].stub_off);
		bt_put64(e + 12, t->exits[x].target);
		ok = put(b, e, sizeof(e));
	}
	ok = ok && put(b, pcmap, pcmap_len);
	uint8_t rb[XLAT_RELOC_BYTES];
	for (uint32_t r = 0; ok && r < t->n_relocs; r++) {
		xlat_relocs_encode(&t->relocs[r], 1, rb);
		ok = put(b, rb, sizeof(rb));
	}
	return ok;
}

struct src {
	gva_t base;
	const uint8_t *bytes;
	uint64_t len;
};

static size_t src_read(void *opaque, gva_t va, uint8_t *out, size_t len)
{
	const struct src *s = opaque;
	if (va < s->base || va - s->base >= s->len)
		return 0;
	size_t n = (size_t)(s->len - (va - s->base));
	n = n < len ? n : len;
	memcpy(out, s->bytes + (va - s->base), n);
	return n;
}

static bool is_direct(uint8_t k)
{
	return k == XLAT_EXIT_JMP || k == XLAT_EXIT_JCC_TAKEN || k == XLAT_EXIT_JCC_FALL ||
	       k == XLAT_EXIT_CALL || k == XLAT_EXIT_FALL;
}

/* [start, end) of the function holding off (fn sorted by start), or 0s. */
static void fn_at(const uint64_t *fn, size_t n, uint64_t off, uint64_t *end)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* the last start <= off */
		size_t mid = lo + (hi - lo) / 2;
		if (fn[2 * mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	*end = 0;
	for (size_t i = lo; i-- > 0;) /* nested or overlapping symbols: the widest */
		if (fn[2 * i] <= off && fn[2 * i + 1] > off && fn[2 * i + 1] > *end)
			*end = fn[2 * i + 1];
		else if (i + 8 < lo)
			break;
}

static int off_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Templates of one section into b (sorted by offset). */
static enum bt_status section_tmpls(struct kmod *m, uint32_t si, struct xlat_ctx *ctx,
				    struct buf *b, uint32_t *ntmpl, struct kmod_tmpl_stats *st)
{
	struct kmod_section *k = &m->secs[si];
	uint8_t *seen = calloc(k->size, 1); /* 1 queued, 2 done */
	uint64_t *work = NULL;
	size_t nw = 0, cw = 0;
	struct buf tmp = {0};	/* per-offset records, then sorted */
	uint64_t *index = NULL; /* (offset, position in tmp) pairs */
	size_t ni = 0, ci = 0;
	uint64_t *fn = NULL; /* (start, end) of the section's functions */
	size_t nf = 0, cf = 0;
	enum bt_status s = BT_OK;
	if (!seen)
		return BT_ERR_NOMEM;
#define PUSH(off)                                                                                  \
	do {                                                                                       \
		uint64_t o_ = (off);                                                               \
		if (o_ < k->size && !seen[o_]) {                                                   \
			if (!BT_VEC_RESERVE(work, cw, nw + 1, 256)) {                              \
				s = BT_ERR_NOMEM;                                                  \
				goto out;                                                          \
			}                                                                          \
			seen[o_] = 1;                                                              \
			work[nw++] = o_;                                                           \
		}                                                                                  \
	} while (0)
	PUSH(0);
	for (size_t i = 0; i < m->img->nsyms; i++) {
		const struct elfimg_symbol *y = &m->img->syms[i];
		if (y->shndx != k->index || y->type != STT_FUNC)
			continue;
		PUSH(y->addr);
		if (!BT_VEC_RESERVE(fn, cf, 2 * (nf + 1), 256)) {
			s = BT_ERR_NOMEM;
			goto out;
		}
		fn[2 * nf] = y->addr;
		fn[2 * nf + 1] = y->addr + y->size;
		nf++;
	}
	qsort(fn, nf, 2 * sizeof(uint64_t), off_cmp);
	uint64_t *refs;
	size_t nrefs;
	if ((s = kmod_code_refs(m, k->index, &refs, &nrefs)) != BT_OK)
		goto out;
	for (size_t i = 0; i < nrefs; i++) {
		uint64_t o = refs[i];
		if (o < k->size && !seen[o]) {
			if (!BT_VEC_RESERVE(work, cw, nw + 1, 256)) {
				free(refs);
				s = BT_ERR_NOMEM;
				goto out;
			}
			seen[o] = 1;
			work[nw++] = o;
		}
	}
	free(refs);
	struct src sr = {.base = k->addr, .bytes = k->bytes, .len = k->size};
	struct xlat_source src = {.read = src_read, .opaque = &sr};
	while (nw > 0) {
		uint64_t off = work[--nw];
		struct bt_block blk;
		struct xlat_tmpl t;
		enum xlat_tmpl_result res;
		if ((s = xlat_translate_tmpl(ctx, &src, k->addr + off, &blk, &t, &res)) != BT_OK)
			goto out;
		if (res == XLAT_TMPL_REFUSED) {
			st->n_refused++;
			continue;
		}
		for (uint32_t x = 0; x < blk.n_exits; x++)
			if (is_direct(blk.exits[x].kind) && blk.exits[x].target >= k->addr)
				PUSH(blk.exits[x].target - k->addr);
		uint8_t last = blk.n_exits ? blk.exits[blk.n_exits - 1].kind : 0;
		uint64_t fend;
		fn_at(fn, nf, off, &fend);
		if (last != XLAT_EXIT_JMP && last != XLAT_EXIT_RET && off + blk.guest_len < fend)
			PUSH(off + blk.guest_len);
		if (res != XLAT_TMPL_OK) {
			st->n_not_reloc++;
			continue;
		}
		if (!BT_VEC_RESERVE(index, ci, 2 * (ni + 1), 256)) {
			s = BT_ERR_NOMEM;
			goto out;
		}
		index[2 * ni] = off;
		index[2 * ni + 1] = tmp.n;
		ni++;
		bool ok = put_tmpl(&tmp, si, off, &t, blk.n_insns, blk.pcmap, blk.pcmap_len);
		if (!ok) {
			s = BT_ERR_NOMEM;
			goto out;
		}
		st->n_blocks++;
		st->guest_bytes += t.guest_len;
		st->code_bytes += t.code_len;
		st->n_relocs += t.n_relocs;
	}
	/* (section, offset) order: deterministic output */
	qsort(index, ni, 2 * sizeof(uint64_t), off_cmp);
	for (size_t i = 0; i < ni; i++) {
		size_t from = (size_t)index[2 * i + 1];
		/* record length: parse its header */
		const uint8_t *h = tmp.p + from;
		size_t len = PACK_HDR_BYTES + bt_get32(h + 12) + bt_get32(h + 20) +
			     (size_t)bt_get32(h + 24) * PACK_EXIT_BYTES + bt_get32(h + 28) +
			     (size_t)bt_get32(h + 32) * XLAT_RELOC_BYTES;
		if (!put(b, h, len)) {
			s = BT_ERR_NOMEM;
			goto out;
		}
	}
	*ntmpl += (uint32_t)ni;
out:
#undef PUSH
	free(seen);
	free(work);
	free(fn);
	free(index);
	free(tmp.p);
	return s;
}

enum bt_status kmod_pack_templates(struct kmod *m, struct xlat_ctx *ctx, uint8_t **pack,
				   size_t *pack_len, struct kmod_tmpl_stats *st)
{
	memset(st, 0, sizeof(*st));
	struct buf b = {0}, body = {0};
	uint32_t ntmpl = 0;
	enum bt_status s = BT_OK;
	for (uint32_t i = 0; i < m->nsecs && s == BT_OK; i++)
		if (m->secs[i].code && m->secs[i].bytes)
			s = section_tmpls(m, i, ctx, &body, &ntmpl, st);
	bool ok = s == BT_OK && put(&b, PACK_MAGIC, 4) && put32(&b, (uint32_t)m->nsecs) &&
		  put32(&b, ntmpl);
	for (size_t i = 0; ok && i < m->nsecs; i++) {
		char name[64] = {0};
		strncpy(name, m->secs[i].name, sizeof(name) - 1);
		ok = put(&b, name, sizeof(name)) && put64(&b, m->secs[i].addr) &&
		     put64(&b, m->secs[i].size);
	}
	ok = ok && put(&b, body.p ? body.p : (const uint8_t *)"", body.n);
	free(body.p);
	if (s == BT_OK && !ok)
		s = BT_ERR_NOMEM;
	if (s != BT_OK) {
		free(b.p);
		return s;
	}
	*pack = b.p;
	*pack_len = b.n;
	return BT_OK;
}

enum bt_status kmod_pack_build(const struct kmod_pack_section *secs, uint32_t nsecs,
			       const struct kmod_tmpl *tmpls, size_t n, uint8_t **pack,
			       size_t *pack_len)
{
	if (n > UINT32_MAX)
		return BT_ERR_RANGE;
	for (size_t i = 0; i < n; i++)
		if (tmpls[i].sec >= nsecs || (i > 0 && (tmpls[i].sec < tmpls[i - 1].sec ||
							(tmpls[i].sec == tmpls[i - 1].sec &&
							 tmpls[i].offset <= tmpls[i - 1].offset))))
			return BT_ERR_INVALID; /* the order kmod_pack_parse requires */
	struct buf b = {0};
	bool ok = put(&b, PACK_MAGIC, 4) && put32(&b, nsecs) && put32(&b, (uint32_t)n);
	for (uint32_t i = 0; ok && i < nsecs; i++) {
		char name[64] = {0};
		memcpy(name, secs[i].name, strnlen(secs[i].name, sizeof(name) - 1));
		ok = put(&b, name, sizeof(name)) && put64(&b, secs[i].nominal) &&
		     put64(&b, secs[i].size);
	}
	for (size_t i = 0; ok && i < n; i++)
		ok = put_tmpl(&b, tmpls[i].sec, tmpls[i].offset, &tmpls[i].t, tmpls[i].n_insns,
			      tmpls[i].pcmap, tmpls[i].pcmap_len);
	if (!ok) {
		free(b.p);
		return BT_ERR_NOMEM;
	}
	*pack = b.p;
	*pack_len = b.n;
	return BT_OK;
}

/* --- parsing ------------------------------------------------------------- */

enum bt_status kmod_pack_parse(const uint8_t *p, size_t len, struct kmod_pack *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 12 || memcmp(p, PACK_MAGIC, 4) != 0)
		return BT_ERR_FORMAT;
	uint32_t nsecs = bt_get32(p + 4), n = bt_get32(p + 8);
	size_t pos = 12;
	if (nsecs > 4096 || (size_t)nsecs * PACK_SEC_BYTES > len - pos || n > len / PACK_HDR_BYTES)
		return BT_ERR_FORMAT;
	out->secs = calloc(nsecs ? nsecs : 1, sizeof(*out->secs));
	out->tmpls = calloc(n ? n : 1, sizeof(*out->tmpls));
	out->exits_ = calloc((size_t)n * XLAT_MAX_EXITS + 1, sizeof(*out->exits_));
	if (!out->secs || !out->tmpls || !out->exits_)
		goto err_nomem;
	out->nsecs = nsecs;
	for (uint32_t i = 0; i < nsecs; i++, pos += PACK_SEC_BYTES) {
		memcpy(out->secs[i].name, p + pos, 63);
		out->secs[i].nominal = bt_get64(p + pos + 64);
		out->secs[i].size = bt_get64(p + pos + 72);
	}
	/* first pass: count relocation records */
	size_t nrel = 0, q = pos;
	for (uint32_t i = 0; i < n; i++) {
		if (len - q < PACK_HDR_BYTES)
			goto err_format;
		const uint8_t *h = p + q;
		uint64_t need = (uint64_t)PACK_HDR_BYTES + bt_get32(h + 12) + bt_get32(h + 20) +
				(uint64_t)bt_get32(h + 24) * PACK_EXIT_BYTES + bt_get32(h + 28) +
				(uint64_t)bt_get32(h + 32) * XLAT_RELOC_BYTES;
		if (bt_get32(h + 24) > XLAT_MAX_EXITS || bt_get32(h + 32) > XLAT_TMPL_MAX_RELOCS ||
		    need > len - q)
			goto err_format;
		nrel += bt_get32(h + 32);
		q += (size_t)need;
	}
	if (q != len)
		goto err_format;
	out->relocs_ = calloc(nrel + 1, sizeof(*out->relocs_));
	if (!out->relocs_)
		goto err_nomem;
	size_t ri = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *h = p + pos;
		struct kmod_tmpl *k = &out->tmpls[i];
		k->sec = bt_get32(h);
		k->offset = bt_get64(h + 4);
		struct xlat_tmpl *t = &k->t;
		t->guest_len = bt_get32(h + 12);
		t->flags = bt_get32(h + 16);
		t->code_len = bt_get32(h + 20);
		t->n_exits = bt_get32(h + 24);
		k->pcmap_len = bt_get32(h + 28);
		t->n_relocs = bt_get32(h + 32);
		k->n_insns = bt_get32(h + 36);
		if (k->sec >= nsecs || k->offset >= out->secs[k->sec].size ||
		    t->guest_len > out->secs[k->sec].size - k->offset)
			goto err_format;
		t->guest_start = out->secs[k->sec].nominal + k->offset;
		size_t at = pos + PACK_HDR_BYTES;
		t->guest = p + at;
		at += t->guest_len;
		t->code = p + at;
		at += t->code_len;
		struct bt_exit *ex = &out->exits_[(size_t)i * XLAT_MAX_EXITS];
		for (uint32_t x = 0; x < t->n_exits; x++, at += PACK_EXIT_BYTES) {
			ex[x].kind = p[at];
			ex[x].flags = p[at + 1];
			ex[x].patch_off = bt_get32(p + at + 4);
			ex[x].stub_off = bt_get32(p + at + 8);
			ex[x].target = bt_get64(p + at + 12);
			if (ex[x].kind == 0 || ex[x].kind >= XLAT_NEXIT_KINDS ||
			    ex[x].stub_off >= t->code_len)
				goto err_format;
		}
		t->exits = ex;
		k->pcmap = p + at;
		at += k->pcmap_len;
		uint32_t got;
		if (xlat_relocs_decode(p + at, (size_t)t->n_relocs * XLAT_RELOC_BYTES,
				       out->relocs_ + ri, t->n_relocs, &got) != BT_OK)
			goto err_format;
		t->relocs = out->relocs_ + ri;
		ri += got;
		at += (size_t)t->n_relocs * XLAT_RELOC_BYTES;
		if (xlat_tmpl_check(t) != BT_OK)
			goto err_format;
		if (i > 0 &&
		    (k->sec < out->tmpls[i - 1].sec ||
		     (k->sec == out->tmpls[i - 1].sec && k->offset <= out->tmpls[i - 1].offset)))
			goto err_format; /* the order lookups rely on */
		pos = at;
	}
	out->n = n;
	return BT_OK;
err_format:
	kmod_pack_fini(out);
	return BT_ERR_FORMAT;
err_nomem:
	kmod_pack_fini(out);
	return BT_ERR_NOMEM;
}

void kmod_pack_fini(struct kmod_pack *pk)
{
	free(pk->secs);
	free(pk->tmpls);
	free(pk->exits_);
	free(pk->relocs_);
	memset(pk, 0, sizeof(*pk));
}
