/*
 * Unit tests for the packs of db/tcdb (docs/db.md "Packs") on real sqlite
 * files: the start-index pack answers misses exactly as the rows do (also
 * after learned rows changed the set of starts); a --learn boot's profile
 * keeps several versions per start (keyed by start and guest hash) and
 * tcdb_lookup_match hands out the one guest memory holds, in first-use
 * order, then the row; stale and missing are told apart; a changed pack
 * (its bytes, its codec, its tag) fails authentication and the database
 * then serves nothing; a re-signed database drops the profile and keeps
 * the index; the user templates' pair comes back byte for byte in
 * malloc'd memory, and a changed byte of it is refused.
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
	struct tcdb_block b = {.blk = {.guest_start = va,
				       .guest_len = 16,
				       .n_insns = 3,
				       .guest_hash = hash,
				       .code = code,
				       .code_len = len,
				       .pcmap = pcmap,
				       .pcmap_len = sizeof(pcmap),
				       .n_exits = 1}};
	b.blk.exits[0] = (struct bt_exit){
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
	struct tcdb_block r = {.blk = {.guest_start = BASE - 0x100,
				       .guest_len = 5,
				       .refusal = XLAT_REFUSE_UNDECODABLE,
				       .refusal_addr = BASE - 0x100}};
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
			assert_true(b.blk.guest_hash == 1000u + (unsigned)i);
			assert_int_equal(tcdb_lookup(db, va + 1, &b), BT_ERR_NOTFOUND);
		}
		assert_int_equal(tcdb_lookup(db, BASE - 16, &b), BT_ERR_NOTFOUND);
		assert_int_equal(tcdb_lookup(db, BASE - 0x100, &b), BT_ERR_NOTFOUND);
		assert_int_equal(tcdb_lookup(db, 0x401000, &b), BT_ERR_NOTFOUND);
		/* a learned row outside the index's span: the index is written
		 * again in the learning transaction */
		assert_int_equal(tcdb_learn_begin(db), BT_OK);
		struct tcdb_block l = block(0x401000, 5, code_b, sizeof(code_b));
		assert_int_equal(tcdb_learn_block(db, &l.blk), BT_OK);
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
	assert_int_equal(tcdb_profile_note(db, &v1.blk), BT_OK);
	assert_int_equal(tcdb_profile_note(db, &v2.blk), BT_OK);
	assert_int_equal(tcdb_profile_note(db, &v1.blk), BT_OK); /* installed again: one entry */
	assert_int_equal(tcdb_profile_note(db, &rt.blk), BT_OK);
	assert_int_equal(tcdb_profile_noted(db), 3);
	struct tcdb_block bad = v1;
	bad.blk.refusal = XLAT_REFUSE_UNDECODABLE;
	assert_int_equal(tcdb_profile_note(db, &bad.blk), BT_ERR_INVALID);
	bad = v1;
	bad.blk.guest_len = 0;
	assert_int_equal(tcdb_profile_note(db, &bad.blk), BT_ERR_INVALID);
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
	assert_int_equal(tcdb_profile_note(db, &b.blk), BT_ERR_INVALID);
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
	assert_true(b.blk.guest_hash == 1000);
	assert_int_equal(b.blk.code_len, sizeof(code_a));
	assert_memory_equal(b.blk.code, code_a, sizeof(code_a));
	assert_int_equal(b.origin, TCDB_ORIGIN_PROFILE);
	assert_int_equal(tried, 1);
	/* after it: the second, offered after the first */
	m.hash[0] = 77;
	m.asked = 0;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_true(b.blk.guest_hash == 77);
	assert_memory_equal(b.blk.code, code_b, sizeof(code_b));
	assert_int_equal(b.blk.n_exits, 1);
	assert_true(b.blk.exits[0].target == BASE + 0x40);
	assert_int_equal(tried, 2);
	assert_int_equal(m.asked, 2);
	/* a third version nobody stored: every version offered, all stale */
	m.hash[0] = 12345;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_ERR_NOTFOUND);
	assert_int_equal(tried, 3); /* two profile versions, then the row */
	/* the run-time translation, which has no row */
	assert_int_equal(tcdb_lookup_match(db, BASE + 0x2000, holds, &m, &b, &tried), BT_OK);
	assert_true(b.blk.guest_hash == 99);
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
	assert_int_equal(tcdb_profile_note(db, &b.blk), BT_OK);
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
	assert_int_equal(tcdb_profile_note(db, &b.blk), BT_OK);
	assert_int_equal(tcdb_profile_note(db, &b.blk), BT_OK);
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
	       "AS BLOB) WHERE kind = 5");
	assert_pack_refused(q);
	/* not a blob at all: its tag fails first */
	copy_file(p, q);
	sql(q, "UPDATE packs SET data = 'text' WHERE kind = 1");
	assert_pack_refused(q);
	struct tcdb *db;
	size_t n;
	/* another codec named for the same bytes */
	copy_file(p, q);
	sql(q, "UPDATE packs SET codec = 1 WHERE kind = 5");
	assert_pack_refused(q);
	/* another item count, raw length */
	copy_file(p, q);
	sql(q, "UPDATE packs SET n_items = 2 WHERE kind = 5");
	assert_pack_refused(q);
	copy_file(p, q);
	sql(q, "UPDATE packs SET raw_len = raw_len - 1 WHERE kind = 5");
	assert_pack_refused(q);
	/* the index's tag moved to the profile; no tag */
	copy_file(p, q);
	sql(q, "UPDATE packs SET mac = (SELECT mac FROM packs WHERE kind = 1) WHERE kind = 5");
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
	assert_int_equal(tcdb_predicted_note(db, &pred.blk), BT_OK);
	assert_int_equal(tcdb_predicted_note(db, &pred.blk), BT_OK);	    /* kept once */
	assert_int_equal(tcdb_profile_note(db, &pred.blk), BT_ERR_INVALID); /* not a --learn */
	assert_int_equal(tcdb_predicted_write(db, 0xabcdef), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);

	size_t n;
	unsigned tried, count = 0;
	struct tcdb_block b;
	struct tcdb_expect ex = {.cpu_profile_hash = 0xabcdef};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, &ex, &db), BT_OK);
	assert_int_equal(tcdb_predicted_note(db, &pred.blk), BT_ERR_INVALID); /* not building */
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_predicted_entries(db), 1);
	assert_int_equal(tcdb_profile_foreach(db, true, count_versions, &count), BT_OK);
	assert_int_equal(count, 1);
	/* the patched bytes: the predicted version */
	struct memory m = {.va = {BASE}, .hash = {55}, .n = 1};
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_int_equal(b.origin, TCDB_ORIGIN_PREDICTED);
	assert_memory_equal(b.blk.code, code_b, sizeof(code_b));
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

/* A code sink (tcdb_set_code_sink): what it was asked for, and its memory. */
struct sink {
	uint8_t buf[256] __attribute__((aligned(16)));
	size_t asked;
	unsigned calls;
	bool refuse;
};

static uint8_t *sink_fn(void *opaque, size_t len)
{
	struct sink *k = opaque;
	k->calls++;
	k->asked = len;
	return k->refuse || len > sizeof(k->buf) ? NULL : k->buf;
}

/* Every version of learn_two_versions' profile, from db (loaded), with
 * its code bytes; returns the code pointer of BASE's first version. */
static const uint8_t *check_versions(struct tcdb *db)
{
	struct memory m = {.va = {BASE, BASE + 0x2000}, .hash = {1000, 99}, .n = 2};
	struct tcdb_block b;
	unsigned tried;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_int_equal(b.origin, TCDB_ORIGIN_PROFILE);
	assert_int_equal(b.blk.code_len, sizeof(code_a));
	assert_memory_equal(b.blk.code, code_a, sizeof(code_a));
	assert_memory_equal(b.blk.pcmap, pcmap, sizeof(pcmap));
	assert_int_equal(b.blk.n_exits, 1);
	assert_int_equal(b.blk.exits[0].stub_off, 7);
	const uint8_t *first = b.blk.code;
	m.hash[0] = 77;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_memory_equal(b.blk.code, code_b, sizeof(code_b));
	assert_ptr_equal(b.blk.code, first + 16); /* the next one, 16-byte aligned */
	assert_int_equal(tcdb_lookup_match(db, BASE + 0x2000, holds, &m, &b, &tried), BT_OK);
	assert_memory_equal(b.blk.code, code_b, sizeof(code_b));
	assert_ptr_equal(b.blk.code, first + 32);
	return first;
}

/* The profile's code arrives in one piece where the caller's sink says
 * (btvm: its code cache), in first-use order; without a sink, or when it
 * refuses, in db's own memory, the same bytes.  A profile of the older
 * layout (kind 2) is not read, and the next --learn commit deletes it. */
static void test_profile_code_sink(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/sink.tcdb", dir);
	build(p, 8, false);
	learn_two_versions(p);
	struct tcdb *db;
	size_t n;
	static struct sink k;

	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	tcdb_set_code_sink(db, sink_fn, &k);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(k.calls, 1);
	assert_int_equal(k.asked, 32 + sizeof(code_b)); /* a, b, b: 16-byte aligned */
	assert_ptr_equal(check_versions(db), k.buf);
	assert_memory_equal(k.buf + 16, code_b, sizeof(code_b));
	tcdb_close(db);

	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	k.refuse = true;
	tcdb_set_code_sink(db, sink_fn, &k);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(k.calls, 2);
	assert_ptr_not_equal(check_versions(db), k.buf);
	tcdb_close(db);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK); /* no sink */
	check_versions(db);
	tcdb_close(db);

	/* the older layout's pack: not read (its blocks come from the rows) */
	sql(p, "UPDATE packs SET kind = 2 WHERE kind = 5");
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_profile_entries(db), 0);
	assert_false(tcdb_untrusted(db));
	struct memory m = {.va = {BASE}, .hash = {1000}, .n = 1};
	struct tcdb_block b;
	unsigned tried;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_int_equal(b.origin, TCDB_ORIGIN_STATIC);
	tcdb_close(db);
	learn_two_versions(p);
	sqlite3 *h;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT group_concat(kind) FROM packs ORDER BY kind",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "1,5");
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/* A profile pack (kind 5, codec none) of two entries whose codes are at
 * off0 and off1 of a tail of tail_len bytes, stored untagged in p. */
static void forge_profile(const char *p, uint32_t off0, uint32_t off1, uint32_t tail_len)
{
	enum { HDR = 41, ENT = HDR + 3 + 20 };
	uint8_t blob[16 + 2 * ENT + 64] = {0};
	uint64_t head = 16 + 2 * ENT;
	memcpy(blob, &head, 8);
	for (int i = 0; i < 2; i++) {
		uint8_t *q = blob + 16 + i * ENT;
		uint64_t va = BASE + 0x100u * (unsigned)i, hash = 5;
		uint32_t f[6] = {16, 1, 0, 8, 3, 0}; /* glen, insns, flags, code, pcmap */
		memcpy(q, &va, 8);
		memcpy(q + 8, &hash, 8);
		memcpy(q + 16, f, 20);
		q[36] = 1;
		uint32_t off = i ? off1 : off0;
		memcpy(q + 37, &off, 4);
		memcpy(q + HDR, pcmap, 3);
		q[HDR + 3] = XLAT_EXIT_RET; /* kind, then patch ~0, stub, target */
		memset(q + HDR + 4, 0xff, 4);
	}
	char q[512];
	snprintf(q, sizeof(q),
		 "INSERT OR REPLACE INTO packs(kind, codec, raw_len, n_items, data, mac) "
		 "VALUES(5, 0, %u, 2, zeroblob(%u), x'')",
		 (unsigned)(head + tail_len), (unsigned)(head + tail_len));
	sql(p, q);
	/* the head's bytes in place of the zeros */
	sqlite3 *h;
	sqlite3_blob *bl;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_blob_open(h, "main", "packs", "data", 5, 1, &bl), SQLITE_OK);
	assert_int_equal(sqlite3_blob_write(bl, blob, (int)head, 0), SQLITE_OK);
	sqlite3_blob_close(bl);
	sqlite3_close(h);
}

/* Damaged code offsets (read untagged, TCDB_UNVERIFIED): out of the tail,
 * overlapping the code before, not 16-byte aligned: the profile is
 * refused whole (BT_ERR_FORMAT), never handed out. */
static void test_profile_offsets(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/offsets.tcdb", dir);
	build(p, 8, false);
	static const uint32_t bad[][3] = {{0, 32, 32}, {0, 4, 64}, {0, 24, 64}, {16, 0, 64}};
	struct tcdb *db;
	size_t n;
	forge_profile(p, 0, 16, 24); /* good: the check passes what it should */
	assert_int_equal(tcdb_open(p, TCDB_RDONLY | TCDB_UNVERIFIED, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_profile_entries(db), 2);
	tcdb_close(db);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		forge_profile(p, bad[i][0], bad[i][1], bad[i][2]);
		assert_int_equal(tcdb_open(p, TCDB_RDONLY | TCDB_UNVERIFIED, &want, NULL, &db),
				 BT_OK);
		assert_int_equal(tcdb_load_index(db, &n), BT_ERR_FORMAT);
		assert_int_equal(tcdb_profile_entries(db), 0);
		tcdb_close(db);
	}
}

/* The look-up order does not change what is handed out: the profile
 * [BASE v1, BASE v2, BASE + 0x2000] asked out of order, and in order
 * (where the entry after the last one taken is tried first), gives the
 * version guest memory holds, trying versions in first-use order. */
static void test_profile_cursor(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/cursor.tcdb", dir);
	build(p, 8, false);
	learn_two_versions(p);
	struct tcdb *db;
	size_t n;
	unsigned tried;
	struct tcdb_block b;
	struct memory m = {.va = {BASE, BASE + 0x2000}, .hash = {77, 99}, .n = 2};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_lookup_match(db, BASE + 0x2000, holds, &m, &b, &tried), BT_OK);
	assert_true(b.blk.guest_hash == 99);
	assert_int_equal(tried, 1);
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_true(b.blk.guest_hash == 77); /* v1 offered first, then v2 taken */
	assert_int_equal(tried, 2);
	/* next in order: BASE + 0x2000 again, then BASE's first version */
	assert_int_equal(tcdb_lookup_match(db, BASE + 0x2000, holds, &m, &b, &tried), BT_OK);
	assert_true(b.blk.guest_hash == 99);
	assert_int_equal(tried, 1);
	m.hash[0] = 1000;
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_true(b.blk.guest_hash == 1000);
	assert_int_equal(tried, 1);
	/* again: the entry after v1 is v2, not a first version: the hash */
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_OK);
	assert_true(b.blk.guest_hash == 1000 && b.blk.code_len == sizeof(code_a));
	m.hash[0] = 5; /* stale: every version offered, then the row */
	assert_int_equal(tcdb_lookup_match(db, BASE, holds, &m, &b, &tried), BT_ERR_NOTFOUND);
	assert_int_equal(tried, 3);
	tcdb_close(db);
}

/* The user templates' pair (tcdb_user_tmpl_put/_get, tcdb_pack_get_heap):
 * read back byte for byte into malloc'd memory (what the binder free()s:
 * a buffer of tcdb_pack_alloc would abort there), 3 MB of it (glibc's
 * mmap'd chunks, a zstd frame of several blocks); one changed byte of the
 * stored pack: refused, nothing handed out, the database untrusted. */
static void test_user_tmpl_heap(void **state)
{
	(void)state;
	char p[128], q[128];
	snprintf(p, sizeof(p), "%s/user.tcdb", dir);
	snprintf(q, sizeof(q), "%s/user-changed.tcdb", dir);
	build(p, 8, false);
	size_t pack_len = 3u << 20, index_len = 5000;
	uint8_t *pack = malloc(pack_len), *index = malloc(index_len);
	assert_non_null(pack);
	assert_non_null(index);
	uint32_t x = 12345;
	for (size_t i = 0; i < pack_len; i++) { /* compressible, not constant */
		x = x * 1103515245u + 12345u;
		pack[i] = (uint8_t)(i % 61 < 40 ? i / 97 : x >> 24);
	}
	for (size_t i = 0; i < index_len; i++)
		index[i] = (uint8_t)(i * 7);
	struct tcdb *db;
	size_t n;
	assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(tcdb_user_tmpl_put(db, pack, pack_len, index, index_len, 42),
			 BT_ERR_INVALID); /* outside the learn transaction */
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	assert_int_equal(tcdb_user_tmpl_put(db, pack, pack_len, index, index_len, 42), BT_OK);
	assert_int_equal(tcdb_learn_commit(db), BT_OK);
	tcdb_close(db);

	uint8_t *raw;
	size_t len;
	uint64_t items;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	for (int idx = 0; idx < 2; idx++) {
		assert_int_equal(tcdb_user_tmpl_get(db, idx, &raw, &len, &items), BT_OK);
		assert_int_equal(items, 42);
		assert_int_equal(len, idx ? index_len : pack_len);
		assert_memory_equal(raw, idx ? index : pack, len);
		free(raw); /* malloc'd (tcdb.h) */
	}
	assert_false(tcdb_untrusted(db));
	tcdb_close(db);

	copy_file(p, q);
	sql(q, "UPDATE packs SET data = CAST(substr(data, 1, 999) || x'55' || substr(data, 1001) "
	       "AS BLOB) WHERE kind = 8");
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	raw = NULL;
	assert_int_equal(tcdb_user_tmpl_get(db, false, &raw, &len, &items), BT_ERR_AUTH);
	assert_null(raw);
	assert_true(tcdb_untrusted(db));
	assert_int_equal(tcdb_user_tmpl_get(db, true, &raw, &len, &items), BT_ERR_AUTH);
	tcdb_close(db);
	free(pack);
	free(index);
}

int main(void)
{
	test_private_config();
	bt_log_to(fopen("/dev/null", "w")); /* the refusals are expected */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_index_pack),	      cmocka_unit_test(test_multi_version),
	    cmocka_unit_test(test_pack_auth),	      cmocka_unit_test(test_predicted),
	    cmocka_unit_test(test_profile_code_sink), cmocka_unit_test(test_profile_offsets),
	    cmocka_unit_test(test_profile_cursor),    cmocka_unit_test(test_user_tmpl_heap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
