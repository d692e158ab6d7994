/*
 * Emulation of one privileged/sensitive instruction (the XLAT_EXIT_PRIV
 * contract): decoding, operand access, the dispatcher, and the simple
 * classes (control/debug registers, MSRs, CPUID, TSC, hlt, virtual IF/AC,
 * swapgs, TLB and cache maintenance, software interrupts, #UD classes, the
 * FPU image).  Port I/O is in cpu_emul_io.c, descriptor tables / iret /
 * sysret / far transfers in cpu_emul_sys.c, segment loads in cpu_seg.c.
 *
 * Invariants
 *  1. An emulation either completes (RIP = next instruction, or the target
 *     of a control transfer) or raises a fault with every register as it was
 *     before the instruction, RIP at the instruction (string I/O: the
 *     completed iterations stay done, as on hardware).
 *  2. Software interrupts (int n, int3, int1) are delivered with RIP = the
 *     next instruction, kind CPU_EV_SOFTWARE (gate DPL checked).
 *  3. A valid instruction that is not emulated is BT_ERR_UNSUPPORTED (loud,
 *     the runtime stops) rather than a made-up guest exception; an
 *     undecodable one is #UD.
 */
#include "runtime/cpu/cpu_internal.h"

#include "pretrans/xlat/xlat_facts.h"

#include "pretrans/base/log.h"

#include <string.h>

/* ---- operands ---------------------------------------------------------- */

static int gpr_index(ZydisRegister r, unsigned *shift)
{
	*shift = 0;
	if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH) {
		*shift = 8;
		return (int)(r - ZYDIS_REGISTER_AH); /* AH CH DH BH -> 0..3 */
	}
	ZydisRegister big = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
	if (big < ZYDIS_REGISTER_RAX || big > ZYDIS_REGISTER_R15)
		return -1;
	return (int)(big - ZYDIS_REGISTER_RAX);
}

uint64_t cpu_gpr_read(const struct vcpu *v, ZydisRegister r)
{
	unsigned shift;
	int i = gpr_index(r, &shift);
	if (i < 0)
		return 0;
	unsigned w = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, r);
	uint64_t x = v->abi->gpr[i] >> shift;
	return w >= 64 ? x : x & ((1ull << w) - 1);
}

void cpu_gpr_write(struct vcpu *v, ZydisRegister r, uint64_t val)
{
	unsigned shift;
	int i = gpr_index(r, &shift);
	if (i < 0)
		return;
	unsigned w = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, r);
	uint64_t *g = &v->abi->gpr[i];
	if (w >= 32) /* 32-bit writes zero-extend */
		*g = w == 64 ? val : (uint32_t)val;
	else {
		uint64_t m = ((1ull << w) - 1) << shift;
		*g = (*g & ~m) | ((val << shift) & m);
	}
}

gva_t cpu_op_addr(const struct vcpu *v, const struct cpu_insn *in, const ZydisDecodedOperand *op)
{
	uint64_t a = (uint64_t)op->mem.disp.value;
	if (op->mem.base == ZYDIS_REGISTER_RIP)
		a += v->abi->rip + in->di.length;
	else if (op->mem.base != ZYDIS_REGISTER_NONE)
		a += cpu_gpr_read(v, op->mem.base);
	if (op->mem.index != ZYDIS_REGISTER_NONE)
		a += cpu_gpr_read(v, op->mem.index) * op->mem.scale;
	if (in->di.address_width == 32)
		a = (uint32_t)a;
	if (op->mem.segment == ZYDIS_REGISTER_FS)
		a += v->abi->fs_base;
	else if (op->mem.segment == ZYDIS_REGISTER_GS)
		a += v->abi->gs_base;
	return a;
}

bool cpu_op_read(struct vcpu *v, const struct cpu_insn *in, const ZydisDecodedOperand *op,
		 uint64_t *val)
{
	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		*val = cpu_gpr_read(v, op->reg.value);
		return true;
	}
	if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		*val = op->imm.value.u;
		return true;
	}
	uint64_t x = 0;
	unsigned n = op->size / 8;
	if (n > 8)
		n = 8;
	if (!cpu_mem_read(v, cpu_op_addr(v, in, op), &x, n, 0))
		return false;
	*val = x;
	return true;
}

bool cpu_op_write(struct vcpu *v, const struct cpu_insn *in, const ZydisDecodedOperand *op,
		  uint64_t val)
{
	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		cpu_gpr_write(v, op->reg.value, val);
		return true;
	}
	unsigned n = op->size / 8;
	if (n > 8)
		n = 8;
	return cpu_mem_write(v, cpu_op_addr(v, in, op), &val, n, 0);
}

static uint64_t gpr(const struct vcpu *v, enum vcpu_gpr r)
{
	return v->abi->gpr[r];
}

static void set_edx_eax(struct vcpu *v, uint64_t x)
{
	v->abi->gpr[VCPU_RAX] = (uint32_t)x;
	v->abi->gpr[VCPU_RDX] = x >> 32;
}

/* ---- classes ----------------------------------------------------------- */

static enum cpu_emu_rc emu_mov_cr_dr(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const ZydisDecodedOperand *o = e->in->ops;
	ZydisRegisterClass c0 = ZydisRegisterGetClass(o[0].reg.value);
	ZydisRegisterClass c1 = ZydisRegisterGetClass(o[1].reg.value);
	bool to = c0 == ZYDIS_REGCLASS_CONTROL || c0 == ZYDIS_REGCLASS_DEBUG;
	ZydisRegister special = to ? o[0].reg.value : o[1].reg.value;
	ZydisRegister g = to ? o[1].reg.value : o[0].reg.value;
	bool is_cr = (to ? c0 : c1) == ZYDIS_REGCLASS_CONTROL;
	if (is_cr) {
		/* a reserved CR is an invalid encoding: #UD before the CPL check */
		unsigned n = (unsigned)(special - ZYDIS_REGISTER_CR0);
		if (n != 0 && n != 2 && n != 3 && n != 4 && n != 8)
			return emu_bool(cpu_raise(v, CPU_EXC_UD));
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		if (to)
			return emu_bool(cpu_write_cr(v, n, cpu_gpr_read(v, g)));
		cpu_gpr_write(v, g, cpu_read_cr(v, n));
		return EMU_OK;
	}
	if (v->cpl != 0)
		return emu_bool(cpu_raise_gp0(v));
	unsigned n = (unsigned)(special - ZYDIS_REGISTER_DR0);
	if (n == 4 || n == 5) {
		if (v->cr4 & CPU_CR4_DE)
			return emu_bool(cpu_raise(v, CPU_EXC_UD));
		n += 2;
	}
	if (n > 7)
		return emu_bool(cpu_raise(v, CPU_EXC_UD));
	if (!to) {
		cpu_gpr_write(v, g, v->dr[n]);
		return EMU_OK;
	}
	uint64_t val = cpu_gpr_read(v, g);
	if (n < 4) {
		v->dr[n] = val;
	} else {
		if (val >> 32)
			return emu_bool(cpu_raise_gp0(v));
		/* DR6: bits 4-11, 16-31 read as 1, bit 12 as 0; DR7: bit 10 is 1 */
		v->dr[n] =
		    n == 6 ? (val | 0xffff0ff0ull) & ~(1ull << 12) : (val | 0x400) & ~0x2000ull;
	}
	return EMU_OK;
}

static enum cpu_emu_rc emu_int(struct cpu_emu *e, uint8_t vector, enum cpu_event_kind kind)
{
	struct vcpu *v = e->v;
	gva_t at = v->abi->rip;
	v->abi->rip = e->next;
	e->jumped = true;
	e->step = CPU_STEP_NONE; /* the delivery cleared TF: no #DB after int n */
	enum bt_status s = cpu_deliver_insn(v, vector, kind, at);
	if (s == BT_ERR_GUEST)
		e->out = CPU_OUT_STOP;
	else if (s != BT_OK)
		return EMU_UNSUPPORTED;
	else
		e->out = cpu_run_outcome(v);
	return EMU_OK;
}

/*
 * pushf/popf handed back by the translator.  popf in protected mode (SDM
 * POPF): at CPL 0 every flag but VM/VIF/VIP; at 0 < CPL <= IOPL every flag
 * but IOPL too; at CPL > IOPL IF is also kept (no fault: the write is
 * dropped).  RF is cleared; a 16-bit popf keeps bits 31:16.  No VME/PVI in
 * long mode, so VIF/VIP never change here.
 */
static enum cpu_emu_rc emu_pushf_popf(struct cpu_emu *e, bool push)
{
	struct vcpu *v = e->v;
	unsigned n = e->in->di.operand_width / 8;
	uint64_t rsp = gpr(v, VCPU_RSP);
	if (push) {
		uint64_t f = cpu_rflags(v) & ~(CPU_RFLAGS_VM | CPU_RFLAGS_RF);
		if (!cpu_stack_write(v, rsp - n, &f, n))
			return EMU_EXC;
		v->abi->gpr[VCPU_RSP] = rsp - n;
		return EMU_OK;
	}
	uint64_t f = 0;
	if (!cpu_stack_read(v, rsp, &f, n))
		return EMU_EXC;
	uint64_t old = cpu_rflags(v);
	uint64_t keep = CPU_RFLAGS_VM | CPU_RFLAGS_VIF | CPU_RFLAGS_VIP;
	if (v->cpl > 0)
		keep |= CPU_RFLAGS_IOPL;
	if (v->cpl > cpu_iopl(v))
		keep |= CPU_RFLAGS_IF;
	if (n == 2)
		keep |= ~0xffffull;
	f = (f & ~keep) | (old & keep);
	f &= ~CPU_RFLAGS_RF;
	cpu_set_rflags(v, f);
	v->abi->gpr[VCPU_RSP] = rsp + n;
	return EMU_OK;
}

/* rd/wr fs/gs base: #UD outside 64-bit mode or with CR4.FSGSBASE clear
 * (settable only when CPUID advertises it); they act on the bases that
 * %fs:/%gs: operands use.  The 32-bit forms read the low half / zero-extend. */
static enum cpu_emu_rc emu_fsgsbase(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *in = e->in;
	ZydisMnemonic m = in->di.mnemonic;
	if (!cpu_mode64(v) || !(v->cr4 & CPU_CR4_FSGSBASE))
		return emu_bool(cpu_raise(v, CPU_EXC_UD));
	bool fs = m == ZYDIS_MNEMONIC_RDFSBASE || m == ZYDIS_MNEMONIC_WRFSBASE;
	uint64_t *base = fs ? &v->abi->fs_base : &v->abi->gs_base;
	if (m == ZYDIS_MNEMONIC_RDFSBASE || m == ZYDIS_MNEMONIC_RDGSBASE) {
		cpu_gpr_write(v, in->ops[0].reg.value, *base);
		return EMU_OK;
	}
	uint64_t x = cpu_gpr_read(v, in->ops[0].reg.value);
	if (!cpu_is_canonical(x))
		return emu_bool(cpu_raise_gp0(v));
	*base = x;
	return EMU_OK;
}

static enum cpu_emu_rc emu_fxsave(struct cpu_emu *e, bool save)
{
	struct vcpu *v = e->v;
	if (v->cr0 & (CPU_CR0_TS | CPU_CR0_EM))
		return emu_bool(cpu_raise(v, CPU_EXC_NM));
	gva_t a = cpu_op_addr(v, e->in, &e->in->ops[0]);
	if (a & 15)
		return emu_bool(cpu_raise_gp0(v));
	if (save) {
		/* bytes 464..511 are available to software: left untouched */
		return emu_bool(cpu_mem_write(v, a, v->abi->fxsave, 464, 0));
	}
	uint8_t img[512];
	if (!cpu_mem_read(v, a, img, 464, 0))
		return EMU_EXC;
	uint32_t mxcsr;
	memcpy(&mxcsr, img + 24, 4);
	if (mxcsr & 0xffff0000u) /* MXCSR_MASK is 0xffff */
		return emu_bool(cpu_raise_gp0(v));
	/* MXCSR_MASK (bytes 28-31) is the CPU's, not the image's */
	memcpy(v->abi->fxsave, img, 28);
	memcpy(v->abi->fxsave + 32, img + 32, 464 - 32);
	return EMU_OK;
}

static enum cpu_emu_rc emu_basic(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *in = e->in;
	switch (in->di.mnemonic) {
	case ZYDIS_MNEMONIC_MOV: {
		ZydisRegisterClass c0 = in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER
					    ? ZydisRegisterGetClass(in->ops[0].reg.value)
					    : ZYDIS_REGCLASS_INVALID;
		ZydisRegisterClass c1 = in->ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER
					    ? ZydisRegisterGetClass(in->ops[1].reg.value)
					    : ZYDIS_REGCLASS_INVALID;
		if (c0 == ZYDIS_REGCLASS_CONTROL || c1 == ZYDIS_REGCLASS_CONTROL ||
		    c0 == ZYDIS_REGCLASS_DEBUG || c1 == ZYDIS_REGCLASS_DEBUG)
			return emu_mov_cr_dr(e);
		return EMU_NOTMINE; /* segment moves: cpu_emul_seg */
	}
	case ZYDIS_MNEMONIC_RDMSR: {
		uint64_t val;
		if (!cpu_rdmsr(v, (uint32_t)gpr(v, VCPU_RCX), &val))
			return EMU_EXC;
		set_edx_eax(v, val);
		return EMU_OK;
	}
	case ZYDIS_MNEMONIC_WRMSR:
		return emu_bool(cpu_wrmsr(v, (uint32_t)gpr(v, VCPU_RCX),
					  (gpr(v, VCPU_RDX) << 32) | (uint32_t)gpr(v, VCPU_RAX)));
	case ZYDIS_MNEMONIC_CPUID: {
		uint32_t o[4];
		cpu_cpuid(v, (uint32_t)gpr(v, VCPU_RAX), (uint32_t)gpr(v, VCPU_RCX), o);
		v->abi->gpr[VCPU_RAX] = o[0];
		v->abi->gpr[VCPU_RBX] = o[1];
		v->abi->gpr[VCPU_RCX] = o[2];
		v->abi->gpr[VCPU_RDX] = o[3];
		return EMU_OK;
	}
	case ZYDIS_MNEMONIC_RDTSC:
	case ZYDIS_MNEMONIC_RDTSCP:
		if ((v->cr4 & CPU_CR4_TSD) && v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		set_edx_eax(v, cpu_guest_tsc(v));
		if (in->di.mnemonic == ZYDIS_MNEMONIC_RDTSCP)
			v->abi->gpr[VCPU_RCX] = (uint32_t)v->msr.tsc_aux;
		return EMU_OK;
	case ZYDIS_MNEMONIC_RDPID: /* TSC_AUX, zero-extended; not subject to TSD */
		if (!(v->cpuid.f7_ecx & (1u << 22)))
			return emu_bool(cpu_raise(v, CPU_EXC_UD));
		cpu_gpr_write(v, in->ops[0].reg.value, (uint32_t)v->msr.tsc_aux);
		return EMU_OK;
	case ZYDIS_MNEMONIC_RDFSBASE:
	case ZYDIS_MNEMONIC_RDGSBASE:
	case ZYDIS_MNEMONIC_WRFSBASE:
	case ZYDIS_MNEMONIC_WRGSBASE:
		return emu_fsgsbase(e);
	case ZYDIS_MNEMONIC_RDPMC: /* no PMU: every counter index is invalid */
		return emu_bool(cpu_raise_gp0(v));
	case ZYDIS_MNEMONIC_HLT:
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		v->halted = true;
		if (!cpu_if(v)) {
			v->stop = CPU_STOP_HALT_IF0;
			bt_info(LOG_CPU,
				"cpu: hlt with interrupts disabled at rip %#llx: the VM stops",
				(unsigned long long)v->abi->rip);
			e->out = CPU_OUT_STOP;
		} else {
			e->out = CPU_OUT_HALT;
		}
		return EMU_OK;
	case ZYDIS_MNEMONIC_CLI:
	case ZYDIS_MNEMONIC_STI:
		if (v->cpl > cpu_iopl(v)) /* no PVI in long mode */
			return emu_bool(cpu_raise_gp0(v));
		if (in->di.mnemonic == ZYDIS_MNEMONIC_STI) {
			if (!cpu_if(v)) {
				v->shadow = true;
				v->shadow_rip = e->next;
			}
			v->abi->irq |= VCPU_IRQ_IF;
		} else {
			v->abi->irq &= (uint16_t)~VCPU_IRQ_IF;
		}
		v->abi->rflags = cpu_rflags(v);
		return EMU_OK;
	case ZYDIS_MNEMONIC_PUSHF:
	case ZYDIS_MNEMONIC_PUSHFQ:
		return emu_pushf_popf(e, true);
	case ZYDIS_MNEMONIC_POPF:
	case ZYDIS_MNEMONIC_POPFQ:
		return emu_pushf_popf(e, false);
	case ZYDIS_MNEMONIC_STAC:
	case ZYDIS_MNEMONIC_CLAC:
		if (v->cpl != 0 || !(v->cpuid.f7_ebx & (1u << 20)))
			return emu_bool(cpu_raise(v, CPU_EXC_UD));
		cpu_set_rflags(v, in->di.mnemonic == ZYDIS_MNEMONIC_STAC
				      ? cpu_rflags(v) | CPU_RFLAGS_AC
				      : cpu_rflags(v) & ~CPU_RFLAGS_AC);
		return EMU_OK;
	case ZYDIS_MNEMONIC_SWAPGS: {
		if (!cpu_mode64(v))
			return emu_bool(cpu_raise(v, CPU_EXC_UD));
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		uint64_t t = v->abi->gs_base;
		v->abi->gs_base = v->abi->kernel_gs_base;
		v->abi->kernel_gs_base = t;
		return EMU_OK;
	}
	case ZYDIS_MNEMONIC_INVLPG:
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		mmu_invlpg(v->mmu, cpu_op_addr(v, in, &in->ops[0]));
		return EMU_OK;
	case ZYDIS_MNEMONIC_WBINVD:
	case ZYDIS_MNEMONIC_INVD:
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		return EMU_OK; /* no caches to write back */
	case ZYDIS_MNEMONIC_CLTS:
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		v->cr0 &= ~CPU_CR0_TS;
		return EMU_OK;
	case ZYDIS_MNEMONIC_SMSW:
		if (!cpu_umip_ok(v))
			return emu_bool(cpu_raise_gp0(v));
		if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY)
			return emu_bool(cpu_op_write(v, in, &in->ops[0], v->cr0 & 0xffff));
		cpu_gpr_write(v, in->ops[0].reg.value, v->cr0);
		return EMU_OK;
	case ZYDIS_MNEMONIC_LMSW: {
		uint64_t x;
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		if (!cpu_op_read(v, in, &in->ops[0], &x))
			return EMU_EXC;
		/* PE, MP, EM, TS; PE cannot be cleared */
		uint64_t cr0 = (v->cr0 & ~0xeull) | (x & 0xf) | (v->cr0 & CPU_CR0_PE);
		return emu_bool(cpu_write_cr(v, 0, cr0));
	}
	case ZYDIS_MNEMONIC_INT:
		return emu_int(e, (uint8_t)in->ops[0].imm.value.u, CPU_EV_SOFTWARE);
	case ZYDIS_MNEMONIC_INT3:
		return emu_int(e, CPU_EXC_BP, CPU_EV_SOFTWARE);
	case ZYDIS_MNEMONIC_INTO: /* compat mode only (#UD in 64-bit mode) */
		if (!(cpu_rflags(v) & CPU_RFLAGS_OF))
			return EMU_OK;
		return emu_int(e, CPU_EXC_OF, CPU_EV_SOFTWARE);
	case ZYDIS_MNEMONIC_INT1: /* icebp: a #DB trap without the DPL check */
		return emu_int(e, CPU_EXC_DB, CPU_EV_TRAP);
	/* (what no vCPU profile has raises #UD in cpu_emulate, from the
	 * translator core's fact table) */
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
		return emu_bool(cpu_raise(v, CPU_EXC_UD));
	case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXSAVE64:
		return emu_fxsave(e, true);
	case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64:
		return emu_fxsave(e, false);
	case ZYDIS_MNEMONIC_SERIALIZE:
		/* the exit that brought it here serialized: the next block is
		 * fetched and looked up afresh (cpu_cpuid.c) */
		if (!(v->cpuid.f7_edx & (1u << 14)))
			return emu_bool(cpu_raise(v, CPU_EXC_UD));
		return EMU_OK;
	case ZYDIS_MNEMONIC_NOP:
	case ZYDIS_MNEMONIC_PAUSE:
	case ZYDIS_MNEMONIC_LFENCE:
	case ZYDIS_MNEMONIC_MFENCE:
	case ZYDIS_MNEMONIC_SFENCE:
	case ZYDIS_MNEMONIC_ENDBR64:
		return EMU_OK;
	default:
		return EMU_NOTMINE;
	}
}

/* ---- dispatcher -------------------------------------------------------- */

/* The single-step #DB after a completed instruction: a trap (RIP = the
 * next instruction, or the same one for an unfinished rep), DR6.BS set. */
static enum bt_status cpu_single_step_trap(struct vcpu *v, enum cpu_outcome *out)
{
	v->dr[6] |= CPU_DR6_BS;
	enum bt_status s = cpu_deliver(v, CPU_EXC_DB, CPU_EV_TRAP, false, 0);
	if (s == BT_ERR_GUEST) {
		*out = CPU_OUT_STOP;
		return BT_OK;
	}
	BT_TRY(s);
	*out = cpu_run_outcome(v);
	return BT_OK;
}

enum bt_status cpu_decode(struct vcpu *v, const uint8_t *bytes, size_t len, struct cpu_insn *insn)
{
	if (!v || !bytes || !insn)
		return BT_ERR_INVALID;
	/* the code segment decides: 64-bit (L), 32-bit (D) or 16-bit compat code */
	const ZydisDecoder *d = cpu_mode64(v)			  ? &v->dec
				: (v->seg[CPU_CS].ar & CPU_AR_DB) ? &v->dec32
								  : &v->dec16;
	if (len > ZYDIS_MAX_INSTRUCTION_LENGTH)
		len = ZYDIS_MAX_INSTRUCTION_LENGTH;
	struct cpu_dcache_entry *c =
	    &v->dcache[(bytes[0] ^ (len ? bytes[len - 1] : 0) ^ (len > 1 ? bytes[1] : 0)) %
		       CPU_DCACHE_N];
	if (c->dec == d && c->len == len && memcmp(c->bytes, bytes, len) == 0) {
		*insn = c->insn;
		return BT_OK;
	}
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(d, bytes, len, &insn->di, insn->ops)))
		return BT_ERR_FORMAT;
	struct xlat_facts xf = xlat_insn_facts(&insn->di, insn->ops);
	insn->not_advertised = xf.adv == XLAT_ADV_NO;
	insn->fpu = xf.fpu;
	c->dec = d;
	c->len = (uint8_t)len;
	memcpy(c->bytes, bytes, len);
	c->insn = *insn;
	return BT_OK;
}

enum bt_status cpu_emulate(struct vcpu *v, const struct cpu_insn *insn, enum cpu_outcome *out)
{
	if (!v || !insn || !out)
		return BT_ERR_INVALID;
	if (v->stop) {
		*out = CPU_OUT_STOP;
		return BT_OK;
	}
	struct cpu_emu e = {
	    .v = v,
	    .in = insn,
	    .next = v->abi->rip + insn->di.length,
	    .out = CPU_OUT_CONTINUE,
	};
	v->exc.pending = false;
	v->stats.emulated++;
	bool tf_before = (cpu_rflags(v) & CPU_RFLAGS_TF) != 0;
	enum cpu_emu_rc rc = EMU_UNSUPPORTED;
	if (insn->di.attributes & ZYDIS_ATTRIB_HAS_LOCK)
		rc = emu_bool(cpu_raise(v, CPU_EXC_UD)); /* no locked form is emulated */
	else if (insn->not_advertised)
		/* not in the vCPU's CPUID (XSAVE, MONITOR, INVPCID, PKU, RDRAND,
		 * VEX/EVEX ...: pretrans/xlat/xlat_facts.c): #UD, as on a CPU
		 * without them */
		rc = emu_bool(cpu_raise(v, CPU_EXC_UD));
	else if ((rc = emu_basic(&e)) == EMU_NOTMINE && (rc = cpu_emul_io(&e)) == EMU_NOTMINE &&
		 (rc = cpu_emul_sys(&e)) == EMU_NOTMINE &&
		 (rc = cpu_emul_compat(&e)) == EMU_NOTMINE)
		rc = cpu_emul_seg(&e);
	switch (rc) {
	case EMU_OK:
		if (!e.jumped)
			v->abi->rip = e.next;
		*out = e.out;
		if (e.out == CPU_OUT_CONTINUE)
			*out = cpu_run_outcome(v);
		if (e.out != CPU_OUT_HALT && e.out != CPU_OUT_STOP) {
			bool trap = e.step == CPU_STEP_TF_BEFORE ? tf_before
				    : e.step == CPU_STEP_TF_AFTER
					? (cpu_rflags(v) & CPU_RFLAGS_TF) != 0
					: false;
			if (trap)
				BT_TRY(cpu_single_step_trap(v, out));
		}
		cpu_update_irq_request(v);
		return BT_OK;
	case EMU_EXC:
		return cpu_deliver_exc(v, out);
	case EMU_NOTMINE:
	case EMU_UNSUPPORTED:
		break;
	}
	if (v->quiet_unsupported)
		return BT_ERR_UNSUPPORTED;
	bt_err(LOG_CPU, "cpu: %s at rip %#llx is not emulated",
	       ZydisMnemonicGetString(insn->di.mnemonic), (unsigned long long)v->abi->rip);
	*out = CPU_OUT_STOP;
	return BT_ERR_UNSUPPORTED;
}

bool cpu_insn_touches_fpu(const struct cpu_insn *insn)
{
	return insn->fpu;
}

enum bt_status cpu_step_priv_cached(struct vcpu *v, struct cpu_insn *insn, bool *valid,
				    enum cpu_outcome *out)
{
	if (!v || !out || !insn || !valid)
		return BT_ERR_INVALID;
	if (v->stop) {
		*out = CPU_OUT_STOP;
		return BT_OK;
	}
	if (!*valid) {
		BT_TRY(cpu_priv_decode(v, insn, valid, out));
		if (!*valid)
			return BT_OK; /* a fault was delivered */
	}
	return cpu_emulate(v, insn, out);
}

enum bt_status cpu_priv_decode(struct vcpu *v, struct cpu_insn *insn, bool *valid,
			       enum cpu_outcome *out)
{
	if (!v || !out || !insn || !valid)
		return BT_ERR_INVALID;
	if (v->stop) {
		*out = CPU_OUT_STOP;
		return BT_OK;
	}
	*out = CPU_OUT_CONTINUE;
	if (*valid)
		return BT_OK;
	uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
	size_t got = 0;
	struct mmu_fault f = {0};
	/* outside 64-bit mode the fetch is at CS.base + EIP (an LDT code
	 * segment of a compat-mode program may have a base) */
	gva_t at = cpu_mode64(v) ? v->abi->rip : v->seg[CPU_CS].base + (uint32_t)v->abi->rip;
	BT_TRY(mmu_fetch(v->mmu, at, buf, sizeof(buf), &got, &f));
	if (cpu_decode(v, buf, got, insn) != BT_OK) {
		/* the bytes we could not fetch were needed: that fault first */
		if (got < sizeof(buf) && f.pending) {
			if (f.vector == MMU_VEC_PF) {
				v->exc =
				    (struct cpu_exc){true, CPU_EXC_PF, true, f.error_code, f.addr};
				return cpu_deliver_exc(v, out);
			}
			cpu_raise_gp0(v);
			return cpu_deliver_exc(v, out);
		}
		cpu_raise(v, CPU_EXC_UD);
		return cpu_deliver_exc(v, out);
	}
	*valid = true;
	return BT_OK;
}

enum bt_status cpu_step_priv(struct vcpu *v, enum cpu_outcome *out)
{
	struct cpu_insn insn;
	bool valid = false;
	return cpu_step_priv_cached(v, &insn, &valid, out);
}

enum bt_status cpu_single_step(struct vcpu *v, enum cpu_outcome *out)
{
	if (!v || !out)
		return BT_ERR_INVALID;
	*out = CPU_OUT_CONTINUE;
	return cpu_single_step_trap(v, out);
}

/* The alignment a data access of n bytes needs under alignment checking
 * (SDM vol. 3, "Alignment Checking"): word 2, doubleword 4, quadword 8,
 * an 80-bit value or pseudo-descriptor 8, a 16:32 far pointer 4.  Wider
 * (SSE, FXSAVE/XSAVE areas) is not checked: the aligned forms raise #GP
 * themselves, and #AC for the unaligned ones is model-specific. */
static unsigned ac_alignment(unsigned n)
{
	switch (n) {
	case 2:
	case 4:
	case 8:
		return n;
	case 6:
		return 4;
	case 10:
		return 8;
	default:
		return 1;
	}
}

enum bt_status cpu_check_alignment(struct vcpu *v, bool *raised, enum cpu_outcome *out)
{
	if (!v || !raised || !out)
		return BT_ERR_INVALID;
	*raised = false;
	*out = CPU_OUT_CONTINUE;
	if (v->cpl != 3 || !(v->cr0 & CPU_CR0_AM) || !(cpu_rflags(v) & CPU_RFLAGS_AC))
		return BT_OK;
	uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
	size_t got = 0;
	struct mmu_fault f = {0};
	struct cpu_insn insn;
	gva_t at = cpu_mode64(v) ? v->abi->rip : v->seg[CPU_CS].base + (uint32_t)v->abi->rip;
	/* a fetch fault or undecodable bytes: running the instruction raises it */
	if (mmu_fetch(v->mmu, at, buf, sizeof(buf), &got, &f) != BT_OK ||
	    cpu_decode(v, buf, got, &insn) != BT_OK)
		return BT_OK;
	for (unsigned i = 0; i < insn.di.operand_count; i++) {
		const ZydisDecodedOperand *o = &insn.ops[i];
		if (o->type != ZYDIS_OPERAND_TYPE_MEMORY || o->mem.type != ZYDIS_MEMOP_TYPE_MEM)
			continue;
		unsigned need = ac_alignment(o->size / 8);
		if (need > 1 && (cpu_op_addr(v, &insn, o) & (need - 1))) {
			*raised = true;
			enum bt_status s = cpu_deliver(v, CPU_EXC_AC, CPU_EV_FAULT, true, 0);
			if (s == BT_ERR_GUEST) {
				*out = CPU_OUT_STOP;
				return BT_OK;
			}
			BT_TRY(s);
			*out = cpu_run_outcome(v);
			return BT_OK;
		}
	}
	return BT_OK;
}

enum bt_status cpu_insn_reads_dest(struct vcpu *v, gva_t rip, bool *reads)
{
	uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
	size_t got = 0;
	struct mmu_fault f = {0};
	struct cpu_insn insn;
	if (!v || !reads)
		return BT_ERR_INVALID;
	BT_TRY(mmu_fetch(v->mmu, rip, buf, sizeof(buf), &got, &f));
	if (cpu_decode(v, buf, got, &insn) != BT_OK)
		return BT_ERR_GUEST;
	*reads = false;
	for (unsigned i = 0; i < insn.di.operand_count; i++) {
		const ZydisDecodedOperand *o = &insn.ops[i];
		if (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.type != ZYDIS_MEMOP_TYPE_AGEN &&
		    (o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
		    (o->actions & ZYDIS_OPERAND_ACTION_MASK_READ))
			*reads = true;
	}
	return BT_OK;
}

enum bt_status cpu_syscall_from_user(struct vcpu *v, gva_t next_rip, enum cpu_outcome *out)
{
	if (!v || !out)
		return BT_ERR_INVALID;
	if (!cpu_syscall_enter(v, next_rip)) {
		v->abi->rip = next_rip - 2;
		return cpu_deliver_exc(v, out);
	}
	*out = CPU_OUT_CONTINUE;
	if (cpu_rflags(v) & CPU_RFLAGS_TF) /* SFMASK left TF set */
		BT_TRY(cpu_single_step_trap(v, out));
	cpu_update_irq_request(v);
	return BT_OK;
}
