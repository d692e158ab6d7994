/*
 * virtio-blk on PCI as a transitional device (virtio 1.2 "Virtio Over
 * PCI Bus": PCI 1af4:1001, revision 0, subsystem ID 2), as QEMU's default
 * virtio-blk-pci: the legacy interface in I/O BAR 0 and the modern (1.x)
 * interface in memory BAR 4, found through vendor-specific PCI
 * capabilities.  The driver picks one; both drive the same queue 0, backed
 * by a raw image file.
 *
 * Legacy, BAR 0 (I/O, 64 bytes; "Legacy Interfaces: A Note on PCI
 * Device Layout")
 *   0x00 host features   R  32  SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH (+ RO)
 *   0x04 guest features  RW 32
 *   0x08 queue PFN       RW 32  legacy ring layout at PFN * 4096; 0 deletes
 *   0x0c queue size      R  16  VIRTIO_BLK_QUEUE_SIZE for queue 0, else 0
 *   0x0e queue select    RW 16
 *   0x10 queue notify    W  16  processes the queue at once (synchronous)
 *   0x12 device status   RW 8   0 resets the device
 *   0x13 ISR status      R  8   bit 0: used buffers, bit 1: configuration
 *                               change; reading clears it and lowers INTx
 *   0x14 device config   R      struct virtio_blk_config: capacity,
 *                               size_max, seg_max, geometry, blk_size
 *
 * Modern, BAR 4 (memory, 16 KiB; "Virtio Structure PCI Capabilities"),
 * one structure a page, each named by a capability (cfg_type, bar 4,
 * offset, length):
 *   0x0000 common config (type 1, 0x38 bytes): the features (the legacy
 *          ones + VIRTIO_F_VERSION_1) in 32-bit windows, status, one queue
 *          whose size, enable and 64-bit descriptor / driver / device
 *          addresses the driver sets; MSI-X vectors read NO_VECTOR
 *   0x1000 ISR (type 3, 1 byte): as the legacy ISR
 *   0x2000 device config (type 4, 36 bytes): as the legacy config
 *   0x3000 notify (type 2, 4 bytes, multiplier 4, queue 0's offset 0)
 * and the PCI configuration access capability (type 5, the spec's
 * section of that name):
 * the driver writes its bar, length (1, 2 or 4) and offset, then a write
 * of pci_cfg_data is that write into BAR 4, a read of it that read; an
 * access naming another BAR, another length or a misaligned or outside
 * offset does nothing (the data keeps its last value).
 *
 * Status ("Device Status Field", "Device Initialization"): 0 resets the
 * device, which reads 0 at once. Through the common config, FEATURES_OK is
 * granted only when the driver accepted VIRTIO_F_VERSION_1 and nothing the
 * device did not offer (else it reads back clear, and the driver gives
 * up); a queue is set up while it is disabled and before DRIVER_OK, and
 * queue_enable = 1 checks it (size a power of two <=
 * VIRTIO_BLK_QUEUE_SIZE, aligned parts wholly in RAM); the device consumes
 * buffers notified through the notify structure only after DRIVER_OK.  A
 * queue the driver breaks, through either interface, stops (virtq.h);
 * after modern negotiation the device also sets DEVICE_NEEDS_RESET and
 * raises a configuration-change interrupt. Interrupts are INTx only (no
 * MSI-X capability).
 *
 * Requests: IN (pread into guest RAM), OUT (pwrite from it), FLUSH
 * (fdatasync), GET_ID (the serial); anything else is UNSUPP.  A request
 * beyond the end of the disk, not a whole number of sectors, larger than
 * VIRTIO_BLK_MAX_REQ, or a failed host I/O answers IOERR; OUT on a
 * read-only disk answers IOERR (the RO feature tells the driver first).
 * Chains without a 16-byte header or a status byte break the queue (see
 * virtq.h for the rest of the hostile-guest rules).  The device does DMA
 * only while the function is bus master.
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
#define VIRTIO_BLK_MEM_BAR    4
#define VIRTIO_BLK_MEM_SIZE   0x4000
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

/* Modern interface: the structures in BAR 4 and their capabilities. */
#define VIRTIO_MODERN_COMMON	  0x0000
#define VIRTIO_MODERN_ISR	  0x1000
#define VIRTIO_MODERN_DEVICE	  0x2000
#define VIRTIO_MODERN_NOTIFY	  0x3000
#define VIRTIO_MODERN_REGION	  0x1000
#define VIRTIO_NOTIFY_MULTIPLIER  4
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG	  3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG	  5
#define VIRTIO_PCI_CFG_CAP_BYTES  20 /* struct virtio_pci_cfg_cap */

/* struct virtio_pci_common_cfg ("Common configuration structure layout"). */
#define VIRTIO_COMMON_DFSELECT 0x00
#define VIRTIO_COMMON_DF       0x04
#define VIRTIO_COMMON_GFSELECT 0x08
#define VIRTIO_COMMON_GF       0x0c
#define VIRTIO_COMMON_MSIX     0x10
#define VIRTIO_COMMON_NUMQ     0x12
#define VIRTIO_COMMON_STATUS   0x14
#define VIRTIO_COMMON_CFGGEN   0x15
#define VIRTIO_COMMON_Q_SELECT 0x16
#define VIRTIO_COMMON_Q_SIZE   0x18
#define VIRTIO_COMMON_Q_MSIX   0x1a
#define VIRTIO_COMMON_Q_ENABLE 0x1c
#define VIRTIO_COMMON_Q_NOFF   0x1e
#define VIRTIO_COMMON_Q_DESC   0x20
#define VIRTIO_COMMON_Q_DRIVER 0x28
#define VIRTIO_COMMON_Q_DEVICE 0x30
#define VIRTIO_COMMON_SIZE     0x38
#define VIRTIO_MSI_NO_VECTOR   0xffff

/* Device status bits ("Device Status Field"). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER	  2
#define VIRTIO_STATUS_DRIVER_OK	  4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

#define VIRTIO_F_VERSION_1 32

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
