/*
 * Split virtqueues (virtio 1.x section 2.7, and the legacy layout of
 * section 2.7.2 / 4.1.5.1: descriptor table, available ring, then the used
 * ring at the next 4 KiB boundary), as the device side sees them.
 *
 * Everything in the rings is written by the guest and is untrusted: a head
 * or next index beyond the table, a chain longer than the queue (a loop),
 * an available index more than the queue size ahead, a buffer that is not
 * wholly guest RAM (out of range, wrapping, in the MMIO hole), an indirect
 * descriptor (not offered), or a device-readable buffer after a writable
 * one marks the queue broken: virtq_pop returns VIRTQ_BROKEN, logs the
 * reason once, and the queue does nothing more until it is reset.  So a
 * hostile guest can stall its own disk, never btvm: every loop is bounded
 * by the queue size, and every guest address goes through dev_dma.map.
 *
 * Zero-length descriptors are allowed and carry nothing.
 */
#ifndef BT_RUNTIME_DEV_VIRTQ_H
#define BT_RUNTIME_DEV_VIRTQ_H

#include "pretrans/base/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest RAM as a device reaches it (DMA).  map returns a host pointer for
 * guest-physical [gpa, gpa + len) when the whole range is RAM, else NULL;
 * with write, the caller is about to store into it (the owner of guest RAM
 * invalidates translated code on those pages first). */
struct dev_dma {
	void *(*map)(void *opaque, gpa_t gpa, size_t len, bool write);
	void *opaque;
};

#define VIRTQ_MAX_SIZE	   32768
#define VIRTQ_LEGACY_ALIGN 4096

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

/* One buffer of a chain: device-readable or device-writable. */
struct virtq_seg {
	gpa_t gpa;
	uint32_t len;
	bool write;
};

/* A popped chain.  seg[] holds its non-empty buffers, readable ones first. */
struct virtq_elem {
	uint16_t head;
	unsigned nseg;
	uint64_t in_bytes, out_bytes; /* writable / readable totals */
	struct virtq_seg *seg;	      /* caller's array of cap entries */
	unsigned cap;
};

struct virtq {
	uint16_t num;		       /* 0: not set up */
	gpa_t desc, avail, used;       /* guest-physical ring addresses */
	uint16_t last_avail, used_idx; /* device's positions */
	bool broken;
	const char *name; /* for the log */
};

enum virtq_result { VIRTQ_EMPTY = 0, VIRTQ_GOT = 1, VIRTQ_BROKEN = -1 };

/* Reset to "not set up". */
void virtq_reset(struct virtq *q);
/* Set up a queue of num entries (a power of two <= VIRTQ_MAX_SIZE) in the
 * legacy layout at gpa (the PFN register times 4096).  false if num is bad. */
bool virtq_setup_legacy(struct virtq *q, uint16_t num, gpa_t gpa);
/* Set up a queue of num entries with its three parts where a virtio 1.x
 * driver put them (common config queue_desc / queue_driver /
 * queue_device).  false, and the queue left unset, if num is not a power
 * of two <= VIRTQ_MAX_SIZE, a part is misaligned (descriptor table 16,
 * available ring 2, used ring 4: "Split Virtqueues") or wraps the address space.
 * Whether the parts are RAM is checked on each access (virtq_pop/push). */
bool virtq_setup_split(struct virtq *q, uint16_t num, gpa_t desc, gpa_t avail, gpa_t used);
/* Bytes of each part of a split queue of num entries (no event fields:
 * VIRTIO_RING_F_EVENT_IDX is not offered). */
uint64_t virtq_desc_size(uint16_t num);
uint64_t virtq_avail_size(uint16_t num);
uint64_t virtq_used_size(uint16_t num);
/* Bytes of a legacy queue of num entries (desc + avail, aligned, + used). */
uint64_t virtq_legacy_size(uint16_t num);

/* Take the next available chain into e (e->seg, e->cap set by the caller;
 * a chain with more non-empty buffers than cap is VIRTQ_BROKEN). */
enum virtq_result virtq_pop(struct virtq *q, const struct dev_dma *dma, struct virtq_elem *e);
/* Return chain head to the guest, written bytes in its writable buffers. */
bool virtq_push(struct virtq *q, const struct dev_dma *dma, uint16_t head, uint32_t written);
/* False when the guest set VIRTQ_AVAIL_F_NO_INTERRUPT. */
bool virtq_should_notify(const struct virtq *q, const struct dev_dma *dma);

/* Copy len bytes at offset off of e's readable (out) or writable (in)
 * buffers to/from buf; returns the bytes copied (short at the end). */
size_t virtq_elem_read(const struct virtq_elem *e, const struct dev_dma *dma, uint64_t off,
		       void *buf, size_t len);
size_t virtq_elem_write(const struct virtq_elem *e, const struct dev_dma *dma, uint64_t off,
			const void *buf, size_t len);

#endif
