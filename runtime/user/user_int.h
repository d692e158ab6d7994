/* Internal state of runtime/user, shared by its files only. */
#ifndef BT_RUNTIME_USER_USER_INT_H
#define BT_RUNTIME_USER_USER_INT_H

#include <Zydis/Zydis.h>

#include "runtime/user/user.h"
#include "runtime/user/ustub_ctl.h"

#define USER_MAP_BUCKETS 1024
#define USER_MAX_PENDING 256
#define USER_NO_CR3	 (~0ull)

/* One page mapped into a stub (the stub's "TLB entry"). */
struct user_map {
	gva_t va;	 /* page aligned */
	gpa_t gpa;	 /* page aligned */
	uint8_t prot;	 /* PROT_* as mapped */
	uint8_t large;	 /* came from a 2 MiB / 1 GiB guest page */
	gpa_t tables[4]; /* the page tables its walk went through ([level - 1], ~0: none) */
	struct user_map *next;
};

/* A guest page-table page some mapping of an address space was walked
 * through: writes to it are watched (GUESTMEM_PAGE_PTABLE + the code-write
 * hook) and drop what its entries mapped. */
struct user_pt {
	gpa_t gpa;	 /* page aligned */
	gva_t base;	 /* first address its entry 0 maps */
	uint8_t level;	 /* 4 PML4, 3 PDPT, 2 PD, 1 PT */
	uint8_t aliased; /* reached at another base or level too: any write flushes all */
	uint32_t refs;	 /* mappings walked through it */
	uint8_t dirty;	 /* written since watched: not watched, checked before the stub runs */
	uint64_t *snap;	 /* its entries when it was first written (dirty, not aliased) */
	struct user_pt *next;
};

#define USER_PT_BUCKETS 256

struct user_range {
	gva_t va;
	uint64_t len;
};

/* One guest address space and its stub. */
struct user_as {
	uint64_t cr3; /* PML4 guest-physical address, USER_NO_CR3 when unused */
	struct ustub stub;
	uint64_t epoch;	   /* flush epoch its mappings belong to */
	uint64_t last_use; /* LRU clock */
	struct user_map *buckets[USER_MAP_BUCKETS];
	size_t n_maps, n_large;
	struct user_pt *pts[USER_PT_BUCKETS];
	size_t n_pts, n_dirty;
	struct user_range pending[USER_MAX_PENDING]; /* drops to apply before it runs */
	unsigned n_pending;
	/* pages whose guest PTE only lost write access (or D): made read-only
	 * with mprotect instead of dropped (fork's copy-on-write), collected
	 * and applied by user_apply_pending */
	gva_t down[USER_MAX_PENDING];
	unsigned n_down;
	bool pending_all;
	bool fpu_valid;	 /* fpu_copy is what the stub holds */
	bool pf_pending; /* a guest #PF was delivered from pf_rip for pf_addr */
	uint8_t pf_kind;
	gva_t pf_addr, pf_rip;
	uint8_t fpu_copy[512]; /* last FXSAVE image loaded into / read from it */
};

struct user_mode {
	struct user_config cfg;
	int image_fd;
	struct user_as **as;
	unsigned n_as;
	uint64_t epoch;
	uint64_t clock;
	volatile pid_t running;	  /* pid of the stub running guest code, for user_kick */
	struct user_as *fpu_lazy; /* its stub holds the FPU state cfg.abi->fxsave lacks */
	struct user_map *free_maps;
	/* per guest RAM page (by memfd offset): watched as a page table by some
	 * address space / mapped writable in some stub */
	uint16_t *ptw; /* address spaces watching it */
	uint8_t *umw;
	uint64_t n_pages;
	ZydisDecoder dec64, dec32;
	struct ustub_stats sst;
	struct user_stats st;
	struct ustub spare[USER_POOL_MAX]; /* user_pool.c */
	unsigned n_spare;
};

/* user.c */
struct user_map *user_map_lookup(struct user_as *as, gva_t page);
enum bt_status user_map_page(struct user_mode *u, struct user_as *as, gva_t page, gpa_t gpa,
			     int prot, bool large, const gpa_t tables[4]);
/* The bookkeeping of user_map_page without its host call: the caller
 * mapped the page (a batch, user_fault.c). */
enum bt_status user_map_record(struct user_mode *u, struct user_as *as, gva_t page, gpa_t gpa,
			       int prot, bool large, const gpa_t tables[4]);
enum bt_status user_drop_range(struct user_mode *u, struct user_as *as, gva_t start, uint64_t len);
/* A granted user write to page gpa, which is watched as a page table: if
 * it is one of `tables` (the walk of the write), refuse; otherwise the
 * watch is stale (the frame was freed and reused): flush the address spaces
 * that watch it and stop watching it. */
enum bt_status user_unwatch(struct user_mode *u, gpa_t gpa, const gpa_t tables[4]);
enum bt_status user_apply_pending(struct user_mode *u, struct user_as *as);
/* If the guest maps the address of the stub's own page (in the current
 * CR3, which must be as's) or a guest page is mapped there, move the stub's
 * page to a page the guest does not map (USTUB_BASE downwards). */
enum bt_status user_stub_clear(struct user_mode *u, struct user_as *as);
/* Index of gpa's page in ptw/umw, or false if not RAM. */
bool user_page_index(const struct user_mode *u, gpa_t gpa, uint64_t *idx);

/* user_pool.c: take a spare stub (false: none left); kill them all. */
bool user_pool_take(struct user_mode *u, struct ustub *out);
void user_pool_fini(struct user_mode *u);

/* user_fault.c: a host SIGSEGV at addr in the stub of as.  *handled: the
 * page is now mapped, resume; otherwise ev describes the guest exception. */
enum bt_status user_fault(struct user_mode *u, struct user_as *as, gva_t addr, bool host_maperr,
			  bool exec_hint, bool *handled, struct user_event *ev);
/* Before the stub runs again after a guest #PF: if the guest now grants
 * the access and resumes the same instruction, map the page now (saves a
 * stop). */
enum bt_status user_prefault(struct user_mode *u, struct user_as *as);
/* Guest instruction bytes at rip (user fetch); returns how many. */
size_t user_fetch_insn(struct user_mode *u, gva_t rip, uint8_t *buf, size_t len);

#endif
