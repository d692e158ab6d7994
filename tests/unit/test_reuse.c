/*
 * Unit tests of the pieces `pretrans build --reuse` rests on: the chunk
 * read-back API of db/ (tcdb_read_chunk gives a chunk's raw and stored
 * bytes, tcdb_foreach_block_meta leaves payloads unread, tcdb_payload_parse
 * finds them in the raw bytes and rejects ones that do not fit,
 * tcdb_chunk_seal_copy stores given compressed bytes), and pbuild_run's
 * refusals: OLD built with other options is refused before anything is
 * written, a non-database OLD is refused; the same options build.
 * End-to-end equality with a full build: tests/integration/reuse-build.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "db/tcdb.h"
#include "pretrans/base/log.h"
#include "pretrans/build.h"
#include "pretrans/xlat/xlat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/tmp_image.h"
#include "tests/unit/test_config.h"

/* The translator the databases of this test come from. */
static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

static const uint8_t code_a[] = {0x48, 0x89, 0xc3, 0xc3}, code_b[] = {0x90, 0x90, 0xcc};
static const uint8_t pcmap_a[] = {1, 2, 3};

struct seen {
	int n;
	struct tcdb_block b[4];
};

static int on_block(void *opaque, const struct tcdb_block *b)
{
	struct seen *s = opaque;
	assert_true(s->n < 4);
	s->b[s->n++] = *b;
	return 0;
}

static void test_chunk_read_back(void **state)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/chunks.tcdb", dir);
	struct tcdb_image im = {.entry = 0x1000};
	strcpy(im.path, "x");
	strcpy(im.sha256, "00");
	strcpy(im.arch, "x86_64");
	struct xlat_options xo = {0};
	struct tcdb_provenance pv = {.xlat_version = XLAT_VERSION,
				     .abi_version = VCPU_ABI_VERSION,
				     .options_hash = xlat_options_hash(&xo),
				     .options_flags = xo.flags};
	struct tcdb *db;
	assert_int_equal(tcdb_create(path, &im, &pv, &db), BT_OK);
	struct tcdb_chunk c = {0};
	struct tcdb_block a = {
	    .blk = {
		.guest_start = 0x1000,
		.guest_len = 4,
		.n_insns = 2,
		.guest_hash = 7,
		.code = code_a,
		.code_len = sizeof(code_a),
		.pcmap = pcmap_a,
		.pcmap_len = sizeof(pcmap_a),
		.n_exits = 1,
		.exits = {
		    {.kind = XLAT_EXIT_RET, .patch_off = ~0u, .stub_off = 2, .target = 0xff0}}}};
	struct tcdb_block b = {.blk = {.guest_start = 0x1004,
				       .guest_len = 3,
				       .n_insns = 3,
				       .guest_hash = 9,
				       .code = code_b,
				       .code_len = sizeof(code_b)}};
	assert_int_equal(tcdb_chunk_add_block(&c, &a, 0), BT_OK);
	assert_int_equal(tcdb_chunk_add_block(&c, &b, 0), BT_OK);
	assert_int_equal(tcdb_chunk_seal(&c), BT_OK);
	/* seal_copy stores exactly the bytes it is given */
	struct tcdb_chunk d = {0};
	assert_int_equal(tcdb_chunk_seal_copy(&d, c.z, c.z_len), BT_OK);
	assert_int_equal(d.z_len, c.z_len);
	assert_memory_equal(d.z, c.z, c.z_len);
	tcdb_chunk_fini(&d);
	int64_t id;
	assert_int_equal(tcdb_add_chunk(db, &c, &id), BT_OK);
	a.chunk_id = b.chunk_id = id;
	assert_int_equal(tcdb_add_block(db, &a), BT_OK);
	assert_int_equal(tcdb_add_block(db, &b), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);

	assert_int_equal(tcdb_open(path, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	struct seen bl = {0};
	/* one chunk by id, and a missing one */
	uint8_t *raw, *z;
	size_t raw_len, z_len;
	assert_int_equal(tcdb_read_chunk(db, id, &raw, &raw_len, &z, &z_len), BT_OK);
	assert_int_equal(raw_len, c.raw_len);
	assert_memory_equal(raw, c.raw, c.raw_len);
	assert_int_equal(z_len, c.z_len);
	assert_memory_equal(z, c.z, c.z_len);
	assert_int_equal(tcdb_read_chunk(db, id + 1, &raw, &raw_len, &z, &z_len), BT_ERR_NOTFOUND);
	assert_int_equal(tcdb_foreach_block_meta(db, on_block, &bl), BT_OK);
	assert_int_equal(bl.n, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(bl.b[i].chunk_id, id);
		assert_null(bl.b[i].blk.code); /* payload not read */
	}
	struct tcdb_block p = {
	    .blk = {.guest_start = 0x1000}}; /* exit targets are relative to it */
	assert_int_equal(tcdb_payload_parse(db, raw, raw_len, bl.b[0].payload_off, &p.blk), BT_OK);
	assert_int_equal(p.blk.code_len, sizeof(code_a));
	assert_memory_equal(p.blk.code, code_a, sizeof(code_a));
	assert_int_equal(p.blk.pcmap_len, sizeof(pcmap_a));
	assert_memory_equal(p.blk.pcmap, pcmap_a, sizeof(pcmap_a));
	assert_int_equal(p.blk.n_exits, 1);
	assert_int_equal(p.blk.exits[0].kind, XLAT_EXIT_RET);
	assert_int_equal(p.blk.exits[0].stub_off, 2);
	assert_int_equal(p.blk.exits[0].patch_off, ~0u);
	assert_int_equal(p.blk.exits[0].target, 0xff0);
	assert_int_equal(tcdb_payload_parse(db, raw, raw_len, bl.b[1].payload_off, &p.blk), BT_OK);
	assert_memory_equal(p.blk.code, code_b, sizeof(code_b));
	/* a payload that runs past the end (the raw bytes cut one byte into
	 * b's code: the chunk's directory follows the payloads), an offset
	 * past the end */
	assert_int_equal(tcdb_payload_parse(db, raw, bl.b[1].payload_off + sizeof(code_b),
					    bl.b[1].payload_off, &p.blk),
			 BT_ERR_FORMAT);
	assert_int_equal(tcdb_payload_parse(db, raw, raw_len, raw_len + 5, &p.blk), BT_ERR_FORMAT);
	/* the full iteration still sees the payloads */
	bl.n = 0;
	assert_int_equal(tcdb_foreach_block(db, on_block, &bl), BT_OK);
	assert_int_equal(bl.n, 2);
	free(raw);
	free(z);
	tcdb_close(db);
	tcdb_chunk_fini(&c);
}

static enum bt_status build(const char *out, const char *reuse, uint32_t flags)
{
	struct pbuild_options o = {.image_path = image,
				   .out_path = out,
				   .jobs = 2,
				   .created = 1,
				   .xlat_flags = flags,
				   .reuse_path = reuse};
	struct pbuild_stats st;
	return pbuild_run(&o, &st);
}

static void test_build_refusals(void **state)
{
	char old[160], nox[160], out[160];
	snprintf(old, sizeof(old), "%s/old.tcdb", dir);
	snprintf(nox, sizeof(nox), "%s/nox.tcdb", dir);
	snprintf(out, sizeof(out), "%s/out.tcdb", dir);
	assert_int_equal(build(old, NULL, XLAT_OPT_CROSSCHECK), BT_OK);
	assert_int_equal(build(nox, NULL, 0), BT_OK);
	/* other options: refused before anything is written */
	assert_int_equal(build(out, nox, XLAT_OPT_CROSSCHECK), BT_ERR_VERSION);
	struct stat sb;
	assert_int_not_equal(stat(out, &sb), 0);
	/* same options: the build runs, and reuses through the walker's hook */
	assert_int_equal(build(out, old, XLAT_OPT_CROSSCHECK), BT_OK);
	assert_int_equal(stat(out, &sb), 0);
	assert_int_equal(unlink(out), 0);
	/* not a database */
	assert_int_equal(build(out, image, XLAT_OPT_CROSSCHECK), BT_ERR_FORMAT);
}

static int setup(void **state)
{
	(void)state;
	return tmp_image_setup("test_reuse");
}

int main(void)
{
	test_private_config();
	bt_log_to(fopen("/dev/null", "w"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chunk_read_back),
	    cmocka_unit_test(test_build_refusals),
	};
	return cmocka_run_group_tests(tests, setup, tmp_image_teardown);
}
