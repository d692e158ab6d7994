/*
 * `pretrans stats` and `verify`: read-only views of a translation database,
 * the second against the image it was built from (`show` is cmd_show.c).
 * Owns nothing beyond one command's run; every database value is checked
 * by tcdb.
 */
#include "pretrans/cmds.h"

#include "pretrans/base/log.h"
#include "pretrans/base/sha256.h"
#include "pretrans/base/text.h"
#include "pretrans/discover.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xcheck/xcheck.h"
#include "pretrans/xlat/xlat.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The translator whose databases these commands read. */
static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

/* ------------------------------------------------------------------ stats */

#define MAX_SECS 32

struct sec_cov {
	char name[64];
	uint64_t funcs, bytes, covered, refused;
};

struct stats {
	struct sec_cov sec[MAX_SECS];
	int nsec;
	uint64_t n_funcs, n_seeds, n_sweeps;
	uint64_t n_blocks, n_refused, n_learned, guest_bytes, host_bytes, pcmap_bytes, insns;
	uint64_t exits[XLAT_NEXIT_KINDS];
	uint64_t refused_bytes[XLAT_NREFUSALS], refused_regions[XLAT_NREFUSALS];
	uint64_t two_pages;
};

static int stats_func(void *o, const struct tcdb_function *f)
{
	struct stats *s = o;
	if (f->kind == DISCOVER_SEED) {
		s->n_seeds++;
		return 0;
	}
	if (f->kind == DISCOVER_SWEEP) {
		s->n_sweeps++;
		return 0;
	}
	s->n_funcs++;
	int i;
	for (i = 0; i < s->nsec; i++)
		if (!strcmp(s->sec[i].name, f->section))
			break;
	if (i == s->nsec) {
		if (s->nsec == MAX_SECS)
			i = MAX_SECS - 1; /* lump the rest together */
		else
			snprintf(s->sec[s->nsec++].name, sizeof(s->sec[0].name), "%s", f->section);
	}
	s->sec[i].funcs++;
	s->sec[i].bytes += f->size;
	s->sec[i].covered += f->covered_bytes;
	s->sec[i].refused += f->refused_bytes;
	return 0;
}

static int stats_block(void *o, const struct tcdb_block *row)
{
	const struct bt_block *b = &row->blk;
	struct stats *s = o;
	if (b->refusal) {
		s->n_refused++;
		s->refused_bytes[b->refusal] += b->guest_len;
		s->refused_regions[b->refusal]++;
		return 0;
	}
	s->n_blocks++;
	s->n_learned += row->origin == TCDB_ORIGIN_LEARNED;
	s->guest_bytes += b->guest_len;
	s->host_bytes += b->code_len;
	s->pcmap_bytes += b->pcmap_len;
	s->insns += b->n_insns;
	s->two_pages += (b->flags & XLAT_BLOCK_TWO_PAGES) != 0;
	for (uint32_t i = 0; i < b->n_exits; i++)
		s->exits[b->exits[i].kind]++;
	return 0;
}

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 100.0;
}

int cmd_stats(int argc, char **argv)
{
	bool json = false;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-')
			return bt_cli_usage("stats: option '%s' is unknown", argv[i]);
		else if (path)
			return bt_cli_usage("stats: unexpected argument '%s' after DB", argv[i]);
		else
			path = argv[i];
	}
	if (!path) {
		return bt_cli_usage("usage: pretrans stats DB [--json]");
	}
	struct tcdb *db;
	enum bt_status st = tcdb_open(path, TCDB_RDONLY, &want, NULL, &db);
	if (st != BT_OK)
		return pretrans_exit_code(st);
	struct stats *s = calloc(1, sizeof(*s));
	struct tcdb_image im;
	struct tcdb_provenance pv;
	if (!s)
		st = BT_ERR_NOMEM;
	if (st == BT_OK)
		st = tcdb_get_image(db, &im);
	if (st == BT_OK)
		st = tcdb_get_provenance(db, &pv);
	if (st == BT_OK)
		st = tcdb_foreach_function(db, stats_func, s);
	if (st == BT_OK)
		st = tcdb_foreach_block(db, stats_block, s);
	struct tcdb_run_stats rs;
	uint64_t runs = 0;
	char counters[256] = "";
	if (st == BT_OK)
		st = tcdb_last_run(db, &rs, &runs);
	if (st == BT_OK && rs.counters)
		snprintf(counters, sizeof(counters), "%s", rs.counters);
	tcdb_close(db);
	if (st != BT_OK) {
		free(s);
		return pretrans_exit_code(st);
	}
	uint64_t fb = 0, fc = 0, fr = 0;
	for (int i = 0; i < s->nsec; i++) {
		fb += s->sec[i].bytes;
		fc += s->sec[i].covered;
		fr += s->sec[i].refused;
	}
	if (json) {
		printf("{\n  \"schema\": \"%s\",\n  \"image\": {\"path\": ", PRETRANS_STATS_SCHEMA);
		bt_json_str(stdout, im.path);
		printf(", \"sha256\": \"%s\", \"build_id\": \"%s\", \"entry\": %llu},\n", im.sha256,
		       im.build_id, (unsigned long long)im.entry);
		printf("  \"provenance\": {\"xlat_version\": %u, \"vcpu_abi_version\": %u, "
		       "\"options_hash\": \"%016llx\", \"tool\": \"%s\", \"created\": %lld},\n",
		       pv.xlat_version, pv.abi_version, (unsigned long long)pv.options_hash,
		       pv.tool_version, (long long)pv.created);
		printf("  \"functions\": %llu, \"seed_regions\": %llu, \"swept_sections\": %llu,\n",
		       (unsigned long long)s->n_funcs, (unsigned long long)s->n_seeds,
		       (unsigned long long)s->n_sweeps);
		printf("  \"function_bytes\": %llu, \"translated_bytes\": %llu, \"refused_bytes\": "
		       "%llu, \"coverage_percent\": %.4f,\n",
		       (unsigned long long)fb, (unsigned long long)fc, (unsigned long long)fr,
		       pct(fc, fb));
		printf("  \"sections\": [");
		for (int i = 0; i < s->nsec; i++) {
			printf("%s\n    {\"name\": ", i ? "," : "");
			bt_json_str(stdout, s->sec[i].name);
			printf(
			    ", \"functions\": %llu, \"bytes\": %llu, "
			    "\"translated\": %llu, \"refused\": %llu, \"coverage_percent\": %.4f}",
			    (unsigned long long)s->sec[i].funcs,
			    (unsigned long long)s->sec[i].bytes,
			    (unsigned long long)s->sec[i].covered,
			    (unsigned long long)s->sec[i].refused,
			    pct(s->sec[i].covered, s->sec[i].bytes));
		}
		printf("\n  ],\n  \"blocks\": %llu, \"learned_blocks\": %llu, \"refused_regions\": "
		       "%llu, \"guest_insns\": %llu, \"guest_bytes\": %llu, \"host_bytes\": %llu, "
		       "\"pcmap_bytes\": %llu, \"two_page_blocks\": %llu,\n",
		       (unsigned long long)s->n_blocks, (unsigned long long)s->n_learned,
		       (unsigned long long)s->n_refused, (unsigned long long)s->insns,
		       (unsigned long long)s->guest_bytes, (unsigned long long)s->host_bytes,
		       (unsigned long long)s->pcmap_bytes, (unsigned long long)s->two_pages);
		printf("  \"exits\": {");
		for (int k = 1, first = 1; k < XLAT_NEXIT_KINDS; k++, first = 0)
			printf("%s\"%s\": %llu", first ? "" : ", ",
			       xlat_exit_kind_str((enum xlat_exit_kind)k),
			       (unsigned long long)s->exits[k]);
		printf("},\n  \"runs\": %llu", (unsigned long long)runs);
		if (runs)
			printf(", \"last_run\": {\"boot_id\": \"%s\", \"seconds\": %lld, "
			       "\"blocks_used\": %llu, \"blocks_stale\": %llu, \"misses\": %llu, "
			       "\"blocks_learned\": %llu}",
			       rs.boot_id, (long long)(rs.ended - rs.started),
			       (unsigned long long)rs.blocks_used,
			       (unsigned long long)rs.blocks_stale, (unsigned long long)rs.misses,
			       (unsigned long long)rs.blocks_learned);
		printf(",\n  \"refusals\": {");
		for (int r = 1, first = 1; r < XLAT_NREFUSALS; r++, first = 0)
			printf("%s\"%s\": {\"regions\": %llu, \"bytes\": %llu}", first ? "" : ", ",
			       xlat_refusal_str((enum xlat_refusal)r),
			       (unsigned long long)s->refused_regions[r],
			       (unsigned long long)s->refused_bytes[r]);
		printf("}\n}\n");
	} else {
		printf("image       %s\n  sha256    %s\n  build-id  %s\n  entry     %#llx\n",
		       im.path, im.sha256, im.build_id[0] ? im.build_id : "(none)",
		       (unsigned long long)im.entry);
		printf("translator  v%u, vCPU ABI v%u, options %016llx, %s\n", pv.xlat_version,
		       pv.abi_version, (unsigned long long)pv.options_hash, pv.tool_version);
		printf("functions   %s sized symbols, %s seed regions, %s swept sections\n",
		       BT_N(s->n_funcs), BT_N(s->n_seeds), BT_N(s->n_sweeps));
		printf("coverage of function bytes:\n");
		printf("  %-24s %9s %12s %12s %10s %8s\n", "section", "functions", "bytes",
		       "translated", "refused", "cover");
		for (int i = 0; i < s->nsec; i++)
			printf("  %-24s %9s %12s %12s %10s %7.3f%%\n", s->sec[i].name,
			       BT_N(s->sec[i].funcs), BT_N(s->sec[i].bytes),
			       BT_N(s->sec[i].covered), BT_N(s->sec[i].refused),
			       pct(s->sec[i].covered, s->sec[i].bytes));
		printf("  %-24s %9s %12s %12s %10s %7.3f%%\n", "total", BT_N(s->n_funcs), BT_N(fb),
		       BT_N(fc), BT_N(fr), pct(fc, fb));
		printf("blocks      %s translated (%s learned), %s refused regions\n",
		       BT_N(s->n_blocks), BT_N(s->n_learned), BT_N(s->n_refused));
		printf("  guest     %s instructions, %s bytes\n", BT_N(s->insns),
		       BT_N(s->guest_bytes));
		printf("  host      %s bytes (%.2fx guest), pc maps %s bytes, %s blocks span "
		       "two pages\n",
		       BT_N(s->host_bytes),
		       s->guest_bytes ? (double)s->host_bytes / (double)s->guest_bytes : 0.0,
		       BT_N(s->pcmap_bytes), BT_N(s->two_pages));
		printf("exits by kind:\n");
		for (int k = 1; k < XLAT_NEXIT_KINDS; k++)
			printf("  %-12s %s\n", xlat_exit_kind_str((enum xlat_exit_kind)k),
			       BT_N(s->exits[k]));
		if (runs)
			printf("runs        %s recorded; last (%s, %lld s): %s blocks used, %s "
			       "stale, %s misses, %s learned%s%s\n",
			       BT_N(runs), rs.boot_id, (long long)(rs.ended - rs.started),
			       BT_N(rs.blocks_used), BT_N(rs.blocks_stale), BT_N(rs.misses),
			       BT_N(rs.blocks_learned), counters[0] ? "; " : "", counters);
		else
			printf("runs        none recorded\n");
		printf("untranslated regions by refusal reason:\n");
		for (int r = 1; r < XLAT_NREFUSALS; r++)
			printf("  %-12s %s regions, %s bytes\n",
			       xlat_refusal_str((enum xlat_refusal)r), BT_N(s->refused_regions[r]),
			       BT_N(s->refused_bytes[r]));
	}
	free(s);
	return 0;
}

/* ------------------------------------------------------------------ verify */

struct verify_ctx {
	const struct elfimg *img;
	struct xlat_ctx *x;
	struct xlat_source src;
	uint64_t step, index;
	uint64_t checked, hash_bad, code_bad, refused_checked;
	bool sign; /* --sign: also compare what a row's tag covers beyond the code */
	enum bt_status err;
	uint8_t buf[1 << 16];
};

static int verify_block(void *o, const struct tcdb_block *row)
{
	const struct bt_block *b = &row->blk;
	struct verify_ctx *v = o;
	if (v->index++ % v->step)
		return 0;
	v->checked++;
	size_t n = v->src.read(v->src.opaque, b->guest_start, v->buf,
			       BT_MIN(b->guest_len, sizeof(v->buf)));
	if (n != b->guest_len || xlat_hash_bytes(v->buf, n) != b->guest_hash) {
		if (v->hash_bad++ < 10)
			bt_cli_error("verify: %s %#llx: guest bytes differ from the image",
				     b->refusal ? "refused region" : "block",
				     (unsigned long long)b->guest_start);
		return 0;
	}
	if (b->refusal) {
		v->refused_checked++;
		return 0;
	}
	struct bt_block xb;
	enum bt_status s = xlat_translate(v->x, &v->src, b->guest_start, &xb);
	if (s != BT_OK) {
		v->err = s;
		return 1;
	}
	const char *why = NULL;
	if (xb.refusal)
		why = "re-translation refused";
	else if (xb.guest_len != b->guest_len || xb.guest_hash != b->guest_hash)
		why = "guest extent differs";
	else if (v->sign && (xb.n_insns != b->n_insns || xb.flags != b->flags))
		why = "instruction count or block flags differ";
	else if (xb.code_len != b->code_len || memcmp(xb.code, b->code, b->code_len))
		why = "host code differs";
	else if (xb.pcmap_len != b->pcmap_len || memcmp(xb.pcmap, b->pcmap, b->pcmap_len))
		why = "pc map differs";
	else if (xb.n_exits != b->n_exits)
		why = "exits differ";
	for (uint32_t i = 0; !why && i < xb.n_exits; i++)
		if (xb.exits[i].kind != b->exits[i].kind ||
		    xb.exits[i].patch_off != b->exits[i].patch_off ||
		    xb.exits[i].stub_off != b->exits[i].stub_off ||
		    xb.exits[i].target != b->exits[i].target)
			why = "exits differ";
	if (why && v->code_bad++ < 10)
		bt_cli_error("verify: block %#llx: %s", (unsigned long long)b->guest_start, why);
	return 0;
}

int cmd_verify(int argc, char **argv)
{
	const char *db_path = NULL, *image = NULL;
	uint64_t sample = 0;
	bool sign = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sample") && i + 1 < argc) {
			char *end;
			sample = strtoull(argv[++i], &end, 10);
			if (*end || !sample)
				return bt_cli_usage("verify: --sample wants a positive number, not "
						    "'%s'",
						    argv[i]);
		} else if (!strcmp(argv[i], "--sign")) {
			sign = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			if (!strcmp(argv[i], "--sample"))
				return bt_cli_usage("verify: --sample needs a number N");
			return bt_cli_usage("verify: option '%s' is unknown", argv[i]);
		} else if (!db_path) {
			db_path = argv[i];
		} else if (!image) {
			image = argv[i];
		} else {
			return bt_cli_usage("verify: unexpected argument '%s' after DB IMAGE",
					    argv[i]);
		}
	}
	if (!db_path || !image || (sign && sample))
		goto usage;
	struct elfimg *img;
	enum bt_status s = elfimg_open(image, &img);
	if (s != BT_OK)
		return pretrans_exit_code(s);
	struct tcdb *db;
	/* --sign reads the rows without checking their tags (another key's),
	 * re-translates every one and signs only if all are byte-identical */
	unsigned oflags = sign ? TCDB_RDWR | TCDB_UNVERIFIED : TCDB_RDONLY;
	if ((s = tcdb_open(db_path, oflags, &want, NULL, &db)) != BT_OK) {
		elfimg_close(img);
		return pretrans_exit_code(s);
	}
	struct tcdb_provenance pv;
	struct tcdb_image im;
	struct verify_ctx *v = calloc(1, sizeof(*v));
	if (!v)
		s = BT_ERR_NOMEM;
	if (s == BT_OK)
		s = tcdb_get_provenance(db, &pv);
	if (s == BT_OK)
		s = tcdb_get_image(db, &im);
	char hex[65];
	sha256_hex(img->sha256, hex);
	if (s == BT_OK && sign && strcmp(hex, im.sha256)) {
		bt_err(LOG_DB,
		       "%s was built from %s (sha256 %.16s...), not from %s: only a database "
		       "checked against its own image is signed",
		       db_path, im.path, im.sha256, image);
		s = BT_ERR_VERSION;
	} else if (s == BT_OK && strcmp(hex, im.sha256))
		fprintf(stderr,
			"verify: note: %s is not the file the database was built from "
			"(%s); checking block by block\n",
			image, im.path);
	struct xlat_options xo = {.flags = pv.options_flags, .checker = &xcheck_checker_ops};
	if (s == BT_OK && xlat_options_hash(&xo) != pv.options_hash) {
		bt_err(LOG_DB, "%s: options hash %016llx does not match its options flags %#x",
		       db_path, (unsigned long long)pv.options_hash, pv.options_flags);
		s = BT_ERR_VERSION;
	}
	if (s == BT_OK)
		s = xlat_create(&xo, &v->x);
	size_t total = 0;
	if (s == BT_OK)
		s = tcdb_load_index(db, &total);
	if (s == BT_OK) {
		v->img = img;
		discover_source_from_elf(img, &v->src);
		v->step = sample && sample < total ? total / sample : 1;
		v->sign = sign;
		s = tcdb_foreach_block(db, verify_block, v);
		if (s == BT_OK)
			s = v->err;
	}
	int rc = pretrans_exit_code(s);
	if (s == BT_OK) {
		printf(
		    "verify: %s blocks checked (%s of them refused regions; %s translated blocks "
		    "in all), %s guest-hash mismatches, %s re-translation mismatches\n",
		    BT_N(v->checked), BT_N(v->refused_checked), BT_N(total), BT_N(v->hash_bad),
		    BT_N(v->code_bad));
		if (v->hash_bad || v->code_bad)
			rc = PRETRANS_EXIT_MISMATCH;
	}
	if (sign && s == BT_OK && rc == 0) {
		s = tcdb_sign(db);
		rc = pretrans_exit_code(s);
		if (s == BT_OK)
			printf("verify: every block is what this translator makes of %s: %s is now "
			       "signed with your key\n",
			       image, db_path);
	} else if (sign && s == BT_OK) {
		bt_cli_error(
		    "verify: %s is not signed: %llu rows differ from a translation of %s, %llu "
		    "translate guest bytes IMAGE does not hold (a block learned from code the "
		    "guest patched at run time cannot be checked); rebuild it with `pretrans "
		    "build`",
		    db_path, (unsigned long long)v->code_bad, image,
		    (unsigned long long)v->hash_bad);
	}
	if (v && v->x)
		xlat_destroy(v->x);
	free(v);
	tcdb_close(db);
	elfimg_close(img);
	return rc;
usage:
	return bt_cli_usage("usage: pretrans verify DB IMAGE [--sample N | --sign]");
}
