/*
 * The `pretrans build` pipeline: ELF image -> discovery plan -> parallel
 * walks (one xlat context per worker thread) -> one writer thread filling
 * the database in plan order, so the output file does not depend on the
 * number of workers.
 */
#ifndef BT_PRETRANS_BUILD_H
#define BT_PRETRANS_BUILD_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

#define PRETRANS_TOOL_VERSION "pretrans 0.1"

struct pbuild_options {
	const char *image_path;
	const char *out_path;
	int jobs;	     /* worker threads, >= 1 */
	uint32_t xlat_flags; /* enum xlat_opt_flags */
	bool progress;	     /* a progress bar on stderr */
	int64_t created;     /* provenance time stamp (unix seconds) */
	/* The caller blocked SIGINT, SIGTERM and SIGHUP: the writer polls for
	 * them and abandons the build (the previous output stays) when one is
	 * pending, reporting it in pbuild_stats.signal. */
	bool watch_signals;
};

struct pbuild_stats {
	size_t n_regions, n_funcs, n_seeds, n_blocks, n_refused;
	size_t n_ex_table_leaders, n_rounds;
	uint64_t func_bytes, covered_bytes, refused_bytes;
	uint64_t guest_code_bytes, host_code_bytes;
	uint64_t chunk_raw_bytes, chunk_bytes; /* payload before/after compression */
	int signal;			       /* the signal that interrupted the build, or 0 */
};

enum bt_status pbuild_run(const struct pbuild_options *o, struct pbuild_stats *st);

#endif
