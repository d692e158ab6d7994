/*
 * What each guest instruction becomes: one function per instruction class
 * (DynamoRIO's mangle_* split; the classifier is xlat_class.c).
 *
 * Invariants
 *  1. Host RSP is guest RSP (a guest address): nothing here uses the host
 *     stack implicitly; implicit stack accesses become soft-MMU accesses,
 *     call-outs switch to vcpu.host_rsp explicitly.
 *  2. Scratch registers are registers the instruction does not name; they
 *     are saved in vcpu.spill[] when live (always, with XLAT_OPT_EXACT_FAULTS)
 *     and restored before the instruction's effect becomes visible; flags
 *     are saved around the soft-MMU probe when live.
 *  3. Every access that can fault happens before the instruction changes
 *     any guest state, so a fault restarts the instruction exactly.
 *  4. Guest-visible return addresses and exit targets are guest addresses.
 */
#include "pretrans/xlat/xlat_int.h"

#include <string.h>

#define MASK_RSP (1u << VCPU_RSP)

/* Preference order for scratch registers (deterministic). */
static const int scratch_order[] = {11, 10, 9, 8, 0, 1, 2, 6, 7, 3, 5, 12, 13, 14, 15};

static const ZydisRegister gpr8[16] = {
    ZYDIS_REGISTER_AL,	 ZYDIS_REGISTER_CL,   ZYDIS_REGISTER_DL,   ZYDIS_REGISTER_BL,
    ZYDIS_REGISTER_SPL,	 ZYDIS_REGISTER_BPL,  ZYDIS_REGISTER_SIL,  ZYDIS_REGISTER_DIL,
    ZYDIS_REGISTER_R8B,	 ZYDIS_REGISTER_R9B,  ZYDIS_REGISTER_R10B, ZYDIS_REGISTER_R11B,
    ZYDIS_REGISTER_R12B, ZYDIS_REGISTER_R13B, ZYDIS_REGISTER_R14B, ZYDIS_REGISTER_R15B,
};

/* ------------------------------------------------------------------ */

static bool uses_high8(const struct xlat_insn *in)
{
	for (int i = 0; i < in->d.operand_count; i++) {
		if (in->ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		ZydisRegister r = in->ops[i].reg.value;
		if (r == ZYDIS_REGISTER_AH || r == ZYDIS_REGISTER_BH || r == ZYDIS_REGISTER_CH ||
		    r == ZYDIS_REGISTER_DH)
			return true;
	}
	return false;
}

static void pick_scratch_pend(const struct xlat_insn *in, int n, uint32_t exclude, uint32_t pend,
			      struct xlat_scratch *s)
{
	uint32_t avoid = in->regs_used | exclude | MASK_RSP;
	s->n = 0;
	s->spilled = 0;
	/* AH/BH/CH/DH cannot be encoded with a REX prefix: the register that
	 * replaces the memory operand (the first scratch) must be rax..rdi */
	if (uses_high8(in)) {
		for (int pass = 0; pass < 3 && s->n < 1; pass++) {
			for (int r = 0; r < 8 && s->n < 1; r++) {
				bool live = (in->live_out >> r) & 1;
				int want = ((pend >> r) & 1) ? 0 : (live ? 2 : 1);
				if ((avoid >> r) & 1 || want != pass)
					continue;
				s->r[0] = r;
				s->reg[0] = xe_gpr64(r);
				s->n = 1;
				avoid |= 1u << r;
			}
		}
	}
	/* registers already spilled (pending) first, then dead ones, then live */
	for (int pass = 0; pass < 3 && s->n < n; pass++) {
		for (size_t i = 0; i < BT_ARRAY_SIZE(scratch_order) && s->n < n; i++) {
			int r = scratch_order[i];
			bool live = (in->live_out >> r) & 1;
			bool pending = (pend >> r) & 1;
			int want = pending ? 0 : (live ? 2 : 1);
			if ((avoid >> r) & 1 || want != pass)
				continue;
			s->r[s->n] = r;
			s->reg[s->n] = xe_gpr64(r);
			s->n++;
			avoid |= 1u << r;
		}
	}
}

/* Choose n scratch registers for `in`, reusing those already pending, and
 * spill the new ones when live; save the flags when asked and not already
 * saved.  Everything stays pending afterwards (restored by xlat_mangle when
 * a later instruction needs it, or by xlat_flush_pending). */
void xlat_begin_scratch(struct xe *e, const struct xlat_insn *in, int n, struct xlat_scratch *s,
			bool save_flags)
{
	pick_scratch_pend(in, n, 0, e->pend_regs, s);
	struct xlat_scratch fresh = *s;
	fresh.n = 0;
	for (int i = 0; i < s->n; i++)
		if (!((e->pend_regs >> s->r[i]) & 1)) {
			fresh.r[fresh.n] = s->r[i];
			fresh.reg[fresh.n] = s->reg[i];
			fresh.n++;
		}
	xe_spill(e, &fresh, in->live_out);
	e->pend_regs |= fresh.spilled;
	if (save_flags && !e->pend_flags) {
		/* every scratch register is free now: spilled, pending or dead */
		xe_flags_save(e, s->n > 0 ? s->reg[s->n - 1] : ZYDIS_REGISTER_NONE);
		e->pend_flags = true;
	}
}

static void addr_from_operand(const struct xlat_insn *in, const ZydisDecodedOperand *o,
			      struct xlat_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->seg = (o->mem.segment == ZYDIS_REGISTER_FS || o->mem.segment == ZYDIS_REGISTER_GS)
		     ? o->mem.segment
		     : 0;
	if (o->mem.base == ZYDIS_REGISTER_RIP) {
		a->absolute = true;
		a->disp = (int64_t)(in->va + in->d.length + (uint64_t)o->mem.disp.value);
		a->v = xe_val_disp(in, true);
		return;
	}
	if (o->mem.base == ZYDIS_REGISTER_EIP) {
		a->absolute = true;
		a->disp = (int64_t)(uint32_t)(in->va + in->d.length + (uint64_t)o->mem.disp.value);
		a->v = xe_val_disp(in, true);
		a->v.flags |= XV_T32;
		return;
	}
	a->v = xe_val_disp(in, false);
	if (o->mem.base == ZYDIS_REGISTER_NONE && o->mem.index == ZYDIS_REGISTER_NONE &&
	    in->d.address_width == 64) {
		a->absolute = true; /* disp32 sign-extended or moffs64 */
		a->disp = o->mem.disp.value;
		return;
	}
	a->base = o->mem.base;
	a->index = o->mem.index;
	a->scale = o->mem.scale;
	a->disp = o->mem.disp.value;
	a->addr32 = in->d.address_width == 32;
}

static void rsp_addr(struct xlat_addr *a, int64_t disp)
{
	memset(a, 0, sizeof(*a));
	a->base = ZYDIS_REGISTER_RSP;
	a->disp = disp;
}

static void emit_lea_rsp(struct xe *e, int64_t delta)
{
	ZydisEncoderOperand r = xe_r(ZYDIS_REGISTER_RSP);
	ZydisEncoderOperand m = xe_m(8, ZYDIS_REGISTER_RSP, ZYDIS_REGISTER_NONE, 0, delta);
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &r, &m, NULL);
}

/* mov [A], src (size 8), mov dst, [A] */
static void emit_store64(struct xe *e, ZydisRegister A, ZydisEncoderOperand src)
{
	ZydisEncoderOperand m = xe_m(8, A, ZYDIS_REGISTER_NONE, 0, 0);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &m, &src, NULL);
}

static void emit_load64(struct xe *e, ZydisRegister dst, ZydisRegister A)
{
	ZydisEncoderOperand d = xe_r(dst);
	ZydisEncoderOperand m = xe_m(8, A, ZYDIS_REGISTER_NONE, 0, 0);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &d, &m, NULL);
}

/* F3 0F BC decodes as `rep bsf` (the vCPU has no BMI1, xlat_facts.c) but
 * the host would run it as tzcnt: such a bsf is re-encoded without F3. */
static bool is_rep_bsf(const struct xlat_insn *in)
{
	if (in->d.mnemonic != ZYDIS_MNEMONIC_BSF)
		return false;
	for (int i = 0; i < in->d.raw.prefix_count; i++)
		if (in->d.raw.prefixes[i].value == 0xf3)
			return true;
	return false;
}

static void emit_copy(struct xe *e, const struct xlat_insn *in)
{
	if (is_rep_bsf(in)) {
		ZydisEncoderRequest req;
		if (ZYAN_FAILED(ZydisEncoderDecodedInstructionToEncoderRequest(
			&in->d, in->ops, in->d.operand_count_visible, &req))) {
			e->failed = true;
			return;
		}
		xe_req(e, &req); /* the request holds no ignored prefix */
		return;
	}
	uint32_t before = e->len[e->cur];
	int cat = xe_cat(e, XLAT_CAT_COPY);
	xe_bytes(e, in->bytes, in->d.length);
	xe_cat(e, cat);
	xe_note_copy(e, before, in);
}

/* Re-encode in with its memory operand replaced by [A]. */
static void emit_with_mem(struct xe *e, const struct xlat_insn *in, int mi, ZydisRegister A)
{
	ZydisEncoderRequest req;
	if (ZYAN_FAILED(ZydisEncoderDecodedInstructionToEncoderRequest(
		&in->d, in->ops, in->d.operand_count_visible, &req))) {
		e->failed = true;
		return;
	}
	req.prefixes &= ~(ZydisInstructionAttributes)ZYDIS_ATTRIB_HAS_SEGMENT;
	req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_NONE;
	ZydisEncoderOperand *o = &req.operands[mi];
	o->mem.base = A;
	o->mem.index = ZYDIS_REGISTER_NONE;
	o->mem.scale = 0;
	o->mem.displacement = 0;
	uint32_t before = e->len[e->cur];
	xe_req(e, &req);
	for (int k = 0; k < in->d.operand_count_visible; k++)
		if (in->ops[k].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			xe_note(e, before, 0, xe_val_imm(in, 0, false), in->ops[k].imm.value.u,
				false);
			break;
		}
}

static bool is_bt_reg_mem(const struct xlat_insn *in, int mi)
{
	ZydisMnemonic m = in->d.mnemonic;
	return (m == ZYDIS_MNEMONIC_BT || m == ZYDIS_MNEMONIC_BTS || m == ZYDIS_MNEMONIC_BTR ||
		m == ZYDIS_MNEMONIC_BTC) &&
	       mi == 0 && in->ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER;
}

/* Must the guest flags be in the host RFLAGS before `in` runs?  Yes unless
 * it leaves them all alone or surely overwrites all of them without reading
 * (a partial or conditional write must merge into the guest's flags). */
static bool flags_need_restore(const struct xlat_insn *in)
{
	if (in->flags_read != 0)
		return true;
	if (in->flags_may == 0)
		return false;
	return in->flags_kill != XLAT_FLAGS_ARITH;
}

/* After `in`: if it wrote every arithmetic flag, the saved ones are dead. */
static void flags_after(struct xe *e, const struct xlat_insn *in)
{
	if (e->pend_flags && in->flags_kill == XLAT_FLAGS_ARITH && in->flags_read == 0) {
		e->pend_flags = false;
		e->mask &= ~XLAT_SPILL_FLAGS;
		xe_pcmark(e);
	}
}

/* A pending scratch register (free: its guest value is in spill[]), or
 * ZYDIS_REGISTER_NONE. */
static ZydisRegister pending_reg(const struct xe *e)
{
	for (int r = 0; r < 16; r++)
		if ((e->pend_regs >> r) & 1)
			return xe_gpr64(r);
	return ZYDIS_REGISTER_NONE;
}

/* Restore the pending scratch registers in `regs` (guest values back). */
static void restore_pending(struct xe *e, uint32_t regs)
{
	int cat = xe_cat(e, XLAT_CAT_SPILL);
	if (e->idx_valid && (regs & e->pend_regs & (1u << xe_gpr_num(e->idx_reg))))
		e->idx_valid = false;
	for (int r = 0; r < 16; r++) {
		if (!((regs & e->pend_regs) >> r & 1))
			continue;
		xe_gs_load(e, xe_gpr64(r), VCPU_OFF_SPILL + 8 * r);
		e->pend_regs &= ~(1u << r);
		e->mask &= ~(1u << r);
		xe_pcmark(e);
	}
	xe_cat(e, cat);
}

void xlat_flush_pending(struct xe *e)
{
	/* the flags first, while a pending register is free to hold RSP */
	if (e->pend_flags) {
		xe_flags_restore(e, pending_reg(e), ZYDIS_REGISTER_NONE);
		e->pend_flags = false;
	}
	restore_pending(e, e->pend_regs);
}

/* GPRs `in` writes (any width, explicit or hidden operands). */
static uint32_t regs_written(const struct xlat_insn *in)
{
	uint32_t w = in->regs_kill;
	for (int i = 0; i < in->d.operand_count; i++) {
		const ZydisDecodedOperand *o = &in->ops[i];
		int r = xe_gpr_num(o->reg.value);
		if (o->type == ZYDIS_OPERAND_TYPE_REGISTER && r >= 0 &&
		    (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			w |= 1u << r;
	}
	return w;
}

/* Keep e->idx_valid (xe_probe2) only across a copied instruction or a
 * memory access that leaves the index register and the address's
 * registers alone. */
static void idx_track(struct xe *e, const struct xlat_insn *in, enum xlat_class c)
{
	if (!e->idx_valid)
		return;
	uint32_t keep = 1u << xe_gpr_num(e->idx_reg);
	if (e->idx_base != ZYDIS_REGISTER_NONE)
		keep |= 1u << xe_gpr_num(e->idx_base);
	if (e->idx_index != ZYDIS_REGISTER_NONE)
		keep |= 1u << xe_gpr_num(e->idx_index);
	if ((c != XC_COPY && c != XC_MEM) || (in->regs_used & (1u << xe_gpr_num(e->idx_reg))) ||
	    (regs_written(in) & keep))
		e->idx_valid = false;
}

static void mangle_mem(struct xe *e, const struct xlat_insn *in)
{
	int nexp, nhid;
	int mi = xlat_mem_operand(in, &nexp, &nhid);
	const ZydisDecodedOperand *o = &in->ops[mi];
	bool write = (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
	unsigned size = o->size / 8;
	struct xlat_scratch s;
	struct xlat_addr a;
	bool bt = is_bt_reg_mem(in, mi);

	addr_from_operand(in, o, &a);
	bool abs = !bt && xe_probe_abs_ok(&a, size);
	ZydisRegister tmp; /* free after the probe: T1 (but see abs) */
	/* reuse the scratch registers still spilled by the previous
	 * instruction: no restore + spill in between */
	bool two = !bt && !abs && xe_probe2_ok(e, &a, size);
	xlat_begin_scratch(e, in, bt ? 4 : (abs ? 1 : (two ? 2 : 3)), &s, in->flags_live_in);
	if (abs) {
		/* T1: a second register, saved on the slow path only */
		struct xlat_scratch t;
		pick_scratch_pend(in, 1, 1u << s.r[0], e->pend_regs, &t);
		bool save = !((e->pend_regs >> t.r[0]) & 1) && ((in->live_out >> t.r[0]) & 1);
		xe_probe_abs(e, s.reg[0], t.reg[0], save, &a, size, write);
		/* T1 holds its guest value on the fast path unless pending or dead */
		bool t1_free = ((e->pend_regs >> t.r[0]) & 1) || !((in->live_out >> t.r[0]) & 1);
		tmp = t1_free ? t.reg[0] : ZYDIS_REGISTER_NONE;
	} else if (two) {
		xe_probe2(e, s.reg[0], s.reg[1], &a, size, write);
		tmp = s.reg[1];
	} else if (!bt) {
		xe_probe(e, &s, &a, size, write);
		tmp = s.reg[1];
	} else {
		tmp = s.reg[1];
		/* bt* m, r: the bit offset is a signed operand-size integer; the
		 * accessed unit is at ea + (off >> log2(bits)) * bytes.  Translate
		 * that unit, then subtract the offset again: the instruction adds
		 * it itself. */
		ZydisRegister A = s.reg[0], T3 = s.reg[3];
		ZydisEncoderOperand oa = xe_r(A), ot = xe_r(T3), src, im, mm;
		int bits = in->ops[1].size;
		src = xe_r(in->ops[1].reg.value);
		xe_ins(e,
		       bits == 64 ? ZYDIS_MNEMONIC_MOV
				  : (bits == 32 ? ZYDIS_MNEMONIC_MOVSXD : ZYDIS_MNEMONIC_MOVSX),
		       false, 2, &ot, &src, NULL);
		im = xe_i(bits == 64 ? 6 : (bits == 32 ? 5 : 4));
		xe_ins(e, ZYDIS_MNEMONIC_SAR, false, 2, &ot, &im, NULL);
		im = xe_i(bits == 64 ? 3 : (bits == 32 ? 2 : 1));
		xe_ins(e, ZYDIS_MNEMONIC_SHL, false, 2, &ot, &im, NULL);
		uint32_t before = e->len[e->cur];
		if (a.absolute) {
			im = xe_i(a.disp);
			xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &oa, &im, NULL);
			xe_note(e, before, 0, a.v, (uint64_t)a.disp, false);
		} else {
			mm = xe_m(a.addr32 ? 4 : 8, a.base, a.index, a.scale, a.disp);
			xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &oa, &mm, NULL);
			xe_note(e, before, XE_NOTE_DISP, a.v, (uint64_t)a.disp, false);
		}
		if (a.seg) {
			mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0,
				  a.seg == ZYDIS_REGISTER_FS ? VCPU_OFF_FS_BASE : VCPU_OFF_GS_BASE);
			xe_ins(e, ZYDIS_MNEMONIC_ADD, true, 2, &oa, &mm, NULL);
		}
		xe_ins(e, ZYDIS_MNEMONIC_ADD, false, 2, &oa, &ot, NULL);
		struct xlat_addr pre;
		memset(&pre, 0, sizeof(pre));
		pre.base = A;
		xe_probe(e, &s, &pre, (unsigned)bits / 8, write);
		xe_ins(e, ZYDIS_MNEMONIC_SUB, false, 2, &oa, &ot, NULL);
	}
	if (e->pend_flags && flags_need_restore(in)) {
		xe_flags_restore(e, tmp, s.reg[0]);
		e->pend_flags = false;
		e->idx_valid = false; /* tmp (T1) may have held rax */
	}
	emit_with_mem(e, in, mi, s.reg[0]);
	idx_track(e, in, XC_MEM); /* its own writes (after the access) */
	flags_after(e, in);
}

static void mangle_riplea(struct xe *e, const struct xlat_insn *in)
{
	const ZydisDecodedOperand *m = &in->ops[1];
	uint64_t va = in->va + in->d.length + (uint64_t)m->mem.disp.value;
	ZydisRegister dst = in->ops[0].reg.value;
	ZydisEncoderOperand d = xe_r(dst), im;
	struct xe_val v = xe_val_disp(in, true);
	switch (in->ops[0].size) {
	case 64:
		im = xe_i((int64_t)va);
		break;
	case 32:
		im = xe_i((int64_t)(uint32_t)va);
		v.flags |= XV_T32;
		break;
	default:
		im = xe_i((int64_t)(uint16_t)va);
		v.flags |= XV_T16;
		break;
	}
	uint32_t before = e->len[e->cur];
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &d, &im, NULL);
	xe_note(e, before, 0, v, (uint64_t)im.imm.s, false);
}

/* An 8-byte stack access ([rsp+d], [rbp]): the two-register probe when the
 * caller chose two scratch registers, else the three-register one. */
static void stack_probe(struct xe *e, const struct xlat_scratch *s, const struct xlat_addr *a,
			bool write)
{
	if (s->n == 2 && xe_probe2_ok(e, a, 8))
		xe_probe2(e, s->reg[0], s->reg[1], a, 8, write);
	else
		xe_probe(e, s, a, 8, write);
	e->idx_valid = false; /* the caller moves rsp (or rbp) itself */
}

static void mangle_push(struct xe *e, const struct xlat_insn *in)
{
	const ZydisDecodedOperand *src = &in->ops[0];
	struct xlat_scratch s;
	struct xlat_addr a;
	bool mem = src->type == ZYDIS_OPERAND_TYPE_MEMORY;
	/* push r/imm: the two-register probe of [rsp-8] (xe_probe2) */
	xlat_begin_scratch(e, in, mem ? 3 : 2, &s, in->flags_live_in);
	if (mem) {
		addr_from_operand(in, src, &a);
		xe_probe(e, &s, &a, 8, false);
		emit_load64(e, s.reg[0], s.reg[0]);
		xe_gs_store(e, VCPU_OFF_MEM_TMP, s.reg[0]);
	}
	rsp_addr(&a, -8);
	stack_probe(e, &s, &a, true);
	if (src->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		emit_store64(e, s.reg[0], xe_r(src->reg.value));
	} else if (src->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		uint32_t before = e->len[e->cur];
		emit_store64(e, s.reg[0], xe_i(src->imm.value.s));
		xe_note(e, before, 0, xe_val_imm(in, 0, false), src->imm.value.u, false);
	} else {
		xe_gs_load(e, s.reg[1], VCPU_OFF_MEM_TMP);
		emit_store64(e, s.reg[0], xe_r(s.reg[1]));
	}
	emit_lea_rsp(e, -8);
}

static void mangle_pop(struct xe *e, const struct xlat_insn *in)
{
	struct xlat_scratch s;
	struct xlat_addr a;
	bool reg = in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER;
	xlat_begin_scratch(e, in, reg ? 2 : 3, &s, in->flags_live_in);
	rsp_addr(&a, 0);
	stack_probe(e, &s, &a, false);
	if (reg) {
		ZydisRegister dst = in->ops[0].reg.value;
		emit_load64(e, dst, s.reg[0]);
		if (dst != ZYDIS_REGISTER_RSP)
			emit_lea_rsp(e, 8);
		return;
	}
	/* pop [mem]: read the stack, then write the destination, whose
	 * address uses the incremented RSP when RSP is its base (SDM); both
	 * accesses are translated before anything changes */
	emit_load64(e, s.reg[0], s.reg[0]);
	xe_gs_store(e, VCPU_OFF_MEM_TMP, s.reg[0]);
	addr_from_operand(in, &in->ops[0], &a);
	if (!a.absolute && a.base == ZYDIS_REGISTER_RSP)
		a.disp += 8;
	xe_probe(e, &s, &a, 8, true);
	xe_gs_load(e, s.reg[1], VCPU_OFF_MEM_TMP);
	emit_store64(e, s.reg[0], xe_r(s.reg[1]));
	emit_lea_rsp(e, 8);
}

static void mangle_leave(struct xe *e, const struct xlat_insn *in)
{
	struct xlat_scratch s;
	struct xlat_addr a;
	xlat_begin_scratch(e, in, 2, &s, in->flags_live_in);
	memset(&a, 0, sizeof(a));
	a.base = ZYDIS_REGISTER_RBP;
	stack_probe(e, &s, &a, false);
	ZydisEncoderOperand r = xe_r(ZYDIS_REGISTER_RSP);
	ZydisEncoderOperand m = xe_m(8, ZYDIS_REGISTER_RBP, ZYDIS_REGISTER_NONE, 0, 8);
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &r, &m, NULL);
	emit_load64(e, ZYDIS_REGISTER_RBP, s.reg[0]);
}

/* Guest-visible RFLAGS = host arithmetic flags and DF | bit 1 | virtual IF
 * (vcpu.irq byte 0) << 9 | virtual AC (vcpu.ac) << 18. */
static void mangle_pushf(struct xe *e, const struct xlat_insn *in)
{
	struct xlat_scratch s;
	struct xlat_addr a;
	xlat_begin_scratch(e, in, 3, &s, true);
	rsp_addr(&a, -8);
	xe_probe(e, &s, &a, 8, true);
	ZydisRegister T1 = s.reg[1], T2 = s.reg[2];
	ZydisEncoderOperand o1 = xe_r(T1), o2 = xe_r(T2), im, mm;
	xe_gs_load(e, T1, VCPU_OFF_SPILL_FLAGS);
	im = xe_i(0xcd5);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &o1, &im, NULL);
	im = xe_i(2);
	xe_ins(e, ZYDIS_MNEMONIC_OR, false, 2, &o1, &im, NULL);
	const uint32_t offs[2] = {VCPU_OFF_IRQ, VCPU_OFF_AC};
	const int shifts[2] = {9, 18};
	for (int i = 0; i < 2; i++) {
		mm = xe_m(1, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, offs[i]);
		xe_ins(e, ZYDIS_MNEMONIC_MOVZX, true, 2, &o2, &mm, NULL);
		im = xe_i(1);
		xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &o2, &im, NULL);
		im = xe_i(shifts[i]);
		xe_ins(e, ZYDIS_MNEMONIC_SHL, false, 2, &o2, &im, NULL);
		xe_ins(e, ZYDIS_MNEMONIC_OR, false, 2, &o1, &o2, NULL);
	}
	emit_store64(e, s.reg[0], o1);
	emit_lea_rsp(e, -8);
}

/* popfq: virtual IF/AC from the popped value; only arithmetic flags and DF
 * reach the host RFLAGS (never TF/AC/IF/IOPL/NT). */
static void mangle_popf(struct xe *e, const struct xlat_insn *in)
{
	struct xlat_scratch s;
	struct xlat_addr a;
	xlat_begin_scratch(e, in, 3, &s, false);
	rsp_addr(&a, 0);
	xe_probe(e, &s, &a, 8, false);
	ZydisRegister T1 = s.reg[1], T2 = s.reg[2];
	ZydisEncoderOperand o1 = xe_r(T1), o2 = xe_r(T2), o2b = xe_r(gpr8[s.r[2]]), im, mm;
	emit_load64(e, T1, s.reg[0]);
	emit_lea_rsp(e, 8);
	const uint32_t offs[2] = {VCPU_OFF_IRQ, VCPU_OFF_AC};
	const int shifts[2] = {9, 18};
	for (int i = 0; i < 2; i++) {
		xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &o2, &o1, NULL);
		im = xe_i(shifts[i]);
		xe_ins(e, ZYDIS_MNEMONIC_SHR, false, 2, &o2, &im, NULL);
		im = xe_i(1);
		xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &o2, &im, NULL);
		mm = xe_m(1, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, offs[i]);
		xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &mm, &o2b, NULL);
	}
	im = xe_i(0xcd5);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &o1, &im, NULL);
	im = xe_i(2);
	xe_ins(e, ZYDIS_MNEMONIC_OR, false, 2, &o1, &im, NULL);
	xe_gs_store(e, VCPU_OFF_SPILL_FLAGS, T1);
	e->mask |= XLAT_SPILL_FLAGS;
	xe_pcmark(e);
	e->pend_flags = true; /* the new guest flags and DF: xe_flags_restore_df */
}

static void mangle_byte_store(struct xe *e, uint32_t off, int v)
{
	ZydisEncoderOperand m = xe_m(1, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, off);
	ZydisEncoderOperand i = xe_i(v);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &m, &i, NULL);
}

static void mangle_swapgs(struct xe *e, const struct xlat_insn *in)
{
	/* two loads and two stores: an xchg with memory is a locked
	 * instruction (~20 cycles; twice in every Linux system call) */
	struct xlat_scratch s;
	xlat_begin_scratch(e, in, 2, &s, false);
	xe_gs_load(e, s.reg[0], VCPU_OFF_GS_BASE);
	xe_gs_load(e, s.reg[1], VCPU_OFF_KGS_BASE);
	xe_gs_store(e, VCPU_OFF_GS_BASE, s.reg[1]);
	xe_gs_store(e, VCPU_OFF_KGS_BASE, s.reg[0]);
}

/* Look the guest target in vcpu.exit_target up in the IBL table.  The
 * scratch registers are spilled and the flags saved by the caller. */
static void emit_ibl(struct xe *e, struct xlat_scratch *s, enum xlat_exit_kind kind)
{
	ZydisRegister A = s->reg[0], T1 = s->reg[1];
	ZydisEncoderOperand oa = xe_r(A), o1 = xe_r(T1), im, mm;
	int x = xe_exit_new(e, kind, 0);
	if (e->step) { /* XLAT_OPT_STEP: straight to the exit stub */
		xe_pcmark(e);
		xlat_flush_pending(e);
		xe_exit_jump_stub(e, x);
		return;
	}
	int cat = xe_cat(e, XLAT_CAT_IBL);
	xe_gs_load(e, A, VCPU_OFF_EXIT_TARGET);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &o1, &oa, NULL);
	im = xe_i((e->off_ibl == VCPU_OFF_UIBL ? VCPU_UIBL_ENTRIES : VCPU_IBL_ENTRIES) - 1);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &o1, &im, NULL);
	im = xe_i(4);
	xe_ins(e, ZYDIS_MNEMONIC_SHL, false, 2, &o1, &im, NULL);
	if (e->off_ibl == VCPU_OFF_UIBL) { /* user: the key carries the space's tag */
		mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_UIBL_TAG);
		xe_ins(e, ZYDIS_MNEMONIC_OR, true, 2, &oa, &mm, NULL);
	}
	mm = xe_m(8, T1, ZYDIS_REGISTER_NONE, 0,
		  e->off_ibl + offsetof(struct vcpu_ibl_entry, guest_rip));
	xe_ins(e, ZYDIS_MNEMONIC_CMP, true, 2, &oa, &mm, NULL);
	int miss = xe_label_new(e);
	xe_branch(e, ZYDIS_MNEMONIC_JNZ, miss);
	mm =
	    xe_m(8, T1, ZYDIS_REGISTER_NONE, 0, e->off_ibl + offsetof(struct vcpu_ibl_entry, host));
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &o1, &mm, NULL);
	xe_gs_store(e, VCPU_OFF_BR_HOST, T1);
	uint32_t mask = e->mask, pend = e->pend_regs;
	bool pflags = e->pend_flags;
	xlat_flush_pending(e);
	mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_BR_HOST);
	xe_ins(e, ZYDIS_MNEMONIC_JMP, true, 1, &mm, NULL, NULL);

	xe_section(e, XE_COLD);
	e->mask = mask;
	e->pend_regs = pend;
	e->pend_flags = pflags;
	xe_label_place(e, miss);
	xe_pcmark(e);
	xlat_flush_pending(e);
	xe_exit_jump_stub(e, x);
	xe_section(e, XE_MAIN);
	xe_cat(e, cat);
}

/* Store the guest target of an indirect jmp/call into vcpu.exit_target.
 * Reads happen before anything changes (a fault restarts the instruction). */
static void load_ind_target(struct xe *e, const struct xlat_insn *in, struct xlat_scratch *s)
{
	const ZydisDecodedOperand *o = &in->ops[0];
	if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		xe_gs_store(e, VCPU_OFF_EXIT_TARGET, o->reg.value);
		return;
	}
	struct xlat_addr a;
	addr_from_operand(in, o, &a);
	xe_probe(e, s, &a, 8, false);
	emit_load64(e, s->reg[0], s->reg[0]);
	xe_gs_store(e, VCPU_OFF_EXIT_TARGET, s->reg[0]);
}

static void push_return(struct xe *e, const struct xlat_insn *in, struct xlat_scratch *s)
{
	struct xlat_addr a;
	rsp_addr(&a, -8);
	stack_probe(e, s, &a, true);
	ZydisEncoderOperand o1 = xe_r(s->reg[1]);
	ZydisEncoderOperand im = xe_i((int64_t)(in->va + in->d.length));
	uint32_t before = e->len[e->cur];
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &o1, &im, NULL);
	xe_note(e, before, 0, xe_val_pc(), in->va + in->d.length, false);
	emit_store64(e, s->reg[0], o1);
	emit_lea_rsp(e, -8);
}

/* A new exit whose target derives from the guest as v says (templates). */
static int exit_new_v(struct xe *e, enum xlat_exit_kind k, gva_t target, struct xe_val v)
{
	int x = xe_exit_new(e, k, target);
	if ((uint32_t)x < e->n_exits)
		e->exit_val[x] = v;
	return x;
}

static void mangle_jcc(struct xe *e, const struct xlat_insn *in)
{
	gva_t next = in->va + in->d.length;
	gva_t target = next + (uint64_t)in->ops[0].imm.value.s;
	int t = exit_new_v(e, XLAT_EXIT_JCC_TAKEN, target, xe_val_imm(in, 0, true));
	xe_exit_branch(e, in->d.mnemonic, t);
	int f = exit_new_v(e, XLAT_EXIT_JCC_FALL, next, xe_val_pc());
	xe_exit_branch(e, ZYDIS_MNEMONIC_JMP, f);
}

/* loop/loope/loopne/jrcxz/jecxz have only rel8 forms:
 *     loopX +5 ; jmp fall(rel32) ; jmp taken(rel32) */
static void mangle_loop(struct xe *e, const struct xlat_insn *in)
{
	gva_t next = in->va + in->d.length;
	gva_t target = next + (uint64_t)in->ops[0].imm.value.s;
	ZydisEncoderRequest req;
	if (ZYAN_FAILED(ZydisEncoderDecodedInstructionToEncoderRequest(
		&in->d, in->ops, in->d.operand_count_visible, &req))) {
		e->failed = true;
		return;
	}
	req.operands[0].imm.s = 5;
	req.branch_width = ZYDIS_BRANCH_WIDTH_8;
	xe_req(e, &req);
	int f = exit_new_v(e, XLAT_EXIT_JCC_FALL, next, xe_val_pc());
	xe_exit_branch(e, ZYDIS_MNEMONIC_JMP, f);
	int t = exit_new_v(e, XLAT_EXIT_JCC_TAKEN, target, xe_val_imm(in, 0, true));
	xe_exit_branch(e, ZYDIS_MNEMONIC_JMP, t);
}

static void mangle_call(struct xe *e, const struct xlat_insn *in)
{
	gva_t target = in->va + in->d.length + (uint64_t)in->ops[0].imm.value.s;
	struct xlat_scratch s;
	xlat_begin_scratch(e, in, 2, &s, in->flags_live_in);
	push_return(e, in, &s);
	xlat_flush_pending(e);
	int x = exit_new_v(e, XLAT_EXIT_CALL, target, xe_val_imm(in, 0, true));
	xe_exit_branch(e, ZYDIS_MNEMONIC_JMP, x);
}

static void mangle_indirect(struct xe *e, const struct xlat_insn *in, bool call)
{
	struct xlat_scratch s;
	bool reg = in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER;
	xlat_begin_scratch(e, in, reg ? 2 : 3, &s, true);
	load_ind_target(e, in, &s);
	if (call)
		push_return(e, in, &s);
	emit_ibl(e, &s, XLAT_EXIT_INDIRECT);
}

static void mangle_ret(struct xe *e, const struct xlat_insn *in)
{
	struct xlat_scratch s;
	struct xlat_addr a;
	int64_t extra = 0;
	if (in->d.operand_count_visible > 0 && in->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		extra = (int64_t)(uint16_t)in->ops[0].imm.value.u;
	xlat_begin_scratch(e, in, 2, &s, true);
	rsp_addr(&a, 0);
	stack_probe(e, &s, &a, false);
	emit_load64(e, s.reg[0], s.reg[0]);
	xe_gs_store(e, VCPU_OFF_EXIT_TARGET, s.reg[0]);
	emit_lea_rsp(e, 8 + extra);
	emit_ibl(e, &s, XLAT_EXIT_RET);
}

/* mov reg, sreg: a 16-bit destination takes the selector, a 32- or 64-bit
 * one the selector zero-extended (as current processors do). */
static void mangle_segread(struct xe *e, const struct xlat_insn *in)
{
	ZydisRegister d = in->ops[0].reg.value;
	uint32_t off = VCPU_OFF_SEL + 2u * ZydisRegisterGetId(in->ops[1].reg.value);
	ZydisEncoderOperand m = xe_m(2, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, off), r;
	if (ZydisRegisterGetClass(d) == ZYDIS_REGCLASS_GPR16) {
		r = xe_r(d);
		xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &r, &m, NULL);
		return;
	}
	r = xe_r(ZydisRegisterEncode(ZYDIS_REGCLASS_GPR32, ZydisRegisterGetId(d)));
	xe_ins(e, ZYDIS_MNEMONIC_MOVZX, true, 2, &r, &m, NULL);
}

/* rdtsc at CPL 0 (never faults there): the guest TSC is the host's plus
 * vcpu.tsc_offset, as the vCPU's emulation computes it.  Flag-free, since
 * rdtsc leaves RFLAGS alone:
 *   rdtsc ; mov %gs:mem_tmp, eax ; mov %gs:mem_tmp+4, edx ; mov rax, %gs:mem_tmp
 *   mov rdx, %gs:tsc_offset ; lea rax, [rax + rdx]
 *   mov %gs:mem_tmp, rax ; mov eax, %gs:mem_tmp ; mov edx, %gs:mem_tmp+4 */
static void mangle_rdtsc(struct xe *e)
{
	static const uint8_t rdtsc[] = {0x0f, 0x31};
	ZydisEncoderOperand eax = xe_r(ZYDIS_REGISTER_EAX), edx = xe_r(ZYDIS_REGISTER_EDX);
	ZydisEncoderOperand rax = xe_r(ZYDIS_REGISTER_RAX), m, lea;
	xe_bytes(e, rdtsc, sizeof(rdtsc));
	m = xe_m(4, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_MEM_TMP);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &m, &eax, NULL);
	m = xe_m(4, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_MEM_TMP + 4);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &m, &edx, NULL);
	xe_gs_load(e, ZYDIS_REGISTER_RAX, VCPU_OFF_MEM_TMP);
	xe_gs_load(e, ZYDIS_REGISTER_RDX, VCPU_OFF_TSC_OFFSET);
	lea = xe_m(8, ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RDX, 1, 0);
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &rax, &lea, NULL);
	xe_gs_store(e, VCPU_OFF_MEM_TMP, ZYDIS_REGISTER_RAX);
	m = xe_m(4, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_MEM_TMP);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &eax, &m, NULL);
	m = xe_m(4, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_MEM_TMP + 4);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &edx, &m, NULL);
}

void xlat_mangle_fall(struct xe *e, gva_t next)
{
	int x = exit_new_v(e, XLAT_EXIT_FALL, next, xe_val_pc());
	xe_exit_branch(e, ZYDIS_MNEMONIC_JMP, x);
}

void xlat_mangle(struct xe *e, const struct xlat_insn *in, enum xlat_class c)
{
	idx_track(e, in, c);
	/* Deferred restores survive only across classes that cannot leave the
	 * block or call out; the instruction's own registers come back first. */
	switch (c) {
	case XC_COPY:
	case XC_RIPLEA:
	case XC_SEGREAD:
	case XC_RDTSC:
	case XC_CLI:
	case XC_STI:
	case XC_STAC:
	case XC_CLAC:
		restore_pending(e, in->regs_used);
		if (e->pend_flags && flags_need_restore(in)) {
			xe_flags_restore(e, pending_reg(e), ZYDIS_REGISTER_NONE);
			e->pend_flags = false;
		}
		break;
	case XC_MEM:
	case XC_PUSH:
	case XC_POP:
	case XC_LEAVE:
	case XC_PUSHF:
	case XC_POPF:
	case XC_SWAPGS:
	case XC_CALL:
	case XC_JMP_IND:
	case XC_CALL_IND:
	case XC_RET:
		/* these manage the flags themselves (none reads them directly) */
		restore_pending(e, in->regs_used);
		break;
	case XC_STRING:
		/* an inline rep movs/stos saves the flags itself; the
		 * call-out wants everything back */
		if (xlat_string_inline_ok(e, in))
			restore_pending(e, in->regs_used);
		else
			xlat_flush_pending(e);
		break;
	default:
		xlat_flush_pending(e);
		break;
	}
	switch (c) {
	case XC_COPY:
		emit_copy(e, in);
		flags_after(e, in);
		break;
	case XC_MEM:
		mangle_mem(e, in);
		break;
	case XC_RIPLEA:
		mangle_riplea(e, in);
		flags_after(e, in);
		break;
	case XC_PUSH:
		mangle_push(e, in);
		break;
	case XC_POP:
		mangle_pop(e, in);
		break;
	case XC_LEAVE:
		mangle_leave(e, in);
		break;
	case XC_PUSHF:
		mangle_pushf(e, in);
		break;
	case XC_POPF:
		mangle_popf(e, in);
		/* the popped DF too, while a pending register is free */
		xe_flags_restore_df(e, pending_reg(e));
		e->pend_flags = false;
		xlat_flush_pending(e);
		xlat_mangle_fall(e, in->va + in->d.length);
		break;
	case XC_SERIALIZE:
		/* (advertised by the vCPU, CPUID.7.0:EDX[14]).  To a translator,
		 * serializing is fetching the next instruction afresh: a code
		 * write has already killed every block it met (docs/runtime.md
		 * "Self-modifying code"), so ending the block here is all
		 * there is to do.  Linux's sync_core() after each text_poke:
		 * 108,000 times in a Debian boot, where a PRIV exit each cost
		 * about 1 us. */
		xlat_flush_pending(e);
		xlat_mangle_fall(e, in->va + in->d.length);
		break;
	case XC_SEGREAD:
		mangle_segread(e, in);
		break;
	case XC_RDTSC:
		mangle_rdtsc(e);
		break;
	case XC_CLI:
		mangle_byte_store(e, VCPU_OFF_IRQ, 0);
		break;
	case XC_STI:
		mangle_byte_store(e, VCPU_OFF_IRQ, 1);
		break;
	case XC_STAC:
		mangle_byte_store(e, VCPU_OFF_AC, 1);
		break;
	case XC_CLAC:
		mangle_byte_store(e, VCPU_OFF_AC, 0);
		break;
	case XC_SWAPGS:
		mangle_swapgs(e, in);
		break;
	case XC_STRING:
		xlat_mangle_string(e, in);
		break;
	case XC_JMP: {
		gva_t t = in->va + in->d.length + (uint64_t)in->ops[0].imm.value.s;
		int x = exit_new_v(e, XLAT_EXIT_JMP, t, xe_val_imm(in, 0, true));
		xe_exit_branch(e, ZYDIS_MNEMONIC_JMP, x);
		break;
	}
	case XC_JCC:
		mangle_jcc(e, in);
		break;
	case XC_LOOP:
		mangle_loop(e, in);
		break;
	case XC_CALL:
		mangle_call(e, in);
		break;
	case XC_JMP_IND:
		mangle_indirect(e, in, false);
		break;
	case XC_CALL_IND:
		mangle_indirect(e, in, true);
		break;
	case XC_RET:
		mangle_ret(e, in);
		break;
	case XC_PRIV: {
		int x = exit_new_v(e, XLAT_EXIT_PRIV, in->va, xe_val_pc());
		if (in->d.mnemonic == ZYDIS_MNEMONIC_SYSCALL && (uint32_t)x < e->n_exits)
			e->exits[x].flags |= XLAT_EXIT_F_SYSCALL;
		if (in->d.mnemonic == ZYDIS_MNEMONIC_SYSRET && in->d.operand_width == 64 &&
		    (uint32_t)x < e->n_exits)
			e->exits[x].flags |= XLAT_EXIT_F_SYSRET;
		xe_exit_jump_stub(e, x);
		break;
	}
	case XC_REFUSE:
		e->failed = true;
		break;
	}
}
