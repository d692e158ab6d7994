/*
 * Unit tests for db/tcdb on real sqlite files in a temporary directory:
 * build + commit + reopen + look-up round trip, atomic replace (a failed or
 * aborted build leaves the previous file), refusal of damaged and foreign
 * files (truncated, random bytes, another application's sqlite database,
 * wrong user_version, another translator version, another image), learned
 * blocks and run statistics, and authentication: changed host code, pc
 * maps, row columns and chunks fail their tags (the database then serves
 * nothing), another key's database is refused until signed, group-writable
 * files and private keys readable by others are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "db/tcdb.h"
#include "pretrans/base/log.h"
#include "pretrans/xlat/xlat.h"
#include "tests/unit/test_config.h"
#include "tests/unit/tcdb_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

/* The translator the databases of this test come from. */
static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

static char dir[64];

static void path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

static struct tcdb_provenance test_prov(void)
{
	struct tcdb_provenance p = {
	    .xlat_version = XLAT_VERSION,
	    .abi_version = VCPU_ABI_VERSION,
	    .options_hash = 0x1234567890abcdefull,
	    .options_flags = 1,
	    .created = 1700000000,
	};
	strcpy(p.tool_version, "test");
	return p;
}

static const uint8_t code1[] = {0x90, 0x90, 0xe9, 0, 0, 0, 0, 0xc3};
static const uint8_t pcmap1[] = {1, 2, 3};

/* Build a database with n blocks at 0xffffffff81000000 + 16 * i. */
static void build(const char *path, int n)
{
	struct tcdb *db;
	struct tcdb_provenance p = test_prov();
	assert_int_equal(tcdb_create(path, &test_image, &p, &db), BT_OK);
	struct tcdb_function f = {.name = "start_kernel",
				  .address = 0xffffffff81000000ull,
				  .size = 16u * (unsigned)n,
				  .bytes_hash = 42,
				  .section = ".text",
				  .covered_bytes = 16u * (unsigned)n};
	assert_int_equal(tcdb_add_function(db, &f), BT_OK);
	assert_true(f.id > 0);
	for (int i = 0; i < n; i++) {
		struct tcdb_block b = {
		    .blk = {.guest_start = 0xffffffff81000000ull + 16u * (unsigned)i,
			    .guest_len = 16,
			    .n_insns = 3,
			    .guest_hash = 1000u + (unsigned)i,
			    .code = code1,
			    .code_len = sizeof(code1),
			    .pcmap = pcmap1,
			    .pcmap_len = sizeof(pcmap1),
			    .n_exits = 2},
		    .function_id = f.id};
		b.blk.exits[0] = (struct bt_exit){.kind = XLAT_EXIT_JMP,
						  .patch_off = 3,
						  .stub_off = 7,
						  .target = 0xffffffff81001000ull};
		b.blk.exits[1] = (struct bt_exit){.kind = XLAT_EXIT_RET, .patch_off = ~0u};
		assert_int_equal(tcdb_add_block(db, &b), BT_OK);
	}
	struct tcdb_block r = {.blk = {.guest_start = 0xffffffff82000000ull,
				       .guest_len = 5,
				       .refusal = XLAT_REFUSE_UNDECODABLE,
				       .refusal_addr = 0xffffffff82000000ull}};
	assert_int_equal(tcdb_add_block(db, &r), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);
}

static int count_tmp_files(void)
{
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp-"))
			n++;
	closedir(d);
	return n;
}

static void test_roundtrip(void **state)
{
	char p[128];
	path_in(p, sizeof(p), "rt.tcdb");
	build(p, 100);
	assert_int_equal(count_tmp_files(), 0);
	struct tcdb *db;
	struct tcdb_expect ex = {.sha256 = test_image.sha256, .build_id = test_image.build_id};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, &ex, &db), BT_OK);
	struct tcdb_image im;
	assert_int_equal(tcdb_get_image(db, &im), BT_OK);
	assert_string_equal(im.sha256, test_image.sha256);
	assert_true(im.entry == test_image.entry);
	assert_true(im.build_id_va == test_image.build_id_va);
	assert_string_equal(im.banner, test_image.banner);
	struct tcdb_provenance pv;
	assert_int_equal(tcdb_get_provenance(db, &pv), BT_OK);
	assert_true(pv.options_hash == 0x1234567890abcdefull);
	assert_string_equal(pv.tool_version, "test");

	struct tcdb_block b;
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull + 16 * 7, &b), BT_OK);
	assert_int_equal(b.blk.guest_len, 16);
	assert_true(b.blk.guest_hash == 1007);
	assert_int_equal(b.blk.code_len, sizeof(code1));
	assert_memory_equal(b.blk.code, code1, sizeof(code1));
	assert_int_equal(b.blk.pcmap_len, sizeof(pcmap1));
	assert_memory_equal(b.blk.pcmap, pcmap1, sizeof(pcmap1));
	assert_int_equal(b.blk.n_exits, 2);
	assert_int_equal(b.blk.exits[0].kind, XLAT_EXIT_JMP);
	assert_int_equal(b.blk.exits[0].patch_off, 3);
	assert_true(b.blk.exits[0].target == 0xffffffff81001000ull);
	assert_int_equal(b.blk.exits[1].kind, XLAT_EXIT_RET);
	/* not a start, and a refused region: not found */
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000001ull, &b), BT_ERR_NOTFOUND);
	assert_int_equal(tcdb_lookup(db, 0xffffffff82000000ull, &b), BT_ERR_NOTFOUND);
	/* with the in-memory index, the same answers */
	size_t n;
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(n, 100);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull + 16 * 99, &b), BT_OK);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull + 16 * 100, &b), BT_ERR_NOTFOUND);
	/* read-only: no learning */
	assert_int_equal(tcdb_learn_begin(db), BT_ERR_INVALID);
	tcdb_close(db);
}

static void test_same_calls_same_bytes(void **state)
{
	char a[128], b[128];
	path_in(a, sizeof(a), "a.tcdb");
	path_in(b, sizeof(b), "b.tcdb");
	build(a, 500);
	build(b, 500);
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca, cb;
	do {
		ca = fgetc(fa);
		cb = fgetc(fb);
		assert_int_equal(ca, cb);
	} while (ca != EOF);
	fclose(fa);
	fclose(fb);
}

static void test_atomic_replace(void **state)
{
	char p[128];
	path_in(p, sizeof(p), "atomic.tcdb");
	build(p, 10);
	struct stat st0;
	assert_int_equal(stat(p, &st0), 0);
	/* an aborted build leaves the old file and no temporary */
	struct tcdb *db;
	struct tcdb_provenance pv = test_prov();
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	assert_int_equal(count_tmp_files(), 1);
	tcdb_abort(db);
	assert_int_equal(count_tmp_files(), 0);
	struct stat st1;
	assert_int_equal(stat(p, &st1), 0);
	assert_true(st0.st_ino == st1.st_ino && st0.st_size == st1.st_size);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	tcdb_close(db);
	/* an output in a directory that does not exist fails cleanly */
	char q[160];
	path_in(q, sizeof(q), "nodir/x.tcdb");
	assert_int_equal(tcdb_create(q, &test_image, &pv, &db), BT_ERR_IO);
	/* a successful rebuild replaces the file (new inode) */
	build(p, 20);
	assert_int_equal(stat(p, &st1), 0);
	assert_true(st0.st_ino != st1.st_ino);
}

static void write_file(const char *p, const void *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static void sql(const char *p, const char *q)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, q, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

/* Re-sign p with this test's key (tcdb_sign), as `pretrans verify --sign`
 * does after checking every row: what is left to refuse is the format. */
static void resign(const char *p)
{
	struct tcdb *db;
	assert_int_equal(tcdb_open(p, TCDB_RDWR | TCDB_UNVERIFIED, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_sign(db), BT_OK);
	tcdb_close(db);
}

static void test_bad_files(void **state)
{
	char p[128];
	struct tcdb *db;
	path_in(p, sizeof(p), "bad.tcdb");
	/* missing */
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_IO);
	/* random bytes */
	uint8_t junk[8192];
	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rand();
	write_file(p, junk, sizeof(junk));
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_FORMAT);
	/* empty */
	write_file(p, junk, 0);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_FORMAT);
	/* truncated real database */
	build(p, 2000);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size / 2), 0);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_FORMAT);
	assert_int_equal(truncate(p, 50), 0);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_FORMAT);
	/* header intact, pages overwritten with garbage */
	build(p, 2000);
	FILE *f = fopen(p, "r+b");
	uint8_t hdr[18];
	assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	long psz = hdr[16] << 8 | hdr[17];
	if (psz == 1)
		psz = 65536;
	for (long pg = 1; pg < 4; pg++) { /* the heads of pages 2..4 */
		fseek(f, pg * psz, SEEK_SET);
		fwrite(junk, 1, 512, f);
	}
	fclose(f);
	enum bt_status s = tcdb_open(p, TCDB_RDONLY, &want, NULL, &db);
	if (s == BT_OK) { /* the damage may be below what open reads: reads must fail */
		struct tcdb_block b;
		int bad = 0;
		for (int i = 0; i < 2000; i++)
			if (tcdb_lookup(db, 0xffffffff81000000ull + 16u * (unsigned)i, &b) != BT_OK)
				bad++;
		assert_true(bad > 0);
		tcdb_close(db);
	} else {
		assert_int_equal(s, BT_ERR_FORMAT);
	}
	/* another application's sqlite database */
	unlink(p);
	sql(p, "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_FORMAT);
	/* wrong schema version */
	unlink(p);
	build(p, 3);
	sql(p, "PRAGMA user_version = 99");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_VERSION);
	/* another translator / ABI version */
	unlink(p);
	build(p, 3);
	sql(p, "UPDATE provenance SET xlat_version = xlat_version + 1");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_VERSION);
	unlink(p);
	build(p, 3);
	sql(p, "UPDATE provenance SET vcpu_abi_version = 0");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_VERSION);
	/* where the kernel keeps its build-id (btvm identifies a bzImage's
	 * kernel by it): covered by the identity tag */
	unlink(p);
	build(p, 3);
	sql(p, "UPDATE image SET build_id_va = build_id_va + 0x200000");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	unlink(p);
	build(p, 3);
	sql(p, "UPDATE image SET banner = 'Linux version 6.1.0-other (b@h) (gcc) #1\n'");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	/* another image, other options */
	unlink(p);
	build(p, 3);
	struct tcdb_expect ex = {.sha256 = "bbbb", .image_name = "other.elf"};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, &ex, &db), BT_ERR_VERSION);
	ex = (struct tcdb_expect){.sha256 = test_image.sha256, .build_id = "ffff"};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, &ex, &db), BT_ERR_VERSION);
	ex = (struct tcdb_expect){.options_hash = 5};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, &ex, &db), BT_ERR_VERSION);
	/* a corrupt block row is refused at look-up */
	/* (the key of 0xffffffff81000000 is 0x01000000, see docs/db.md) */
	sql(p, "UPDATE blocks SET exits = x'0102' WHERE guest_start = 16777216");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	struct tcdb_block b;
	/* (its tag fails first; signed again, its format is refused) */
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull, &b), BT_ERR_AUTH);
	tcdb_close(db);
	resign(p);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull, &b), BT_ERR_FORMAT);
	tcdb_close(db);
	/* an exit kind the caller's translator does not know (as the only exit of
	 * the row of 0xffffffff81000010) */
	char q[160];
	snprintf(q, sizeof(q),
		 "UPDATE blocks SET exits = x'%02x000000030000000700000000100081ffffffff' "
		 "WHERE guest_start = 16777232",
		 XLAT_NEXIT_KINDS);
	sql(p, q);
	resign(p);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000010ull, &b), BT_ERR_FORMAT);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000020ull, &b), BT_OK);
	tcdb_close(db);
	/* no expected translator: refused before the file is read */
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, NULL, NULL, &db), BT_ERR_INVALID);
}

/* Learn one block (a ret at 0xffffffff81100000, guest hash 77) into db in
 * a committed transaction; *nb is the row written. */
static void learn_ret_block(struct tcdb *db, struct tcdb_block *nb)
{
	*nb = (struct tcdb_block){.blk = {.guest_start = 0xffffffff81100000ull,
					  .guest_len = 8,
					  .guest_hash = 77,
					  .code = code1,
					  .code_len = sizeof(code1),
					  .pcmap = pcmap1,
					  .pcmap_len = sizeof(pcmap1),
					  .n_exits = 1}};
	nb->blk.exits[0] = (struct bt_exit){.kind = XLAT_EXIT_RET, .patch_off = ~0u};
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	assert_int_equal(tcdb_learn_block(db, &nb->blk), BT_OK);
	assert_int_equal(tcdb_learn_commit(db), BT_OK);
}

static void test_learn_and_stats(void **state)
{
	char p[128];
	path_in(p, sizeof(p), "learn.tcdb");
	build(p, 5);
	struct tcdb *db;
	assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
	struct tcdb_block nb;
	learn_ret_block(db, &nb);
	struct tcdb_run_stats rs = {.started = 1,
				    .ended = 2,
				    .blocks_used = 10,
				    .misses = 1,
				    .blocks_learned = 1,
				    .counters = "irq=5"};
	strcpy(rs.boot_id, "boot-1");
	assert_int_equal(tcdb_record_run(db, &rs), BT_OK);
	rs.blocks_used = 12;
	rs.counters = "irq=7";
	assert_int_equal(tcdb_record_run(db, &rs), BT_OK);
	struct tcdb_run_stats last;
	uint64_t runs;
	assert_int_equal(tcdb_last_run(db, &last, &runs), BT_OK);
	assert_int_equal(runs, 2);
	assert_int_equal(last.blocks_used, 12);
	assert_string_equal(last.boot_id, "boot-1");
	assert_string_equal(last.counters, "irq=7");
	tcdb_close(db);
	/* a rolled-back learning transaction leaves nothing */
	assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	nb.blk.guest_start += 8;
	assert_int_equal(tcdb_learn_block(db, &nb.blk), BT_OK);
	tcdb_close(db); /* no commit */
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	struct tcdb_block b;
	assert_int_equal(tcdb_lookup(db, 0xffffffff81100000ull, &b), BT_OK);
	assert_int_equal(b.origin, TCDB_ORIGIN_LEARNED);
	assert_true(b.blk.guest_hash == 77);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81100008ull, &b), BT_ERR_NOTFOUND);
	tcdb_close(db);
	sqlite3 *h;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT boot_id, blocks_used, counters FROM run_stats",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "boot-1");
	assert_int_equal(sqlite3_column_int(st, 1), 10);
	assert_string_equal((const char *)sqlite3_column_text(st, 2), "irq=5");
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/* p opened read-only: the look-up of va fails its authentication, and
 * after that the database serves no block at all. */
static void assert_unauthentic(const char *p, gva_t va, gva_t other)
{
	struct tcdb *db;
	struct tcdb_block b;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_false(tcdb_untrusted(db));
	assert_int_equal(tcdb_lookup(db, va, &b), BT_ERR_AUTH);
	assert_true(tcdb_untrusted(db));
	assert_int_equal(tcdb_lookup(db, other, &b), BT_ERR_AUTH);
	tcdb_close(db);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static void test_auth_rows(void **state)
{
	char p[128], q[128];
	path_in(p, sizeof(p), "auth.tcdb");
	path_in(q, sizeof(q), "auth-changed.tcdb");
	build(p, 3);
	/* (row keys: 0xffffffff81000000 is 16777216, see docs/db.md) */
	const gva_t a0 = 0xffffffff81000000ull, a1 = a0 + 16, a2 = a0 + 32;
	struct tcdb *db;
	struct tcdb_block b;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, a1, &b), BT_OK);
	tcdb_close(db);
	/* inline host code replaced by exit(42) of the VMM */
	copy_file(p, q);
	sql(q, "UPDATE blocks SET code = x'b83c000000bf2a0000000f05' WHERE guest_start = 16777216");
	assert_unauthentic(q, a0, a1);
	/* one bit of a pc map */
	copy_file(p, q);
	sql(q, "UPDATE blocks SET pcmap = x'010207' WHERE guest_start = 16777232");
	assert_unauthentic(q, a1, a0);
	/* one bit of an exit target */
	copy_file(p, q);
	sql(q, "UPDATE blocks SET exits = x'0100000003000000070000000110008"
	       "1ffffffff0200000000000000ffffffff0000000000000000' "
	       "WHERE guest_start = 16777232");
	assert_unauthentic(q, a1, a0);
	/* an integer column (guest hash, flags) */
	copy_file(p, q);
	sql(q, "UPDATE blocks SET guest_hash = guest_hash + 1 WHERE guest_start = 16777248");
	assert_unauthentic(q, a2, a0);
	copy_file(p, q);
	sql(q, "UPDATE blocks SET flags = 1 WHERE guest_start = 16777248");
	assert_unauthentic(q, a2, a0);
	/* a valid tag moved to another row */
	copy_file(p, q);
	sql(q, "UPDATE blocks SET mac = (SELECT mac FROM blocks WHERE guest_start = 16777216) "
	       "WHERE guest_start = 16777232");
	assert_unauthentic(q, a1, a0);
	/* no tag */
	copy_file(p, q);
	sql(q, "UPDATE blocks SET mac = x'' WHERE guest_start = 16777216");
	assert_unauthentic(q, a0, a1);
	/* a learned row, changed after it was written; a database that failed
	 * takes no learned blocks */
	copy_file(p, q);
	assert_int_equal(tcdb_open(q, TCDB_RDWR, &want, NULL, &db), BT_OK);
	struct tcdb_block nb;
	learn_ret_block(db, &nb);
	assert_int_equal(tcdb_lookup(db, nb.blk.guest_start, &b), BT_OK);
	tcdb_close(db);
	sql(q, "UPDATE blocks SET code = x'b83c000000bf2a0000000f05' WHERE origin = 1");
	assert_int_equal(tcdb_open(q, TCDB_RDWR, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, nb.blk.guest_start, &b), BT_ERR_AUTH);
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	assert_int_equal(tcdb_learn_block(db, &nb.blk), BT_ERR_AUTH);
	tcdb_close(db);
	/* the image row (identity) changed: refused at open */
	copy_file(p, q);
	sql(q, "UPDATE image SET sha256 = 'bbbb'");
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
}

static void test_auth_chunk(void **state)
{
	char p[128];
	path_in(p, sizeof(p), "auth-chunk.tcdb");
	struct tcdb *db;
	struct tcdb_provenance pv = test_prov();
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	struct tcdb_chunk c = {0};
	uint8_t code[64];
	memset(code, 0x90, sizeof(code));
	struct tcdb_block b[2];
	for (int i = 0; i < 2; i++) {
		b[i] = (struct tcdb_block){
		    .blk = {.guest_start = 0xffffffff81000000ull + 64u * (unsigned)i,
			    .guest_len = 4,
			    .guest_hash = 5,
			    .code = code,
			    .code_len = sizeof(code),
			    .pcmap = pcmap1,
			    .pcmap_len = sizeof(pcmap1)}};
		assert_int_equal(tcdb_chunk_add_block(&c, &b[i], 0), BT_OK);
	}
	assert_int_equal(tcdb_chunk_seal(&c), BT_OK);
	int64_t id;
	assert_int_equal(tcdb_add_chunk(db, &c, &id), BT_OK);
	for (int i = 0; i < 2; i++) {
		b[i].chunk_id = id;
		assert_int_equal(tcdb_add_block(db, &b[i]), BT_OK);
	}
	assert_int_equal(tcdb_commit(db), BT_OK);
	/* one bit of the decompressed chunk (the second block's code), compressed again */
	size_t zl = ZSTD_compressBound(c.raw_len);
	uint8_t *z = malloc(zl);
	c.raw[b[1].payload_off + 9 + 7] ^= 0x04;
	zl = ZSTD_compress(z, zl, c.raw, c.raw_len, 6);
	assert_false(ZSTD_isError(zl));
	sqlite3 *h;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "UPDATE chunks SET data = ?1", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, z, (int)zl, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(z);
	tcdb_chunk_fini(&c);
	/* refused before any of its blocks is served, the unchanged one too */
	assert_unauthentic(p, b[0].blk.guest_start, b[1].blk.guest_start);
	uint8_t *raw, *zc;
	size_t raw_len, z_len;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_read_chunk(db, id, &raw, &raw_len, &zc, &z_len), BT_ERR_AUTH);
	tcdb_close(db);
}

static void set_config(const char *name)
{
	static char cfg[160];
	if (name) {
		path_in(cfg, sizeof(cfg), name);
		setenv("XDG_CONFIG_HOME", cfg, 1);
	} else {
		setenv("XDG_CONFIG_HOME", test_config_dir, 1);
	}
}

static void test_auth_keys(void **state)
{
	char p[128], key[192];
	struct tcdb *db;
	struct tcdb_block b;
	struct stat st;
	/* another user's (another key's) database: refused at open ... */
	path_in(p, sizeof(p), "other-key.tcdb");
	set_config("other-config");
	build(p, 2);
	path_in(key, sizeof(key), "other-config/btkern/db.key");
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	path_in(key, sizeof(key), "other-config/btkern");
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	set_config(NULL);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	/* ... until signed with this key */
	assert_int_equal(tcdb_open(p, TCDB_RDWR | TCDB_UNVERIFIED, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_sign(db), BT_OK);
	tcdb_close(db);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000010ull, &b), BT_OK);
	tcdb_close(db);
	/* a database others may write: refused */
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 022, 0);
	chmod(p, 0664);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	chmod(p, 0646);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	chmod(p, 0644);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	tcdb_close(db);
	/* a key others can read: refused for reading and building */
	snprintf(key, sizeof(key), "%s/btkern/db.key", test_config_dir);
	chmod(key, 0640);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	struct tcdb_provenance pv = test_prov();
	char q[128];
	path_in(q, sizeof(q), "bad-key.tcdb");
	assert_int_equal(tcdb_create(q, &test_image, &pv, &db), BT_ERR_AUTH);
	assert_int_equal(count_tmp_files(), 0);
	chmod(key, 0604);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	chmod(key, 0600);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	tcdb_close(db);
	/* a key of the wrong size */
	set_config("short-config");
	path_in(key, sizeof(key), "short-config");
	mkdir(key, 0700);
	path_in(key, sizeof(key), "short-config/btkern");
	mkdir(key, 0700);
	path_in(key, sizeof(key), "short-config/btkern/db.key");
	FILE *f = fopen(key, "w");
	fputs("short", f);
	fclose(f);
	chmod(key, 0600);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_AUTH);
	set_config(NULL);
}

static int count_cb(void *o, const struct tcdb_block *b)
{
	(*(int *)o) += b->blk.refusal ? 1000 : 1;
	return 0;
}

static void test_foreach(void **state)
{
	char p[128];
	path_in(p, sizeof(p), "each.tcdb");
	build(p, 42);
	struct tcdb *db;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	int n = 0;
	assert_int_equal(tcdb_foreach_block(db, count_cb, &n), BT_OK);
	assert_int_equal(n, 1042);
	tcdb_close(db);
}

/* Blocks whose code lives in compressed chunks, as pretrans writes them. */
static void test_chunks(void **state)
{
	char p[128];
	path_in(p, sizeof(p), "chunks.tcdb");
	struct tcdb *db;
	struct tcdb_provenance pv = test_prov();
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	uint8_t code[3][300];
	struct tcdb_block b[3];
	struct tcdb_chunk c = {0};
	for (int k = 0; k < 2; k++) { /* two chunks of three blocks */
		tcdb_chunk_reset(&c);
		for (int i = 0; i < 3; i++) {
			memset(code[i], 0x90 + i + k, sizeof(code[i]));
			b[i] = (struct tcdb_block){.blk = {.guest_start = 0xffffffff81000000ull +
									  0x1000u * (unsigned)k +
									  32u * (unsigned)i,
							   .guest_len = 32,
							   .guest_hash = 7u + (unsigned)i,
							   .code = code[i],
							   .code_len = 100u + (unsigned)i,
							   .pcmap = pcmap1,
							   .pcmap_len = sizeof(pcmap1),
							   .n_exits = (uint32_t)i}};
			for (int e = 0; e < i; e++)
				b[i].blk.exits[e] =
				    (struct bt_exit){.kind = XLAT_EXIT_JCC_TAKEN,
						     .patch_off = 5,
						     .target = 0x1234u + (unsigned)e};
			assert_int_equal(tcdb_chunk_add_block(&c, &b[i], 0), BT_OK);
		}
		assert_int_equal(tcdb_chunk_seal(&c), BT_OK);
		assert_true(c.z_len < c.raw_len); /* repetitive code compresses */
		int64_t id;
		assert_int_equal(tcdb_add_chunk(db, &c, &id), BT_OK);
		for (int i = 0; i < 3; i++) {
			b[i].chunk_id = id;
			assert_int_equal(tcdb_add_block(db, &b[i]), BT_OK);
		}
	}
	tcdb_chunk_fini(&c);
	assert_int_equal(tcdb_commit(db), BT_OK);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	/* alternate between the chunks: the cache must follow */
	for (int r = 0; r < 4; r++) {
		int k = r & 1, i = r % 3;
		struct tcdb_block o;
		gva_t va = 0xffffffff81000000ull + 0x1000u * (unsigned)k + 32u * (unsigned)i;
		assert_int_equal(tcdb_lookup(db, va, &o), BT_OK);
		assert_int_equal(o.blk.code_len, 100 + i);
		assert_int_equal(o.blk.code[0], 0x90 + i + k);
		assert_int_equal(o.blk.code[o.blk.code_len - 1], 0x90 + i + k);
		assert_int_equal(o.blk.pcmap_len, sizeof(pcmap1));
		assert_memory_equal(o.blk.pcmap, pcmap1, sizeof(pcmap1));
		assert_int_equal(o.blk.n_exits, i);
		if (i)
			assert_true(o.blk.exits[i - 1].target == 0x1234u + (unsigned)i - 1);
	}
	tcdb_close(db);
	/* a damaged chunk is refused at look-up: it fails its authentication,
	 * and the database serves nothing after that */
	sql(p, "UPDATE chunks SET data = x'00112233' WHERE id = 1");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	struct tcdb_block o;
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull, &o), BT_ERR_AUTH);
	assert_true(tcdb_untrusted(db));
	assert_int_equal(tcdb_lookup(db, 0xffffffff81001000ull, &o), BT_ERR_AUTH);
	tcdb_close(db);
	/* unverified, it is malformed, and the other chunk still serves */
	assert_int_equal(tcdb_open(p, TCDB_RDONLY | TCDB_UNVERIFIED, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull, &o), BT_ERR_FORMAT);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81001000ull, &o), BT_OK);
	tcdb_close(db);
}

static int any_cb(void *o, const struct tcdb_block *b)
{
	/* touch every byte a reader would use */
	unsigned *sum = o;
	for (uint32_t i = 0; i < b->blk.code_len; i++)
		*sum += b->blk.code[i];
	for (uint32_t i = 0; i < b->blk.pcmap_len; i++)
		*sum += b->blk.pcmap[i];
	return 0;
}

/* Damage a real database (with chunks) at random places, many times: every
 * open, walk and look-up returns a status, never crashes or reads out of
 * bounds (run under valgrind/ASan to check the latter). */
static void test_random_damage(void **state)
{
	char good[128], bad[128];
	path_in(good, sizeof(good), "good.tcdb");
	path_in(bad, sizeof(bad), "bad.tcdb");
	struct tcdb *db;
	struct tcdb_provenance pv = test_prov();
	assert_int_equal(tcdb_create(good, &test_image, &pv, &db), BT_OK);
	uint8_t code[200];
	for (size_t i = 0; i < sizeof(code); i++)
		code[i] = (uint8_t)(i * 7);
	struct tcdb_chunk c = {0};
	for (int k = 0; k < 40; k++) {
		tcdb_chunk_reset(&c);
		struct tcdb_block b[8];
		for (int i = 0; i < 8; i++) {
			b[i] = (struct tcdb_block){
			    .blk = {.guest_start =
					0xffffffff81000000ull + 0x100u * (unsigned)(8 * k + i),
				    .guest_len = 16,
				    .guest_hash = (unsigned)i,
				    .code = code,
				    .code_len = 50u + (unsigned)i * 10u,
				    .pcmap = pcmap1,
				    .pcmap_len = sizeof(pcmap1),
				    .n_exits = 1}};
			b[i].blk.exits[0] =
			    (struct bt_exit){.kind = XLAT_EXIT_RET, .patch_off = ~0u};
			assert_int_equal(tcdb_chunk_add_block(&c, &b[i], 0), BT_OK);
		}
		assert_int_equal(tcdb_chunk_seal(&c), BT_OK);
		int64_t id;
		assert_int_equal(tcdb_add_chunk(db, &c, &id), BT_OK);
		for (int i = 0; i < 8; i++) {
			b[i].chunk_id = id;
			assert_int_equal(tcdb_add_block(db, &b[i]), BT_OK);
		}
	}
	tcdb_chunk_fini(&c);
	assert_int_equal(tcdb_commit(db), BT_OK);
	FILE *f = fopen(good, "rb");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	uint8_t *img = malloc((size_t)n), *cp = malloc((size_t)n);
	fseek(f, 0, SEEK_SET);
	assert_int_equal(fread(img, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	srand(11);
	int opened = 0, failed_reads = 0;
	for (int round = 0; round < 150; round++) {
		memcpy(cp, img, (size_t)n);
		int hits = 1 + rand() % 24;
		for (int h = 0; h < hits; h++)
			cp[100 + rand() % (n - 100)] = (uint8_t)rand();
		FILE *o = fopen(bad, "wb");
		fwrite(cp, 1, (size_t)n, o);
		fclose(o);
		if (tcdb_open(bad, TCDB_RDONLY, &want, NULL, &db) != BT_OK)
			continue;
		opened++;
		unsigned sum = 0;
		if (tcdb_foreach_block(db, any_cb, &sum) != BT_OK)
			failed_reads++;
		struct tcdb_block b;
		for (int i = 0; i < 320; i += 7) {
			enum bt_status s =
			    tcdb_lookup(db, 0xffffffff81000000ull + 0x100u * (unsigned)i, &b);
			if (s == BT_OK)
				any_cb(&sum, &b);
		}
		tcdb_close(db);
	}
	/* most damage lands in chunk data and is caught when reading */
	assert_true(opened > 0);
	assert_true(failed_reads > 0);
	free(img);
	free(cp);
}

static mode_t lmode(const char *p)
{
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & S_IFMT;
}

/* tcdb_create refuses p (nothing created), which stays of type type */
static void assert_refused(const char *p, mode_t type)
{
	struct tcdb *db = NULL;
	struct tcdb_provenance pv = test_prov();
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_ERR_IO);
	assert_null(db);
	assert_int_equal(lmode(p), type);
	assert_int_equal(count_tmp_files(), 0);
}

/*
 * The output is only created as, or replaces, a regular file: a FIFO, a
 * directory, a character device node (made here, in the test directory,
 * with the numbers of /dev/null; never a real device path) and symlinks to
 * them are refused before anything is written, and again at commit.
 */
static void test_output_not_regular(void **state)
{
	char p[128], q[128], t[128];
	path_in(p, sizeof(p), "fifo.tcdb");
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_refused(p, S_IFIFO);
	path_in(q, sizeof(q), "to-fifo.tcdb");
	assert_int_equal(symlink(p, q), 0);
	assert_refused(q, S_IFLNK);
	assert_int_equal(lmode(p), S_IFIFO);

	path_in(p, sizeof(p), "dir.tcdb");
	assert_int_equal(mkdir(p, 0755), 0);
	assert_refused(p, S_IFDIR);
	path_in(q, sizeof(q), "to-dir.tcdb");
	assert_int_equal(symlink(p, q), 0);
	assert_refused(q, S_IFLNK);
	assert_int_equal(lmode(p), S_IFDIR);

	path_in(p, sizeof(p), "chr.tcdb");
	if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) {
		assert_refused(p, S_IFCHR);
		path_in(q, sizeof(q), "to-chr.tcdb");
		assert_int_equal(symlink(p, q), 0);
		assert_refused(q, S_IFLNK);
		assert_int_equal(lmode(p), S_IFCHR);
	} else {
		printf("test_output_not_regular: character device case skipped: mknod: %s "
		       "(needs root)\n",
		       strerror(errno));
	}

	/* regular files, symlinks to them and dangling symlinks still work */
	path_in(p, sizeof(p), "reg.tcdb");
	build(p, 3);
	path_in(q, sizeof(q), "to-reg.tcdb");
	assert_int_equal(symlink(p, q), 0);
	build(q, 3);
	path_in(t, sizeof(t), "dangling.tcdb");
	assert_int_equal(symlink("no-such-target", t), 0);
	build(t, 3);
	assert_int_equal(lmode(t), S_IFREG);

	/* the path became a FIFO after tcdb_create: tcdb_commit refuses it */
	path_in(p, sizeof(p), "late.tcdb");
	struct tcdb *db;
	struct tcdb_provenance pv = test_prov();
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_int_equal(tcdb_commit(db), BT_ERR_IO);
	assert_int_equal(lmode(p), S_IFIFO);
	assert_int_equal(count_tmp_files(), 0);
}

/*
 * A learn transaction that fails on a full file system (here RLIMIT_FSIZE
 * with SIGXFSZ ignored, in a child) reports the real error only: sqlite
 * has already rolled back, so no "cannot rollback" follows, whether a
 * learned block or the commit fails; the file keeps its previous contents (the
 * next read-write open plays back the journal sqlite left).
 */
static void learn_until_full(const char *p, const char *log, unsigned n_blocks)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stat st;
		if (stat(p, &st) != 0)
			_exit(10);
		FILE *lf = fopen(log, "w");
		if (!lf)
			_exit(11);
		bt_log_to(lf);
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = {(rlim_t)st.st_size + 65536, (rlim_t)st.st_size + 65536};
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(12);
		struct tcdb *db;
		if (tcdb_open(p, TCDB_RDWR, &want, NULL, &db) != BT_OK ||
		    tcdb_learn_begin(db) != BT_OK)
			_exit(13);
		static uint8_t big[16384];
		memset(big, 0x90, sizeof(big));
		enum bt_status s = BT_OK;
		for (unsigned i = 0; i < n_blocks && s == BT_OK; i++) {
			struct tcdb_block b = {
			    .blk = {.guest_start = 0xffffffff83000000ull + 64u * i,
				    .guest_len = 8,
				    .code = big,
				    .code_len = sizeof(big)}};
			big[0] = (uint8_t)i; /* no two pages alike */
			s = tcdb_learn_block(db, &b.blk);
		}
		if (s == BT_OK)
			s = tcdb_learn_commit(db);
		tcdb_close(db);
		fclose(lf);
		_exit(s == BT_OK ? 0 : 1);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 1); /* the write failed */
	FILE *f = fopen(log, "r");
	assert_non_null(f);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (strstr(line, "rollback") || strstr(line, "no transaction"))
			fail_msg("spurious message after the real error: %s", line);
	}
	fclose(f);
	assert_true(n >= 1);
}

static void test_learn_full_disk(void **state)
{
	char p[128], log[128];
	path_in(p, sizeof(p), "full.tcdb");
	path_in(log, sizeof(log), "full.log");
	/* 4096 blocks of 16 KiB overflow sqlite's page cache: a learn_block
	 * fails and the caller closes; 24 fit: the COMMIT fails */
	static const unsigned n_blocks[] = {4096, 24};
	for (int i = 0; i < 2; i++) {
		build(p, 5);
		learn_until_full(p, log, n_blocks[i]);
		/* read-write: the first reader plays the hot journal back */
		struct tcdb *db;
		assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
		struct tcdb_block b;
		assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull, &b), BT_OK);
		assert_int_equal(tcdb_lookup(db, 0xffffffff83000000ull, &b), BT_ERR_NOTFOUND);
		tcdb_close(db);
	}
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/test_tcdb.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	test_private_config();
	bt_log_to(fopen("/dev/null", "w")); /* the refusals are expected */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_same_calls_same_bytes),
	    cmocka_unit_test(test_atomic_replace),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_learn_and_stats),
	    cmocka_unit_test(test_foreach),
	    cmocka_unit_test(test_chunks),
	    cmocka_unit_test(test_random_damage),
	    cmocka_unit_test(test_output_not_regular),
	    cmocka_unit_test(test_learn_full_disk),
	    cmocka_unit_test(test_auth_rows),
	    cmocka_unit_test(test_auth_chunk),
	    cmocka_unit_test(test_auth_keys),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
