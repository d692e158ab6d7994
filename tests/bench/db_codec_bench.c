/*
 * Codec measurement for the translation database's chunks (benchmark, not a
 * test; tests/bench/db-codec-bench.sh builds and runs it): reads every chunk
 * of a database, decompresses it (the stored zstd form), then compresses the
 * raw payloads with each candidate codec and reports the total stored size
 * and the single-thread decompression speed.  Reads the file with sqlite
 * directly: it measures bytes, it trusts nothing it reads (a chunk that does
 * not decompress is reported and skipped).
 *
 *   db_codec_bench DB [MAX_CHUNKS]
 */
#include <lz4.h>
#include <lz4hc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

struct chunk {
	unsigned char *raw;
	size_t len;
};

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum codec { C_ZLIB1, C_ZLIB6, C_LZ4, C_LZ4HC9, C_ZSTD1, C_ZSTD3, C_ZSTD9, C_ZSTD15, C_N };
static const char *const names[C_N] = {"zlib-1", "zlib-6", "lz4",    "lz4hc-9",
				       "zstd-1", "zstd-3", "zstd-9", "zstd-15"};

static size_t compress_one(enum codec c, const unsigned char *in, size_t n, unsigned char *out,
			   size_t cap)
{
	switch (c) {
	case C_ZLIB1:
	case C_ZLIB6: {
		uLongf zl = cap;
		if (compress2(out, &zl, in, n, c == C_ZLIB1 ? 1 : 6) != Z_OK)
			return 0;
		return zl;
	}
	case C_LZ4:
		return (size_t)LZ4_compress_default((const char *)in, (char *)out, (int)n,
						    (int)cap);
	case C_LZ4HC9:
		return (size_t)LZ4_compress_HC((const char *)in, (char *)out, (int)n, (int)cap, 9);
	default: {
		int lvl = c == C_ZSTD1 ? 1 : c == C_ZSTD3 ? 3 : c == C_ZSTD9 ? 9 : 15;
		size_t r = ZSTD_compress(out, cap, in, n, lvl);
		return ZSTD_isError(r) ? 0 : r;
	}
	}
}

static size_t decompress_one(enum codec c, const unsigned char *in, size_t n, unsigned char *out,
			     size_t raw)
{
	switch (c) {
	case C_ZLIB1:
	case C_ZLIB6: {
		uLongf ol = raw;
		return uncompress(out, &ol, in, n) == Z_OK ? ol : 0;
	}
	case C_LZ4:
	case C_LZ4HC9: {
		int r = LZ4_decompress_safe((const char *)in, (char *)out, (int)n, (int)raw);
		return r < 0 ? 0 : (size_t)r;
	}
	default: {
		size_t r = ZSTD_decompress(out, raw, in, n);
		return ZSTD_isError(r) ? 0 : r;
	}
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: db_codec_bench DB [MAX_CHUNKS]\n");
		return 2;
	}
	long max = argc > 2 ? atol(argv[2]) : 0;
	sqlite3 *h;
	sqlite3_stmt *st;
	if (sqlite3_open_v2(argv[1], &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "SELECT raw_len, data FROM chunks ORDER BY id", -1, &st, NULL) !=
		SQLITE_OK) {
		fprintf(stderr, "db_codec_bench: %s: %s\n", argv[1], sqlite3_errmsg(h));
		return 1;
	}
	/* schema 7: chunks may be sealed with the database's dictionary (pack
	 * kind 11, stored as is); the candidates below compress without one */
	void *dict = NULL;
	size_t dict_len = 0;
	sqlite3_stmt *ds;
	if (sqlite3_prepare_v2(h, "SELECT data FROM packs WHERE kind = 11", -1, &ds, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(ds) == SQLITE_ROW) {
			dict_len = (size_t)sqlite3_column_bytes(ds, 0);
			dict = malloc(dict_len);
			if (dict)
				memcpy(dict, sqlite3_column_blob(ds, 0), dict_len);
		}
		sqlite3_finalize(ds);
	}
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	struct chunk *ch = NULL;
	size_t n = 0, cap = 0, total = 0, maxraw = 0;
	while (sqlite3_step(st) == SQLITE_ROW && (max == 0 || (long)n < max)) {
		size_t raw = (size_t)sqlite3_column_int64(st, 0);
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			ch = realloc(ch, cap * sizeof(*ch));
		}
		unsigned char *buf = malloc(raw);
		size_t ol = buf ? ZSTD_decompress_usingDict(
				      dctx, buf, raw, sqlite3_column_blob(st, 1),
				      (size_t)sqlite3_column_bytes(st, 1), dict, dict_len)
				: 0;
		if (!buf || ZSTD_isError(ol) || ol != raw) {
			fprintf(stderr, "db_codec_bench: chunk %zu does not decompress: skipped\n",
				n);
			free(buf);
			continue;
		}
		ch[n].raw = buf;
		ch[n].len = raw;
		total += raw;
		if (raw > maxraw)
			maxraw = raw;
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	ZSTD_freeDCtx(dctx);
	free(dict);
	size_t ocap = maxraw + maxraw / 8 + 1024;
	unsigned char **z = malloc(n * sizeof(*z));
	size_t *zl = malloc(n * sizeof(*zl));
	unsigned char *out = malloc(maxraw);
	printf("%zu chunks, %.1f MB raw\n", n, (double)total / 1e6);
	printf("%-8s %10s %7s %12s %12s\n", "codec", "stored MB", "ratio", "comp MB/s",
	       "decomp MB/s");
	for (int c = 0; c < C_N; c++) {
		size_t zt = 0;
		double t0 = now();
		for (size_t i = 0; i < n; i++) {
			z[i] = malloc(ocap);
			zl[i] = compress_one((enum codec)c, ch[i].raw, ch[i].len, z[i], ocap);
			zt += zl[i];
		}
		double tc = now() - t0;
		t0 = now();
		for (size_t i = 0; i < n; i++)
			if (decompress_one((enum codec)c, z[i], zl[i], out, ch[i].len) != ch[i].len)
				fprintf(stderr, "%s: chunk %zu does not round-trip\n", names[c], i);
		double td = now() - t0;
		printf("%-8s %10.1f %7.2f %12.0f %12.0f\n", names[c], (double)zt / 1e6,
		       (double)total / (double)zt, (double)total / 1e6 / tc,
		       (double)total / 1e6 / td);
		for (size_t i = 0; i < n; i++)
			free(z[i]);
	}
	return 0;
}
