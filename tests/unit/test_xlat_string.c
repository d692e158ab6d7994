/*
 * Inline rep movs/stos (XLAT_VERSION 16, docs/xlat.md "String
 * instructions inline"): with DF = 0, RCX at most a page's worth and both
 * ranges in one TLB page each that allows the access, translated code runs
 * the string instruction on the host addresses the TLB gives; otherwise the
 * VCPU_CO_STRING call-out does it.  The harness's soft-MMU is the identity,
 * so these tests give the guest pages TLB entries whose addends point
 * elsewhere: the inline path must use them, and the call-out (the
 * identity) shows when it ran instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "tests/xlat/harness.h"

#define SENTINEL 0x7ead0000ull

struct env {
	struct xh h;
	uint8_t *code;	 /* guest code (identity) */
	uint64_t *stack; /* one page (identity) */
	uint8_t *gsrc;	 /* guest pages whose TLB entries point at hsrc/hdst */
	uint8_t *gdst;
	uint8_t *hsrc;
	uint8_t *hdst;
};

static uint8_t *pages(size_t n)
{
	void *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	e->code = pages(1);
	e->stack = (uint64_t *)pages(1);
	e->gsrc = pages(2); /* the second page: identity, for ranges crossing */
	e->gdst = pages(2);
	e->hsrc = pages(1);
	e->hdst = pages(1);
	assert_int_equal(
	    xh_init(&e->h, (gva_t)(uintptr_t)e->code, (gva_t)(uintptr_t)e->code + 4096, 0), BT_OK);
	for (int i = 0; i < 4096; i++)
		e->hsrc[i] = (uint8_t)(i * 7 + 1);
	memset(e->gsrc, 0xee, 8192); /* what the identity would read */
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	xh_fini(&e->h);
	munmap(e->code, 4096);
	munmap(e->stack, 4096);
	munmap(e->gsrc, 8192);
	munmap(e->gdst, 8192);
	munmap(e->hsrc, 4096);
	munmap(e->hdst, 4096);
	free(e);
	return 0;
}

/* Run code (ending in ret) with the given registers; rflags 0x203 (CF, IF)
 * on entry.  Returns the soft-MMU slow paths it took. */
static uint64_t run(struct env *e, const uint8_t *code, size_t len, uint64_t rsi, uint64_t rdi,
		    uint64_t rcx, uint64_t rax)
{
	memcpy(e->code, code, len);
	xh_reset(&e->h); /* new code at the same address */
	struct vcpu_abi *a = e->h.vcpu.abi;
	uint64_t *top = e->stack + 511;
	*top = SENTINEL;
	a->gpr[VCPU_RSP] = (uint64_t)(uintptr_t)top;
	a->gpr[VCPU_RSI] = rsi;
	a->gpr[VCPU_RDI] = rdi;
	a->gpr[VCPU_RCX] = rcx;
	a->gpr[VCPU_RAX] = rax;
	a->rflags = 0x203;
	tc_tlb_flush(&e->h.vcpu);
	/* the stack's page and the code's are identity; the data pages are not */
	tc_tlb_set(&e->h.vcpu, (gva_t)(uintptr_t)e->stack, 0, true, true);
	tc_tlb_set(&e->h.vcpu, (gva_t)(uintptr_t)e->gsrc,
		   (int64_t)((uintptr_t)e->hsrc - (uintptr_t)e->gsrc), true, false);
	tc_tlb_set(&e->h.vcpu, (gva_t)(uintptr_t)e->gdst,
		   (int64_t)((uintptr_t)e->hdst - (uintptr_t)e->gdst), true, true);
	uint64_t slow = e->h.n_slow;
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 100), XH_OK);
	assert_int_equal(a->rflags & 0x8d5, 1); /* CF kept, nothing else set */
	return e->h.n_slow - slow;
}

/* rep movsb, rep stosb, rep movsq, rep stosq through the TLB's addends. */
static void test_string_inline(void **state)
{
	struct env *e = *state;
	struct vcpu_abi *a = e->h.vcpu.abi;
	uint64_t gs = (uint64_t)(uintptr_t)e->gsrc, gd = (uint64_t)(uintptr_t)e->gdst;
	static const uint8_t movsb[] = {0xf3, 0xa4, 0xc3}, stosb[] = {0xf3, 0xaa, 0xc3},
			     movsq[] = {0xf3, 0x48, 0xa5, 0xc3}, stosq[] = {0xf3, 0x48, 0xab, 0xc3};

	assert_int_equal(run(e, movsb, sizeof(movsb), gs + 100, gd + 200, 300, 0), 0);
	assert_memory_equal(e->hdst + 200, e->hsrc + 100, 300);
	assert_int_equal(a->gpr[VCPU_RSI], gs + 400);
	assert_int_equal(a->gpr[VCPU_RDI], gd + 500);
	assert_int_equal(a->gpr[VCPU_RCX], 0);

	assert_int_equal(run(e, stosb, sizeof(stosb), 0, gd + 600, 50, 0x5c), 0);
	for (int i = 600; i < 650; i++)
		assert_int_equal(e->hdst[i], 0x5c);
	assert_int_equal(e->hdst[650], 0);
	assert_int_equal(a->gpr[VCPU_RDI], gd + 650);

	assert_int_equal(run(e, movsq, sizeof(movsq), gs + 8, gd + 1024, 16, 0), 0);
	assert_memory_equal(e->hdst + 1024, e->hsrc + 8, 128);
	assert_int_equal(a->gpr[VCPU_RSI], gs + 136);
	assert_int_equal(a->gpr[VCPU_RDI], gd + 1152);

	assert_int_equal(run(e, stosq, sizeof(stosq), 0, gd + 2048, 4, 0x1122334455667788ull), 0);
	assert_int_equal(*(uint64_t *)(e->hdst + 2048 + 24), 0x1122334455667788ull);
	assert_int_equal(a->gpr[VCPU_RDI], gd + 2080);

	/* RCX = 0 inside a page: nothing moves, nothing changes */
	assert_int_equal(run(e, movsb, sizeof(movsb), gs + 5, gd + 5, 0, 0), 0);
	assert_int_equal(a->gpr[VCPU_RSI], gs + 5);
	assert_int_equal(e->hdst[5], 0);
	/* the guest pages themselves were never touched */
	for (int i = 0; i < 4096; i++)
		assert_int_equal(e->gdst[i], 0);
}

/* What must take the call-out (the identity here): DF = 1, a range that
 * leaves its page, a write the TLB entry does not allow.  (A count above a
 * page always leaves it, or wraps around 2^64, which the harness cannot
 * run: the inline path's `cmp rcx` keeps those out.) */
static void test_string_callout(void **state)
{
	struct env *e = *state;
	struct vcpu_abi *a = e->h.vcpu.abi;
	uint64_t gs = (uint64_t)(uintptr_t)e->gsrc, gd = (uint64_t)(uintptr_t)e->gdst;
	static const uint8_t movsb[] = {0xf3, 0xa4, 0xc3}, stosb[] = {0xf3, 0xaa, 0xc3},
			     std_movsb[] = {0xfd, 0xf3, 0xa4, 0xfc, 0xc3};

	/* DF = 1: bytes 199..190 from the guest page's own 0xee */
	assert_true(run(e, std_movsb, sizeof(std_movsb), gs + 99, gd + 199, 10, 0) > 0);
	for (int i = 190; i < 200; i++)
		assert_int_equal(e->gdst[i], 0xee);
	assert_int_equal(a->gpr[VCPU_RDI], gd + 189);
	/* the source range runs past its page's end (into the identity page
	 * after it) */
	memset(e->gdst, 0, 8192);
	assert_true(run(e, movsb, sizeof(movsb), gs + 4090, gd, 10, 0) > 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(e->gdst[i], 0xee);
	assert_int_equal(e->hdst[0], 0);
	/* the destination range, likewise */
	assert_true(run(e, stosb, sizeof(stosb), 0, gd + 4095, 2, 0x55) > 0);
	assert_int_equal(e->gdst[4095], 0x55);
	assert_int_equal(e->gdst[4096], 0x55);
	/* a write to a page whose entry is read-only */
	assert_true(run(e, stosb, sizeof(stosb), 0, gs + 10, 4, 0x33) > 0);
	assert_int_equal(e->gsrc[10], 0x33);
	assert_int_equal(e->hsrc[10], (uint8_t)(10 * 7 + 1));
	/* a whole page (the count's limit) still runs inline */
	assert_int_equal(run(e, stosb, sizeof(stosb), 0, gd, 4096, 0x44), 0);
	assert_int_equal(e->hdst[0], 0x44);
	assert_int_equal(e->hdst[4095], 0x44);
	assert_int_equal(a->gpr[VCPU_RDI], gd + 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_string_inline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_string_callout, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
