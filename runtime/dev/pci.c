/*
 * PCI host bridge (see pci.h).  Owns CONFIG_ADDRESS, the device table (one
 * function per slot on bus 0), each function's configuration header, the
 * firmware BAR allocator and the OR of the INTx levels per routed IRQ.
 *
 * Invariants
 *  1. A configuration byte changes only through its write mask wmask[]
 *     (or the model's pci_device_cfg_store, at PCI_CAP_START and above):
 *     identity, header type, capability pointer, capabilities (unless the
 *     model opened bytes with pci_device_cfg_set_wmask) and unused BARs
 *     are read only; a BAR's low size bits and type bits are read only, so writing
 *     all ones reads back ~(size - 1) | type.
 *  2. mapped[i] / base[i] say where BAR i decodes; after every write to the
 *     command register or a BAR they equal "decode bit set, base != 0 and
 *     the BAR fits its space", and the device heard of each change through
 *     ops->bar_map (unmap of the old place before map of the new one).
 *  3. Each irq output's level is the OR over the functions routed to it of
 *     intx && !INTX_DISABLE.
 *  4. The capability pointer and each capability's next byte chain
 *     dword-aligned offsets >= PCI_CAP_START, ending in 0; the status
 *     register's capability-list bit is set iff the chain is not empty.
 */
#include "runtime/dev/pci.h"

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"

#include <stdlib.h>
#include <string.h>

#define CFG_ADDR_ENABLE 0x80000000u
#define CFG_ADDR_MASK	0x80fffffcu /* enable, bus, device, function, register */

#define BAR_IO	      0x1u
#define BAR_IO_MASK   0x3u
#define BAR_MEM_MASK  0xfu
#define HOST_BRIDGE_C 0x060000u

static const unsigned pirq_irq[4] = {PCI_IRQ_A, PCI_IRQ_B, PCI_IRQ_A, PCI_IRQ_B};

struct pci_device {
	struct pci_host *host;
	unsigned slot;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];
	uint32_t bar_size[PCI_BARS]; /* 0: no BAR */
	bool bar_io[PCI_BARS];
	bool mapped[PCI_BARS];
	uint64_t base[PCI_BARS];
	bool intx;
	uint8_t cap_free, cap_last; /* next free offset, last capability (0: none) */
	unsigned win_lo, win_hi;    /* cfg_access window, empty when equal */
	const struct pci_device_ops *ops;
	void *opaque;
};

struct pci_host {
	struct iobus *bus;
	uint32_t address; /* CONFIG_ADDRESS */
	struct pci_device *slot[PCI_SLOTS];
	struct pci_device bridge;
	uint32_t io_next, mem_next; /* firmware allocator */
	struct irq_line irq[PCI_NIRQ];
};

unsigned pci_intx_irq(unsigned slot, unsigned pin)
{
	return pirq_irq[(slot + pin - 1) & 3];
}

static unsigned irq_index(unsigned irq)
{
	return irq == PCI_IRQ_A ? 0 : 1;
}

static void host_update_irq(struct pci_host *h)
{
	bool level[PCI_NIRQ] = {false};
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		struct pci_device *d = h->slot[s];
		if (!d || !d->intx || !d->cfg[PCI_INTERRUPT_PIN] ||
		    (bt_get32(d->cfg + PCI_COMMAND) & PCI_CMD_INTX_DISABLE))
			continue;
		level[irq_index(pci_intx_irq(s, d->cfg[PCI_INTERRUPT_PIN]))] = true;
	}
	for (unsigned i = 0; i < PCI_NIRQ; i++)
		irq_line_set(&h->irq[i], level[i]);
}

/* Invariant 2: recompute where each BAR decodes, tell the device. */
static void device_update_bars(struct pci_device *d)
{
	uint16_t cmd = (uint16_t)bt_get32(d->cfg + PCI_COMMAND);
	for (unsigned i = 0; i < PCI_BARS; i++) {
		uint32_t size = d->bar_size[i];
		if (!size)
			continue;
		uint32_t v = bt_get32(d->cfg + PCI_BAR0 + 4 * i);
		uint64_t base = v & ~(uint32_t)(size - 1);
		bool on = d->bar_io[i] ? (cmd & PCI_CMD_IO) && base + size <= PCI_IO_END
				       : (cmd & PCI_CMD_MEM) && base + size <= (1ull << 32);
		on = on && base != 0;
		if (on == d->mapped[i] && (!on || base == d->base[i]))
			continue;
		if (d->mapped[i] && d->ops && d->ops->bar_map)
			d->ops->bar_map(d->opaque, i, false, d->base[i]);
		d->mapped[i] = on;
		d->base[i] = base;
		if (on && d->ops && d->ops->bar_map)
			d->ops->bar_map(d->opaque, i, true, base);
	}
}

static void device_init(struct pci_device *d, struct pci_host *h, unsigned slot,
			const struct pci_id *id)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	d->host = h;
	d->slot = slot;
	d->cap_free = PCI_CAP_START;
	d->cap_last = 0;
	bt_put16(d->cfg + PCI_VENDOR_ID, id->vendor);
	bt_put16(d->cfg + PCI_DEVICE_ID, id->device);
	d->cfg[PCI_REVISION] = id->revision;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)id->class_code;
	d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(id->class_code >> 8);
	d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(id->class_code >> 16);
	bt_put16(d->cfg + PCI_SUBSYS_VENDOR, id->subsys_vendor);
	bt_put16(d->cfg + PCI_SUBSYS_ID, id->subsys_id);
	d->cfg[PCI_INTERRUPT_PIN] = id->int_pin <= 4 ? id->int_pin : 0;
	if (d->cfg[PCI_INTERRUPT_PIN])
		d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)pci_intx_irq(slot, d->cfg[PCI_INTERRUPT_PIN]);
	else
		d->cfg[PCI_INTERRUPT_LINE] = 0xff;
	/* command: I/O, memory, bus master, SERR, INTx disable */
	bt_put16(d->wmask + PCI_COMMAND,
		 PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | 0x0100 | PCI_CMD_INTX_DISABLE);
	d->wmask[0x0c] = 0xff; /* cache line size */
	d->wmask[0x0d] = 0xff; /* latency timer */
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

static struct pci_device *host_target(struct pci_host *h, unsigned *reg)
{
	uint32_t a = h->address;
	if (!(a & CFG_ADDR_ENABLE) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 7) != 0)
		return NULL; /* disabled, another bus, or a function other than 0 */
	*reg = a & 0xfc;
	return h->slot[(a >> 11) & 0x1f];
}

static bool device_in_window(const struct pci_device *d, unsigned reg, unsigned size)
{
	return d->ops && d->ops->cfg_access && reg < d->win_hi && reg + size > d->win_lo;
}

static uint32_t device_cfg_read(struct pci_device *d, unsigned reg, unsigned size)
{
	if (device_in_window(d, reg, size))
		d->ops->cfg_access(d->opaque, reg, size, false);
	uint32_t v = 0;
	for (unsigned i = 0; i < size && reg + i < PCI_CFG_SIZE; i++) {
		uint8_t b = d->cfg[reg + i];
		if (reg + i == PCI_STATUS && d->intx)
			b |= PCI_STATUS_INTX;
		v |= (uint32_t)b << (8 * i);
	}
	return v;
}

static void device_cfg_write(struct pci_device *d, unsigned reg, unsigned size, uint32_t v)
{
	bool bars = false, cmd = false;
	for (unsigned i = 0; i < size && reg + i < PCI_CFG_SIZE; i++) {
		unsigned o = reg + i;
		uint8_t m = d->wmask[o];
		if (!m)
			continue;
		d->cfg[o] = (uint8_t)((d->cfg[o] & ~m) | ((v >> (8 * i)) & m));
		bars |= o >= PCI_BAR0 && o < PCI_BAR0 + 4 * PCI_BARS;
		cmd |= o == PCI_COMMAND || o == PCI_COMMAND + 1;
	}
	if (bars || cmd)
		device_update_bars(d);
	if (cmd)
		host_update_irq(d->host);
	if (device_in_window(d, reg, size))
		d->ops->cfg_access(d->opaque, reg, size, true);
}

static void addr_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct pci_host *h = opaque;
	/* only a dword access at 0xcf8 is CONFIG_ADDRESS; anything else is a
	 * plain I/O cycle nothing answers */
	*value = (off == 0 && size == 4) ? h->address : ~0ull;
}

static void addr_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;
	if (off == 0 && size == 4)
		h->address = (uint32_t)value & CFG_ADDR_MASK;
}

static void data_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct pci_host *h = opaque;
	unsigned reg;
	struct pci_device *d = host_target(h, &reg);
	*value = d ? device_cfg_read(d, reg + (unsigned)off, size) : ~0ull;
}

static void data_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;
	unsigned reg;
	struct pci_device *d = host_target(h, &reg);
	if (d)
		device_cfg_write(d, reg + (unsigned)off, size, (uint32_t)value);
}

static const struct iobus_ops addr_ops = {
    .read = addr_read,
    .write = addr_write,
    .flags = IOBUS_WHOLE,
    .name = "pci-config-address",
};

static const struct iobus_ops data_ops = {
    .read = data_read,
    .write = data_write,
    .name = "pci-config-data",
};

enum bt_status pci_host_create(struct iobus *bus, struct pci_host **out)
{
	if (!bus || !out)
		return BT_ERR_INVALID;
	struct pci_host *h = calloc(1, sizeof(*h));
	if (!h)
		return BT_ERR_NOMEM;
	h->bus = bus;
	h->io_next = PCI_IO_BASE;
	h->mem_next = PCI_MEM_BASE;
	irq_line_init(&h->irq[0], NULL, NULL, PCI_IRQ_A);
	irq_line_init(&h->irq[1], NULL, NULL, PCI_IRQ_B);
	const struct pci_id bridge = {
	    .vendor = 0x8086, .device = 0x1237, .revision = 2, .class_code = HOST_BRIDGE_C};
	device_init(&h->bridge, h, 0, &bridge);
	bt_put16(h->bridge.cfg + PCI_COMMAND, PCI_CMD_IO | PCI_CMD_MEM);
	h->slot[0] = &h->bridge;
	enum bt_status s = iobus_register_pio(bus, PCI_CONFIG_ADDRESS, 1, &addr_ops, h);
	if (s != BT_OK)
		goto err_free;
	s = iobus_register_pio(bus, PCI_CONFIG_DATA, 4, &data_ops, h);
	if (s != BT_OK)
		goto err_unregister_addr;
	*out = h;
	return BT_OK;

err_unregister_addr:
	iobus_unregister_pio(bus, PCI_CONFIG_ADDRESS);
err_free:
	free(h);
	return s;
}

void pci_host_destroy(struct pci_host *h)
{
	if (!h)
		return;
	for (unsigned s = 1; s < PCI_SLOTS; s++)
		if (h->slot[s])
			bt_err(LOG_DEV, "pci: slot %u still holds a device at destroy", s);
	iobus_unregister_pio(h->bus, PCI_CONFIG_DATA);
	iobus_unregister_pio(h->bus, PCI_CONFIG_ADDRESS);
	free(h);
}

struct irq_line *pci_host_irq(struct pci_host *h, unsigned i)
{
	return i < PCI_NIRQ ? &h->irq[i] : NULL;
}

enum bt_status pci_device_add(struct pci_host *h, unsigned slot, const struct pci_id *id,
			      const struct pci_device_ops *ops, void *opaque,
			      struct pci_device **out)
{
	if (!h || !id || !out || slot == 0 || slot >= PCI_SLOTS)
		return BT_ERR_INVALID;
	if (h->slot[slot])
		return BT_ERR_RANGE;
	struct pci_device *d = calloc(1, sizeof(*d));
	if (!d)
		return BT_ERR_NOMEM;
	device_init(d, h, slot, id);
	d->ops = ops;
	d->opaque = opaque;
	h->slot[slot] = d;
	*out = d;
	return BT_OK;
}

void pci_device_remove(struct pci_device *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < PCI_BARS; i++)
		if (d->mapped[i] && d->ops && d->ops->bar_map)
			d->ops->bar_map(d->opaque, i, false, d->base[i]);
	struct pci_host *h = d->host;
	h->slot[d->slot] = NULL;
	host_update_irq(h);
	free(d);
}

enum bt_status pci_device_add_bar(struct pci_device *d, unsigned bar, uint32_t size, bool io)
{
	if (!d || bar >= PCI_BARS || d->bar_size[bar] || size & (size - 1) ||
	    size < (io ? 4u : 16u) || (io && size > 256))
		return BT_ERR_INVALID;
	struct pci_host *h = d->host;
	uint32_t *next = io ? &h->io_next : &h->mem_next;
	uint64_t base = ((uint64_t)*next + size - 1) & ~(uint64_t)(size - 1);
	if (base + size > (io ? PCI_IO_END : PCI_MEM_END))
		return BT_ERR_RANGE;
	*next = (uint32_t)(base + size);
	d->bar_size[bar] = size;
	d->bar_io[bar] = io;
	bt_put32(d->cfg + PCI_BAR0 + 4 * bar, (uint32_t)base | (io ? BAR_IO : 0));
	bt_put32(d->wmask + PCI_BAR0 + 4 * bar, ~(size - 1) & ~(io ? BAR_IO_MASK : BAR_MEM_MASK));
	uint16_t cmd = (uint16_t)bt_get32(d->cfg + PCI_COMMAND);
	bt_put16(d->cfg + PCI_COMMAND, cmd | (io ? PCI_CMD_IO : PCI_CMD_MEM));
	device_update_bars(d);
	return BT_OK;
}

enum bt_status pci_device_add_cap(struct pci_device *d, const uint8_t *body, size_t len,
				  uint8_t *at)
{
	if (!d || !body || !at || len < 2)
		return BT_ERR_INVALID;
	if (len > PCI_CFG_SIZE - (size_t)d->cap_free)
		return BT_ERR_RANGE;
	uint8_t off = d->cap_free;
	memcpy(d->cfg + off, body, len);
	d->cfg[off + 1] = 0;
	d->cfg[d->cap_last ? d->cap_last + 1u : PCI_CAPABILITY_LIST] = off;
	d->cap_last = off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	size_t next = ((size_t)off + len + 3) & ~(size_t)3;
	/* 0xff when full: no capability (len >= 2) fits there */
	d->cap_free = next >= PCI_CFG_SIZE ? 0xff : (uint8_t)next;
	*at = off;
	return BT_OK;
}

static bool cap_range(unsigned reg, size_t len)
{
	return reg >= PCI_CAP_START && reg <= PCI_CFG_SIZE && len <= PCI_CFG_SIZE - reg;
}

enum bt_status pci_device_cfg_set_wmask(struct pci_device *d, unsigned reg, const uint8_t *mask,
					size_t len)
{
	if (!d || !mask || !cap_range(reg, len))
		return BT_ERR_INVALID;
	memcpy(d->wmask + reg, mask, len);
	return BT_OK;
}

enum bt_status pci_device_cfg_window(struct pci_device *d, unsigned reg, unsigned len)
{
	if (!d || !len || !cap_range(reg, len) || d->win_hi != d->win_lo)
		return BT_ERR_INVALID;
	d->win_lo = reg;
	d->win_hi = reg + len;
	return BT_OK;
}

void pci_device_cfg_load(const struct pci_device *d, unsigned reg, void *buf, size_t len)
{
	memset(buf, 0, len);
	if (reg < PCI_CFG_SIZE)
		memcpy(buf, d->cfg + reg, BT_MIN(len, (size_t)(PCI_CFG_SIZE - reg)));
}

void pci_device_cfg_store(struct pci_device *d, unsigned reg, const void *buf, size_t len)
{
	if (reg >= PCI_CAP_START && reg < PCI_CFG_SIZE)
		memcpy(d->cfg + reg, buf, BT_MIN(len, (size_t)(PCI_CFG_SIZE - reg)));
}

void pci_device_set_intx(struct pci_device *d, bool level)
{
	if (d->intx == level)
		return;
	d->intx = level;
	host_update_irq(d->host);
}

uint16_t pci_device_command(const struct pci_device *d)
{
	return (uint16_t)bt_get32(d->cfg + PCI_COMMAND);
}

/* ------------------------------------------------------------------ */
/* AML for the DSDT                                                     */

struct aml {
	uint8_t *p;
	size_t n, cap;
};

static void aml_bytes(struct aml *a, const void *b, size_t len)
{
	if (a->n + len <= a->cap)
		memcpy(a->p + a->n, b, len);
	a->n += len;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/* An integer in its shortest encoding. */
static void aml_int(struct aml *a, uint32_t v)
{
	uint8_t b[5];
	if (v <= 1) {
		aml_byte(a, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		b[0] = 0x0a;
		b[1] = (uint8_t)v;
		aml_bytes(a, b, 2);
	} else {
		b[0] = 0x0c;
		bt_put32(b + 1, v);
		aml_bytes(a, b, 5);
	}
}

/* Close an object opened at start (its content from start + 4 on, a
 * 4-byte PkgLength hole reserved at start): encode the PkgLength in the
 * fewest bytes and move the content down. */
static size_t aml_open(struct aml *a)
{
	size_t at = a->n;
	a->n += 4;
	return at;
}

static void aml_close(struct aml *a, size_t at)
{
	size_t content = a->n - at - 4;
	size_t total = content + 1, nb = 1;
	if (total > 63) {
		nb = total + 1 <= 0xfff ? 2 : 3;
		total = content + nb;
	}
	if (a->n > a->cap)
		return; /* overflowed: the length is reported, nothing more */
	uint8_t len[3];
	if (nb == 1) {
		len[0] = (uint8_t)total;
	} else {
		len[0] = (uint8_t)(((nb - 1) << 6) | (total & 0xf));
		len[1] = (uint8_t)(total >> 4);
		len[2] = (uint8_t)(total >> 12);
	}
	memmove(a->p + at + nb, a->p + at + 4, content);
	memcpy(a->p + at, len, nb);
	a->n = at + nb + content;
}

static void aml_name(struct aml *a, const char seg[4])
{
	aml_byte(a, 0x08); /* NameOp */
	aml_bytes(a, seg, 4);
}

/* _CRS: the bus range, the config ports, the I/O and memory windows. */
static const uint8_t pci_crs[] = {
    /* WordBusNumber: 0x00-0xff */
    0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01,
    /* IO (Decode16, 0xcf8, 0xcf8, 1, 8) */
    0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08,
    /* WordIO 0x0000-0x0cf7 */
    0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x0c, 0x00, 0x00, 0xf8, 0x0c,
    /* WordIO 0x0d00-0xffff */
    0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3,
    /* DWordMemory 0x000a0000-0x000bffff (VGA window) */
    0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0xff, 0xff,
    0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
    /* DWordMemory PCI_MEM_BASE..PCI_MEM_END-1 (patched in below) */
    0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00,
    0x00, 0x00, 0, 0, 0, 0,
    /* EndTag */
    0x79, 0x00};
#define CRS_MEM_AT (sizeof(pci_crs) - 2 - 26)

size_t pci_host_build_aml(uint8_t *buf, size_t cap)
{
	struct aml a = {.p = buf, .cap = cap};
	aml_byte(&a, 0x10); /* ScopeOp (\_SB_) */
	size_t scope = aml_open(&a);
	aml_bytes(&a, "_SB_", 4);
	aml_bytes(&a, (const uint8_t[]){0x5b, 0x82}, 2); /* DeviceOp (PCI0) */
	size_t dev = aml_open(&a);
	aml_bytes(&a, "PCI0", 4);
	aml_name(&a, "_HID");
	aml_bytes(&a, (const uint8_t[]){0x0c, 0x41, 0xd0, 0x0a, 0x03}, 5); /* EisaId PNP0A03 */
	aml_name(&a, "_UID");
	aml_int(&a, 0);
	aml_name(&a, "_CRS");
	uint8_t crs[sizeof(pci_crs)];
	memcpy(crs, pci_crs, sizeof(crs));
	bt_put32(crs + CRS_MEM_AT + 10, PCI_MEM_BASE);
	bt_put32(crs + CRS_MEM_AT + 14, PCI_MEM_END - 1);
	bt_put32(crs + CRS_MEM_AT + 22, PCI_MEM_END - PCI_MEM_BASE);
	aml_byte(&a, 0x11); /* BufferOp */
	size_t b = aml_open(&a);
	aml_int(&a, sizeof(crs));
	aml_bytes(&a, crs, sizeof(crs));
	aml_close(&a, b);
	/* _PRT: Package { Package { slot << 16 | 0xffff, pin, Zero, IRQ } ... } */
	aml_name(&a, "_PRT");
	aml_byte(&a, 0x12); /* PackageOp */
	size_t prt = aml_open(&a);
	aml_byte(&a, (PCI_SLOTS - 1) * 4);
	for (unsigned s = 1; s < PCI_SLOTS; s++) {
		for (unsigned pin = 1; pin <= 4; pin++) {
			aml_byte(&a, 0x12);
			size_t e = aml_open(&a);
			aml_byte(&a, 4);
			aml_int(&a, s << 16 | 0xffff);
			aml_int(&a, pin - 1);
			aml_int(&a, 0);
			aml_int(&a, pci_intx_irq(s, pin));
			aml_close(&a, e);
		}
	}
	aml_close(&a, prt);
	aml_close(&a, dev);
	aml_close(&a, scope);
	return a.n <= cap ? a.n : 0;
}
