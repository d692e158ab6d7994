/*
 * I/O bus: owns the port-I/O and MMIO range tables and the dispatch of guest
 * accesses to device handlers (see iobus.h for the contract).
 *
 * Invariants
 *  1. Each space's ranges are sorted by base and pairwise disjoint; every
 *     range has len >= 1 and base + len does not wrap the space.
 *  2. A handler is called only with offset + size <= len of its range, unless
 *     the access is the whole-access case (first byte inside and the range
 *     ends at or after the last byte, or the range has IOBUS_WHOLE).
 *  3. pio_logged has one bit per port: an unclaimed port is logged once.
 *     MMIO keeps a small table of logged pages; past its capacity further
 *     unclaimed pages are counted but not logged.
 */
#include "runtime/bus/iobus.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>

struct iobus_range {
	uint64_t base;
	uint64_t len;
	const struct iobus_ops *ops;
	void *opaque;
};

struct iobus_space {
	struct iobus_range *r;
	size_t n, cap;
	uint64_t limit; /* one past the highest address of the space */
	const char *name;
};

#define IOBUS_MMIO_LOGGED_MAX 64

struct iobus {
	struct iobus_space pio;
	struct iobus_space mmio;
	uint8_t pio_logged[65536 / 8];
	uint64_t mmio_logged[IOBUS_MMIO_LOGGED_MAX];
	size_t n_mmio_logged;
	uint64_t unclaimed;
};

enum bt_status iobus_create(struct iobus **out)
{
	if (!out)
		return BT_ERR_INVALID;
	struct iobus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return BT_ERR_NOMEM;
	bus->pio.limit = 0x10000;
	bus->pio.name = "port";
	bus->mmio.limit = UINT64_MAX;
	bus->mmio.name = "mmio";
	*out = bus;
	return BT_OK;
}

void iobus_destroy(struct iobus *bus)
{
	if (!bus)
		return;
	free(bus->pio.r);
	free(bus->mmio.r);
	free(bus);
}

/* Index of the first range whose end is above addr (n when none). */
static size_t space_lower_bound(const struct iobus_space *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].base + s->r[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct iobus_range *space_find(const struct iobus_space *s, uint64_t addr)
{
	size_t i = space_lower_bound(s, addr);
	if (i < s->n && s->r[i].base <= addr)
		return &s->r[i];
	return NULL;
}

static enum bt_status space_add(struct iobus_space *s, uint64_t base, uint64_t len,
				const struct iobus_ops *ops, void *opaque)
{
	if (len == 0 || !ops || !ops->read || !ops->write)
		return BT_ERR_INVALID;
	if (base >= s->limit || len > s->limit - base)
		return BT_ERR_RANGE;
	size_t i = space_lower_bound(s, base);
	if (i < s->n && s->r[i].base < base + len) {
		bt_err(LOG_DEV, "iobus: %s range %#llx+%#llx (%s) overlaps %#llx+%#llx (%s)",
		       s->name, (unsigned long long)base, (unsigned long long)len,
		       ops->name ? ops->name : "?", (unsigned long long)s->r[i].base,
		       (unsigned long long)s->r[i].len,
		       s->r[i].ops->name ? s->r[i].ops->name : "?");
		return BT_ERR_RANGE;
	}
	if (!BT_VEC_RESERVE(s->r, s->cap, s->n + 1, 16))
		return BT_ERR_NOMEM;
	memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
	s->r[i] = (struct iobus_range){.base = base, .len = len, .ops = ops, .opaque = opaque};
	s->n++;
	return BT_OK;
}

static enum bt_status space_remove(struct iobus_space *s, uint64_t base)
{
	size_t i = space_lower_bound(s, base);
	if (i >= s->n || s->r[i].base != base)
		return BT_ERR_NOTFOUND;
	memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof(*s->r));
	s->n--;
	return BT_OK;
}

enum bt_status iobus_register_pio(struct iobus *bus, uint16_t port, unsigned len,
				  const struct iobus_ops *ops, void *opaque)
{
	if (!bus)
		return BT_ERR_INVALID;
	return space_add(&bus->pio, port, len, ops, opaque);
}

enum bt_status iobus_register_mmio(struct iobus *bus, gpa_t gpa, uint64_t len,
				   const struct iobus_ops *ops, void *opaque)
{
	if (!bus)
		return BT_ERR_INVALID;
	return space_add(&bus->mmio, gpa, len, ops, opaque);
}

enum bt_status iobus_unregister_pio(struct iobus *bus, uint16_t port)
{
	if (!bus)
		return BT_ERR_INVALID;
	return space_remove(&bus->pio, port);
}

enum bt_status iobus_unregister_mmio(struct iobus *bus, gpa_t gpa)
{
	if (!bus)
		return BT_ERR_INVALID;
	return space_remove(&bus->mmio, gpa);
}

static void note_unclaimed(struct iobus *bus, bool pio, uint64_t addr, bool write)
{
	bus->unclaimed++;
	if (pio) {
		uint16_t p = (uint16_t)addr;
		if (bus->pio_logged[p / 8] & (1u << (p % 8)))
			return;
		bus->pio_logged[p / 8] |= (uint8_t)(1u << (p % 8));
		bt_info(LOG_DEV, "unclaimed port %#06x: first %s%s (further accesses not logged)",
			p, write ? "write" : "read", write ? "" : ", returning all ones");
		return;
	}
	uint64_t page = addr & GUEST_PAGE_MASK;
	for (size_t i = 0; i < bus->n_mmio_logged; i++)
		if (bus->mmio_logged[i] == page)
			return;
	if (bus->n_mmio_logged == IOBUS_MMIO_LOGGED_MAX)
		return;
	bus->mmio_logged[bus->n_mmio_logged++] = page;
	bt_info(LOG_DEV,
		"unclaimed MMIO %#llx: first %s (further accesses to this page not logged)",
		(unsigned long long)addr, write ? "write" : "read");
}

static uint64_t size_mask(unsigned size)
{
	return size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
}

/* True when some range of s holds a byte of [addr, addr + size). */
static bool space_touches(const struct iobus_space *s, uint64_t addr, unsigned size)
{
	size_t i = space_lower_bound(s, addr);
	return i < s->n && s->r[i].base - addr < size;
}

/* Address of byte i of an access at addr: ports wrap at 64 KiB. */
static uint64_t byte_addr(const struct iobus_space *s, uint64_t addr, unsigned i)
{
	return s->limit == 0x10000 ? (addr + i) & 0xffff : addr + i;
}

/* Read size bytes at addr from space s (pio selects the logging flavour). */
static uint64_t space_read(struct iobus *bus, struct iobus_space *s, bool pio, uint64_t addr,
			   unsigned size)
{
	const struct iobus_range *r = space_find(s, addr);
	if (r &&
	    (size == 1 || (!(r->ops->flags & IOBUS_SPLIT_BYTES) &&
			   (addr - r->base + size <= r->len || (r->ops->flags & IOBUS_WHOLE))))) {
		uint64_t v = 0;
		r->ops->read(r->opaque, addr - r->base, size, &v);
		return v & size_mask(size);
	}
	if (!r && (size == 1 || !space_touches(s, addr, size))) {
		note_unclaimed(bus, pio, addr, false);
		return size_mask(size);
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= space_read(bus, s, pio, byte_addr(s, addr, i), 1) << (8 * i);
	return v;
}

static void space_write(struct iobus *bus, struct iobus_space *s, bool pio, uint64_t addr,
			unsigned size, uint64_t value)
{
	const struct iobus_range *r = space_find(s, addr);
	if (r &&
	    (size == 1 || (!(r->ops->flags & IOBUS_SPLIT_BYTES) &&
			   (addr - r->base + size <= r->len || (r->ops->flags & IOBUS_WHOLE))))) {
		r->ops->write(r->opaque, addr - r->base, size, value & size_mask(size));
		return;
	}
	if (!r && (size == 1 || !space_touches(s, addr, size))) {
		note_unclaimed(bus, pio, addr, true);
		return;
	}
	for (unsigned i = 0; i < size; i++)
		space_write(bus, s, pio, byte_addr(s, addr, i), 1, (value >> (8 * i)) & 0xff);
}

enum bt_status iobus_pio_in(struct iobus *bus, uint16_t port, unsigned size, uint32_t *value)
{
	if (!bus || !value || (size != 1 && size != 2 && size != 4))
		return BT_ERR_INVALID;
	*value = (uint32_t)space_read(bus, &bus->pio, true, port, size);
	return BT_OK;
}

enum bt_status iobus_pio_out(struct iobus *bus, uint16_t port, unsigned size, uint32_t value)
{
	if (!bus || (size != 1 && size != 2 && size != 4))
		return BT_ERR_INVALID;
	space_write(bus, &bus->pio, true, port, size, value);
	return BT_OK;
}

enum bt_status iobus_mmio_read(struct iobus *bus, gpa_t gpa, unsigned size, uint64_t *value)
{
	if (!bus || !value || (size != 1 && size != 2 && size != 4 && size != 8))
		return BT_ERR_INVALID;
	*value = space_read(bus, &bus->mmio, false, gpa, size);
	return BT_OK;
}

enum bt_status iobus_mmio_write(struct iobus *bus, gpa_t gpa, unsigned size, uint64_t value)
{
	if (!bus || (size != 1 && size != 2 && size != 4 && size != 8))
		return BT_ERR_INVALID;
	space_write(bus, &bus->mmio, false, gpa, size, value);
	return BT_OK;
}

bool iobus_mmio_claimed(const struct iobus *bus, gpa_t gpa)
{
	return bus && space_find(&bus->mmio, gpa) != NULL;
}

uint64_t iobus_unclaimed_accesses(const struct iobus *bus)
{
	return bus ? bus->unclaimed : 0;
}

void iobus_dump(const struct iobus *bus, FILE *f)
{
	const struct iobus_space *spaces[] = {&bus->pio, &bus->mmio};
	for (size_t k = 0; k < BT_ARRAY_SIZE(spaces); k++) {
		const struct iobus_space *s = spaces[k];
		for (size_t i = 0; i < s->n; i++)
			fprintf(f, "%s %#llx-%#llx %s\n", s->name, (unsigned long long)s->r[i].base,
				(unsigned long long)(s->r[i].base + s->r[i].len - 1),
				s->r[i].ops->name ? s->r[i].ops->name : "?");
	}
}
