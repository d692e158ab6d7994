/*
 * The boot profile of the translation-cache database (see tcdb.h,
 * docs/db.md "Packs"): every block version a --learn boot installed, in
 * first-use order, with its payload, stored contiguously as one pack.  A
 * later boot reads it with one sequential read, one tag check and one
 * decompression (tcdb_load_index), and then finds a block with one hash
 * probe instead of a B-tree probe, a row tag and a chunk per block.
 *
 * Several versions per guest start: Linux patches its own text while it
 * boots (alternatives, static calls, jump labels...), so the code at one
 * start differs before and after; the profile keeps every (start, guest
 * hash) pair the boot ran, and tcdb_lookup_match() hands out the first
 * version, then the row of `blocks`, whose guest bytes the caller finds in
 * guest memory.
 *
 * Invariants
 *  1. The profile pack (kind 5) is two parts (tcdb_pack_get_split): a head
 *     of u64 head length, u64 0, then one entry per version, and a tail of
 *     host code.  An entry is: u64 start, u64 guest hash, u32 guest length
 *     (1..4096), u32 instructions, u32 flags, u32 code length (> 0), u32
 *     pc map length, u8 exits (<= BT_MAX_EXITS), u32 code offset in the
 *     tail, then the pc map and the exit records (TCDB_EXIT_REC each),
 *     little endian.  The codes lie in the tail in entry order, each
 *     16-byte aligned, none overlapping the one before.  Every entry is
 *     bounds-checked when the pack is loaded; a bad one is BT_ERR_FORMAT and
 *     nothing of the profile is used.  Exit kinds are checked against the
 *     caller's limits when an entry is handed out.  (Kind 2, the code
 *     inline in each entry, is no longer read.)
 *  2. The pack's tag (db/tcdb_pack.c) matched before anything of it is
 *     decompressed; the tail goes straight where the caller's code sink
 *     says (tcdb_set_code_sink: btvm's code cache), so installing a
 *     profile block copies no code.  Blocks handed out point into the
 *     loaded pack and the tail, valid until tcdb_close.
 *  3. Recording keeps one entry per (start, guest hash): the first one.
 *  4. The predicted-patching pack (kind 3, `pretrans build`) holds, after
 *     a 16-byte header (the CPU profile's hash, 0), fixed 40-byte entries:
 *     u64 start, u64 guest hash, u32 guest length, u32 instructions, u32
 *     flags, u32 payload offset, i64 chunk id; the payloads are in chunks
 *     (~64 KiB of code each, tagged and inflated as a row's), read only
 *     when a version is taken.  It is kept after loading only when that
 *     hash is the caller's (tcdb_expect.cpu_profile_hash), and its
 *     versions are offered after the boot profile's and before the row.
 *  5. Versions of a start are offered in first-use order whatever the
 *     order of the look-ups; the entry after the last one taken is looked
 *     at first only when it is its start's first version (offer).
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROF_HDR     37	  /* a recorded entry: the fields, then code, pc map, exits */
#define PROF2_HDR    41	  /* a stored one: the fields and the code offset, pc map, exits */
#define PROF2_HEAD   16	  /* the head's header: its length, 0 */
#define PROF_MAX_LEN 4096 /* guest bytes of a block */
#define PRED_HDR     16	  /* the predicted pack's header: CPU profile hash, 0 */
#define PRED_ENT     40	  /* its entries: start, hash, len, insns, flags, payload_off, chunk */
#define PRED_CHUNK   (64u << 10) /* payload bytes per chunk, as a build's units */

struct prof_ent {
	gva_t va;
	uint32_t off;	    /* of the entry in raw */
	uint32_t next : 31; /* index + 1 of the next version of va, 0 = none */
	uint32_t first : 1; /* va's first version */
};

struct tcdb_prof {
	/* loaded */
	uint8_t *raw;
	size_t raw_len, base; /* entries start at raw + base */
	size_t fixed;	      /* predicted: every entry PRED_ENT bytes, payload in a chunk */
	uint8_t *code;	      /* profile: the codes (the pack's tail) */
	size_t code_len;
	bool code_owned;      /* ... in db's memory, not the code sink's */
	struct prof_ent *ent; /* ent_cap of them */
	size_t n, ent_cap;
	size_t cursor; /* the entry after the last one taken (invariant 5) */
	uint32_t *tab; /* open addressing: index + 1 of va's first version, 0 = empty */
	size_t tab_mask;
	/* recorded (read-write databases) */
	uint8_t *rec;
	size_t rec_len, rec_cap, rec_n;
	uint64_t *seen; /* (start, hash) keys recorded, open addressing, 0 = empty */
	size_t seen_mask, seen_n;
	/* predicted, building: the chunk being filled and where its entries
	 * start in rec (their chunk id is written when it is stored) */
	struct tcdb_chunk chunk;
	size_t chunk_first;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static struct tcdb_prof *prof_of(struct tcdb *db)
{
	if (!db->prof)
		db->prof = calloc(1, sizeof(*db->prof));
	return db->prof;
}

static struct tcdb_prof *pred_of(struct tcdb *db)
{
	if (!db->pred)
		db->pred = calloc(1, sizeof(*db->pred));
	return db->pred;
}

/* Forget the loaded profile (its pack bytes, entries and table). */
static void drop_loaded(struct tcdb_prof *p)
{
	tcdb_pack_free(p->raw, p->raw_len);
	if (p->code_owned)
		tcdb_pack_free(p->code, p->code_len);
	p->code = NULL;
	p->code_len = 0;
	p->code_owned = false;
	if (p->ent)
		tcdb_pack_free((uint8_t *)p->ent, p->ent_cap * sizeof(*p->ent));
	if (p->tab)
		tcdb_pack_free((uint8_t *)p->tab, (p->tab_mask + 1) * sizeof(*p->tab));
	p->raw = NULL;
	p->raw_len = 0;
	p->ent = NULL;
	p->tab = NULL;
	p->tab_mask = 0;
	p->n = 0;
}

static void prof_free(struct tcdb_prof *p)
{
	if (!p)
		return;
	drop_loaded(p);
	free(p->rec);
	free(p->seen);
	tcdb_chunk_fini(&p->chunk);
	free(p);
}

void tcdb_profile_free(struct tcdb *db)
{
	prof_free(db->prof);
	prof_free(db->pred);
	db->prof = db->pred = NULL;
}

/* ---------------------------------------------------------------- recording */

static bool seen_add(struct tcdb_prof *p, uint64_t key)
{
	if (key == 0)
		key = 1;
	if (2 * (p->seen_n + 1) > p->seen_mask) {
		size_t cap = p->seen_mask ? 2 * (p->seen_mask + 1) : 4096;
		uint64_t *t = calloc(cap, sizeof(*t));
		if (!t)
			return false;
		for (size_t i = 0; p->seen && i <= p->seen_mask; i++) {
			if (!p->seen[i])
				continue;
			size_t j = mix(p->seen[i]) & (cap - 1);
			while (t[j])
				j = (j + 1) & (cap - 1);
			t[j] = p->seen[i];
		}
		free(p->seen);
		p->seen = t;
		p->seen_mask = cap - 1;
	}
	size_t j = mix(key) & p->seen_mask;
	for (; p->seen[j]; j = (j + 1) & p->seen_mask)
		if (p->seen[j] == key)
			return false;
	p->seen[j] = key;
	p->seen_n++;
	return true;
}

static enum bt_status record(struct tcdb_prof *p, const struct bt_block *b)
{
	if (b->n_exits > BT_MAX_EXITS || b->code_len == 0 || b->guest_len == 0 ||
	    b->guest_len > PROF_MAX_LEN || b->refusal)
		return BT_ERR_INVALID;
	if (!p)
		return BT_ERR_NOMEM;
	/* one entry per (start, guest hash): the key mixes both */
	uint64_t key = mix(b->guest_start) ^ b->guest_hash;
	size_t need = PROF_HDR + (size_t)b->code_len + b->pcmap_len + b->n_exits * TCDB_EXIT_REC;
	if (p->rec_len + need > (1u << 30))
		return BT_ERR_RANGE;
	if (!BT_VEC_RESERVE(p->rec, p->rec_cap, p->rec_len + need, 1u << 20))
		return BT_ERR_NOMEM;
	if (!seen_add(p, key))
		return BT_OK; /* recorded already (or no memory for the set: skip it) */
	uint8_t *q = p->rec + p->rec_len;
	bt_put64(q, b->guest_start);
	bt_put64(q + 8, b->guest_hash);
	bt_put32(q + 16, b->guest_len);
	bt_put32(q + 20, b->n_insns);
	bt_put32(q + 24, b->flags);
	bt_put32(q + 28, b->code_len);
	bt_put32(q + 32, b->pcmap_len);
	q[36] = (uint8_t)b->n_exits;
	q += PROF_HDR;
	memcpy(q, b->code, b->code_len);
	q += b->code_len;
	if (b->pcmap_len)
		memcpy(q, b->pcmap, b->pcmap_len);
	q += b->pcmap_len;
	tcdb_exits_encode(b->exits, b->n_exits, q);
	p->rec_len += need;
	p->rec_n++;
	return BT_OK;
}

enum bt_status tcdb_profile_note(struct tcdb *db, const struct bt_block *b)
{
	if (!db->rdwr || db->building)
		return BT_ERR_INVALID;
	return record(prof_of(db), b);
}

/* Store the predicted chunk being filled and give its entries its id. */
static enum bt_status pred_flush(struct tcdb *db, struct tcdb_prof *p)
{
	if (p->chunk.raw_len == 0)
		return BT_OK;
	int64_t id;
	BT_TRY(tcdb_chunk_seal_with(&p->chunk, db->wdict));
	BT_TRY(tcdb_add_chunk(db, &p->chunk, &id));
	for (size_t o = p->chunk_first; o < p->rec_len; o += PRED_ENT)
		bt_put64(p->rec + o + 32, (uint64_t)id);
	tcdb_chunk_reset(&p->chunk);
	p->chunk_first = p->rec_len;
	return BT_OK;
}

enum bt_status tcdb_predicted_note(struct tcdb *db, const struct bt_block *b)
{
	if (!db->building)
		return BT_ERR_INVALID;
	if (b->n_exits > BT_MAX_EXITS || b->code_len == 0 || b->guest_len == 0 ||
	    b->guest_len > PROF_MAX_LEN || b->refusal)
		return BT_ERR_INVALID;
	struct tcdb_prof *p = pred_of(db);
	if (!p)
		return BT_ERR_NOMEM;
	if (!BT_VEC_RESERVE(p->rec, p->rec_cap, p->rec_len + PRED_ENT, 1u << 20))
		return BT_ERR_NOMEM;
	if (!seen_add(p, mix(b->guest_start) ^ b->guest_hash))
		return BT_OK;
	struct tcdb_block c = {.blk = *b};
	BT_TRY(tcdb_chunk_add(&p->chunk, &c));
	uint8_t *q = p->rec + p->rec_len;
	bt_put64(q, b->guest_start);
	bt_put64(q + 8, b->guest_hash);
	bt_put32(q + 16, b->guest_len);
	bt_put32(q + 20, b->n_insns);
	bt_put32(q + 24, b->flags);
	bt_put32(q + 28, c.payload_off);
	bt_put64(q + 32, 0); /* the chunk id, at pred_flush */
	p->rec_len += PRED_ENT;
	p->rec_n++;
	return p->chunk.raw_len >= PRED_CHUNK ? pred_flush(db, p) : BT_OK;
}

enum bt_status tcdb_predicted_write(struct tcdb *db, uint64_t cpu_profile_hash)
{
	struct tcdb_prof *p = db->pred;
	if (!db->building)
		return BT_ERR_INVALID;
	if (!p || p->rec_n == 0)
		return BT_OK;
	BT_TRY(pred_flush(db, p));
	/* the header (PRED_HDR bytes): the CPU profile's hash, then 0 */
	if (!BT_VEC_RESERVE(p->rec, p->rec_cap, p->rec_len + PRED_HDR, 1u << 20))
		return BT_ERR_NOMEM;
	memmove(p->rec + PRED_HDR, p->rec, p->rec_len);
	bt_put64(p->rec, cpu_profile_hash);
	bt_put64(p->rec + 8, 0);
	p->rec_len += PRED_HDR;
	return tcdb_pack_put(db, TCDB_PACK_PREDICTED, TCDB_CODEC_ZSTD, p->rec, p->rec_len,
			     p->rec_n);
}

size_t tcdb_profile_noted(const struct tcdb *db)
{
	return db->prof ? db->prof->rec_n : 0;
}

static size_t align16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

/* The recorded entries as the stored pack (invariant 1) into a new buffer. */
static enum bt_status profile_pack(const struct tcdb_prof *p, uint8_t **out, size_t *out_len)
{
	size_t head = PROF2_HEAD, tail = 0;
	for (size_t o = 0; o < p->rec_len;) {
		const uint8_t *q = p->rec + o;
		size_t clen = bt_get32(q + 28), rest = bt_get32(q + 32) + q[36] * TCDB_EXIT_REC;
		head += PROF2_HDR + rest;
		tail = align16(tail) + clen;
		o += PROF_HDR + clen + rest;
	}
	if (head + tail > (1u << 30))
		return BT_ERR_RANGE;
	uint8_t *b = calloc(1, head + tail ? head + tail : 1);
	if (!b)
		return BT_ERR_NOMEM;
	bt_put64(b, head);
	uint8_t *h = b + PROF2_HEAD;
	size_t at = 0;
	for (size_t o = 0; o < p->rec_len;) {
		const uint8_t *q = p->rec + o;
		size_t clen = bt_get32(q + 28), rest = bt_get32(q + 32) + q[36] * TCDB_EXIT_REC;
		at = align16(at);
		memcpy(h, q, PROF_HDR);
		bt_put32(h + PROF_HDR, (uint32_t)at);
		memcpy(h + PROF2_HDR, q + PROF_HDR + clen, rest);
		memcpy(b + head + at, q + PROF_HDR, clen);
		h += PROF2_HDR + rest;
		at += clen;
		o += PROF_HDR + clen + rest;
	}
	*out = b;
	*out_len = head + tail;
	return BT_OK;
}

enum bt_status tcdb_profile_write(struct tcdb *db)
{
	struct tcdb_prof *p = db->prof;
	if (!p || p->rec_n == 0)
		return BT_OK;
	if (db->untrusted)
		return BT_ERR_AUTH; /* a database that failed a tag takes nothing */
	uint8_t *b;
	size_t len;
	BT_TRY(profile_pack(p, &b, &len));
	enum bt_status s = tcdb_pack_put(db, TCDB_PACK_PROFILE, TCDB_CODEC_LZ4, b, len, p->rec_n);
	free(b);
	if (s == BT_OK) /* the old layout's, replaced */
		s = tcdb_exec(db, "DELETE FROM packs WHERE kind = 2");
	return s;
}

void tcdb_set_code_sink(struct tcdb *db, tcdb_code_sink_fn sink, void *opaque)
{
	db->code_sink = sink;
	db->code_sink_opaque = opaque;
}

/* ---------------------------------------------------------------- loading */

static enum bt_status parse(struct tcdb *db, struct tcdb_prof *p, uint64_t n_items)
{
	if (p->base > p->raw_len ||
	    n_items > (p->raw_len - p->base) / (p->fixed ? p->fixed : PROF_HDR))
		return BT_ERR_FORMAT;
	/* populated memory, as the pack's (tcdb_pack_alloc): page faults cost
	 * more than the parse here */
	size_t cap = 16;
	while (cap < 2 * n_items + 2)
		cap <<= 1;
	p->ent_cap = n_items ? n_items : 1;
	p->ent = (struct prof_ent *)tcdb_pack_alloc(p->ent_cap * sizeof(*p->ent));
	p->tab = (uint32_t *)tcdb_pack_alloc(cap * sizeof(*p->tab)); /* zeroed */
	p->tab_mask = cap - 1;
	if (!p->ent || !p->tab)
		return BT_ERR_NOMEM;
	size_t off = p->base, code_end = 0;
	for (size_t i = 0; i < n_items; i++) {
		if (p->raw_len - off < (p->fixed ? p->fixed : PROF2_HDR))
			return BT_ERR_FORMAT;
		const uint8_t *q = p->raw + off;
		uint64_t glen = bt_get32(q + 16), need;
		if (p->fixed) {
			need = p->fixed;
			if (glen == 0 || glen > PROF_MAX_LEN || need > p->raw_len - off ||
			    (int64_t)bt_get64(q + 32) <= 0)
				return BT_ERR_FORMAT;
		} else {
			uint64_t clen = bt_get32(q + 28), plen = bt_get32(q + 32), nx = q[36];
			uint64_t coff = bt_get32(q + PROF_HDR);
			need = PROF2_HDR + plen + nx * TCDB_EXIT_REC;
			if (glen == 0 || glen > PROF_MAX_LEN || clen == 0 || nx > BT_MAX_EXITS ||
			    need > p->raw_len - off || coff % 16 || coff < code_end ||
			    clen > p->code_len || coff > p->code_len - clen)
				return BT_ERR_FORMAT;
			code_end = coff + clen; /* invariant 1: in order, no overlap */
		}
		gva_t va = bt_get64(q);
		p->ent[i] = (struct prof_ent){.va = va, .off = (uint32_t)off, .next = 0};
		size_t j = mix(va) & p->tab_mask;
		for (; p->tab[j]; j = (j + 1) & p->tab_mask)
			if (p->ent[p->tab[j] - 1].va == va)
				break;
		if (!p->tab[j]) {
			p->tab[j] = (uint32_t)(i + 1);
			p->ent[i].first = 1;
		} else { /* a later version: at the end of va's chain */
			uint32_t k = p->tab[j] - 1;
			while (p->ent[k].next)
				k = p->ent[k].next - 1;
			p->ent[k].next = (uint32_t)(i + 1);
		}
		off += need;
	}
	if (off != p->raw_len)
		return BT_ERR_FORMAT;
	p->n = n_items;
	(void)db;
	return BT_OK;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Load pack kind into p (entries after base header bytes). */
static enum bt_status load_pack(struct tcdb *db, struct tcdb_prof *p, enum tcdb_pack_kind kind,
				size_t base, size_t fixed, const char *what)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct tcdb_split sp = {0};
	enum bt_status s = fixed ? tcdb_pack_get(db, kind, &sp.head, &sp.head_len, &sp.n_items)
				 : tcdb_pack_get_split(db, kind, &sp);
	struct timespec tp;
	clock_gettime(CLOCK_MONOTONIC, &tp);
	if (s == BT_ERR_NOTFOUND)
		return BT_OK; /* no --learn boot yet, no prediction */
	if (s != BT_OK)
		return s;
	if (sp.head_len > UINT32_MAX || !p) {
		tcdb_pack_split_free(&sp);
		return p ? BT_ERR_FORMAT : BT_ERR_NOMEM;
	}
	drop_loaded(p);
	p->raw = sp.head;
	p->raw_len = sp.head_len;
	p->code = sp.tail;
	p->code_len = sp.tail_len;
	p->code_owned = sp.tail_owned;
	p->base = base;
	p->fixed = fixed;
	size_t len = sp.head_len + sp.tail_len;
	uint64_t n = sp.n_items;
	s = parse(db, p, n);
	if (s != BT_OK) {
		drop_loaded(p);
		if (s == BT_ERR_FORMAT)
			bt_err(LOG_DB, "%s: corrupt %s: rebuild it with `pretrans build`", db->path,
			       what);
		return s;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	bt_info(LOG_DB,
		"%s: %s: %zu blocks, %.1f MB, loaded in %.1f ms (read, tag and "
		"decompress %.1f ms, index %.1f ms)",
		db->path, what, p->n, (double)len / 1e6, ms_between(&t0, &t1), ms_between(&t0, &tp),
		ms_between(&tp, &t1));
	return BT_OK;
}

enum bt_status tcdb_profile_load(struct tcdb *db, size_t *n_entries)
{
	*n_entries = 0;
	BT_TRY(load_pack(db, prof_of(db), TCDB_PACK_PROFILE, PROF2_HEAD, 0, "boot profile"));
	if ((!db->prof || !db->prof->n) && tcdb_pack_exists(db, TCDB_PACK_PROFILE_V1))
		bt_info(LOG_DB,
			"%s: its boot profile has an older layout, not read any more: the next "
			"--learn boot writes a new one",
			db->path);
	*n_entries = db->prof ? db->prof->n : 0;
	BT_TRY(load_pack(db, pred_of(db), TCDB_PACK_PREDICTED, PRED_HDR, PRED_ENT,
			 "predicted patching"));
	struct tcdb_prof *q = db->pred;
	if (q && q->n) {
		uint64_t h = bt_get64(q->raw);
		if (h != db->want_cpu) {
			bt_info(LOG_DB,
				"%s: the predicted versions were made for CPU profile %016llx, "
				"this vCPU's is %016llx: not used (rebuild the database to "
				"predict for it)",
				db->path, (unsigned long long)h, (unsigned long long)db->want_cpu);
			drop_loaded(q);
		}
	}
	return BT_OK;
}

size_t tcdb_profile_entries(const struct tcdb *db)
{
	return db->prof ? db->prof->n : 0;
}

size_t tcdb_predicted_entries(const struct tcdb *db)
{
	return db->pred ? db->pred->n : 0;
}

enum bt_status tcdb_profile_foreach(struct tcdb *db, bool predicted, tcdb_version_fn cb,
				    void *opaque)
{
	const struct tcdb_prof *p = predicted ? db->pred : db->prof;
	if (db->untrusted)
		return BT_ERR_AUTH;
	for (size_t i = 0; p && i < p->n; i++) {
		const uint8_t *q = p->raw + p->ent[i].off;
		if (cb(opaque, bt_get64(q), bt_get32(q + 16), bt_get64(q + 8)))
			break;
	}
	return BT_OK;
}

/* ---------------------------------------------------------------- look-up */

/* Entry i as a block (exit kinds checked against the caller's limits). */
static enum bt_status entry_block(struct tcdb *db, const struct tcdb_prof *p, size_t i,
				  struct tcdb_block *b, uint32_t origin)
{
	const uint8_t *q = p->raw + p->ent[i].off;
	memset(b, 0, sizeof(*b));
	if (p->fixed) { /* predicted: the payload is in a chunk */
		b->blk.guest_start = bt_get64(q);
		b->blk.guest_hash = bt_get64(q + 8);
		b->blk.guest_len = bt_get32(q + 16);
		b->blk.n_insns = bt_get32(q + 20);
		b->blk.flags = bt_get32(q + 24);
		b->payload_off = bt_get32(q + 28);
		b->chunk_id = (int64_t)bt_get64(q + 32);
		b->origin = origin;
		BT_TRY(tcdb_load_chunk(db, b->chunk_id, b->blk.guest_start));
		if (tcdb_payload_parse(db, db->chunk, db->chunk_len, b->payload_off, &b->blk) !=
		    BT_OK) {
			bt_err(LOG_DB,
			       "%s: corrupt predicted block at %#llx: rebuild it with "
			       "`pretrans build`",
			       db->path, (unsigned long long)b->blk.guest_start);
			return BT_ERR_FORMAT;
		}
		return BT_OK;
	}
	b->blk.guest_start = bt_get64(q);
	b->blk.guest_hash = bt_get64(q + 8);
	b->blk.guest_len = bt_get32(q + 16);
	b->blk.n_insns = bt_get32(q + 20);
	b->blk.flags = bt_get32(q + 24);
	b->blk.code_len = bt_get32(q + 28);
	b->blk.pcmap_len = bt_get32(q + 32);
	uint32_t nx = q[36];
	b->blk.code = p->code + bt_get32(q + PROF_HDR);
	b->blk.pcmap = q + PROF2_HDR;
	b->origin = origin;
	if (tcdb_exits_decode(b->blk.pcmap + b->blk.pcmap_len, (size_t)nx * TCDB_EXIT_REC,
			      db->want.n_exit_kinds, b->blk.exits, &b->blk.n_exits) != BT_OK) {
		bt_err(LOG_DB,
		       "%s: corrupt boot profile entry at %#llx: rebuild it with "
		       "`pretrans build`",
		       db->path, (unsigned long long)b->blk.guest_start);
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* Offer p's versions of va to match(); true (and *out) when one is taken. */
static bool offer(struct tcdb *db, struct tcdb_prof *p, gva_t va, tcdb_match_fn match, void *opaque,
		  struct tcdb_block *out, unsigned *n_tried, uint32_t origin, enum bt_status *s)
{
	if (!p || !p->n)
		return false;
	/* invariant 5: a boot asks for the profile's entries in about the
	 * order it holds them, so va's first version is most often the entry
	 * after the last one taken: no hash probe, memory read in order */
	uint32_t k = 0;
	if (p->cursor < p->n && p->ent[p->cursor].va == va && p->ent[p->cursor].first) {
		k = (uint32_t)p->cursor + 1;
	} else {
		size_t j = mix(va) & p->tab_mask;
		for (; p->tab[j]; j = (j + 1) & p->tab_mask)
			if (p->ent[p->tab[j] - 1].va == va)
				break;
		k = p->tab[j];
	}
	for (; k; k = p->ent[k - 1].next) {
		const uint8_t *q = p->raw + p->ent[k - 1].off;
		(*n_tried)++;
		if (match(opaque, va, bt_get32(q + 16), bt_get64(q + 8))) {
			p->cursor = k;
			*s = entry_block(db, p, k - 1, out, origin);
			return true;
		}
	}
	return false;
}

enum bt_status tcdb_lookup_match(struct tcdb *db, gva_t va, tcdb_match_fn match, void *opaque,
				 struct tcdb_block *out, unsigned *n_tried)
{
	*n_tried = 0;
	if (db->untrusted)
		return BT_ERR_AUTH;
	enum bt_status s;
	if (offer(db, db->prof, va, match, opaque, out, n_tried, TCDB_ORIGIN_PROFILE, &s) ||
	    offer(db, db->pred, va, match, opaque, out, n_tried, TCDB_ORIGIN_PREDICTED, &s))
		return s;
	s = tcdb_lookup(db, va, out);
	if (s != BT_OK)
		return s;
	(*n_tried)++;
	return match(opaque, va, out->blk.guest_len, out->blk.guest_hash) ? BT_OK : BT_ERR_NOTFOUND;
}
