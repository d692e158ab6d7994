/*
 * The PC platform btvm gives a guest: bus, virtual clock and every device,
 * created in one explicit order (the table in platform.c) and wired to
 * their interrupt lines.
 *
 *   device        ports              IRQ   notes
 *   8259A pair    0x20-21, 0xa0-a1,  -     INTR -> LAPIC LINT0
 *                 0x4d0-4d1 (ELCR)
 *   local APIC    MMIO 0xfee00000    -     request -> config.on_intr
 *   IOAPIC        MMIO 0xfec00000    -     24 pins; every IRQ below also
 *                                          reaches pin platform_irq_gsi()
 *   8254 PIT      0x40-43, 0x61      0     channel 2 gate/OUT2 on 0x61
 *   16550A COM1   0x3f8-3ff          4     console fds
 *   CMOS RTC      0x70-71            8
 *   ATA disk      0x1f0-1f7, 0x3f6   14    only with config.disk_path
 *   debug-exit    0xf4-f7            -     config.on_exit(status)
 *   pvpanic       0x505              -     PANICKED -> config.on_panic
 *                                          (DSDT \_SB.PEVT, pvpanic.h)
 *   POST / port A 0x80, 0x92         -     0x92 bit 0 -> config.on_reset
 *   ACPI PM1, reset 0x600-605, 0xcf9, -     S5 -> config.on_poweroff; 0xcf9
 *                   0x64 (writes)             bit 2, 0x64 0xfe -> on_reset
 *                                             (acpi.h; tables: vm.c)
 *   PCI host bridge 0xcf8 (dword),    10, 11 INTx of PCI functions (pci.h)
 *                   0xcfc-cff
 *   virtio-blk     BAR 0: I/O 0xc000  10    00:04.0, only with
 *                                             config.virtio_disk_path
 *
 * Use from the runtime loop (all on the vCPU thread):
 *   - in/out and MMIO exits:      iobus_pio_in/out(p->bus, ...), iobus_mmio_*;
 *   - when the host timer fires or the console fd is readable (the loop
 *     watches both, e.g. with epoll): platform_poll(p) (console input,
 *     expired timers); it costs a poll(2), so not on every exit;
 *   - at block boundaries with IF=1: if platform_intr_pending(p), deliver
 *     platform_intr_ack(p) (on_intr says when this can have changed);
 *   - to sleep (HLT) or arm the host timer: platform_next_deadline(p) in
 *     virtual ns (compare with vclock_now_ns(p->clock));
 *   - stop when platform_exit_requested(p, &status).
 */
#ifndef BT_RUNTIME_DEV_PLATFORM_H
#define BT_RUNTIME_DEV_PLATFORM_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/clock/vclock.h"
#include "runtime/dev/acpi.h"
#include "runtime/dev/ata.h"
#include "runtime/dev/debug_exit.h"
#include "runtime/dev/pvpanic.h"
#include "runtime/dev/ioapic.h"
#include "runtime/dev/lapic.h"
#include "runtime/dev/pci.h"
#include "runtime/dev/pic.h"
#include "runtime/dev/pit.h"
#include "runtime/dev/rtc.h"
#include "runtime/dev/sysport.h"
#include "runtime/dev/uart.h"
#include "runtime/dev/virtio_blk.h"

#include <stdbool.h>
#include <stdint.h>

struct platform_config {
	int console_in_fd;  /* COM1 RX backend, -1 for none (e.g. STDIN_FILENO) */
	int console_out_fd; /* COM1 TX backend, -1 to discard (e.g. STDOUT_FILENO) */
	/* the RX backend is a raw terminal: Ctrl-A x raises SIGINT (the VM's
	 * clean stop), Ctrl-A Ctrl-A sends Ctrl-A (runtime/dev/conterm.h) */
	bool console_escape;
	const char *disk_path; /* raw image for the ATA disk, NULL for no disk */
	bool disk_read_only;
	const char *disk_model;	 /* IDENTIFY model string, NULL: ATA_DEFAULT_MODEL */
	const char *disk_serial; /* IDENTIFY serial number, NULL: ATA_DEFAULT_SERIAL */
	int64_t rtc_epoch;	 /* RTC start time, RTC_HOST_TIME for the host's */
	uint64_t ram_bytes;	 /* for the CMOS memory-size bytes; 0 leaves them 0 */
	struct vclock *clock;	 /* borrowed; NULL: the platform creates a monotonic one */
	uint32_t tsc_khz;	 /* guest TSC rate (LAPIC TSC-deadline); 0: 1 GHz */
	pic_notify_fn *on_intr;	 /* the vCPU's interrupt request changed (may be NULL) */
	void *intr_opaque;
	debug_exit_fn *on_exit; /* guest wrote the debug-exit port (may be NULL) */
	void *exit_opaque;
	sysport_reset_fn *on_reset; /* guest asked for a reset: 0x92, 0xcf9, 0x64 (may be NULL) */
	void *reset_opaque;
	acpi_event_fn *on_poweroff;   /* guest entered ACPI S5 (may be NULL); reset_opaque */
	pvpanic_fn *on_panic;	      /* the guest kernel panicked (pvpanic; may be NULL);
					 reset_opaque */
	const char *virtio_disk_path; /* raw image for virtio-blk on PCI, NULL for none */
	bool virtio_disk_read_only;
	struct dev_dma dma; /* guest RAM for DMA devices (virtio-blk needs it) */
};

/* Initialise cfg with the defaults: no console, no disk, host RTC time. */
void platform_config_init(struct platform_config *cfg);

struct platform {
	struct vclock *clock;
	struct iobus *bus;
	struct pic *pic;
	struct lapic *lapic;
	struct ioapic *ioapic;
	struct pit *pit;
	struct uart *com1;
	struct rtc *rtc;
	struct ata *ata; /* NULL without a disk */
	struct debug_exit *debug_exit;
	struct pvpanic *pvpanic;
	struct sysport *sysport;
	struct acpi_pm *acpi;
	struct pci_host *pci;
	struct virtio_blk *vblk; /* NULL without a virtio disk */
	/* private */
	struct dev_dma dma; /* config.dma, kept: devices borrow it */
	pic_notify_fn *on_intr;
	void *intr_opaque;
	bool owns_clock;
	unsigned created;
};

/* Build everything in table order; on failure, tear down what was built
 * and return the failing step's status (its reason is logged). */
enum bt_status platform_create(const struct platform_config *cfg, struct platform **out);
void platform_destroy(struct platform *p);

#define PLATFORM_DEFAULT_TSC_KHZ 1000000u

/* The vCPU's interrupt request: a LAPIC vector above PPR, or the 8259's
 * INTR when it reaches the CPU (LINT0 ExtINT, or the APIC disabled). */
bool platform_intr_pending(const struct platform *p);
/* The interrupt-acknowledge cycle: the vector to deliver. */
uint8_t platform_intr_ack(struct platform *p);
/* The IOAPIC pin (GSI) of ISA/PCI interrupt line irq: IRQ 0 -> 2. */
unsigned platform_irq_gsi(unsigned irq);

/* Pull console input into COM1 and run expired device timers. */
void platform_poll(struct platform *p);
/* Virtual time of the next device timer, VCLOCK_NEVER if none. */
uint64_t platform_next_deadline(const struct platform *p);
/* The guest asked to exit through the debug-exit port. */
bool platform_exit_requested(const struct platform *p, int *status);

#endif
