/*
 * ATA disk on the primary IDE channel, PIO only: command block at
 * 0x1f0-0x1f7, device control / alternate status at 0x3f6, INTRQ on IRQ14.
 * One device (device 0, "master"); device 1 is absent: with DEV=1 selected
 * the status registers read 0 and commands are ignored, which is how Linux
 * and other drivers recognise an empty position.
 *
 * Backed by a raw image file (or block device), read and written with
 * pread/pwrite one 512-byte sector at a time; FLUSH CACHE is fdatasync().
 * A failed or short host I/O ends the command with ERR (UNC for reads,
 * ABRT for writes and flushes), never a crash.  Commands execute
 * synchronously: BSY is only ever seen during a software reset.
 *
 * Commands: IDENTIFY DEVICE, READ/WRITE SECTORS (0x20/0x21, 0x30/0x31),
 * READ/WRITE SECTORS EXT (0x24/0x34), READ VERIFY (0x40/0x41/0x42),
 * FLUSH CACHE (0xe7/0xea), SET FEATURES (transfer mode PIO, write cache and
 * look-ahead on/off), INITIALIZE DEVICE PARAMETERS, RECALIBRATE, EXECUTE
 * DEVICE DIAGNOSTIC, power-mode commands (no-ops, CHECK POWER MODE says
 * active); LBA28, LBA48 and CHS addressing.  Everything else (DMA, READ/
 * WRITE MULTIPLE, PACKET, security, SMART, HPA) is aborted (ERR + ABRT).
 */
#ifndef BT_RUNTIME_DEV_ATA_H
#define BT_RUNTIME_DEV_ATA_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/dev/irq.h"

#include <stdbool.h>
#include <stdint.h>

#define ATA_PRIMARY_PORT 0x1f0
#define ATA_PRIMARY_CTL	 0x3f6
#define ATA_PRIMARY_IRQ	 14
#define ATA_SECTOR_SIZE	 512

struct ata;

/* Opens image_path (read-only when read_only, else read-write); the size
 * must be at least one sector (a trailing partial sector is ignored).
 * BT_ERR_IO with a logged reason when the image cannot be opened. */
enum bt_status ata_create(struct iobus *bus, const char *image_path, bool read_only,
			  struct ata **out);
void ata_destroy(struct ata *ata);

/* IDENTIFY strings.  The defaults are QEMU's for its first IDE disk, so a
 * guest that prints its disk's identity says the same under btvm and under
 * QEMU, the oracle our guests are checked against. */
#define ATA_DEFAULT_MODEL    "QEMU HARDDISK"
#define ATA_DEFAULT_SERIAL   "QM00001"
#define ATA_DEFAULT_FIRMWARE "2.5+"

/* Replace the model (40 chars max), serial (20) or firmware revision (8);
 * NULL restores the default.  Longer strings are cut, non-ASCII becomes '?'. */
void ata_set_identity(struct ata *ata, const char *model, const char *serial, const char *firmware);

/* INTRQ, to wire with pic_connect(pic, 14, ata_irq(a)). */
struct irq_line *ata_irq(struct ata *ata);
uint64_t ata_sectors(const struct ata *ata);

#endif
