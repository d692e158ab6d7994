/*
 * Unit tests for the modern (virtio 1.x) interface of the transitional
 * virtio-blk PCI function (virtio_blk.h), driven as Linux 6.1's
 * virtio_pci_modern_dev.c and virtio_pci_modern.c drive it, in their order:
 * the capability walk (pci_find_capability, then vp_modern_map_capability's
 * checks), reset and the status handshake, feature negotiation through the
 * 32-bit windows (a driver without VIRTIO_F_VERSION_1, or one accepting a
 * feature not offered, is refused FEATURES_OK), queue 0 set up through the
 * common config with 64-bit addresses (low half, then high half), enable,
 * DRIVER_OK, notify, the ISR's read-clear, the device config, reset, and
 * the PCI configuration access capability (a window into BAR 4).
 *
 * Guest RAM is a host buffer at guest-physical RAM_BASE, above 4 GiB, so
 * the high halves of the queue addresses matter.  Hostile cases: queue
 * sizes and parts the device must refuse at enable, a ring broken at run
 * time (DEVICE_NEEDS_RESET and a configuration interrupt), notifies before
 * DRIVER_OK and writes to a live queue's fields (ignored).  The legacy
 * interface of the same function is tested in test_dev_virtio.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pretrans/base/le.h"
#include "runtime/bus/iobus.h"
#include "runtime/dev/pci.h"
#include "runtime/dev/virtio_blk.h"
#include "runtime/dev/virtq.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM_BASE 0x100000000ull
#define RAM_SIZE (1u << 20)
#define NSECT	 64
#define QN	 64 /* the driver shrinks the queue from 256 */
#define DESC	 (RAM_BASE + 0x10000)
#define AVAIL	 (RAM_BASE + 0x11000)
#define USED	 (RAM_BASE + 0x12000)
#define HDR	 (RAM_BASE + 0x40000)
#define DATA	 (RAM_BASE + 0x41000)
#define STAT	 (RAM_BASE + 0x48000)

struct fixture {
	uint8_t *ram;
	struct dev_dma dma;
	char path[64];
	struct iobus *bus;
	struct pci_host *host;
	struct virtio_blk *blk;
	bool irq;
	uint64_t mem;	 /* BAR 4 */
	unsigned cap[6]; /* config offset of each cfg_type's capability */
	uint16_t avail_idx;
};

static void *ram_map(void *opaque, gpa_t gpa, size_t len, bool write)
{
	(void)write;
	struct fixture *f = opaque;
	if (gpa < RAM_BASE || gpa - RAM_BASE >= RAM_SIZE || len > RAM_SIZE - (gpa - RAM_BASE))
		return NULL;
	return f->ram + (gpa - RAM_BASE);
}

static uint8_t *ram(struct fixture *f, uint64_t gpa)
{
	return f->ram + (gpa - RAM_BASE);
}

static void irq_sink(void *opaque, unsigned pin, bool level)
{
	(void)pin;
	((struct fixture *)opaque)->irq = level;
}

static void fill(uint8_t *buf, uint64_t sector)
{
	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)(sector * 7 + i);
}

static void cfg_addr(struct fixture *f, unsigned reg)
{
	iobus_pio_out(f->bus, PCI_CONFIG_ADDRESS, 4, 0x80000000u | VIRTIO_BLK_SLOT << 11 | reg);
}

static uint32_t cfg_read(struct fixture *f, unsigned reg, unsigned size)
{
	uint32_t v;
	cfg_addr(f, reg & ~3u);
	iobus_pio_in(f->bus, (uint16_t)(PCI_CONFIG_DATA + (reg & 3)), size, &v);
	return v;
}

static void cfg_write(struct fixture *f, unsigned reg, unsigned size, uint32_t v)
{
	cfg_addr(f, reg & ~3u);
	iobus_pio_out(f->bus, (uint16_t)(PCI_CONFIG_DATA + (reg & 3)), size, v);
}

static uint64_t rd(struct fixture *f, unsigned off, unsigned size)
{
	uint64_t v;
	assert_int_equal(iobus_mmio_read(f->bus, f->mem + off, size, &v), BT_OK);
	return v;
}

static void wr(struct fixture *f, unsigned off, unsigned size, uint64_t v)
{
	assert_int_equal(iobus_mmio_write(f->bus, f->mem + off, size, v), BT_OK);
}

static uint8_t status(struct fixture *f)
{
	return (uint8_t)rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_STATUS, 1);
}

static void set_status(struct fixture *f, uint8_t v)
{
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_STATUS, 1, v);
}

/* vp_iowrite64_twopart: the low half, then the high half. */
static void wr64(struct fixture *f, unsigned field, uint64_t v)
{
	wr(f, VIRTIO_MODERN_COMMON + field, 4, (uint32_t)v);
	wr(f, VIRTIO_MODERN_COMMON + field + 4, 4, v >> 32);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM_SIZE);
	f->dma = (struct dev_dma){.map = ram_map, .opaque = f};
	snprintf(f->path, sizeof(f->path), "/tmp/test-virtio-modern-%d.img", getpid());
	int fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	uint8_t buf[512];
	for (uint64_t s = 0; s < NSECT; s++) {
		fill(buf, s);
		assert_int_equal(pwrite(fd, buf, 512, (off_t)(s * 512)), 512);
	}
	close(fd);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(pci_host_create(f->bus, &f->host), BT_OK);
	irq_line_init(pci_host_irq(f->host, 0), irq_sink, f, PCI_IRQ_A);
	assert_int_equal(
	    virtio_blk_create(f->host, f->bus, VIRTIO_BLK_SLOT, &f->dma, f->path, false, &f->blk),
	    BT_OK);
	/* pci_enable_device + pci_set_master */
	cfg_write(f, PCI_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	virtio_blk_destroy(f->blk);
	pci_host_destroy(f->host);
	iobus_destroy(f->bus);
	unlink(f->path);
	free(f->ram);
	free(f);
	return 0;
}

/* Linux's pci_find_capability / pci_find_next_capability: the status
 * bit, the pointer at 0x34, at most 48 hops, offsets below 0x40 end it. */
static unsigned next_cap(struct fixture *f, unsigned pos, uint8_t id)
{
	for (unsigned ttl = 48; ttl--;) {
		if (pos < PCI_CAP_START)
			break;
		pos &= ~3u;
		uint16_t ent = (uint16_t)cfg_read(f, pos, 2);
		if ((ent & 0xff) == 0xff)
			break;
		if ((ent & 0xff) == id)
			return pos;
		pos = ent >> 8;
	}
	return 0;
}

/* virtio_pci_find_capability, then vp_modern_map_capability's checks for
 * each structure (minimum length, alignment, inside the BAR). */
static void find_caps(struct fixture *f)
{
	assert_true(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* BAR 4: a 32-bit memory BAR of 16 KiB (write all ones, read back) */
	uint32_t bar = cfg_read(f, PCI_BAR0 + 4 * VIRTIO_BLK_MEM_BAR, 4);
	assert_int_equal(bar & 1, 0);
	f->mem = bar & ~0xfu;
	assert_true(f->mem >= PCI_MEM_BASE && f->mem + VIRTIO_BLK_MEM_SIZE <= PCI_MEM_END);
	cfg_write(f, PCI_BAR0 + 4 * VIRTIO_BLK_MEM_BAR, 4, ~0u);
	assert_int_equal(cfg_read(f, PCI_BAR0 + 4 * VIRTIO_BLK_MEM_BAR, 4) & ~0xfu,
			 ~(uint32_t)(VIRTIO_BLK_MEM_SIZE - 1));
	cfg_write(f, PCI_BAR0 + 4 * VIRTIO_BLK_MEM_BAR, 4, bar);
	/* BAR 0 is still the legacy I/O BAR */
	assert_int_equal(cfg_read(f, PCI_BAR0, 4) & 1, 1);

	static const struct {
		unsigned minlen, align;
	} need[5] = {{0, 0}, {VIRTIO_COMMON_SIZE, 4}, {2, 2}, {1, 1}, {0, 4}};
	const unsigned want_len[6] = {0, 16, 20, 16, 16, VIRTIO_PCI_CFG_CAP_BYTES};
	unsigned found = 0;
	for (unsigned pos = next_cap(f, cfg_read(f, PCI_CAPABILITY_LIST, 1), PCI_CAP_ID_VNDR); pos;
	     pos = next_cap(f, cfg_read(f, pos + 1, 1), PCI_CAP_ID_VNDR)) {
		assert_true(pos >= PCI_CAP_START && pos % 4 == 0);
		uint8_t type = (uint8_t)cfg_read(f, pos + 3, 1);
		uint8_t bar_no = (uint8_t)cfg_read(f, pos + 4, 1);
		uint32_t offset = cfg_read(f, pos + 8, 4), length = cfg_read(f, pos + 12, 4);
		assert_true(type >= 1 && type <= 5);
		assert_int_equal(found & 1u << type, 0); /* one of each */
		found |= 1u << type;
		f->cap[type] = pos;
		assert_int_equal(cfg_read(f, pos + 2, 1), want_len[type]); /* cap_len */
		if (type == VIRTIO_PCI_CAP_PCI_CFG)
			continue; /* its bar, offset and length are the driver's */
		assert_int_equal(bar_no, VIRTIO_BLK_MEM_BAR);
		assert_true(length >= need[type].minlen && length > 0);
		assert_int_equal(offset % need[type].align, 0);
		assert_true((uint64_t)offset + length <= VIRTIO_BLK_MEM_SIZE);
	}
	assert_int_equal(found, 0x3e); /* common, notify, ISR, device, PCI access */
	assert_int_equal(cfg_read(f, f->cap[VIRTIO_PCI_CAP_COMMON_CFG] + 8, 4),
			 VIRTIO_MODERN_COMMON);
	assert_int_equal(cfg_read(f, f->cap[VIRTIO_PCI_CAP_ISR_CFG] + 8, 4), VIRTIO_MODERN_ISR);
	assert_int_equal(cfg_read(f, f->cap[VIRTIO_PCI_CAP_DEVICE_CFG] + 8, 4),
			 VIRTIO_MODERN_DEVICE);
	unsigned n = f->cap[VIRTIO_PCI_CAP_NOTIFY_CFG];
	assert_int_equal(cfg_read(f, n + 2, 1), 20);
	assert_int_equal(cfg_read(f, n + 8, 4), VIRTIO_MODERN_NOTIFY);
	assert_int_equal(cfg_read(f, n + 16, 4), VIRTIO_NOTIFY_MULTIPLIER);
}

/* vp_reset, then ACKNOWLEDGE | DRIVER, the device features. */
static uint64_t hello(struct fixture *f)
{
	set_status(f, 0);
	assert_int_equal(status(f), 0); /* the reset is done at once */
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	uint64_t feat = 0;
	for (unsigned w = 0; w < 2; w++) {
		wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_DFSELECT, 4, w);
		feat |= rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_DF, 4) << (32 * w);
	}
	return feat;
}

static void set_features(struct fixture *f, uint64_t feat)
{
	for (unsigned w = 0; w < 2; w++) {
		wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GFSELECT, 4, w);
		wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GF, 4, (uint32_t)(feat >> (32 * w)));
	}
}

/* Features negotiated: FEATURES_OK set and read back (virtio_features_ok). */
static void negotiate(struct fixture *f)
{
	uint64_t feat = hello(f);
	set_features(f, feat);
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	set_status(f, s);
	assert_int_equal(status(f), s);
}

/* setup_vq: select, size (shrunk to QN), MSI-X NO_VECTOR, addresses,
 * notify offset; then vp_modern_find_vqs enables; then DRIVER_OK. */
static void queue_up(struct fixture *f, bool driver_ok)
{
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SELECT, 2, 0);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2),
			 VIRTIO_BLK_QUEUE_SIZE);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2), 0);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2, QN);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_MSIX, 2),
			 VIRTIO_MSI_NO_VECTOR);
	wr64(f, VIRTIO_COMMON_Q_DESC, DESC);
	wr64(f, VIRTIO_COMMON_Q_DRIVER, AVAIL);
	wr64(f, VIRTIO_COMMON_Q_DEVICE, USED);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_NOFF, 2), 0);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2, 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2), 1);
	if (driver_ok)
		set_status(f, status(f) | VIRTIO_STATUS_DRIVER_OK);
}

static uint16_t used_idx(struct fixture *f)
{
	return (uint16_t)bt_get16(ram(f, USED) + 2);
}

static void put_desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = ram(f, DESC) + 16 * i;
	bt_put64(d, addr);
	bt_put32(d + 8, len);
	bt_put16(d + 12, flags);
	bt_put16(d + 14, next);
}

/* A read of len bytes from sector, published (not notified). */
static void publish_read(struct fixture *f, uint64_t sector, uint32_t len)
{
	bt_put32(ram(f, HDR), VIRTIO_BLK_T_IN);
	bt_put32(ram(f, HDR) + 4, 0);
	bt_put64(ram(f, HDR) + 8, sector);
	*ram(f, STAT) = 0xee;
	put_desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, DATA, len, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	put_desc(f, 2, STAT, 1, VIRTQ_DESC_F_WRITE, 0);
	bt_put16(ram(f, AVAIL) + 4 + 2 * (f->avail_idx % QN), 0);
	f->avail_idx++;
	bt_put16(ram(f, AVAIL) + 2, f->avail_idx);
}

static void notify(struct fixture *f)
{
	wr(f, VIRTIO_MODERN_NOTIFY, 2, 0); /* vp_notify: iowrite16(index) */
}

static void test_caps(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	/* the same function is the transitional 1af4:1001, block subsystem */
	assert_int_equal(cfg_read(f, 0, 4), 0x10011af4u);
	assert_int_equal(cfg_read(f, PCI_SUBSYS_ID, 2), 2);
	/* the capabilities are read-only */
	unsigned c = f->cap[VIRTIO_PCI_CAP_COMMON_CFG];
	cfg_write(f, c + 8, 4, 0x1234);
	cfg_write(f, PCI_CAPABILITY_LIST, 1, 0);
	assert_int_equal(cfg_read(f, c + 8, 4), VIRTIO_MODERN_COMMON);
	assert_int_equal(cfg_read(f, PCI_CAPABILITY_LIST, 1), 0x40);
	/* memory decode off: BAR 4 is gone from the bus (reads all ones) */
	cfg_write(f, PCI_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MASTER);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_NUMQ, 2), 0xffff);
	cfg_write(f, PCI_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_NUMQ, 2), 1);
}

static void test_cap_overflow(void **state)
{
	struct fixture *f = *state;
	struct pci_device *d;
	const struct pci_id id = {.vendor = 0x1234, .device = 1};
	assert_int_equal(pci_device_add(f->host, 9, &id, NULL, NULL, &d), BT_OK);
	uint8_t body[64] = {PCI_CAP_ID_VNDR, 0xaa, 64};
	uint8_t at = 0;
	for (unsigned i = 0; i < 3; i++) { /* 0x40, 0x80, 0xc0: the space is full */
		assert_int_equal(pci_device_add_cap(d, body, sizeof(body), &at), BT_OK);
		assert_int_equal(at, 0x40 + 0x40 * i);
	}
	assert_int_equal(pci_device_add_cap(d, body, 2, &at), BT_ERR_RANGE);
	assert_int_equal(pci_device_add_cap(d, body, 1, &at), BT_ERR_INVALID);
	pci_device_remove(d);
}

static void test_features(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	uint64_t feat = hello(f);
	assert_true(feat >> VIRTIO_F_VERSION_1 & 1);
	assert_true(feat & 1u << VIRTIO_BLK_F_FLUSH);
	assert_false(feat & 1u << VIRTIO_BLK_F_RO);
	assert_false(feat & 1u << 28); /* no indirect descriptors */
	assert_false(feat & 1u << 29); /* no event index */
	/* a window past the 64 bits reads 0 */
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_DFSELECT, 4, 2);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_DF, 4), 0);
	/* the legacy register shows the same low 32 bits */
	uint32_t io = cfg_read(f, PCI_BAR0, 4) & ~3u;
	uint32_t legacy;
	iobus_pio_in(f->bus, (uint16_t)(io + VIRTIO_PCI_HOST_FEATURES), 4, &legacy);
	assert_int_equal(legacy, (uint32_t)feat);

	const uint8_t want = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	/* a driver without VERSION_1 is refused FEATURES_OK */
	set_features(f, feat & 0xffffffffu);
	set_status(f, want | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(status(f), want);
	/* so is one accepting a feature not offered */
	hello(f);
	set_features(f, feat | 1u << 28);
	set_status(f, want | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(status(f), want);
	/* the offered set is accepted, and read back through the windows */
	hello(f);
	set_features(f, feat);
	set_status(f, want | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(status(f), want | VIRTIO_STATUS_FEATURES_OK);
	/* after FEATURES_OK the driver's features no longer change */
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GFSELECT, 4, 0);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GF, 4, 0);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GF, 4), (uint32_t)feat);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GFSELECT, 4, 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GF, 4), feat >> 32);
	/* a write of the wrong width is dropped */
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_DFSELECT, 4, 0);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_DFSELECT, 2, 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_DFSELECT, 4), 0);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_NUMQ, 2), 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
}

static void test_queue_io(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	negotiate(f);
	/* queue 1 does not exist */
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SELECT, 2, 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2), 0);
	queue_up(f, false);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_DESC + 4, 4), DESC >> 32);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_DEVICE, 8), USED);
	/* a live queue's fields do not change */
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2, 8);
	wr64(f, VIRTIO_COMMON_Q_DESC, RAM_BASE);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2), QN);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_DESC, 8), DESC);

	/* before DRIVER_OK a notify consumes nothing */
	publish_read(f, 3, 2 * 512);
	notify(f);
	assert_int_equal(used_idx(f), 0);
	set_status(f, status(f) | VIRTIO_STATUS_DRIVER_OK);
	notify(f);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(*ram(f, STAT), VIRTIO_BLK_S_OK);
	uint8_t want[512];
	for (unsigned s = 0; s < 2; s++) {
		fill(want, 3 + s);
		assert_memory_equal(ram(f, DATA) + 512 * s, want, 512);
	}
	assert_int_equal(bt_get32(ram(f, USED) + 4), 0);	   /* head */
	assert_int_equal(bt_get32(ram(f, USED) + 8), 2 * 512 + 1); /* data + status */
	/* the ISR: bit 0 with INTx up; reading clears both */
	assert_true(f->irq);
	assert_int_equal(rd(f, VIRTIO_MODERN_ISR, 1), 1);
	assert_false(f->irq);
	assert_int_equal(rd(f, VIRTIO_MODERN_ISR, 1), 0);
	/* a notify for another queue index does nothing */
	publish_read(f, 5, 512);
	wr(f, VIRTIO_MODERN_NOTIFY, 2, 1);
	assert_int_equal(used_idx(f), 1);
	notify(f);
	assert_int_equal(used_idx(f), 2);
	fill(want, 5);
	assert_memory_equal(ram(f, DATA), want, 512);
}

static void test_device_config(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	/* vp_get: an 8-byte field as two 4-byte reads; 8 bytes whole too */
	uint64_t cap = rd(f, VIRTIO_MODERN_DEVICE, 4) | rd(f, VIRTIO_MODERN_DEVICE + 4, 4) << 32;
	assert_int_equal(cap, NSECT);
	assert_int_equal(rd(f, VIRTIO_MODERN_DEVICE, 8), NSECT);
	assert_int_equal(rd(f, VIRTIO_MODERN_DEVICE + 8, 4), VIRTIO_BLK_SIZE_MAX);
	assert_int_equal(rd(f, VIRTIO_MODERN_DEVICE + 12, 4), VIRTIO_BLK_SEG_MAX);
	assert_int_equal(rd(f, VIRTIO_MODERN_DEVICE + 20, 4), 512);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_CFGGEN, 1), 0);
	/* read-only, and nothing past its 36 bytes */
	wr(f, VIRTIO_MODERN_DEVICE, 4, 0xdead);
	assert_int_equal(rd(f, VIRTIO_MODERN_DEVICE, 8), NSECT);
	assert_int_equal(rd(f, VIRTIO_MODERN_DEVICE + 36, 4), 0);
}

/* queue_enable with a bad queue: refused, DEVICE_NEEDS_RESET; a reset
 * brings the device back. */
static void bad_enable(struct fixture *f, uint16_t size, uint64_t desc, uint64_t avail,
		       uint64_t used)
{
	negotiate(f);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2, size);
	wr64(f, VIRTIO_COMMON_Q_DESC, desc);
	wr64(f, VIRTIO_COMMON_Q_DRIVER, avail);
	wr64(f, VIRTIO_COMMON_Q_DEVICE, used);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2, 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2), 0);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
	/* the driver cannot clear the bit; DRIVER_OK does not serve the queue */
	set_status(f, status(f) & ~VIRTIO_STATUS_NEEDS_RESET);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
	set_status(f, 0);
	assert_int_equal(status(f), 0);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2),
			 VIRTIO_BLK_QUEUE_SIZE);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_DESC, 8), 0);
}

static void test_queue_refused(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	bad_enable(f, 48, DESC, AVAIL, USED);			 /* not a power of two */
	bad_enable(f, 512, DESC, AVAIL, USED);			 /* above the maximum */
	bad_enable(f, 0, DESC, AVAIL, USED);			 /* no queue */
	bad_enable(f, QN, DESC + 8, AVAIL, USED);		 /* descriptors: 16 */
	bad_enable(f, QN, DESC, AVAIL + 1, USED);		 /* available ring: 2 */
	bad_enable(f, QN, DESC, AVAIL, USED + 2);		 /* used ring: 4 */
	bad_enable(f, QN, 0x10000, AVAIL, USED);		 /* below RAM (low half only) */
	bad_enable(f, QN, DESC, AVAIL, RAM_BASE + RAM_SIZE - 8); /* runs off RAM */
	bad_enable(f, QN, ~0ull - 15, AVAIL, USED);		 /* wraps */
	/* after all that, a good queue works */
	negotiate(f);
	queue_up(f, true);
	publish_read(f, 1, 512);
	notify(f);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(*ram(f, STAT), VIRTIO_BLK_S_OK);
}

static void test_broken_ring(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	negotiate(f);
	queue_up(f, true);
	/* a head beyond the table */
	bt_put16(ram(f, AVAIL) + 4, QN);
	bt_put16(ram(f, AVAIL) + 2, 1);
	notify(f);
	assert_int_equal(used_idx(f), 0);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(f->irq); /* a configuration-change interrupt */
	assert_int_equal(rd(f, VIRTIO_MODERN_ISR, 1), 2);
	assert_false(f->irq);
	/* the queue stays stopped, even for a good chain */
	f->avail_idx = 1;
	publish_read(f, 2, 512);
	notify(f);
	assert_int_equal(used_idx(f), 0);
	/* a reset through the legacy interface resets the modern state too */
	uint32_t io = cfg_read(f, PCI_BAR0, 4) & ~3u;
	iobus_pio_out(f->bus, (uint16_t)(io + VIRTIO_PCI_STATUS), 1, 0);
	assert_int_equal(status(f), 0);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2), 0);
	/* and the driver starts again */
	memset(ram(f, AVAIL), 0, 0x1000);
	memset(ram(f, USED), 0, 0x1000);
	f->avail_idx = 0;
	negotiate(f);
	queue_up(f, true);
	publish_read(f, 2, 512);
	notify(f);
	assert_int_equal(used_idx(f), 1);
	uint8_t want[512];
	fill(want, 2);
	assert_memory_equal(ram(f, DATA), want, 512);
}

static void test_reset(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	negotiate(f);
	queue_up(f, true);
	publish_read(f, 0, 512);
	notify(f);
	assert_true(f->irq);
	set_status(f, 0);
	/* everything back to its reset value, at once */
	assert_int_equal(status(f), 0);
	assert_false(f->irq);
	assert_int_equal(rd(f, VIRTIO_MODERN_ISR, 1), 0);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_SIZE, 2),
			 VIRTIO_BLK_QUEUE_SIZE);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_DRIVER, 8), 0);
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GFSELECT, 4, 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_GF, 4), 0);
	/* a notify on the reset device does nothing */
	publish_read(f, 0, 512);
	notify(f);
	assert_int_equal(used_idx(f), 1);
}

/* The PCI configuration access capability: set bar, length, offset;
 * then pci_cfg_data is a window into BAR 4. */
static void window(struct fixture *f, uint8_t bar, uint32_t len, uint32_t off)
{
	unsigned c = f->cap[VIRTIO_PCI_CAP_PCI_CFG];
	cfg_write(f, c + 4, 1, bar);
	cfg_write(f, c + 12, 4, len);
	cfg_write(f, c + 8, 4, off);
}

static void test_cfg_access(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	unsigned data = f->cap[VIRTIO_PCI_CAP_PCI_CFG] + 16;
	/* the status byte, read and written through configuration space */
	window(f, VIRTIO_BLK_MEM_BAR, 1, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_STATUS);
	assert_int_equal(cfg_read(f, data, 4), 0);
	cfg_write(f, data, 4, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(cfg_read(f, data, 4), VIRTIO_STATUS_ACKNOWLEDGE);
	/* a 4-byte read of the device config: the capacity's low half */
	window(f, VIRTIO_BLK_MEM_BAR, 4, VIRTIO_MODERN_DEVICE);
	assert_int_equal(cfg_read(f, data, 4), NSECT);
	/* a 2-byte read of num_queues */
	window(f, VIRTIO_BLK_MEM_BAR, 2, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_NUMQ);
	assert_int_equal(cfg_read(f, data, 4), 1);
	/* the ISR read through it clears the ISR as any read does */
	negotiate(f);
	queue_up(f, true);
	publish_read(f, 4, 512);
	window(f, VIRTIO_BLK_MEM_BAR, 2, VIRTIO_MODERN_NOTIFY);
	cfg_write(f, data, 4, 0); /* a notify through configuration space */
	assert_int_equal(used_idx(f), 1);
	assert_true(f->irq);
	window(f, VIRTIO_BLK_MEM_BAR, 1, VIRTIO_MODERN_ISR);
	assert_int_equal(cfg_read(f, data, 1), 1);
	assert_false(f->irq);
	/* refused: another BAR, a length of 3 or 8, misaligned, outside the
	 * BAR; the data keeps its last value and nothing is written */
	window(f, VIRTIO_BLK_MEM_BAR, 4, VIRTIO_MODERN_DEVICE);
	assert_int_equal(cfg_read(f, data, 4), NSECT);
	const struct {
		uint8_t bar;
		uint32_t len, off;
	} bad[] = {
	    {0, 1, VIRTIO_PCI_STATUS},
	    {VIRTIO_BLK_MEM_BAR, 3, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_STATUS},
	    {VIRTIO_BLK_MEM_BAR, 8, VIRTIO_MODERN_COMMON},
	    {VIRTIO_BLK_MEM_BAR, 4, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_NUMQ}, /* 2-aligned */
	    {VIRTIO_BLK_MEM_BAR, 4, VIRTIO_BLK_MEM_SIZE},
	    {VIRTIO_BLK_MEM_BAR, 4, ~0u - 1}};
	uint8_t before = status(f);
	assert_int_not_equal(before, 0);
	uint32_t last = NSECT;
	for (unsigned i = 0; i < BT_ARRAY_SIZE(bad); i++) {
		window(f, bad[i].bar, bad[i].len, bad[i].off);
		assert_int_equal(cfg_read(f, data, 4), last);
		cfg_write(f, data, 4, 0); /* 0 to the status would reset the device */
		last = 0;
		assert_int_equal(status(f), before);
	}
}

/* A guest mixing the interfaces: the one that set the queue last owns
 * it, and the other's notify does nothing. */
static void test_mixed(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	negotiate(f);
	queue_up(f, true);
	uint16_t io = (uint16_t)(cfg_read(f, PCI_BAR0, 4) & ~3u);
	/* a legacy queue at PFN (RAM_BASE + 0x20000) / 4096 takes over */
	iobus_pio_out(f->bus, (uint16_t)(io + VIRTIO_PCI_QUEUE_PFN), 4,
		      (uint32_t)((RAM_BASE + 0x20000) >> 12));
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2), 0);
	publish_read(f, 6, 512); /* in the modern rings */
	notify(f);
	assert_int_equal(used_idx(f), 0);
	/* and the modern interface takes it back: the legacy PFN reads 0 */
	wr(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2, 1);
	assert_int_equal(rd(f, VIRTIO_MODERN_COMMON + VIRTIO_COMMON_Q_ENABLE, 2),
			 0); /* live: DRIVER_OK */
	set_status(f, 0);
	negotiate(f);
	iobus_pio_out(f->bus, (uint16_t)(io + VIRTIO_PCI_QUEUE_PFN), 4,
		      (uint32_t)((RAM_BASE + 0x20000) >> 12));
	f->avail_idx = 0;
	queue_up(f, true);
	uint32_t pfn;
	iobus_pio_in(f->bus, (uint16_t)(io + VIRTIO_PCI_QUEUE_PFN), 4, &pfn);
	assert_int_equal(pfn, 0);
	notify(f); /* the request published above, index 1 */
	assert_int_equal(used_idx(f), 1);
	uint8_t want[512];
	fill(want, 6);
	assert_memory_equal(ram(f, DATA), want, 512);
}

/* xorshift64: the same sequence every run */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A hostile guest at random: 40 epochs of 1,000 accesses each, every
 * size, aligned or not, to BAR 4 (weighted to the common configuration,
 * notify and ISR), to the legacy ports, to the configuration access
 * window, random bytes in the rings and well-formed requests among them.
 * Each epoch starts from a clean setup, so the request path is reached
 * and broken again and again.  After each access INTx equals the PCI
 * status bit; the epochs must both complete requests and break the queue
 * (else the test tests nothing); at the end the image has its size, and
 * a reset and a clean start work. */
static void test_random_guest(void **state)
{
	struct fixture *f = *state;
	find_caps(f);
	uint16_t io = (uint16_t)(cfg_read(f, PCI_BAR0, 4) & ~3u);
	unsigned cc = f->cap[VIRTIO_PCI_CAP_PCI_CFG];
	static const unsigned sizes[] = {1, 2, 4, 8};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned completed = 0, broken = 0;
	bool seen_broken = false;
	for (unsigned epoch = 0; epoch < 40; epoch++) {
		memset(f->ram, 0, 0x50000);
		f->avail_idx = 0;
		cfg_write(f, PCI_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER);
		negotiate(f);
		queue_up(f, true);
		for (unsigned i = 0; i < 1000; i++) {
			uint64_t r = rnd(&x), v = rnd(&x);
			unsigned size = sizes[r & 3];
			unsigned off;
			switch ((r >> 2) % 10) {
			case 0: /* the common configuration */
				off = VIRTIO_MODERN_COMMON + (unsigned)((r >> 8) % 0x40);
				break;
			case 1:
				off = (unsigned)((r >> 8) % VIRTIO_BLK_MEM_SIZE) & ~7u;
				break;
			case 2:
			case 3: /* a request, sometimes beyond the disk or odd-sized */
				publish_read(f, (v >> 8) % (NSECT + 8),
					     (uint32_t)(512 * (v % 8) + ((v >> 4) & 1)));
				off = VIRTIO_MODERN_NOTIFY;
				size = 2;
				v = (r >> 40) % 16 ? 0 : v;
				break;
			case 4: /* a random byte in the last chain, the available
				 * ring or the header, and the chain published again */
				if ((r >> 8) % 4 == 0)
					*ram(f, AVAIL + (v >> 8) % 8) = (uint8_t)(v >> 16);
				else if ((r >> 8) % 4 == 1)
					*ram(f, HDR + (v >> 8) % 16) = (uint8_t)(v >> 16);
				else
					*ram(f, DESC + (v >> 8) % 48) = (uint8_t)(v >> 16);
				bt_put16(ram(f, AVAIL) + 4 + 2 * (f->avail_idx % QN), 0);
				f->avail_idx++;
				bt_put16(ram(f, AVAIL) + 2, f->avail_idx);
				off = VIRTIO_MODERN_NOTIFY;
				size = 2;
				v = 0;
				break;
			case 5: /* the legacy interface */
				if ((r >> 8) & 1)
					iobus_pio_out(f->bus, (uint16_t)(io + (r >> 9) % 0x40),
						      1u << (r >> 20) % 3, (uint32_t)v);
				else
					iobus_pio_in(f->bus, (uint16_t)(io + (r >> 9) % 0x40),
						     1u << (r >> 20) % 3, &(uint32_t){0});
				continue;
			case 6: /* the configuration access capability */
				cfg_write(f, cc + 4 + (unsigned)((r >> 8) % 16),
					  1u << (r >> 20) % 3, (uint32_t)v);
				continue;
			default:
				off = VIRTIO_MODERN_ISR;
				break;
			}
			if (off + size > VIRTIO_BLK_MEM_SIZE)
				off = VIRTIO_BLK_MEM_SIZE - size;
			if (off == VIRTIO_MODERN_NOTIFY || (r >> 30) & 1)
				wr(f, off, size, v);
			else
				rd(f, off, size);
			assert_int_equal(!!(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_INTX), f->irq);
			seen_broken |= (status(f) & VIRTIO_STATUS_NEEDS_RESET) != 0;
		}
		completed += used_idx(f);
		broken += seen_broken;
		seen_broken = false;
	}
	print_message("random guest: %u requests completed, %u of 40 epochs broke the queue\n",
		      completed, broken);
	assert_true(completed > 100);
	assert_true(broken > 5);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, NSECT * 512);
	/* whatever state it is in, a reset and a clean start work */
	memset(f->ram, 0, 0x50000);
	f->avail_idx = 0;
	set_status(f, 0);
	assert_int_equal(status(f), 0);
	assert_false(f->irq);
	negotiate(f);
	queue_up(f, true);
	publish_read(f, 9, 512);
	notify(f);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(*ram(f, STAT), VIRTIO_BLK_S_OK);
	uint8_t want[512];
	fill(want, 9);
	assert_memory_equal(ram(f, DATA), want, 512);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap_overflow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_features, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_io, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_broken_ring, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cfg_access, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mixed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_guest, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
