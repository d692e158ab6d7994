/*
 * Internals of the differential generator shared by its two files:
 * diffgen.c (helpers, addressing forms, the original instruction classes,
 * dg_generate) and diffgen_more.c (the classes added for issue 12: unary
 * ops on memory, shld/shrd, popcnt/lzcnt/bswap, cmpxchg8b/16b, RSP as an
 * operand and leave, SSE arithmetic, x87).
 */
#ifndef BT_TESTS_XLAT_DIFFGEN_INT_H
#define BT_TESTS_XLAT_DIFFGEN_INT_H

#include "tests/xlat/diffgen.h"

#include <Zydis/Zydis.h>

#define DG_PICK(g, a) (a)[dg_rr(g, (uint32_t)(sizeof(a) / sizeof((a)[0])))]

/* A memory operand (with its prefixes) whose effective address is target
 * (or a random data address when target is 0), after emitting the setup of
 * its base/index registers.  Every addressing form appears. */
struct dg_mem {
	ZydisEncoderOperand op;
	ZydisInstructionAttributes pfx;
	uint64_t target;
};

uint32_t dg_rr(struct dg *g, uint32_t n); /* uniform in [0, n) */
int dg_rreg(struct dg *g);		  /* a GPR number, never RSP */
int dg_rwidth(struct dg *g, bool no8);	  /* 8/16/32/64 (no 8 with no8) */
ZydisRegister dg_reg(int width, int n);
ZydisEncoderOperand dg_r(ZydisRegister r);
ZydisEncoderOperand dg_i(int64_t v);
void dg_ins(struct dg *g, ZydisMnemonic m, ZydisInstructionAttributes pfx, int n,
	    ZydisEncoderOperand a, ZydisEncoderOperand b, ZydisEncoderOperand c);
void dg_ins0(struct dg *g, ZydisMnemonic m);
void dg_ins1(struct dg *g, ZydisMnemonic m, ZydisEncoderOperand a);
void dg_ins2(struct dg *g, ZydisMnemonic m, ZydisEncoderOperand a, ZydisEncoderOperand b);
/* m with the prefixes of its memory operand */
void dg_insm(struct dg *g, ZydisMnemonic mn, const struct dg_mem *m, int n, ZydisEncoderOperand a,
	     ZydisEncoderOperand b, ZydisEncoderOperand c);
/* Emit the base/index setup and return a memory operand of size bytes at
 * target (0: a random data address aligned to align); g->avoid excludes
 * registers from base/index. */
struct dg_mem dg_mem_form(struct dg *g, int size, uint64_t align, uint64_t target);
int dg_pick_other(struct dg *g, const struct dg_mem *m); /* not base/index/RSP */
void dg_item_alu(struct dg *g);
void dg_item_simple(struct dg *g);

/* diffgen_more.c */
void dg_item_unary(struct dg *g);
void dg_item_shd(struct dg *g);
void dg_item_count(struct dg *g);
void dg_item_cmpxchg_wide(struct dg *g);
void dg_item_rsp(struct dg *g);
void dg_item_sse_arith(struct dg *g);
void dg_item_x87(struct dg *g);

#endif
