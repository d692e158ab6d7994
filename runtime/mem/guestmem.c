/*
 * Guest physical memory (see guestmem.h for the layout).
 *
 * Owns: the memfd holding all guest RAM, its one MAP_SHARED mapping in the
 * runtime, the RAM region list, the per-page flags array, the code-write
 * hook and the soft-MMU listeners.
 *
 * Invariants
 *  1. regions[] is sorted by gpa, page-aligned, non-overlapping, and maps
 *     memfd offsets [0, size) contiguously in gpa order; it never changes
 *     after guestmem_create().
 *  2. flags[] has one byte per RAM page, indexed by memfd offset >> 12.
 *  3. Any gpa range not entirely inside one region is not RAM: lookups
 *     return NULL / BT_ERR_RANGE, never a pointer past the mapping.
 *  4. a GUESTMEM_PAGE_WATCHED flag set on a page => every listener was told before
 *     guestmem_page_set_flags() returned (no writable TLB entry survives).
 */
#include "runtime/mem/guestmem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pretrans/base/log.h"

/*
 * RAM is populated 2 MiB at a time, on the first host pointer handed out
 * into a chunk (MADV_POPULATE_WRITE: one system call for 512 pages).  On
 * this project's hosts a first touch of a shmem page costs 15-20 us and a
 * populated page 1.7-3 us; a Debian boot touches ~20,000 guest pages
 * (docs/runtime.md "Getting code").  The cost is host memory in 2 MiB
 * steps, as a VMM whose RAM is backed by transparent huge pages has.
 */
#define POPULATE_SHIFT GUESTMEM_POPULATE_SHIFT
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct guestmem_listener {
	guestmem_protect_fn fn;
	void *opaque;
};

struct guestmem {
	int fd;
	uint8_t *host; /* mapping of memfd [0, size) */
	uint64_t size;
	size_t nregions;
	struct guestmem_region regions[GUESTMEM_MAX_REGIONS];
	uint8_t *flags;	     /* one byte per page, by memfd offset */
	uint64_t *populated; /* one bit per POPULATE_CHUNK of the memfd */
	guestmem_code_write_fn code_write_fn;
	void *code_write_opaque;
	size_t nlisteners;
	struct guestmem_listener listeners[GUESTMEM_MAX_LISTENERS];
};

enum bt_status guestmem_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	uint64_t v = 0;
	unsigned shift = 0;
	const char *p = s;

	if (!s || !out || *p < '0' || *p > '9')
		return BT_ERR_INVALID;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return BT_ERR_INVALID;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		const char *u = strchr(units, *p >= 'a' ? *p - 'a' + 'A' : *p);
		if (!u)
			return BT_ERR_INVALID;
		shift = 10 * (unsigned)(u - units + 1);
		p++;
		if (p[0] == 'i' && p[1] == 'B')
			p += 2;
		else if (p[0] == 'B')
			p++;
		if (*p)
			return BT_ERR_INVALID;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return BT_ERR_INVALID;
	*out = v << shift;
	return BT_OK;
}

enum bt_status guestmem_create(uint64_t size, struct guestmem **out)
{
	struct guestmem *gm;
	enum bt_status st = BT_ERR_NOMEM;
	uint64_t low;

	if (!out || size < GUESTMEM_MIN_SIZE || size > GUESTMEM_MAX_SIZE ||
	    (size & (GUEST_PAGE_SIZE - 1))) {
		bt_err(LOG_MMU,
		       "guestmem: invalid RAM size %llu bytes (want a multiple of 4 KiB, "
		       "1 MiB .. 1 TiB)",
		       (unsigned long long)size);
		return BT_ERR_INVALID;
	}
	gm = calloc(1, sizeof(*gm));
	if (!gm)
		return BT_ERR_NOMEM;
	gm->size = size;
	gm->flags = calloc(size >> GUEST_PAGE_SHIFT, 1);
	gm->populated = calloc((((size - 1) >> POPULATE_SHIFT) >> 6) + 1, sizeof(uint64_t));
	if (!gm->flags || !gm->populated)
		goto err_free_flags;
	gm->fd = memfd_create("btvm-guest-ram", MFD_CLOEXEC);
	st = BT_ERR_IO;
	if (gm->fd < 0) {
		bt_err(LOG_MMU, "guestmem: memfd_create failed: %s", strerror(errno));
		goto err_free_flags;
	}
	if (ftruncate(gm->fd, (off_t)size) != 0) {
		bt_err(LOG_MMU, "guestmem: ftruncate of the RAM memfd to %llu bytes failed: %s",
		       (unsigned long long)size, strerror(errno));
		goto err_close_fd;
	}
	gm->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, gm->fd, 0);
	if (gm->host == MAP_FAILED) {
		bt_err(LOG_MMU, "guestmem: mapping %llu bytes of guest RAM failed: %s",
		       (unsigned long long)size, strerror(errno));
		goto err_close_fd;
	}
	low = BT_MIN(size, GUESTMEM_HOLE_START);
	gm->regions[0] = (struct guestmem_region){.gpa = 0, .size = low, .offset = 0};
	gm->nregions = 1;
	if (size > low) {
		gm->regions[1] = (struct guestmem_region){
		    .gpa = GUESTMEM_HIGH_START, .size = size - low, .offset = low};
		gm->nregions = 2;
	}
	*out = gm;
	return BT_OK;

err_close_fd:
	close(gm->fd);
err_free_flags:
	free(gm->flags);
	free(gm->populated);
	free(gm);
	return st;
}

void guestmem_destroy(struct guestmem *gm)
{
	if (!gm)
		return;
	munmap(gm->host, gm->size);
	close(gm->fd);
	free(gm->flags);
	free(gm->populated);
	free(gm);
}

uint64_t guestmem_size(const struct guestmem *gm)
{
	return gm->size;
}

int guestmem_fd(const struct guestmem *gm)
{
	return gm->fd;
}

uint8_t *guestmem_host_base(const struct guestmem *gm)
{
	return gm->host;
}

size_t guestmem_nregions(const struct guestmem *gm)
{
	return gm->nregions;
}

const struct guestmem_region *guestmem_region(const struct guestmem *gm, size_t i)
{
	return i < gm->nregions ? &gm->regions[i] : NULL;
}

gpa_t guestmem_low_end(const struct guestmem *gm)
{
	return gm->regions[0].size;
}

/* The region holding all of [gpa, gpa+len), or NULL.  len >= 1. */
static const struct guestmem_region *region_of(const struct guestmem *gm, gpa_t gpa, size_t len)
{
	for (size_t i = 0; i < gm->nregions; i++) {
		const struct guestmem_region *r = &gm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

/* Populate the chunks of memfd [off, off + len) not populated yet (see
 * POPULATE_SHIFT).  A failure only means the pages fault in one by one. */
static void populate(const struct guestmem *gm, uint64_t off, size_t len)
{
	for (uint64_t c = off >> POPULATE_SHIFT; c <= (off + len - 1) >> POPULATE_SHIFT; c++) {
		uint64_t bit = 1ull << (c & 63);
		if (__atomic_fetch_or(&gm->populated[c >> 6], bit, __ATOMIC_RELAXED) & bit)
			continue;
		uint64_t lo = c << POPULATE_SHIFT;
		uint64_t n = gm->size - lo < (1ull << POPULATE_SHIFT) ? gm->size - lo
								      : 1ull << POPULATE_SHIFT;
		(void)madvise(gm->host + lo, n, MADV_POPULATE_WRITE);
	}
}

void *guestmem_gpa_to_host(const struct guestmem *gm, gpa_t gpa, size_t len)
{
	const struct guestmem_region *r = region_of(gm, gpa, len ? len : 1);
	if (!r)
		return NULL;
	uint64_t off = r->offset + (gpa - r->gpa), last = off + (len ? len - 1 : 0);
	uint64_t c0 = off >> POPULATE_SHIFT, c1 = last >> POPULATE_SHIFT;
	if (!(__atomic_load_n(&gm->populated[c0 >> 6], __ATOMIC_RELAXED) & (1ull << (c0 & 63))) ||
	    !(__atomic_load_n(&gm->populated[c1 >> 6], __ATOMIC_RELAXED) & (1ull << (c1 & 63))))
		populate(gm, off, len ? len : 1);
	return gm->host + off;
}

bool guestmem_is_ram(const struct guestmem *gm, gpa_t gpa, size_t len)
{
	return region_of(gm, gpa, len ? len : 1) != NULL;
}

enum bt_status guestmem_gpa_to_offset(const struct guestmem *gm, gpa_t gpa, uint64_t *offset)
{
	const struct guestmem_region *r = region_of(gm, gpa, 1);
	if (!r)
		return BT_ERR_RANGE;
	*offset = r->offset + (gpa - r->gpa);
	return BT_OK;
}

enum bt_status guestmem_read(const struct guestmem *gm, gpa_t gpa, void *buf, size_t len)
{
	const void *src;

	if (!len)
		return BT_OK;
	src = guestmem_gpa_to_host(gm, gpa, len);
	if (!src)
		return BT_ERR_RANGE;
	memcpy(buf, src, len);
	return BT_OK;
}

enum bt_status guestmem_write(struct guestmem *gm, gpa_t gpa, const void *buf, size_t len)
{
	void *dst;

	if (!len)
		return BT_OK;
	dst = guestmem_gpa_to_host(gm, gpa, len);
	if (!dst)
		return BT_ERR_RANGE;
	guestmem_notify_write(gm, gpa, len);
	memcpy(dst, buf, len);
	return BT_OK;
}

/* Pointer to the flag byte of the page holding gpa, or NULL if not RAM. */
static uint8_t *flag_of(const struct guestmem *gm, gpa_t gpa)
{
	const struct guestmem_region *r = region_of(gm, gpa, 1);
	if (!r)
		return NULL;
	return &gm->flags[(r->offset + (gpa - r->gpa)) >> GUEST_PAGE_SHIFT];
}

uint8_t guestmem_page_flags(const struct guestmem *gm, gpa_t gpa)
{
	const uint8_t *f = flag_of(gm, gpa);
	return f ? *f : 0;
}

void guestmem_flag_map(const struct guestmem *gm, const uint8_t **host, const uint8_t **flags,
		       const uint64_t **populated)
{
	*host = gm->host;
	*flags = gm->flags;
	*populated = gm->populated;
}

enum bt_status guestmem_page_set_flags(struct guestmem *gm, gpa_t gpa, uint8_t flags)
{
	uint8_t *f = flag_of(gm, gpa);
	uint8_t was;

	if (!f)
		return BT_ERR_RANGE;
	was = *f;
	*f = (uint8_t)(was | flags);
	if ((flags & GUESTMEM_PAGE_WATCHED) && !(was & GUESTMEM_PAGE_WATCHED)) {
		for (size_t i = 0; i < gm->nlisteners; i++)
			gm->listeners[i].fn(gm->listeners[i].opaque, gpa & GUEST_PAGE_MASK);
	}
	return BT_OK;
}

enum bt_status guestmem_page_clear_flags(struct guestmem *gm, gpa_t gpa, uint8_t flags)
{
	uint8_t *f = flag_of(gm, gpa);

	if (!f)
		return BT_ERR_RANGE;
	*f = (uint8_t)(*f & ~flags);
	return BT_OK;
}

void guestmem_set_code_write_hook(struct guestmem *gm, guestmem_code_write_fn fn, void *opaque)
{
	gm->code_write_fn = fn;
	gm->code_write_opaque = opaque;
}

void guestmem_notify_write(struct guestmem *gm, gpa_t gpa, size_t len)
{
	gpa_t end, page;

	if (!gm->code_write_fn || !len || gpa + len < gpa)
		return;
	end = gpa + len;
	for (page = gpa & GUEST_PAGE_MASK; page < end; page += GUEST_PAGE_SIZE) {
		gpa_t lo = BT_MAX(page, gpa);
		gpa_t hi = BT_MIN(page + GUEST_PAGE_SIZE, end);
		if (guestmem_page_flags(gm, page) & GUESTMEM_PAGE_WATCHED)
			gm->code_write_fn(gm->code_write_opaque, lo, (size_t)(hi - lo));
	}
}

enum bt_status guestmem_add_listener(struct guestmem *gm, guestmem_protect_fn fn, void *opaque)
{
	if (!fn || gm->nlisteners >= GUESTMEM_MAX_LISTENERS)
		return BT_ERR_INVALID;
	gm->listeners[gm->nlisteners++] = (struct guestmem_listener){fn, opaque};
	return BT_OK;
}

void guestmem_remove_listener(struct guestmem *gm, guestmem_protect_fn fn, void *opaque)
{
	for (size_t i = 0; i < gm->nlisteners; i++) {
		if (gm->listeners[i].fn == fn && gm->listeners[i].opaque == opaque) {
			gm->listeners[i] = gm->listeners[--gm->nlisteners];
			return;
		}
	}
}
