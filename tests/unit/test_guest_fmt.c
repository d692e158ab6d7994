/*
 * Unit tests for guests/lib/fmt.c, the freestanding printf of the guest
 * kernel and user space: every conversion and flag the guest contract
 * names, compared with the host C library's snprintf on the same format,
 * plus truncation and return-value semantics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "guests/lib/fmt.h"

#define SAME(...)                                                                                  \
	do {                                                                                       \
		char a_[256], b_[256];                                                             \
		int na_ = fmt_snprintf(a_, sizeof(a_), __VA_ARGS__);                               \
		int nb_ = snprintf(b_, sizeof(b_), __VA_ARGS__);                                   \
		assert_string_equal(a_, b_);                                                       \
		assert_int_equal(na_, nb_);                                                        \
	} while (0)

static void test_integers(void **state)
{
	SAME("%d %i %u", 42, -42, 42u);
	SAME("%d %d", INT32_MIN, INT32_MAX);
	SAME("%x %X %lx %llx", 0xbeefu, 0xbeefu, 0xdeadbeefcafeul, 0xffffffffffffffffull);
	SAME("%ld %lu %lld %llu", -1234567890123l, 1234567890123ul, (long long)INT64_MIN,
	     (unsigned long long)UINT64_MAX);
	SAME("%zu %zd", (size_t)12345, (ssize_t)-12345);
	SAME("%hhd %hd %hhu %hu", 300, 70000, 300, 70000);
	SAME("%o %#o %#x %#X", 8, 8, 255, 255);
	SAME("%+d % d %+d", 5, 5, -5);
}

static void test_width_and_flags(void **state)
{
	SAME("[%5d] [%-5d] [%05d]", 42, 42, 42);
	SAME("[%08x] [%8x] [%-8x|]", 0xabcu, 0xabcu, 0xabcu);
	SAME("[%05d] [%5d]", -42, -42);
	SAME("[%016llx]", 0x1234ull);
	SAME("[%*d] [%-*d] [%*d]", 6, 7, 6, 7, -6, 7);
	SAME("[%.3d] [%8.3d] [%.0d] [%5.0d]", 7, 7, 0, 0);
	SAME("[%10s] [%-10s] [%.2s] [%*.*s]", "abc", "abc", "abc", 6, 1, "xyz");
	SAME("[%c] [%3c] [%-3c]", 'a', 'b', 'c');
	SAME("100%% [%%]");
}

static void test_pointer_and_null(void **state)
{
	char buf[64];
	const char *volatile null_str = NULL;

	SAME("%p", (void *)0x1234abcdul);
	fmt_snprintf(buf, sizeof(buf), "%s", null_str);
	assert_string_equal(buf, "(null)");
	fmt_snprintf(buf, sizeof(buf), "%p", (void *)0xffffffff80001000ul);
	assert_string_equal(buf, "0xffffffff80001000");
}

static void test_truncation(void **state)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(fmt_snprintf(buf, 5, "%d", 123456789), 9);
	assert_string_equal(buf, "1234");
	assert_int_equal(buf[5], 'x'); /* nothing written past size */
	assert_int_equal(fmt_snprintf(buf, 0, "abc"), 3);
	assert_int_equal(buf[0], '1'); /* size 0: untouched */
	assert_int_equal(fmt_snprintf(NULL, 0, "%s-%d", "ab", 7), 4);
	assert_int_equal(fmt_snprintf(buf, 1, "abc"), 3);
	assert_string_equal(buf, "");
}

static void test_unknown_and_truncated_directive(void **state)
{
	char buf[32];
	/* not literals: the host compiler would reject them at compile time */
	const char *f1 = "a%qb", *f2 = "end%", *f3 = "end%-08l";

	fmt_snprintf(buf, sizeof(buf), f1, 0);
	assert_string_equal(buf, "a%qb");
	fmt_snprintf(buf, sizeof(buf), f2, 0);
	assert_string_equal(buf, "end%");
	fmt_snprintf(buf, sizeof(buf), f3, 0);
	assert_string_equal(buf, "end%-08l");
}

static void cb_putc(void *ctx, char c)
{
	char **p = ctx;
	*(*p)++ = c;
}

static int cb_printf(char *out, const char *fmt, ...)
{
	va_list ap;
	char *p = out;

	va_start(ap, fmt);
	int n = fmt_vcbprintf(cb_putc, &p, fmt, ap);
	va_end(ap);
	*p = '\0';
	return n;
}

static void test_callback(void **state)
{
	char buf[64];

	const char *want = "pid 7 killed: #GP at rip 0x401000";

	assert_int_equal(cb_printf(buf, "pid %d killed: #%s at rip 0x%lx", 7, "GP", 0x401000ul),
			 (int)strlen(want));
	assert_string_equal(buf, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_width_and_flags),
	    cmocka_unit_test(test_pointer_and_null),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_unknown_and_truncated_directive),
	    cmocka_unit_test(test_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
