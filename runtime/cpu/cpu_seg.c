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
