/*
 * The soft-MMU (see mmu.h for the contract and docs/mmu.md for the rules).
 *
 * Owns: the paging state copy of one vCPU (CR0/CR3/CR4/EFER, CPL), the
 * software TLB in its struct vcpu_abi (tlb[]) and the per-entry metadata
 * (tlb_meta[]), the statistics.  The entries themselves and the second
 * level behind them are mmu_tlb.c's (general registers only, for the
 * memory call-out's fast path); this file fills them from walks and
 * tells it every flush.
 *
 * Invariants
 *  1. A TLB entry is valid iff tlb_meta[i] & MMU_TLBM_VALID; then
 *     tag_read == its page-aligned gva and ((gva >> 12) & mask) == i.
 *     Invalid entries have tag_read == tag_write == ~0.
 *  2. tag_write != ~0 => supervisor writes are allowed by the mode in
 *     force at fill time, the leaf D bit was set, and the gpa page was RAM
 *     without a GUESTMEM_PAGE_WATCHED flag (revoked by mmu_protect_gpa()).
 *  3. Kernel TLB (abi->tlb): no entry maps a user page while CR4.SMAP=1, an
 *     MMIO page, or was filled for a user access.  User TLB (abi->utlb,
 *     probed by translated CPL-3 code): every entry was filled for a user
 *     access, its page is U/S = 1 at every level, tag_write only if R/W = 1
 *     at every level (CR0.WP does not matter for user writes).  So an entry
 *     of one can never grant an access of the other mode.
 *  4. n_large[set] == number of valid entries of that set with a large-page
 *     size; bit i of tlb_valid[set] is set iff entry i is valid, of
 *     tlb_local[set] iff it is valid and not global.
 *  5. Every mode change that alters a cached permission decision flushes
 *     all entries before returning (mmu_set_mode).
 *  6. A/D bits are only set for accesses that pass every check, with a
 *     compare-and-swap on the guest entry; a lost race re-walks.
 *
 * Walk: paging off -> identity (32-bit linear address); long mode -> the
 * 4-level walk in walk(); other paging modes -> BT_ERR_UNSUPPORTED.
 */
#include "runtime/mmu/mmu.h"

#include <stdlib.h>
#include <string.h>

#include "pretrans/base/log.h"
#include "runtime/mmu/mmu_int.h"

#define WALK_RETRIES 64

/* Result of a successful walk. */
struct walk {
	unsigned levels;     /* paging-structure entries used (0: paging off) */
	uint64_t *ptr[4];    /* host pointer of each entry (NULL: not in RAM) */
	uint64_t val[4];     /* its value as read */
	gpa_t table[4];	     /* guest-physical address of the table it is in */
	gpa_t gpa;	     /* translated address */
	unsigned page_shift; /* 12, 21 or 30 */
	bool user;	     /* U/S = 1 at every level */
	bool writable;	     /* R/W = 1 at every level */
	bool nx;	     /* XD = 1 at some level, with EFER.NXE */
	bool global;	     /* leaf G with CR4.PGE */
	bool dirty;	     /* leaf D */
};

/* Invalidate the entries whose bit is set in bits[] (tlb_valid or
 * tlb_local of that set; a copy is walked, the bitmap changes under it). */
static void tlb_invalidate_bits(struct mmu *mmu, unsigned set, const uint64_t *bits)
{
	for (size_t w = 0; w < VCPU_TLB_ENTRIES / 64; w++)
		for (uint64_t b = bits[w]; b; b &= b - 1)
			mmu_tlb_invalidate(mmu, set, w * 64 + (size_t)__builtin_ctzll(b));
}

static void tlb_clear(struct mmu *mmu)
{
	for (unsigned set = 0; set < 2; set++) {
		/* every entry, not only the valid ones: mmu_init starts from
		 * an area nobody has initialised */
		for (size_t i = 0; i < VCPU_TLB_ENTRIES; i++)
			mmu_tlb_invalidate(mmu, set, i);
		mmu->n_large[set] = 0;
		mmu->n_huge[set] = 0;
	}
}

static void tlb_clear_valid(struct mmu *mmu)
{
	for (unsigned set = 0; set < 2; set++) {
		uint64_t bits[VCPU_TLB_ENTRIES / 64];
		memcpy(bits, mmu->tlb_valid[set], sizeof(bits));
		tlb_invalidate_bits(mmu, set, bits);
	}
}

void mmu_flush_notify(struct mmu *mmu, enum mmu_flush_kind kind, gva_t gva)
{
	if (mmu->flush_fn)
		mmu->flush_fn(mmu->flush_opaque, kind, gva);
}

void mmu_set_flush_hook(struct mmu *mmu, mmu_flush_fn fn, void *opaque)
{
	mmu->flush_fn = fn;
	mmu->flush_opaque = opaque;
}

void mmu_flush_all(struct mmu *mmu)
{
	tlb_clear_valid(mmu);
	mmu_l2_flush_all(mmu);
	mmu_pcid_drop_all(mmu);
	mmu->stats.flush_all++;
	mmu_flush_notify(mmu, MMU_FLUSH_ALL, 0);
}

void mmu_flush_nonglobal(struct mmu *mmu)
{
	for (unsigned set = 0; set < 2; set++) {
		uint64_t bits[VCPU_TLB_ENTRIES / 64];
		memcpy(bits, mmu->tlb_local[set], sizeof(bits));
		tlb_invalidate_bits(mmu, set, bits);
	}
	mmu_l2_flush_nonglobal(mmu);
	mmu->stats.flush_nonglobal++;
	mmu_flush_notify(mmu, MMU_FLUSH_NONGLOBAL, 0);
}

static uint64_t meta_page_size(uint8_t m)
{
	if (m & MMU_TLBM_1G)
		return 1ull << 30;
	if (m & MMU_TLBM_2M)
		return 1ull << 21;
	return GUEST_PAGE_SIZE;
}

void mmu_invlpg(struct mmu *mmu, gva_t gva)
{
	size_t idx = (gva >> GUEST_PAGE_SHIFT) & TLB_MASK;

	mmu->stats.invlpg++;
	mmu_flush_notify(mmu, MMU_FLUSH_INVLPG, gva);
	mmu_l2_invlpg(mmu, gva);
	for (unsigned set = 0; set < 2; set++) {
		if (mmu_tlb_entry(mmu, set, idx)->tag_read == (gva & GUEST_PAGE_MASK))
			mmu_tlb_invalidate(mmu, set, idx);
		/* The page holding gva may have been a large page split into
		 * 4 KiB entries: drop every entry of that large page.  The 4 KiB
		 * pieces of one 2 MiB page sit at 512 consecutive indices; only
		 * a 1 GiB page can be anywhere. */
		size_t n = mmu->n_huge[set] ? VCPU_TLB_ENTRIES : 512;
		size_t first = mmu->n_huge[set] ? 0 : ((gva >> GUEST_PAGE_SHIFT) & ~(size_t)511);
		for (size_t k = 0; k < n && mmu->n_large[set]; k++) {
			size_t i = (first + k) & TLB_MASK;
			uint8_t m = mmu->tlb_meta[set][i];
			uint64_t sz;
			if (!(m & MMU_TLBM_LARGE))
				continue;
			sz = meta_page_size(m);
			if ((mmu_tlb_entry(mmu, set, i)->tag_read & ~(sz - 1)) == (gva & ~(sz - 1)))
				mmu_tlb_invalidate(mmu, set, i);
		}
	}
}

/* guestmem listener: gpa_page became a code page: revoke write access. */
static void mmu_protect_gpa(void *opaque, gpa_t gpa_page)
{
	struct mmu *mmu = opaque;

	for (unsigned set = 0; set < 2; set++)
		for (size_t w = 0; w < VCPU_TLB_ENTRIES / 64; w++)
			for (uint64_t b = mmu->tlb_valid[set][w]; b; b &= b - 1) {
				size_t i = w * 64 + (size_t)__builtin_ctzll(b);
				struct vcpu_tlb_entry *e = mmu_tlb_entry(mmu, set, i);
				if (e->gpa_page == gpa_page)
					e->tag_write = TLB_INVALID;
			}
	mmu_pcid_protect(mmu, gpa_page);
}

enum bt_status mmu_set_phys_bits(struct mmu *mmu, unsigned bits)
{
	if (bits < 32 || bits > 52)
		return BT_ERR_INVALID;
	mmu->phys_bits = bits;
	mmu->rsvd_addr_mask = MMU_PTE_ADDR_MASK & ~((1ull << bits) - 1);
	mmu_flush_all(mmu);
	return BT_OK;
}

static void l2_destroy(struct mmu *mmu)
{
	if (!mmu->l2)
		return;
	for (unsigned s = 0; s < MMU_L2_NSETS; s++)
		free(mmu->l2->e[s]);
	for (unsigned s = 0; s < 2; s++)
		free(mmu->l2->lpage[s]);
	free(mmu->l2);
	mmu->l2 = NULL;
}

/* The second level, empty (mmu_tlb.c invariant 1: generation 0 is dead). */
static enum bt_status l2_create(struct mmu *mmu)
{
	static const unsigned bits[MMU_L2_NSETS] = {MMU_L2_KERNEL_BITS, MMU_L2_USER_BITS,
						    MMU_L2_SMAP_BITS};
	struct mmu_l2 *l2 = calloc(1, sizeof(*l2));

	if (!l2)
		return BT_ERR_NOMEM;
	mmu->l2 = l2;
	for (unsigned s = 0; s < MMU_L2_NSETS; s++)
		if (!(l2->e[s] = calloc((size_t)1 << bits[s], sizeof(struct mmu_l2_entry))))
			goto err_destroy;
	for (unsigned s = 0; s < 2; s++)
		if (!(l2->lpage[s] =
			  calloc((size_t)1 << MMU_L2_LARGE_BITS, sizeof(struct mmu_l2_large))))
			goto err_destroy;
	guestmem_flag_map(mmu->gm, &l2->gm_host, &l2->gm_flags, &l2->gm_populated);
	mmu_l2_flush_all(mmu);
	return BT_OK;
err_destroy:
	l2_destroy(mmu);
	return BT_ERR_NOMEM;
}

enum bt_status mmu_init(struct mmu *mmu, struct guestmem *gm, struct vcpu_abi *abi)
{
	if (!mmu || !gm || !abi)
		return BT_ERR_INVALID;
	memset(mmu, 0, sizeof(*mmu));
	mmu->gm = gm;
	mmu->abi = abi;
	abi->ac = 0;
	enum bt_status s;
	BT_TRY(l2_create(mmu));
	tlb_clear(mmu); /* the area's entries, whatever they held */
	if ((s = mmu_set_phys_bits(mmu, MMU_DEFAULT_PHYS_BITS)) != BT_OK ||
	    (s = guestmem_add_listener(gm, mmu_protect_gpa, mmu)) != BT_OK)
		goto err_destroy_l2;
	memset(&mmu->stats, 0, sizeof(mmu->stats));
	return BT_OK;
err_destroy_l2:
	l2_destroy(mmu);
	return s;
}

void mmu_fini(struct mmu *mmu)
{
	if (!mmu || !mmu->gm)
		return;
	guestmem_remove_listener(mmu->gm, mmu_protect_gpa, mmu);
	tlb_clear(mmu);
	mmu_pcid_fini(mmu);
	l2_destroy(mmu);
	mmu->gm = NULL;
}

void mmu_set_mmio_handler(struct mmu *mmu, mmu_mmio_fn fn, void *opaque)
{
	mmu->mmio_fn = fn;
	mmu->mmio_opaque = opaque;
}

enum bt_status mmu_set_mode(struct mmu *mmu, uint64_t cr0, uint64_t cr3, uint64_t cr4,
			    uint64_t efer)
{
	const uint64_t cr0_bits = MMU_CR0_PE | MMU_CR0_WP | MMU_CR0_PG;
	const uint64_t cr4_bits = MMU_CR4_PSE | MMU_CR4_PAE | MMU_CR4_PGE | MMU_CR4_PCIDE |
				  MMU_CR4_SMEP | MMU_CR4_SMAP | MMU_CR4_LA57;
	const uint64_t efer_bits = MMU_EFER_NXE | MMU_EFER_LMA;

	if (cr4 & MMU_CR4_LA57) {
		bt_err(LOG_MMU, "mmu: 5-level paging (CR4.LA57) is not supported");
		return BT_ERR_UNSUPPORTED;
	}
	cr3 &= ~(1ull << 63);
	if (((cr0 ^ mmu->cr0) & cr0_bits) || ((cr4 ^ mmu->cr4) & cr4_bits) ||
	    ((efer ^ mmu->efer) & efer_bits))
		mmu_flush_all(mmu);
	else if (cr3 != mmu->cr3) {
		/* not a MOV to CR3 (a state load): no PCID is trusted */
		mmu_pcid_drop_all(mmu);
		mmu_l2_drop_pcids(mmu);
		mmu_flush_nonglobal(mmu);
	}
	mmu->cr0 = cr0;
	mmu->cr3 = cr3;
	mmu->cr4 = cr4;
	mmu->efer = efer;
	return BT_OK;
}

void mmu_write_cr3(struct mmu *mmu, uint64_t cr3)
{
	bool pcide = (mmu->cr4 & MMU_CR4_PCIDE) != 0;
	bool noflush = pcide && (cr3 >> 63);
	uint64_t old = mmu->cr3;

	cr3 &= ~(1ull << 63);
	mmu->cr3 = cr3; /* before the flush: its hook sees the new root */
	if (pcide && ((old ^ cr3) & MMU_CR3_PCID)) {
		mmu_pcid_switch(mmu, (unsigned)(old & MMU_CR3_PCID), (unsigned)(cr3 & MMU_CR3_PCID),
				noflush);
		return;
	}
	/* the same PCID: a new root under it flushes too (the SDM would let
	 * stale entries of the PCID be used; nothing gains from that) */
	if (!noflush || cr3 != old)
		mmu_flush_nonglobal(mmu);
}

void mmu_set_cpl_ac(struct mmu *mmu, unsigned cpl, bool ac)
{
	mmu->cpl = cpl & 3;
	mmu->abi->ac = ac ? 1 : 0;
}

static bool is_user_access(const struct mmu *mmu, unsigned access)
{
	if (access & MMU_ACC_USER)
		return true;
	return mmu->cpl == 3 && !(access & MMU_ACC_IMPLICIT);
}

/* Error-code bits describing the access (without P/RSVD). */
static uint32_t access_ec(const struct mmu *mmu, unsigned access)
{
	uint32_t ec = 0;

	if (access & MMU_ACC_WRITE)
		ec |= MMU_PF_W;
	if (is_user_access(mmu, access))
		ec |= MMU_PF_U;
	if ((access & MMU_ACC_EXEC) && ((mmu->efer & MMU_EFER_NXE) || (mmu->cr4 & MMU_CR4_SMEP)))
		ec |= MMU_PF_I;
	return ec;
}

static void set_fault(struct mmu *mmu, struct mmu_fault *f, uint8_t vector, gva_t addr, uint32_t ec)
{
	f->pending = true;
	f->vector = vector;
	f->addr = addr;
	f->error_code = ec;
	mmu->stats.faults++;
}

/* Reserved bits of a present entry at `level` (4 = PML4E ... 1 = PTE). */
static bool entry_reserved(const struct mmu *mmu, unsigned level, uint64_t pte)
{
	if (pte & mmu->rsvd_addr_mask)
		return true;
	if ((pte & MMU_PTE_NX) && !(mmu->efer & MMU_EFER_NXE))
		return true;
	switch (level) {
	case 4:
		return (pte & MMU_PTE_PS) != 0;
	case 3: /* 1 GiB page: bits 29:13 */
		return (pte & MMU_PTE_PS) && (pte & 0x3fffe000ull);
	case 2: /* 2 MiB page: bits 20:13 */
		return (pte & MMU_PTE_PS) && (pte & 0x1fe000ull);
	default:
		return false;
	}
}

/*
 * The SDM 4.6 access-rights rules for a translation with effective U/S
 * (user), R/W (writable) and XD (nx).  True if the access is allowed.
 */
static bool access_allowed(const struct mmu *mmu, unsigned access, bool user_page, bool writable,
			   bool nx)
{
	unsigned kind = access & MMU_ACC_KIND_MASK;
	bool wp = (mmu->cr0 & MMU_CR0_WP) != 0;

	if (is_user_access(mmu, access)) {
		if (!user_page)
			return false;
		if (kind == MMU_ACC_WRITE)
			return writable;
		if (kind == MMU_ACC_EXEC)
			return !nx;
		return true;
	}
	/* supervisor-mode access */
	if (kind == MMU_ACC_EXEC) {
		if (user_page && (mmu->cr4 & MMU_CR4_SMEP))
			return false;
		return !nx;
	}
	if (user_page && (mmu->cr4 & MMU_CR4_SMAP)) {
		/* explicit accesses with EFLAGS.AC = 1 only */
		if ((access & MMU_ACC_IMPLICIT) || !mmu->abi->ac)
			return false;
	}
	if (kind == MMU_ACC_WRITE && wp && !writable)
		return false;
	return true;
}

/*
 * Walk the tables for gva.  BT_OK with fault->pending on a guest fault;
 * BT_ERR_UNSUPPORTED for paging modes we do not implement.
 */
static enum bt_status walk(struct mmu *mmu, gva_t gva, unsigned access, struct walk *w,
			   struct mmu_fault *fault)
{
	uint64_t addr_mask = MMU_PTE_ADDR_MASK & ~mmu->rsvd_addr_mask;
	gpa_t table;

	memset(w, 0, sizeof(*w));
	fault->pending = false;
	if (!(mmu->cr0 & MMU_CR0_PG)) {
		w->gpa = gva & 0xffffffffull;
		w->page_shift = GUEST_PAGE_SHIFT;
		w->user = w->writable = w->dirty = true;
		return BT_OK;
	}
	if (!(mmu->efer & MMU_EFER_LMA)) {
		bt_err(LOG_MMU, "mmu: paging outside long mode is not supported (cr0=%#llx)",
		       (unsigned long long)mmu->cr0);
		return BT_ERR_UNSUPPORTED;
	}
	if ((uint64_t)((int64_t)(gva << 16) >> 16) != gva) {
		set_fault(mmu, fault, MMU_VEC_GP, gva, 0);
		return BT_OK;
	}
	if (!(access & MMU_ACC_PROBE))
		mmu->stats.walks++;
	w->user = w->writable = true;
	table = mmu->cr3 & addr_mask;
	for (unsigned level = 4; level >= 1; level--) {
		unsigned shift = GUEST_PAGE_SHIFT + 9 * (level - 1);
		gpa_t ea = table + ((gva >> shift) & 511) * 8;
		uint64_t *p = guestmem_gpa_to_host(mmu->gm, ea, 8);
		/* a table outside RAM reads as open bus (all ones): RSVD fault */
		uint64_t pte = p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : ~0ull;
		unsigned n = w->levels++;

		w->ptr[n] = p;
		w->val[n] = pte;
		w->table[n] = table;
		if (!(pte & MMU_PTE_P)) {
			set_fault(mmu, fault, MMU_VEC_PF, gva, access_ec(mmu, access));
			return BT_OK;
		}
		if (entry_reserved(mmu, level, pte)) {
			set_fault(mmu, fault, MMU_VEC_PF, gva,
				  MMU_PF_P | MMU_PF_RSVD | access_ec(mmu, access));
			return BT_OK;
		}
		w->user = w->user && (pte & MMU_PTE_US);
		w->writable = w->writable && (pte & MMU_PTE_RW);
		w->nx = w->nx || ((pte & MMU_PTE_NX) && (mmu->efer & MMU_EFER_NXE));
		if (level == 1 || (level <= 3 && (pte & MMU_PTE_PS))) {
			uint64_t off_mask = (1ull << shift) - 1;
			w->page_shift = shift;
			w->gpa = ((pte & addr_mask) & ~off_mask) | (gva & off_mask);
			w->global = (pte & MMU_PTE_G) && (mmu->cr4 & MMU_CR4_PGE);
			w->dirty = (pte & MMU_PTE_D) != 0;
			break;
		}
		table = pte & addr_mask;
	}
	if (!access_allowed(mmu, access, w->user, w->writable, w->nx)) {
		set_fault(mmu, fault, MMU_VEC_PF, gva, MMU_PF_P | access_ec(mmu, access));
		return BT_OK;
	}
	return BT_OK;
}

/*
 * Set A on every entry of a successful walk and D on the leaf for writes.
 * False if an entry changed under us (the caller re-walks).
 */
static bool walk_commit(struct mmu *mmu, struct walk *w, bool write)
{
	for (unsigned i = 0; i < w->levels; i++) {
		uint64_t want = MMU_PTE_A;
		uint64_t expect = w->val[i];
		if (i == w->levels - 1 && write)
			want |= MMU_PTE_D;
		if ((expect & want) == want || !w->ptr[i])
			continue;
		if (!__atomic_compare_exchange_n(w->ptr[i], &expect, expect | want, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return false;
		w->val[i] = expect | want;
	}
	if (write)
		w->dirty = true;
	return true;
}

/* Walk and, unless probing, commit A/D (re-walking on a lost race). */
static enum bt_status walk_access(struct mmu *mmu, gva_t gva, unsigned access, struct walk *w,
				  struct mmu_fault *fault)
{
	for (unsigned tries = 0; tries < WALK_RETRIES; tries++) {
		BT_TRY(walk(mmu, gva, access, w, fault));
		if (fault->pending || (access & MMU_ACC_PROBE))
			return BT_OK;
		if (walk_commit(mmu, w, (access & MMU_ACC_KIND_MASK) == MMU_ACC_WRITE))
			return BT_OK;
	}
	bt_err(LOG_MMU, "mmu: page tables for %#llx keep changing under the walker",
	       (unsigned long long)gva);
	return BT_ERR_GUEST;
}

enum bt_status mmu_translate_info(struct mmu *mmu, gva_t gva, unsigned access,
				  struct mmu_walk_info *info, struct mmu_fault *fault)
{
	struct walk w;

	if (!mmu || !info || !fault)
		return BT_ERR_INVALID;
	BT_TRY(walk_access(mmu, gva, access, &w, fault));
	if (fault->pending)
		return BT_OK;
	info->gpa = w.gpa;
	info->mmio = !guestmem_is_ram(mmu->gm, w.gpa, 1);
	info->page_shift = w.page_shift;
	info->user = w.user;
	info->writable = w.writable;
	info->nx = w.nx;
	info->dirty = w.dirty;
	info->accessed = true;
	for (unsigned i = 0; i < w.levels; i++)
		info->accessed = info->accessed && (w.val[i] & MMU_PTE_A);
	for (unsigned level = 1; level <= 4; level++)
		info->tables[level - 1] = level + w.levels > 4 ? w.table[4 - level] : ~0ull;
	return BT_OK;
}

enum bt_status mmu_translate(struct mmu *mmu, gva_t gva, unsigned access, gpa_t *gpa, bool *mmio,
			     struct mmu_fault *fault)
{
	struct mmu_walk_info info;

	if (!gpa)
		return BT_ERR_INVALID;
	BT_TRY(mmu_translate_info(mmu, gva, access, &info, fault));
	if (fault->pending)
		return BT_OK;
	*gpa = info.gpa;
	if (mmio)
		*mmio = info.mmio;
	return BT_OK;
}

/* Host pointer of the TLB entry for an explicit data access, or NULL: the
 * user TLB for user accesses, the kernel TLB for supervisor ones. */
static uint8_t *tlb_lookup(struct mmu *mmu, gva_t gva, unsigned access)
{
	const struct vcpu_tlb_entry *e;
	uint64_t page = gva & GUEST_PAGE_MASK;

	if (access & (MMU_ACC_PROBE | MMU_ACC_EXEC | MMU_ACC_IMPLICIT))
		return NULL;
	e = mmu_tlb_entry(mmu, is_user_access(mmu, access) ? TLB_USER : TLB_KERNEL,
			  (gva >> GUEST_PAGE_SHIFT) & TLB_MASK);
	if (((access & MMU_ACC_WRITE) ? e->tag_write : e->tag_read) != page)
		return NULL;
	return (uint8_t *)(uintptr_t)(gva + (uint64_t)e->addend);
}

/* Move one page-contiguous piece at gpa (RAM or MMIO). */
static enum bt_status move_piece(struct mmu *mmu, gpa_t gpa, uint8_t *buf, size_t n, bool write)
{
	uint8_t *host = guestmem_gpa_to_host(mmu->gm, gpa, n);

	if (host) {
		if (write) {
			if (guestmem_page_flags(mmu->gm, gpa) & GUESTMEM_PAGE_WATCHED) {
				mmu->stats.code_writes++;
				guestmem_notify_write(mmu->gm, gpa, n);
			}
			memcpy(host, buf, n);
		} else {
			memcpy(buf, host, n);
		}
		return BT_OK;
	}
	mmu->stats.mmio++;
	if (mmu->mmio_fn)
		return mmu->mmio_fn(mmu->mmio_opaque, gpa, buf, n, write);
	if (!write)
		memset(buf, 0xff, n);
	return BT_OK;
}

static enum bt_status access_range(struct mmu *mmu, gva_t gva, uint8_t *buf, size_t len,
				   unsigned access, struct mmu_fault *fault)
{
	bool write = (access & MMU_ACC_KIND_MASK) == MMU_ACC_WRITE;
	struct walk w;
	size_t done;

	fault->pending = false;
	/* Pass 1: check every page without side effects (not needed when the
	 * access stays in one page: a faulting walk sets nothing). */
	bool one_page = len <= GUEST_PAGE_SIZE - (gva & (GUEST_PAGE_SIZE - 1));
	for (done = 0; !one_page && done < len;) {
		gva_t va = gva + done;
		size_t n = BT_MIN(len - done, GUEST_PAGE_SIZE - (va & (GUEST_PAGE_SIZE - 1)));
		if (!tlb_lookup(mmu, va, access)) {
			BT_TRY(walk(mmu, va, access | MMU_ACC_PROBE, &w, fault));
			if (fault->pending)
				return BT_OK;
		}
		done += n;
	}
	/* Pass 2: translate with A/D updates and move the bytes. */
	for (done = 0; done < len;) {
		gva_t va = gva + done;
		size_t n = BT_MIN(len - done, GUEST_PAGE_SIZE - (va & (GUEST_PAGE_SIZE - 1)));
		uint8_t *host = tlb_lookup(mmu, va, access);
		if (host) {
			mmu->stats.tlb_hits++;
			if (write)
				memcpy(host, buf + done, n);
			else
				memcpy(buf + done, host, n);
		} else {
			mmu->stats.tlb_misses++;
			BT_TRY(walk_access(mmu, va, access, &w, fault));
			if (fault->pending) /* the tables changed between the passes */
				return BT_OK;
			BT_TRY(move_piece(mmu, w.gpa, buf + done, n, write));
		}
		done += n;
	}
	return BT_OK;
}

enum bt_status mmu_read(struct mmu *mmu, gva_t gva, void *buf, size_t len, unsigned access,
			struct mmu_fault *fault)
{
	if (!mmu || (!buf && len) || !fault)
		return BT_ERR_INVALID;
	access = (access & ~(unsigned)(MMU_ACC_KIND_MASK | MMU_ACC_PROBE)) | MMU_ACC_READ;
	return access_range(mmu, gva, buf, len, access, fault);
}

enum bt_status mmu_write(struct mmu *mmu, gva_t gva, const void *buf, size_t len, unsigned access,
			 struct mmu_fault *fault)
{
	if (!mmu || (!buf && len) || !fault)
		return BT_ERR_INVALID;
	access = (access & ~(unsigned)(MMU_ACC_KIND_MASK | MMU_ACC_PROBE)) | MMU_ACC_WRITE;
	/* buf is only read: access_range copies into guest memory for writes */
	return access_range(mmu, gva, (uint8_t *)(uintptr_t)buf, len, access, fault);
}

enum bt_status mmu_fetch(struct mmu *mmu, gva_t gva, void *buf, size_t len, size_t *got,
			 struct mmu_fault *fault)
{
	uint8_t *out = buf;
	struct walk w;
	size_t done = 0;

	if (!mmu || (!buf && len) || !got || !fault)
		return BT_ERR_INVALID;
	fault->pending = false;
	*got = 0;
	while (done < len) {
		gva_t va = gva + done;
		size_t n = BT_MIN(len - done, GUEST_PAGE_SIZE - (va & (GUEST_PAGE_SIZE - 1)));
		const uint8_t *host;

		BT_TRY(walk_access(mmu, va, MMU_ACC_EXEC, &w, fault));
		if (fault->pending)
			break;
		host = guestmem_gpa_to_host(mmu->gm, w.gpa, n);
		if (!host)
			break; /* code in MMIO: not fetchable by the translator */
		memcpy(out + done, host, n);
		done += n;
		*got = done;
	}
	return BT_OK;
}

/* The walk of gva ended in a large leaf: one second-level entry for all of
 * it when it is RAM of one guestmem region (so contiguous in the host);
 * writable as the first-level rule says without the watched flag, which
 * mmu_tlb_fast checks for each 4 KiB piece. */
static void l2_large(struct mmu *mmu, unsigned set, gva_t gva, const struct walk *w, uint8_t meta)
{
	uint64_t size = 1ull << w->page_shift, off;
	gva_t base = gva & ~(size - 1);
	gpa_t gpa = w->gpa & ~(size - 1);
	bool can_write;

	if (!mmu->l2 || !guestmem_is_ram(mmu->gm, gpa, size) ||
	    guestmem_gpa_to_offset(mmu->gm, gpa, &off) != BT_OK)
		return;
	can_write =
	    (set == TLB_USER ? w->writable : (w->writable || !(mmu->cr0 & MMU_CR0_WP))) && w->dirty;
	mmu_l2_insert_large(mmu, set, base, can_write,
			    (int64_t)((uint64_t)(uintptr_t)mmu->l2->gm_host + off - base), gpa,
			    meta);
}

/*
 * Install the entry for gva from a successful walk of an explicit data
 * access into one TLB, per the rules in mmu.h (invariant 3 above).  False
 * if the page must not be cached in it (MMIO; a user page in the kernel
 * TLB with SMAP: that one goes to the second level's SMAP array, the walk
 * having granted it with AC = 1; a supervisor page in the user TLB).
 */
static bool tlb_install(struct mmu *mmu, unsigned set, gva_t gva, const struct walk *w)
{
	gva_t page = gva & GUEST_PAGE_MASK;
	gpa_t gpa_page = w->gpa & GUEST_PAGE_MASK;
	uint8_t *host = guestmem_gpa_to_host(mmu->gm, gpa_page, GUEST_PAGE_SIZE);
	int64_t addend;
	bool can_write;
	uint8_t meta;

	if (!host)
		return false; /* MMIO: always the slow path */
	if (set == TLB_USER && !w->user)
		return false; /* cannot happen after a granted user walk */
	can_write = (set == TLB_USER ? w->writable : (w->writable || !(mmu->cr0 & MMU_CR0_WP))) &&
		    w->dirty && !(guestmem_page_flags(mmu->gm, gpa_page) & GUESTMEM_PAGE_WATCHED);
	meta = MMU_TLBM_VALID;
	if (w->global)
		meta |= MMU_TLBM_GLOBAL;
	if (w->user)
		meta |= MMU_TLBM_USER;
	if (w->page_shift == 21)
		meta |= MMU_TLBM_2M;
	else if (w->page_shift == 30)
		meta |= MMU_TLBM_1G;
	addend = (int64_t)((uint64_t)(uintptr_t)host - page);
	if (set == TLB_KERNEL && w->user && (mmu->cr4 & MMU_CR4_SMAP)) {
		/* AC may change inline (stac/clac): never in abi->tlb */
		mmu_l2_insert(mmu, L2_SMAP, page, can_write, addend, gpa_page, meta);
		return false;
	}
	if (meta & MMU_TLBM_LARGE)
		l2_large(mmu, set, gva, w, meta);
	mmu_tlb_put(mmu, set, page, can_write, addend, gpa_page, meta);
	mmu->stats.tlb_fills++;
	return true;
}

enum bt_status mmu_tlb_fill(struct mmu *mmu, gva_t gva, unsigned access, bool *filled,
			    struct mmu_fault *fault)
{
	unsigned kind = access & MMU_ACC_KIND_MASK;
	struct walk w;
	bool ok;

	if (!mmu || !fault || kind == MMU_ACC_EXEC || (access & (MMU_ACC_USER | MMU_ACC_PROBE)))
		return BT_ERR_INVALID;
	if (filled)
		*filled = false;
	fault->pending = false;
	BT_TRY(walk_access(mmu, gva, kind, &w, fault));
	if (fault->pending)
		return BT_OK;
	ok = tlb_install(mmu, mmu->cpl == 3 ? TLB_USER : TLB_KERNEL, gva, &w);
	if (filled)
		*filled = ok;
	return BT_OK;
}

enum bt_status mmu_host_access(struct mmu *mmu, gva_t gva, size_t size, unsigned access,
			       uint8_t **host, enum mmu_host_kind *kind, struct mmu_fault *fault)
{
	unsigned k = access & MMU_ACC_KIND_MASK;
	bool write = k == MMU_ACC_WRITE;
	bool cache = mmu && !(access & MMU_ACC_IMPLICIT);
	struct walk w[2];
	gva_t va[2];
	unsigned npages;

	if (!mmu || !host || !kind || !fault || size == 0 || size > GUEST_PAGE_SIZE ||
	    k == MMU_ACC_EXEC || (access & MMU_ACC_PROBE))
		return BT_ERR_INVALID;
	*host = NULL;
	*kind = MMU_HOST_RAM;
	fault->pending = false;
	va[0] = gva;
	va[1] = (gva & GUEST_PAGE_MASK) + GUEST_PAGE_SIZE;
	npages = ((gva & (GUEST_PAGE_SIZE - 1)) + size > GUEST_PAGE_SIZE) ? 2 : 1;
	/* The TLB first: a call-out for an access the inline probe could not
	 * do (a string instruction, a size the probe does not cover) often
	 * hits it; its entries are never writable for watched pages, so no
	 * write hook is skipped. */
	if (npages == 1 && cache && (*host = tlb_lookup(mmu, gva, access)) != NULL) {
		mmu->stats.tlb_hits++;
		return BT_OK;
	}
	mmu->stats.tlb_misses++;
	/* Check every page before touching A/D (as mmu_read/mmu_write do); a
	 * single page needs no separate pass: a faulting walk sets nothing. */
	for (unsigned i = 0; npages > 1 && i < npages; i++) {
		BT_TRY(walk(mmu, va[i], access | MMU_ACC_PROBE, &w[i], fault));
		if (fault->pending)
			return BT_OK;
	}
	for (unsigned i = 0; i < npages; i++) {
		BT_TRY(walk_access(mmu, va[i], access, &w[i], fault));
		if (fault->pending)
			return BT_OK;
		if (cache)
			tlb_install(mmu, is_user_access(mmu, access) ? TLB_USER : TLB_KERNEL, va[i],
				    &w[i]);
		if (!guestmem_is_ram(mmu->gm, w[i].gpa, 1))
			*kind = MMU_HOST_MMIO;
	}
	if (*kind == MMU_HOST_MMIO)
		return BT_OK;
	if (npages == 2 && w[1].gpa != (w[0].gpa & GUEST_PAGE_MASK) + GUEST_PAGE_SIZE) {
		*kind = MMU_HOST_SPLIT;
		return BT_OK;
	}
	/* adjacent guest-physical pages are adjacent in the host mapping when
	 * they are in the same region */
	*host = guestmem_gpa_to_host(mmu->gm, w[0].gpa, size);
	if (!*host) {
		*kind = MMU_HOST_SPLIT;
		return BT_OK;
	}
	if (write && ((guestmem_page_flags(mmu->gm, w[0].gpa) |
		       guestmem_page_flags(mmu->gm, w[0].gpa + size - 1)) &
		      GUESTMEM_PAGE_WATCHED)) {
		mmu->stats.code_writes++;
		guestmem_notify_write(mmu->gm, w[0].gpa, size);
	}
	return BT_OK;
}

void mmu_get_stats(const struct mmu *mmu, struct mmu_stats *out)
{
	*out = mmu->stats;
}

void mmu_print_stats(const struct mmu *mmu, FILE *f)
{
	const struct mmu_stats *s = &mmu->stats;

	fprintf(f,
		"mmu: walks %llu, tlb hits %llu, misses %llu, fills %llu, flushes %llu all / "
		"%llu non-global / %llu invlpg, faults %llu, mmio %llu, code-page writes %llu\n",
		(unsigned long long)s->walks, (unsigned long long)s->tlb_hits,
		(unsigned long long)s->tlb_misses, (unsigned long long)s->tlb_fills,
		(unsigned long long)s->flush_all, (unsigned long long)s->flush_nonglobal,
		(unsigned long long)s->invlpg, (unsigned long long)s->faults,
		(unsigned long long)s->mmio, (unsigned long long)s->code_writes);
}
