/*
 * The emitter of the translator core: builds one block's host code in two
 * sections (MAIN: the straight-line fast path; COLD: soft-MMU slow paths,
 * interrupt and exit stubs), with labels, rel32 fixups and the pc map.
 *
 * Invariants
 *  1. Every host instruction goes through the Zydis encoder, except guest
 *     instructions copied unchanged (xe_bytes).
 *  2. Every branch emitted here is rel32, resolved in xe_finish once the
 *     layout (MAIN then COLD) is known; the output is position independent.
 *  3. The only runtime state the code touches is %gs:VCPU_OFF_* (the vCPU).
 *  4. The pc map records (host offset, guest offset, spill mask) at every
 *     change of guest offset or spill state, per section, merged in layout
 *     order; so any host offset maps to the guest instruction to restart and
 *     to where the guest values of the scratch registers/flags are.
 *  5. An encoder failure or table overflow sets e->failed / e->overflow and
 *     the block is refused; nothing here aborts on guest input.
 */
#include "pretrans/xlat/xlat_int.h"

#include "pretrans/base/log.h"

#include <stddef.h>
#include <string.h>

static const ZydisRegister gpr64[16] = {
    ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RBX,
    ZYDIS_REGISTER_RSP, ZYDIS_REGISTER_RBP, ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDI,
    ZYDIS_REGISTER_R8,	ZYDIS_REGISTER_R9,  ZYDIS_REGISTER_R10, ZYDIS_REGISTER_R11,
    ZYDIS_REGISTER_R12, ZYDIS_REGISTER_R13, ZYDIS_REGISTER_R14, ZYDIS_REGISTER_R15,
};

ZydisRegister xe_gpr64(int n)
{
	return gpr64[n & 15];
}

int xe_gpr_num(ZydisRegister r)
{
	if (r == ZYDIS_REGISTER_NONE)
		return -1;
	ZydisRegister big = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
	for (int i = 0; i < 16; i++)
		if (gpr64[i] == big)
			return i;
	return -1;
}

void xe_reset(struct xe *e, uint8_t *main_buf, uint8_t *cold_buf, gva_t start)
{
	e->sec[XE_MAIN] = main_buf;
	e->sec[XE_COLD] = cold_buf;
	e->len[0] = e->len[1] = 0;
	e->cur = XE_MAIN;
	e->n_labels = 0;
	e->n_fixups = 0;
	e->n_pc[0] = e->n_pc[1] = 0;
	e->goff = 0;
	e->mask = 0;
	e->failed = false;
	e->overflow = false;
	e->n_exits = 0;
	e->block_start = start;
	e->off_tlb = VCPU_OFF_TLB;
	e->off_ibl = VCPU_OFF_IBL;
	e->step = false;
	e->count_probes = false;
	e->pend_regs = 0;
	e->pend_flags = false;
	memset(e->exits, 0, sizeof(e->exits));
	e->tm = NULL;
	memset(e->exit_val, 0, sizeof(e->exit_val));
	/* the block-entry check comes first; xe_set_goff() switches to
	 * XLAT_CAT_INSN before each guest instruction */
	e->cat = XLAT_CAT_ENTRY;
	memset(e->cat_bytes, 0, sizeof(e->cat_bytes));
	e->n_slow = 0;
	e->idx_valid = false;
}

const char *xlat_code_cat_str(enum xlat_code_cat c)
{
	static const char *const names[XLAT_NCATS] = {
	    [XLAT_CAT_INSN] = "insn",	  [XLAT_CAT_COPY] = "copy",	[XLAT_CAT_ENTRY] = "entry",
	    [XLAT_CAT_SPILL] = "spill",	  [XLAT_CAT_FLAGS] = "flags",	[XLAT_CAT_PROBE] = "probe",
	    [XLAT_CAT_SLOW] = "slowpath", [XLAT_CAT_BRANCH] = "branch", [XLAT_CAT_IBL] = "ibl",
	    [XLAT_CAT_STUB] = "stub",
	};
	return (unsigned)c < XLAT_NCATS ? names[c] : "?";
}

ZydisEncoderOperand xe_r(ZydisRegister r)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof(o));
	o.type = ZYDIS_OPERAND_TYPE_REGISTER;
	o.reg.value = r;
	return o;
}

ZydisEncoderOperand xe_i(int64_t v)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof(o));
	o.type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
	o.imm.s = v;
	return o;
}

ZydisEncoderOperand xe_m(uint16_t size, ZydisRegister base, ZydisRegister index, uint8_t scale,
			 int64_t disp)
{
	ZydisEncoderOperand o;
	memset(&o, 0, sizeof(o));
	o.type = ZYDIS_OPERAND_TYPE_MEMORY;
	o.mem.base = base;
	o.mem.index = index;
	o.mem.scale = index == ZYDIS_REGISTER_NONE ? 0 : scale;
	o.mem.displacement = disp;
	o.mem.size = size;
	return o;
}

void xe_bytes(struct xe *e, const uint8_t *p, uint32_t n)
{
	if (!xe_room(e, n))
		return;
	memcpy(e->sec[e->cur] + e->len[e->cur], p, n);
	e->len[e->cur] += n;
	e->cat_bytes[e->cat] += n;
}

void xe_gs_store(struct xe *e, uint32_t off, ZydisRegister r)
{
	ZydisEncoderOperand m = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, off);
	ZydisEncoderOperand s = xe_r(r);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &m, &s, NULL);
}

void xe_gs_load(struct xe *e, ZydisRegister r, uint32_t off)
{
	ZydisEncoderOperand d = xe_r(r);
	ZydisEncoderOperand m = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, off);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &d, &m, NULL);
}

void xe_gs_store_imm32(struct xe *e, uint16_t size, uint32_t off, int64_t imm)
{
	ZydisEncoderOperand m = xe_m(size, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, off);
	ZydisEncoderOperand i = xe_i(imm);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &m, &i, NULL);
}

int xe_label_new(struct xe *e)
{
	if (e->n_labels >= XLAT_MAX_LABELS) {
		e->overflow = true;
		return 0;
	}
	e->labels[e->n_labels].sec = -1;
	e->labels[e->n_labels].off = 0;
	return e->n_labels++;
}

void xe_label_place(struct xe *e, int label)
{
	e->labels[label].sec = (int8_t)e->cur;
	e->labels[label].off = e->len[e->cur];
}

void xe_branch(struct xe *e, ZydisMnemonic m, int label)
{
	ZydisEncoderRequest req;
	memset(&req, 0, sizeof(req));
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.mnemonic = m;
	req.branch_type = ZYDIS_BRANCH_TYPE_NEAR;
	req.branch_width = ZYDIS_BRANCH_WIDTH_32;
	req.operand_count = 1;
	req.operands[0] = xe_i(0x12345678); /* forces a rel32 form; fixed up later */
	uint32_t before = e->len[e->cur];
	xe_req(e, &req);
	if (e->failed || e->overflow)
		return;
	if (e->len[e->cur] - before < 5 || e->n_fixups >= XLAT_MAX_FIXUPS) {
		e->failed = true;
		return;
	}
	struct xe_fixup *f = &e->fixups[e->n_fixups++];
	f->sec = (uint8_t)e->cur;
	f->pos = e->len[e->cur] - 4;
	f->label = label;
}

void xe_pcmark(struct xe *e)
{
	int s = e->cur;
	int n = e->n_pc[s];
	if (n > 0) {
		struct xe_pcent *last = &e->pc[s][n - 1];
		if (last->goff == e->goff && last->mask == e->mask)
			return;
		if (last->off == e->len[s]) {
			last->goff = e->goff;
			last->mask = e->mask;
			return;
		}
	}
	if (n >= XLAT_MAX_PCENT) {
		e->overflow = true;
		return;
	}
	e->pc[s][n].off = e->len[s];
	e->pc[s][n].goff = e->goff;
	e->pc[s][n].mask = e->mask;
	e->n_pc[s] = n + 1;
}

void xe_section(struct xe *e, int sec)
{
	e->cur = sec;
	xe_pcmark(e);
}

void xe_set_goff(struct xe *e, uint32_t goff)
{
	e->cat = XLAT_CAT_INSN;
	e->goff = goff;
	xe_pcmark(e);
}

void xe_to_host_stack(struct xe *e)
{
	xe_gs_store(e, VCPU_OFF_GUEST_RSP, ZYDIS_REGISTER_RSP);
	xe_gs_load(e, ZYDIS_REGISTER_RSP, VCPU_OFF_HOST_RSP);
}

void xe_to_guest_stack(struct xe *e)
{
	xe_gs_load(e, ZYDIS_REGISTER_RSP, VCPU_OFF_GUEST_RSP);
}

/* RSP -> tmp (a register free here) or vcpu guest_rsp_save, then RSP =
 * the host address vcpu.off holds; and back. */
static void flags_rsp_in(struct xe *e, ZydisRegister tmp, uint32_t off)
{
	if (tmp != ZYDIS_REGISTER_NONE) {
		ZydisEncoderOperand t = xe_r(tmp), sp = xe_r(ZYDIS_REGISTER_RSP);
		xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &t, &sp, NULL);
	} else {
		xe_gs_store(e, VCPU_OFF_GUEST_RSP, ZYDIS_REGISTER_RSP);
	}
	xe_gs_load(e, ZYDIS_REGISTER_RSP, off);
}

static void flags_rsp_out(struct xe *e, ZydisRegister tmp)
{
	if (tmp != ZYDIS_REGISTER_NONE) {
		ZydisEncoderOperand t = xe_r(tmp), sp = xe_r(ZYDIS_REGISTER_RSP);
		xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &sp, &t, NULL);
	} else {
		xe_to_guest_stack(e);
	}
}

/* Host RFLAGS -> vcpu spill_flags: RSP points just above spill_flags
 * (flags_sp_save) for a pushfq, never at the guest stack (guest RSP is a
 * guest address).  Nothing in between can fault, so the guest RSP may wait
 * in a free register: 16 bytes (28 without one; 36 until XLAT_VERSION 8,
 * which pushed on the host stack and popped into spill_flags). */
void xe_flags_save(struct xe *e, ZydisRegister tmp)
{
	int cat = xe_cat(e, XLAT_CAT_FLAGS);
	e->idx_valid = false; /* tmp may be xe_probe2's index register */
	flags_rsp_in(e, tmp, VCPU_OFF_FLAGS_SP_SAVE);
	xe_ins(e, ZYDIS_MNEMONIC_PUSHFQ, false, 0, NULL, NULL, NULL);
	flags_rsp_out(e, tmp);
	e->mask |= XLAT_SPILL_FLAGS;
	xe_pcmark(e);
	xe_cat(e, cat);
}

/* The whole saved image back with popfq, DF included: for guest popf,
 * whose new DF is in spill_flags too (mangle_popf). */
void xe_flags_restore_df(struct xe *e, ZydisRegister tmp)
{
	int cat = xe_cat(e, XLAT_CAT_FLAGS);
	e->idx_valid = false;
	flags_rsp_in(e, tmp, VCPU_OFF_FLAGS_SP_LOAD);
	xe_ins(e, ZYDIS_MNEMONIC_POPFQ, false, 0, NULL, NULL, NULL);
	flags_rsp_out(e, tmp);
	e->mask &= ~XLAT_SPILL_FLAGS;
	xe_pcmark(e);
	xe_cat(e, cat);
}

/*
 * spill_flags -> host arithmetic flags without popfq, which costs ~17 ns on
 * this machine (microcoded, serializing; 3.9 ns for pushfq + this form in a
 * loop): SF ZF AF PF CF come back with sahf from the image's low byte, OF
 * (bit 11) by an add that overflows exactly when it is set:
 *     mov   al, byte %gs:spill_flags+1    TF IF DF OF IOPL NT -
 *     shl   al, 4                          OF -> bit 7
 *     add   al, 0x80                       OF = bit 7 (the others: sahf)
 *     mov   ah, byte %gs:spill_flags       SF ZF - AF - PF - CF
 *     sahf
 * DF is not touched: nothing between a save and its restore writes it (an
 * instruction writing DF restores the flags first; guest popf, which puts a
 * new DF into spill_flags, uses xe_flags_restore_df).  rax must be free:
 * pending and not `busy` (the register holding a probe's host address), or
 * tmp itself; otherwise it waits in tmp (mov tmp, rax ... mov rax, tmp) or,
 * without tmp, in spill[rax] when rax is not pending (else the popfq form).
 * Nothing here can fault.  Until XLAT_VERSION 9 this was `mov tmp, rsp; mov
 * rsp, %gs:flags_sp_load; popfq; mov rsp, tmp`.
 */
void xe_flags_restore(struct xe *e, ZydisRegister tmp, ZydisRegister busy)
{
	int cat = xe_cat(e, XLAT_CAT_FLAGS);
	const ZydisRegister rax = ZYDIS_REGISTER_RAX;
	e->idx_valid = false;
	bool pend = (e->pend_regs >> VCPU_RAX) & 1;
	bool free = tmp == rax || (pend && busy != rax);
	if (!free && tmp == ZYDIS_REGISTER_NONE && pend) {
		/* rax is busy and its guest value already in spill[rax]: no
		 * place to keep it (rare: after xe_probe_abs with A = rax) */
		xe_cat(e, cat);
		xe_flags_restore_df(e, ZYDIS_REGISTER_NONE);
		return;
	}
	ZydisEncoderOperand orax = xe_r(rax), ot = xe_r(tmp), al = xe_r(ZYDIS_REGISTER_AL),
			    ah = xe_r(ZYDIS_REGISTER_AH), im, mm;
	if (!free && tmp != ZYDIS_REGISTER_NONE)
		xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &ot, &orax, NULL);
	else if (!free)
		xe_gs_store(e, VCPU_OFF_SPILL + 8 * VCPU_RAX, rax);
	mm = xe_m(1, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_SPILL_FLAGS + 1);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &al, &mm, NULL);
	im = xe_i(4);
	xe_ins(e, ZYDIS_MNEMONIC_SHL, false, 2, &al, &im, NULL);
	im = xe_i(-0x80); /* 0x80 as a signed imm8 */
	xe_ins(e, ZYDIS_MNEMONIC_ADD, false, 2, &al, &im, NULL);
	mm = xe_m(1, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_SPILL_FLAGS);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &ah, &mm, NULL);
	xe_ins(e, ZYDIS_MNEMONIC_SAHF, false, 0, NULL, NULL, NULL);
	if (!free && tmp != ZYDIS_REGISTER_NONE)
		xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &orax, &ot, NULL);
	else if (!free)
		xe_gs_load(e, rax, VCPU_OFF_SPILL + 8 * VCPU_RAX);
	e->mask &= ~XLAT_SPILL_FLAGS;
	xe_pcmark(e);
	xe_cat(e, cat);
}

void xe_spill(struct xe *e, struct xlat_scratch *s, uint32_t live)
{
	int cat = xe_cat(e, XLAT_CAT_SPILL);
	s->spilled = 0;
	for (int i = 0; i < s->n; i++) {
		if (!(live & (1u << s->r[i])))
			continue;
		xe_gs_store(e, VCPU_OFF_SPILL + 8 * s->r[i], s->reg[i]);
		s->spilled |= 1u << s->r[i];
		e->mask |= 1u << s->r[i];
		xe_pcmark(e);
	}
	xe_cat(e, cat);
}

void xe_unspill(struct xe *e, struct xlat_scratch *s)
{
	e->idx_valid = false;
	int cat = xe_cat(e, XLAT_CAT_SPILL);
	for (int i = 0; i < s->n; i++) {
		if (!(s->spilled & (1u << s->r[i])))
			continue;
		xe_gs_load(e, s->reg[i], VCPU_OFF_SPILL + 8 * s->r[i]);
		e->mask &= ~(1u << s->r[i]);
		xe_pcmark(e);
	}
	xe_cat(e, cat);
}

void xe_callout(struct xe *e, int co)
{
	xe_to_host_stack(e);
	ZydisEncoderOperand m =
	    xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_CALLOUT + 8 * co);
	xe_ins(e, ZYDIS_MNEMONIC_CALL, true, 1, &m, NULL, NULL);
	xe_to_guest_stack(e);
}

/* lea r, [rip + label] (rel32 resolved in xe_finish like a branch's). */
static void xe_lea_label(struct xe *e, ZydisRegister r, int label)
{
	ZydisEncoderOperand d = xe_r(r);
	ZydisEncoderOperand m = xe_m(8, ZYDIS_REGISTER_RIP, ZYDIS_REGISTER_NONE, 0, 0x12345678);
	uint32_t before = e->len[e->cur];
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &d, &m, NULL);
	if (e->failed || e->overflow)
		return;
	if (e->len[e->cur] - before < 7 || e->n_fixups >= XLAT_MAX_FIXUPS) {
		e->failed = true;
		return;
	}
	struct xe_fixup *f = &e->fixups[e->n_fixups++];
	f->sec = (uint8_t)e->cur;
	f->pos = e->len[e->cur] - 4; /* disp32 is the last field: no immediate */
	f->label = label;
}

/*
 * Join the block's shared slow path for mem_info value info (COLD).  The
 * first access with that value holds it, right after its own slow path:
 *
 *   slow_k: ... ; lea T1, [rip + back_k]
 *   shared: mov dword %gs:mem_info, info ; jmp *%gs:callout[VCPU_CO_MEM]
 *
 * and later ones jump back to it, with a rel8 when it is in reach.  (Until
 * XLAT_VERSION 12 every slow path jumped forward, rel32, to shared paths
 * placed after all of them; until XLAT_VERSION 15 the store was a qword.)
 */
static void slow_join(struct xe *e, uint32_t info)
{
	for (int i = 0; i < e->n_slow; i++) {
		if (e->slow_info[i] != info)
			continue;
		const struct xe_label *l = &e->labels[e->slow_label[i]];
		int64_t rel = (int64_t)l->off - (int64_t)(e->len[e->cur] + 2);
		if (l->sec == e->cur && rel >= -128) {
			const uint8_t jmp8[] = {0xeb, (uint8_t)(int8_t)rel};
			xe_bytes(e, jmp8, sizeof(jmp8));
		} else {
			xe_branch(e, ZYDIS_MNEMONIC_JMP, e->slow_label[i]);
		}
		return;
	}
	if (e->n_slow >= XLAT_MAX_SLOW) {
		e->overflow = true;
		return;
	}
	e->slow_info[e->n_slow] = info;
	e->slow_label[e->n_slow] = xe_label_new(e);
	xe_label_place(e, e->slow_label[e->n_slow++]);
	xe_gs_store_imm32(e, 4, VCPU_OFF_MEM_INFO, (int64_t)info); /* the low dword only */
	ZydisEncoderOperand m = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0,
				     VCPU_OFF_CALLOUT + 8 * VCPU_CO_MEM);
	xe_ins(e, ZYDIS_MNEMONIC_JMP, true, 1, &m, NULL, NULL);
}

static void lea_addr(struct xe *e, ZydisRegister r, const struct xlat_addr *a, int64_t plus);

/* The %gs:mem_info word of a probe's slow path: the access's size and kind,
 * the register holding its address (A) and the one getting the resume
 * address (T1). */
_Static_assert(VCPU_MEM_RET_SHIFT + 4 <= 31, "mem_info is a positive imm32 (a dword store)");
static uint32_t mem_info(ZydisRegister A, ZydisRegister T1, unsigned size, bool write)
{
	return size | (write ? VCPU_MEM_WRITE : 0) |
	       (uint32_t)xe_gpr_num(A) << VCPU_MEM_ADDR_SHIFT |
	       (uint32_t)xe_gpr_num(T1) << VCPU_MEM_RET_SHIFT;
}

/* XLAT_OPT_COUNT_PROBES: vcpu.probes += 1 through R, a register the probe
 * is about to overwrite and its address does not name, with no flags
 * touched (the guest's may be live in the host's): mov, lea, mov. */
static void probe_count(struct xe *e, ZydisRegister R)
{
	if (!e->count_probes)
		return;
	ZydisEncoderOperand r = xe_r(R), mm = xe_m(8, R, ZYDIS_REGISTER_NONE, 0, 1);
	xe_gs_load(e, R, VCPU_OFF_PROBES);
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &r, &mm, NULL);
	xe_gs_store(e, VCPU_OFF_PROBES, R);
}

/* A probe's COLD part: at `slow` (the TLB missed), the address back in A
 * when `redo` says how (the two-register probe reused A), the return
 * point `back` in T1, and the jump to the block's shared slow path for
 * this access; then back to the section and category of the caller. */
static void probe_cold(struct xe *e, ZydisRegister A, ZydisRegister T1,
		       const struct xlat_addr *redo, unsigned size, bool write, int slow, int back,
		       int cat)
{
	int prev = e->cur;
	uint32_t info = mem_info(A, T1, size, write);
	xe_cat(e, XLAT_CAT_SLOW);
	xe_section(e, XE_COLD);
	xe_label_place(e, slow);
	if (redo)
		lea_addr(e, A, redo, 0);
	xe_lea_label(e, T1, back);
	slow_join(e, info);
	xe_section(e, prev);
	xe_cat(e, cat);
}

/*
 * The soft-MMU probe (QEMU softmmu style).  With A, T1, T2 the scratch
 * registers:
 *     lea   A, [guest address]      (or mov A, imm64 for absolute ones)
 *     add   A, %gs:fs_base/gs_base  (segment override only)
 *     mov   T1, A ; shr T1, 7 ; and T1, (N-1) << 5      T1 = TLB index * 32
 *     lea   T2, [A + size - 1] ; and T2, -4096          last byte's page
 *     cmp   T2, %gs:tlb.tag_{read,write}(T1)
 *     jne   slow                                         (COLD)
 *     add   A, %gs:tlb.addend(T1)
 *   back:
 * An access that crosses a page never matches (the tag is the first byte's
 * page, the compare uses the last byte's), so it takes the slow path:
 *   slow:   lea T1, [rip + back] ; jmp shared        (COLD, 12 bytes)
 *   shared: mov qword %gs:mem_info, size | write | A << 20 | T1 << 24
 *           jmp *%gs:callout[VCPU_CO_MEM]           (once per block and value)
 * VCPU_CO_MEM is entered on the guest stack: the runtime saves the state,
 * translates the address in A, puts the host address into A and resumes at
 * T1 (= back) with everything else as it was, or unwinds to the dispatcher
 * with exit_host_pc = back (the pc map at back - 1: this instruction).
 */
void xe_probe(struct xe *e, const struct xlat_scratch *s, const struct xlat_addr *a, unsigned size,
	      bool write)
{
	ZydisRegister A = s->reg[0], T1 = s->reg[1], T2 = s->reg[2];
	ZydisEncoderOperand oa = xe_r(A), ot1 = xe_r(T1), ot2 = xe_r(T2), im, mm;
	if (size == 0)
		size = 1;
	e->idx_valid = false; /* its registers may include xe_probe2's index */
	int cat = xe_cat(e, XLAT_CAT_PROBE);
	probe_count(e, T2); /* computed below from A; no address names it */

	uint32_t before = e->len[e->cur];
	if (a->absolute) {
		im = xe_i(a->disp);
		xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &oa, &im, NULL);
		xe_note(e, before, 0, a->v, (uint64_t)a->disp, false);
	} else {
		/* 32-bit address registers make the encoder emit 0x67: the
		 * address is computed in 32 bits and zero-extended; an AGEN
		 * operand's size is the address size */
		mm = xe_m(a->addr32 ? 4 : 8, a->base, a->index, a->scale, a->disp);
		xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &oa, &mm, NULL);
		xe_note(e, before, XE_NOTE_DISP, a->v, (uint64_t)a->disp, false);
	}
	if (a->seg == ZYDIS_REGISTER_FS || a->seg == ZYDIS_REGISTER_GS) {
		mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0,
			  a->seg == ZYDIS_REGISTER_FS ? VCPU_OFF_FS_BASE : VCPU_OFF_GS_BASE);
		xe_ins(e, ZYDIS_MNEMONIC_ADD, true, 2, &oa, &mm, NULL);
	}
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &ot1, &oa, NULL);
	im = xe_i(12 - 5);
	xe_ins(e, ZYDIS_MNEMONIC_SHR, false, 2, &ot1, &im, NULL);
	im = xe_i((VCPU_TLB_ENTRIES - 1) << 5);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &ot1, &im, NULL);
	mm = xe_m(8, A, ZYDIS_REGISTER_NONE, 0, size - 1);
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &ot2, &mm, NULL);
	im = xe_i(-4096);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &ot2, &im, NULL);
	mm = xe_m(8, T1, ZYDIS_REGISTER_NONE, 0,
		  e->off_tlb + (write ? offsetof(struct vcpu_tlb_entry, tag_write)
				      : offsetof(struct vcpu_tlb_entry, tag_read)));
	xe_ins(e, ZYDIS_MNEMONIC_CMP, true, 2, &ot2, &mm, NULL);
	int slow = xe_label_new(e), back = xe_label_new(e);
	xe_branch(e, ZYDIS_MNEMONIC_JNZ, slow);
	mm = xe_m(8, T1, ZYDIS_REGISTER_NONE, 0,
		  e->off_tlb + offsetof(struct vcpu_tlb_entry, addend));
	xe_ins(e, ZYDIS_MNEMONIC_ADD, true, 2, &oa, &mm, NULL);
	xe_label_place(e, back);

	probe_cold(e, A, T1, NULL, size, write, slow, back, cat);
}

/* xe_probe2 takes a: base/index/disp without segment or 0x67, whose disp +
 * size - 1 still fits a disp32.  A template cannot describe a block that
 * fails only the last condition (another displacement would pick the other
 * form without a class change): it gets none. */
bool xe_probe2_ok(struct xe *e, const struct xlat_addr *a, unsigned size)
{
	if (a->absolute || a->seg || a->addr32)
		return false;
	int64_t last = a->disp + (size ? size : 1) - 1;
	if (last == (int32_t)last)
		return true;
	if (e->tm)
		e->tm->bad = true;
	return false;
}

/*
 * The probe with two scratch registers (A, T1) for an address [base +
 * index * scale + disp]: the guest registers it names stay as they are
 * during the probe, so the address is recomputed instead of kept in a third
 * register, at the same count of instructions as xe_probe:
 *     lea   T1, [address] ; shr T1, 7 ; and T1, (N-1) << 5
 *     lea   A, [address + size - 1] ; and A, -4096
 *     cmp   A, %gs:tlb.tag_{read,write}(T1) ; jne slow
 *     lea   A, [address] ; add A, %gs:tlb.addend(T1)
 *   back:
 *   slow:   lea A, [address] ; lea T1, [rip + back] ; jmp shared   (COLD)
 * With XLAT_OPT_EXACT_FAULTS every scratch register is saved and restored
 * in the block: one fewer is a store and a load fewer.  When the previous
 * memory access of the block probed the same address expression and T1
 * still holds its index (e->idx_valid), the first three instructions go
 * (a stack slot read and written back, `x += i` on a volatile).
 */
static void lea_addr(struct xe *e, ZydisRegister r, const struct xlat_addr *a, int64_t plus)
{
	ZydisEncoderOperand d = xe_r(r), mm = xe_m(8, a->base, a->index, a->scale, a->disp + plus);
	uint32_t before = e->len[e->cur];
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &d, &mm, NULL);
	xe_note(e, before, XE_NOTE_DISP, a->v, (uint64_t)(a->disp + plus), false);
}

void xe_probe2(struct xe *e, ZydisRegister A, ZydisRegister T1, const struct xlat_addr *a,
	       unsigned size, bool write)
{
	ZydisEncoderOperand oa = xe_r(A), ot1 = xe_r(T1), im, mm;
	if (size == 0)
		size = 1;
	int cat = xe_cat(e, XLAT_CAT_PROBE);
	probe_count(e, A); /* not T1: it may hold the previous probe's index */
	/* the previous probe's index register still holds this address's
	 * index (same address expression, nothing changed it): keep it */
	if (!(e->idx_valid && e->idx_reg == T1 && e->idx_base == a->base &&
	      e->idx_index == a->index && e->idx_scale == a->scale && e->idx_disp == a->disp)) {
		lea_addr(e, T1, a, 0);
		im = xe_i(12 - 5);
		xe_ins(e, ZYDIS_MNEMONIC_SHR, false, 2, &ot1, &im, NULL);
		im = xe_i((VCPU_TLB_ENTRIES - 1) << 5);
		xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &ot1, &im, NULL);
	}
	lea_addr(e, A, a, (int64_t)size - 1);
	im = xe_i(-4096);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &oa, &im, NULL);
	mm = xe_m(8, T1, ZYDIS_REGISTER_NONE, 0,
		  e->off_tlb + (write ? offsetof(struct vcpu_tlb_entry, tag_write)
				      : offsetof(struct vcpu_tlb_entry, tag_read)));
	xe_ins(e, ZYDIS_MNEMONIC_CMP, true, 2, &oa, &mm, NULL);
	int slow = xe_label_new(e), back = xe_label_new(e);
	xe_branch(e, ZYDIS_MNEMONIC_JNZ, slow);
	lea_addr(e, A, a, 0);
	mm = xe_m(8, T1, ZYDIS_REGISTER_NONE, 0,
		  e->off_tlb + offsetof(struct vcpu_tlb_entry, addend));
	xe_ins(e, ZYDIS_MNEMONIC_ADD, true, 2, &oa, &mm, NULL);
	xe_label_place(e, back);

	probe_cold(e, A, T1, a, size, write, slow, back, cat);
	/* after a slow path T1 is 0, not the index: a probe that reuses it then
	 * misses (entry 0 holds only pages of index 0) and takes its own slow
	 * path, which is correct */
	e->idx_valid = true;
	e->idx_reg = T1;
	e->idx_base = a->base;
	e->idx_index = a->index;
	e->idx_scale = a->scale;
	e->idx_disp = a->disp;
}

/* xe_probe_abs takes a: an absolute address without segment whose first
 * and last byte fit a sign-extended imm32 (kernel addresses, user ones
 * below 2 GiB), an access of at most 16 bytes. */
bool xe_probe_abs_ok(const struct xlat_addr *a, unsigned size)
{
	uint64_t first = (uint64_t)a->disp, last = first + (size ? size : 1) - 1;
	return a->absolute && !a->seg && !a->addr32 && size <= 16 &&
	       (int64_t)first == (int32_t)first && (int64_t)last == (int32_t)last;
}

/*
 * The probe of an absolute address (RIP-relative, moffs): its TLB entry
 * and the page of its last byte are constants, so one scratch register (A)
 * does, and four instructions instead of nine:
 *     cmp   qword %gs:tlb[index].tag_{read,write}, simm32 page of the last byte
 *     jne   slow                                       (COLD)
 *     mov   A, address
 *     add   A, %gs:tlb[index].addend
 *   back:
 *   slow:   mov %gs:spill[T1], T1          (T1 live and not pending)
 *           mov A, address ; lea T1, [rip + land] ; jmp shared
 *   land:   mov T1, %gs:spill[T1] ; jmp back
 * T1 (not the instruction's, not A) receives the resume address as in
 * xe_probe; it is saved only on the slow path, and comes back at `land`
 * (without a save, the slow path resumes at back).  Templates record the
 * two entry displacements and the page (XLAT_RELOC_TLB).
 */
void xe_probe_abs(struct xe *e, ZydisRegister A, ZydisRegister T1, bool t1_save,
		  const struct xlat_addr *a, unsigned size, bool write)
{
	if (size == 0)
		size = 1;
	int cat = xe_cat(e, XLAT_CAT_PROBE);
	e->idx_valid = false;
	probe_count(e, A);
	uint64_t va = (uint64_t)a->disp;
	int64_t page = (int64_t)((va + size - 1) & ~(uint64_t)(GUEST_PAGE_SIZE - 1));
	uint32_t ent = (uint32_t)e->off_tlb + (uint32_t)VCPU_TLB_INDEX(va) * 32;
	uint32_t tag = ent + (uint32_t)(write ? offsetof(struct vcpu_tlb_entry, tag_write)
					      : offsetof(struct vcpu_tlb_entry, tag_read));
	uint32_t add = ent + (uint32_t)offsetof(struct vcpu_tlb_entry, addend);
	ZydisEncoderOperand oa = xe_r(A), im, mm;

	uint32_t before = e->len[e->cur];
	mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, tag);
	im = xe_i(page);
	xe_ins(e, ZYDIS_MNEMONIC_CMP, true, 2, &mm, &im, NULL);
	xe_note_tlb(e, before, XE_NOTE_DISP, a->v, va, tag, 0);
	xe_note_tlb(e, before, 0, a->v, va, (uint64_t)page, size);
	int slow = xe_label_new(e), back = xe_label_new(e);
	xe_branch(e, ZYDIS_MNEMONIC_JNZ, slow);
	before = e->len[e->cur];
	im = xe_i(a->disp);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &oa, &im, NULL);
	xe_note(e, before, 0, a->v, va, false);
	before = e->len[e->cur];
	mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, add);
	xe_ins(e, ZYDIS_MNEMONIC_ADD, true, 2, &oa, &mm, NULL);
	xe_note_tlb(e, before, XE_NOTE_DISP, a->v, va, add, 0);
	xe_label_place(e, back);

	int prev = e->cur;
	uint32_t mask = e->mask, t1 = (uint32_t)xe_gpr_num(T1);
	uint32_t info = mem_info(A, T1, size, write);
	xe_cat(e, XLAT_CAT_SLOW);
	xe_section(e, XE_COLD);
	xe_label_place(e, slow);
	if (t1_save) {
		xe_gs_store(e, VCPU_OFF_SPILL + 8 * t1, T1);
		e->mask |= 1u << t1;
		xe_pcmark(e);
	}
	before = e->len[e->cur];
	im = xe_i(a->disp);
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &oa, &im, NULL);
	xe_note(e, before, 0, a->v, va, false);
	int land = t1_save ? xe_label_new(e) : back;
	xe_lea_label(e, T1, land);
	slow_join(e, info);
	if (t1_save) {
		xe_label_place(e, land);
		xe_gs_load(e, T1, VCPU_OFF_SPILL + 8 * t1);
		e->mask = mask;
		xe_pcmark(e);
		xe_branch(e, ZYDIS_MNEMONIC_JMP, back);
	}
	e->mask = mask;
	xe_section(e, prev);
	xe_cat(e, cat);
}

int xe_exit_new(struct xe *e, enum xlat_exit_kind k, gva_t target)
{
	if (e->n_exits >= XLAT_MAX_EXITS) {
		e->overflow = true;
		return 0;
	}
	int i = (int)e->n_exits++;
	e->exits[i].kind = (uint8_t)k;
	e->exits[i].target = target;
	e->exits[i].patch_off = ~0u;
	e->exit_patch_label[i] = -1;
	e->exit_stub_label[i] = xe_label_new(e);
	return i;
}

void xe_exit_branch(struct xe *e, ZydisMnemonic m, int idx)
{
	int l = xe_label_new(e);
	int cat = xe_cat(e, XLAT_CAT_BRANCH);
	xe_branch(e, m, e->exit_stub_label[idx]);
	xe_cat(e, cat);
	/* the rel32 is the last 4 bytes of the branch just emitted */
	e->labels[l].sec = (int8_t)e->cur;
	e->labels[l].off = e->len[e->cur] - 4;
	e->exit_patch_label[idx] = l;
}

void xe_exit_jump_stub(struct xe *e, int idx)
{
	xe_branch(e, ZYDIS_MNEMONIC_JMP, e->exit_stub_label[idx]);
}

/*
 * Exit stubs: record which exit left, then join the block's common tail,
 * which records the block and jumps through the VCPU_CO_EXIT call-out.
 * All guest registers and flags hold their guest values here.  Since
 * XLAT_VERSION 10 (VCPU ABI 9) a stub does not store its target: the
 * runtime takes it from exit i of the block's exit record (an IRQ exit's
 * target is the block start, exit_block).  Indirect exits (IBL miss) have
 * their target stored in exit_target by the code that computed it.
 *
 *   stub_i: mov byte %gs:exit_info, kind | i << 4 (| syscall/sysret flag)
 *           [mov qword %gs:exit_target, simm32]   (only PRIV at `syscall`)
 *           jmp tail                      (the last stub falls through)
 *   tail:   mov qword %gs:exit_block, simm32      (an IRQ exit enters here)
 *           jmp *%gs:callout[VCPU_CO_EXIT]
 * An IRQ exit has no stub since XLAT_VERSION 14 (VCPU ABI 11): exit_info
 * already says IRQ, exit 0 (VCPU_EXIT_INFO_PRESET, stored by tc_entry.S
 * whenever it enters translated code; only a stub, which leaves, changes
 * it).
 * A guest address that does not fit a sign-extended imm32 (user code above
 * 2 GiB) is stored as two dwords (store_gva).
 */
/*
 * User blocks (XLAT_OPT_USER) chain only within their own pages (the code
 * cache's rule), so a direct exit to another page first looks its target
 * up in the user IBL table, which only names blocks valid in the current
 * address space, with the guest flags kept in rax (lahf; seto al):
 *
 *   mov %gs:spill[rax], rax ; lahf ; seto al ; mov %gs:mem_tmp, rax
 *   mov rax, target ; or rax, %gs:uibl_tag
 *   cmp rax, %gs:uibl[target & mask].guest_rip ; jne miss
 *   mov rax, %gs:uibl[...].host ; mov %gs:br_host, rax
 *   (restore: mov rax, %gs:mem_tmp ; add al, 0x7f ; sahf ; mov rax, %gs:spill[rax])
 *   jmp *%gs:br_host
 *   miss: (restore), then the exit stub as usual
 */
static void emit_user_direct_probe(struct xe *e, int x)
{
	const gva_t target = e->exits[x].target;
	static const uint8_t save_flags[] = {0x9f, 0x0f, 0x90, 0xc0}; /* lahf; seto al */
	static const uint8_t load_flags[] = {0x04, 0x7f, 0x9e};	      /* add al, 0x7f; sahf */
	const uint32_t spill_rax = VCPU_OFF_SPILL + 8 * VCPU_RAX;
	const uint32_t ent = (uint32_t)e->off_ibl + (uint32_t)VCPU_UIBL_INDEX(target) * 16;
	ZydisEncoderOperand rax = xe_r(ZYDIS_REGISTER_RAX), im, mm;
	int miss = xe_label_new(e);

	xe_gs_store(e, spill_rax, ZYDIS_REGISTER_RAX);
	xe_bytes(e, save_flags, sizeof(save_flags));
	xe_gs_store(e, VCPU_OFF_MEM_TMP, ZYDIS_REGISTER_RAX);
	im = xe_i((int64_t)target);
	uint32_t before = e->len[e->cur];
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &rax, &im, NULL);
	xe_note(e, before, 0, e->exit_val[x], target, false);
	mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_UIBL_TAG);
	xe_ins(e, ZYDIS_MNEMONIC_OR, true, 2, &rax, &mm, NULL); /* the space's tag */
	mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0,
		  ent + offsetof(struct vcpu_ibl_entry, guest_rip));
	before = e->len[e->cur];
	xe_ins(e, ZYDIS_MNEMONIC_CMP, true, 2, &rax, &mm, NULL);
	xe_note_uibl(e, before, x);
	xe_branch(e, ZYDIS_MNEMONIC_JNZ, miss);
	before = e->len[e->cur];
	xe_gs_load(e, ZYDIS_REGISTER_RAX, ent + offsetof(struct vcpu_ibl_entry, host));
	xe_note_uibl(e, before, x);
	xe_gs_store(e, VCPU_OFF_BR_HOST, ZYDIS_REGISTER_RAX);
	xe_gs_load(e, ZYDIS_REGISTER_RAX, VCPU_OFF_MEM_TMP);
	xe_bytes(e, load_flags, sizeof(load_flags));
	xe_gs_load(e, ZYDIS_REGISTER_RAX, spill_rax);
	mm = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_BR_HOST);
	xe_ins(e, ZYDIS_MNEMONIC_JMP, true, 1, &mm, NULL, NULL);
	xe_label_place(e, miss);
	xe_gs_load(e, ZYDIS_REGISTER_RAX, VCPU_OFF_MEM_TMP);
	xe_bytes(e, load_flags, sizeof(load_flags));
	xe_gs_load(e, ZYDIS_REGISTER_RAX, spill_rax);
}

/* mov %gs:off, v (a guest address, exit exit_idx's target or -1: the block
 * start).  Kernel blocks: one store of a sign-extended imm32 when v allows
 * it (kernel addresses do), else two dword stores; the form depends on the
 * value's class, which templates record (XLAT_RV_FORM).  User blocks keep
 * the two dword stores whatever the value: their templates move programs
 * between 0x400000 and 0x7f... (runtime/ureloc), where the compact form
 * would refuse every block. */
static void store_gva(struct xe *e, uint32_t off, gva_t v, int exit_idx)
{
	bool user = e->off_ibl == VCPU_OFF_UIBL;
	uint32_t before = e->len[e->cur];
	if (!user && (int64_t)v == (int64_t)(int32_t)v) {
		xe_gs_store_imm32(e, 8, off, (int64_t)v);
		xe_note_exit_store(e, before, exit_idx, 0, false);
		return;
	}
	xe_gs_store_imm32(e, 4, off, (int32_t)(uint32_t)v);
	xe_note_exit_store(e, before, exit_idx, 0, user);
	before = e->len[e->cur];
	xe_gs_store_imm32(e, 4, off + 4, (int32_t)(uint32_t)(v >> 32));
	xe_note_exit_store(e, before, exit_idx, 32, user);
}

static bool exit_is_direct(uint8_t kind)
{
	return kind == XLAT_EXIT_JMP || kind == XLAT_EXIT_JCC_TAKEN || kind == XLAT_EXIT_JCC_FALL ||
	       kind == XLAT_EXIT_CALL || kind == XLAT_EXIT_FALL;
}

/* A user block's direct exit to another page probes the user IBL in its
 * stub first (emit_user_direct_probe). */
static bool stub_probes(const struct xe *e, const struct bt_exit *x)
{
	/* a target on the block's own page is chained at its first exit:
	 * probing would find it in the table and never exit */
	return e->off_ibl == VCPU_OFF_UIBL && !e->step && exit_is_direct(x->kind) &&
	       (x->target & GUEST_PAGE_MASK) != (e->block_start & GUEST_PAGE_MASK);
}

/* exit_info's low byte holds the kind, the index and the two flags */
_Static_assert(XLAT_NEXIT_KINDS <= 16 && XLAT_MAX_EXITS <= 4, "exit_info byte");
_Static_assert((VCPU_EXIT_INFO(15, 3) & (VCPU_EXIT_SYSCALL | VCPU_EXIT_SYSRET)) == 0,
	       "exit_info flags");
_Static_assert(VCPU_EXIT_INFO_PRESET == VCPU_EXIT_INFO(XLAT_EXIT_IRQ, 0), "exit_info preset");

void xe_emit_stubs(struct xe *e)
{
	int prev = e->cur;
	int tail = xe_label_new(e);
	xe_section(e, XE_COLD);
	int cat = xe_cat(e, XLAT_CAT_STUB);
	/* without probing stubs, a stub is at most 9 + 24 + 2 bytes and the
	 * tail is at most three stubs away: `jmp tail` takes a rel8 */
	bool short_jmp = true;
	for (uint32_t i = 0; i < e->n_exits; i++)
		if (stub_probes(e, &e->exits[i]))
			short_jmp = false;
	/* an IRQ exit has no stub: it enters the tail, and exit_info holds
	 * VCPU_EXIT_INFO_PRESET, which tc_entry.S stores whenever it enters
	 * translated code (VCPU ABI 11) */
	int last = -1;
	for (uint32_t i = 0; i < e->n_exits; i++)
		if (e->exits[i].kind != XLAT_EXIT_IRQ)
			last = (int)i;
	uint32_t rel8_pos[XLAT_MAX_EXITS];
	uint32_t n_rel8 = 0;
	for (uint32_t i = 0; i < e->n_exits; i++) {
		struct bt_exit *x = &e->exits[i];
		if (x->kind == XLAT_EXIT_IRQ) {
			xe_note_exit_store(e, XE_NOTE_NO_CODE, (int)i, 0, true);
			continue;
		}
		xe_label_place(e, e->exit_stub_label[i]);
		if (stub_probes(e, x))
			emit_user_direct_probe(e, (int)i);
		xe_gs_store_imm32(
		    e, 1, VCPU_OFF_EXIT_INFO,
		    (int8_t)(VCPU_EXIT_INFO(x->kind, i) |
			     ((x->flags & XLAT_EXIT_F_SYSCALL) ? VCPU_EXIT_SYSCALL : 0) |
			     ((x->flags & XLAT_EXIT_F_SYSRET) ? VCPU_EXIT_SYSRET : 0)));
		/* the runtime reads the target from the exit record (the
		 * block named by exit_block, exit i); only tc_entry.S's fast
		 * system call, which never reaches C, reads it from the vCPU */
		if (x->flags & XLAT_EXIT_F_SYSCALL)
			store_gva(e, VCPU_OFF_EXIT_TARGET, x->target, (int)i);
		else if (x->kind != XLAT_EXIT_INDIRECT && x->kind != XLAT_EXIT_RET)
			xe_note_exit_store(e, XE_NOTE_NO_CODE, (int)i, 0, true);
		if ((int)i != last && short_jmp) {
			static const uint8_t jmp8[] = {0xeb, 0x00}; /* jmp tail (rel8 below) */
			xe_bytes(e, jmp8, sizeof(jmp8));
			rel8_pos[n_rel8++] = e->len[e->cur] - 1;
		} else if ((int)i != last) {
			xe_branch(e, ZYDIS_MNEMONIC_JMP, tail);
		}
	}
	xe_label_place(e, tail);
	for (uint32_t i = 0; i < e->n_exits; i++)
		if (e->exits[i].kind == XLAT_EXIT_IRQ)
			xe_label_place(e, e->exit_stub_label[i]);
	for (uint32_t i = 0; i < n_rel8 && !e->failed && !e->overflow; i++) {
		uint32_t d = e->len[XE_COLD] - (rel8_pos[i] + 1);
		if (d > 127)
			e->failed = true; /* cannot happen: see short_jmp */
		else
			e->sec[XE_COLD][rel8_pos[i]] = (uint8_t)d;
	}
	store_gva(e, VCPU_OFF_EXIT_BLOCK, e->block_start, -1);
	ZydisEncoderOperand m = xe_m(8, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0,
				     VCPU_OFF_CALLOUT + 8 * VCPU_CO_EXIT);
	xe_ins(e, ZYDIS_MNEMONIC_JMP, true, 1, &m, NULL, NULL);
	xe_section(e, prev);
	xe_cat(e, cat);
}

static uint32_t xe_final(const struct xe *e, int sec, uint32_t off)
{
	return sec == XE_MAIN ? off : e->len[XE_MAIN] + off;
}

static bool put_varint(uint8_t *p, uint32_t cap, uint32_t *n, uint32_t v)
{
	do {
		if (*n >= cap)
			return false;
		uint8_t b = v & 0x7f;
		v >>= 7;
		p[(*n)++] = b | (v ? 0x80 : 0);
	} while (v);
	return true;
}

bool xe_finish(struct xe *e, uint8_t *out, uint32_t cap, uint32_t *code_len, uint8_t *pcmap,
	       uint32_t pcmap_cap, uint32_t *pcmap_len)
{
	uint32_t total = e->len[XE_MAIN] + e->len[XE_COLD];
	if (e->failed || e->overflow || total > cap)
		return false;
	memcpy(out, e->sec[XE_MAIN], e->len[XE_MAIN]);
	memcpy(out + e->len[XE_MAIN], e->sec[XE_COLD], e->len[XE_COLD]);
	for (int i = 0; i < e->n_fixups; i++) {
		const struct xe_fixup *f = &e->fixups[i];
		const struct xe_label *l = &e->labels[f->label];
		if (l->sec < 0)
			return false;
		uint32_t pos = xe_final(e, f->sec, f->pos);
		int32_t rel = (int32_t)(xe_final(e, l->sec, l->off) - (pos + 4));
		memcpy(out + pos, &rel, 4);
	}
	for (uint32_t i = 0; i < e->n_exits; i++) {
		const struct xe_label *sl = &e->labels[e->exit_stub_label[i]];
		if (sl->sec < 0)
			return false;
		e->exits[i].stub_off = xe_final(e, sl->sec, sl->off);
		if (e->exit_patch_label[i] >= 0) {
			const struct xe_label *pl = &e->labels[e->exit_patch_label[i]];
			e->exits[i].patch_off = xe_final(e, pl->sec, pl->off);
		}
	}
	/* pc map: varint(host delta), varint(guest offset), varint(mask) */
	uint32_t n = 0, prev = 0;
	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < e->n_pc[s]; i++) {
			const struct xe_pcent *p = &e->pc[s][i];
			uint32_t off = xe_final(e, s, p->off);
			if (off < prev)
				return false;
			if (!put_varint(pcmap, pcmap_cap, &n, off - prev) ||
			    !put_varint(pcmap, pcmap_cap, &n, p->goff) ||
			    !put_varint(pcmap, pcmap_cap, &n, p->mask))
				return false;
			prev = off;
		}
	}
	*code_len = total;
	*pcmap_len = n;
	return true;
}
