/*
 * Soft-MMU unit tests, the software TLB: fill and flush rules, user and
 * code pages, hits and staleness, PCIDs, and host access to guest memory
 * (the walks and the permission matrix are test_mmu.c).
 */

#include "tests/unit/mmu_fixture.h"

/* ---- software TLB ------------------------------------------------------ */

static struct vcpu_tlb_entry *fx_tlb(struct mmu_fx *fx, gva_t gva)
{
	return &fx->abi->tlb[(gva >> 12) & (VCPU_TLB_ENTRIES - 1)];
}

static bool fx_fill(struct mmu_fx *fx, gva_t gva, unsigned access)
{
	struct mmu_fault f;
	bool filled = false;

	assert_int_equal(mmu_tlb_fill(&fx->mmu, gva, access, &filled, &f), BT_OK);
	assert_false(f.pending);
	return filled;
}

static void test_tlb_fill(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, ok, ok, ok, ok};
	uint64_t ro_dirty[5] = {0, MMU_PTE_P | MMU_PTE_D, ok, ok, ok};
	const gva_t va = 0xffff888000200000ull, ro = va + 0x1000;
	struct vcpu_tlb_entry *e = fx_tlb(fx, va);
	struct mmu_fault f;
	bool filled;

	fx_reset(fx);
	fx_map(fx, va, 0x10000, 12, lv);
	fx_map(fx, ro, 0x11000, 12, ro_dirty);
	fx_mode_long(fx, 0);
	/* read fill of a clean page: readable, not writable; A set, D not */
	assert_true(fx_fill(fx, va + 0x10, MMU_ACC_READ));
	assert_int_equal(e->tag_read, va);
	assert_int_equal(e->tag_write, ~0ull);
	assert_int_equal(e->gpa_page, 0x10000);
	assert_ptr_equal((uint8_t *)(uintptr_t)(va + 0x10 + (uint64_t)e->addend),
			 fx_host(fx, 0x10010));
	assert_true(fx_entry(fx, va, 1) & MMU_PTE_A);
	assert_false(fx_entry(fx, va, 1) & MMU_PTE_D);
	/* write fill: sets D, then writable */
	assert_true(fx_fill(fx, va, MMU_ACC_WRITE));
	assert_true(fx_entry(fx, va, 1) & MMU_PTE_D);
	assert_int_equal(e->tag_write, va);
	/* a later read fill of the now dirty page keeps it writable */
	mmu_invlpg(&fx->mmu, va);
	assert_int_equal(e->tag_read, ~0ull);
	assert_true(fx_fill(fx, va, MMU_ACC_READ));
	assert_int_equal(e->tag_write, va);
	/* read-only dirty page: not writable with WP=1 ... */
	assert_true(fx_fill(fx, ro, MMU_ACC_READ));
	assert_int_equal(fx_tlb(fx, ro)->tag_write, ~0ull);
	assert_int_equal(mmu_tlb_fill(&fx->mmu, ro, MMU_ACC_WRITE, &filled, &f), BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.error_code, MMU_PF_P | MMU_PF_W);
	assert_false(filled);
	assert_int_equal(fx_tlb(fx, ro)->tag_read, ro); /* a fault leaves the TLB alone */
	/* ... writable with WP=0 */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG, fx->cr3, MMU_CR4_PAE,
		     MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE);
	assert_int_equal(fx_tlb(fx, ro)->tag_read, ~0ull); /* WP change flushed */
	assert_true(fx_fill(fx, ro, MMU_ACC_READ));
	assert_int_equal(fx_tlb(fx, ro)->tag_write, ro);
	/* bad arguments */
	assert_int_equal(mmu_tlb_fill(&fx->mmu, va, MMU_ACC_EXEC, &filled, &f), BT_ERR_INVALID);
	/* CPL3 on a supervisor page: a user fault, and neither TLB filled */
	mmu_flush_all(&fx->mmu);
	mmu_set_cpl_ac(&fx->mmu, 3, false);
	assert_int_equal(mmu_tlb_fill(&fx->mmu, va, MMU_ACC_READ, &filled, &f), BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.error_code, MMU_PF_P | MMU_PF_U);
	assert_false(filled);
	assert_int_equal(e->tag_read, ~0ull);
	assert_int_equal(fx->abi->utlb[(va >> 12) & (VCPU_TLB_ENTRIES - 1)].tag_read, ~0ull);
}

/* The user TLB (abi->utlb, probed by translated CPL-3 code): filled only
 * at CPL 3 and only for user pages, writable only when R/W is set at every
 * level whatever CR0.WP says; kernel fills never land in it and user fills
 * never land in the kernel TLB. */
static void test_tlb_user_set(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t u = MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US;
	uint64_t rw[5] = {0, u | MMU_PTE_D, u, u, u};
	uint64_t ro[5] = {0, MMU_PTE_P | MMU_PTE_US | MMU_PTE_D, u, u, u};
	const gva_t va = 0x0000000000601000ull, va_ro = va + 0x1000;
	struct vcpu_tlb_entry *ue = &fx->abi->utlb[(va >> 12) & (VCPU_TLB_ENTRIES - 1)];
	struct vcpu_tlb_entry *ue_ro = &fx->abi->utlb[(va_ro >> 12) & (VCPU_TLB_ENTRIES - 1)];
	struct mmu_fault f;
	bool filled;

	fx_reset(fx);
	fx_map(fx, va, 0x12000, 12, rw);
	fx_map(fx, va_ro, 0x13000, 12, ro);
	fx_mode_long(fx, 0);
	mmu_set_cpl_ac(&fx->mmu, 3, false);
	assert_true(fx_fill(fx, va, MMU_ACC_WRITE));
	assert_int_equal(ue->tag_read, va);
	assert_int_equal(ue->tag_write, va);
	assert_int_equal(ue->gpa_page, 0x12000);
	assert_int_equal(fx_tlb(fx, va)->tag_read, ~0ull); /* not in the kernel TLB */
	/* read-only for user code: readable, never writable (WP=0 below too) */
	assert_true(fx_fill(fx, va_ro, MMU_ACC_READ));
	assert_int_equal(ue_ro->tag_write, ~0ull);
	assert_int_equal(mmu_tlb_fill(&fx->mmu, va_ro, MMU_ACC_WRITE, &filled, &f), BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.error_code, MMU_PF_P | MMU_PF_W | MMU_PF_U);
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG, fx->cr3, MMU_CR4_PAE,
		     MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE);
	assert_int_equal(ue->tag_read, ~0ull); /* mode change flushed both */
	assert_true(fx_fill(fx, va_ro, MMU_ACC_READ));
	assert_int_equal(ue_ro->tag_write, ~0ull);
	/* a kernel fill of the same page goes to the kernel TLB only */
	mmu_set_cpl_ac(&fx->mmu, 0, false);
	mmu_flush_all(&fx->mmu);
	assert_true(fx_fill(fx, va, MMU_ACC_READ));
	assert_int_equal(fx_tlb(fx, va)->tag_read, va);
	assert_int_equal(ue->tag_read, ~0ull);
	/* invlpg and a CR3 load drop user entries as well */
	mmu_set_cpl_ac(&fx->mmu, 3, false);
	assert_true(fx_fill(fx, va, MMU_ACC_READ));
	mmu_invlpg(&fx->mmu, va);
	assert_int_equal(ue->tag_read, ~0ull);
	assert_true(fx_fill(fx, va, MMU_ACC_READ));
	mmu_write_cr3(&fx->mmu, fx->cr3);
	assert_int_equal(ue->tag_read, ~0ull);
}

static void test_tlb_user_pages(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t u = MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US;
	uint64_t lv[5] = {0, u | MMU_PTE_D, u, u, u};
	const gva_t va = 0x0000000000601000ull;

	fx_reset(fx);
	fx_map(fx, va, 0x12000, 12, lv);
	/* without SMAP the kernel may cache user pages */
	fx_mode_long(fx, 0);
	assert_true(fx_fill(fx, va, MMU_ACC_WRITE));
	assert_int_equal(fx_tlb(fx, va)->tag_write, va);
	/* with SMAP, never (AC flips inline with stac/clac), even with AC=1 */
	fx_mode_long(fx, MMU_CR4_SMAP);
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	assert_int_equal(fx_tlb(fx, va)->tag_read, ~0ull);
	assert_false(fx_fill(fx, va, MMU_ACC_READ));
	assert_int_equal(fx_tlb(fx, va)->tag_read, ~0ull);
}

struct hook_log {
	struct mmu_fx *fx;
	unsigned calls;
	gpa_t gpa;
	size_t len;
	uint8_t seen; /* guest byte at gpa when the hook ran */
};

static void code_hook(void *opaque, gpa_t gpa, size_t len)
{
	struct hook_log *h = opaque;

	h->calls++;
	h->gpa = gpa;
	h->len = len;
	h->seen = *fx_host(h->fx, gpa);
	guestmem_page_clear_flags(h->fx->gm, gpa, GUESTMEM_PAGE_CODE);
}

static void test_tlb_code_pages(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, ok | MMU_PTE_D, ok, ok, ok};
	const gva_t va = 0xffffffff81200000ull, alias = 0xffff888000013000ull;
	struct hook_log h = {.fx = fx};
	struct mmu_fault f;
	uint32_t v = 0xc3c3c3c3;

	fx_reset(fx);
	fx_map(fx, va, 0x13000, 12, lv);
	fx_map(fx, alias, 0x13000, 12, lv); /* the direct-map alias of the same page */
	fx_mode_long(fx, 0);
	*fx_host(fx, 0x13100) = 0x90;
	guestmem_set_code_write_hook(fx->gm, code_hook, &h);
	assert_true(fx_fill(fx, va, MMU_ACC_WRITE));
	assert_true(fx_fill(fx, alias, MMU_ACC_WRITE));
	assert_int_equal(fx_tlb(fx, alias)->tag_write, alias);
	/* marking the page as code revokes write access in BOTH entries */
	assert_int_equal(guestmem_page_set_flags(fx->gm, 0x13000, GUESTMEM_PAGE_CODE), BT_OK);
	assert_int_equal(fx_tlb(fx, va)->tag_write, ~0ull);
	assert_int_equal(fx_tlb(fx, alias)->tag_write, ~0ull);
	assert_int_equal(fx_tlb(fx, va)->tag_read, va);
	/* and a new fill does not make it writable */
	assert_true(fx_fill(fx, alias, MMU_ACC_WRITE));
	assert_int_equal(fx_tlb(fx, alias)->tag_write, ~0ull);
	/* the slow-path write calls the hook BEFORE the bytes land */
	assert_int_equal(mmu_write(&fx->mmu, alias + 0x100, &v, 4, 0, &f), BT_OK);
	assert_false(f.pending);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.gpa, 0x13100);
	assert_int_equal(h.len, 4);
	assert_int_equal(h.seen, 0x90);
	assert_memory_equal(fx_host(fx, 0x13100), &v, 4);
	/* the hook cleared the flag: writable again after a fill, no more calls */
	assert_true(fx_fill(fx, alias, MMU_ACC_WRITE));
	assert_int_equal(fx_tlb(fx, alias)->tag_write, alias);
	assert_int_equal(mmu_write(&fx->mmu, alias + 0x100, &v, 4, 0, &f), BT_OK);
	assert_int_equal(h.calls, 1);
	/* device-style physical writes go through the hook too */
	guestmem_page_set_flags(fx->gm, 0x13000, GUESTMEM_PAGE_CODE);
	assert_int_equal(guestmem_write(fx->gm, 0x12ffe, &v, 4), BT_OK);
	assert_int_equal(h.calls, 2);
	assert_int_equal(h.gpa, 0x13000);
	assert_int_equal(h.len, 2);
	struct mmu_stats st;
	mmu_get_stats(&fx->mmu, &st);
	assert_int_equal(st.code_writes, 1);
	guestmem_set_code_write_hook(fx->gm, NULL, NULL);
}

static void test_tlb_hits_and_staleness(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, ok | MMU_PTE_D, ok, ok, ok};
	const gva_t va = 0xffff888000400000ull;
	struct mmu_stats s0, s1;
	struct mmu_fault f;
	uint8_t b;

	fx_reset(fx);
	fx_map(fx, va, 0x14000, 12, lv);
	fx_mode_long(fx, 0);
	*fx_host(fx, 0x14000) = 0x11;
	*fx_host(fx, 0x15000) = 0x22;
	assert_true(fx_fill(fx, va, MMU_ACC_READ));
	mmu_get_stats(&fx->mmu, &s0);
	assert_int_equal(mmu_read(&fx->mmu, va, &b, 1, 0, &f), BT_OK);
	assert_int_equal(b, 0x11);
	mmu_get_stats(&fx->mmu, &s1);
	assert_int_equal(s1.tlb_hits, s0.tlb_hits + 1);
	assert_int_equal(s1.walks, s0.walks);
	/* the guest remaps without INVLPG: the stale entry is still used, as on
	 * hardware; after INVLPG the new mapping is seen */
	fx_map(fx, va, 0x15000, 12, lv);
	mmu_read(&fx->mmu, va, &b, 1, 0, &f);
	assert_int_equal(b, 0x11);
	mmu_invlpg(&fx->mmu, va);
	mmu_read(&fx->mmu, va, &b, 1, 0, &f);
	assert_int_equal(b, 0x22);
	/* user accesses never use the kernel TLB */
	uint64_t ulv[5] = {0, ok | MMU_PTE_D | MMU_PTE_US, ok | MMU_PTE_US, ok | MMU_PTE_US,
			   ok | MMU_PTE_US};
	fx_map(fx, 0x700000, 0x14000, 12, ulv);
	assert_true(fx_fill(fx, 0x700000, MMU_ACC_READ));
	mmu_get_stats(&fx->mmu, &s0);
	mmu_set_cpl_ac(&fx->mmu, 3, false);
	mmu_read(&fx->mmu, 0x700000, &b, 1, 0, &f);
	assert_false(f.pending);
	mmu_get_stats(&fx->mmu, &s1);
	assert_int_equal(s1.tlb_hits, s0.tlb_hits);
	assert_int_equal(s1.tlb_misses, s0.tlb_misses + 1);
}

/* The flush hook's last event. */
struct flush_rec {
	enum mmu_flush_kind kind;
	gva_t gva;
	unsigned n;
};

static void flush_rec_hook(void *opaque, enum mmu_flush_kind kind, gva_t gva)
{
	struct flush_rec *r = opaque;
	r->kind = kind;
	r->gva = gva;
	r->n++;
}

/* PCIDs (runtime/mmu/mmu_pcid.c): a CR3 load to another PCID puts the old
 * PCID's non-global entries aside and, with bit 63, brings the new one's
 * back; without bit 63 the new PCID starts empty; flush_all forgets every
 * PCID; a page that becomes watched loses write access in kept entries. */
static void test_tlb_pcid(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t glob[5] = {0, ok | MMU_PTE_G, ok, ok, ok};
	uint64_t local[5] = {0, ok, ok, ok, ok};
	const gva_t g = 0xffffffff82000000ull, l = 0xffff888000600000ull, l2 = l + 0x1000;
	const uint64_t cr0 = MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP;
	const uint64_t efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE;
	const uint64_t keep = 1ull << 63;
	struct flush_rec rec = {0};
	struct mmu_stats st;

	fx_reset(fx);
	fx_map(fx, g, 0x16000, 12, glob);
	fx_map(fx, l, 0x17000, 12, local);
	fx_map(fx, l2, 0x18000, 12, local);
	mmu_set_flush_hook(&fx->mmu, flush_rec_hook, &rec);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3 | 1,
				      MMU_CR4_PAE | MMU_CR4_PGE | MMU_CR4_PCIDE, efer),
			 BT_OK);
	/* PCID 1: a global entry, a writable local one */
	assert_true(fx_fill(fx, g, MMU_ACC_READ));
	assert_true(fx_fill(fx, l, MMU_ACC_WRITE));
	struct vcpu_tlb_entry saved = *fx_tlb(fx, l);
	assert_int_equal(saved.tag_write, l);
	/* to PCID 2: the local entry goes aside, the global one stays */
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2);
	assert_int_equal(rec.kind, MMU_FLUSH_PCID);
	assert_int_equal(MMU_PCID_OLD(rec.gva), 1);
	assert_int_equal(MMU_PCID_NEW(rec.gva), 2);
	assert_false(rec.gva & MMU_PCID_KEPT);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	assert_int_equal(fx_tlb(fx, g)->tag_read, g);
	/* PCID 2 has entries of its own */
	assert_true(fx_fill(fx, l2, MMU_ACC_READ));
	/* back to PCID 1 with bit 63: its entry returns as it was, PCID 2's goes */
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_int_equal(MMU_PCID_OLD(rec.gva), 2);
	assert_int_equal(MMU_PCID_NEW(rec.gva), 1);
	assert_true(rec.gva & MMU_PCID_KEPT);
	assert_memory_equal(fx_tlb(fx, l), &saved, sizeof(saved));
	assert_int_equal(fx_tlb(fx, l2)->tag_read, ~0ull);
	assert_int_equal(fx->mmu.cr3, fx->cr3 | 1); /* bit 63 not stored */
	/* PCID 2 with bit 63: its entry is back */
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2 | keep);
	assert_int_equal(fx_tlb(fx, l2)->tag_read, l2);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	/* PCID 1 without bit 63: its kept entries are flushed */
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1);
	assert_false(rec.gva & MMU_PCID_KEPT);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2 | keep);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull); /* not resurrected */
	/* a page watched while its entry is aside comes back read-only */
	assert_true(fx_fill(fx, l, MMU_ACC_WRITE));
	assert_int_equal(fx_tlb(fx, l)->tag_write, l);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2);
	assert_int_equal(guestmem_page_set_flags(fx->gm, 0x17000, GUESTMEM_PAGE_CODE), BT_OK);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_int_equal(fx_tlb(fx, l)->tag_read, l);
	assert_int_equal(fx_tlb(fx, l)->tag_write, ~0ull);
	assert_int_equal(guestmem_page_clear_flags(fx->gm, 0x17000, GUESTMEM_PAGE_CODE), BT_OK);
	/* the same PCID with bit 63 and the same CR3: nothing happens */
	unsigned n = rec.n;
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_int_equal(rec.n, n);
	assert_int_equal(fx_tlb(fx, l)->tag_read, l);
	/* flush_all forgets the PCIDs that are aside */
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2);
	mmu_flush_all(&fx->mmu);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	/* more PCIDs than slots: the least recently used is recycled */
	assert_true(fx_fill(fx, l, MMU_ACC_READ));
	for (unsigned p = 2; p < 2 + MMU_PCID_SLOTS + 1; p++) {
		mmu_write_cr3(&fx->mmu, fx->cr3 | p);
		assert_true(fx_fill(fx, l2, MMU_ACC_READ));
	}
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	mmu_get_stats(&fx->mmu, &st);
	assert_true(st.pcid_switches >= 10);
	assert_int_equal(st.pcid_kept, 5); /* one of them found PCID 1 with no entries */
	assert_int_equal(st.pcid_restored, 4);
	mmu_set_flush_hook(&fx->mmu, NULL, NULL);
}

static void test_tlb_flushes(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t glob[5] = {0, ok | MMU_PTE_G, ok, ok, ok};
	uint64_t local[5] = {0, ok, ok, ok, ok};
	uint64_t large[5] = {0, 0, ok | MMU_PTE_G, ok, ok};
	const gva_t g = 0xffffffff82000000ull, l = 0xffff888000600000ull;
	const gva_t big = 0xffffffffc0000000ull; /* a 2 MiB page */
	const uint64_t cr0 = MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP;
	const uint64_t efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE;

	fx_reset(fx);
	fx_map(fx, g, 0x16000, 12, glob);
	fx_map(fx, l, 0x17000, 12, local);
	fx_map(fx, big, 0x400000, 21, large);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE, efer),
			 BT_OK);
	assert_true(fx_fill(fx, g, MMU_ACC_READ));
	assert_true(fx_fill(fx, l, MMU_ACC_READ));
	/* same mode again: no flush */
	mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE, efer);
	assert_int_equal(fx_tlb(fx, l)->tag_read, l);
	/* MOV to CR3, even the same value: non-global entries go */
	mmu_write_cr3(&fx->mmu, fx->cr3);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	assert_int_equal(fx_tlb(fx, g)->tag_read, g);
	/* a CR3 change through set_mode: the same */
	assert_true(fx_fill(fx, l, MMU_ACC_READ));
	mmu_set_mode(&fx->mmu, cr0, fx->cr3 + 0x1000, MMU_CR4_PAE | MMU_CR4_PGE, efer);
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	assert_int_equal(fx_tlb(fx, g)->tag_read, g);
	mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE, efer);
	mmu_flush_nonglobal(&fx->mmu);
	assert_int_equal(fx_tlb(fx, g)->tag_read, g);
	/* toggling CR4.PGE flushes everything, global entries included */
	mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE, efer);
	assert_int_equal(fx_tlb(fx, g)->tag_read, ~0ull);
	/* without PGE, G is ignored: a CR3 write drops the entry */
	assert_true(fx_fill(fx, g, MMU_ACC_READ));
	mmu_write_cr3(&fx->mmu, fx->cr3);
	assert_int_equal(fx_tlb(fx, g)->tag_read, ~0ull);
	/* INVLPG drops global entries too */
	mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE, efer);
	assert_true(fx_fill(fx, g, MMU_ACC_READ));
	mmu_invlpg(&fx->mmu, g + 0x80);
	assert_int_equal(fx_tlb(fx, g)->tag_read, ~0ull);
	/* INVLPG anywhere in a 2 MiB page drops all its 4 KiB pieces, and only them */
	assert_true(fx_fill(fx, big + 0x1000, MMU_ACC_READ));
	assert_true(fx_fill(fx, big + 0x5000, MMU_ACC_READ));
	assert_true(fx_fill(fx, l, MMU_ACC_READ));
	assert_int_equal(fx_tlb(fx, big + 0x5000)->gpa_page, 0x405000);
	mmu_invlpg(&fx->mmu, big + 0x1ff000);
	assert_int_equal(fx_tlb(fx, big + 0x1000)->tag_read, ~0ull);
	assert_int_equal(fx_tlb(fx, big + 0x5000)->tag_read, ~0ull);
	assert_int_equal(fx_tlb(fx, l)->tag_read, l);
	/* PCIDE: bit 63 keeps the entries only when CR3 does not change */
	mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE | MMU_CR4_PCIDE, efer);
	assert_true(fx_fill(fx, l, MMU_ACC_READ));
	mmu_write_cr3(&fx->mmu, fx->cr3 | (1ull << 63));
	assert_int_equal(fx_tlb(fx, l)->tag_read, l);
	assert_int_equal(fx->mmu.cr3, fx->cr3);
	mmu_write_cr3(&fx->mmu, (fx->cr3 + 0x1000) | (1ull << 63));
	assert_int_equal(fx_tlb(fx, l)->tag_read, ~0ull);
	/* flush_all clears everything and is counted */
	struct mmu_stats s0, s1;
	mmu_get_stats(&fx->mmu, &s0);
	mmu_flush_all(&fx->mmu);
	mmu_get_stats(&fx->mmu, &s1);
	assert_int_equal(s1.flush_all, s0.flush_all + 1);
	for (unsigned i = 0; i < VCPU_TLB_ENTRIES; i++) {
		assert_int_equal(fx->abi->tlb[i].tag_read, ~0ull);
		assert_int_equal(fx->abi->tlb[i].tag_write, ~0ull);
	}
}

static void test_host_access(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, ok, ok, ok, ok};
	const gva_t va = 0xffff888000800000ull;
	struct hook_log h = {.fx = fx};
	enum mmu_host_kind kind;
	struct mmu_fault f;
	uint8_t *host;

	fx_reset(fx);
	fx_map(fx, va, 0x30000, 12, lv);
	fx_map(fx, va + 0x1000, 0x31000, 12, lv); /* physically adjacent */
	fx_map(fx, va + 0x2000, 0x50000, 12, lv); /* not adjacent */
	fx_map(fx, va + 0x3000, GUESTMEM_IOAPIC_BASE, 12, lv);
	fx_mode_long(fx, 0);
	/* inside one page: the pointer, A set, TLB refilled (clean: read only) */
	assert_int_equal(mmu_host_access(&fx->mmu, va + 8, 8, MMU_ACC_READ, &host, &kind, &f),
			 BT_OK);
	assert_false(f.pending);
	assert_int_equal(kind, MMU_HOST_RAM);
	assert_ptr_equal(host, fx_host(fx, 0x30008));
	assert_true(fx_entry(fx, va, 1) & MMU_PTE_A);
	assert_int_equal(fx_tlb(fx, va)->tag_read, va);
	assert_int_equal(fx_tlb(fx, va)->tag_write, ~0ull);
	/* a write sets D and makes the entry writable */
	assert_int_equal(mmu_host_access(&fx->mmu, va + 8, 8, MMU_ACC_WRITE, &host, &kind, &f),
			 BT_OK);
	assert_true(fx_entry(fx, va, 1) & MMU_PTE_D);
	assert_int_equal(fx_tlb(fx, va)->tag_write, va);
	/* crossing into the adjacent physical page: one contiguous pointer */
	assert_int_equal(mmu_host_access(&fx->mmu, va + 0xffc, 8, MMU_ACC_WRITE, &host, &kind, &f),
			 BT_OK);
	assert_int_equal(kind, MMU_HOST_RAM);
	assert_ptr_equal(host, fx_host(fx, 0x30ffc));
	assert_true(fx_entry(fx, va + 0x1000, 1) & MMU_PTE_D);
	/* crossing into a non-adjacent page: split */
	assert_int_equal(mmu_host_access(&fx->mmu, va + 0x1ffe, 4, MMU_ACC_READ, &host, &kind, &f),
			 BT_OK);
	assert_false(f.pending);
	assert_int_equal(kind, MMU_HOST_SPLIT);
	assert_null(host);
	/* MMIO */
	assert_int_equal(mmu_host_access(&fx->mmu, va + 0x3010, 4, MMU_ACC_WRITE, &host, &kind, &f),
			 BT_OK);
	assert_int_equal(kind, MMU_HOST_MMIO);
	assert_null(host);
	/* a fault on the second page: its start, and no A/D on the first */
	fx_reset(fx);
	fx_map(fx, va, 0x30000, 12, lv);
	fx_mode_long(fx, 0);
	assert_int_equal(mmu_host_access(&fx->mmu, va + 0xffe, 4, MMU_ACC_WRITE, &host, &kind, &f),
			 BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.addr, va + 0x1000);
	assert_int_equal(f.error_code, MMU_PF_W);
	assert_null(host);
	assert_false(fx_entry(fx, va, 1) & MMU_PTE_A);
	/* a write to a code page runs the hook before returning the pointer */
	*fx_host(fx, 0x30040) = 0xcc;
	guestmem_set_code_write_hook(fx->gm, code_hook, &h);
	guestmem_page_set_flags(fx->gm, 0x30000, GUESTMEM_PAGE_CODE);
	assert_int_equal(mmu_host_access(&fx->mmu, va + 0x40, 2, MMU_ACC_WRITE, &host, &kind, &f),
			 BT_OK);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.gpa, 0x30040);
	assert_int_equal(h.len, 2);
	assert_int_equal(h.seen, 0xcc);
	assert_ptr_equal(host, fx_host(fx, 0x30040));
	guestmem_set_code_write_hook(fx->gm, NULL, NULL);
	/* CPL3 user access: translated, never cached */
	uint64_t ulv[5] = {0, ok | MMU_PTE_US, ok | MMU_PTE_US, ok | MMU_PTE_US, ok | MMU_PTE_US};
	fx_map(fx, 0x900000, 0x60000, 12, ulv);
	mmu_set_cpl_ac(&fx->mmu, 3, false);
	assert_int_equal(mmu_host_access(&fx->mmu, 0x900010, 4, MMU_ACC_READ, &host, &kind, &f),
			 BT_OK);
	assert_ptr_equal(host, fx_host(fx, 0x60010));
	assert_int_equal(fx_tlb(fx, 0x900000)->tag_read, ~0ull);
	/* bad arguments */
	assert_int_equal(mmu_host_access(&fx->mmu, va, 0, MMU_ACC_READ, &host, &kind, &f),
			 BT_ERR_INVALID);
	assert_int_equal(mmu_host_access(&fx->mmu, va, 4097, MMU_ACC_READ, &host, &kind, &f),
			 BT_ERR_INVALID);
	assert_int_equal(mmu_host_access(&fx->mmu, va, 1, MMU_ACC_EXEC, &host, &kind, &f),
			 BT_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_tlb_fill, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_user_set, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_user_pages, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_code_pages, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_hits_and_staleness, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_flushes, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_pcid, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_host_access, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
