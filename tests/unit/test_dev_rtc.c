/*
 * Unit tests for the CMOS RTC on a manual virtual clock and a fixed epoch:
 * BCD/binary/12h reads, the UIP window and Linux's avoid-UIP read loop,
 * setting the time, update and periodic interrupts, CMOS RAM and NMI mask.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/dev_io.h"

#include "runtime/bus/iobus.h"
#include "runtime/clock/vclock.h"
#include "runtime/dev/rtc.h"

#include <stdlib.h>

#define MS    1000000ull
#define US    1000ull
#define SEC   1000000000ull
#define EPOCH 1709214358 /* Thu 2024-02-29 13:45:58 UTC */

struct fixture {
	struct iobus *bus;
	struct vclock *clock;
	struct rtc *rtc;
	bool irq;
	unsigned irq_edges;
};

static uint8_t cmos_read(struct fixture *f, uint8_t idx)
{
	outb(f, 0x70, idx);
	return inb(f, 0x71);
}

static void cmos_write(struct fixture *f, uint8_t idx, uint8_t v)
{
	outb(f, 0x70, idx);
	outb(f, 0x71, v);
}

static void irq_sink(void *opaque, unsigned pin, bool level)
{
	struct fixture *f = opaque;
	assert_int_equal(pin, 8);
	if (level && !f->irq)
		f->irq_edges++;
	f->irq = level;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(vclock_create_manual(0, &f->clock), BT_OK);
	assert_int_equal(rtc_create(f->bus, f->clock, EPOCH, &f->rtc), BT_OK);
	irq_line_init(rtc_irq(f->rtc), irq_sink, f, 8);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rtc_destroy(f->rtc);
	vclock_destroy(f->clock);
	iobus_destroy(f->bus);
	free(f);
	return 0;
}

static void test_bcd_binary_12h(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cmos_read(f, 0x0b), 0x02); /* BCD, 24 h */
	assert_int_equal(cmos_read(f, 0x00), 0x58);
	assert_int_equal(cmos_read(f, 0x02), 0x45);
	assert_int_equal(cmos_read(f, 0x04), 0x13);
	assert_int_equal(cmos_read(f, 0x06), 5); /* Thursday, Sunday = 1 */
	assert_int_equal(cmos_read(f, 0x07), 0x29);
	assert_int_equal(cmos_read(f, 0x08), 0x02);
	assert_int_equal(cmos_read(f, 0x09), 0x24);
	assert_int_equal(cmos_read(f, 0x32), 0x20);
	assert_int_equal(cmos_read(f, 0x0d), 0x80);
	assert_int_equal(cmos_read(f, 0x0a) & 0x7f, 0x26);

	cmos_write(f, 0x0b, 0x06); /* binary, 24 h */
	assert_int_equal(cmos_read(f, 0x00), 58);
	assert_int_equal(cmos_read(f, 0x04), 13);
	assert_int_equal(cmos_read(f, 0x09), 24);
	assert_int_equal(cmos_read(f, 0x32), 20);

	cmos_write(f, 0x0b, 0x00); /* BCD, 12 h: 1 PM */
	assert_int_equal(cmos_read(f, 0x04), 0x81);
	cmos_write(f, 0x0b, 0x04); /* binary, 12 h */
	assert_int_equal(cmos_read(f, 0x04), 0x81);
	assert_int_equal(cmos_read(f, 0x00), 58);
	/* time runs on virtual time */
	assert_int_equal(vclock_advance(f->clock, 3 * SEC), BT_OK);
	cmos_write(f, 0x0b, 0x02);
	assert_int_equal(cmos_read(f, 0x00), 0x01);
	assert_int_equal(cmos_read(f, 0x02), 0x46);
	assert_true(rtc_time(f->rtc) == EPOCH + 3);
}

/* drivers/rtc/rtc-mc146818-lib.c mc146818_avoid_UIP() + get_time callback. */
static bool linux_read_time(struct fixture *f, uint8_t out[6], unsigned *retries)
{
	for (unsigned i = 0; i < 10; i++) {
		uint8_t seconds = cmos_read(f, 0x00);
		if (cmos_read(f, 0x0a) & 0x80) {
			(*retries)++;
			assert_int_equal(vclock_advance(f->clock, 100 * US), BT_OK);
			continue;
		}
		out[0] = cmos_read(f, 0x00);
		out[1] = cmos_read(f, 0x02);
		out[2] = cmos_read(f, 0x04);
		out[3] = cmos_read(f, 0x07);
		out[4] = cmos_read(f, 0x08);
		out[5] = cmos_read(f, 0x09);
		if (cmos_read(f, 0x0a) & 0x80)
			continue;
		if (cmos_read(f, 0x00) != seconds)
			continue;
		return true;
	}
	return false;
}

static void test_uip_window(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0);
	assert_int_equal(vclock_set(f->clock, SEC - 300 * US), BT_OK);
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0);
	assert_int_equal(vclock_set(f->clock, SEC - 200 * US), BT_OK);
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0x80);
	assert_int_equal(cmos_read(f, 0x00), 0x58); /* not updated yet */
	unsigned retries = 0;
	uint8_t t[6];
	assert_true(linux_read_time(f, t, &retries));
	assert_true(retries >= 1);
	assert_int_equal(t[0], 0x59);
	assert_int_equal(t[1], 0x45);
	assert_int_equal(t[5], 0x24);
	/* with SET the update is inhibited: UIP never reads 1 */
	cmos_write(f, 0x0b, 0x82);
	assert_int_equal(vclock_set(f->clock, 2 * SEC - 100 * US), BT_OK);
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0);
}

/* mc146818_set_time(): SET, write fields, clear SET. */
static void test_set_time(void **state)
{
	struct fixture *f = *state;
	cmos_write(f, 0x0b, 0x82);
	cmos_write(f, 0x00, 0x59);
	cmos_write(f, 0x02, 0x59);
	cmos_write(f, 0x04, 0x23);
	cmos_write(f, 0x07, 0x31);
	cmos_write(f, 0x08, 0x12);
	cmos_write(f, 0x09, 0x99);
	cmos_write(f, 0x32, 0x20);
	/* frozen while SET */
	assert_int_equal(vclock_advance(f->clock, 5 * SEC), BT_OK);
	assert_int_equal(cmos_read(f, 0x00), 0x59);
	cmos_write(f, 0x0b, 0x02);
	assert_true(rtc_time(f->rtc) == 4102444799ll);
	assert_int_equal(vclock_advance(f->clock, 2 * SEC), BT_OK);
	/* rolled over into 2100-01-01 00:00:01 */
	assert_int_equal(cmos_read(f, 0x00), 0x01);
	assert_int_equal(cmos_read(f, 0x04), 0x00);
	assert_int_equal(cmos_read(f, 0x07), 0x01);
	assert_int_equal(cmos_read(f, 0x08), 0x01);
	assert_int_equal(cmos_read(f, 0x09), 0x00);
	assert_int_equal(cmos_read(f, 0x32), 0x21);
	/* a plain write while running changes just that field */
	cmos_write(f, 0x02, 0x30);
	assert_int_equal(cmos_read(f, 0x02), 0x30);
	assert_int_equal(cmos_read(f, 0x00), 0x01);
}

static void test_update_and_periodic_interrupts(void **state)
{
	struct fixture *f = *state;
	/* update-ended interrupt once per second */
	cmos_write(f, 0x0b, 0x12);
	assert_int_equal(cmos_read(f, 0x0c), 0x00);
	assert_int_equal(vclock_run_until(f->clock, SEC / 2), BT_OK);
	assert_false(f->irq);
	assert_int_equal(vclock_run_until(f->clock, SEC + 1), BT_OK);
	assert_true(f->irq);
	/* IRQF | UF; PF runs at the rate in A even with PIE off, as hardware */
	assert_int_equal(cmos_read(f, 0x0c), 0xd0);
	assert_false(f->irq);
	assert_int_equal(cmos_read(f, 0x0c), 0x00);
	unsigned edges = f->irq_edges;
	for (unsigned s = 2; s <= 5; s++) {
		assert_int_equal(vclock_run_until(f->clock, s * SEC + 1), BT_OK);
		assert_int_equal(cmos_read(f, 0x0c) & 0x90, 0x90);
	}
	assert_int_equal(f->irq_edges, edges + 4);

	/* periodic 1024 Hz: ten interrupts in ~10 ms, each acknowledged via C */
	cmos_write(f, 0x0b, 0x42);
	edges = f->irq_edges;
	uint64_t t0 = vclock_now_ns(f->clock);
	for (uint64_t t = t0; t < t0 + 10 * MS; t += 50 * US) {
		assert_int_equal(vclock_run_until(f->clock, t), BT_OK);
		if (f->irq)
			assert_int_equal(cmos_read(f, 0x0c) & 0xc0, 0xc0);
	}
	assert_true(f->irq_edges - edges >= 9 && f->irq_edges - edges <= 11);
	/* flags are set with interrupts disabled, but IRQF is not */
	cmos_write(f, 0x0b, 0x02);
	cmos_read(f, 0x0c);
	assert_int_equal(vclock_advance(f->clock, 2 * SEC), BT_OK);
	assert_int_equal(cmos_read(f, 0x0c), 0x50); /* PF | UF, no IRQF */
	assert_false(f->irq);
}

static void test_alarm(void **state)
{
	struct fixture *f = *state;
	cmos_write(f, 0x01, 0x00);
	cmos_write(f, 0x03, 0x46); /* 13:46:00 */
	cmos_write(f, 0x05, 0xc0); /* any hour */
	cmos_write(f, 0x0b, 0x22);
	assert_int_equal(vclock_run_until(f->clock, 1 * SEC + 1), BT_OK); /* :59 */
	assert_false(f->irq);
	assert_int_equal(vclock_run_until(f->clock, 2 * SEC + 1), BT_OK); /* 13:46:00 */
	assert_true(f->irq);
	assert_int_equal(cmos_read(f, 0x0c) & 0xa0, 0xa0);
	assert_int_equal(cmos_read(f, 0x01), 0x00); /* alarm bytes read back */
}

static void test_cmos_ram_and_nmi(void **state)
{
	struct fixture *f = *state;
	cmos_write(f, 0x40, 0xa5);
	assert_int_equal(cmos_read(f, 0x40), 0xa5);
	outb(f, 0x70, 0x80 | 0x40);
	assert_true(rtc_nmi_masked(f->rtc));
	assert_int_equal(inb(f, 0x71), 0xa5);
	outb(f, 0x70, 0x40);
	assert_false(rtc_nmi_masked(f->rtc));
	assert_int_equal(inb(f, 0x70), 0xff);
	assert_int_equal(rtc_cmos_set(f->rtc, 0x34, 0x12), BT_OK);
	assert_int_equal(cmos_read(f, 0x34), 0x12);
	assert_int_equal(rtc_cmos_set(f->rtc, 0x0b, 0), BT_ERR_RANGE);
	/* C and D are read-only */
	cmos_write(f, 0x0d, 0x00);
	assert_int_equal(cmos_read(f, 0x0d), 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bcd_binary_12h, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uip_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_and_periodic_interrupts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alarm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmos_ram_and_nmi, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
