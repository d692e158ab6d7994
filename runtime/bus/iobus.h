/*
 * The I/O bus: port-I/O and MMIO dispatch from the vCPU to device models.
 *
 * A device registers a range of ports (or of guest-physical addresses) with
 * an ops table and an opaque pointer, kvmtool style; the vCPU's emulation of
 * in/out and of MMIO accesses calls iobus_pio_in/out and iobus_mmio_read/
 * write.  Handlers receive the offset of the access inside the registered
 * range, so one device model can sit at any base (COM1, COM2, ...).
 *
 * Contract
 *  - All calls happen on the vCPU thread; nothing here locks.
 *  - Ranges never overlap: iobus_register_* refuses an overlap (BT_ERR_RANGE).
 *  - An access is handed whole (size 1/2/4, MMIO also 8) to the range that
 *    holds its first byte.  It is split into byte accesses when the range
 *    was registered with IOBUS_SPLIT_BYTES or when it runs past the range's
 *    end (unless the range has IOBUS_WHOLE); each byte then goes to whatever range (or none) holds
 * it, and the results are assembled little-endian, as an 8-bit ISA bus does.
 *  - Unclaimed reads return all ones (0xff, 0xffff, ...), unclaimed writes
 *    are dropped; each unclaimed port (MMIO: page) is logged once (LOG_DEV,
 *    info level) and counted.
 *  - Handlers cannot fail: a device answers every access as hardware would.
 */
#ifndef BT_RUNTIME_BUS_IOBUS_H
#define BT_RUNTIME_BUS_IOBUS_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

#include <stdint.h>
#include <stdio.h>

/* Flags for struct iobus_ops.flags. */
#define IOBUS_SPLIT_BYTES 0x1u /* the device only has byte registers */
/* The range takes every access that starts inside it whole, even one that
 * runs past its end (PCI's CONFIG_ADDRESS: a dword at 0xcf8 is the
 * register, while a byte at 0xcf9 belongs to another device). */
#define IOBUS_WHOLE 0x2u

struct iobus_ops {
	/* Fill *value (zero-extended) for a read of size bytes at offset. */
	void (*read)(void *opaque, uint64_t offset, unsigned size, uint64_t *value);
	/* Handle a write of the low size bytes of value at offset. */
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
	unsigned flags;
	const char *name; /* for logs and iobus_dump */
};

struct iobus;

enum bt_status iobus_create(struct iobus **out);
void iobus_destroy(struct iobus *bus);

/* Claim ports [port, port+len).  ops must outlive the registration. */
enum bt_status iobus_register_pio(struct iobus *bus, uint16_t port, unsigned len,
				  const struct iobus_ops *ops, void *opaque);
/* Claim guest-physical [gpa, gpa+len). */
enum bt_status iobus_register_mmio(struct iobus *bus, gpa_t gpa, uint64_t len,
				   const struct iobus_ops *ops, void *opaque);
/* Release the range registered exactly at port / gpa (BT_ERR_NOTFOUND otherwise). */
enum bt_status iobus_unregister_pio(struct iobus *bus, uint16_t port);
enum bt_status iobus_unregister_mmio(struct iobus *bus, gpa_t gpa);

/* Guest in/out.  size is 1, 2 or 4 (BT_ERR_INVALID otherwise).  in always
 * sets *value (all ones when unclaimed). */
enum bt_status iobus_pio_in(struct iobus *bus, uint16_t port, unsigned size, uint32_t *value);
enum bt_status iobus_pio_out(struct iobus *bus, uint16_t port, unsigned size, uint32_t value);

/* Guest MMIO.  size is 1, 2, 4 or 8. */
enum bt_status iobus_mmio_read(struct iobus *bus, gpa_t gpa, unsigned size, uint64_t *value);
enum bt_status iobus_mmio_write(struct iobus *bus, gpa_t gpa, unsigned size, uint64_t value);

/* True when some device claims the guest-physical address (the soft-MMU
 * asks this to route an access to the bus instead of RAM). */
bool iobus_mmio_claimed(const struct iobus *bus, gpa_t gpa);

/* Number of accesses that hit no device so far (tests, statistics). */
uint64_t iobus_unclaimed_accesses(const struct iobus *bus);

/* Print the registered ranges to f (debugging aid). */
void iobus_dump(const struct iobus *bus, FILE *f);

#endif
