/*
 * Chunk directories and the chunk map (schema 7, docs/db.md "Chunk
 * directory"): a build's blocks listed in their chunks, found by address
 * through the chunk map, walked in address order merged with learned rows;
 * the first chunk of a start wins; a changed directory or map fails its
 * tag; a damaged directory under TCDB_UNVERIFIED is a format error; a
 * schema-6 database is refused; chunks sealed with the database's zstd
 * dictionary read back, and not with a changed or missing one.
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
#include <zstd.h>

static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

static char dir[64];

#define A 0xffffffff81000000ull

static const uint8_t code_x[] = {0x90, 0xc3};
static const uint8_t code_y[] = {0x48, 0x89, 0xc3, 0xc3};
static const uint8_t pcmap[] = {1, 2};

static struct tcdb_block blk(gva_t va, uint64_t hash, const uint8_t *code, uint32_t len)
{
	return (struct tcdb_block){
	    .blk = {.guest_start = va,
		    .guest_len = 8,
		    .n_insns = 2,
		    .guest_hash = hash,
		    .flags = 1,
		    .code = code,
		    .code_len = len,
		    .pcmap = pcmap,
		    .pcmap_len = sizeof(pcmap),
		    .n_exits = 1,
		    .exits = {{.kind = XLAT_EXIT_RET, .patch_off = ~0u, .stub_off = 1}}}};
}

static void add_funcs(struct tcdb *db, int n, int64_t *first)
{
	for (int i = 0; i < n; i++) {
		struct tcdb_function f = {.name = "f", .address = A, .section = ".text"};
		assert_int_equal(tcdb_add_function(db, &f), BT_OK);
		if (i == 0)
			*first = f.id;
	}
}

struct built {
	int64_t c1, c2, f1, f2;
	size_t added;
};

/*
 * Chunk 1: A (hash 1, region 0), A+0x40 (hash 2, region 1), a refused
 * region at A+0x80 (region 1).  Chunk 2: A+0x20 (hash 3, region 0, between
 * chunk 1's starts: the map has three runs) and A again (hash 9: chunk 1
 * holds A, this one is never served).
 */
static void build(const char *p, struct built *o)
{
	struct tcdb *db;
	struct tcdb_provenance pv = {
	    .xlat_version = XLAT_VERSION, .abi_version = VCPU_ABI_VERSION, .created = 1700000000};
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	struct tcdb_chunk c = {0};
	struct tcdb_block b1[3] = {blk(A, 1, code_x, sizeof(code_x)),
				   blk(A + 0x40, 2, code_y, sizeof(code_y)),
				   {.blk = {.guest_start = A + 0x80,
					    .guest_len = 3,
					    .guest_hash = 7,
					    .refusal = 1,
					    .refusal_addr = A + 0x81}}};
	uint32_t region[3] = {0, 1, 1};
	for (int i = 0; i < 3; i++)
		assert_int_equal(tcdb_chunk_add_block(&c, &b1[i], region[i]), BT_OK);
	assert_int_equal(tcdb_chunk_seal(&c), BT_OK);
	assert_int_equal(tcdb_chunk_add_block(&c, &b1[0], 0), BT_ERR_INVALID); /* closed */
	assert_int_equal(tcdb_add_chunk(db, &c, &o->c1), BT_OK);
	add_funcs(db, 2, &o->f1);
	for (int i = 0; i < 3; i++) {
		b1[i].chunk_id = o->c1;
		assert_int_equal(tcdb_add_block(db, &b1[i]), BT_OK);
	}
	tcdb_chunk_reset(&c);
	struct tcdb_block b2[2] = {blk(A + 0x20, 3, code_y, sizeof(code_y)),
				   blk(A, 9, code_y, sizeof(code_y))};
	for (int i = 0; i < 2; i++)
		assert_int_equal(tcdb_chunk_add_block(&c, &b2[i], 0), BT_OK);
	assert_int_equal(tcdb_chunk_seal(&c), BT_OK);
	assert_int_equal(tcdb_add_chunk(db, &c, &o->c2), BT_OK);
	add_funcs(db, 1, &o->f2);
	for (int i = 0; i < 2; i++) {
		b2[i].chunk_id = o->c2;
		assert_int_equal(tcdb_add_block(db, &b2[i]), BT_OK);
	}
	/* a block its chunk does not list */
	struct tcdb_block stray = blk(A + 0x1000, 4, code_x, sizeof(code_x));
	stray.chunk_id = o->c2;
	assert_int_equal(tcdb_add_block(db, &stray), BT_ERR_INVALID);
	o->added = tcdb_blocks_added(db);
	tcdb_chunk_fini(&c);
	assert_int_equal(tcdb_commit(db), BT_OK);
}

struct seen {
	gva_t va[16];
	uint64_t hash[16];
	uint32_t origin[16], refusal[16];
	bool code[16];
	int n;
};

static int on_block(void *opaque, const struct tcdb_block *b)
{
	struct seen *s = opaque;
	if (s->n < 16) {
		s->va[s->n] = b->blk.guest_start;
		s->hash[s->n] = b->blk.guest_hash;
		s->origin[s->n] = b->origin;
		s->refusal[s->n] = b->blk.refusal;
		s->code[s->n] = b->blk.code != NULL;
	}
	s->n++;
	return 0;
}

static void path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

static void sql(const char *p, const char *q)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, q, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void test_lookup_and_walk(void **state)
{
	(void)state;
	char p[128];
	path_in(p, sizeof(p), "dir.tcdb");
	struct built o;
	build(p, &o);
	assert_int_equal(o.added, 4); /* A, A+0x40, A+0x80 refused, A+0x20 */
	for (int pass = 0; pass < 2; pass++) {
		struct tcdb *db;
		assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
		size_t n = 0;
		if (pass == 1) { /* the same through the start-index bitmap */
			assert_int_equal(tcdb_load_index(db, &n), BT_OK);
			assert_int_equal(n, 3);
		}
		struct tcdb_block b;
		assert_int_equal(tcdb_lookup(db, A, &b), BT_OK);
		assert_int_equal(b.blk.guest_hash, 1); /* chunk 1's: the first wins */
		assert_int_equal(b.blk.code_len, sizeof(code_x));
		assert_memory_equal(b.blk.code, code_x, sizeof(code_x));
		assert_int_equal(b.function_id, o.f1);
		assert_int_equal(b.chunk_id, o.c1);
		assert_int_equal(b.blk.n_exits, 1);
		assert_int_equal(b.blk.exits[0].kind, XLAT_EXIT_RET);
		assert_int_equal(b.blk.pcmap_len, sizeof(pcmap));
		assert_int_equal(tcdb_lookup(db, A + 0x40, &b), BT_OK);
		assert_int_equal(b.blk.guest_hash, 2);
		assert_int_equal(b.function_id, o.f1 + 1);
		assert_memory_equal(b.blk.code, code_y, sizeof(code_y));
		assert_int_equal(tcdb_lookup(db, A + 0x20, &b), BT_OK);
		assert_int_equal(b.blk.guest_hash, 3);
		assert_int_equal(b.function_id, o.f2);
		assert_int_equal(b.chunk_id, o.c2);
		assert_int_equal(tcdb_lookup(db, A + 0x80, &b), BT_ERR_NOTFOUND); /* refused */
		assert_int_equal(tcdb_lookup(db, A + 0x10, &b), BT_ERR_NOTFOUND);
		assert_int_equal(tcdb_lookup(db, A + 0x1000, &b), BT_ERR_NOTFOUND);
		tcdb_close(db);
	}
	struct tcdb *db;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	struct seen s = {0};
	assert_int_equal(tcdb_foreach_block(db, on_block, &s), BT_OK);
	assert_int_equal(s.n, 4);
	const gva_t order[4] = {A, A + 0x20, A + 0x40, A + 0x80};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(s.va[i], order[i]);
		assert_int_equal(s.code[i], i < 3);
	}
	assert_int_equal(s.refusal[3], 1);
	/* a range: only the starts inside it, in order */
	memset(&s, 0, sizeof(s));
	assert_int_equal(tcdb_foreach_block_range(db, A + 0x10, A + 0x41, on_block, &s), BT_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.va[0], A + 0x20);
	assert_int_equal(s.va[1], A + 0x40);
	/* without payloads */
	memset(&s, 0, sizeof(s));
	assert_int_equal(tcdb_foreach_block_meta(db, on_block, &s), BT_OK);
	assert_int_equal(s.n, 4);
	assert_false(s.code[0]);
	tcdb_close(db);
	/* no row of `blocks` was written */
	sqlite3 *h;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM blocks", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/* A learned row replaces the build's block of its start, in look-ups, walks
 * and the start index. */
static void test_learned_over_static(void **state)
{
	(void)state;
	char p[128];
	path_in(p, sizeof(p), "learn.tcdb");
	struct built o;
	build(p, &o);
	struct tcdb *db;
	assert_int_equal(tcdb_open(p, TCDB_RDWR, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_learn_begin(db), BT_OK);
	struct tcdb_block l = blk(A + 0x40, 77, code_x, sizeof(code_x));
	assert_int_equal(tcdb_learn_block(db, &l.blk), BT_OK);
	struct tcdb_block r = blk(A + 0x80, 78, code_x, sizeof(code_x)); /* was refused */
	assert_int_equal(tcdb_learn_block(db, &r.blk), BT_OK);
	assert_int_equal(tcdb_learn_commit(db), BT_OK);
	tcdb_close(db);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	size_t n;
	assert_int_equal(tcdb_load_index(db, &n), BT_OK);
	assert_int_equal(n, 4);
	struct tcdb_block b;
	assert_int_equal(tcdb_lookup(db, A + 0x40, &b), BT_OK);
	assert_int_equal(b.blk.guest_hash, 77);
	assert_int_equal(b.origin, TCDB_ORIGIN_LEARNED);
	assert_int_equal(tcdb_lookup(db, A + 0x80, &b), BT_OK);
	assert_int_equal(b.blk.guest_hash, 78);
	assert_int_equal(tcdb_lookup(db, A, &b), BT_OK);
	assert_int_equal(b.blk.guest_hash, 1);
	assert_int_equal(b.origin, TCDB_ORIGIN_STATIC);
	struct seen s = {0};
	assert_int_equal(tcdb_foreach_block(db, on_block, &s), BT_OK);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.va[2], A + 0x40);
	assert_int_equal(s.hash[2], 77);
	assert_int_equal(s.origin[2], TCDB_ORIGIN_LEARNED);
	assert_int_equal(s.va[3], A + 0x80);
	assert_int_equal(s.refusal[3], 0);
	tcdb_close(db);
}

/* Chunk id's stored bytes replaced by the zstd frame of its raw bytes with
 * fix() applied (the tag is left as it was). */
static void rewrite_chunk(const char *p, int64_t id, void (*fix)(uint8_t *raw, size_t len))
{
	struct tcdb *db;
	uint8_t *raw, *z;
	size_t raw_len, z_len;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_read_chunk(db, id, &raw, &raw_len, &z, &z_len), BT_OK);
	tcdb_close(db);
	fix(raw, raw_len);
	size_t zl = ZSTD_compressBound(raw_len);
	uint8_t *nz = malloc(zl);
	zl = ZSTD_compress(nz, zl, raw, raw_len, 1);
	assert_false(ZSTD_isError(zl));
	sqlite3 *h;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(h, "UPDATE chunks SET data = ?1 WHERE id = ?2", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_blob(st, 1, nz, (int)zl, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(raw);
	free(z);
	free(nz);
}

/* The directory's first byte (of the first start's key) changed: it lists
 * another address. */
static void fix_dir_start(uint8_t *raw, size_t len)
{
	uint32_t dlen;
	memcpy(&dlen, raw + len - 4, 4);
	raw[len - 8 - dlen] ^= 0x02; /* the first start's key: another address */
}

static void fix_dir_len(uint8_t *raw, size_t len)
{
	uint32_t dlen;
	memcpy(&dlen, raw + len - 4, 4);
	dlen += 1000000; /* the directory reaches before the chunk */
	memcpy(raw + len - 4, &dlen, 4);
}

static void test_tampered_directory(void **state)
{
	(void)state;
	char p[128], q[128];
	path_in(p, sizeof(p), "tamper.tcdb");
	path_in(q, sizeof(q), "tamper2.tcdb");
	struct built o;
	build(p, &o);
	/* a changed directory fails the chunk's tag: nothing served */
	rewrite_chunk(p, o.c1, fix_dir_start);
	struct tcdb *db;
	struct tcdb_block b;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A + 0x40, &b), BT_ERR_AUTH);
	assert_true(tcdb_untrusted(db));
	assert_int_equal(tcdb_lookup(db, A + 0x20, &b), BT_ERR_AUTH); /* chunk 2's too */
	tcdb_close(db);
	/* the same bytes unverified (as verify --sign reads): the damage is a
	 * format error, never a block */
	assert_int_equal(tcdb_open(p, TCDB_RDONLY | TCDB_UNVERIFIED, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A + 0x20, &b), BT_OK); /* chunk 2 is intact */
	assert_int_not_equal(tcdb_lookup(db, A, &b), BT_OK);
	tcdb_close(db);
	build(q, &o);
	rewrite_chunk(q, o.c1, fix_dir_len);
	assert_int_equal(tcdb_open(q, TCDB_RDONLY | TCDB_UNVERIFIED, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A, &b), BT_ERR_FORMAT);
	struct seen s = {0};
	assert_int_equal(tcdb_foreach_block(db, on_block, &s), BT_ERR_FORMAT);
	tcdb_close(db);
	/* a changed chunk map fails the pack's tag */
	unlink(q);
	build(q, &o);
	sql(q, "UPDATE packs SET n_items = n_items + 1 WHERE kind = 10");
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A, &b), BT_ERR_AUTH);
	tcdb_close(db);
	/* a chunk's first function id changed fails the chunk's tag */
	unlink(q);
	build(q, &o);
	sql(q, "UPDATE chunks SET func0 = func0 + 1");
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A, &b), BT_ERR_AUTH);
	tcdb_close(db);
}

/* A database of schema 6 (rows per block) is refused: rebuild it. */
static void test_old_schema(void **state)
{
	(void)state;
	char p[128];
	path_in(p, sizeof(p), "old.tcdb");
	struct built o;
	build(p, &o);
	sql(p, "PRAGMA user_version = 6");
	struct tcdb *db;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_ERR_VERSION);
}

/* One bit of byte off of the stored pack of this kind flipped. */
static void flip_pack_byte(const char *p, int kind, int off)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(h, "SELECT data FROM packs WHERE kind = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int(st, 1, kind);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_bytes(st, 0);
	assert_true(n > off);
	uint8_t *b = malloc((size_t)n);
	memcpy(b, sqlite3_column_blob(st, 0), (size_t)n);
	sqlite3_finalize(st);
	b[off] ^= 0x20;
	assert_int_equal(
	    sqlite3_prepare_v2(h, "UPDATE packs SET data = ?2 WHERE kind = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int(st, 1, kind);
	sqlite3_bind_blob(st, 2, b, n, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(b);
}

/* Chunks sealed with a trained dictionary: read back through it; a changed
 * dictionary pack fails its tag, a missing one is a format error. */
static void test_zdict(void **state)
{
	(void)state;
	enum { NS = 200, SL = 2048 };
	uint8_t *samples = malloc(NS * SL);
	size_t sizes[NS];
	uint32_t x = 12345;
	for (int i = 0; i < NS; i++) { /* recurring shapes with varying fields */
		for (int j = 0; j < SL; j++) {
			x = x * 1103515245u + 12345u;
			samples[i * SL + j] =
			    (j % 16 < 12) ? (uint8_t)(j * 7 + j / 16) : (uint8_t)(x >> 24);
		}
		sizes[i] = SL;
	}
	struct tcdb_zdict *d;
	assert_int_equal(tcdb_zdict_train(samples, sizes, NS, 8192, &d), BT_OK);
	assert_int_not_equal(tcdb_zdict_id(d), 0);
	char p[128], q[128];
	path_in(p, sizeof(p), "zdict.tcdb");
	path_in(q, sizeof(q), "zdict2.tcdb");
	struct tcdb *db;
	struct tcdb_provenance pv = {
	    .xlat_version = XLAT_VERSION, .abi_version = VCPU_ABI_VERSION, .created = 1700000000};
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	assert_int_equal(tcdb_add_zdict(db, d), BT_OK);
	struct tcdb_chunk c = {0};
	struct tcdb_block b = blk(A, 5, samples, SL); /* code that resembles the samples */
	assert_int_equal(tcdb_chunk_add_block(&c, &b, 0), BT_OK);
	assert_int_equal(tcdb_chunk_seal_with(&c, d), BT_OK);
	assert_int_equal(tcdb_frame_dict_id(c.z, c.z_len), tcdb_zdict_id(d));
	int64_t id, f0;
	assert_int_equal(tcdb_add_chunk(db, &c, &id), BT_OK);
	add_funcs(db, 1, &f0);
	b.chunk_id = id;
	assert_int_equal(tcdb_add_block(db, &b), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);
	tcdb_chunk_fini(&c);
	struct tcdb_block r;
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A, &r), BT_OK);
	assert_int_equal(r.blk.code_len, SL);
	assert_memory_equal(r.blk.code, samples, SL);
	struct tcdb_zdict *back;
	assert_int_equal(tcdb_get_zdict(db, &back), BT_OK);
	assert_int_equal(tcdb_zdict_id(back), tcdb_zdict_id(d));
	tcdb_zdict_free(back);
	tcdb_close(db);
	/* one byte of the stored dictionary changed: its tag fails */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p, q);
	assert_int_equal(system(cmd), 0);
	flip_pack_byte(q, 11, 100);
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A, &r), BT_ERR_AUTH);
	tcdb_close(db);
	/* no dictionary: a chunk naming one is a format error */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p, q);
	assert_int_equal(system(cmd), 0);
	sql(q, "DELETE FROM packs WHERE kind = 11");
	assert_int_equal(tcdb_open(q, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, A, &r), BT_ERR_FORMAT);
	tcdb_close(db);
	tcdb_zdict_free(d);
	free(samples);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_tcdb_dir.XXXXXX");
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
	    cmocka_unit_test(test_lookup_and_walk),
	    cmocka_unit_test(test_learned_over_static),
	    cmocka_unit_test(test_tampered_directory),
	    cmocka_unit_test(test_old_schema),
	    cmocka_unit_test(test_zdict),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
