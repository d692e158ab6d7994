/*
 * virtio-blk, legacy virtio-pci transport (see virtio_blk.h).  Owns the
 * image fd, the PCI function, its I/O BAR registration, queue 0 and the
 * ISR.
 *
 * Device states (the driver's status byte):
 *
 *   RESET (status 0, queue unset) --PFN write--> queue set up
 *     --notify--> requests run synchronously, used ring written, ISR bit 0
 *     and INTx raised (unless the driver set NO_INTERRUPT)
 *   any --status 0--> RESET [blk_reset]; a broken queue stays broken until
 *     then
 *
 * Invariants
 *  1. intx == (isr != 0); reading the ISR clears both.
 *  2. The BAR is registered on the bus iff the PCI function says it
 *     decodes (pci.c invariant 2, through blk_bar_map).
 *  3. Every request's sectors are checked against the disk before the
 *     host I/O; guest RAM is reached only through dma (virtq.h).
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

#define SECTOR		 512
#define CONFIG_BYTES	 36
#define STATUS_DRIVER_OK 4
#define REQ_HEADER	 16

struct virtio_blk {
	struct iobus *bus;
	const struct dev_dma *dma;
	struct pci_device *pci;
	int fd;
	bool read_only;
	uint64_t sectors;
	uint32_t host_features, guest_features;
	uint16_t queue_sel;
	uint8_t status, isr;
	bool mapped;
	uint16_t io_base;
	struct virtq vq;
	uint32_t pfn;
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
	b->queue_sel = 0;
	b->status = 0;
	b->isr = 0;
	b->pfn = 0;
	virtq_reset(&b->vq);
	blk_update_irq(b);
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
		if (virtq_pop(&b->vq, b->dma, &e) != VIRTQ_GOT)
			break;
		int64_t w = blk_request(b, &e);
		if (w < 0) {
			b->vq.broken = true;
			bt_warn(LOG_DEV,
				"virtio-blk: a request without its header or status "
				"byte; the queue stops until the driver resets the device");
			break;
		}
		pushed |= virtq_push(&b->vq, b->dma, e.head, (uint32_t)w);
	}
	if (pushed && virtq_should_notify(&b->vq, b->dma)) {
		b->isr |= 1;
		blk_update_irq(b);
	}
}

static uint32_t blk_reg_read(struct virtio_blk *b, unsigned off)
{
	switch (off) {
	case VIRTIO_PCI_HOST_FEATURES:
		return b->host_features;
	case VIRTIO_PCI_GUEST_FEATURES:
		return b->guest_features;
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

static void blk_io_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct virtio_blk *b = opaque;
	if (off == VIRTIO_PCI_ISR) {
		*value = b->isr;
		b->isr = 0;
		blk_update_irq(b);
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
		b->guest_features = v & b->host_features;
		break;
	case VIRTIO_PCI_QUEUE_PFN:
		if (b->queue_sel != 0)
			break;
		b->pfn = v;
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
		if ((uint8_t)v == 0)
			blk_reset(b);
		else
			b->status = (uint8_t)v;
		break;
	default:
		break; /* read-only registers and the read-only config */
	}
}

static const struct iobus_ops blk_io_ops = {
    .read = blk_io_read,
    .write = blk_io_write,
    .name = "virtio-blk",
};

static void blk_bar_map(void *opaque, unsigned bar, bool mapped, uint64_t base)
{
	struct virtio_blk *b = opaque;
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

static const struct pci_device_ops blk_pci_ops = {.bar_map = blk_bar_map};

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
	b->host_features = 1u << VIRTIO_BLK_F_SIZE_MAX | 1u << VIRTIO_BLK_F_SEG_MAX |
			   1u << VIRTIO_BLK_F_BLK_SIZE | 1u << VIRTIO_BLK_F_FLUSH |
			   (read_only ? 1u << VIRTIO_BLK_F_RO : 0);
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
	pci_device_remove(b->pci); /* unmaps the BAR through blk_bar_map */
	if (!b->read_only)
		fdatasync(b->fd);
	close(b->fd);
	free(b);
}

uint64_t virtio_blk_sectors(const struct virtio_blk *b)
{
	return b->sectors;
}
