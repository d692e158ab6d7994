/*
 * Segmentation in long mode: reading descriptors from the guest GDT/LDT
 * (implicit supervisor accesses through the soft-MMU), the checks of
 * segment-register loads, code-segment checks for far transfers, and the
 * boot-state import.
 *
 * Invariants
 *  1. A descriptor is only ever read inside its table's limit; outside it,
 *     the load raises #GP(selector & ~3) as hardware does.
 *  2. Accessed bits are written back only when clear (Linux maps its GDT
 *     read-only and pre-sets them; writing them anyway would fault).
 *  3. FS/GS bases live in vcpu_abi.  Loading a non-null FS/GS selector sets
 *     the base from the descriptor (32-bit); loading a null selector clears
 *     the base (Intel behaviour, what Linux's detect_null_seg_behavior
 *     expects of GenuineIntel: X86_BUG_NULL_SEG stays clear).
 *  4. In 64-bit mode a null selector may be loaded into DS/ES/FS/GS at any
 *     CPL and into SS at CPL 0-2 with RPL == CPL.
 */
#include "runtime/cpu/cpu_internal.h"

#include "runtime/boot/boot.h"

#include <string.h>

void cpu_desc_to_seg(uint64_t desc, uint16_t sel, struct cpu_seg *s)
{
	uint32_t limit = (uint32_t)(desc & 0xffff) | (uint32_t)((desc >> 32) & 0xf0000);
	s->sel = sel;
	s->base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24);
	s->ar = (uint32_t)((desc >> 40) & 0xf0ff);
	s->limit = (s->ar & CPU_AR_G) ? (limit << 12) | 0xfff : limit;
}

static unsigned desc_dpl(uint64_t desc)
{
	return (unsigned)((desc >> 45) & 3);
}

static bool desc_present(uint64_t desc)
{
	return (desc >> 47) & 1;
}

bool cpu_read_desc(struct vcpu *v, uint16_t sel, uint64_t *desc)
{
	uint64_t base;
	uint32_t limit;
	if (sel & 4) {
		if (v->ldtr.ar & CPU_AR_UNUSABLE)
			return cpu_raise_err(v, CPU_EXC_GP, sel & 0xfffc);
		base = v->ldtr.base;
		limit = v->ldtr.limit;
	} else {
		base = v->gdtr.base;
		limit = v->gdtr.limit;
	}
	if ((uint32_t)(sel & 0xfff8) + 7 > limit)
		return cpu_raise_err(v, CPU_EXC_GP, sel & 0xfffc);
	return cpu_mem_read(v, base + (sel & 0xfff8), desc, 8, MMU_ACC_IMPLICIT);
}

bool cpu_set_desc_accessed(struct vcpu *v, uint16_t sel, uint64_t *desc)
{
	if (*desc & (1ull << 40))
		return true;
	*desc |= 1ull << 40;
	uint64_t base = (sel & 4) ? v->ldtr.base : v->gdtr.base;
	uint8_t b = (uint8_t)(*desc >> 40);
	return cpu_mem_write(v, base + (sel & 0xfff8) + 5, &b, 1, MMU_ACC_IMPLICIT);
}

static void cpu_seg_null(struct vcpu *v, enum cpu_sreg r, uint16_t sel)
{
	struct cpu_seg *s = &v->seg[r];
	s->sel = sel;
	s->base = 0;
	s->limit = 0;
	s->ar = CPU_AR_UNUSABLE;
	if (r == CPU_FS)
		v->abi->fs_base = 0;
	else if (r == CPU_GS)
		v->abi->gs_base = 0;
}

bool cpu_load_sreg(struct vcpu *v, enum cpu_sreg r, uint16_t sel)
{
	unsigned rpl = sel & 3;
	if (r == CPU_CS)
		return cpu_raise(v, CPU_EXC_UD);
	if ((sel & 0xfffc) == 0) {
		if (r == CPU_SS && (v->cpl == 3 || rpl != v->cpl))
			return cpu_raise_err(v, CPU_EXC_GP, 0);
		cpu_seg_null(v, r, sel);
		return true;
	}
	uint64_t d;
	if (!cpu_read_desc(v, sel, &d))
		return false;
	unsigned type = (unsigned)(d >> 40) & 0xf;
	bool s_bit = (d >> 44) & 1;
	unsigned dpl = desc_dpl(d);
	uint16_t err = sel & 0xfffc;
	if (r == CPU_SS) {
		/* writable data segment, RPL == CPL == DPL */
		if (!s_bit || (type & 0xa) != 0x2 || rpl != v->cpl || dpl != v->cpl)
			return cpu_raise_err(v, CPU_EXC_GP, err);
		if (!desc_present(d))
			return cpu_raise_err(v, CPU_EXC_SS, err);
	} else {
		/* data, or readable code */
		if (!s_bit || ((type & 0x8) && !(type & 0x2)))
			return cpu_raise_err(v, CPU_EXC_GP, err);
		bool conforming_code = (type & 0xc) == 0xc;
		if (!conforming_code && (rpl > dpl || v->cpl > dpl))
			return cpu_raise_err(v, CPU_EXC_GP, err);
		if (!desc_present(d))
			return cpu_raise_err(v, CPU_EXC_NP, err);
	}
	if (!cpu_set_desc_accessed(v, sel, &d))
		return false;
	cpu_desc_to_seg(d, sel, &v->seg[r]);
	if (r == CPU_FS)
		v->abi->fs_base = v->seg[r].base;
	else if (r == CPU_GS)
		v->abi->gs_base = v->seg[r].base;
	return true;
}

bool cpu_check_code_seg(struct vcpu *v, uint16_t sel, uint64_t d, unsigned new_cpl,
			uint32_t err_ext)
{
	uint32_t err = (sel & 0xfffc) | err_ext;
	unsigned type = (unsigned)(d >> 40) & 0xf;
	bool s_bit = (d >> 44) & 1;
	if (!s_bit || !(type & 0x8))
		return cpu_raise_err(v, CPU_EXC_GP, err);
	if (type & 0x4) { /* conforming */
		if (desc_dpl(d) > new_cpl)
			return cpu_raise_err(v, CPU_EXC_GP, err);
	} else if (desc_dpl(d) != new_cpl) {
		return cpu_raise_err(v, CPU_EXC_GP, err);
	}
	bool l = (d >> 53) & 1, db = (d >> 54) & 1;
	if (l && db)
		return cpu_raise_err(v, CPU_EXC_GP, err);
	/* the kernel runs in 64-bit mode only; compat code is user-only */
	if (!l && new_cpl != 3)
		return cpu_raise_err(v, CPU_EXC_GP, err);
	if (!desc_present(d))
		return cpu_raise_err(v, CPU_EXC_NP, err);
	return true;
}

bool cpu_load_ss_for_cpl(struct vcpu *v, uint16_t sel, unsigned cpl)
{
	unsigned saved = v->cpl;
	v->cpl = cpl; /* the checks are those of a load at the new CPL */
	bool ok = cpu_load_sreg(v, CPU_SS, sel);
	v->cpl = saved;
	return ok;
}

static void boot_seg_import(struct cpu_seg *s, const struct boot_segment *b)
{
	s->sel = b->selector;
	s->base = b->base;
	s->limit = b->limit;
	s->ar = b->attr & 0xf0ff;
	if (!(s->ar & CPU_AR_P))
		s->ar = CPU_AR_UNUSABLE;
}

enum bt_status cpu_load_boot_state(struct vcpu *v, const struct boot_state *bs)
{
	if (!v || !bs)
		return BT_ERR_INVALID;
	/* the 64-bit boot protocol: long mode with paging, IF clear */
	if (!(bs->cr0 & CPU_CR0_PG) || !(bs->cr0 & CPU_CR0_PE) || !(bs->cr4 & CPU_CR4_PAE) ||
	    !(bs->efer & CPU_EFER_LMA) || !(bs->cs.attr & CPU_AR_L))
		return BT_ERR_INVALID;
	memset(v->abi->gpr, 0, sizeof(v->abi->gpr));
	v->abi->gpr[VCPU_RSI] = bs->rsi;
	v->abi->gpr[VCPU_RSP] = bs->rsp;
	v->abi->rip = bs->rip;
	v->cr0 = bs->cr0 | CPU_CR0_ET;
	v->cr3 = bs->cr3;
	v->cr4 = bs->cr4;
	v->efer = bs->efer;
	v->gdtr.base = bs->gdt_base;
	v->gdtr.limit = bs->gdt_limit;
	v->idtr.base = bs->idt_base;
	v->idtr.limit = bs->idt_limit;
	boot_seg_import(&v->seg[CPU_CS], &bs->cs);
	boot_seg_import(&v->seg[CPU_DS], &bs->ds);
	boot_seg_import(&v->seg[CPU_ES], &bs->es);
	boot_seg_import(&v->seg[CPU_SS], &bs->ss);
	boot_seg_import(&v->seg[CPU_FS], &bs->fs);
	boot_seg_import(&v->seg[CPU_GS], &bs->gs);
	boot_seg_import(&v->tr, &bs->tr);
	v->abi->fs_base = bs->fs.base;
	v->abi->gs_base = bs->gs.base;
	v->cpl = bs->cs.selector & 3;
	cpu_set_rflags(v, bs->rflags);
	cpu_sync_mmu(v);
	return BT_OK;
}

/* ---- emulation: segment-register moves, lsl/lar/verr/verw -------------- */

static int sreg_of(ZydisRegister r)
{
	if (r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS)
		return (int)(r - ZYDIS_REGISTER_ES);
	return -1;
}

static void set_zf(struct vcpu *v, bool zf)
{
	uint64_t f = cpu_rflags(v);
	cpu_set_rflags(v, zf ? f | CPU_RFLAGS_ZF : f & ~CPU_RFLAGS_ZF);
}

/*
 * The descriptor checks of lsl/lar/verr/verw: ZF=0 instead of a fault for a
 * selector outside the table, a null selector, a wrong type or a privilege
 * mismatch.  *ok says whether the descriptor qualifies; false return = a
 * #PF reading the table.
 */
static bool probe_desc(struct vcpu *v, uint16_t sel, uint64_t *d, bool *ok)
{
	*ok = false;
	if ((sel & 0xfffc) == 0)
		return true;
	if ((sel & 4) && (v->ldtr.ar & CPU_AR_UNUSABLE))
		return true;
	uint32_t limit = (sel & 4) ? v->ldtr.limit : v->gdtr.limit;
	if ((uint32_t)(sel & 0xfff8) + 7 > limit)
		return true;
	if (!cpu_read_desc(v, sel, d))
		return false;
	unsigned dpl = desc_dpl(*d);
	bool s_bit = (*d >> 44) & 1;
	unsigned type = (unsigned)(*d >> 40) & 0xf;
	bool conforming_code = s_bit && (type & 0xc) == 0xc;
	*ok = conforming_code || (dpl >= v->cpl && dpl >= (sel & 3u));
	return true;
}

static enum cpu_emu_rc emu_lsl_lar(struct cpu_emu *e, bool lsl)
{
	struct vcpu *v = e->v;
	uint64_t x, d = 0;
	bool ok;
	if (!cpu_op_read(v, e->in, &e->in->ops[1], &x))
		return EMU_EXC;
	if (!probe_desc(v, (uint16_t)x, &d, &ok))
		return EMU_EXC;
	if (ok && !((d >> 44) & 1)) {
		/* system descriptors: LDT, available/busy 64-bit TSS; lar also
		 * takes a 64-bit call gate */
		unsigned type = (unsigned)(d >> 40) & 0xf;
		ok = type == 0x2 || type == 0x9 || type == 0xb || (!lsl && type == 0xc);
	}
	if (ok) {
		struct cpu_seg s;
		cpu_desc_to_seg(d, (uint16_t)x, &s);
		cpu_gpr_write(v, e->in->ops[0].reg.value,
			      lsl ? s.limit : (uint32_t)((d >> 32) & 0x00f0ff00u));
	}
	set_zf(v, ok);
	return EMU_OK;
}

static enum cpu_emu_rc emu_verr_verw(struct cpu_emu *e, bool write)
{
	struct vcpu *v = e->v;
	uint64_t x, d = 0;
	bool ok;
	if (!cpu_op_read(v, e->in, &e->in->ops[0], &x))
		return EMU_EXC;
	if (!probe_desc(v, (uint16_t)x, &d, &ok))
		return EMU_EXC;
	unsigned type = (unsigned)(d >> 40) & 0xf;
	if (!((d >> 44) & 1))
		ok = false;
	else if (write)
		ok = ok && !(type & 0x8) && (type & 0x2); /* writable data */
	else
		ok = ok && (!(type & 0x8) || (type & 0x2)); /* data or readable code */
	set_zf(v, ok);
	return EMU_OK;
}

/* mov ss / pop ss: interrupts and the single-step #DB wait one more
 * instruction (the #DB is dropped here: the vCPU does not see the next
 * instruction; docs/cpu.md). */
static void mov_ss_shadow(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	if (!v->shadow) {
		v->shadow = true;
		v->shadow_rip = e->next;
	}
	e->step = CPU_STEP_NONE;
}

enum cpu_emu_rc cpu_emul_seg(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *in = e->in;
	const ZydisDecodedOperand *o = in->ops;
	switch (in->di.mnemonic) {
	case ZYDIS_MNEMONIC_MOV: {
		int to = o[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? sreg_of(o[0].reg.value) : -1;
		int from = o[1].type == ZYDIS_OPERAND_TYPE_REGISTER ? sreg_of(o[1].reg.value) : -1;
		if (to >= 0) {
			uint64_t sel;
			if (!cpu_op_read(v, in, &o[1], &sel))
				return EMU_EXC;
			if (!cpu_load_sreg(v, (enum cpu_sreg)to, (uint16_t)sel))
				return EMU_EXC;
			if (to == CPU_SS) {
				mov_ss_shadow(e);
			}
			return EMU_OK;
		}
		if (from >= 0) {
			uint64_t sel = v->seg[from].sel;
			if (o[0].type == ZYDIS_OPERAND_TYPE_MEMORY)
				return emu_bool(
				    cpu_mem_write(v, cpu_op_addr(v, in, &o[0]), &sel, 2, 0));
			cpu_gpr_write(v, o[0].reg.value, sel);
			return EMU_OK;
		}
		return EMU_NOTMINE;
	}
	case ZYDIS_MNEMONIC_PUSH:
	case ZYDIS_MNEMONIC_POP: {
		int r = o[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? sreg_of(o[0].reg.value) : -1;
		if (r < 0)
			return EMU_NOTMINE;
		unsigned w = in->di.operand_width / 8;
		uint64_t rsp = v->abi->gpr[VCPU_RSP], sel = 0;
		if (in->di.mnemonic == ZYDIS_MNEMONIC_PUSH) {
			sel = v->seg[r].sel;
			if (!cpu_stack_write(v, rsp - w, &sel, w))
				return EMU_EXC;
			v->abi->gpr[VCPU_RSP] = rsp - w;
			return EMU_OK;
		}
		if (!cpu_stack_read(v, rsp, &sel, w))
			return EMU_EXC;
		if (!cpu_load_sreg(v, (enum cpu_sreg)r, (uint16_t)sel))
			return EMU_EXC;
		v->abi->gpr[VCPU_RSP] = rsp + w;
		if (r == CPU_SS) /* pop ss: compat mode only */
			mov_ss_shadow(e);
		return EMU_OK;
	}
	case ZYDIS_MNEMONIC_LSS:
	case ZYDIS_MNEMONIC_LFS:
	case ZYDIS_MNEMONIC_LGS:
	case ZYDIS_MNEMONIC_LDS: /* lds/les: compat mode only */
	case ZYDIS_MNEMONIC_LES: {
		/* reg <- offset, sreg <- selector from m16:16/32/64 */
		ZydisMnemonic m = in->di.mnemonic;
		enum cpu_sreg r = m == ZYDIS_MNEMONIC_LSS   ? CPU_SS
				  : m == ZYDIS_MNEMONIC_LFS ? CPU_FS
				  : m == ZYDIS_MNEMONIC_LGS ? CPU_GS
				  : m == ZYDIS_MNEMONIC_LDS ? CPU_DS
							    : CPU_ES;
		unsigned w = in->di.operand_width / 8;
		uint8_t buf[10] = {0};
		uint64_t off = 0;
		uint16_t sel;
		if (o[1].type != ZYDIS_OPERAND_TYPE_MEMORY)
			return emu_bool(cpu_raise(v, CPU_EXC_UD));
		if (!cpu_mem_read(v, cpu_op_addr(v, in, &o[1]), buf, w + 2, 0))
			return EMU_EXC;
		memcpy(&off, buf, w);
		memcpy(&sel, buf + w, 2);
		if (!cpu_load_sreg(v, r, sel))
			return EMU_EXC;
		cpu_gpr_write(v, o[0].reg.value, off);
		return EMU_OK;
	}
	case ZYDIS_MNEMONIC_LSL:
		return emu_lsl_lar(e, true);
	case ZYDIS_MNEMONIC_LAR:
		return emu_lsl_lar(e, false);
	case ZYDIS_MNEMONIC_VERR:
		return emu_verr_verw(e, false);
	case ZYDIS_MNEMONIC_VERW:
		return emu_verr_verw(e, true);
	default:
		return EMU_NOTMINE;
	}
}
