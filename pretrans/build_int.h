/*
 * Internals of the `pretrans build` pipeline shared by its files:
 *   build.c        rounds over the discovery plan, pbuild_run()
 *   build_pipe.c   the worker threads and the in-order writer loop
 *   build_write.c  packing a unit's code into a chunk, writing rows
 *   build_term.c   the progress bar and the pending-signal poll
 *   reuse.c        the --reuse index (its own module, reuse.h)
 */
#ifndef BT_PRETRANS_BUILD_INT_H
#define BT_PRETRANS_BUILD_INT_H

#include "db/tcdb.h"
#include "pretrans/build.h"
#include "pretrans/discover.h"
#include "pretrans/cpuid/cpuid.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/kpatch/kpatch.h"
#include "pretrans/reuse.h"

#include <pthread.h>

/* A worker does not start region i while i >= written + WINDOW (bounds the
 * results held in memory). */
#define PBUILD_WINDOW 4096
/* Regions are packed into one compressed chunk until their guest bytes
 * reach PBUILD_UNIT_BYTES (~64 KiB of host code): the codec then sees enough
 * context (zlib: 4.8x per function, ~6x per 64 KiB; zstd 1: 7.2x, docs/db.md
 * "Codec") and a look-up decompresses ~64 KiB. */
#define PBUILD_UNIT_BYTES   512
#define PBUILD_UNIT_REGIONS 64

enum pbuild_slot_state { SLOT_EMPTY = 0, SLOT_BUSY, SLOT_DONE };

/* The result of one region of a round. */
struct pbuild_slot {
	struct discover_result res;
	struct tcdb_chunk chunk;  /* unit leaders: the unit's code, compressed */
	struct reuse_tmpls tmpls; /* the templates of the region's blocks */
	size_t unit_end;	  /* unit leaders: one past the unit's last slot */
	int state;		  /* enum pbuild_slot_state, under pbuild_pipe.mu */
};

/* One build: shared by the writer (the calling thread) and the workers. */
struct pbuild_pipe {
	const struct elfimg *img;
	struct discover_plan *plan;
	struct xlat_options xo;
	struct reuse *reuse;	   /* --reuse index or NULL */
	struct pbuild_slot *slots; /* one per entry of order[] */
	size_t *order;		   /* this round's plan indices, in plan order */
	size_t cap_order;
	size_t to;    /* regions in this round: order[0, to) */
	gva_t *calls; /* call targets seen by the writer this round */
	size_t n_calls, cap_calls;
	int64_t chunk_id; /* writer: chunk of the unit being written */
	/* the chunks' zstd dictionary (build_write.c): NULL until the writer
	 * has trained it from the first chunks' raw bytes (samples), then
	 * published once (atomic) for the workers; a --reuse build trains
	 * its own as a full build does, so both write the same file */
	struct tcdb_zdict *zdict;
	uint8_t *samples;
	size_t *sample_sizes;
	size_t n_samples, samples_len, cap_samples, cap_sample_sizes;
	struct reuse_tmpls tmpls; /* writer: every region's templates, in region order */
	bool watch_signals;
	/* the predicted boot-time patching (build_predict.c): NULL when the
	 * image has no Linux patch tables; starts of blocks it changes */
	struct kp_text *kp;
	struct cpuid_profile cpu;
	gva_t *pred;
	size_t n_pred, cap_pred;
	enum bt_status pred_err;
	/* under mu */
	size_t next;	/* next region to hand out */
	size_t written; /* regions consumed by the writer */
	bool stop;
	enum bt_status err;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* build_kmod.c: the modules of --modules as templates into db (building). */
enum bt_status pbuild_modules(const struct pbuild_options *o, const struct elfimg *img,
			      const struct kp_text *kp, struct tcdb *db, struct pbuild_stats *st);

/* build_pipe.c: run regions [0, pp->to) with jobs workers, writing them in
 * order into db. */
enum bt_status pbuild_run_round(struct pbuild_pipe *pp, int jobs, struct tcdb *db,
				struct pbuild_stats *st, bool show, size_t round);

/* build_write.c: sort each of the n regions' blocks by address and pack
 * the unit's code into sl[0].chunk, sealed. */
enum bt_status pbuild_pack_unit(struct pbuild_pipe *pp, struct pbuild_slot *sl, size_t n);
/* Writer: seal c as the dictionary policy wants it (the first chunks
 * without a dictionary, each later one with it), train the dictionary once
 * enough chunks were seen, and store it in db. */
enum bt_status pbuild_chunk_dict(struct pbuild_pipe *pp, struct tcdb *db, struct tcdb_chunk *c);
/* build_write.c: write region f's function row and block rows (their
 * payload in chunk chunk_id) and count them in st. */
enum bt_status pbuild_write_region(struct tcdb *db, const struct discover_func *f,
				   const struct discover_result *r, int64_t chunk_id,
				   struct pbuild_stats *st);

/* build_predict.c: predict the image's boot-time patching (pp->kp, or
 * NULL for an image without Linux's tables); note the writer's blocks it
 * changes; write pp->tmpls (the rounds' block templates) and translate the
 * noted blocks from the patched bytes into db's predicted pack (with
 * `jobs` threads, which start before the templates are written; the
 * database is the same for every count). */
enum bt_status pbuild_predict_open(struct pbuild_pipe *pp);
void pbuild_predict_note(struct pbuild_pipe *pp, const struct discover_result *r);
enum bt_status pbuild_predict_write(struct pbuild_pipe *pp, struct tcdb *db, int jobs,
				    struct pbuild_stats *st);
void pbuild_predict_close(struct pbuild_pipe *pp);

/* build_term.c: redraw the progress bar of a round on stderr. */
void pbuild_progress(size_t done, size_t total, size_t round);
/* build_term.c: a pending SIGINT, SIGTERM or SIGHUP (blocked by the
 * caller), or 0. */
int pbuild_pending_signal(void);

#endif
