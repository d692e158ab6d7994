/*
 * Internals shared by the files of db/ (not part of the API, db/tcdb.h):
 * the connection object, its prepared statements, the key mapping and the
 * little-endian helpers of the storage format.  Only the files of db/ include it.
 *
 *   db/tcdb.c        connection lifecycle: schema, create/commit/abort,
 *                    open/validate/close, the image and provenance rows,
 *                    the learn transaction (owns the state diagram)
 *   db/tcdb_file.c   the files themselves: checks before sqlite reads one,
 *                    the build's temporary file, the atomic replace
 *   db/tcdb_chunk.c  the payload codec and chunks: exit records, packing,
 *                    zstd, payload parsing, the reader's chunk cache
 *   db/tcdb_block.c  block and function rows: writing, look-ups, the
 *                    block-start index, walking rows and directories
 *   db/tcdb_dir.c    chunk directories (a build's blocks) and the chunk map
 *   db/tcdb_zdict.c  the chunks' zstd dictionary
 *   db/tcdb_pack.c   packs (one blob each, read in one go): the table,
 *                    codecs, the start index
 *   db/tcdb_profile.c the boot profile pack: recording, loading, the
 *                    multi-version look-up
 *   db/tcdb_run.c    run statistics rows
 *   db/tcdb_auth.c   the user's key file and the HMAC tags of the
 *                    database identity, chunks and rows
 */
#ifndef BT_DB_TCDB_INT_H
#define BT_DB_TCDB_INT_H

#include "db/tcdb.h"

#include "pretrans/base/le.h"
#include "pretrans/base/sha256.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>

#define TCDB_KEY_LEN   32 /* bytes of the user's key */
#define TCDB_NONCE_LEN 16 /* bytes of a database's random nonce */
#define TCDB_MAC_LEN   16 /* bytes of a stored tag: HMAC-SHA256 cut to 128 bits */
#define TCDB_ROW_INTS  11 /* integer columns of a block row under its tag */

#define CHUNK_CACHE 1024 /* decompressed chunks kept by a reader (direct mapped by id) */

enum stmt_id {
	ST_ADD_FUNC,
	ST_ADD_BLOCK,
	ST_LEARN_BLOCK,
	ST_LOOKUP,
	ST_ADD_CHUNK,
	ST_GET_CHUNK,
	ST_N,
};

struct tcdb {
	sqlite3 *h;
	char *path;	/* final path */
	char *tmp_path; /* building: temporary file */
	bool building, learning, rdwr;
	/* authentication (db/tcdb_auth.c): the keyed HMAC context, the
	 * database's nonce; unverified: opened with TCDB_UNVERIFIED (tags are
	 * not checked); untrusted: a tag failed, no block is served */
	struct hmac_sha256_ctx key;
	uint8_t nonce[TCDB_NONCE_LEN];
	bool unverified, untrusted;
	int64_t n_chunks;      /* building: chunk ids are assigned 1, 2, ... */
	struct tcdb_prov want; /* readers: the caller's translator */
	size_t added;
	size_t learned_rows; /* rows written in the open learn transaction */
	sqlite3_stmt *st[ST_N];
	/* look-up result storage */
	uint8_t *buf;
	size_t buf_cap;
	/* optional in-memory index of translated starts (open addressing) */
	uint64_t *idx;
	size_t idx_mask;
	/* ... or, from the start-index pack, a bitmap of the starts in
	 * [bits_first, bits_first + bits_span) (db/tcdb_pack.c) */
	uint64_t *bits;
	gva_t bits_first;
	uint64_t bits_span;
	/* the boot profile (db/tcdb_profile.c): loaded (prof_raw, its
	 * entries and their hash table) and, when learning, recorded */
	struct tcdb_prof *prof;
	/* the predicted boot-time patching (`pretrans build`, pack kind 3):
	 * recorded while building, loaded when its CPU profile hash is
	 * want_cpu (the caller's, struct tcdb_expect) */
	struct tcdb_prof *pred;
	uint64_t want_cpu;
	/* where the boot profile's host code is loaded (tcdb_set_code_sink) */
	tcdb_code_sink_fn code_sink;
	void *code_sink_opaque;
	/* decompressed chunks (direct mapped by id); chunk/chunk_len/
	 * chunk_id describe the current one (a view into one of the entries) */
	struct chunk_cache {
		int64_t id; /* 0 = empty */
		uint8_t *buf;
		size_t len, cap;
		int64_t func0;		 /* chunks.func0: function id of region 0 */
		size_t pay_len;		 /* bytes before the directory */
		int dir_state;		 /* 0 not parsed, 1 parsed, -1 corrupt */
		struct tcdb_dirent *dir; /* parsed directory, sorted by key */
		size_t n_dir, dir_cap;
	} cache[CHUNK_CACHE];
	struct chunk_cache *cur; /* the entry of chunk_id */
	/* the chunk map (pack kind 10, db/tcdb_dir.c): runs of consecutive
	 * static starts (keys) held by one chunk, sorted, disjoint */
	int map_state; /* 0 not loaded, 1 loaded, -1 failed */
	int64_t *map_lo, *map_hi, *map_chunk;
	size_t map_n;
	/* block rows exist (learned or inline ones): 0 unknown, 1 yes, -1 no */
	int rows_state;
	/* building: the static starts of the chunks added so far (first
	 * wins), open addressing on the key */
	struct smap_ent {
		int64_t key, chunk;
		bool refused, claimed;
	} * sm;
	size_t sm_n, sm_cap;
	uint32_t *sm_tab; /* index + 1 into sm, 0 empty */
	size_t sm_mask;
	int64_t last_func;	  /* building: the last function id added */
	void *zd;		  /* ZSTD_DCtx, made on first use */
	void *ddict;		  /* ZSTD_DDict of the chunk dictionary (tcdb_zdict.c) */
	struct tcdb_zdict *wdict; /* building: the one stored (tcdb_add_zdict) */
	uint32_t ddict_id;
	bool skip_payload; /* tcdb_foreach_block_meta in progress */
	const uint8_t *chunk;
	size_t chunk_len;
	int64_t chunk_id;
};

/* ---------------------------------------------------------------- keys */

/*
 * blocks.guest_start holds the guest address XOR TCDB_KEY_XOR: kernel
 * addresses (0xffffffff8xxxxxxx) become small positive integers, which
 * sqlite stores as 4-byte instead of 9-byte varints.  A bijection, so
 * look-ups and uniqueness are unchanged.
 */
#define TCDB_KEY_XOR 0xffffffff80000000ull

static inline int64_t key_of(gva_t va)
{
	return (int64_t)(va ^ TCDB_KEY_XOR);
}

static inline gva_t va_of(int64_t key)
{
	return (gva_t)key ^ TCDB_KEY_XOR;
}

/* ---------------------------------------------------------------- bytes
 * (little-endian fields: pretrans/base/le.h) */

static inline void copy_text(char *dst, size_t cap, const unsigned char *src)
{
	snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

/* Exit records as stored in blocks.exits and chunk payloads: 20 bytes
 * each, little endian: kind u8, 3 zero bytes, patch_off u32, stub_off u32,
 * target u64. */
#define TCDB_EXIT_REC 20
#define CHUNK_MAX_RAW (64u << 20) /* largest decompressed chunk */

/* The columns of a block row, in the order row_to_block() reads them. */
#define TCDB_BLOCK_COLS                                                                            \
	"guest_start, guest_len, n_insns, guest_hash, flags, refusal, refusal_addr, code, "        \
	"exits, pcmap, function_id, origin, chunk, payload_off, mac"

/* LEB128 varints and zigzag (the directory, chunk map and start index). */
static inline size_t tcdb_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* false when it runs past end or is longer than 10 bytes */
static inline bool tcdb_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	for (unsigned sh = 0; sh < 70; sh += 7) {
		if (p >= end)
			return false;
		uint8_t c = *p++;
		r |= (uint64_t)(c & 0x7f) << sh;
		if (!(c & 0x80)) {
			*pp = p;
			*v = r;
			return true;
		}
	}
	return false;
}

static inline uint64_t tcdb_zig(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t tcdb_unzig(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---------------------------------------------------------------- tcdb_dir.c */

/* One block of a chunk's directory (schema 7): stored after the chunk's
 * payloads as varints (docs/db.md "Chunk directory"). */
struct tcdb_dirent {
	int64_t key; /* key_of(guest start) */
	uint64_t guest_hash;
	gva_t refusal_addr;
	uint32_t guest_len, n_insns, flags, refusal, payload_off, region;
	uint32_t seq; /* building: order of addition (the first of a start wins) */
};

/* Parse the directory at the end of a chunk's raw bytes into e (sorted by
 * key, checked: keys increasing, lengths, refusal codes below n_refusals,
 * payload offsets inside the payloads); *pay_len: bytes before it. */
enum bt_status tcdb_dir_parse(const uint8_t *raw, size_t raw_len, uint32_t n_refusals,
			      struct tcdb_dirent **e, size_t *n, size_t *cap, size_t *pay_len);
/* The current chunk's directory (db->cur; parsed once). */
enum bt_status tcdb_dir_get(struct tcdb *db, const struct tcdb_dirent **e, size_t *n);
/* Fill b from entry e of the current chunk (its payload unless skip). */
enum bt_status tcdb_dir_block(struct tcdb *db, const struct tcdb_dirent *e, struct tcdb_block *b,
			      bool skip_payload);
/* Building: record chunk id's directory (first start wins). */
enum bt_status tcdb_dir_register(struct tcdb *db, const struct tcdb_chunk *c, int64_t id);
/* Building: a block of chunk id at key was added: BT_ERR_INVALID when it is
 * not in that chunk's directory; *added when it is the start's winner and
 * was not counted yet. */
enum bt_status tcdb_dir_claim(struct tcdb *db, int64_t key, int64_t chunk, bool *added);
/* Building: the chunk map pack from the registered starts (their last use:
 * they are sorted in place and no longer looked up). */
enum bt_status tcdb_dir_write_map(struct tcdb *db);
/* The static translated starts (building: the registered ones; else the
 * stored start index) as guest addresses, malloc'd. */
enum bt_status tcdb_dir_static_starts(struct tcdb *db, uint64_t **va, size_t *n);
/* The chunk holding the static block at key (BT_ERR_NOTFOUND: none); the
 * map is loaded on first use. */
enum bt_status tcdb_map_find(struct tcdb *db, int64_t key, int64_t *chunk);
/* Load the chunk map (once). */
enum bt_status tcdb_map_load(struct tcdb *db);
void tcdb_dir_free(struct tcdb *db);

/* ---------------------------------------------------------------- tcdb_zdict.c */

/* The chunk dictionary of id as a ZSTD_DDict (loaded and tag-checked once;
 * BT_ERR_FORMAT when the database has none or another). */
enum bt_status tcdb_zdict_ddict(struct tcdb *db, uint32_t id, void **ddict);

/* ---------------------------------------------------------------- tcdb.c */

/* Log "PATH: WHAT: sqlite's message" and map sqlite's error code. */
enum bt_status tcdb_db_err(struct tcdb *db, const char *what);
enum bt_status tcdb_exec(struct tcdb *db, const char *sql);
/* The first column of the first row of sql (*found false when no row). */
enum bt_status tcdb_query_int(struct tcdb *db, const char *sql, int64_t *out, bool *found);

/* ---------------------------------------------------------------- tcdb_file.c */

/* Cheap structural checks on the raw file before sqlite reads it. */
enum bt_status tcdb_file_check(const char *path);
/* Create OUT.tmp-XXXXXX (O_EXCL, mode 0666 & ~umask) into tmp_path
 * (strlen(out_path) + 16 bytes).  OUT must be absent or a regular file (or
 * a symlink to one): anything else is BT_ERR_IO before anything is
 * created. */
enum bt_status tcdb_file_create_tmp(const char *out_path, char *tmp_path);
/* fsync tmp_path, check again that out_path is absent or a regular file,
 * rename tmp_path over it, fsync the directory.  Does not remove tmp_path
 * on failure. */
enum bt_status tcdb_file_replace(const char *tmp_path, const char *out_path);

/* ---------------------------------------------------------------- tcdb_chunk.c */

size_t tcdb_exits_encode(const struct bt_exit *e, uint32_t n, uint8_t *buf);
/* Decode len bytes of exit records; kinds must be 1 .. n_kinds - 1. */
enum bt_status tcdb_exits_decode(const uint8_t *buf, size_t len, uint32_t n_kinds,
				 struct bt_exit *e, uint32_t *n);
/* Make chunk id the current one (db->chunk, decompressed, its tag checked
 * unless db is unverified); va names the block wanting it in messages. */
enum bt_status tcdb_load_chunk(struct tcdb *db, int64_t id, gva_t va);
/* Decompress a zstd frame of exactly raw_len bytes into out (BT_ERR_FORMAT
 * with a message naming chunk id, or pack -id when id < 0). */
enum bt_status tcdb_unzstd(struct tcdb *db, uint8_t *out, size_t raw_len, const void *z,
			   size_t z_len, int64_t id);
/* tcdb_sign(): a new tag for every chunk (in its transaction). */
enum bt_status tcdb_sign_chunks(struct tcdb *db);

/* ---------------------------------------------------------------- tcdb_pack.c */

/* packs.kind: one pack of each.  Kind 2 was the boot profile with its
 * code inline (no longer read: the next --learn boot replaces it). */
enum tcdb_pack_kind {
	TCDB_PACK_INDEX = 1,
	TCDB_PACK_PROFILE_V1 = 2,
	TCDB_PACK_PREDICTED = 3,
	TCDB_PACK_KMOD_INDEX = 4, /* the modules' fingerprint index (tcdb_kmod.c) */
	TCDB_PACK_PROFILE = 5,
	TCDB_PACK_TEMPLATES = 6,      /* the image's block templates, for --reuse (tcdb_kmod.c) */
	TCDB_PACK_PRED_TEMPLATES = 7, /* those of the predicted-patching versions */
	TCDB_PACK_USER_TMPL = 8,      /* user-code templates of a --learn boot (tcdb_user.c) */
	TCDB_PACK_USER_INDEX = 9,     /* ... their fingerprint index */
	TCDB_PACK_CHUNK_MAP = 10,     /* runs of static starts -> chunk (tcdb_dir.c) */
	TCDB_PACK_ZDICT = 11,	      /* the chunks' zstd dictionary (tcdb_zdict.c) */
};
/* packs.codec */
enum tcdb_codec { TCDB_CODEC_NONE = 0, TCDB_CODEC_ZSTD = 1, TCDB_CODEC_LZ4 = 2, TCDB_NCODECS };

/* Compress raw, tag it and store it as the pack of this kind (replacing
 * the previous one). */
enum bt_status tcdb_pack_put(struct tcdb *db, enum tcdb_pack_kind kind, enum tcdb_codec codec,
			     const uint8_t *raw, size_t raw_len, uint64_t n_items);
/* The pack of this kind, its tag checked, decompressed into a new buffer
 * of tcdb_pack_alloc() (BT_ERR_NOTFOUND if there is none). */
enum bt_status tcdb_pack_get(struct tcdb *db, enum tcdb_pack_kind kind, uint8_t **raw,
			     size_t *raw_len, uint64_t *n_items);
/* tcdb_pack_get into malloc'd memory (free with free()): for a pack of a
 * few MB read once and handed on (the user templates), where populating
 * 2 MiB-rounded fresh memory costs more than reading it. */
enum bt_status tcdb_pack_get_heap(struct tcdb *db, enum tcdb_pack_kind kind, uint8_t **raw,
				  size_t *raw_len, uint64_t *n_items);
/* A pack stored as two parts (its raw bytes begin with the u64 length of
 * the first): the head in tcdb_pack_alloc() memory, the tail where db's
 * code sink puts it (tcdb_set_code_sink; tail_owned: db's own memory). */
struct tcdb_split {
	uint8_t *head, *tail;
	size_t head_len, tail_len;
	bool tail_owned;
	uint64_t n_items;
};
/* The pack of this kind as two parts, its tag checked before anything is
 * decompressed (codecs LZ4 and none only: the tail is decompressed
 * straight into the sink's memory). */
enum bt_status tcdb_pack_get_split(struct tcdb *db, enum tcdb_pack_kind kind,
				   struct tcdb_split *out);
/* Free what tcdb_pack_get_split gave (not a sink's tail). */
void tcdb_pack_split_free(struct tcdb_split *sp);
/* A pack of this kind is stored. */
bool tcdb_pack_exists(struct tcdb *db, enum tcdb_pack_kind kind);
/* Memory for a pack's decompressed bytes, populated up front; freed with
 * tcdb_pack_free(p, n) (NULL: none). */
uint8_t *tcdb_pack_alloc(size_t n);
void tcdb_pack_free(uint8_t *p, size_t n);
/* The start index from the blocks table (in the caller's transaction). */
enum bt_status tcdb_pack_write_index(struct tcdb *db);
/* Load the start index as db->bits (BT_ERR_NOTFOUND: none; BT_ERR_RANGE: it
 * spans too much address space for a bitmap). */
enum bt_status tcdb_pack_load_index(struct tcdb *db, size_t *n_starts);
/* tcdb_sign(): new tags for the packs; the boot profile and the predicted
 * patching are dropped. */
enum bt_status tcdb_sign_packs(struct tcdb *db);

/* ---------------------------------------------------------------- tcdb_profile.c */

/* Load the boot profile pack, if any (BT_OK with nothing loaded if none). */
enum bt_status tcdb_profile_load(struct tcdb *db, size_t *n_entries);
/* Write what tcdb_profile_note() recorded as the boot profile pack (in
 * the learn transaction); nothing when nothing was recorded. */
enum bt_status tcdb_profile_write(struct tcdb *db);
void tcdb_profile_free(struct tcdb *db);

/* ---------------------------------------------------------------- tcdb_auth.c */

/* The user's key (created on first use) as a keyed HMAC context. */
enum bt_status tcdb_key_load(struct hmac_sha256_ctx *keyed);
/* db->nonce for a new database of this image and provenance. */
void tcdb_derive_nonce(struct tcdb *db, const struct tcdb_image *im,
		       const struct tcdb_provenance *p);
void tcdb_mac_identity(const struct tcdb *db, const struct tcdb_image *im,
		       const struct tcdb_provenance *p, uint8_t out[TCDB_MAC_LEN]);
void tcdb_mac_chunk(const struct tcdb *db, int64_t id, uint64_t raw_len, int64_t func0,
		    const uint8_t digest[SHA256_LEN], uint8_t out[TCDB_MAC_LEN]);
/* cols: guest_start (key), guest_len, n_insns, guest_hash, flags, refusal,
 * refusal_addr, function_id, origin, chunk, payload_off as stored. */
void tcdb_mac_row(const struct tcdb *db, const int64_t cols[TCDB_ROW_INTS], const void *code,
		  size_t code_len, const void *exits, size_t exits_len, const void *pcmap,
		  size_t pcmap_len, uint8_t out[TCDB_MAC_LEN]);
/* want equals the stored tag (which must be TCDB_MAC_LEN bytes). */
bool tcdb_mac_ok(const uint8_t want[TCDB_MAC_LEN], const void *stored, size_t stored_len);
void tcdb_mac_module(const struct tcdb *db, const struct tcdb_module *m,
		     const uint8_t digest[SHA256_LEN], uint8_t out[TCDB_MAC_LEN]);
void tcdb_mac_pack(const struct tcdb *db, int kind, int codec, uint64_t raw_len, uint64_t n_items,
		   const uint8_t digest[SHA256_LEN], uint8_t out[TCDB_MAC_LEN]);
/* tcdb_auth_fail for a pack. */
enum bt_status tcdb_auth_fail_pack(struct tcdb *db, int kind);
/* Log the failure (once per database), mark db untrusted; BT_ERR_AUTH. */
enum bt_status tcdb_auth_fail(struct tcdb *db, gva_t va, int64_t chunk);

/* ---------------------------------------------------------------- tcdb_block.c */

/* Bind *b to st (ST_ADD_BLOCK or ST_LEARN_BLOCK) and run it. */
enum bt_status tcdb_put_block(struct tcdb *db, sqlite3_stmt *st, const struct tcdb_block *b);
/* tcdb_sign(): a new tag for every block row (in its transaction). */
enum bt_status tcdb_sign_rows(struct tcdb *db);

/* tcdb_chunk_seal's first half, shared with the dictionary's sealing:
 * close c (its directory) and make room for the compressed frame. */
enum bt_status tcdb_chunk_seal_prepare(struct tcdb_chunk *c);
/* The calling thread's ZSTD_CCtx (created on first use, freed at thread
 * exit), or NULL when out of memory. */
void *tcdb_thread_cctx(void);

#endif
