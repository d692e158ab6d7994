/*
 * Raw disk images for the disk models (ATA, virtio-blk): open, lock and
 * size one image file or block device.
 *
 * The image is locked as QEMU locks it: exclusively for a read-write disk,
 * shared for a read-only one, so two VMs never write one image and none
 * reads an image another writes.  The lock is a POSIX record lock on the
 * whole file: it names its holder, it is not inherited by the user stubs
 * (fork), and it goes with the process.
 */
#ifndef BT_RUNTIME_DEV_DISKIMG_H
#define BT_RUNTIME_DEV_DISKIMG_H

#include "pretrans/base/status.h"

#include <stdbool.h>
#include <stdint.h>

/* Open path (read-only when read_only), lock it and return its fd and its
 * size in bytes.  who names the device in messages ("ata", "virtio-blk").
 * Refused with a logged one-line reason: BT_ERR_IO (cannot open, in use,
 * not a file or block device), BT_ERR_FORMAT (smaller than min_bytes). */
enum bt_status diskimg_open(const char *who, const char *path, bool read_only, uint64_t min_bytes,
			    int *fd, uint64_t *bytes);

#endif
