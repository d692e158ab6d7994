/*
 * runtime/dev/pvpanic: the port as Linux's pvpanic driver uses it (read
 * the supported events, write PANICKED from the panic notifier), and the
 * DSDT device that lets the driver find it.  Linux itself binding the
 * device and stopping btvm with status 12 is checked by btvm-boot.sh
 * (the test guest) and docs/runtime.md's Debian command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/dev/pvpanic.h"

static void count(void *opaque)
{
	(*(unsigned *)opaque)++;
}

static void test_port(void **state)
{
	(void)state;
	struct iobus *bus;
	struct pvpanic *pv;
	unsigned panics = 0;
	uint32_t v = 0;
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(pvpanic_create(bus, count, &panics, &pv), BT_OK);
	/* a second device on the same port is refused by the bus */
	struct pvpanic *pv2;
	assert_int_not_equal(pvpanic_create(bus, NULL, NULL, &pv2), BT_OK);
	assert_int_equal(iobus_pio_in(bus, PVPANIC_PORT, 1, &v), BT_OK);
	assert_int_equal(v, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	assert_int_equal(pvpanic_events(pv), 0);
	/* a kdump kernel taking over: recorded, not a stop */
	assert_int_equal(iobus_pio_out(bus, PVPANIC_PORT, 1, PVPANIC_CRASH_LOADED), BT_OK);
	assert_int_equal(panics, 0);
	assert_int_equal(pvpanic_events(pv), PVPANIC_CRASH_LOADED);
	/* PANICKED once, whatever the other bits; a second write says nothing new */
	assert_int_equal(iobus_pio_out(bus, PVPANIC_PORT, 1, 0xf1), BT_OK);
	assert_int_equal(panics, 1);
	assert_int_equal(iobus_pio_out(bus, PVPANIC_PORT, 1, PVPANIC_PANICKED), BT_OK);
	assert_int_equal(panics, 1);
	assert_int_equal(pvpanic_events(pv), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	pvpanic_destroy(pv);
	/* the port is free again */
	assert_int_equal(pvpanic_create(bus, NULL, NULL, &pv), BT_OK);
	pvpanic_destroy(pv);
	iobus_destroy(bus);
}

/* AML PkgLength of one byte at p (what the builder emits). */
static size_t pkglen(const uint8_t *p)
{
	assert_int_equal(p[0] >> 6, 0);
	return p[0];
}

static void test_aml(void **state)
{
	(void)state;
	uint8_t a[128];
	size_t n = pvpanic_build_aml(a, sizeof(a));
	assert_true(n > 0);
	assert_int_equal(pvpanic_build_aml(a, n - 1), 0); /* too small: nothing */
	n = pvpanic_build_aml(a, sizeof(a));
	/* Scope (\_SB) { Device (PEVT) { ... } }, lengths consistent */
	assert_int_equal(a[0], 0x10);
	assert_int_equal(1 + pkglen(a + 1), n);
	assert_memory_equal(a + 2, "_SB_", 4);
	assert_int_equal(a[6], 0x5b);
	assert_int_equal(a[7], 0x82);
	assert_int_equal(8 + pkglen(a + 8), n);
	assert_memory_equal(a + 9, "PEVT", 4);
	/* _HID "QEMU0001" (Linux's pvpanic-mmio ACPI id), the I/O port, _STA */
	assert_non_null(memmem(a, n, "\x08_HID\x0dQEMU0001", 14));
	static const uint8_t io[] = {0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00};
	assert_non_null(memmem(a, n, io, sizeof(io)));
	assert_non_null(memmem(a, n, "\x08_STA\x0a\x0f", 7));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_port),
	    cmocka_unit_test(test_aml),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
