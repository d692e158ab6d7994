/*
 * Unit tests for guests/tools/cpiotree.c (what mkinitrd builds initrds
 * with): parent directories are added once, members are sorted, the bytes
 * do not depend on the order files were given, duplicates and unsafe
 * paths are refused, and a host file keeps its executable bit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "guests/lib/cpio.h"
#include "guests/tools/cpiotree.h"
#include "guests/tools/cpiow.h"

static void build(const char *const *paths, size_t n, struct cpiow *w)
{
	struct cpiot t;

	cpiot_init(&t);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(cpiot_add_file(&t, paths[i], paths[i], strlen(paths[i]), 0644),
				 BT_OK);
	cpiow_init(w);
	assert_int_equal(cpiot_write(&t, w), BT_OK);
	cpiot_fini(&t);
}

static void test_dirs_and_order(void **state)
{
	static const char *const in[] = {"tests/02-b", "bin/bench", "tests/01-a",
					 "lib/modules/testmod.ko"};
	static const char *const want[] = {
	    "bin",   "bin/bench",  "lib",	"lib/modules", "lib/modules/testmod.ko",
	    "tests", "tests/01-a", "tests/02-b"};
	struct cpiow w;
	struct cpio_iter it;
	struct cpio_entry e;

	build(in, 4, &w);
	cpio_iter_init(&it, w.buf, w.len);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(cpio_iter_next(&it, &e), BT_OK);
		assert_string_equal(e.name, want[i]);
		int is_dir = strchr(want[i], '/') == NULL || strcmp(want[i], "lib/modules") == 0;
		assert_int_equal(e.mode & CPIO_S_IFMT, is_dir ? CPIO_S_IFDIR : CPIO_S_IFREG);
		if (!is_dir) {
			assert_int_equal(e.size, strlen(want[i]));
			assert_memory_equal(e.data, want[i], e.size);
			assert_int_equal(e.mode & 07777, 0644);
		}
	}
	assert_int_equal(cpio_iter_next(&it, &e), BT_ERR_NOTFOUND);
	cpiow_fini(&w);
}

static void test_order_independent(void **state)
{
	static const char *const a[] = {"x/y/z", "x/a", "b", "x/y/c"};
	static const char *const b[] = {"x/y/c", "b", "x/y/z", "x/a"};
	struct cpiow wa, wb;

	build(a, 4, &wa);
	build(b, 4, &wb);
	assert_int_equal(wa.len, wb.len);
	assert_memory_equal(wa.buf, wb.buf, wa.len);
	cpiow_fini(&wa);
	cpiow_fini(&wb);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {"", "/abs", "a//b", "a/./b", "../x", "a/..", "dir/"};
	struct cpiot t;
	struct cpiow w;

	cpiot_init(&t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cpiot_add_file(&t, bad[i], "x", 1, 0644), BT_ERR_INVALID);
		assert_non_null(strstr(t.err, "bad destination path"));
	}
	assert_int_equal(t.n, 0);

	/* the same file twice */
	assert_int_equal(cpiot_add_file(&t, "a/b", "1", 1, 0644), BT_OK);
	assert_int_equal(cpiot_add_file(&t, "a/b", "2", 1, 0644), BT_OK);
	cpiow_init(&w);
	assert_int_equal(cpiot_write(&t, &w), BT_ERR_INVALID);
	assert_non_null(strstr(t.err, "'a/b' given twice"));
	cpiow_fini(&w);
	cpiot_fini(&t);

	/* a file where a directory is needed */
	cpiot_init(&t);
	assert_int_equal(cpiot_add_file(&t, "a", "1", 1, 0644), BT_OK);
	assert_int_equal(cpiot_add_file(&t, "a/b", "2", 1, 0644), BT_OK);
	cpiow_init(&w);
	assert_int_equal(cpiot_write(&t, &w), BT_ERR_INVALID);
	cpiow_fini(&w);
	cpiot_fini(&t);
}

static void test_host_file(void **state)
{
	char path[] = "/tmp/test_cpiotree.XXXXXX";
	int fd = mkstemp(path);
	struct cpiot t;
	struct cpiow w;
	struct cpio_entry e;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!x\n", 4), 4);
	close(fd);
	assert_int_equal(chmod(path, 0700), 0);
	cpiot_init(&t);
	assert_int_equal(cpiot_add_host_file(&t, "bin/tool", path), BT_OK);
	assert_int_equal(cpiot_add_host_file(&t, "bin/missing", "/nonexistent/file"), BT_ERR_IO);
	assert_non_null(strstr(t.err, "/nonexistent/file"));
	assert_int_equal(cpiot_add_host_file(&t, "bin/dir", "/tmp"), BT_ERR_IO);
	cpiow_init(&w);
	assert_int_equal(cpiot_write(&t, &w), BT_OK);
	assert_int_equal(cpio_find(w.buf, w.len, "/bin/tool", &e), BT_OK);
	assert_int_equal(e.mode, CPIO_S_IFREG | 0755);
	assert_int_equal(e.size, 4);
	assert_memory_equal(e.data, "#!x\n", 4);
	cpiow_fini(&w);
	cpiot_fini(&t);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dirs_and_order),
	    cmocka_unit_test(test_order_independent),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_host_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
