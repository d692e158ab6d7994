/*
 * virtio-blk on PCI, legacy interface (virtio 1.x section 4.1.4.8: the
 * transitional device 1af4:1001 with its registers in I/O BAR 0), backed by
 * a raw image file.
 *
 *   BAR 0 (I/O, 64 bytes)
 *   0x00 host features   R  32  SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH (+ RO)
 *   0x04 guest features  RW 32
 *   0x08 queue PFN       RW 32  legacy ring layout at PFN * 4096; 0 deletes
 *   0x0c queue size      R  16  VIRTIO_BLK_QUEUE_SIZE for queue 0, else 0
 *   0x0e queue select    RW 16
 *   0x10 queue notify    W  16  processes the queue at once (synchronous)
 *   0x12 device status   RW 8   0 resets the device
 *   0x13 ISR status      R  8   bit 0: used buffers; reading clears it
 *                               and lowers INTx
 *   0x14 device config   R      struct virtio_blk_config: capacity,
 *                               size_max, seg_max, geometry, blk_size
 *
 * Requests: IN (pread into guest RAM), OUT (pwrite from it), FLUSH
 * (fdatasync), GET_ID (the serial); anything else is UNSUPP.  A request
 * beyond the end of the disk, not a whole number of sectors, larger than
 * VIRTIO_BLK_MAX_REQ, or a failed host I/O answers IOERR; OUT on a
 * read-only disk answers IOERR (the RO feature tells the driver first).
 * Chains without a 16-byte header or a status byte break the queue (see
 * virtq.h for the rest of the hostile-guest rules).  The device does DMA
 * only while the function is bus master.
 *
 * Why legacy first: every register is a port, so each access reaches the
 * device whole and in order through the `in`/`out` exit, with no
 * dependence on MMIO stores from translated code; Debian's virtio_pci
 * (CONFIG_VIRTIO_PCI_LEGACY) drives it.  A modern (1.x) memory BAR with
 * PCI capabilities is the next step.
 */
#ifndef BT_RUNTIME_DEV_VIRTIO_BLK_H
#define BT_RUNTIME_DEV_VIRTIO_BLK_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/dev/pci.h"
#include "runtime/dev/virtq.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX    126	  /* + header and status: 128 descriptors */
#define VIRTIO_BLK_SIZE_MAX   (64u << 10) /* bytes per buffer, advertised */
#define VIRTIO_BLK_MAX_REQ    (VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX)
#define VIRTIO_BLK_BAR_SIZE   64
#define VIRTIO_BLK_SLOT	      4 /* 00:04.0, INTA -> IRQ pci_intx_irq(4, 1) */
#define VIRTIO_BLK_DEFAULT_ID "btvm-virtio-disk"

/* Register offsets in BAR 0 (legacy, no MSI-X). */
#define VIRTIO_PCI_HOST_FEATURES  0x00
#define VIRTIO_PCI_GUEST_FEATURES 0x04
#define VIRTIO_PCI_QUEUE_PFN	  0x08
#define VIRTIO_PCI_QUEUE_NUM	  0x0c
#define VIRTIO_PCI_QUEUE_SEL	  0x0e
#define VIRTIO_PCI_QUEUE_NOTIFY	  0x10
#define VIRTIO_PCI_STATUS	  0x12
#define VIRTIO_PCI_ISR		  0x13
#define VIRTIO_PCI_CONFIG	  0x14

/* Feature bits, request types and status values (virtio 1.x 5.2). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO	      5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9
#define VIRTIO_BLK_T_IN	      0
#define VIRTIO_BLK_T_OUT      1
#define VIRTIO_BLK_T_FLUSH    4
#define VIRTIO_BLK_T_GET_ID   8
#define VIRTIO_BLK_S_OK	      0
#define VIRTIO_BLK_S_IOERR    1
#define VIRTIO_BLK_S_UNSUPP   2
#define VIRTIO_BLK_ID_BYTES   20

struct virtio_blk;

/* Open and lock image_path (diskimg.h), plug the function into slot of
 * host (its BAR assigned as firmware would) and reach guest RAM through
 * dma (borrowed).  Refused with a logged reason as diskimg_open. */
enum bt_status virtio_blk_create(struct pci_host *host, struct iobus *bus, unsigned slot,
				 const struct dev_dma *dma, const char *image_path, bool read_only,
				 struct virtio_blk **out);
void virtio_blk_destroy(struct virtio_blk *b);
uint64_t virtio_blk_sectors(const struct virtio_blk *b);

#endif
