/*
 * Unit tests for guests/lib/cpio.c (the guest's newc reader) and
 * guests/tools/cpiow.c (the host writer): round trip, lookup, path
 * normalisation, and rejection of truncated and corrupted archives (every
 * truncation length and many bit flips: the reader must return an error or
 * a consistent entry, never read outside the buffer; run under ASan/valgrind
 * for the strongest check, and the buffer is copied to an exact-size heap
 * block so an overread past the end is caught by ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guests/lib/cpio.h"
#include "guests/tools/cpiow.h"

static const char file_a[] = "hello, cpio\n";
static const uint8_t file_b[] = {0, 1, 2, 3, 4, 5, 6}; /* odd size: exercises padding */

static void build_sample(struct cpiow *w)
{
	cpiow_init(w);
	assert_int_equal(cpiow_add(w, "bin", CPIO_S_IFDIR | 0755, NULL, 0), BT_OK);
	assert_int_equal(cpiow_add(w, "bin/a", CPIO_S_IFREG | 0755, file_a, sizeof(file_a) - 1),
			 BT_OK);
	assert_int_equal(cpiow_add(w, "tests/b.bin", CPIO_S_IFREG | 0644, file_b, sizeof(file_b)),
			 BT_OK);
	assert_int_equal(cpiow_add(w, "empty", CPIO_S_IFREG | 0644, NULL, 0), BT_OK);
	assert_int_equal(cpiow_finish(w), BT_OK);
}

static void test_round_trip(void **state)
{
	struct cpiow w;
	struct cpio_iter it;
	struct cpio_entry e;
	const char *names[] = {"bin", "bin/a", "tests/b.bin", "empty"};

	build_sample(&w);
	assert_int_equal(w.len % 4, 0);
	assert_memory_equal(w.buf, "070701", 6);
	cpio_iter_init(&it, w.buf, w.len);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(cpio_iter_next(&it, &e), BT_OK);
		assert_string_equal(e.name, names[i]);
		assert_int_equal(e.name_len, strlen(names[i]));
		assert_int_equal(e.ino, i + 1);
	}
	assert_int_equal(cpio_iter_next(&it, &e), BT_ERR_NOTFOUND);
	assert_int_equal(cpio_iter_next(&it, &e), BT_ERR_NOTFOUND); /* sticky */

	size_t count = 0;
	assert_int_equal(cpio_validate(w.buf, w.len, &count), BT_OK);
	assert_int_equal(count, 4);
	cpiow_fini(&w);
}

static void test_lookup(void **state)
{
	struct cpiow w;
	struct cpio_entry e;

	build_sample(&w);
	assert_int_equal(cpio_find(w.buf, w.len, "bin/a", &e), BT_OK);
	assert_int_equal(e.size, sizeof(file_a) - 1);
	assert_memory_equal(e.data, file_a, e.size);
	assert_int_equal(e.mode, CPIO_S_IFREG | 0755);
	assert_int_equal((uintptr_t)e.data % 4, (uintptr_t)w.buf % 4);

	assert_int_equal(cpio_find(w.buf, w.len, "/tests/b.bin", &e), BT_OK);
	assert_int_equal(e.size, sizeof(file_b));
	assert_memory_equal(e.data, file_b, sizeof(file_b));
	assert_int_equal(cpio_find(w.buf, w.len, "./empty", &e), BT_OK);
	assert_int_equal(e.size, 0);
	assert_int_equal(cpio_find(w.buf, w.len, "bin", &e), BT_OK);
	assert_int_equal(e.mode & CPIO_S_IFMT, CPIO_S_IFDIR);

	assert_int_equal(cpio_find(w.buf, w.len, "bin/", &e), BT_ERR_NOTFOUND);
	assert_int_equal(cpio_find(w.buf, w.len, "bin/ab", &e), BT_ERR_NOTFOUND);
	assert_int_equal(cpio_find(w.buf, w.len, "missing", &e), BT_ERR_NOTFOUND);
	assert_int_equal(cpio_find(w.buf, w.len, NULL, &e), BT_ERR_INVALID);
	assert_string_equal(cpio_path_norm("/./././bin//x"), "bin//x");
	cpiow_fini(&w);
}

/* Every strict prefix of an archive is malformed (the trailer is missing). */
static void test_truncated(void **state)
{
	struct cpiow w;
	size_t count;

	build_sample(&w);
	for (size_t n = 0; n < w.len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, w.buf, n);
		enum bt_status st = cpio_validate(copy, n, &count);
		/* A cut inside the trailer's padding still holds a complete trailer. */
		if (st == BT_OK)
			assert_true(n + 4 > w.len);
		else
			assert_int_equal(st, BT_ERR_FORMAT);
		free(copy);
	}
	assert_int_equal(cpio_validate(NULL, 100, &count), BT_ERR_FORMAT);
	cpiow_fini(&w);
}

/* Targeted corruptions: each must be rejected with BT_ERR_FORMAT. */
static void test_corrupt_fields(void **state)
{
	struct cpiow w;
	size_t count;

	build_sample(&w);
	uint8_t *c = malloc(w.len);
	assert_non_null(c);

	memcpy(c, w.buf, w.len);
	c[5] = '2'; /* magic 070702 (crc format) */
	assert_int_equal(cpio_validate(c, w.len, &count), BT_ERR_FORMAT);

	memcpy(c, w.buf, w.len);
	c[6 + 8 * 6] = 'g'; /* non-hex filesize */
	assert_int_equal(cpio_validate(c, w.len, &count), BT_ERR_FORMAT);

	memcpy(c, w.buf, w.len);
	memcpy(c + 6 + 8 * 6, "FFFFFFFF", 8); /* filesize beyond the buffer */
	assert_int_equal(cpio_validate(c, w.len, &count), BT_ERR_FORMAT);

	memcpy(c, w.buf, w.len);
	memcpy(c + 6 + 8 * 11, "00000000", 8); /* namesize 0 */
	assert_int_equal(cpio_validate(c, w.len, &count), BT_ERR_FORMAT);

	memcpy(c, w.buf, w.len);
	memcpy(c + 6 + 8 * 11, "00000002", 8); /* name "bin" but namesize 2: no NUL */
	assert_int_equal(cpio_validate(c, w.len, &count), BT_ERR_FORMAT);

	memcpy(c, w.buf, w.len);
	memcpy(c + 6 + 8 * 11, "FFFFFFF0", 8); /* huge namesize */
	assert_int_equal(cpio_validate(c, w.len, &count), BT_ERR_FORMAT);

	free(c);
	cpiow_fini(&w);
}

/* Fuzz-ish: random bit flips and byte values; only "error or walk" allowed. */
static void test_bit_flips(void **state)
{
	struct cpiow w;
	uint32_t seed = 12345;
	unsigned ok = 0, bad = 0;

	build_sample(&w);
	uint8_t *c = malloc(w.len);
	assert_non_null(c);
	for (int round = 0; round < 20000; round++) {
		memcpy(c, w.buf, w.len);
		int flips = 1 + round % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t pos = (seed >> 8) % w.len;
			if (round & 1)
				c[pos] ^= (uint8_t)(1u << ((seed >> 4) & 7));
			else
				c[pos] = "0123456789abcdefF7\0"[(seed >> 3) % 19];
		}
		struct cpio_iter it;
		struct cpio_entry e;
		enum bt_status st;
		cpio_iter_init(&it, c, w.len);
		while ((st = cpio_iter_next(&it, &e)) == BT_OK) {
			/* every entry handed out lies inside the buffer */
			assert_true((const uint8_t *)e.name >= c);
			assert_true((const uint8_t *)e.name + e.name_len < c + w.len);
			assert_true((const uint8_t *)e.data >= c);
			assert_true(e.size <= w.len);
			assert_true((const uint8_t *)e.data + e.size <= c + w.len);
		}
		assert_true(st == BT_ERR_NOTFOUND || st == BT_ERR_FORMAT);
		if (st == BT_ERR_NOTFOUND)
			ok++;
		else
			bad++;
	}
	/* both outcomes must occur: flips in data bytes are harmless, in headers fatal */
	assert_true(ok > 0);
	assert_true(bad > 0);
	free(c);
	cpiow_fini(&w);
}

static void test_writer_rejects(void **state)
{
	struct cpiow w;

	cpiow_init(&w);
	assert_int_equal(cpiow_add(&w, "", CPIO_S_IFREG, NULL, 0), BT_ERR_INVALID);
	assert_int_equal(cpiow_add(&w, CPIO_TRAILER, CPIO_S_IFREG, NULL, 0), BT_ERR_INVALID);
	assert_int_equal(cpiow_add(&w, "x", CPIO_S_IFREG, NULL, 3), BT_ERR_INVALID);
	assert_int_equal(cpiow_finish(&w), BT_OK);
	assert_int_equal(cpiow_add(&w, "late", CPIO_S_IFREG, NULL, 0), BT_ERR_INVALID);
	size_t count = 99;
	assert_int_equal(cpio_validate(w.buf, w.len, &count), BT_OK);
	assert_int_equal(count, 0);
	cpiow_fini(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_truncated),  cmocka_unit_test(test_corrupt_fields),
	    cmocka_unit_test(test_bit_flips),  cmocka_unit_test(test_writer_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
