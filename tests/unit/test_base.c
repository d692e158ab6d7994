/*
 * Unit tests for pretrans/base's small helpers: the growable array
 * (vec.h: growth, contents kept, overflow refused with the array intact)
 * the monotonic clock (clock.h), HMAC-SHA256 (sha256.h) against the
 * RFC 4231 test vectors, and text.h's thousands separators and JSON strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pretrans/base/clock.h"
#include "pretrans/base/sha256.h"
#include "pretrans/base/status.h"
#include "pretrans/base/text.h"
#include "pretrans/base/vec.h"

static void test_vec_grows_and_keeps(void **state)
{
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	for (uint32_t i = 0; i < 100000; i++) {
		assert_true(BT_VEC_RESERVE(v, cap, n + 1, 16));
		assert_true(cap >= n + 1);
		v[n++] = i * 7u;
	}
	assert_true(cap >= 100000 && cap < 2 * 131072);
	for (uint32_t i = 0; i < 100000; i++)
		assert_int_equal(v[i], i * 7u);
	free(v);
}

static void test_vec_first_capacity(void **state)
{
	char *v = NULL;
	size_t cap = 0;
	assert_true(BT_VEC_RESERVE(v, cap, 1, 64));
	assert_int_equal(cap, 64);
	assert_true(BT_VEC_RESERVE(v, cap, 64, 64)); /* no growth needed */
	assert_int_equal(cap, 64);
	assert_true(BT_VEC_RESERVE(v, cap, 1000, 64)); /* a jump past 2x */
	assert_int_equal(cap, 1024);
	free(v);
	v = NULL;
	cap = 0;
	assert_true(BT_VEC_RESERVE(v, cap, 3, 0)); /* min_cap 0 starts at 1 */
	assert_int_equal(cap, 4);
	free(v);
}

static void test_vec_overflow_refused(void **state)
{
	uint64_t *v = NULL;
	size_t cap = 0;
	assert_true(BT_VEC_RESERVE(v, cap, 8, 8));
	v[7] = 42;
	uint64_t *before = v;
	assert_false(BT_VEC_RESERVE(v, cap, SIZE_MAX / 4, 8)); /* bytes overflow */
	assert_false(BT_VEC_RESERVE(v, cap, SIZE_MAX, 8));     /* count overflow */
	assert_ptr_equal(v, before);
	assert_int_equal(cap, 8);
	assert_int_equal(v[7], 42);
	free(v);
}

static void test_clock_monotonic(void **state)
{
	uint64_t a = bt_now_ns();
	usleep(2000);
	uint64_t b = bt_now_ns();
	assert_true(a > 0);
	assert_true(b - a >= 2000000);
	assert_true(b - a < 10ull * 1000000000ull);
}

/* The exit statuses docs/pretrans.md and docs/diff.md document. */
static void test_status_exit(void **state)
{
	assert_int_equal(bt_status_exit(BT_OK), 0);
	assert_int_equal(bt_status_exit(BT_ERR_INVALID), 2);
	const enum bt_status input[] = {BT_ERR_FORMAT, BT_ERR_VERSION,	BT_ERR_UNSUPPORTED,
					BT_ERR_RANGE,  BT_ERR_NOTFOUND, BT_ERR_DB,
					BT_ERR_AUTH};
	for (size_t i = 0; i < sizeof(input) / sizeof(input[0]); i++)
		assert_int_equal(bt_status_exit(input[i]), 2);
	assert_int_equal(bt_status_exit(BT_ERR_IO), 4);
	assert_int_equal(bt_status_exit(BT_ERR_NOMEM), 3);
	assert_int_equal(bt_status_exit(BT_ERR_INTERNAL), 3);
}

/* RFC 4231 test cases 1-4, 6 and 7 (5 is a truncated output). */
static void test_hmac_rfc4231(void **state)
{
	(void)state;
	uint8_t k1[20], k3[20], d3[50], k4[25], d4[50], k6[131];
	memset(k1, 0x0b, sizeof(k1));
	memset(k3, 0xaa, sizeof(k3));
	memset(d3, 0xdd, sizeof(d3));
	for (int i = 0; i < 25; i++)
		k4[i] = (uint8_t)(i + 1);
	memset(d4, 0xcd, sizeof(d4));
	memset(k6, 0xaa, sizeof(k6));
	static const char d6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	static const char d7[] =
	    "This is a test using a larger than block-size key and a larger than block-size "
	    "data. The key needs to be hashed before being used by the HMAC algorithm.";
	const struct {
		const void *key, *data;
		size_t key_len, data_len;
		const char *mac;
	} v[] = {
	    {k1, "Hi There", 20, 8,
	     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
	    {"Jefe", "what do ya want for nothing?", 4, 28,
	     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	    {k3, d3, 20, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
	    {k4, d4, 25, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
	    {k6, d6, 131, sizeof(d6) - 1,
	     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
	    {k6, d7, 131, sizeof(d7) - 1,
	     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t mac[SHA256_LEN];
		char hex[2 * SHA256_LEN + 1];
		hmac_sha256(v[i].key, v[i].key_len, v[i].data, v[i].data_len, mac);
		sha256_hex(mac, hex);
		assert_string_equal(hex, v[i].mac);
		/* the same in pieces, from a copied keyed context */
		struct hmac_sha256_ctx keyed, c;
		hmac_sha256_init(&keyed, v[i].key, v[i].key_len);
		c = keyed;
		hmac_sha256_update(&c, v[i].data, 3);
		hmac_sha256_update(&c, (const char *)v[i].data + 3, v[i].data_len - 3);
		uint8_t mac2[SHA256_LEN];
		hmac_sha256_final(&c, mac2);
		assert_true(bt_memeq_ct(mac, mac2, SHA256_LEN));
		mac2[SHA256_LEN - 1] ^= 1;
		assert_false(bt_memeq_ct(mac, mac2, SHA256_LEN));
	}
}

static void test_group(void **state)
{
	(void)state;
	static const struct {
		uint64_t v;
		const char *want;
	} cases[] = {{0, "0"},
		     {7, "7"},
		     {999, "999"},
		     {1000, "1,000"},
		     {51436, "51,436"},
		     {100000, "100,000"},
		     {1234567, "1,234,567"},
		     {UINT64_MAX, "18,446,744,073,709,551,615"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(BT_N(cases[i].v), cases[i].want);
	assert_true(strlen(BT_N(UINT64_MAX)) < BT_GROUP_LEN);
	/* two in one expression keep their own buffers */
	char line[64];
	snprintf(line, sizeof(line), "%s/%s", BT_N(1000), BT_N(2000000));
	assert_string_equal(line, "1,000/2,000,000");
}

static void test_json_str(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	bt_json_str(f, "a\"b\\c\n\t\x01/\xc3\xa9");
	fclose(f);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\t\\u0001/\xc3\xa9\"");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vec_grows_and_keeps),
	    cmocka_unit_test(test_vec_first_capacity),
	    cmocka_unit_test(test_vec_overflow_refused),
	    cmocka_unit_test(test_clock_monotonic),
	    cmocka_unit_test(test_status_exit),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_group),
	    cmocka_unit_test(test_json_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
