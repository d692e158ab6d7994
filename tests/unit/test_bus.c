/*
 * Unit tests for runtime/bus: registration, overlap refusal, dispatch with
 * offsets and sizes, byte splitting, unclaimed ports (all ones, dropped
 * writes, logged once) and MMIO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pretrans/base/log.h"
#include "runtime/bus/iobus.h"

#include <stdio.h>
#include <string.h>

struct fake_dev {
	unsigned reads, writes;
	uint64_t last_off;
	unsigned last_size;
	uint64_t last_value;
	uint8_t regs[16];
};

static void fake_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct fake_dev *d = opaque;
	d->reads++;
	d->last_off = off;
	d->last_size = size;
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)d->regs[(off + i) % 16] << (8 * i);
	*value = v;
}

static void fake_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct fake_dev *d = opaque;
	d->writes++;
	d->last_off = off;
	d->last_size = size;
	d->last_value = value;
	for (unsigned i = 0; i < size; i++)
		d->regs[(off + i) % 16] = (uint8_t)(value >> (8 * i));
}

static const struct iobus_ops wide_ops = {.read = fake_read, .write = fake_write, .name = "wide"};
static const struct iobus_ops byte_ops = {
    .read = fake_read, .write = fake_write, .flags = IOBUS_SPLIT_BYTES, .name = "bytes"};

static const struct iobus_ops whole_ops = {
    .read = fake_read, .write = fake_write, .flags = IOBUS_WHOLE, .name = "whole"};

/* PCI's CONFIG_ADDRESS: one port taking a dword whole, while the next
 * byte belongs to another device (the ACPI reset register at 0xcf9). */
static void test_whole_access(void **state)
{
	struct iobus *bus;
	struct fake_dev a = {0}, b = {0};
	uint32_t v;
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(iobus_register_pio(bus, 0xcf8, 1, &whole_ops, &a), BT_OK);
	assert_int_equal(iobus_register_pio(bus, 0xcf9, 1, &wide_ops, &b), BT_OK);
	assert_int_equal(iobus_pio_out(bus, 0xcf8, 4, 0x80001234u), BT_OK);
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.last_size, 4);
	assert_int_equal(a.last_value, 0x80001234u);
	assert_int_equal(b.writes, 0);
	assert_int_equal(iobus_pio_in(bus, 0xcf8, 4, &v), BT_OK);
	assert_int_equal(a.last_size, 4);
	assert_int_equal(b.reads, 0);
	/* a byte at 0xcf9 is the other device's */
	assert_int_equal(iobus_pio_out(bus, 0xcf9, 1, 6), BT_OK);
	assert_int_equal(b.writes, 1);
	assert_int_equal(a.writes, 1);
	/* without the flag the dword would have been split into bytes */
	assert_int_equal(iobus_unregister_pio(bus, 0xcf8), BT_OK);
	assert_int_equal(iobus_register_pio(bus, 0xcf8, 1, &wide_ops, &a), BT_OK);
	assert_int_equal(iobus_pio_out(bus, 0xcf8, 4, 0x80001234u), BT_OK);
	assert_int_equal(a.last_size, 1);
	assert_int_equal(b.writes, 2);
	iobus_destroy(bus);
}

static void test_overlap_refused(void **state)
{
	struct iobus *bus;
	struct fake_dev a = {0}, b = {0};
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(iobus_register_pio(bus, 0x100, 8, &wide_ops, &a), BT_OK);
	/* exact, left overlap, right overlap, containing, contained */
	assert_int_equal(iobus_register_pio(bus, 0x100, 8, &wide_ops, &b), BT_ERR_RANGE);
	assert_int_equal(iobus_register_pio(bus, 0xfc, 5, &wide_ops, &b), BT_ERR_RANGE);
	assert_int_equal(iobus_register_pio(bus, 0x107, 2, &wide_ops, &b), BT_ERR_RANGE);
	assert_int_equal(iobus_register_pio(bus, 0xf0, 0x40, &wide_ops, &b), BT_ERR_RANGE);
	assert_int_equal(iobus_register_pio(bus, 0x103, 1, &wide_ops, &b), BT_ERR_RANGE);
	/* adjacent on both sides is fine */
	assert_int_equal(iobus_register_pio(bus, 0xf8, 8, &wide_ops, &b), BT_OK);
	assert_int_equal(iobus_register_pio(bus, 0x108, 8, &wide_ops, &b), BT_OK);
	/* zero length and past the 64 KiB port space are invalid */
	assert_int_equal(iobus_register_pio(bus, 0x200, 0, &wide_ops, &b), BT_ERR_INVALID);
	assert_int_equal(iobus_register_pio(bus, 0xfffe, 4, &wide_ops, &b), BT_ERR_RANGE);
	/* after unregistering, the range is free again */
	assert_int_equal(iobus_unregister_pio(bus, 0x100), BT_OK);
	assert_int_equal(iobus_unregister_pio(bus, 0x100), BT_ERR_NOTFOUND);
	assert_int_equal(iobus_register_pio(bus, 0x100, 8, &wide_ops, &b), BT_OK);
	iobus_destroy(bus);
}

static void test_dispatch_offsets_and_sizes(void **state)
{
	struct iobus *bus;
	struct fake_dev a = {0}, b = {0};
	uint32_t v;
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(iobus_register_pio(bus, 0x1f0, 8, &wide_ops, &a), BT_OK);
	assert_int_equal(iobus_register_pio(bus, 0x3f8, 8, &byte_ops, &b), BT_OK);

	assert_int_equal(iobus_pio_out(bus, 0x1f0, 2, 0xbeef), BT_OK);
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.last_off, 0);
	assert_int_equal(a.last_size, 2);
	assert_int_equal(a.last_value, 0xbeef);
	assert_int_equal(iobus_pio_in(bus, 0x1f0, 4, &v), BT_OK);
	assert_int_equal(a.last_size, 4);
	assert_int_equal(v & 0xffff, 0xbeef);

	/* a byte-register device sees a 16-bit out as two byte writes */
	assert_int_equal(iobus_pio_out(bus, 0x3fa, 2, 0x1234), BT_OK);
	assert_int_equal(b.writes, 2);
	assert_int_equal(b.last_off, 3);
	assert_int_equal(b.last_size, 1);
	assert_int_equal(b.regs[2], 0x34);
	assert_int_equal(b.regs[3], 0x12);
	assert_int_equal(iobus_pio_in(bus, 0x3fa, 2, &v), BT_OK);
	assert_int_equal(v, 0x1234);

	/* an access running past the end of a range is split: the tail is unclaimed */
	b.regs[7] = 0x5a;
	assert_int_equal(iobus_pio_in(bus, 0x3ff, 2, &v), BT_OK);
	assert_int_equal(v, 0xff5a);

	/* bad sizes are refused at the edge */
	assert_int_equal(iobus_pio_in(bus, 0x1f0, 3, &v), BT_ERR_INVALID);
	assert_int_equal(iobus_pio_out(bus, 0x1f0, 8, 0), BT_ERR_INVALID);
	iobus_destroy(bus);
}

static unsigned count_lines_with(FILE *f, const char *needle)
{
	char line[512];
	unsigned n = 0;
	rewind(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	return n;
}

static void test_unclaimed_all_ones_logged_once(void **state)
{
	struct iobus *bus;
	uint32_t v;
	FILE *log = tmpfile();
	assert_non_null(log);
	bt_log_to(log);
	bt_log_set(LOG_DEV, LOG_INFO);
	assert_int_equal(iobus_create(&bus), BT_OK);

	assert_int_equal(iobus_pio_in(bus, 0x2f8, 1, &v), BT_OK);
	assert_int_equal(v, 0xff);
	assert_int_equal(iobus_pio_in(bus, 0x2f8, 2, &v), BT_OK);
	assert_int_equal(v, 0xffff);
	assert_int_equal(iobus_pio_in(bus, 0x2f8, 4, &v), BT_OK);
	assert_int_equal(v, 0xffffffffu);
	assert_int_equal(iobus_pio_out(bus, 0x2f8, 1, 0x41), BT_OK);
	assert_int_equal(iobus_pio_out(bus, 0x64, 1, 0xfe), BT_OK);
	assert_int_equal(iobus_unclaimed_accesses(bus), 5);
	fflush(log);
	assert_int_equal(count_lines_with(log, "0x02f8"), 1);
	assert_int_equal(count_lines_with(log, "0x0064"), 1);

	uint64_t m;
	assert_int_equal(iobus_mmio_read(bus, 0xfee00030, 8, &m), BT_OK);
	assert_true(m == UINT64_MAX);
	assert_int_equal(iobus_mmio_read(bus, 0xfee00020, 4, &m), BT_OK);
	assert_true(m == 0xffffffffu);
	fflush(log);
	assert_int_equal(count_lines_with(log, "unclaimed MMIO"), 1);

	iobus_destroy(bus);
	bt_log_to(NULL);
	bt_log_set(LOG_ALL, LOG_WARN);
	fclose(log);
}

static void test_mmio(void **state)
{
	struct iobus *bus;
	struct fake_dev a = {0}, b = {0};
	uint64_t v;
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(iobus_register_mmio(bus, 0xfec00000, 0x1000, &wide_ops, &a), BT_OK);
	assert_int_equal(iobus_register_mmio(bus, 0xfec00800, 0x10, &wide_ops, &b), BT_ERR_RANGE);
	assert_true(iobus_mmio_claimed(bus, 0xfec00fff));
	assert_false(iobus_mmio_claimed(bus, 0xfec01000));
	assert_int_equal(iobus_mmio_write(bus, 0xfec00008, 8, 0x1122334455667788ull), BT_OK);
	assert_int_equal(a.last_off, 8);
	assert_int_equal(a.last_size, 8);
	assert_int_equal(iobus_mmio_read(bus, 0xfec00008, 8, &v), BT_OK);
	assert_true(v == 0x1122334455667788ull);
	assert_int_equal(iobus_mmio_read(bus, 0xfec0000c, 2, &v), BT_OK);
	assert_int_equal(v, 0x3344);
	assert_int_equal(iobus_unregister_mmio(bus, 0xfec00000), BT_OK);
	assert_false(iobus_mmio_claimed(bus, 0xfec00000));
	iobus_destroy(bus);
}

static void test_many_ranges_sorted(void **state)
{
	struct iobus *bus;
	struct fake_dev d[40];
	uint32_t v;
	memset(d, 0, sizeof(d));
	assert_int_equal(iobus_create(&bus), BT_OK);
	/* register out of order, then check each port reaches its own device */
	for (unsigned i = 0; i < 40; i++) {
		unsigned k = (i * 17) % 40;
		d[k].regs[0] = (uint8_t)k;
		assert_int_equal(
		    iobus_register_pio(bus, (uint16_t)(0x1000 + 4 * k), 4, &wide_ops, &d[k]),
		    BT_OK);
	}
	for (unsigned k = 0; k < 40; k++) {
		assert_int_equal(iobus_pio_in(bus, (uint16_t)(0x1000 + 4 * k), 1, &v), BT_OK);
		assert_int_equal(v, k);
		assert_int_equal(d[k].reads, 1);
	}
	assert_int_equal(iobus_unclaimed_accesses(bus), 0);
	iobus_destroy(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_overlap_refused),
	    cmocka_unit_test(test_whole_access),
	    cmocka_unit_test(test_dispatch_offsets_and_sizes),
	    cmocka_unit_test(test_unclaimed_all_ones_logged_once),
	    cmocka_unit_test(test_mmio),
	    cmocka_unit_test(test_many_ranges_sorted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
