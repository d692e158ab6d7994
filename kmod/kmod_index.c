/*
 * kmod/ (kmod.h): the fingerprint index of a database's module templates,
 * what btvm loads at start instead of every pack (docs/kmod.md, "Binding").
 *
 * One fingerprint per template: the page offset of its nominal start, its
 * first guest byte (never a field), and a hash of its first KMOD_FP_COVER
 * guest bytes (or all, when fewer) with the bytes of recorded fields
 * (xlat_tmpl_field_mask) zeroed, with the mask of those field bytes.  It
 * selects candidates only: a template is used only after its module's pack
 * was fetched (tag checked), found consistent with the index, and
 * xlat_tmpl_instantiate() accepted the guest bytes.
 *
 * Format (little-endian; zstd in the database's packs table):
 *   "KMI2" u32 nmods u32 ntmpls
 *   nmods  x { u32 n_templates, u32 pack raw length, u32 relocation records,
 *              u32 sections }                          module i is row id i + 1
 *   ntmpls x { u16 page offset, u8 cover, u8 first byte, u64 field mask,
 *              u32 hash, u32 offset in its section, u8 section } in
 *              (module, template) order, so (section, offset) ascending in a
 *              module
 *
 * Invariants
 *  1. Parsing bounds everything: offsets < 4096, cover 1..KMOD_FP_COVER,
 *     no mask bit at or past cover nor on byte 0, counts summing to ntmpls,
 *     exact length; else BT_ERR_FORMAT.
 *  2. A parsed index is sorted by (key = page offset, first byte; template
 *     number), so the first match is the same on every run.
 */
#include "kmod/kmod.h"

#include "pretrans/base/hash.h"
#include "pretrans/base/le.h"
#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>

#define INDEX_MAGIC	"KMI2"
#define INDEX_HDR	12
#define INDEX_MOD_BYTES 16
#define INDEX_FP_BYTES	21
#define FP_MAX_GUEST	GUEST_PAGE_SIZE /* longer: refused by instantiation anyway */

uint32_t kmod_fp_hash(const uint8_t *bytes, uint32_t cover, uint64_t fmask)
{
	uint8_t b[KMOD_FP_COVER];
	for (uint32_t i = 0; i < cover; i++)
		b[i] = (fmask >> i) & 1 ? 0 : bytes[i];
	return (uint32_t)bt_hash64(b, cover);
}

/* What a resident pack costs: its bytes and what kmod_pack_parse()
 * allocates for it. */
static uint64_t pack_cost(uint64_t nt, uint64_t raw_len, uint64_t nrel, uint64_t nsecs)
{
	return raw_len + nt * sizeof(struct kmod_tmpl) +
	       (nt * XLAT_MAX_EXITS + 1) * sizeof(struct bt_exit) +
	       (nrel + 1) * sizeof(struct xlat_reloc) + nsecs * sizeof(struct kmod_pack_section);
}

static void fp_of(const struct kmod_tmpl *kt, uint8_t *out)
{
	const struct xlat_tmpl *t = &kt->t;
	uint8_t fm[FP_MAX_GUEST / 8];
	uint64_t fmask = 0;
	uint32_t cover = t->guest_len < KMOD_FP_COVER ? t->guest_len : KMOD_FP_COVER;
	if (t->guest_len <= FP_MAX_GUEST)
		xlat_tmpl_field_mask(t, fm);
	else
		memset(fm, 0, sizeof(fm));
	for (uint32_t i = 0; i < cover; i++)
		if (fm[i / 8] & (1u << (i % 8)))
			fmask |= 1ull << i;
	bt_put16(out, (uint16_t)(t->guest_start & 0xfff));
	out[2] = (uint8_t)cover;
	out[3] = cover ? t->guest[0] : 0;
	bt_put64(out + 4, fmask);
	bt_put32(out + 12, cover ? kmod_fp_hash(t->guest, cover, fmask) : 0);
	bt_put32(out + 16, (uint32_t)kt->offset);
	out[20] = (uint8_t)kt->sec;
}

enum bt_status kmod_index_add(struct kmod_index_writer *w, const uint8_t *pack, size_t len)
{
	struct kmod_pack pk;
	BT_TRY(kmod_pack_parse(pack, len, &pk));
	enum bt_status s = BT_ERR_NOMEM;
	bool fits = pk.nsecs <= 256;
	for (size_t i = 0; i < pk.n; i++)
		fits &= pk.tmpls[i].offset <= UINT32_MAX;
	if (len > UINT32_MAX || pk.n > UINT32_MAX - w->ntmpls || !fits) {
		s = BT_ERR_RANGE;
		goto out;
	}
	if (!BT_VEC_RESERVE(w->mods, w->mods_cap, w->mods_len + INDEX_MOD_BYTES, 1024) ||
	    !BT_VEC_RESERVE(w->fps, w->fps_cap, w->fps_len + pk.n * INDEX_FP_BYTES, 4096))
		goto out;
	uint64_t nrel = 0;
	for (size_t i = 0; i < pk.n; i++)
		nrel += pk.tmpls[i].t.n_relocs;
	bt_put32(w->mods + w->mods_len, (uint32_t)pk.n);
	bt_put32(w->mods + w->mods_len + 4, (uint32_t)len);
	bt_put32(w->mods + w->mods_len + 8, (uint32_t)nrel); /* < len / XLAT_RELOC_BYTES */
	bt_put32(w->mods + w->mods_len + 12, pk.nsecs);
	w->mods_len += INDEX_MOD_BYTES;
	for (size_t i = 0; i < pk.n; i++, w->fps_len += INDEX_FP_BYTES)
		fp_of(&pk.tmpls[i], w->fps + w->fps_len);
	w->nmods++;
	w->ntmpls += (uint32_t)pk.n;
	s = BT_OK;
out:
	kmod_pack_fini(&pk);
	return s;
}

enum bt_status kmod_index_merge(struct kmod_index_writer *w, const struct kmod_index_writer *from)
{
	if (from->ntmpls > UINT32_MAX - w->ntmpls)
		return BT_ERR_RANGE;
	if (!BT_VEC_RESERVE(w->mods, w->mods_cap, w->mods_len + from->mods_len, 1024) ||
	    !BT_VEC_RESERVE(w->fps, w->fps_cap, w->fps_len + from->fps_len, 4096))
		return BT_ERR_NOMEM;
	if (from->mods_len)
		memcpy(w->mods + w->mods_len, from->mods, from->mods_len);
	if (from->fps_len)
		memcpy(w->fps + w->fps_len, from->fps, from->fps_len);
	w->mods_len += from->mods_len;
	w->fps_len += from->fps_len;
	w->nmods += from->nmods;
	w->ntmpls += from->ntmpls;
	return BT_OK;
}

enum bt_status kmod_index_finish(struct kmod_index_writer *w, uint8_t **out, size_t *len)
{
	size_t n = INDEX_HDR + w->mods_len + w->fps_len;
	uint8_t *p = malloc(n);
	if (!p)
		return BT_ERR_NOMEM;
	memcpy(p, INDEX_MAGIC, 4);
	bt_put32(p + 4, w->nmods);
	bt_put32(p + 8, w->ntmpls);
	if (w->mods_len)
		memcpy(p + INDEX_HDR, w->mods, w->mods_len);
	if (w->fps_len)
		memcpy(p + INDEX_HDR + w->mods_len, w->fps, w->fps_len);
	*out = p;
	*len = n;
	return BT_OK;
}

void kmod_index_writer_fini(struct kmod_index_writer *w)
{
	free(w->mods);
	free(w->fps);
	memset(w, 0, sizeof(*w));
}

#define SMALL_INDEX (1u << 16) /* entries: sorted by comparison below this */

static int fp_cmp(const void *a, const void *b)
{
	const struct kmod_fp *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The (key, idx) order of the counting sort, by comparison: in is sorted
 * in place, then copied with its positions and page-offset starts. */
static void sort_small(struct kmod_fp *in, uint32_t n, struct kmod_index *out)
{
	qsort(in, n, sizeof(*in), fp_cmp);
	uint32_t o = 0;
	for (uint32_t i = 0; i < n; i++) {
		while (o <= (in[i].key >> 8))
			out->start[o++] = i;
		out->pos[in[i].idx] = i;
		out->fps[i] = in[i];
	}
	while (o <= 4096)
		out->start[o++] = n;
}

enum bt_status kmod_index_parse(const uint8_t *p, size_t len, struct kmod_index *out)
{
	memset(out, 0, sizeof(*out));
	if (len < INDEX_HDR || memcmp(p, INDEX_MAGIC, 4) != 0)
		return BT_ERR_FORMAT;
	uint32_t nmods = bt_get32(p + 4), n = bt_get32(p + 8);
	if ((uint64_t)nmods * INDEX_MOD_BYTES + (uint64_t)n * INDEX_FP_BYTES != len - INDEX_HDR)
		return BT_ERR_FORMAT;
	out->base = calloc((size_t)nmods + 1, sizeof(*out->base));
	out->raw_len = calloc((size_t)nmods + 1, sizeof(*out->raw_len));
	out->cost = calloc((size_t)nmods + 1, sizeof(*out->cost));
	out->fps = calloc(n ? n : 1, sizeof(*out->fps));
	out->pos = calloc(n ? n : 1, sizeof(*out->pos));
	out->off = calloc(n ? n : 1, sizeof(*out->off));
	out->sec = calloc(n ? n : 1, sizeof(*out->sec));
	/* per key, for the counting sort of a large index (a small one, e.g.
	 * btvm's user templates, is sorted by comparison instead: zeroing 4 MiB
	 * costs ~1,000 page faults, ~10 ms on a virtualised host) */
	bool small = n < SMALL_INDEX;
	uint32_t *count = small ? NULL : calloc((1u << 20) + 1, sizeof(*count));
	struct kmod_fp *in = calloc(n ? n : 1, sizeof(*in));
	if (!out->base || !out->raw_len || !out->cost || !out->fps || !out->pos || !out->off ||
	    !out->sec || (!small && !count) || !in) {
		free(count);
		free(in);
		kmod_index_fini(out);
		return BT_ERR_NOMEM;
	}
	const uint8_t *m = p + INDEX_HDR, *f = m + (size_t)nmods * INDEX_MOD_BYTES;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < nmods; i++) {
		const uint8_t *e = m + (size_t)i * INDEX_MOD_BYTES;
		uint32_t nt = bt_get32(e), rl = bt_get32(e + 4), nrel = bt_get32(e + 8);
		uint32_t nsecs = bt_get32(e + 12);
		out->base[i] = (uint32_t)sum;
		sum += nt;
		out->raw_len[i] = rl;
		/* what kmod_pack_parse() allocates for it, and the pack itself */
		out->cost[i] = pack_cost(nt, rl, nrel, nsecs);
	}
	if (sum != n)
		goto err_format;
	out->base[nmods] = n;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = f + (size_t)i * INDEX_FP_BYTES;
		struct kmod_fp *fp = &in[i];
		uint16_t o = bt_get16(e);
		fp->cover = e[2];
		fp->fmask = bt_get64(e + 4);
		if (o >= 4096 || fp->cover == 0 || fp->cover > KMOD_FP_COVER || (fp->fmask & 1) ||
		    (fp->cover < 64 && fp->fmask >> fp->cover))
			goto err_format;
		fp->key = (uint32_t)o << 8 | e[3];
		fp->hash = bt_get32(e + 12);
		fp->idx = i;
		out->off[i] = bt_get32(e + 16);
		out->sec[i] = e[20];
		if (!small)
			count[fp->key + 1]++;
	}
	if (small) {
		sort_small(in, n, out);
	} else { /* a stable counting sort by key: (key, idx) order */
		for (uint32_t k = 0; k < (1u << 20); k++)
			count[k + 1] += count[k];
		for (uint32_t o = 0; o <= 4096; o++)
			out->start[o] = count[o << 8];
		for (uint32_t i = 0; i < n; i++) {
			out->pos[i] = count[in[i].key];
			out->fps[count[in[i].key]++] = in[i];
		}
	}
	free(count);
	free(in);
	out->nmods = nmods;
	out->n = n;
	return BT_OK;
err_format:
	free(count);
	free(in);
	kmod_index_fini(out);
	return BT_ERR_FORMAT;
}

size_t kmod_index_first(const struct kmod_index *x, uint32_t key)
{
	size_t lo = x->start[key >> 8], hi = x->start[(key >> 8) + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (x->fps[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void kmod_index_fini(struct kmod_index *x)
{
	free(x->base);
	free(x->raw_len);
	free(x->cost);
	free(x->fps);
	free(x->pos);
	free(x->off);
	free(x->sec);
	memset(x, 0, sizeof(*x));
}

bool kmod_index_consistent(const struct kmod_index *x, uint32_t mod, const struct kmod_pack *pk)
{
	if (mod >= x->nmods || pk->n != x->base[mod + 1] - x->base[mod])
		return false;
	uint64_t nrel = 0;
	for (size_t j = 0; j < pk->n; j++)
		nrel += pk->tmpls[j].t.n_relocs;
	if (x->cost[mod] != pack_cost(pk->n, x->raw_len[mod], nrel, pk->nsecs))
		return false;
	for (size_t j = 0; j < pk->n; j++) {
		uint8_t e[INDEX_FP_BYTES];
		fp_of(&pk->tmpls[j], e);
		uint32_t want = x->base[mod] + (uint32_t)j, key = (uint32_t)bt_get16(e) << 8 | e[3];
		size_t r = kmod_index_first(x, key);
		while (r < x->n && x->fps[r].key == key && x->fps[r].idx < want)
			r++;
		if (r == x->n || x->fps[r].key != key || x->fps[r].idx != want ||
		    x->fps[r].cover != e[2] || x->fps[r].fmask != bt_get64(e + 4) ||
		    x->fps[r].hash != bt_get32(e + 12) || x->off[want] != bt_get32(e + 16) ||
		    x->sec[want] != e[20])
			return false;
	}
	return true;
}
