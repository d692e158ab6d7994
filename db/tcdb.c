/*
 * The translation-cache database (see tcdb.h, docs/db.md): the lifecycle
 * of a connection.  Owns the schema, the sqlite connection and its prepared
 * statements, creating a database (tcdb_create, the image and provenance
 * rows, tcdb_commit/tcdb_abort), opening and validating one (tcdb_open,
 * tcdb_close) and the learn transaction.  The files below sqlite (the
 * temporary file, the atomic replace) are db/tcdb_file.c; chunks and the
 * payload codec db/tcdb_chunk.c; the chunk directories and the chunk map
 * db/tcdb_dir.c, the chunk dictionary db/tcdb_zdict.c; block and function
 * rows db/tcdb_block.c; run statistics db/tcdb_run.c.
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
 *  3. Block rows are keyed by guest_start (the rowid): one row per start;
 *     a build's blocks are in their chunks' directories (schema 7), and
 *     tcdb_commit writes the chunk map with the start index.
 *  4. Rows are written in the order the caller adds them, so the same calls
 *     give a byte-identical file.
 *  5. A reader never hands out an exit kind or refusal code outside the
 *     caller's limits (tcdb_prov): such a row is BT_ERR_FORMAT.
 *  6. OUT is only created as, or replaces, a regular file: a device node,
 *     FIFO, socket or directory (or a symlink to one) is refused by
 *     tcdb_create() and again by tcdb_commit() right before the rename
 *     (db/tcdb_file.c).
 *  7. A ROLLBACK is issued only while a transaction is open.
 *  8. The start-index pack is written in the transaction that changes the
 *     set of translated starts (the build's; a learning one's), so it always
 *     equals them (db/tcdb_pack.c).
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "CREATE TABLE image(id INTEGER PRIMARY KEY CHECK(id = 1), path TEXT NOT NULL,\n"
    "  build_id TEXT NOT NULL, sha256 TEXT NOT NULL, entry INTEGER NOT NULL,\n"
    "  arch TEXT NOT NULL, build_id_va INTEGER NOT NULL, banner TEXT NOT NULL);\n"
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
    "  chunk INTEGER NOT NULL, payload_off INTEGER NOT NULL, mac BLOB NOT NULL);\n"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY, raw_len INTEGER NOT NULL,\n"
    "  func0 INTEGER NOT NULL, data BLOB NOT NULL, mac BLOB NOT NULL);\n"
    "CREATE TABLE packs(kind INTEGER PRIMARY KEY, codec INTEGER NOT NULL,\n"
    "  raw_len INTEGER NOT NULL, n_items INTEGER NOT NULL, data BLOB NOT NULL,\n"
    "  mac BLOB NOT NULL);\n"
    "CREATE TABLE modules(id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
    "  vermagic TEXT NOT NULL, srcversion TEXT NOT NULL, sections_hash TEXT NOT NULL,\n"
    "  path TEXT NOT NULL, n_templates INTEGER NOT NULL, raw_len INTEGER NOT NULL,\n"
    "  data BLOB NOT NULL, mac BLOB NOT NULL);\n"
    "CREATE TABLE run_stats(id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL,\n"
    "  started INTEGER NOT NULL, ended INTEGER NOT NULL, blocks_used INTEGER NOT NULL,\n"
    "  blocks_stale INTEGER NOT NULL, misses INTEGER NOT NULL,\n"
    "  blocks_learned INTEGER NOT NULL, counters TEXT);\n";

static const char *const stmt_sql[ST_N] = {
    [ST_ADD_FUNC] = "INSERT INTO functions(name, address, size, bytes_hash, section, "
		    "covered_bytes, refused_bytes, kind) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_ADD_BLOCK] = "INSERT OR IGNORE INTO blocks VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
		     "?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [ST_LEARN_BLOCK] = "INSERT OR REPLACE INTO blocks VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		       "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [ST_ADD_CHUNK] = "INSERT INTO chunks(id, raw_len, func0, data, mac) "
		     "VALUES(?1, ?2, ?5, ?3, ?4)",
    [ST_GET_CHUNK] = "SELECT raw_len, data, mac, func0 FROM chunks WHERE id = ?1",
    [ST_LOOKUP] = "SELECT " TCDB_BLOCK_COLS " FROM blocks WHERE guest_start = ?1",
};

enum bt_status tcdb_db_err(struct tcdb *db, const char *what)
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

enum bt_status tcdb_exec(struct tcdb *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		sqlite3_free(msg);
		return tcdb_db_err(db, sql);
	}
	return BT_OK;
}

static enum bt_status prepare_all(struct tcdb *db)
{
	for (int i = 0; i < ST_N; i++)
		if (sqlite3_prepare_v3(db->h, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &db->st[i], NULL) != SQLITE_OK)
			return tcdb_db_err(db, "preparing statements");
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
	free(db->bits);
	tcdb_profile_free(db);
	for (int i = 0; i < CHUNK_CACHE; i++) {
		free(db->cache[i].buf);
		free(db->cache[i].dir);
	}
	tcdb_dir_free(db);
	ZSTD_freeDCtx(db->zd);
	ZSTD_freeDDict(db->ddict);
	tcdb_zdict_free(db->wdict);
	free(db->path);
	free(db->tmp_path);
	free(db);
}

/* ---------------------------------------------------------------- identity */

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = 0;
}

static bool from_hex(const char *s, uint8_t *p, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < 2 * n; i++) {
		int c = s[i], v = c >= '0' && c <= '9'	 ? c - '0'
				  : c >= 'a' && c <= 'f' ? c - 'a' + 10
							 : -1;
		if (v < 0)
			return false;
		p[i / 2] = (uint8_t)(i % 2 ? (p[i / 2] | v) : v << 4);
	}
	return true;
}

/* meta 'nonce' and 'mac' (the identity tag over image and provenance as
 * given), replacing any earlier ones. */
static enum bt_status write_identity(struct tcdb *db, const struct tcdb_image *img,
				     const struct tcdb_provenance *prov)
{
	struct tcdb_image im = *img;
	if (!im.arch[0])
		snprintf(im.arch, sizeof(im.arch), "x86_64");
	if (db->building)
		tcdb_derive_nonce(db, &im, prov);
	uint8_t mac[TCDB_MAC_LEN];
	tcdb_mac_identity(db, &im, prov, mac);
	char nonce_hex[2 * TCDB_NONCE_LEN + 1], mac_hex[2 * TCDB_MAC_LEN + 1], sql[256];
	to_hex(db->nonce, TCDB_NONCE_LEN, nonce_hex);
	to_hex(mac, TCDB_MAC_LEN, mac_hex);
	snprintf(sql, sizeof(sql),
		 "INSERT OR REPLACE INTO meta VALUES('nonce', '%s');"
		 "INSERT OR REPLACE INTO meta VALUES('mac', '%s')",
		 nonce_hex, mac_hex);
	return tcdb_exec(db, sql);
}

static enum bt_status meta_text(struct tcdb *db, const char *key, char *out, size_t cap)
{
	sqlite3_stmt *st;
	out[0] = 0;
	if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return tcdb_db_err(db, "reading meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		copy_text(out, cap, sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return BT_OK;
}

/* Read the nonce; unless db is unverified, check the identity tag. */
static enum bt_status check_identity(struct tcdb *db, const struct tcdb_image *im,
				     const struct tcdb_provenance *p)
{
	char nonce_hex[2 * TCDB_NONCE_LEN + 8], mac_hex[2 * TCDB_MAC_LEN + 8];
	uint8_t mac[TCDB_MAC_LEN], want[TCDB_MAC_LEN];
	BT_TRY(meta_text(db, "nonce", nonce_hex, sizeof(nonce_hex)));
	BT_TRY(meta_text(db, "mac", mac_hex, sizeof(mac_hex)));
	bool parsed =
	    from_hex(nonce_hex, db->nonce, TCDB_NONCE_LEN) && from_hex(mac_hex, mac, TCDB_MAC_LEN);
	if (db->unverified)
		return BT_OK;
	if (parsed) {
		tcdb_mac_identity(db, im, p, want);
		if (tcdb_mac_ok(want, mac, sizeof(mac)))
			return BT_OK;
	}
	bt_err(LOG_DB,
	       "%s is not signed with your key: it was written by another user or on another "
	       "machine (or changed after it was written), and a database is code that runs in "
	       "the VMM; to trust it, check every block against its image and sign it with "
	       "`pretrans verify %s IMAGE --sign`, or rebuild it with `pretrans build`",
	       db->path, db->path);
	return BT_ERR_AUTH;
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
	if ((s = tcdb_file_create_tmp(out_path, db->tmp_path)) != BT_OK) {
		free(db->tmp_path);
		db->tmp_path = NULL;
		db_free(db);
		return s;
	}
	db->building = true;
	if ((s = tcdb_key_load(&db->key)) != BT_OK)
		goto err_remove_tmp;
	if (sqlite3_open_v2(db->tmp_path, &db->h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		s = tcdb_db_err(db, "opening the temporary output");
		goto err_remove_tmp;
	}
	/* The temporary file is thrown away on any failure, so no journal. */
	/* 64 KiB pages: chunks (a few KiB each) pack into pages instead of
	 * leaving half-empty overflow pages behind */
	if ((s = tcdb_exec(
		 db, "PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
		     "PRAGMA locking_mode=EXCLUSIVE; BEGIN")) != BT_OK)
		goto err_remove_tmp;
	if ((s = tcdb_exec(db, schema_sql)) != BT_OK)
		goto err_remove_tmp;
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meta VALUES('magic', '%s'); PRAGMA user_version = %d", TCDB_MAGIC,
		 TCDB_SCHEMA_VERSION);
	if ((s = tcdb_exec(db, sql)) != BT_OK)
		goto err_remove_tmp;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "INSERT INTO image VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1,
			       &st, NULL) != SQLITE_OK) {
		s = tcdb_db_err(db, "writing the image row");
		goto err_remove_tmp;
	}
	sqlite3_bind_text(st, 1, img->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, img->build_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, img->sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)img->entry);
	sqlite3_bind_text(st, 5, img->arch[0] ? img->arch : "x86_64", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)img->build_id_va);
	sqlite3_bind_text(st, 7, img->banner, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		s = tcdb_db_err(db, "writing the image row");
		goto err_remove_tmp;
	}
	if (sqlite3_prepare_v2(db->h, "INSERT INTO provenance VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6)",
			       -1, &st, NULL) != SQLITE_OK) {
		s = tcdb_db_err(db, "writing provenance");
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
		s = tcdb_db_err(db, "writing provenance");
		goto err_remove_tmp;
	}
	if ((s = write_identity(db, img, prov)) != BT_OK)
		goto err_remove_tmp;
	if ((s = prepare_all(db)) != BT_OK)
		goto err_remove_tmp;
	*out = db;
	return BT_OK;

err_remove_tmp:
	unlink(db->tmp_path);
	db_free(db);
	return s;
}

enum bt_status tcdb_commit(struct tcdb *db)
{
	enum bt_status s;
	if (!db->building) {
		tcdb_close(db);
		return BT_ERR_INVALID;
	}
	if ((s = tcdb_pack_write_index(db)) != BT_OK)
		goto err_remove_tmp;
	if ((s = tcdb_dir_write_map(db)) != BT_OK)
		goto err_remove_tmp;
	if ((s = tcdb_exec(db, "COMMIT")) != BT_OK)
		goto err_remove_tmp;
	for (int i = 0; i < ST_N; i++) {
		sqlite3_finalize(db->st[i]);
		db->st[i] = NULL;
	}
	if (sqlite3_close(db->h) != SQLITE_OK) {
		s = tcdb_db_err(db, "closing the output");
		db->h = NULL;
		goto err_remove_tmp;
	}
	db->h = NULL;
	if ((s = tcdb_file_replace(db->tmp_path, db->path)) != BT_OK)
		goto err_remove_tmp;
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

/*
 * ROLLBACK only while a transaction is open: on some errors (SQLITE_FULL,
 * SQLITE_IOERR, SQLITE_NOMEM ...) sqlite has already rolled back by itself,
 * and a ROLLBACK would add a spurious "cannot rollback - no transaction is
 * active" after the real error.
 */
static void rollback(struct tcdb *db)
{
	if (db->h && !sqlite3_get_autocommit(db->h))
		tcdb_exec(db, "ROLLBACK");
}

/* ---------------------------------------------------------------- open */

enum bt_status tcdb_query_int(struct tcdb *db, const char *sql, int64_t *out, bool *found)
{
	sqlite3_stmt *st;
	*found = false;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading the database");
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		*found = true;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return tcdb_db_err(db, "reading the database");
	return BT_OK;
}

static enum bt_status validate(struct tcdb *db, const struct tcdb_expect *ex)
{
	sqlite3_stmt *st;
	/* 1. our magic: otherwise another application's database */
	int64_t v;
	bool found;
	BT_TRY(tcdb_query_int(
	    db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'", &v,
	    &found));
	bool magic_ok = false;
	if (v == 1) {
		if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key='magic'", -1, &st,
				       NULL) != SQLITE_OK)
			return tcdb_db_err(db, "reading meta");
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
	BT_TRY(tcdb_query_int(db, "PRAGMA user_version", &v, &found));
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
	/* A build-id is compared whenever the caller has one: a database whose
	 * image had none (or another) is another image's, never "unknown". */
	if (ex && ((ex->sha256 && strcmp(ex->sha256, im.sha256)) ||
		   (ex->build_id && ex->build_id[0] && strcmp(ex->build_id, im.build_id)))) {
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
	/* 5. signed with this user's key */
	return check_identity(db, &im, &p);
}

enum bt_status tcdb_open(const char *path, unsigned flags, const struct tcdb_prov *want,
			 const struct tcdb_expect *expect, struct tcdb **out)
{
	enum bt_status s;
	if (!want)
		return BT_ERR_INVALID;
	BT_TRY(tcdb_file_check(path));
	struct tcdb *db = calloc(1, sizeof(*db));
	if (!db)
		return BT_ERR_NOMEM;
	db->path = strdup(path);
	if (!db->path) {
		db_free(db);
		return BT_ERR_NOMEM;
	}
	db->rdwr = flags & TCDB_RDWR;
	db->unverified = flags & TCDB_UNVERIFIED;
	db->want = *want;
	db->want_cpu = expect ? expect->cpu_profile_hash : 0;
	if ((s = tcdb_key_load(&db->key)) != BT_OK)
		goto err_free;
	int oflags = db->rdwr ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
		s = tcdb_db_err(db, "cannot open");
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
		rollback(db);
	db_free(db);
}

enum bt_status tcdb_get_image(struct tcdb *db, struct tcdb_image *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		db->h, "SELECT path, build_id, sha256, entry, arch, build_id_va, banner FROM image",
		-1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading the image row");
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
	out->build_id_va = (gva_t)sqlite3_column_int64(st, 5);
	copy_text(out->banner, sizeof(out->banner), sqlite3_column_text(st, 6));
	sqlite3_finalize(st);
	return BT_OK;
}

void tcdb_image_locate(const char *db_path, const char *recorded, char *out, size_t n)
{
	snprintf(out, n, "%s", recorded);
	if (recorded[0] == '/' || access(recorded, F_OK) == 0)
		return;
	const char *slash = strrchr(db_path, '/');
	if (!slash)
		return; /* the database is in the working directory: tried already */
	char alt[2048];
	int len = snprintf(alt, sizeof(alt), "%.*s/%s", (int)(slash - db_path), db_path, recorded);
	if (len > 0 && (size_t)len < sizeof(alt) && (size_t)len < n && access(alt, F_OK) == 0)
		snprintf(out, n, "%s", alt);
}

enum bt_status tcdb_get_provenance(struct tcdb *db, struct tcdb_provenance *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT xlat_version, vcpu_abi_version, options_hash, options_flags, "
		"tool_version, created FROM provenance",
		-1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading provenance");
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

/* ---------------------------------------------------------------- learn */

enum bt_status tcdb_learn_begin(struct tcdb *db)
{
	if (!db->rdwr || db->learning || db->building)
		return BT_ERR_INVALID;
	BT_TRY(tcdb_exec(db, "BEGIN IMMEDIATE"));
	db->learning = true;
	return BT_OK;
}

enum bt_status tcdb_learn_commit(struct tcdb *db)
{
	if (!db->learning)
		return BT_ERR_INVALID;
	db->learning = false;
	/* the boot profile, and the start index again: learned rows changed
	 * the set of starts (same transaction: both or neither) */
	enum bt_status s = tcdb_profile_write(db);
	if (s == BT_OK && db->learned_rows)
		s = tcdb_pack_write_index(db);
	if (s == BT_OK)
		s = tcdb_exec(db, "COMMIT");
	if (s != BT_OK)
		rollback(db);
	free(db->idx); /* the set of starts changed */
	db->idx = NULL;
	free(db->bits);
	db->bits = NULL;
	db->learned_rows = 0;
	return s;
}

/* ---------------------------------------------------------------- sign */

enum bt_status tcdb_sign(struct tcdb *db)
{
	if (!db->rdwr || db->building || db->learning)
		return BT_ERR_INVALID;
	struct tcdb_image im;
	struct tcdb_provenance p;
	BT_TRY(tcdb_get_image(db, &im));
	BT_TRY(tcdb_get_provenance(db, &p));
	BT_TRY(tcdb_exec(db, "BEGIN IMMEDIATE"));
	enum bt_status s = tcdb_sign_chunks(db);
	if (s == BT_OK)
		s = tcdb_sign_rows(db);
	if (s == BT_OK)
		s = tcdb_sign_packs(db);
	if (s == BT_OK) /* module templates: no image checks them */
		s = tcdb_exec(db, "DELETE FROM modules");
	if (s == BT_OK)
		s = write_identity(db, &im, &p);
	if (s == BT_OK)
		s = tcdb_exec(db, "COMMIT");
	if (s != BT_OK) {
		rollback(db);
		return s;
	}
	db->unverified = false;
	db->untrusted = false;
	return BT_OK;
}
