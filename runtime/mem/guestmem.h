/*
 * Guest physical memory: ONE memfd holding all guest RAM, mapped once
 * (MAP_SHARED) in the runtime; user stubs later map pages of the same memfd
 * (guestmem_fd() + guestmem_gpa_to_offset()).
 *
 * Physical layout (a region list, at most two RAM regions):
 *   [0, min(size, GUESTMEM_HOLE_START))          low RAM, memfd offset 0
 *   [GUESTMEM_HOLE_START, 4 GiB)                 32-bit MMIO hole (NOT RAM):
 *                                                IOAPIC 0xfec00000, LAPIC
 *                                                0xfee00000, PCI/virtio windows
 *   [4 GiB, 4 GiB + size - low)                  high RAM (only if size > hole)
 * Anything that is not RAM is MMIO: the caller routes it to the bus.
 *
 * Code-page write watch: one flags byte per RAM page.  The code cache sets
 * GUESTMEM_PAGE_CODE on pages holding translated guest code with
 * guestmem_page_set_flags(); that immediately revokes every writable
 * software-TLB entry of registered soft-MMUs for the page (the listeners),
 * so guest stores to it take the soft-MMU slow path, which calls the
 * code-write hook BEFORE the bytes land.  guestmem_write() (device DMA,
 * loaders) calls the hook too.  Raw host pointers from
 * guestmem_gpa_to_host() do NOT: use them for reads, or call
 * guestmem_notify_write() yourself before writing.
 *
 * Thread safety: the region list is immutable after create; flags are
 * plain bytes (one vCPU thread, or the caller serialises).
 */
#ifndef BT_RUNTIME_MEM_GUESTMEM_H
#define BT_RUNTIME_MEM_GUESTMEM_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

#define GUESTMEM_HOLE_START 0xc0000000ull  /* start of the 32-bit MMIO hole (1 GiB) */
#define GUESTMEM_HIGH_START 0x100000000ull /* RAM above the hole starts at 4 GiB */
#define GUESTMEM_MIN_SIZE   (1ull << 20)   /* at least 1 MiB of RAM */
#define GUESTMEM_MAX_SIZE   (1ull << 40)   /* 1 TiB: far below any MAXPHYADDR we use */

#define GUESTMEM_LAPIC_BASE  0xfee00000ull
#define GUESTMEM_IOAPIC_BASE 0xfec00000ull

/* Per-page flags (guestmem_page_flags()). */
enum guestmem_page_flag {
	GUESTMEM_PAGE_CODE = 1u << 0,	/* page holds translated code (runtime/cache) */
	GUESTMEM_PAGE_PTABLE = 1u << 1, /* a page table user stubs map through (runtime/user) */
	/* either: writes reach the code-write hook first, and the page is never
	 * writable in a software TLB or a user stub */
	GUESTMEM_PAGE_WATCHED = GUESTMEM_PAGE_CODE | GUESTMEM_PAGE_PTABLE,
};

/* One RAM region: [gpa, gpa + size) is memfd [offset, offset + size). */
struct guestmem_region {
	gpa_t gpa;
	uint64_t size;
	uint64_t offset;
};

#define GUESTMEM_MAX_REGIONS 2

struct guestmem; /* opaque */

/*
 * Called before a write of len bytes at gpa lands on a watched page
 * (GUESTMEM_PAGE_WATCHED; once per page touched; gpa/len clipped to the
 * page).  The code cache invalidates the page's translations and clears
 * GUESTMEM_PAGE_CODE; the user-mode side updates its stubs and clears
 * GUESTMEM_PAGE_PTABLE; each owns its own flag.
 */
typedef void (*guestmem_code_write_fn)(void *opaque, gpa_t gpa, size_t len);

/*
 * Called when a page becomes watched (a GUESTMEM_PAGE_WATCHED flag is set
 * on a page that had none): every software TLB or user stub holding a
 * writable mapping of gpa_page must drop its write permission.  Registered
 * by the soft-MMU (mmu_init) and the user-mode side.
 */
typedef void (*guestmem_protect_fn)(void *opaque, gpa_t gpa_page);

#define GUESTMEM_MAX_LISTENERS 16

/* Parse a --mem value: decimal bytes with an optional binary suffix
 * K, M, G or T (optionally followed by "iB" or "B"): "512M", "4GiB".
 * BT_ERR_INVALID for anything else or on overflow (no size check). */
enum bt_status guestmem_parse_size(const char *s, uint64_t *out);

/* Create guest RAM of `size` bytes (multiple of 4 KiB, MIN..MAX). */
enum bt_status guestmem_create(uint64_t size, struct guestmem **out);
void guestmem_destroy(struct guestmem *gm);

uint64_t guestmem_size(const struct guestmem *gm);	/* total RAM bytes */
int guestmem_fd(const struct guestmem *gm);		/* the memfd */
uint8_t *guestmem_host_base(const struct guestmem *gm); /* mapping of memfd offset 0 */
size_t guestmem_nregions(const struct guestmem *gm);
const struct guestmem_region *guestmem_region(const struct guestmem *gm, size_t i);
/* End of low RAM (exclusive): min(size, GUESTMEM_HOLE_START). */
gpa_t guestmem_low_end(const struct guestmem *gm);

/* Host pointer for [gpa, gpa+len) if the WHOLE range is RAM, else NULL.
 * len 0 is treated as 1. */
void *guestmem_gpa_to_host(const struct guestmem *gm, gpa_t gpa, size_t len);
bool guestmem_is_ram(const struct guestmem *gm, gpa_t gpa, size_t len);
/* memfd offset of gpa (RAM only): BT_ERR_RANGE otherwise. */
enum bt_status guestmem_gpa_to_offset(const struct guestmem *gm, gpa_t gpa, uint64_t *offset);

/* Copy to/from RAM; BT_ERR_RANGE unless the whole range is RAM.
 * guestmem_write() calls the code-write hook for watched pages first. */
enum bt_status guestmem_read(const struct guestmem *gm, gpa_t gpa, void *buf, size_t len);
enum bt_status guestmem_write(struct guestmem *gm, gpa_t gpa, const void *buf, size_t len);

/* Flags of the page holding gpa; 0 for non-RAM. */
uint8_t guestmem_page_flags(const struct guestmem *gm, gpa_t gpa);
/* The flag bytes by host address, for code that must read them without
 * a call (the soft-MMU's second-level TLB, runtime/mmu/mmu_tlb.c): the
 * page at host pointer p (into RAM) has its flags at
 * flags[(p - host) >> GUEST_PAGE_SHIFT], and bit c % 64 of populated[c /
 * 64], c = (p - host) >> GUESTMEM_POPULATE_SHIFT, says its chunk was
 * populated (guestmem_gpa_to_host does that on a first use).  All valid
 * as long as gm. */
#define GUESTMEM_POPULATE_SHIFT 21
void guestmem_flag_map(const struct guestmem *gm, const uint8_t **host, const uint8_t **flags,
		       const uint64_t **populated);
/* Set/clear flags of the RAM page holding gpa (BT_ERR_RANGE if not RAM).
 * Setting GUESTMEM_PAGE_CODE revokes writable TLB entries (listeners). */
enum bt_status guestmem_page_set_flags(struct guestmem *gm, gpa_t gpa, uint8_t flags);
enum bt_status guestmem_page_clear_flags(struct guestmem *gm, gpa_t gpa, uint8_t flags);

/* The code cache registers the code-write hook (one; NULL removes it). */
void guestmem_set_code_write_hook(struct guestmem *gm, guestmem_code_write_fn fn, void *opaque);
/* Call the hook for every watched page in [gpa, gpa+len) (no-op otherwise). */
void guestmem_notify_write(struct guestmem *gm, gpa_t gpa, size_t len);

/* Soft-MMU registration (see guestmem_protect_fn). */
enum bt_status guestmem_add_listener(struct guestmem *gm, guestmem_protect_fn fn, void *opaque);
void guestmem_remove_listener(struct guestmem *gm, guestmem_protect_fn fn, void *opaque);

#endif
