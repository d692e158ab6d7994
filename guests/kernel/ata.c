/*
 * ATA PIO on the primary channel (0x1f0-0x1f7, control 0x3f6), master
 * drive: IDENTIFY, READ/WRITE SECTORS with 28-bit LBA, FLUSH CACHE.
 * Interrupts from the drive are disabled (nIEN); every wait polls the
 * status register with a bound and fails with -ETIMEDOUT or -EIO.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"

#define ATA_DATA    0x1f0
#define ATA_ERR	    0x1f1
#define ATA_COUNT   0x1f2
#define ATA_LBA0    0x1f3
#define ATA_LBA1    0x1f4
#define ATA_LBA2    0x1f5
#define ATA_DRIVE   0x1f6
#define ATA_STATUS  0x1f7
#define ATA_CMD	    0x1f7
#define ATA_CONTROL 0x3f6

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DF  0x20
#define ST_BSY 0x80

#define CMD_READ     0x20
#define CMD_WRITE    0x30
#define CMD_FLUSH    0xe7
#define CMD_IDENTIFY 0xec

static void ata_delay400(void)
{
	for (int i = 0; i < 4; i++)
		(void)inb(ATA_CONTROL); /* alternate status */
}

/* The bound is time, not only polls: a FLUSH CACHE reaches the image file's
 * fsync, which on a loaded host (QEMU TCG, or btvm) can take seconds; 2
 * million polls were about 0.2 s under QEMU.  At least 2 million polls and
 * 30 s of the TSC clock; 100 million polls if that clock does not run. */
static int ata_wait(bool want_drq)
{
	uint64_t deadline = monotonic_ns() + 30000000000ull;
	for (unsigned i = 0; i < 100000000; i++) {
		if (i >= 2000000 && (i & 1023) == 0 && monotonic_ns() > deadline)
			break;
		uint8_t s = inb(ATA_STATUS);
		if (s == 0xff)
			return -ENOENT; /* floating bus: no controller */
		if (s & ST_BSY)
			continue;
		if (s & (ST_ERR | ST_DF))
			return -EIO;
		if (!want_drq || (s & ST_DRQ))
			return 0;
	}
	return -ETIMEDOUT;
}

static int ata_select(uint32_t lba, uint8_t count)
{
	int r = ata_wait(false);
	if (r)
		return r;
	outb(ATA_CONTROL, 0x02); /* nIEN */
	outb(ATA_DRIVE, (uint8_t)(0xe0 | ((lba >> 24) & 0x0f)));
	ata_delay400();
	outb(ATA_COUNT, count);
	outb(ATA_LBA0, (uint8_t)lba);
	outb(ATA_LBA1, (uint8_t)(lba >> 8));
	outb(ATA_LBA2, (uint8_t)(lba >> 16));
	return 0;
}

int ata_identify(char *model, size_t model_len, uint32_t *sectors)
{
	uint16_t id[256];
	if (inb(ATA_STATUS) == 0xff)
		return -ENOENT;
	int r = ata_select(0, 0);
	if (r)
		return r;
	outb(ATA_CMD, CMD_IDENTIFY);
	ata_delay400();
	if (inb(ATA_STATUS) == 0)
		return -ENOENT; /* no drive */
	r = ata_wait(true);
	if (r)
		return r;
	for (int i = 0; i < 256; i++)
		id[i] = inw(ATA_DATA);
	size_t n = 0;
	for (int i = 27; i < 47 && n + 2 < model_len; i++) {
		model[n++] = (char)(id[i] >> 8);
		model[n++] = (char)id[i];
	}
	while (n > 0 && model[n - 1] == ' ')
		n--;
	if (model_len)
		model[MIN(n, model_len - 1)] = 0;
	*sectors = (uint32_t)id[60] | ((uint32_t)id[61] << 16);
	return 0;
}

int ata_read(uint32_t lba, void *buf)
{
	uint16_t *w = buf;
	if (lba >= (1u << 28))
		return -EINVAL;
	int r = ata_select(lba, 1);
	if (r)
		return r;
	outb(ATA_CMD, CMD_READ);
	ata_delay400();
	r = ata_wait(true);
	if (r)
		return r;
	for (int i = 0; i < 256; i++)
		w[i] = inw(ATA_DATA);
	return 0;
}

int ata_write(uint32_t lba, const void *buf)
{
	const uint16_t *w = buf;
	if (lba >= (1u << 28))
		return -EINVAL;
	int r = ata_select(lba, 1);
	if (r)
		return r;
	outb(ATA_CMD, CMD_WRITE);
	ata_delay400();
	r = ata_wait(true);
	if (r)
		return r;
	for (int i = 0; i < 256; i++)
		outw(ATA_DATA, w[i]);
	ata_delay400();
	return ata_wait(false);
}

int ata_flush(void)
{
	int r = ata_wait(false);
	if (r)
		return r;
	outb(ATA_DRIVE, 0xe0);
	ata_delay400();
	outb(ATA_CMD, CMD_FLUSH);
	ata_delay400();
	return ata_wait(false);
}
