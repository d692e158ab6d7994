/*
 * I/O APIC (82093AA programming model, version 0x20: with the EOI
 * register), 24 pins, at IOAPIC_BASE: IOREGSEL (offset 0x00), IOWIN
 * (0x10), EOI (0x40).  Indirect registers: 0x00 ID, 0x01 version, 0x02
 * arbitration, 0x10 + 2n / 0x11 + 2n the low / high half of pin n's
 * redirection entry.
 *
 * Pins are driven with ioapic_set_irq (the platform fans each ISA and PCI
 * line out to the 8259 and here; ISA IRQ 0 arrives on pin 2, the MADT's
 * interrupt source override).  An unmasked pin sends a message to the
 * local APIC through the deliver callback: an edge pin on each rising
 * edge, a level pin while asserted and its Remote IRR is clear (set by
 * the message, cleared by the EOI of its vector: ioapic_eoi, from the
 * LAPIC's EOI broadcast or the EOI register).  Polarity is stored and not
 * applied (as QEMU): a line's level means "asserted".  An edge arriving
 * while the pin is masked is lost, as on the 82093AA.
 * All calls on the vCPU thread.
 */
#ifndef BT_RUNTIME_DEV_IOAPIC_H
#define BT_RUNTIME_DEV_IOAPIC_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/dev/lapic.h"

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_BASE    0xfec00000u
#define IOAPIC_SIZE    0x100u
#define IOAPIC_PINS    24
#define IOAPIC_VERSION 0x20u

/* redirection entry bits */
#define IOAPIC_RTE_MASKED     (1ull << 16)
#define IOAPIC_RTE_LEVEL      (1ull << 15)
#define IOAPIC_RTE_REMOTE_IRR (1ull << 14)
#define IOAPIC_RTE_LOW	      (1ull << 13)
#define IOAPIC_RTE_LOGICAL    (1ull << 11)

struct ioapic;

typedef void ioapic_deliver_fn(void *opaque, const struct lapic_msg *m);

enum bt_status ioapic_create(struct iobus *bus, ioapic_deliver_fn *deliver, void *opaque,
			     struct ioapic **out);
void ioapic_destroy(struct ioapic *io);

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);
/* End of interrupt for vector: clear Remote IRR of the level pins using it. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

/* Indirect register access, as through IOREGSEL/IOWIN (tests). */
uint32_t ioapic_read(struct ioapic *io, uint8_t index);
void ioapic_write(struct ioapic *io, uint8_t index, uint32_t val);
uint64_t ioapic_entry(const struct ioapic *io, unsigned pin);

#endif
