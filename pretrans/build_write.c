/*
 * What `pretrans build` puts into the database: a unit's code packed into
 * one compressed chunk (in the worker that walked it), and each region's
 * function row and block rows (in the writer, in plan order).  The only
 * place where discovery's block records become database records.
 */
#include "pretrans/build_int.h"

#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>

/* The database's record of a discovered block whose bytes are in r's data
 * (the fields a chunk and a row share; the caller adds the rest). */
static struct tcdb_block to_db(const struct discover_result *r, const struct discover_block *b)
{
	struct tcdb_block tb = {.blk = b->blk};
	tb.blk.code = r->data + b->code_off;
	tb.blk.pcmap = r->data + b->pcmap_off;
	return tb;
}

static int block_cmp(const void *a, const void *b)
{
	const struct discover_block *x = a, *y = b;
	return x->blk.guest_start < y->blk.guest_start ? -1
						       : x->blk.guest_start > y->blk.guest_start;
}

/* Nearly-sorted rowids make sqlite append, not seek. */
enum bt_status pbuild_pack_unit(struct pbuild_pipe *pp, struct pbuild_slot *sl, size_t n)
{
	struct tcdb_chunk *c = &sl[0].chunk;
	gva_t first = 0;
	bool have_first = false;
	tcdb_chunk_reset(c);
	for (size_t k = 0; k < n; k++) {
		struct discover_result *r = &sl[k].res;
		qsort(r->b, r->n, sizeof(r->b[0]), block_cmp);
		for (size_t i = 0; i < r->n; i++) {
			struct discover_block *b = &r->b[i];
			struct tcdb_block tb = to_db(r, b);
			/* the directory lists refused regions too; the
			 * region's function row is the k-th after the chunk */
			BT_TRY(tcdb_chunk_add_block(c, &tb, (uint32_t)k));
			if (b->blk.refusal)
				continue;
			if (!have_first) {
				first = b->blk.guest_start;
				have_first = true;
			}
			b->payload_off = tb.payload_off;
		}
	}
	const struct tcdb_zdict *d = __atomic_load_n(&pp->zdict, __ATOMIC_ACQUIRE);
	return c->n_ents ? reuse_seal(pp->reuse, c, first, d) : BT_OK;
}

/* The dictionary is trained from the first chunks' raw bytes in plan order
 * (so the same for any --jobs): at least DICT_SAMPLES bytes of them, into
 * at most DICT_CAP bytes (docs/db.md "Codec": measured 64 and 256 KiB). */
#define DICT_SAMPLES (8u << 20)
#define DICT_CAP     (256u << 10)

enum bt_status pbuild_chunk_dict(struct pbuild_pipe *pp, struct tcdb *db, struct tcdb_chunk *c)
{
	if (pp->zdict) { /* the workers may have sealed it before it existed */
		if (tcdb_frame_dict_id(c->z, c->z_len) != tcdb_zdict_id(pp->zdict))
			return tcdb_chunk_seal_with(c, pp->zdict);
		return BT_OK;
	}
	if (!BT_VEC_RESERVE(pp->samples, pp->cap_samples, pp->samples_len + c->raw_len, 1u << 20) ||
	    !BT_VEC_RESERVE(pp->sample_sizes, pp->cap_sample_sizes, pp->n_samples + 1, 1024))
		return BT_ERR_NOMEM;
	memcpy(pp->samples + pp->samples_len, c->raw, c->raw_len);
	pp->samples_len += c->raw_len;
	pp->sample_sizes[pp->n_samples++] = c->raw_len;
	if (pp->samples_len < DICT_SAMPLES)
		return BT_OK;
	struct tcdb_zdict *d;
	enum bt_status s =
	    tcdb_zdict_train(pp->samples, pp->sample_sizes, pp->n_samples, DICT_CAP, &d);
	free(pp->samples);
	free(pp->sample_sizes);
	pp->samples = NULL;
	pp->sample_sizes = NULL;
	if (s == BT_ERR_RANGE)
		return BT_OK; /* nothing to learn from them: no dictionary */
	BT_TRY(s);
	if ((s = tcdb_add_zdict(db, d)) != BT_OK) {
		tcdb_zdict_free(d);
		return s;
	}
	__atomic_store_n(&pp->zdict, d, __ATOMIC_RELEASE);
	return BT_OK;
}

enum bt_status pbuild_write_region(struct tcdb *db, const struct discover_func *f,
				   const struct discover_result *r, int64_t chunk_id,
				   struct pbuild_stats *st)
{
	struct tcdb_function tf = {
	    .name = f->name,
	    .address = f->start,
	    .size = f->kind == DISCOVER_SEED ? 0 : f->end - f->start,
	    .bytes_hash = r->bytes_hash,
	    .section = f->sec->name,
	    .covered_bytes = r->covered_bytes,
	    .refused_bytes = r->refused_bytes,
	    .kind = f->kind, /* enum discover_kind, stored as an integer */
	};
	BT_TRY(tcdb_add_function(db, &tf));
	if (f->kind == DISCOVER_FUNC) {
		st->n_funcs++;
		st->func_bytes += f->end - f->start;
		st->covered_bytes += r->covered_bytes;
		st->refused_bytes += r->refused_bytes;
	} else if (f->kind == DISCOVER_SEED) {
		st->n_seeds++;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct discover_block *b = &r->b[i];
		struct tcdb_block tb = to_db(r, b);
		tb.function_id = tf.id;
		tb.origin = TCDB_ORIGIN_STATIC;
		tb.chunk_id = chunk_id;
		tb.payload_off = b->payload_off;
		size_t before = tcdb_blocks_added(db);
		BT_TRY(tcdb_add_block(db, &tb));
		if (tcdb_blocks_added(db) != before) {
			if (b->blk.refusal) {
				st->n_refused++;
			} else {
				st->n_blocks++;
				st->guest_code_bytes += b->blk.guest_len;
				st->host_code_bytes += b->blk.code_len;
			}
		}
	}
	return BT_OK;
}
