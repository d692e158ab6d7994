/*
 * 8254 PIT and port 0x61 (see pit.h).  Owns the three counters, the
 * channel-0 timer and the port-B latch.
 *
 * Channel states:
 *
 *   IDLE --control word--> WAIT_COUNT --count written--> COUNTING
 *                             ^   (modes 1/5: --gate rising edge--> COUNTING)
 *                             +------------- control word -----------+
 *   [pit_control]  [chan_write / chan_load]  [chan_set_gate]
 *
 * Invariants
 *  1. While COUNTING and not frozen, the counter has run for
 *     ns_to_ticks(now - load_ns) input clocks; while frozen (gate low in
 *     modes 0/2/3/4) for frozen_ticks.
 *  2. count is the reload value in 1..65536 (binary) or 1..10000 (BCD),
 *     never 0: a written 0 means the maximum.
 *  3. For channel 0, the timer is armed iff OUT0 has a rising edge not yet
 *     delivered as an IRQ0 pulse, for the virtual time of that edge -- in
 *     the past too: the one edge of a one-shot mode (0, 1, 4, 5) is
 *     delivered late rather than lost when the clock has passed it by the
 *     time the timer is armed (the VMM descheduled by a loaded host between
 *     the guest's count write and the arming: Linux's one-shot clockevent
 *     then never fired again, and the idle guest hung).
 */
#include "runtime/dev/pit.h"

#include "pretrans/base/log.h"

#include <stdlib.h>

enum pit_access { PIT_RW_LATCH = 0, PIT_RW_LSB = 1, PIT_RW_MSB = 2, PIT_RW_WORD = 3 };

struct pit_channel {
	struct pit *pit;
	unsigned idx;
	uint8_t mode, rw;
	uint8_t mode_bits; /* mode field as written (6/7 alias 2/3), for status */
	bool bcd;
	uint32_t count;
	bool counting, frozen, gate, null_count;
	uint64_t load_ns, frozen_ticks;
	bool edge_due; /* one-shot modes: the edge since the load is not delivered yet */
	bool read_msb_next, write_msb_next;
	uint8_t write_lsb;
	/* counter latch: remaining bytes, low first */
	uint16_t latch;
	unsigned latch_bytes;
	bool latch_msb_next;
	uint8_t status;
	bool status_latched;
};

struct pit {
	struct iobus *bus;
	struct vclock *clock;
	struct pit_channel ch[PIT_CHANNELS];
	struct vclock_timer timer0;
	struct irq_line irq0;
	uint8_t portb; /* bits 0-3 as written to 0x61 */
};

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)(((unsigned __int128)ns * PIT_FREQ_HZ) / VCLOCK_NS_PER_SEC);
}

static uint64_t ticks_to_ns_ceil(uint64_t ticks)
{
	unsigned __int128 n = (unsigned __int128)ticks * VCLOCK_NS_PER_SEC;
	return (uint64_t)((n + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ);
}

static uint64_t chan_ticks(const struct pit_channel *c, uint64_t now)
{
	if (c->frozen)
		return c->frozen_ticks;
	return now > c->load_ns ? ns_to_ticks(now - c->load_ns) : 0;
}

static bool chan_out(const struct pit_channel *c, uint64_t now)
{
	if (!c->counting)
		return c->mode != 0; /* mode 0 drives OUT low from the control word */
	if (c->frozen && !c->gate && (c->mode == 2 || c->mode == 3))
		return true;
	uint64_t d = chan_ticks(c, now);
	switch (c->mode) {
	case 0:
	case 1:
		return d >= c->count;
	case 2:
		return d % c->count != c->count - 1;
	case 3:
		return d % c->count < (c->count + 1) / 2;
	default: /* 4, 5: one clock low at terminal count */
		return d != c->count;
	}
}

/* The 16-bit value the counting element holds now. */
static uint16_t chan_counter(const struct pit_channel *c, uint64_t now)
{
	uint32_t modulus = c->bcd ? 10000 : 65536;
	uint64_t v;
	if (!c->counting) {
		v = c->count % modulus;
	} else {
		uint64_t d = chan_ticks(c, now);
		switch (c->mode) {
		case 2:
			v = c->count - d % c->count;
			break;
		case 3: /* counts down by two, twice per period */
			v = c->count - (2 * d) % c->count;
			break;
		default: /* 0, 1, 4, 5 keep counting down past zero */
			v = (c->count + modulus - d % modulus) % modulus;
			break;
		}
		v %= modulus;
	}
	if (!c->bcd)
		return (uint16_t)v;
	uint16_t b = 0;
	for (unsigned shift = 0; shift < 16; shift += 4, v /= 10)
		b |= (uint16_t)((v % 10) << shift);
	return b;
}

/* Tick count (since load) of OUT's next rising edge after d, or 0 if none. */
static uint64_t chan_next_edge(const struct pit_channel *c, uint64_t d)
{
	switch (c->mode) {
	case 0:
	case 1:
		return d < c->count ? c->count : 0;
	case 2:
	case 3:
		return (d / c->count + 1) * c->count;
	default:
		return d < (uint64_t)c->count + 1 ? c->count + 1 : 0;
	}
}

static bool mode_oneshot(uint8_t mode)
{
	return mode == 0 || mode == 1 || mode == 4 || mode == 5;
}

static void pit_rearm0(struct pit *pit)
{
	struct pit_channel *c = &pit->ch[0];
	if (!c->counting || c->frozen) {
		vclock_timer_cancel(&pit->timer0);
		return;
	}
	uint64_t now = vclock_now_ns(pit->clock);
	uint64_t e = chan_next_edge(c, chan_ticks(c, now));
	if (!e && c->edge_due && mode_oneshot(c->mode))
		e = chan_next_edge(c, 0); /* passed but never delivered: now (rule 3) */
	if (!e)
		vclock_timer_cancel(&pit->timer0);
	else
		vclock_timer_arm(&pit->timer0, c->load_ns + ticks_to_ns_ceil(e));
}

static void pit_timer0_fire(void *opaque, uint64_t deadline)
{
	struct pit *pit = opaque;
	irq_line_pulse(&pit->irq0);
	if (mode_oneshot(pit->ch[0].mode))
		pit->ch[0].edge_due = false;
	pit_rearm0(pit);
}

static void chan_changed(struct pit_channel *c)
{
	if (c->idx == 0)
		pit_rearm0(c->pit);
}

static void chan_start(struct pit_channel *c, uint64_t now)
{
	c->counting = true;
	c->edge_due = true;
	c->load_ns = now;
	c->frozen = !c->gate && c->mode != 1 && c->mode != 5;
	c->frozen_ticks = 0;
}

static void chan_load(struct pit_channel *c, uint16_t value)
{
	uint32_t v = value;
	if (c->bcd) {
		v = 0;
		for (unsigned shift = 12, mul = 1000; mul; shift -= 4, mul /= 10) {
			unsigned digit = (value >> shift) & 0xf;
			v += (digit > 9 ? 9 : digit) * mul;
			if (!shift)
				break;
		}
		if (v == 0)
			v = 10000;
	} else if (v == 0) {
		v = 65536;
	}
	c->count = v;
	c->null_count = false;
	if (c->mode == 1 || c->mode == 5) {
		c->counting = false; /* waits for a gate trigger */
	} else {
		if (c->count == 1 && (c->mode == 2 || c->mode == 3))
			bt_warn(LOG_DEV, "pit: channel %u count 1 is illegal in mode %u", c->idx,
				c->mode);
		chan_start(c, vclock_now_ns(c->pit->clock));
	}
	chan_changed(c);
}

static void chan_set_gate(struct pit_channel *c, bool gate)
{
	if (gate == c->gate)
		return;
	uint64_t now = vclock_now_ns(c->pit->clock);
	switch (c->mode) {
	case 1:
	case 5:
		if (gate && c->count) /* rising edge (re)triggers */
			chan_start(c, now);
		break;
	case 2:
	case 3:
		if (!c->counting)
			break;
		if (gate) { /* rising edge reloads */
			c->frozen = false;
			c->load_ns = now;
		} else {
			c->frozen_ticks = chan_ticks(c, now);
			c->frozen = true;
		}
		break;
	default: /* 0, 4: the gate pauses counting */
		if (!c->counting)
			break;
		if (gate) {
			uint64_t back = ticks_to_ns_ceil(c->frozen_ticks);
			c->load_ns = now > back ? now - back : 0;
			c->frozen = false;
		} else {
			c->frozen_ticks = chan_ticks(c, now);
			c->frozen = true;
		}
		break;
	}
	c->gate = gate;
	chan_changed(c);
}

static void chan_latch_count(struct pit_channel *c, uint64_t now)
{
	if (c->latch_bytes)
		return; /* a latched count is held until read */
	c->latch = chan_counter(c, now);
	c->latch_bytes = c->rw == PIT_RW_WORD ? 2 : 1;
	c->latch_msb_next = c->rw == PIT_RW_MSB;
}

static void chan_latch_status(struct pit_channel *c, uint64_t now)
{
	if (c->status_latched)
		return;
	c->status = (uint8_t)((chan_out(c, now) ? 0x80 : 0) | (c->null_count ? 0x40 : 0) |
			      (c->rw << 4) | (c->mode_bits << 1) | (c->bcd ? 1 : 0));
	c->status_latched = true;
}

static void pit_control(struct pit *pit, uint8_t v)
{
	uint64_t now = vclock_now_ns(pit->clock);
	unsigned sc = v >> 6;
	if (sc == 3) { /* read-back command */
		for (unsigned i = 0; i < PIT_CHANNELS; i++) {
			if (!(v & (2u << i)))
				continue;
			if (!(v & 0x10))
				chan_latch_status(&pit->ch[i], now);
			if (!(v & 0x20))
				chan_latch_count(&pit->ch[i], now);
		}
		return;
	}
	struct pit_channel *c = &pit->ch[sc];
	unsigned rw = (v >> 4) & 3;
	if (rw == PIT_RW_LATCH) {
		chan_latch_count(c, now);
		return;
	}
	c->rw = (uint8_t)rw;
	c->mode_bits = (v >> 1) & 7;
	c->mode = c->mode_bits;
	if (c->mode > 5)
		c->mode -= 4; /* 6 and 7 alias modes 2 and 3 */
	c->bcd = v & 1;
	c->counting = false;
	c->frozen = false;
	c->null_count = true;
	c->read_msb_next = false;
	c->write_msb_next = false;
	c->latch_bytes = 0;
	c->status_latched = false;
	chan_changed(c);
}

static uint8_t chan_read(struct pit_channel *c)
{
	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	if (c->latch_bytes) {
		uint8_t b = c->latch_msb_next ? (uint8_t)(c->latch >> 8) : (uint8_t)c->latch;
		c->latch_msb_next = !c->latch_msb_next;
		c->latch_bytes--;
		return b;
	}
	uint16_t v = chan_counter(c, vclock_now_ns(c->pit->clock));
	switch (c->rw) {
	case PIT_RW_LSB:
		return (uint8_t)v;
	case PIT_RW_MSB:
		return (uint8_t)(v >> 8);
	default: {
		bool msb = c->read_msb_next;
		c->read_msb_next = !msb;
		return msb ? (uint8_t)(v >> 8) : (uint8_t)v;
	}
	}
}

static void chan_write(struct pit_channel *c, uint8_t v)
{
	switch (c->rw) {
	case PIT_RW_LSB:
		chan_load(c, v);
		break;
	case PIT_RW_MSB:
		chan_load(c, (uint16_t)(v << 8));
		break;
	case PIT_RW_WORD:
		if (!c->write_msb_next) {
			c->write_lsb = v;
			c->write_msb_next = true;
			if (c->mode == 0 && c->counting) { /* first byte stops mode 0 */
				c->counting = false;
				chan_changed(c);
			}
		} else {
			c->write_msb_next = false;
			chan_load(c, (uint16_t)(c->write_lsb | v << 8));
		}
		break;
	default: /* no access mode programmed yet: the write is lost */
		break;
	}
}

static void pit_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct pit *pit = opaque;
	if (off < PIT_CHANNELS)
		*value = chan_read(&pit->ch[off]);
	else
		*value = 0xff; /* the control register is write-only */
}

static void pit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pit *pit = opaque;
	if (off < PIT_CHANNELS)
		chan_write(&pit->ch[off], (uint8_t)value);
	else
		pit_control(pit, (uint8_t)value);
}

/* Port 0x61: refresh toggles every 15.085 us (66.3 kHz). */
static void portb_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct pit *pit = opaque;
	uint64_t now = vclock_now_ns(pit->clock);
	uint8_t v = pit->portb & 0x0f;
	if ((now / 15085) & 1)
		v |= 0x10;
	if (chan_out(&pit->ch[2], now))
		v |= 0x20;
	*value = v;
}

static void portb_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pit *pit = opaque;
	pit->portb = (uint8_t)value & 0x0f;
	chan_set_gate(&pit->ch[2], value & 1);
}

static const struct iobus_ops pit_ops = {
    .read = pit_read,
    .write = pit_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "pit-8254",
};

static const struct iobus_ops portb_ops = {
    .read = portb_read,
    .write = portb_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "port-b",
};

enum bt_status pit_create(struct iobus *bus, struct vclock *clock, struct pit **out)
{
	if (!bus || !clock || !out)
		return BT_ERR_INVALID;
	struct pit *pit = calloc(1, sizeof(*pit));
	if (!pit)
		return BT_ERR_NOMEM;
	pit->bus = bus;
	pit->clock = clock;
	for (unsigned i = 0; i < PIT_CHANNELS; i++) {
		struct pit_channel *c = &pit->ch[i];
		c->pit = pit;
		c->idx = i;
		c->gate = i != 2; /* channels 0/1 are gated on; channel 2 by port 0x61 */
		/* As the BIOS leaves it (and QEMU resets it): mode 3, count 65536,
		 * running: 18.2 Hz on OUT0; channel 2 frozen by its low gate. */
		c->rw = PIT_RW_WORD;
		c->mode = c->mode_bits = 3;
		c->count = 65536;
		chan_start(c, vclock_now_ns(clock));
	}
	vclock_timer_init(&pit->timer0, clock, pit_timer0_fire, pit);
	pit_rearm0(pit);
	irq_line_init(&pit->irq0, NULL, NULL, PIT_IRQ);
	enum bt_status s = iobus_register_pio(bus, PIT_PORT, 4, &pit_ops, pit);
	if (s != BT_OK)
		goto err_free;
	s = iobus_register_pio(bus, PIT_PORTB, 1, &portb_ops, pit);
	if (s != BT_OK)
		goto err_unregister_pit;
	*out = pit;
	return BT_OK;

err_unregister_pit:
	iobus_unregister_pio(bus, PIT_PORT);
err_free:
	free(pit);
	return s;
}

void pit_destroy(struct pit *pit)
{
	if (!pit)
		return;
	vclock_timer_cancel(&pit->timer0);
	iobus_unregister_pio(pit->bus, PIT_PORTB);
	iobus_unregister_pio(pit->bus, PIT_PORT);
	free(pit);
}

struct irq_line *pit_irq(struct pit *pit)
{
	return &pit->irq0;
}

bool pit_out(struct pit *pit, unsigned channel)
{
	return chan_out(&pit->ch[channel % PIT_CHANNELS], vclock_now_ns(pit->clock));
}

uint16_t pit_counter(struct pit *pit, unsigned channel)
{
	return chan_counter(&pit->ch[channel % PIT_CHANNELS], vclock_now_ns(pit->clock));
}
