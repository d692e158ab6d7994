/*
 * 8259A PIC pair (see pic.h).  Owns the register state of both chips and
 * the INTR output towards the vCPU.
 *
 * Per-chip state machine for initialisation (port base+0 = A0 0, base+1 = A0 1):
 *
 *   READY --ICW1 (A0=0, bit 4)--> WAIT_ICW2 --ICW2 (A0=1)--> WAIT_ICW3 (cascade)
 *     ^                                  \--single, ICW4--> WAIT_ICW4
 *     |                                   \-single, no ICW4--> READY
 *     +------ ICW4 (A0=1) <-- WAIT_ICW4 <--ICW3 (A0=1, if ICW4 needed)
 *   [pic_write_cmd / pic_write_data]
 *
 * In READY, A0=1 writes are OCW1 (IMR); A0=0 writes are OCW2 (EOI,
 * rotation, priority) or OCW3 (IRR/ISR read select, poll, special mask).
 *
 * Invariants
 *  1. irr holds latched requests: for an edge input, set on a rising edge
 *     (tracked in last_level) and cleared by INTA; for a level input (ELCR
 *     bit or ICW1.LTIM), equal to the input level (no latch).
 *  2. The slave's INTR output is the master's IRQ2 input level (cascade).
 *  3. intr (what notify last reported) == pic_has_interrupt().
 *  4. Priorities rotate by priority_add: the highest-priority input is
 *     priority_add (0 after init: IRQ0 highest).  Rotation commands are
 *     implemented; the special fully nested mode only on the master.
 */
#include "runtime/dev/pic.h"

#include "pretrans/base/log.h"

#include <stdlib.h>

enum pic_init_state { PIC_READY, PIC_WAIT_ICW2, PIC_WAIT_ICW3, PIC_WAIT_ICW4 };

struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t last_level; /* input levels, for edge detection */
	uint8_t elcr, elcr_mask;
	uint8_t vector_base;
	uint8_t priority_add;
	enum pic_init_state init;
	bool icw4_needed, single, ltim;
	bool auto_eoi, rotate_on_aeoi, sfnm;
	bool read_isr, poll, special_mask;
};

struct pic {
	struct pic_chip chip[2]; /* 0 master, 1 slave */
	struct iobus *bus;
	pic_notify_fn *notify;
	void *notify_opaque;
	bool intr;
};

static const struct iobus_ops pic_master_ops, pic_slave_ops, pic_elcr_ops;

static bool chip_is_level(const struct pic_chip *c, unsigned irq)
{
	return c->ltim || (c->elcr & (1u << irq));
}

/* Position 0..7 (0 = highest) of the best bit of mask, 8 when empty. */
static unsigned chip_priority(const struct pic_chip *c, uint8_t mask)
{
	if (!mask)
		return 8;
	unsigned p = 0;
	while (!(mask & (1u << ((p + c->priority_add) & 7))))
		p++;
	return p;
}

/* The input this chip would present on INTR now, or -1. */
static int chip_pending(const struct pic_chip *c, bool is_master)
{
	unsigned p = chip_priority(c, c->irr & ~c->imr);
	if (p == 8)
		return -1;
	uint8_t in_service = c->isr;
	if (c->special_mask)
		in_service &= ~c->imr;
	/* Special fully nested: a slave request may nest inside slave service. */
	if (is_master && c->sfnm)
		in_service &= (uint8_t) ~(1u << 2);
	unsigned cur = chip_priority(c, in_service);
	if (p < cur)
		return (int)((p + c->priority_add) & 7);
	return -1;
}

static void chip_input(struct pic_chip *c, unsigned irq, bool level)
{
	uint8_t m = (uint8_t)(1u << irq);
	if (chip_is_level(c, irq)) {
		if (level)
			c->irr |= m;
		else
			c->irr &= (uint8_t)~m;
	} else if (level && !(c->last_level & m)) {
		c->irr |= m;
	}
	if (level)
		c->last_level |= m;
	else
		c->last_level &= (uint8_t)~m;
}

/* Propagate the slave's output to master IRQ2 and the master's to INTR. */
static void pic_update(struct pic *pic)
{
	chip_input(&pic->chip[0], 2, chip_pending(&pic->chip[1], false) >= 0);
	bool intr = chip_pending(&pic->chip[0], true) >= 0;
	if (intr != pic->intr) {
		pic->intr = intr;
		if (pic->notify)
			pic->notify(pic->notify_opaque, intr);
	}
}

/* Acknowledge irq on chip c: into service (unless AEOI), clear edge latch. */
static void chip_intack(struct pic_chip *c, unsigned irq)
{
	if (c->auto_eoi) {
		if (c->rotate_on_aeoi)
			c->priority_add = (uint8_t)((irq + 1) & 7);
	} else {
		c->isr |= (uint8_t)(1u << irq);
	}
	if (!chip_is_level(c, irq))
		c->irr &= (uint8_t) ~(1u << irq);
}

static void chip_reset_for_icw1(struct pic_chip *c, uint8_t icw1)
{
	/* ICW1 clears IMR and ISR, resets priorities and edge sensing (an edge
	 * input needs a new rising edge); ELCR is a separate register and stays. */
	c->last_level = 0;
	c->irr &= c->elcr;
	c->imr = 0;
	c->isr = 0;
	c->priority_add = 0;
	c->read_isr = false;
	c->poll = false;
	c->special_mask = false;
	c->auto_eoi = false;
	c->rotate_on_aeoi = false;
	c->sfnm = false;
	c->icw4_needed = icw1 & 0x01;
	c->single = icw1 & 0x02;
	c->ltim = icw1 & 0x08;
	c->init = PIC_WAIT_ICW2;
}

static void chip_write_cmd(struct pic_chip *c, uint8_t v)
{
	if (v & 0x10) {
		chip_reset_for_icw1(c, v);
		return;
	}
	if (v & 0x08) { /* OCW3 */
		if (v & 0x04)
			c->poll = true;
		if (v & 0x02)
			c->read_isr = v & 0x01;
		if (v & 0x40)
			c->special_mask = (v >> 5) & 1;
		return;
	}
	/* OCW2: R SL EOI in bits 7..5, level in 2..0. */
	unsigned irq;
	switch (v >> 5) {
	case 0: /* rotate in AEOI mode: clear */
		c->rotate_on_aeoi = false;
		break;
	case 4: /* rotate in AEOI mode: set */
		c->rotate_on_aeoi = true;
		break;
	case 1: /* non-specific EOI */
	case 5: /* rotate on non-specific EOI */
		irq = chip_priority(c, c->isr);
		if (irq == 8)
			break;
		irq = (irq + c->priority_add) & 7;
		c->isr &= (uint8_t) ~(1u << irq);
		if ((v >> 5) == 5)
			c->priority_add = (uint8_t)((irq + 1) & 7);
		break;
	case 3: /* specific EOI */
		c->isr &= (uint8_t) ~(1u << (v & 7));
		break;
	case 6: /* set priority: v&7 becomes the lowest */
		c->priority_add = (uint8_t)((v + 1) & 7);
		break;
	case 7: /* rotate on specific EOI */
		irq = v & 7;
		c->isr &= (uint8_t) ~(1u << irq);
		c->priority_add = (uint8_t)((irq + 1) & 7);
		break;
	default: /* 2: no operation */
		break;
	}
}

static void chip_write_data(struct pic_chip *c, uint8_t v)
{
	switch (c->init) {
	case PIC_READY: /* OCW1 */
		c->imr = v;
		break;
	case PIC_WAIT_ICW2:
		c->vector_base = v & 0xf8;
		if (!c->single)
			c->init = PIC_WAIT_ICW3;
		else
			c->init = c->icw4_needed ? PIC_WAIT_ICW4 : PIC_READY;
		break;
	case PIC_WAIT_ICW3: /* cascade wiring is fixed on a PC: ignore */
		c->init = c->icw4_needed ? PIC_WAIT_ICW4 : PIC_READY;
		break;
	case PIC_WAIT_ICW4:
		if (!(v & 0x01))
			bt_warn(LOG_DEV, "pic: ICW4 selects 8080 mode; x86 mode assumed");
		c->auto_eoi = v & 0x02;
		c->sfnm = v & 0x10;
		c->init = PIC_READY;
		break;
	}
}

/* OCW3 poll command: the next read returns 0x80|irq and acknowledges it. */
static uint8_t pic_poll_read(struct pic *pic, unsigned idx)
{
	struct pic_chip *c = &pic->chip[idx];
	c->poll = false;
	int irq = chip_pending(c, idx == 0);
	if (irq < 0)
		return 0;
	chip_intack(c, (unsigned)irq);
	if (idx == 1) /* the slave's request vanished from master IRQ2 too */
		chip_input(&pic->chip[0], 2, false);
	return (uint8_t)(0x80 | irq);
}

static void pic_read(struct pic *pic, unsigned idx, uint64_t off, uint64_t *value)
{
	struct pic_chip *c = &pic->chip[idx];
	if (c->poll) {
		*value = pic_poll_read(pic, idx);
		pic_update(pic);
		return;
	}
	if (off == 0)
		*value = c->read_isr ? c->isr : c->irr;
	else
		*value = c->imr;
}

static void pic_write(struct pic *pic, unsigned idx, uint64_t off, uint64_t value)
{
	if (off == 0)
		chip_write_cmd(&pic->chip[idx], (uint8_t)value);
	else
		chip_write_data(&pic->chip[idx], (uint8_t)value);
	pic_update(pic);
}

static void pic_master_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	pic_read(opaque, 0, off, value);
}

static void pic_master_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	pic_write(opaque, 0, off, value);
}

static void pic_slave_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	pic_read(opaque, 1, off, value);
}

static void pic_slave_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	pic_write(opaque, 1, off, value);
}

static void pic_elcr_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct pic *pic = opaque;
	*value = pic->chip[off].elcr;
}

static void pic_elcr_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pic *pic = opaque;
	struct pic_chip *c = &pic->chip[off];
	c->elcr = (uint8_t)value & c->elcr_mask;
	/* An input switched to level: IRR follows the current level. */
	for (unsigned i = 0; i < 8; i++)
		if (chip_is_level(c, i))
			chip_input(c, i, c->last_level & (1u << i));
	pic_update(pic);
}

static const struct iobus_ops pic_master_ops = {
    .read = pic_master_read,
    .write = pic_master_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "pic-master",
};
static const struct iobus_ops pic_slave_ops = {
    .read = pic_slave_read,
    .write = pic_slave_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "pic-slave",
};
static const struct iobus_ops pic_elcr_ops = {
    .read = pic_elcr_read,
    .write = pic_elcr_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "pic-elcr",
};

enum bt_status pic_create(struct iobus *bus, struct pic **out)
{
	if (!bus || !out)
		return BT_ERR_INVALID;
	struct pic *pic = calloc(1, sizeof(*pic));
	if (!pic)
		return BT_ERR_NOMEM;
	pic->bus = bus;
	/* IRQ0, 1, 2, 8 and 13 are edge-only on a PIIX (ELCR mask). */
	pic->chip[0].elcr_mask = 0xf8;
	pic->chip[1].elcr_mask = 0xde;
	enum bt_status s = iobus_register_pio(bus, PIC_MASTER_PORT, 2, &pic_master_ops, pic);
	if (s != BT_OK)
		goto err_free;
	s = iobus_register_pio(bus, PIC_SLAVE_PORT, 2, &pic_slave_ops, pic);
	if (s != BT_OK)
		goto err_unregister_master;
	s = iobus_register_pio(bus, PIC_ELCR_PORT, 2, &pic_elcr_ops, pic);
	if (s != BT_OK)
		goto err_unregister_slave;
	*out = pic;
	return BT_OK;

err_unregister_slave:
	iobus_unregister_pio(bus, PIC_SLAVE_PORT);
err_unregister_master:
	iobus_unregister_pio(bus, PIC_MASTER_PORT);
err_free:
	free(pic);
	return s;
}

void pic_destroy(struct pic *pic)
{
	if (!pic)
		return;
	iobus_unregister_pio(pic->bus, PIC_ELCR_PORT);
	iobus_unregister_pio(pic->bus, PIC_SLAVE_PORT);
	iobus_unregister_pio(pic->bus, PIC_MASTER_PORT);
	free(pic);
}

void pic_set_notify(struct pic *pic, pic_notify_fn *fn, void *opaque)
{
	pic->notify = fn;
	pic->notify_opaque = opaque;
}

void pic_set_irq(struct pic *pic, unsigned irq, bool level)
{
	if (irq >= PIC_NR_IRQS || irq == 2) {
		bt_warn(LOG_DEV, "pic: input %u does not exist (IRQ2 is the cascade)", irq);
		return;
	}
	chip_input(&pic->chip[irq / 8], irq % 8, level);
	pic_update(pic);
}

static void pic_line_sink(void *opaque, unsigned pin, bool level)
{
	pic_set_irq(opaque, pin, level);
}

void pic_connect(struct pic *pic, unsigned irq, struct irq_line *line)
{
	irq_line_init(line, pic_line_sink, pic, irq);
}

bool pic_has_interrupt(const struct pic *pic)
{
	return chip_pending(&pic->chip[0], true) >= 0;
}

uint8_t pic_ack(struct pic *pic)
{
	struct pic_chip *m = &pic->chip[0], *s = &pic->chip[1];
	uint8_t vector;
	int irq = chip_pending(m, true);
	if (irq < 0) {
		/* The request went away before INTA: spurious IRQ7, not in service. */
		vector = m->vector_base | 7;
	} else if (irq == 2) {
		int irq2 = chip_pending(s, false);
		chip_intack(m, 2);
		if (irq2 >= 0) {
			chip_intack(s, (unsigned)irq2);
			vector = (uint8_t)(s->vector_base | irq2);
		} else {
			vector = s->vector_base | 7; /* spurious IRQ15 */
		}
	} else {
		chip_intack(m, (unsigned)irq);
		vector = (uint8_t)(m->vector_base | irq);
	}
	pic_update(pic);
	return vector;
}

uint8_t pic_irr(const struct pic *pic, unsigned chip)
{
	return pic->chip[chip & 1].irr;
}

uint8_t pic_isr(const struct pic *pic, unsigned chip)
{
	return pic->chip[chip & 1].isr;
}

uint8_t pic_imr(const struct pic *pic, unsigned chip)
{
	return pic->chip[chip & 1].imr;
}
