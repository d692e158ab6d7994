/*
 * Unit tests for the failure paths of db/tcdb's atomic replace, by fault
 * injection (tcdb_io_fault): a failed fsync of the new file or a failed
 * rename leaves the previous database byte for byte and no temporary file,
 * with one line naming the file and errno's reason; a directory that
 * cannot be synced after the rename keeps the new database and says so.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

static char dir[64], logpath[128];
static FILE *log_file;

static const uint8_t code[] = {0x90, 0xc3};

/* A database whose one block has guest hash `hash`: commit's status. */
static enum bt_status build(const char *path, uint64_t hash)
{
	struct tcdb *db;
	struct tcdb_provenance p = {
	    .xlat_version = XLAT_VERSION, .abi_version = VCPU_ABI_VERSION, .created = 1700000000};
	strcpy(p.tool_version, "test");
	assert_int_equal(tcdb_create(path, &test_image, &p, &db), BT_OK);
	struct tcdb_block b = {.blk = {.guest_start = 0xffffffff81000000ull,
				       .guest_len = 2,
				       .n_insns = 2,
				       .guest_hash = hash,
				       .code = code,
				       .code_len = sizeof(code)}};
	assert_int_equal(tcdb_add_block(db, &b), BT_OK);
	return tcdb_commit(db);
}

/* The guest hash of the one block of path. */
static uint64_t stored_hash(const char *path)
{
	struct tcdb *db;
	struct tcdb_block b;
	assert_int_equal(tcdb_open(path, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_lookup(db, 0xffffffff81000000ull, &b), BT_OK);
	uint64_t h = b.blk.guest_hash;
	tcdb_close(db);
	return h;
}

static int tmp_files(void)
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

/* The log since the last call contains want. */
static bool logged(const char *want_text)
{
	fclose(log_file); /* flushed */
	FILE *f = fopen(logpath, "r");
	char buf[8192];
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	log_file = fopen(logpath, "w"); /* start afresh */
	bt_log_to(log_file);
	return strstr(buf, want_text) != NULL;
}

static void test_replace_faults(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof(p), "%s/io.tcdb", dir);
	assert_int_equal(build(p, 1), BT_OK);
	assert_true(stored_hash(p) == 1);
	logged("");

	/* fsync of the new file fails (EIO): the old database stays */
	tcdb_io_fault(TCDB_IO_FSYNC_FILE, EIO);
	assert_int_equal(build(p, 2), BT_ERR_IO);
	assert_true(stored_hash(p) == 1);
	assert_int_equal(tmp_files(), 0);
	assert_true(logged("fsync failed: Input/output error"));

	/* the rename fails (ENOSPC, EXDEV...): the old database stays */
	tcdb_io_fault(TCDB_IO_RENAME, ENOSPC);
	assert_int_equal(build(p, 3), BT_ERR_IO);
	assert_true(stored_hash(p) == 1);
	assert_int_equal(tmp_files(), 0);
	assert_true(logged("cannot rename"));

	/* the directory cannot be synced after the rename: the new database
	 * is in place, and the log says its rename may not be durable */
	tcdb_io_fault(TCDB_IO_FSYNC_DIR, EIO);
	assert_int_equal(build(p, 4), BT_OK);
	assert_true(stored_hash(p) == 4);
	assert_int_equal(tmp_files(), 0);
	assert_true(logged("its directory could not be synced"));

	/* a fault is taken once: the next build replaces the file */
	assert_int_equal(build(p, 5), BT_OK);
	assert_true(stored_hash(p) == 5);
	assert_false(logged("could not"));
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_tcdb_io.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	log_file = fopen(logpath, "w");
	bt_log_to(log_file);
	return log_file ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	bt_log_to(stderr);
	fclose(log_file);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	test_private_config();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replace_faults),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
