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

/* Open OLD at path and index its translated blocks (rows only).  Refuses
 * (BT_ERR_VERSION) a database whose translations this translator would not
 * reproduce: another translator or ABI version (tcdb_open), other options
 * (xo's hash). */
enum bt_status reuse_open(const char *path, const struct xlat_options *xo, struct reuse **out);
void reuse_close(struct reuse *r); /* NULL is a no-op */

/* Fill *out with the old translation of va and return true when the old
 * block starts at va, src holds the same guest bytes there, and the block
 * was cut by its own last instruction, a page boundary or the instruction
 * limit (a cut decided by the bytes after the block is not reused). */
bool reuse_serve(struct reuse *r, const struct xlat_source *src, gva_t va, struct xlat_block *out);

/* The discovery walker's translate hook (discover_translate_fn) with a
 * struct reuse as opaque: reuse_serve(), else xlat_translate(). */
enum bt_status reuse_translate(void *opaque, struct xlat_ctx *ctx, const struct xlat_source *src,
			       gva_t va, struct xlat_block *out);

/* Seal a unit's chunk whose first block starts at first: when OLD's chunk
 * holding that block is loaded and its raw bytes are c's, copy its
 * compressed bytes, else compress.  r may be NULL (a build without reuse). */
enum bt_status reuse_seal(struct reuse *r, struct tcdb_chunk *c, gva_t first);

struct reuse_stats {
	size_t n_old;	      /* OLD's translated blocks indexed */
	size_t served;	      /* blocks copied from OLD */
	size_t missed;	      /* blocks translated (reuse_serve declined) */
	size_t chunks_loaded; /* OLD's chunks inflated */
	size_t chunks_copied; /* compressed chunks copied, not recompressed */
};
void reuse_get_stats(const struct reuse *r, struct reuse_stats *out);

#endif
