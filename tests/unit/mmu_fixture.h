/*
 * The soft-MMU unit tests' fixture (test_mmu, test_mmu_tlb): real
 * memfd-backed guest RAM and page tables the test builds in it.
 */
#ifndef BT_TESTS_UNIT_MMU_FIXTURE_H
#define BT_TESTS_UNIT_MMU_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/mmu/mmu.h"

/* ---- fixture: 2 GiB sparse guest RAM, page tables at 1..2 MiB ---------- */

#define FX_RAM	      (2ull << 30)
#define FX_TABLES     0x100000ull
#define FX_TABLES_END 0x200000ull
#define FX_ADDR_MASK  (((1ull << 46) - 1) & ~0xfffull)

struct mmu_fx {
	struct guestmem *gm;
	struct vcpu_abi *abi;
	struct mmu mmu;
	gpa_t next_table;
	uint64_t cr3;
};

static inline uint8_t *fx_host(struct mmu_fx *fx, gpa_t gpa)
{
	uint8_t *p = guestmem_gpa_to_host(fx->gm, gpa, 1);
	assert_non_null(p);
	return p;
}

static inline uint64_t *fx_table(struct mmu_fx *fx, gpa_t table)
{
	return (uint64_t *)fx_host(fx, table);
}

static inline gpa_t fx_alloc_table(struct mmu_fx *fx)
{
	gpa_t t = fx->next_table;
	assert_true(t < FX_TABLES_END);
	fx->next_table += GUEST_PAGE_SIZE;
	memset(fx_host(fx, t), 0, GUEST_PAGE_SIZE);
	return t;
}

/* Fresh, empty tables; mappings made with fx_map(). */
static inline void fx_reset(struct mmu_fx *fx)
{
	fx->next_table = FX_TABLES;
	fx->cr3 = fx_alloc_table(fx);
	mmu_flush_all(&fx->mmu);
}

/*
 * Map the page of size 1 << shift at gva to gpa.  lv[4] are the PML4E flag
 * bits ... lv[leaf] the leaf's (PS is added for large pages).  Existing
 * intermediate tables are reused, their flags rewritten.
 */
static inline void fx_map(struct mmu_fx *fx, gva_t gva, gpa_t gpa, unsigned shift,
			  const uint64_t lv[5])
{
	unsigned leaf = 1 + (shift - 12) / 9;
	gpa_t table = fx->cr3;

	for (unsigned l = 4; l >= leaf; l--) {
		uint64_t *t = fx_table(fx, table);
		unsigned idx = (gva >> (12 + 9 * (l - 1))) & 511;
		if (l == leaf) {
			t[idx] = gpa | lv[l] | (shift > 12 ? MMU_PTE_PS : 0);
			return;
		}
		gpa_t next = t[idx] & FX_ADDR_MASK;
		if (!next)
			next = fx_alloc_table(fx);
		t[idx] = next | lv[l];
		table = next;
	}
}

/* The paging-structure entry for gva at `level` (follows addresses even
 * through non-present entries). */
static inline uint64_t fx_entry(struct mmu_fx *fx, gva_t gva, unsigned level)
{
	gpa_t table = fx->cr3;

	for (unsigned l = 4;; l--) {
		uint64_t e = fx_table(fx, table)[(gva >> (12 + 9 * (l - 1))) & 511];
		if (l == level)
			return e;
		table = e & FX_ADDR_MASK;
	}
}

/* Long mode, WP, NXE, and the given extra CR4 bits. */
static inline void fx_mode_long(struct mmu_fx *fx, uint64_t cr4_extra)
{
	assert_int_equal(mmu_set_mode(&fx->mmu, MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP, fx->cr3,
				      MMU_CR4_PAE | cr4_extra,
				      MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE),
			 BT_OK);
	mmu_set_cpl_ac(&fx->mmu, 0, false);
}

static inline int fx_setup(void **state)
{
	struct mmu_fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	assert_int_equal(guestmem_create(FX_RAM, &fx->gm), BT_OK);
	fx->abi = calloc(1, sizeof(*fx->abi));
	assert_non_null(fx->abi);
	assert_int_equal(mmu_init(&fx->mmu, fx->gm, fx->abi), BT_OK);
	fx_reset(fx);
	*state = fx;
	return 0;
}

static inline int fx_teardown(void **state)
{
	struct mmu_fx *fx = *state;

	mmu_fini(&fx->mmu);
	guestmem_destroy(fx->gm);
	free(fx->abi);
	free(fx);
	return 0;
}

#endif
