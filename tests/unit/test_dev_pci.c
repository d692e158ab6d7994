/*
 * Unit tests for the PCI host bridge, driven through the I/O bus as Linux's
 * arch/x86/pci/direct.c does: type-1 decoding (CONFIG_ADDRESS only as a
 * dword, byte/word/dword data accesses at 0xcfc-0xcff, absent functions),
 * pci_check_type1 and its sanity check, BAR sizing and moves, the command
 * register's decode bits, INTx routing and masking, and the DSDT AML.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/bus/iobus.h"
#include "runtime/dev/pci.h"

#include <stdlib.h>
#include <string.h>

struct map_event {
	unsigned bar;
	bool mapped;
	uint64_t base;
};

struct fixture {
	struct iobus *bus;
	struct pci_host *host;
	struct pci_device *dev;
	struct map_event ev[16];
	unsigned nev;
	bool irq[PCI_NIRQ];
};

static void on_map(void *opaque, unsigned bar, bool mapped, uint64_t base)
{
	struct fixture *f = opaque;
	assert_true(f->nev < 16);
	f->ev[f->nev++] = (struct map_event){bar, mapped, base};
}

static const struct pci_device_ops ops = {.bar_map = on_map};

static void irq_sink(void *opaque, unsigned pin, bool level)
{
	struct fixture *f = opaque;
	f->irq[pin == PCI_IRQ_A ? 0 : 1] = level;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(pci_host_create(f->bus, &f->host), BT_OK);
	for (unsigned i = 0; i < PCI_NIRQ; i++) {
		struct irq_line *l = pci_host_irq(f->host, i);
		irq_line_init(l, irq_sink, f, i == 0 ? PCI_IRQ_A : PCI_IRQ_B);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->dev)
		pci_device_remove(f->dev);
	pci_host_destroy(f->host);
	iobus_destroy(f->bus);
	free(f);
	return 0;
}

static uint32_t cfg_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_read(struct fixture *f, unsigned slot, unsigned reg, unsigned size)
{
	uint32_t v;
	assert_int_equal(iobus_pio_out(f->bus, PCI_CONFIG_ADDRESS, 4, cfg_addr(0, slot, 0, reg)),
			 BT_OK);
	assert_int_equal(iobus_pio_in(f->bus, PCI_CONFIG_DATA + (reg & 3), size, &v), BT_OK);
	return v;
}

static void cfg_write(struct fixture *f, unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
	assert_int_equal(iobus_pio_out(f->bus, PCI_CONFIG_ADDRESS, 4, cfg_addr(0, slot, 0, reg)),
			 BT_OK);
	assert_int_equal(iobus_pio_out(f->bus, PCI_CONFIG_DATA + (reg & 3), size, v), BT_OK);
}

static void add_device(struct fixture *f, unsigned slot)
{
	const struct pci_id id = {.vendor = 0x1af4,
				  .device = 0x1001,
				  .class_code = 0x010000,
				  .subsys_vendor = 0x1af4,
				  .subsys_id = 2,
				  .int_pin = 1};
	assert_int_equal(pci_device_add(f->host, slot, &id, &ops, f, &f->dev), BT_OK);
}

/* arch/x86/pci/direct.c: pci_check_type1, then pci_sanity_check's scan. */
static void test_linux_check_type1(void **state)
{
	struct fixture *f = *state;
	uint32_t v;
	assert_int_equal(iobus_pio_out(f->bus, 0xcfb, 1, 0x01), BT_OK);
	assert_int_equal(iobus_pio_in(f->bus, 0xcf8, 4, &v), BT_OK);
	assert_int_equal(v, 0); /* the byte at 0xcfb did not reach CONFIG_ADDRESS */
	assert_int_equal(iobus_pio_out(f->bus, 0xcf8, 4, 0x80000000u), BT_OK);
	assert_int_equal(iobus_pio_in(f->bus, 0xcf8, 4, &v), BT_OK);
	assert_int_equal(v, 0x80000000u);
	/* the sanity check finds a host bridge (class 0x0600) or Intel */
	assert_int_equal(cfg_read(f, 0, 0x0a, 2), 0x0600);
	assert_int_equal(cfg_read(f, 0, 0x00, 2), 0x8086);
	assert_int_equal(cfg_read(f, 0, 0x00, 4), 0x12378086u);
	assert_int_equal(cfg_read(f, 0, PCI_HEADER_TYPE, 1), 0);
	/* a word or byte at 0xcf8 is not CONFIG_ADDRESS */
	assert_int_equal(iobus_pio_in(f->bus, 0xcf8, 2, &v), BT_OK);
	assert_int_equal(v, 0xffff);
	assert_int_equal(iobus_pio_out(f->bus, 0xcf8, 2, 0x1234), BT_OK);
	assert_int_equal(iobus_pio_in(f->bus, 0xcf8, 4, &v), BT_OK);
	assert_int_equal(v, cfg_addr(0, 0, 0, PCI_HEADER_TYPE));
}

static void test_decoding(void **state)
{
	struct fixture *f = *state;
	add_device(f, 4);
	/* byte, word and dword data accesses at every offset */
	assert_int_equal(cfg_read(f, 4, 0x00, 4), 0x10011af4u);
	assert_int_equal(cfg_read(f, 4, 0x02, 2), 0x1001);
	assert_int_equal(cfg_read(f, 4, 0x01, 1), 0x1a);
	assert_int_equal(cfg_read(f, 4, 0x03, 1), 0x10);
	assert_int_equal(cfg_read(f, 4, 0x0b, 1), 0x01); /* class: mass storage */
	assert_int_equal(cfg_read(f, 4, PCI_SUBSYS_ID, 2), 2);
	/* absent: another slot, function, bus, or the enable bit clear */
	assert_int_equal(cfg_read(f, 5, 0, 4), 0xffffffffu);
	uint32_t v;
	iobus_pio_out(f->bus, 0xcf8, 4, cfg_addr(0, 4, 1, 0));
	iobus_pio_in(f->bus, 0xcfc, 4, &v);
	assert_int_equal(v, 0xffffffffu);
	iobus_pio_out(f->bus, 0xcf8, 4, cfg_addr(1, 4, 0, 0));
	iobus_pio_in(f->bus, 0xcfc, 2, &v);
	assert_int_equal(v, 0xffff);
	iobus_pio_out(f->bus, 0xcf8, 4, cfg_addr(0, 4, 0, 0) & 0x7fffffffu);
	iobus_pio_in(f->bus, 0xcfc, 4, &v);
	assert_int_equal(v, 0xffffffffu);
	/* read-only identity; writable latency timer and Interrupt Line */
	cfg_write(f, 4, 0x00, 4, 0);
	assert_int_equal(cfg_read(f, 4, 0x00, 4), 0x10011af4u);
	cfg_write(f, 4, 0x0d, 1, 0x40);
	assert_int_equal(cfg_read(f, 4, 0x0d, 1), 0x40);
	assert_int_equal(cfg_read(f, 4, PCI_INTERRUPT_LINE, 1), pci_intx_irq(4, 1));
	assert_int_equal(cfg_read(f, 4, PCI_INTERRUPT_PIN, 1), 1);
	cfg_write(f, 4, PCI_INTERRUPT_LINE, 1, 5);
	assert_int_equal(cfg_read(f, 4, PCI_INTERRUPT_LINE, 1), 5);
	/* no expansion ROM: sizing it reads 0 */
	cfg_write(f, 4, PCI_ROM_ADDRESS, 4, 0xfffff800u);
	assert_int_equal(cfg_read(f, 4, PCI_ROM_ADDRESS, 4), 0);
	/* slots: 0 is the bridge, a busy slot is refused */
	const struct pci_id id = {.vendor = 1};
	struct pci_device *d;
	assert_int_equal(pci_device_add(f->host, 0, &id, &ops, f, &d), BT_ERR_INVALID);
	assert_int_equal(pci_device_add(f->host, 4, &id, &ops, f, &d), BT_ERR_RANGE);
	assert_int_equal(pci_device_add(f->host, 32, &id, &ops, f, &d), BT_ERR_INVALID);
}

/* drivers/pci/probe.c __pci_read_base: decode off, all ones, read, restore. */
static void test_bar_sizing(void **state)
{
	struct fixture *f = *state;
	add_device(f, 3);
	assert_int_equal(pci_device_add_bar(f->dev, 0, 64, true), BT_OK);
	assert_int_equal(pci_device_add_bar(f->dev, 1, 4096, false), BT_OK);
	assert_int_equal(pci_device_add_bar(f->dev, 1, 4096, false), BT_ERR_INVALID);
	assert_int_equal(pci_device_add_bar(f->dev, 2, 100, false), BT_ERR_INVALID);
	/* firmware assigned both and enabled decoding */
	assert_int_equal(f->nev, 2);
	assert_true(f->ev[0].mapped && f->ev[0].bar == 0 && f->ev[0].base == PCI_IO_BASE);
	assert_true(f->ev[1].mapped && f->ev[1].bar == 1 && f->ev[1].base == PCI_MEM_BASE);
	assert_int_equal(cfg_read(f, 3, PCI_BAR0, 4), PCI_IO_BASE | 1);
	assert_int_equal(cfg_read(f, 3, PCI_BAR0 + 4, 4), PCI_MEM_BASE);
	assert_int_equal(cfg_read(f, 3, PCI_COMMAND, 2) & 3, 3);

	uint16_t cmd = (uint16_t)cfg_read(f, 3, PCI_COMMAND, 2);
	cfg_write(f, 3, PCI_COMMAND, 2, cmd & ~3u);
	assert_int_equal(f->nev, 4); /* both unmapped */
	assert_false(f->ev[2].mapped);
	assert_false(f->ev[3].mapped);
	for (unsigned bar = 0; bar < PCI_BARS; bar++) {
		unsigned reg = PCI_BAR0 + 4 * bar;
		uint32_t orig = cfg_read(f, 3, reg, 4);
		cfg_write(f, 3, reg, 4, 0xffffffffu);
		uint32_t sz = cfg_read(f, 3, reg, 4);
		cfg_write(f, 3, reg, 4, orig);
		uint32_t want = bar == 0 ? 0xffffffc1u : bar == 1 ? 0xfffff000u : 0;
		assert_int_equal(sz, want);
		assert_int_equal(cfg_read(f, 3, reg, 4), orig);
	}
	assert_int_equal(f->nev, 4); /* nothing decodes while the command says no */
	cfg_write(f, 3, PCI_COMMAND, 2, cmd);
	assert_int_equal(f->nev, 6);
	assert_true(f->ev[4].mapped && f->ev[4].base == PCI_IO_BASE);
	assert_true(f->ev[5].mapped && f->ev[5].base == PCI_MEM_BASE);

	/* the guest moves the I/O BAR: unmap the old place, map the new one;
	 * the low bits of a base are not writable */
	cfg_write(f, 3, PCI_BAR0, 4, 0xd07f);
	assert_int_equal(cfg_read(f, 3, PCI_BAR0, 4), 0xd041);
	assert_int_equal(f->nev, 8);
	assert_true(!f->ev[6].mapped && f->ev[6].base == PCI_IO_BASE);
	assert_true(f->ev[7].mapped && f->ev[7].base == 0xd040);
	/* sizing with decode on: an I/O base past 64 KiB does not decode */
	cfg_write(f, 3, PCI_BAR0, 4, 0xffffffffu);
	assert_int_equal(f->nev, 9);
	assert_false(f->ev[8].mapped);
	/* a byte write moves only its byte */
	cfg_write(f, 3, PCI_BAR0, 4, 0xc000);
	cfg_write(f, 3, PCI_BAR0 + 1, 1, 0xe0);
	assert_int_equal(cfg_read(f, 3, PCI_BAR0, 4), 0xe001);
	assert_true(f->ev[f->nev - 1].mapped && f->ev[f->nev - 1].base == 0xe000);
	/* removal unmaps what decodes */
	unsigned before = f->nev;
	pci_device_remove(f->dev);
	f->dev = NULL;
	assert_int_equal(f->nev, before + 2);
	assert_false(f->ev[before].mapped);
	assert_false(f->ev[before + 1].mapped);
}

static void test_intx(void **state)
{
	struct fixture *f = *state;
	add_device(f, 4); /* INTA of slot 4 -> PIRQ A -> IRQ 10 */
	assert_int_equal(pci_intx_irq(4, 1), PCI_IRQ_A);
	assert_int_equal(pci_intx_irq(5, 1), PCI_IRQ_B);
	assert_int_equal(pci_intx_irq(4, 2), PCI_IRQ_B);
	pci_device_set_intx(f->dev, true);
	assert_true(f->irq[0]);
	assert_false(f->irq[1]);
	assert_int_equal(cfg_read(f, 4, PCI_STATUS, 2) & PCI_STATUS_INTX, PCI_STATUS_INTX);
	/* INTx disable masks the output, not the status bit */
	cfg_write(f, 4, PCI_COMMAND, 2, PCI_CMD_INTX_DISABLE);
	assert_false(f->irq[0]);
	assert_int_equal(cfg_read(f, 4, PCI_STATUS, 2) & PCI_STATUS_INTX, PCI_STATUS_INTX);
	cfg_write(f, 4, PCI_COMMAND, 2, 0);
	assert_true(f->irq[0]);
	/* shared: a second function on IRQ 10 keeps it up until both drop */
	struct pci_device *d2;
	const struct pci_id id = {.vendor = 0x8086, .device = 1, .int_pin = 1};
	assert_int_equal(pci_device_add(f->host, 8, &id, NULL, NULL, &d2), BT_OK);
	assert_int_equal(pci_intx_irq(8, 1), PCI_IRQ_A);
	pci_device_set_intx(d2, true);
	pci_device_set_intx(f->dev, false);
	assert_true(f->irq[0]);
	assert_int_equal(cfg_read(f, 4, PCI_STATUS, 2) & PCI_STATUS_INTX, 0);
	pci_device_set_intx(d2, false);
	assert_false(f->irq[0]);
	pci_device_set_intx(d2, true);
	pci_device_remove(d2); /* an unplugged function drops its line */
	assert_false(f->irq[0]);
}

/* Decode an AML PkgLength at p: the length and its byte count. */
static size_t pkglen(const uint8_t *p, size_t *nbytes)
{
	size_t n = (p[0] >> 6) + 1;
	size_t len = n == 1 ? (p[0] & 0x3f) : (p[0] & 0x0f);
	for (size_t i = 1; i < n; i++)
		len |= (size_t)p[i] << (4 + 8 * (i - 1));
	*nbytes = n;
	return len;
}

/* s is a string literal (it may hold NUL bytes) */
#define find(p, n, s) find_bytes((p), (n), (s), sizeof(s) - 1)

static const uint8_t *find_bytes(const uint8_t *p, size_t n, const char *s, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(p + i, s, k))
			return p + i;
	return NULL;
}

static void test_aml(void **state)
{
	(void)state;
	uint8_t buf[4096];
	size_t n = pci_host_build_aml(buf, sizeof(buf));
	assert_true(n > 100 && n < 2048);
	assert_int_equal(pci_host_build_aml(buf, n - 1), 0); /* too small */
	assert_int_equal(pci_host_build_aml(buf, sizeof(buf)), n);
	/* Scope (_SB_) spans the whole blob, Device (PCI0) the rest of it */
	size_t nb;
	assert_int_equal(buf[0], 0x10);
	assert_int_equal(1 + pkglen(buf + 1, &nb), n);
	assert_memory_equal(buf + 1 + nb, "_SB_", 4);
	const uint8_t *dev = buf + 1 + nb + 4;
	assert_int_equal(dev[0], 0x5b);
	assert_int_equal(dev[1], 0x82);
	size_t dlen = pkglen(dev + 2, &nb);
	assert_int_equal(dev + 2 + dlen, buf + n);
	assert_memory_equal(dev + 2 + nb, "PCI0", 4);
	const uint8_t *hid = find(buf, n, "_HID");
	assert_non_null(hid);
	assert_memory_equal(hid + 4, "\x0c\x41\xd0\x0a\x03", 5); /* EisaId PNP0A03 */
	/* _CRS: a buffer of resource descriptors ending with an end tag, the
	 * I/O window holding the firmware's BARs */
	const uint8_t *crs = find(buf, n, "_CRS");
	assert_non_null(crs);
	assert_int_equal(crs[4], 0x11);
	size_t blen = pkglen(crs + 5, &nb);
	const uint8_t *b = crs + 5 + nb;
	assert_int_equal(b[0], 0x0a);
	size_t bytes = b[1];
	assert_int_equal(blen, nb + 2 + bytes);
	assert_memory_equal(b + 2 + bytes - 2, "\x79\x00", 2);
	assert_non_null(find(b + 2, bytes, "\x88\x0d\x00\x01\x0c\x03\x00\x00\x00\x0d\xff\xff"));
	/* _PRT: 31 slots x 4 pins; slot 4 INTA is IRQ 10: Package (4) {
	 * 0x0004ffff, Zero, Zero, 10 } */
	const uint8_t *prt = find(buf, n, "_PRT");
	assert_non_null(prt);
	assert_int_equal(prt[4], 0x12);
	pkglen(prt + 5, &nb);
	assert_int_equal(prt[5 + nb], 124);
	assert_non_null(find(buf, n, "\x04\x0c\xff\xff\x04\x00\x00\x00\x0a\x0a"));
	assert_non_null(find(buf, n, "\x04\x0c\xff\xff\x05\x00\x00\x00\x0a\x0b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_linux_check_type1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decoding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aml, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
