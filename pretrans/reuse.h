/*
 * Block reuse for `pretrans build --reuse OLD.tcdb` (docs/diff.md, "reuse").
 *
 * The build walks the image exactly as a full build does; only the
 * translation of one block start is replaced by a copy of OLD's block when
 * reuse_serve() proves it equal: same start, same guest bytes (by hash),
 * same translator, ABI and options (checked when OLD is opened), and a cut
 * that did not depend on the bytes after the block.  xlat_translate() is a
 * pure function of exactly those inputs, so the database written is the one
 * a full build writes.
 *
 * Lifecycle: reuse_open() indexes OLD's block rows before the workers start;
 * during the build the index is read-only but for its counters (atomics)
 * and OLD's chunks, inflated on first use under a mutex, so any number of
 * workers may call reuse_translate()/reuse_seal() at once; reuse_close()
 * after the workers are joined.
 */
#ifndef BT_PRETRANS_REUSE_H
#define BT_PRETRANS_REUSE_H

#include "db/tcdb.h"
#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/xlat.h"

struct reuse; /* opaque */

/* Open OLD at path and index its translated blocks (rows only) and its
 * block templates (and, for the predicted-patching versions of a build for
 * CPU profile cpu_profile_hash, OLD's predicted versions and their
 * templates when OLD has them).  Refuses (BT_ERR_VERSION) a database whose translations
 * this translator would not reproduce: another translator or ABI version
 * (tcdb_open), other options (xo's hash), or one without templates (written
 * before them: a build from it could not write the templates a full build
 * writes). */
enum bt_status reuse_open(const char *path, const struct xlat_options *xo,
			  uint64_t cpu_profile_hash, struct reuse **out);
/* Pair NEW's sized functions (regions of kind DISCOVER_FUNC) with OLD's by
 * name (several of one name: by rank in address order when both sides have
 * as many, else by a size unique on both sides), so that a block of a
 * function that moved or changed size is looked for at the same offset
 * from its old start, and from its old end (reuse_tmpl.c).  Before the
 * workers start. */
struct discover_plan;
enum bt_status reuse_map_functions(struct reuse *r, const struct discover_plan *plan);
void reuse_close(struct reuse *r); /* NULL is a no-op */

/* Fill *out with the old translation of va and return true when the old
 * block starts at va, src holds the same guest bytes there, and the block
 * was cut by its own last instruction, a page boundary or the instruction
 * limit (a cut decided by the bytes after the block is not reused). */
bool reuse_serve(struct reuse *r, const struct xlat_source *src, gva_t va, struct bt_block *out);

/*
 * Block templates (every build; docs/diff.md "Reusing moved functions").
 * For each translated block whose template xlat_translate_tmpl() describes,
 * the build stores its relocation records and the hash of its guest bytes
 * with the recorded fields zeroed (the "masked hash"), as one pack of the
 * database, sorted by start.  A --reuse build instantiates OLD's template
 * of a block of a moved function at its new address when NEW's bytes there
 * have the same masked hash (xlat_tmpl_instantiate: byte-identical to
 * translating them), and stores the same records for it, so its database
 * is the full build's.
 *
 * Each worker owns a struct reuse_worker (the walker's translate hook and
 * its scratch); the entries it records are moved into a struct reuse_tmpls
 * per region, appended by the writer in region order, and written once.
 */
struct reuse_tmpl_ent {
	gva_t start;
	uint64_t masked_hash;
	uint32_t rec_off, rec_len; /* the records, encoded, in the set's data */
	uint32_t n_relocs;
	uint32_t guest_len;  /* the block's (stored for predicted versions) */
	uint64_t guest_hash; /* the block's (stored for predicted versions) */
	uint64_t seq;	     /* order of appending (the first of one start is kept) */
};
struct reuse_tmpls {
	struct reuse_tmpl_ent *e;
	size_t n, cap;
	uint8_t *data;
	size_t len, cap_data;
};
void reuse_tmpls_fini(struct reuse_tmpls *t);
/* Append src's entries to dst (src is emptied, its storage kept). */
enum bt_status reuse_tmpls_move(struct reuse_tmpls *dst, struct reuse_tmpls *src);
/* Sort by start (the first appended of one start kept), encode and store
 * as db's template pack; predicted: the predicted versions' pack (entries
 * in appended order, several of one start kept, with their guest length
 * and hash). */
enum bt_status reuse_tmpls_write(struct reuse_tmpls *t, struct tcdb *db, bool predicted,
				 size_t *bytes);

struct reuse_worker;
/* r: the --reuse index, or NULL (a full build: translate and record). */
enum bt_status reuse_worker_create(struct reuse *r, struct reuse_worker **out);
void reuse_worker_destroy(struct reuse_worker *w);
/* The entries recorded since the last call, moved into out. */
enum bt_status reuse_worker_take(struct reuse_worker *w, struct reuse_tmpls *out);
/* The discovery walker's translate hook (discover_translate_fn) with a
 * struct reuse_worker as opaque: reuse_serve(), else OLD's template of a
 * moved block instantiated, else xlat_translate_tmpl(); records the
 * block's template in every case. */
enum bt_status reuse_translate(void *opaque, struct xlat_ctx *ctx, const struct xlat_source *src,
			       gva_t va, struct bt_block *out);
/* A predicted-patching version (build_predict.c): the block at va of src
 * (the patched bytes) as OLD's predicted template of the block at the same
 * offset of the paired function instantiated, else xlat_translate_tmpl();
 * its template recorded (with guest length and hash) in every case. */
enum bt_status reuse_translate_predicted(struct reuse_worker *w, struct xlat_ctx *ctx,
					 const struct xlat_source *src, gva_t va,
					 struct bt_block *out);
/* Seal a unit's chunk whose first block starts at first: when OLD's chunk
 * holding that block is loaded, its raw bytes are c's and it was sealed
 * with d (the chunk dictionary NEW seals with now, NULL before there is
 * one), copy its compressed bytes, else compress with d.  r may be NULL (a
 * build without reuse). */
enum bt_status reuse_seal(struct reuse *r, struct tcdb_chunk *c, gva_t first,
			  const struct tcdb_zdict *d);

struct reuse_stats {
	size_t n_old;	     /* OLD's translated blocks indexed */
	size_t n_old_tmpls;  /* OLD's block templates */
	size_t n_mapped;     /* NEW functions paired with an OLD one elsewhere or resized */
	size_t served;	     /* blocks copied from OLD (same address, or moved) */
	size_t served_moved; /* of them, templates instantiated at a new address */
	size_t pred_served;  /* predicted versions instantiated from OLD's templates */
	size_t pred_missed;  /* predicted versions translated */
	size_t
	    moved_refused; /* moved blocks whose template was refused (masked bytes, form, page) */
	size_t missed;	   /* blocks translated (reuse_serve declined) */
	size_t chunks_loaded; /* OLD's chunks inflated */
	size_t chunks_copied; /* compressed chunks copied, not recompressed */
};
void reuse_get_stats(const struct reuse *r, struct reuse_stats *out);

#endif
