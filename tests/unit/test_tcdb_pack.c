/*
 * Unit tests for the packs of db/tcdb (docs/db.md "Packs") on real sqlite
 * files: the start-index pack answers misses exactly as the rows do (also
 * after learned rows changed the set of starts); a --learn boot's profile
 * keeps several versions per start (keyed by start and guest hash) and
 * tcdb_lookup_match hands out the one guest memory holds, in first-use
 * order, then the row; stale and missing are told apart; a changed pack
 * (its bytes, its codec, its tag) fails authentication and the database
 * then serves nothing; a re-signed database drops the profile and keeps
 * the index.
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

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

static char dir[64];

#define BASE 0xffffffff81000000ull

static const uint8_t code_a[] = {0x90, 0x90, 0xe9, 0, 0, 0, 0, 0xc3};
static const uint8_t code_b[] = {0x0f, 0x1f, 0x44, 0x00, 0x00, 0xe9, 0, 0, 0, 0, 0xc3};
static const uint8_t pcmap[] = {1, 2, 3};

static struct tcdb_block block(gva_t va, uint64_t hash, const uint8_t *code, uint32_t len)
{
	struct tcdb_block b = {.guest_start = va,
			       .guest_len = 16,
			       .n_insns = 3,
			       .guest_hash = hash,
			       .code = code,
			       .code_len = len,
			       .pcmap = pcmap,
			       .pcmap_len = sizeof(pcmap),
			       .n_exits = 1};
	b.exits[0] = (struct tcdb_exit){
	    .kind = XLAT_EXIT_JMP, .patch_off = 3, .stub_off = 7, .target = va + 0x40};
	return b;
}

/* n rows at BASE + 16 i (guest hash 1000 + i), starts spread over two
 * regions far apart (a bitmap's span) when far is set. */
static void build(const char *path, int n, bool far)
{
	struct tcdb *db;
	struct tcdb_provenance p = {
	    .xlat_version = XLAT_VERSION, .abi_version = VCPU_ABI_VERSION, .created = 1700000000};
	strcpy(p.tool_version, "test");
	assert_int_equal(tcdb_create(path, &test_image, &p, &db), BT_OK);
	for (int i = 0; i < n; i++) {
		gva_t va = BASE + 16u * (unsigned)i + (far && i >= n / 2 ? 0x1000000ull : 0);
		struct tcdb_block b = block(va, 1000u + (unsigned)i, code_a, sizeof(code_a));
		assert_int_equal(tcdb_add_block(db, &b), BT_OK);
	}
	struct tcdb_block r = {.guest_start = BASE - 0x100,
			       .guest_len = 5,
			       .refusal = XLAT_REFUSE_UNDECODABLE,
			       .refusal_addr = BASE - 0x100};
	assert_int_equal(tcdb_add_block(db, &r), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);
}

static void sql(const char *p, const char *q)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, q, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

/* The "guest memory" of these tests: the guest hash each start holds now. */
struct memory {
	gva_t va[8];
	uint64_t hash[8];
	unsigned n, asked;
};

static bool holds(void *opaque, gva_t va, uint32_t len, uint64_t hash)
{
	struct memory *m = opaque;
	m->asked++;
	for (unsigned i = 0; i < m->n; i++)
		if (m->va[i] == va)
			return len == 16 && m->hash[i] == hash;
	return false;
}

static void test_index_pack(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/index.tcdb", dir);
	for (int far = 0; far < 2; far++) {
		build(p, 300, far);
		struct tcdb *db;
		size_t n;
		assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
		assert_int_equal(tcdb_load_index(db, &n), BT_OK);
		assert_int_equal(n, 300); /* the refused region is not a start */
		struct tcdb_block b;
		/* every start is found, every other address is a miss */
		for (int i = 0; i < 300; i++) {
			gva_t va = BASE + 16u * (unsigned)i + (far && i >= 150 ? 0x1000000ull : 0);
			assert_int_equal(tcdb_lookup(db, va, &b), BT_OK);
			assert_true(b.guest_hash == 1000u + (unsigned)i);
			assert_int_equal(tcdb_lookup(db, va + 1, &b), BT_ERR_NOTFOUND);
		}
		assert_int_equal(tcdb_lookup(db, BASE - 16, &b), BT_ERR_NOTFOUND);
		assert_int_equal(tcdb_lookup(db, BASE - 0x100, &b), BT_ERR_NOTFOUND);
		assert_int_equal(tcdb_lookup(db, 0x401000, &b), BT_ERR_NOTFOUND);
		/* a learned row outside the index's span: the index is written
		 * again in the learning transaction */
		assert_int_equal(tcdb_learn_begin(db), BT_OK);
		struct tcdb_block l = block(0x401000, 5, code_b, sizeof(code_b));
		assert_int_equal(tcdb_learn_block(db, &l), BT_OK);
		assert_int_equal(tcdb_learn_commit(db), BT_OK);
		tcdb_close(db);
		assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
		assert_int_equal(tcdb_load_index(db, &n), BT_OK);
		assert_int_equal(n, 301);
		assert_int_equal(tcdb_lookup(db, 0x401000, &b), BT_OK);
		assert_int_equal(b.origin, TCDB_ORIGIN_LEARNED);
		assert_int_equal(tcdb_lookup(db, BASE, &b), BT_OK);
		tcdb_close(db);
	}
	/* no index pack (as if written before packs): the rows are scanned */
	build(p, 40, false);
	sql(p, "DELETE FROM packs");
	struct tcdb *db;
	size_t n;
	struct tcdb_block b;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(n, 40);
	assert_int_equal(tcdb_lookup(db, BASE + 16, &b), BT_OK);
	assert_int_equal(tcdb_lookup(db, BASE + 17, &b), BT_ERR_NOTFOUND);
	tcdb_close(db);
}

/* A --learn boot that ran, at BASE, the row's version (hash 1000), then
 * the kernel patched it (hash 77, code_b), and at BASE + 0x2000 a block
 * only translated at run time. */
static void learn_two_versions(const char *p)
{
	struct tcdb *db;
	size_t n;
	assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	struct tcdb_block v1 = block(BASE, 1000, code_a, sizeof(code_a));
	struct tcdb_block v2 = block(BASE, 77, code_b, sizeof(code_b));
	struct tcdb_block rt = block(BASE + 0x2000, 99, code_b, sizeof(code_b));
	assert_int_equal(tcdb_profile_note(db, &v1), BT_OK);
	assert_int_equal(tcdb_profile_note(db, &v2), BT_OK);
	assert_int_equal(tcdb_profile_note(db, &v1), BT_OK); /* installed again: one entry */
	assert_int_equal(tcdb_profile_note(db, &rt), BT_OK);
	assert_int_equal(tcdb_profile_noted(db), 3);
	struct tcdb_block bad = v1;
	bad.refusal = XLAT_REFUSE_UNDECODABLE;
	assert_int_equal(tcdb_profile_note(db, &bad), BT_ERR_INVALID);
	bad = v1;
	bad.guest_len = 0;
	assert_int_equal(tcdb_profile_note(db, &bad), BT_ERR_INVALID);
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	assert_int_equal(tcdb_learn_commit(db), BT_OK);
	tcdb_close(db);
}

static void test_multi_version(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/versions.tcdb", dir);
	build(p, 8, false);
	/* a read-only database records no profile */
	struct tcdb *db;
	struct tcdb_block b = block(BASE, 1, code_a, sizeof(code_a));
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_profile_note(db, &b), BT_ERR_INVALID);
	tcdb_close(db);
	learn_two_versions(p);

	size_t n;
	unsigned tried;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_profile_entries(db), 0); /* not loaded yet */
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_profile_entries(db), 3);
	/* before the patch: the first version */
	struct memory m = {.va = {BASE, BASE + 0x2000}, .hash = {1000, 99}, .n = 2};
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_true(b.guest_hash == 1000);
	assert_int_equal(b.code_len, sizeof(code_a));
	assert_memory_equal(b.code, code_a, sizeof(code_a));
	assert_int_equal(b.origin, TCDB_ORIGIN_PROFILE);
	assert_int_equal(tried, 1);
	/* after it: the second, offered after the first */
	m.hash[0] = 77;
	m.asked = 0;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_true(b.guest_hash == 77);
	assert_memory_equal(b.code, code_b, sizeof(code_b));
	assert_int_equal(b.n_exits, 1);
	assert_true(b.exits[0].target == BASE + 0x40);
	assert_int_equal(tried, 2);
	assert_int_equal(m.asked, 2);
	/* a third version nobody stored: every version offered, all stale */
	m.hash[0] = 12345;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_ERR_NOTFOUND);
	assert_int_equal(tried, 3); /* two profile versions, then the row */
	/* the run-time translation, which has no row */
	assert_int_equal(tcdb_lookup_match(db, BASE + 0x2000, holds, &m, &b, &tried), BT_OK);
	assert_true(b.guest_hash == 99);
	/* a start only the rows have: the row */
	m.va[0] = BASE + 16;
	m.hash[0] = 1001;
	assert_int_equal(tcdb_lookup_match(db, BASE + 16, holds, &m, &b, &tried), BT_OK);
	assert_int_equal(b.origin, TCDB_ORIGIN_STATIC);
	assert_int_equal(tried, 1);
	/* nothing anywhere: not stale */
	assert_int_equal(tcdb_lookup_match(db, BASE + 8, holds, &m, &b, &tried), BT_ERR_NOTFOUND);
	assert_int_equal(tried, 0);
	tcdb_close(db);

	/* a second --learn boot replaces the profile with its own */
	assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	b = block(BASE + 32, 1002, code_a, sizeof(code_a));
	assert_int_equal(tcdb_profile_note(db, &b), BT_OK);
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	assert_int_equal(tcdb_learn_commit(db), BT_OK);
	tcdb_close(db);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_profile_entries(db), 1);
	tcdb_close(db);

	/* a learning transaction that is not committed leaves the old profile */
	assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
	b = block(BASE + 48, 1003, code_a, sizeof(code_a));
	assert_int_equal(tcdb_profile_note(db, &b), BT_OK);
	assert_int_equal(tcdb_profile_note(db, &b), BT_OK);
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	tcdb_close(db); /* no commit */
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_profile_entries(db), 1);
	tcdb_close(db);
}

/* p: its packs fail authentication at load (not an error of the load: the
 * boot goes on); then nothing is served. */
static void assert_pack_refused(const char *p)
{
	struct tcdb *db;
	size_t n;
	unsigned tried;
	struct tcdb_block b;
	struct memory m = {.va = {BASE}, .hash = {1000}, .n = 1};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_false(tcdb_untrusted(db));
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_true(tcdb_untrusted(db));
	assert_int_equal(tcdb_profile_entries(db), 0);
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_ERR_AUTH);
	assert_int_equal(tcdb_lookup(db, BASE, &b), BT_ERR_AUTH);
	tcdb_close(db);
}

static void test_pack_auth(void **state)
{
	(void)state;
	char p[128], q[128];
	snprintf(p, sizeof(p), "%s/auth.tcdb", dir);
	snprintf(q, sizeof(q), "%s/auth-changed.tcdb", dir);
	build(p, 8, false);
	learn_two_versions(p);
	/* one byte of the stored profile */
	copy_file(p, q);
	sql(q, "UPDATE packs SET data = CAST(substr(data, 1, 20) || x'00' || substr(data, 22) "
	       "AS BLOB) WHERE kind = 4");
	assert_pack_refused(q);
	/* not a blob at all: its tag fails first */
	copy_file(p, q);
	sql(q, "UPDATE packs SET data = 'text' WHERE kind = 1");
	assert_pack_refused(q);
	struct tcdb *db;
	size_t n;
	/* another codec named for the same bytes */
	copy_file(p, q);
	sql(q, "UPDATE packs SET codec = 1 WHERE kind = 4");
	assert_pack_refused(q);
	/* another item count, raw length */
	copy_file(p, q);
	sql(q, "UPDATE packs SET n_items = 2 WHERE kind = 4");
	assert_pack_refused(q);
	copy_file(p, q);
	sql(q, "UPDATE packs SET raw_len = raw_len - 1 WHERE kind = 4");
	assert_pack_refused(q);
	/* the index's tag moved to the profile; no tag */
	copy_file(p, q);
	sql(q, "UPDATE packs SET mac = (SELECT mac FROM packs WHERE kind = 1) WHERE kind = 4");
	assert_pack_refused(q);
	copy_file(p, q);
	sql(q, "UPDATE packs SET mac = x'' WHERE kind = 1");
	assert_pack_refused(q);
	/* the start index swapped for a forged one: refused too */
	copy_file(p, q);
	sql(q, "UPDATE packs SET data = x'28b52ffd2000010000' WHERE kind = 1");
	assert_pack_refused(q);

	/* signed again (pretrans verify --sign): the profile, which no image
	 * can check, is dropped; the index is kept and valid */
	copy_file(p, q);
	assert_int_equal(tcdb_open(q, TCDB_RDWR | TCDB_UNVERIFIED, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_sign(db), BT_OK);
	tcdb_close(db);
	struct tcdb_block b;
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(n, 8);
	assert_int_equal(tcdb_profile_entries(db), 0);
	assert_int_equal(tcdb_lookup(db, BASE + 16, &b), BT_OK);
	tcdb_close(db);
}

static int count_versions(void *opaque, gva_t va, uint32_t len, uint64_t hash)
{
	(void)va;
	(void)len;
	(void)hash;
	(*(unsigned *)opaque)++;
	return 0;
}

/* The predicted-patching pack: written by a build, offered after the boot
 * profile and before the row, only to a caller of the same CPU profile. */
static void test_predicted(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/predicted.tcdb", dir);
	struct tcdb *db;
	struct tcdb_provenance pv = {
	    .xlat_version = XLAT_VERSION, .abi_version = VCPU_ABI_VERSION, .created = 1700000000};
	strcpy(pv.tool_version, "test");
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	struct tcdb_block row = block(BASE, 1000, code_a, sizeof(code_a));
	struct tcdb_block pred = block(BASE, 55, code_b, sizeof(code_b));
	assert_int_equal(tcdb_add_block(db, &row), BT_OK);
	assert_int_equal(tcdb_predicted_note(db, &pred), BT_OK);
	assert_int_equal(tcdb_predicted_note(db, &pred), BT_OK);	/* kept once */
	assert_int_equal(tcdb_profile_note(db, &pred), BT_ERR_INVALID); /* not a --learn */
	assert_int_equal(tcdb_predicted_write(db, 0xabcdef), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);

	size_t n;
	unsigned tried, count = 0;
	struct tcdb_block b;
	struct tcdb_expect ex = {.cpu_profile_hash = 0xabcdef};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, &ex, &db), BT_OK);
	assert_int_equal(tcdb_predicted_note(db, &pred), BT_ERR_INVALID); /* not building */
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_predicted_entries(db), 1);
	assert_int_equal(tcdb_profile_foreach(db, true, count_versions, &count), BT_OK);
	assert_int_equal(count, 1);
	/* the patched bytes: the predicted version */
	struct memory m = {.va = {BASE}, .hash = {55}, .n = 1};
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_int_equal(b.origin, TCDB_ORIGIN_PREDICTED);
	assert_memory_equal(b.code, code_b, sizeof(code_b));
	assert_int_equal(tried, 1);
	/* the image's bytes: the row, after the predicted version */
	m.hash[0] = 1000;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_int_equal(b.origin, TCDB_ORIGIN_STATIC);
	assert_int_equal(tried, 2);
	/* neither: stale, both offered */
	m.hash[0] = 7;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_ERR_NOTFOUND);
	assert_int_equal(tried, 2);
	tcdb_close(db);

	/* another CPU profile (or none): the pack is not used */
	for (int k = 0; k < 2; k++) {
		struct tcdb_expect other = {.cpu_profile_hash = k ? 0x1234 : 0};
		assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, &other, &db), BT_OK);
		assert_int_equal(tcdb_load_index(db, &n), BT_OK);
		assert_int_equal(tcdb_predicted_entries(db), 0);
		m.hash[0] = 55;
		assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried),
				 BT_ERR_NOTFOUND);
		assert_int_equal(tried, 1);
		tcdb_close(db);
	}

	/* its tag covers the stored bytes: one changed byte, nothing served */
	char q[128];
	snprintf(q, sizeof(q), "%s/predicted-bad.tcdb", dir);
	copy_file(p, q);
	sql(q, "UPDATE packs SET n_items = 2 WHERE kind = 3");
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, &ex, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_true(tcdb_untrusted(db));
	tcdb_close(db);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_tcdb_pack.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	test_private_config();
	bt_log_to(fopen("/dev/null", "w")); /* the refusals are expected */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_index_pack),
	    cmocka_unit_test(test_multi_version),
	    cmocka_unit_test(test_pack_auth),
	    cmocka_unit_test(test_predicted),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
