/*
 * The translation-cache database (one sqlite file per kernel image): the
 * image identity, its functions, translated blocks (and refused regions),
 * the provenance of the translation and run statistics written back by the
 * runtime.  Schema and rules: docs/db.md.
 *
 * Two ways in:
 *  - build:   tcdb_create() writes OUT.tmp-XXXXXX in one transaction;
 *             tcdb_commit() fsyncs and renames it over OUT, tcdb_abort()
 *             deletes it, so a failed build leaves the previous OUT intact.
 *  - use:     tcdb_open() validates magic, schema, translator/ABI versions
 *             and (optionally) the image identity, then serves block look-ups,
 *             learned-block write-back and run statistics.
 * A database file is untrusted input: every problem is a status and one
 * logged line saying what is wrong and what to do, never an assert.  Its
 * host code is authenticated (docs/db.md "Trust"): the database identity,
 * every chunk (with the directory of the build's blocks in it), every pack
 * and every learned block row carry an HMAC-SHA256 tag made with the
 * user's key ($XDG_CONFIG_HOME/btkern/db.key, made on first use), checked
 * at open (identity), when a chunk is inflated and when a row is read; a
 * failure is BT_ERR_AUTH and no code of it is handed out.
 *
 * db/ stores bytes and numbers and depends on pretrans/base only: it knows
 * nothing of the translator.  Blocks are the base's one block record
 * (struct bt_block, in struct tcdb_block), which the translator fills and
 * the code cache installs, so nobody converts them; what a translator
 * version, an exit kind, a refusal code or a function kind means belongs
 * to the caller (pretrans, runtime/vm), which tells tcdb_open() which
 * translator it expects (struct tcdb_prov) so readers check kinds and
 * refusals against it.
 */
#ifndef BT_DB_TCDB_H
#define BT_DB_TCDB_H

#include "pretrans/base/block.h"
#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

#define TCDB_SCHEMA_VERSION 7
#define TCDB_MAGIC	    "btkern-tcdb"

struct tcdb; /* opaque */

struct tcdb_image {
	char path[1024];
	char build_id[129]; /* hex, "" when none */
	char sha256[65];    /* hex */
	gva_t entry;
	/* where the running kernel holds its build-id (the NT_GNU_BUILD_ID
	 * note's descriptor, at its link address), 0 when not known: btvm
	 * identifies the kernel a bzImage decompressed by it (schema 6) */
	gva_t build_id_va;
	/* the image's linux_banner ("Linux version R (BY@HOST) (CC) V\n"), ""
	 * when it has none: btvm matches a bzImage's setup-header
	 * kernel_version ("R (BY@HOST) V") against it at open (schema 6) */
	char banner[512];
	char arch[16]; /* "x86_64" */
};

/* The provenance row a build writes (tcdb_create) and readers get back. */
struct tcdb_provenance {
	uint32_t xlat_version;
	uint32_t abi_version;
	uint64_t options_hash; /* the translator's hash of its version and options */
	uint32_t options_flags;
	char tool_version[64];
	int64_t created; /* unix seconds */
};

struct tcdb_function {
	int64_t id; /* assigned by tcdb_add_function() */
	const char *name;
	gva_t address;
	uint64_t size;
	uint64_t bytes_hash;	/* xlat_hash_bytes() of the function's bytes */
	const char *section;	/* e.g. ".text" */
	uint64_t covered_bytes; /* function bytes inside translated blocks */
	uint64_t refused_bytes; /* function bytes only in refused regions */
	uint32_t kind;		/* the caller's region kind, stored as given (pretrans:
				 * enum discover_kind, pretrans/discover.h) */
};

/* Where a block comes from: a row of `pretrans build`, a learned row, or
 * (never stored in a row) the boot profile pack. */
enum tcdb_origin {
	TCDB_ORIGIN_STATIC = 0,
	TCDB_ORIGIN_LEARNED = 1,
	TCDB_ORIGIN_PROFILE = 2,
	TCDB_ORIGIN_PREDICTED = 3 /* the predicted-patching pack */
};

/* One row of `blocks`: the block record (pretrans/base/block.h) and where
 * the database keeps it.  blk.refusal != 0: an untranslated region (no
 * code); readers check it is below tcdb_prov.n_refusals, and every exit
 * kind below tcdb_prov.n_exit_kinds (never 0).  The exits' flags are not
 * stored (readers give 0). */
struct tcdb_block {
	struct bt_block blk;
	int64_t function_id; /* 0 = none */
	uint32_t origin;     /* enum tcdb_origin */
	/* Where code, pc map and exits are stored: chunk_id 0 = inline in the
	 * row; else payload_off inside that compressed chunk (tcdb_chunk_add()
	 * sets both on the build side; readers see them filled in). */
	int64_t chunk_id;
	uint32_t payload_off;
};

/*
 * A chunk: the code, pc maps and exits of a group of blocks (one function),
 * concatenated and zstd-compressed together, which is several times smaller
 * than compressing blocks one by one.  Built in any thread (no database
 * access), then written by tcdb_add_chunk().
 */
struct tcdb_dirent; /* db/tcdb_int.h */
struct tcdb_chunk {
	uint8_t *raw, *z;
	size_t raw_len, raw_cap, z_len, z_cap;
	uint8_t digest[32]; /* SHA-256 of z, set by the seal functions */
	/* the chunk's directory (tcdb_chunk_add_block), appended to raw by
	 * tcdb_chunk_close (schema 7, docs/db.md "Chunk directory") */
	struct tcdb_dirent *ents;
	size_t n_ents, ents_cap;
	bool closed;
};

void tcdb_chunk_reset(struct tcdb_chunk *c);
/* Append b's code, pc map and exits; sets b->payload_off (chunk_id later).
 * A payload only, listed in no directory (the predicted versions' chunks,
 * which their pack indexes). */
enum bt_status tcdb_chunk_add(struct tcdb_chunk *c, struct tcdb_block *b);
/* A block of `pretrans build`: its payload (when translated; sets
 * b->payload_off) and its directory entry (start, length, instructions,
 * guest hash, flags, refusal, payload offset, region).  region is the
 * index of its region in the unit: the block's function id is the first
 * function id added after the chunk (tcdb_add_chunk) plus region, so the
 * caller adds one function per region, in region order, right after the
 * chunk.  The first entry of a start wins; a block's row is then only
 * counted by tcdb_add_block (no row is written). */
enum bt_status tcdb_chunk_add_block(struct tcdb_chunk *c, struct tcdb_block *b, uint32_t region);
/* Append the directory to raw (once; the seal functions do it): after it
 * raw holds what the chunk stores.  Blocks cannot be added any more. */
enum bt_status tcdb_chunk_close(struct tcdb_chunk *c);
enum bt_status tcdb_chunk_seal(struct tcdb_chunk *c); /* close, compress */
/* Seal with z as the compressed form instead of compressing: z must be what
 * tcdb_chunk_seal() makes of c's raw bytes (pretrans build --reuse passes
 * the stored chunk of an earlier build whose raw bytes were identical). */
enum bt_status tcdb_chunk_seal_copy(struct tcdb_chunk *c, const uint8_t *z, size_t z_len);
void tcdb_chunk_fini(struct tcdb_chunk *c);

/*
 * A zstd dictionary for chunks (db/tcdb_zdict.c, docs/db.md "Codec"):
 * trained from the raw bytes of closed chunks (at most cap bytes), stored
 * once per database (tcdb_add_zdict, building), read back by a later
 * build's --reuse (tcdb_get_zdict; BT_ERR_NOTFOUND when none).  A chunk
 * sealed with it names it in its frame; readers inflate it with the stored
 * one (tag checked).
 */
struct tcdb_zdict;
enum bt_status tcdb_zdict_train(const uint8_t *samples, const size_t *sizes, size_t n, size_t cap,
				struct tcdb_zdict **out);
void tcdb_zdict_free(struct tcdb_zdict *d);
uint32_t tcdb_zdict_id(const struct tcdb_zdict *d); /* 0 for NULL */
/* a and b are the same dictionary, byte for byte (or both NULL). */
bool tcdb_zdict_equal(const struct tcdb_zdict *a, const struct tcdb_zdict *b);
/* Close and compress c with d (NULL: as tcdb_chunk_seal). */
enum bt_status tcdb_chunk_seal_with(struct tcdb_chunk *c, const struct tcdb_zdict *d);
/* The dictionary id a stored (sealed) chunk frame names (0: none). */
uint32_t tcdb_frame_dict_id(const uint8_t *z, size_t z_len);

struct tcdb_run_stats {
	char boot_id[64];
	int64_t started, ended; /* unix seconds */
	uint64_t blocks_used;	/* pre-translated blocks validated and run */
	uint64_t blocks_stale;	/* pre-translated blocks whose guest bytes differed */
	uint64_t misses;	/* blocks translated at run time */
	uint64_t blocks_learned;
	const char *counters; /* free-form "name=value ..." text, may be NULL */
};

/* ---- build side ---- */
enum bt_status tcdb_create(const char *out_path, const struct tcdb_image *img,
			   const struct tcdb_provenance *prov, struct tcdb **out);
enum bt_status tcdb_add_function(struct tcdb *db, struct tcdb_function *f);
/* A block with a chunk id (pretrans build): no row, its chunk's directory
 * holds it (BT_ERR_INVALID when that chunk does not list its start); it is
 * counted as added when that chunk is the first to list the start.  A
 * block without one: an inline row (the first row of a start is kept). */
enum bt_status tcdb_add_block(struct tcdb *db, const struct tcdb_block *b);
/* Store a sealed chunk; blocks that were added to it then take *id. */
enum bt_status tcdb_add_chunk(struct tcdb *db, const struct tcdb_chunk *c, int64_t *id);
/* Store the chunk dictionary (once, before commit). */
enum bt_status tcdb_add_zdict(struct tcdb *db, const struct tcdb_zdict *d);
enum bt_status tcdb_get_zdict(struct tcdb *db, struct tcdb_zdict **out);
/* Rows actually inserted by tcdb_add_block (a start already present is kept). */
size_t tcdb_blocks_added(const struct tcdb *db);
/* Commit, fsync, rename over out_path, close.  db is freed in every case. */
enum bt_status tcdb_commit(struct tcdb *db);
/* Drop the temporary file, close.  Leaves out_path untouched. */
void tcdb_abort(struct tcdb *db);

/* Fault injection for tests: the next operation of this kind fails with
 * errno err (once), so the failure paths of the atomic replace run. */
enum tcdb_io_op { TCDB_IO_NONE, TCDB_IO_FSYNC_FILE, TCDB_IO_RENAME, TCDB_IO_FSYNC_DIR };
void tcdb_io_fault(enum tcdb_io_op op, int err);

/* ---- use side ---- */
enum tcdb_open_flags {
	TCDB_RDONLY = 0,
	TCDB_RDWR = 1u << 0, /* learned blocks and run statistics */
	/* Do not check the identity, chunk and row tags: only for a caller
	 * that checks every row itself before trusting it (pretrans verify
	 * --sign, then tcdb_sign()). */
	TCDB_UNVERIFIED = 1u << 1,
};

/*
 * The translator the caller expects a database to come from, as plain
 * numbers its translator defines (pretrans/xlat: XLAT_VERSION,
 * VCPU_ABI_VERSION, XLAT_NEXIT_KINDS, XLAT_NREFUSALS).  Required by
 * tcdb_open(): a file of another translator or vCPU ABI is refused, and
 * every stored exit kind and refusal code is checked against the limits
 * before a reader sees it.
 */
struct tcdb_prov {
	uint32_t xlat_version;
	uint32_t abi_version;
	uint32_t n_exit_kinds; /* valid exit kinds are 1 .. n_exit_kinds - 1 */
	uint32_t n_refusals;   /* valid refusal codes are 0 .. n_refusals - 1 */
};

/* What the caller expects of the image and options; NULL/0 fields are not
 * checked. */
struct tcdb_expect {
	const char *sha256;	/* hex */
	const char *build_id;	/* hex */
	const char *image_name; /* for messages */
	uint64_t options_hash;	/* struct tcdb_provenance.options_hash */
	/* the caller's CPU profile (pretrans/cpuid: cpuid_profile_hash); the
	 * predicted versions are used only when they were made for it (0:
	 * never used) */
	uint64_t cpu_profile_hash;
};

/* Refused: a file writable by group or other; a database whose identity
 * tag is not this user's key's (BT_ERR_AUTH, unless TCDB_UNVERIFIED). */
enum bt_status tcdb_open(const char *path, unsigned flags, const struct tcdb_prov *want,
			 const struct tcdb_expect *expect, struct tcdb **out);
void tcdb_close(struct tcdb *db);
/* A tag failed since db was opened: it serves no more blocks (tcdb_lookup
 * and the walks return BT_ERR_AUTH) and takes no learned blocks. */
bool tcdb_untrusted(const struct tcdb *db);
/* Re-sign db (opened TCDB_RDWR | TCDB_UNVERIFIED) with this user's key: a
 * new identity tag and new tags for every chunk and row, in one
 * transaction.  The caller has checked every row first. */
enum bt_status tcdb_sign(struct tcdb *db);

enum bt_status tcdb_get_image(struct tcdb *db, struct tcdb_image *out);
/* The file to open for the image path recorded in the database at db_path:
 * an absolute path as is (pretrans build records one); a relative one
 * (databases written before it did) relative to the working directory if
 * that file exists, else relative to the database's directory if that one
 * does, else as recorded (opening it then fails with the recorded name). */
void tcdb_image_locate(const char *db_path, const char *recorded, char *out, size_t n);
enum bt_status tcdb_get_provenance(struct tcdb *db, struct tcdb_provenance *out);

/* Load what a boot needs in bulk (optional; look-ups work without it): the
 * start-index pack (the translated starts, so that misses are answered
 * without sqlite; a database without one is scanned instead) and the boot
 * profile pack, if a --learn boot wrote one (docs/db.md "Packs").
 * *n_blocks: translated starts in the index.  A pack failing its tag
 * leaves db untrusted (tcdb_untrusted: nothing is served) and is BT_OK, as
 * a row or chunk failing its tag is no error of the caller's boot. */
enum bt_status tcdb_load_index(struct tcdb *db, size_t *n_blocks);
/* Where tcdb_load_index puts the boot profile's host code (all of it, one
 * block after another in first-use order, each 16-byte aligned):
 * sink(opaque, len) returns len writable bytes that stay valid as long as
 * db hands out profile blocks (btvm: the code cache's preloaded region,
 * so a profile block is installed without a copy; runtime/cache
 * tcache_preload), or NULL for memory of db's own.  The pack's tag is
 * checked before anything is written there. */
typedef uint8_t *(*tcdb_code_sink_fn)(void *opaque, size_t len);
void tcdb_set_code_sink(struct tcdb *db, tcdb_code_sink_fn sink, void *opaque);
/* Entries of the loaded boot profile (0 when none). */
size_t tcdb_profile_entries(const struct tcdb *db);
/* Entries of the loaded predicted-patching pack (0 when none, or when it
 * was made for another CPU profile than tcdb_expect.cpu_profile_hash). */
size_t tcdb_predicted_entries(const struct tcdb *db);
/* Every loaded version (start, guest length, guest hash) of the boot
 * profile (predicted = false) or of the predicted pack, in stored order;
 * cb returns non-zero to stop. */
typedef int (*tcdb_version_fn)(void *opaque, gva_t va, uint32_t guest_len, uint64_t guest_hash);
enum bt_status tcdb_profile_foreach(struct tcdb *db, bool predicted, tcdb_version_fn cb,
				    void *opaque);

/*
 * Several versions per guest start: the caller says whether a version
 * (its guest length and guest-bytes hash) is what guest memory holds now.
 */
typedef bool (*tcdb_match_fn)(void *opaque, gva_t va, uint32_t guest_len, uint64_t guest_hash);
/* The first version of the block at va that match() accepts: the boot
 * profile's versions in first-use order, then the predicted versions (the
 * predicted-patching pack), then the row of `blocks`.
 * BT_ERR_NOTFOUND if none is accepted; *n_tried says how many versions
 * were offered (0: none exists, more: all were stale).  Pointers in *out
 * stay valid until the next tcdb call on db (boot profile blocks: until
 * tcdb_close). */
enum bt_status tcdb_lookup_match(struct tcdb *db, gva_t va, tcdb_match_fn match, void *opaque,
				 struct tcdb_block *out, unsigned *n_tried);
/* The translated block starting at va (BT_ERR_NOTFOUND if none or refused).
 * Pointers in *out stay valid until the next tcdb call on db. */
enum bt_status tcdb_lookup(struct tcdb *db, gva_t va, struct tcdb_block *out);

/* Iterate all rows of blocks (translated and refused) in guest_start order;
 * cb returns non-zero to stop.  Pointers are valid during the call only. */
enum bt_status tcdb_foreach_block(struct tcdb *db, int (*cb)(void *, const struct tcdb_block *),
				  void *opaque);
/* As tcdb_foreach_block, only the rows whose guest start lies in [lo, hi),
 * in address order, read through the primary key (`pretrans show`: one
 * function without reading the whole table). */
enum bt_status tcdb_foreach_block_range(struct tcdb *db, gva_t lo, gva_t hi,
					int (*cb)(void *, const struct tcdb_block *), void *opaque);
/* As tcdb_foreach_block, but blocks stored in a chunk come without their
 * payload (code, pc map, exits unset; chunk_id and payload_off set): read
 * it with tcdb_payload_parse() from the chunk's raw bytes. */
enum bt_status tcdb_foreach_block_meta(struct tcdb *db,
				       int (*cb)(void *, const struct tcdb_block *), void *opaque);
/* Point b's code, pc map and exits at the payload at off in a chunk's raw
 * bytes of db (BT_ERR_FORMAT if it does not fit or holds an exit kind db's
 * translator does not know).  b->guest_start must be the block's start:
 * exit targets are stored relative to it. */
enum bt_status tcdb_payload_parse(const struct tcdb *db, const uint8_t *raw, size_t raw_len,
				  uint64_t off, struct bt_block *b);
/* Chunk id's raw (inflated) and stored (compressed) bytes in new malloc'd
 * buffers the caller frees; BT_ERR_NOTFOUND if there is no such chunk. */
enum bt_status tcdb_read_chunk(struct tcdb *db, int64_t id, uint8_t **raw, size_t *raw_len,
			       uint8_t **z, size_t *z_len);
enum bt_status tcdb_foreach_function(struct tcdb *db,
				     int (*cb)(void *, const struct tcdb_function *), void *opaque);

/* The boot profile a --learn boot writes (db opened TCDB_RDWR): note every
 * block the boot installs, in first-use order (one entry per start and
 * guest hash; BT_ERR_INVALID for a refused or malformed block);
 * tcdb_learn_commit() stores them as the profile pack, replacing the
 * previous one. */
enum bt_status tcdb_profile_note(struct tcdb *db, const struct bt_block *b);
size_t tcdb_profile_noted(const struct tcdb *db);

/* The predicted boot-time patching (`pretrans build`, db being built): a
 * version of a block translated from the bytes the predicted patching
 * leaves (one per start and guest hash), then, before tcdb_commit, the pack
 * of them, tagged with the CPU profile they were predicted for. */
enum bt_status tcdb_predicted_note(struct tcdb *db, const struct bt_block *b);
enum bt_status tcdb_predicted_write(struct tcdb *db, uint64_t cpu_profile_hash);

/* Learned blocks: all in one transaction (with the boot profile). */
enum bt_status tcdb_learn_begin(struct tcdb *db);
enum bt_status tcdb_learn_block(struct tcdb *db, const struct bt_block *b);
enum bt_status tcdb_learn_commit(struct tcdb *db);

/*
 * Loadable modules (kmod/, docs/kmod.md; docs/db.md "Modules"): one row per
 * module with its identity and its templates as one zstd-compressed blob,
 * tagged like a pack (the tag covers the identity, the raw length, the
 * template count and the stored bytes).  tcdb_add_module() while building;
 * tcdb_foreach_module() lists identities without the blob;
 * tcdb_module_get() returns the blob inflated into a malloc'd buffer after
 * its tag matched (BT_ERR_AUTH and db untrusted otherwise).  A database
 * re-signed for another key (tcdb_sign) drops its modules: no image checks
 * them.
 */
struct tcdb_module {
	int64_t id; /* assigned by tcdb_add_module, 1, 2, ... */
	const char *name, *vermagic, *srcversion, *sections_hash, *path;
	uint32_t n_templates;
	uint64_t raw_len;
};
enum bt_status tcdb_add_module(struct tcdb *db, struct tcdb_module *m, const uint8_t *raw,
			       size_t raw_len);
enum bt_status tcdb_foreach_module(struct tcdb *db, int (*cb)(void *, const struct tcdb_module *),
				   void *opaque);
enum bt_status tcdb_module_get(struct tcdb *db, int64_t id, uint8_t **raw, size_t *raw_len);
/* The modules' fingerprint index (kmod/'s bytes, docs/kmod.md "Binding"),
 * stored as a pack (tagged, zstd) while building, n_modules its item count,
 * and read back after its tag matched (BT_ERR_NOTFOUND: none; BT_ERR_AUTH:
 * db untrusted now); free the result with tcdb_module_index_free. */
enum bt_status tcdb_module_index_put(struct tcdb *db, const uint8_t *raw, size_t raw_len,
				     uint64_t n_modules);
enum bt_status tcdb_module_index_get(struct tcdb *db, uint8_t **raw, size_t *raw_len,
				     uint64_t *n_modules);
void tcdb_module_index_free(uint8_t *raw, size_t raw_len);
/* The block templates of the image's blocks, and of the predicted-patching
 * versions (pretrans/reuse_tmpl.c's bytes, docs/diff.md "Reusing moved
 * functions"): a pack each (tagged, zstd) written while building, read back
 * after its tag matched (BT_ERR_NOTFOUND: none; BT_ERR_AUTH: db untrusted
 * now); free with tcdb_module_index_free.  Dropped by tcdb_sign. */
enum bt_status tcdb_templates_put(struct tcdb *db, bool predicted, const uint8_t *raw,
				  size_t raw_len, uint64_t n_items);
enum bt_status tcdb_templates_get(struct tcdb *db, bool predicted, uint8_t **raw, size_t *raw_len,
				  uint64_t *n_items);

/*
 * Guest user code's templates, kept by a --learn boot (docs/user-mode.md
 * "... across boots"; db/tcdb_user.c): kmod/'s pack of them and its
 * fingerprint index, two packs (tagged, zstd) written inside the learn
 * transaction (between tcdb_learn_begin and tcdb_learn_commit, else
 * BT_ERR_INVALID), replacing the previous pair; read back after the tag
 * matched (index: the index pack, else the templates; BT_ERR_NOTFOUND:
 * none; BT_ERR_AUTH: db untrusted now) into a malloc'd buffer (free()):
 * what kmod's binder takes over from its fetch function as it is.
 * Dropped by tcdb_sign, as the boot profile is.
 */
enum bt_status tcdb_user_tmpl_put(struct tcdb *db, const uint8_t *pack, size_t pack_len,
				  const uint8_t *index, size_t index_len, uint64_t n_templates);
enum bt_status tcdb_user_tmpl_get(struct tcdb *db, bool index, uint8_t **raw, size_t *raw_len,
				  uint64_t *n_templates);

enum bt_status tcdb_record_run(struct tcdb *db, const struct tcdb_run_stats *rs);
/* The number of recorded runs and the latest one (rs->counters points into
 * a db-owned buffer valid until the next call); *n = 0 when none. */
enum bt_status tcdb_last_run(struct tcdb *db, struct tcdb_run_stats *rs, uint64_t *n);

#endif
