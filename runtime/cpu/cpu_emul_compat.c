/*
 * Compatibility-mode (32- and 16-bit code segment) user code, interpreted:
 * the near stack and branch instructions such segments run between their
 * entry (a far return/jump, iret, sigreturn) and their exit (a far jump
 * back, int3, int 0x80).  The runtime never runs such code on the host (the
 * host has its own LDT) nor translates it (the translator decodes 64-bit
 * code); it steps it here one instruction at a time (docs/user-mode.md).
 *
 * As the SDM defines them: operand size from the instruction (the code
 * segment's D bit, 0x66), stack width from SS.B (ESP or SP, wrapping at
 * 4 GiB or 64 KiB, SS base added), EIP/IP masked to the operand size and
 * checked against the CS limit (#GP(0)).  Memory operands are exact only
 * for flat data segments with 32-bit addressing; anything else is
 * EMU_UNSUPPORTED (the vCPU stops with the instruction named), never a
 * silently wrong result.
 */
#include "runtime/cpu/cpu_internal.h"

static uint64_t opmask(unsigned bits)
{
	return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

/* The stack pointer's width: SS.B (32-bit ESP) or 16-bit SP. */
static uint64_t sp_mask(const struct vcpu *v)
{
	return (v->seg[CPU_SS].ar & CPU_AR_DB) ? 0xffffffffull : 0xffffull;
}

static bool push(struct vcpu *v, uint64_t val, unsigned n)
{
	uint64_t m = sp_mask(v), rsp = v->abi->gpr[VCPU_RSP];
	uint64_t sp = (rsp - n) & m;
	if (!cpu_stack_write(v, v->seg[CPU_SS].base + sp, &val, n))
		return false;
	v->abi->gpr[VCPU_RSP] = (rsp & ~m) | sp;
	return true;
}

static bool pop(struct vcpu *v, uint64_t *val, unsigned n, unsigned extra)
{
	uint64_t m = sp_mask(v), rsp = v->abi->gpr[VCPU_RSP];
	uint64_t sp = rsp & m;
	*val = 0;
	if (!cpu_stack_read(v, v->seg[CPU_SS].base + sp, val, n))
		return false;
	v->abi->gpr[VCPU_RSP] = (rsp & ~m) | ((sp + n + extra) & m);
	return true;
}

/* Memory operands this interpreter computes exactly: 32-bit addressing
 * through a segment with base 0. */
static bool mem_ok(const struct vcpu *v, const struct cpu_insn *in, const ZydisDecodedOperand *op)
{
	if (op->type != ZYDIS_OPERAND_TYPE_MEMORY)
		return true;
	if (in->di.address_width != 32)
		return false;
	unsigned s = op->mem.segment == ZYDIS_REGISTER_SS   ? CPU_SS
		     : op->mem.segment == ZYDIS_REGISTER_ES ? CPU_ES
		     : op->mem.segment == ZYDIS_REGISTER_CS ? CPU_CS
		     : op->mem.segment == ZYDIS_REGISTER_DS ? CPU_DS
							    : ~0u;
	return s != ~0u && v->seg[s].base == 0;
}

/* A near branch to target (already the operand-size offset). */
static enum cpu_emu_rc branch(struct cpu_emu *e, uint64_t target)
{
	struct vcpu *v = e->v;
	target &= opmask(e->in->di.operand_width);
	if (target > v->seg[CPU_CS].limit)
		return emu_bool(cpu_raise_gp0(v));
	v->abi->rip = target;
	e->jumped = true;
	return EMU_OK;
}

static bool is_sreg(const ZydisDecodedOperand *op)
{
	return op->type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       ZydisRegisterGetClass(op->reg.value) == ZYDIS_REGCLASS_SEGMENT;
}

enum cpu_emu_rc cpu_emul_compat(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *in = e->in;
	if (cpu_mode64(v))
		return EMU_NOTMINE;
	const ZydisDecodedOperand *op = &in->ops[0];
	unsigned n = in->di.operand_width / 8;
	uint64_t val = 0;
	e->step = CPU_STEP_TF_BEFORE;
	switch (in->di.mnemonic) {
	case ZYDIS_MNEMONIC_PUSH:
		if (is_sreg(op))
			return EMU_NOTMINE; /* cpu_emul_seg */
		if (!mem_ok(v, in, op))
			return EMU_UNSUPPORTED;
		if (!cpu_op_read(v, in, op, &val))
			return EMU_EXC;
		return emu_bool(push(v, val, n));
	case ZYDIS_MNEMONIC_POP: {
		if (is_sreg(op))
			return EMU_NOTMINE;
		if (op->type != ZYDIS_OPERAND_TYPE_REGISTER)
			return EMU_UNSUPPORTED; /* pop to memory: ESP-relative subtleties */
		if (!pop(v, &val, n, 0))
			return EMU_EXC;
		cpu_gpr_write(v, op->reg.value, val);
		return EMU_OK;
	}
	case ZYDIS_MNEMONIC_CALL:
	case ZYDIS_MNEMONIC_JMP: {
		if (in->di.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
			return EMU_NOTMINE; /* cpu_emul_sys */
		uint64_t target;
		if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			target = e->next + (uint64_t)op->imm.value.s;
		else if (!mem_ok(v, in, op))
			return EMU_UNSUPPORTED;
		else if (!cpu_op_read(v, in, op, &target))
			return EMU_EXC;
		target &= opmask(in->di.operand_width);
		if (target > v->seg[CPU_CS].limit)
			return emu_bool(cpu_raise_gp0(v));
		if (in->di.mnemonic == ZYDIS_MNEMONIC_CALL && !push(v, e->next, n))
			return EMU_EXC;
		return branch(e, target);
	}
	case ZYDIS_MNEMONIC_RET: {
		if (in->di.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
			return EMU_NOTMINE;
		unsigned extra =
		    op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? (unsigned)op->imm.value.u : 0;
		uint64_t rsp = v->abi->gpr[VCPU_RSP];
		if (!pop(v, &val, n, extra))
			return EMU_EXC;
		enum cpu_emu_rc rc = branch(e, val);
		if (rc != EMU_OK)
			v->abi->gpr[VCPU_RSP] = rsp; /* a fault leaves ESP as it was */
		return rc;
	}
	default:
		return EMU_NOTMINE;
	}
}
