/*
 * Code cache: install, lookup, chaining executed for real, unchaining on
 * invalidation, page index, host-PC attribution, flush on exhaustion.
 * Blocks are small hand-assembled host routines shaped like translator
 * output: a body, then a `jmp rel32` exit whose rel32 points at the
 * block's own stub (here the stub is a plain `ret`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/cache/tcache.h"
#include "runtime/mem/guestmem.h"
#include "runtime/tc/tc_arena.h"

static struct vcpu_abi abi;

/* mov eax, imm32 ; jmp rel32 (-> stub) ; stub: ret */
static void make_movret(struct bt_block *xb, uint8_t *buf, gva_t va, uint32_t imm, gva_t target)
{
	memset(xb, 0, sizeof(*xb));
	buf[0] = 0xb8;
	memcpy(buf + 1, &imm, 4);
	buf[5] = 0xe9;
	int32_t rel = 0; /* stub directly follows the jmp */
	memcpy(buf + 6, &rel, 4);
	buf[10] = 0xc3;
	xb->guest_start = va;
	xb->guest_len = 7;
	xb->n_insns = 2;
	xb->code = buf;
	xb->code_len = 11;
	xb->n_exits = 1;
	xb->exits[0].kind = XLAT_EXIT_JMP;
	xb->exits[0].patch_off = 6;
	xb->exits[0].stub_off = 10;
	xb->exits[0].target = target;
}

/* add eax, imm8 ; ret */
static void make_addret(struct bt_block *xb, uint8_t *buf, gva_t va, uint8_t imm)
{
	memset(xb, 0, sizeof(*xb));
	buf[0] = 0x83;
	buf[1] = 0xc0;
	buf[2] = imm;
	buf[3] = 0xc3;
	xb->guest_start = va;
	xb->guest_len = 3;
	xb->code = buf;
	xb->code_len = 4;
}

static int run(const struct tcache_block *b)
{
	int (*fn)(void) = (int (*)(void))(uintptr_t)b->blk.code;
	return fn();
}

static void test_chain_unchain_executes(void **state)
{
	struct tcache *tc;
	struct tcache_block *a, *b;
	struct bt_block xa, xbb;
	uint8_t ca[16], cb[16];
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&xa, ca, 0x1000, 1, 0x2000);
	make_addret(&xbb, cb, 0x2000, 10);
	assert_int_equal(tcache_install(tc, &xa, 0x1000, TCACHE_NO_PAGE, TCACHE_FROM_RUNTIME, &a),
			 BT_OK);
	assert_int_equal(tcache_install(tc, &xbb, 0x2000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &b),
			 BT_OK);
	assert_ptr_equal(tcache_lookup(tc, 0x1000), a);
	assert_ptr_equal(tcache_lookup(tc, 0x2000), b);
	assert_null(tcache_lookup(tc, 0x3000));

	assert_int_equal(run(a), 1); /* unchained: the stub returns */
	assert_int_equal(tcache_chain(tc, a, 0, b), BT_OK);
	assert_int_equal(run(a), 11); /* chained: falls into b */
	/* chaining to a block at another address is refused */
	assert_int_equal(tcache_chain(tc, a, 0, a), BT_ERR_INVALID);

	/* writing b's page kills b and restores a's jump to its stub */
	assert_int_equal(tcache_invalidate_page(tc, 0x2abc), 1);
	assert_null(tcache_lookup(tc, 0x2000));
	assert_true(b->dead);
	assert_int_equal(run(a), 1);
	assert_ptr_equal(tcache_lookup(tc, 0x1000), a);

	struct tcache_stats st;
	tcache_get_stats(tc, &st);
	assert_int_equal(st.chains, 1);
	assert_int_equal(st.unchains, 1);
	assert_int_equal(st.from_db, 1);
	assert_int_equal(st.from_runtime, 1);
	tcache_destroy(tc);
}

/* The descriptor holds the installed record: every field as given (the
 * exits' translator flags too, and still as translated after chaining),
 * the code and pc map where the cache put them. */
static void test_record_kept(void **state)
{
	struct tcache *tc;
	struct tcache_block *a, *b;
	struct bt_block xa, xbb;
	uint8_t ca[16], cb[16];
	static const uint8_t pm[] = {0, 0, 0, 5, 2, 1};
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&xa, ca, 0x1000, 1, 0x2000);
	xa.guest_hash = 0x1122334455667788ull;
	xa.flags = 0x5;
	xa.exits[0].flags = 0x3;
	xa.pcmap = pm;
	xa.pcmap_len = sizeof(pm);
	make_addret(&xbb, cb, 0x2000, 10);
	assert_int_equal(tcache_install(tc, &xa, 0x1000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &a),
			 BT_OK);
	assert_int_equal(tcache_install(tc, &xbb, 0x2000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &b),
			 BT_OK);
	assert_int_equal(tcache_chain(tc, a, 0, b), BT_OK);

	const struct bt_block *r = &a->blk; /* compared field by field: padding is not */
	assert_true(r->guest_start == xa.guest_start);
	assert_int_equal(r->guest_len, xa.guest_len);
	assert_int_equal(r->n_insns, xa.n_insns);
	assert_true(r->guest_hash == xa.guest_hash);
	assert_int_equal(r->flags, xa.flags);
	assert_int_equal(r->refusal, 0);
	assert_int_equal(r->code_len, xa.code_len);
	assert_int_equal(r->pcmap_len, xa.pcmap_len);
	assert_int_equal(r->n_exits, 1);
	assert_int_equal(r->exits[0].kind, XLAT_EXIT_JMP);
	assert_int_equal(r->exits[0].flags, 0x3);
	assert_int_equal(r->exits[0].patch_off, 6);
	assert_int_equal(r->exits[0].stub_off, 10);
	assert_true(r->exits[0].target == 0x2000);
	assert_ptr_not_equal(a->blk.code, ca);	 /* in the code cache */
	assert_memory_equal(a->blk.code, ca, 6); /* up to the chained rel32 */
	assert_ptr_not_equal(a->blk.pcmap, pm);	 /* the cache's copy */
	assert_memory_equal(a->blk.pcmap, pm, sizeof(pm));
	tcache_destroy(tc);
}

static void test_kill_source_unlinks_target(void **state)
{
	struct tcache *tc;
	struct tcache_block *a, *b, *a2;
	struct bt_block xa, xbb;
	uint8_t ca[16], cb[16];
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&xa, ca, 0x1000, 5, 0x5000);
	make_addret(&xbb, cb, 0x5000, 1);
	assert_int_equal(tcache_install(tc, &xa, 0x1000, TCACHE_NO_PAGE, 0, &a), BT_OK);
	assert_int_equal(tcache_install(tc, &xbb, 0x5000, TCACHE_NO_PAGE, 0, &b), BT_OK);
	assert_int_equal(tcache_chain(tc, a, 0, b), BT_OK);
	assert_non_null(b->incoming);
	tcache_invalidate_block(tc, a);
	assert_null(b->incoming);
	assert_false(b->dead); /* the target survives its caller */

	/* reinstalling the same va replaces the old block */
	make_movret(&xa, ca, 0x5000, 7, 0x9000);
	assert_int_equal(tcache_install(tc, &xa, 0x5000, TCACHE_NO_PAGE, 0, &a2), BT_OK);
	assert_true(b->dead);
	assert_ptr_equal(tcache_lookup(tc, 0x5000), a2);
	assert_int_equal(run(a2), 7);
	tcache_destroy(tc);
}

static void test_two_page_block_and_host_lookup(void **state)
{
	struct tcache *tc;
	struct tcache_block *a, *b;
	struct bt_block xa, xbb;
	uint8_t ca[16], cb[16];
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&xa, ca, 0x1ffe, 3, 0x4000);
	xa.flags = XLAT_BLOCK_TWO_PAGES;
	make_addret(&xbb, cb, 0x4000, 2);
	assert_int_equal(tcache_install(tc, &xa, 0x7000, 0x9000, 0, &a), BT_OK);
	assert_int_equal(tcache_install(tc, &xbb, 0x4000, TCACHE_NO_PAGE, 0, &b), BT_OK);
	assert_ptr_equal(tcache_find_host(tc, a->blk.code + 3), a);
	assert_ptr_equal(tcache_find_host(tc, b->blk.code), b);
	assert_null(tcache_find_host(tc, b->blk.code + b->blk.code_len + 64));

	/* either page of a two-page block invalidates it */
	assert_int_equal(tcache_invalidate_page(tc, 0x9000), 1);
	assert_true(a->dead);
	assert_int_equal(tcache_invalidate_page(tc, 0x7000), 0);
	/* a dead block is still attributed by host PC until a flush */
	assert_ptr_equal(tcache_find_host(tc, a->blk.code), a);
	tcache_destroy(tc);
}

static void test_ibl_and_flush_on_exhaustion(void **state)
{
	struct tcache *tc;
	struct tcache_block *b = NULL;
	struct bt_block xbb;
	uint8_t cb[16];
	(void)state;

	assert_int_equal(tcache_create(4096, NULL, &abi, &tc), BT_OK);
	make_addret(&xbb, cb, 0x8000, 2);
	assert_int_equal(tcache_install(tc, &xbb, 0x8000, TCACHE_NO_PAGE, 0, &b), BT_OK);
	tcache_ibl_insert(tc, b);
	assert_int_equal(abi.ibl[VCPU_IBL_INDEX(0x8000)].guest_rip, 0x8000);
	assert_int_equal(abi.ibl[VCPU_IBL_INDEX(0x8000)].host, (uint64_t)(uintptr_t)b->blk.code);
	tcache_invalidate_block(tc, b);
	assert_int_equal(abi.ibl[VCPU_IBL_INDEX(0x8000)].guest_rip,
			 VCPU_IBL_EMPTY(VCPU_IBL_INDEX(0x8000)));

	/* 4096 bytes hold 256 16-byte slots; the 300th install flushes */
	for (unsigned i = 0; i < 300; i++) {
		make_movret(&xbb, cb, 0x10000 + i * 16, i, 0);
		assert_int_equal(tcache_install(tc, &xbb, 0x10000, TCACHE_NO_PAGE, 0, &b), BT_OK);
		assert_int_equal(run(b), (int)i);
	}
	struct tcache_stats st;
	tcache_get_stats(tc, &st);
	assert_int_equal(st.flushes, 1);
	assert_null(tcache_lookup(tc, 0x10000));
	assert_ptr_equal(tcache_lookup(tc, 0x10000 + 299 * 16), b);
	tcache_destroy(tc);
}

static void test_rejects_bad_rows(void **state)
{
	struct tcache *tc;
	struct tcache_block *a;
	struct bt_block xa;
	uint8_t ca[16];
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&xa, ca, 0x1000, 1, 0x2000);
	xa.exits[0].patch_off = 9; /* rel32 would run past the code */
	assert_int_equal(tcache_install(tc, &xa, 0x1000, TCACHE_NO_PAGE, 0, &a), BT_ERR_FORMAT);
	make_movret(&xa, ca, 0x1000, 1, 0x2000);
	xa.refusal = XLAT_REFUSE_UNSUPPORTED;
	assert_int_equal(tcache_install(tc, &xa, 0x1000, TCACHE_NO_PAGE, 0, &a), BT_ERR_INVALID);
	assert_null(tcache_lookup(tc, 0x1000));
	tcache_destroy(tc);
}

static void test_va_index_and_code_page_flags(void **state)
{
	struct guestmem *gm;
	struct tcache *tc;
	struct tcache_block *k, *u;
	struct bt_block xk, xu;
	uint8_t ck[16], cu[16];
	(void)state;

	assert_int_equal(guestmem_create(16 << 20, &gm), BT_OK);
	assert_int_equal(tcache_create(1 << 16, gm, &abi, &tc), BT_OK);
	make_movret(&xk, ck, 0xffffffff80001ff0ull, 1, 0);
	xk.guest_len = 0x20; /* spans two virtual pages */
	make_movret(&xu, cu, 0x400000, 2, 0);
	assert_int_equal(tcache_install(tc, &xk, 0x201000, 0x202000, 0, &k), BT_OK);
	assert_int_equal(tcache_install(tc, &xu, 0x300000, TCACHE_NO_PAGE, 0, &u), BT_OK);
	assert_true(guestmem_page_flags(gm, 0x201000) & GUESTMEM_PAGE_CODE);
	assert_true(guestmem_page_flags(gm, 0x202abc) & GUESTMEM_PAGE_CODE);
	assert_true(guestmem_page_flags(gm, 0x300000) & GUESTMEM_PAGE_CODE);
	assert_false(guestmem_page_flags(gm, 0x203000) & GUESTMEM_PAGE_CODE);
	assert_int_equal(tcache_live_low(tc), 1);

	/* an unrelated virtual page kills nothing; the block's second page does */
	assert_int_equal(tcache_invalidate_va(tc, 0xffffffff80003000ull, 0xffffffff80004000ull), 0);
	assert_int_equal(tcache_invalidate_va(tc, 0xffffffff80002000ull, 0xffffffff80002001ull), 1);
	assert_true(k->dead);
	/* the watch on its physical pages is gone with it */
	assert_false(guestmem_page_flags(gm, 0x201000) & GUESTMEM_PAGE_CODE);
	assert_false(guestmem_page_flags(gm, 0x202000) & GUESTMEM_PAGE_CODE);

	/* a huge range scans instead of walking pages */
	assert_int_equal(tcache_invalidate_va(tc, 0, 1ull << 47), 1);
	assert_true(u->dead);
	assert_int_equal(tcache_live_low(tc), 0);
	assert_false(guestmem_page_flags(gm, 0x300000) & GUESTMEM_PAGE_CODE);
	tcache_destroy(tc);
	guestmem_destroy(gm);
}

/*
 * User blocks (tcache.h invariant 5): two address spaces with different
 * code at one address coexist with a kernel block there; each lookup finds
 * only its own kind; user blocks chain only within their own pages; user
 * and kernel blocks use separate IBL tables; invalidating a virtual range
 * (invlpg, a CR3 load) kills kernel blocks only; the user IBL table drops a
 * window's entries, a block starting on the page before included.
 */
/* Does translated user code find b through uibl now (its key under the
 * current tag, vcpu_abi.h uibl_tag)? */
static bool uibl_finds(const struct tcache_block *b)
{
	const struct vcpu_ibl_entry *ie = &abi.uibl[VCPU_UIBL_INDEX(b->blk.guest_start)];
	return ie->guest_rip == (b->blk.guest_start | abi.uibl_tag) &&
	       ie->host == (uint64_t)(uintptr_t)b->blk.code;
}

static void test_user_blocks(void **state)
{
	struct tcache *tc;
	struct tcache_block *k, *u1, *u2, *same_page, *other_page;
	struct bt_block xk, x1, x2, xs, xo;
	uint8_t ck[16], c1[16], c2[16], cs[16], co[16];
	const gva_t va = 0x401000;
	struct tcache_stats st;
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&xk, ck, va, 10, 0);
	make_movret(&x1, c1, va, 11, 0);
	make_movret(&x2, c2, va, 12, 0);
	make_movret(&xs, cs, va + 0x100, 13, va);  /* jumps to va, same page */
	make_movret(&xo, co, va + 0x1000, 14, va); /* jumps to va from the next page */
	assert_int_equal(tcache_install(tc, &xk, 0x5000, TCACHE_NO_PAGE, 0, &k), BT_OK);
	assert_int_equal(tcache_install_user(tc, &x1, 0x6000, TCACHE_NO_PAGE, &u1), BT_OK);
	assert_int_equal(tcache_install_user(tc, &x2, 0x7000, TCACHE_NO_PAGE, &u2), BT_OK);
	assert_int_equal(tcache_install_user(tc, &xs, 0x6000, TCACHE_NO_PAGE, &same_page), BT_OK);
	assert_int_equal(tcache_install_user(tc, &xo, 0x9000, TCACHE_NO_PAGE, &other_page), BT_OK);
	assert_false(k->dead || u1->dead || u2->dead);

	/* each lookup finds its own kind and, for user blocks, its own page */
	assert_ptr_equal(tcache_lookup(tc, va), k);
	assert_ptr_equal(tcache_lookup_user(tc, va, 0x6000), u1);
	assert_ptr_equal(tcache_lookup_user(tc, va, 0x7abc), u2);
	assert_null(tcache_lookup_user(tc, va, 0x8000));
	assert_null(tcache_lookup(tc, va + 0x100));

	/* chains: within the source's own page only, never across kinds */
	assert_int_equal(tcache_chain(tc, same_page, 0, u1), BT_OK);
	assert_int_equal(run(same_page), 11); /* the chained jump runs u1 */
	assert_int_equal(tcache_chain(tc, same_page, 0, u2), BT_ERR_INVALID);
	assert_int_equal(tcache_chain(tc, other_page, 0, u1), BT_ERR_INVALID);
	assert_int_equal(run(other_page), 14); /* unchained: its own stub */
	struct bt_block xkj;
	uint8_t ckj[16];
	struct tcache_block *kj;
	make_movret(&xkj, ckj, 0xffffffff80000000ull, 15, va);
	assert_int_equal(tcache_install(tc, &xkj, 0xa000, TCACHE_NO_PAGE, 0, &kj), BT_OK);
	assert_int_equal(tcache_chain(tc, kj, 0, u1), BT_ERR_INVALID);
	tcache_get_stats(tc, &st);
	assert_int_equal(st.user_chain_refused, 2);
	assert_int_equal(st.user_installed, 4);

	/* separate IBL tables */
	unsigned i = VCPU_UIBL_INDEX(va), ki = VCPU_IBL_INDEX(va);
	tcache_ibl_insert(tc, u1);
	assert_int_equal(abi.uibl[i].guest_rip, va | abi.uibl_tag);
	assert_ptr_equal((void *)(uintptr_t)abi.uibl[i].host, u1->blk.code);
	assert_int_equal(abi.ibl[ki].guest_rip, VCPU_IBL_EMPTY(ki));
	tcache_ibl_insert(tc, k);
	assert_ptr_equal((void *)(uintptr_t)abi.ibl[ki].host, k->blk.code);
	assert_ptr_equal((void *)(uintptr_t)abi.uibl[i].host, u1->blk.code);

	/* a virtual range kills kernel blocks only */
	assert_int_equal(tcache_invalidate_va(tc, va, va + 0x1000), 1);
	assert_true(k->dead);
	assert_false(u1->dead || u2->dead || same_page->dead);
	assert_int_equal(tcache_invalidate_va(tc, 0, 1ull << 47), 0);

	/* the user IBL window: elsewhere nothing, the next page's window
	 * drops a block that starts on the page before it */
	tcache_uibl_drop(tc, 0x600000, 0x800000);
	assert_int_equal(abi.uibl[i].guest_rip, va | abi.uibl_tag);
	tcache_uibl_drop(tc, va + 0x1000, va + 0x2000);
	assert_false(uibl_finds(u1));
	tcache_ibl_insert(tc, u2);
	tcache_uibl_clear(tc);
	assert_false(uibl_finds(u2));

	/* killing a user block clears its IBL entry, not another space's */
	tcache_ibl_insert(tc, u2);
	tcache_invalidate_block(tc, u1);
	assert_int_equal(abi.uibl[i].guest_rip, va | abi.uibl_tag);
	tcache_invalidate_block(tc, u2);
	assert_int_equal(abi.uibl[i].guest_rip, VCPU_IBL_EMPTY(i));
	tcache_destroy(tc);
}

/*
 * The user IBL table follows the PCID (tcache_uibl_switch, tags): after a
 * switch away nothing of the old space matches; switching back with the
 * TLB kept finds its live blocks again (a block killed meanwhile does
 * not), switching back without it finds nothing; a clear or forget does
 * the same for the current space; the tag is never 0 and keys never look
 * empty.
 */
static void test_uibl_pcid(void **state)
{
	struct tcache *tc;
	struct tcache_block *a, *b, *c;
	struct bt_block xa, xb, xc;
	uint8_t ca[16], cb[16], cc[16];
	const gva_t va = 0x401010, vb = 0x402020, vc = 0x403030; /* distinct uibl slots */
	struct tcache_stats st;
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	assert_true(abi.uibl_tag >> VCPU_UIBL_TAG_SHIFT);
	make_movret(&xa, ca, va, 1, 0);
	make_movret(&xb, cb, vb, 2, 0);
	make_movret(&xc, cc, vc, 3, 0);
	assert_int_equal(tcache_install_user(tc, &xa, 0x6000, TCACHE_NO_PAGE, &a), BT_OK);
	assert_int_equal(tcache_install_user(tc, &xb, 0x7000, TCACHE_NO_PAGE, &b), BT_OK);
	assert_int_equal(tcache_install_user(tc, &xc, 0x8000, TCACHE_NO_PAGE, &c), BT_OK);
	/* PCID 1 runs a and b */
	tcache_ibl_insert(tc, a);
	tcache_ibl_insert(tc, b);
	assert_true(uibl_finds(a) && uibl_finds(b));
	assert_false(abi.uibl[VCPU_UIBL_INDEX(va)].guest_rip >> 63); /* not "empty" */
	/* to PCID 2 (flushed): nothing of PCID 1 matches; it runs c */
	tcache_uibl_switch(tc, 1, 2, false);
	assert_false(uibl_finds(a) || uibl_finds(b));
	tcache_ibl_insert(tc, c);
	assert_true(uibl_finds(c));
	/* b dies while PCID 1 is away: its entry goes whatever its tag */
	tcache_invalidate_block(tc, b);
	assert_int_equal(abi.uibl[VCPU_UIBL_INDEX(vb)].guest_rip,
			 VCPU_IBL_EMPTY(VCPU_UIBL_INDEX(vb)));
	/* back to PCID 1, kept: a is found again, c is not */
	tcache_uibl_switch(tc, 2, 1, true);
	assert_true(uibl_finds(a));
	assert_false(uibl_finds(c));
	assert_int_equal(run(a), 1);
	/* PCID 2 again, not kept: c is forgotten */
	tcache_uibl_switch(tc, 1, 2, false);
	assert_false(uibl_finds(c));
	/* PCID 1, kept: a again; a clear (the same PCID flushed) forgets it */
	tcache_uibl_switch(tc, 2, 1, true);
	assert_true(uibl_finds(a));
	tcache_uibl_clear(tc);
	assert_false(uibl_finds(a));
	/* forget: nothing of any PCID comes back */
	tcache_ibl_insert(tc, a);
	tcache_uibl_switch(tc, 1, 2, false);
	tcache_uibl_forget(tc);
	tcache_uibl_switch(tc, 2, 1, true);
	assert_false(uibl_finds(a));
	/* an invlpg acts on the current space only (SDM: the current PCID):
	 * a window in PCID 2 leaves PCID 1's entry, one in PCID 1 drops it */
	tcache_ibl_insert(tc, a);
	tcache_uibl_switch(tc, 1, 2, false);
	tcache_uibl_drop(tc, va & ~0xfffull, (va & ~0xfffull) + 0x1000);
	tcache_uibl_switch(tc, 2, 1, true);
	assert_true(uibl_finds(a));
	/* a window elsewhere keeps it (PCID 1's range came back with it), one
	 * at it drops it */
	tcache_uibl_drop(tc, 0x7f0000000000ull, 0x7f0000001000ull);
	assert_true(uibl_finds(a));
	tcache_uibl_drop(tc, va & ~0xfffull, (va & ~0xfffull) + 0x1000);
	assert_false(uibl_finds(a));
	tcache_get_stats(tc, &st);
	assert_int_equal(st.uibl_kept, 3);
	tcache_destroy(tc);
}

/* tcache_revalidate_pages: each page of kernel code is asked once; the
 * blocks made from another physical page than it maps to now die (their
 * chains and IBL entries go), the others keep theirs; user pages are not
 * asked. */
struct page_map {
	unsigned asked;
	gva_t moved; /* this page now maps to `moved_to` */
	gpa_t moved_to;
};

static gpa_t map_pages(void *opaque, gva_t page)
{
	struct page_map *m = opaque;
	m->asked++;
	if (page == m->moved)
		return m->moved_to;
	return page == 0xffffffff81000000ull ? 0x5000 : 0x6000;
}

static void test_revalidate_pages(void **state)
{
	struct tcache *tc;
	struct tcache_block *k1, *k2, *k3, *u;
	struct bt_block x1, x2, x3, xu;
	uint8_t c1[16], c2[16], c3[16], cu[16];
	const gva_t base = 0xffffffff81000000ull;
	struct page_map m = {0, base + 0x1000, 0x7000};
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&x1, c1, base, 1, base + 0x200);	      /* jumps to k3 */
	make_movret(&x2, c2, base + 0x1100, 2, base + 0x200); /* jumps to k3 */
	make_movret(&x3, c3, base + 0x200, 3, 0);
	make_movret(&xu, cu, 0x401100, 4, 0);
	assert_int_equal(tcache_install(tc, &x1, 0x5000, TCACHE_NO_PAGE, 0, &k1), BT_OK);
	assert_int_equal(tcache_install(tc, &x2, 0x6000, TCACHE_NO_PAGE, 0, &k2), BT_OK);
	assert_int_equal(tcache_install(tc, &x3, 0x5000, TCACHE_NO_PAGE, 0, &k3), BT_OK);
	assert_int_equal(tcache_install_user(tc, &xu, 0x9000, TCACHE_NO_PAGE, &u), BT_OK);
	assert_int_equal(tcache_chain(tc, k1, 0, k3), BT_OK);
	assert_int_equal(tcache_chain(tc, k2, 0, k3), BT_OK);
	tcache_ibl_insert(tc, k1);
	tcache_ibl_insert(tc, k2);
	/* k2's page now maps elsewhere: it dies; the user page is not asked */
	assert_int_equal(tcache_revalidate_pages(tc, map_pages, &m), 1);
	assert_int_equal(m.asked, 2);
	assert_true(k2->dead);
	assert_false(k1->dead || k3->dead || u->dead);
	assert_int_equal(run(k1), 3); /* k1's chain to k3 survived */
	unsigned i1 = VCPU_IBL_INDEX(k1->blk.guest_start), i2 = VCPU_IBL_INDEX(base + 0x1100);
	assert_int_equal(abi.ibl[i1].guest_rip, k1->blk.guest_start);
	assert_int_equal(abi.ibl[i2].guest_rip, VCPU_IBL_EMPTY(i2));
	/* nothing moved: one question for the one page left, nobody dies */
	m.asked = 0;
	assert_int_equal(tcache_revalidate_pages(tc, map_pages, &m), 0);
	assert_int_equal(m.asked, 1);
	/* a block installed from another physical page than its neighbours
	 * (a mapping changed without a flush yet) makes the page "mixed":
	 * the next check looks at each block and kills the one that differs */
	struct tcache_block *k4;
	struct bt_block x4;
	uint8_t c4[16];
	make_movret(&x4, c4, base + 0x300, 5, 0);
	assert_int_equal(tcache_install(tc, &x4, 0x8000, TCACHE_NO_PAGE, 0, &k4), BT_OK);
	assert_int_equal(tcache_revalidate_pages(tc, map_pages, &m), 1);
	assert_true(k4->dead);
	assert_false(k1->dead || k3->dead);
	tcache_destroy(tc);
}

/*
 * Step blocks (one instruction, XLAT_OPT_STEP): one lives beside the
 * ordinary user block at the same address and page, each lookup finds only
 * its own, installing one replaces neither the other, a step block never
 * enters the IBL table and never chains either way, and a write to its
 * page kills it like any block.
 */
static void test_step_blocks(void **state)
{
	struct tcache *tc;
	struct tcache_block *u, *st1, *st2, *from;
	struct bt_block xu, xs1, xs2, xf;
	uint8_t cu[16], cs1[16], cs2[16], cf[16];
	const gva_t va = 0x401000;
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &tc), BT_OK);
	make_movret(&xu, cu, va, 21, 0);
	make_movret(&xs1, cs1, va, 22, va + 0x40);
	make_movret(&xs2, cs2, va, 23, va + 0x40);
	make_movret(&xf, cf, va + 0x40, 24, va);
	assert_int_equal(tcache_install_user(tc, &xu, 0x6000, TCACHE_NO_PAGE, &u), BT_OK);
	assert_int_equal(tcache_install_step(tc, &xs1, 0x6000, TCACHE_NO_PAGE, true, &st1), BT_OK);
	assert_int_equal(tcache_install_user(tc, &xf, 0x6000, TCACHE_NO_PAGE, &from), BT_OK);
	assert_false(u->dead || st1->dead);
	assert_ptr_equal(tcache_lookup_user(tc, va, 0x6000), u);
	assert_ptr_equal(tcache_lookup_step(tc, va, 0x6000), st1);
	assert_null(tcache_lookup_step(tc, va, 0x7000));
	assert_null(tcache_lookup_step(tc, va + 0x40, 0x6000));
	assert_null(tcache_lookup(tc, va));

	/* a second step block at va replaces the first, not the user block */
	assert_int_equal(tcache_install_step(tc, &xs2, 0x6000, TCACHE_NO_PAGE, true, &st2), BT_OK);
	assert_true(st1->dead);
	assert_false(u->dead);
	assert_ptr_equal(tcache_lookup_step(tc, va, 0x6000), st2);
	assert_int_equal(run(st2), 23);

	/* never in the IBL table, never chained from or to */
	unsigned i = VCPU_UIBL_INDEX(va);
	tcache_uibl_clear(tc);
	tcache_ibl_insert(tc, st2);
	assert_int_equal(abi.uibl[i].guest_rip, VCPU_IBL_EMPTY(i));
	assert_int_equal(tcache_chain(tc, from, 0, st2), BT_ERR_INVALID);
	assert_int_equal(tcache_chain(tc, st2, 0, from), BT_ERR_INVALID);
	assert_int_equal(tcache_chain(tc, from, 0, u), BT_OK); /* the ordinary one does */
	assert_int_equal(run(from), 21);

	/* a write to the page kills the step block with the others */
	assert_true(tcache_invalidate_range(tc, 0x6000, 8) >= 2);
	assert_true(st2->dead && u->dead);
	assert_null(tcache_lookup_step(tc, va, 0x6000));
	tcache_destroy(tc);
}

/* A write kills only the blocks whose bytes it meets (on either page of a
 * two-page block); the page stays watched while a block lives on it. */
static void test_invalidate_range(void **state)
{
	(void)state;
	struct guestmem *gm;
	struct tcache *tc;
	struct tcache_block *a, *b, *c;
	struct bt_block xa, xb2, xc;
	uint8_t ca[16], cb[16], cc[16];
	assert_int_equal(guestmem_create(1 << 20, &gm), BT_OK);
	assert_int_equal(tcache_create(1 << 16, gm, &abi, &tc), BT_OK);
	make_addret(&xa, ca, 0x5100, 1);  /* bytes [0x100, 0x103) of page 0x5000 */
	make_addret(&xb2, cb, 0x5200, 2); /* [0x200, 0x203) */
	make_addret(&xc, cc, 0x5ffe, 3);  /* [0xffe, 0x1000) + [0, 1) of page 0x9000 */
	assert_int_equal(tcache_install(tc, &xa, 0x5000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &a),
			 BT_OK);
	assert_int_equal(tcache_install(tc, &xb2, 0x5000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &b),
			 BT_OK);
	assert_int_equal(tcache_install(tc, &xc, 0x5000, 0x9000, TCACHE_FROM_DB, &c), BT_OK);

	/* next to a's bytes, before b's: nothing dies */
	assert_int_equal(tcache_invalidate_range(tc, 0x5103, 0xfd), 0);
	assert_int_equal(tcache_invalidate_range(tc, 0x50fc, 4), 0);
	/* a's last byte: a dies, b and c live, the page stays watched */
	assert_int_equal(tcache_invalidate_range(tc, 0x5102, 1), 1);
	assert_true(a->dead);
	assert_false(b->dead || c->dead);
	assert_true(guestmem_page_flags(gm, 0x5000) & GUESTMEM_PAGE_CODE);
	/* c's second page: byte 0 meets it, byte 1 does not */
	assert_int_equal(tcache_invalidate_range(tc, 0x9001, 8), 0);
	assert_int_equal(tcache_invalidate_range(tc, 0x9000, 1), 1);
	assert_true(c->dead);
	assert_false(guestmem_page_flags(gm, 0x9000) & GUESTMEM_PAGE_CODE);
	/* the rest of the page: b, the last block, and the watch goes */
	assert_int_equal(tcache_invalidate_page(tc, 0x5fff), 1);
	assert_true(b->dead);
	assert_false(guestmem_page_flags(gm, 0x5000) & GUESTMEM_PAGE_CODE);
	tcache_destroy(tc);
	guestmem_destroy(gm);
}

/* The descriptor arena: zeroed, aligned, never overlapping, 2 MiB chunks
 * chained as they fill, and the same memory again after a reset. */
static void test_arena(void **state)
{
	(void)state;
	struct tc_arena a = {0};
	assert_null(tc_arena_alloc(&a, 0));
	assert_null(tc_arena_alloc(&a, TC_ARENA_MAX + 1));
	uint8_t *first = tc_arena_alloc(&a, 40), *prev = first;
	assert_non_null(first);
	assert_int_equal((uintptr_t)first % 16, 0);
	memset(first, 0xa5, 40);
	size_t n = 1;
	/* fill more than two chunks with the largest allocations */
	for (; n < 3 * ((2u << 20) / TC_ARENA_MAX) + 2; n++) {
		uint8_t *p = tc_arena_alloc(&a, TC_ARENA_MAX);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		assert_true(p >= prev + 40 || p + TC_ARENA_MAX <= first); /* no overlap */
		for (size_t i = 0; i < TC_ARENA_MAX; i += 4096)
			assert_int_equal(p[i], 0);
		p[0] = p[TC_ARENA_MAX - 1] = 0x5a;
		prev = p;
	}
	assert_int_equal(a.bytes, 48 + (n - 1) * TC_ARENA_MAX);
	tc_arena_reset(&a);
	assert_int_equal(a.bytes, 0);
	uint8_t *again = tc_arena_alloc(&a, 40);
	assert_ptr_equal(again, first); /* the first chunk is reused ... */
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(again[i], 0); /* ... and handed out zeroed */
	tc_arena_destroy(&a);
	assert_null(a.first);
}

/* for_each: count the live blocks */
static void count_live(void *opaque, struct tcache_block *b)
{
	(void)b;
	(*(unsigned *)opaque)++;
}

/*
 * Bulk install (tcache_preload): blocks whose code the owner wrote into
 * the preloaded region run there, and behave as blocks copied in one by
 * one do: the same look-ups, chaining, host-PC attribution, invalidation;
 * a flush gives the region back as written; a place taken by a live block
 * is copied instead.
 */
static void test_preload_in_place(void **state)
{
	struct tcache *one, *bulk;
	struct tcache_block *a1, *b1, *a, *b, *c, *d;
	struct bt_block xa, xbb, xc;
	uint8_t ca[16], cb[16], cc[16], orig[48], *rw;
	static const uint8_t pm[3] = {1, 2, 3};
	(void)state;

	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &one), BT_OK);
	assert_int_equal(tcache_create(1 << 16, NULL, &abi, &bulk), BT_OK);
	assert_int_equal(tcache_preload(bulk, 60 << 10, &rw), BT_ERR_NOMEM); /* no room left */
	assert_int_equal(tcache_preload(bulk, 48, &rw), BT_OK);
	assert_int_equal(tcache_preload(bulk, 48, &rw), BT_ERR_INVALID); /* once */
	/* the region as its owner writes it: a at 0, b at 16, c at 32 */
	make_movret(&xa, ca, 0x1000, 1, 0x2000);
	make_addret(&xbb, cb, 0x2000, 10);
	make_movret(&xc, cc, 0x3000, 3, 0x2000);
	memset(orig, 0xcc, sizeof(orig));
	memcpy(orig, ca, xa.code_len);
	memcpy(orig + 16, cb, xbb.code_len);
	memcpy(orig + 32, cc, xc.code_len);
	memcpy(rw, orig, sizeof(orig));

	/* one by one into `one`, in place into `bulk` */
	xa.pcmap = xbb.pcmap = pm;
	xa.pcmap_len = xbb.pcmap_len = sizeof(pm);
	assert_int_equal(tcache_install(one, &xa, 0x1000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &a1),
			 BT_OK);
	assert_int_equal(tcache_install(one, &xbb, 0x2000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &b1),
			 BT_OK);
	xa.code = rw;
	xbb.code = rw + 16;
	assert_int_equal(tcache_install(bulk, &xa, 0x1000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &a),
			 BT_OK);
	assert_int_equal(tcache_install(bulk, &xbb, 0x2000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &b),
			 BT_OK);
	assert_true(a->in_place && b->in_place && !a1->in_place && !b1->in_place);
	assert_ptr_equal(b->blk.code, a->blk.code + 16);
	assert_ptr_equal(a->blk.pcmap, pm);	 /* borrowed */
	assert_ptr_not_equal(a1->blk.pcmap, pm); /* copied */
	assert_memory_equal(a1->blk.pcmap, pm, sizeof(pm));
	struct tcache_stats st;
	tcache_get_stats(bulk, &st);
	assert_int_equal(st.in_place, 2);
	assert_int_equal(st.from_db, 2);

	/* the same look-ups and runs, chained and not */
	assert_ptr_equal(tcache_lookup(bulk, 0x1000), a);
	assert_ptr_equal(tcache_lookup(bulk, 0x2000), b);
	assert_int_equal(run(a), run(a1));
	assert_int_equal(tcache_chain(one, a1, 0, b1), BT_OK);
	assert_int_equal(tcache_chain(bulk, a, 0, b), BT_OK);
	assert_int_equal(run(a), 11);
	assert_int_equal(run(a1), 11);

	/* host PCs: each block, a gap, a place nothing was installed at */
	assert_ptr_equal(tcache_find_host(bulk, a->blk.code + 10), a);
	assert_ptr_equal(tcache_find_host(bulk, b->blk.code), b);
	assert_null(tcache_find_host(bulk, a->blk.code + 12));
	assert_null(tcache_find_host(bulk, a->blk.code + 33));
	assert_ptr_equal(tcache_find_host(one, a1->blk.code + 10), a1);

	/* a live block's place is taken: the same code for another start is
	 * copied, with its exit at its own stub though a's is chained */
	xc.code = rw;
	xc.guest_start = 0x7000;
	assert_int_equal(tcache_install(bulk, &xc, 0x7000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &d),
			 BT_OK);
	assert_false(d->in_place);
	assert_int_equal(run(d), 1);
	assert_int_equal(run(a), 11);
	assert_ptr_equal(tcache_find_host(bulk, d->blk.code + 1), d);

	/* writing b's page kills b in both: a's jump goes back to its stub,
	 * in the region too */
	assert_int_equal(tcache_invalidate_page(one, 0x2000), 1);
	assert_int_equal(tcache_invalidate_page(bulk, 0x2000), 1);
	assert_true(b->dead);
	assert_null(tcache_lookup(bulk, 0x2000));
	assert_int_equal(run(a), 1);
	assert_memory_equal(rw, orig, sizeof(orig));
	assert_ptr_equal(tcache_find_host(bulk, b->blk.code), b); /* dead, still attributed */
	/* its place is free again: b comes back in place */
	struct tcache_block *b2;
	assert_int_equal(tcache_install(bulk, &xbb, 0x2000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &b2),
			 BT_OK);
	assert_true(b2->in_place);
	assert_ptr_equal(b2->blk.code, b->blk.code);
	assert_ptr_equal(tcache_find_host(bulk, b->blk.code + 1), b2); /* the live one */
	assert_int_equal(tcache_chain(bulk, a, 0, b2), BT_OK);
	assert_int_equal(run(a), 11);
	unsigned live = 0;
	tcache_for_each(bulk, count_live, &live);
	assert_int_equal(live, 3); /* a, b2, d */

	/* a flush gives the region back as written, and keeps it */
	tcache_flush(bulk);
	assert_memory_equal(rw, orig, sizeof(orig));
	assert_null(tcache_lookup(bulk, 0x1000));
	assert_null(tcache_find_host(bulk, rw)); /* rw is not executable: never a block */
	xc.code = rw + 32;
	xc.guest_start = 0x3000;
	assert_int_equal(tcache_install(bulk, &xc, 0x3000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &c),
			 BT_OK);
	assert_true(c->in_place);
	assert_int_equal(tcache_install(bulk, &xbb, 0x2000, TCACHE_NO_PAGE, TCACHE_FROM_DB, &b),
			 BT_OK);
	assert_int_equal(run(c), 3);
	assert_int_equal(tcache_chain(bulk, c, 0, b), BT_OK);
	assert_int_equal(run(c), 13);
	/* user blocks never run from the region */
	struct tcache_block *u;
	xa.code = rw;
	assert_int_equal(tcache_install_user(bulk, &xa, 0x1000, TCACHE_NO_PAGE, &u), BT_OK);
	assert_false(u->in_place);
	tcache_destroy(bulk);
	tcache_destroy(one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chain_unchain_executes),
	    cmocka_unit_test(test_record_kept),
	    cmocka_unit_test(test_kill_source_unlinks_target),
	    cmocka_unit_test(test_two_page_block_and_host_lookup),
	    cmocka_unit_test(test_ibl_and_flush_on_exhaustion),
	    cmocka_unit_test(test_rejects_bad_rows),
	    cmocka_unit_test(test_va_index_and_code_page_flags),
	    cmocka_unit_test(test_user_blocks),
	    cmocka_unit_test(test_uibl_pcid),
	    cmocka_unit_test(test_revalidate_pages),
	    cmocka_unit_test(test_step_blocks),
	    cmocka_unit_test(test_arena),
	    cmocka_unit_test(test_invalidate_range),
	    cmocka_unit_test(test_preload_in_place),
	};
	return cmocka_run_group_tests_name("tcache", tests, NULL, NULL);
}
