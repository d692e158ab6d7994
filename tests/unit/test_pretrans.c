/*
 * Unit tests for the pretrans build pipeline (pretrans/build.c) on a real
 * gcc-built ELF (a copy of this test program): the output is byte-identical
 * for 1, 2 and 5 worker threads; it opens as a valid database of that image;
 * an unwritable output fails with BT_ERR_IO and leaves the previous
 * database intact.
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
static const struct tcdb_prov tcdb_want = {.xlat_version = XLAT_VERSION,
					   .abi_version = VCPU_ABI_VERSION,
					   .n_exit_kinds = XLAT_NEXIT_KINDS,
					   .n_refusals = XLAT_NREFUSALS};

static void run(const char *out, int jobs, enum bt_status want, struct pbuild_stats *st)
{
	struct pbuild_options o = {.image_path = image,
				   .out_path = out,
				   .jobs = jobs,
				   .created = 1,
				   .xlat_flags = XLAT_OPT_CROSSCHECK};
	assert_int_equal(pbuild_run(&o, st), want);
}

static bool same_file(const char *a, const char *b)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

static void test_jobs_do_not_change_output(void **state)
{
	char a[160], b[160], c[160];
	snprintf(a, sizeof(a), "%s/j1.tcdb", dir);
	snprintf(b, sizeof(b), "%s/j2.tcdb", dir);
	snprintf(c, sizeof(c), "%s/j5.tcdb", dir);
	struct pbuild_stats s1, s2, s5;
	run(a, 1, BT_OK, &s1);
	run(b, 2, BT_OK, &s2);
	run(c, 5, BT_OK, &s5);
	assert_true(s1.n_funcs > 5);
	assert_true(s1.n_blocks + s1.n_refused > s1.n_funcs);
	assert_int_equal(s1.n_blocks, s2.n_blocks);
	assert_int_equal(s1.n_blocks, s5.n_blocks);
	/* every function byte is either translated or refused */
	assert_int_equal(s1.covered_bytes + s1.refused_bytes, s1.func_bytes);
	assert_true(same_file(a, b));
	assert_true(same_file(a, c));
	struct tcdb *db;
	assert_int_equal(tcdb_open(a, TCDB_RDONLY, &tcdb_want, NULL, &db), BT_OK);
	struct tcdb_image im;
	assert_int_equal(tcdb_get_image(db, &im), BT_OK);
	char *abs = realpath(image, NULL); /* the build records it absolute */
	assert_non_null(abs);
	assert_string_equal(im.path, abs);
	free(abs);
	assert_int_equal(strlen(im.sha256), 64);
	tcdb_close(db);
}

static void test_failed_build_keeps_old_db(void **state)
{
	char out[160], bad[200];
	snprintf(out, sizeof(out), "%s/keep.tcdb", dir);
	struct pbuild_stats st;
	run(out, 2, BT_OK, &st);
	struct stat s0, s1;
	assert_int_equal(stat(out, &s0), 0);
	/* the output directory is read-only: no temporary can be created */
	if (geteuid() != 0) {
		assert_int_equal(chmod(dir, 0555), 0);
		run(out, 2, BT_ERR_IO, &st);
		assert_int_equal(chmod(dir, 0755), 0);
	}
	/* an output in a missing directory */
	snprintf(bad, sizeof(bad), "%s/missing/x.tcdb", dir);
	run(bad, 2, BT_ERR_IO, &st);
	/* a bad image fails before touching the output */
	char saved[128];
	strcpy(saved, image);
	strcpy(image, "/proc/self/status");
	run(out, 2, BT_ERR_FORMAT, &st);
	strcpy(image, saved);
	assert_int_equal(stat(out, &s1), 0);
	assert_true(s0.st_ino == s1.st_ino && s0.st_mtime == s1.st_mtime);
	struct tcdb *db;
	assert_int_equal(tcdb_open(out, TCDB_RDONLY, &tcdb_want, NULL, &db), BT_OK);
	tcdb_close(db);
}

static int setup(void **state)
{
	(void)state;
	return tmp_image_setup("test_pretrans");
}

int main(void)
{
	test_private_config();
	bt_log_to(fopen("/dev/null", "w"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_do_not_change_output),
	    cmocka_unit_test(test_failed_build_keeps_old_db),
	};
	return cmocka_run_group_tests(tests, setup, tmp_image_teardown);
}
