/*
 * The differential test's instruction generator (see diffgen.h).
 *
 * Invariants
 *  1. Every memory access of generated code lands in the data area: each
 *     memory operand is preceded by the instructions that set its base and
 *     index registers so the effective address is a chosen target.
 *  2. Generated code never faults natively: divisions have safe operands,
 *     aligned SSE moves/arithmetic and cmpxchg16b get aligned targets, RSP
 *     is never a random operand (item_rsp moves it by small amounts only).
 *  3. Control flow only goes forward or around a bounded counted loop, and
 *     always ends at DG_CODE + len.
 */
#include "tests/xlat/diffgen_int.h"

#include <Zydis/Zydis.h>
#include <string.h>
#include <inttypes.h>
#include <sys/mman.h>

#define RSP 4

static uint64_t rnd(struct dg *g)
{
	uint64_t x = g->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	g->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint32_t dg_rr(struct dg *g, uint32_t n)
{
	return (uint32_t)(rnd(g) % n);
}

static uint8_t *code(void)
{
	return (uint8_t *)(uintptr_t)DG_CODE;
}

int dg_map(void)
{
	void *c = mmap((void *)(uintptr_t)DG_CODE, DG_CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	void *d = mmap((void *)(uintptr_t)DG_DATA, DG_DATA_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	return (c == (void *)(uintptr_t)DG_CODE && d == (void *)(uintptr_t)DG_DATA) ? 0 : -1;
}

static const ZydisRegister r8tab[16] = {
    ZYDIS_REGISTER_AL,	 ZYDIS_REGISTER_CL,   ZYDIS_REGISTER_DL,   ZYDIS_REGISTER_BL,
    ZYDIS_REGISTER_SPL,	 ZYDIS_REGISTER_BPL,  ZYDIS_REGISTER_SIL,  ZYDIS_REGISTER_DIL,
    ZYDIS_REGISTER_R8B,	 ZYDIS_REGISTER_R9B,  ZYDIS_REGISTER_R10B, ZYDIS_REGISTER_R11B,
    ZYDIS_REGISTER_R12B, ZYDIS_REGISTER_R13B, ZYDIS_REGISTER_R14B, ZYDIS_REGISTER_R15B,
};

ZydisRegister dg_reg(int width, int n)
{
	switch (width) {
	case 8:
		return r8tab[n];
	case 16:
		return (ZydisRegister)(ZYDIS_REGISTER_AX + n);
	case 32:
		return (ZydisRegister)(ZYDIS_REGISTER_EAX + n);
	default:
		return (ZydisRegister)(ZYDIS_REGISTER_RAX + n);
	}
}

int dg_rreg(struct dg *g)
{
	int n;
	do
		n = (int)dg_rr(g, 16);
	while (n == RSP);
	return n;
}

int dg_rwidth(struct dg *g, bool no8)
{
	static const int w[4] = {8, 16, 32, 64};
	return no8 ? w[1 + dg_rr(g, 3)] : w[dg_rr(g, 4)];
}

ZydisEncoderOperand dg_r(ZydisRegister r)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof(o));
	o.type = ZYDIS_OPERAND_TYPE_REGISTER;
	o.reg.value = r;
	return o;
}

ZydisEncoderOperand dg_i(int64_t v)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof(o));
	o.type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
	o.imm.s = v;
	return o;
}

/* Encode one instruction at the current end of the code. */
static void emit_req(struct dg *g, ZydisEncoderRequest *req)
{
	ZyanUSize n = ZYDIS_MAX_INSTRUCTION_LENGTH;
	if (g->len + 64 > DG_CODE_SIZE / 2 || ZYAN_FAILED(ZydisEncoderEncodeInstructionAbsolute(
						  req, code() + g->len, &n, DG_CODE + g->len))) {
		if (!g->err)
			fprintf(stderr, "diffgen: encoder refused %s (%u operands)\n",
				ZydisMnemonicGetString(req->mnemonic), req->operand_count);
		g->err = true;
		return;
	}
	g->len += (uint32_t)n;
	g->n_insns++;
}

void dg_ins(struct dg *g, ZydisMnemonic m, ZydisInstructionAttributes pfx, int n,
	    ZydisEncoderOperand a, ZydisEncoderOperand b, ZydisEncoderOperand c)
{
	ZydisEncoderRequest req;
	memset(&req, 0, sizeof(req));
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.mnemonic = m;
	req.prefixes = pfx;
	req.operand_count = (ZyanU8)n;
	req.operands[0] = a;
	req.operands[1] = b;
	req.operands[2] = c;
	emit_req(g, &req);
}

void dg_ins0(struct dg *g, ZydisMnemonic m)
{
	ZydisEncoderOperand z;
	memset(&z, 0, sizeof(z));
	dg_ins(g, m, 0, 0, z, z, z);
}

void dg_ins1(struct dg *g, ZydisMnemonic m, ZydisEncoderOperand a)
{
	ZydisEncoderOperand z;
	memset(&z, 0, sizeof(z));
	dg_ins(g, m, 0, 1, a, z, z);
}

void dg_ins2(struct dg *g, ZydisMnemonic m, ZydisEncoderOperand a, ZydisEncoderOperand b)
{
	ZydisEncoderOperand z;
	memset(&z, 0, sizeof(z));
	dg_ins(g, m, 0, 2, a, b, z);
}

static void raw(struct dg *g, const uint8_t *p, uint32_t n)
{
	memcpy(code() + g->len, p, n);
	g->len += n;
	g->n_insns++;
}

static void set_reg(struct dg *g, int r, uint64_t v)
{
	dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(dg_reg(64, r)), dg_i((int64_t)v));
}

struct dg_mem dg_mem_form(struct dg *g, int size, uint64_t align, uint64_t target)
{
	struct dg_mem m;
	memset(&m, 0, sizeof(m));
	if (!target && !align && size > 1 && dg_rr(g, 8) == 0) {
		/* one access in eight that can straddle: across a page boundary
		 * (the translator's split-access slow path, issue 14 item 2) */
		uint64_t page = DG_DATA + 0x1000 * (1 + dg_rr(g, 5));
		target = page - 1 - dg_rr(g, (uint32_t)size - 1);
	}
	if (!target)
		target = (DG_DATA + 0x400 + dg_rr(g, 0x6000)) & ~(align ? align - 1 : 0);
	m.target = target;
	m.op.type = ZYDIS_OPERAND_TYPE_MEMORY;
	m.op.mem.size = (ZyanU16)size;
	int b, x;
	do
		b = dg_rreg(g);
	while ((g->avoid >> b) & 1);
	do
		x = dg_rreg(g);
	while (x == b || ((g->avoid >> x) & 1));
	static const uint8_t scales[4] = {1, 2, 4, 8};
	uint8_t s = scales[dg_rr(g, 4)];
	int64_t d8 = (int64_t)dg_rr(g, 256) - 128;
	int64_t d32 = (int64_t)dg_rr(g, 0x100000) - 0x80000;
	uint64_t idx = dg_rr(g, 64);
	switch (dg_rr(g, 11)) {
	case 0: /* [B] */
		set_reg(g, b, target);
		m.op.mem.base = dg_reg(64, b);
		break;
	case 1: /* [B + d8] */
		set_reg(g, b, target - (uint64_t)d8);
		m.op.mem.base = dg_reg(64, b);
		m.op.mem.displacement = d8;
		break;
	case 2: /* [B + d32] */
		set_reg(g, b, target - (uint64_t)d32);
		m.op.mem.base = dg_reg(64, b);
		m.op.mem.displacement = d32;
		break;
	case 3: /* [B + I*s + d] */
		set_reg(g, x, idx);
		set_reg(g, b, target - idx * s - (uint64_t)d8);
		m.op.mem.base = dg_reg(64, b);
		m.op.mem.index = dg_reg(64, x);
		m.op.mem.scale = s;
		m.op.mem.displacement = d8;
		break;
	case 4: /* [I*s + d32], no base */
		set_reg(g, x, idx);
		m.op.mem.index = dg_reg(64, x);
		m.op.mem.scale = s;
		m.op.mem.displacement = (int64_t)(target - idx * s);
		break;
	case 5: /* [d32] absolute */
		m.op.mem.displacement = (int64_t)target;
		break;
	case 6: /* [rip + d] */
		m.op.mem.base = ZYDIS_REGISTER_RIP;
		m.op.mem.displacement =
		    (int64_t)target; /* absolute: the encoder makes it relative */
		break;
	case 7: /* %fs:[B + d8] */
		set_reg(g, b, target - DG_FS_BASE - (uint64_t)d8);
		m.op.mem.base = dg_reg(64, b);
		m.op.mem.displacement = d8;
		m.pfx = ZYDIS_ATTRIB_HAS_SEGMENT_FS;
		break;
	case 8: /* %gs:[B + I*s + d8] */
		set_reg(g, x, idx);
		set_reg(g, b, target - DG_GS_BASE - idx * s - (uint64_t)d8);
		m.op.mem.base = dg_reg(64, b);
		m.op.mem.index = dg_reg(64, x);
		m.op.mem.scale = s;
		m.op.mem.displacement = d8;
		m.pfx = ZYDIS_ATTRIB_HAS_SEGMENT_GS;
		break;
	case 9: /* %gs:[d32] */
		m.op.mem.displacement = (int64_t)(target - DG_GS_BASE);
		m.pfx = ZYDIS_ATTRIB_HAS_SEGMENT_GS;
		break;
	default: /* 32-bit addressing [eB + d8] (0x67) */
		set_reg(g, b, target - (uint64_t)d8);
		m.op.mem.base = dg_reg(32, b);
		m.op.mem.displacement = d8;
		break;
	}
	return m;
}

/* A register that is neither the base nor the index of m (nor RSP). */
int dg_pick_other(struct dg *g, const struct dg_mem *m)
{
	for (;;) {
		int r = dg_rreg(g);
		ZydisRegister r64 = dg_reg(64, r), r32 = dg_reg(32, r);
		if (m->op.mem.base == r64 || m->op.mem.base == r32 || m->op.mem.index == r64)
			continue;
		return r;
	}
}

void dg_insm(struct dg *g, ZydisMnemonic mn, const struct dg_mem *m, int n, ZydisEncoderOperand a,
	     ZydisEncoderOperand b, ZydisEncoderOperand c)
{
	dg_ins(g, mn, m->pfx, n, a, b, c);
}

static const ZydisMnemonic alu[] = {
    ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR,  ZYDIS_MNEMONIC_ADC,
    ZYDIS_MNEMONIC_SBB, ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB,
    ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP, ZYDIS_MNEMONIC_TEST,
};
static const ZydisMnemonic shifts[] = {
    ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SAR, ZYDIS_MNEMONIC_ROL,
    ZYDIS_MNEMONIC_ROR, ZYDIS_MNEMONIC_RCL, ZYDIS_MNEMONIC_RCR,
};
static const ZydisMnemonic cmovs[] = {
    ZYDIS_MNEMONIC_CMOVB,  ZYDIS_MNEMONIC_CMOVBE,  ZYDIS_MNEMONIC_CMOVL,  ZYDIS_MNEMONIC_CMOVLE,
    ZYDIS_MNEMONIC_CMOVNB, ZYDIS_MNEMONIC_CMOVNBE, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVNLE,
    ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVNP,  ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVNZ,
    ZYDIS_MNEMONIC_CMOVO,  ZYDIS_MNEMONIC_CMOVP,   ZYDIS_MNEMONIC_CMOVS,  ZYDIS_MNEMONIC_CMOVZ,
};
static const ZydisMnemonic setccs[] = {
    ZYDIS_MNEMONIC_SETB,  ZYDIS_MNEMONIC_SETBE,	 ZYDIS_MNEMONIC_SETL,  ZYDIS_MNEMONIC_SETLE,
    ZYDIS_MNEMONIC_SETNB, ZYDIS_MNEMONIC_SETNBE, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETNLE,
    ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETNP,	 ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETNZ,
    ZYDIS_MNEMONIC_SETO,  ZYDIS_MNEMONIC_SETP,	 ZYDIS_MNEMONIC_SETS,  ZYDIS_MNEMONIC_SETZ,
};
static const ZydisMnemonic jccs[] = {
    ZYDIS_MNEMONIC_JB,	ZYDIS_MNEMONIC_JBE,  ZYDIS_MNEMONIC_JL,	 ZYDIS_MNEMONIC_JLE,
    ZYDIS_MNEMONIC_JNB, ZYDIS_MNEMONIC_JNBE, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JNLE,
    ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JNP,  ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JNZ,
    ZYDIS_MNEMONIC_JO,	ZYDIS_MNEMONIC_JP,   ZYDIS_MNEMONIC_JS,	 ZYDIS_MNEMONIC_JZ,
};

#define DG_PICK(g, a) (a)[dg_rr(g, (uint32_t)(sizeof(a) / sizeof((a)[0])))]

static bool lockable(ZydisMnemonic m)
{
	return m != ZYDIS_MNEMONIC_CMP && m != ZYDIS_MNEMONIC_TEST;
}

void dg_item_alu(struct dg *g)
{
	int w = dg_rwidth(g, false);
	ZydisMnemonic m = DG_PICK(g, alu);
	switch (dg_rr(g, 5)) {
	case 0:
		dg_ins2(g, m, dg_r(dg_reg(w, dg_rreg(g))), dg_r(dg_reg(w, dg_rreg(g))));
		break;
	case 1:
		dg_ins2(g, m, dg_r(dg_reg(w, dg_rreg(g))),
			dg_i(w == 8 ? (int64_t)dg_rr(g, 256) - 128
				    : (int64_t)dg_rr(g, 0x10000) - 0x8000));
		break;
	case 2: { /* reg, [mem] */
		struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
		if (m == ZYDIS_MNEMONIC_TEST)
			dg_insm(g, m, &mm, 2, mm.op, dg_r(dg_reg(w, dg_rreg(g))), dg_i(0));
		else
			dg_insm(g, m, &mm, 2, dg_r(dg_reg(w, dg_rreg(g))), mm.op, dg_i(0));
		break;
	}
	case 3: { /* [mem], reg (lock'ed sometimes) */
		struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
		if (lockable(m) && dg_rr(g, 3) == 0)
			mm.pfx |= ZYDIS_ATTRIB_HAS_LOCK;
		dg_insm(g, m, &mm, 2, mm.op, dg_r(dg_reg(w, dg_rreg(g))), dg_i(0));
		break;
	}
	default: { /* [mem], imm (lock'ed sometimes) */
		struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
		if (lockable(m) && dg_rr(g, 3) == 0)
			mm.pfx |= ZYDIS_ATTRIB_HAS_LOCK;
		dg_insm(g, m, &mm, 2, mm.op, dg_i((int64_t)dg_rr(g, 200) - 100), dg_i(0));
		break;
	}
	}
}

static void item_shift(struct dg *g)
{
	int w = dg_rwidth(g, false);
	ZydisMnemonic m = DG_PICK(g, shifts);
	ZydisEncoderOperand cnt;
	switch (dg_rr(g, 3)) {
	case 0:
		cnt = dg_i(1);
		break;
	case 1:
		cnt = dg_i(dg_rr(g, 70));
		break;
	default:
		dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(ZYDIS_REGISTER_CL), dg_i(dg_rr(g, 80)));
		cnt = dg_r(ZYDIS_REGISTER_CL);
		break;
	}
	if (dg_rr(g, 2)) {
		int r;
		do
			r = dg_rreg(g);
		while (cnt.type == ZYDIS_OPERAND_TYPE_REGISTER && r == 1 && w == 8);
		dg_ins2(g, m, dg_r(dg_reg(w, r)), cnt);
	} else {
		struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
		dg_insm(g, m, &mm, 2, mm.op, cnt, dg_i(0));
	}
}

static void item_muldiv(struct dg *g)
{
	int w = dg_rwidth(g, true);
	switch (dg_rr(g, 5)) {
	case 0: { /* mul/imul r/m, one operand */
		ZydisMnemonic m = dg_rr(g, 2) ? ZYDIS_MNEMONIC_MUL : ZYDIS_MNEMONIC_IMUL;
		if (dg_rr(g, 2)) {
			dg_ins1(g, m, dg_r(dg_reg(w, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
			dg_insm(g, m, &mm, 1, mm.op, dg_i(0), dg_i(0));
		}
		break;
	}
	case 1: /* imul r, r/m */
		if (dg_rr(g, 2)) {
			dg_ins2(g, ZYDIS_MNEMONIC_IMUL, dg_r(dg_reg(w, dg_rreg(g))),
				dg_r(dg_reg(w, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
			dg_insm(g, ZYDIS_MNEMONIC_IMUL, &mm, 2, dg_r(dg_reg(w, dg_rreg(g))), mm.op,
				dg_i(0));
		}
		break;
	case 2: /* imul r, r/m, imm */
		dg_ins(g, ZYDIS_MNEMONIC_IMUL, 0, 3, dg_r(dg_reg(w, dg_rreg(g))),
		       dg_r(dg_reg(w, dg_rreg(g))), dg_i((int64_t)dg_rr(g, 2000) - 1000));
		break;
	default: { /* div/idiv with a safe dividend and a non-zero divisor */
		bool sign = dg_rr(g, 2);
		int ww = dg_rr(g, 2) ? 64 : 32;
		int d;
		do
			d = dg_rreg(g);
		while (d == 0 || d == 2);
		int64_t dv = (int64_t)dg_rr(g, 100000) + 1;
		if (sign && dg_rr(g, 2))
			dv = -dv;
		if (sign) {
			set_reg(g, 0, (uint64_t)((int64_t)dg_rr(g, 0x7fffffff) - 0x3fffffff));
			dg_ins0(g, ww == 64 ? ZYDIS_MNEMONIC_CQO : ZYDIS_MNEMONIC_CDQ);
		} else {
			dg_ins2(g, ZYDIS_MNEMONIC_XOR, dg_r(ZYDIS_REGISTER_EDX),
				dg_r(ZYDIS_REGISTER_EDX));
			set_reg(g, 0, rnd(g) >> (ww == 64 ? 0 : 32));
		}
		ZydisMnemonic m = sign ? ZYDIS_MNEMONIC_IDIV : ZYDIS_MNEMONIC_DIV;
		if (dg_rr(g, 2)) {
			set_reg(g, d, (uint64_t)dv);
			dg_ins1(g, m, dg_r(dg_reg(ww, d)));
		} else {
			g->avoid = 1u << 0 | 1u << 2;
			struct dg_mem mm = dg_mem_form(g, ww / 8, 0, 0);
			g->avoid = 0;
			do
				d = dg_pick_other(g, &mm);
			while (d == 0 || d == 2);
			set_reg(g, d, (uint64_t)dv);
			dg_insm(g, ZYDIS_MNEMONIC_MOV, &mm, 2, mm.op, dg_r(dg_reg(ww, d)), dg_i(0));
			dg_insm(g, m, &mm, 1, mm.op, dg_i(0), dg_i(0));
		}
		break;
	}
	}
}

static void item_bits(struct dg *g)
{
	static const ZydisMnemonic bt[] = {ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS,
					   ZYDIS_MNEMONIC_BTR, ZYDIS_MNEMONIC_BTC};
	int w = dg_rwidth(g, true);
	switch (dg_rr(g, 5)) {
	case 0:
		dg_ins2(g, DG_PICK(g, bt), dg_r(dg_reg(w, dg_rreg(g))),
			dg_r(dg_reg(w, dg_rreg(g))));
		break;
	case 1: {
		struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
		dg_insm(g, DG_PICK(g, bt), &mm, 2, mm.op, dg_i(dg_rr(g, (uint32_t)w)), dg_i(0));
		break;
	}
	case 2: { /* bt [mem], reg: the offset reaches outside the operand */
		struct dg_mem mm = dg_mem_form(g, w / 8, 0, DG_DATA + 0x2000 + dg_rr(g, 0x2000));
		int o = dg_pick_other(g, &mm);
		set_reg(g, o, (uint64_t)((int64_t)dg_rr(g, 2048) - 1024));
		dg_insm(g, DG_PICK(g, bt), &mm, 2, mm.op, dg_r(dg_reg(w, o)), dg_i(0));
		break;
	}
	default: {
		ZydisMnemonic m = dg_rr(g, 2) ? ZYDIS_MNEMONIC_BSF : ZYDIS_MNEMONIC_BSR;
		if (dg_rr(g, 2)) {
			dg_ins2(g, m, dg_r(dg_reg(w, dg_rreg(g))), dg_r(dg_reg(w, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
			dg_insm(g, m, &mm, 2, dg_r(dg_reg(w, dg_rreg(g))), mm.op, dg_i(0));
		}
		break;
	}
	}
}

static void item_cond(struct dg *g)
{
	int w = dg_rwidth(g, true);
	if (dg_rr(g, 2)) {
		if (dg_rr(g, 2)) {
			dg_ins2(g, DG_PICK(g, cmovs), dg_r(dg_reg(w, dg_rreg(g))),
				dg_r(dg_reg(w, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
			dg_insm(g, DG_PICK(g, cmovs), &mm, 2, dg_r(dg_reg(w, dg_rreg(g))), mm.op,
				dg_i(0));
		}
	} else {
		if (dg_rr(g, 2)) {
			dg_ins1(g, DG_PICK(g, setccs), dg_r(dg_reg(8, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, 1, 0, 0);
			dg_insm(g, DG_PICK(g, setccs), &mm, 1, mm.op, dg_i(0), dg_i(0));
		}
	}
}

static void item_atomic(struct dg *g)
{
	int w = dg_rwidth(g, false);
	static const ZydisMnemonic m3[] = {ZYDIS_MNEMONIC_XCHG, ZYDIS_MNEMONIC_CMPXCHG,
					   ZYDIS_MNEMONIC_XADD};
	ZydisMnemonic m = DG_PICK(g, m3);
	if (dg_rr(g, 3) == 0) {
		dg_ins2(g, m, dg_r(dg_reg(w, dg_rreg(g))), dg_r(dg_reg(w, dg_rreg(g))));
		return;
	}
	struct dg_mem mm = dg_mem_form(g, w / 8, 0, 0);
	if (m != ZYDIS_MNEMONIC_XCHG && dg_rr(g, 2))
		mm.pfx |= ZYDIS_ATTRIB_HAS_LOCK;
	dg_insm(g, m, &mm, 2, mm.op, dg_r(dg_reg(w, dg_rreg(g))), dg_i(0));
}

static void item_ext(struct dg *g)
{
	int dw = dg_rr(g, 2) ? 64 : 32;
	switch (dg_rr(g, 3)) {
	case 0:
	case 1: {
		ZydisMnemonic m = dg_rr(g, 2) ? ZYDIS_MNEMONIC_MOVZX : ZYDIS_MNEMONIC_MOVSX;
		int sw = dg_rr(g, 2) ? 8 : 16;
		if (dg_rr(g, 2)) {
			dg_ins2(g, m, dg_r(dg_reg(dw, dg_rreg(g))), dg_r(dg_reg(sw, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, sw / 8, 0, 0);
			dg_insm(g, m, &mm, 2, dg_r(dg_reg(dw, dg_rreg(g))), mm.op, dg_i(0));
		}
		break;
	}
	default:
		if (dg_rr(g, 2)) {
			dg_ins2(g, ZYDIS_MNEMONIC_MOVSXD, dg_r(dg_reg(64, dg_rreg(g))),
				dg_r(dg_reg(32, dg_rreg(g))));
		} else {
			struct dg_mem mm = dg_mem_form(g, 4, 0, 0);
			dg_insm(g, ZYDIS_MNEMONIC_MOVSXD, &mm, 2, dg_r(dg_reg(64, dg_rreg(g))),
				mm.op, dg_i(0));
		}
		break;
	}
}

/* String instructions in raw bytes: [seg][66][rep][REX.W] opcode. */
static void item_string(struct dg *g)
{
	static const uint8_t ops[5] = {0xa4, 0xaa, 0xac, 0xa6, 0xae}; /* movs stos lods cmps scas */
	int k = (int)dg_rr(g, 5);
	int sz = 1 << dg_rr(g, 4);
	bool rep = dg_rr(g, 3) != 0;
	bool df = dg_rr(g, 3) == 0;
	bool fs = (k == 0 || k == 2 || k == 3) && dg_rr(g, 4) == 0;
	uint64_t src = DG_DATA + 0x3000 + dg_rr(g, 0x800);
	uint64_t dst = DG_DATA + 0x4000 + dg_rr(g, 0x800);
	if (dg_rr(g, 4) == 0)
		dst = src + dg_rr(g, 16); /* overlapping movs */
	set_reg(g, 6, fs ? src - DG_FS_BASE : src);
	set_reg(g, 7, dst);
	/* RCX = 0 in a quarter of the cases: a rep prefix then runs no
	 * iteration and cmps/scas write no flag */
	set_reg(g, 1, dg_rr(g, 4) == 0 ? 0 : dg_rr(g, 24));
	if (k == 3 || k == 4) /* give cmps/scas equal runs sometimes */
		set_reg(g, 0, dg_rr(g, 2) ? 0 : rnd(g));
	if (k == 1) /* stos of an element whose bytes are all equal, or not */
		set_reg(g, 0, dg_rr(g, 2) ? (rnd(g) & 0xff) * 0x0101010101010101ull : rnd(g));
	/* half the time (no segment) both ranges are touched first, so their
	 * pages are in the TLB: an inline rep movs/stos (XLAT_VERSION 16)
	 * runs only then; mov r8b, [rsi] ; mov r8b, [rdi] */
	if (!fs && dg_rr(g, 2)) {
		static const uint8_t warm[6] = {0x44, 0x8a, 0x06, 0x44, 0x8a, 0x07};
		raw(g, warm, sizeof(warm));
	}
	dg_ins0(g, df ? ZYDIS_MNEMONIC_STD : ZYDIS_MNEMONIC_CLD);
	uint8_t b[6];
	uint32_t n = 0;
	if (fs)
		b[n++] = 0x64;
	if (sz == 2)
		b[n++] = 0x66;
	if (rep)
		b[n++] = (k >= 3 && dg_rr(g, 2)) ? 0xf2 : 0xf3;
	if (sz == 8)
		b[n++] = 0x48;
	b[n++] = (uint8_t)(ops[k] + (sz > 1));
	raw(g, b, n);
}

static void item_stack(struct dg *g)
{
	switch (dg_rr(g, 4)) {
	case 0:
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_r(dg_reg(64, dg_rreg(g))));
		break;
	case 1:
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_i((int64_t)dg_rr(g, 0x100000) - 0x80000));
		break;
	case 2: {
		struct dg_mem mm = dg_mem_form(g, 8, 0, 0);
		dg_insm(g, ZYDIS_MNEMONIC_PUSH, &mm, 1, mm.op, dg_i(0), dg_i(0));
		break;
	}
	default:
		dg_ins0(g, ZYDIS_MNEMONIC_PUSHFQ);
		break;
	}
	if (dg_rr(g, 4) == 0) {
		/* popf of arithmetic flags and DF (IF stays 1; never TF/AC) */
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_i((int64_t)((rnd(g) & 0xcd5) | 0x202)));
		dg_ins0(g, ZYDIS_MNEMONIC_POPFQ);
	}
	if (dg_rr(g, 2))
		dg_item_alu(g);
	switch (dg_rr(g, 4)) {
	case 0: { /* pop to memory */
		struct dg_mem mm = dg_mem_form(g, 8, 0, 0);
		dg_insm(g, ZYDIS_MNEMONIC_POP, &mm, 1, mm.op, dg_i(0), dg_i(0));
		break;
	}
	case 1: { /* pop [rsp+d]: the address uses the incremented RSP */
		ZydisEncoderOperand m;
		memset(&m, 0, sizeof(m));
		m.type = ZYDIS_OPERAND_TYPE_MEMORY;
		m.mem.base = ZYDIS_REGISTER_RSP;
		m.mem.displacement = 8 * (int64_t)dg_rr(g, 3) - 8;
		m.mem.size = 8;
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_i(0x77));
		dg_ins1(g, ZYDIS_MNEMONIC_POP, m);
		dg_ins1(g, ZYDIS_MNEMONIC_POP, dg_r(dg_reg(64, dg_rreg(g))));
		break;
	}
	default:
		dg_ins1(g, ZYDIS_MNEMONIC_POP, dg_r(dg_reg(64, dg_rreg(g))));
		break;
	}
}

/* AH/BH/CH/DH with memory operands (no REX prefix allowed). */
static void item_high8(struct dg *g)
{
	static const ZydisRegister hi[4] = {ZYDIS_REGISTER_AH, ZYDIS_REGISTER_BH, ZYDIS_REGISTER_CH,
					    ZYDIS_REGISTER_DH};
	g->avoid = 0xff00;
	struct dg_mem mm = dg_mem_form(g, 1, 0, 0);
	g->avoid = 0;
	ZydisRegister h = hi[dg_rr(g, 4)];
	if (dg_rr(g, 2))
		dg_insm(g, DG_PICK(g, alu), &mm, 2, mm.op, dg_r(h), dg_i(0));
	else
		dg_insm(g, dg_rr(g, 2) ? ZYDIS_MNEMONIC_MOV : ZYDIS_MNEMONIC_ADD, &mm, 2, dg_r(h),
			mm.op, dg_i(0));
}

static void patch32(uint32_t at, uint32_t v)
{
	memcpy(code() + at, &v, 4);
}

/* Branch with a placeholder displacement: returns the offset of its rel. */
static uint32_t branch(struct dg *g, ZydisMnemonic m, int width)
{
	ZydisEncoderRequest req;
	memset(&req, 0, sizeof(req));
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.mnemonic = m;
	req.branch_type = width == 8 ? ZYDIS_BRANCH_TYPE_SHORT : ZYDIS_BRANCH_TYPE_NEAR;
	req.branch_width = width == 8 ? ZYDIS_BRANCH_WIDTH_8 : ZYDIS_BRANCH_WIDTH_32;
	req.operand_count = 1;
	req.operands[0] = dg_i((int64_t)(DG_CODE + g->len + 2)); /* absolute, patched later */
	if (m == ZYDIS_MNEMONIC_JECXZ)
		req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_32;
	emit_req(g, &req);
	return g->len - (width == 8 ? 1 : 4);
}

static void patch_to_here(struct dg *g, uint32_t rel_at, int width)
{
	int64_t d = (int64_t)g->len - (int64_t)(rel_at + (width == 8 ? 1 : 4));
	if (width == 8) {
		if (d > 127) {
			g->err = true;
			return;
		}
		code()[rel_at] = (uint8_t)(int8_t)d;
	} else {
		patch32(rel_at, (uint32_t)(int32_t)d);
	}
}

void dg_item_simple(struct dg *g)
{
	switch (dg_rr(g, 3)) {
	case 0:
		dg_item_alu(g);
		break;
	case 1:
		item_ext(g);
		break;
	default:
		item_cond(g);
		break;
	}
}

/* call/ret pairs: direct, through a register, through memory, ret imm16. */
static void item_call(struct dg *g)
{
	int kind = (int)dg_rr(g, 4);
	int r = dg_rreg(g);
	bool ret_imm = kind == 0 && dg_rr(g, 2);
	if (ret_imm)
		dg_ins1(g, ZYDIS_MNEMONIC_PUSH, dg_i(0x1234));
	uint32_t fix_mov = 0, call_rel = 0;
	struct dg_mem mm;
	if (kind == 0) {
		call_rel = branch(g, ZYDIS_MNEMONIC_CALL, 32);
	} else {
		if (kind == 1) {
			dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(dg_reg(32, r)),
				dg_i(0x7fffffff)); /* placeholder */
			fix_mov = g->len - 4;
			dg_ins1(g, ZYDIS_MNEMONIC_CALL, dg_r(dg_reg(64, r)));
		} else {
			mm = dg_mem_form(g, 8, 0, 0);
			r = dg_pick_other(g, &mm);
			dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(dg_reg(32, r)),
				dg_i(0x7fffffff)); /* placeholder */
			fix_mov = g->len - 4;
			dg_insm(g, ZYDIS_MNEMONIC_MOV, &mm, 2, mm.op, dg_r(dg_reg(64, r)), dg_i(0));
			dg_insm(g, ZYDIS_MNEMONIC_CALL, &mm, 1, mm.op, dg_i(0), dg_i(0));
		}
	}
	uint32_t jmp_rel = branch(g, ZYDIS_MNEMONIC_JMP, 8);
	uint32_t fn = g->len;
	dg_item_simple(g);
	if (ret_imm)
		dg_ins1(g, ZYDIS_MNEMONIC_RET, dg_i(8));
	else
		dg_ins0(g, ZYDIS_MNEMONIC_RET);
	patch_to_here(g, jmp_rel, 8);
	if (kind == 0)
		patch32(call_rel, fn - (call_rel + 4));
	else
		patch32(fix_mov, (uint32_t)(DG_CODE + fn));
}

static void item_lea(struct dg *g)
{
	struct dg_mem mm = dg_mem_form(g, 8, 0, 0);
	if (mm.pfx) /* lea ignores segments: drop the override */
		mm.pfx = 0;
	int w = dg_rr(g, 3) ? 64 : 32;
	if (ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, mm.op.mem.base) == 32)
		mm.op.mem.size = 4; /* AGEN operand size = address size */
	dg_insm(g, ZYDIS_MNEMONIC_LEA, &mm, 2, dg_r(dg_reg(w, dg_rreg(g))), mm.op, dg_i(0));
}

static void item_sse(struct dg *g)
{
	ZydisRegister x = (ZydisRegister)(ZYDIS_REGISTER_XMM0 + dg_rr(g, 16));
	switch (dg_rr(g, 3)) {
	case 0: {
		struct dg_mem a = dg_mem_form(g, 16, 0, 0);
		dg_insm(g, ZYDIS_MNEMONIC_MOVDQU, &a, 2, dg_r(x), a.op, dg_i(0));
		struct dg_mem b = dg_mem_form(g, 16, 0, 0);
		dg_insm(g, ZYDIS_MNEMONIC_MOVDQU, &b, 2, b.op, dg_r(x), dg_i(0));
		break;
	}
	case 1: {
		struct dg_mem a = dg_mem_form(g, 16, 16, 0);
		dg_insm(g, ZYDIS_MNEMONIC_MOVAPS, &a, 2, dg_r(x), a.op, dg_i(0));
		struct dg_mem b = dg_mem_form(g, 16, 16, 0);
		dg_insm(g, ZYDIS_MNEMONIC_MOVAPS, &b, 2, b.op, dg_r(x), dg_i(0));
		break;
	}
	default: {
		struct dg_mem a = dg_mem_form(g, 8, 0, 0);
		dg_insm(g, ZYDIS_MNEMONIC_MOVQ, &a, 2, dg_r(x), a.op, dg_i(0));
		if (dg_rr(g, 2)) {
			struct dg_mem b = dg_mem_form(g, 8, 0, 0);
			dg_insm(g, ZYDIS_MNEMONIC_MOVQ, &b, 2, b.op, dg_r(x), dg_i(0));
		} else {
			dg_ins2(g, ZYDIS_MNEMONIC_MOVQ, dg_r(dg_reg(64, dg_rreg(g))), dg_r(x));
		}
		break;
	}
	}
}

/* Forward skips (jcc, jrcxz/jecxz, loop), an indirect forward jmp, and a
 * short counted loop (backward jnz / loop). */
static void item_branch(struct dg *g)
{
	switch (dg_rr(g, 6)) {
	case 0:
	case 1: {
		uint32_t rel = branch(g, DG_PICK(g, jccs), 8);
		dg_item_simple(g);
		patch_to_here(g, rel, 8);
		break;
	}
	case 2: {
		static const ZydisMnemonic lm[] = {ZYDIS_MNEMONIC_JRCXZ, ZYDIS_MNEMONIC_JECXZ,
						   ZYDIS_MNEMONIC_LOOP, ZYDIS_MNEMONIC_LOOPE,
						   ZYDIS_MNEMONIC_LOOPNE};
		if (dg_rr(g, 2))
			set_reg(g, 1, dg_rr(g, 3));
		uint32_t rel = branch(g, DG_PICK(g, lm), 8);
		dg_item_alu(g);
		patch_to_here(g, rel, 8);
		break;
	}
	case 3: { /* jmp reg forward */
		int r = dg_rreg(g);
		dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(dg_reg(32, r)), dg_i(0x7fffffff));
		uint32_t fix = g->len - 4;
		dg_ins1(g, ZYDIS_MNEMONIC_JMP, dg_r(dg_reg(64, r)));
		dg_item_alu(g);
		patch32(fix, (uint32_t)(DG_CODE + g->len));
		break;
	}
	case 4: { /* jmp [m] forward */
		struct dg_mem mm = dg_mem_form(g, 8, 0, 0);
		int r = dg_pick_other(g, &mm);
		dg_ins2(g, ZYDIS_MNEMONIC_MOV, dg_r(dg_reg(32, r)), dg_i(0x7fffffff));
		uint32_t fix = g->len - 4;
		dg_insm(g, ZYDIS_MNEMONIC_MOV, &mm, 2, mm.op, dg_r(dg_reg(64, r)), dg_i(0));
		dg_insm(g, ZYDIS_MNEMONIC_JMP, &mm, 1, mm.op, dg_i(0), dg_i(0));
		dg_item_alu(g);
		patch32(fix, (uint32_t)(DG_CODE + g->len));
		break;
	}
	default: { /* counted loop */
		int cnt = 1 + (int)dg_rr(g, 5);
		bool use_loop = dg_rr(g, 2);
		set_reg(g, 1, (uint64_t)cnt);
		uint32_t top = g->len;
		int r;
		do
			r = dg_rreg(g);
		while (r == 1);
		dg_ins2(g, ZYDIS_MNEMONIC_ADD, dg_r(dg_reg(64, r)), dg_i((int64_t)dg_rr(g, 1000)));
		if (!use_loop)
			dg_ins1(g, ZYDIS_MNEMONIC_DEC, dg_r(ZYDIS_REGISTER_ECX));
		uint32_t rel = branch(g, use_loop ? ZYDIS_MNEMONIC_LOOP : ZYDIS_MNEMONIC_JNZ, 8);
		code()[rel] = (uint8_t)(int8_t)((int64_t)top - (int64_t)(rel + 1));
		break;
	}
	}
}

void dg_generate(struct dg *g, uint64_t seed, struct xh_state *init)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull; /* splitmix64 of the seed */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	g->rng = (z ^ (z >> 31)) | 1;
	g->len = 0;
	g->n_insns = 0;
	g->err = false;
	for (size_t i = 0; i < DG_DATA_SIZE; i += 8) {
		uint64_t v = rnd(g);
		memcpy(g->mem0 + i, &v, 8);
	}
	for (int i = 0; i < 16; i++)
		init->gpr[i] = rnd(g);
	init->gpr[RSP] = DG_STACK_TOP - 8 * dg_rr(g, 16);
	init->rflags = (rnd(g) & 0x8d5) | 0x202;
	/* x87/SSE: this thread's own image (valid MXCSR/FCW), random XMM0-15 */
	__asm__ volatile("fxsave64 %0" : "=m"(init->fx));
	for (size_t i = DG_FX_XMM; i < DG_FX_XMM + 256; i += 8) {
		uint64_t v = rnd(g);
		memcpy(init->fx + i, &v, 8);
	}
	int items = 3 + (int)dg_rr(g, 20);
	for (int i = 0; i < items && !g->err; i++) {
		switch (dg_rr(g, 21)) {
		case 20:
			dg_item_x87(g);
			break;
		case 14:
		case 15:
			dg_item_unary(g);
			break;
		case 16:
			dg_item_shd(g);
			break;
		case 17:
			if (dg_rr(g, 2))
				dg_item_count(g);
			else
				dg_item_cmpxchg_wide(g);
			break;
		case 18:
			dg_item_rsp(g);
			break;
		case 19:
			dg_item_sse_arith(g);
			break;
		case 0:
		case 1:
			dg_item_alu(g);
			break;
		case 2:
			item_shift(g);
			break;
		case 3:
			item_muldiv(g);
			break;
		case 4:
			item_bits(g);
			break;
		case 5:
			item_cond(g);
			break;
		case 6:
			item_atomic(g);
			break;
		case 7:
			item_ext(g);
			break;
		case 8:
			item_string(g);
			break;
		case 9:
			item_stack(g);
			break;
		case 10:
			item_call(g);
			break;
		case 11:
			item_lea(g);
			break;
		case 12:
			if (dg_rr(g, 3) == 0)
				item_high8(g);
			else
				item_sse(g);
			break;
		default:
			item_branch(g);
			break;
		}
	}
	/* native tail: jmp *[rip+0]; .quad xh_native_ret */
	static const uint8_t tail[6] = {0xff, 0x25, 0, 0, 0, 0};
	memcpy(code() + g->len, tail, 6);
	uint64_t ret = (uint64_t)(uintptr_t)xh_native_ret;
	memcpy(code() + g->len + 6, &ret, 8);
}

void dg_print(const struct dg *g, FILE *f)
{
	ZydisDisassembledInstruction in;
	uint32_t off = 0;
	while (off < g->len) {
		if (ZYAN_FAILED(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, DG_CODE + off,
						      code() + off, g->len - off, &in))) {
			fprintf(f, "  %08llx  (bad)\n", (unsigned long long)(DG_CODE + off));
			off++;
			continue;
		}
		fprintf(f, "  %08llx  %s\n", (unsigned long long)(DG_CODE + off), in.text);
		off += in.info.length;
	}
}
