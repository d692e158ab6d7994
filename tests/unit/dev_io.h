/*
 * Port I/O as a guest driver does it, for the device unit tests: every
 * access must reach a handler without a bus error.  The fixture macros
 * take any test fixture with a `bus` member.
 */
#ifndef BT_TESTS_UNIT_DEV_IO_H
#define BT_TESTS_UNIT_DEV_IO_H

#include "runtime/bus/iobus.h"

static inline void dev_outb(struct iobus *bus, uint16_t port, uint8_t v)
{
	assert_int_equal(iobus_pio_out(bus, port, 1, v), BT_OK);
}

static inline uint8_t dev_inb(struct iobus *bus, uint16_t port)
{
	uint32_t v;
	assert_int_equal(iobus_pio_in(bus, port, 1, &v), BT_OK);
	return (uint8_t)v;
}

static inline uint16_t dev_inw(struct iobus *bus, uint16_t port)
{
	uint32_t v;
	assert_int_equal(iobus_pio_in(bus, port, 2, &v), BT_OK);
	return (uint16_t)v;
}

#define outb(f, port, v) dev_outb((f)->bus, (port), (v))
#define inb(f, port)	 dev_inb((f)->bus, (port))
#define inw(f, port)	 dev_inw((f)->bus, (port))

#endif
