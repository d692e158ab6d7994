/*
 * Unit tests for runtime/dev/acpi.c: the tables as a kernel walks them
 * (RSDP -> XSDT/RSDT -> FADT -> FACS, DSDT; MADT), every checksum, the
 * MADT's entries as Linux's acpi_parse_madt reads them, and the PM1 and
 * reset registers with port I/O as a kernel does it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/dev_io.h"

#include "runtime/bus/iobus.h"
#include "runtime/dev/acpi.h"
#include "runtime/dev/ioapic.h"
#include "runtime/dev/lapic.h"

#include <string.h>

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The table at guest address gpa inside buf (built for base): signature
 * and length checked, its bytes sum to 0. */
static const uint8_t *table(const uint8_t *buf, uint32_t base, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= base && gpa + 36 <= base + ACPI_TABLES_SIZE);
	const uint8_t *t = buf + (gpa - base);
	assert_memory_equal(t, sig, 4);
	uint32_t len = rd32(t + 4);
	assert_true(len >= 36 && gpa + len <= base + ACPI_TABLES_SIZE);
	assert_int_equal(acpi_sum(t, len), 0);
	return t;
}

static void test_tables(void **state)
{
	(void)state;
	static uint8_t buf[ACPI_TABLES_SIZE];
	const uint32_t base = ACPI_TABLES_BASE;
	assert_int_equal(acpi_build_tables(buf, sizeof(buf) - 1, base), 0); /* too small */
	size_t used = acpi_build_tables(buf, sizeof(buf), base);
	assert_true(used > 0 && used <= ACPI_TABLES_SIZE);

	/* RSDP: signature, revision 2, both checksums */
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(buf[15], 2);
	assert_int_equal(acpi_sum(buf, 20), 0);
	assert_int_equal(rd32(buf + 20), 36);
	assert_int_equal(acpi_sum(buf, 36), 0);

	/* XSDT and RSDT name the same FADT and MADT */
	const uint8_t *x = table(buf, base, rd64(buf + 24), "XSDT");
	const uint8_t *r = table(buf, base, rd32(buf + 16), "RSDT");
	assert_int_equal(rd32(x + 4), 36 + 16);
	assert_int_equal(rd32(r + 4), 36 + 8);
	assert_int_equal(rd64(x + 36), rd32(r + 36));
	assert_int_equal(rd64(x + 44), rd32(r + 40));
	const uint8_t *f = table(buf, base, rd64(x + 36), "FACP");
	assert_int_equal(rd32(f + 4), 244);
	assert_int_equal(f[8], 3); /* revision */

	/* the registers a kernel uses to power off and reset */
	assert_int_equal(rd32(f + 64), ACPI_PM1_CNT_PORT);
	assert_int_equal(rd32(f + 56), ACPI_PM1_EVT_PORT);
	assert_int_equal(f[89], 2);		 /* PM1_CNT_LEN */
	assert_int_equal(f[88], 4);		 /* PM1_EVT_LEN */
	assert_int_equal(rd32(f + 48), 0);	 /* no SMI_CMD: always in ACPI mode */
	assert_true(rd32(f + 112) & (1u << 10)); /* RESET_REG_SUP */
	assert_int_equal(f[116], 1);		 /* the reset register is in I/O space */
	assert_int_equal(rd64(f + 120), ACPI_RESET_PORT);
	assert_int_equal(f[128], 6);
	assert_int_equal(rd64(f + 172 + 4), ACPI_PM1_CNT_PORT); /* X_PM1a_CNT_BLK */
	assert_int_equal(rd64(f + 140), rd32(f + 40));		/* X_DSDT == DSDT */
	assert_int_equal(rd64(f + 132), rd32(f + 36));		/* X_FIRMWARE_CTRL */

	/* FACS: 64 bytes, 64-byte aligned, no checksum */
	uint32_t facs = rd32(f + 36);
	assert_int_equal(facs % 64, 0);
	assert_memory_equal(buf + (facs - base), "FACS", 4);
	assert_int_equal(rd32(buf + (facs - base) + 4), 64);

	/* DSDT: the _S5 package, SLP_TYP 5 */
	const uint8_t *d = table(buf, base, rd32(f + 40), "DSDT");
	static const uint8_t s5[] = {0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 0x05};
	assert_memory_equal(d + 36, s5, sizeof(s5));
	assert_int_equal(d[36 + 9], ACPI_SLP_TYP_S5);
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* The MADT, entry by entry as acpi_table_parse_madt walks it. */
static void test_madt(void **state)
{
	(void)state;
	static uint8_t buf[ACPI_TABLES_SIZE];
	const uint32_t base = ACPI_TABLES_BASE;
	assert_true(acpi_build_tables(buf, sizeof(buf), base) > 0);
	const uint8_t *x = table(buf, base, rd64(buf + 24), "XSDT");
	const uint8_t *m = table(buf, base, rd64(x + 44), "APIC");
	assert_int_equal(m[8], 3); /* revision */
	assert_int_equal(rd32(m + 36), LAPIC_BASE);
	assert_int_equal(rd32(m + 40), 1); /* PCAT_COMPAT: the 8259s exist */
	uint32_t len = rd32(m + 4);
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0: /* processor local APIC: UID 0, APIC ID 0, enabled */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], 0);
			assert_int_equal(e[3], 0);
			assert_int_equal(rd32(e + 4), 1);
			lapics++;
			break;
		case 1: /* IOAPIC 0 at 0xfec00000, GSI base 0 */
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], 0);
			assert_int_equal(rd32(e + 4), IOAPIC_BASE);
			assert_int_equal(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2: /* ISA IRQ 0 -> GSI 2, bus-conforming */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			assert_int_equal(e[3], 0);
			assert_int_equal(rd32(e + 4), 2);
			assert_int_equal(rd16(e + 8), 0);
			isos++;
			break;
		case 4: /* LAPIC NMI: all processors, LINT1 */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(lapics, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
	assert_int_equal(nmis, 1);
	/* a flipped byte breaks the checksum */
	uint8_t copy[128];
	assert_true(len <= sizeof(copy));
	memcpy(copy, m, len);
	copy[50] ^= 1;
	assert_int_not_equal(acpi_sum(copy, len), 0);
}

struct fixture {
	struct iobus *bus;
	struct acpi_pm *pm;
	unsigned poweroffs, resets;
};

static void on_poweroff(void *opaque)
{
	((struct fixture *)opaque)->poweroffs++;
}

static void on_reset(void *opaque)
{
	((struct fixture *)opaque)->resets++;
}

static void outw(struct fixture *f, uint16_t port, uint16_t v)
{
	assert_int_equal(iobus_pio_out(f->bus, port, 2, v), BT_OK);
}

static void test_registers(void **state)
{
	(void)state;
	struct fixture fx = {0}, *f = &fx;
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(acpi_pm_create(f->bus, on_poweroff, on_reset, f, &f->pm), BT_OK);

	/* PM1_CNT reads SCI_EN: the OS finds the machine in ACPI mode */
	assert_int_equal(inw(f, ACPI_PM1_CNT_PORT) & 1, 1);
	/* PM1_EN reads back; PM1_STS is write-1-to-clear (nothing set) */
	outw(f, ACPI_PM1_EVT_PORT + 2, 0x0121);
	assert_int_equal(inw(f, ACPI_PM1_EVT_PORT + 2), 0x0121);
	outw(f, ACPI_PM1_EVT_PORT, 0xffff);
	assert_int_equal(inw(f, ACPI_PM1_EVT_PORT), 0);

	/* SLP_TYP 5 without SLP_EN, then another sleep type: nothing */
	outw(f, ACPI_PM1_CNT_PORT, 5 << 10);
	outw(f, ACPI_PM1_CNT_PORT, (3 << 10) | (1 << 13));
	assert_int_equal(f->poweroffs, 0);
	/* S5 with SLP_EN: off; SLP_EN reads back 0 */
	outw(f, ACPI_PM1_CNT_PORT, (5 << 10) | (1 << 13));
	assert_int_equal(f->poweroffs, 1);
	assert_int_equal(inw(f, ACPI_PM1_CNT_PORT) & (1 << 13), 0);

	/* 0xcf9: bit 1 alone selects the reset kind, bit 2 starts it */
	outb(f, ACPI_RESET_PORT, 0x02);
	assert_int_equal(f->resets, 0);
	outb(f, ACPI_RESET_PORT, 0x06);
	assert_int_equal(f->resets, 1);
	/* i8042: other commands are ignored, 0xfe pulses reset; reads 0xff */
	outb(f, ACPI_I8042_PORT, 0xd1);
	assert_int_equal(f->resets, 1);
	outb(f, ACPI_I8042_PORT, 0xfe);
	assert_int_equal(f->resets, 2);
	assert_int_equal(inb(f, ACPI_I8042_PORT), 0xff);
	assert_int_equal(f->poweroffs, 1);

	acpi_pm_destroy(f->pm);
	/* the ports are free again */
	assert_int_equal(acpi_pm_create(f->bus, NULL, NULL, NULL, &f->pm), BT_OK);
	outw(f, ACPI_PM1_CNT_PORT, (5 << 10) | (1 << 13)); /* no callback: harmless */
	acpi_pm_destroy(f->pm);
	iobus_destroy(f->bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_madt),
	    cmocka_unit_test(test_registers),
	};
	return cmocka_run_group_tests_name("dev_acpi", tests, NULL, NULL);
}
