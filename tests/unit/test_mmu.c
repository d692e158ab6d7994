/*
 * Soft-MMU unit tests: real memfd-backed guest RAM, page tables built by
 * the test in guest memory, the permission matrix checked against an
 * oracle written from the SDM tables (vol. 3, 4.6) independently of
 * runtime/mmu, A/D bits, RSVD faults, error codes, CR2, page crossings,
 * MMIO (the software TLB is test_mmu_tlb.c).
 */

#include "tests/unit/mmu_fixture.h"

/* ---- the permission matrix ------------------------------------------- */

enum who { WHO_SUP, WHO_USER, WHO_IMPLICIT3 }; /* CPL0 explicit, CPL3, CPL3 implicit */

struct pcase {
	enum who who;
	unsigned kind;	 /* MMU_ACC_READ / WRITE / EXEC */
	unsigned shape;	 /* 0: 4K (levels 4..1), 1: 2M (4..2), 2: 1G (4..3) */
	unsigned level;	 /* level carrying the tested bits */
	bool us, rw, nx; /* bits at that level (other levels permissive) */
	bool wp, smep, smap, ac, nxe;
};

/*
 * The oracle: the SDM's text, one rule per line.  Returns the expected
 * error code, or -1 when the access is allowed.
 */
static long oracle(const struct pcase *c)
{
	bool user_mode = c->who == WHO_USER;
	bool implicit = c->who == WHO_IMPLICIT3;
	bool write = c->kind == MMU_ACC_WRITE, fetch = c->kind == MMU_ACC_EXEC;
	long ec = (write ? 2 : 0) | (user_mode ? 4 : 0) | (fetch && (c->nxe || c->smep) ? 16 : 0);

	if (c->nx && !c->nxe)
		return ec | 1 | 8; /* XD is reserved without EFER.NXE */
	/* user-mode address: U/S=1 at every level; only the tested level can clear it */
	bool user_addr = c->us;
	bool rw_all = c->rw;
	bool xd = c->nx && c->nxe;

	if (user_mode) {
		if (!user_addr)
			return ec | 1;
		if (write && !rw_all)
			return ec | 1;
		if (fetch && xd)
			return ec | 1;
		return -1;
	}
	/* supervisor-mode access */
	if (fetch) {
		if (user_addr && c->smep)
			return ec | 1;
		if (xd)
			return ec | 1;
		return -1;
	}
	if (user_addr && c->smap && (implicit || !c->ac))
		return ec | 1;
	if (write && c->wp && !rw_all)
		return ec | 1;
	return -1;
}

/* The table the walk for gva reads at `level` (4: the PML4), from the
 * fixture's own tables. */
static gpa_t fx_table_at(struct mmu_fx *fx, gva_t gva, unsigned level)
{
	return level == 4 ? fx->cr3 : fx_entry(fx, gva, level + 1) & FX_ADDR_MASK;
}

/*
 * mmu_translate_info on a case: the probe first (same outcome, no A/D),
 * then the access.  On success every field of the info is checked against
 * the case and the fixture's tables; a fault leaves the info untouched.
 */
static void run_case_info(struct mmu_fx *fx, const struct pcase *c, gva_t gva, gpa_t target,
			  unsigned shift, unsigned access, struct mmu_fault *f)
{
	unsigned leaf_level = 1 + c->shape;
	bool write = c->kind == MMU_ACC_WRITE;
	struct mmu_walk_info info, untouched;
	struct mmu_fault pf;

	memset(&untouched, 0xa5, sizeof(untouched));
	memcpy(&info, &untouched, sizeof(info));
	assert_int_equal(mmu_translate_info(&fx->mmu, gva, access | MMU_ACC_PROBE, &info, &pf),
			 BT_OK);
	for (unsigned l = 4; l >= leaf_level; l--)
		assert_false(fx_entry(fx, gva, l) & (MMU_PTE_A | MMU_PTE_D));
	if (!pf.pending)
		assert_false(info.dirty); /* a probe write sets no D */
	memcpy(&info, &untouched, sizeof(info));
	assert_int_equal(mmu_translate_info(&fx->mmu, gva, access, &info, f), BT_OK);
	assert_int_equal(f->pending, pf.pending);
	if (f->pending) {
		assert_int_equal(f->error_code, pf.error_code);
		assert_memory_equal(&info, &untouched, sizeof(info));
		return;
	}
	assert_int_equal(info.gpa, target + (gva & ((1ull << shift) - 1)));
	assert_false(info.mmio);
	assert_int_equal(info.page_shift, shift);
	assert_int_equal(info.user, c->us);
	assert_int_equal(info.writable, c->rw);
	assert_int_equal(info.nx, c->nx && c->nxe);
	assert_int_equal(info.dirty, write);
	for (unsigned l = 1; l <= 4; l++)
		assert_int_equal(info.tables[l - 1],
				 l >= leaf_level ? fx_table_at(fx, gva, l) : ~0ull);
}

/* One case through mmu_translate, or through mmu_translate_info (with_info). */
static void run_case(struct mmu_fx *fx, const struct pcase *c, bool with_info)
{
	static const unsigned shifts[] = {12, 21, 30};
	unsigned shift = shifts[c->shape];
	unsigned leaf_level = 1 + c->shape;
	gva_t gva = 0x00007f1234000000ull + 0x40000000ull * 3 + 0x123; /* user half, canonical */
	gpa_t target = 0x40000000ull;				       /* 1 GiB aligned */
	uint64_t lv[5];
	struct mmu_fault f;
	gpa_t gpa = 0;
	bool mmio = true;
	long want;

	/* 4-level: levels are 4 (PML4E) .. leaf_level */
	for (unsigned l = 1; l <= 4; l++)
		lv[l] = MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US;
	lv[c->level] = MMU_PTE_P | (c->us ? MMU_PTE_US : 0) | (c->rw ? MMU_PTE_RW : 0) |
		       (c->nx ? MMU_PTE_NX : 0);
	fx_reset(fx);
	/* gva's 1G frame maps target + offset inside the large page */
	fx_map(fx, gva & ~((1ull << shift) - 1), target, shift, lv);

	uint64_t cr0 = MMU_CR0_PE | MMU_CR0_PG | (c->wp ? MMU_CR0_WP : 0);
	uint64_t cr4 = MMU_CR4_PAE | (c->smep ? MMU_CR4_SMEP : 0) | (c->smap ? MMU_CR4_SMAP : 0);
	uint64_t efer = MMU_EFER_LME | MMU_EFER_LMA | (c->nxe ? MMU_EFER_NXE : 0);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3, cr4, efer), BT_OK);
	mmu_set_cpl_ac(&fx->mmu, c->who == WHO_SUP ? 0 : 3, c->ac);

	unsigned access = c->kind | (c->who == WHO_IMPLICIT3 ? MMU_ACC_IMPLICIT : 0);
	if (with_info) {
		run_case_info(fx, c, gva, target, shift, access, &f);
		gpa = target + (gva & ((1ull << shift) - 1));
		mmio = false;
	} else {
		assert_int_equal(mmu_translate(&fx->mmu, gva, access, &gpa, &mmio, &f), BT_OK);
	}
	want = oracle(c);
	if (want < 0) {
		if (f.pending)
			print_error("case who=%d kind=%u shape=%u level=%u us=%d rw=%d nx=%d wp=%d "
				    "smep=%d smap=%d ac=%d nxe=%d: unexpected fault ec=%#x\n",
				    c->who, c->kind, c->shape, c->level, c->us, c->rw, c->nx, c->wp,
				    c->smep, c->smap, c->ac, c->nxe, f.error_code);
		assert_false(f.pending);
		assert_int_equal(gpa, target + (gva & ((1ull << shift) - 1)));
		assert_false(mmio);
		/* A on every level used, D on the leaf for writes only */
		for (unsigned l = 4; l >= leaf_level; l--) {
			uint64_t e = fx_entry(fx, gva, l);
			assert_true(e & MMU_PTE_A);
			if (l == leaf_level)
				assert_int_equal(!!(e & MMU_PTE_D), c->kind == MMU_ACC_WRITE);
			else
				assert_false(e & MMU_PTE_D);
		}
	} else {
		if (!f.pending || f.error_code != (uint32_t)want)
			print_error("case who=%d kind=%u shape=%u level=%u us=%d rw=%d nx=%d wp=%d "
				    "smep=%d smap=%d ac=%d nxe=%d: pending=%d ec=%#x want %#lx\n",
				    c->who, c->kind, c->shape, c->level, c->us, c->rw, c->nx, c->wp,
				    c->smep, c->smap, c->ac, c->nxe, f.pending, f.error_code, want);
		assert_true(f.pending);
		assert_int_equal(f.vector, MMU_VEC_PF);
		assert_int_equal(f.addr, gva);
		assert_int_equal(f.error_code, (uint32_t)want);
		for (unsigned l = 4; l >= leaf_level; l--)
			assert_false(fx_entry(fx, gva, l) & (MMU_PTE_A | MMU_PTE_D));
	}
}

static void permission_matrix(struct mmu_fx *fx, bool with_info)
{
	static const unsigned kinds[] = {MMU_ACC_READ, MMU_ACC_WRITE, MMU_ACC_EXEC};
	unsigned n = 0, allowed = 0;

	for (unsigned who = 0; who < 3; who++)
		for (unsigned k = 0; k < 3; k++)
			for (unsigned shape = 0; shape < 3; shape++)
				for (unsigned level = 1 + shape; level <= 4; level++)
					for (unsigned bits = 0; bits < 256; bits++) {
						struct pcase c = {
						    .who = who,
						    .kind = kinds[k],
						    .shape = shape,
						    .level = level,
						    .us = bits & 1,
						    .rw = bits & 2,
						    .nx = bits & 4,
						    .wp = bits & 8,
						    .smep = bits & 16,
						    .smap = bits & 32,
						    .ac = bits & 64,
						    .nxe = bits & 128,
						};
						run_case(fx, &c, with_info);
						n++;
						allowed += oracle(&c) < 0;
					}
	/* 3 x 3 x (4+3+2) x 256 cases, both outcomes well represented */
	assert_int_equal(n, 3 * 3 * 9 * 256);
	assert_true(allowed > n / 5 && allowed < n - n / 5);
}

static void test_permission_matrix(void **state)
{
	permission_matrix(*state, false);
}

/* The same matrix through mmu_translate_info: the same faults and A/D
 * updates, and the leaf's effective U/S, R/W, XD, size and tables. */
static void test_permission_matrix_info(void **state)
{
	permission_matrix(*state, true);
}

/* Hand-checked cases with literal expectations (not from the oracle). */
static void test_permission_examples(void **state)
{
	struct mmu_fx *fx = *state;
	struct mmu_fault f;
	gpa_t gpa;
	uint64_t ro_sup[5] = {0, MMU_PTE_P, MMU_PTE_P | MMU_PTE_RW, MMU_PTE_P | MMU_PTE_RW,
			      MMU_PTE_P | MMU_PTE_RW};
	uint64_t user_rw[5] = {
	    0, MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US, MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US,
	    MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US, MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US};
	uint64_t efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE;

	fx_reset(fx);
	fx_map(fx, 0xffff800000001000ull, 0x3000, 12, ro_sup);	/* supervisor read-only */
	fx_map(fx, 0x0000000000400000ull, 0x4000, 12, user_rw); /* user rw */

	/* WP=0: the kernel writes a read-only supervisor page */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG, fx->cr3, MMU_CR4_PAE, efer);
	mmu_set_cpl_ac(&fx->mmu, 0, false);
	assert_int_equal(
	    mmu_translate(&fx->mmu, 0xffff800000001008ull, MMU_ACC_WRITE, &gpa, NULL, &f), BT_OK);
	assert_false(f.pending);
	assert_int_equal(gpa, 0x3008);
	/* WP=1: the same write is a protection fault, error code P|W = 3 */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP, fx->cr3, MMU_CR4_PAE, efer);
	mmu_translate(&fx->mmu, 0xffff800000001008ull, MMU_ACC_WRITE, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0x3);
	/* user read of a supervisor page: P|U = 5 */
	mmu_set_cpl_ac(&fx->mmu, 3, false);
	mmu_translate(&fx->mmu, 0xffff800000001000ull, MMU_ACC_READ, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0x5);
	/* user fetch of an unmapped page: U|I = 0x14 */
	mmu_translate(&fx->mmu, 0x0000000000600000ull, MMU_ACC_EXEC, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0x14);
	/* SMEP: kernel fetch from a user page: P|I = 0x11 */
	mmu_set_cpl_ac(&fx->mmu, 0, false);
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP, fx->cr3,
		     MMU_CR4_PAE | MMU_CR4_SMEP | MMU_CR4_SMAP, efer);
	mmu_translate(&fx->mmu, 0x400000, MMU_ACC_EXEC, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0x11);
	/* SMAP: kernel read of a user page with AC=0: P = 1 */
	mmu_translate(&fx->mmu, 0x400010, MMU_ACC_READ, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0x1);
	/* ... allowed with AC=1 (stac) ... */
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	assert_int_equal(fx->abi->ac, 1);
	mmu_translate(&fx->mmu, 0x400010, MMU_ACC_WRITE, &gpa, NULL, &f);
	assert_false(f.pending);
	assert_int_equal(gpa, 0x4010);
	/* ... but never for an implicit supervisor access: P|W = 3 */
	mmu_translate(&fx->mmu, 0x400010, MMU_ACC_WRITE | MMU_ACC_IMPLICIT, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0x3);
	/* MMU_ACC_USER forces a user access at CPL0: supervisor page -> P|U */
	mmu_translate(&fx->mmu, 0xffff800000001000ull, MMU_ACC_READ | MMU_ACC_USER, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0x5);
}

/* ---- reserved bits, not-present, canonical, paging off --------------- */

static void expect_fault(struct mmu_fx *fx, gva_t gva, unsigned access, uint8_t vec, uint32_t ec)
{
	struct mmu_fault f;
	gpa_t gpa = 0xdead;

	assert_int_equal(mmu_translate(&fx->mmu, gva, access, &gpa, NULL, &f), BT_OK);
	if (!f.pending || f.error_code != ec || f.vector != vec)
		print_error("gva %#llx access %#x: pending %d vec %u ec %#x, want vec %u ec %#x\n",
			    (unsigned long long)gva, access, f.pending, f.vector, f.error_code, vec,
			    ec);
	assert_true(f.pending);
	assert_int_equal(f.vector, vec);
	assert_int_equal(f.error_code, ec);
	assert_int_equal(f.addr, gva);
	assert_int_equal(gpa, 0xdead);
}

static void test_reserved_bits(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	const gva_t va = 0xffffc90000000000ull + 0x1234;

	for (unsigned level = 1; level <= 4; level++) {
		/* an address bit above MAXPHYADDR (46) at each level */
		uint64_t lv[5] = {0, ok, ok, ok, ok};
		lv[level] |= 1ull << 50;
		fx_reset(fx);
		fx_map(fx, va & GUEST_PAGE_MASK, 0x5000, 12, lv);
		fx_mode_long(fx, 0);
		expect_fault(fx, va, MMU_ACC_READ, MMU_VEC_PF, MMU_PF_P | MMU_PF_RSVD);
		expect_fault(fx, va, MMU_ACC_WRITE, MMU_VEC_PF, MMU_PF_P | MMU_PF_RSVD | MMU_PF_W);
		/* not present wins over reserved bits: no RSVD */
		lv[level] &= ~MMU_PTE_P;
		fx_reset(fx);
		fx_map(fx, va & GUEST_PAGE_MASK, 0x5000, 12, lv);
		fx_mode_long(fx, 0);
		expect_fault(fx, va, MMU_ACC_WRITE, MMU_VEC_PF, MMU_PF_W);
		for (unsigned l = 4; l >= level; l--)
			assert_false(fx_entry(fx, va, l) & MMU_PTE_A);
	}
	/* the same bit is fine with MAXPHYADDR 52 */
	{
		uint64_t lv[5] = {0, ok | (1ull << 50), ok, ok, ok};
		fx_reset(fx);
		fx_map(fx, va & GUEST_PAGE_MASK, 0x5000, 12, lv);
		assert_int_equal(mmu_set_phys_bits(&fx->mmu, 52), BT_OK);
		fx_mode_long(fx, 0);
		struct mmu_fault f;
		gpa_t gpa;
		bool mmio;
		mmu_translate(&fx->mmu, va, MMU_ACC_READ, &gpa, &mmio, &f);
		assert_false(f.pending);
		assert_int_equal(gpa, (1ull << 50) | 0x5234);
		assert_true(mmio); /* far beyond RAM */
		assert_int_equal(mmu_set_phys_bits(&fx->mmu, 46), BT_OK);
	}
	/* PS in a PML4E is reserved */
	{
		uint64_t lv[5] = {0, ok, ok, ok, ok | MMU_PTE_PS};
		fx_reset(fx);
		fx_map(fx, va & GUEST_PAGE_MASK, 0x5000, 12, lv);
		fx_mode_long(fx, 0);
		expect_fault(fx, va, MMU_ACC_READ, MMU_VEC_PF, MMU_PF_P | MMU_PF_RSVD);
	}
	/* 2 MiB page with bit 13 set; 1 GiB page with bit 21 set */
	{
		uint64_t lv[5] = {0, 0, ok | MMU_PTE_PS | (1ull << 13), ok, ok};
		fx_reset(fx);
		fx_map(fx, va & ~0x1fffffull, 0x200000, 21, lv);
		fx_mode_long(fx, 0);
		expect_fault(fx, va, MMU_ACC_READ, MMU_VEC_PF, MMU_PF_P | MMU_PF_RSVD);
		uint64_t lv1g[5] = {0, 0, 0, ok | MMU_PTE_PS | (1ull << 21), ok};
		fx_reset(fx);
		fx_map(fx, va & ~0x3fffffffull, 0x40000000, 30, lv1g);
		fx_mode_long(fx, 0);
		expect_fault(fx, va, MMU_ACC_READ | MMU_ACC_USER, MMU_VEC_PF,
			     MMU_PF_P | MMU_PF_RSVD | MMU_PF_U);
	}
	/* XD without EFER.NXE is reserved; I/D is reported only with NXE or SMEP */
	{
		uint64_t lv[5] = {0, ok | MMU_PTE_NX, ok, ok, ok};
		fx_reset(fx);
		fx_map(fx, va & GUEST_PAGE_MASK, 0x5000, 12, lv);
		mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP, fx->cr3, MMU_CR4_PAE,
			     MMU_EFER_LME | MMU_EFER_LMA);
		expect_fault(fx, va, MMU_ACC_EXEC, MMU_VEC_PF, MMU_PF_P | MMU_PF_RSVD);
		fx_mode_long(fx, 0);
		expect_fault(fx, va, MMU_ACC_EXEC, MMU_VEC_PF, MMU_PF_P | MMU_PF_I);
	}
}

static void test_canonical_and_paging_off(void **state)
{
	struct mmu_fx *fx = *state;
	struct mmu_fault f;
	gpa_t gpa;
	bool mmio;

	fx_reset(fx);
	fx_mode_long(fx, 0);
	expect_fault(fx, 0x0000800000000000ull, MMU_ACC_READ, MMU_VEC_GP, 0);
	expect_fault(fx, 0xfff0000000000000ull, MMU_ACC_WRITE, MMU_VEC_GP, 0);
	/* paging off: identity on the 32-bit linear address */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE, 0, 0, 0);
	assert_int_equal(mmu_translate(&fx->mmu, 0x123456, MMU_ACC_WRITE, &gpa, &mmio, &f), BT_OK);
	assert_false(f.pending);
	assert_int_equal(gpa, 0x123456);
	assert_false(mmio);
	mmu_translate(&fx->mmu, GUESTMEM_LAPIC_BASE + 0x30, MMU_ACC_READ, &gpa, &mmio, &f);
	assert_false(f.pending);
	assert_true(mmio);
	/* legacy (non-long-mode) paging and LA57 are refused, not mistranslated */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG, fx->cr3, MMU_CR4_PAE, 0);
	assert_int_equal(mmu_translate(&fx->mmu, 0x1000, MMU_ACC_READ, &gpa, &mmio, &f),
			 BT_ERR_UNSUPPORTED);
	assert_int_equal(mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG, fx->cr3,
				      MMU_CR4_PAE | MMU_CR4_LA57, MMU_EFER_LME | MMU_EFER_LMA),
			 BT_ERR_UNSUPPORTED);
}

/* A page table outside RAM reads as all-ones: RSVD, never a host crash. */
static void test_table_outside_ram(void **state)
{
	struct mmu_fx *fx = *state;

	fx_reset(fx);
	fx->cr3 = 0xfec00000ull; /* IOAPIC: not RAM */
	fx_mode_long(fx, 0);
	expect_fault(fx, 0x1000, MMU_ACC_READ, MMU_VEC_PF, MMU_PF_P | MMU_PF_RSVD);
}

/* mmu_translate_info beyond the matrix: arguments, paging off, statistics,
 * a dirty leaf on a read, R/W reported without CR0.WP applied. */
static void test_translate_info(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, MMU_PTE_P | MMU_PTE_D, ok, ok, ok}; /* read-only, dirty leaf */
	const gva_t va = 0xffff888000020123ull;
	struct mmu_walk_info info;
	struct mmu_stats st0, st1;
	struct mmu_fault f;

	fx_reset(fx);
	fx_map(fx, va & GUEST_PAGE_MASK, 0x20000, 12, lv);
	assert_int_equal(mmu_translate_info(NULL, va, MMU_ACC_READ, &info, &f), BT_ERR_INVALID);
	assert_int_equal(mmu_translate_info(&fx->mmu, va, MMU_ACC_READ, NULL, &f), BT_ERR_INVALID);
	assert_int_equal(mmu_translate_info(&fx->mmu, va, MMU_ACC_READ, &info, NULL),
			 BT_ERR_INVALID);

	/* paging off: identity, 4 KiB, every permission, no tables */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE, 0, 0, 0);
	assert_int_equal(mmu_translate_info(&fx->mmu, 0x123456, MMU_ACC_WRITE, &info, &f), BT_OK);
	assert_false(f.pending);
	assert_int_equal(info.gpa, 0x123456);
	assert_false(info.mmio);
	assert_int_equal(info.page_shift, 12);
	assert_true(info.user && info.writable && info.dirty);
	assert_false(info.nx);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(info.tables[i], ~0ull);

	/* WP=0: a supervisor write to a read-only page is granted, and the
	 * info still says read-only; a read reports the leaf's D as found */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG, fx->cr3, MMU_CR4_PAE,
		     MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE);
	mmu_set_cpl_ac(&fx->mmu, 0, false);
	mmu_get_stats(&fx->mmu, &st0);
	assert_int_equal(mmu_translate_info(&fx->mmu, va, MMU_ACC_READ, &info, &f), BT_OK);
	assert_false(f.pending);
	assert_int_equal(info.gpa, 0x20123);
	assert_false(info.writable);
	assert_true(info.dirty);
	assert_false(info.user);
	assert_int_equal(info.tables[3], fx->cr3);
	mmu_get_stats(&fx->mmu, &st1);
	assert_int_equal(st1.walks, st0.walks + 1); /* one walk, as mmu_translate */
	assert_int_equal(mmu_translate_info(&fx->mmu, va, MMU_ACC_WRITE | MMU_ACC_PROBE, &info, &f),
			 BT_OK);
	assert_false(f.pending);
	assert_false(info.writable);
	mmu_get_stats(&fx->mmu, &st0);
	assert_int_equal(st0.walks, st1.walks); /* a probe is not counted */
	/* MMIO */
	mmu_set_mode(&fx->mmu, MMU_CR0_PE, 0, 0, 0);
	assert_int_equal(
	    mmu_translate_info(&fx->mmu, GUESTMEM_LAPIC_BASE + 0x30, MMU_ACC_READ, &info, &f),
	    BT_OK);
	assert_false(f.pending);
	assert_true(info.mmio);
}

/* ---- A/D bits ---------------------------------------------------------- */

static void test_accessed_dirty(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, ok, ok, ok, ok};
	const gva_t va = 0xffff888000010000ull;
	struct mmu_fault f;
	gpa_t gpa;
	uint8_t b = 0x5a;

	fx_reset(fx);
	fx_map(fx, va, 0x10000, 12, lv);
	fx_mode_long(fx, 0);
	/* a probe sets nothing */
	mmu_translate(&fx->mmu, va, MMU_ACC_WRITE | MMU_ACC_PROBE, &gpa, NULL, &f);
	assert_false(f.pending);
	for (unsigned l = 1; l <= 4; l++)
		assert_false(fx_entry(fx, va, l) & (MMU_PTE_A | MMU_PTE_D));
	/* a read sets A everywhere, D nowhere */
	assert_int_equal(mmu_read(&fx->mmu, va, &b, 1, 0, &f), BT_OK);
	assert_false(f.pending);
	for (unsigned l = 1; l <= 4; l++) {
		assert_true(fx_entry(fx, va, l) & MMU_PTE_A);
		assert_false(fx_entry(fx, va, l) & MMU_PTE_D);
	}
	/* a write sets D on the leaf only */
	b = 0x5a;
	assert_int_equal(mmu_write(&fx->mmu, va + 5, &b, 1, 0, &f), BT_OK);
	assert_false(f.pending);
	assert_true(fx_entry(fx, va, 1) & MMU_PTE_D);
	for (unsigned l = 2; l <= 4; l++)
		assert_false(fx_entry(fx, va, l) & MMU_PTE_D);
	assert_int_equal(fx_host(fx, 0x10005)[0], 0x5a);
	/* no other bit of the entries changed */
	assert_int_equal(fx_entry(fx, va, 1), 0x10000 | ok | MMU_PTE_A | MMU_PTE_D);
}

/* ---- crossings --------------------------------------------------------- */

static void test_page_crossing(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, ok, ok, ok, ok};
	uint64_t ro[5] = {0, MMU_PTE_P, ok, ok, ok};
	const gva_t va = 0xffffffff81000000ull;
	uint8_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
	struct mmu_fault f;

	fx_reset(fx);
	/* two non-adjacent physical pages back two adjacent virtual pages */
	fx_map(fx, va, 0x30000, 12, lv);
	fx_map(fx, va + 0x1000, 0x20000, 12, lv);
	fx_mode_long(fx, 0);
	assert_int_equal(mmu_write(&fx->mmu, va + 0xffc, in, 8, 0, &f), BT_OK);
	assert_false(f.pending);
	assert_memory_equal(fx_host(fx, 0x30ffc), in, 4);
	assert_memory_equal(fx_host(fx, 0x20000), in + 4, 4);
	memset(out, 0, sizeof(out));
	assert_int_equal(mmu_read(&fx->mmu, va + 0xffc, out, 8, 0, &f), BT_OK);
	assert_memory_equal(out, in, 8);

	/* second page not present: fault at its first byte, nothing written */
	fx_reset(fx);
	fx_map(fx, va, 0x30000, 12, lv);
	fx_mode_long(fx, 0);
	memset(fx_host(fx, 0x30000), 0xee, 0x1000);
	assert_int_equal(mmu_write(&fx->mmu, va + 0xffa, in, 8, 0, &f), BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.addr, va + 0x1000);
	assert_int_equal(f.error_code, MMU_PF_W);
	for (int i = 0; i < 6; i++)
		assert_int_equal(fx_host(fx, 0x30ffa)[i], 0xee);
	/* no A/D on the first page from the failed access */
	assert_false(fx_entry(fx, va, 1) & (MMU_PTE_A | MMU_PTE_D));
	/* a read crossing into it faults the same way, error code 0 */
	assert_int_equal(mmu_read(&fx->mmu, va + 0xfff, out, 2, 0, &f), BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.addr, va + 0x1000);
	assert_int_equal(f.error_code, 0);

	/* second page read-only with WP: protection fault P|W at its start */
	fx_map(fx, va + 0x1000, 0x20000, 12, ro);
	mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP, fx->cr3, MMU_CR4_PAE,
		     MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE);
	assert_int_equal(mmu_write(&fx->mmu, va + 0xffe, in, 4, 0, &f), BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.addr, va + 0x1000);
	assert_int_equal(f.error_code, MMU_PF_P | MMU_PF_W);
	assert_int_equal(fx_host(fx, 0x30ffe)[0], 0xee);
	/* a fault on the FIRST page reports the exact address */
	assert_int_equal(mmu_write(&fx->mmu, va - 3, in, 4, 0, &f), BT_OK);
	assert_true(f.pending);
	assert_int_equal(f.addr, va - 3);

	/* fetch: stops at the bad page, reports how much it got */
	size_t got = 99;
	uint8_t code[15];
	fx_map(fx, va + 0x1000, 0x20000, 12, lv);
	mmu_invlpg(&fx->mmu, va + 0x1000);
	assert_int_equal(mmu_fetch(&fx->mmu, va + 0xff8, code, 15, &got, &f), BT_OK);
	assert_false(f.pending);
	assert_int_equal(got, 15);
	uint64_t nxlv[5] = {0, ok | MMU_PTE_NX, ok, ok, ok};
	fx_map(fx, va + 0x1000, 0x20000, 12, nxlv);
	assert_int_equal(mmu_fetch(&fx->mmu, va + 0xff8, code, 15, &got, &f), BT_OK);
	assert_int_equal(got, 8);
	assert_true(f.pending);
	assert_int_equal(f.addr, va + 0x1000);
	assert_int_equal(f.error_code, MMU_PF_P | MMU_PF_I);
	assert_memory_equal(code, fx_host(fx, 0x30ff8), 8);
}

/* ---- MMIO -------------------------------------------------------------- */

struct mmio_log {
	gpa_t gpa;
	size_t len;
	bool write;
	unsigned calls;
	uint8_t data[8];
};

static enum bt_status mmio_cb(void *opaque, gpa_t gpa, void *buf, size_t len, bool is_write)
{
	struct mmio_log *m = opaque;

	m->gpa = gpa;
	m->len = len;
	m->write = is_write;
	m->calls++;
	if (is_write)
		memcpy(m->data, buf, BT_MIN(len, sizeof(m->data)));
	else
		memset(buf, 0x42, len);
	return BT_OK;
}

static void test_mmio(void **state)
{
	struct mmu_fx *fx = *state;
	const uint64_t ok = MMU_PTE_P | MMU_PTE_RW;
	uint64_t lv[5] = {0, ok | MMU_PTE_PCD, ok, ok, ok};
	const gva_t va = 0xffffffffff5fc000ull; /* a fixmap-like slot */
	struct mmio_log m = {0};
	struct mmu_fault f;
	uint32_t v = 0x12345678;
	gpa_t gpa;
	bool mmio = false, filled = true;

	fx_reset(fx);
	fx_map(fx, va, GUESTMEM_LAPIC_BASE, 12, lv);
	fx_mode_long(fx, 0);
	assert_int_equal(mmu_translate(&fx->mmu, va + 0x300, MMU_ACC_READ, &gpa, &mmio, &f), BT_OK);
	assert_false(f.pending);
	assert_true(mmio);
	assert_int_equal(gpa, GUESTMEM_LAPIC_BASE + 0x300);
	/* no handler: reads are all-ones, writes dropped */
	v = 0;
	assert_int_equal(mmu_read(&fx->mmu, va + 0x20, &v, 4, 0, &f), BT_OK);
	assert_int_equal(v, 0xffffffffu);
	mmu_set_mmio_handler(&fx->mmu, mmio_cb, &m);
	v = 0x12345678;
	assert_int_equal(mmu_write(&fx->mmu, va + 0x300, &v, 4, 0, &f), BT_OK);
	assert_int_equal(m.calls, 1);
	assert_true(m.write);
	assert_int_equal(m.gpa, GUESTMEM_LAPIC_BASE + 0x300);
	assert_int_equal(m.len, 4);
	assert_memory_equal(m.data, &v, 4);
	assert_int_equal(mmu_read(&fx->mmu, va + 0x20, &v, 4, 0, &f), BT_OK);
	assert_int_equal(v, 0x42424242u);
	/* never in the TLB */
	assert_int_equal(mmu_tlb_fill(&fx->mmu, va, MMU_ACC_WRITE, &filled, &f), BT_OK);
	assert_false(f.pending);
	assert_false(filled);
	assert_int_equal(fx->abi->tlb[(va >> 12) & (VCPU_TLB_ENTRIES - 1)].tag_read, ~0ull);
	/* and not fetchable */
	size_t got = 7;
	uint8_t code[4];
	assert_int_equal(mmu_fetch(&fx->mmu, va, code, 4, &got, &f), BT_OK);
	assert_int_equal(got, 0);
	assert_false(f.pending);
	struct mmu_stats st;
	mmu_get_stats(&fx->mmu, &st);
	assert_int_equal(st.mmio, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_permission_matrix, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_permission_matrix_info, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_permission_examples, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_reserved_bits, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_canonical_and_paging_off, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_table_outside_ram, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_translate_info, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_accessed_dirty, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_page_crossing, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mmio, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
