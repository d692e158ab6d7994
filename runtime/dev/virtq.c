/*
 * Split virtqueues, device side (see virtq.h).  Owns nothing but the
 * device's positions in the rings.
 *
 * Invariants
 *  1. Every guest address is reached through dma->map for exactly the bytes
 *     used, after checking gpa + len does not wrap; nothing is cached
 *     across calls, so a ring the guest moves is re-read from RAM.
 *  2. virtq_pop reads at most num descriptors per chain and at most num
 *     chains between two idx values the guest published; with broken set
 *     it touches nothing.
 *  3. used_idx counts pushed chains; the guest sees it only after the
 *     element it covers is written (one thread: program order suffices).
 */
#include "runtime/dev/virtq.h"

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"

#include <string.h>

#define DESC_SIZE		   16
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

void virtq_reset(struct virtq *q)
{
	const char *name = q->name;
	*q = (struct virtq){.name = name};
}

uint64_t virtq_legacy_size(uint16_t num)
{
	uint64_t avail_end = (uint64_t)DESC_SIZE * num + 2 * (3 + (uint64_t)num);
	uint64_t used = (avail_end + VIRTQ_LEGACY_ALIGN - 1) & ~(uint64_t)(VIRTQ_LEGACY_ALIGN - 1);
	return used + 2 * 3 + 8 * (uint64_t)num;
}

bool virtq_setup_legacy(struct virtq *q, uint16_t num, gpa_t gpa)
{
	virtq_reset(q);
	if (!num || (num & (num - 1)) || num > VIRTQ_MAX_SIZE)
		return false;
	q->num = num;
	q->desc = gpa;
	q->avail = gpa + (uint64_t)DESC_SIZE * num;
	uint64_t avail_end = q->avail + 2 * (3 + (uint64_t)num);
	q->used = (avail_end + VIRTQ_LEGACY_ALIGN - 1) & ~(uint64_t)(VIRTQ_LEGACY_ALIGN - 1);
	return true;
}

uint64_t virtq_desc_size(uint16_t num)
{
	return (uint64_t)DESC_SIZE * num;
}

uint64_t virtq_avail_size(uint16_t num)
{
	return 2 * (2 + (uint64_t)num);
}

uint64_t virtq_used_size(uint16_t num)
{
	return 4 + 8 * (uint64_t)num;
}

bool virtq_setup_split(struct virtq *q, uint16_t num, gpa_t desc, gpa_t avail, gpa_t used)
{
	virtq_reset(q);
	if (!num || (num & (num - 1)) || num > VIRTQ_MAX_SIZE)
		return false;
	if (desc % 16 || avail % 2 || used % 4)
		return false;
	if (desc + virtq_desc_size(num) < desc || avail + virtq_avail_size(num) < avail ||
	    used + virtq_used_size(num) < used)
		return false;
	q->num = num;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	return true;
}

static void *qmap(const struct dev_dma *dma, gpa_t gpa, size_t len, bool write)
{
	if (gpa + len < gpa)
		return NULL;
	return dma->map(dma->opaque, gpa, len, write);
}

static bool read16(const struct dev_dma *dma, gpa_t gpa, uint16_t *v)
{
	const uint8_t *p = qmap(dma, gpa, 2, false);
	if (!p)
		return false;
	*v = (uint16_t)(p[0] | p[1] << 8);
	return true;
}

static enum virtq_result broken(struct virtq *q, const char *why, unsigned long long what)
{
	q->broken = true;
	bt_warn(LOG_DEV,
		"%s: the guest broke its virtqueue (%s: %#llx); the queue stops until the "
		"driver resets the device",
		q->name ? q->name : "virtio", why, what);
	return VIRTQ_BROKEN;
}

enum virtq_result virtq_pop(struct virtq *q, const struct dev_dma *dma, struct virtq_elem *e)
{
	if (q->broken || !q->num)
		return q->broken ? VIRTQ_BROKEN : VIRTQ_EMPTY;
	uint16_t avail_idx;
	if (!read16(dma, q->avail + 2, &avail_idx))
		return broken(q, "available ring outside RAM", q->avail);
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (!pending)
		return VIRTQ_EMPTY;
	if (pending > q->num)
		return broken(q, "available index too far ahead", avail_idx);
	uint16_t head;
	if (!read16(dma, q->avail + 4 + 2 * (uint64_t)(q->last_avail % q->num), &head))
		return broken(q, "available ring outside RAM", q->avail);
	if (head >= q->num)
		return broken(q, "head index beyond the table", head);
	q->last_avail++;

	e->head = head;
	e->nseg = 0;
	e->in_bytes = e->out_bytes = 0;
	uint16_t i = head;
	for (unsigned n = 0;; n++) {
		if (n >= q->num)
			return broken(q, "descriptor chain longer than the queue (a loop)", head);
		const uint8_t *d = qmap(dma, q->desc + (uint64_t)DESC_SIZE * i, DESC_SIZE, false);
		if (!d)
			return broken(q, "descriptor table outside RAM", q->desc);
		uint64_t addr = bt_get64(d);
		uint32_t len = bt_get32(d + 8);
		uint16_t flags = (uint16_t)(d[12] | d[13] << 8);
		uint16_t next = (uint16_t)(d[14] | d[15] << 8);
		bool write = flags & VIRTQ_DESC_F_WRITE;
		if (flags & VIRTQ_DESC_F_INDIRECT)
			return broken(q, "indirect descriptor (not negotiated)", i);
		if (len) {
			if (!qmap(dma, addr, len, false))
				return broken(q, "buffer outside guest RAM", addr);
			if (!write && e->in_bytes)
				return broken(q, "readable buffer after a writable one", addr);
			if (e->nseg >= e->cap)
				return broken(q, "more buffers than the device takes", head);
			e->seg[e->nseg++] =
			    (struct virtq_seg){.gpa = addr, .len = len, .write = write};
			if (write)
				e->in_bytes += len;
			else
				e->out_bytes += len;
		}
		if (!(flags & VIRTQ_DESC_F_NEXT))
			break;
		if (next >= q->num)
			return broken(q, "next index beyond the table", next);
		i = next;
	}
	return VIRTQ_GOT;
}

bool virtq_push(struct virtq *q, const struct dev_dma *dma, uint16_t head, uint32_t written)
{
	if (q->broken || !q->num)
		return false;
	uint8_t *el = qmap(dma, q->used + 4 + 8 * (uint64_t)(q->used_idx % q->num), 8, true);
	uint8_t *idx = qmap(dma, q->used + 2, 2, true);
	if (!el || !idx) {
		broken(q, "used ring outside RAM", q->used);
		return false;
	}
	bt_put32(el, head);
	bt_put32(el + 4, written);
	q->used_idx++;
	bt_put16(idx, q->used_idx);
	return true;
}

bool virtq_should_notify(const struct virtq *q, const struct dev_dma *dma)
{
	uint16_t flags;
	if (!q->num || !read16(dma, q->avail, &flags))
		return true;
	return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

static size_t elem_copy(const struct virtq_elem *e, const struct dev_dma *dma, bool write,
			uint64_t off, uint8_t *buf, size_t len)
{
	size_t done = 0;
	for (unsigned k = 0; k < e->nseg && done < len; k++) {
		const struct virtq_seg *s = &e->seg[k];
		if (s->write != write)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		size_t n = BT_MIN(len - done, (size_t)(s->len - off));
		uint8_t *p = qmap(dma, s->gpa + off, n, write);
		if (!p)
			break;
		if (write)
			memcpy(p, buf + done, n);
		else
			memcpy(buf + done, p, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtq_elem_read(const struct virtq_elem *e, const struct dev_dma *dma, uint64_t off,
		       void *buf, size_t len)
{
	return elem_copy(e, dma, false, off, buf, len);
}

size_t virtq_elem_write(const struct virtq_elem *e, const struct dev_dma *dma, uint64_t off,
			const void *buf, size_t len)
{
	return elem_copy(e, dma, true, off, (uint8_t *)buf, len);
}
