/*
 * pvpanic (QEMU's ISA device, docs/specs/pvpanic.rst): one byte at port
 * 0x505.  A read gives the events the device reports (bit 0 PANICKED,
 * bit 1 CRASH_LOADED); the guest writes the event when it happens.  The
 * DSDT names it (_HID "QEMU0001", _CRS IO 0x505), so Linux's pvpanic
 * driver (pvpanic-mmio, which takes an I/O resource too) finds it and
 * writes PANICKED from its panic notifier, before panic=-1 reboots.
 * PANICKED is reported through the callback (btvm stops with its own
 * status); CRASH_LOADED (a kdump kernel takes over) is recorded only.
 */
#ifndef BT_RUNTIME_DEV_PVPANIC_H
#define BT_RUNTIME_DEV_PVPANIC_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"

#include <stddef.h>
#include <stdint.h>

#define PVPANIC_PORT	     0x505
#define PVPANIC_PANICKED     0x01
#define PVPANIC_CRASH_LOADED 0x02

struct pvpanic;
typedef void pvpanic_fn(void *opaque);

/* fn (may be NULL) runs at the first PANICKED write. */
enum bt_status pvpanic_create(struct iobus *bus, pvpanic_fn *fn, void *opaque,
			      struct pvpanic **out);
void pvpanic_destroy(struct pvpanic *pv);
/* Events the guest wrote so far (PVPANIC_* bits). */
uint8_t pvpanic_events(const struct pvpanic *pv);

/* The DSDT's \_SB.PEVT device for it (AML, appended to the DSDT by
 * acpi_build_tables); returns the length, 0 if cap is too small. */
size_t pvpanic_build_aml(uint8_t *buf, size_t cap);

#endif
