/*
 * Packs of the translation-cache database (see tcdb.h, docs/db.md
 * "Packs"): what a boot needs, stored as one blob each so that it arrives
 * with one sequential read, one tag check and one decompression instead
 * of a B-tree probe, a row tag and a chunk per block.  This file owns the
 * `packs` table (writing, reading, the codecs, re-signing) and the
 * start-index pack; the boot profile pack is db/tcdb_profile.c.
 *
 * Invariants
 *  1. One pack per kind (the primary key).  A pack's tag (db/tcdb_auth.c)
 *     covers its kind, codec, raw length, item count and the SHA-256 of
 *     its stored bytes: a pack is decompressed, and anything of it used,
 *     only after the tag matched (unless db was opened TCDB_UNVERIFIED);
 *     a failure marks db untrusted, as a row or chunk does.
 *  2. Decompression must give exactly raw_len bytes (at most PACK_MAX_RAW);
 *     anything else is BT_ERR_FORMAT.
 *  3. The start index holds exactly the translated starts of `blocks`: it
 *     is written from the table inside the transaction that changes the
 *     set of starts (a build's, tcdb_commit; a learning one's,
 *     tcdb_learn_commit), so a miss it answers is a true miss.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <sys/mman.h>

#define PACK_MAX_RAW (1u << 30)
/* guest address span a start-index bitmap covers: 256 MiB (a 32 MiB bitmap) */
#define INDEX_MAX_SPAN	(1ull << 28)
#define PACK_ZSTD_LEVEL 3
#define PACK_LZ4_LEVEL	9 /* LZ4HC: slower to write, as fast to read (docs/db.md "Codec") */

/* ---------------------------------------------------------------- codecs */

static enum bt_status pack_compress(enum tcdb_codec codec, const uint8_t *raw, size_t n,
				    uint8_t **out, size_t *out_len)
{
	size_t cap = codec == TCDB_CODEC_ZSTD  ? ZSTD_compressBound(n)
		     : codec == TCDB_CODEC_LZ4 ? LZ4F_compressFrameBound(n, NULL) + 64
					       : n;
	uint8_t *z = malloc(cap ? cap : 1);
	if (!z)
		return BT_ERR_NOMEM;
	size_t len;
	if (codec == TCDB_CODEC_ZSTD) {
		len = ZSTD_compress(z, cap, raw, n, PACK_ZSTD_LEVEL);
		if (ZSTD_isError(len))
			len = 0;
	} else if (codec == TCDB_CODEC_LZ4) {
		LZ4F_preferences_t prefs;
		memset(&prefs, 0, sizeof(prefs));
		prefs.compressionLevel = PACK_LZ4_LEVEL;
		prefs.frameInfo.blockSizeID = LZ4F_max4MB;
		cap = LZ4F_compressFrameBound(n, &prefs);
		uint8_t *nz = realloc(z, cap);
		if (!nz) {
			free(z);
			return BT_ERR_NOMEM;
		}
		z = nz;
		len = LZ4F_compressFrame(z, cap, raw, n, &prefs);
		if (LZ4F_isError(len))
			len = 0;
	} else {
		memcpy(z, raw, n);
		len = n;
	}
	if (len == 0 && n != 0) {
		free(z);
		return BT_ERR_INTERNAL;
	}
	*out = z;
	*out_len = len;
	return BT_OK;
}

/* Exactly raw_len bytes out of z, or BT_ERR_FORMAT. */
static enum bt_status pack_decompress(struct tcdb *db, enum tcdb_codec codec, const void *z,
				      size_t z_len, uint8_t *out, size_t raw_len, int kind)
{
	if (codec == TCDB_CODEC_ZSTD)
		return tcdb_unzstd(db, out, raw_len, z, z_len, -(int64_t)kind);
	bool ok = false;
	if (codec == TCDB_CODEC_NONE) {
		ok = z_len == raw_len;
		if (ok && raw_len)
			memcpy(out, z, raw_len);
	} else if (codec == TCDB_CODEC_LZ4) {
		LZ4F_dctx *dc;
		if (LZ4F_isError(LZ4F_createDecompressionContext(&dc, LZ4F_VERSION)))
			return BT_ERR_NOMEM;
		size_t in_done = 0, out_done = 0, r = 1;
		while (r != 0 && in_done < z_len) {
			size_t in = z_len - in_done, o = raw_len - out_done;
			r = LZ4F_decompress(dc, out + out_done, &o, (const uint8_t *)z + in_done,
					    &in, NULL);
			if (LZ4F_isError(r) || (in == 0 && o == 0))
				break;
			in_done += in;
			out_done += o;
		}
		ok = r == 0 && in_done == z_len && out_done == raw_len;
		LZ4F_freeDecompressionContext(dc);
	}
	if (!ok) {
		bt_err(LOG_DB, "%s: corrupt pack %d (codec %d): rebuild it with `pretrans build`",
		       db->path, kind, (int)codec);
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* ---------------------------------------------------------------- packs */

/*
 * A pack's decompressed bytes: 2 MiB-aligned anonymous memory the kernel
 * may back with transparent huge pages (MADV_HUGEPAGE), filled up front
 * (MADV_POPULATE_WRITE): a 35 MB boot profile then costs ~18 faults of a
 * huge page instead of ~8,500 faults of 4 KiB as the decompressor first
 * writes it (measured in docs/db.md "Packs": page faults were most of the
 * profile's load time on a virtualised host).
 */
#define HUGE_SZ (2u << 20)

static size_t huge_round(size_t n)
{
	return ((n ? n : 1) + HUGE_SZ - 1) & ~(size_t)(HUGE_SZ - 1);
}

uint8_t *tcdb_pack_alloc(size_t n)
{
	size_t len = huge_round(n);
	uint8_t *base = mmap(NULL, len + HUGE_SZ, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	uint8_t *p = (uint8_t *)(((uintptr_t)base + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1));
	if (p > base)
		munmap(base, (size_t)(p - base));
	if (base + len + HUGE_SZ > p + len)
		munmap(p + len, (size_t)(base + len + HUGE_SZ - (p + len)));
	madvise(p, len, MADV_HUGEPAGE); /* a hint: without THP, 4 KiB pages */
#ifdef MADV_POPULATE_WRITE
	madvise(p, len, MADV_POPULATE_WRITE); /* Linux 5.14+; else faults on first write */
#endif
	return p;
}

void tcdb_pack_free(uint8_t *p, size_t n)
{
	if (p)
		munmap(p, huge_round(n));
}

enum bt_status tcdb_pack_put(struct tcdb *db, enum tcdb_pack_kind kind, enum tcdb_codec codec,
			     const uint8_t *raw, size_t raw_len, uint64_t n_items)
{
	if (raw_len > PACK_MAX_RAW)
		return BT_ERR_RANGE;
	uint8_t *z, digest[SHA256_LEN], mac[TCDB_MAC_LEN];
	size_t z_len;
	BT_TRY(pack_compress(codec, raw, raw_len, &z, &z_len));
	sha256_buf(z, z_len, digest);
	tcdb_mac_pack(db, kind, codec, raw_len, n_items, digest, mac);
	sqlite3_stmt *st;
	enum bt_status s = BT_OK;
	if (sqlite3_prepare_v2(db->h,
			       "INSERT OR REPLACE INTO packs(kind, codec, raw_len, n_items, data, "
			       "mac) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
			       -1, &st, NULL) != SQLITE_OK) {
		free(z);
		return tcdb_db_err(db, "writing a pack");
	}
	sqlite3_bind_int64(st, 1, kind);
	sqlite3_bind_int64(st, 2, codec);
	sqlite3_bind_int64(st, 3, (int64_t)raw_len);
	sqlite3_bind_int64(st, 4, (int64_t)n_items);
	sqlite3_bind_blob64(st, 5, z, z_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, mac, TCDB_MAC_LEN, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		s = tcdb_db_err(db, "writing a pack");
	sqlite3_finalize(st);
	free(z);
	return s;
}

/* Where a pack's bytes go: tcdb_pack_alloc's populated, 2 MiB-aligned
 * memory (a boot's large packs), or the heap (heap: a pack of a few MB read
 * once and handed on, docs/db.md "Packs": populating 2 MiB-rounded fresh
 * memory cost a warm boot's user templates 5-20 ms on a virtualised host,
 * more than all the rest of serving them). */
static uint8_t *buf_alloc(bool heap, size_t n)
{
	return heap ? malloc(n ? n : 1) : tcdb_pack_alloc(n);
}

static void buf_free(bool heap, uint8_t *p, size_t n)
{
	if (heap)
		free(p);
	else
		tcdb_pack_free(p, n);
}

/* The stored bytes of pack kind (z_len of them) into memory of buf_alloc:
 * sqlite3_blob_read copies the overflow pages straight in, where
 * sqlite3_column_blob would assemble them in a malloc'd buffer first. */
static enum bt_status read_stored(struct tcdb *db, enum tcdb_pack_kind kind, size_t z_len,
				  bool heap, uint8_t **z)
{
	sqlite3_blob *bl;
	if (z_len > PACK_MAX_RAW)
		return BT_ERR_FORMAT;
	if (sqlite3_blob_open(db->h, "main", "packs", "data", kind, 0, &bl) != SQLITE_OK) {
		/* e.g. the column holds text: damaged, never ours */
		tcdb_db_err(db, "reading a pack");
		return BT_ERR_FORMAT;
	}
	*z = buf_alloc(heap, z_len);
	enum bt_status s = BT_OK;
	if (!*z)
		s = BT_ERR_NOMEM;
	else if ((size_t)sqlite3_blob_bytes(bl) != z_len ||
		 sqlite3_blob_read(bl, *z, (int)z_len, 0) != SQLITE_OK)
		s = tcdb_db_err(db, "reading a pack");
	sqlite3_blob_close(bl);
	if (s != BT_OK) {
		buf_free(heap, *z, z_len);
		*z = NULL;
	}
	return s;
}

/* A pack's row and stored bytes (in buf_alloc(heap) memory), its tag
 * checked (invariant 1). */
struct stored {
	enum tcdb_codec codec;
	size_t raw_len, z_len;
	uint64_t n_items;
	uint8_t *z;
	bool heap;
};

static enum bt_status pack_open(struct tcdb *db, enum tcdb_pack_kind kind, bool heap,
				struct stored *o)
{
	if (db->untrusted)
		return BT_ERR_AUTH;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT codec, raw_len, n_items, length(data), mac FROM packs "
			       "WHERE kind = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "reading a pack");
	sqlite3_bind_int64(st, 1, kind);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? BT_ERR_NOTFOUND : tcdb_db_err(db, "reading a pack");
	}
	int64_t codec = sqlite3_column_int64(st, 0), rl = sqlite3_column_int64(st, 1);
	int64_t n = sqlite3_column_int64(st, 2), zl = sqlite3_column_int64(st, 3);
	uint8_t mac[TCDB_MAC_LEN];
	bool mac_ok = sqlite3_column_bytes(st, 4) == TCDB_MAC_LEN;
	if (mac_ok)
		memcpy(mac, sqlite3_column_blob(st, 4), TCDB_MAC_LEN);
	sqlite3_finalize(st);
	if (codec < 0 || codec >= TCDB_NCODECS || rl < 0 || rl > PACK_MAX_RAW || n < 0 || zl < 0 ||
	    zl > PACK_MAX_RAW) {
		bt_err(LOG_DB, "%s: corrupt pack %d: rebuild it with `pretrans build`", db->path,
		       (int)kind);
		return BT_ERR_FORMAT;
	}
	uint8_t *z = NULL;
	BT_TRY(read_stored(db, kind, (size_t)zl, heap, &z));
	if (!db->unverified) {
		uint8_t digest[SHA256_LEN], want[TCDB_MAC_LEN];
		sha256_buf(z, (size_t)zl, digest);
		tcdb_mac_pack(db, kind, (enum tcdb_codec)codec, (uint64_t)rl, (uint64_t)n, digest,
			      want);
		if (!mac_ok || !tcdb_mac_ok(want, mac, TCDB_MAC_LEN)) {
			buf_free(heap, z, (size_t)zl);
			return tcdb_auth_fail_pack(db, kind);
		}
	}
	*o = (struct stored){(enum tcdb_codec)codec, (size_t)rl, (size_t)zl, (uint64_t)n, z, heap};
	return BT_OK;
}

static enum bt_status pack_get(struct tcdb *db, enum tcdb_pack_kind kind, bool heap, uint8_t **raw,
			       size_t *raw_len, uint64_t *n_items)
{
	struct stored st;
	BT_TRY(pack_open(db, kind, heap, &st));
	enum bt_status s = BT_ERR_NOMEM;
	uint8_t *out = buf_alloc(heap, st.raw_len);
	if (out)
		s = pack_decompress(db, st.codec, st.z, st.z_len, out, st.raw_len, (int)kind);
	if (s == BT_OK) {
		*raw = out;
		*raw_len = st.raw_len;
		*n_items = st.n_items;
	} else {
		buf_free(heap, out, st.raw_len);
	}
	buf_free(heap, st.z, st.z_len);
	return s;
}

enum bt_status tcdb_pack_get(struct tcdb *db, enum tcdb_pack_kind kind, uint8_t **raw,
			     size_t *raw_len, uint64_t *n_items)
{
	return pack_get(db, kind, false, raw, raw_len, n_items);
}

enum bt_status tcdb_pack_get_heap(struct tcdb *db, enum tcdb_pack_kind kind, uint8_t **raw,
				  size_t *raw_len, uint64_t *n_items)
{
	return pack_get(db, kind, true, raw, raw_len, n_items);
}

/* The next n decompressed bytes of st into dst (codec LZ4: dc's frame;
 * none: a copy), *at counting the stored bytes used, *hint LZ4F's last
 * answer (0: the frame ended). */
static bool split_read(LZ4F_dctx *dc, const struct stored *st, size_t *at, size_t *hint,
		       uint8_t *dst, size_t n)
{
	if (st->codec == TCDB_CODEC_NONE) {
		if (st->z_len - *at < n)
			return false;
		memcpy(dst, st->z + *at, n);
		*at += n;
		return true;
	}
	size_t done = 0;
	while (done < n) {
		size_t in = st->z_len - *at, o = n - done;
		*hint = LZ4F_decompress(dc, dst + done, &o, st->z + *at, &in, NULL);
		if (LZ4F_isError(*hint) || (in == 0 && o == 0))
			return false;
		*at += in;
		done += o;
	}
	return true;
}

/* The frame ends exactly after the bytes read (no more output). */
static bool split_end(LZ4F_dctx *dc, const struct stored *st, size_t *at, size_t hint)
{
	if (st->codec == TCDB_CODEC_NONE)
		return *at == st->z_len;
	size_t r = hint;
	uint8_t spare;
	while (*at < st->z_len) {
		size_t in = st->z_len - *at, o = sizeof(spare);
		r = LZ4F_decompress(dc, &spare, &o, st->z + *at, &in, NULL);
		if (LZ4F_isError(r) || in == 0 || o != 0)
			return false; /* more bytes than raw_len */
		*at += in;
	}
	return r == 0;
}

enum bt_status tcdb_pack_get_split(struct tcdb *db, enum tcdb_pack_kind kind,
				   struct tcdb_split *out)
{
	struct stored st;
	BT_TRY(pack_open(db, kind, false, &st));
	memset(out, 0, sizeof(*out));
	enum bt_status s = BT_ERR_FORMAT;
	LZ4F_dctx *dc = NULL;
	size_t at = 0, hint = 1;
	uint8_t h[8];
	if (st.codec != TCDB_CODEC_NONE && st.codec != TCDB_CODEC_LZ4)
		goto out;
	if (st.codec == TCDB_CODEC_LZ4 &&
	    LZ4F_isError(LZ4F_createDecompressionContext(&dc, LZ4F_VERSION))) {
		s = BT_ERR_NOMEM;
		goto out;
	}
	if (st.raw_len < sizeof(h) || !split_read(dc, &st, &at, &hint, h, sizeof(h)))
		goto out;
	uint64_t head = bt_get64(h);
	if (head < sizeof(h) || head > st.raw_len)
		goto out;
	out->head_len = (size_t)head;
	out->tail_len = st.raw_len - out->head_len;
	out->n_items = st.n_items;
	if (!(out->head = tcdb_pack_alloc(out->head_len))) {
		s = BT_ERR_NOMEM;
		goto out;
	}
	memcpy(out->head, h, sizeof(h));
	if (out->tail_len && db->code_sink)
		out->tail = db->code_sink(db->code_sink_opaque, out->tail_len);
	if (!out->tail && out->tail_len) {
		out->tail_owned = true;
		if (!(out->tail = tcdb_pack_alloc(out->tail_len))) {
			s = BT_ERR_NOMEM;
			goto out;
		}
	}
	if (split_read(dc, &st, &at, &hint, out->head + sizeof(h), out->head_len - sizeof(h)) &&
	    split_read(dc, &st, &at, &hint, out->tail, out->tail_len) &&
	    split_end(dc, &st, &at, hint))
		s = BT_OK;
out:
	if (dc)
		LZ4F_freeDecompressionContext(dc);
	tcdb_pack_free(st.z, st.z_len);
	if (s == BT_ERR_FORMAT)
		bt_err(LOG_DB, "%s: corrupt pack %d (codec %d): rebuild it with `pretrans build`",
		       db->path, (int)kind, (int)st.codec);
	if (s != BT_OK)
		tcdb_pack_split_free(out);
	return s;
}

void tcdb_pack_split_free(struct tcdb_split *sp)
{
	tcdb_pack_free(sp->head, sp->head_len);
	if (sp->tail_owned)
		tcdb_pack_free(sp->tail, sp->tail_len);
	memset(sp, 0, sizeof(*sp));
}

bool tcdb_pack_exists(struct tcdb *db, enum tcdb_pack_kind kind)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "SELECT 1 FROM packs WHERE kind = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return false;
	sqlite3_bind_int64(st, 1, kind);
	bool found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

enum bt_status tcdb_sign_packs(struct tcdb *db)
{
	/* A boot profile holds what the guest ran, patched code included,
	 * which no image can check: a database signed by another key's user
	 * loses it (the next --learn boot writes a new one); so does the
	 * predicted patching (kind 3; `pretrans build` writes a new one), the
	 * module index (kind 4) goes with the module rows tcdb_sign drops, and
	 * the block templates (kinds 6, 7) with them (only --reuse reads them). */
	BT_TRY(tcdb_exec(db, "DELETE FROM packs WHERE kind NOT IN (1, 10, 11)"));
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->h, "SELECT kind, codec, raw_len, n_items, data FROM packs", -1,
			       &st, NULL) != SQLITE_OK)
		return tcdb_db_err(db, "signing packs");
	int rc;
	enum bt_status s = BT_OK;
	struct {
		int64_t kind;
		uint8_t mac[TCDB_MAC_LEN];
	} m[4];
	int nm = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && nm < 4) {
		uint8_t digest[SHA256_LEN];
		sha256_buf(sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4), digest);
		m[nm].kind = sqlite3_column_int64(st, 0);
		tcdb_mac_pack(db, (enum tcdb_pack_kind)m[nm].kind,
			      (enum tcdb_codec)sqlite3_column_int64(st, 1),
			      (uint64_t)sqlite3_column_int64(st, 2),
			      (uint64_t)sqlite3_column_int64(st, 3), digest, m[nm].mac);
		nm++;
	}
	sqlite3_finalize(st);
	for (int i = 0; i < nm && s == BT_OK; i++) {
		if (sqlite3_prepare_v2(db->h, "UPDATE packs SET mac = ?2 WHERE kind = ?1", -1, &st,
				       NULL) != SQLITE_OK)
			return tcdb_db_err(db, "signing packs");
		sqlite3_bind_int64(st, 1, m[i].kind);
		sqlite3_bind_blob(st, 2, m[i].mac, TCDB_MAC_LEN, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			s = tcdb_db_err(db, "signing a pack");
		sqlite3_finalize(st);
	}
	return s;
}

/* ---------------------------------------------------------------- start index */

/* LSD radix sort of n addresses (tmp: n more).  Not qsort(3): glibc's
 * calls sysinfo(2) for large arrays, which btvm's sandbox refuses, and this
 * runs in btvm at the end of a --learn boot. */
static void sort_u64(uint64_t *a, uint64_t *tmp, size_t n)
{
	for (unsigned sh = 0; sh < 64; sh += 8) {
		size_t cnt[257] = {0};
		for (size_t i = 0; i < n; i++)
			cnt[((a[i] >> sh) & 0xff) + 1]++;
		bool same = false; /* this byte is the same everywhere: nothing to do */
		for (int b = 0; b < 256; b++) {
			same |= cnt[b + 1] == n;
			cnt[b + 1] += cnt[b];
		}
		if (same)
			continue;
		for (size_t i = 0; i < n; i++)
			tmp[cnt[(a[i] >> sh) & 0xff]++] = a[i];
		memcpy(a, tmp, n * sizeof(*a));
	}
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/*
 * The translated starts of `blocks` as one blob: sorted guest addresses,
 * each as the LEB128 varint of its distance from the previous one (the
 * first from 0).  ~1 byte a start; zstd then halves it.
 */
enum bt_status tcdb_pack_write_index(struct tcdb *db)
{
	int64_t n;
	bool found;
	BT_TRY(tcdb_query_int(db, "SELECT count(*) FROM blocks WHERE refusal = 0", &n, &found));
	uint64_t *sv; /* the static starts (the chunk directories') */
	size_t sn;
	BT_TRY(tcdb_dir_static_starts(db, &sv, &sn));
	uint64_t *va = malloc(((size_t)n + sn + 1) * sizeof(*va));
	uint8_t *raw = malloc(((size_t)n + sn + 1) * 10);
	if (!va || !raw) {
		free(sv);
		free(va);
		free(raw);
		return BT_ERR_NOMEM;
	}
	memcpy(va, sv, sn * sizeof(*va));
	free(sv);
	n += (int64_t)sn;
	sqlite3_stmt *st;
	enum bt_status s = BT_OK;
	size_t k = sn;
	if (sqlite3_prepare_v2(db->h, "SELECT guest_start FROM blocks WHERE refusal = 0", -1, &st,
			       NULL) != SQLITE_OK) {
		s = tcdb_db_err(db, "writing the start index");
		goto out;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)n)
		va[k++] = va_of(sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		s = tcdb_db_err(db, "writing the start index");
		goto out;
	}
	/* raw (10 bytes a start) is free until the encoding below */
	sort_u64(va, (uint64_t *)raw, k);
	size_t len = 0, m = 0;
	uint64_t prev = 0;
	for (size_t i = 0; i < k; i++) {
		if (m && va[i] == prev)
			continue; /* a learned row at a static start */
		len += put_varint(raw + len, va[i] - prev);
		prev = va[i];
		m++;
	}
	k = m;
	s = tcdb_pack_put(db, TCDB_PACK_INDEX, TCDB_CODEC_ZSTD, raw, len, k);
out:
	free(va);
	free(raw);
	return s;
}

/* Decode the start index into a bitmap over [first, last] (when that span
 * is at most INDEX_MAX_SPAN; else BT_ERR_RANGE and the caller falls back
 * to the row scan). */
enum bt_status tcdb_pack_load_index(struct tcdb *db, size_t *n_starts)
{
	uint8_t *raw;
	size_t len;
	uint64_t n;
	BT_TRY(tcdb_pack_get(db, TCDB_PACK_INDEX, &raw, &len, &n));
	enum bt_status s = BT_OK;
	/* pass 1: the span; pass 2: the bits */
	uint64_t va = 0, first = 0, count = 0;
	uint64_t *bits = NULL;
	for (int pass = 0; pass < 2 && s == BT_OK; pass++) {
		va = 0;
		count = 0;
		for (size_t i = 0; i < len;) {
			uint64_t d = 0;
			unsigned sh = 0;
			while (i < len && sh < 64) {
				uint8_t c = raw[i++];
				d |= (uint64_t)(c & 0x7f) << sh;
				sh += 7;
				if (!(c & 0x80))
					break;
			}
			if ((count > 0 && d == 0) || va + d < va) {
				s = BT_ERR_FORMAT;
				break;
			}
			va += d;
			if (count == 0)
				first = va;
			if (pass == 1)
				bits[(va - first) >> 6] |= 1ull << ((va - first) & 63);
			count++;
		}
		if (s != BT_OK)
			break;
		if (count != n) {
			s = BT_ERR_FORMAT;
			break;
		}
		if (pass == 0) {
			if (count == 0)
				break;
			if (va - first >= INDEX_MAX_SPAN) {
				s = BT_ERR_RANGE;
				break;
			}
			bits = calloc(((va - first) >> 6) + 1, sizeof(*bits));
			if (!bits)
				s = BT_ERR_NOMEM;
		}
	}
	tcdb_pack_free(raw, len);
	if (s == BT_ERR_FORMAT)
		bt_err(LOG_DB, "%s: corrupt start index: rebuild it with `pretrans build`",
		       db->path);
	if (s != BT_OK) {
		free(bits);
		return s;
	}
	free(db->bits);
	db->bits = bits;
	db->bits_first = first;
	db->bits_span = count ? va - first + 1 : 0;
	*n_starts = (size_t)count;
	return BT_OK;
}
