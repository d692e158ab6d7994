/*
 * The `pretrans build` pipeline: ELF image -> discovery plan -> parallel
 * walks (one xlat context per worker thread) -> one writer thread filling
 * the database in plan order, so the output file does not depend on the
 * number of workers.  Files: build_int.h; --reuse: pretrans/reuse.h.
 */
#ifndef BT_PRETRANS_BUILD_H
#define BT_PRETRANS_BUILD_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/xlat.h"

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
	/* --reuse: a database of an earlier build (same translator, ABI and
	 * options) whose blocks are copied instead of translated when their
	 * address, guest bytes and cut are unchanged (docs/diff.md, "reuse"). */
	const char *reuse_path;
	/* --modules: directories (searched for *.ko, *.ko.xz, *.ko.zst) and
	 * module files whose code is stored as relocatable templates
	 * (pretrans/build_kmod.c, docs/kmod.md) */
	const char *const *modules;
	size_t n_modules;
};

struct pbuild_stats {
	size_t n_regions, n_funcs, n_seeds, n_blocks, n_refused;
	size_t n_ex_table_leaders, n_rounds;
	uint64_t func_bytes, covered_bytes, refused_bytes;
	uint64_t guest_code_bytes, host_code_bytes;
	uint64_t chunk_raw_bytes, chunk_bytes; /* payload before/after compression */
	int signal;			       /* the signal that interrupted the build, or 0 */
	/* --reuse: old translated blocks loaded, blocks copied from them,
	 * blocks translated (xlat_translate calls that found no reusable block) */
	size_t n_reuse_old, n_reused, n_translated;
	size_t n_reused_moved;	/* of n_reused: OLD's templates at a moved function's address */
	size_t n_moved_refused; /* moved blocks whose template did not fit (bytes, form, page) */
	size_t n_reuse_mapped;	/* NEW functions paired with an OLD one elsewhere or resized */
	size_t n_templates;	/* block templates recorded (the template pack, every build) */
	size_t template_bytes;	/* the template pack's raw bytes */
	size_t pred_template_bytes; /* the predicted versions' template pack's */
	size_t n_pred_reused;	    /* --reuse: predicted versions from OLD's templates */
	size_t n_pred_translated;   /* --reuse: predicted versions translated */
	size_t n_chunks_loaded;	    /* OLD's chunks inflated (only those a matching block needs) */
	size_t n_chunks_copied;	    /* compressed chunks copied from OLD, not recompressed */
	double reuse_load_secs;	    /* indexing OLD's block rows */
	/* --modules */
	size_t n_modules, n_mod_skipped; /* stored; of another release */
	size_t n_mod_templates, n_mod_refused, n_mod_not_reloc;
	uint64_t mod_guest_bytes, mod_host_bytes, mod_pack_bytes;
	uint64_t mod_index_bytes; /* the fingerprint index, before compression */
	size_t n_mod_patched;	  /* module patch sites predicted (ftrace, returns, retpolines) */
	double mod_secs;
	size_t n_predicted; /* versions translated from the predicted patching */
};

enum bt_status pbuild_run(const struct pbuild_options *o, struct pbuild_stats *st);

#endif
