/*
 * Intel 8259A programmable interrupt controller pair, PC/AT wiring:
 * master at ports 0x20/0x21, slave at 0xa0/0xa1 cascaded on master IRQ2,
 * edge/level control registers (ELCR, PIIX) at 0x4d0/0x4d1.
 *
 * Devices drive inputs 0-15 through struct irq_line (pic_connect) or
 * pic_set_irq.  The vCPU asks pic_has_interrupt() when its IF is 1 and then
 * runs the interrupt-acknowledge cycle with pic_ack(), which returns the
 * vector to deliver (a spurious IRQ7/IRQ15 vector when the request went away).
 * The notify callback tells the runtime whenever the INTR output changes,
 * so it can set the vCPU's interrupt request without polling.
 */
#ifndef BT_RUNTIME_DEV_PIC_H
#define BT_RUNTIME_DEV_PIC_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/dev/irq.h"

#include <stdbool.h>
#include <stdint.h>

#define PIC_MASTER_PORT 0x20
#define PIC_SLAVE_PORT	0xa0
#define PIC_ELCR_PORT	0x4d0
#define PIC_NR_IRQS	16

struct pic;

typedef void pic_notify_fn(void *opaque, bool intr);

/* Registers the ports on bus (unregistered by pic_destroy). */
enum bt_status pic_create(struct iobus *bus, struct pic **out);
void pic_destroy(struct pic *pic);

void pic_set_notify(struct pic *pic, pic_notify_fn *fn, void *opaque);

/* Drive input irq (0-15) to level. */
void pic_set_irq(struct pic *pic, unsigned irq, bool level);
/* Initialise line as a wire into input irq. */
void pic_connect(struct pic *pic, unsigned irq, struct irq_line *line);

/* INTR output: an unmasked request outranks everything in service. */
bool pic_has_interrupt(const struct pic *pic);
/* INTA cycle: the vector to deliver; updates IRR/ISR as the chips do. */
uint8_t pic_ack(struct pic *pic);

/* Inspection for tests and debugging: chip 0 = master, 1 = slave. */
uint8_t pic_irr(const struct pic *pic, unsigned chip);
uint8_t pic_isr(const struct pic *pic, unsigned chip);
uint8_t pic_imr(const struct pic *pic, unsigned chip);

#endif
