/*
 * Unit tests for split virtqueues and the legacy virtio-blk PCI disk.
 *
 * Guest RAM is a flat host buffer behind a dev_dma that refuses anything
 * outside it, so every hostile-chain case (indices beyond the table,
 * loops, buffers outside RAM or wrapping, zero and huge lengths, an
 * available index too far ahead, indirect descriptors, readable after
 * writable) is checked to break the queue without touching memory it must
 * not.  The disk is driven through the I/O bus as Linux's legacy
 * virtio_pci and virtio_blk drive it, on real temporary image files; the
 * image lock is checked from a second process.
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
#include <sys/wait.h>
#include <unistd.h>

#define RAM_SIZE (1u << 20)
#define QNUM	 8
#define QGPA	 0x10000 /* legacy rings: PFN 0x10 */

struct ram {
	uint8_t *mem;
	unsigned maps, write_maps;
};

static void *ram_map(void *opaque, gpa_t gpa, size_t len, bool write)
{
	struct ram *r = opaque;
	r->maps++;
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	if (write)
		r->write_maps++;
	return r->mem + gpa;
}

struct fixture {
	struct ram ram;
	struct dev_dma dma;
	struct virtq q;
	struct virtq_seg segs[QNUM];
	struct virtq_elem e;
	/* the disk */
	char path[64];
	struct iobus *bus;
	struct pci_host *host;
	struct virtio_blk *blk;
	bool irq;
	uint16_t io;
	uint16_t avail_idx;
};

static void irq_sink(void *opaque, unsigned pin, bool level)
{
	((struct fixture *)opaque)->irq = level;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->ram.mem = calloc(1, RAM_SIZE);
	f->dma = (struct dev_dma){.map = ram_map, .opaque = &f->ram};
	f->q.name = "test";
	assert_true(virtq_setup_legacy(&f->q, QNUM, QGPA));
	f->e = (struct virtq_elem){.seg = f->segs, .cap = QNUM};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->blk)
		virtio_blk_destroy(f->blk);
	if (f->host)
		pci_host_destroy(f->host);
	if (f->bus)
		iobus_destroy(f->bus);
	if (f->path[0])
		unlink(f->path);
	free(f->ram.mem);
	free(f);
	return 0;
}

/* Guest side of a queue at QGPA with QNUM entries (legacy layout). */
static void put_desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = f->ram.mem + QGPA + 16 * i;
	bt_put64(d, addr);
	bt_put32(d + 8, len);
	bt_put16(d + 12, flags);
	bt_put16(d + 14, next);
}

static void publish(struct fixture *f, uint16_t head)
{
	uint8_t *avail = f->ram.mem + QGPA + 16 * QNUM;
	bt_put16(avail + 4 + 2 * (f->avail_idx % QNUM), head);
	f->avail_idx++;
	bt_put16(avail + 2, f->avail_idx);
}

static uint16_t used_idx(struct fixture *f)
{
	uint8_t *used = f->ram.mem + f->q.used;
	return (uint16_t)(used[2] | used[3] << 8);
}

static void test_layout(void **state)
{
	struct fixture *f = *state;
	/* Linux's vring_init with align 4096: used at the next page */
	assert_int_equal(f->q.desc, QGPA);
	assert_int_equal(f->q.avail, QGPA + 16 * QNUM);
	assert_int_equal(f->q.used, QGPA + 4096);
	assert_int_equal(virtq_legacy_size(256), 2 * 4096 + 6 + 8 * 256);
	struct virtq q = {0};
	assert_false(virtq_setup_legacy(&q, 0, 0));
	assert_false(virtq_setup_legacy(&q, 3, 0));
	assert_true(virtq_setup_legacy(&q, 256, 0x5000));
}

static void test_chain(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_EMPTY);
	/* header (readable), zero-length (carries nothing), data and status
	 * (writable), in a scattered order of indices */
	put_desc(f, 5, 0x20000, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 2, 0x20100, 0, VIRTQ_DESC_F_NEXT, 7);
	put_desc(f, 7, 0x21000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	put_desc(f, 0, 0x20200, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 5);
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_GOT);
	assert_int_equal(f->e.head, 5);
	assert_int_equal(f->e.nseg, 3);
	assert_int_equal(f->e.out_bytes, 16);
	assert_int_equal(f->e.in_bytes, 513);
	assert_true(f->segs[1].write && f->segs[1].gpa == 0x21000);
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_EMPTY);

	/* copies across buffers */
	memset(f->ram.mem + 0x20000, 0xab, 16);
	uint8_t hdr[20];
	assert_int_equal(virtq_elem_read(&f->e, &f->dma, 0, hdr, sizeof(hdr)), 16);
	assert_int_equal(hdr[15], 0xab);
	uint8_t st = 0x5a;
	assert_int_equal(virtq_elem_write(&f->e, &f->dma, 512, &st, 1), 1);
	assert_int_equal(f->ram.mem[0x20200], 0x5a);
	assert_int_equal(virtq_elem_write(&f->e, &f->dma, 513, &st, 1), 0);

	assert_true(virtq_push(&f->q, &f->dma, 5, 513));
	assert_int_equal(used_idx(f), 1);
	uint8_t *el = f->ram.mem + f->q.used + 4;
	assert_int_equal(bt_get32(el), 5);
	assert_int_equal(bt_get32(el + 4), 513);
	assert_true(virtq_should_notify(&f->q, &f->dma));
	bt_put16(f->ram.mem + f->q.avail, 1); /* VRING_AVAIL_F_NO_INTERRUPT */
	assert_false(virtq_should_notify(&f->q, &f->dma));

	/* the ring wraps: QNUM more chains of one buffer each */
	for (unsigned i = 0; i < 2 * QNUM; i++) {
		put_desc(f, i % QNUM, 0x30000 + 64 * i, 64, 0, 0);
		publish(f, (uint16_t)(i % QNUM));
		assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_GOT);
		assert_int_equal(f->e.seg[0].gpa, 0x30000 + 64 * i);
		assert_true(virtq_push(&f->q, &f->dma, f->e.head, 0));
	}
	assert_int_equal(used_idx(f), 1 + 2 * QNUM);
}

/* One hostile chain at head 0: it must break the queue, and the queue
 * must stay broken (popping and pushing do nothing) until it is reset. */
static void expect_broken(struct fixture *f)
{
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_BROKEN);
	assert_true(f->q.broken);
	unsigned maps = f->ram.maps;
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_BROKEN);
	assert_false(virtq_push(&f->q, &f->dma, 0, 0));
	assert_int_equal(f->ram.maps, maps); /* touched nothing */
	assert_true(virtq_setup_legacy(&f->q, QNUM, QGPA));
	assert_false(f->q.broken);
	memset(f->ram.mem + QGPA, 0, 2 * 4096);
	f->avail_idx = 0;
}

static void test_hostile(void **state)
{
	struct fixture *f = *state;
	/* a head beyond the table */
	publish(f, QNUM);
	expect_broken(f);
	publish(f, 0xffff);
	expect_broken(f);
	/* next beyond the table */
	put_desc(f, 0, 0x20000, 16, VIRTQ_DESC_F_NEXT, QNUM);
	publish(f, 0);
	expect_broken(f);
	/* a loop: 0 -> 1 -> 0, and a descriptor pointing at itself */
	put_desc(f, 0, 0x20000, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, 0x20000, 16, VIRTQ_DESC_F_NEXT, 0);
	publish(f, 0);
	expect_broken(f);
	put_desc(f, 3, 0x20000, 0, VIRTQ_DESC_F_NEXT, 3);
	publish(f, 3);
	expect_broken(f);
	/* buffers outside RAM, wrapping the address space, huge */
	put_desc(f, 0, RAM_SIZE, 1, 0, 0);
	publish(f, 0);
	expect_broken(f);
	put_desc(f, 0, RAM_SIZE - 8, 16, 0, 0);
	publish(f, 0);
	expect_broken(f);
	put_desc(f, 0, ~0ull - 7, 16, 0, 0);
	publish(f, 0);
	expect_broken(f);
	put_desc(f, 0, 0x1000, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0);
	expect_broken(f);
	/* indirect (not negotiated) */
	put_desc(f, 0, 0x20000, 64, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f);
	/* readable after writable */
	put_desc(f, 0, 0x20000, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(f, 1, 0x20100, 16, 0, 0);
	publish(f, 0);
	expect_broken(f);
	/* the available index far ahead of the device */
	bt_put16(f->ram.mem + QGPA + 16 * QNUM + 2, QNUM + 1);
	expect_broken(f);
	/* a chain with more buffers than the caller takes */
	f->e.cap = 2;
	for (unsigned i = 0; i < 3; i++)
		put_desc(f, i, 0x20000 + 16 * i, 16, i < 2 ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	publish(f, 0);
	expect_broken(f);
	f->e.cap = QNUM;
	/* the rings themselves outside RAM */
	assert_true(virtq_setup_legacy(&f->q, QNUM, RAM_SIZE));
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_BROKEN);
	assert_true(virtq_setup_legacy(&f->q, 256, (gpa_t)0xfffff * 4096));
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_BROKEN);
	/* a zero-length-only chain is fine and carries nothing */
	assert_true(virtq_setup_legacy(&f->q, QNUM, QGPA));
	memset(f->ram.mem + QGPA, 0, 2 * 4096);
	f->avail_idx = 0;
	put_desc(f, 0, RAM_SIZE * 4ull, 0, 0, 0);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->dma, &f->e), VIRTQ_GOT);
	assert_int_equal(f->e.nseg, 0);
	assert_int_equal(f->ram.write_maps, 0); /* nothing above ever wrote RAM */
}

/* ------------------------------------------------------------------ */
/* virtio-blk through the bus                                           */

#define NSECT 64

static void fill(uint8_t *buf, uint64_t sector)
{
	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)(sector * 13 + i);
}

static void make_image(struct fixture *f)
{
	snprintf(f->path, sizeof(f->path), "/tmp/test-virtio-%d.img", getpid());
	int fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	uint8_t buf[512];
	for (uint64_t s = 0; s < NSECT; s++) {
		fill(buf, s);
		assert_int_equal(pwrite(fd, buf, 512, (off_t)(s * 512)), 512);
	}
	close(fd);
}

static void outl(struct fixture *f, unsigned reg, uint32_t v)
{
	assert_int_equal(iobus_pio_out(f->bus, (uint16_t)(f->io + reg), 4, v), BT_OK);
}

static void outw(struct fixture *f, unsigned reg, uint16_t v)
{
	assert_int_equal(iobus_pio_out(f->bus, (uint16_t)(f->io + reg), 2, v), BT_OK);
}

static void outb(struct fixture *f, unsigned reg, uint8_t v)
{
	assert_int_equal(iobus_pio_out(f->bus, (uint16_t)(f->io + reg), 1, v), BT_OK);
}

static uint32_t in(struct fixture *f, unsigned reg, unsigned size)
{
	uint32_t v;
	assert_int_equal(iobus_pio_in(f->bus, (uint16_t)(f->io + reg), size, &v), BT_OK);
	return v;
}

static void cfg_write16(struct fixture *f, unsigned reg, uint16_t v)
{
	iobus_pio_out(f->bus, PCI_CONFIG_ADDRESS, 4, 0x80000000u | VIRTIO_BLK_SLOT << 11 | reg);
	iobus_pio_out(f->bus, PCI_CONFIG_DATA, 2, v);
}

static uint32_t cfg_read32(struct fixture *f, unsigned reg)
{
	uint32_t v;
	iobus_pio_out(f->bus, PCI_CONFIG_ADDRESS, 4, 0x80000000u | VIRTIO_BLK_SLOT << 11 | reg);
	iobus_pio_in(f->bus, PCI_CONFIG_DATA, 4, &v);
	return v;
}

/* Linux: pci_enable_device + pci_set_master, then virtio_pci_legacy's
 * probe and vp_legacy setup_vq, virtio_blk's feature negotiation. */
static void blk_up(struct fixture *f, bool read_only)
{
	make_image(f);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(pci_host_create(f->bus, &f->host), BT_OK);
	irq_line_init(pci_host_irq(f->host, 0), irq_sink, f, PCI_IRQ_A);
	assert_int_equal(virtio_blk_create(f->host, f->bus, VIRTIO_BLK_SLOT, &f->dma, f->path,
					   read_only, &f->blk),
			 BT_OK);
	assert_int_equal(cfg_read32(f, 0), 0x10011af4u);
	assert_int_equal(cfg_read32(f, 0x2c), 0x00021af4u); /* subsystem: block */
	uint32_t bar = cfg_read32(f, PCI_BAR0);
	assert_int_equal(bar & 1, 1);
	f->io = (uint16_t)(bar & ~3u);
	cfg_write16(f, PCI_COMMAND, PCI_CMD_IO | PCI_CMD_MASTER);
	outb(f, VIRTIO_PCI_STATUS, 0);
	outb(f, VIRTIO_PCI_STATUS, 1 | 2); /* ACKNOWLEDGE | DRIVER */
	uint32_t feat = in(f, VIRTIO_PCI_HOST_FEATURES, 4);
	assert_true(feat & 1u << VIRTIO_BLK_F_FLUSH);
	assert_int_equal(!!(feat & 1u << VIRTIO_BLK_F_RO), read_only);
	outl(f, VIRTIO_PCI_GUEST_FEATURES, feat | 1u << 31);
	assert_int_equal(in(f, VIRTIO_PCI_GUEST_FEATURES, 4), feat); /* unoffered bit dropped */
	outw(f, VIRTIO_PCI_QUEUE_SEL, 1);
	assert_int_equal(in(f, VIRTIO_PCI_QUEUE_NUM, 2), 0); /* only queue 0 */
	outw(f, VIRTIO_PCI_QUEUE_SEL, 0);
	assert_int_equal(in(f, VIRTIO_PCI_QUEUE_NUM, 2), VIRTIO_BLK_QUEUE_SIZE);
	assert_int_equal(in(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	outl(f, VIRTIO_PCI_QUEUE_PFN, QGPA / 4096);
	outb(f, VIRTIO_PCI_STATUS, 1 | 2 | 4);
	/* the test's own view of the same rings, for put_desc / publish */
	assert_true(virtq_setup_legacy(&f->q, VIRTIO_BLK_QUEUE_SIZE, QGPA));
	/* config, byte by byte as vp_legacy_get reads it */
	uint64_t cap = 0;
	for (unsigned i = 0; i < 8; i++)
		cap |= (uint64_t)in(f, VIRTIO_PCI_CONFIG + i, 1) << (8 * i);
	assert_int_equal(cap, NSECT);
	assert_int_equal(in(f, VIRTIO_PCI_CONFIG + 12, 4), VIRTIO_BLK_SEG_MAX);
	assert_int_equal(in(f, VIRTIO_PCI_CONFIG + 20, 4), 512);
}

/* put_desc / publish on the device's 256-entry queue */
static void bput_desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next)
{
	uint8_t *d = f->ram.mem + QGPA + 16 * i;
	bt_put64(d, addr);
	bt_put32(d + 8, len);
	bt_put16(d + 12, flags);
	bt_put16(d + 14, next);
}

static void bpublish(struct fixture *f, uint16_t head)
{
	uint8_t *avail = f->ram.mem + f->q.avail;
	bt_put16(avail + 4 + 2 * (f->avail_idx % VIRTIO_BLK_QUEUE_SIZE), head);
	f->avail_idx++;
	bt_put16(avail + 2, f->avail_idx);
}

#define HDR  0x40000
#define DATA 0x41000
#define STAT 0x48000

/* One request: header, data (len bytes, device-writable for IN and
 * GET_ID), status; notify; returns the status byte. */
static uint8_t request(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len)
{
	uint8_t *h = f->ram.mem + HDR;
	bt_put32(h, type);
	bt_put32(h + 4, 0);
	bt_put64(h + 8, sector);
	bool in = type != VIRTIO_BLK_T_OUT;
	f->ram.mem[STAT] = 0xee;
	bput_desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	if (len) {
		bput_desc(f, 1, DATA, len, VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), 2);
		bput_desc(f, 2, STAT, 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		bput_desc(f, 1, STAT, 1, VIRTQ_DESC_F_WRITE, 0);
	}
	uint16_t before = used_idx(f);
	bpublish(f, 0);
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), (uint16_t)(before + 1));
	return f->ram.mem[STAT];
}

static void read_file(struct fixture *f, uint64_t sector, uint8_t *buf, size_t len)
{
	int fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)(sector * 512)), (ssize_t)len);
	close(fd);
}

static void test_blk_rw(void **state)
{
	struct fixture *f = *state;
	blk_up(f, false);
	uint8_t want[512];

	/* read 4 sectors from 10 */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 10, 4 * 512), VIRTIO_BLK_S_OK);
	for (unsigned s = 0; s < 4; s++) {
		fill(want, 10 + s);
		assert_memory_equal(f->ram.mem + DATA + 512 * s, want, 512);
	}
	uint8_t *el = f->ram.mem + f->q.used + 4;
	assert_int_equal(bt_get32(el + 4), 4 * 512 + 1); /* written: data + status */
	/* the interrupt: ISR bit 0, INTx up, reading the ISR drops both */
	assert_true(f->irq);
	assert_int_equal(in(f, VIRTIO_PCI_ISR, 1), 1);
	assert_false(f->irq);
	assert_int_equal(in(f, VIRTIO_PCI_ISR, 1), 0);

	/* write 2 sectors at 60, then flush: the file has them */
	memset(f->ram.mem + DATA, 0x77, 1024);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 60, 1024), VIRTIO_BLK_S_OK);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0), VIRTIO_BLK_S_OK);
	uint8_t got[1024];
	read_file(f, 60, got, sizeof(got));
	memset(want, 0x77, 512);
	assert_memory_equal(got, want, 512);
	assert_memory_equal(got + 512, want, 512);

	/* the end of the disk: the last sector reads, one past fails, so does
	 * a request running off the end or a partial sector */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, NSECT - 1, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, NSECT, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, NSECT - 1, 1024), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, ~0ull, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, 100), VIRTIO_BLK_S_IOERR);
	/* GET_ID and an unknown type */
	assert_int_equal(request(f, VIRTIO_BLK_T_GET_ID, 0, 20), VIRTIO_BLK_S_OK);
	assert_memory_equal(f->ram.mem + DATA, VIRTIO_BLK_DEFAULT_ID,
			    strlen(VIRTIO_BLK_DEFAULT_ID));
	assert_int_equal(request(f, 99, 0, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(virtio_blk_sectors(f->blk), NSECT);
}

static void test_blk_hostile(void **state)
{
	struct fixture *f = *state;
	blk_up(f, false);
	/* no bus mastering: the device does no DMA */
	cfg_write16(f, PCI_COMMAND, PCI_CMD_IO);
	bput_desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	bput_desc(f, 1, STAT, 1, VIRTQ_DESC_F_WRITE, 0);
	bt_put32(f->ram.mem + HDR, VIRTIO_BLK_T_FLUSH);
	bpublish(f, 0);
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), 0);
	cfg_write16(f, PCI_COMMAND, PCI_CMD_IO | PCI_CMD_MASTER);
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), 1);
	assert_true(in(f, VIRTIO_PCI_ISR, 1) & 1);

	/* a data buffer outside guest RAM: the queue breaks, nothing written */
	bt_put32(f->ram.mem + HDR, VIRTIO_BLK_T_IN);
	bput_desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	bput_desc(f, 1, RAM_SIZE - 512, 1024, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	bput_desc(f, 2, STAT, 1, VIRTQ_DESC_F_WRITE, 0);
	bpublish(f, 0);
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), 1);
	assert_false(f->irq);
	/* broken until the driver resets the device */
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), 1);
	outb(f, VIRTIO_PCI_STATUS, 0);
	assert_int_equal(in(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	assert_int_equal(in(f, VIRTIO_PCI_STATUS, 1), 0);

	/* after the reset: a request without a status byte, and one with a
	 * short header, break the queue too */
	memset(f->ram.mem + QGPA, 0, 3 * 4096);
	f->avail_idx = 0;
	outl(f, VIRTIO_PCI_QUEUE_PFN, QGPA / 4096);
	outb(f, VIRTIO_PCI_STATUS, 7);
	bput_desc(f, 0, HDR, 16, 0, 0);
	bpublish(f, 0);
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), 0);
	outb(f, VIRTIO_PCI_STATUS, 0);
	memset(f->ram.mem + QGPA, 0, 3 * 4096);
	f->avail_idx = 0;
	outl(f, VIRTIO_PCI_QUEUE_PFN, QGPA / 4096);
	bput_desc(f, 0, HDR, 8, VIRTQ_DESC_F_NEXT, 1);
	bput_desc(f, 1, STAT, 1, VIRTQ_DESC_F_WRITE, 0);
	bpublish(f, 0);
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), 0);
	/* a queue placed past the end of RAM */
	outb(f, VIRTIO_PCI_STATUS, 0);
	outl(f, VIRTIO_PCI_QUEUE_PFN, 0xffffffffu);
	outw(f, VIRTIO_PCI_QUEUE_NOTIFY, 0);
	assert_false(f->irq);
	assert_int_equal(used_idx(f), 0);
}

static void test_blk_read_only(void **state)
{
	struct fixture *f = *state;
	blk_up(f, true);
	memset(f->ram.mem + DATA, 0x11, 512);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 3, 512), VIRTIO_BLK_S_IOERR);
	uint8_t got[512], want[512];
	read_file(f, 3, got, sizeof(got));
	fill(want, 3);
	assert_memory_equal(got, want, 512);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 3, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(f->ram.mem + DATA, want, 512);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0), VIRTIO_BLK_S_OK);
}

/* The image lock, from a second process (POSIX locks are per process). */
static void test_blk_lock(void **state)
{
	struct fixture *f = *state;
	blk_up(f, false);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct iobus *bus;
		struct pci_host *host;
		struct virtio_blk *b;
		int rc = 0;
		if (iobus_create(&bus) != BT_OK || pci_host_create(bus, &host) != BT_OK)
			_exit(10);
		if (virtio_blk_create(host, bus, 5, &f->dma, f->path, false, &b) != BT_ERR_IO)
			rc |= 1; /* read-write: refused while the parent holds it */
		if (virtio_blk_create(host, bus, 5, &f->dma, f->path, true, &b) != BT_ERR_IO)
			rc |= 2; /* read-only: refused too (the parent writes) */
		if (virtio_blk_create(host, bus, 5, &f->dma, "/nonexistent/x.img", true, &b) !=
		    BT_ERR_IO)
			rc |= 4;
		_exit(rc);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blk_rw, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blk_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blk_read_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blk_lock, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
