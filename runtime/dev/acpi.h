/*
 * Minimal ACPI for the guest's lifecycle and interrupt controllers: the
 * tables a kernel needs to power the machine off and reset it (RSDP, XSDT,
 * RSDT, FADT, FACS, a DSDT with `_S5` and the PCI root bridge) and to find
 * its APICs (MADT: LAPIC, IOAPIC, ISA IRQ 0 -> GSI 2), and the fixed
 * hardware they describe:
 *
 *   register            port        access
 *   PM1a event block    0x600-0x603 PM1_STS (write 1 to clear), PM1_EN
 *   PM1a control block  0x604-0x605 SCI_EN reads 1 (no SMI_CMD: always in
 *                                   ACPI mode); SLP_EN with SLP_TYP = 5
 *                                   (_S5) -> on_poweroff
 *   reset register      0xcf9       write with bit 2 (the FADT's RESET_VALUE
 *                                   6, or Linux's reboot=pci 0x0e) -> on_reset
 *   i8042 command       0x64        write 0xfe (pulse reset) -> on_reset;
 *                                   reads 0xff, as no controller
 *
 * No PM timer (a second clocksource the TSC watchdog would compare against
 * is not worth it), no GPE blocks, no SCI ever raised (SCI_INT 9 is
 * declared, no event sets a status bit).  The tables live in the BIOS area (ACPI_TABLES_BASE,
 * reserved in the e820 map), where Linux's legacy RSDP scan finds them.
 */
#ifndef BT_RUNTIME_DEV_ACPI_H
#define BT_RUNTIME_DEV_ACPI_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"

#include <stddef.h>
#include <stdint.h>

#define ACPI_TABLES_BASE 0xe0000u /* 16-byte aligned, in [0xe0000, 0x100000) */
#define ACPI_TABLES_SIZE 0x1000u

#define ACPI_PM1_EVT_PORT 0x600
#define ACPI_PM1_CNT_PORT 0x604
#define ACPI_RESET_PORT	  0xcf9
#define ACPI_I8042_PORT	  0x64
#define ACPI_SLP_TYP_S5	  5

/* Write the tables for guest-physical address base into buf (cap bytes,
 * which must cover ACPI_TABLES_SIZE).  Returns the bytes used, 0 if cap is
 * too small.  Pure: no device, no clock. */
size_t acpi_build_tables(uint8_t *buf, size_t cap, uint32_t base);

/* The byte sum of n bytes, mod 256 (0 for a well-formed table). */
uint8_t acpi_sum(const uint8_t *p, size_t n);

typedef void acpi_event_fn(void *opaque);

struct acpi_pm;

/* Claim the ports above.  on_poweroff: the guest entered S5; on_reset: it
 * asked for a reset (either may be NULL). */
enum bt_status acpi_pm_create(struct iobus *bus, acpi_event_fn *on_poweroff,
			      acpi_event_fn *on_reset, void *opaque, struct acpi_pm **out);
void acpi_pm_destroy(struct acpi_pm *pm);

#endif
