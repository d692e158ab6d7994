/*
 * Unit tests for the local APIC (runtime/dev/lapic.c) on a manual clock,
 * driven through its MMIO page as Linux drives it: the reset state, self
 * IPIs through the ICR, priority against TPR/ISR and nesting, EOI, level
 * vectors reporting their EOI, the timer in one-shot, periodic and
 * TSC-deadline modes against virtual time, the error register and LVT,
 * software and global disable, logical destinations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/bus/iobus.h"
#include "runtime/clock/vclock.h"
#include "runtime/dev/lapic.h"

#include <stdlib.h>

#define US	1000ull
#define MS	1000000ull
#define TSC_KHZ 2000000u /* 2 GHz guest TSC */

struct fixture {
	struct iobus *bus;
	struct vclock *clock;
	struct lapic *a;
	unsigned notifies, eois;
	uint8_t last_eoi;
};

static void on_notify(void *opaque)
{
	((struct fixture *)opaque)->notifies++;
}

static void on_eoi(void *opaque, uint8_t vector)
{
	struct fixture *f = opaque;
	f->eois++;
	f->last_eoi = vector;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(vclock_create_manual(0, &f->clock), BT_OK);
	struct lapic_config c = {.bus = f->bus,
				 .clock = f->clock,
				 .tsc_khz = TSC_KHZ,
				 .notify = on_notify,
				 .eoi = on_eoi,
				 .opaque = f};
	assert_int_equal(lapic_create(&c, &f->a), BT_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	lapic_destroy(f->a);
	vclock_destroy(f->clock);
	iobus_destroy(f->bus);
	free(f);
	return 0;
}

static uint32_t rd(struct fixture *f, uint32_t reg)
{
	uint64_t v;
	assert_int_equal(iobus_mmio_read(f->bus, LAPIC_BASE + reg, 4, &v), BT_OK);
	return (uint32_t)v;
}

static void wr(struct fixture *f, uint32_t reg, uint32_t v)
{
	assert_int_equal(iobus_mmio_write(f->bus, LAPIC_BASE + reg, 4, v), BT_OK);
}

static bool irr(struct fixture *f, unsigned v)
{
	return (rd(f, LAPIC_IRR + (v / 32) * 16) >> (v % 32)) & 1;
}

static bool isr(struct fixture *f, unsigned v)
{
	return (rd(f, LAPIC_ISR + (v / 32) * 16) >> (v % 32)) & 1;
}

static void self_ipi(struct fixture *f, uint8_t vector)
{
	wr(f, LAPIC_ICR_LO, (1u << 18) | vector); /* shorthand self, fixed */
}

/* Take one interrupt and end it, as a handler does. */
static uint8_t take(struct fixture *f)
{
	assert_true(lapic_has_interrupt(f->a));
	uint8_t v = lapic_ack(f->a);
	wr(f, LAPIC_EOI, 0);
	return v;
}

static void enable(struct fixture *f)
{
	wr(f, LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
}

static void test_reset(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(rd(f, LAPIC_ID), 0);
	assert_int_equal(rd(f, LAPIC_VER), 0x50014);
	assert_int_equal(rd(f, LAPIC_SVR), 0xff);
	assert_int_equal(rd(f, LAPIC_DFR), 0xffffffffu);
	assert_int_equal(rd(f, LAPIC_LVT_LINT0), 0x700);
	assert_int_equal(rd(f, LAPIC_LVT_LINT1), 0x400);
	assert_int_equal(rd(f, LAPIC_LVT_TIMER), LAPIC_LVT_MASKED);
	assert_int_equal(rd(f, LAPIC_LVT_ERROR), LAPIC_LVT_MASKED);
	assert_int_equal(lapic_base_msr(f->a), 0xfee00900u);
	assert_true(lapic_extint_open(f->a)); /* virtual wire: the 8259 passes */
	assert_false(lapic_has_interrupt(f->a));
	/* a byte read sees the register's low byte; a byte write is ignored */
	uint64_t v;
	assert_int_equal(iobus_mmio_read(f->bus, LAPIC_BASE + LAPIC_VER + 2, 1, &v), BT_OK);
	assert_int_equal(v, 0x05);
	assert_int_equal(iobus_mmio_write(f->bus, LAPIC_BASE + LAPIC_TPR, 1, 0x30), BT_OK);
	assert_int_equal(rd(f, LAPIC_TPR), 0);
}

static void test_priority(void **state)
{
	struct fixture *f = *state;
	/* software-disabled: vectors wait in IRR, nothing is requested */
	self_ipi(f, 0x40);
	assert_true(irr(f, 0x40));
	assert_false(lapic_has_interrupt(f->a));
	enable(f);
	assert_true(lapic_has_interrupt(f->a));
	assert_int_equal(lapic_ack(f->a), 0x40);
	assert_false(irr(f, 0x40));
	assert_true(isr(f, 0x40));
	assert_int_equal(rd(f, LAPIC_PPR), 0x40);
	/* same class: waits; higher class: nests */
	self_ipi(f, 0x45);
	assert_false(lapic_has_interrupt(f->a));
	self_ipi(f, 0x61);
	assert_true(lapic_has_interrupt(f->a));
	assert_int_equal(lapic_ack(f->a), 0x61);
	assert_int_equal(rd(f, LAPIC_PPR), 0x60);
	/* EOI ends the highest in service: 0x61, then 0x40 lets 0x45 in */
	wr(f, LAPIC_EOI, 0);
	assert_false(isr(f, 0x61));
	assert_true(isr(f, 0x40));
	assert_false(lapic_has_interrupt(f->a));
	wr(f, LAPIC_EOI, 0);
	assert_int_equal(take(f), 0x45);
	assert_int_equal(f->eois, 0); /* all edge: no EOI message */
	/* TPR holds back a class, PPR follows it */
	wr(f, LAPIC_TPR, 0x50);
	assert_int_equal(rd(f, LAPIC_PPR), 0x50);
	self_ipi(f, 0x55);
	assert_false(lapic_has_interrupt(f->a));
	wr(f, LAPIC_TPR, 0x40);
	assert_int_equal(take(f), 0x55);
	assert_true(f->notifies > 0);
}

static void test_level_eoi(void **state)
{
	struct fixture *f = *state;
	enable(f);
	struct lapic_msg m = {.dest = 0, .mode = LAPIC_DM_FIXED, .vector = 0x31, .level = true};
	lapic_accept(f->a, &m);
	assert_true((rd(f, LAPIC_TMR + 16) >> 17) & 1);
	assert_int_equal(take(f), 0x31);
	assert_int_equal(f->eois, 1);
	assert_int_equal(f->last_eoi, 0x31);
	/* another physical ID is not ours; broadcast is */
	m.dest = 3;
	lapic_accept(f->a, &m);
	assert_false(irr(f, 0x31));
	m.dest = 0xff;
	m.level = false;
	lapic_accept(f->a, &m);
	assert_int_equal(take(f), 0x31);
	assert_int_equal(f->eois, 1);
	/* logical, flat model: LDR bit 0 */
	wr(f, LAPIC_LDR, 0x01000000u);
	m = (struct lapic_msg){.dest = 0x02, .logical = true, .vector = 0x32};
	lapic_accept(f->a, &m);
	assert_false(irr(f, 0x32));
	m.dest = 0x03;
	lapic_accept(f->a, &m);
	assert_true(irr(f, 0x32));
	/* cluster model: cluster 0, member bit 0 */
	wr(f, LAPIC_DFR, 0x0fffffffu);
	m = (struct lapic_msg){.dest = 0x11, .logical = true, .vector = 0x33};
	lapic_accept(f->a, &m);
	assert_false(irr(f, 0x33));
	m.dest = 0x01;
	lapic_accept(f->a, &m);
	assert_true(irr(f, 0x33));
}

static void test_timer_oneshot(void **state)
{
	struct fixture *f = *state;
	enable(f);
	wr(f, LAPIC_TIMER_DCR, 0x3); /* divide by 16: 16 us a count */
	wr(f, LAPIC_LVT_TIMER, 0xec);
	wr(f, LAPIC_TIMER_ICR, 1000);
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 1000);
	assert_int_equal(vclock_run_until(f->clock, 8 * MS), BT_OK);
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 500);
	assert_int_equal(vclock_run_until(f->clock, 16 * MS - 1), BT_OK);
	assert_false(irr(f, 0xec));
	assert_int_equal(vclock_run_until(f->clock, 16 * MS), BT_OK);
	assert_true(irr(f, 0xec));
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 0);
	assert_int_equal(take(f), 0xec);
	assert_int_equal(vclock_run_until(f->clock, 100 * MS), BT_OK);
	assert_false(irr(f, 0xec)); /* one shot */
	/* a divider change keeps the count: 100 counts at /16, then /1 */
	wr(f, LAPIC_TIMER_ICR, 100);
	assert_int_equal(vclock_run_until(f->clock, 100 * MS + 800 * US), BT_OK);
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 50);
	wr(f, LAPIC_TIMER_DCR, 0xb); /* divide by 1 */
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 50);
	assert_int_equal(vclock_run_until(f->clock, 100 * MS + 849 * US), BT_OK);
	assert_false(irr(f, 0xec));
	assert_int_equal(vclock_run_until(f->clock, 100 * MS + 850 * US), BT_OK);
	assert_true(irr(f, 0xec));
	/* the clock passes the one-shot's end before it is armed (btvm
	 * descheduled between the count's load and the arming): late, not lost */
	take(f);
	assert_int_equal(vclock_set_read_step(f->clock, 10 * US), BT_OK);
	wr(f, LAPIC_TIMER_ICR, 1); /* 1 us */
	assert_int_equal(vclock_set_read_step(f->clock, 0), BT_OK);
	assert_int_equal(vclock_run_expired(f->clock), 1);
	assert_true(irr(f, 0xec));
	/* a masked timer counts but raises nothing */
	take(f);
	wr(f, LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | 0xec);
	wr(f, LAPIC_TIMER_ICR, 10);
	assert_int_equal(vclock_run_until(f->clock, 200 * MS), BT_OK);
	assert_false(irr(f, 0xec));
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 0);
}

static void test_timer_periodic(void **state)
{
	struct fixture *f = *state;
	enable(f);
	wr(f, LAPIC_TIMER_DCR, 0xb); /* divide by 1: 1 us a count */
	wr(f, LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | 0xef);
	wr(f, LAPIC_TIMER_ICR, 100); /* 100 us */
	unsigned n = 0;
	for (uint64_t t = 10 * US; t <= 10 * MS; t += 10 * US) {
		assert_int_equal(vclock_run_until(f->clock, t), BT_OK);
		if (lapic_has_interrupt(f->a)) {
			assert_int_equal(take(f), 0xef);
			n++;
		}
	}
	assert_int_equal(n, 100);
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 100); /* just reloaded */
	assert_int_equal(vclock_run_until(f->clock, 10 * MS + 30 * US), BT_OK);
	assert_int_equal(rd(f, LAPIC_TIMER_CCR), 70);
	/* late by 5 periods: one edge, then the original grid */
	assert_int_equal(vclock_set(f->clock, 10 * MS + 550 * US), BT_OK);
	assert_int_equal(vclock_run_expired(f->clock), 1);
	assert_int_equal(take(f), 0xef);
	assert_int_equal(vclock_next_deadline(f->clock), 10 * MS + 600 * US);
	/* a mode change disarms it and clears the count */
	wr(f, LAPIC_LVT_TIMER, 0xef);
	assert_int_equal(rd(f, LAPIC_TIMER_ICR), 0);
	assert_int_equal(vclock_next_deadline(f->clock), VCLOCK_NEVER);
}

static void test_timer_deadline(void **state)
{
	struct fixture *f = *state;
	enable(f);
	/* ignored outside TSC-deadline mode */
	lapic_set_tsc_deadline(f->a, 5000, 0);
	assert_int_equal(lapic_tsc_deadline(f->a), 0);
	wr(f, LAPIC_LVT_TIMER, LAPIC_TIMER_DEADLINE | 0xec);
	/* the initial count is ignored in this mode */
	wr(f, LAPIC_TIMER_ICR, 5);
	assert_int_equal(rd(f, LAPIC_TIMER_ICR), 0);
	/* 2 GHz: 2,000,000 cycles from now (TSC 1,000,000) is 1 ms */
	lapic_set_tsc_deadline(f->a, 3000000, 1000000);
	assert_int_equal(lapic_tsc_deadline(f->a), 3000000);
	assert_int_equal(vclock_next_deadline(f->clock), 1 * MS);
	assert_int_equal(vclock_run_until(f->clock, 1 * MS - 1), BT_OK);
	assert_false(irr(f, 0xec));
	assert_int_equal(vclock_run_until(f->clock, 1 * MS), BT_OK);
	assert_true(irr(f, 0xec));
	assert_int_equal(lapic_tsc_deadline(f->a), 0); /* reads 0 once fired */
	take(f);
	/* rounded up, never early: 1 cycle is 0.5 ns -> 1 ns */
	lapic_set_tsc_deadline(f->a, 11, 10);
	assert_int_equal(vclock_next_deadline(f->clock), 1 * MS + 1);
	/* zero disarms */
	lapic_set_tsc_deadline(f->a, 0, 10);
	assert_int_equal(vclock_next_deadline(f->clock), VCLOCK_NEVER);
	/* a deadline in the past fires at once */
	lapic_set_tsc_deadline(f->a, 5, 10);
	assert_int_equal(vclock_run_expired(f->clock), 1);
	assert_true(irr(f, 0xec));
	take(f);
	/* leaving the mode disarms */
	lapic_set_tsc_deadline(f->a, 1ull << 40, 10);
	wr(f, LAPIC_LVT_TIMER, 0xec);
	assert_int_equal(vclock_next_deadline(f->clock), VCLOCK_NEVER);
	assert_int_equal(lapic_tsc_deadline(f->a), 0);
}

static void test_errors_and_disable(void **state)
{
	struct fixture *f = *state;
	enable(f);
	wr(f, LAPIC_LVT_ERROR, 0xfe);
	self_ipi(f, 0x05); /* illegal vector */
	assert_int_equal(take(f), 0xfe);
	wr(f, LAPIC_ESR, 0);
	assert_int_equal(rd(f, LAPIC_ESR), LAPIC_ESR_SEND_ILLEGAL);
	wr(f, LAPIC_ESR, 0);
	assert_int_equal(rd(f, LAPIC_ESR), 0);
	/* Linux's LINT0 with an IOAPIC: masked ExtINT closes the 8259 path */
	wr(f, LAPIC_LVT_LINT0, LAPIC_LVT_MASKED | 0x700);
	assert_false(lapic_extint_open(f->a));
	/* LINT0 as a fixed vector: the 8259's INTR edge lands in IRR */
	wr(f, LAPIC_LVT_LINT0, 0x30);
	lapic_set_lint0(f->a, true);
	assert_int_equal(take(f), 0x30);
	lapic_set_lint0(f->a, false);
	/* software disable masks every LVT, which stay masked */
	wr(f, LAPIC_SVR, 0xff);
	assert_true(rd(f, LAPIC_LVT_LINT0) & LAPIC_LVT_MASKED);
	wr(f, LAPIC_LVT_TIMER, 0xec);
	assert_true(rd(f, LAPIC_LVT_TIMER) & LAPIC_LVT_MASKED);
	/* a relocation is refused; a global disable resets and opens ExtINT */
	assert_false(lapic_set_base_msr(f->a, 0xfed00900u));
	enable(f);
	self_ipi(f, 0x50);
	assert_true(lapic_set_base_msr(f->a, 0xfee00000u));
	assert_int_equal(lapic_base_msr(f->a), 0xfee00100u); /* BSP stays */
	assert_true(lapic_extint_open(f->a));
	assert_false(lapic_has_interrupt(f->a));
	assert_false(irr(f, 0x50));
	assert_int_equal(rd(f, LAPIC_SVR), 0xff);
	self_ipi(f, 0x50); /* disabled: nothing is accepted */
	assert_false(irr(f, 0x50));
	assert_true(lapic_set_base_msr(f->a, 0xfee00800u));
	enable(f);
	self_ipi(f, 0x50);
	assert_int_equal(take(f), 0x50);
}

/* A hostile guest writing every offset of the page with every width: no
 * read-only register changes, nothing is delivered that was not sent. */
static void test_hostile_page(void **state)
{
	struct fixture *f = *state;
	static const uint64_t vals[] = {0, ~0ull, 0x12345678u, 0x100ff};
	for (size_t i = 0; i < BT_ARRAY_SIZE(vals); i++)
		for (uint64_t off = 0; off < LAPIC_SIZE; off += 1)
			for (unsigned size = 1; size <= 8; size <<= 1) {
				if (off == LAPIC_ICR_LO || off == LAPIC_EOI ||
				    off + size > LAPIC_SIZE)
					continue;
				assert_int_equal(
				    iobus_mmio_write(f->bus, LAPIC_BASE + off, size, vals[i]),
				    BT_OK);
				uint64_t v;
				assert_int_equal(
				    iobus_mmio_read(f->bus, LAPIC_BASE + off, size, &v), BT_OK);
			}
	assert_int_equal(rd(f, LAPIC_VER), LAPIC_VERSION);
	for (unsigned r = 0; r < 8; r++) {
		assert_int_equal(rd(f, LAPIC_IRR + 16 * r), 0);
		assert_int_equal(rd(f, LAPIC_ISR + 16 * r), 0);
	}
	/* whatever the timer was left doing, running it delivers at most its
	 * own vector, one edge a pass */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(vclock_advance(f->clock, 1 * MS), BT_OK);
		assert_true(vclock_run_expired(f->clock) <= 1);
		while (lapic_has_interrupt(f->a)) {
			uint8_t v = lapic_ack(f->a);
			assert_int_equal(v, rd(f, LAPIC_LVT_TIMER) & 0xff);
			wr(f, LAPIC_EOI, 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_priority, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_level_eoi, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timer_oneshot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timer_periodic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timer_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors_and_disable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_page, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
