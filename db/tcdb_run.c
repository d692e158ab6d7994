/*
 * Run statistics of the translation-cache database (see tcdb.h,
 * docs/db.md): the runtime appends one run_stats row per boot
 * (tcdb_record_run); `pretrans stats` reads the latest back (tcdb_last_run).
 * Rows are only appended, never changed.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/vec.h"

#include <string.h>

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
		return tcdb_db_err(db, "recording run statistics");
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
		return tcdb_db_err(db, "recording run statistics");
	return BT_OK;
}

enum bt_status tcdb_last_run(struct tcdb *db, struct tcdb_run_stats *rs, uint64_t *n)
{
	int64_t count;
	bool found;
	memset(rs, 0, sizeof(*rs));
	BT_TRY(tcdb_query_int(db, "SELECT count(*) FROM run_stats", &count, &found));
	*n = (uint64_t)count;
	if (count == 0)
		return BT_OK;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT boot_id, started, ended, blocks_used, blocks_stale, misses, "
			       "blocks_learned, counters FROM run_stats ORDER BY id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading run statistics");
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return tcdb_db_err(db, "reading run statistics");
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
