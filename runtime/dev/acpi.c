/*
 * Minimal ACPI (see acpi.h): the tables, built once at boot, and the PM1
 * and reset registers.  Table layouts follow the ACPI 6.x specification
 * (FADT revision 3 length 244, the ACPI 2.0 layout every kernel reads).
 *
 * Invariant: every table written sums to 0 (its checksum byte), and the
 * RSDP's first 20 bytes and all 36 of them sum to 0.
 */
#include "runtime/dev/acpi.h"

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"
#include "runtime/dev/ioapic.h"
#include "runtime/dev/lapic.h"
#include "runtime/dev/pci.h"
#include "runtime/dev/pvpanic.h"

#include <stdlib.h>
#include <string.h>

#define HDR	    36 /* the common table header */
#define FADT_LEN    244
#define FACS_LEN    64
#define RSDP_LEN    36
#define PM1_EVT_LEN 4
#define PM1_CNT_LEN 2

/* MADT */
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC	 0
#define MADT_IOAPIC	 1
#define MADT_ISO	 2
#define MADT_LAPIC_NMI	 4
#define MADT_LEN	 (HDR + 8 + 8 + 12 + 10 + 6)

/* FADT flags */
#define FADT_WBINVD	   (1u << 0)
#define FADT_PROC_C1	   (1u << 2)
#define FADT_PWR_BUTTON	   (1u << 4) /* no fixed power button */
#define FADT_SLP_BUTTON	   (1u << 5) /* no fixed sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
/* IAPC_BOOT_ARCH: legacy devices (RTC, PIC, PIT, COM1) present, no 8042 */
#define FADT_LEGACY_DEVICES 0x0001

/* PM1 control bits */
#define PM1_SCI_EN	  0x0001
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_EN	  0x2000

/* _S5: Name (_S5_, Package (4) { 5, 5, 0, 0 }) */
static const uint8_t dsdt_aml[] = {0x08, '_',  'S',  '5',  '_',	 0x12, 0x08,
				   0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};

uint8_t acpi_sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	bt_put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "BTKERN", 6);
	memcpy(t + 16, "BTVM    ", 8);
	bt_put32(t + 24, 1);	   /* OEM revision */
	memcpy(t + 28, "BTKN", 4); /* creator */
	bt_put32(t + 32, 1);
}

static void checksum(uint8_t *t, size_t len, size_t at)
{
	t[at] = 0;
	t[at] = (uint8_t)(0x100 - acpi_sum(t, len));
}

/* A Generic Address Structure in system I/O space. */
static void gas_io(uint8_t *g, uint8_t bits, uint8_t access, uint16_t port)
{
	g[0] = 1; /* SystemIO */
	g[1] = bits;
	g[2] = 0;
	g[3] = access; /* 1 byte, 2 word, 3 dword */
	bt_put64(g + 4, port);
}

/* The MADT, as QEMU's pc machine builds it for one CPU: the LAPIC
 * address with PCAT_COMPAT (8259s present), processor 0's LAPIC, the
 * IOAPIC with GSI base 0, ISA IRQ 0 -> GSI 2 (the PIT is wired to pin 2;
 * flags 0: bus-conforming, i.e. edge, active high), and LINT1 as the NMI
 * input of every processor.  Returns its length. */
static size_t build_madt(uint8_t *m)
{
	size_t n = HDR;
	bt_put32(m + n, LAPIC_BASE);
	bt_put32(m + n + 4, MADT_PCAT_COMPAT);
	n += 8;
	const uint8_t lapic[8] = {MADT_LAPIC, 8, 0 /* UID */, 0 /* APIC ID */, 1 /* enabled */};
	memcpy(m + n, lapic, sizeof(lapic));
	n += sizeof(lapic);
	m[n] = MADT_IOAPIC;
	m[n + 1] = 12;
	m[n + 2] = 0; /* IOAPIC ID */
	bt_put32(m + n + 4, IOAPIC_BASE);
	bt_put32(m + n + 8, 0); /* GSI base */
	n += 12;
	m[n] = MADT_ISO;
	m[n + 1] = 10;
	m[n + 2] = 0; /* bus: ISA */
	m[n + 3] = 0; /* source: IRQ 0 */
	bt_put32(m + n + 4, 2);
	bt_put16(m + n + 8, 0);
	n += 10;
	m[n] = MADT_LAPIC_NMI;
	m[n + 1] = 6;
	m[n + 2] = 0xff; /* all processors */
	bt_put16(m + n + 3, 0);
	m[n + 5] = 1; /* LINT1 */
	n += 6;
	header(m, "APIC", (uint32_t)n, 3);
	checksum(m, n, 9);
	return n;
}

size_t acpi_build_tables(uint8_t *buf, size_t cap, uint32_t base)
{
	/* layout: RSDP 0, XSDT 0x40, RSDT 0x80, FACS 0xc0 (64-aligned),
	 * FADT 0x100, DSDT 0x200, MADT after it (16-aligned) */
	const size_t o_xsdt = 0x40, o_rsdt = 0x80, o_facs = 0xc0, o_fadt = 0x100, o_dsdt = 0x200;
	uint8_t pci_aml[ACPI_TABLES_SIZE]; /* the PCI root bridge (pci.h) */
	const size_t pci_len = pci_host_build_aml(pci_aml, sizeof(pci_aml));
	uint8_t pv_aml[64]; /* the pvpanic device (pvpanic.h) */
	const size_t pv_len = pvpanic_build_aml(pv_aml, sizeof(pv_aml));
	const size_t dsdt_len = HDR + sizeof(dsdt_aml) + pci_len + pv_len;
	const size_t o_madt = (o_dsdt + dsdt_len + 15) & ~(size_t)15;
	const size_t end = o_madt + MADT_LEN;
	if (!buf || cap < ACPI_TABLES_SIZE || !pci_len || !pv_len || end > ACPI_TABLES_SIZE)
		return 0;
	memset(buf, 0, ACPI_TABLES_SIZE);
	if (build_madt(buf + o_madt) != MADT_LEN)
		return 0;

	uint8_t *d = buf + o_dsdt;
	header(d, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(d + HDR, dsdt_aml, sizeof(dsdt_aml));
	memcpy(d + HDR + sizeof(dsdt_aml), pci_aml, pci_len);
	memcpy(d + HDR + sizeof(dsdt_aml) + pci_len, pv_aml, pv_len);
	checksum(d, dsdt_len, 9);

	uint8_t *f = buf + o_facs;
	memcpy(f, "FACS", 4);
	bt_put32(f + 4, FACS_LEN);
	f[32] = 1; /* version (ACPI 2.0 layout) */

	uint8_t *a = buf + o_fadt;
	header(a, "FACP", FADT_LEN, 3);
	bt_put32(a + 36, base + (uint32_t)o_facs); /* FIRMWARE_CTRL */
	bt_put32(a + 40, base + (uint32_t)o_dsdt); /* DSDT */
	bt_put16(a + 46, 9);			   /* SCI_INT */
	bt_put32(a + 48, 0);			   /* SMI_CMD: always in ACPI mode */
	bt_put32(a + 56, ACPI_PM1_EVT_PORT);	   /* PM1a_EVT_BLK */
	bt_put32(a + 64, ACPI_PM1_CNT_PORT);	   /* PM1a_CNT_BLK */
	a[88] = PM1_EVT_LEN;
	a[89] = PM1_CNT_LEN;
	bt_put16(a + 96, 101);	/* P_LVL2_LAT > 100: no C2 */
	bt_put16(a + 98, 1001); /* P_LVL3_LAT > 1000: no C3 */
	bt_put16(a + 109, FADT_LEGACY_DEVICES);
	bt_put32(a + 112, FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON |
			      FADT_RESET_REG_SUP);
	gas_io(a + 116, 8, 1, ACPI_RESET_PORT); /* RESET_REG */
	a[128] = 0x06;				/* RESET_VALUE */
	bt_put64(a + 132, base + o_facs);	/* X_FIRMWARE_CTRL */
	bt_put64(a + 140, base + o_dsdt);	/* X_DSDT */
	gas_io(a + 148, 8 * PM1_EVT_LEN, 2, ACPI_PM1_EVT_PORT);
	gas_io(a + 172, 8 * PM1_CNT_LEN, 2, ACPI_PM1_CNT_PORT);
	checksum(a, FADT_LEN, 9);

	uint8_t *r = buf + o_rsdt;
	header(r, "RSDT", HDR + 8, 1);
	bt_put32(r + HDR, base + (uint32_t)o_fadt);
	bt_put32(r + HDR + 4, base + (uint32_t)o_madt);
	checksum(r, HDR + 8, 9);

	uint8_t *x = buf + o_xsdt;
	header(x, "XSDT", HDR + 16, 1);
	bt_put64(x + HDR, base + o_fadt);
	bt_put64(x + HDR + 8, base + o_madt);
	checksum(x, HDR + 16, 9);

	uint8_t *p = buf;
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, "BTKERN", 6);
	p[15] = 2; /* revision: ACPI 2.0+, XSDT */
	bt_put32(p + 16, base + (uint32_t)o_rsdt);
	bt_put32(p + 20, RSDP_LEN);
	bt_put64(p + 24, base + o_xsdt);
	checksum(p, 20, 8);	   /* the ACPI 1.0 checksum */
	checksum(p, RSDP_LEN, 32); /* the extended one */
	return end;
}

/* ------------------------------------------------------------ registers */

struct acpi_pm {
	struct iobus *bus;
	acpi_event_fn *on_poweroff, *on_reset;
	void *opaque;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
};

static void evt_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct acpi_pm *pm = opaque;
	uint32_t v = pm->pm1_sts | (uint32_t)pm->pm1_en << 16;
	*value = (v >> (8 * off)) & (size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1);
}

static void evt_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	for (unsigned i = 0; i < size && off + i < PM1_EVT_LEN; i++) {
		uint8_t b = (uint8_t)(value >> (8 * i));
		unsigned at = (unsigned)off + i;
		if (at < 2) /* PM1_STS: write 1 to clear */
			pm->pm1_sts &= (uint16_t) ~((unsigned)b << (8 * at));
		else /* PM1_EN */
			pm->pm1_en = (uint16_t)((pm->pm1_en & ~(0xffu << (8 * (at - 2)))) |
						((unsigned)b << (8 * (at - 2))));
	}
}

static void cnt_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct acpi_pm *pm = opaque;
	*value =
	    (uint64_t)((pm->pm1_cnt | PM1_SCI_EN) >> (8 * off)) & (size >= 2 ? 0xffffu : 0xffu);
}

static void cnt_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	uint16_t v = pm->pm1_cnt;
	for (unsigned i = 0; i < size && off + i < PM1_CNT_LEN; i++) {
		unsigned at = (unsigned)off + i;
		v = (uint16_t)((v & ~(0xffu << (8 * at))) |
			       ((unsigned)(uint8_t)(value >> (8 * i)) << (8 * at)));
	}
	pm->pm1_cnt = (uint16_t)(v & ~PM1_SLP_EN); /* SLP_EN reads 0 */
	if (!(v & PM1_SLP_EN))
		return;
	unsigned typ = (v >> PM1_SLP_TYP_SHIFT) & 7;
	if (typ != ACPI_SLP_TYP_S5) {
		bt_info(LOG_DEV, "acpi: sleep type %u requested: only S5 (off) exists, ignored",
			typ);
		return;
	}
	bt_info(LOG_DEV, "acpi: the guest entered S5 (power off)");
	if (pm->on_poweroff)
		pm->on_poweroff(pm->opaque);
}

static void reset_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	*value = 0;
}

static void reset_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	if (!(value & 0x04))
		return; /* bit 2 starts the reset (bit 1 alone selects its kind) */
	bt_info(LOG_DEV, "port 0xcf9: the guest asked for a reset");
	if (pm->on_reset)
		pm->on_reset(pm->opaque);
}

static void i8042_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	*value = 0xff; /* no controller (as an unclaimed port reads) */
}

static void i8042_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	if ((uint8_t)value != 0xfe)
		return;
	bt_info(LOG_DEV, "port 0x64: the guest pulsed the reset line");
	if (pm->on_reset)
		pm->on_reset(pm->opaque);
}

static const struct iobus_ops evt_ops = {
    .read = evt_read, .write = evt_write, .name = "acpi-pm1-evt"};
static const struct iobus_ops cnt_ops = {
    .read = cnt_read, .write = cnt_write, .name = "acpi-pm1-cnt"};
static const struct iobus_ops reset_ops = {
    .read = reset_read, .write = reset_write, .flags = IOBUS_SPLIT_BYTES, .name = "reset-0xcf9"};
static const struct iobus_ops i8042_ops = {
    .read = i8042_read, .write = i8042_write, .flags = IOBUS_SPLIT_BYTES, .name = "i8042-cmd"};

enum bt_status acpi_pm_create(struct iobus *bus, acpi_event_fn *on_poweroff,
			      acpi_event_fn *on_reset, void *opaque, struct acpi_pm **out)
{
	if (!bus || !out)
		return BT_ERR_INVALID;
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return BT_ERR_NOMEM;
	*pm = (struct acpi_pm){
	    .bus = bus, .on_poweroff = on_poweroff, .on_reset = on_reset, .opaque = opaque};
	enum bt_status s = iobus_register_pio(bus, ACPI_PM1_EVT_PORT, PM1_EVT_LEN, &evt_ops, pm);
	if (s == BT_OK)
		s = iobus_register_pio(bus, ACPI_PM1_CNT_PORT, PM1_CNT_LEN, &cnt_ops, pm);
	if (s == BT_OK)
		s = iobus_register_pio(bus, ACPI_RESET_PORT, 1, &reset_ops, pm);
	if (s == BT_OK)
		s = iobus_register_pio(bus, ACPI_I8042_PORT, 1, &i8042_ops, pm);
	if (s != BT_OK) {
		acpi_pm_destroy(pm);
		return s;
	}
	*out = pm;
	return BT_OK;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	iobus_unregister_pio(pm->bus, ACPI_I8042_PORT);
	iobus_unregister_pio(pm->bus, ACPI_RESET_PORT);
	iobus_unregister_pio(pm->bus, ACPI_PM1_CNT_PORT);
	iobus_unregister_pio(pm->bus, ACPI_PM1_EVT_PORT);
	free(pm);
}
