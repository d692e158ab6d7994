/*
 * The payload codec and chunks of the translation-cache database (see
 * tcdb.h, docs/db.md): exit records, packing block payloads into a chunk,
 * zstd compression and decompression, parsing a payload back, and a reader's
 * cache of decompressed chunks.
 *
 * Invariants
 *  1. A payload is varint code_len, varint pcmap_len, u8 n_exits, the
 *     code, the pc map, then n_exits compact exit records (u8 kind, varint
 *     patch_off + 1 (0: none), varint stub_off, varint the zigzag of the
 *     target minus the block's start); a chunk is the zstd frame of its
 *     payloads and its directory (db/tcdb_dir.c), at most CHUNK_MAX_RAW
 *     bytes raw.
 *  2. Everything read from a chunk is bounds-checked against the chunk's
 *     decompressed length; a payload running past it, a chunk that does
 *     not inflate to its raw_len, or an exit kind outside the caller's
 *     limits is BT_ERR_FORMAT, never an assert.
 *  3. db->chunk points into the cache entry of db->chunk_id and stays
 *     valid until the next tcdb_load_chunk() on db.
 *  4. A chunk is inflated, and enters the cache (and a reader's hands), only
 *     after its tag (db/tcdb_auth.c: over its id, raw length and the
 *     SHA-256 of its stored zstd bytes) matched, unless db was opened
 *     TCDB_UNVERIFIED; a failure marks db untrusted.  Decompressing
 *     authenticated bytes gives exactly the payloads the build wrote, so
 *     zstd never parses a changed frame, and the
 *     check hashes ~5x fewer bytes than the inflated payloads.  The SHA-256
 *     is taken when a chunk is sealed, in the build's worker threads.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---------------------------------------------------------------- exits */

size_t tcdb_exits_encode(const struct bt_exit *e, uint32_t n, uint8_t *buf)
{
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *p = buf + i * TCDB_EXIT_REC;
		p[0] = e[i].kind;
		p[1] = p[2] = p[3] = 0;
		bt_put32(p + 4, e[i].patch_off);
		bt_put32(p + 8, e[i].stub_off);
		bt_put64(p + 12, e[i].target);
	}
	return (size_t)n * TCDB_EXIT_REC;
}

/* Decode len bytes of exit records; kinds must be 1 .. n_kinds - 1. */
enum bt_status tcdb_exits_decode(const uint8_t *buf, size_t len, uint32_t n_kinds,
				 struct bt_exit *e, uint32_t *n)
{
	if (len % TCDB_EXIT_REC || len / TCDB_EXIT_REC > BT_MAX_EXITS)
		return BT_ERR_FORMAT;
	*n = (uint32_t)(len / TCDB_EXIT_REC);
	for (uint32_t i = 0; i < *n; i++) {
		const uint8_t *p = buf + i * TCDB_EXIT_REC;
		if (p[0] == 0 || p[0] >= n_kinds)
			return BT_ERR_FORMAT;
		memset(&e[i], 0, sizeof(e[i]));
		e[i].kind = p[0];
		e[i].patch_off = bt_get32(p + 4);
		e[i].stub_off = bt_get32(p + 8);
		e[i].target = bt_get64(p + 12);
	}
	return BT_OK;
}

/* ---------------------------------------------------------------- chunks */

/* Payload of one block inside a chunk (invariant 1): at most PAYLOAD_HDR
 * bytes of header and PAYLOAD_EXIT bytes per exit besides code and pc map.
 * Targets relative to the block's start: most are a few hundred bytes
 * away (1.7x smaller stored than 20-byte records, docs/db.md "Codec"). */
#define PAYLOAD_HDR  (5 + 5 + 1)
#define PAYLOAD_EXIT (1 + 5 + 5 + 10)
/* zstd level 1: measured against zlib 1/6, LZ4, LZ4HC and zstd 3/9/15 on
 * the Debian vmlinux's chunks (docs/db.md "Codec"): 1.3x smaller than zlib
 * level 1 and 3.4x faster to decompress, at build speed. */
#define CHUNK_ZSTD_LEVEL 1

void tcdb_chunk_reset(struct tcdb_chunk *c)
{
	c->raw_len = 0;
	c->z_len = 0;
	c->n_ents = 0;
	c->closed = false;
}

enum bt_status tcdb_chunk_add(struct tcdb_chunk *c, struct tcdb_block *b)
{
	if (b->blk.n_exits > BT_MAX_EXITS || c->closed)
		return BT_ERR_INVALID;
	size_t need = PAYLOAD_HDR + (size_t)b->blk.code_len + b->blk.pcmap_len +
		      b->blk.n_exits * PAYLOAD_EXIT;
	if (c->raw_len + need > CHUNK_MAX_RAW)
		return BT_ERR_RANGE;
	if (!BT_VEC_RESERVE(c->raw, c->raw_cap, c->raw_len + need, 16384))
		return BT_ERR_NOMEM;
	uint8_t *p = c->raw + c->raw_len, *start = p;
	p += tcdb_put_varint(p, b->blk.code_len);
	p += tcdb_put_varint(p, b->blk.pcmap_len);
	*p++ = (uint8_t)b->blk.n_exits;
	memcpy(p, b->blk.code, b->blk.code_len);
	p += b->blk.code_len;
	if (b->blk.pcmap_len)
		memcpy(p, b->blk.pcmap, b->blk.pcmap_len);
	p += b->blk.pcmap_len;
	for (uint32_t i = 0; i < b->blk.n_exits; i++) {
		const struct bt_exit *e = &b->blk.exits[i];
		*p++ = e->kind;
		p += tcdb_put_varint(p, (uint32_t)(e->patch_off + 1));
		p += tcdb_put_varint(p, e->stub_off);
		p += tcdb_put_varint(p, tcdb_zig((int64_t)(e->target - b->blk.guest_start)));
	}
	b->payload_off = (uint32_t)c->raw_len;
	c->raw_len += (size_t)(p - start);
	return BT_OK;
}

/*
 * The calling thread's compression context, created on first use and freed
 * when the thread ends (the process's main thread keeps its own until exit).
 * One context a thread, not one a chunk: a build seals ~13,500 chunks, and
 * a fresh context costs its allocation and the zeroing of its tables at
 * every chunk (20% of the level-3 sealing time of Debian's vmlinux: 2.34 ->
 * 1.87 s, the same frames; docs/db.md "Codec").  Sealing a chunk starts a
 * new frame, so a context carries nothing from one chunk into the next.
 */
static pthread_key_t cctx_key;
static pthread_once_t cctx_once = PTHREAD_ONCE_INIT;
static bool cctx_key_ok;

static void cctx_free(void *p)
{
	ZSTD_freeCCtx(p);
}

static void cctx_key_init(void)
{
	cctx_key_ok = pthread_key_create(&cctx_key, cctx_free) == 0;
}

void *tcdb_thread_cctx(void)
{
	pthread_once(&cctx_once, cctx_key_init);
	if (!cctx_key_ok)
		return NULL;
	ZSTD_CCtx *zc = pthread_getspecific(cctx_key);
	if (!zc) {
		zc = ZSTD_createCCtx();
		if (zc && pthread_setspecific(cctx_key, zc) != 0) {
			ZSTD_freeCCtx(zc);
			zc = NULL;
		}
	}
	return zc;
}

enum bt_status tcdb_chunk_seal_prepare(struct tcdb_chunk *c)
{
	BT_TRY(tcdb_chunk_close(c));
	size_t bound = ZSTD_compressBound(c->raw_len);
	if (bound > c->z_cap) {
		uint8_t *nz = realloc(c->z, bound);
		if (!nz)
			return BT_ERR_NOMEM;
		c->z = nz;
		c->z_cap = bound;
	}
	return BT_OK;
}

enum bt_status tcdb_chunk_seal(struct tcdb_chunk *c)
{
	BT_TRY(tcdb_chunk_seal_prepare(c));
	ZSTD_CCtx *zc = tcdb_thread_cctx();
	if (!zc)
		return BT_ERR_NOMEM;
	size_t zl = ZSTD_compressCCtx(zc, c->z, c->z_cap, c->raw, c->raw_len, CHUNK_ZSTD_LEVEL);
	if (ZSTD_isError(zl))
		return BT_ERR_INTERNAL;
	c->z_len = zl;
	sha256_buf(c->z, c->z_len, c->digest);
	return BT_OK;
}

enum bt_status tcdb_chunk_seal_copy(struct tcdb_chunk *c, const uint8_t *z, size_t z_len)
{
	BT_TRY(tcdb_chunk_close(c));
	if (z_len > c->z_cap) {
		uint8_t *nz = realloc(c->z, z_len);
		if (!nz)
			return BT_ERR_NOMEM;
		c->z = nz;
		c->z_cap = z_len;
	}
	memcpy(c->z, z, z_len);
	c->z_len = z_len;
	sha256_buf(c->z, c->z_len, c->digest);
	return BT_OK;
}

void tcdb_chunk_fini(struct tcdb_chunk *c)
{
	free(c->raw);
	free(c->z);
	free(c->ents);
	memset(c, 0, sizeof(*c));
}

enum bt_status tcdb_add_chunk(struct tcdb *db, const struct tcdb_chunk *c, int64_t *id)
{
	if (!db->building)
		return BT_ERR_INVALID;
	if (!c->closed)
		return BT_ERR_INVALID;
	int64_t cid = db->n_chunks + 1, func0 = db->last_func + 1;
	uint8_t mac[TCDB_MAC_LEN];
	tcdb_mac_chunk(db, cid, c->raw_len, func0, c->digest, mac);
	sqlite3_stmt *st = db->st[ST_ADD_CHUNK];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, cid);
	sqlite3_bind_int64(st, 2, (int64_t)c->raw_len);
	sqlite3_bind_blob(st, 3, c->z, (int)c->z_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, mac, TCDB_MAC_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, func0);
	if (sqlite3_step(st) != SQLITE_DONE)
		return tcdb_db_err(db, "writing a chunk");
	BT_TRY(tcdb_dir_register(db, c, cid));
	db->n_chunks = cid;
	*id = cid;
	return BT_OK;
}

enum bt_status tcdb_unzstd(struct tcdb *db, uint8_t *out, size_t raw_len, const void *z,
			   size_t z_len, int64_t id)
{
	if (!db->zd && !(db->zd = ZSTD_createDCtx()))
		return BT_ERR_NOMEM;
	unsigned did = id > 0 ? ZSTD_getDictID_fromFrame(z, z_len) : 0;
	size_t got;
	if (did) { /* a chunk sealed with the database's dictionary */
		void *dd;
		BT_TRY(tcdb_zdict_ddict(db, did, &dd));
		got = ZSTD_decompress_usingDDict(db->zd, out, raw_len, z, z_len, dd);
	} else {
		got = ZSTD_decompressDCtx(db->zd, out, raw_len, z, z_len);
	}
	if (ZSTD_isError(got) || got != raw_len) {
		bt_err(LOG_DB, "%s: corrupt %s %lld (zstd: %s): rebuild it with `pretrans build`",
		       db->path, id < 0 ? "pack" : "chunk", (long long)(id < 0 ? -id : id),
		       ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* The tag of chunk id (raw_len, stored bytes z, func0 in column 3)
 * against the stored one in column 2 of st (a row of ST_GET_CHUNK). */
static bool chunk_authentic(const struct tcdb *db, int64_t id, int64_t raw_len, const void *z,
			    size_t z_len, sqlite3_stmt *st)
{
	if (db->unverified)
		return true;
	uint8_t digest[SHA256_LEN], want[TCDB_MAC_LEN];
	sha256_buf(z, z_len, digest);
	tcdb_mac_chunk(db, id, (uint64_t)raw_len, sqlite3_column_int64(st, 3), digest, want);
	return tcdb_mac_ok(want, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
}

/* Make chunk id the current one (db->chunk, decompressed), from the cache
 * or by inflating it into its (direct-mapped) cache entry. */
enum bt_status tcdb_load_chunk(struct tcdb *db, int64_t id, gva_t va)
{
	if (db->untrusted)
		return BT_ERR_AUTH;
	if (db->chunk_id == id)
		return BT_OK;
	db->chunk_id = 0;
	db->cur = NULL;
	/* Direct mapped: chunk ids are consecutive, so neighbouring units
	 * never collide; a boot touches a few hundred units of a vmlinux. */
	struct chunk_cache *e = &db->cache[(uint64_t)id % CHUNK_CACHE];
	if (e->id == id)
		goto use_entry;
	e->id = 0;
	sqlite3_stmt *st = db->st[ST_GET_CHUNK];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc != SQLITE_DONE)
			return tcdb_db_err(db, "reading a chunk");
		bt_err(LOG_DB,
		       "%s: block refers to missing chunk %lld: rebuild it with `pretrans build`",
		       db->path, (long long)id);
		return BT_ERR_FORMAT;
	}
	int64_t raw_len = sqlite3_column_int64(st, 0);
	const void *z = sqlite3_column_blob(st, 1);
	int z_len = sqlite3_column_bytes(st, 1);
	if (raw_len <= 0 || raw_len > CHUNK_MAX_RAW || !z) {
		sqlite3_reset(st);
		bt_err(LOG_DB, "%s: corrupt chunk %lld: rebuild it with `pretrans build`", db->path,
		       (long long)id);
		return BT_ERR_FORMAT;
	}
	if (!chunk_authentic(db, id, raw_len, z, (size_t)z_len, st)) {
		sqlite3_reset(st);
		return tcdb_auth_fail(db, va, id);
	}
	if ((size_t)raw_len > e->cap) {
		uint8_t *nb = realloc(e->buf, (size_t)raw_len);
		if (!nb) {
			sqlite3_reset(st);
			return BT_ERR_NOMEM;
		}
		e->buf = nb;
		e->cap = (size_t)raw_len;
	}
	e->func0 = sqlite3_column_int64(st, 3);
	enum bt_status s = tcdb_unzstd(db, e->buf, (size_t)raw_len, z, (size_t)z_len, id);
	sqlite3_reset(st);
	if (s != BT_OK)
		return s;
	e->len = (size_t)raw_len;
	e->dir_state = 0;
	e->id = id;
use_entry:
	db->chunk = e->buf;
	db->chunk_len = e->len;
	db->chunk_id = id;
	db->cur = e;
	return BT_OK;
}

enum bt_status tcdb_payload_parse(const struct tcdb *db, const uint8_t *raw, size_t raw_len,
				  uint64_t off, struct bt_block *b)
{
	if (off >= raw_len)
		return BT_ERR_FORMAT;
	const uint8_t *p = raw + off, *end = raw + raw_len;
	uint64_t code_len, pcmap_len, n_exits;
	if (!tcdb_get_varint(&p, end, &code_len) || !tcdb_get_varint(&p, end, &pcmap_len) ||
	    p >= end)
		return BT_ERR_FORMAT;
	n_exits = *p++;
	if (code_len == 0 || n_exits > BT_MAX_EXITS || code_len > (uint64_t)(end - p) ||
	    pcmap_len > (uint64_t)(end - p) - code_len)
		return BT_ERR_FORMAT;
	b->code = p;
	b->code_len = (uint32_t)code_len;
	b->pcmap = p + code_len;
	b->pcmap_len = (uint32_t)pcmap_len;
	p += code_len + pcmap_len;
	for (uint32_t i = 0; i < n_exits; i++) {
		uint64_t po, so, dt;
		if (p >= end)
			return BT_ERR_FORMAT;
		uint8_t kind = *p++;
		if (!tcdb_get_varint(&p, end, &po) || !tcdb_get_varint(&p, end, &so) ||
		    !tcdb_get_varint(&p, end, &dt) || kind == 0 || kind >= db->want.n_exit_kinds ||
		    po > UINT32_MAX || so > UINT32_MAX)
			return BT_ERR_FORMAT;
		b->exits[i] = (struct bt_exit){.kind = kind,
					       .patch_off = (uint32_t)po - 1,
					       .stub_off = (uint32_t)so,
					       .target = b->guest_start + (gva_t)tcdb_unzig(dt)};
	}
	b->n_exits = (uint32_t)n_exits;
	return BT_OK;
}
enum bt_status tcdb_read_chunk(struct tcdb *db, int64_t id, uint8_t **raw, size_t *raw_len,
			       uint8_t **z, size_t *z_len)
{
	sqlite3_stmt *st = db->st[ST_GET_CHUNK];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? BT_ERR_NOTFOUND : tcdb_db_err(db, "reading a chunk");
	}
	int64_t rl = sqlite3_column_int64(st, 0);
	const void *zb = sqlite3_column_blob(st, 1);
	size_t zl = (size_t)sqlite3_column_bytes(st, 1);
	if (rl <= 0 || rl > CHUNK_MAX_RAW || !zb) {
		sqlite3_reset(st);
		bt_err(LOG_DB, "%s: corrupt chunk %lld: rebuild it with `pretrans build`", db->path,
		       (long long)id);
		return BT_ERR_FORMAT;
	}
	uint8_t *r = malloc((size_t)rl), *zc = malloc(zl ? zl : 1);
	if (!r || !zc) {
		sqlite3_reset(st);
		free(r);
		free(zc);
		return BT_ERR_NOMEM;
	}
	memcpy(zc, zb, zl);
	bool ok = chunk_authentic(db, id, rl, zc, zl, st);
	sqlite3_reset(st);
	if (!ok) {
		free(r);
		free(zc);
		bt_err(LOG_DB,
		       "%s: chunk %lld fails its authentication: changed after it was written, or "
		       "written with another key: rebuild it with `pretrans build`",
		       db->path, (long long)id);
		return BT_ERR_AUTH;
	}
	enum bt_status s = tcdb_unzstd(db, r, (size_t)rl, zc, zl, id);
	if (s != BT_OK) {
		free(r);
		free(zc);
		return s;
	}
	*raw = r;
	*raw_len = (size_t)rl;
	*z = zc;
	*z_len = zl;
	return BT_OK;
}

enum bt_status tcdb_sign_chunks(struct tcdb *db)
{
	sqlite3_stmt *sel, *upd;
	if (sqlite3_prepare_v2(db->h, "SELECT id, func0 FROM chunks ORDER BY id", -1, &sel, NULL) !=
	    SQLITE_OK)
		return tcdb_db_err(db, "signing chunks");
	if (sqlite3_prepare_v2(db->h, "UPDATE chunks SET mac = ?2 WHERE id = ?1", -1, &upd, NULL) !=
	    SQLITE_OK) {
		sqlite3_finalize(sel);
		return tcdb_db_err(db, "signing chunks");
	}
	enum bt_status s = BT_OK;
	int rc = SQLITE_DONE;
	while (s == BT_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(sel, 0);
		uint8_t *raw, *z, digest[SHA256_LEN], mac[TCDB_MAC_LEN];
		size_t raw_len, z_len;
		if ((s = tcdb_read_chunk(db, id, &raw, &raw_len, &z, &z_len)) != BT_OK)
			break;
		sha256_buf(z, z_len, digest);
		free(raw);
		free(z);
		tcdb_mac_chunk(db, id, raw_len, sqlite3_column_int64(sel, 1), digest, mac);
		sqlite3_reset(upd);
		sqlite3_bind_int64(upd, 1, id);
		sqlite3_bind_blob(upd, 2, mac, TCDB_MAC_LEN, SQLITE_STATIC);
		if (sqlite3_step(upd) != SQLITE_DONE)
			s = tcdb_db_err(db, "signing a chunk");
	}
	if (s == BT_OK && rc != SQLITE_DONE)
		s = tcdb_db_err(db, "signing chunks");
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	/* cached chunks were checked against the old tags: forget them */
	for (int i = 0; i < CHUNK_CACHE; i++)
		db->cache[i].id = 0;
	db->chunk_id = 0;
	db->cur = NULL;
	return s;
}
