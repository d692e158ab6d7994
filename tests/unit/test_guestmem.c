/*
 * Guest physical memory: regions around the 32-bit MMIO hole, host lookups
 * refusing anything that is not entirely RAM, the memfd really shared (a
 * second mapping of the fd sees the same bytes, as a user stub will), page
 * flags, the code-write hook and the soft-MMU listeners.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "runtime/mem/guestmem.h"

static void test_create_invalid(void **state)
{
	struct guestmem *gm = NULL;

	assert_int_equal(guestmem_create(0, &gm), BT_ERR_INVALID);
	assert_int_equal(guestmem_create(GUESTMEM_MIN_SIZE - 4096, &gm), BT_ERR_INVALID);
	assert_int_equal(guestmem_create(GUESTMEM_MIN_SIZE + 1, &gm), BT_ERR_INVALID);
	assert_int_equal(guestmem_create(GUESTMEM_MAX_SIZE + 4096, &gm), BT_ERR_INVALID);
	assert_null(gm);
}

static void test_low_only(void **state)
{
	struct guestmem *gm;
	const uint64_t size = 64ull << 20;
	uint8_t buf[16];

	assert_int_equal(guestmem_create(size, &gm), BT_OK);
	assert_int_equal(guestmem_size(gm), size);
	assert_int_equal(guestmem_nregions(gm), 1);
	assert_int_equal(guestmem_region(gm, 0)->gpa, 0);
	assert_int_equal(guestmem_region(gm, 0)->size, size);
	assert_null(guestmem_region(gm, 1));
	assert_int_equal(guestmem_low_end(gm), size);
	assert_ptr_equal(guestmem_gpa_to_host(gm, 0, 1), guestmem_host_base(gm));
	assert_ptr_equal(guestmem_gpa_to_host(gm, size - 8, 8), guestmem_host_base(gm) + size - 8);
	/* a range crossing the end of RAM, past it, wrapping, MMIO */
	assert_null(guestmem_gpa_to_host(gm, size - 8, 9));
	assert_null(guestmem_gpa_to_host(gm, size, 1));
	assert_null(guestmem_gpa_to_host(gm, ~0ull - 3, 8));
	assert_null(guestmem_gpa_to_host(gm, 8, SIZE_MAX));
	assert_null(guestmem_gpa_to_host(gm, GUESTMEM_LAPIC_BASE, 4));
	assert_false(guestmem_is_ram(gm, GUESTMEM_IOAPIC_BASE, 4));
	assert_true(guestmem_is_ram(gm, 0x1000, 0));
	/* read/write refuse partial RAM and do not touch anything */
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(guestmem_write(gm, size - 8, buf, 16), BT_ERR_RANGE);
	assert_int_equal(guestmem_host_base(gm)[size - 8], 0);
	assert_int_equal(guestmem_read(gm, size - 8, buf, 16), BT_ERR_RANGE);
	assert_int_equal(guestmem_write(gm, 0x1234, buf, 16), BT_OK);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(guestmem_read(gm, 0x1230, buf, 16), BT_OK);
	assert_int_equal(buf[3], 0);
	assert_int_equal(buf[4], 0xab);
	guestmem_destroy(gm);
}

static void test_high_region_and_sharing(void **state)
{
	struct guestmem *gm;
	const uint64_t size = GUESTMEM_HOLE_START + (64ull << 20); /* sparse memfd */
	uint64_t off = 0;
	uint8_t *second;

	assert_int_equal(guestmem_create(size, &gm), BT_OK);
	assert_int_equal(guestmem_nregions(gm), 2);
	assert_int_equal(guestmem_low_end(gm), GUESTMEM_HOLE_START);
	assert_int_equal(guestmem_region(gm, 1)->gpa, GUESTMEM_HIGH_START);
	assert_int_equal(guestmem_region(gm, 1)->size, 64ull << 20);
	assert_int_equal(guestmem_region(gm, 1)->offset, GUESTMEM_HOLE_START);
	/* the hole is not RAM, in any part */
	assert_null(guestmem_gpa_to_host(gm, GUESTMEM_HOLE_START, 1));
	assert_null(guestmem_gpa_to_host(gm, GUESTMEM_HOLE_START - 4, 8));
	assert_null(guestmem_gpa_to_host(gm, GUESTMEM_HIGH_START - 1, 2));
	assert_int_equal(guestmem_gpa_to_offset(gm, 0xfee00000ull, &off), BT_ERR_RANGE);
	/* high RAM follows low RAM in the memfd */
	assert_int_equal(guestmem_gpa_to_offset(gm, GUESTMEM_HIGH_START + 0x1000, &off), BT_OK);
	assert_int_equal(off, GUESTMEM_HOLE_START + 0x1000);
	assert_ptr_equal(guestmem_gpa_to_host(gm, GUESTMEM_HIGH_START + 0x1000, 4),
			 guestmem_host_base(gm) + off);
	assert_null(guestmem_gpa_to_host(gm, GUESTMEM_HIGH_START + (64ull << 20) - 2, 4));
	/* a second mapping of the memfd page (what a user stub does) shares bytes */
	second = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, guestmem_fd(gm), (off_t)off);
	assert_true(second != MAP_FAILED);
	assert_int_equal(guestmem_write(gm, GUESTMEM_HIGH_START + 0x1010, "stub", 4), BT_OK);
	assert_memory_equal(second + 0x10, "stub", 4);
	second[0x20] = 0x77;
	assert_int_equal(*(uint8_t *)guestmem_gpa_to_host(gm, GUESTMEM_HIGH_START + 0x1020, 1),
			 0x77);
	munmap(second, 4096);
	guestmem_destroy(gm);
}

struct hooks {
	unsigned writes, protects;
	gpa_t last_gpa, last_page;
	size_t last_len;
};

static void on_code_write(void *opaque, gpa_t gpa, size_t len)
{
	struct hooks *h = opaque;
	h->writes++;
	h->last_gpa = gpa;
	h->last_len = len;
}

static void on_protect(void *opaque, gpa_t page)
{
	struct hooks *h = opaque;
	h->protects++;
	h->last_page = page;
}

static void test_flags_and_hooks(void **state)
{
	struct guestmem *gm;
	struct hooks h = {0};
	uint8_t buf[0x2000] = {0};

	assert_int_equal(guestmem_create(4ull << 20, &gm), BT_OK);
	assert_int_equal(guestmem_page_flags(gm, 0x5000), 0);
	assert_int_equal(guestmem_page_flags(gm, GUESTMEM_LAPIC_BASE), 0);
	assert_int_equal(guestmem_page_set_flags(gm, 8ull << 20, GUESTMEM_PAGE_CODE), BT_ERR_RANGE);
	assert_int_equal(guestmem_add_listener(gm, on_protect, &h), BT_OK);
	guestmem_set_code_write_hook(gm, on_code_write, &h);

	/* setting CODE tells the listeners once, with the page address */
	assert_int_equal(guestmem_page_set_flags(gm, 0x5123, GUESTMEM_PAGE_CODE), BT_OK);
	assert_int_equal(guestmem_page_flags(gm, 0x5fff), GUESTMEM_PAGE_CODE);
	assert_int_equal(guestmem_page_flags(gm, 0x6000), 0);
	assert_int_equal(h.protects, 1);
	assert_int_equal(h.last_page, 0x5000);
	guestmem_page_set_flags(gm, 0x5000, GUESTMEM_PAGE_CODE);
	assert_int_equal(h.protects, 1);

	/* writes to unwatched pages do not call the hook; a write spanning
	 * three pages calls it for the watched one only, clipped */
	assert_int_equal(guestmem_write(gm, 0x3000, buf, 16), BT_OK);
	assert_int_equal(h.writes, 0);
	assert_int_equal(guestmem_write(gm, 0x4800, buf, 0x2000), BT_OK);
	assert_int_equal(h.writes, 1);
	assert_int_equal(h.last_gpa, 0x5000);
	assert_int_equal(h.last_len, 0x1000);
	guestmem_notify_write(gm, 0x5ff0, 0x20);
	assert_int_equal(h.writes, 2);
	assert_int_equal(h.last_gpa, 0x5ff0);
	assert_int_equal(h.last_len, 0x10);

	assert_int_equal(guestmem_page_clear_flags(gm, 0x5000, GUESTMEM_PAGE_CODE), BT_OK);
	assert_int_equal(guestmem_page_flags(gm, 0x5000), 0);
	guestmem_notify_write(gm, 0x5000, 8);
	assert_int_equal(h.writes, 2);

	/* removed listeners are not called */
	guestmem_remove_listener(gm, on_protect, &h);
	guestmem_page_set_flags(gm, 0x7000, GUESTMEM_PAGE_CODE);
	assert_int_equal(h.protects, 1);
	guestmem_destroy(gm);
}

static void test_parse_size(void **state)
{
	uint64_t v = 0;

	assert_int_equal(guestmem_parse_size("4096", &v), BT_OK);
	assert_int_equal(v, 4096);
	assert_int_equal(guestmem_parse_size("512M", &v), BT_OK);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(guestmem_parse_size("4GiB", &v), BT_OK);
	assert_int_equal(v, 4ull << 30);
	assert_int_equal(guestmem_parse_size("64k", &v), BT_OK);
	assert_int_equal(v, 64ull << 10);
	assert_int_equal(guestmem_parse_size("1TB", &v), BT_OK);
	assert_int_equal(v, 1ull << 40);
	v = 7;
	static const char *const bad[] = {
	    "", "M", "-1", "12X", "1MiBx", "1 M", "0x100", "18446744073709551616", "17179869184G"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(guestmem_parse_size(bad[i], &v), BT_ERR_INVALID);
	assert_int_equal(v, 7);
}

/* A host pointer into RAM populates its whole 2 MiB chunk at once (one
 * system call instead of 512 page faults), and only that chunk. */
static void test_populate_chunk(void **state)
{
	(void)state;
	struct guestmem *gm;
	assert_int_equal(guestmem_create(16ull << 20, &gm), BT_OK);
	const size_t chunk = 2u << 20, pages = chunk / 4096;
	uint8_t *base = guestmem_gpa_to_host(gm, 0, 1);
	unsigned char vec[1024];
	assert_int_equal(2 * pages, sizeof(vec));
	/* chunk 2 ([4, 6) MiB) is not resident before it is asked for */
	assert_int_equal(mincore(base + 2 * chunk, chunk, vec), 0);
	size_t resident = 0;
	for (size_t i = 0; i < pages; i++)
		resident += vec[i] & 1;
	assert_int_equal(resident, 0);
	uint8_t *p = guestmem_gpa_to_host(gm, 2 * chunk + 12345, 8);
	assert_ptr_equal(p, base + 2 * chunk + 12345);
	assert_int_equal(mincore(base + 2 * chunk, chunk, vec), 0);
	for (size_t i = 0; i < pages; i++)
		assert_int_equal(vec[i] & 1, 1);
	/* the neighbours stay untouched */
	assert_int_equal(mincore(base + 3 * chunk, chunk, vec), 0);
	resident = 0;
	for (size_t i = 0; i < pages; i++)
		resident += vec[i] & 1;
	assert_int_equal(resident, 0);
	/* a range across two chunks populates both */
	p = guestmem_gpa_to_host(gm, 5 * chunk - 4, 8);
	assert_non_null(p);
	assert_int_equal(mincore(base + 4 * chunk, 2 * chunk, vec), 0);
	for (size_t i = 0; i < 2 * pages; i++)
		assert_int_equal(vec[i] & 1, 1);
	guestmem_destroy(gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_invalid),  cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_low_only),	    cmocka_unit_test(test_high_region_and_sharing),
	    cmocka_unit_test(test_flags_and_hooks), cmocka_unit_test(test_populate_chunk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
