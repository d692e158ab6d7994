/*
 * More instruction classes for the differential generator (diffgen.c has
 * the rest and the invariants): the classes the issue-12 review found
 * missing.  Each keeps diffgen.c's invariants: memory operands land in the
 * data area, nothing faults natively, RSP moves only by small amounts.
 */
#include "tests/xlat/diffgen_int.h"

#include <string.h>

/* inc/dec/neg/not on a register or memory (lock'ed sometimes): they keep
 * CF (inc/dec) or every flag (not), so the flags before them stay live. */
void dg_item_unary(struct dg *g)
{
	static const ZydisMnemonic un[] = {ZYDIS_MNEMONIC_INC, ZYDIS_MNEMONIC_DEC,
					   ZYDIS_MNEMONIC_NEG, ZYDIS_MNEMONIC_NOT};
	int w = dg_rwidth(g, false);
	ZydisMnemonic m = DG_PICK(g, un);
	if (dg_rr(g, 3) == 0) {
		dg_ins1(g, m, dg_r(dg_reg(w, dg_rreg(g))));
		return;
	}
	struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
	if (dg_rr(g, 3) == 0)
		mm.pfx |= ZYDIS_ATTRIB_HAS_LOCK;
	dg_insm(g, m, &mm, 1, mm.op, dg_i(0), dg_i(0));
}

/* shld/shrd r/m, r, imm8 or CL (16-bit counts above 16 included). */
void dg_item_shd(struct dg *g)
{
	int w = dg_rwidth(g, true);
	ZydisMnemonic m = dg_rr(g, 2) ? ZYDIS_MNEMONIC_SHLD : ZYDIS_MNEMONIC_SHRD;
	ZydisEncoderOperand cnt;
	bool cl = dg_rr(g, 2);
	if (cl) {
		dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(ZYDIS_REGISTER_CL), dg_i(dg_rr(g, 70)));
		cnt = dg_r(ZYDIS_REGISTER_CL);
	} else {
		cnt = dg_i(dg_rr(g, 70));
	}
	int src;
	do
		src = dg_rreg(g);
	while (cl && src == 1);
	if (dg_rr(g, 2)) {
		int dst;
		do
			dst = dg_rreg(g);
		while (cl && dst == 1);
		dg_ins(g, m, 0, 3, dg_r(dg_reg(w, dst)), dg_r(dg_reg(w, src)), cnt);
	} else {
		g->avoid = cl ? 1u << 1 : 0;
		struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
		g->avoid = 0;
		dg_insm(g, m, &mm, 3, mm.op, dg_r(dg_reg(w, src)), cnt);
	}
}

/* popcnt/lzcnt r, r/m and bswap r.  (tzcnt is not here: the vCPU has no
 * BMI1, so F3 0F BC runs as bsf translated but as tzcnt natively; see
 * tests/unit/test_xlat.c, test_tzcnt_is_bsf.) */
void dg_item_count(struct dg *g)
{
	int w = dg_rwidth(g, true);
	switch (dg_rr(g, 3)) {
	case 0:
		dg_ins1(g, ZYDIS_MNEMONIC_BSWAP, dg_r(dg_reg(dg_rr(g, 2) ? 64 : 32, dg_rreg(g))));
		break;
	default: {
		ZydisMnemonic m = dg_rr(g, 2) ? ZYDIS_MNEMONIC_POPCNT : ZYDIS_MNEMONIC_LZCNT;
		if (dg_rr(g, 2)) {
			dg_ins2(g, m, dg_r(dg_reg(w, dg_rreg(g))), dg_r(dg_reg(w, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
			/* the Zydis encoder orders a 16-bit form with %fs/%gs as
			 * F3 seg 66 0F B8, which LLVM MC rejects: the -x run would
			 * refuse it (XLAT_REFUSE_DISAGREE), so use 32 bits there */
			if (w == 16 && mm.pfx)
				w = 32, mm.op.mem.size = 4;
			dg_insm(g, m, &mm, 2, dg_r(dg_reg(w, dg_rreg(g))), mm.op, dg_i(0));
		}
		break;
	}
	}
}

/* cmpxchg8b/16b [m] (lock'ed sometimes), succeeding about half the time:
 * rdx:rax is then loaded from the operand itself. */
void dg_item_cmpxchg_wide(struct dg *g)
{
	bool wide = dg_rr(g, 2);
	int sz = wide ? 16 : 8, hw = wide ? 64 : 32;
	g->avoid = 0xf; /* rax rcx rdx rbx */
	struct dg_mem mm = dg_mem_form(g, sz, wide ? 16 : 0, 0);
	g->avoid = 0;
	if (dg_rr(g, 2)) {
		struct dg_mem lo = mm, hi = mm;
		lo.op.mem.size = hi.op.mem.size = (ZyanU16)(sz / 2);
		hi.op.mem.displacement += sz / 2;
		dg_insm(g, ZYDIS_MNEMONIC_MOV, &lo, 2, dg_r(dg_reg(hw, 0)), lo.op, dg_i(0));
		dg_insm(g, ZYDIS_MNEMONIC_MOV, &hi, 2, dg_r(dg_reg(hw, 2)), hi.op, dg_i(0));
	}
	if (dg_rr(g, 2))
		mm.pfx |= ZYDIS_ATTRIB_HAS_LOCK;
	dg_insm(g, wide ? ZYDIS_MNEMONIC_CMPXCHG16B : ZYDIS_MNEMONIC_CMPXCHG8B, &mm, 1, mm.op,
		dg_i(0), dg_i(0));
}

/* RSP as an operand: push/pop rsp, RSP arithmetic, a frame torn down by
 * leave. */
void dg_item_rsp(struct dg *g)
{
	ZydisEncoderOperand rsp = dg_r(ZYDIS_REGISTER_RSP);
	switch (dg_rr(g, 5)) {
	case 0: /* push rsp; pop r */
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, rsp);
		dg_ins1(g, ZYDIS_MNEMONIC_POP, dg_r(dg_reg(64, dg_rreg(g))));
		break;
	case 1: /* push rsp; (alu); pop rsp */
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, rsp);
		if (dg_rr(g, 2))
			dg_item_alu(g);
		dg_ins1(g, ZYDIS_MNEMONIC_POP, rsp);
		break;
	case 2: { /* pop rsp of a new stack pointer below the current one */
		int r = dg_rreg(g);
		dg_ins2(
		    g, ZYDIS_MNEMONIC_LEA, dg_r(dg_reg(64, r)),
		    (ZydisEncoderOperand){.type = ZYDIS_OPERAND_TYPE_MEMORY,
					  .mem = {.base = ZYDIS_REGISTER_RSP,
						  .displacement = -8 * (int64_t)(1 + dg_rr(g, 4)),
						  .size = 8}});
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_r(dg_reg(64, r)));
		dg_ins1(g, ZYDIS_MNEMONIC_POP, rsp);
		break;
	}
	case 3: { /* sub/add rsp, and rsp, lea rsp */
		int64_t k = 8 * (int64_t)(1 + dg_rr(g, 8));
		dg_ins2(g, ZYDIS_MNEMONIC_SUB, rsp, dg_i(k));
		if (dg_rr(g, 2))
			dg_item_simple(g);
		if (dg_rr(g, 2)) {
			dg_ins2(g, ZYDIS_MNEMONIC_ADD, rsp, dg_i(k));
		} else {
			dg_ins2(
			    g, ZYDIS_MNEMONIC_LEA, rsp,
			    (ZydisEncoderOperand){
				.type = ZYDIS_OPERAND_TYPE_MEMORY,
				.mem = {.base = ZYDIS_REGISTER_RSP, .displacement = k, .size = 8}});
		}
		if (dg_rr(g, 4) == 0)
			dg_ins2(g, ZYDIS_MNEMONIC_AND, rsp, dg_i(-16));
		break;
	}
	default: /* push rbp; mov rbp, rsp; sub rsp, k; ...; leave */
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_r(ZYDIS_REGISTER_RBP));
		dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(ZYDIS_REGISTER_RBP), rsp);
		dg_ins2(g, ZYDIS_MNEMONIC_SUB, rsp, dg_i(8 * (int64_t)dg_rr(g, 6)));
		if (dg_rr(g, 2))
			dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_i((int64_t)dg_rr(g, 1000)));
		dg_ins0(g, ZYDIS_MNEMONIC_LEAVE);
		break;
	}
}

/* SSE arithmetic on registers and (aligned) memory. */
void dg_item_sse_arith(struct dg *g)
{
	static const ZydisMnemonic ops[] = {
	    ZYDIS_MNEMONIC_PADDD,    ZYDIS_MNEMONIC_PADDQ,     ZYDIS_MNEMONIC_PSUBB,
	    ZYDIS_MNEMONIC_PXOR,     ZYDIS_MNEMONIC_PAND,      ZYDIS_MNEMONIC_POR,
	    ZYDIS_MNEMONIC_PCMPEQB,  ZYDIS_MNEMONIC_PMULUDQ,   ZYDIS_MNEMONIC_ADDPS,
	    ZYDIS_MNEMONIC_MULPD,    ZYDIS_MNEMONIC_SUBPS,     ZYDIS_MNEMONIC_MINPD,
	    ZYDIS_MNEMONIC_UNPCKLPS, ZYDIS_MNEMONIC_PUNPCKHBW,
	};
	ZydisRegister x = (ZydisRegister)(ZYDIS_REGISTER_XMM0 + dg_rr(g, 16));
	ZydisRegister y = (ZydisRegister)(ZYDIS_REGISTER_XMM0 + dg_rr(g, 16));
	switch (dg_rr(g, 4)) {
	case 0:
		dg_ins2(g, DG_PICK(g, ops), dg_r(x), dg_r(y));
		break;
	case 1: {
		struct dg_mem a = dg_mem_form(g, 16, 16, 0);
		dg_insm(g, DG_PICK(g, ops), &a, 2, dg_r(x), a.op, dg_i(0));
		break;
	}
	case 2: { /* pshufd x, y/[m], imm */
		if (dg_rr(g, 2)) {
			dg_ins(g, ZYDIS_MNEMONIC_PSHUFD, 0, 3, dg_r(x), dg_r(y),
			       dg_i(dg_rr(g, 256)));
		} else {
			struct dg_mem a = dg_mem_form(g, 16, 16, 0);
			dg_insm(g, ZYDIS_MNEMONIC_PSHUFD, &a, 3, dg_r(x), a.op,
				dg_i(dg_rr(g, 256)));
		}
		break;
	}
	default: { /* scalar double from memory, then a comparison into the flags */
		struct dg_mem a = dg_mem_form(g, 8, 0, 0);
		dg_insm(g, dg_rr(g, 2) ? ZYDIS_MNEMONIC_ADDSD : ZYDIS_MNEMONIC_SQRTSD, &a, 2,
			dg_r(x), a.op, dg_i(0));
		dg_ins2(g, dg_rr(g, 2) ? ZYDIS_MNEMONIC_UCOMISD : ZYDIS_MNEMONIC_COMISD, dg_r(x),
			dg_r(y));
		break;
	}
	}
}

/* x87: loads (fld/fild of random memory, constants), arithmetic on the
 * register stack and memory, fxch/fchs/fabs/fsqrt, fcomi/fucomi into the
 * arithmetic flags (then read by setcc), stores and pops, fnstsw ax, and a
 * rounding-control change through fnstcw/fldcw.  Balanced: the stack depth
 * is the same after the item as before it.  The x87 registers, FCW, FSW and
 * the tag word are compared (xlat_diff.c); FIP/FDP/FOP are not (translated
 * code runs at host addresses, docs/xlat.md "Known limits"). */
void dg_item_x87(struct dg *g)
{
	static const ZydisMnemonic consts[] = {ZYDIS_MNEMONIC_FLD1, ZYDIS_MNEMONIC_FLDZ,
					       ZYDIS_MNEMONIC_FLDPI, ZYDIS_MNEMONIC_FLDL2E};
	static const ZydisMnemonic arith[] = {ZYDIS_MNEMONIC_FADD,  ZYDIS_MNEMONIC_FSUB,
					      ZYDIS_MNEMONIC_FMUL,  ZYDIS_MNEMONIC_FDIV,
					      ZYDIS_MNEMONIC_FSUBR, ZYDIS_MNEMONIC_FDIVR};
	static const ZydisMnemonic unary[] = {ZYDIS_MNEMONIC_FCHS, ZYDIS_MNEMONIC_FABS,
					      ZYDIS_MNEMONIC_FSQRT, ZYDIS_MNEMONIC_FXCH,
					      ZYDIS_MNEMONIC_FRNDINT};
	ZydisEncoderOperand st0 = dg_r(ZYDIS_REGISTER_ST0), st1 = dg_r(ZYDIS_REGISTER_ST1);
	/* two values on the stack */
	for (int i = 0; i < 2; i++) {
		switch (dg_rr(g, 4)) {
		case 0:
			dg_ins0(g, DG_PICK(g, consts));
			break;
		case 1: { /* fild word/dword/qword */
			static const int isz[] = {2, 4, 8};
			struct dg_mem mm = dg_mem_form(g, DG_PICK(g, isz), 0, 0);
			dg_insm(g, ZYDIS_MNEMONIC_FILD, &mm, 1, mm.op, dg_i(0), dg_i(0));
			break;
		}
		default: { /* fld dword/qword/tbyte of random bits */
			static const int fsz[] = {4, 8, 10};
			struct dg_mem mm = dg_mem_form(g, DG_PICK(g, fsz), 0, 0);
			dg_insm(g, ZYDIS_MNEMONIC_FLD, &mm, 1, mm.op, dg_i(0), dg_i(0));
			break;
		}
		}
	}
	if (dg_rr(g, 4) == 0) { /* rounding control from memory */
		struct dg_mem cw = dg_mem_form(g, 2, 2, 0);
		int r = dg_pick_other(g, &cw);
		dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(dg_reg(32, r)),
			dg_i(0x37f | dg_rr(g, 4) << 10));
		dg_insm(g, ZYDIS_MNEMONIC_MOV, &cw, 2, cw.op, dg_r(dg_reg(16, r)), dg_i(0));
		dg_insm(g, ZYDIS_MNEMONIC_FLDCW, &cw, 1, cw.op, dg_i(0), dg_i(0));
	}
	int n = 1 + (int)dg_rr(g, 3);
	for (int i = 0; i < n; i++) {
		switch (dg_rr(g, 4)) {
		case 0:
			dg_ins2(g, DG_PICK(g, arith), st0, st1);
			break;
		case 1: { /* st0 op= dword/qword [m] */
			struct dg_mem mm = dg_mem_form(g, dg_rr(g, 2) ? 8 : 4, 0, 0);
			dg_insm(g, DG_PICK(g, arith), &mm, 1, mm.op, dg_i(0), dg_i(0));
			break;
		}
		case 2: {
			ZydisMnemonic m = DG_PICK(g, unary);
			if (m == ZYDIS_MNEMONIC_FXCH)
				dg_ins1(g, m, st1);
			else
				dg_ins0(g, m);
			break;
		}
		default: /* compare into the arithmetic flags, then read them */
			dg_ins2(g, dg_rr(g, 2) ? ZYDIS_MNEMONIC_FCOMI : ZYDIS_MNEMONIC_FUCOMI, st0,
				st1);
			if (dg_rr(g, 2))
				dg_item_simple(g);
			break;
		}
	}
	if (dg_rr(g, 3) == 0)
		dg_ins1(g, ZYDIS_MNEMONIC_FNSTSW, dg_r(ZYDIS_REGISTER_AX));
	/* pop both: stores to memory or fstp st0 */
	for (int i = 0; i < 2; i++) {
		switch (dg_rr(g, 3)) {
		case 0:
			dg_ins1(g, ZYDIS_MNEMONIC_FSTP, st0);
			break;
		case 1: {
			static const int isz[] = {2, 4, 8};
			struct dg_mem mm = dg_mem_form(g, DG_PICK(g, isz), 0, 0);
			dg_insm(g, ZYDIS_MNEMONIC_FISTP, &mm, 1, mm.op, dg_i(0), dg_i(0));
			break;
		}
		default: {
			static const int fsz[] = {4, 8, 10};
			struct dg_mem mm = dg_mem_form(g, DG_PICK(g, fsz), 0, 0);
			dg_insm(g, ZYDIS_MNEMONIC_FSTP, &mm, 1, mm.op, dg_i(0), dg_i(0));
			break;
		}
		}
	}
	if (dg_rr(g, 4) == 0) { /* restore round-to-nearest */
		struct dg_mem cw = dg_mem_form(g, 2, 2, 0);
		int r = dg_pick_other(g, &cw);
		dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(dg_reg(32, r)), dg_i(0x37f));
		dg_insm(g, ZYDIS_MNEMONIC_MOV, &cw, 2, cw.op, dg_r(dg_reg(16, r)), dg_i(0));
		dg_insm(g, ZYDIS_MNEMONIC_FLDCW, &cw, 1, cw.op, dg_i(0), dg_i(0));
	}
}
