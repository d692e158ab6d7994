/*
 * Port I/O: in/out and the string forms ins/outs with and without rep,
 * through the platform's pio callbacks (the runtime wires them to
 * iobus_pio_in/out); string data moves through the soft-MMU.
 *
 * Invariants
 *  1. Permission (SDM vol. 1 19.5): CPL <= IOPL, or else every bit of the
 *     access in the TSS I/O permission bitmap is clear.  The bitmap starts
 *     at the 16-bit offset at TSS+0x66; the two bytes holding the access's
 *     bits are read (implicit supervisor reads) and must lie within the TSS
 *     limit, else #GP(0) -- Linux 6.1 points the offset past the limit for
 *     a task without ioperm()/iopl(3), and implements both with the bitmap
 *     (IOPL stays 0).  The check runs once per instruction, before any
 *     port or memory access.
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

/* May this vCPU access `size` ports from `port` (invariant 1)?  false =
 * #GP(0), or a #PF reading the TSS, recorded in v->exc. */
static bool io_allowed(struct vcpu *v, uint16_t port, unsigned size)
{
	if (v->cpl <= cpu_iopl(v))
		return true;
	const struct cpu_seg *tr = &v->tr;
	unsigned type = tr->ar & CPU_AR_TYPE_MASK;
	if ((tr->ar & CPU_AR_UNUSABLE) || (type != 0x9 && type != 0xb) || tr->limit < 0x67)
		return cpu_raise_gp0(v);
	uint16_t map;
	if (!cpu_mem_read(v, tr->base + 0x66, &map, 2, MMU_ACC_IMPLICIT))
		return false;
	uint32_t off = (uint32_t)map + port / 8;
	if (off + 1 > tr->limit)
		return cpu_raise_gp0(v);
	uint16_t bits;
	if (!cpu_mem_read(v, tr->base + off, &bits, 2, MMU_ACC_IMPLICIT))
		return false;
	uint16_t want = (uint16_t)(((1u << size) - 1) << (port & 7));
	if (bits & want)
		return cpu_raise_gp0(v);
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
	if (!io_allowed(v, port, size))
		return EMU_EXC;
	/* single-stepping: one iteration per #DB, as on hardware */
	unsigned chunk = (cpu_rflags(v) & CPU_RFLAGS_TF) ? 1 : CPU_REP_CHUNK;
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
		if (n == chunk) {
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
		return emu_string_io(e, m == ZYDIS_MNEMONIC_INSB || m == ZYDIS_MNEMONIC_INSW ||
					    m == ZYDIS_MNEMONIC_INSD);
	default:
		return EMU_NOTMINE;
	}
	/* in: ops[0] = al/ax/eax, ops[1] = dx or imm8; out: ops[0] = dx or
	 * imm8, ops[1] = al/ax/eax */
	const ZydisDecodedOperand *data = &insn->ops[is_in ? 0 : 1];
	const ZydisDecodedOperand *p = &insn->ops[is_in ? 1 : 0];
	uint16_t port = p->type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? (uint16_t)p->imm.value.u
								: (uint16_t)v->abi->gpr[VCPU_RDX];
	unsigned size = data->size / 8;
	if (!io_allowed(v, port, size))
		return EMU_EXC;
	if (is_in)
		cpu_gpr_write(v, data->reg.value, pio_in(v, port, size));
	else
		pio_out(v, port, size, (uint32_t)cpu_gpr_read(v, data->reg.value));
	return EMU_OK;
}
