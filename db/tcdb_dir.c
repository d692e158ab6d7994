/*
 * Chunk directories and the chunk map (schema 7, docs/db.md "Chunk
 * directory"): the blocks of `pretrans build` are no rows of `blocks`; each
 * chunk lists its own blocks after its payloads, and one pack maps runs of
 * consecutive static starts to the chunk that holds them.  One tag (the
 * chunk's) covers a whole unit's blocks instead of one tag per row.
 *
 * Invariants
 *  1. A chunk's raw bytes are its payloads, then its directory (entries
 *     sorted by key, one per start: the first added wins), then u32 the
 *     number of entries and u32 the directory's bytes.  The directory is
 *     inside the compressed frame, so the chunk's tag covers it.
 *  2. The chunk map holds every static start of the database exactly once,
 *     as disjoint runs [lo, hi] of keys sorted by lo, each held by one
 *     chunk; the first chunk that listed a start holds it (the first row
 *     won under schema 6 too).  It is a pack (tagged).
 *  3. Every parsed entry was checked: keys increasing, lengths and refusal
 *     codes within limits, payload offsets inside the payloads; nothing
 *     parsed from a chunk is used before the chunk's tag matched
 *     (tcdb_load_chunk checks it).
 *  4. Building: sm holds the starts of the chunks added so far (first
 *     wins); tcdb_add_block only counts a block the map will serve.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>

#define DIR_TRAILER 8		 /* u32 entries, u32 directory bytes */
#define DIR_ENT_MAX (6 * 10 + 8) /* the longest encoded entry */
#define DIR_MAX_LEN (1u << 20)	 /* guest bytes or instructions of a block */

/* ---------------------------------------------------------------- build */

enum bt_status tcdb_chunk_add_block(struct tcdb_chunk *c, struct tcdb_block *b, uint32_t region)
{
	if (c->closed || region > INT32_MAX)
		return BT_ERR_INVALID;
	if (b->blk.refusal == 0)
		BT_TRY(tcdb_chunk_add(c, b));
	if (!BT_VEC_RESERVE(c->ents, c->ents_cap, c->n_ents + 1, 256))
		return BT_ERR_NOMEM;
	c->ents[c->n_ents] = (struct tcdb_dirent){
	    .key = key_of(b->blk.guest_start),
	    .guest_hash = b->blk.guest_hash,
	    .refusal_addr = b->blk.refusal ? b->blk.refusal_addr : 0,
	    .guest_len = b->blk.guest_len,
	    .n_insns = b->blk.n_insns,
	    .flags = b->blk.flags,
	    .refusal = b->blk.refusal,
	    .payload_off = b->blk.refusal ? 0 : b->payload_off,
	    .region = region,
	    .seq = (uint32_t)c->n_ents,
	};
	c->n_ents++;
	return BT_OK;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct tcdb_dirent *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

enum bt_status tcdb_chunk_close(struct tcdb_chunk *c)
{
	if (c->closed)
		return BT_OK;
	qsort(c->ents, c->n_ents, sizeof(c->ents[0]), ent_cmp);
	size_t n = 0; /* the first entry of a start wins */
	for (size_t i = 0; i < c->n_ents; i++)
		if (n == 0 || c->ents[n - 1].key != c->ents[i].key)
			c->ents[n++] = c->ents[i];
	c->n_ents = n;
	size_t need = c->raw_len + n * DIR_ENT_MAX + DIR_TRAILER;
	if (n > CHUNK_MAX_RAW || need > CHUNK_MAX_RAW)
		return BT_ERR_RANGE;
	if (!BT_VEC_RESERVE(c->raw, c->raw_cap, need, 16384))
		return BT_ERR_NOMEM;
	uint8_t *p = c->raw + c->raw_len, *start = p;
	for (size_t i = 0; i < n; i++) {
		const struct tcdb_dirent *e = &c->ents[i];
		p += tcdb_put_varint(p, i ? (uint64_t)e->key - (uint64_t)c->ents[i - 1].key
					  : tcdb_zig(e->key));
		p += tcdb_put_varint(p, e->guest_len);
		p += tcdb_put_varint(p, e->n_insns);
		bt_put64(p, e->guest_hash);
		p += 8;
		p += tcdb_put_varint(p, e->flags);
		p += tcdb_put_varint(p, e->refusal);
		if (e->refusal)
			p += tcdb_put_varint(p,
					     tcdb_zig((int64_t)(e->refusal_addr - va_of(e->key))));
		else
			p += tcdb_put_varint(p, e->payload_off);
		p += tcdb_put_varint(p, e->region);
	}
	bt_put32(p, (uint32_t)n);
	bt_put32(p + 4, (uint32_t)(p - start));
	c->raw_len += (size_t)(p - start) + DIR_TRAILER;
	c->closed = true;
	return BT_OK;
}

/* ---------------------------------------------------------------- parse */

enum bt_status tcdb_dir_parse(const uint8_t *raw, size_t raw_len, uint32_t n_refusals,
			      struct tcdb_dirent **ents, size_t *n_out, size_t *cap,
			      size_t *pay_len)
{
	if (raw_len < DIR_TRAILER)
		return BT_ERR_FORMAT;
	uint64_t n = bt_get32(raw + raw_len - 8), len = bt_get32(raw + raw_len - 4);
	if (len > raw_len - DIR_TRAILER || n > len)
		return BT_ERR_FORMAT;
	size_t pay = raw_len - DIR_TRAILER - (size_t)len;
	const uint8_t *p = raw + pay, *end = p + len;
	if (!BT_VEC_RESERVE(*ents, *cap, (size_t)n + 1, 64))
		return BT_ERR_NOMEM;
	struct tcdb_dirent *e = *ents;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t d, glen, ni, flags, ref, x, region;
		if (!tcdb_get_varint(&p, end, &d) || !tcdb_get_varint(&p, end, &glen) ||
		    !tcdb_get_varint(&p, end, &ni) || end - p < 8)
			return BT_ERR_FORMAT;
		uint64_t hash = bt_get64(p);
		p += 8;
		if (!tcdb_get_varint(&p, end, &flags) || !tcdb_get_varint(&p, end, &ref) ||
		    !tcdb_get_varint(&p, end, &x) || !tcdb_get_varint(&p, end, &region))
			return BT_ERR_FORMAT;
		int64_t key;
		if (i == 0) {
			key = tcdb_unzig(d);
		} else {
			key = (int64_t)((uint64_t)e[i - 1].key + d);
			if (d == 0 || key <= e[i - 1].key)
				return BT_ERR_FORMAT;
		}
		if (glen > DIR_MAX_LEN || ni > DIR_MAX_LEN || flags > UINT32_MAX ||
		    ref >= n_refusals || region > INT32_MAX || (ref == 0 && x >= pay))
			return BT_ERR_FORMAT;
		e[i] = (struct tcdb_dirent){
		    .key = key,
		    .guest_hash = hash,
		    .refusal_addr = ref ? va_of(key) + (gva_t)tcdb_unzig(x) : 0,
		    .guest_len = (uint32_t)glen,
		    .n_insns = (uint32_t)ni,
		    .flags = (uint32_t)flags,
		    .refusal = (uint32_t)ref,
		    .payload_off = ref ? 0 : (uint32_t)x,
		    .region = (uint32_t)region,
		};
	}
	if (p != end)
		return BT_ERR_FORMAT;
	*n_out = (size_t)n;
	*pay_len = pay;
	return BT_OK;
}

enum bt_status tcdb_dir_get(struct tcdb *db, const struct tcdb_dirent **e, size_t *n)
{
	struct chunk_cache *c = db->cur;
	if (!c || c->id != db->chunk_id)
		return BT_ERR_INTERNAL;
	if (c->dir_state == 0)
		c->dir_state = tcdb_dir_parse(c->buf, c->len, db->want.n_refusals, &c->dir,
					      &c->n_dir, &c->dir_cap, &c->pay_len) == BT_OK
				   ? 1
				   : -1;
	if (c->dir_state < 0) {
		bt_err(LOG_DB,
		       "%s: corrupt directory in chunk %lld: rebuild it with `pretrans build`",
		       db->path, (long long)c->id);
		return BT_ERR_FORMAT;
	}
	*e = c->dir;
	*n = c->n_dir;
	return BT_OK;
}

enum bt_status tcdb_dir_block(struct tcdb *db, const struct tcdb_dirent *e, struct tcdb_block *b,
			      bool skip_payload)
{
	memset(b, 0, sizeof(*b));
	b->blk.guest_start = va_of(e->key);
	b->blk.guest_len = e->guest_len;
	b->blk.n_insns = e->n_insns;
	b->blk.guest_hash = e->guest_hash;
	b->blk.flags = e->flags;
	b->blk.refusal = e->refusal;
	b->blk.refusal_addr = e->refusal_addr;
	b->function_id = db->cur->func0 + e->region;
	b->origin = TCDB_ORIGIN_STATIC;
	if (e->refusal)
		return BT_OK;
	b->chunk_id = db->chunk_id;
	b->payload_off = e->payload_off;
	if (skip_payload)
		return BT_OK;
	if (tcdb_payload_parse(db, db->chunk, db->cur->pay_len, e->payload_off, &b->blk) != BT_OK) {
		bt_err(LOG_DB,
		       "%s: corrupt block at %#llx (chunk %lld): rebuild it with `pretrans build`",
		       db->path, (unsigned long long)b->blk.guest_start, (long long)db->chunk_id);
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* ---------------------------------------------------------------- writer's map */

static uint64_t sm_hash(int64_t key)
{
	uint64_t x = (uint64_t)key;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static struct smap_ent *sm_find(struct tcdb *db, int64_t key)
{
	if (!db->sm_tab)
		return NULL;
	for (size_t i = sm_hash(key) & db->sm_mask;; i = (i + 1) & db->sm_mask) {
		uint32_t k = db->sm_tab[i];
		if (k == 0)
			return NULL;
		if (db->sm[k - 1].key == key)
			return &db->sm[k - 1];
	}
}

static void sm_slot(struct tcdb *db, size_t idx)
{
	size_t i = sm_hash(db->sm[idx].key) & db->sm_mask;
	while (db->sm_tab[i])
		i = (i + 1) & db->sm_mask;
	db->sm_tab[i] = (uint32_t)idx + 1;
}

static enum bt_status sm_add(struct tcdb *db, const struct smap_ent *e)
{
	if (db->sm_n >= UINT32_MAX - 1 || !BT_VEC_RESERVE(db->sm, db->sm_cap, db->sm_n + 1, 4096))
		return BT_ERR_NOMEM;
	db->sm[db->sm_n++] = *e;
	if (db->sm_n * 2 > db->sm_mask) { /* grow the table, keep it half empty */
		size_t cap = db->sm_tab ? (db->sm_mask + 1) * 4 : 8192;
		uint32_t *t = calloc(cap, sizeof(*t));
		if (!t)
			return BT_ERR_NOMEM;
		free(db->sm_tab);
		db->sm_tab = t;
		db->sm_mask = cap - 1;
		for (size_t i = 0; i < db->sm_n; i++)
			sm_slot(db, i);
	} else {
		sm_slot(db, db->sm_n - 1);
	}
	return BT_OK;
}

enum bt_status tcdb_dir_register(struct tcdb *db, const struct tcdb_chunk *c, int64_t id)
{
	for (size_t i = 0; i < c->n_ents; i++) {
		const struct tcdb_dirent *e = &c->ents[i];
		if (sm_find(db, e->key))
			continue; /* an earlier chunk holds this start */
		struct smap_ent s = {.key = e->key, .chunk = id, .refused = e->refusal != 0};
		BT_TRY(sm_add(db, &s));
	}
	return BT_OK;
}

enum bt_status tcdb_dir_claim(struct tcdb *db, int64_t key, int64_t chunk, bool *added)
{
	struct smap_ent *e = sm_find(db, key);
	*added = false;
	if (!e)
		return BT_ERR_INVALID; /* not in any chunk's directory */
	if (e->chunk == chunk && !e->claimed) {
		e->claimed = true;
		*added = true;
	}
	return BT_OK;
}

static int sm_cmp(const void *a, const void *b)
{
	const struct smap_ent *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

/*
 * The chunk map: per run, varint the distance of its first key from the
 * previous run's last (the first run: its first key, zigzag), varint its
 * last key minus its first, varint the zigzag of its chunk id minus the
 * previous run's.  n_items = the number of runs.
 */
enum bt_status tcdb_dir_write_map(struct tcdb *db)
{
	size_t n = db->sm_n;
	if (n == 0)
		return BT_OK; /* no static block: no map (an empty one to readers) */
	/* the last use of sm (the start index was written from it): sorted in
	 * place, its hash table dropped, so the commit's peak stays low */
	free(db->sm_tab);
	db->sm_tab = NULL;
	db->sm_mask = 0;
	struct smap_ent *s = db->sm;
	qsort(s, n, sizeof(*s), sm_cmp);
	size_t runs = 0;
	for (size_t i = 0; i < n; i++)
		runs += i == 0 || s[i].chunk != s[i - 1].chunk;
	uint8_t *raw = malloc(runs * 30);
	if (!raw)
		return BT_ERR_NOMEM;
	size_t len = 0, k = 0;
	int64_t prev_hi = 0, prev_chunk = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && s[j].chunk == s[i].chunk)
			j++;
		len += tcdb_put_varint(raw + len, k ? (uint64_t)s[i].key - (uint64_t)prev_hi
						    : tcdb_zig(s[i].key));
		len += tcdb_put_varint(raw + len, (uint64_t)s[j - 1].key - (uint64_t)s[i].key);
		len += tcdb_put_varint(raw + len, tcdb_zig(s[i].chunk - prev_chunk));
		prev_hi = s[j - 1].key;
		prev_chunk = s[i].chunk;
		k++;
		i = j;
	}
	enum bt_status st = tcdb_pack_put(db, TCDB_PACK_CHUNK_MAP, TCDB_CODEC_ZSTD, raw, len, runs);
	free(raw);
	return st;
}

enum bt_status tcdb_dir_static_starts(struct tcdb *db, uint64_t **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (db->building) {
		uint64_t *va = malloc((db->sm_n + 1) * sizeof(*va));
		if (!va)
			return BT_ERR_NOMEM;
		size_t k = 0;
		for (size_t i = 0; i < db->sm_n; i++)
			if (!db->sm[i].refused)
				va[k++] = va_of(db->sm[i].key);
		*out = va;
		*n_out = k;
		return BT_OK;
	}
	/* a learning commit: the start index written by the build (which a
	 * learned row never removes a start from) */
	uint8_t *raw;
	size_t len;
	uint64_t n;
	BT_TRY(tcdb_pack_get(db, TCDB_PACK_INDEX, &raw, &len, &n));
	uint64_t *va = malloc((n + 1) * sizeof(*va));
	if (!va || n > len) {
		tcdb_pack_free(raw, len);
		free(va);
		return va ? BT_ERR_FORMAT : BT_ERR_NOMEM;
	}
	const uint8_t *p = raw, *end = raw + len;
	uint64_t cur = 0, d;
	size_t k = 0;
	while (p < end && k < n && tcdb_get_varint(&p, end, &d))
		va[k++] = cur += d;
	tcdb_pack_free(raw, len);
	if (k != n || p != end) {
		free(va);
		bt_err(LOG_DB, "%s: corrupt start index: rebuild it with `pretrans build`",
		       db->path);
		return BT_ERR_FORMAT;
	}
	*out = va;
	*n_out = k;
	return BT_OK;
}

/* ---------------------------------------------------------------- reader's map */

enum bt_status tcdb_map_load(struct tcdb *db)
{
	if (db->map_state > 0)
		return BT_OK;
	if (db->map_state < 0)
		return BT_ERR_FORMAT;
	if (db->building)
		return BT_ERR_INVALID;
	uint8_t *raw;
	size_t len;
	uint64_t n;
	enum bt_status s = tcdb_pack_get(db, TCDB_PACK_CHUNK_MAP, &raw, &len, &n);
	if (s == BT_ERR_NOTFOUND) { /* no static block */
		db->map_state = 1;
		return BT_OK;
	}
	if (s != BT_OK)
		return s;
	s = BT_ERR_FORMAT;
	if (n > len) {
		tcdb_pack_free(raw, len);
		goto bad;
	}
	db->map_lo = malloc((n + 1) * sizeof(int64_t));
	db->map_hi = malloc((n + 1) * sizeof(int64_t));
	db->map_chunk = malloc((n + 1) * sizeof(int64_t));
	if (!db->map_lo || !db->map_hi || !db->map_chunk) {
		tcdb_pack_free(raw, len);
		tcdb_dir_free(db);
		return BT_ERR_NOMEM;
	}
	const uint8_t *p = raw, *end = raw + len;
	int64_t prev_hi = 0, chunk = 0;
	size_t k = 0;
	for (; k < n; k++) {
		uint64_t d, span, dc;
		if (!tcdb_get_varint(&p, end, &d) || !tcdb_get_varint(&p, end, &span) ||
		    !tcdb_get_varint(&p, end, &dc))
			break;
		int64_t lo = k ? (int64_t)((uint64_t)prev_hi + d) : tcdb_unzig(d);
		int64_t hi = (int64_t)((uint64_t)lo + span);
		chunk += tcdb_unzig(dc);
		if ((k && (d == 0 || lo <= prev_hi)) || hi < lo || chunk <= 0)
			break;
		db->map_lo[k] = lo;
		db->map_hi[k] = hi;
		db->map_chunk[k] = chunk;
		prev_hi = hi;
	}
	tcdb_pack_free(raw, len);
	if (k == n && p == end) {
		db->map_n = (size_t)n;
		db->map_state = 1;
		return BT_OK;
	}
bad:
	db->map_state = -1;
	bt_err(LOG_DB, "%s: corrupt chunk map: rebuild it with `pretrans build`", db->path);
	return s;
}

enum bt_status tcdb_map_find(struct tcdb *db, int64_t key, int64_t *chunk)
{
	BT_TRY(tcdb_map_load(db));
	size_t lo = 0, hi = db->map_n; /* the last run with map_lo <= key */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (db->map_lo[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || key > db->map_hi[lo - 1])
		return BT_ERR_NOTFOUND;
	*chunk = db->map_chunk[lo - 1];
	return BT_OK;
}

void tcdb_dir_free(struct tcdb *db)
{
	free(db->map_lo);
	free(db->map_hi);
	free(db->map_chunk);
	db->map_lo = db->map_hi = db->map_chunk = NULL;
	db->map_n = 0;
	db->map_state = 0;
	free(db->sm);
	free(db->sm_tab);
	db->sm = NULL;
	db->sm_tab = NULL;
	db->sm_n = db->sm_cap = 0;
}
