/*
 * Port I/O: in/out and the string forms ins/outs with and without rep,
 * through the platform's pio callbacks (the runtime wires them to
 * iobus_pio_in/out); string data moves through the soft-MMU.
 *
 * Invariants
 *  1. IOPL is 0 and there is no I/O bitmap consulted: port I/O is allowed
 *     at CPL 0 only, #GP(0) above (guest user code runs natively and never
 *     gets here for its own I/O).
 *  2. A bus failure reads as all-ones and drops the write (logged), like an
 *     unclaimed port; it never becomes a host error.
 *  3. rep ins/outs: each iteration is one port access plus one memory
 *     access; RCX/RDI/RSI are updated per completed iteration, so a #PF in
 *     the middle leaves the done part done and RIP at the instruction
 *     (restartable, as on hardware).  The count uses RCX (ECX with a 0x67
 *     prefix).  At most CPU_REP_CHUNK iterations run per call; RIP then
 *     stays on the instruction so interrupts are taken between chunks.
 */
#include "runtime/cpu/cpu_internal.h"

#include "pretrans/base/log.h"

/* Iterations of a rep ins/outs per emulation call. */
#define CPU_REP_CHUNK 4096u

static uint32_t pio_in(struct vcpu *v, uint16_t port, unsigned size)
{
	uint32_t val = 0xffffffffu;
	v->stats.pio++;
	if (!v->plat.pio_in || v->plat.pio_in(v->plat.opaque, port, size, &val) != BT_OK)
		val = 0xffffffffu;
	return size == 4 ? val : val & ((1u << (8 * size)) - 1);
}

static void pio_out(struct vcpu *v, uint16_t port, unsigned size, uint32_t val)
{
	v->stats.pio++;
	if (v->plat.pio_out && v->plat.pio_out(v->plat.opaque, port, size, val) != BT_OK)
		bt_debug(LOG_CPU, "cpu: out %#x to port %#x failed: dropped", val, port);
}

/* Would a write of size bytes at a fault?  If so raise that fault (the
 * real access below raises exactly what the walk found). */
static bool io_probe_write(struct vcpu *v, gva_t a, unsigned size)
{
	gva_t ends[2] = {a, a + size - 1};
	for (unsigned i = 0; i < 2; i++) {
		gpa_t gpa;
		struct mmu_fault f = {0};
		if (mmu_translate(v->mmu, ends[i], MMU_ACC_WRITE | MMU_ACC_PROBE, &gpa, NULL, &f) !=
			BT_OK ||
		    f.pending) {
			uint32_t zero = 0;
			return cpu_mem_write(v, a, &zero, size, 0);
		}
	}
	return true;
}

static unsigned string_size(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_INSB:
	case ZYDIS_MNEMONIC_OUTSB:
		return 1;
	case ZYDIS_MNEMONIC_INSW:
	case ZYDIS_MNEMONIC_OUTSW:
		return 2;
	default:
		return 4;
	}
}

static enum cpu_emu_rc emu_string_io(struct cpu_emu *e, bool in)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *insn = e->in;
	unsigned size = string_size(insn->di.mnemonic);
	bool rep = (insn->di.attributes &
		    (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)) != 0;
	bool a32 = insn->di.address_width == 32;
	uint64_t amask = a32 ? 0xffffffffull : ~0ull;
	int64_t step = (cpu_rflags(v) & CPU_RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	uint16_t port = (uint16_t)v->abi->gpr[VCPU_RDX];
	enum vcpu_gpr areg = in ? VCPU_RDI : VCPU_RSI;
	/* outs honours a segment override (fs/gs bases); ins always uses ES */
	uint64_t seg_base = 0;
	if (!in) {
		for (unsigned i = 0; i < insn->di.operand_count; i++) {
			const ZydisDecodedOperand *op = &insn->ops[i];
			if (op->type != ZYDIS_OPERAND_TYPE_MEMORY)
				continue;
			if (op->mem.segment == ZYDIS_REGISTER_FS)
				seg_base = v->abi->fs_base;
			else if (op->mem.segment == ZYDIS_REGISTER_GS)
				seg_base = v->abi->gs_base;
		}
	}
	for (unsigned n = 0;; n++) {
		if (rep && (v->abi->gpr[VCPU_RCX] & amask) == 0)
			break;
		if (n == CPU_REP_CHUNK) {
			/* interruptible like hardware: RIP stays on the instruction,
			 * the runtime checks interrupts and re-runs it */
			e->jumped = true;
			break;
		}
		uint64_t a = v->abi->gpr[areg] & amask;
		uint32_t val = 0;
		if (in) {
			/* a faulting ins must not consume the port's data */
			if (!io_probe_write(v, a, size))
				return EMU_EXC;
			val = pio_in(v, port, size);
			if (!cpu_mem_write(v, a, &val, size, 0))
				return EMU_EXC;
		} else {
			if (!cpu_mem_read(v, seg_base + a, &val, size, 0))
				return EMU_EXC;
			pio_out(v, port, size, val);
		}
		uint64_t na = (a + (uint64_t)step) & amask;
		v->abi->gpr[areg] = na;
		if (!rep)
			break;
		uint64_t c = (v->abi->gpr[VCPU_RCX] - 1) & amask;
		v->abi->gpr[VCPU_RCX] = c;
	}
	return EMU_OK;
}

enum cpu_emu_rc cpu_emul_io(struct cpu_emu *e)
{
	struct vcpu *v = e->v;
	const struct cpu_insn *insn = e->in;
	ZydisMnemonic m = insn->di.mnemonic;
	bool is_in;
	switch (m) {
	case ZYDIS_MNEMONIC_IN:
	case ZYDIS_MNEMONIC_OUT:
		is_in = m == ZYDIS_MNEMONIC_IN;
		break;
	case ZYDIS_MNEMONIC_INSB:
	case ZYDIS_MNEMONIC_INSW:
	case ZYDIS_MNEMONIC_INSD:
	case ZYDIS_MNEMONIC_OUTSB:
	case ZYDIS_MNEMONIC_OUTSW:
	case ZYDIS_MNEMONIC_OUTSD:
		if (v->cpl != 0)
			return emu_bool(cpu_raise_gp0(v));
		return emu_string_io(e, m == ZYDIS_MNEMONIC_INSB || m == ZYDIS_MNEMONIC_INSW ||
					    m == ZYDIS_MNEMONIC_INSD);
	default:
		return EMU_NOTMINE;
	}
	if (v->cpl != 0)
		return emu_bool(cpu_raise_gp0(v));
	/* in: ops[0] = al/ax/eax, ops[1] = dx or imm8; out: ops[0] = dx or
	 * imm8, ops[1] = al/ax/eax */
	const ZydisDecodedOperand *data = &insn->ops[is_in ? 0 : 1];
	const ZydisDecodedOperand *p = &insn->ops[is_in ? 1 : 0];
	uint16_t port = p->type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? (uint16_t)p->imm.value.u
								: (uint16_t)v->abi->gpr[VCPU_RDX];
	unsigned size = data->size / 8;
	if (is_in)
		cpu_gpr_write(v, data->reg.value, pio_in(v, port, size));
	else
		pio_out(v, port, size, (uint32_t)cpu_gpr_read(v, data->reg.value));
	return EMU_OK;
}
