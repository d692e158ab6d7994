/*
 * ATA PIO disk (see ata.h).  Owns the image file descriptor, the task-file
 * registers, the one-sector transfer buffer and INTRQ.
 *
 * Command states (status bits in brackets):
 *
 *   IDLE [DRDY] --read/identify cmd--> DATA_IN [DRDY|DRQ] --512 bytes read-->
 *        next sector: DATA_IN (+INTRQ) | last: IDLE
 *   IDLE --write cmd--> DATA_OUT [DRDY|DRQ] --512 bytes written--> pwrite:
 *        more: DATA_OUT (+INTRQ) | last: IDLE (+INTRQ)
 *   any --error--> IDLE [DRDY|ERR] (+INTRQ)
 *   any --SRST=1--> RESET [BSY] --SRST=0--> IDLE (signature loaded)
 *   [ata_command, ata_data_in/out, ata_sector_done, ata_control]
 *
 * Invariants
 *  1. xfer != NONE iff status has DRQ; then 0 <= pos < 512 in buf.
 *  2. Every sector is checked against sectors before its host I/O: a
 *     command starting beyond the end fails at once, one running off the
 *     end fails (IDNF) when it reaches the first missing sector.
 *  3. The IRQ line is intrq && !nIEN; reading the status register (not the
 *     alternate status) clears intrq.
 */
#include "runtime/dev/ata.h"

#include "pretrans/base/log.h"
#include "runtime/dev/diskimg.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_ERR	0x01
#define ST_DRQ	0x08
#define ST_DSC	0x10
#define ST_DF	0x20
#define ST_DRDY 0x40
#define ST_BSY	0x80

#define ER_AMNF 0x01
#define ER_ABRT 0x04
#define ER_IDNF 0x10
#define ER_UNC	0x40

#define CTL_NIEN 0x02
#define CTL_SRST 0x04
#define CTL_HOB	 0x80

#define DEV_LBA 0x40
#define DEV_DEV 0x10

enum ata_xfer { XFER_NONE, XFER_IN, XFER_OUT };

struct ata_regs {
	uint8_t feature, nsect, lbal, lbam, lbah;
};

struct ata {
	struct iobus *bus;
	int fd;
	bool read_only;
	bool write_cache;
	uint64_t sectors;
	unsigned heads, spt, cyls; /* current CHS translation */
	char serial[21];	   /* IDENTIFY strings, space padded by ata_put_string */
	char firmware[9];
	char model[41];

	struct ata_regs r, hob;
	uint8_t device, status, error, control;
	bool intrq;
	struct irq_line irq;

	enum ata_xfer xfer;
	uint8_t buf[ATA_SECTOR_SIZE];
	unsigned pos;
	uint64_t lba;	    /* sector in buf (or to be written from it) */
	uint32_t remaining; /* sectors left in the command, including buf's */
	uint8_t cmd;	    /* command in progress (for LBA48 error reporting) */
};

static void ata_update_irq(struct ata *a)
{
	irq_line_set(&a->irq, a->intrq && !(a->control & CTL_NIEN));
}

static void ata_raise(struct ata *a)
{
	a->intrq = true;
	ata_update_irq(a);
}

static bool ata_slave_selected(const struct ata *a)
{
	return a->device & DEV_DEV;
}

static void ata_set_lba_regs(struct ata *a, uint64_t lba, bool lba48)
{
	a->r.lbal = (uint8_t)lba;
	a->r.lbam = (uint8_t)(lba >> 8);
	a->r.lbah = (uint8_t)(lba >> 16);
	if (lba48) {
		a->hob.lbal = (uint8_t)(lba >> 24);
		a->hob.lbam = (uint8_t)(lba >> 32);
		a->hob.lbah = (uint8_t)(lba >> 40);
	} else {
		a->device = (uint8_t)((a->device & 0xf0) | ((lba >> 24) & 0x0f));
	}
}

static void ata_finish_error(struct ata *a, uint8_t err)
{
	a->xfer = XFER_NONE;
	a->error = err;
	a->status = ST_DRDY | ST_ERR;
	ata_raise(a);
}

static void ata_finish_ok(struct ata *a, bool irq)
{
	a->xfer = XFER_NONE;
	a->error = 0;
	a->status = ST_DRDY | ST_DSC;
	if (irq)
		ata_raise(a);
}

/* Device signature after reset / diagnostics: an ATA (non-packet) device. */
static void ata_signature(struct ata *a)
{
	a->r.nsect = 1;
	a->r.lbal = 1;
	a->r.lbam = 0;
	a->r.lbah = 0;
	a->hob = (struct ata_regs){0};
	a->device &= DEV_DEV;
	a->error = ER_AMNF; /* diagnostic code 01h: device 0 passed, device 1 absent */
}

static void ata_put_string(uint16_t *id, unsigned word, unsigned nwords, const char *s)
{
	size_t len = strlen(s);
	for (unsigned i = 0; i < 2 * nwords; i++) {
		uint8_t c = i < len ? (uint8_t)s[i] : ' ';
		if (i % 2 == 0)
			id[word + i / 2] = (uint16_t)(c << 8);
		else
			id[word + i / 2] |= c;
	}
}

static void ata_identify_data(struct ata *a)
{
	uint16_t id[256] = {0};
	uint64_t lba28 = a->sectors < 0x0fffffff ? a->sectors : 0x0fffffff;
	uint64_t chs = (uint64_t)a->cyls * a->heads * a->spt;
	id[0] = 0x0040; /* non-removable ATA device */
	id[1] = (uint16_t)a->cyls;
	id[3] = (uint16_t)a->heads;
	id[6] = (uint16_t)a->spt;
	ata_put_string(id, 10, 10, a->serial);
	ata_put_string(id, 23, 4, a->firmware);
	ata_put_string(id, 27, 20, a->model);
	id[47] = 0x8000; /* READ/WRITE MULTIPLE: not supported */
	id[49] = 0x0200; /* LBA supported, no DMA */
	id[50] = 0x4000;
	id[51] = 0x0200; /* PIO timing mode 2 (obsolete field) */
	id[53] = 0x0003; /* words 54-58 and 64-70 valid */
	id[54] = (uint16_t)a->cyls;
	id[55] = (uint16_t)a->heads;
	id[56] = (uint16_t)a->spt;
	id[57] = (uint16_t)chs;
	id[58] = (uint16_t)(chs >> 16);
	id[60] = (uint16_t)lba28;
	id[61] = (uint16_t)(lba28 >> 16);
	id[64] = 0x0003; /* PIO modes 3 and 4 */
	id[65] = id[66] = id[67] = id[68] = 120;
	id[80] = 0x00f0; /* ATA/ATAPI-4 to -7 */
	id[82] = 0x4020; /* write cache supported (bit 14 must be 1) */
	id[83] = 0x7400; /* FLUSH CACHE EXT, FLUSH CACHE, LBA48 */
	id[84] = 0x4000;
	id[85] = (uint16_t)(0x4000 | (a->write_cache ? 0x0020 : 0));
	id[86] = 0x3400;
	id[87] = 0x4000;
	id[100] = (uint16_t)a->sectors;
	id[101] = (uint16_t)(a->sectors >> 16);
	id[102] = (uint16_t)(a->sectors >> 32);
	id[103] = (uint16_t)(a->sectors >> 48);
	id[255] = 0x00a5; /* integrity word: signature, checksum below */
	for (unsigned i = 0; i < 256; i++) {
		a->buf[2 * i] = (uint8_t)id[i];
		a->buf[2 * i + 1] = (uint8_t)(id[i] >> 8);
	}
	uint8_t sum = 0;
	for (unsigned i = 0; i < 511; i++)
		sum = (uint8_t)(sum + a->buf[i]);
	a->buf[511] = (uint8_t)-sum;
}

static bool ata_host_read(struct ata *a, uint64_t lba)
{
	size_t done = 0;
	while (done < ATA_SECTOR_SIZE) {
		ssize_t n = pread(a->fd, a->buf + done, ATA_SECTOR_SIZE - done,
				  (off_t)(lba * ATA_SECTOR_SIZE + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			bt_warn(LOG_DEV, "ata: reading sector %llu failed (%s)",
				(unsigned long long)lba, n < 0 ? strerror(errno) : "end of image");
			return false;
		}
		done += (size_t)n;
	}
	return true;
}

static bool ata_host_write(struct ata *a, uint64_t lba)
{
	size_t done = 0;
	while (done < ATA_SECTOR_SIZE) {
		ssize_t n = pwrite(a->fd, a->buf + done, ATA_SECTOR_SIZE - done,
				   (off_t)(lba * ATA_SECTOR_SIZE + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			bt_warn(LOG_DEV, "ata: writing sector %llu failed (%s)",
				(unsigned long long)lba, n < 0 ? strerror(errno) : "no progress");
			return false;
		}
		done += (size_t)n;
	}
	if (!a->write_cache && fdatasync(a->fd) != 0) {
		bt_warn(LOG_DEV, "ata: fdatasync failed (%s)", strerror(errno));
		return false;
	}
	return true;
}

/* Decode the command's start sector and count; false (error already
 * reported to the guest) when the range is invalid. */
static bool ata_decode(struct ata *a, bool lba48, uint64_t *lba, uint32_t *count)
{
	if (lba48) {
		*lba = (uint64_t)a->hob.lbah << 40 | (uint64_t)a->hob.lbam << 32 |
		       (uint64_t)a->hob.lbal << 24 | (uint64_t)a->r.lbah << 16 |
		       (uint64_t)a->r.lbam << 8 | a->r.lbal;
		*count = (uint32_t)a->hob.nsect << 8 | a->r.nsect;
		if (!*count)
			*count = 65536;
	} else {
		*count = a->r.nsect ? a->r.nsect : 256;
		if (a->device & DEV_LBA) {
			*lba = (uint64_t)(a->device & 0x0f) << 24 | (uint64_t)a->r.lbah << 16 |
			       (uint64_t)a->r.lbam << 8 | a->r.lbal;
		} else {
			unsigned cyl = (unsigned)a->r.lbah << 8 | a->r.lbam;
			unsigned head = a->device & 0x0f;
			unsigned sector = a->r.lbal;
			if (sector == 0 || sector > a->spt || head >= a->heads) {
				ata_finish_error(a, ER_IDNF | ER_ABRT);
				return false;
			}
			*lba = ((uint64_t)cyl * a->heads + head) * a->spt + sector - 1;
		}
	}
	/* Only the start is checked here: like QEMU, a range running off the
	 * end transfers the sectors that exist and then fails (ata_read_next,
	 * ata_sector_done). */
	if (*lba >= a->sectors) {
		bt_debug(LOG_DEV, "ata: sectors %llu+%u beyond the disk's %llu",
			 (unsigned long long)*lba, *count, (unsigned long long)a->sectors);
		ata_finish_error(a, ER_IDNF);
		return false;
	}
	return true;
}

/* Load sector a->lba for the guest to read; on failure report UNC. */
static void ata_read_next(struct ata *a, bool lba48)
{
	if (a->lba >= a->sectors) {
		ata_set_lba_regs(a, a->lba, lba48);
		ata_finish_error(a, ER_IDNF);
		return;
	}
	if (!ata_host_read(a, a->lba)) {
		ata_set_lba_regs(a, a->lba, lba48);
		ata_finish_error(a, ER_UNC);
		return;
	}
	a->xfer = XFER_IN;
	a->pos = 0;
	a->status = ST_DRDY | ST_DSC | ST_DRQ;
	ata_raise(a);
}

static bool ata_cmd_lba48(uint8_t cmd)
{
	return cmd == 0x24 || cmd == 0x34 || cmd == 0x42;
}

static void ata_command(struct ata *a, uint8_t cmd)
{
	uint64_t lba;
	uint32_t count;
	bool lba48 = ata_cmd_lba48(cmd);

	if (ata_slave_selected(a) && cmd != 0x90)
		return; /* no device 1: nobody executes it */
	a->intrq = false;
	ata_update_irq(a);
	a->cmd = cmd;
	switch (cmd) {
	case 0xec: /* IDENTIFY DEVICE */
		ata_identify_data(a);
		a->xfer = XFER_IN;
		a->pos = 0;
		a->remaining = 1;
		a->error = 0;
		a->status = ST_DRDY | ST_DSC | ST_DRQ;
		ata_raise(a);
		return;
	case 0x20: /* READ SECTORS (with and without retries) */
	case 0x21:
	case 0x24: /* READ SECTORS EXT */
		if (!ata_decode(a, lba48, &lba, &count))
			return;
		a->lba = lba;
		a->remaining = count;
		ata_read_next(a, lba48);
		return;
	case 0x30: /* WRITE SECTORS */
	case 0x31:
	case 0x34: /* WRITE SECTORS EXT */
		if (!ata_decode(a, lba48, &lba, &count))
			return;
		if (a->read_only) {
			ata_finish_error(a, ER_ABRT);
			return;
		}
		a->lba = lba;
		a->remaining = count;
		a->xfer = XFER_OUT;
		a->pos = 0;
		a->error = 0;
		a->status = ST_DRDY | ST_DSC | ST_DRQ; /* no INTRQ before the first block */
		return;
	case 0x40: /* READ VERIFY SECTORS */
	case 0x41:
	case 0x42:
		if (ata_decode(a, lba48, &lba, &count))
			ata_finish_ok(a, true);
		return;
	case 0xe7: /* FLUSH CACHE */
	case 0xea: /* FLUSH CACHE EXT */
		if (!a->read_only && fdatasync(a->fd) != 0) {
			bt_warn(LOG_DEV, "ata: flush failed (%s)", strerror(errno));
			ata_finish_error(a, ER_ABRT);
			return;
		}
		ata_finish_ok(a, true);
		return;
	case 0xef: /* SET FEATURES */
		switch (a->r.feature) {
		case 0x03: /* transfer mode: PIO default or PIO flow-control modes only */
			if (a->r.nsect <= 0x01 || (a->r.nsect >= 0x08 && a->r.nsect <= 0x0c))
				ata_finish_ok(a, true);
			else
				ata_finish_error(a, ER_ABRT);
			return;
		case 0x02:
			a->write_cache = true;
			ata_finish_ok(a, true);
			return;
		case 0x82:
			a->write_cache = false;
			if (!a->read_only)
				fdatasync(a->fd);
			ata_finish_ok(a, true);
			return;
		case 0x55: /* read look-ahead off/on, revert to defaults off/on */
		case 0xaa:
		case 0x66:
		case 0xcc:
			ata_finish_ok(a, true);
			return;
		default:
			ata_finish_error(a, ER_ABRT);
			return;
		}
	case 0x91: /* INITIALIZE DEVICE PARAMETERS */
		if (a->r.nsect == 0) {
			ata_finish_error(a, ER_ABRT);
			return;
		}
		a->heads = (a->device & 0x0f) + 1u;
		a->spt = a->r.nsect;
		a->cyls = (unsigned)BT_MIN(a->sectors / (a->heads * a->spt), 65535);
		ata_finish_ok(a, true);
		return;
	case 0x90: /* EXECUTE DEVICE DIAGNOSTIC */
		ata_signature(a);
		a->status = ST_DRDY | ST_DSC;
		a->xfer = XFER_NONE;
		ata_raise(a);
		return;
	case 0xe5: /* CHECK POWER MODE: active */
	case 0x98:
		a->r.nsect = 0xff;
		ata_finish_ok(a, true);
		return;
	case 0xe0: /* STANDBY IMMEDIATE, IDLE IMMEDIATE, STANDBY, IDLE */
	case 0xe1:
	case 0xe2:
	case 0xe3:
	case 0x94:
	case 0x95:
	case 0x96:
	case 0x97:
		ata_finish_ok(a, true);
		return;
	default:
		if (cmd >= 0x10 && cmd <= 0x1f) { /* RECALIBRATE */
			ata_finish_ok(a, true);
			return;
		}
		bt_debug(LOG_DEV, "ata: command %#x aborted (not implemented)", cmd);
		ata_finish_error(a, ER_ABRT);
		return;
	}
}

/* The guest consumed or filled buf completely. */
static void ata_sector_done(struct ata *a)
{
	bool lba48 = ata_cmd_lba48(a->cmd);
	if (a->xfer == XFER_IN) {
		if (--a->remaining == 0) {
			ata_finish_ok(a, false);
			return;
		}
		a->lba++;
		ata_read_next(a, lba48);
		return;
	}
	if (!ata_host_write(a, a->lba)) {
		ata_set_lba_regs(a, a->lba, lba48);
		ata_finish_error(a, ER_ABRT);
		return;
	}
	a->lba++;
	if (--a->remaining == 0) {
		ata_finish_ok(a, true);
		return;
	}
	if (a->lba >= a->sectors) {
		ata_set_lba_regs(a, a->lba, lba48);
		ata_finish_error(a, ER_IDNF);
		return;
	}
	a->pos = 0;
	a->status = ST_DRDY | ST_DSC | ST_DRQ;
	ata_raise(a);
}

static uint32_t ata_data_in(struct ata *a, unsigned size)
{
	if (a->xfer != XFER_IN || ata_slave_selected(a))
		return size == 4 ? 0xffffffffu : 0xffff;
	uint32_t v = 0;
	for (unsigned i = 0; i < size && a->pos < ATA_SECTOR_SIZE; i++)
		v |= (uint32_t)a->buf[a->pos++] << (8 * i);
	if (a->pos == ATA_SECTOR_SIZE)
		ata_sector_done(a);
	return v;
}

static void ata_data_out(struct ata *a, unsigned size, uint32_t v)
{
	if (a->xfer != XFER_OUT || ata_slave_selected(a))
		return;
	for (unsigned i = 0; i < size && a->pos < ATA_SECTOR_SIZE; i++)
		a->buf[a->pos++] = (uint8_t)(v >> (8 * i));
	if (a->pos == ATA_SECTOR_SIZE)
		ata_sector_done(a);
}

static uint8_t ata_status(const struct ata *a)
{
	return ata_slave_selected(a) ? 0 : a->status;
}

static void ata_cmd_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct ata *a = opaque;
	bool hob = a->control & CTL_HOB;
	const struct ata_regs *r = hob ? &a->hob : &a->r;
	switch (off) {
	case 0:
		*value = ata_data_in(a, size);
		return;
	case 1:
		*value = a->error;
		break;
	case 2:
		*value = r->nsect;
		break;
	case 3:
		*value = r->lbal;
		break;
	case 4:
		*value = r->lbam;
		break;
	case 5:
		*value = r->lbah;
		break;
	case 6:
		*value = a->device | 0xa0;
		break;
	default:
		*value = ata_status(a);
		if (!ata_slave_selected(a)) {
			a->intrq = false;
			ata_update_irq(a);
		}
		break;
	}
	if (size > 1) /* a wide access to a byte register: the rest floats */
		*value |= (size == 2 ? 0xff00u : 0xffffff00u);
}

static void ata_cmd_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct ata *a = opaque;
	uint8_t v = (uint8_t)value;
	if (off == 0) {
		ata_data_out(a, size, (uint32_t)value);
		return;
	}
	if (!ata_slave_selected(a) && (a->status & (ST_BSY | ST_DRQ)))
		return; /* taskfile writes during reset or a transfer are ignored (as QEMU) */
	if (off <= 5)
		a->control &= (uint8_t)~CTL_HOB; /* any register write clears HOB */
	switch (off) {
	case 1:
		a->hob.feature = a->r.feature;
		a->r.feature = v;
		break;
	case 2:
		a->hob.nsect = a->r.nsect;
		a->r.nsect = v;
		break;
	case 3:
		a->hob.lbal = a->r.lbal;
		a->r.lbal = v;
		break;
	case 4:
		a->hob.lbam = a->r.lbam;
		a->r.lbam = v;
		break;
	case 5:
		a->hob.lbah = a->r.lbah;
		a->r.lbah = v;
		break;
	case 6:
		a->device = v & 0x5f;
		break;
	default:
		ata_command(a, v);
		break;
	}
}

static void ata_ctl_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	*value = ata_status(opaque); /* alternate status: does not clear INTRQ */
}

static void ata_ctl_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct ata *a = opaque;
	uint8_t v = (uint8_t)value;
	uint8_t old = a->control;
	a->control = v & (CTL_NIEN | CTL_SRST | CTL_HOB);
	if ((v & CTL_SRST) && !(old & CTL_SRST)) {
		a->xfer = XFER_NONE;
		a->status = ST_BSY;
		a->intrq = false;
	} else if (!(v & CTL_SRST) && (old & CTL_SRST)) {
		ata_signature(a);
		a->status = ST_DRDY | ST_DSC;
		a->write_cache = true;
		a->heads = 16;
		a->spt = 63;
		a->cyls = (unsigned)BT_MIN(a->sectors / (16 * 63), 16383);
	}
	ata_update_irq(a);
}

static const struct iobus_ops ata_cmd_ops = {
    .read = ata_cmd_read,
    .write = ata_cmd_write,
    .name = "ata-cmd",
};

static const struct iobus_ops ata_ctl_ops = {
    .read = ata_ctl_read,
    .write = ata_ctl_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "ata-ctl",
};

static enum bt_status ata_open_image(struct ata *a, const char *path, bool read_only)
{
	uint64_t size;
	BT_TRY(diskimg_open("ata", path, read_only, ATA_SECTOR_SIZE, &a->fd, &size));
	if (size % ATA_SECTOR_SIZE)
		bt_warn(LOG_DEV,
			"ata: disk image %s: trailing %lld bytes beyond the last full "
			"sector are ignored",
			path, (long long)(size % ATA_SECTOR_SIZE));
	a->sectors = (uint64_t)size / ATA_SECTOR_SIZE;
	if (a->sectors >= (1ull << 48)) {
		bt_err(LOG_DEV, "ata: disk image %s exceeds the LBA48 limit", path);
		close(a->fd);
		return BT_ERR_RANGE;
	}
	ata_set_identity(a, NULL, NULL, NULL);
	return BT_OK;
}

enum bt_status ata_create(struct iobus *bus, const char *image_path, bool read_only,
			  struct ata **out)
{
	if (!bus || !image_path || !out)
		return BT_ERR_INVALID;
	struct ata *a = calloc(1, sizeof(*a));
	if (!a)
		return BT_ERR_NOMEM;
	a->bus = bus;
	a->read_only = read_only;
	enum bt_status s = ata_open_image(a, image_path, read_only);
	if (s != BT_OK)
		goto err_free;
	a->write_cache = true;
	a->heads = 16;
	a->spt = 63;
	a->cyls = (unsigned)BT_MIN(a->sectors / (16 * 63), 16383);
	ata_signature(a);
	a->status = ST_DRDY | ST_DSC;
	irq_line_init(&a->irq, NULL, NULL, ATA_PRIMARY_IRQ);
	s = iobus_register_pio(bus, ATA_PRIMARY_PORT, 8, &ata_cmd_ops, a);
	if (s != BT_OK)
		goto err_close;
	s = iobus_register_pio(bus, ATA_PRIMARY_CTL, 1, &ata_ctl_ops, a);
	if (s != BT_OK)
		goto err_unregister_cmd;
	*out = a;
	return BT_OK;

err_unregister_cmd:
	iobus_unregister_pio(bus, ATA_PRIMARY_PORT);
err_close:
	close(a->fd);
err_free:
	free(a);
	return s;
}

void ata_destroy(struct ata *ata)
{
	if (!ata)
		return;
	iobus_unregister_pio(ata->bus, ATA_PRIMARY_CTL);
	iobus_unregister_pio(ata->bus, ATA_PRIMARY_PORT);
	if (!ata->read_only)
		fdatasync(ata->fd);
	close(ata->fd);
	free(ata);
}

static void copy_ident(char *dst, size_t cap, const char *src)
{
	size_t n = 0;
	for (; src[n] && n + 1 < cap; n++)
		dst[n] = (src[n] >= 0x20 && src[n] < 0x7f) ? src[n] : '?';
	dst[n] = 0;
}

void ata_set_identity(struct ata *ata, const char *model, const char *serial, const char *firmware)
{
	copy_ident(ata->model, sizeof(ata->model), model ? model : ATA_DEFAULT_MODEL);
	copy_ident(ata->serial, sizeof(ata->serial), serial ? serial : ATA_DEFAULT_SERIAL);
	copy_ident(ata->firmware, sizeof(ata->firmware),
		   firmware ? firmware : ATA_DEFAULT_FIRMWARE);
}

struct irq_line *ata_irq(struct ata *ata)
{
	return &ata->irq;
}

uint64_t ata_sectors(const struct ata *ata)
{
	return ata->sectors;
}
