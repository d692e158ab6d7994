/*
 * POST port 0x80 and System Control Port A 0x92 (see sysport.h).  Owns the
 * last POST code and the port A latch; invariant: the reset callback runs
 * once per 0 -> 1 transition of port A bit 0.
 */
#include "runtime/dev/sysport.h"

#include "pretrans/base/log.h"

#include <stdlib.h>

struct sysport {
	struct iobus *bus;
	sysport_reset_fn *reset;
	void *opaque;
	uint8_t post;
	uint8_t porta;
	unsigned resets;
};

static void post_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	*value = 0xff;
}

static void post_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct sysport *sp = opaque;
	sp->post = (uint8_t)value;
}

static void porta_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct sysport *sp = opaque;
	*value = sp->porta & 0x02;
}

static void porta_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct sysport *sp = opaque;
	uint8_t v = (uint8_t)value;
	bool reset = (v & 0x01) && !(sp->porta & 0x01);
	sp->porta = v & 0x03;
	if (!reset)
		return;
	sp->resets++;
	bt_info(LOG_DEV, "port 0x92: guest requested a fast reset");
	if (sp->reset)
		sp->reset(sp->opaque);
}

static const struct iobus_ops post_ops = {
    .read = post_read,
    .write = post_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "post-0x80",
};

static const struct iobus_ops porta_ops = {
    .read = porta_read,
    .write = porta_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "sysctl-port-a",
};

enum bt_status sysport_create(struct iobus *bus, sysport_reset_fn *reset, void *opaque,
			      struct sysport **out)
{
	if (!bus || !out)
		return BT_ERR_INVALID;
	struct sysport *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return BT_ERR_NOMEM;
	*sp = (struct sysport){.bus = bus, .reset = reset, .opaque = opaque, .porta = 0x02};
	enum bt_status s = iobus_register_pio(bus, SYSPORT_POST_PORT, 1, &post_ops, sp);
	if (s != BT_OK)
		goto err_free;
	s = iobus_register_pio(bus, SYSPORT_A_PORT, 1, &porta_ops, sp);
	if (s != BT_OK)
		goto err_unregister_post;
	*out = sp;
	return BT_OK;

err_unregister_post:
	iobus_unregister_pio(bus, SYSPORT_POST_PORT);
err_free:
	free(sp);
	return s;
}

void sysport_destroy(struct sysport *sp)
{
	if (!sp)
		return;
	iobus_unregister_pio(sp->bus, SYSPORT_A_PORT);
	iobus_unregister_pio(sp->bus, SYSPORT_POST_PORT);
	free(sp);
}

uint8_t sysport_post_code(const struct sysport *sp)
{
	return sp->post;
}

bool sysport_a20(const struct sysport *sp)
{
	return sp->porta & 0x02;
}

unsigned sysport_reset_requests(const struct sysport *sp)
{
	return sp->resets;
}
