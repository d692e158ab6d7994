/*
 * The adapter from the device side (runtime/bus iobus, runtime/dev 8259
 * PIC) to struct cpu_platform: the one place where the vCPU's port I/O and
 * interrupt acknowledge meet the real device models.  Nothing else in
 * runtime/cpu knows about devices.
 *
 * Invariant: the adapter holds borrowed pointers only; bus and pic outlive
 * the vCPU (the runtime creates the platform first, destroys it last).
 */
#include "runtime/cpu/cpu.h"

#include "runtime/bus/iobus.h"
#include "runtime/dev/pic.h"

#include <stdlib.h>

struct cpu_devices {
	struct iobus *bus;
	struct pic *pic;
};

static enum bt_status dev_pio_in(void *o, uint16_t port, unsigned size, uint32_t *val)
{
	return iobus_pio_in(((struct cpu_devices *)o)->bus, port, size, val);
}

static enum bt_status dev_pio_out(void *o, uint16_t port, unsigned size, uint32_t val)
{
	return iobus_pio_out(((struct cpu_devices *)o)->bus, port, size, val);
}

static bool dev_intr_pending(void *o)
{
	struct pic *pic = ((struct cpu_devices *)o)->pic;
	return pic && pic_has_interrupt(pic);
}

static uint8_t dev_intr_ack(void *o)
{
	return pic_ack(((struct cpu_devices *)o)->pic);
}

enum bt_status cpu_platform_devices_create(struct iobus *bus, struct pic *pic,
					   struct cpu_platform *plat)
{
	if (!bus || !plat)
		return BT_ERR_INVALID;
	struct cpu_devices *d = calloc(1, sizeof(*d));
	if (!d)
		return BT_ERR_NOMEM;
	d->bus = bus;
	d->pic = pic;
	*plat = (struct cpu_platform){
	    .opaque = d,
	    .pio_in = dev_pio_in,
	    .pio_out = dev_pio_out,
	    .intr_pending = dev_intr_pending,
	    .intr_ack = dev_intr_ack,
	};
	return BT_OK;
}

void cpu_platform_devices_destroy(struct cpu_platform *plat)
{
	if (!plat)
		return;
	free(plat->opaque);
	plat->opaque = NULL;
}
