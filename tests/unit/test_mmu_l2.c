/*
 * Soft-MMU unit tests, the second-level TLB and the call-out's fast path
 * (mmu_tlb_fast, runtime/mmu/mmu_tlb.c): victims served and put back into
 * the first level, and every coherence rule -- invlpg of a 4 KiB page and
 * of an address inside a 2 MiB / 1 GiB page, non-global flushes keeping
 * global entries, PCID switches, mode changes, SMAP (AC, implicit
 * accesses, CPL 3), watched pages and clean pages never written through it.
 */

#include "runtime/mmu/mmu_int.h"
#include "tests/unit/mmu_fixture.h"

#define CONFLICT (1ull << 24) /* same first-level index (4,096 entries) */

static const uint64_t K = MMU_PTE_P | MMU_PTE_RW;
static const uint64_t U = MMU_PTE_P | MMU_PTE_RW | MMU_PTE_US;

static uint8_t *fast(struct mmu_fx *fx, gva_t va, bool write)
{
	return mmu_tlb_fast(&fx->mmu, va, 8, write);
}

/* An explicit data access through the full path (mmu_host_access). */
static uint8_t *full(struct mmu_fx *fx, gva_t va, unsigned access)
{
	uint8_t *host;
	enum mmu_host_kind kind;
	struct mmu_fault f;

	assert_int_equal(mmu_host_access(&fx->mmu, va, 8, access, &host, &kind, &f), BT_OK);
	assert_false(f.pending);
	assert_int_equal(kind, MMU_HOST_RAM);
	return host;
}

static struct vcpu_tlb_entry *l1(struct mmu_fx *fx, unsigned set, gva_t va)
{
	return set ? &fx->abi->utlb[(va >> 12) & 4095] : &fx->abi->tlb[(va >> 12) & 4095];
}

/* Map va -> gpa (4 KiB, leaf flags `leaf`, upper levels `up`), and a
 * conflicting page va + CONFLICT -> gpa + 0x1000. */
static void map_pair(struct mmu_fx *fx, gva_t va, gpa_t gpa, uint64_t leaf, uint64_t up)
{
	uint64_t lv[5] = {0, leaf, up, up, up};

	fx_map(fx, va, gpa, 12, lv);
	fx_map(fx, va + CONFLICT, gpa + 0x1000, 12, lv);
}

/* Fill va, then evict it to the second level by filling its conflict. */
static void evict(struct mmu_fx *fx, gva_t va, unsigned access)
{
	(void)full(fx, va, access);
	(void)full(fx, va + CONFLICT, MMU_ACC_READ);
	assert_int_not_equal(fx->abi->tlb[(va >> 12) & 4095].tag_read, va & ~0xfffull);
}

static void test_l2_victim(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t va = 0xffff888000300000ull, clean = 0xffff888000301000ull;
	struct mmu_stats st;

	fx_reset(fx);
	map_pair(fx, va, 0x30000, K | MMU_PTE_D, K);
	map_pair(fx, clean, 0x40000, K, K); /* D = 0 */
	fx_mode_long(fx, 0);
	/* nothing cached: declined */
	assert_null(fast(fx, va, false));
	evict(fx, va, MMU_ACC_WRITE);
	/* served from the second level, and back in the first one */
	assert_ptr_equal(fast(fx, va + 0x10, true), fx_host(fx, 0x30010));
	assert_int_equal(l1(fx, 0, va)->tag_read, va);
	assert_int_equal(l1(fx, 0, va)->tag_write, va);
	assert_int_equal(l1(fx, 0, va)->gpa_page, 0x30000);
	assert_true(fx->mmu.tlb_valid[0][((va >> 12) & 4095) / 64] & (1ull << ((va >> 12) % 64)));
	/* ... and the page it replaced went to the second level in turn */
	assert_ptr_equal(fast(fx, va + CONFLICT, false), fx_host(fx, 0x31000));
	mmu_get_stats(&fx->mmu, &st);
	assert_int_equal(st.l2_hits, 2);
	/* a first-level hit is served too (mmu_host_access's first step) */
	assert_ptr_equal(fast(fx, va + CONFLICT + 8, false), fx_host(fx, 0x31008));
	mmu_get_stats(&fx->mmu, &st);
	assert_int_equal(st.l2_hits, 2);
	/* a crossing access is declined */
	assert_null(mmu_tlb_fast(&fx->mmu, va + 0xffc, 8, false));
	/* clean page (D = 0): read served, a write never (the walk sets D) */
	evict(fx, clean, MMU_ACC_READ);
	assert_null(fast(fx, clean, true));
	assert_ptr_equal(fast(fx, clean, false), fx_host(fx, 0x40000));
	assert_int_equal(l1(fx, 0, clean)->tag_write, ~0ull);
	assert_false(fx_entry(fx, clean, 1) & MMU_PTE_D);
}

static void test_l2_invlpg(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t va = 0xffff888000500000ull;
	const gva_t big = 0xffff888040000000ull;  /* 2 MiB page */
	const gva_t huge = 0xffff8880c0000000ull; /* 1 GiB page */
	const gva_t user = 0x0000000000700000ull;
	uint64_t lv[5] = {0, K | MMU_PTE_D, K, K, K};

	fx_reset(fx);
	map_pair(fx, va, 0x50000, K | MMU_PTE_D, K);
	fx_map(fx, big, 0x400000, 21, lv);
	fx_map(fx, big + CONFLICT, 0x1000000, 21, lv);
	lv[3] = K | MMU_PTE_D;
	fx_map(fx, huge, 0x40000000, 30, lv);
	map_pair(fx, user, 0x60000, U | MMU_PTE_D, U);
	fx_mode_long(fx, 0);
	/* a 4 KiB page: invlpg of it drops it, of another page does not */
	evict(fx, va, MMU_ACC_READ);
	mmu_invlpg(&fx->mmu, va + 0x2000);
	assert_non_null(fast(fx, va, false));
	evict(fx, va, MMU_ACC_READ);
	mmu_invlpg(&fx->mmu, va + 0x123);
	assert_null(fast(fx, va, false));
	/* a piece of a 2 MiB page: invlpg of any address inside drops it */
	evict(fx, big + 0x3000, MMU_ACC_READ);
	mmu_invlpg(&fx->mmu, big + 0x1ff000);
	assert_null(fast(fx, big + 0x3000, false));
	/* ... a user-half invlpg leaves kernel-half pieces alone */
	evict(fx, big + 0x3000, MMU_ACC_READ);
	mmu_invlpg(&fx->mmu, user);
	assert_ptr_equal(fast(fx, big + 0x3000, false), fx_host(fx, 0x403000));
	/* the piece came back with its size: invlpg drops it from the first
	 * level as a piece of its 2 MiB page (mmu.c invariant 4) */
	assert_int_equal(fx->mmu.n_large[0], 1);
	mmu_invlpg(&fx->mmu, big + 0x100000);
	assert_int_equal(l1(fx, 0, big + 0x3000)->tag_read, ~0ull);
	assert_int_equal(fx->mmu.n_large[0], 0);
	/* a piece of a 1 GiB page (its conflict is a piece of the same page):
	 * the same */
	evict(fx, huge + 0x12345000, MMU_ACC_READ);
	mmu_invlpg(&fx->mmu, huge + 0x3ffff000);
	assert_null(fast(fx, huge + 0x12345000, false));
	assert_int_equal(l1(fx, 0, huge + 0x12345000 + CONFLICT)->tag_read, ~0ull);
}

static void test_l2_flushes(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t g = 0xffffffff82000000ull, l = 0xffff888000600000ull;
	const uint64_t cr0 = MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP;
	const uint64_t efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE;

	fx_reset(fx);
	map_pair(fx, g, 0x16000, K | MMU_PTE_G | MMU_PTE_D, K);
	map_pair(fx, l, 0x18000, K | MMU_PTE_D, K);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE, efer),
			 BT_OK);
	evict(fx, g, MMU_ACC_READ);
	evict(fx, l, MMU_ACC_READ);
	/* a CR3 load: the global entry stays, the local one goes */
	mmu_write_cr3(&fx->mmu, fx->cr3);
	assert_ptr_equal(fast(fx, g, false), fx_host(fx, 0x16000));
	assert_null(fast(fx, l, false));
	/* everything: a flush of all */
	evict(fx, g, MMU_ACC_READ);
	mmu_flush_all(&fx->mmu);
	assert_null(fast(fx, g, false));
	/* a mode change (CR0.WP) flushes all, a CR4.SMEP one too */
	evict(fx, g, MMU_ACC_READ);
	assert_int_equal(
	    mmu_set_mode(&fx->mmu, cr0 & ~MMU_CR0_WP, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE, efer),
	    BT_OK);
	assert_null(fast(fx, g, false));
	evict(fx, g, MMU_ACC_READ);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0 & ~MMU_CR0_WP, fx->cr3,
				      MMU_CR4_PAE | MMU_CR4_PGE | MMU_CR4_SMEP, efer),
			 BT_OK);
	assert_null(fast(fx, g, false));
	/* and a state load with another CR3 drops the local entries */
	evict(fx, g, MMU_ACC_READ);
	evict(fx, l, MMU_ACC_READ);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0 & ~MMU_CR0_WP, fx->cr3 + 0x1000,
				      MMU_CR4_PAE | MMU_CR4_PGE | MMU_CR4_SMEP, efer),
			 BT_OK);
	assert_non_null(fast(fx, g, false));
	assert_null(fast(fx, l, false));
}

static void test_l2_pcid(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t l = 0xffff888000600000ull;
	const uint64_t cr0 = MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP;
	const uint64_t efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE;
	const uint64_t cr4 = MMU_CR4_PAE | MMU_CR4_PGE | MMU_CR4_PCIDE;
	const uint64_t keep = 1ull << 63;

	fx_reset(fx);
	map_pair(fx, l, 0x18000, K | MMU_PTE_D, K);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3 | 1, cr4, efer), BT_OK);
	/* PCID 1's entry in the second level */
	evict(fx, l, MMU_ACC_READ);
	/* PCID 2 never sees it, even with bit 63 */
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2 | keep);
	assert_null(fast(fx, l, false));
	/* back to PCID 1 with bit 63: served again (the first level got its
	 * conflicting page back from the PCID store, so this is the second
	 * level's entry) */
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_int_equal(l1(fx, 0, l)->tag_read, l + CONFLICT);
	assert_ptr_equal(fast(fx, l, false), fx_host(fx, 0x18000));
	/* PCID 1 again without bit 63: flushed */
	evict(fx, l, MMU_ACC_READ);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1);
	assert_null(fast(fx, l, false));
	/* a state load forgets every PCID: bit 63 brings nothing back */
	evict(fx, l, MMU_ACC_READ);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3 | 3, cr4, efer), BT_OK);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_null(fast(fx, l, false));
	/* a flush of everything too */
	evict(fx, l, MMU_ACC_READ);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2);
	mmu_flush_all(&fx->mmu);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | keep);
	assert_null(fast(fx, l, false));
}

static void test_l2_smap(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t u = 0x0000000000601000ull, clean = 0x0000000000603000ull;
	const gva_t other = 0x0000000000605000ull;
	uint64_t lv[5] = {0, U | MMU_PTE_D, U, U, U};
	uint64_t lc[5] = {0, U, U, U, U};
	uint8_t *host;
	enum mmu_host_kind kind;
	struct mmu_fault f;
	struct mmu_stats st;

	fx_reset(fx);
	fx_map(fx, u, 0x12000, 12, lv);
	fx_map(fx, other, 0x14000, 12, lv);
	fx_map(fx, clean, 0x13000, 12, lc);
	fx_mode_long(fx, MMU_CR4_SMAP);
	/* AC = 1: the full path grants it and fills the SMAP array only */
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	assert_ptr_equal(full(fx, u, MMU_ACC_WRITE), fx_host(fx, 0x12000));
	assert_int_equal(l1(fx, 0, u)->tag_read, ~0ull);
	assert_ptr_equal(fast(fx, u + 8, true), fx_host(fx, 0x12008));
	assert_int_equal(l1(fx, 0, u)->tag_read, ~0ull); /* never copied to the first level */
	mmu_get_stats(&fx->mmu, &st);
	assert_int_equal(st.l2_smap_hits, 1);
	/* AC = 0 (clac): never served from it */
	mmu_set_cpl_ac(&fx->mmu, 0, false);
	assert_null(fast(fx, u, false));
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	assert_non_null(fast(fx, u, false));
	/* CPL 3: the user TLBs, not the SMAP array */
	mmu_set_cpl_ac(&fx->mmu, 3, true);
	assert_null(fast(fx, u, false));
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	/* an implicit supervisor access is denied under SMAP, whatever AC,
	 * and caches nothing */
	assert_int_equal(
	    mmu_host_access(&fx->mmu, other, 8, MMU_ACC_READ | MMU_ACC_IMPLICIT, &host, &kind, &f),
	    BT_OK);
	assert_true(f.pending);
	assert_null(fast(fx, other, false));
	/* a clean user page: read served, a write not */
	assert_ptr_equal(full(fx, clean, MMU_ACC_READ), fx_host(fx, 0x13000));
	assert_null(fast(fx, clean, true));
	assert_non_null(fast(fx, clean, false));
	/* SMAP turned off: a mode change, everything flushed */
	fx_mode_long(fx, 0);
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	assert_null(fast(fx, u, false));
	/* back on: invlpg drops the SMAP entry too */
	fx_mode_long(fx, MMU_CR4_SMAP);
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	(void)full(fx, u, MMU_ACC_READ);
	assert_non_null(fast(fx, u, false));
	mmu_invlpg(&fx->mmu, u);
	assert_null(fast(fx, u, false));
}

static void test_l2_watched(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t va = 0xffff888000800000ull, u = 0x0000000000901000ull;
	uint64_t lv[5] = {0, U | MMU_PTE_D, U, U, U};

	fx_reset(fx);
	map_pair(fx, va, 0x80000, K | MMU_PTE_D, K);
	fx_map(fx, u, 0x90000, 12, lv);
	fx_mode_long(fx, MMU_CR4_SMAP);
	mmu_set_cpl_ac(&fx->mmu, 0, true);
	evict(fx, va, MMU_ACC_WRITE);
	(void)full(fx, u, MMU_ACC_WRITE);
	/* the pages become code pages after their entries were made */
	assert_int_equal(guestmem_page_set_flags(fx->gm, 0x80000, GUESTMEM_PAGE_CODE), BT_OK);
	assert_int_equal(guestmem_page_set_flags(fx->gm, 0x90000, GUESTMEM_PAGE_CODE), BT_OK);
	/* writes: never through the second level or the SMAP array */
	assert_null(fast(fx, va, true));
	assert_null(fast(fx, u, true));
	/* reads are; the first-level copy is not writable */
	assert_ptr_equal(fast(fx, va, false), fx_host(fx, 0x80000));
	assert_int_equal(l1(fx, 0, va)->tag_read, va);
	assert_int_equal(l1(fx, 0, va)->tag_write, ~0ull);
	assert_non_null(fast(fx, u, false));
	/* the flag cleared again (the code was invalidated): writable */
	assert_int_equal(guestmem_page_clear_flags(fx->gm, 0x90000, GUESTMEM_PAGE_CODE), BT_OK);
	assert_ptr_equal(fast(fx, u, true), fx_host(fx, 0x90000));
}

static void test_l2_user_set(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t u = 0x0000000000a01000ull;

	fx_reset(fx);
	map_pair(fx, u, 0xa0000, U | MMU_PTE_D, U);
	fx_mode_long(fx, 0);
	mmu_set_cpl_ac(&fx->mmu, 3, false);
	(void)full(fx, u, MMU_ACC_WRITE);
	(void)full(fx, u + CONFLICT, MMU_ACC_READ);
	assert_int_equal(l1(fx, 1, u)->tag_read, u + CONFLICT);
	/* the user page evicted from utlb: served at CPL 3, into utlb */
	assert_ptr_equal(fast(fx, u, true), fx_host(fx, 0xa0000));
	assert_int_equal(l1(fx, 1, u)->tag_write, u);
	/* never at CPL 0 (the kernel arrays have no user-TLB entries) */
	(void)full(fx, u + CONFLICT, MMU_ACC_READ);
	mmu_set_cpl_ac(&fx->mmu, 0, false);
	assert_null(fast(fx, u, false));
	assert_int_equal(l1(fx, 0, u)->tag_read, ~0ull);
}

static void test_l2_large(void **state)
{
	struct mmu_fx *fx = *state;
	const gva_t big = 0xffff888040000000ull;   /* 2 MiB page at gpa 4 MiB */
	const gva_t clean = 0xffff888040200000ull; /* 2 MiB page, D = 0 */
	const gva_t glob = 0xffffffff81000000ull;  /* global 2 MiB page */
	const gva_t huge = 0xffff8880c0000000ull;  /* 1 GiB page at gpa 1 GiB */
	uint64_t lv[5] = {0, 0, K | MMU_PTE_D, K, K};
	uint64_t lc[5] = {0, 0, K, K, K};
	uint64_t lg[5] = {0, 0, K | MMU_PTE_D | MMU_PTE_G, K, K};
	uint64_t lh[5] = {0, 0, 0, K | MMU_PTE_D, K};
	const uint64_t cr0 = MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP;
	const uint64_t efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE;
	struct mmu_stats st;
	uint64_t walks;

	fx_reset(fx);
	fx_map(fx, big, 0x400000, 21, lv);
	fx_map(fx, clean, 0x600000, 21, lc);
	fx_map(fx, glob, 0x800000, 21, lg);
	fx_map(fx, huge, 0x40000000, 30, lh);
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE | MMU_CR4_PGE, efer),
			 BT_OK);
	/* one walk of one piece; every other piece without a walk */
	(void)full(fx, big + 0x3000, MMU_ACC_WRITE);
	mmu_get_stats(&fx->mmu, &st);
	walks = st.walks;
	assert_ptr_equal(fast(fx, big + 0x1ff008, true), fx_host(fx, 0x5ff008));
	assert_ptr_equal(fast(fx, big + 0x7000, false), fx_host(fx, 0x407000));
	mmu_get_stats(&fx->mmu, &st);
	assert_int_equal(st.walks, walks);
	assert_int_equal(st.l2_large_hits, 2);
	/* the pieces are first-level entries of a 2 MiB page */
	assert_int_equal(l1(fx, 0, big + 0x7000)->tag_read, big + 0x7000);
	assert_int_equal(l1(fx, 0, big + 0x7000)->gpa_page, 0x407000);
	assert_int_equal(fx->mmu.n_large[0], 3);
	/* invlpg anywhere inside drops the large entry and its pieces */
	mmu_invlpg(&fx->mmu, big + 0x100000);
	assert_int_equal(fx->mmu.n_large[0], 0);
	assert_null(fast(fx, big + 0x9000, false));
	/* a clean large page: reads, never writes (the walk sets D) */
	(void)full(fx, clean, MMU_ACC_READ);
	assert_null(fast(fx, clean + 0x5000, true));
	assert_non_null(fast(fx, clean + 0x5000, false));
	assert_int_equal(l1(fx, 0, clean + 0x5000)->tag_write, ~0ull);
	/* a watched piece: read, never written, not writable in the first level */
	(void)full(fx, big, MMU_ACC_WRITE);
	assert_int_equal(guestmem_page_set_flags(fx->gm, 0x40a000, GUESTMEM_PAGE_CODE), BT_OK);
	assert_null(fast(fx, big + 0xa000, true));
	assert_ptr_equal(fast(fx, big + 0xa000, false), fx_host(fx, 0x40a000));
	assert_int_equal(l1(fx, 0, big + 0xa000)->tag_write, ~0ull);
	assert_non_null(fast(fx, big + 0xb000, true)); /* its neighbour is not watched */
	/* a CR3 load: the global large page stays, the others go */
	(void)full(fx, glob, MMU_ACC_READ);
	mmu_write_cr3(&fx->mmu, fx->cr3);
	assert_ptr_equal(fast(fx, glob + 0x4000, false), fx_host(fx, 0x804000));
	assert_null(fast(fx, big + 0xc000, false));
	/* a mode change: all */
	assert_int_equal(mmu_set_mode(&fx->mmu, cr0, fx->cr3, MMU_CR4_PAE, efer), BT_OK);
	assert_null(fast(fx, glob + 0x5000, false));
	/* a 1 GiB page: pieces of its populated 2 MiB chunks only (the full
	 * path would populate the others) */
	(void)full(fx, huge + 0x12345000, MMU_ACC_READ);
	assert_ptr_equal(fast(fx, huge + 0x12346000, false), fx_host(fx, 0x52346000));
	assert_null(fast(fx, huge + 0x30000000, false));
	(void)fx_host(fx, 0x70000000); /* populates that chunk */
	assert_ptr_equal(fast(fx, huge + 0x30000000, false), fx_host(fx, 0x70000000));
	mmu_invlpg(&fx->mmu, huge + 0x3ffff000);
	assert_null(fast(fx, huge + 0x12347000, false));
	/* a PCID switch without bit 63 drops a non-global large page */
	assert_int_equal(
	    mmu_set_mode(&fx->mmu, cr0, fx->cr3 | 1, MMU_CR4_PAE | MMU_CR4_PCIDE, efer), BT_OK);
	(void)full(fx, big, MMU_ACC_READ);
	mmu_write_cr3(&fx->mmu, fx->cr3 | 2);
	assert_null(fast(fx, big + 0xd000, false));
	mmu_write_cr3(&fx->mmu, fx->cr3 | 1 | (1ull << 63));
	assert_ptr_equal(fast(fx, big + 0xd000, false), fx_host(fx, 0x40d000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_l2_victim, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_l2_invlpg, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_l2_flushes, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_l2_pcid, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_l2_smap, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_l2_watched, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_l2_user_set, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_l2_large, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
