/*
 * The translation-cache database (see tcdb.h, docs/db.md).  Owns one sqlite
 * connection, its prepared statements, and for a build the temporary file
 * that becomes the database on commit.
 *
 * States and transitions:
 *
 *   (none) --tcdb_create--> BUILDING --tcdb_commit--> (file renamed over OUT)
 *                              |------tcdb_abort---> (temporary file removed)
 *   (none) --tcdb_open---> OPEN --tcdb_learn_begin--> LEARNING
 *                           ^ <----tcdb_learn_commit-----'
 *                           '--tcdb_close--> (none)
 *
 * Invariants
 *  1. A build writes only OUT.tmp-XXXXXX inside one transaction; OUT is
 *     replaced by rename(2) after the file and its directory were fsynced.
 *  2. tcdb_open() returns BT_OK only for a file with our magic, schema
 *     version TCDB_SCHEMA_VERSION, the translator and vCPU ABI versions the
 *     caller expects (struct tcdb_prov) and the expected image; otherwise
 *     nothing else is read from it.
 *  5. A reader never hands out an exit kind or refusal code outside the
 *     caller's limits (tcdb_prov): such a row is BT_ERR_FORMAT.
 *  3. Block rows are keyed by guest_start (the rowid): one row per start.
 *  4. Rows are written in the order the caller adds them, so the same calls
 *     give a byte-identical file.
 */
#include "db/tcdb.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_CACHE 1024 /* decompressed chunks kept by a reader (direct mapped by id) */

enum stmt_id {
	ST_ADD_FUNC,
	ST_ADD_BLOCK,
	ST_LEARN_BLOCK,
	ST_LOOKUP,
	ST_ADD_CHUNK,
	ST_GET_CHUNK,
	ST_N,
};

struct tcdb {
	sqlite3 *h;
	char *path;	/* final path */
	char *tmp_path; /* building: temporary file */
	bool building, learning, rdwr;
	struct tcdb_prov want; /* readers: the caller's translator */
	size_t added;
	sqlite3_stmt *st[ST_N];
	/* look-up result storage */
	uint8_t *buf;
	size_t buf_cap;
	/* optional in-memory index of translated starts (open addressing) */
	uint64_t *idx;
	size_t idx_mask;
	/* decompressed chunks (direct mapped by id); chunk/chunk_len/
	 * chunk_id describe the current one (a view into one of the entries) */
	struct chunk_cache {
		int64_t id; /* 0 = empty */
		uint8_t *buf;
		size_t len, cap;
	} cache[CHUNK_CACHE];
	bool skip_payload; /* tcdb_foreach_block_meta in progress */
	const uint8_t *chunk;
	size_t chunk_len;
	int64_t chunk_id;
};

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "CREATE TABLE image(id INTEGER PRIMARY KEY CHECK(id = 1), path TEXT NOT NULL,\n"
    "  build_id TEXT NOT NULL, sha256 TEXT NOT NULL, entry INTEGER NOT NULL,\n"
    "  arch TEXT NOT NULL);\n"
    "CREATE TABLE provenance(id INTEGER PRIMARY KEY CHECK(id = 1),\n"
    "  xlat_version INTEGER NOT NULL, vcpu_abi_version INTEGER NOT NULL,\n"
    "  options_hash INTEGER NOT NULL, options_flags INTEGER NOT NULL,\n"
    "  tool_version TEXT NOT NULL, created INTEGER NOT NULL);\n"
    "CREATE TABLE functions(id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
    "  address INTEGER NOT NULL, size INTEGER NOT NULL, bytes_hash INTEGER NOT NULL,\n"
    "  section TEXT NOT NULL, covered_bytes INTEGER NOT NULL,\n"
    "  refused_bytes INTEGER NOT NULL, kind INTEGER NOT NULL);\n"
    "CREATE TABLE blocks(guest_start INTEGER PRIMARY KEY, guest_len INTEGER NOT NULL,\n"
    "  n_insns INTEGER NOT NULL, guest_hash INTEGER NOT NULL, flags INTEGER NOT NULL,\n"
    "  refusal INTEGER NOT NULL, refusal_addr INTEGER NOT NULL, code BLOB,\n"
    "  exits BLOB, pcmap BLOB, function_id INTEGER NOT NULL, origin INTEGER NOT NULL,\n"
    "  chunk INTEGER NOT NULL, payload_off INTEGER NOT NULL);\n"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY, raw_len INTEGER NOT NULL,\n"
    "  data BLOB NOT NULL);\n"
    "CREATE TABLE run_stats(id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL,\n"
    "  started INTEGER NOT NULL, ended INTEGER NOT NULL, blocks_used INTEGER NOT NULL,\n"
    "  blocks_stale INTEGER NOT NULL, misses INTEGER NOT NULL,\n"
    "  blocks_learned INTEGER NOT NULL, counters TEXT);\n";

static const char *const stmt_sql[ST_N] = {
    [ST_ADD_FUNC] = "INSERT INTO functions(name, address, size, bytes_hash, section, "
		    "covered_bytes, refused_bytes, kind) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_ADD_BLOCK] = "INSERT OR IGNORE INTO blocks VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
		     "?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_LEARN_BLOCK] = "INSERT OR REPLACE INTO blocks VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		       "?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_ADD_CHUNK] = "INSERT INTO chunks(raw_len, data) VALUES(?1, ?2)",
    [ST_GET_CHUNK] = "SELECT raw_len, data FROM chunks WHERE id = ?1",
    [ST_LOOKUP] =
	"SELECT guest_start, guest_len, n_insns, guest_hash, flags, refusal, "
	"refusal_addr, code, exits, pcmap, function_id, origin, chunk, payload_off FROM blocks "
	"WHERE guest_start = ?1",
};

static enum bt_status db_err(struct tcdb *db, const char *what)
{
	bt_err(LOG_DB, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
	int ec = sqlite3_errcode(db->h);
	if (ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB)
		return BT_ERR_FORMAT;
	if (ec == SQLITE_IOERR || ec == SQLITE_CANTOPEN || ec == SQLITE_FULL ||
	    ec == SQLITE_READONLY)
		return BT_ERR_IO;
	return BT_ERR_DB;
}

static enum bt_status exec(struct tcdb *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		sqlite3_free(msg);
		return db_err(db, sql);
	}
	return BT_OK;
}

static enum bt_status prepare_all(struct tcdb *db)
{
	for (int i = 0; i < ST_N; i++)
		if (sqlite3_prepare_v3(db->h, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &db->st[i], NULL) != SQLITE_OK)
			return db_err(db, "preparing statements");
	return BT_OK;
}

static void db_free(struct tcdb *db)
{
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(db->st[i]);
	if (db->h)
		sqlite3_close(db->h);
	free(db->buf);
	free(db->idx);
	for (int i = 0; i < CHUNK_CACHE; i++)
		free(db->cache[i].buf);
	free(db->path);
	free(db->tmp_path);
	free(db);
}

/* ---------------------------------------------------------------- keys */

/*
 * blocks.guest_start holds the guest address XOR TCDB_KEY_XOR: kernel
 * addresses (0xffffffff8xxxxxxx) become small positive integers, which
 * sqlite stores as 4-byte instead of 9-byte varints.  A bijection, so
 * look-ups and uniqueness are unchanged.
 */
#define TCDB_KEY_XOR 0xffffffff80000000ull

static int64_t key_of(gva_t va)
{
	return (int64_t)(va ^ TCDB_KEY_XOR);
}

static gva_t va_of(int64_t key)
{
	return (gva_t)key ^ TCDB_KEY_XOR;
}

/* ---------------------------------------------------------------- exits */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Exit records as stored in blocks.exits and chunk payloads: 20 bytes
 * each, little endian: kind u8, 3 zero bytes, patch_off u32, stub_off u32,
 * target u64. */
#define TCDB_EXIT_REC 20

static size_t exits_encode(const struct tcdb_exit *e, uint32_t n, uint8_t *buf)
{
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *p = buf + i * TCDB_EXIT_REC;
		p[0] = e[i].kind;
		p[1] = p[2] = p[3] = 0;
		put32(p + 4, e[i].patch_off);
		put32(p + 8, e[i].stub_off);
		put64(p + 12, e[i].target);
	}
	return (size_t)n * TCDB_EXIT_REC;
}

/* Decode len bytes of exit records; kinds must be 1 .. n_kinds - 1. */
static enum bt_status exits_decode(const uint8_t *buf, size_t len, uint32_t n_kinds,
				   struct tcdb_exit *e, uint32_t *n)
{
	if (len % TCDB_EXIT_REC || len / TCDB_EXIT_REC > TCDB_MAX_EXITS)
		return BT_ERR_FORMAT;
	*n = (uint32_t)(len / TCDB_EXIT_REC);
	for (uint32_t i = 0; i < *n; i++) {
		const uint8_t *p = buf + i * TCDB_EXIT_REC;
		if (p[0] == 0 || p[0] >= n_kinds)
			return BT_ERR_FORMAT;
		memset(&e[i], 0, sizeof(e[i]));
		e[i].kind = p[0];
		e[i].patch_off = get32(p + 4);
		e[i].stub_off = get32(p + 8);
		e[i].target = get64(p + 12);
	}
	return BT_OK;
}

/* ---------------------------------------------------------------- build */

enum bt_status tcdb_create(const char *out_path, const struct tcdb_image *img,
			   const struct tcdb_provenance *prov, struct tcdb **out)
{
	enum bt_status s;
	struct tcdb *db = calloc(1, sizeof(*db));
	if (!db)
		return BT_ERR_NOMEM;
	db->path = strdup(out_path);
	db->tmp_path = malloc(strlen(out_path) + 16);
	if (!db->path || !db->tmp_path) {
		db_free(db);
		return BT_ERR_NOMEM;
	}
	/* like mkstemp, but mode 0666 & ~umask so the result has normal permissions */
	int fd = -1;
	for (unsigned i = 0; fd < 0 && i < 100; i++) {
		unsigned r = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL) ^ i * 40503u;
		sprintf(db->tmp_path, "%s.tmp-%06x", out_path, r & 0xffffff);
		fd = open(db->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		bt_err(LOG_DB, "%s: cannot create the temporary output %s: %s", out_path,
		       db->tmp_path, strerror(errno));
		free(db->tmp_path);
		db->tmp_path = NULL;
		db_free(db);
		return BT_ERR_IO;
	}
	close(fd);
	db->building = true;
	if (sqlite3_open_v2(db->tmp_path, &db->h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		s = db_err(db, "opening the temporary output");
		goto err_remove_tmp;
	}
	/* The temporary file is thrown away on any failure, so no journal. */
	/* 64 KiB pages: chunks (a few KiB each) pack into pages instead of
	 * leaving half-empty overflow pages behind */
	if ((s = exec(db,
		      "PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
		      "PRAGMA locking_mode=EXCLUSIVE; BEGIN")) != BT_OK)
		goto err_remove_tmp;
	if ((s = exec(db, schema_sql)) != BT_OK)
		goto err_remove_tmp;
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meta VALUES('magic', '%s'); PRAGMA user_version = %d", TCDB_MAGIC,
		 TCDB_SCHEMA_VERSION);
	if ((s = exec(db, sql)) != BT_OK)
		goto err_remove_tmp;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "INSERT INTO image VALUES(1, ?1, ?2, ?3, ?4, ?5)", -1, &st,
			       NULL) != SQLITE_OK) {
		s = db_err(db, "writing the image row");
		goto err_remove_tmp;
	}
	sqlite3_bind_text(st, 1, img->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, img->build_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, img->sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)img->entry);
	sqlite3_bind_text(st, 5, img->arch[0] ? img->arch : "x86_64", -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		s = db_err(db, "writing the image row");
		goto err_remove_tmp;
	}
	if (sqlite3_prepare_v2(db->h, "INSERT INTO provenance VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6)",
			       -1, &st, NULL) != SQLITE_OK) {
		s = db_err(db, "writing provenance");
		goto err_remove_tmp;
	}
	sqlite3_bind_int64(st, 1, prov->xlat_version);
	sqlite3_bind_int64(st, 2, prov->abi_version);
	sqlite3_bind_int64(st, 3, (int64_t)prov->options_hash);
	sqlite3_bind_int64(st, 4, prov->options_flags);
	sqlite3_bind_text(st, 5, prov->tool_version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, prov->created);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		s = db_err(db, "writing provenance");
		goto err_remove_tmp;
	}
	if ((s = prepare_all(db)) != BT_OK)
		goto err_remove_tmp;
	*out = db;
	return BT_OK;

err_remove_tmp:
	unlink(db->tmp_path);
	db_free(db);
	return s;
}

enum bt_status tcdb_add_function(struct tcdb *db, struct tcdb_function *f)
{
	sqlite3_stmt *st = db->st[ST_ADD_FUNC];
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, f->name ? f->name : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)f->address);
	sqlite3_bind_int64(st, 3, (int64_t)f->size);
	sqlite3_bind_int64(st, 4, (int64_t)f->bytes_hash);
	sqlite3_bind_text(st, 5, f->section ? f->section : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)f->covered_bytes);
	sqlite3_bind_int64(st, 7, (int64_t)f->refused_bytes);
	sqlite3_bind_int64(st, 8, f->kind);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_err(db, "adding a function");
	f->id = sqlite3_last_insert_rowid(db->h);
	return BT_OK;
}

static enum bt_status put_block(struct tcdb *db, sqlite3_stmt *st, const struct tcdb_block *b)
{
	uint8_t exits[TCDB_MAX_EXITS * TCDB_EXIT_REC];
	if (b->n_exits > TCDB_MAX_EXITS)
		return BT_ERR_INVALID;
	size_t elen = exits_encode(b->exits, b->n_exits, exits);
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, key_of(b->guest_start));
	sqlite3_bind_int64(st, 2, b->guest_len);
	sqlite3_bind_int64(st, 3, b->n_insns);
	sqlite3_bind_int64(st, 4, (int64_t)b->guest_hash);
	sqlite3_bind_int64(st, 5, b->flags);
	sqlite3_bind_int64(st, 6, b->refusal);
	sqlite3_bind_int64(st, 7, b->refusal ? (int64_t)b->refusal_addr : 0);
	if (b->refusal == 0 && b->chunk_id == 0) {
		sqlite3_bind_blob(st, 8, b->code, (int)b->code_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 9, exits, (int)elen, SQLITE_STATIC);
		sqlite3_bind_blob(st, 10, b->pcmap, (int)b->pcmap_len, SQLITE_STATIC);
	} else {
		sqlite3_bind_null(st, 8);
		sqlite3_bind_null(st, 9);
		sqlite3_bind_null(st, 10);
	}
	sqlite3_bind_int64(st, 11, b->function_id);
	sqlite3_bind_int64(st, 12, b->origin);
	sqlite3_bind_int64(st, 13, b->refusal ? 0 : b->chunk_id);
	sqlite3_bind_int64(st, 14, b->refusal ? 0 : b->payload_off);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_err(db, "writing a block");
	return BT_OK;
}

/* ---------------------------------------------------------------- chunks */

/* Payload of one block inside a chunk: u32 code_len, u32 pcmap_len,
 * u8 n_exits, code, pc map, exit records (TCDB_EXIT_REC each). */
#define PAYLOAD_HDR	 9
#define CHUNK_MAX_RAW	 (64u << 20)
#define CHUNK_ZLIB_LEVEL 1

void tcdb_chunk_reset(struct tcdb_chunk *c)
{
	c->raw_len = 0;
	c->z_len = 0;
}

enum bt_status tcdb_chunk_add(struct tcdb_chunk *c, struct tcdb_block *b)
{
	if (b->n_exits > TCDB_MAX_EXITS)
		return BT_ERR_INVALID;
	size_t need = PAYLOAD_HDR + (size_t)b->code_len + b->pcmap_len + b->n_exits * TCDB_EXIT_REC;
	if (c->raw_len + need > CHUNK_MAX_RAW)
		return BT_ERR_RANGE;
	if (!BT_VEC_RESERVE(c->raw, c->raw_cap, c->raw_len + need, 16384))
		return BT_ERR_NOMEM;
	uint8_t *p = c->raw + c->raw_len;
	put32(p, b->code_len);
	put32(p + 4, b->pcmap_len);
	p[8] = (uint8_t)b->n_exits;
	p += PAYLOAD_HDR;
	memcpy(p, b->code, b->code_len);
	p += b->code_len;
	if (b->pcmap_len)
		memcpy(p, b->pcmap, b->pcmap_len);
	p += b->pcmap_len;
	exits_encode(b->exits, b->n_exits, p);
	b->payload_off = (uint32_t)c->raw_len;
	c->raw_len += need;
	return BT_OK;
}

enum bt_status tcdb_chunk_seal(struct tcdb_chunk *c)
{
	uLong bound = compressBound((uLong)c->raw_len);
	if (bound > c->z_cap) {
		uint8_t *nz = realloc(c->z, bound);
		if (!nz)
			return BT_ERR_NOMEM;
		c->z = nz;
		c->z_cap = bound;
	}
	uLongf zl = (uLongf)c->z_cap;
	if (compress2(c->z, &zl, c->raw, (uLong)c->raw_len, CHUNK_ZLIB_LEVEL) != Z_OK)
		return BT_ERR_INTERNAL;
	c->z_len = zl;
	return BT_OK;
}

enum bt_status tcdb_chunk_seal_copy(struct tcdb_chunk *c, const uint8_t *z, size_t z_len)
{
	if (z_len > c->z_cap) {
		uint8_t *nz = realloc(c->z, z_len);
		if (!nz)
			return BT_ERR_NOMEM;
		c->z = nz;
		c->z_cap = z_len;
	}
	memcpy(c->z, z, z_len);
	c->z_len = z_len;
	return BT_OK;
}

void tcdb_chunk_fini(struct tcdb_chunk *c)
{
	free(c->raw);
	free(c->z);
	memset(c, 0, sizeof(*c));
}

enum bt_status tcdb_add_chunk(struct tcdb *db, const struct tcdb_chunk *c, int64_t *id)
{
	if (!db->building)
		return BT_ERR_INVALID;
	sqlite3_stmt *st = db->st[ST_ADD_CHUNK];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (int64_t)c->raw_len);
	sqlite3_bind_blob(st, 2, c->z, (int)c->z_len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_err(db, "writing a chunk");
	*id = sqlite3_last_insert_rowid(db->h);
	return BT_OK;
}

/* Make chunk id the current one (db->chunk, decompressed), from the cache
 * or by inflating it into its (direct-mapped) cache entry. */
static enum bt_status load_chunk(struct tcdb *db, int64_t id)
{
	if (db->chunk_id == id)
		return BT_OK;
	db->chunk_id = 0;
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
			return db_err(db, "reading a chunk");
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
	if ((size_t)raw_len > e->cap) {
		uint8_t *nb = realloc(e->buf, (size_t)raw_len);
		if (!nb) {
			sqlite3_reset(st);
			return BT_ERR_NOMEM;
		}
		e->buf = nb;
		e->cap = (size_t)raw_len;
	}
	uLongf out = (uLongf)raw_len;
	int zr = uncompress(e->buf, &out, z, (uLong)z_len);
	sqlite3_reset(st);
	if (zr != Z_OK || out != (uLongf)raw_len) {
		bt_err(LOG_DB,
		       "%s: corrupt chunk %lld (zlib: %d): rebuild it with `pretrans build`",
		       db->path, (long long)id, zr);
		return BT_ERR_FORMAT;
	}
	e->len = (size_t)raw_len;
	e->id = id;
use_entry:
	db->chunk = e->buf;
	db->chunk_len = e->len;
	db->chunk_id = id;
	return BT_OK;
}

enum bt_status tcdb_payload_parse(const struct tcdb *db, const uint8_t *raw, size_t raw_len,
				  uint64_t off, struct tcdb_block *b)
{
	if (off > raw_len || raw_len - off < PAYLOAD_HDR)
		return BT_ERR_FORMAT;
	const uint8_t *p = raw + off;
	uint64_t code_len = get32(p), pcmap_len = get32(p + 4), n_exits = p[8];
	uint64_t need = PAYLOAD_HDR + code_len + pcmap_len + n_exits * TCDB_EXIT_REC;
	if (code_len == 0 || n_exits > TCDB_MAX_EXITS || need > raw_len - off)
		return BT_ERR_FORMAT;
	b->code = p + PAYLOAD_HDR;
	b->code_len = (uint32_t)code_len;
	b->pcmap = b->code + code_len;
	b->pcmap_len = (uint32_t)pcmap_len;
	return exits_decode(b->pcmap + pcmap_len, n_exits * TCDB_EXIT_REC, db->want.n_exit_kinds,
			    b->exits, &b->n_exits);
}

enum bt_status tcdb_add_block(struct tcdb *db, const struct tcdb_block *b)
{
	if (!db->building)
		return BT_ERR_INVALID;
	BT_TRY(put_block(db, db->st[ST_ADD_BLOCK], b));
	db->added += (size_t)sqlite3_changes(db->h);
	return BT_OK;
}

size_t tcdb_blocks_added(const struct tcdb *db)
{
	return db->added;
}

static enum bt_status fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return BT_ERR_IO;
	int rc = fsync(fd);
	close(fd);
	return rc == 0 ? BT_OK : BT_ERR_IO;
}

enum bt_status tcdb_commit(struct tcdb *db)
{
	enum bt_status s;
	if (!db->building) {
		tcdb_close(db);
		return BT_ERR_INVALID;
	}
	if ((s = exec(db, "COMMIT")) != BT_OK)
		goto err_remove_tmp;
	for (int i = 0; i < ST_N; i++) {
		sqlite3_finalize(db->st[i]);
		db->st[i] = NULL;
	}
	if (sqlite3_close(db->h) != SQLITE_OK) {
		s = db_err(db, "closing the output");
		db->h = NULL;
		goto err_remove_tmp;
	}
	db->h = NULL;
	if ((s = fsync_path(db->tmp_path, O_RDONLY)) != BT_OK) {
		bt_err(LOG_DB, "%s: fsync failed: %s", db->tmp_path, strerror(errno));
		goto err_remove_tmp;
	}
	if (rename(db->tmp_path, db->path) != 0) {
		bt_err(LOG_DB, "%s: cannot rename %s over it: %s", db->path, db->tmp_path,
		       strerror(errno));
		s = BT_ERR_IO;
		goto err_remove_tmp;
	}
	char *dir = strdup(db->path);
	if (dir) {
		fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY);
		free(dir);
	}
	db_free(db);
	return BT_OK;

err_remove_tmp:
	unlink(db->tmp_path);
	db_free(db);
	return s;
}

void tcdb_abort(struct tcdb *db)
{
	if (!db)
		return;
	if (db->building) {
		for (int i = 0; i < ST_N; i++) {
			sqlite3_finalize(db->st[i]);
			db->st[i] = NULL;
		}
		sqlite3_close(db->h);
		db->h = NULL;
		unlink(db->tmp_path);
	}
	db_free(db);
}

/* ---------------------------------------------------------------- open */

/* Cheap structural checks on the raw file before sqlite reads it. */
static enum bt_status check_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		bt_err(LOG_DB, "%s: cannot open: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	uint8_t h[100];
	struct stat st;
	ssize_t n = read(fd, h, sizeof(h));
	int ok = fstat(fd, &st) == 0;
	close(fd);
	if (!ok || n < 0) {
		bt_err(LOG_DB, "%s: cannot read: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	if (n < 16 || memcmp(h, "SQLite format 3", 16) != 0) {
		bt_err(LOG_DB,
		       "%s: not a translation database (not an sqlite file): rebuild it with "
		       "`pretrans build`",
		       path);
		return BT_ERR_FORMAT;
	}
	if (n < 100) {
		bt_err(LOG_DB,
		       "%s: truncated database (%zd bytes): rebuild it with `pretrans build`", path,
		       n);
		return BT_ERR_FORMAT;
	}
	uint32_t psz = (uint32_t)h[16] << 8 | h[17];
	if (psz == 1)
		psz = 65536;
	uint32_t npages =
	    (uint32_t)h[28] << 24 | (uint32_t)h[29] << 16 | (uint32_t)h[30] << 8 | h[31];
	uint32_t change =
	    (uint32_t)h[24] << 24 | (uint32_t)h[25] << 16 | (uint32_t)h[26] << 8 | h[27];
	uint32_t valid =
	    (uint32_t)h[92] << 24 | (uint32_t)h[93] << 16 | (uint32_t)h[94] << 8 | h[95];
	if (psz < 512 || (psz & (psz - 1)) || st.st_size % psz ||
	    (change == valid && npages && (uint64_t)st.st_size < (uint64_t)npages * psz)) {
		bt_err(LOG_DB,
		       "%s: truncated or corrupt database (%lld bytes, page size %u, %u pages "
		       "expected): rebuild it with `pretrans build`",
		       path, (long long)st.st_size, psz, npages);
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

static enum bt_status query_int(struct tcdb *db, const char *sql, int64_t *out, bool *found)
{
	sqlite3_stmt *st;
	*found = false;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "reading the database");
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		*found = true;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(db, "reading the database");
	return BT_OK;
}

static enum bt_status validate(struct tcdb *db, const struct tcdb_expect *ex)
{
	sqlite3_stmt *st;
	/* 1. our magic: otherwise another application's database */
	int64_t v;
	bool found;
	BT_TRY(query_int(db,
			 "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'",
			 &v, &found));
	bool magic_ok = false;
	if (v == 1) {
		if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key='magic'", -1, &st,
				       NULL) != SQLITE_OK)
			return db_err(db, "reading meta");
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *m = (const char *)sqlite3_column_text(st, 0);
			magic_ok = m && !strcmp(m, TCDB_MAGIC);
		}
		sqlite3_finalize(st);
	}
	if (!magic_ok) {
		bt_err(LOG_DB,
		       "%s: an sqlite database of another application (no '%s' magic): not a "
		       "translation database; build one with `pretrans build`",
		       db->path, TCDB_MAGIC);
		return BT_ERR_FORMAT;
	}
	/* 2. schema version */
	BT_TRY(query_int(db, "PRAGMA user_version", &v, &found));
	if (v != TCDB_SCHEMA_VERSION) {
		bt_err(LOG_DB,
		       "%s: database schema version %lld, this tool uses schema %d: rebuild it "
		       "with `pretrans build`",
		       db->path, (long long)v, TCDB_SCHEMA_VERSION);
		return BT_ERR_VERSION;
	}
	/* 3. translator and ABI versions */
	struct tcdb_provenance p;
	BT_TRY(tcdb_get_provenance(db, &p));
	if (p.xlat_version != db->want.xlat_version || p.abi_version != db->want.abi_version) {
		bt_err(LOG_DB,
		       "%s was written by translator v%u (vCPU ABI v%u), this is translator v%u "
		       "(vCPU ABI v%u): rebuild it with `pretrans build`",
		       db->path, p.xlat_version, p.abi_version, db->want.xlat_version,
		       db->want.abi_version);
		return BT_ERR_VERSION;
	}
	if (ex && ex->options_hash && ex->options_hash != p.options_hash) {
		bt_err(LOG_DB,
		       "%s was translated with options hash %016llx, expected %016llx: rebuild "
		       "it with `pretrans build` and the same options",
		       db->path, (unsigned long long)p.options_hash,
		       (unsigned long long)ex->options_hash);
		return BT_ERR_VERSION;
	}
	/* 4. image identity */
	struct tcdb_image im;
	BT_TRY(tcdb_get_image(db, &im));
	if (ex && ((ex->sha256 && strcmp(ex->sha256, im.sha256)) ||
		   (ex->build_id && ex->build_id[0] && im.build_id[0] &&
		    strcmp(ex->build_id, im.build_id)))) {
		bt_err(LOG_DB,
		       "%s is for image %s (sha256 %.16s..., build-id %s), not for %s (sha256 "
		       "%.16s..., build-id %s): rebuild it with `pretrans build %s -o %s`",
		       db->path, im.path, im.sha256, im.build_id[0] ? im.build_id : "none",
		       ex->image_name ? ex->image_name : "this image",
		       ex->sha256 ? ex->sha256 : "?",
		       ex->build_id && ex->build_id[0] ? ex->build_id : "none",
		       ex->image_name ? ex->image_name : "IMAGE", db->path);
		return BT_ERR_VERSION;
	}
	return BT_OK;
}

enum bt_status tcdb_open(const char *path, unsigned flags, const struct tcdb_prov *want,
			 const struct tcdb_expect *expect, struct tcdb **out)
{
	enum bt_status s;
	if (!want)
		return BT_ERR_INVALID;
	BT_TRY(check_file(path));
	struct tcdb *db = calloc(1, sizeof(*db));
	if (!db)
		return BT_ERR_NOMEM;
	db->path = strdup(path);
	if (!db->path) {
		db_free(db);
		return BT_ERR_NOMEM;
	}
	db->rdwr = flags & TCDB_RDWR;
	db->want = *want;
	int oflags = db->rdwr ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
		s = db_err(db, "cannot open");
		goto err_free;
	}
	sqlite3_busy_timeout(db->h, 5000);
	/* Readers map the file: random look-ups then cost no page copies (a
	 * database is ~100-150 MB for a distribution kernel). */
	sqlite3_exec(db->h, "PRAGMA mmap_size=1073741824", NULL, NULL, NULL);
	/* A read-only handle keeps its shared lock instead of taking and
	 * dropping it (two fcntl calls) around every look-up. */
	if (!db->rdwr)
		sqlite3_exec(db->h, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL);
	s = validate(db, expect);
	if (s == BT_ERR_DB)
		s = BT_ERR_FORMAT; /* a damaged file fails queries */
	if (s != BT_OK)
		goto err_free;
	if ((s = prepare_all(db)) != BT_OK)
		goto err_free;
	*out = db;
	return BT_OK;

err_free:
	db_free(db);
	return s;
}

void tcdb_close(struct tcdb *db)
{
	if (!db)
		return;
	if (db->building) {
		tcdb_abort(db);
		return;
	}
	if (db->learning)
		exec(db, "ROLLBACK");
	db_free(db);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
	snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

enum bt_status tcdb_get_image(struct tcdb *db, struct tcdb_image *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "SELECT path, build_id, sha256, entry, arch FROM image", -1,
			       &st, NULL) != SQLITE_OK)
		return db_err(db, "reading the image row");
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		bt_err(LOG_DB, "%s: no image row: rebuild it with `pretrans build`", db->path);
		return BT_ERR_FORMAT;
	}
	memset(out, 0, sizeof(*out));
	copy_text(out->path, sizeof(out->path), sqlite3_column_text(st, 0));
	copy_text(out->build_id, sizeof(out->build_id), sqlite3_column_text(st, 1));
	copy_text(out->sha256, sizeof(out->sha256), sqlite3_column_text(st, 2));
	out->entry = (gva_t)sqlite3_column_int64(st, 3);
	copy_text(out->arch, sizeof(out->arch), sqlite3_column_text(st, 4));
	sqlite3_finalize(st);
	return BT_OK;
}

enum bt_status tcdb_get_provenance(struct tcdb *db, struct tcdb_provenance *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT xlat_version, vcpu_abi_version, options_hash, options_flags, "
		"tool_version, created FROM provenance",
		-1, &st, NULL) != SQLITE_OK)
		return db_err(db, "reading provenance");
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		bt_err(LOG_DB, "%s: no provenance row: rebuild it with `pretrans build`", db->path);
		return BT_ERR_FORMAT;
	}
	memset(out, 0, sizeof(*out));
	out->xlat_version = (uint32_t)sqlite3_column_int64(st, 0);
	out->abi_version = (uint32_t)sqlite3_column_int64(st, 1);
	out->options_hash = (uint64_t)sqlite3_column_int64(st, 2);
	out->options_flags = (uint32_t)sqlite3_column_int64(st, 3);
	copy_text(out->tool_version, sizeof(out->tool_version), sqlite3_column_text(st, 4));
	out->created = sqlite3_column_int64(st, 5);
	sqlite3_finalize(st);
	return BT_OK;
}

/* ---------------------------------------------------------------- reads */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static bool idx_has(const struct tcdb *db, gva_t va)
{
	for (size_t i = mix64(va) & db->idx_mask;; i = (i + 1) & db->idx_mask) {
		if (db->idx[i] == va)
			return true;
		if (db->idx[i] == 0)
			return false;
	}
}

enum bt_status tcdb_load_index(struct tcdb *db, size_t *n_blocks)
{
	int64_t n;
	bool found;
	BT_TRY(query_int(db, "SELECT count(*) FROM blocks WHERE refusal = 0", &n, &found));
	size_t cap = 16;
	while (cap < (size_t)n * 2 + 2)
		cap <<= 1;
	uint64_t *idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return BT_ERR_NOMEM;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "SELECT guest_start FROM blocks WHERE refusal = 0", -1, &st,
			       NULL) != SQLITE_OK) {
		free(idx);
		return db_err(db, "loading the block index");
	}
	size_t count = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && count < cap / 2) {
		uint64_t va = va_of(sqlite3_column_int64(st, 0));
		if (va == 0)
			continue; /* 0 marks empty slots; a block at 0 goes to sqlite */
		size_t i = mix64(va) & (cap - 1);
		while (idx[i] && idx[i] != va)
			i = (i + 1) & (cap - 1);
		idx[i] = va;
		count++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(idx);
		return db_err(db, "loading the block index");
	}
	free(db->idx);
	db->idx = idx;
	db->idx_mask = cap - 1;
	if (n_blocks)
		*n_blocks = count;
	return BT_OK;
}

/* Fill *b from a row of (guest_start .. origin); blobs are copied into db->buf
 * when copy is set, else point into sqlite's row storage. */
static enum bt_status row_to_block(struct tcdb *db, sqlite3_stmt *st, struct tcdb_block *b,
				   bool copy)
{
	memset(b, 0, sizeof(*b));
	b->guest_start = va_of(sqlite3_column_int64(st, 0));
	int64_t len = sqlite3_column_int64(st, 1);
	b->n_insns = (uint32_t)sqlite3_column_int64(st, 2);
	b->guest_hash = (uint64_t)sqlite3_column_int64(st, 3);
	b->flags = (uint32_t)sqlite3_column_int64(st, 4);
	int64_t ref = sqlite3_column_int64(st, 5);
	b->refusal_addr = (gva_t)sqlite3_column_int64(st, 6);
	b->function_id = sqlite3_column_int64(st, 10);
	b->origin = (uint32_t)sqlite3_column_int64(st, 11);
	if (len < 0 || len > (1 << 20) || ref < 0 || ref >= db->want.n_refusals)
		goto bad_row;
	b->guest_len = (uint32_t)len;
	b->refusal = (uint32_t)ref;
	if (b->refusal)
		return BT_OK;
	int64_t chunk = sqlite3_column_int64(st, 12);
	int64_t poff = sqlite3_column_int64(st, 13);
	if (chunk) {
		if (poff < 0 || poff > CHUNK_MAX_RAW)
			goto bad_row;
		b->chunk_id = chunk;
		b->payload_off = (uint32_t)poff;
		if (db->skip_payload)
			return BT_OK; /* tcdb_foreach_block_meta: no code */
		BT_TRY(load_chunk(db, chunk));
		if (tcdb_payload_parse(db, db->chunk, db->chunk_len, (uint64_t)poff, b) != BT_OK)
			goto bad_row;
		return BT_OK; /* points into db->chunk until the next call */
	}
	const void *code = sqlite3_column_blob(st, 7);
	int code_len = sqlite3_column_bytes(st, 7);
	const void *exits = sqlite3_column_blob(st, 8);
	int exits_len = sqlite3_column_bytes(st, 8);
	const void *pcmap = sqlite3_column_blob(st, 9);
	int pcmap_len = sqlite3_column_bytes(st, 9);
	if (code_len <= 0 ||
	    exits_decode(exits, (size_t)exits_len, db->want.n_exit_kinds, b->exits, &b->n_exits))
		goto bad_row;
	b->code_len = (uint32_t)code_len;
	b->pcmap_len = (uint32_t)pcmap_len;
	if (!copy) {
		b->code = code;
		b->pcmap = pcmap;
		return BT_OK;
	}
	if (!BT_VEC_RESERVE(db->buf, db->buf_cap, (size_t)code_len + (size_t)pcmap_len, 4096))
		return BT_ERR_NOMEM;
	memcpy(db->buf, code, (size_t)code_len);
	if (pcmap_len)
		memcpy(db->buf + code_len, pcmap, (size_t)pcmap_len);
	b->code = db->buf;
	b->pcmap = db->buf + code_len;
	return BT_OK;

bad_row:
	bt_err(LOG_DB, "%s: corrupt block row at %#llx: rebuild it with `pretrans build`", db->path,
	       (unsigned long long)b->guest_start);
	return BT_ERR_FORMAT;
}

enum bt_status tcdb_lookup(struct tcdb *db, gva_t va, struct tcdb_block *out)
{
	if (db->idx && va != 0 && !idx_has(db, va))
		return BT_ERR_NOTFOUND;
	sqlite3_stmt *st = db->st[ST_LOOKUP];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, key_of(va));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return BT_ERR_NOTFOUND;
	if (rc != SQLITE_ROW)
		return db_err(db, "looking up a block");
	enum bt_status s = row_to_block(db, st, out, true);
	sqlite3_reset(st);
	if (s == BT_OK && out->refusal)
		return BT_ERR_NOTFOUND;
	return s;
}

enum bt_status tcdb_foreach_block(struct tcdb *db, int (*cb)(void *, const struct tcdb_block *),
				  void *opaque)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT guest_start, guest_len, n_insns, guest_hash, flags, refusal, "
		"refusal_addr, code, exits, pcmap, function_id, origin, chunk, payload_off "
		"FROM blocks",
		-1, &st, NULL) != SQLITE_OK)
		return db_err(db, "reading blocks");
	enum bt_status s = BT_OK;
	int rc;
	struct tcdb_block b;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((s = row_to_block(db, st, &b, false)) != BT_OK)
			break;
		if (cb(opaque, &b))
			break;
	}
	if (s == BT_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		s = db_err(db, "reading blocks");
	sqlite3_finalize(st);
	return s;
}

enum bt_status tcdb_foreach_block_meta(struct tcdb *db,
				       int (*cb)(void *, const struct tcdb_block *), void *opaque)
{
	db->skip_payload = true;
	enum bt_status s = tcdb_foreach_block(db, cb, opaque);
	db->skip_payload = false;
	return s;
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
		return rc == SQLITE_DONE ? BT_ERR_NOTFOUND : db_err(db, "reading a chunk");
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
	sqlite3_reset(st);
	uLongf out = (uLongf)rl;
	int zr = uncompress(r, &out, zc, (uLong)zl);
	if (zr != Z_OK || out != (uLongf)rl) {
		free(r);
		free(zc);
		bt_err(LOG_DB,
		       "%s: corrupt chunk %lld (zlib: %d): rebuild it with `pretrans build`",
		       db->path, (long long)id, zr);
		return BT_ERR_FORMAT;
	}
	*raw = r;
	*raw_len = (size_t)rl;
	*z = zc;
	*z_len = zl;
	return BT_OK;
}

enum bt_status tcdb_foreach_function(struct tcdb *db,
				     int (*cb)(void *, const struct tcdb_function *), void *opaque)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT id, name, address, size, bytes_hash, section, covered_bytes, "
		"refused_bytes, kind "
		"FROM functions ORDER BY id",
		-1, &st, NULL) != SQLITE_OK)
		return db_err(db, "reading functions");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct tcdb_function f = {
		    .id = sqlite3_column_int64(st, 0),
		    .name = (const char *)sqlite3_column_text(st, 1),
		    .address = (gva_t)sqlite3_column_int64(st, 2),
		    .size = (uint64_t)sqlite3_column_int64(st, 3),
		    .bytes_hash = (uint64_t)sqlite3_column_int64(st, 4),
		    .section = (const char *)sqlite3_column_text(st, 5),
		    .covered_bytes = (uint64_t)sqlite3_column_int64(st, 6),
		    .refused_bytes = (uint64_t)sqlite3_column_int64(st, 7),
		    .kind = (uint32_t)sqlite3_column_int64(st, 8),
		};
		if (!f.name)
			f.name = "";
		if (!f.section)
			f.section = "";
		if (cb(opaque, &f))
			break;
	}
	enum bt_status s = BT_OK;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		s = db_err(db, "reading functions");
	sqlite3_finalize(st);
	return s;
}

/* ---------------------------------------------------------------- writes */

enum bt_status tcdb_learn_begin(struct tcdb *db)
{
	if (!db->rdwr || db->learning || db->building)
		return BT_ERR_INVALID;
	BT_TRY(exec(db, "BEGIN IMMEDIATE"));
	db->learning = true;
	return BT_OK;
}

enum bt_status tcdb_learn_block(struct tcdb *db, const struct tcdb_block *b)
{
	if (!db->learning)
		return BT_ERR_INVALID;
	struct tcdb_block c = *b;
	c.origin = TCDB_ORIGIN_LEARNED;
	return put_block(db, db->st[ST_LEARN_BLOCK], &c);
}

enum bt_status tcdb_learn_commit(struct tcdb *db)
{
	if (!db->learning)
		return BT_ERR_INVALID;
	db->learning = false;
	enum bt_status s = exec(db, "COMMIT");
	if (s != BT_OK)
		exec(db, "ROLLBACK");
	free(db->idx); /* the set of starts changed */
	db->idx = NULL;
	return s;
}

enum bt_status tcdb_record_run(struct tcdb *db, const struct tcdb_run_stats *rs)
{
	if (!db->rdwr || db->learning)
		return BT_ERR_INVALID;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "INSERT INTO run_stats(boot_id, started, ended, blocks_used, "
			       "blocks_stale, misses, blocks_learned, counters) VALUES(?1, ?2, ?3, "
			       "?4, ?5, ?6, ?7, ?8)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "recording run statistics");
	sqlite3_bind_text(st, 1, rs->boot_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, rs->started);
	sqlite3_bind_int64(st, 3, rs->ended);
	sqlite3_bind_int64(st, 4, (int64_t)rs->blocks_used);
	sqlite3_bind_int64(st, 5, (int64_t)rs->blocks_stale);
	sqlite3_bind_int64(st, 6, (int64_t)rs->misses);
	sqlite3_bind_int64(st, 7, (int64_t)rs->blocks_learned);
	if (rs->counters)
		sqlite3_bind_text(st, 8, rs->counters, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 8);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(db, "recording run statistics");
	return BT_OK;
}

enum bt_status tcdb_last_run(struct tcdb *db, struct tcdb_run_stats *rs, uint64_t *n)
{
	int64_t count;
	bool found;
	memset(rs, 0, sizeof(*rs));
	BT_TRY(query_int(db, "SELECT count(*) FROM run_stats", &count, &found));
	*n = (uint64_t)count;
	if (count == 0)
		return BT_OK;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT boot_id, started, ended, blocks_used, blocks_stale, misses, "
			       "blocks_learned, counters FROM run_stats ORDER BY id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "reading run statistics");
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_err(db, "reading run statistics");
	}
	copy_text(rs->boot_id, sizeof(rs->boot_id), sqlite3_column_text(st, 0));
	rs->started = sqlite3_column_int64(st, 1);
	rs->ended = sqlite3_column_int64(st, 2);
	rs->blocks_used = (uint64_t)sqlite3_column_int64(st, 3);
	rs->blocks_stale = (uint64_t)sqlite3_column_int64(st, 4);
	rs->misses = (uint64_t)sqlite3_column_int64(st, 5);
	rs->blocks_learned = (uint64_t)sqlite3_column_int64(st, 6);
	const unsigned char *c = sqlite3_column_text(st, 7);
	size_t len = c ? strlen((const char *)c) + 1 : 0;
	if (len && BT_VEC_RESERVE(db->buf, db->buf_cap, len, 4096)) {
		memcpy(db->buf, c, len);
		rs->counters = (const char *)db->buf;
	}
	sqlite3_finalize(st);
	return BT_OK;
}
