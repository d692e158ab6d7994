/*
 * pvpanic at port 0x505 (see pvpanic.h).
 */
#include "runtime/dev/pvpanic.h"

#include <stdlib.h>
#include <string.h>

struct pvpanic {
	struct iobus *bus;
	pvpanic_fn *fn;
	void *opaque;
	uint8_t events;
};

static void pv_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	(void)opaque;
	(void)off;
	(void)size;
	*value = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED; /* what it can report */
}

static void pv_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pvpanic *pv = opaque;
	(void)off;
	(void)size;
	uint8_t ev = (uint8_t)value & (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	bool first_panic = (ev & PVPANIC_PANICKED) && !(pv->events & PVPANIC_PANICKED);
	pv->events |= ev;
	if (first_panic && pv->fn)
		pv->fn(pv->opaque);
}

static const struct iobus_ops pv_ops = {
    .read = pv_read,
    .write = pv_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "pvpanic",
};

enum bt_status pvpanic_create(struct iobus *bus, pvpanic_fn *fn, void *opaque, struct pvpanic **out)
{
	if (!bus || !out)
		return BT_ERR_INVALID;
	struct pvpanic *pv = calloc(1, sizeof(*pv));
	if (!pv)
		return BT_ERR_NOMEM;
	pv->bus = bus;
	pv->fn = fn;
	pv->opaque = opaque;
	enum bt_status s = iobus_register_pio(bus, PVPANIC_PORT, 1, &pv_ops, pv);
	if (s != BT_OK) {
		free(pv);
		return s;
	}
	*out = pv;
	return BT_OK;
}

void pvpanic_destroy(struct pvpanic *pv)
{
	if (!pv)
		return;
	iobus_unregister_pio(pv->bus, PVPANIC_PORT);
	free(pv);
}

uint8_t pvpanic_events(const struct pvpanic *pv)
{
	return pv->events;
}

/*
 * Scope (\_SB) { Device (PEVT) { Name (_HID, "QEMU0001")
 *   Name (_CRS, ResourceTemplate () { IO (Decode16, 0x0505, 0x0505, 1, 1) })
 *   Name (_STA, 0x0F) } }
 * The lengths are one-byte PkgLengths (everything is below 64 bytes).
 */
size_t pvpanic_build_aml(uint8_t *buf, size_t cap)
{
	static const uint8_t crs[] = {0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, /* IO */
				      0x79, 0x00};				      /* End */
	uint8_t dev[64];
	size_t n = 0;
	memcpy(dev + n, "PEVT", 4);
	n += 4;
	static const uint8_t hid[] = {0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E',
				      'M',  'U', '0', '0', '0', '1',  0x00}; /* Name, String */
	memcpy(dev + n, hid, sizeof(hid));
	n += sizeof(hid);
	static const uint8_t crs_name[] = {0x08, '_', 'C', 'R', 'S', 0x11}; /* Name, Buffer */
	memcpy(dev + n, crs_name, sizeof(crs_name));
	n += sizeof(crs_name);
	dev[n++] = (uint8_t)(1 + 2 + sizeof(crs)); /* PkgLength: itself, BytePrefix+len, data */
	dev[n++] = 0x0a;			   /* BytePrefix */
	dev[n++] = (uint8_t)sizeof(crs);
	memcpy(dev + n, crs, sizeof(crs));
	n += sizeof(crs);
	static const uint8_t sta[] = {0x08, '_', 'S', 'T', 'A', 0x0a, 0x0f};
	memcpy(dev + n, sta, sizeof(sta));
	n += sizeof(sta);
	/* ScopeOp PkgLength "_SB_" ExtOpPrefix DeviceOp PkgLength dev... */
	size_t dev_len = 1 + n;			/* its PkgLength byte and its content */
	size_t scope_len = 1 + 4 + 2 + dev_len; /* PkgLength, "_SB_", 5B 82, device */
	size_t total = 1 + scope_len;
	if (scope_len > 63 || total > cap)
		return 0;
	size_t o = 0;
	buf[o++] = 0x10; /* ScopeOp */
	buf[o++] = (uint8_t)scope_len;
	memcpy(buf + o, "_SB_", 4);
	o += 4;
	buf[o++] = 0x5b; /* ExtOpPrefix */
	buf[o++] = 0x82; /* DeviceOp */
	buf[o++] = (uint8_t)dev_len;
	memcpy(buf + o, dev, n);
	o += n;
	return o;
}
