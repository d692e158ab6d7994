/*
 * Unit tests for the IOAPIC (runtime/dev/ioapic.c): its registers through
 * IOREGSEL/IOWIN as Linux's io_apic.c reads and writes them, edge and
 * level pins (Remote IRR, EOI by vector and through the EOI register,
 * masking), and, on a whole platform with a manual clock, the routing
 * Linux programs: the PIT's IRQ 0 on pin 2, the UART on pin 4, a PCI INTx
 * line level-triggered on pin 10 through the LAPIC and its EOI, and the
 * 8259 path closed once LINT0 is masked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/bus/iobus.h"
#include "runtime/dev/ioapic.h"
#include "runtime/dev/platform.h"

#include <stdlib.h>

#define MS 1000000ull

struct fixture {
	struct iobus *bus;
	struct ioapic *io;
	struct lapic_msg msgs[16];
	unsigned n;
};

static void on_msg(void *opaque, const struct lapic_msg *m)
{
	struct fixture *f = opaque;
	assert_true(f->n < 16);
	f->msgs[f->n++] = *m;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(ioapic_create(f->bus, on_msg, f, &f->io), BT_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ioapic_destroy(f->io);
	iobus_destroy(f->bus);
	free(f);
	return 0;
}

static uint32_t io_rd(struct iobus *bus, uint8_t index)
{
	uint64_t v;
	assert_int_equal(iobus_mmio_write(bus, IOAPIC_BASE, 4, index), BT_OK);
	assert_int_equal(iobus_mmio_read(bus, IOAPIC_BASE + 0x10, 4, &v), BT_OK);
	return (uint32_t)v;
}

static void io_wr(struct iobus *bus, uint8_t index, uint32_t val)
{
	assert_int_equal(iobus_mmio_write(bus, IOAPIC_BASE, 4, index), BT_OK);
	assert_int_equal(iobus_mmio_write(bus, IOAPIC_BASE + 0x10, 4, val), BT_OK);
}

/* Program pin as Linux's ioapic_write_entry does: high half, then low. */
static void set_entry(struct iobus *bus, unsigned pin, uint64_t e)
{
	io_wr(bus, (uint8_t)(0x11 + 2 * pin), (uint32_t)(e >> 32));
	io_wr(bus, (uint8_t)(0x10 + 2 * pin), (uint32_t)e);
}

static void test_registers(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(io_rd(f->bus, 0x01), 0x170020); /* 24 pins, version 0x20 */
	assert_int_equal(io_rd(f->bus, 0x00), 0);
	io_wr(f->bus, 0x00, 0x02000000);
	assert_int_equal(io_rd(f->bus, 0x00), 0x02000000);
	io_wr(f->bus, 0x01, 0); /* read-only */
	assert_int_equal(io_rd(f->bus, 0x01), 0x170020);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		assert_int_equal(io_rd(f->bus, (uint8_t)(0x10 + 2 * pin)), 0x10000);
	/* delivery status and Remote IRR are read-only */
	set_entry(f->bus, 5, 0x0100000000015031ull | (1u << 12) | IOAPIC_RTE_REMOTE_IRR);
	assert_int_equal(io_rd(f->bus, 0x1a), 0x10031); /* edge: no Remote IRR */
	assert_int_equal(io_rd(f->bus, 0x1b), 0x01000000);
	assert_int_equal(io_rd(f->bus, 0x10 + 2 * IOAPIC_PINS), 0xffffffffu);
}

static void test_edge(void **state)
{
	struct fixture *f = *state;
	ioapic_set_irq(f->io, 2, true); /* masked: lost */
	ioapic_set_irq(f->io, 2, false);
	set_entry(f->bus, 2, 0x30); /* edge, high, fixed, physical dest 0 */
	assert_int_equal(f->n, 0);
	ioapic_set_irq(f->io, 2, true);
	ioapic_set_irq(f->io, 2, true); /* no new edge */
	assert_int_equal(f->n, 1);
	assert_int_equal(f->msgs[0].vector, 0x30);
	assert_false(f->msgs[0].level);
	assert_false(f->msgs[0].logical);
	ioapic_set_irq(f->io, 2, false);
	ioapic_set_irq(f->io, 2, true);
	assert_int_equal(f->n, 2);
	/* unmasking an edge pin that is high sends nothing */
	set_entry(f->bus, 3, IOAPIC_RTE_MASKED | 0x31);
	ioapic_set_irq(f->io, 3, true);
	set_entry(f->bus, 3, 0x31);
	assert_int_equal(f->n, 2);
}

static void test_level(void **state)
{
	struct fixture *f = *state;
	/* as Linux programs a PCI GSI: level, active low, logical dest 1 */
	set_entry(f->bus, 10,
		  (1ull << 56) | IOAPIC_RTE_LEVEL | IOAPIC_RTE_LOW | IOAPIC_RTE_LOGICAL | 0x41);
	ioapic_set_irq(f->io, 10, true);
	assert_int_equal(f->n, 1);
	assert_true(f->msgs[0].level && f->msgs[0].logical);
	assert_int_equal(f->msgs[0].dest, 1);
	assert_true(ioapic_entry(f->io, 10) & IOAPIC_RTE_REMOTE_IRR);
	/* still asserted after the EOI: sent again */
	ioapic_eoi(f->io, 0x40); /* another vector: nothing */
	assert_int_equal(f->n, 1);
	ioapic_eoi(f->io, 0x41);
	assert_int_equal(f->n, 2);
	/* deasserted, then the EOI register: Remote IRR clears, no message */
	ioapic_set_irq(f->io, 10, false);
	assert_int_equal(iobus_mmio_write(f->bus, IOAPIC_BASE + 0x40, 4, 0x41), BT_OK);
	assert_int_equal(f->n, 2);
	assert_false(ioapic_entry(f->io, 10) & IOAPIC_RTE_REMOTE_IRR);
	/* masked while asserted: sent when unmasked */
	set_entry(f->bus, 11, IOAPIC_RTE_MASKED | IOAPIC_RTE_LEVEL | 0x42);
	ioapic_set_irq(f->io, 11, true);
	assert_int_equal(f->n, 2);
	set_entry(f->bus, 11, IOAPIC_RTE_LEVEL | 0x42);
	assert_int_equal(f->n, 3);
	assert_int_equal(f->msgs[2].vector, 0x42);
}

/* A hostile guest: every index, every value class, every width at every
 * offset of the window; with no input asserted nothing is ever sent. */
static void test_hostile(void **state)
{
	struct fixture *f = *state;
	static const uint32_t vals[] = {0, ~0u, 0x0001a0ffu};
	for (size_t i = 0; i < BT_ARRAY_SIZE(vals); i++)
		for (unsigned idx = 0; idx < 256; idx++)
			io_wr(f->bus, (uint8_t)idx, vals[i]);
	for (uint64_t off = 0; off < IOAPIC_SIZE; off++)
		for (unsigned size = 1; size <= 8; size <<= 1) {
			uint64_t v;
			if (off + size > IOAPIC_SIZE)
				continue;
			assert_int_equal(iobus_mmio_write(f->bus, IOAPIC_BASE + off, size, ~0ull),
					 BT_OK);
			assert_int_equal(iobus_mmio_read(f->bus, IOAPIC_BASE + off, size, &v),
					 BT_OK);
		}
	assert_int_equal(f->n, 0);
	assert_int_equal(io_rd(f->bus, 0x01), 0x170020);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		assert_false(ioapic_entry(f->io, pin) & (IOAPIC_RTE_REMOTE_IRR | (1ull << 12)));
	/* still works: an edge on an unmasked pin sends once */
	set_entry(f->bus, 7, 0x47);
	ioapic_set_irq(f->io, 7, true);
	assert_int_equal(f->n, 1);
	assert_int_equal(f->msgs[0].vector, 0x47);
}

/* ------------------------------------------------ the platform's routing */

static void lapic_wr(struct platform *p, uint32_t reg, uint32_t v)
{
	assert_int_equal(iobus_mmio_write(p->bus, LAPIC_BASE + reg, 4, v), BT_OK);
}

static void test_platform_routing(void **state)
{
	(void)state;
	struct vclock *clock;
	assert_int_equal(vclock_create_manual(0, &clock), BT_OK);
	struct platform_config cfg;
	platform_config_init(&cfg);
	cfg.clock = clock;
	struct platform *p;
	assert_int_equal(platform_create(&cfg, &p), BT_OK);
	assert_int_equal(platform_irq_gsi(0), 2);
	assert_int_equal(platform_irq_gsi(4), 4);
	/* Linux with an IOAPIC: APIC on, LINT0 masked ExtINT, 8259 masked */
	lapic_wr(p, LAPIC_SVR, 0x1ff);
	lapic_wr(p, LAPIC_LVT_LINT0, LAPIC_LVT_MASKED | 0x700);
	assert_int_equal(iobus_pio_out(p->bus, 0x21, 1, 0xff), BT_OK);
	/* the PIT (18.2 Hz from reset) on pin 2 */
	set_entry(p->bus, 2, 0x30);
	assert_int_equal(vclock_run_until(clock, 60 * MS), BT_OK);
	assert_true(platform_intr_pending(p));
	assert_int_equal(platform_intr_ack(p), 0x30);
	lapic_wr(p, LAPIC_EOI, 0);
	assert_false(platform_intr_pending(p));
	/* PCI INTA of slot 0 (IRQ 10) level-triggered: the EOI re-sends it
	 * while the function holds it */
	set_entry(p->bus, 10, IOAPIC_RTE_LEVEL | IOAPIC_RTE_LOW | 0x41);
	struct irq_line *inta = pci_host_irq(p->pci, 0);
	irq_line_raise(inta);
	assert_int_equal(platform_intr_ack(p), 0x41);
	assert_false(platform_intr_pending(p)); /* Remote IRR holds it */
	lapic_wr(p, LAPIC_EOI, 0);
	assert_true(platform_intr_pending(p));
	assert_int_equal(platform_intr_ack(p), 0x41);
	irq_line_lower(inta);
	lapic_wr(p, LAPIC_EOI, 0);
	assert_false(platform_intr_pending(p));
	assert_false(ioapic_entry(p->ioapic, 10) & IOAPIC_RTE_REMOTE_IRR);
	/* the 8259 path is closed: unmask IRQ 0 there, only pin 2 is seen */
	assert_int_equal(iobus_pio_out(p->bus, 0x21, 1, 0xfe), BT_OK);
	set_entry(p->bus, 2, IOAPIC_RTE_MASKED | 0x30);
	assert_int_equal(vclock_run_until(clock, 200 * MS), BT_OK);
	assert_false(platform_intr_pending(p));
	platform_destroy(p);
	vclock_destroy(clock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_edge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_level, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	    cmocka_unit_test(test_platform_routing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
