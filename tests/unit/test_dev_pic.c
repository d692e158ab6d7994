/*
 * Unit tests for the 8259A pair, driven through the I/O bus exactly as
 * Linux's init_8259A()/mask_and_ack_8259A() and our test guest drive it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/dev_io.h"

#include "runtime/bus/iobus.h"
#include "runtime/dev/pic.h"

#include <stdlib.h>

struct fixture {
	struct iobus *bus;
	struct pic *pic;
	unsigned notifications;
	bool intr;
};

static void on_intr(void *opaque, bool intr)
{
	struct fixture *f = opaque;
	f->notifications++;
	f->intr = intr;
}

/* Linux init_8259A(0): vectors 0x30/0x38, cascade on IRQ2, 8086 mode. */
static void linux_init(struct fixture *f, bool auto_eoi)
{
	outb(f, 0x21, 0xff);
	outb(f, 0xa1, 0xff);
	outb(f, 0x20, 0x11);
	outb(f, 0x21, 0x30);
	outb(f, 0x21, 0x04);
	outb(f, 0x21, auto_eoi ? 0x03 : 0x01);
	outb(f, 0xa0, 0x11);
	outb(f, 0xa1, 0x38);
	outb(f, 0xa1, 0x02);
	outb(f, 0xa1, 0x01);
	outb(f, 0x21, 0x00); /* everything unmasked (cascade included) */
	outb(f, 0xa1, 0x00);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(pic_create(f->bus, &f->pic), BT_OK);
	pic_set_notify(f->pic, on_intr, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pic_destroy(f->pic);
	iobus_destroy(f->bus);
	free(f);
	return 0;
}

static void test_probe_and_init(void **state)
{
	struct fixture *f = *state;
	/* probe_8259A: the mask register reads back */
	outb(f, 0x21, 0xfb);
	assert_int_equal(inb(f, 0x21), 0xfb);
	linux_init(f, false);
	assert_int_equal(inb(f, 0x21), 0x00);
	outb(f, 0xa1, 0xfb);
	assert_int_equal(inb(f, 0xa1), 0xfb);
	outb(f, 0xa1, 0x00);
	pic_set_irq(f->pic, 0, true);
	assert_true(pic_has_interrupt(f->pic));
	assert_true(f->intr);
	assert_int_equal(pic_ack(f->pic), 0x30);
	assert_false(f->intr);
}

static void test_edge_eoi_and_masking(void **state)
{
	struct fixture *f = *state;
	struct irq_line timer;
	linux_init(f, false);
	pic_connect(f->pic, 0, &timer);

	irq_line_pulse(&timer);
	assert_true(pic_has_interrupt(f->pic));
	assert_int_equal(pic_ack(f->pic), 0x30);
	assert_int_equal(pic_isr(f->pic, 0), 0x01);
	assert_int_equal(pic_irr(f->pic, 0), 0x00);
	/* a new edge is latched but blocked while IRQ0 is in service */
	irq_line_pulse(&timer);
	assert_int_equal(pic_irr(f->pic, 0), 0x01);
	assert_false(pic_has_interrupt(f->pic));
	/* OCW3 reads: 0x0a selects IRR, 0x0b ISR */
	outb(f, 0x20, 0x0a);
	assert_int_equal(inb(f, 0x20), 0x01);
	outb(f, 0x20, 0x0b);
	assert_int_equal(inb(f, 0x20), 0x01);
	/* specific EOI for IRQ0 as mask_and_ack_8259A does */
	outb(f, 0x20, 0x60);
	assert_int_equal(pic_isr(f->pic, 0), 0x00);
	assert_true(pic_has_interrupt(f->pic));
	assert_int_equal(pic_ack(f->pic), 0x30);
	outb(f, 0x20, 0x20); /* non-specific EOI */
	assert_int_equal(pic_isr(f->pic, 0), 0x00);

	/* masked requests stay in IRR and come out when unmasked */
	outb(f, 0x21, 0x02);
	pic_set_irq(f->pic, 1, true);
	pic_set_irq(f->pic, 1, false);
	assert_false(pic_has_interrupt(f->pic));
	outb(f, 0x20, 0x0a);
	assert_int_equal(inb(f, 0x20), 0x02);
	outb(f, 0x21, 0x00);
	assert_true(pic_has_interrupt(f->pic));
	assert_int_equal(pic_ack(f->pic), 0x31);
	outb(f, 0x20, 0x20);
	assert_false(pic_has_interrupt(f->pic));
}

static void test_priority_and_nesting(void **state)
{
	struct fixture *f = *state;
	linux_init(f, false);
	pic_set_irq(f->pic, 3, true);
	pic_set_irq(f->pic, 1, true);
	assert_int_equal(pic_ack(f->pic), 0x31); /* IRQ1 outranks IRQ3 */
	/* IRQ3 waits for IRQ1's EOI; IRQ0 preempts (higher priority) */
	assert_false(pic_has_interrupt(f->pic));
	pic_set_irq(f->pic, 0, true);
	assert_true(pic_has_interrupt(f->pic));
	assert_int_equal(pic_ack(f->pic), 0x30);
	assert_int_equal(pic_isr(f->pic, 0), 0x03);
	outb(f, 0x20, 0x20); /* non-specific EOI ends the highest: IRQ0 */
	assert_int_equal(pic_isr(f->pic, 0), 0x02);
	assert_false(pic_has_interrupt(f->pic));
	outb(f, 0x20, 0x20);
	assert_int_equal(pic_isr(f->pic, 0), 0x00);
	assert_int_equal(pic_ack(f->pic), 0x33);
	outb(f, 0x20, 0x63);
	assert_false(pic_has_interrupt(f->pic));

	/* rotation: set priority makes IRQ3 lowest, so IRQ4 beats IRQ1 */
	outb(f, 0x20, 0xc3);
	pic_set_irq(f->pic, 1, false);
	pic_set_irq(f->pic, 4, true);
	pic_set_irq(f->pic, 1, true);
	assert_int_equal(pic_ack(f->pic), 0x34);
}

static void test_cascade_through_slave(void **state)
{
	struct fixture *f = *state;
	struct irq_line ide;
	linux_init(f, false);
	pic_connect(f->pic, 14, &ide);
	irq_line_raise(&ide);
	assert_int_equal(pic_irr(f->pic, 1), 0x40);
	assert_int_equal(pic_irr(f->pic, 0), 0x04);
	assert_true(pic_has_interrupt(f->pic));
	assert_int_equal(pic_ack(f->pic), 0x3e);
	assert_int_equal(pic_isr(f->pic, 1), 0x40);
	assert_int_equal(pic_isr(f->pic, 0), 0x04);
	irq_line_lower(&ide);
	/* a slave IRQ12 arriving now waits behind IRQ14 (slave) and IRQ2 (master) */
	pic_set_irq(f->pic, 12, true);
	assert_false(pic_has_interrupt(f->pic));
	/* slave EOI then master EOI, as Linux does */
	outb(f, 0xa0, 0x66);
	outb(f, 0x20, 0x62);
	assert_true(pic_has_interrupt(f->pic));
	assert_int_equal(pic_ack(f->pic), 0x3c);
	outb(f, 0xa0, 0x20);
	outb(f, 0x20, 0x20);
	assert_false(pic_has_interrupt(f->pic));
	/* masking the slave input */
	outb(f, 0xa1, 0x10);
	pic_set_irq(f->pic, 12, false);
	pic_set_irq(f->pic, 12, true);
	assert_false(pic_has_interrupt(f->pic));
	outb(f, 0xa1, 0x00);
	assert_int_equal(pic_ack(f->pic), 0x3c);
}

static void test_spurious(void **state)
{
	struct fixture *f = *state;
	linux_init(f, false);
	/* level-triggered IRQ5 (ELCR) withdrawn before INTA: spurious IRQ7 */
	outb(f, 0x4d0, 0x20);
	assert_int_equal(inb(f, 0x4d0), 0x20);
	pic_set_irq(f->pic, 5, true);
	assert_true(pic_has_interrupt(f->pic));
	pic_set_irq(f->pic, 5, false);
	assert_int_equal(pic_ack(f->pic), 0x37);
	assert_int_equal(pic_isr(f->pic, 0), 0x00); /* spurious IRQ7 is not in service */

	/* the same on the slave: spurious IRQ15, master IRQ2 stays in service */
	outb(f, 0x4d1, 0x04);
	pic_set_irq(f->pic, 10, true);
	assert_true(pic_has_interrupt(f->pic));
	pic_set_irq(f->pic, 10, false);
	assert_int_equal(pic_ack(f->pic), 0x3f);
	assert_int_equal(pic_isr(f->pic, 1), 0x00);
	assert_int_equal(pic_isr(f->pic, 0), 0x04);
	outb(f, 0x20, 0x62);
	/* ELCR cannot make IRQ0-2 level triggered */
	outb(f, 0x4d0, 0xff);
	assert_int_equal(inb(f, 0x4d0), 0xf8);
}

static void test_level_and_auto_eoi(void **state)
{
	struct fixture *f = *state;
	linux_init(f, true);
	/* auto-EOI: nothing goes into service */
	pic_set_irq(f->pic, 4, true);
	assert_int_equal(pic_ack(f->pic), 0x34);
	assert_int_equal(pic_isr(f->pic, 0), 0x00);
	assert_false(pic_has_interrupt(f->pic));
	pic_set_irq(f->pic, 4, false);

	/* level-triggered input re-requests while its line stays high */
	outb(f, 0x4d0, 0x08);
	pic_set_irq(f->pic, 3, true);
	assert_int_equal(pic_ack(f->pic), 0x33);
	assert_true(pic_has_interrupt(f->pic));
	assert_int_equal(pic_ack(f->pic), 0x33);
	pic_set_irq(f->pic, 3, false);
	assert_false(pic_has_interrupt(f->pic));
	assert_true(f->notifications >= 2);
}

static void test_poll_command(void **state)
{
	struct fixture *f = *state;
	linux_init(f, false);
	pic_set_irq(f->pic, 6, true);
	outb(f, 0x20, 0x0c); /* OCW3 poll */
	assert_int_equal(inb(f, 0x20), 0x86);
	assert_int_equal(pic_isr(f->pic, 0), 0x40);
	outb(f, 0x20, 0x0c);
	assert_int_equal(inb(f, 0x20), 0x00);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_probe_and_init, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_edge_eoi_and_masking, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_priority_and_nesting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cascade_through_slave, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spurious, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_level_and_auto_eoi, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_poll_command, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
