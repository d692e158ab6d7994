/*
 * Unit tests of the Zydis vs LLVM MC cross-check (pretrans/xlat/xcheck.c)
 * and of XLAT_OPT_CROSSCHECK in xlat_translate().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pretrans/base/log.h"
#include "pretrans/xcheck/xcheck.h"
#include "pretrans/xlat/xlat.h"

#define BASE 0xffffffff81000000ull

/* mov rax,[rdi]; add rax,rsi; mov [rdi+8],rax; push rax; pop rcx; ret */
static const uint8_t good[] = {0x48, 0x8b, 0x07, 0x48, 0x01, 0xf0, 0x48,
			       0x89, 0x47, 0x08, 0x50, 0x59, 0xc3};
/* mov rax,rcx; then 40 48 92 (two REX prefixes + xchg: Zydis decodes one
 * 3-byte instruction, LLVM a 2-byte one); ret */
static const uint8_t rexrex[] = {0x48, 0x89, 0xc8, 0x40, 0x48, 0x92, 0xc3};

struct buf {
	const uint8_t *p;
	size_t n;
};

static size_t rd(void *opaque, gva_t va, uint8_t *out, size_t len)
{
	const struct buf *b = opaque;
	if (va < BASE || va >= BASE + b->n)
		return 0;
	size_t n = BT_MIN(len, (size_t)(BASE + b->n - va));
	memcpy(out, b->p + (va - BASE), n);
	return n;
}

static void test_sweep_agree(void **state)
{
	(void)state;
	struct xcheck *xc;
	struct xcheck_stats st;
	memset(&st, 0, sizeof(st));
	assert_int_equal(xcheck_create(&xc), BT_OK);
	assert_int_equal(xcheck_sweep(xc, good, sizeof(good), BASE, &st), BT_OK);
	assert_int_equal(st.count[XCHECK_AGREE], 6);
	assert_int_equal(st.count[XCHECK_LEN_DIFF] + st.count[XCHECK_ZYDIS_ONLY] +
			     st.count[XCHECK_LLVM_ONLY] + st.count[XCHECK_BOTH_INVALID],
			 0);
	assert_int_equal(st.bytes, sizeof(good));
	assert_int_equal(xcheck_length(xc, good, sizeof(good), BASE), 3);
	/* LLVM prints "lock" as an instruction of its own: merged, it agrees */
	static const uint8_t lockinc[] = {0xf0, 0xff, 0x41, 0x34, 0xf3, 0x48, 0xa5};
	memset(&st, 0, sizeof(st));
	assert_int_equal(xcheck_sweep(xc, lockinc, sizeof(lockinc), BASE, &st), BT_OK);
	assert_int_equal(st.count[XCHECK_AGREE], 2);
	assert_int_equal(st.count[XCHECK_LEN_DIFF], 0);
	xcheck_destroy(xc);
}

static void test_sweep_disagree(void **state)
{
	(void)state;
	struct xcheck *xc;
	struct xcheck_stats st;
	static const uint8_t invalid[] = {0x06}; /* push es: invalid in 64-bit mode */
	memset(&st, 0, sizeof(st));
	assert_int_equal(xcheck_create(&xc), BT_OK);
	assert_int_equal(xcheck_sweep(xc, rexrex, sizeof(rexrex), BASE, &st), BT_OK);
	assert_int_equal(st.count[XCHECK_LEN_DIFF], 1);
	assert_int_equal(st.n_samples, 1);
	assert_int_equal(st.samples[0].va, BASE + 3);
	assert_int_equal(st.samples[0].zydis_len, 3);
	assert_int_equal(st.samples[0].llvm_len, 2);
	assert_int_equal(xcheck_sweep(xc, invalid, sizeof(invalid), BASE, &st), BT_OK);
	assert_int_equal(st.count[XCHECK_BOTH_INVALID], 1);
	assert_string_equal(xcheck_class_str(XCHECK_LEN_DIFF), "length-differs");
	xcheck_destroy(xc);
}

/* Operands are compared for the integer subset: LLVM reads "66 f2 93" as
 * "xacquire" (eating the 0x66) + "xchg eax, ebx", Zydis as "xchg bx, ax". */
static void test_operands(void **state)
{
	(void)state;
	struct xcheck *xc;
	static const uint8_t load[] = {0x48, 0x8b, 0x47, 0x08};	  /* mov rax, [rdi+8] */
	static const uint8_t cpuid[] = {0x0f, 0xa2};		  /* outside the subset */
	static const uint8_t movds[] = {0x8e, 0xd8};		  /* mov ds, ax: not compared */
	static const uint8_t xchg16[] = {0x66, 0xf2, 0x93, 0xc3}; /* widths differ */
	assert_int_equal(xcheck_create(&xc), BT_OK);
	assert_int_equal(xcheck_operands(xc, load, sizeof(load), BASE), 1);
	assert_int_equal(xcheck_operands(xc, cpuid, sizeof(cpuid), BASE), -1);
	assert_int_equal(xcheck_operands(xc, movds, sizeof(movds), BASE), -1);
	assert_int_equal(xcheck_operands(xc, xchg16, sizeof(xchg16), BASE), 0);
	assert_int_equal(xcheck_length(xc, xchg16, sizeof(xchg16), BASE), 3);
	struct xcheck_stats st;
	memset(&st, 0, sizeof(st));
	assert_int_equal(xcheck_sweep(xc, xchg16, sizeof(xchg16), BASE, &st), BT_OK);
	assert_int_equal(st.count[XCHECK_OPERANDS_DIFF], 1);
	assert_int_equal(st.count[XCHECK_AGREE], 1); /* the ret */
	assert_int_equal(st.operands_compared, 1);
	assert_int_equal(st.samples[0].cls, XCHECK_OPERANDS_DIFF);
	xcheck_destroy(xc);

	struct xlat_options on = {.flags = XLAT_OPT_CROSSCHECK, .checker = &xcheck_checker_ops};
	struct xlat_ctx *c;
	struct bt_block b;
	struct buf x = {xchg16, sizeof(xchg16)};
	struct xlat_source sx = {.read = rd, .opaque = &x};
	assert_int_equal(xlat_create(&on, &c), BT_OK);
	assert_int_equal(xlat_translate(c, &sx, BASE, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_REFUSE_DISAGREE);
	assert_int_equal(b.refusal_addr, BASE);
	xlat_destroy(c);
}

static void test_translate_crosscheck(void **state)
{
	(void)state;
	struct xlat_options on = {.flags = XLAT_OPT_CROSSCHECK, .checker = &xcheck_checker_ops};
	struct xlat_ctx *c_on, *c_off;
	struct bt_block b;
	assert_int_equal(xlat_create(&on, &c_on), BT_OK);
	assert_int_equal(xlat_create(NULL, &c_off), BT_OK);
	struct buf g = {good, sizeof(good)}, r = {rexrex, sizeof(rexrex)};
	struct xlat_source sg = {.read = rd, .opaque = &g}, sr = {.read = rd, .opaque = &r};
	assert_int_equal(xlat_translate(c_on, &sg, BASE, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_OK);
	assert_int_equal(xlat_translate(c_on, &sr, BASE, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_REFUSE_DISAGREE);
	assert_int_equal(b.refusal_addr, BASE + 3);
	assert_int_equal(xlat_translate(c_off, &sr, BASE, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_OK);
	assert_int_equal(b.guest_len, sizeof(rexrex));
	/* options are part of the provenance hash */
	assert_true(xlat_options_hash(&on) != xlat_options_hash(NULL));
	xlat_destroy(c_on);
	xlat_destroy(c_off);
}

/* The checker is a hook: CROSSCHECK without one is refused, and the hook
 * is not part of the provenance (it decides nothing when it agrees). */
static void test_checker_hook(void **state)
{
	(void)state;
	struct xlat_options bare = {.flags = XLAT_OPT_CROSSCHECK};
	struct xlat_options on = {.flags = XLAT_OPT_CROSSCHECK, .checker = &xcheck_checker_ops};
	struct xlat_ctx *c = NULL;
	bt_log_set(0, LOG_ERROR); /* the refusal logs an error; keep the output clean */
	assert_int_equal(xlat_create(&bare, &c), BT_ERR_INVALID);
	bt_log_set(LOG_ALL, LOG_WARN);
	assert_null(c);
	assert_true(xlat_options_hash(&bare) == xlat_options_hash(&on));
	struct xlat_options off_with_hook = {.checker = &xcheck_checker_ops};
	assert_int_equal(xlat_create(&off_with_hook, &c), BT_OK); /* unused without the flag */
	struct bt_block b;
	struct buf r = {rexrex, sizeof(rexrex)};
	struct xlat_source sr = {.read = rd, .opaque = &r};
	assert_int_equal(xlat_translate(c, &sr, BASE, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_OK);
	xlat_destroy(c);
}

/* The checker's memo of agreements: an instruction that agreed once is
 * answered without the decoders, at any address; a disagreement is
 * checked again every time (never remembered), also after an agreement
 * on bytes it begins with, and a length the decoders did not agree on is
 * not taken from the memo. */
static void test_checker_memo(void **state)
{
	(void)state;
	void *inst;
	uint64_t hits, checked;
	static const uint8_t movrc[] = {0x48, 0x89, 0xc8}; /* mov rax, rcx */
	assert_int_equal(xcheck_checker_ops.create(&inst), BT_OK);
	assert_true(xcheck_checker_ops.agrees(inst, good, sizeof(good), BASE, 3));
	assert_true(xcheck_checker_ops.agrees(inst, good, sizeof(good), BASE + 0x1000, 3));
	assert_true(xcheck_checker_ops.agrees(inst, movrc, sizeof(movrc), BASE, 3));
	xcheck_checker_counts(inst, &hits, &checked);
	assert_int_equal(hits, 1);
	assert_int_equal(checked, 2);
	/* 40 48 92: LLVM decodes 2 bytes, Zydis 3: refused twice */
	assert_false(xcheck_checker_ops.agrees(inst, rexrex + 3, 4, BASE, 3));
	assert_false(xcheck_checker_ops.agrees(inst, rexrex + 3, 4, BASE, 3));
	/* agreed as 3 bytes: not an agreement on 2 of them */
	assert_false(xcheck_checker_ops.agrees(inst, movrc, sizeof(movrc), BASE, 2));
	/* operands that differ (66 f2 93): refused every time */
	static const uint8_t xchg16[] = {0x66, 0xf2, 0x93, 0xc3};
	assert_false(xcheck_checker_ops.agrees(inst, xchg16, sizeof(xchg16), BASE, 3));
	assert_false(xcheck_checker_ops.agrees(inst, xchg16, sizeof(xchg16), BASE, 3));
	xcheck_checker_counts(inst, &hits, &checked);
	assert_int_equal(hits, 1);
	assert_int_equal(checked, 2 + 2 + 1 + 2);
	xcheck_checker_ops.destroy(inst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sweep_agree),	 cmocka_unit_test(test_sweep_disagree),
	    cmocka_unit_test(test_operands),	 cmocka_unit_test(test_translate_crosscheck),
	    cmocka_unit_test(test_checker_hook), cmocka_unit_test(test_checker_memo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
