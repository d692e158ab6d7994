/*
 * Block and function rows of the translation-cache database (see tcdb.h,
 * docs/db.md): writing them (a build's tcdb_add_function/tcdb_add_block,
 * the runtime's tcdb_learn_block), looking blocks up by guest start, the
 * optional in-memory index of translated starts, and walking all rows.
 *
 * Invariants
 *  1. Block rows are keyed by key_of(guest start) (the rowid): one row per
 *     start; only key_of/va_of convert.
 *  2. A refused region stores no payload (chunk 0, NULL blobs); a
 *     translated block's payload is in chunk `chunk` at payload_off, or
 *     inline (chunk 0) for learned blocks.
 *  3. The index (the start-index pack's bitmap, or the hash set of a row
 *     scan) holds exactly the translated starts (the hash set: other than
 *     0) when it was loaded; a change to the set of starts
 *     (tcdb_learn_commit) drops it, so a miss it answers is a true miss.
 *  4. A block handed out points into db->buf, a chunk cache entry or
 *     sqlite's row (tcdb_foreach_*), valid until the next call on db.
 *  5. Every row carries a tag (db/tcdb_auth.c) over its integer columns and
 *     its inline code, exits and pc map; a row is handed out only after
 *     its tag, and the tag of the chunk holding its payload, matched
 *     (unless db was opened TCDB_UNVERIFIED).  After a failure db is
 *     untrusted and hands out no more rows.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- writes */

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
		return tcdb_db_err(db, "adding a function");
	f->id = sqlite3_last_insert_rowid(db->h);
	return BT_OK;
}

enum bt_status tcdb_put_block(struct tcdb *db, sqlite3_stmt *st, const struct tcdb_block *b)
{
	uint8_t exits[TCDB_MAX_EXITS * TCDB_EXIT_REC];
	if (b->n_exits > TCDB_MAX_EXITS)
		return BT_ERR_INVALID;
	size_t elen = tcdb_exits_encode(b->exits, b->n_exits, exits);
	const int64_t cols[TCDB_ROW_INTS] = {
	    key_of(b->guest_start),
	    b->guest_len,
	    b->n_insns,
	    (int64_t)b->guest_hash,
	    b->flags,
	    b->refusal,
	    b->refusal ? (int64_t)b->refusal_addr : 0,
	    b->function_id,
	    b->origin,
	    b->refusal ? 0 : b->chunk_id,
	    b->refusal ? 0 : b->payload_off,
	};
	bool inline_payload = b->refusal == 0 && b->chunk_id == 0;
	uint8_t mac[TCDB_MAC_LEN];
	if (inline_payload)
		tcdb_mac_row(db, cols, b->code, b->code_len, exits, elen, b->pcmap, b->pcmap_len,
			     mac);
	else
		tcdb_mac_row(db, cols, NULL, 0, NULL, 0, NULL, 0, mac);
	sqlite3_reset(st);
	for (int i = 0; i < 7; i++)
		sqlite3_bind_int64(st, 1 + i, cols[i]);
	if (inline_payload) {
		sqlite3_bind_blob(st, 8, b->code, (int)b->code_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 9, exits, (int)elen, SQLITE_STATIC);
		sqlite3_bind_blob(st, 10, b->pcmap, (int)b->pcmap_len, SQLITE_STATIC);
	} else {
		sqlite3_bind_null(st, 8);
		sqlite3_bind_null(st, 9);
		sqlite3_bind_null(st, 10);
	}
	for (int i = 7; i < TCDB_ROW_INTS; i++)
		sqlite3_bind_int64(st, 4 + i, cols[i]);
	sqlite3_bind_blob(st, 15, mac, TCDB_MAC_LEN, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return tcdb_db_err(db, "writing a block");
	return BT_OK;
}

enum bt_status tcdb_add_block(struct tcdb *db, const struct tcdb_block *b)
{
	if (!db->building)
		return BT_ERR_INVALID;
	BT_TRY(tcdb_put_block(db, db->st[ST_ADD_BLOCK], b));
	db->added += (size_t)sqlite3_changes(db->h);
	return BT_OK;
}

size_t tcdb_blocks_added(const struct tcdb *db)
{
	return db->added;
}

enum bt_status tcdb_learn_block(struct tcdb *db, const struct tcdb_block *b)
{
	if (!db->learning)
		return BT_ERR_INVALID;
	if (db->untrusted)
		return BT_ERR_AUTH;
	struct tcdb_block c = *b;
	c.origin = TCDB_ORIGIN_LEARNED;
	BT_TRY(tcdb_put_block(db, db->st[ST_LEARN_BLOCK], &c));
	db->learned_rows++;
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

/* The index from the rows themselves (a database without a start-index
 * pack, or one spanning too much address space for its bitmap). */
static enum bt_status load_index_rows(struct tcdb *db, size_t *n_blocks)
{
	int64_t n;
	bool found;
	BT_TRY(tcdb_query_int(db, "SELECT count(*) FROM blocks WHERE refusal = 0", &n, &found));
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
		return tcdb_db_err(db, "loading the block index");
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
		return tcdb_db_err(db, "loading the block index");
	}
	free(db->idx);
	db->idx = idx;
	db->idx_mask = cap - 1;
	if (n_blocks)
		*n_blocks = count;
	return BT_OK;
}

enum bt_status tcdb_load_index(struct tcdb *db, size_t *n_blocks)
{
	size_t n = 0, n_prof;
	if (n_blocks)
		*n_blocks = 0;
	enum bt_status s = tcdb_pack_load_index(db, &n);
	if (s == BT_ERR_NOTFOUND || s == BT_ERR_RANGE)
		s = load_index_rows(db, &n);
	if (s == BT_OK) {
		if (n_blocks)
			*n_blocks = n;
		s = tcdb_profile_load(db, &n_prof);
	}
	/* A pack that fails its tag is what a row or chunk failing its tag
	 * is: logged, db untrusted and serving nothing, the guest runs on
	 * from run-time translations; not a failure of the load. */
	return s == BT_ERR_AUTH && db->untrusted ? BT_OK : s;
}

/* The start index says there is no translated row at va. */
static bool index_says_no(const struct tcdb *db, gva_t va)
{
	if (db->bits)
		return va - db->bits_first >= db->bits_span ||
		       !(db->bits[(va - db->bits_first) >> 6] >> ((va - db->bits_first) & 63) & 1);
	return db->idx && va != 0 && !idx_has(db, va);
}

/* The integer columns of a row of TCDB_BLOCK_COLS as its tag covers them. */
static void row_ints(sqlite3_stmt *st, int64_t cols[TCDB_ROW_INTS])
{
	for (int i = 0; i < 7; i++)
		cols[i] = sqlite3_column_int64(st, i);
	for (int i = 7; i < TCDB_ROW_INTS; i++)
		cols[i] = sqlite3_column_int64(st, 3 + i);
}

/* The row's tag (column 14) matches its columns. */
static bool row_authentic(const struct tcdb *db, sqlite3_stmt *st)
{
	if (db->unverified)
		return true;
	int64_t cols[TCDB_ROW_INTS];
	row_ints(st, cols);
	uint8_t want[TCDB_MAC_LEN];
	tcdb_mac_row(db, cols, sqlite3_column_blob(st, 7), (size_t)sqlite3_column_bytes(st, 7),
		     sqlite3_column_blob(st, 8), (size_t)sqlite3_column_bytes(st, 8),
		     sqlite3_column_blob(st, 9), (size_t)sqlite3_column_bytes(st, 9), want);
	return tcdb_mac_ok(want, sqlite3_column_blob(st, 14), (size_t)sqlite3_column_bytes(st, 14));
}

/* Fill *b from a row of TCDB_BLOCK_COLS once its tag matched; blobs are
 * copied into db->buf when copy is set, else point into sqlite's row
 * storage. */
static enum bt_status row_to_block(struct tcdb *db, sqlite3_stmt *st, struct tcdb_block *b,
				   bool copy)
{
	memset(b, 0, sizeof(*b));
	if (db->untrusted)
		return BT_ERR_AUTH;
	if (!row_authentic(db, st))
		return tcdb_auth_fail(db, va_of(sqlite3_column_int64(st, 0)), 0);
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
		BT_TRY(tcdb_load_chunk(db, chunk, b->guest_start));
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
	if (code_len <= 0 || tcdb_exits_decode(exits, (size_t)exits_len, db->want.n_exit_kinds,
					       b->exits, &b->n_exits))
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
	if (db->untrusted)
		return BT_ERR_AUTH;
	if (index_says_no(db, va))
		return BT_ERR_NOTFOUND;
	sqlite3_stmt *st = db->st[ST_LOOKUP];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, key_of(va));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return BT_ERR_NOTFOUND;
	if (rc != SQLITE_ROW)
		return tcdb_db_err(db, "looking up a block");
	enum bt_status s = row_to_block(db, st, out, true);
	sqlite3_reset(st);
	if (s == BT_OK && out->refusal)
		return BT_ERR_NOTFOUND;
	return s;
}

/* Hands every row of the prepared block query st to cb (until it returns
 * non-zero), then finalizes st. */
static enum bt_status walk_rows(struct tcdb *db, sqlite3_stmt *st,
				int (*cb)(void *, const struct tcdb_block *), void *opaque)
{
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
		s = tcdb_db_err(db, "reading blocks");
	sqlite3_finalize(st);
	return s;
}

enum bt_status tcdb_foreach_block(struct tcdb *db, int (*cb)(void *, const struct tcdb_block *),
				  void *opaque)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "SELECT " TCDB_BLOCK_COLS " FROM blocks", -1, &st, NULL) !=
	    SQLITE_OK)
		return tcdb_db_err(db, "reading blocks");
	return walk_rows(db, st, cb, opaque);
}

enum bt_status tcdb_foreach_block_range(struct tcdb *db, gva_t lo, gva_t hi,
					int (*cb)(void *, const struct tcdb_block *), void *opaque)
{
	if (hi <= lo)
		return BT_OK;
	int64_t klo = key_of(lo), khi = key_of(hi - 1);
	if (klo > khi) /* the range crosses a 2 GiB boundary of the key order */
		return tcdb_foreach_block(db, cb, opaque);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT " TCDB_BLOCK_COLS
		" FROM blocks WHERE guest_start BETWEEN ?1 AND ?2 ORDER BY guest_start",
		-1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading blocks");
	sqlite3_bind_int64(st, 1, klo);
	sqlite3_bind_int64(st, 2, khi);
	return walk_rows(db, st, cb, opaque);
}

enum bt_status tcdb_foreach_block_meta(struct tcdb *db,
				       int (*cb)(void *, const struct tcdb_block *), void *opaque)
{
	db->skip_payload = true;
	enum bt_status s = tcdb_foreach_block(db, cb, opaque);
	db->skip_payload = false;
	return s;
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
		return tcdb_db_err(db, "reading functions");
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
		s = tcdb_db_err(db, "reading functions");
	sqlite3_finalize(st);
	return s;
}

enum bt_status tcdb_sign_rows(struct tcdb *db)
{
	sqlite3_stmt *sel, *upd;
	if (sqlite3_prepare_v2(db->h, "SELECT " TCDB_BLOCK_COLS " FROM blocks", -1, &sel, NULL) !=
	    SQLITE_OK)
		return tcdb_db_err(db, "signing blocks");
	if (sqlite3_prepare_v2(db->h, "UPDATE blocks SET mac = ?2 WHERE guest_start = ?1", -1, &upd,
			       NULL) != SQLITE_OK) {
		sqlite3_finalize(sel);
		return tcdb_db_err(db, "signing blocks");
	}
	enum bt_status s = BT_OK;
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t cols[TCDB_ROW_INTS];
		row_ints(sel, cols);
		uint8_t mac[TCDB_MAC_LEN];
		tcdb_mac_row(db, cols, sqlite3_column_blob(sel, 7),
			     (size_t)sqlite3_column_bytes(sel, 7), sqlite3_column_blob(sel, 8),
			     (size_t)sqlite3_column_bytes(sel, 8), sqlite3_column_blob(sel, 9),
			     (size_t)sqlite3_column_bytes(sel, 9), mac);
		sqlite3_reset(upd);
		sqlite3_bind_int64(upd, 1, cols[0]);
		sqlite3_bind_blob(upd, 2, mac, TCDB_MAC_LEN, SQLITE_STATIC);
		if (sqlite3_step(upd) != SQLITE_DONE) {
			s = tcdb_db_err(db, "signing a block");
			break;
		}
	}
	if (s == BT_OK && rc != SQLITE_DONE)
		s = tcdb_db_err(db, "signing blocks");
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return s;
}
