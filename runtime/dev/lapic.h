/*
 * Local APIC of the one vCPU, xAPIC mode: 4 KiB of registers at
 * LAPIC_BASE (MMIO through the bus) and the two MSRs that belong to it,
 * IA32_APIC_BASE and IA32_TSC_DEADLINE (the vCPU forwards them here).
 *
 *   inputs                          outputs
 *   lapic_accept (IOAPIC message)   notify(opaque): the interrupt request
 *   lapic_set_lint0 (8259 INTR)       may have changed (recompute
 *   its own timer, ICR self-IPIs      lapic_has_interrupt / extint)
 *                                   eoi(opaque, vector): EOI of a level-
 *                                     triggered vector (to the IOAPIC)
 *
 * The vCPU takes interrupts with lapic_has_interrupt() / lapic_ack() (a
 * vector through IRR -> ISR, priority against PPR), and, when
 * lapic_extint_open(), from the 8259 directly (LINT0 in ExtINT mode, or the
 * APIC globally disabled), LAPIC first as QEMU does.
 *
 * Timer input clock: LAPIC_BUS_HZ (1 MHz), the crystal CPUID 0x15 reports,
 * which Linux takes as the APIC timer's clock (native_calibrate_tsc sets
 * lapic_timer_period from it).  TSC-deadline mode converts the guest TSC
 * deadline to virtual time with tsc_khz.
 *
 * Reset state: as firmware leaves a PC (virtual-wire mode): ID 0,
 * version 0x50014 (6 LVT entries), SVR 0xff (software-disabled), LINT0
 * ExtINT unmasked, LINT1 NMI, other LVTs masked; IA32_APIC_BASE 0xfee00900
 * (enabled, BSP).  All calls on the vCPU thread.
 */
#ifndef BT_RUNTIME_DEV_LAPIC_H
#define BT_RUNTIME_DEV_LAPIC_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/clock/vclock.h"

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_BASE	     0xfee00000u
#define LAPIC_SIZE	     0x1000u
#define LAPIC_BUS_HZ	     1000000u
#define LAPIC_VERSION	     0x00050014u
#define LAPIC_BASE_MSR_RESET (LAPIC_BASE | 0x900u) /* EN (bit 11), BSP (bit 8) */
#define LAPIC_MSR_BASE_EN    (1u << 11)
#define LAPIC_MSR_BASE_BSP   (1u << 8)

/* Register offsets (SDM vol. 3 table 10-1). */
enum lapic_reg {
	LAPIC_ID = 0x20,
	LAPIC_VER = 0x30,
	LAPIC_TPR = 0x80,
	LAPIC_APR = 0x90,
	LAPIC_PPR = 0xa0,
	LAPIC_EOI = 0xb0,
	LAPIC_RRD = 0xc0,
	LAPIC_LDR = 0xd0,
	LAPIC_DFR = 0xe0,
	LAPIC_SVR = 0xf0,
	LAPIC_ISR = 0x100, /* 8 registers, 0x100-0x170 */
	LAPIC_TMR = 0x180,
	LAPIC_IRR = 0x200,
	LAPIC_ESR = 0x280,
	LAPIC_ICR_LO = 0x300,
	LAPIC_ICR_HI = 0x310,
	LAPIC_LVT_TIMER = 0x320,
	LAPIC_LVT_THERMAL = 0x330,
	LAPIC_LVT_PERF = 0x340,
	LAPIC_LVT_LINT0 = 0x350,
	LAPIC_LVT_LINT1 = 0x360,
	LAPIC_LVT_ERROR = 0x370,
	LAPIC_TIMER_ICR = 0x380,
	LAPIC_TIMER_CCR = 0x390,
	LAPIC_TIMER_DCR = 0x3e0,
};

/* LVT and ICR fields */
#define LAPIC_LVT_MASKED     (1u << 16)
#define LAPIC_LVT_LEVEL	     (1u << 15)
#define LAPIC_DM_SHIFT	     8
#define LAPIC_DM_FIXED	     0u
#define LAPIC_DM_LOWEST	     1u
#define LAPIC_DM_SMI	     2u
#define LAPIC_DM_NMI	     4u
#define LAPIC_DM_INIT	     5u
#define LAPIC_DM_STARTUP     6u
#define LAPIC_DM_EXTINT	     7u
#define LAPIC_TIMER_ONESHOT  0u
#define LAPIC_TIMER_PERIODIC (1u << 17)
#define LAPIC_TIMER_DEADLINE (2u << 17)
#define LAPIC_TIMER_MODE     (3u << 17)
#define LAPIC_SVR_ENABLE     (1u << 8)

/* ESR bits */
#define LAPIC_ESR_SEND_ILLEGAL (1u << 5)
#define LAPIC_ESR_RECV_ILLEGAL (1u << 6)
#define LAPIC_ESR_ILLEGAL_REG  (1u << 7)

struct lapic;

typedef void lapic_notify_fn(void *opaque);
typedef void lapic_eoi_fn(void *opaque, uint8_t vector);

struct lapic_config {
	struct iobus *bus;	 /* the register page is claimed at LAPIC_BASE */
	struct vclock *clock;	 /* timer */
	uint32_t tsc_khz;	 /* guest TSC frequency, for TSC-deadline mode */
	lapic_notify_fn *notify; /* may be NULL */
	lapic_eoi_fn *eoi;	 /* may be NULL */
	void *opaque;
};

enum bt_status lapic_create(const struct lapic_config *cfg, struct lapic **out);
void lapic_destroy(struct lapic *a);

/* An interrupt message (from the IOAPIC): destination (physical ID or
 * logical, as the LDR/DFR match), delivery mode LAPIC_DM_*, vector, and
 * whether it is level-triggered (the EOI then goes to cfg.eoi). */
struct lapic_msg {
	uint8_t dest;
	bool logical;
	uint8_t mode;
	uint8_t vector;
	bool level;
};
void lapic_accept(struct lapic *a, const struct lapic_msg *m);
/* The 8259's INTR output, wired to LINT0. */
void lapic_set_lint0(struct lapic *a, bool level);

/* An interrupt in IRR outranks PPR (and the APIC is enabled). */
bool lapic_has_interrupt(const struct lapic *a);
/* Accept it: IRR -> ISR; the vector to deliver. */
uint8_t lapic_ack(struct lapic *a);
/* The 8259's INTR reaches the CPU: LINT0 unmasked in ExtINT mode, or the
 * APIC globally disabled. */
bool lapic_extint_open(const struct lapic *a);

/* IA32_APIC_BASE: false (the caller raises #GP) for reserved bits or a
 * relocation (not supported). */
uint64_t lapic_base_msr(const struct lapic *a);
bool lapic_set_base_msr(struct lapic *a, uint64_t val);
/* IA32_TSC_DEADLINE; tsc_now is the guest TSC at the access. */
uint64_t lapic_tsc_deadline(const struct lapic *a);
void lapic_set_tsc_deadline(struct lapic *a, uint64_t deadline, uint64_t tsc_now);

/* Register access as the guest does it (tests; the bus calls the same). */
uint32_t lapic_read(struct lapic *a, uint32_t reg);
void lapic_write(struct lapic *a, uint32_t reg, uint32_t val);

#endif
