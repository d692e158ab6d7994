/*
 * The software TLB's entries: the first level the translated code probes
 * (abi->tlb, abi->utlb: putting and dropping an entry with its bookkeeping)
 * and the second level behind it (struct mmu_l2), which the memory
 * call-out's fast path serves from before the FPU state is saved
 * (runtime/tc/tc_entry.S tc_co_mem, docs/mmu.md "The second-level TLB").
 *
 * Built with -mgeneral-regs-only (runtime/mmu/module.mk; `make
 * check-fastpath` greps the object): the fast path runs with the guest's
 * x87/SSE/AVX registers live, so nothing here may touch them, and nothing
 * here calls a function outside this file, runtime/tc/tc_fast.c and
 * runtime/vm/vm_fast.c (no memcpy, memset, logging).
 *
 * The second level holds three arrays of 4 KiB entries, each indexed by a
 * hash of the page number (not by its low bits as the first level is):
 *   L2_KERNEL  entries evicted from abi->tlb (victims),
 *   L2_USER    entries evicted from abi->utlb,
 *   L2_SMAP    supervisor entries for USER pages while CR4.SMAP = 1, made
 *              by the full path when an explicit access with AC = 1 was
 *              granted; served only while abi->ac = 1, never copied to the
 *              first level (whose kernel TLB must not map user pages under
 *              SMAP: stac/clac flip AC inline);
 * and, for each of abi->tlb and abi->utlb, an array of large-page entries
 * (struct mmu_l2_large): a walk that ended in a 2M/1G leaf of RAM in one
 * guestmem region records the whole page, and a miss on any 4 KiB piece
 * of it is refilled into the first level from there without a walk.
 *
 * Invariants
 *  1. An entry is live iff its tag has MMU_TLBM_VALID, its gen equals
 *     gen_global (global entries) or gen_local (others), and, if it came
 *     from a 2M/1G page, its lgen equals lgen[bit 63 of the page].  A live
 *     entry is exactly a first-level entry that no flush has removed since
 *     it was made: every first-level flush makes the entries it would
 *     have removed dead (flush_all: both gens; flush_nonglobal and a PCID
 *     change without bit 63: gen_local; invlpg: the page's slot in each
 *     array and lgen of its half when large pieces are cached there).
 *  2. Non-global entries carry the generation of the PCID current when
 *     they were made; a PCID switch with bit 63 brings that PCID's
 *     generation back (pcid_gen), one without starts a new one; a
 *     generation at or below `floor` (the last flush of every PCID) is
 *     never current again.
 *  3. MMU_L2_W says supervisor (or, in L2_USER, user) writes were allowed
 *     and the leaf's D bit was set when the entry was made; a write is
 *     only served if the page's guestmem flag byte has no
 *     GUESTMEM_PAGE_WATCHED at that moment, and a copy to the first level
 *     gets tag_write only then (mmu.c invariant 2), so mmu_protect_gpa
 *     need not visit the second level.
 *  4. Entries are RAM pages only (the first level's are); a large-page
 *     entry's whole page is RAM of one guestmem region, so host = gva +
 *     addend for every piece.
 *  5. A large-page entry is live under the same generation rule (it is
 *     never a piece: no lgen); it has one slot per page size, which
 *     mmu_l2_invlpg clears for the address it is given.  MMU_L2_W there
 *     says the leaf's D bit (which covers the whole page) was set and
 *     writes allowed; the watched flag is read per 4 KiB piece when
 *     served, and a piece is only served if its 2 MiB chunk of guest RAM
 *     was populated (guestmem_gpa_to_host would populate it).
 */
#include "runtime/mmu/mmu_int.h"

struct vcpu_tlb_entry *mmu_tlb_entry(struct mmu *mmu, unsigned set, size_t i)
{
	return set == TLB_USER ? &mmu->abi->utlb[i] : &mmu->abi->tlb[i];
}

void mmu_tlb_invalidate(struct mmu *mmu, unsigned set, size_t i)
{
	struct vcpu_tlb_entry *e = mmu_tlb_entry(mmu, set, i);

	if (mmu->tlb_meta[set][i] & MMU_TLBM_LARGE)
		mmu->n_large[set]--;
	if (mmu->tlb_meta[set][i] & MMU_TLBM_1G)
		mmu->n_huge[set]--;
	mmu->tlb_meta[set][i] = 0;
	mmu->tlb_valid[set][i / 64] &= ~(1ull << (i % 64));
	mmu->tlb_local[set][i / 64] &= ~(1ull << (i % 64));
	e->tag_read = TLB_INVALID;
	e->tag_write = TLB_INVALID;
	e->addend = 0;
	e->gpa_page = TLB_INVALID;
}

static const unsigned l2_bits[MMU_L2_NSETS] = {MMU_L2_KERNEL_BITS, MMU_L2_USER_BITS,
					       MMU_L2_SMAP_BITS};

static struct mmu_l2_entry *l2_slot(struct mmu_l2 *l2, unsigned l2set, gva_t page)
{
	uint64_t h = (page >> GUEST_PAGE_SHIFT) * 0x9e3779b97f4a7c15ull;
	return &l2->e[l2set][h >> (64 - l2_bits[l2set])];
}

static bool l2_live(const struct mmu_l2 *l2, const struct mmu_l2_entry *e, gva_t page)
{
	uint64_t m = e->tag & 0xff;

	if ((e->tag & GUEST_PAGE_MASK) != page || !(m & MMU_TLBM_VALID))
		return false;
	if (e->gen != ((m & MMU_TLBM_GLOBAL) ? l2->gen_global : l2->gen_local))
		return false;
	return !(m & MMU_TLBM_LARGE) || e->lgen == l2->lgen[page >> 63];
}

void mmu_l2_insert(struct mmu *mmu, unsigned l2set, gva_t page, bool can_write, int64_t addend,
		   gpa_t gpa_page, uint8_t meta)
{
	struct mmu_l2 *l2 = mmu->l2;
	struct mmu_l2_entry *e;

	if (!l2)
		return;
	e = l2_slot(l2, l2set, page);
	e->tag = page | meta | (can_write ? MMU_L2_W : 0);
	e->addend = addend;
	e->gpa_page = gpa_page;
	e->gen = (meta & MMU_TLBM_GLOBAL) ? l2->gen_global : l2->gen_local;
	e->lgen = l2->lgen[page >> 63];
	if (meta & MMU_TLBM_LARGE)
		l2->large[page >> 63] = true;
}

/* The slot of the 2M (shift 21) or 1G (30) page holding gva. */
static struct mmu_l2_large *l2_large_slot(struct mmu_l2 *l2, unsigned set, gva_t gva,
					  unsigned shift)
{
	uint64_t h = ((gva >> shift) * 2 + (shift == 30)) * 0x9e3779b97f4a7c15ull;
	return &l2->lpage[set][h >> (64 - MMU_L2_LARGE_BITS)];
}

void mmu_l2_insert_large(struct mmu *mmu, unsigned set, gva_t base, bool can_write, int64_t addend,
			 gpa_t gpa, uint8_t meta)
{
	struct mmu_l2 *l2 = mmu->l2;
	struct mmu_l2_large *e;

	if (!l2)
		return;
	e = l2_large_slot(l2, set, base, (meta & MMU_TLBM_1G) ? 30 : 21);
	e->tag = base | meta | (can_write ? MMU_L2_W : 0);
	e->addend = addend;
	e->gpa = gpa;
	e->gen = (meta & MMU_TLBM_GLOBAL) ? l2->gen_global : l2->gen_local;
}

/* Put a first-level entry for `page` (its previous occupant, if any, goes
 * to the second level), keeping tlb_meta, the bitmaps and the counts
 * (mmu.c invariant 4). */
void mmu_tlb_put(struct mmu *mmu, unsigned set, gva_t page, bool can_write, int64_t addend,
		 gpa_t gpa_page, uint8_t meta)
{
	size_t idx = (page >> GUEST_PAGE_SHIFT) & TLB_MASK;
	struct vcpu_tlb_entry *e = mmu_tlb_entry(mmu, set, idx);
	uint8_t old = mmu->tlb_meta[set][idx];

	if ((old & MMU_TLBM_VALID) && e->tag_read != page)
		mmu_l2_insert(mmu, set == TLB_USER ? L2_USER : L2_KERNEL, e->tag_read,
			      e->tag_write != TLB_INVALID, e->addend, e->gpa_page, old);
	mmu_tlb_invalidate(mmu, set, idx);
	e->tag_read = page;
	e->tag_write = can_write ? page : TLB_INVALID;
	e->addend = addend;
	e->gpa_page = gpa_page;
	mmu->tlb_meta[set][idx] = meta;
	mmu->tlb_valid[set][idx / 64] |= 1ull << (idx % 64);
	if (!(meta & MMU_TLBM_GLOBAL))
		mmu->tlb_local[set][idx / 64] |= 1ull << (idx % 64);
	if (meta & MMU_TLBM_LARGE)
		mmu->n_large[set]++;
	if (meta & MMU_TLBM_1G)
		mmu->n_huge[set]++;
}

/* A new generation number (never 0: a zeroed entry is dead). */
static uint64_t l2_tick(struct mmu_l2 *l2)
{
	return ++l2->clock;
}

void mmu_l2_flush_all(struct mmu *mmu)
{
	struct mmu_l2 *l2 = mmu->l2;

	if (!l2)
		return;
	l2->gen_global = l2_tick(l2);
	l2->floor = l2->clock; /* every PCID's generation so far */
	l2->gen_local = l2_tick(l2);
}

void mmu_l2_flush_nonglobal(struct mmu *mmu)
{
	if (mmu->l2)
		mmu->l2->gen_local = l2_tick(mmu->l2);
}

void mmu_l2_drop_pcids(struct mmu *mmu)
{
	struct mmu_l2 *l2 = mmu->l2;

	if (!l2)
		return;
	l2->floor = l2->clock;
	l2->gen_local = l2_tick(l2);
}

void mmu_l2_pcid_switch(struct mmu *mmu, unsigned old, unsigned new, bool noflush)
{
	struct mmu_l2 *l2 = mmu->l2;

	if (!l2)
		return;
	l2->pcid_gen[old & MMU_CR3_PCID] = l2->gen_local;
	if (noflush && l2->pcid_gen[new &MMU_CR3_PCID] > l2->floor)
		l2->gen_local = l2->pcid_gen[new &MMU_CR3_PCID];
	else
		l2->gen_local = l2_tick(l2);
}

void mmu_l2_invlpg(struct mmu *mmu, gva_t gva)
{
	struct mmu_l2 *l2 = mmu->l2;
	gva_t page = gva & GUEST_PAGE_MASK;

	if (!l2)
		return;
	for (unsigned s = 0; s < MMU_L2_NSETS; s++) {
		struct mmu_l2_entry *e = l2_slot(l2, s, page);
		if ((e->tag & GUEST_PAGE_MASK) == page)
			e->tag = 0;
	}
	/* the large-page entries holding gva: each has one slot */
	for (unsigned set = 0; set < 2; set++)
		for (unsigned shift = 21; shift <= 30; shift += 9) {
			struct mmu_l2_large *e = l2_large_slot(l2, set, gva, shift);
			if ((e->tag & GUEST_PAGE_MASK) == (gva & ~((1ull << shift) - 1)))
				e->tag = 0;
		}
	/* the 4 KiB pieces of a large page sit anywhere: drop every piece
	 * of this half of the address space (kernel or user) */
	if (l2->large[page >> 63]) {
		l2->lgen[page >> 63] = l2_tick(l2);
		l2->large[page >> 63] = false;
	}
}

/* The guestmem flags of the page an entry maps (guestmem_flag_map). */
static uint8_t l2_flags(const struct mmu_l2 *l2, const struct mmu_l2_entry *e)
{
	uint64_t host = (e->tag & GUEST_PAGE_MASK) + (uint64_t)e->addend;
	return l2->gm_flags[(host - (uint64_t)(uintptr_t)l2->gm_host) >> GUEST_PAGE_SHIFT];
}

/* The live entry of an array for page that allows the access, or NULL. */
static const struct mmu_l2_entry *l2_find(struct mmu_l2 *l2, unsigned l2set, gva_t page, bool write)
{
	const struct mmu_l2_entry *e = l2_slot(l2, l2set, page);

	if (!l2_live(l2, e, page))
		return NULL;
	if (write && (!(e->tag & MMU_L2_W) || (l2_flags(l2, e) & GUESTMEM_PAGE_WATCHED)))
		return NULL;
	return e;
}

uint8_t *mmu_tlb_fast(struct mmu *mmu, gva_t va, uint32_t size, bool write)
{
	return mmu_tlb_fast_at(mmu, mmu->cpl, va, size, write);
}

uint8_t *mmu_tlb_fast_at(struct mmu *mmu, unsigned cpl, gva_t va, uint32_t size, bool write)
{
	struct mmu_l2 *l2 = mmu->l2;
	gva_t page = va & GUEST_PAGE_MASK;
	unsigned set = (cpl & 3) == 3 ? TLB_USER : TLB_KERNEL;
	const struct vcpu_tlb_entry *t;
	const struct mmu_l2_entry *e;

	if (!l2 || size == 0 || (va & (GUEST_PAGE_SIZE - 1)) + size > GUEST_PAGE_SIZE)
		return NULL;
	/* mmu_host_access's first step, with its count */
	t = mmu_tlb_entry(mmu, set, (va >> GUEST_PAGE_SHIFT) & TLB_MASK);
	if ((write ? t->tag_write : t->tag_read) == page) {
		mmu->stats.tlb_hits++;
		return (uint8_t *)(uintptr_t)(va + (uint64_t)t->addend);
	}
	e = l2_find(l2, set == TLB_USER ? L2_USER : L2_KERNEL, page, write);
	if (e) {
		/* back into the first level, exactly as a walk would put it */
		bool w = (e->tag & MMU_L2_W) && !(l2_flags(l2, e) & GUESTMEM_PAGE_WATCHED);
		int64_t addend = e->addend;
		mmu_tlb_put(mmu, set, page, w, addend, e->gpa_page, (uint8_t)(e->tag & 0xff));
		mmu->stats.l2_hits++;
		return (uint8_t *)(uintptr_t)(va + (uint64_t)addend);
	}
	for (unsigned shift = 21; shift <= 30; shift += 9) {
		const struct mmu_l2_large *g = l2_large_slot(l2, set, va, shift);
		uint64_t m = g->tag & 0xff, hoff, c;
		if ((g->tag & GUEST_PAGE_MASK) != (va & ~((1ull << shift) - 1)) ||
		    !(m & MMU_TLBM_VALID) || ((m & MMU_TLBM_1G) != 0) != (shift == 30) ||
		    g->gen != ((m & MMU_TLBM_GLOBAL) ? l2->gen_global : l2->gen_local))
			continue;
		/* this 4 KiB piece: its flags, and its chunk populated (the
		 * full path's guestmem_gpa_to_host would populate it) */
		hoff = page + (uint64_t)g->addend - (uint64_t)(uintptr_t)l2->gm_host;
		c = hoff >> GUESTMEM_POPULATE_SHIFT;
		if (!(l2->gm_populated[c / 64] & (1ull << (c % 64))))
			return NULL;
		bool w = (g->tag & MMU_L2_W) &&
			 !(l2->gm_flags[hoff >> GUEST_PAGE_SHIFT] & GUESTMEM_PAGE_WATCHED);
		if (write && !w)
			return NULL;
		mmu_tlb_put(mmu, set, page, w, g->addend,
			    g->gpa + (page - (g->tag & ~((1ull << shift) - 1))), (uint8_t)m);
		mmu->stats.l2_large_hits++;
		return (uint8_t *)(uintptr_t)(va + (uint64_t)g->addend);
	}
	if (set == TLB_KERNEL && mmu->abi->ac && (mmu->cr4 & MMU_CR4_SMAP)) {
		e = l2_find(l2, L2_SMAP, page, write);
		if (e) {
			mmu->stats.l2_smap_hits++;
			return (uint8_t *)(uintptr_t)(va + (uint64_t)e->addend);
		}
	}
	return NULL;
}
