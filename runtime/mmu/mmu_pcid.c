/*
 * PCIDs in the software TLB: the entries of address spaces that are not
 * current (CR4.PCIDE, SDM vol. 3 4.10.1).
 *
 * The TLB the translated code probes (abi->tlb, abi->utlb) has no PCID
 * tag: it holds the current PCID's entries and the global ones.  A CR3
 * load that changes the PCID moves the old PCID's non-global entries into
 * a store of its own and, when bit 63 of the new CR3 asks to keep the new
 * PCID's entries, moves that PCID's store back in.  So a guest that
 * switches between a handful of processes (Linux: 6 dynamic ASIDs a CPU)
 * finds each one's translations where it left them, as on hardware,
 * instead of walking its page tables again after every switch.  Entries
 * are cached permission decisions exactly as in the TLB itself; the guest
 * keeps them coherent the architectural way (a CR3 load without bit 63,
 * invlpg for the current PCID, a CR4.PGE or PCIDE toggle for all), which
 * Linux does with its per-ASID tlb_gen.
 *
 * Invariants
 *  1. A store's entries were valid, non-global entries of its PCID when
 *     put aside; no store holds the current PCID.
 *  2. Nothing is in a store that a flush of everything (mmu_flush_all,
 *     every mode change) would have removed: those drop every store.
 *  3. A page that becomes watched (a code page, a watched page table)
 *     loses write permission in the stores too (mmu_pcid_protect), so
 *     a restored entry never lets translated code write it inline.
 *  4. Restoring replaces whatever global entry holds the same index: the
 *     TLB is a cache, dropping an entry only costs a walk.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/mmu/mmu_int.h"

/* The store of `pcid`, or NULL. */
static struct mmu_pcid_store *store_find(struct mmu *mmu, unsigned pcid)
{
	for (unsigned i = 0; i < MMU_PCID_SLOTS; i++)
		if (mmu->pcid[i].used && mmu->pcid[i].pcid == pcid)
			return &mmu->pcid[i];
	return NULL;
}

static void store_drop(struct mmu_pcid_store *st)
{
	st->used = false;
	st->n[0] = st->n[1] = 0;
}

/* A store for `pcid`: its own, else a free one, else the least recently
 * used one, emptied. */
static struct mmu_pcid_store *store_get(struct mmu *mmu, unsigned pcid)
{
	struct mmu_pcid_store *st = store_find(mmu, pcid), *lru = NULL;
	if (st)
		return st;
	for (unsigned i = 0; i < MMU_PCID_SLOTS && !st; i++) {
		if (!mmu->pcid[i].used)
			st = &mmu->pcid[i];
		else if (!lru || mmu->pcid[i].stamp < lru->stamp)
			lru = &mmu->pcid[i];
	}
	if (!st)
		st = lru;
	store_drop(st);
	st->used = true;
	st->pcid = (uint16_t)pcid;
	return st;
}

static bool store_push(struct mmu_pcid_store *st, unsigned set, const struct vcpu_tlb_entry *e,
		       size_t idx, uint8_t meta)
{
	if (st->n[set] == st->cap[set]) {
		uint32_t cap = st->cap[set] ? st->cap[set] * 2 : 256;
		struct mmu_saved_tlb *ne = realloc(st->e[set], cap * sizeof(*ne));
		if (!ne)
			return false; /* the entry is simply not kept */
		st->e[set] = ne;
		st->cap[set] = cap;
	}
	struct mmu_saved_tlb *d = &st->e[set][st->n[set]++];
	d->e = *e;
	d->idx = (uint16_t)idx;
	d->meta = meta;
	return true;
}

/* Move the current PCID's non-global entries into st (NULL: just drop them). */
static void save_current(struct mmu *mmu, struct mmu_pcid_store *st)
{
	for (unsigned set = 0; set < 2; set++) {
		uint64_t bits[VCPU_TLB_ENTRIES / 64];
		memcpy(bits, mmu->tlb_local[set], sizeof(bits));
		for (size_t w = 0; w < VCPU_TLB_ENTRIES / 64; w++)
			for (uint64_t b = bits[w]; b; b &= b - 1) {
				size_t i = w * 64 + (size_t)__builtin_ctzll(b);
				if (st)
					(void)store_push(st, set, mmu_tlb_entry(mmu, set, i), i,
							 mmu->tlb_meta[set][i]);
				mmu_tlb_invalidate(mmu, set, i);
			}
	}
}

static void restore(struct mmu *mmu, struct mmu_pcid_store *st)
{
	for (unsigned set = 0; set < 2; set++)
		for (uint32_t k = 0; k < st->n[set]; k++) {
			const struct mmu_saved_tlb *d = &st->e[set][k];
			size_t i = d->idx;
			mmu_tlb_invalidate(mmu, set, i); /* a global entry there */
			*mmu_tlb_entry(mmu, set, i) = d->e;
			mmu->tlb_meta[set][i] = d->meta;
			mmu->tlb_valid[set][i / 64] |= 1ull << (i % 64);
			mmu->tlb_local[set][i / 64] |= 1ull << (i % 64);
			if (d->meta & MMU_TLBM_LARGE)
				mmu->n_large[set]++;
			if (d->meta & MMU_TLBM_1G)
				mmu->n_huge[set]++;
			mmu->stats.pcid_restored++;
		}
}

void mmu_pcid_switch(struct mmu *mmu, unsigned old, unsigned new, bool noflush)
{
	struct mmu_pcid_store *st = store_get(mmu, old);
	st->stamp = ++mmu->pcid_clock;
	save_current(mmu, st);
	mmu_l2_pcid_switch(mmu, old, new, noflush);
	mmu->stats.pcid_switches++;
	struct mmu_pcid_store *ns = store_find(mmu, new);
	bool kept = false;
	if (ns) {
		if (noflush) {
			restore(mmu, ns);
			kept = true;
			mmu->stats.pcid_kept++;
		}
		store_drop(ns); /* the current PCID has no store (invariant 1) */
	}
	mmu_flush_notify(mmu, MMU_FLUSH_PCID,
			 (gva_t)old | ((gva_t) new << 12) | (kept ? MMU_PCID_KEPT : 0));
}

void mmu_pcid_drop_all(struct mmu *mmu)
{
	for (unsigned i = 0; i < MMU_PCID_SLOTS; i++)
		store_drop(&mmu->pcid[i]);
}

void mmu_pcid_protect(struct mmu *mmu, gpa_t gpa_page)
{
	for (unsigned i = 0; i < MMU_PCID_SLOTS; i++) {
		struct mmu_pcid_store *st = &mmu->pcid[i];
		if (!st->used)
			continue;
		for (unsigned set = 0; set < 2; set++)
			for (uint32_t k = 0; k < st->n[set]; k++)
				if (st->e[set][k].e.gpa_page == gpa_page)
					st->e[set][k].e.tag_write = TLB_INVALID;
	}
}

void mmu_pcid_fini(struct mmu *mmu)
{
	for (unsigned i = 0; i < MMU_PCID_SLOTS; i++) {
		for (unsigned set = 0; set < 2; set++) {
			free(mmu->pcid[i].e[set]);
			mmu->pcid[i].e[set] = NULL;
			mmu->pcid[i].cap[set] = 0;
		}
		store_drop(&mmu->pcid[i]);
	}
}
