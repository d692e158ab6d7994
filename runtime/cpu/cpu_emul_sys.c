/*
 * System instructions: descriptor-table registers (lgdt/lidt/sgdt/sidt,
 * ltr/lldt/str/sldt), privilege transitions (iretq, sysretq/sysretl) and
 * far transfers (lret, far jmp/call through memory).
 *
 * Invariants
 *  1. Every check and every guest-memory read of a transition happens
 *     before the first vCPU field changes: a faulting iret/lret/sysret
 *     leaves the state exactly as before the instruction.
 *  2. iret/lret to an outer level (CPL 0 -> 3): SS:RSP come from the stack,
 *     DS/ES/FS/GS selectors whose DPL < new CPL become null (their bases,
 *     kept in vcpu_abi for FS/GS, stay); the outcome is CPU_OUT_USER.
 *  3. ltr marks the TSS descriptor busy in the guest GDT (the kernel clears
 *     it itself before reloading); an already busy TSS is #GP(sel).
 *  4. Only code-segment targets for far jmp/call (no call/task gates: #GP).
 *  5. Entries (syscall, sysenter) and exits (sysret, sysexit, iret) follow
 *     Intel: syscall/sysret #UD outside 64-bit mode; sysenter works from
 *     compat and 64-bit code; SGDT/SIDT/SLDT/STR #GP(0) above CPL 0 when
 *     CR4.UMIP is set.
 */
#include "runtime/cpu/cpu_internal.h"

#include <string.h>

/* ---- descriptor-table registers ---------------------------------------- */

static enum cpu_emu_rc emu_lgdt_lidt(struct cpu_emu *e, struct cpu_dtr *dtr)
{
	struct vcpu *v = e->v;
	if (v->cpl != 0)
		return emu_bool(cpu_raise_gp0(v));
	uint8_t buf[10];
	if (!cpu_mem_read(v, cpu_op_addr(v, e->in, &e->in->ops[0]), buf, 10, 0))
		return EMU_EXC;
	uint16_t limit;
	uint64_t base;
	memcpy(&limit, buf, 2);
	memcpy(&base, buf + 2, 8);
	if (!cpu_is_canonical(base))
		return emu_bool(cpu_raise_gp0(v));
	dtr->base = base;
	dtr->limit = limit;
	return EMU_OK;
}

static enum cpu_emu_rc emu_sgdt_sidt(struct cpu_emu *e, const struct cpu_dtr *dtr)
{
	if (!cpu_umip_ok(e->v))
		return emu_bool(cpu_raise_gp0(e->v));
	uint8_t buf[10];
	memcpy(buf, &dtr->limit, 2);
	memcpy(buf + 2, &dtr->base, 8);
	return emu_bool(cpu_mem_write(e->v, cpu_op_addr(e->v, e->in, &e->in->ops[0]), buf, 10, 0));
}

/* Read a 16-byte system descriptor from the GDT (ltr/lldt). */
static bool read_sys_desc(struct vcpu *v, uint16_t sel, uint64_t d[2])
{
	if (sel & 4)
		return cpu_raise_err(v, CPU_EXC_GP, sel & 0xfffc);
	if ((uint32_t)(sel & 0xfff8) + 15 > v->gdtr.limit)
		return cpu_raise_err(v, CPU_EXC_GP, sel & 0xfffc);
	return cpu_mem_read(v, v->gdtr.base + (sel & 0xfff8), d, 16, MMU_ACC_IMPLICIT);
}

static void sys_desc_to_seg(const uint64_t d[2], uint16_t sel, struct cpu_seg *s)
{
	cpu_desc_to_seg(d[0], sel, s);
	s->base |= (d[1] & 0xffffffffull) << 32;
}

static enum cpu_emu_rc emu_ltr_lldt(struct cpu_emu *e, bool ltr)
{
	struct vcpu *v = e->v;
	uint64_t x;
	if (v->cpl != 0)
		return emu_bool(cpu_raise_gp0(v));
	if (!cpu_op_read(v, e->in, &e->in->ops[0], &x))
		return EMU_EXC;
	uint16_t sel = (uint16_t)x;
	if ((sel & 0xfffc) == 0) {
		if (ltr)
			return emu_bool(cpu_raise_gp0(v));
		v->ldtr.sel = sel;
		v->ldtr.base = 0;
		v->ldtr.limit = 0;
		v->ldtr.ar = CPU_AR_UNUSABLE;
		return EMU_OK;
	}
	uint64_t d[2];
	if (!read_sys_desc(v, sel, d))
		return EMU_EXC;
	unsigned type = (unsigned)(d[0] >> 40) & 0x1f; /* with the S bit */
	uint16_t err = sel & 0xfffc;
	if (type != (ltr ? 0x9u : 0x2u) || ((d[1] >> 40) & 0x1f) != 0)
		return emu_bool(cpu_raise_err(v, CPU_EXC_GP, err));
	if (!((d[0] >> 47) & 1))
		return emu_bool(cpu_raise_err(v, CPU_EXC_NP, err));
	uint64_t base = ((d[0] >> 16) & 0xffffff) | (((d[0] >> 56) & 0xff) << 24) |
			((d[1] & 0xffffffffull) << 32);
	if (!cpu_is_canonical(base))
		return emu_bool(cpu_raise_err(v, CPU_EXC_GP, err));
	if (ltr) {
		uint8_t access = (uint8_t)(d[0] >> 40) | 0x2; /* busy */
		if (!cpu_mem_write(v, v->gdtr.base + (sel & 0xfff8) + 5, &access, 1,
				   MMU_ACC_IMPLICIT))
			return EMU_EXC;
		d[0] |= 2ull << 40;
		sys_desc_to_seg(d, sel, &v->tr);
	} else {
		sys_desc_to_seg(d, sel, &v->ldtr);
	}
	return EMU_OK;
}

static enum cpu_emu_rc emu_store_sel(struct cpu_emu *e, uint16_t sel)
{
	const ZydisDecodedOperand *op = &e->in->ops[0];
	if (!cpu_umip_ok(e->v))
		return emu_bool(cpu_raise_gp0(e->v));
	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY)
		return emu_bool(cpu_mem_write(e->v, cpu_op_addr(e->v, e->in, op), &sel, 2, 0));
	cpu_gpr_write(e->v, op->reg.value, sel); /* r32/r64: zero-extended */
	return EMU_OK;
}

/* ---- privilege transitions --------------------------------------------- */

/* Null data segment registers the new (outer) CPL may not use. */
static void null_inaccessible_segs(struct vcpu *v, unsigned cpl)
{
	static const enum cpu_sreg regs[] = {CPU_ES, CPU_DS, CPU_FS, CPU_GS};
	for (size_t i = 0; i < BT_ARRAY_SIZE(regs); i++) {
		struct cpu_seg *s = &v->seg[regs[i]];
		if (s->ar & CPU_AR_UNUSABLE)
			continue;
		unsigned dpl = (s->ar & CPU_AR_DPL_MASK) >> CPU_AR_DPL_SHIFT;
		bool conforming_code = (s->ar & 0xc) == 0xc;
		if (!conforming_code && dpl < cpl) {
			s->sel = 0;
			s->ar = CPU_AR_UNUSABLE;
		}
	}
}

/*
 * Common tail of iret and lret: load CS (popped by the caller), SS when
 * has_ss (any 64-bit iret, an outer lret), RSP, and RFLAGS for iret.  All
 * checks first, then commit.
 */
static enum cpu_emu_rc far_return(struct cpu_emu *e, uint64_t rip, uint16_t cs, bool has_ss,
				  uint16_t ss, uint64_t rsp, bool set_flags, uint64_t rflags)
{
	struct vcpu *v = e->v;
	unsigned rpl = cs & 3;
	if ((cs & 0xfffc) == 0)
		return emu_bool(cpu_raise_gp0(v));
	if (rpl < v->cpl)
		return emu_bool(cpu_raise_err(v, CPU_EXC_GP, cs & 0xfffc));
	uint64_t cs_desc;
	if (!cpu_read_desc(v, cs, &cs_desc) || !cpu_check_code_seg(v, cs, cs_desc, rpl, 0))
		return EMU_EXC;
	bool to_64 = (cs_desc >> 53) & 1;
	if (to_64 ? !cpu_is_canonical(rip) : rip > 0xffffffffull)
		return emu_bool(cpu_raise_gp0(v));
	struct cpu_seg new_ss = v->seg[CPU_SS];
	if (has_ss) {
		if ((ss & 0xfffc) == 0) {
			/* null SS: only for a 64-bit target at CPL < 3 */
			if (rpl == 3 || !to_64 || (ss & 3) != rpl)
				return emu_bool(cpu_raise_gp0(v));
			new_ss = (struct cpu_seg){
			    .sel = ss, .ar = CPU_AR_UNUSABLE | (rpl << CPU_AR_DPL_SHIFT)};
		} else {
			struct cpu_seg saved = v->seg[CPU_SS];
			if (!cpu_load_ss_for_cpl(v, ss, rpl))
				return EMU_EXC;
			new_ss = v->seg[CPU_SS];
			v->seg[CPU_SS] = saved;
		}
	}
	if (!cpu_set_desc_accessed(v, cs, &cs_desc))
		return EMU_EXC;

	/* commit */
	unsigned old_cpl = v->cpl;
	cpu_desc_to_seg(cs_desc, cs, &v->seg[CPU_CS]);
	v->seg[CPU_SS] = new_ss;
	v->abi->gpr[VCPU_RSP] = rsp;
	v->abi->rip = rip;
	e->jumped = true;
	if (set_flags) {
		/* SDM IRET: at CPL 0 every flag is writable (VM stays 0 in long
		 * mode); above it IOPL, VIF and VIP are kept, and IF too when
		 * CPL > IOPL */
		uint64_t f = rflags & ~CPU_RFLAGS_VM;
		uint64_t keep = 0;
		if (old_cpl > 0)
			keep |= CPU_RFLAGS_IOPL | CPU_RFLAGS_VIF | CPU_RFLAGS_VIP;
		if (old_cpl > cpu_iopl(v))
			keep |= CPU_RFLAGS_IF;
		cpu_set_rflags(v, (f & ~keep) | (cpu_rflags(v) & keep));
	}
	if (rpl != old_cpl) {
		null_inaccessible_segs(v, rpl);
		cpu_set_cpl(v, rpl);
	}
	e->out = cpu_run_outcome(v);
	return EMU_OK;
}

static enum cpu_emu_rc emu_iret(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	unsigned w = e->in->di.operand_width / 8; /* iretq 8, iretd 4, iretw 2 */
	if (cpu_rflags(v) & CPU_RFLAGS_NT)	  /* no task switches in long mode */
		return emu_bool(cpu_raise_gp0(v));
	uint8_t buf[40] = {0};
	uint64_t rsp = v->abi->gpr[VCPU_RSP];
	if (!cpu_stack_read(v, rsp, buf, 5 * w))
		return EMU_EXC;
	uint64_t item[5] = {0};
	for (unsigned i = 0; i < 5; i++)
		memcpy(&item[i], buf + i * w, w);
	enum cpu_emu_rc rc = far_return(e, item[0], (uint16_t)item[1], true, (uint16_t)item[4],
					item[3], true, item[2]);
	if (rc == EMU_OK)
		v->nmi_blocked = false; /* iret ends NMI blocking */
	return rc;
}

static enum cpu_emu_rc emu_lret(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *in = e->in;
	unsigned w = in->di.operand_width / 8;
	uint64_t imm = 0;
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		imm = in->ops[0].imm.value.u & 0xffff;
	uint64_t rsp = v->abi->gpr[VCPU_RSP];
	uint8_t buf[16] = {0};
	if (!cpu_stack_read(v, rsp, buf, 2 * w))
		return EMU_EXC;
	uint64_t rip = 0, cs = 0;
	memcpy(&rip, buf, w);
	memcpy(&cs, buf + w, w);
	bool outer = (cs & 3) > v->cpl;
	uint64_t new_rsp = rsp + 2 * w + imm, ss = 0, outer_rsp = 0;
	if (outer) {
		uint8_t b2[16] = {0};
		if (!cpu_stack_read(v, new_rsp, b2, 2 * w))
			return EMU_EXC;
		memcpy(&outer_rsp, b2, w);
		memcpy(&ss, b2 + w, w);
		new_rsp = outer_rsp + imm;
	}
	return far_return(e, rip, (uint16_t)cs, outer, (uint16_t)ss, new_rsp, false, 0);
}

/* far jmp / far call through a memory operand m16:16/32/64. */
static enum cpu_emu_rc emu_far_jmp_call(struct cpu_emu *e, bool call)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *in = e->in;
	unsigned w = in->di.operand_width / 8;
	uint8_t buf[10] = {0};
	uint64_t rip = 0;
	uint16_t cs;
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_POINTER) { /* ptr16:16/32, compat mode */
		rip = in->ops[0].ptr.offset;
		cs = in->ops[0].ptr.segment;
	} else if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		if (!cpu_mem_read(v, cpu_op_addr(v, in, &in->ops[0]), buf, w + 2, 0))
			return EMU_EXC;
		memcpy(&rip, buf, w);
		memcpy(&cs, buf + w, 2);
	} else {
		return emu_bool(cpu_raise(v, CPU_EXC_UD));
	}
	if ((cs & 0xfffc) == 0)
		return emu_bool(cpu_raise_gp0(v));
	uint64_t d;
	if (!cpu_read_desc(v, cs, &d))
		return EMU_EXC;
	if (!((d >> 44) & 1)) /* call gate, task gate, TSS */
		return emu_bool(cpu_raise_err(v, CPU_EXC_GP, cs & 0xfffc));
	/* same privilege only: non-conforming needs RPL <= CPL (and DPL == CPL,
	 * conforming DPL <= CPL: cpu_check_code_seg); CS gets RPL = CPL */
	if (!((d >> 42) & 1) && (cs & 3) > v->cpl)
		return emu_bool(cpu_raise_err(v, CPU_EXC_GP, cs & 0xfffc));
	uint16_t new_cs = (uint16_t)((cs & 0xfffc) | v->cpl);
	if (!cpu_check_code_seg(v, cs, d, v->cpl, 0))
		return EMU_EXC;
	bool to_64 = (d >> 53) & 1;
	if (to_64 ? !cpu_is_canonical(rip) : rip > 0xffffffffull)
		return emu_bool(cpu_raise_gp0(v));
	uint64_t rsp = v->abi->gpr[VCPU_RSP];
	if (call) {
		uint8_t frame[16] = {0};
		uint64_t old_cs = v->seg[CPU_CS].sel;
		memcpy(frame, &e->next, w);
		memcpy(frame + w, &old_cs, w);
		/* pushed in order CS then RIP: RIP ends at the lower address */
		if (!cpu_stack_write(v, rsp - 2 * w, frame, 2 * w))
			return EMU_EXC;
		rsp -= 2 * w;
	}
	if (!cpu_set_desc_accessed(v, cs, &d))
		return EMU_EXC;
	cpu_desc_to_seg(d, new_cs, &v->seg[CPU_CS]);
	v->abi->gpr[VCPU_RSP] = rsp;
	v->abi->rip = rip;
	e->jumped = true;
	return EMU_OK;
}

bool cpu_syscall_enter(struct vcpu *v, gva_t next_rip)
{
	if (!(v->efer & CPU_EFER_SCE) || !cpu_mode64(v))
		return cpu_raise(v, CPU_EXC_UD);
	uint64_t f = cpu_rflags(v);
	v->abi->gpr[VCPU_RCX] = next_rip;
	v->abi->gpr[VCPU_R11] = f & ~CPU_RFLAGS_RF;
	uint16_t sel = (uint16_t)(v->msr.star >> 32) & 0xfffc;
	cpu_seg_set_flat(&v->seg[CPU_CS], sel, true, 0);
	cpu_seg_set_flat(&v->seg[CPU_SS], (uint16_t)(sel + 8), false, 0);
	cpu_set_cpl(v, 0);
	cpu_set_rflags(v, f & ~(v->msr.sfmask | CPU_RFLAGS_RF | CPU_RFLAGS_VM));
	v->abi->rip = v->msr.lstar;
	return true;
}

/* The flat CS and SS that syscall (cpl 0) or sysretq (cpl 3) loads. */
static void star_segs(const struct vcpu *v, unsigned cpl, struct cpu_seg *cs, struct cpu_seg *ss)
{
	if (cpl == 0) {
		uint16_t sel = (uint16_t)(v->msr.star >> 32) & 0xfffc;
		cpu_seg_set_flat(cs, sel, true, 0);
		cpu_seg_set_flat(ss, (uint16_t)(sel + 8), false, 0);
	} else {
		uint16_t base = (uint16_t)(v->msr.star >> 48);
		cpu_seg_set_flat(cs, (uint16_t)((base + 16) | 3), true, 3);
		cpu_seg_set_flat(ss, (uint16_t)((base + 8) | 3), false, 3);
	}
}

unsigned cpu_fx_armable(struct vcpu *v)
{
	if (!(v->efer & CPU_EFER_SCE) || !cpu_mode64(v) || v->rflags_sys != 0 ||
	    (v->cpl != 0 && v->cpl != 3))
		return 0;
	v->abi->fx_star = v->msr.star;
	v->abi->fx_lstar = v->msr.lstar;
	v->abi->fx_sfmask = v->msr.sfmask;
	return v->cpl == 3 ? VCPU_FX_SYSCALL : VCPU_FX_SYSRET;
}

void cpu_fx_sync(struct vcpu *v, unsigned cpl)
{
	/* the last transition decides: syscall and sysretq load CS and SS
	 * from STAR whatever they held (a kernel entered through an interrupt
	 * has a null SS, for one) */
	star_segs(v, cpl, &v->seg[CPU_CS], &v->seg[CPU_SS]);
	cpu_set_cpl(v, cpl);
}

static enum cpu_emu_rc emu_syscall(struct cpu_emu *e)
{
	if (!cpu_syscall_enter(e->v, e->next))
		return EMU_EXC;
	e->jumped = true;
	e->step = CPU_STEP_TF_AFTER; /* SFMASK decides whether a #DB follows */
	e->out = CPU_OUT_CONTINUE;
	return EMU_OK;
}

/* sysenter (Intel, also in IA-32e mode): to 64-bit CPL 0 code at
 * SYSENTER_CS:SYSENTER_EIP, stack SYSENTER_ESP; IF, VM, RF cleared, TF not
 * (so a single-step #DB hits the first kernel instruction, as Linux's
 * entry_SYSENTER_compat expects). */
static enum cpu_emu_rc emu_sysenter(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	uint16_t cs = (uint16_t)v->msr.sysenter_cs & 0xfffc;
	if (cs == 0)
		return emu_bool(cpu_raise_gp0(v));
	uint64_t f = cpu_rflags(v) & ~(CPU_RFLAGS_IF | CPU_RFLAGS_VM | CPU_RFLAGS_RF);
	cpu_seg_set_flat(&v->seg[CPU_CS], cs, true, 0);
	cpu_seg_set_flat(&v->seg[CPU_SS], (uint16_t)(cs + 8), false, 0);
	cpu_set_cpl(v, 0);
	cpu_set_rflags(v, f);
	v->abi->gpr[VCPU_RSP] = v->msr.sysenter_esp;
	v->abi->rip = v->msr.sysenter_eip;
	e->jumped = true;
	e->out = CPU_OUT_CONTINUE;
	return EMU_OK;
}

/* sysexit: CPL 0 only; REX.W returns to 64-bit code (CS = SYSENTER_CS+32),
 * otherwise to compat code (CS = SYSENTER_CS+16); RIP = RDX, RSP = RCX. */
static enum cpu_emu_rc emu_sysexit(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	bool q = e->in->di.operand_width == 64;
	uint16_t base = (uint16_t)v->msr.sysenter_cs & 0xfffc;
	if (v->cpl != 0 || base == 0)
		return emu_bool(cpu_raise_gp0(v));
	uint64_t rip = v->abi->gpr[VCPU_RDX], rsp = v->abi->gpr[VCPU_RCX];
	if (!q) {
		rip = (uint32_t)rip;
		rsp = (uint32_t)rsp;
	} else if (!cpu_is_canonical(rip) || !cpu_is_canonical(rsp)) {
		return emu_bool(cpu_raise_gp0(v));
	}
	cpu_seg_set_flat(&v->seg[CPU_CS], (uint16_t)((base + (q ? 32 : 16)) | 3), true, 3);
	if (!q) {
		v->seg[CPU_CS].ar &= ~CPU_AR_L;
		v->seg[CPU_CS].ar |= CPU_AR_DB;
	}
	cpu_seg_set_flat(&v->seg[CPU_SS], (uint16_t)((base + (q ? 40 : 24)) | 3), false, 3);
	cpu_set_cpl(v, 3);
	v->abi->gpr[VCPU_RSP] = rsp;
	v->abi->rip = rip;
	e->jumped = true;
	e->out = CPU_OUT_USER;
	return EMU_OK;
}

static enum cpu_emu_rc emu_sysret(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	bool q = e->in->di.operand_width == 64;
	if (!(v->efer & CPU_EFER_SCE) || !cpu_mode64(v))
		return emu_bool(cpu_raise(v, CPU_EXC_UD));
	if (v->cpl != 0)
		return emu_bool(cpu_raise_gp0(v));
	uint64_t rip = v->abi->gpr[VCPU_RCX];
	if (!q)
		rip = (uint32_t)rip;
	else if (!cpu_is_canonical(rip))
		return emu_bool(cpu_raise_gp0(v)); /* Intel: #GP at CPL 0 */
	uint16_t base = (uint16_t)(v->msr.star >> 48);
	uint16_t cs = q ? (uint16_t)((base + 16) | 3) : (uint16_t)(base | 3);
	cpu_seg_set_flat(&v->seg[CPU_CS], cs, true, 3);
	if (!q) { /* compatibility-mode code segment */
		v->seg[CPU_CS].ar &= ~CPU_AR_L;
		v->seg[CPU_CS].ar |= CPU_AR_DB;
	}
	cpu_seg_set_flat(&v->seg[CPU_SS], (uint16_t)((base + 8) | 3), false, 3);
	cpu_set_rflags(v, (v->abi->gpr[VCPU_R11] & 0x3c7fd7ull) | CPU_RFLAGS_FIXED);
	cpu_set_cpl(v, 3);
	v->abi->rip = rip;
	e->jumped = true;
	e->out = CPU_OUT_USER;
	return EMU_OK;
}

enum cpu_emu_rc cpu_emul_sys(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *in = e->in;
	switch (in->di.mnemonic) {
	case ZYDIS_MNEMONIC_LGDT:
		return emu_lgdt_lidt(e, &v->gdtr);
	case ZYDIS_MNEMONIC_LIDT:
		return emu_lgdt_lidt(e, &v->idtr);
	case ZYDIS_MNEMONIC_SGDT:
		return emu_sgdt_sidt(e, &v->gdtr);
	case ZYDIS_MNEMONIC_SIDT:
		return emu_sgdt_sidt(e, &v->idtr);
	case ZYDIS_MNEMONIC_LTR:
		return emu_ltr_lldt(e, true);
	case ZYDIS_MNEMONIC_LLDT:
		return emu_ltr_lldt(e, false);
	case ZYDIS_MNEMONIC_STR:
		return emu_store_sel(e, v->tr.sel);
	case ZYDIS_MNEMONIC_SLDT:
		return emu_store_sel(e, v->ldtr.sel);
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ:
		return emu_iret(e);
	case ZYDIS_MNEMONIC_SYSRET:
		return emu_sysret(e);
	case ZYDIS_MNEMONIC_SYSCALL:
		return emu_syscall(e);
	case ZYDIS_MNEMONIC_SYSENTER:
		return emu_sysenter(e);
	case ZYDIS_MNEMONIC_SYSEXIT:
		return emu_sysexit(e);
	case ZYDIS_MNEMONIC_RET:
		if (in->di.meta.branch_type != ZYDIS_BRANCH_TYPE_FAR)
			return EMU_NOTMINE;
		return emu_lret(e);
	case ZYDIS_MNEMONIC_JMP:
	case ZYDIS_MNEMONIC_CALL:
		if (in->di.meta.branch_type != ZYDIS_BRANCH_TYPE_FAR)
			return EMU_NOTMINE;
		return emu_far_jmp_call(e, in->di.mnemonic == ZYDIS_MNEMONIC_CALL);
	default:
		return EMU_NOTMINE;
	}
}
