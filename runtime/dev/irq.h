/*
 * Interrupt lines: the wire between a device's interrupt output and an
 * interrupt controller input (the 8259 pair today, an IOAPIC later).
 *
 * A line carries a level.  Whether the controller reacts to the rising edge
 * or to the level is the controller's business (8259: ELCR / ICW1.LTIM), as
 * on real hardware.  A device with a pulse output (PIT OUT0 in mode 2)
 * calls irq_line_pulse(); a device with a level output (UART, ATA INTRQ)
 * calls irq_line_set() whenever its output changes.
 *
 * A line whose sink is NULL is unconnected: every call is a no-op.
 * Lines are caller-owned plain structs; all calls on the vCPU thread.
 */
#ifndef BT_RUNTIME_DEV_IRQ_H
#define BT_RUNTIME_DEV_IRQ_H

#include <stdbool.h>

typedef void irq_sink_fn(void *opaque, unsigned pin, bool level);

struct irq_line {
	irq_sink_fn *sink;
	void *opaque;
	unsigned pin;
	bool level;
};

void irq_line_init(struct irq_line *line, irq_sink_fn *sink, void *opaque, unsigned pin);
/* Drive the line to level (forwarded to the sink only on a change). */
void irq_line_set(struct irq_line *line, bool level);
void irq_line_raise(struct irq_line *line);
void irq_line_lower(struct irq_line *line);
/* Rising then falling edge: an edge-triggered input latches one request. */
void irq_line_pulse(struct irq_line *line);
bool irq_line_level(const struct irq_line *line);

#endif
