/*
 * Internals of --reuse shared by reuse.c (OLD's rows and chunks, the
 * same-address copy) and reuse_tmpl.c (templates: recording them, and
 * instantiating OLD's at a moved function's new address).
 */
#ifndef BT_PRETRANS_REUSE_INT_H
#define BT_PRETRANS_REUSE_INT_H

#include "pretrans/reuse.h"

#include <pthread.h>

/* An old translated block: its row's metadata only, an index entry much
 * smaller than the block record (OLD has one per block); the payload (code,
 * pc map, exits) stays in OLD's chunk until a block whose bytes match asks
 * for it, and reuse_payload() makes the record of both. */
struct reuse_blk {
	gva_t start;
	uint64_t hash;
	uint32_t len, n_insns, flags;
	uint32_t payload_off;
	size_t chunk; /* index into reuse.c, or SIZE_MAX: inline, see inl */
	size_t inl;   /* inline rows: index into reuse.inl */
};

struct reuse_inline {	       /* a block stored in its row, not in a chunk (rare) */
	struct bt_block blk;   /* the row's record, code and pc map below */
	uint8_t *code, *pcmap; /* owned copies */
};

/* An old chunk, inflated on first use (under reuse.mu).  When a new
 * unit's raw payload is byte for byte a loaded chunk's, its compressed bytes
 * are what compressing would give (deflate is a pure function of its input
 * and level), so they are copied, not recomputed. */
struct reuse_chunk {
	int64_t id;
	uint8_t *raw, *z; /* NULL until loaded */
	size_t raw_len, z_len;
	bool failed; /* could not be read: its blocks are translated */
};

/* OLD's template of the block at start (its pack, reuse_tmpl.c). */
struct reuse_old_tmpl {
	gva_t start;
	uint64_t masked_hash;
	uint64_t guest_hash; /* predicted versions: the block's */
	uint32_t guest_len;  /* predicted versions: the block's */
	const uint8_t *recs; /* n_relocs records, rec_len bytes, in the pack */
	uint32_t n_relocs, rec_len;
};

/* A NEW function paired with an OLD one at another address or of another
 * size. */
struct reuse_fmap {
	gva_t start, end;  /* NEW */
	int64_t delta;	   /* OLD address - NEW address */
	int64_t delta_end; /* OLD end - NEW end */
};

struct reuse {
	struct tcdb *db;     /* OLD, open for the whole build; used under mu */
	struct reuse_blk *b; /* sorted by start, unique */
	size_t n, cap;
	struct reuse_chunk *c; /* sorted by id, unique */
	size_t n_c, cap_c;
	struct reuse_inline *inl;
	size_t n_inl, cap_inl;
	uint32_t max_insns; /* the limit the translator applies */
	uint8_t *tpack;	    /* OLD's template pack (tcdb_templates_get) */
	size_t tpack_len;
	struct reuse_old_tmpl *t; /* sorted by start, unique */
	size_t n_t;
	uint8_t *ppack; /* OLD's predicted versions' templates, or NULL */
	size_t ppack_len;
	struct reuse_old_tmpl *pt; /* sorted by start, a start at most twice */
	size_t n_pt;
	bool pred_loaded;      /* OLD's predicted versions are loaded (tcdb_load_index) */
	struct reuse_fmap *fm; /* sorted by start, disjoint */
	size_t n_fm;
	pthread_mutex_t mu;
	/* under mu: whether OLD's chunk dictionary is dict_for, byte for byte */
	const struct tcdb_zdict *dict_for;
	bool dict_same;
	size_t served, missed, chunks_copied, chunks_loaded; /* atomics */
	size_t served_moved, moved_refused;		     /* atomics */
	size_t pred_served, pred_missed;		     /* atomics */
};

/* reuse.c */
const struct reuse_blk *reuse_find(const struct reuse *r, gva_t va);
/* OLD's block b as a record: its metadata and payload (code, pc map,
 * exits: valid until the chunk is freed); false if unreadable. */
bool reuse_payload(struct reuse *r, const struct reuse_blk *b, struct bt_block *p);
void reuse_missed(struct reuse *r);
/* reuse_map.c: the OLD addresses (at most 2, never va) where the block at
 * va of NEW may be: the same offset from its paired function's old start,
 * and from its old end. */
size_t reuse_candidates(const struct reuse *r, gva_t va, gva_t ova[2]);
/* reuse_tmpl.c: load OLD's template packs (BT_ERR_VERSION: no template
 * pack; the predicted one is optional). */
enum bt_status reuse_tmpl_load(struct reuse *r, const char *path);
void reuse_tmpl_free(struct reuse *r);

#endif
