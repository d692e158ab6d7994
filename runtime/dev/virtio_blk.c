/*
 * virtio-blk, transitional virtio-pci transport (see virtio_blk.h).  Owns
 * the image fd, the PCI function with its two BARs and five capabilities,
 * their bus registrations, queue 0 and the ISR.
 *
 * Device states (the driver's status byte and queue 0):
 *
 *   RESET (status 0, queue unset, queue_size = VIRTIO_BLK_QUEUE_SIZE)
 *     legacy:  --PFN write--> queue set up [blk_io_write]
 *     modern:  --FEATURES_OK--> granted iff VERSION_1 and only offered
 *              features [blk_set_status]
 *              --queue_enable = 1--> queue set up, or failed [blk_queue_enable]
 *              --DRIVER_OK--> notifies are served
 *     --notify--> requests run synchronously, used ring written, ISR bit 0
 *     and INTx raised (unless the driver set NO_INTERRUPT) [blk_notify]
 *   a broken queue --> stopped; modern: DEVICE_NEEDS_RESET, ISR bit 1 [blk_fail]
 *   any --status 0 (either interface)--> RESET [blk_reset]
 *
 * Invariants
 *  1. intx == (isr != 0); reading the ISR (either interface) clears both.
 *  2. Each BAR is registered on the bus iff the PCI function says it
 *     decodes (pci.c invariant 2, through blk_bar_map).
 *  3. Every request's sectors are checked against the disk before the
 *     host I/O; guest RAM is reached only through dma (virtq.h).
 *  4. q_enable == 1 only with vq set up from q_size / q_desc / q_avail /
 *     q_used, which do not change while it is 1; pfn != 0 only with vq
 *     set up from it (the interface that set the queue last owns it);
 *     status has FEATURES_OK through the common config only if
 *     guest_features passed blk_features_ok.
 */
#include "runtime/dev/virtio_blk.h"

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"
#include "runtime/dev/diskimg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define SECTOR	     512
#define CONFIG_BYTES 36
#define REQ_HEADER   16
#define MODERN_BYTES 16 /* a virtio_pci_cap; the notify one adds 4 */

struct virtio_blk {
	struct iobus *bus;
	const struct dev_dma *dma;
	struct pci_device *pci;
	int fd;
	bool read_only;
	uint64_t sectors;
	uint64_t host_features, guest_features;
	uint32_t dfselect, gfselect; /* modern feature windows */
	uint16_t queue_sel;
	uint8_t status, isr;
	bool mapped, mem_mapped;
	uint16_t io_base;
	uint64_t mem_base;
	struct virtq vq;
	uint32_t pfn;			  /* legacy queue address */
	uint16_t q_size, q_enable;	  /* modern queue 0 */
	uint64_t q_desc, q_avail, q_used; /* modern queue 0 */
	uint8_t cfg_cap;		  /* the PCI_CFG capability's offset */
	uint8_t config[CONFIG_BYTES];
	struct virtq_seg segs[VIRTIO_BLK_QUEUE_SIZE];
};

static void blk_update_irq(struct virtio_blk *b)
{
	pci_device_set_intx(b->pci, b->isr != 0);
}

static void blk_reset(struct virtio_blk *b)
{
	b->guest_features = 0;
	b->dfselect = b->gfselect = 0;
	b->queue_sel = 0;
	b->status = 0;
	b->isr = 0;
	b->pfn = 0;
	b->q_size = VIRTIO_BLK_QUEUE_SIZE;
	b->q_enable = 0;
	b->q_desc = b->q_avail = b->q_used = 0;
	virtq_reset(&b->vq);
	blk_update_irq(b);
}

/* The driver negotiated the modern interface. */
static bool blk_modern(const struct virtio_blk *b)
{
	return (b->status & VIRTIO_STATUS_FEATURES_OK) &&
	       (b->guest_features >> VIRTIO_F_VERSION_1 & 1);
}

/* The queue is broken (virtq.h): a modern driver also hears of it
 * through DEVICE_NEEDS_RESET and a configuration-change interrupt
 * ("Device Status Field"); a legacy one has no such bit. */
static void blk_fail(struct virtio_blk *b)
{
	b->vq.broken = true;
	if (!blk_modern(b) || (b->status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	b->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (b->status & VIRTIO_STATUS_DRIVER_OK) {
		b->isr |= 2;
		blk_update_irq(b);
	}
}

/* "Feature Bits": FEATURES_OK only for a subset of the offered features;
 * through the modern interface VIRTIO_F_VERSION_1 is required (a driver
 * without it is a legacy driver and must use BAR 0). */
static bool blk_features_ok(const struct virtio_blk *b)
{
	return !(b->guest_features & ~b->host_features) &&
	       (b->guest_features >> VIRTIO_F_VERSION_1 & 1);
}

static void blk_set_status(struct virtio_blk *b, uint8_t v, bool modern)
{
	if (v == 0) {
		blk_reset(b);
		return;
	}
	if (modern && (v & VIRTIO_STATUS_FEATURES_OK) && !(b->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !blk_features_ok(b))
		v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	/* DEVICE_NEEDS_RESET is the device's to set; only a reset clears it */
	v = (uint8_t)((v & ~VIRTIO_STATUS_NEEDS_RESET) | (b->status & VIRTIO_STATUS_NEEDS_RESET));
	b->status = v;
}

/* Host I/O of one request's data, straight between the image and guest
 * RAM: one preadv/pwritev over the buffers (adjacent ones merged), again
 * for the rest after a short transfer.  false on a failed host I/O or
 * end of file. */
static bool blk_rw(struct virtio_blk *b, const struct virtq_elem *e, bool in, uint64_t pos,
		   uint64_t skip, uint64_t len)
{
	struct iovec iov[VIRTIO_BLK_QUEUE_SIZE];
	unsigned n = 0;
	uint64_t want = len;
	for (unsigned k = 0; k < e->nseg && want; k++) {
		const struct virtq_seg *s = &e->seg[k];
		if (s->write != in)
			continue;
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		uint64_t l = BT_MIN(want, s->len - skip);
		uint8_t *p = b->dma->map(b->dma->opaque, s->gpa + skip, l, in);
		if (!p)
			return false;
		if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p)
			iov[n - 1].iov_len += l;
		else
			iov[n++] = (struct iovec){.iov_base = p, .iov_len = l};
		want -= l;
		skip = 0;
	}
	if (want)
		return false;
	for (unsigned i = 0; len;) {
		ssize_t r = in ? preadv(b->fd, iov + i, (int)(n - i), (off_t)pos)
			       : pwritev(b->fd, iov + i, (int)(n - i), (off_t)pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		pos += (uint64_t)r;
		len -= (uint64_t)r;
		for (size_t done = (size_t)r; done;) { /* skip what was transferred */
			size_t t = BT_MIN(done, iov[i].iov_len);
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + t;
			iov[i].iov_len -= t;
			done -= t;
			if (!iov[i].iov_len)
				i++;
		}
	}
	return true;
}

/* Run one request; returns the bytes written into its writable buffers
 * (the status byte included), or -1 if the chain cannot be answered. */
static int64_t blk_request(struct virtio_blk *b, const struct virtq_elem *e)
{
	uint8_t hdr[REQ_HEADER];
	if (e->in_bytes < 1 || virtq_elem_read(e, b->dma, 0, hdr, sizeof(hdr)) != sizeof(hdr))
		return -1;
	uint32_t type = bt_get32(hdr);
	uint64_t sector = bt_get64(hdr + 8);
	uint64_t in_data = e->in_bytes - 1; /* the last writable byte is the status */
	uint64_t out_data = e->out_bytes - REQ_HEADER;
	uint8_t st = VIRTIO_BLK_S_OK;
	uint64_t written = 0;
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = type == VIRTIO_BLK_T_IN;
		uint64_t len = in ? in_data : out_data;
		if ((!in && b->read_only) || len % SECTOR || len > VIRTIO_BLK_MAX_REQ ||
		    sector > b->sectors || len / SECTOR > b->sectors - sector ||
		    !blk_rw(b, e, in, sector * SECTOR, in ? 0 : REQ_HEADER, len))
			st = VIRTIO_BLK_S_IOERR;
		else if (in)
			written = len;
		break;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (!b->read_only && fdatasync(b->fd) != 0)
			st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES] = {0};
		strncpy(id, VIRTIO_BLK_DEFAULT_ID, sizeof(id));
		written = virtq_elem_write(e, b->dma, 0, id, BT_MIN(in_data, sizeof(id)));
		break;
	}
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (virtq_elem_write(e, b->dma, in_data, &st, 1) != 1)
		return -1;
	return (int64_t)written + 1;
}

static void blk_notify(struct virtio_blk *b)
{
	if (!(pci_device_command(b->pci) & PCI_CMD_MASTER))
		return; /* no DMA without bus mastering */
	bool pushed = false;
	struct virtq_elem e = {.seg = b->segs, .cap = BT_ARRAY_SIZE(b->segs)};
	/* at most one queue's worth per notify: virtq_pop stops at the index
	 * the guest published, and a broken queue returns at once */
	for (unsigned n = 0; n < VIRTIO_BLK_QUEUE_SIZE; n++) {
		enum virtq_result r = virtq_pop(&b->vq, b->dma, &e);
		if (r == VIRTQ_BROKEN)
			blk_fail(b);
		if (r != VIRTQ_GOT)
			break;
		int64_t w = blk_request(b, &e);
		if (w < 0) {
			bt_warn(LOG_DEV,
				"virtio-blk: a request without its header or status "
				"byte; the queue stops until the driver resets the device");
			blk_fail(b);
			break;
		}
		pushed |= virtq_push(&b->vq, b->dma, e.head, (uint32_t)w);
		if (b->vq.broken) /* the used ring is not RAM */
			blk_fail(b);
	}
	if (pushed && virtq_should_notify(&b->vq, b->dma)) {
		b->isr |= 1;
		blk_update_irq(b);
	}
}

static uint32_t blk_reg_read(struct virtio_blk *b, unsigned off)
{
	switch (off) {
	case VIRTIO_PCI_HOST_FEATURES: /* bits 0-31: VERSION_1 is not there */
		return (uint32_t)b->host_features;
	case VIRTIO_PCI_GUEST_FEATURES:
		return (uint32_t)b->guest_features;
	case VIRTIO_PCI_QUEUE_PFN:
		return b->queue_sel == 0 ? b->pfn : 0;
	case VIRTIO_PCI_QUEUE_NUM:
		return b->queue_sel == 0 ? VIRTIO_BLK_QUEUE_SIZE : 0;
	case VIRTIO_PCI_QUEUE_SEL:
		return b->queue_sel;
	case VIRTIO_PCI_STATUS:
		return b->status;
	default:
		return 0;
	}
}

static uint8_t blk_isr_read(struct virtio_blk *b)
{
	uint8_t v = b->isr;
	b->isr = 0;
	blk_update_irq(b);
	return v;
}

static void blk_io_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct virtio_blk *b = opaque;
	if (off == VIRTIO_PCI_ISR) {
		*value = blk_isr_read(b);
		return;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = off + i;
		uint8_t byte = 0;
		if (o >= VIRTIO_PCI_CONFIG) {
			if (o - VIRTIO_PCI_CONFIG < CONFIG_BYTES)
				byte = b->config[o - VIRTIO_PCI_CONFIG];
		} else {
			/* registers: 0x00, 0x04, 0x08 are 32-bit, 0x0c.. 16-bit,
			 * 0x12 8-bit; a narrower read takes the low bytes */
			unsigned reg = o < 0x0c	  ? (unsigned)(o & ~3u)
				       : o < 0x12 ? (unsigned)(o & ~1u)
						  : (unsigned)o;
			byte = (uint8_t)(blk_reg_read(b, reg) >> (8 * (o - reg)));
		}
		v |= (uint64_t)byte << (8 * i);
	}
	*value = v;
}

static void blk_io_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct virtio_blk *b = opaque;
	uint32_t v = (uint32_t)value;
	switch (off) {
	case VIRTIO_PCI_GUEST_FEATURES:
		b->guest_features = v & (uint32_t)b->host_features;
		break;
	case VIRTIO_PCI_QUEUE_PFN:
		if (b->queue_sel != 0)
			break;
		b->pfn = v;
		b->q_enable = 0; /* the queue is the legacy one now (invariant 4) */
		if (!v)
			virtq_reset(&b->vq);
		else
			virtq_setup_legacy(&b->vq, VIRTIO_BLK_QUEUE_SIZE,
					   (gpa_t)v * VIRTQ_LEGACY_ALIGN);
		break;
	case VIRTIO_PCI_QUEUE_SEL:
		b->queue_sel = (uint16_t)v;
		break;
	case VIRTIO_PCI_QUEUE_NOTIFY:
		if ((uint16_t)v == 0)
			blk_notify(b);
		break;
	case VIRTIO_PCI_STATUS:
		blk_set_status(b, (uint8_t)v, false);
		break;
	default:
		break; /* read-only registers and the read-only config */
	}
}

/* ------------------------------------------------------------------ */
/* Modern interface: BAR 4                                              */

/* The common configuration structure as the driver reads it now. */
static void blk_common_image(const struct virtio_blk *b, uint8_t *c)
{
	bool q0 = b->queue_sel == 0;
	memset(c, 0, VIRTIO_COMMON_SIZE);
	bt_put32(c + VIRTIO_COMMON_DFSELECT, b->dfselect);
	if (b->dfselect < 2)
		bt_put32(c + VIRTIO_COMMON_DF, (uint32_t)(b->host_features >> (32 * b->dfselect)));
	bt_put32(c + VIRTIO_COMMON_GFSELECT, b->gfselect);
	if (b->gfselect < 2)
		bt_put32(c + VIRTIO_COMMON_GF, (uint32_t)(b->guest_features >> (32 * b->gfselect)));
	bt_put16(c + VIRTIO_COMMON_MSIX, VIRTIO_MSI_NO_VECTOR);
	bt_put16(c + VIRTIO_COMMON_NUMQ, 1);
	c[VIRTIO_COMMON_STATUS] = b->status;
	c[VIRTIO_COMMON_CFGGEN] = 0; /* the configuration never changes */
	bt_put16(c + VIRTIO_COMMON_Q_SELECT, b->queue_sel);
	bt_put16(c + VIRTIO_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	if (!q0)
		return; /* size 0: no such queue */
	bt_put16(c + VIRTIO_COMMON_Q_SIZE, b->q_size);
	bt_put16(c + VIRTIO_COMMON_Q_ENABLE, b->q_enable);
	bt_put16(c + VIRTIO_COMMON_Q_NOFF, 0);
	bt_put64(c + VIRTIO_COMMON_Q_DESC, b->q_desc);
	bt_put64(c + VIRTIO_COMMON_Q_DRIVER, b->q_avail);
	bt_put64(c + VIRTIO_COMMON_Q_DEVICE, b->q_used);
}

/* queue_enable = 1: the queue's size and parts are checked once here
 * (and every access again in virtq.c); a bad one fails the device. */
static void blk_queue_enable(struct virtio_blk *b)
{
	uint16_t n = b->q_size;
	const char *why = NULL;
	b->pfn = 0; /* the queue is the modern one now (invariant 4) */
	if (n > VIRTIO_BLK_QUEUE_SIZE ||
	    !virtq_setup_split(&b->vq, n, b->q_desc, b->q_avail, b->q_used))
		why =
		    "a size that is not a power of two up to 256, or a part misaligned or wrapping";
	else if (!b->dma->map(b->dma->opaque, b->q_desc, virtq_desc_size(n), false) ||
		 !b->dma->map(b->dma->opaque, b->q_avail, virtq_avail_size(n), false) ||
		 !b->dma->map(b->dma->opaque, b->q_used, virtq_used_size(n), false))
		why = "a part outside guest RAM";
	if (why) {
		bt_warn(LOG_DEV,
			"virtio-blk: the driver enabled queue 0 with %s (size %u, desc %#llx, "
			"driver %#llx, device %#llx); the device needs a reset",
			why, n, (unsigned long long)b->q_desc, (unsigned long long)b->q_avail,
			(unsigned long long)b->q_used);
		blk_fail(b);
		return;
	}
	b->q_enable = 1;
}

/* A write to one of the 64-bit queue addresses: whole, or a 32-bit half
 * (Linux writes the low half, then the high one). */
static void blk_set_addr(uint64_t *a, unsigned off, unsigned size, uint64_t v)
{
	if (size == 8 && off == 0)
		*a = v;
	else if (size == 4 && (off == 0 || off == 4))
		*a = (*a & ~(0xffffffffull << (8 * off))) | (uint64_t)(uint32_t)v << (8 * off);
}

/* "PCI Device Layout": each field written with its own width (64-bit ones
 * also as two 32-bit halves); any other write is dropped. */
static void blk_common_write(struct virtio_blk *b, unsigned off, unsigned size, uint64_t v)
{
	bool q0 = b->queue_sel == 0;
	/* queue fields are the driver's until it enables the queue or the device */
	bool qset = q0 && !b->q_enable && !(b->status & VIRTIO_STATUS_DRIVER_OK);
	unsigned shift = 32 * (b->gfselect & 1);
	switch (off) {
	case VIRTIO_COMMON_DFSELECT:
		if (size == 4)
			b->dfselect = (uint32_t)v;
		return;
	case VIRTIO_COMMON_GFSELECT:
		if (size == 4)
			b->gfselect = (uint32_t)v;
		return;
	case VIRTIO_COMMON_GF:
		if (size == 4 && b->gfselect < 2 && !(b->status & VIRTIO_STATUS_FEATURES_OK))
			b->guest_features = (b->guest_features & ~(0xffffffffull << shift)) |
					    (uint64_t)(uint32_t)v << shift;
		return;
	case VIRTIO_COMMON_STATUS:
		if (size == 1)
			blk_set_status(b, (uint8_t)v, true);
		return;
	case VIRTIO_COMMON_Q_SELECT:
		if (size == 2)
			b->queue_sel = (uint16_t)v;
		return;
	case VIRTIO_COMMON_Q_SIZE:
		if (size == 2 && qset)
			b->q_size = (uint16_t)v;
		return;
	case VIRTIO_COMMON_Q_ENABLE:
		/* 1 enables; 0 is not the driver's to write (no RING_RESET) */
		if (size == 2 && qset && (uint16_t)v == 1)
			blk_queue_enable(b);
		return;
	default:
		break; /* MSI-X vectors (none), read-only fields, the addresses */
	}
	if (!qset)
		return;
	if (off - VIRTIO_COMMON_Q_DESC < 8)
		blk_set_addr(&b->q_desc, off - VIRTIO_COMMON_Q_DESC, size, v);
	else if (off - VIRTIO_COMMON_Q_DRIVER < 8)
		blk_set_addr(&b->q_avail, off - VIRTIO_COMMON_Q_DRIVER, size, v);
	else if (off - VIRTIO_COMMON_Q_DEVICE < 8)
		blk_set_addr(&b->q_used, off - VIRTIO_COMMON_Q_DEVICE, size, v);
}

static void blk_mem_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct virtio_blk *b = opaque;
	unsigned o = (unsigned)(off % VIRTIO_MODERN_REGION);
	uint8_t image[VIRTIO_COMMON_SIZE];
	const uint8_t *src = NULL;
	unsigned len = 0;
	switch (off - o) {
	case VIRTIO_MODERN_COMMON:
		blk_common_image(b, image);
		src = image;
		len = VIRTIO_COMMON_SIZE;
		break;
	case VIRTIO_MODERN_ISR:
		*value = o == 0 ? blk_isr_read(b) : 0;
		return;
	case VIRTIO_MODERN_DEVICE:
		src = b->config;
		len = CONFIG_BYTES;
		break;
	default:
		break; /* notify reads 0 */
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		if (o + i < len)
			v |= (uint64_t)src[o + i] << (8 * i);
	*value = v;
}

static void blk_mem_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct virtio_blk *b = opaque;
	unsigned o = (unsigned)(off % VIRTIO_MODERN_REGION);
	if (off - o == VIRTIO_MODERN_COMMON) {
		blk_common_write(b, o, size, value);
	} else if (off == VIRTIO_MODERN_NOTIFY) {
		/* the queue's index (no NOTIFICATION_DATA); served after DRIVER_OK */
		if ((uint16_t)value == 0 && b->q_enable && (b->status & VIRTIO_STATUS_DRIVER_OK))
			blk_notify(b);
	}
	/* the ISR and the block device's config are read-only */
}

static const struct iobus_ops blk_mem_ops = {
    .read = blk_mem_read,
    .write = blk_mem_write,
    .name = "virtio-blk-modern",
};

/* pci_cfg_data was read (refresh it) or written (forward it): an access
 * of cap.length bytes at cap.offset in cap.bar, checked here as the
 * driver is told to keep it ("PCI configuration access capability"). */
static void blk_cfg_access(void *opaque, unsigned reg, unsigned size, bool write)
{
	(void)reg;
	(void)size;
	struct virtio_blk *b = opaque;
	uint8_t c[VIRTIO_PCI_CFG_CAP_BYTES];
	pci_device_cfg_load(b->pci, b->cfg_cap, c, sizeof(c));
	uint32_t off = bt_get32(c + 8), len = bt_get32(c + 12);
	if (c[4] != VIRTIO_BLK_MEM_BAR || (len != 1 && len != 2 && len != 4) || off % len ||
	    off > VIRTIO_BLK_MEM_SIZE - len)
		return;
	if (write) {
		blk_mem_write(b, off, len, bt_get32(c + MODERN_BYTES) & (~0u >> (32 - 8 * len)));
		return;
	}
	uint64_t v;
	blk_mem_read(b, off, len, &v);
	bt_put32(c + MODERN_BYTES, (uint32_t)v);
	pci_device_cfg_store(b->pci, b->cfg_cap + MODERN_BYTES, c + MODERN_BYTES, 4);
}

/* The PCI configuration access capability: bar, offset, length and the
 * data are the driver's to write. */
static enum bt_status blk_add_cfg_cap(struct virtio_blk *b)
{
	uint8_t c[VIRTIO_PCI_CFG_CAP_BYTES] = {PCI_CAP_ID_VNDR, 0, sizeof(c),
					       VIRTIO_PCI_CAP_PCI_CFG};
	uint8_t mask[VIRTIO_PCI_CFG_CAP_BYTES] = {0};
	mask[4] = 0xff;		    /* bar */
	memset(mask + 8, 0xff, 12); /* offset, length, pci_cfg_data */
	BT_TRY(pci_device_add_cap(b->pci, c, sizeof(c), &b->cfg_cap));
	BT_TRY(pci_device_cfg_set_wmask(b->pci, b->cfg_cap, mask, sizeof(mask)));
	return pci_device_cfg_window(b->pci, b->cfg_cap + MODERN_BYTES, 4);
}

/* The vendor-specific capabilities naming the four structures (section
 * 4.1.4), in QEMU's order, then the configuration access one. */
static enum bt_status blk_add_caps(struct virtio_blk *b)
{
	static const struct {
		uint8_t type;
		uint32_t offset, length;
	} caps[] = {
	    {VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_MODERN_COMMON, VIRTIO_COMMON_SIZE},
	    {VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_MODERN_ISR, 1},
	    {VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_MODERN_DEVICE, CONFIG_BYTES},
	    {VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_MODERN_NOTIFY, VIRTIO_NOTIFY_MULTIPLIER},
	};
	for (unsigned i = 0; i < BT_ARRAY_SIZE(caps); i++) {
		uint8_t c[MODERN_BYTES + 4] = {0};
		unsigned len = MODERN_BYTES;
		if (caps[i].type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			bt_put32(c + MODERN_BYTES, VIRTIO_NOTIFY_MULTIPLIER);
			len += 4;
		}
		c[0] = PCI_CAP_ID_VNDR;
		c[2] = (uint8_t)len;
		c[3] = caps[i].type;
		c[4] = VIRTIO_BLK_MEM_BAR;
		bt_put32(c + 8, caps[i].offset);
		bt_put32(c + 12, caps[i].length);
		uint8_t at;
		BT_TRY(pci_device_add_cap(b->pci, c, len, &at));
	}
	return blk_add_cfg_cap(b);
}

static const struct iobus_ops blk_io_ops = {
    .read = blk_io_read,
    .write = blk_io_write,
    .name = "virtio-blk",
};

static void blk_bar_map(void *opaque, unsigned bar, bool mapped, uint64_t base)
{
	struct virtio_blk *b = opaque;
	if (bar == VIRTIO_BLK_MEM_BAR) {
		if (b->mem_mapped) {
			iobus_unregister_mmio(b->bus, b->mem_base);
			b->mem_mapped = false;
		}
		if (!mapped)
			return;
		if (iobus_register_mmio(b->bus, base, VIRTIO_BLK_MEM_SIZE, &blk_mem_ops, b) !=
		    BT_OK) {
			bt_warn(LOG_DEV,
				"virtio-blk: BAR 4 at %#llx overlaps another device: not decoded",
				(unsigned long long)base);
			return;
		}
		b->mem_mapped = true;
		b->mem_base = base;
		return;
	}
	if (bar != 0)
		return;
	if (b->mapped) {
		iobus_unregister_pio(b->bus, b->io_base);
		b->mapped = false;
	}
	if (!mapped)
		return;
	if (iobus_register_pio(b->bus, (uint16_t)base, VIRTIO_BLK_BAR_SIZE, &blk_io_ops, b) !=
	    BT_OK) {
		bt_warn(LOG_DEV,
			"virtio-blk: BAR 0 at port %#llx overlaps another device: not "
			"decoded",
			(unsigned long long)base);
		return;
	}
	b->mapped = true;
	b->io_base = (uint16_t)base;
}

static const struct pci_device_ops blk_pci_ops = {.bar_map = blk_bar_map,
						  .cfg_access = blk_cfg_access};

static void blk_config(struct virtio_blk *b)
{
	uint8_t *c = b->config;
	bt_put64(c + 0, b->sectors);
	bt_put32(c + 8, VIRTIO_BLK_SIZE_MAX);
	bt_put32(c + 12, VIRTIO_BLK_SEG_MAX);
	uint64_t cyls = b->sectors / (16 * 63);
	bt_put16(c + 16, (uint16_t)BT_MIN(cyls, 0xffff));
	c[18] = 16;
	c[19] = 63;
	bt_put32(c + 20, SECTOR);
}

enum bt_status virtio_blk_create(struct pci_host *host, struct iobus *bus, unsigned slot,
				 const struct dev_dma *dma, const char *image_path, bool read_only,
				 struct virtio_blk **out)
{
	if (!host || !bus || !dma || !dma->map || !image_path || !out)
		return BT_ERR_INVALID;
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return BT_ERR_NOMEM;
	b->bus = bus;
	b->dma = dma;
	b->read_only = read_only;
	b->vq.name = "virtio-blk";
	uint64_t bytes;
	enum bt_status s =
	    diskimg_open("virtio-blk", image_path, read_only, SECTOR, &b->fd, &bytes);
	if (s != BT_OK)
		goto err_free;
	if (bytes % SECTOR)
		bt_warn(LOG_DEV,
			"virtio-blk: disk image %s: trailing %llu bytes beyond the last full "
			"sector are ignored",
			image_path, (unsigned long long)(bytes % SECTOR));
	b->sectors = bytes / SECTOR;
	b->host_features = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
			   1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH |
			   (read_only ? 1ull << VIRTIO_BLK_F_RO : 0) | 1ull << VIRTIO_F_VERSION_1;
	b->q_size = VIRTIO_BLK_QUEUE_SIZE;
	blk_config(b);
	const struct pci_id id = {.vendor = 0x1af4,
				  .device = 0x1001, /* transitional virtio-blk */
				  .revision = 0,    /* legacy ABI version 0 */
				  .class_code = 0x010000,
				  .subsys_vendor = 0x1af4,
				  .subsys_id = 2, /* VIRTIO_ID_BLOCK */
				  .int_pin = 1};
	s = pci_device_add(host, slot, &id, &blk_pci_ops, b, &b->pci);
	if (s != BT_OK)
		goto err_close;
	s = pci_device_add_bar(b->pci, 0, VIRTIO_BLK_BAR_SIZE, true);
	if (s == BT_OK)
		s = pci_device_add_bar(b->pci, VIRTIO_BLK_MEM_BAR, VIRTIO_BLK_MEM_SIZE, false);
	if (s == BT_OK)
		s = blk_add_caps(b);
	if (s != BT_OK)
		goto err_remove;
	*out = b;
	return BT_OK;

err_remove:
	pci_device_remove(b->pci);
err_close:
	close(b->fd);
err_free:
	free(b);
	return s;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	pci_device_remove(b->pci); /* unmaps the BARs through blk_bar_map */
	if (!b->read_only)
		fdatasync(b->fd);
	close(b->fd);
	free(b);
}

uint64_t virtio_blk_sectors(const struct virtio_blk *b)
{
	return b->sectors;
}
