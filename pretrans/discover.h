/*
 * Code discovery: which guest addresses of an ELF image are code, and the
 * walk that translates them block by block.
 *
 *  - discover_plan() lists the regions to walk: every STT_FUNC symbol with a
 *    size inside an executable section (bounded: the symbol size; bytes
 *    between functions are never decoded), unsized code symbols and the entry
 *    point (seeds: recursive descent only), the kernel's __ex_table fixup
 *    targets as extra block starts, and .altinstr_replacement (swept).
 *  - discover_walk() translates one region with the caller's xlat context:
 *    recursive descent over the translator's exits (direct targets, return
 *    sites, fall-throughs, jump tables), then for bounded regions a sweep of
 *    every gap left inside the symbol's bytes.
 * Rules and their reasons: docs/pretrans.md.
 */
#ifndef BT_PRETRANS_DISCOVER_H
#define BT_PRETRANS_DISCOVER_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xlat/xlat.h"

enum discover_kind {
	DISCOVER_FUNC = 0,  /* sized function symbol: descent + gap sweep, counted in coverage */
	DISCOVER_SEED = 1,  /* unsized start (entry, size-0 symbol, call target): descent only */
	DISCOVER_SWEEP = 2, /* a code-only section without symbols: sweep all of it */
};

struct discover_func {
	const char *name; /* symbol name or "sub_<hex>" / section name */
	gva_t start, end; /* walk bounds */
	const struct elfimg_section *sec;
	uint8_t kind; /* enum discover_kind */
	bool done;    /* walked (build rounds) */
};

struct discover_plan {
	struct discover_func *f; /* sorted by (start, kind) */
	size_t n, cap;
	size_t n_sorted; /* f[0, n_sorted) is sorted (seeds are appended after) */
	gva_t *leaders;	 /* extra block starts (ex_table fixups), sorted, unique */
	size_t n_leaders;
	char *names; /* storage for generated names */
	size_t names_len, names_cap;
	/* counters for reports */
	size_t n_func_syms, n_skipped_syms, n_alias_syms, n_ex_table;
	size_t n_data_ptrs; /* seeds from code pointers in data (stripped images) */
};

/* An xlat_source over img's executable sections: a read stops at the end of
 * the section holding va and gives 0 bytes outside code.  src reads img
 * (which must outlive it) and may be shared by threads. */
void discover_source_from_elf(const struct elfimg *img, struct xlat_source *src);

enum bt_status discover_plan(const struct elfimg *img, struct discover_plan **out);
void discover_plan_free(struct discover_plan *p);
/* Add a seed region at va (call targets that start no region); BT_ERR_RANGE
 * if va is not code, lies inside a sized function or starts a region of the
 * sorted part.  Call discover_plan_sort() after a batch. */
enum bt_status discover_add_seed(struct discover_plan *p, const struct elfimg *img, gva_t va);
void discover_plan_sort(struct discover_plan *p);

/* A translated block (or refused region: guest_len and guest_hash are the
 * refused bytes', up to the end of the offending instruction) whose bytes
 * are in res->data: blk.code and blk.pcmap are NULL (the buffer moves while
 * it grows), code_off and pcmap_off say where. */
struct discover_block {
	struct bt_block blk;
	uint32_t code_off, pcmap_off;
	uint32_t payload_off; /* in the region's database chunk (build.c) */
};

struct discover_result {
	struct discover_block *b;
	size_t n, cap;
	uint8_t *data;
	size_t data_len, data_cap;
	gva_t *calls; /* direct call / tail-jump targets outside the region */
	size_t n_calls, calls_cap;
	uint64_t bytes_hash;	/* of [start, end) for DISCOVER_FUNC */
	uint64_t covered_bytes; /* region bytes inside translated blocks */
	uint64_t refused_bytes;
	enum bt_status status;
};

struct discover_walker; /* per-thread scratch: decoder, bitmaps, work list */

enum bt_status discover_walker_create(struct discover_walker **out);
void discover_walker_destroy(struct discover_walker *w);
/* How the walker translates a block start: xlat_translate() unless a
 * client (pretrans build --reuse) answers some starts itself.  The hook
 * must return exactly what xlat_translate() would. */
typedef enum bt_status (*discover_translate_fn)(void *opaque, struct xlat_ctx *ctx,
						const struct xlat_source *src, gva_t va,
						struct bt_block *out);
void discover_walker_set_translate(struct discover_walker *w, discover_translate_fn fn,
				   void *opaque);

/* Translate region f of img; res is reset first. */
enum bt_status discover_walk(struct discover_walker *w, struct xlat_ctx *ctx,
			     const struct elfimg *img, const struct discover_plan *p,
			     const struct discover_func *f, struct discover_result *res);
void discover_result_fini(struct discover_result *res);

/* Length of the instruction at va (0 if undecodable or not code). */
uint32_t discover_insn_len(const struct elfimg *img, gva_t va);

#endif
