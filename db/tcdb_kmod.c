/*
 * The `modules` table of the translation-cache database (tcdb.h, docs/db.md
 * "Modules"): one row per loadable module, its identity and its templates
 * as one zstd-compressed blob (the format is kmod/'s; this file stores
 * bytes).
 *
 * Invariants
 *  1. A row's tag (tcdb_mac_module) covers its id, identity, template count,
 *     raw length and the SHA-256 of the stored bytes; the blob is inflated,
 *     and handed out, only after the tag matched (unless db was opened
 *     TCDB_UNVERIFIED); a failure marks db untrusted, as any tag does.
 *  2. Inflating must give exactly raw_len bytes (at most MODULE_MAX_RAW).
 *  3. Rows are added only while building, ids 1, 2, ... in call order, so
 *     the same calls give the same file.
 *  4. The fingerprint index of the rows is a pack (TCDB_PACK_KMOD_INDEX,
 *     tcdb_pack.c's tag and codec): it selects which row to read, never
 *     what to run.
 *  5. The image's own block templates (for `pretrans build --reuse`) are
 *     packs too (TCDB_PACK_TEMPLATES, TCDB_PACK_PRED_TEMPLATES for the
 *     predicted-patching versions): bytes of pretrans/reuse_tmpl.c.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define MODULE_MAX_RAW	  (1u << 30)
#define MODULE_ZSTD_LEVEL 3

enum bt_status tcdb_add_module(struct tcdb *db, struct tcdb_module *m, const uint8_t *raw,
			       size_t raw_len)
{
	if (!db->building || raw_len > MODULE_MAX_RAW)
		return BT_ERR_INVALID;
	size_t cap = ZSTD_compressBound(raw_len);
	uint8_t *z = malloc(cap ? cap : 1);
	if (!z)
		return BT_ERR_NOMEM;
	size_t zl = ZSTD_compress(z, cap, raw, raw_len, MODULE_ZSTD_LEVEL);
	if (ZSTD_isError(zl)) {
		free(z);
		return BT_ERR_INTERNAL;
	}
	int64_t n = 0;
	bool found;
	enum bt_status s = tcdb_query_int(db, "SELECT count(*) FROM modules", &n, &found);
	if (s != BT_OK) {
		free(z);
		return s;
	}
	m->id = n + 1;
	m->raw_len = raw_len;
	uint8_t digest[SHA256_LEN], mac[TCDB_MAC_LEN];
	sha256_buf(z, zl, digest);
	tcdb_mac_module(db, m, digest, mac);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "INSERT INTO modules(id, name, vermagic, srcversion, sections_hash, "
			       "path, n_templates, raw_len, data, mac) "
			       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
			       -1, &st, NULL) != SQLITE_OK) {
		free(z);
		return tcdb_db_err(db, "writing a module");
	}
	sqlite3_bind_int64(st, 1, m->id);
	sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->vermagic, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->srcversion, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->sections_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, m->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, m->n_templates);
	sqlite3_bind_int64(st, 8, (int64_t)raw_len);
	sqlite3_bind_blob64(st, 9, z, zl, SQLITE_STATIC);
	sqlite3_bind_blob(st, 10, mac, TCDB_MAC_LEN, SQLITE_STATIC);
	s = sqlite3_step(st) == SQLITE_DONE ? BT_OK : tcdb_db_err(db, "writing a module");
	sqlite3_finalize(st);
	free(z);
	return s;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	return t ? t : "";
}

enum bt_status tcdb_foreach_module(struct tcdb *db, int (*cb)(void *, const struct tcdb_module *),
				   void *opaque)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT id, name, vermagic, srcversion, sections_hash, path, "
			       "n_templates, raw_len FROM modules ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "listing modules");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct tcdb_module m = {
		    .id = sqlite3_column_int64(st, 0),
		    .name = col_text(st, 1),
		    .vermagic = col_text(st, 2),
		    .srcversion = col_text(st, 3),
		    .sections_hash = col_text(st, 4),
		    .path = col_text(st, 5),
		    .n_templates = (uint32_t)sqlite3_column_int64(st, 6),
		    .raw_len = (uint64_t)sqlite3_column_int64(st, 7),
		};
		if (cb(opaque, &m))
			break;
	}
	enum bt_status s =
	    rc == SQLITE_ROW || rc == SQLITE_DONE ? BT_OK : tcdb_db_err(db, "listing modules");
	sqlite3_finalize(st);
	return s;
}

enum bt_status tcdb_module_get(struct tcdb *db, int64_t id, uint8_t **raw, size_t *raw_len)
{
	if (db->untrusted)
		return BT_ERR_AUTH;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT name, vermagic, srcversion, sections_hash, n_templates, "
			       "raw_len, data, mac FROM modules WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading a module");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? BT_ERR_NOTFOUND : tcdb_db_err(db, "reading a module");
	}
	struct tcdb_module m = {.id = id,
				.name = col_text(st, 0),
				.vermagic = col_text(st, 1),
				.srcversion = col_text(st, 2),
				.sections_hash = col_text(st, 3),
				.n_templates = (uint32_t)sqlite3_column_int64(st, 4),
				.raw_len = (uint64_t)sqlite3_column_int64(st, 5)};
	const void *z = sqlite3_column_blob(st, 6);
	size_t zl = (size_t)sqlite3_column_bytes(st, 6);
	enum bt_status s = BT_OK;
	if (m.raw_len > MODULE_MAX_RAW || (!z && zl)) {
		bt_err(LOG_DB, "%s: corrupt module row %lld: rebuild it with `pretrans build`",
		       db->path, (long long)id);
		s = BT_ERR_FORMAT;
		goto out;
	}
	if (!db->unverified) {
		uint8_t digest[SHA256_LEN], want[TCDB_MAC_LEN];
		sha256_buf(z ? z : "", zl, digest);
		tcdb_mac_module(db, &m, digest, want);
		if (!tcdb_mac_ok(want, sqlite3_column_blob(st, 7),
				 (size_t)sqlite3_column_bytes(st, 7))) {
			if (!db->untrusted)
				bt_err(LOG_DB,
				       "%s: module %s fails its authentication: changed after it "
				       "was written, or written with another key: nothing of this "
				       "database is used from now on; rebuild it with `pretrans "
				       "build`",
				       db->path, m.name);
			db->untrusted = true;
			s = BT_ERR_AUTH;
			goto out;
		}
	}
	uint8_t *out = malloc(m.raw_len ? m.raw_len : 1);
	if (!out) {
		s = BT_ERR_NOMEM;
		goto out;
	}
	size_t got = ZSTD_decompress(out, m.raw_len, z ? z : "", zl);
	if (ZSTD_isError(got) || got != m.raw_len) {
		free(out);
		bt_err(LOG_DB, "%s: module %s does not inflate to its length: rebuild it", db->path,
		       m.name);
		s = BT_ERR_FORMAT;
		goto out;
	}
	*raw = out;
	*raw_len = got;
out:
	sqlite3_finalize(st);
	return s;
}

enum bt_status tcdb_module_index_put(struct tcdb *db, const uint8_t *raw, size_t raw_len,
				     uint64_t n_modules)
{
	if (!db->building)
		return BT_ERR_INVALID;
	return tcdb_pack_put(db, TCDB_PACK_KMOD_INDEX, TCDB_CODEC_ZSTD, raw, raw_len, n_modules);
}

enum bt_status tcdb_module_index_get(struct tcdb *db, uint8_t **raw, size_t *raw_len,
				     uint64_t *n_modules)
{
	return tcdb_pack_get(db, TCDB_PACK_KMOD_INDEX, raw, raw_len, n_modules);
}

void tcdb_module_index_free(uint8_t *raw, size_t raw_len)
{
	tcdb_pack_free(raw, raw_len);
}

enum bt_status tcdb_templates_put(struct tcdb *db, bool predicted, const uint8_t *raw,
				  size_t raw_len, uint64_t n_items)
{
	if (!db->building)
		return BT_ERR_INVALID;
	return tcdb_pack_put(db, predicted ? TCDB_PACK_PRED_TEMPLATES : TCDB_PACK_TEMPLATES,
			     TCDB_CODEC_ZSTD, raw, raw_len, n_items);
}

enum bt_status tcdb_templates_get(struct tcdb *db, bool predicted, uint8_t **raw, size_t *raw_len,
				  uint64_t *n_items)
{
	return tcdb_pack_get(db, predicted ? TCDB_PACK_PRED_TEMPLATES : TCDB_PACK_TEMPLATES, raw,
			     raw_len, n_items);
}
