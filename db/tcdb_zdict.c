/*
 * The chunks' zstd dictionary (schema 7, docs/db.md "Codec"): trained by
 * `pretrans build` from the raw bytes of its first chunks, stored once as
 * pack kind 11 (tagged, stored as is), named by the frame header of every
 * chunk sealed with it.  A unit's chunk is ~33 KB: too short for zstd to
 * learn the translator's recurring code shapes, which the dictionary holds.
 *
 * Invariants
 *  1. A chunk frame naming a dictionary is inflated only with the stored
 *     one, after its tag matched, and only when its id is the one the
 *     frame names; any other frame is inflated without one.
 *  2. Training is deterministic (one thread, fixed parameters), so a build
 *     gives the same file for any --jobs.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"

#include <stdlib.h>
#include <string.h>
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>

struct tcdb_zdict {
	uint8_t *bytes;
	size_t len;
	uint32_t id;
	ZSTD_CDict *cdict;
};

/* zstd level 1, as for chunks without a dictionary (docs/db.md "Codec") */
#define ZDICT_LEVEL 3

static enum bt_status zdict_make(const uint8_t *bytes, size_t len, struct tcdb_zdict **out)
{
	struct tcdb_zdict *d = calloc(1, sizeof(*d));
	if (!d)
		return BT_ERR_NOMEM;
	d->bytes = malloc(len ? len : 1);
	if (!d->bytes) {
		free(d);
		return BT_ERR_NOMEM;
	}
	memcpy(d->bytes, bytes, len);
	d->len = len;
	d->id = ZDICT_getDictID(bytes, len);
	d->cdict = ZSTD_createCDict(d->bytes, len, ZDICT_LEVEL);
	if (!d->cdict || d->id == 0) {
		enum bt_status s = d->cdict ? BT_ERR_FORMAT : BT_ERR_NOMEM;
		tcdb_zdict_free(d);
		return s;
	}
	*out = d;
	return BT_OK;
}

enum bt_status tcdb_zdict_train(const uint8_t *samples, const size_t *sizes, size_t n, size_t cap,
				struct tcdb_zdict **out)
{
	uint8_t *dict = malloc(cap ? cap : 1);
	if (!dict)
		return BT_ERR_NOMEM;
	/* fixed parameters (no search over k and d): deterministic and fast */
	ZDICT_fastCover_params_t p = {.k = 1024,
				      .d = 8,
				      .f = 20,
				      .steps = 0,
				      .nbThreads = 1,
				      .accel = 1,
				      .zParams = {.compressionLevel = ZDICT_LEVEL}};
	size_t len = ZDICT_trainFromBuffer_fastCover(dict, cap, samples, sizes, (unsigned)n, p);
	enum bt_status s = ZDICT_isError(len) ? BT_ERR_RANGE : zdict_make(dict, len, out);
	free(dict);
	return s;
}

void tcdb_zdict_free(struct tcdb_zdict *d)
{
	if (!d)
		return;
	ZSTD_freeCDict(d->cdict);
	free(d->bytes);
	free(d);
}

uint32_t tcdb_zdict_id(const struct tcdb_zdict *d)
{
	return d ? d->id : 0;
}

bool tcdb_zdict_equal(const struct tcdb_zdict *a, const struct tcdb_zdict *b)
{
	if (!a || !b)
		return a == b;
	return a->len == b->len && !memcmp(a->bytes, b->bytes, a->len);
}

enum bt_status tcdb_chunk_seal_with(struct tcdb_chunk *c, const struct tcdb_zdict *d)
{
	if (!d)
		return tcdb_chunk_seal(c);
	BT_TRY(tcdb_chunk_seal_prepare(c));
	ZSTD_CCtx *zc = tcdb_thread_cctx();
	if (!zc)
		return BT_ERR_NOMEM;
	size_t zl = ZSTD_compress_usingCDict(zc, c->z, c->z_cap, c->raw, c->raw_len, d->cdict);
	if (ZSTD_isError(zl))
		return BT_ERR_INTERNAL;
	c->z_len = zl;
	sha256_buf(c->z, c->z_len, c->digest);
	return BT_OK;
}

uint32_t tcdb_frame_dict_id(const uint8_t *z, size_t z_len)
{
	return z_len ? ZSTD_getDictID_fromFrame(z, z_len) : 0;
}

enum bt_status tcdb_add_zdict(struct tcdb *db, const struct tcdb_zdict *d)
{
	if (!db->building || db->wdict)
		return BT_ERR_INVALID;
	/* kept: the predicted versions' chunks are sealed with it too */
	BT_TRY(zdict_make(d->bytes, d->len, &db->wdict));
	return tcdb_pack_put(db, TCDB_PACK_ZDICT, TCDB_CODEC_NONE, d->bytes, d->len, d->id);
}

enum bt_status tcdb_get_zdict(struct tcdb *db, struct tcdb_zdict **out)
{
	uint8_t *raw;
	size_t len;
	uint64_t id;
	BT_TRY(tcdb_pack_get(db, TCDB_PACK_ZDICT, &raw, &len, &id));
	enum bt_status s = zdict_make(raw, len, out);
	tcdb_pack_free(raw, len);
	if (s == BT_OK && (*out)->id != id) {
		tcdb_zdict_free(*out);
		s = BT_ERR_FORMAT;
	}
	if (s == BT_ERR_FORMAT)
		bt_err(LOG_DB, "%s: corrupt chunk dictionary: rebuild it with `pretrans build`",
		       db->path);
	return s;
}

enum bt_status tcdb_zdict_ddict(struct tcdb *db, uint32_t id, void **ddict)
{
	if (!db->ddict) {
		struct tcdb_zdict *d;
		enum bt_status s = tcdb_get_zdict(db, &d);
		if (s == BT_ERR_NOTFOUND) {
			bt_err(LOG_DB,
			       "%s: a chunk names dictionary %u, the database has none: rebuild it "
			       "with `pretrans build`",
			       db->path, id);
			return BT_ERR_FORMAT;
		}
		if (s != BT_OK)
			return s;
		db->ddict = ZSTD_createDDict(d->bytes, d->len);
		db->ddict_id = d->id;
		tcdb_zdict_free(d);
		if (!db->ddict)
			return BT_ERR_NOMEM;
	}
	if (db->ddict_id != id) {
		bt_err(LOG_DB,
		       "%s: a chunk names dictionary %u, the database's is %u: rebuild it with "
		       "`pretrans build`",
		       db->path, id, db->ddict_id);
		return BT_ERR_FORMAT;
	}
	*ddict = db->ddict;
	return BT_OK;
}
