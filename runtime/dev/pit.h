/*
 * Intel 8254 programmable interval timer at ports 0x40-0x43, clocked at
 * 1.193182 MHz of virtual time, plus the PC's port 0x61 (system control
 * port B: channel 2 gate, speaker data, refresh toggle and OUT2 readback).
 *
 * Counters are not ticked: their value and OUT level are computed from the
 * virtual time at which the count was loaded, so reads are exact at any
 * moment and cost nothing between accesses.  Channel 0's OUT drives IRQ0
 * (pit_irq) through a vclock timer armed for the next rising edge of OUT;
 * when the loop runs late, missed edges are dropped (one edge per timer
 * run, next one on the original grid), as a busy real machine loses ticks.
 *
 * Supported: modes 0-5 (mode 1/5 triggered by the gate, i.e. channel 2
 * only), LSB/MSB/LSB-then-MSB access, counter latch and read-back commands,
 * BCD counts.  Not modelled: the one-CLK delay before a new count takes
 * effect, and a count written in mode 2/3 while counting waiting for the
 * end of the current period (it restarts the period at once, which is what
 * every kernel that reprograms the PIT expects anyway).
 */
#ifndef BT_RUNTIME_DEV_PIT_H
#define BT_RUNTIME_DEV_PIT_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/clock/vclock.h"
#include "runtime/dev/irq.h"

#include <stdbool.h>
#include <stdint.h>

#define PIT_PORT     0x40
#define PIT_PORTB    0x61
#define PIT_IRQ	     0
#define PIT_FREQ_HZ  1193182u
#define PIT_CHANNELS 3

struct pit;

/* Registers 0x40-0x43 and 0x61 on bus; timers on clock. */
enum bt_status pit_create(struct iobus *bus, struct vclock *clock, struct pit **out);
void pit_destroy(struct pit *pit);

/* OUT0, to wire with pic_connect(pic, 0, pit_irq(p)). */
struct irq_line *pit_irq(struct pit *pit);

/* Inspection for tests and debugging. */
bool pit_out(struct pit *pit, unsigned channel);
uint16_t pit_counter(struct pit *pit, unsigned channel);

#endif
