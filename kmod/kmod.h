/*
 * kmod/: a guest kernel's loadable modules (.ko) for pre-translation
 * (docs/kmod.md).  A module is an ET_REL object whose final addresses the
 * guest kernel chooses when it loads it, so its code is translated as
 * relocatable templates (pretrans/xlat/xlat_tmpl.h): the module is relocated
 * at a nominal address, each block is translated with the record of every
 * guest-address-dependent field, and the templates are packed with the
 * module's identity for the database.
 *
 * Lifecycle of a module:
 *   (file) --kmod_open--> OPEN (identity, sections hash) --kmod_relocate-->
 *   RELOCATED (nominal layout, code relocated) --kmod_pack_templates--> pack
 *   bytes for tcdb_add_module(); kmod_close at any point.
 *
 * Invariants
 *  1. The file is untrusted: read whole (a .ko.xz / .ko.zst decompressed to
 *     at most KMOD_MAX_SIZE), then checked by the project's ELF reader; a
 *     truncated or non-ELF file is BT_ERR_FORMAT with one line naming it.
 *  2. The sections hash covers every allocated section's name, type, size
 *     and unrelocated bytes in table order: two modules with equal hashes
 *     load the same code whatever the addresses.
 *  3. Relocations are applied only to executable sections, with every
 *     target range inside its section; an unknown relocation type leaves
 *     the field as the file has it (the template records fields, not types).
 *  4. A pack is parsed only through kmod_pack_parse(), which bounds every
 *     template with xlat_tmpl_check().
 */
#ifndef BT_KMOD_KMOD_H
#define BT_KMOD_KMOD_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/xlat.h"
#include "pretrans/xlat/xlat_tmpl.h"

#include <stdbool.h>
#include <stddef.h>

#define KMOD_MAX_SIZE (256u << 20)
/* Where kmod_relocate() places a module: the x86-64 module area. */
#define KMOD_NOMINAL_BASE 0xffffffffc0000000ull

struct elfimg;

struct kmod_section {
	const char *name;
	uint32_t index; /* section index in the object */
	bool code;	/* SHF_ALLOC | SHF_EXECINSTR with contents */
	gva_t addr;	/* nominal address (kmod_relocate) */
	uint64_t size;
	uint8_t *bytes; /* code sections: relocated at addr (kmod_relocate) */
};

struct kmod {
	char *path;
	char name[64];		/* modinfo name=, else the file name without .ko* */
	char vermagic[128];	/* modinfo vermagic= ("" if none) */
	char release[64];	/* first word of vermagic */
	char srcversion[64];	/* modinfo srcversion= ("" if none) */
	char sections_hash[65]; /* SHA-256 hex (invariant 2) */
	struct elfimg *img;
	uint8_t *buf; /* the (decompressed) file */
	size_t len;
	struct kmod_section *secs; /* one per allocated section */
	size_t nsecs;
	size_t n_relocs_applied, n_relocs_unknown, n_syms_unresolved;
};

/* The bytes of a module file, decompressed for .xz and .zst (at most
 * KMOD_MAX_SIZE; *buf is malloc'd).  No ELF check: kmod_open does it. */
enum bt_status kmod_read_file(const char *path, uint8_t **buf, size_t *len);
/* Read and check path (.ko, .ko.xz, .ko.zst). */
enum bt_status kmod_open(const char *path, struct kmod **out);
void kmod_close(struct kmod *m);

/* Address of an undefined symbol (the kernel's), or BT_ERR_NOTFOUND. */
typedef enum bt_status (*kmod_resolve_fn)(void *opaque, const char *name, gva_t *addr);

/* Lay the allocated sections out from KMOD_NOMINAL_BASE (executable ones
 * page-aligned, as the kernel starts its text on a page) and apply the
 * relocations of the code sections; unresolved symbols get placeholder
 * module-area addresses (counted in n_syms_unresolved). */
enum bt_status kmod_relocate(struct kmod *m, kmod_resolve_fn resolve, void *opaque);
/* The same layout from another (page-aligned) base: a second load. */
enum bt_status kmod_relocate_at(struct kmod *m, gva_t base, kmod_resolve_fn resolve, void *opaque);

/* The sites a patch table of the relocated module names (its section
 * `table`, e.g. "__mcount_loc" or ".return_sites": each entry's relocation
 * against the module's code), as nominal addresses in a new malloc'd
 * array (none: *n = 0). */
enum bt_status kmod_table_sites(const struct kmod *m, const char *table, gva_t **out, size_t *n);
/* Offsets in the section of ELF index `index` that relocations of data
 * sections name (switch tables in .rodata, function pointers, exception
 * fixups; not the patch and unwind tables), in a new malloc'd array: block
 * starts no direct branch reaches. */
enum bt_status kmod_code_refs(const struct kmod *m, uint32_t index, uint64_t **out, size_t *n);
/* The relocated code bytes at nominal address va (writable: the caller
 * predicts the kernel's patching over them) and how many follow in its
 * section, or NULL. */
uint8_t *kmod_code_at(struct kmod *m, gva_t va, size_t *avail);

struct kmod_tmpl_stats {
	size_t n_blocks;      /* templates */
	size_t n_refused;     /* block starts the translator refused */
	size_t n_not_reloc;   /* translated but not relocatable (not stored) */
	uint64_t guest_bytes; /* guest bytes of the templates */
	uint64_t code_bytes;  /* host bytes of the templates */
	size_t n_relocs;      /* relocation records */
};

/* Translate the code of relocated m as templates (starts: function symbols
 * and every direct branch target inside the same section) into a pack in a
 * new malloc'd buffer (*pack, *pack_len) for tcdb_add_module(). */
enum bt_status kmod_pack_templates(struct kmod *m, struct xlat_ctx *ctx, uint8_t **pack,
				   size_t *pack_len, struct kmod_tmpl_stats *st);

/* A template of a parsed pack: which section, where in it. */
struct kmod_tmpl {
	uint32_t sec;	 /* index into the pack's sections */
	uint64_t offset; /* of the block in its section */
	struct xlat_tmpl t;
	const uint8_t *pcmap;
	uint32_t pcmap_len;
	uint32_t n_insns;
};
struct kmod_pack_section {
	char name[64];
	gva_t nominal;
	uint64_t size;
};
struct kmod_pack {
	struct kmod_pack_section *secs;
	uint32_t nsecs;
	struct kmod_tmpl *tmpls; /* sorted by (sec, offset) */
	size_t n;
	struct bt_exit *exits_; /* storage */
	struct xlat_reloc *relocs_;
};
/* Parse (and bound, invariant 4) pack bytes; pointers refer into p, which
 * must outlive the result.  BT_ERR_FORMAT for anything malformed. */
enum bt_status kmod_pack_parse(const uint8_t *p, size_t len, struct kmod_pack *out);
void kmod_pack_fini(struct kmod_pack *pk);
/* A pack of templates given in memory (tmpls in (sec, offset) order, each
 * sec < nsecs, else BT_ERR_INVALID) into a new malloc'd buffer: what
 * kmod_pack_templates writes for a module, for templates made elsewhere
 * (btvm's user templates, docs/user-mode.md). */
enum bt_status kmod_pack_build(const struct kmod_pack_section *secs, uint32_t nsecs,
			       const struct kmod_tmpl *tmpls, size_t n, uint8_t **pack,
			       size_t *pack_len);

/*
 * The fingerprint index (kmod_index.c; docs/kmod.md "Binding"): one small
 * entry per template of every module of a database, loaded at start so that
 * a module's pack is fetched only when code the guest runs matches one of
 * its fingerprints: the page offset of the template's nominal start, its
 * first byte, and a hash of its first KMOD_FP_COVER guest bytes with the
 * recorded fields zeroed (kmod_fp_hash), with the fields' byte mask.
 */
#define KMOD_FP_COVER 64

struct kmod_index_writer { /* zero-initialised; modules in row order */
	uint8_t *mods, *fps;
	size_t mods_len, mods_cap, fps_len, fps_cap;
	uint32_t nmods, ntmpls;
};
/* Append the fingerprints of one module's pack (the next row id). */
enum bt_status kmod_index_add(struct kmod_index_writer *w, const uint8_t *pack, size_t len);
/* Append everything of `from` (modules built apart, e.g. by threads). */
enum bt_status kmod_index_merge(struct kmod_index_writer *w, const struct kmod_index_writer *from);
/* The index bytes in a new malloc'd buffer. */
enum bt_status kmod_index_finish(struct kmod_index_writer *w, uint8_t **out, size_t *len);
void kmod_index_writer_fini(struct kmod_index_writer *w);

struct kmod_fp {
	uint64_t fmask; /* bit i: guest byte i is a recorded field (zeroed in the hash) */
	uint32_t key;	/* page offset << 8 | first guest byte */
	uint32_t hash;	/* kmod_fp_hash of the first `cover` guest bytes */
	uint32_t idx;	/* template number over all modules (module order) */
	uint8_t cover;	/* 1..KMOD_FP_COVER */
};
struct kmod_index {
	uint32_t nmods;
	uint32_t *base;	      /* nmods + 1: module i's templates are [base[i], base[i + 1]) */
	uint32_t *raw_len;    /* each module's pack length */
	uint64_t *cost;	      /* each module's pack and its parse (kmod_pack_parse) in bytes */
	struct kmod_fp *fps;  /* sorted by (key, idx) */
	uint32_t *pos;	      /* by template number: its entry in fps */
	uint32_t *off;	      /* by template number: its offset in its section */
	uint8_t *sec;	      /* by template number: its section in its pack */
	uint32_t start[4097]; /* fps of page offset o: [start[o], start[o + 1]) */
	size_t n;
};
/* Parse (and bound) index bytes; p may be freed afterwards.  BT_ERR_FORMAT
 * for anything malformed. */
enum bt_status kmod_index_parse(const uint8_t *p, size_t len, struct kmod_index *out);
void kmod_index_fini(struct kmod_index *x);
/* The first fps entry with this key (or the next key's first). */
size_t kmod_index_first(const struct kmod_index *x, uint32_t key);
/* The hash of cover bytes with the fmask bytes zeroed. */
uint32_t kmod_fp_hash(const uint8_t *bytes, uint32_t cover, uint64_t fmask);
/* Every template of pack pk (module mod) has the fingerprint x gives it. */
bool kmod_index_consistent(const struct kmod_index *x, uint32_t mod, const struct kmod_pack *pk);

/*
 * Binding (kmod_bind.c): the templates that match code at an address,
 * their modules' packs fetched on first match within a memory budget
 * (least recently used packs evicted), instantiated there.
 */
/* Module mod's pack (row id mod + 1), inflated into a malloc'd buffer after
 * its tag matched; BT_ERR_AUTH stops binding. */
typedef enum bt_status (*kmod_fetch_fn)(void *opaque, uint32_t mod, uint8_t **raw, size_t *len);
struct kmod_bind_stats {
	uint64_t fp_matches;	 /* fingerprints that matched guest bytes (templates tried) */
	uint64_t ambiguous;	 /* misses matching several modules not resident, not told apart */
	uint64_t disambiguated;	 /* ... and those where one module's neighbours matched: fetched */
	uint64_t bound;		 /* templates instantiated */
	uint64_t placement_hits; /* of which found where a placement said (no fingerprint) */
	/* inside a placement, why its template did not serve: [XLAT_TMPL_BYTES ..
	 * _PAGE] instantiation refused, [XLAT_NTMPL_RESULTS] no template there */
	uint64_t placement_misses[XLAT_NTMPL_RESULTS + 1];
	uint64_t packs_inflated; /* fetches (a pack evicted and needed again counts twice) */
	uint64_t inflated_bytes;
	uint64_t packs_evicted, packs_bad;
	uint64_t resident_bytes, peak_bytes; /* by the budget's measure */
};
struct kmod_binder;
/* Takes idx over (idx is zeroed). */
enum bt_status kmod_binder_create(struct kmod_index *idx, kmod_fetch_fn fetch, void *opaque,
				  uint64_t budget, struct kmod_binder **out);
/* kmod_index_parse of index bytes (which may be freed afterwards), then
 * kmod_binder_create over them; BT_ERR_FORMAT when they are malformed or
 * do not index exactly nmods packs; *n_fps: the fingerprints. */
enum bt_status kmod_binder_open(const uint8_t *index, size_t len, uint32_t nmods,
				kmod_fetch_fn fetch, void *opaque, uint64_t budget,
				struct kmod_binder **out, size_t *n_fps);
void kmod_binder_destroy(struct kmod_binder *b);
/* The block a template makes of the guest bytes at rip (got of them), in
 * xb (storage the binder's until its next call), *found; BT_ERR_AUTH (once)
 * when a fetch did, BT_ERR_NOMEM.  src (or NULL) reads guest memory
 * elsewhere, to tell apart modules that share the block at rip. */
enum bt_status kmod_binder_find(struct kmod_binder *b, const struct xlat_source *src, gva_t rip,
				const uint8_t *bytes, size_t got, struct bt_block *xb, bool *found);
const struct kmod_bind_stats *kmod_binder_stats(const struct kmod_binder *b);
/* The template the last kmod_binder_find that found a block instantiated
 * (valid until the binder's next call), or NULL. */
const struct kmod_tmpl *kmod_binder_last(const struct kmod_binder *b);

#endif
