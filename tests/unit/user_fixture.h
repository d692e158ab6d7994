/*
 * The direct user mode's unit tests' fixture (test_user, test_user_around):
 * 16 MiB of memfd-backed guest RAM, a vCPU area with a valid FXSAVE image,
 * a soft-MMU in long mode at CPL 3 whose CR3 is PML4, the upper tables
 * mapping 0x400000-0x5fffff through the page table at PT, and the code page
 * (PT entry 0, user, read-only) at CODE_VA with two entries: E_READ and
 * E_WRITE.  Each test file adds its own leaf entries and code, and creates
 * the user mode (fx_hooks then connects it to the MMU and guest RAM).
 */
#ifndef BT_TESTS_UNIT_USER_FIXTURE_H
#define BT_TESTS_UNIT_USER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/user/user.h"

#define RAM	(16ull << 20)
#define PML4	0x1000ull
#define PDPT	0x2000ull
#define PD	0x3000ull
#define PT	0x4000ull
#define CODE_PA 0x100000ull /* PT entry 0 */
#define CODE_VA 0x400000ull
#define P	MMU_PTE_P
#define RW	MMU_PTE_RW
#define US	MMU_PTE_US

/* entries into the code page (offsets from CODE_VA) */
#define E_READ	0x00 /* rax = *(u64 *)rdi; syscall */
#define E_WRITE 0x10 /* *(u64 *)rdi = rsi; syscall */

struct fx {
	struct guestmem *gm;
	struct vcpu_abi *abi;
	struct mmu mmu;
	struct user_mode *u;
};

static inline uint64_t *pte(struct fx *f, gpa_t table, unsigned idx)
{
	uint64_t *t = guestmem_gpa_to_host(f->gm, table, GUEST_PAGE_SIZE);
	assert_non_null(t);
	return &t[idx];
}

static inline void flush_hook(void *opaque, enum mmu_flush_kind kind, gva_t va)
{
	user_on_flush(opaque, kind, va);
}

static inline void write_hook(void *opaque, gpa_t gpa, size_t len)
{
	user_on_write(opaque, gpa, len);
	user_write_done(opaque, gpa);
}

/* Guest code at CODE_VA + off. */
static inline void put(struct fx *f, unsigned off, const void *bytes, size_t n)
{
	assert_int_equal(guestmem_write(f->gm, CODE_PA + off, bytes, n), BT_OK);
}

static inline struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(guestmem_create(RAM, &f->gm), BT_OK);
	f->abi = aligned_alloc(4096, (sizeof(*f->abi) + 4095) & ~4095ul);
	assert_non_null(f->abi);
	memset(f->abi, 0, sizeof(*f->abi));
	assert_int_equal(mmu_init(&f->mmu, f->gm, f->abi), BT_OK);

	*pte(f, PML4, 0) = PDPT | P | RW | US;
	*pte(f, PDPT, 0) = PD | P | RW | US;
	*pte(f, PD, 2) = PT | P | RW | US; /* 0x400000 */
	*pte(f, PT, 0) = CODE_PA | P | US;
	static const uint8_t rd[] = {0x48, 0x8b, 0x07, 0x0f, 0x05};
	static const uint8_t wr[] = {0x48, 0x89, 0x37, 0x0f, 0x05};
	put(f, E_READ, rd, sizeof(rd));
	put(f, E_WRITE, wr, sizeof(wr));

	assert_int_equal(mmu_set_mode(&f->mmu, MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP, PML4,
				      MMU_CR4_PAE, MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NXE),
			 BT_OK);
	mmu_set_cpl_ac(&f->mmu, 3, false);
	/* a valid FXSAVE image: default FCW and MXCSR */
	f->abi->fxsave[0] = 0x7f;
	f->abi->fxsave[1] = 0x03;
	f->abi->fxsave[24] = 0x80;
	f->abi->fxsave[25] = 0x1f;
	return f;
}

/* f->u created: the MMU's flushes and guest RAM writes reach it. */
static inline void fx_hooks(struct fx *f)
{
	mmu_set_flush_hook(&f->mmu, flush_hook, f->u);
	guestmem_set_code_write_hook(f->gm, write_hook, f->u);
}

static inline void fx_free(struct fx *f)
{
	user_destroy(f->u);
	mmu_fini(&f->mmu);
	guestmem_destroy(f->gm);
	free(f->abi);
	free(f);
}

/* Enter guest user code at CODE_VA + entry with rdi and rsi (rax 0xdead). */
static inline struct user_event run(struct fx *f, unsigned entry, uint64_t rdi, uint64_t rsi)
{
	struct user_event ev;
	f->abi->rip = CODE_VA + entry;
	f->abi->gpr[VCPU_RDI] = rdi;
	f->abi->gpr[VCPU_RSI] = rsi;
	f->abi->gpr[VCPU_RAX] = 0xdead;
	assert_int_equal(user_enter(f->u, f->mmu.cr3, 0x33, 0x202, &ev), BT_OK);
	return ev;
}

#endif /* BT_TESTS_UNIT_USER_FIXTURE_H */
