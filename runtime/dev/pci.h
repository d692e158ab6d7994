/*
 * PCI host bridge: configuration mechanism #1 on ports 0xcf8 (CONFIG_ADDRESS,
 * dword accesses only: a byte at 0xcf9 is the reset control register of
 * acpi.c, bytes at 0xcfa/0xcfb go nowhere, as on a PIIX) and 0xcfc-0xcff
 * (CONFIG_DATA, byte, word or dword), one bus (0), function 0 of up to 32
 * slots.  Slot 0 is the host bridge itself (an i440FX, 8086:1237, class
 * 0x0600: Linux's pci_sanity_check looks for a host bridge or an Intel
 * vendor ID).
 *
 * Each device has a 256-byte type-0 header: read-only identity, a command
 * register (I/O and memory decode, bus master, INTx disable), status (INTx
 * status bit, capability list), Interrupt Line (read/write) and Pin, up to
 * six BARs and a capability list the model appends to (read-only, except
 * bytes the model opens with pci_device_cfg_set_wmask; accesses to one
 * window of them call the model back, for registers such as virtio's
 * configuration access capability).
 * BARs size as hardware does (write all ones, read back ~(size - 1) with
 * the type bits).  As firmware, pci_device_add_bar() assigns each BAR an
 * address (I/O from PCI_IO_BASE, memory from PCI_MEM_BASE, naturally
 * aligned) and enables decoding; the guest may move it.  The device hears
 * about every change of where a BAR decodes through ops->bar_map, and
 * registers (or unregisters) its own bus ranges there.
 *
 * INTx: pin A-D of slot s goes to PIRQ (s + pin) % 4, PIRQ A-D are ISA
 * IRQs 10, 11, 10, 11 (PCI_IRQ_*), shared and level-triggered (the DSDT's
 * _PRT says so and the guest sets them level in the ELCR).  The host ORs the
 * devices of each IRQ onto one irq_line (pci_host_irq).  The Interrupt Line
 * register starts with the routed IRQ, as a BIOS leaves it.
 *
 * All calls on the vCPU thread.
 */
#ifndef BT_RUNTIME_DEV_PCI_H
#define BT_RUNTIME_DEV_PCI_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/dev/irq.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA	   0xcfc
#define PCI_SLOTS	   32
#define PCI_BARS	   6
#define PCI_CFG_SIZE	   256

/* Firmware BAR windows (the DSDT's _CRS declares them to the guest). */
#define PCI_IO_BASE  0xc000u /* I/O BARs from here up to 0xffff */
#define PCI_IO_END   0x10000u
#define PCI_MEM_BASE 0xe0000000u /* memory BARs, in the 32-bit MMIO hole */
#define PCI_MEM_END  0xfec00000u /* below the IOAPIC */

/* The two ISA IRQs PCI INTx lines are routed to. */
#define PCI_IRQ_A 10
#define PCI_IRQ_B 11
#define PCI_NIRQ  2

/* Configuration-space offsets used by the models. */
#define PCI_VENDOR_ID	    0x00
#define PCI_DEVICE_ID	    0x02
#define PCI_COMMAND	    0x04
#define PCI_STATUS	    0x06
#define PCI_REVISION	    0x08
#define PCI_CLASS_PROG	    0x09
#define PCI_HEADER_TYPE	    0x0e
#define PCI_BAR0	    0x10
#define PCI_CAPABILITY_LIST 0x34
#define PCI_SUBSYS_VENDOR   0x2c
#define PCI_SUBSYS_ID	    0x2e
#define PCI_ROM_ADDRESS	    0x30
#define PCI_INTERRUPT_LINE  0x3c
#define PCI_INTERRUPT_PIN   0x3d

#define PCI_CMD_IO	     0x0001
#define PCI_CMD_MEM	     0x0002
#define PCI_CMD_MASTER	     0x0004
#define PCI_CMD_INTX_DISABLE 0x0400
#define PCI_STATUS_INTX	     0x0008
#define PCI_STATUS_CAP_LIST  0x0010
#define PCI_CAP_ID_VNDR	     0x09
#define PCI_CAP_START	     0x40 /* the first byte after the type-0 header */

/* The identity of a function (header type 0). */
struct pci_id {
	uint16_t vendor, device;
	uint8_t revision;
	uint32_t class_code; /* base class << 16 | subclass << 8 | prog-if */
	uint16_t subsys_vendor, subsys_id;
	uint8_t int_pin; /* 0 none, 1-4 INTA-INTD */
};

struct pci_device_ops {
	/* BAR bar now decodes at base (mapped), or stopped decoding. */
	void (*bar_map)(void *opaque, unsigned bar, bool mapped, uint64_t base);
	/* Optional: an access of size bytes at reg touched the window set
	 * with pci_device_cfg_window; called before a read is answered (the
	 * model may refresh the bytes with pci_device_cfg_store) and after a
	 * write has landed (through the write mask). */
	void (*cfg_access)(void *opaque, unsigned reg, unsigned size, bool write);
};

struct pci_host;
struct pci_device;

/* Claim 0xcf8 and 0xcfc-0xcff and create the host bridge at 00:00.0. */
enum bt_status pci_host_create(struct iobus *bus, struct pci_host **out);
/* Destroys the host bridge; every device must have been removed. */
void pci_host_destroy(struct pci_host *h);
/* The interrupt output for PCI_IRQ_A (i = 0) or PCI_IRQ_B (i = 1). */
struct irq_line *pci_host_irq(struct pci_host *h, unsigned i);
/* The ISA IRQ INTx pin (1-4) of slot is routed to. */
unsigned pci_intx_irq(unsigned slot, unsigned pin);

/* Plug a function into slot (1..31, free), reachable as 00:slot.0. */
enum bt_status pci_device_add(struct pci_host *h, unsigned slot, const struct pci_id *id,
			      const struct pci_device_ops *ops, void *opaque,
			      struct pci_device **out);
/* Unplug (its mapped BARs are reported unmapped first). */
void pci_device_remove(struct pci_device *d);
/* Declare BAR bar (0-5) of size bytes (a power of two, I/O >= 4, memory
 * >= 16), a 32-bit I/O or memory BAR; it is assigned and decoding at once. */
enum bt_status pci_device_add_bar(struct pci_device *d, unsigned bar, uint32_t size, bool io);
/* Append a capability to the function's list (read-only to the guest):
 * body[0] is its ID, body[1] (the next pointer) is filled in here, len
 * bytes (2..PCI_CFG_SIZE - PCI_CAP_START).  It is placed at the next free
 * dword from PCI_CAP_START, the previous capability (or the capability
 * pointer) is linked to it and the status register's capability-list bit
 * is set.  *at receives its offset.  BT_ERR_RANGE when it does not fit. */
enum bt_status pci_device_add_cap(struct pci_device *d, const uint8_t *body, size_t len,
				  uint8_t *at);
/* Capability bytes [reg, reg + len) (reg >= PCI_CAP_START) become
 * writable by the guest through the bits of mask[]. */
enum bt_status pci_device_cfg_set_wmask(struct pci_device *d, unsigned reg, const uint8_t *mask,
					size_t len);
/* Accesses touching [reg, reg + len) (reg >= PCI_CAP_START; one window a
 * function) call ops->cfg_access. */
enum bt_status pci_device_cfg_window(struct pci_device *d, unsigned reg, unsigned len);
/* The model's side of its configuration bytes: copy out (any), or store
 * without the write mask (reg >= PCI_CAP_START only).  Bytes past the
 * end read 0 and are not stored. */
void pci_device_cfg_load(const struct pci_device *d, unsigned reg, void *buf, size_t len);
void pci_device_cfg_store(struct pci_device *d, unsigned reg, const void *buf, size_t len);
/* Drive the function's INTx output (level; masked by INTX_DISABLE). */
void pci_device_set_intx(struct pci_device *d, bool level);
/* The command register (bus master for DMA, ...). */
uint16_t pci_device_command(const struct pci_device *d);

/* The DSDT's PCI root bridge: Device (PCI0) with _HID PNP0A03, _CRS (bus
 * 0-255, the config ports, the I/O and memory windows) and a static _PRT
 * for every slot and pin.  Writes AML into buf; returns its length, 0 if
 * cap is too small. */
size_t pci_host_build_aml(uint8_t *buf, size_t cap);

#endif
