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

struct vcpu_tlb_entry *mmu_tlb_entry(struct mmu *mmu, unsigned set, size_t i);
/* Invalidate entry i of a set, keeping the counts and bitmaps (invariant 4). */
void mmu_tlb_invalidate(struct mmu *mmu, unsigned set, size_t i);
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
