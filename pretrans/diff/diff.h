/*
 * Function-level diff of two kernel builds that ignores address shifts
 * (`pretrans diff OLD NEW`).  Prefix diff_.
 *
 * Model
 *  - A side (struct diff_side) is one image: its sized STT_FUNC symbols in
 *    executable sections, each with a stable key (the symbol name; for local
 *    names that occur more than once on either side, "name@file" from the
 *    preceding STT_FILE symbol, plus "#k" by address order if still
 *    ambiguous), its raw bytes and a hash of its normalised instruction
 *    stream.
 *  - Normalisation: every operand that denotes an address (relative branch
 *    and call targets, RIP-relative displacements, absolute immediates and
 *    displacements inside an allocated section, %gs-relative per-CPU
 *    displacements) is replaced by a reference: "self+off" inside the
 *    function itself, "key+off" when a sized symbol covers it, the hash of
 *    the C string when it points at one, else only the section name (the
 *    offset is masked, as a relocation would be).  Encoded lengths and the
 *    width of relative fields are ignored (jmp rel8 == jmp rel32).
 *  - Classification of each function (struct diff_entry):
 *      identical  same key, same raw bytes, same normalised stream
 *      moved      same key, bytes differ only in address fields
 *      changed    same key, normalised streams differ (even with equal
 *                 bytes: a relative call that now reaches another function)
 *      renamed    key only on one side each, same normalised body
 *      added / removed
 *
 * Reuse predicate (for incremental re-translation): diff_entry_reusable()
 * says whether the new function's guest code is proven equal to the old one
 * up to addresses, so the old translation can be reused after re-targeting
 * its exits and address fields.  identical + same address => the old blocks
 * are valid byte for byte.
 *
 * Sides are immutable after diff_side_load() and may be loaded in parallel.
 */
#ifndef BT_PRETRANS_DIFF_DIFF_H
#define BT_PRETRANS_DIFF_DIFF_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xlat/xlat.h"

#include <stdio.h>

enum diff_class {
	DIFF_IDENTICAL = 0,
	DIFF_MOVED,
	DIFF_CHANGED,
	DIFF_RENAMED,
	DIFF_ADDED,
	DIFF_REMOVED,
	DIFF_NCLASSES
};
const char *diff_class_str(enum diff_class c);

struct diff_func {
	const char *key;  /* stable name used for matching and references */
	const char *name; /* raw symbol name */
	const char *file; /* source file (STT_FILE or neighbour), "" if unknown */
	gva_t addr;
	uint64_t size;
	const uint8_t *bytes; /* size bytes, owned by the side's image */
	uint64_t norm_hash;   /* hash of the normalised instruction stream */
	uint32_t n_insns;
	uint32_t bad_at; /* offset of the first undecodable byte, or UINT32_MAX */
	uint16_t shndx;	 /* its section (ELF index) */
	uint8_t global;
	uint8_t file_guessed; /* file inferred from address neighbours */
};

struct diff_sym;   /* address resolution table entry (internal) */
struct diff_reloc; /* a relocation of an ET_REL input (internal) */

struct diff_side {
	char *path;	  /* as given by the user */
	char *image_path; /* the ELF actually read (differs for databases) */
	char *db_path;	  /* database input, else NULL */
	struct elfimg *img;
	uint8_t *file_buf;   /* a decompressed .ko.xz/.ko.zst img reads from, else NULL */
	struct diff_func *f; /* sorted by key */
	size_t n;
	struct diff_sym *syms; /* sorted by address */
	size_t nsyms;
	gva_t percpu_base, percpu_end; /* .data..percpu (linked at 0), or 0,0 */
	gva_t alloc_lo, alloc_hi;      /* hull of the allocated sections above 0 */
	/* ET_REL (.ko): synthetic section addresses and the relocations, whose
	 * fields are masked (replaced by their symbol + addend). */
	int rel;
	gva_t *sec_base; /* by ELF section index */
	size_t nsec_base;
	struct diff_reloc *relocs; /* sorted by (section, offset) */
	size_t nrelocs;
	int has_file_syms;
	int files_from_dwarf; /* f[].file are DWARF unit paths (relative) */
	char *dwarf_names;    /* the strings f[].file points to when from DWARF */
	double load_seconds;
	int att; /* listings in AT&T syntax (-M att), else Intel; set before listing */
};

/* Load the functions of an ELF image, or of a translation database (its
 * recorded image is read and must match the recorded SHA-256).  Keys and
 * hashes are not computed yet: see diff_sides_prepare().  On failure one
 * line naming the file and the problem has been logged. */
enum bt_status diff_side_load(const char *path, struct diff_side **out);
void diff_side_free(struct diff_side *s);
/* Both sides modules (ET_REL) or both linked images; else BT_ERR_FORMAT
 * with one line naming both files and what each is. */
enum bt_status diff_sides_check_kind(const struct diff_side *old, const struct diff_side *new_);
/* Assign keys on both sides (disambiguation needs both), then normalise and
 * hash every function (one thread per side when threads > 1). */
enum bt_status diff_sides_prepare(struct diff_side *old, struct diff_side *new_, int threads);

struct diff_entry {
	enum diff_class cls;
	const struct diff_func *old; /* NULL for added */
	const struct diff_func *new; /* NULL for removed */
	uint8_t naive;		     /* a naive `objdump -d | diff` shows this function */
};

struct diff_result {
	const struct diff_side *old, *new;
	struct diff_entry *e; /* sorted by (new or old) key */
	size_t n;
	size_t count[DIFF_NCLASSES];
	size_t naive_flagged;
	double seconds; /* load + prepare + match */
};

enum bt_status diff_compare(const struct diff_side *old, const struct diff_side *new_,
			    struct diff_result *out);
void diff_result_fini(struct diff_result *r);
/* Keep only the entries named (key, or raw name on either side, so a static
 * name keeps each of its NAME@FILE entries) by one of names[0, n); counts
 * follow.  BT_ERR_NOTFOUND with *missing when a name denotes no entry. */
enum bt_status diff_result_restrict(struct diff_result *r, char *const *names, size_t n,
				    const char **missing);
/* The builds differ (the exit status 1 of `pretrans diff`): some function
 * changed, was renamed, added or removed.  Moved and identical ones are the
 * same code. */
int diff_result_differs(const struct diff_result *r);

/* The incremental-build predicate: the new function's code equals the old
 * one up to address fields (identical, moved or renamed). */
int diff_entry_reusable(const struct diff_entry *e);

/* Normalised listing of one function: one line per instruction, e.g.
 * "call printk_helper+0x0" or "lea rdi, [str:\"hello %d\\n\"]".
 * *lines is an array of n strings in one heap block (free(*lines)). */
enum bt_status diff_func_listing(const struct diff_side *s, const struct diff_func *f,
				 char ***lines, size_t *n);

/* The same, with each line's offset in the function in *offs (malloc'd,
 * n entries; free(*offs)). */
enum bt_status diff_func_listing_offs(const struct diff_side *s, const struct diff_func *f,
				      char ***lines, uint32_t **offs, size_t *n);

/* Normalised listing of the translation of a function: the blocks the
 * translator makes from its bytes (cut at its end), each as a header line
 * "block self+OFF: ...", its host instructions (block-local targets as
 * blk+OFF, guest addresses as symbol+offset) and its exits. */
enum bt_status diff_func_xlat_listing(const struct diff_side *s, const struct diff_func *f,
				      struct xlat_ctx *ctx, char ***lines, size_t *n);

/* Line diff (Myers) of two listings.  ops[i]: '=' both, '-' old only, '+'
 * new only; ai/bi index the lines (-1 where absent).  Returns BT_ERR_RANGE
 * when the edit distance exceeds max_d (then no ops are produced). */
struct diff_op {
	char op;
	int ai, bi;
};
enum bt_status diff_lines(char *const *a, size_t na, char *const *b, size_t nb, size_t max_d,
			  struct diff_op **ops, size_t *nops);

/* Source-file summary: one row per file (or per directory). */
struct diff_group {
	const char *name;
	size_t count[DIFF_NCLASSES];
	size_t total;
};
enum bt_status diff_summary(const struct diff_result *r, int by_dir, struct diff_group **out,
			    size_t *n);

/* Writers. */
struct diff_write_opts {
	int listings;	    /* instruction diffs for changed functions */
	int xlat;	    /* with them, diffs of the translations */
	int all;	    /* text: list moved/identical too */
	size_t max_details; /* json: instruction diffs at most for this many functions */
	size_t max_xlat;    /* translation diffs for at most this many functions */
	size_t max_lines;   /* per listing */
	int color;	    /* text: ANSI colours (git's: @@ cyan, - red, + green) */
};
void diff_write_opts_default(struct diff_write_opts *o);
enum bt_status diff_write_text(FILE *out, const struct diff_result *r,
			       const struct diff_write_opts *o);
enum bt_status diff_write_json(FILE *out, const struct diff_result *r,
			       const struct diff_write_opts *o);
enum bt_status diff_write_html(FILE *out, const struct diff_result *r,
			       const struct diff_write_opts *o);

/* Two module trees (diff_tree.c): OLD and NEW directories of .ko files
 * compared module by module, with each module's really changed functions;
 * returns the exit status (0 no module differs,
 * 1 some differ, 2 an unreadable module or one twice in a tree, 4 a tree
 * that cannot be walked). */
struct diff_tree_opts {
	int json;	       /* JSON report (schema DIFF_TREE_JSON_SCHEMA) */
	const char *json_file; /* ... into this file, else stdout */
	const char *html;      /* an HTML report into this file, or NULL */
	int all;	       /* list identical and same-code modules, moved and
				* identical functions too */
	int text;	       /* text on stdout too when the JSON goes to a file */
	int jobs;
};
#define DIFF_TREE_JSON_SCHEMA "btkern-diff-modules/1"
int diff_is_tree(const char *path);
int diff_trees(const char *old_dir, const char *new_dir, const struct diff_tree_opts *o);

/* JSON schema version written as "schema" in --json output (docs/diff.md). */
#define DIFF_JSON_SCHEMA "btkern-diff/1"

/* `pretrans diff` / ptdiff: returns the process exit code. */
int diff_main(int argc, char **argv);

#endif
