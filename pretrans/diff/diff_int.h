/*
 * Internals shared by the files of pretrans/diff (not a public header).
 */
#ifndef BT_PRETRANS_DIFF_DIFF_INT_H
#define BT_PRETRANS_DIFF_DIFF_INT_H

#include "pretrans/diff/diff.h"

/* One entry of a side's address-resolution table (sorted by addr, then by
 * preference: functions first, then globals, then name). */
struct diff_sym {
	gva_t addr;
	uint64_t size; /* 0: matches its exact address only */
	const char *name;
	uint64_t hash; /* of name */
	uint8_t is_func;
};

/* 64-bit string/word hashing private to the diff (not a storage format). */
static inline uint64_t diff_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

static inline uint64_t diff_strhash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
	return h;
}

/* diff_norm.c: hash one function (fills norm_hash, n_insns, bad_at). */
void diff_norm_hash(const struct diff_side *s, struct diff_func *f);
/* One RELA entry against an executable section of an ET_REL input. */
struct diff_reloc {
	uint32_t sec; /* ELF index of the patched section */
	uint32_t type;
	uint64_t off; /* in the section */
	int64_t addend;
	const struct elfimg_symbol *sym; /* NULL: symbol index 0 */
};
/* diff_reloc.c */
enum bt_status diff_relocs_load(struct diff_side *s);
const struct diff_reloc *diff_reloc_at(const struct diff_side *s, uint32_t sec, uint64_t off);
/* diff_load.c */
const struct elfimg_section *diff_sec_by_index(const struct diff_side *s, uint32_t idx);
gva_t diff_sym_addr(const struct diff_side *s, const struct elfimg_symbol *y);

/* diff_dwarf.c: replace f[].file by DWARF unit paths where known (libdw);
 * BT_ERR_FORMAT for malformed DWARF. */
enum bt_status diff_dwarf_files(struct diff_side *s);
/* diff_load.c: the resolution-table entry covering va, or NULL. */
const struct diff_sym *diff_sym_at(const struct diff_side *s, gva_t va);

/* Minimal growable string for the writers. */
struct diff_buf {
	char *p;
	size_t len, cap;
};
enum bt_status diff_buf_printf(struct diff_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void diff_buf_fini(struct diff_buf *b);

/* Instruction-level diff of one entry (listings of both sides + ops);
 * too_big: more than max_d edits, ops absent (show both listings). */
struct diff_fdiff {
	char **a, **b;
	uint32_t *aoff, *boff; /* guest diffs: each line's offset in its function */
	size_t na, nb;
	struct diff_op *ops;
	size_t nops;
	int too_big;
};
/* Guest-code diff of e; with xctx, *xl (if not NULL) gets the diff of the
 * two translations (xl->a / xl->b NULL when translation failed). */
enum bt_status diff_fdiff_make(const struct diff_result *r, const struct diff_entry *e,
			       struct diff_fdiff *out);
enum bt_status diff_fdiff_xlat(const struct diff_result *r, const struct diff_entry *e,
			       struct xlat_ctx *xctx, struct diff_fdiff *out);
/* The translator context the writers use (options of `pretrans build`). */
enum bt_status diff_xlat_ctx(const struct diff_result *r, struct xlat_ctx **out);
void diff_fdiff_fini(struct diff_fdiff *d);

/* diff_pager.c: when stdout is a terminal, redirect it into $PAGER (less
 * -FRX by default) and return 1; diff_pager_end() closes and waits. */
int diff_pager_start(void);
void diff_pager_end(void);

/* Escaped output for the writers. */
void diff_put_json_str(FILE *out, const char *s);
void diff_put_html_str(FILE *out, const char *s);

/* Module trees (diff_tree.c compares, diff_tree_out.c writes). */
enum diff_tree_class {
	DIFF_T_ADDED,
	DIFF_T_REMOVED,
	DIFF_T_IDENTICAL,
	DIFF_T_SAME,
	DIFF_T_CHANGED,
	DIFF_T_ERROR,
	DIFF_T_NCLASSES
};
extern const char *const diff_tree_class_str[DIFF_T_NCLASSES];

/* One function of a compared module: the really changed ones (changed,
 * renamed, added, removed), and with --all the moved and identical too. */
struct diff_tree_fn {
	enum diff_class cls;
	char *old_key, *new_key; /* NULL where absent (added, removed) */
	uint64_t old_size, new_size;
};

struct diff_tree_mod {
	const char *key; /* path below the tree, compression suffix and kernel/ dropped */
	enum diff_tree_class cls;
	size_t count[DIFF_NCLASSES]; /* functions by class (same code, changed) */
	struct diff_tree_fn *fn;     /* in the text report's class order, then key */
	size_t nfn;
};

struct diff_tree_report {
	const char *old_dir, *new_dir;
	const struct diff_tree_mod *m; /* by key */
	size_t n;
	size_t cls[DIFF_T_NCLASSES];
	int all;
};
void diff_tree_write_text(FILE *f, const struct diff_tree_report *r);
void diff_tree_write_json(FILE *f, const struct diff_tree_report *r);
void diff_tree_write_html(FILE *f, const struct diff_tree_report *r);

#endif
