/*
 * isa-debug-exit (see debug_exit.h).  Owns one port range and the first
 * exit request; invariant: the callback runs at most once per device.
 */
#include "runtime/dev/debug_exit.h"

#include "pretrans/base/log.h"

#include <stdlib.h>

struct debug_exit {
	struct iobus *bus;
	uint16_t port;
	debug_exit_fn *fn;
	void *opaque;
	bool requested;
	int status;
};

static void dexit_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	*value = 0;
}

static void dexit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct debug_exit *d = opaque;
	if (d->requested)
		return;
	d->requested = true;
	/* QEMU: exit((val << 1) | 1); the host sees the low 8 bits */
	d->status = (int)(uint32_t)((value << 1) | 1);
	bt_info(LOG_DEV, "debug-exit: guest wrote %#llx, exit status %d", (unsigned long long)value,
		d->status & 0xff);
	if (d->fn)
		d->fn(d->opaque, d->status);
}

static const struct iobus_ops dexit_ops = {
    .read = dexit_read,
    .write = dexit_write,
    .name = "isa-debug-exit",
};

enum bt_status debug_exit_create(struct iobus *bus, uint16_t port, unsigned size, debug_exit_fn *fn,
				 void *opaque, struct debug_exit **out)
{
	if (!bus || !out || (size != 1 && size != 2 && size != 4))
		return BT_ERR_INVALID;
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d)
		return BT_ERR_NOMEM;
	*d = (struct debug_exit){.bus = bus, .port = port, .fn = fn, .opaque = opaque};
	enum bt_status s = iobus_register_pio(bus, port, size, &dexit_ops, d);
	if (s != BT_OK) {
		free(d);
		return s;
	}
	*out = d;
	return BT_OK;
}

void debug_exit_destroy(struct debug_exit *dexit)
{
	if (!dexit)
		return;
	iobus_unregister_pio(dexit->bus, dexit->port);
	free(dexit);
}

bool debug_exit_requested(const struct debug_exit *dexit, int *status)
{
	if (dexit->requested && status)
		*status = dexit->status;
	return dexit->requested;
}
