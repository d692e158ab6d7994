/*
 * kmod/ (kmod.h): the fingerprint index of a database's module templates,
 * what btvm loads at start instead of every pack (docs/kmod.md, "Binding").
 *
 * One fingerprint per template: the page offset of its nominal start and
 * its first KMOD_FP_BYTES guest bytes with the bytes of recorded fields
 * (xlat_tmpl_field_mask) zeroed and left out of the mask.  It selects
 * candidates only: a template is used only after its module's pack was
 * fetched (tag checked), found consistent with the index, and
 * xlat_tmpl_instantiate() accepted the guest bytes.
 *
 * Format (little-endian; zstd in the database's packs table):
 *   "KMI1" u32 nmods u32 ntmpls
 *   nmods  x { u32 n_templates, u32 pack raw length }   module i is row id i + 1
 *   ntmpls x { u16 page offset, u8 mask, u8 bytes[8] } in (module, template) order
 *
 * Invariants
 *  1. Parsing bounds everything: offsets < 4096, counts summing to ntmpls,
 *     bytes outside the mask zero, exact length; else BT_ERR_FORMAT.
 *  2. A parsed index lists each bucket (page offset) in (module, template)
 *     order, so the first match is the same on every run.
 */
#include "kmod/kmod.h"

#include "pretrans/base/le.h"
#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>

#define INDEX_MAGIC	"KMI1"
#define INDEX_HDR	12
#define INDEX_MOD_BYTES 8
#define INDEX_FP_BYTES	(3 + KMOD_FP_BYTES)
#define FP_MAX_GUEST	GUEST_PAGE_SIZE /* longer: no byte is compared */

static void fp_of(const struct xlat_tmpl *t, uint8_t *out)
{
	uint8_t fmask[FP_MAX_GUEST / 8];
	uint8_t mask = 0;
	memset(out, 0, INDEX_FP_BYTES);
	bt_put16(out, (uint16_t)(t->guest_start & 0xfff));
	if (t->guest_len <= FP_MAX_GUEST)
		xlat_tmpl_field_mask(t, fmask);
	else
		memset(fmask, 0xff, sizeof(fmask)); /* instantiation refuses it anyway */
	for (uint32_t i = 0; i < KMOD_FP_BYTES && i < t->guest_len; i++)
		if (!(fmask[i / 8] & (1u << (i % 8)))) {
			mask |= (uint8_t)(1u << i);
			out[3 + i] = t->guest[i];
		}
	out[2] = mask;
}

enum bt_status kmod_index_add(struct kmod_index_writer *w, const uint8_t *pack, size_t len)
{
	struct kmod_pack pk;
	BT_TRY(kmod_pack_parse(pack, len, &pk));
	enum bt_status s = BT_ERR_NOMEM;
	if (len > UINT32_MAX || pk.n > UINT32_MAX - w->ntmpls) {
		s = BT_ERR_RANGE;
		goto out;
	}
	if (!BT_VEC_RESERVE(w->mods, w->mods_cap, w->mods_len + INDEX_MOD_BYTES, 1024) ||
	    !BT_VEC_RESERVE(w->fps, w->fps_cap, w->fps_len + pk.n * INDEX_FP_BYTES, 4096))
		goto out;
	bt_put32(w->mods + w->mods_len, (uint32_t)pk.n);
	bt_put32(w->mods + w->mods_len + 4, (uint32_t)len);
	w->mods_len += INDEX_MOD_BYTES;
	for (size_t i = 0; i < pk.n; i++, w->fps_len += INDEX_FP_BYTES)
		fp_of(&pk.tmpls[i].t, w->fps + w->fps_len);
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
	out->fps = calloc(n ? n : 1, sizeof(*out->fps));
	if (!out->base || !out->raw_len || !out->fps) {
		kmod_index_fini(out);
		return BT_ERR_NOMEM;
	}
	const uint8_t *m = p + INDEX_HDR, *f = m + (size_t)nmods * INDEX_MOD_BYTES;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < nmods; i++) {
		out->base[i] = (uint32_t)sum;
		sum += bt_get32(m + (size_t)i * INDEX_MOD_BYTES);
		out->raw_len[i] = bt_get32(m + (size_t)i * INDEX_MOD_BYTES + 4);
	}
	if (sum != n)
		goto err_format;
	out->base[nmods] = n;
	/* count per page offset, then place (a stable counting sort) */
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = f + (size_t)i * INDEX_FP_BYTES;
		uint16_t o = bt_get16(e);
		if (o >= 4096)
			goto err_format;
		for (int b = 0; b < KMOD_FP_BYTES; b++)
			if (!(e[2] & (1u << b)) && e[3 + b])
				goto err_format;
		out->start[o + 1]++;
	}
	for (int o = 0; o < 4096; o++)
		out->start[o + 1] += out->start[o];
	uint32_t fill[4096];
	memcpy(fill, out->start, sizeof(fill));
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = f + (size_t)i * INDEX_FP_BYTES;
		struct kmod_fp *fp = &out->fps[fill[bt_get16(e)]++];
		fp->bytes = bt_get64(e + 3);
		fp->idx = i;
		fp->mask = e[2];
	}
	out->nmods = nmods;
	out->n = n;
	return BT_OK;
err_format:
	kmod_index_fini(out);
	return BT_ERR_FORMAT;
}

void kmod_index_fini(struct kmod_index *x)
{
	free(x->base);
	free(x->raw_len);
	free(x->fps);
	memset(x, 0, sizeof(*x));
}

uint64_t kmod_fp_mask64(uint8_t mask)
{
	uint64_t m = 0;
	for (int b = 0; b < KMOD_FP_BYTES; b++)
		if (mask & (1u << b))
			m |= 0xffull << (8 * b);
	return m;
}

bool kmod_index_consistent(const struct kmod_index *x, uint32_t mod, const struct kmod_pack *pk)
{
	if (mod >= x->nmods || pk->n != x->base[mod + 1] - x->base[mod])
		return false;
	for (size_t j = 0; j < pk->n; j++) {
		uint8_t e[INDEX_FP_BYTES];
		fp_of(&pk->tmpls[j].t, e);
		/* find the entry of (mod, j) in its bucket: buckets are in index order */
		uint32_t want = x->base[mod] + (uint32_t)j, o = bt_get16(e);
		uint32_t lo = x->start[o], hi = x->start[o + 1];
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (x->fps[mid].idx < want)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == x->start[o + 1] || x->fps[lo].idx != want ||
		    x->fps[lo].bytes != bt_get64(e + 3) || x->fps[lo].mask != e[2])
			return false;
	}
	return true;
}
