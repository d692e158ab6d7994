/*
 * runtime/mmu internals shared by mmu.c (walk, TLB) and mmu_pcid.c (the
 * entries of PCIDs that are not current).  Not for other modules.
 */
#ifndef BT_RUNTIME_MMU_MMU_INT_H
#define BT_RUNTIME_MMU_MMU_INT_H

#include "runtime/mmu/mmu.h"

/* tlb_meta[set][i] bits */
#define MMU_TLBM_VALID	0x01
#define MMU_TLBM_GLOBAL 0x02
#define MMU_TLBM_USER	0x04
#define MMU_TLBM_2M	0x10
#define MMU_TLBM_1G	0x20
#define MMU_TLBM_LARGE	(MMU_TLBM_2M | MMU_TLBM_1G)

#define TLB_MASK    ((uint64_t)VCPU_TLB_ENTRIES - 1)
#define TLB_INVALID (~0ull)

enum { TLB_KERNEL = 0, TLB_USER = 1 };

/* The second-level TLB (mmu_tlb.c, which states its invariants). */
enum { L2_KERNEL = 0, L2_USER = 1, L2_SMAP = 2, MMU_L2_NSETS };
/* log2 of each array's entries (40 bytes each; sizes: docs/mmu.md) */
#define MMU_L2_KERNEL_BITS 12
#define MMU_L2_USER_BITS   12
#define MMU_L2_SMAP_BITS   11
#define MMU_L2_W	   0x100 /* in mmu_l2_entry.tag: writes allowed, D was set */

struct mmu_l2_entry {
	uint64_t tag; /* page-aligned gva | MMU_TLBM_* | MMU_L2_W; 0: empty */
	int64_t addend;
	gpa_t gpa_page;
	uint64_t gen;  /* generation it was made in (gen_global or gen_local) */
	uint64_t lgen; /* lgen[its half] then (entries from 2M/1G pages) */
};

/* A whole 2M/1G page (mmu_tlb.c): any 4 KiB piece is refilled from it. */
#define MMU_L2_LARGE_BITS 9
struct mmu_l2_large {
	uint64_t tag;	/* page-aligned gva of the large page | MMU_TLBM_* | MMU_L2_W; 0: empty */
	int64_t addend; /* host = gva + addend, for every byte of it */
	gpa_t gpa;	/* its guest-physical base */
	uint64_t gen;
};

struct mmu_l2 {
	struct mmu_l2_entry *e[MMU_L2_NSETS];
	uint64_t clock;	     /* the last generation number handed out */
	uint64_t gen_global; /* current generation of global entries */
	uint64_t gen_local;  /* ... of the current PCID's non-global entries */
	uint64_t floor;	     /* PCID generations at or below are dead */
	uint64_t lgen[2];    /* large-page pieces, user half [0], kernel half [1] */
	bool large[2];	     /* pieces were inserted in that half since lgen changed */
	const uint8_t *gm_host, *gm_flags; /* guestmem_flag_map */
	const uint64_t *gm_populated;
	struct mmu_l2_large *lpage[2];	     /* large pages of abi->tlb [0], abi->utlb [1] */
	uint64_t pcid_gen[MMU_CR3_PCID + 1]; /* each PCID's gen_local when not current */
};

/* mmu_tlb.c (general registers only: see there) */
struct vcpu_tlb_entry *mmu_tlb_entry(struct mmu *mmu, unsigned set, size_t i);
/* Invalidate entry i of a set, keeping the counts and bitmaps (invariant 4). */
void mmu_tlb_invalidate(struct mmu *mmu, unsigned set, size_t i);
/* Put the first-level entry of `page` (index from its low bits); the entry
 * it replaces goes to the second level. */
void mmu_tlb_put(struct mmu *mmu, unsigned set, gva_t page, bool can_write, int64_t addend,
		 gpa_t gpa_page, uint8_t meta);
void mmu_l2_insert(struct mmu *mmu, unsigned l2set, gva_t page, bool can_write, int64_t addend,
		   gpa_t gpa_page, uint8_t meta);
void mmu_l2_flush_all(struct mmu *mmu);
void mmu_l2_flush_nonglobal(struct mmu *mmu);
/* every PCID's non-global entries (a CR3 state load) */
void mmu_l2_drop_pcids(struct mmu *mmu);
void mmu_l2_pcid_switch(struct mmu *mmu, unsigned old, unsigned new, bool noflush);
void mmu_l2_invlpg(struct mmu *mmu, gva_t gva);
/* A walk ended in a 2M/1G leaf (meta says which) of RAM in one guestmem
 * region, host = gva + addend over all of it: remember it for `set`. */
void mmu_l2_insert_large(struct mmu *mmu, unsigned set, gva_t base, bool can_write, int64_t addend,
			 gpa_t gpa, uint8_t meta);
void mmu_flush_notify(struct mmu *mmu, enum mmu_flush_kind kind, gva_t gva);

/* mmu_pcid.c */
/* The CR3 load changed the PCID from `old` to `new`: put old's non-global
 * entries aside, bring new's back if `noflush` (else drop them), tell the
 * flush hook (MMU_FLUSH_PCID). */
void mmu_pcid_switch(struct mmu *mmu, unsigned old, unsigned new, bool noflush);
/* Forget the entries of every PCID that is not current (flush all). */
void mmu_pcid_drop_all(struct mmu *mmu);
/* gpa_page became watched: revoke write access in the kept entries too. */
void mmu_pcid_protect(struct mmu *mmu, gpa_t gpa_page);
void mmu_pcid_fini(struct mmu *mmu);

#endif
