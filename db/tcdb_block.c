/*
 * Block and function rows of the translation-cache database (see tcdb.h,
 * docs/db.md): writing them (a build's tcdb_add_function/tcdb_add_block,
 * the runtime's tcdb_learn_block), looking blocks up by guest start (a
 * learned row first, then the chunk directories through the chunk map,
 * db/tcdb_dir.c), the optional in-memory index of translated starts, and
 * walking rows and directories merged in key order.
 *
 * Invariants
 *  1. Block rows are keyed by key_of(guest start) (the rowid): one row per
 *     start; only key_of/va_of convert.
 *  2. A build's blocks (schema 7) are no rows: their chunk's directory
 *     lists them; a row (a learned block) replaces the build's block of
 *     its start in look-ups and walks.  A refused region stores no
 *     payload; a row's payload is inline.
 *  3. The index (the start-index pack's bitmap, or the hash set of a row
 *     scan) holds exactly the translated starts (the hash set: other than
 *     0) when it was loaded; a change to the set of starts
 *     (tcdb_learn_commit) drops it, so a miss it answers is a true miss.
 *  4. A block handed out points into db->buf, a chunk cache entry or
 *     sqlite's row (tcdb_foreach_*), valid until the next call on db.
 *  5. Every row carries a tag (db/tcdb_auth.c) over its integer columns and
 *     its inline code, exits and pc map; a row is handed out only after
 *     its tag matched, a directory's block only after its chunk's tag
 *     matched (unless db was opened TCDB_UNVERIFIED).  After a failure db
 *     is untrusted and hands out no more blocks.
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
	db->last_func = f->id;
	return BT_OK;
}

enum bt_status tcdb_put_block(struct tcdb *db, sqlite3_stmt *st, const struct tcdb_block *b)
{
	uint8_t exits[BT_MAX_EXITS * TCDB_EXIT_REC];
	if (b->blk.n_exits > BT_MAX_EXITS)
		return BT_ERR_INVALID;
	size_t elen = tcdb_exits_encode(b->blk.exits, b->blk.n_exits, exits);
	const int64_t cols[TCDB_ROW_INTS] = {
	    key_of(b->blk.guest_start),
	    b->blk.guest_len,
	    b->blk.n_insns,
	    (int64_t)b->blk.guest_hash,
	    b->blk.flags,
	    b->blk.refusal,
	    b->blk.refusal ? (int64_t)b->blk.refusal_addr : 0,
	    b->function_id,
	    b->origin,
	    b->blk.refusal ? 0 : b->chunk_id,
	    b->blk.refusal ? 0 : b->payload_off,
	};
	bool inline_payload = b->blk.refusal == 0 && b->chunk_id == 0;
	uint8_t mac[TCDB_MAC_LEN];
	if (inline_payload)
		tcdb_mac_row(db, cols, b->blk.code, b->blk.code_len, exits, elen, b->blk.pcmap,
			     b->blk.pcmap_len, mac);
	else
		tcdb_mac_row(db, cols, NULL, 0, NULL, 0, NULL, 0, mac);
	sqlite3_reset(st);
	for (int i = 0; i < 7; i++)
		sqlite3_bind_int64(st, 1 + i, cols[i]);
	if (inline_payload) {
		sqlite3_bind_blob(st, 8, b->blk.code, (int)b->blk.code_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 9, exits, (int)elen, SQLITE_STATIC);
		sqlite3_bind_blob(st, 10, b->blk.pcmap, (int)b->blk.pcmap_len, SQLITE_STATIC);
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
	if (b->chunk_id) { /* listed in its chunk's directory: no row */
		bool added;
		BT_TRY(tcdb_dir_claim(db, key_of(b->blk.guest_start), b->chunk_id, &added));
		db->added += added;
		return BT_OK;
	}
	BT_TRY(tcdb_put_block(db, db->st[ST_ADD_BLOCK], b));
	db->added += (size_t)sqlite3_changes(db->h);
	db->rows_state = 1;
	return BT_OK;
}

size_t tcdb_blocks_added(const struct tcdb *db)
{
	return db->added;
}

enum bt_status tcdb_learn_block(struct tcdb *db, const struct bt_block *b)
{
	if (!db->learning)
		return BT_ERR_INVALID;
	if (db->untrusted)
		return BT_ERR_AUTH;
	struct tcdb_block c = {.blk = *b, .origin = TCDB_ORIGIN_LEARNED};
	BT_TRY(tcdb_put_block(db, db->st[ST_LEARN_BLOCK], &c));
	db->learned_rows++;
	db->rows_state = 1;
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
	/* and the static starts, from the start index (its span was too
	 * large for a bitmap); without one, no index: look-ups ask the map */
	uint64_t *sv;
	size_t sn;
	enum bt_status ss = tcdb_dir_static_starts(db, &sv, &sn);
	if (ss == BT_ERR_NOTFOUND) {
		BT_TRY(tcdb_map_load(db));
		if (db->map_n)
			return BT_OK;
	} else if (ss != BT_OK) {
		return ss;
	}
	size_t cap = 16;
	while (cap < ((size_t)n + sn) * 2 + 2)
		cap <<= 1;
	uint64_t *idx = calloc(cap, sizeof(*idx));
	if (!idx) {
		free(sv);
		return BT_ERR_NOMEM;
	}
	size_t count = 0;
	for (size_t k = 0; k < sn; k++) {
		uint64_t va = sv[k];
		if (va == 0)
			continue;
		size_t i = mix64(va) & (cap - 1);
		while (idx[i] && idx[i] != va)
			i = (i + 1) & (cap - 1);
		count += idx[i] != va;
		idx[i] = va;
	}
	free(sv);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "SELECT guest_start FROM blocks WHERE refusal = 0", -1, &st,
			       NULL) != SQLITE_OK) {
		free(idx);
		return tcdb_db_err(db, "loading the block index");
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && count < cap / 2) {
		uint64_t va = va_of(sqlite3_column_int64(st, 0));
		if (va == 0)
			continue; /* 0 marks empty slots; a block at 0 goes to sqlite */
		size_t i = mix64(va) & (cap - 1);
		while (idx[i] && idx[i] != va)
			i = (i + 1) & (cap - 1);
		count += idx[i] != va;
		idx[i] = va;
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
	b->blk.guest_start = va_of(sqlite3_column_int64(st, 0));
	int64_t len = sqlite3_column_int64(st, 1);
	b->blk.n_insns = (uint32_t)sqlite3_column_int64(st, 2);
	b->blk.guest_hash = (uint64_t)sqlite3_column_int64(st, 3);
	b->blk.flags = (uint32_t)sqlite3_column_int64(st, 4);
	int64_t ref = sqlite3_column_int64(st, 5);
	b->blk.refusal_addr = (gva_t)sqlite3_column_int64(st, 6);
	b->function_id = sqlite3_column_int64(st, 10);
	b->origin = (uint32_t)sqlite3_column_int64(st, 11);
	if (len < 0 || len > (1 << 20) || ref < 0 || ref >= db->want.n_refusals)
		goto bad_row;
	b->blk.guest_len = (uint32_t)len;
	b->blk.refusal = (uint32_t)ref;
	if (b->blk.refusal)
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
		BT_TRY(tcdb_load_chunk(db, chunk, b->blk.guest_start));
		if (tcdb_payload_parse(db, db->chunk, db->chunk_len, (uint64_t)poff, &b->blk) !=
		    BT_OK)
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
					       b->blk.exits, &b->blk.n_exits))
		goto bad_row;
	b->blk.code_len = (uint32_t)code_len;
	b->blk.pcmap_len = (uint32_t)pcmap_len;
	if (!copy) {
		b->blk.code = code;
		b->blk.pcmap = pcmap;
		return BT_OK;
	}
	if (!BT_VEC_RESERVE(db->buf, db->buf_cap, (size_t)code_len + (size_t)pcmap_len, 4096))
		return BT_ERR_NOMEM;
	memcpy(db->buf, code, (size_t)code_len);
	if (pcmap_len)
		memcpy(db->buf + code_len, pcmap, (size_t)pcmap_len);
	b->blk.code = db->buf;
	b->blk.pcmap = db->buf + code_len;
	return BT_OK;

bad_row:
	bt_err(LOG_DB, "%s: corrupt block row at %#llx: rebuild it with `pretrans build`", db->path,
	       (unsigned long long)b->blk.guest_start);
	return BT_ERR_FORMAT;
}

/* Rows of `blocks` exist (learned or inline ones; a build's blocks are in
 * the chunk directories). */
static enum bt_status rows_exist(struct tcdb *db, bool *yes)
{
	if (db->rows_state == 0) {
		int64_t v;
		bool found;
		BT_TRY(tcdb_query_int(db, "SELECT EXISTS(SELECT 1 FROM blocks)", &v, &found));
		db->rows_state = found && v ? 1 : -1;
	}
	*yes = db->rows_state > 0;
	return BT_OK;
}

/* The directory entry of the static block at key (va for messages); the
 * current chunk is then the one holding it. */
static enum bt_status static_find(struct tcdb *db, int64_t key, gva_t va,
				  const struct tcdb_dirent **out)
{
	int64_t chunk;
	BT_TRY(tcdb_map_find(db, key, &chunk));
	BT_TRY(tcdb_load_chunk(db, chunk, va));
	const struct tcdb_dirent *d;
	size_t lo = 0, hi;
	BT_TRY(tcdb_dir_get(db, &d, &hi));
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < db->cur->n_dir && d[lo].key == key) {
		*out = &d[lo];
		return BT_OK;
	}
	bt_err(LOG_DB,
	       "%s: the chunk map names chunk %lld for %#llx, which does not list it: rebuild it "
	       "with `pretrans build`",
	       db->path, (long long)chunk, (unsigned long long)va);
	return BT_ERR_FORMAT;
}

enum bt_status tcdb_lookup(struct tcdb *db, gva_t va, struct tcdb_block *out)
{
	if (db->untrusted)
		return BT_ERR_AUTH;
	if (index_says_no(db, va))
		return BT_ERR_NOTFOUND;
	bool rows;
	BT_TRY(rows_exist(db, &rows));
	if (rows) { /* a learned row first */
		sqlite3_stmt *st = db->st[ST_LOOKUP];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, key_of(va));
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			enum bt_status s = row_to_block(db, st, out, true);
			sqlite3_reset(st);
			if (s == BT_OK && out->blk.refusal)
				return BT_ERR_NOTFOUND;
			return s;
		}
		if (rc != SQLITE_DONE)
			return tcdb_db_err(db, "looking up a block");
		sqlite3_reset(st);
	}
	/* the build's block */
	const struct tcdb_dirent *e;
	BT_TRY(static_find(db, key_of(va), va, &e));
	BT_TRY(tcdb_dir_block(db, e, out, false));
	return out->blk.refusal ? BT_ERR_NOTFOUND : BT_OK;
}

/* A merged walk: the rows of `blocks` (st, in key order) and the static
 * blocks of the chunk map's runs, keys in [klo, khi]; a row replaces the
 * static block of its start (a learned block replaces the build's). */
struct walk {
	struct tcdb *db;
	sqlite3_stmt *st;
	bool have_row;
	int (*cb)(void *, const struct tcdb_block *);
	void *opaque;
	bool stop;
};

static bool cb_stop(struct walk *w, const struct tcdb_block *b)
{
	return w->cb(w->opaque, b) != 0;
}

static enum bt_status walk_step(struct walk *w)
{
	int rc = sqlite3_step(w->st);
	w->have_row = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return tcdb_db_err(w->db, "reading blocks");
	return BT_OK;
}

/* Hand the rows with keys below key (all: INT64_MAX and last) to cb. */
static enum bt_status walk_rows_before(struct walk *w, int64_t key, bool last)
{
	struct tcdb_block b;
	while (!w->stop && w->have_row && (last || sqlite3_column_int64(w->st, 0) < key)) {
		BT_TRY(row_to_block(w->db, w->st, &b, false));
		w->stop = cb_stop(w, &b);
		BT_TRY(walk_step(w));
	}
	return BT_OK;
}

static enum bt_status walk_run(struct walk *w, size_t r, int64_t klo, int64_t khi)
{
	struct tcdb *db = w->db;
	int64_t chunk = db->map_chunk[r];
	int64_t lo = db->map_lo[r] > klo ? db->map_lo[r] : klo;
	int64_t hi = db->map_hi[r] < khi ? db->map_hi[r] : khi;
	const struct tcdb_dirent *d;
	size_t n, i = 0;
	BT_TRY(tcdb_load_chunk(db, chunk, va_of(lo)));
	BT_TRY(tcdb_dir_get(db, &d, &n));
	while (i < n && d[i].key < lo)
		i++;
	for (; i < n && d[i].key <= hi && !w->stop; i++) {
		int64_t key = d[i].key;
		BT_TRY(walk_rows_before(w, key, false));
		if (w->stop)
			break;
		struct tcdb_block b;
		if (w->have_row && sqlite3_column_int64(w->st, 0) == key) {
			BT_TRY(row_to_block(db, w->st, &b, false));
			w->stop = cb_stop(w, &b);
			BT_TRY(walk_step(w));
		} else {
			BT_TRY(tcdb_dir_block(db, &d[i], &b, db->skip_payload));
			w->stop = cb_stop(w, &b);
		}
		/* cb (or a row's payload) may have made another chunk current */
		BT_TRY(tcdb_load_chunk(db, chunk, va_of(key)));
		BT_TRY(tcdb_dir_get(db, &d, &n));
	}
	return BT_OK;
}

static enum bt_status walk(struct tcdb *db, int64_t klo, int64_t khi,
			   int (*cb)(void *, const struct tcdb_block *), void *opaque)
{
	if (db->untrusted)
		return BT_ERR_AUTH;
	BT_TRY(tcdb_map_load(db));
	struct walk w = {.db = db, .cb = cb, .opaque = opaque};
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT " TCDB_BLOCK_COLS
		" FROM blocks WHERE guest_start BETWEEN ?1 AND ?2 ORDER BY guest_start",
		-1, &w.st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading blocks");
	sqlite3_bind_int64(w.st, 1, klo);
	sqlite3_bind_int64(w.st, 2, khi);
	enum bt_status s = walk_step(&w);
	size_t lo = 0, hi = db->map_n; /* the first run ending at or after klo */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (db->map_hi[mid] < klo)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t r = lo; s == BT_OK && !w.stop && r < db->map_n && db->map_lo[r] <= khi; r++)
		s = walk_run(&w, r, klo, khi);
	if (s == BT_OK)
		s = walk_rows_before(&w, INT64_MAX, true);
	sqlite3_finalize(w.st);
	return s;
}

enum bt_status tcdb_foreach_block(struct tcdb *db, int (*cb)(void *, const struct tcdb_block *),
				  void *opaque)
{
	return walk(db, INT64_MIN, INT64_MAX, cb, opaque);
}

enum bt_status tcdb_foreach_block_range(struct tcdb *db, gva_t lo, gva_t hi,
					int (*cb)(void *, const struct tcdb_block *), void *opaque)
{
	if (hi <= lo)
		return BT_OK;
	int64_t klo = key_of(lo), khi = key_of(hi - 1);
	if (klo > khi) /* the range crosses a 2 GiB boundary of the key order */
		return tcdb_foreach_block(db, cb, opaque);
	return walk(db, klo, khi, cb, opaque);
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
