/*
 * I/O APIC (see ioapic.h).  Owns the redirection table and the pins'
 * input levels.
 *
 * Invariants
 *  1. Reset: every entry masked (0x10000), ID 0.
 *  2. Delivery status (bit 12) always reads 0: a message is accepted by
 *     the LAPIC the moment it is sent.
 *  3. A level pin's Remote IRR is set iff a message was sent for it and no
 *     EOI for its vector has come since; while it is set no message is
 *     sent.  When it clears (EOI) or the pin is unmasked with the input
 *     still asserted, the pin sends again.
 *
 * Pin states (level):  IDLE --asserted, unmasked--> SENT (Remote IRR)
 *   [ioapic_set_irq / ioapic_write]  SENT --EOI [ioapic_eoi]--> IDLE or,
 *   still asserted, SENT again.
 */
#include "runtime/dev/ioapic.h"

#include "pretrans/base/log.h"

#include <stdlib.h>

#define REG_SELECT 0x00
#define REG_WINDOW 0x10
#define REG_EOI	   0x40

/* bits the guest may write: vector, delivery mode, destination mode,
 * polarity, trigger mode, mask, destination */
#define RTE_WMASK 0xff0000000001afffull

struct ioapic {
	struct iobus *bus;
	ioapic_deliver_fn *deliver;
	void *opaque;
	uint8_t select;
	uint32_t id;
	uint64_t rte[IOAPIC_PINS];
	bool level[IOAPIC_PINS];
	bool mmio;
};

static void send(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];
	if (e & IOAPIC_RTE_MASKED)
		return;
	bool level = (e & IOAPIC_RTE_LEVEL) != 0;
	if (level) {
		if (e & IOAPIC_RTE_REMOTE_IRR)
			return;
		io->rte[pin] |= IOAPIC_RTE_REMOTE_IRR;
	}
	struct lapic_msg m = {
	    .dest = (uint8_t)(e >> 56),
	    .logical = (e & IOAPIC_RTE_LOGICAL) != 0,
	    .mode = (uint8_t)((e >> 8) & 7),
	    .vector = (uint8_t)e,
	    .level = level,
	};
	if (io->deliver)
		io->deliver(io->opaque, &m);
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
	if (pin >= IOAPIC_PINS)
		return;
	bool rising = level && !io->level[pin];
	io->level[pin] = level;
	if (!level)
		return;
	if (io->rte[pin] & IOAPIC_RTE_LEVEL)
		send(io, pin);
	else if (rising)
		send(io, pin);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];
		if ((uint8_t)e != vector || !(e & IOAPIC_RTE_REMOTE_IRR))
			continue;
		io->rte[pin] &= ~IOAPIC_RTE_REMOTE_IRR;
		if ((e & IOAPIC_RTE_LEVEL) && io->level[pin])
			send(io, pin);
	}
}

uint64_t ioapic_entry(const struct ioapic *io, unsigned pin)
{
	return pin < IOAPIC_PINS ? io->rte[pin] : 0;
}

uint32_t ioapic_read(struct ioapic *io, uint8_t index)
{
	switch (index) {
	case 0x00:
		return io->id;
	case 0x01:
		return ((IOAPIC_PINS - 1u) << 16) | IOAPIC_VERSION;
	case 0x02:
		return io->id; /* arbitration ID */
	default:
		break;
	}
	if (index >= 0x10 && index < 0x10 + 2 * IOAPIC_PINS) {
		uint64_t e = io->rte[(index - 0x10) / 2];
		return (index & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	return 0xffffffffu; /* no register: the window floats high */
}

void ioapic_write(struct ioapic *io, uint8_t index, uint32_t val)
{
	if (index == 0x00) {
		io->id = val & 0x0f000000u;
		return;
	}
	if (index < 0x10 || index >= 0x10 + 2 * IOAPIC_PINS)
		return; /* version and arbitration are read-only */
	unsigned pin = (index - 0x10) / 2;
	uint64_t e = io->rte[pin];
	uint64_t half = (index & 1) ? (uint64_t)val << 32 : val;
	uint64_t keep = (index & 1) ? 0x00000000ffffffffull : 0xffffffff00000000ull;
	uint64_t w = ((e & keep) | half) & RTE_WMASK;
	/* Remote IRR stays (read-only) unless the pin is now edge-triggered */
	if ((e & IOAPIC_RTE_REMOTE_IRR) && (w & IOAPIC_RTE_LEVEL))
		w |= IOAPIC_RTE_REMOTE_IRR;
	io->rte[pin] = w;
	/* an asserted level pin sends as soon as it is unmasked */
	if ((w & IOAPIC_RTE_LEVEL) && io->level[pin])
		send(io, pin);
}

static void mmio_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct ioapic *io = opaque;
	uint64_t v = 0;
	if (off == REG_SELECT)
		v = io->select;
	else if (off >= REG_WINDOW && off < REG_WINDOW + 4)
		v = (uint64_t)ioapic_read(io, io->select) >> (8 * (off - REG_WINDOW));
	*value = size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct ioapic *io = opaque;
	if (off == REG_SELECT)
		io->select = (uint8_t)value;
	else if (off == REG_WINDOW && size >= 4)
		ioapic_write(io, io->select, (uint32_t)value);
	else if (off == REG_EOI)
		ioapic_eoi(io, (uint8_t)value);
}

static const struct iobus_ops ioapic_ops = {
    .read = mmio_read, .write = mmio_write, .flags = IOBUS_WHOLE, .name = "ioapic"};

enum bt_status ioapic_create(struct iobus *bus, ioapic_deliver_fn *deliver, void *opaque,
			     struct ioapic **out)
{
	if (!bus || !out)
		return BT_ERR_INVALID;
	struct ioapic *io = calloc(1, sizeof(*io));
	if (!io)
		return BT_ERR_NOMEM;
	io->bus = bus;
	io->deliver = deliver;
	io->opaque = opaque;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = IOAPIC_RTE_MASKED;
	enum bt_status s = iobus_register_mmio(bus, IOAPIC_BASE, IOAPIC_SIZE, &ioapic_ops, io);
	if (s != BT_OK) {
		free(io);
		return s;
	}
	io->mmio = true;
	*out = io;
	return BT_OK;
}

void ioapic_destroy(struct ioapic *io)
{
	if (!io)
		return;
	if (io->mmio)
		iobus_unregister_mmio(io->bus, IOAPIC_BASE);
	free(io);
}
