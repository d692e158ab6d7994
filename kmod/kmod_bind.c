/*
 * kmod/ (kmod.h): binding module templates to the code a guest executes,
 * with packs fetched on their first match (docs/kmod.md, "Binding").
 *
 * States of a module's pack:
 *
 *   ABSENT --first fingerprint match [load_pack]--> RESIDENT
 *   RESIDENT --LRU, to fit the budget [evict]--> ABSENT
 *   ABSENT --fetch/parse/consistency failure [load_pack]--> BAD (never again)
 *
 * Invariants
 *  1. Resident packs hold at most `budget` bytes (a pack's raw length plus
 *     what kmod_pack_parse() allocates for it, known from the index before
 *     it is fetched); a pack larger than the budget alone is BAD.
 *  2. A template is instantiated only from a pack that the fetch function
 *     returned (the database checked its tag), that parsed, and whose every
 *     template has the fingerprint the index gives it.
 *  3. A fetch returning BT_ERR_AUTH stops all binding (the database is
 *     untrusted); kmod_binder_find() returns it once, then finds nothing.
 *  4. What kmod_binder_find() returns is xlat_tmpl_instantiate()'s: the
 *     bytes at rip outside the recorded fields equal the template's.
 *  5. Placements (where a bound template says its module's section lies in
 *     the guest) only choose which template to try first: inside one, the
 *     template at that section offset, then the fingerprints as outside; a
 *     stale placement (the module unloaded, another loaded there) costs a
 *     failed try and is replaced by the next placement that overlaps it.
 */
#include "kmod/kmod.h"

#include "pretrans/base/log.h"

#include <stdlib.h>
#include <string.h>

enum pack_state { PACK_ABSENT = 0, PACK_RESIDENT, PACK_BAD };

struct bind_mod {
	enum pack_state state;
	uint8_t *raw;
	size_t raw_len;
	struct kmod_pack pk;
	uint64_t cost;
	uint64_t last_use, loaded_at; /* the binder's clock */
};

/* Where the guest put a module's section (learnt from a bound template). */
struct placement {
	gva_t base;
	uint64_t size;
	uint32_t mod, sec;
};
#define MAX_PLACEMENTS 256

struct kmod_binder {
	struct kmod_index idx;
	struct bind_mod *mods;
	kmod_fetch_fn fetch;
	void *opaque;
	uint64_t budget, clock;
	bool stopped;
	uint8_t *code; /* instantiation buffer */
	uint32_t code_cap;
	struct bt_exit exits[XLAT_MAX_EXITS];
	struct kmod_bind_stats st;
	const struct kmod_tmpl *last; /* kmod_binder_last */
	struct placement place[MAX_PLACEMENTS];
	size_t nplace, next_place; /* next_place: the slot replaced when full */
};

enum bt_status kmod_binder_create(struct kmod_index *idx, kmod_fetch_fn fetch, void *opaque,
				  uint64_t budget, struct kmod_binder **out)
{
	struct kmod_binder *b = calloc(1, sizeof(*b));
	if (!b)
		return BT_ERR_NOMEM;
	b->mods = calloc(idx->nmods ? idx->nmods : 1, sizeof(*b->mods));
	if (!b->mods) {
		free(b);
		return BT_ERR_NOMEM;
	}
	b->idx = *idx;
	memset(idx, 0, sizeof(*idx));
	b->fetch = fetch;
	b->opaque = opaque;
	b->budget = budget;
	*out = b;
	return BT_OK;
}

enum bt_status kmod_binder_open(const uint8_t *index, size_t len, uint32_t nmods,
				kmod_fetch_fn fetch, void *opaque, uint64_t budget,
				struct kmod_binder **out, size_t *n_fps)
{
	struct kmod_index idx;
	enum bt_status s = kmod_index_parse(index, len, &idx);
	if (s == BT_OK && idx.nmods != nmods)
		s = BT_ERR_FORMAT;
	if (s == BT_OK) {
		*n_fps = idx.n;
		s = kmod_binder_create(&idx, fetch, opaque, budget, out);
	}
	kmod_index_fini(&idx); /* zeroed when the binder took it */
	return s;
}

static void evict(struct kmod_binder *b, struct bind_mod *m)
{
	kmod_pack_fini(&m->pk);
	free(m->raw);
	m->raw = NULL;
	m->state = PACK_ABSENT;
	b->st.resident_bytes -= m->cost;
}

void kmod_binder_destroy(struct kmod_binder *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < b->idx.nmods; i++)
		if (b->mods[i].state == PACK_RESIDENT)
			evict(b, &b->mods[i]);
	kmod_index_fini(&b->idx);
	free(b->mods);
	free(b->code);
	free(b);
}

/* Make pack mi resident (evicting the least recently used ones to fit). */
static enum bt_status load_pack(struct kmod_binder *b, uint32_t mi)
{
	struct bind_mod *m = &b->mods[mi];
	m->cost = b->idx.cost[mi];
	if (m->cost > b->budget) {
		bt_warn(LOG_KMOD,
			"module %u's templates need %llu MB, more than the %llu MB budget: its "
			"code is translated at run time",
			mi + 1, (unsigned long long)(m->cost >> 20),
			(unsigned long long)(b->budget >> 20));
		m->state = PACK_BAD;
		b->st.packs_bad++;
		return BT_OK;
	}
	while (b->st.resident_bytes + m->cost > b->budget) {
		struct bind_mod *lru = NULL;
		for (uint32_t i = 0; i < b->idx.nmods; i++)
			if (b->mods[i].state == PACK_RESIDENT &&
			    (!lru || b->mods[i].last_use < lru->last_use))
				lru = &b->mods[i];
		evict(b, lru); /* one exists: resident_bytes > 0 */
		b->st.packs_evicted++;
	}
	enum bt_status s = b->fetch(b->opaque, mi, &m->raw, &m->raw_len);
	if (s == BT_ERR_AUTH) {
		b->stopped = true;
		return s;
	}
	if (s == BT_OK && m->raw_len == b->idx.raw_len[mi] &&
	    kmod_pack_parse(m->raw, m->raw_len, &m->pk) == BT_OK) {
		if (kmod_index_consistent(&b->idx, mi, &m->pk)) {
			m->state = PACK_RESIDENT;
			m->loaded_at = ++b->clock;
			b->st.resident_bytes += m->cost;
			if (b->st.resident_bytes > b->st.peak_bytes)
				b->st.peak_bytes = b->st.resident_bytes;
			b->st.packs_inflated++;
			b->st.inflated_bytes += m->raw_len;
			return BT_OK;
		}
		kmod_pack_fini(&m->pk);
	}
	if (s == BT_OK || s == BT_ERR_FORMAT)
		bt_warn(LOG_KMOD,
			"module %u of the database does not match its fingerprint index: not used",
			mi + 1);
	free(m->raw);
	m->raw = NULL;
	m->state = PACK_BAD;
	b->st.packs_bad++;
	return s == BT_OK || s == BT_ERR_FORMAT ? BT_OK : s;
}

static uint32_t module_of(const struct kmod_index *x, uint32_t idx)
{
	uint32_t lo = 0, hi = x->nmods; /* base[lo] <= idx < base[hi] */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (x->base[mid] <= idx)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Module mi's section of kt lies at rip - kt->offset: replaces the
 * placements it overlaps. */
static void place(struct kmod_binder *b, uint32_t mi, const struct kmod_tmpl *kt, gva_t rip)
{
	struct placement p = {rip - kt->offset, b->mods[mi].pk.secs[kt->sec].size, mi, kt->sec};
	size_t i, slot = SIZE_MAX;
	for (i = 0; i < b->nplace; i++) {
		struct placement *q = &b->place[i];
		if (q->base == p.base && q->size == p.size && q->mod == p.mod && q->sec == p.sec)
			return;
		if (q->base < p.base + p.size && p.base < q->base + q->size) {
			if (slot == SIZE_MAX)
				slot = i;
			else /* drop a second overlapped one */
				*q = b->place[--b->nplace], i--;
		}
	}
	if (slot == SIZE_MAX) {
		if (b->nplace < MAX_PLACEMENTS) {
			slot = b->nplace++;
		} else {
			slot = b->next_place;
			b->next_place = (b->next_place + 1) % MAX_PLACEMENTS;
		}
	}
	b->place[slot] = p;
}

/* The template of pack pk at (sec, off), or NULL (templates are sorted by
 * (sec, offset)). */
static const struct kmod_tmpl *tmpl_at(const struct kmod_pack *pk, uint32_t sec, uint64_t off)
{
	size_t lo = 0, hi = pk->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kmod_tmpl *t = &pk->tmpls[mid];
		if (t->sec < sec || (t->sec == sec && t->offset < off))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < pk->n && pk->tmpls[lo].sec == sec && pk->tmpls[lo].offset == off
		   ? &pk->tmpls[lo]
		   : NULL;
}

/* Does the fingerprint match the guest bytes?  (The hash of the last
 * (cover, mask) asked is kept: entries of a key often share them.) */
struct hash_cache {
	uint32_t cover, hash;
	uint64_t fmask;
};
static bool fp_hit(struct hash_cache *c, const struct kmod_fp *fp, const uint8_t *bytes, size_t got)
{
	if (fp->cover > got)
		return false;
	if (fp->cover != c->cover || fp->fmask != c->fmask) {
		c->cover = fp->cover;
		c->fmask = fp->fmask;
		c->hash = kmod_fp_hash(bytes, fp->cover, fp->fmask);
	}
	return c->hash == fp->hash;
}

/* A module not resident whose template idx matches (first in index order). */
struct cand {
	uint32_t mod, idx;
};
#define MAX_CANDS  64
#define NEIGHBOURS 16 /* templates on each side checked */

/* How many of module mi's templates next to template idx (in the same
 * section, NEIGHBOURS on each side) match the guest where idx at rip puts
 * them: evidence, read from the index and guest memory only, that mi is the
 * module loaded there. */
static unsigned neighbours(const struct kmod_binder *b, const struct xlat_source *src, uint32_t mi,
			   uint32_t idx, gva_t rip, unsigned *n_checked)
{
	const struct kmod_index *x = &b->idx;
	gva_t sbase = rip - x->off[idx];
	unsigned score = 0;
	for (int d = -NEIGHBOURS; d <= NEIGHBOURS; d++) {
		int64_t k = (int64_t)idx + d;
		if (d == 0 || k < x->base[mi] || k >= x->base[mi + 1] || x->sec[k] != x->sec[idx])
			continue;
		++*n_checked;
		const struct kmod_fp *fp = &x->fps[x->pos[k]];
		gva_t va = sbase + x->off[k];
		uint8_t g[KMOD_FP_COVER];
		if ((va & 0xfff) != fp->key >> 8 ||
		    src->read(src->opaque, va, g, fp->cover) < fp->cover ||
		    g[0] != (fp->key & 0xff))
			continue;
		score += kmod_fp_hash(g, fp->cover, fp->fmask) == fp->hash;
	}
	return score;
}

/* Instantiate template idx (module mi, resident) at rip into xb. */
static enum bt_status try_tmpl(struct kmod_binder *b, uint32_t mi, uint32_t idx, gva_t rip,
			       const uint8_t *bytes, size_t got, struct bt_block *xb, bool *found,
			       enum xlat_tmpl_result *res)
{
	struct bind_mod *m = &b->mods[mi];
	m->last_use = ++b->clock;
	const struct kmod_tmpl *kt = &m->pk.tmpls[idx - b->idx.base[mi]];
	const struct xlat_tmpl *t = &kt->t;
	if (res)
		*res = XLAT_TMPL_BYTES;
	if (t->guest_len > got)
		return BT_OK;
	if (t->code_len > b->code_cap) {
		uint8_t *c = realloc(b->code, t->code_len);
		if (!c)
			return BT_ERR_NOMEM;
		b->code = c;
		b->code_cap = t->code_len;
	}
	enum xlat_tmpl_result r = xlat_tmpl_instantiate(t, rip, bytes, b->code, b->exits);
	if (res)
		*res = r;
	if (r != XLAT_TMPL_OK)
		return BT_OK;
	memset(xb, 0, sizeof(*xb));
	xb->guest_start = rip;
	xb->guest_len = t->guest_len;
	xb->n_insns = kt->n_insns;
	xb->guest_hash = xlat_hash_bytes(bytes, t->guest_len);
	xb->flags = t->flags;
	xb->code = b->code;
	xb->code_len = t->code_len;
	memcpy(xb->exits, b->exits, t->n_exits * sizeof(*b->exits));
	xb->n_exits = t->n_exits;
	xb->pcmap = kt->pcmap;
	xb->pcmap_len = kt->pcmap_len;
	b->st.bound++;
	b->last = kt;
	*found = true;
	place(b, mi, kt, rip);
	return BT_OK;
}

enum bt_status kmod_binder_find(struct kmod_binder *b, const struct xlat_source *src, gva_t rip,
				const uint8_t *bytes, size_t got, struct bt_block *xb, bool *found)
{
	*found = false;
	b->last = NULL;
	if (b->stopped || got == 0)
		return BT_OK;
	/* inside a placement: its template at that offset first */
	for (size_t i = 0; i < b->nplace; i++) {
		const struct placement *p = &b->place[i];
		if (rip < p->base || rip - p->base >= p->size)
			continue;
		struct bind_mod *m = &b->mods[p->mod];
		if (m->state == PACK_ABSENT)
			BT_TRY(load_pack(b, p->mod));
		const struct kmod_tmpl *kt =
		    m->state == PACK_RESIDENT ? tmpl_at(&m->pk, p->sec, rip - p->base) : NULL;
		enum xlat_tmpl_result r = XLAT_NTMPL_RESULTS; /* no template there */
		if (kt) {
			uint32_t idx = b->idx.base[p->mod] + (uint32_t)(kt - m->pk.tmpls);
			BT_TRY(try_tmpl(b, p->mod, idx, rip, bytes, got, xb, found, &r));
			if (*found) {
				b->st.placement_hits++;
				return BT_OK;
			}
		}
		b->st.placement_misses[r]++;
		bt_debug(LOG_KMOD, "%#llx: module %u section %u offset %#llx: %s",
			 (unsigned long long)rip, p->mod + 1, p->sec,
			 (unsigned long long)(rip - p->base),
			 r == XLAT_NTMPL_RESULTS ? "no template" : xlat_tmpl_result_str(r));
		break;
	}
	uint32_t key = (uint32_t)(rip & 0xfff) << 8 | bytes[0];
	size_t first = kmod_index_first(&b->idx, key), end = first;
	while (end < b->idx.n && b->idx.fps[end].key == key)
		end++;
	/* Resident packs first: a block several modules share (the same bytes
	 * outside relocated fields) needs no other pack.  Then a pack is fetched
	 * for one module not resident: the only one that matches, or the one
	 * whose neighbouring templates match the guest too where this one places
	 * them (a block several modules share says nothing about which one the
	 * guest loaded); else none (the block is translated; the module's next
	 * own block places it). */
	struct hash_cache hc = {0};
	struct cand cands[MAX_CANDS];
	size_t nc = 0;
	bool more = false;
	for (size_t r = first; r < end; r++) {
		const struct kmod_fp *fp = &b->idx.fps[r];
		if (!fp_hit(&hc, fp, bytes, got))
			continue;
		uint32_t mi = module_of(&b->idx, fp->idx);
		if (b->mods[mi].state == PACK_RESIDENT) {
			b->st.fp_matches++;
			BT_TRY(try_tmpl(b, mi, fp->idx, rip, bytes, got, xb, found, NULL));
			if (*found)
				return BT_OK;
		} else if (b->mods[mi].state == PACK_ABSENT &&
			   (nc == 0 ||
			    cands[nc - 1].mod != mi)) { /* idx order: a module's are together */
			if (nc < MAX_CANDS)
				cands[nc++] = (struct cand){mi, fp->idx};
			else
				more = true;
		}
	}
	if (nc == 0)
		return BT_OK;
	size_t best = 0;
	if (src) {
		unsigned top = 0, second = 0, checked = 0;
		for (size_t i = 0; i < nc; i++) {
			unsigned n = 0,
				 sc = neighbours(b, src, cands[i].mod, cands[i].idx, rip, &n);
			if (sc > top) {
				second = top;
				top = sc;
				best = i;
				checked = n;
			} else if (sc > second) {
				second = sc;
			}
			if (nc == 1)
				checked = n;
		}
		/* one module with more neighbours matching than any other (the
		 * same code in several modules would serve this block from any of
		 * them, but would place the wrong module for the next ones); a
		 * lone candidate needs one matching neighbour too, unless its
		 * section has no other template (a coincidence of one block would
		 * place a module the guest did not load); more than MAX_CANDS
		 * candidates: not all scored, none chosen */
		bool ok = more	    ? false
			  : nc == 1 ? top > 0 || checked == 0
				    : top > 0 && top > second;
		if (!ok) {
			bt_debug(LOG_KMOD,
				 "%#llx: %zu%s modules not resident match, neighbours %u and %u: "
				 "none fetched",
				 (unsigned long long)rip, nc, more ? "+" : "", top, second);
			b->st.ambiguous++;
			return BT_OK;
		}
		if (nc > 1)
			b->st.disambiguated++;
	} else if (nc > 1) {
		b->st.ambiguous++;
		return BT_OK;
	}
	uint32_t want = cands[best].mod;
	bt_debug(LOG_KMOD, "%#llx: fetching module %u (of %zu candidates)", (unsigned long long)rip,
		 want + 1, nc);
	BT_TRY(load_pack(b, want));
	if (b->mods[want].state != PACK_RESIDENT)
		return BT_OK;
	for (size_t r = first; r < end; r++) {
		const struct kmod_fp *fp = &b->idx.fps[r];
		if (fp->idx < b->idx.base[want] || fp->idx >= b->idx.base[want + 1] ||
		    !fp_hit(&hc, fp, bytes, got))
			continue;
		b->st.fp_matches++;
		BT_TRY(try_tmpl(b, want, fp->idx, rip, bytes, got, xb, found, NULL));
		if (*found)
			return BT_OK;
	}
	return BT_OK;
}

const struct kmod_bind_stats *kmod_binder_stats(const struct kmod_binder *b)
{
	return &b->st;
}

const struct kmod_tmpl *kmod_binder_last(const struct kmod_binder *b)
{
	return b->last;
}
