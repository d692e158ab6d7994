/*
 * Internals shared by the runtime/cpu sources.  Not for other modules.
 *
 * Convention: emulation helpers return bool; false means a guest exception
 * was recorded in v->exc (cpu_raise*) and the caller must stop and let the
 * dispatcher (cpu_emulate) deliver it as a fault at the instruction's RIP.
 */
#ifndef BT_RUNTIME_CPU_CPU_INTERNAL_H
#define BT_RUNTIME_CPU_CPU_INTERNAL_H

#include "runtime/cpu/cpu.h"
#include "runtime/mmu/mmu.h"

/* Record a guest exception in v->exc; always returns false. */
bool cpu_raise(struct vcpu *v, uint8_t vector);
bool cpu_raise_err(struct vcpu *v, uint8_t vector, uint32_t error);
static inline bool cpu_raise_gp0(struct vcpu *v)
{
	return cpu_raise_err(v, CPU_EXC_GP, 0);
}

static inline bool cpu_is_canonical(uint64_t a)
{
	/* bits 63:47 all equal (48-bit linear addresses) */
	uint64_t top = a >> 47;
	return top == 0 || top == 0x1ffff;
}

/* 64-bit mode (CS.L) as opposed to compatibility mode. */
static inline bool cpu_mode64(const struct vcpu *v)
{
	return (v->seg[CPU_CS].ar & CPU_AR_L) != 0;
}

/* SGDT/SIDT/SLDT/STR/SMSW may run: CPL 0, or CR4.UMIP clear. */
static inline bool cpu_umip_ok(const struct vcpu *v)
{
	return v->cpl == 0 || !(v->cr4 & CPU_CR4_UMIP);
}

/* Guest memory through the soft-MMU; false = #PF/#GP recorded in v->exc.
 * acc: MMU_ACC_* modifiers (IMPLICIT for descriptor tables and the TSS). */
bool cpu_mem_read(struct vcpu *v, gva_t va, void *buf, size_t len, unsigned acc);
bool cpu_mem_write(struct vcpu *v, gva_t va, const void *buf, size_t len, unsigned acc);
/* Same, but a fault is reported as #SS(0) when it is non-canonical. */
bool cpu_stack_read(struct vcpu *v, gva_t va, void *buf, size_t len);
bool cpu_stack_write(struct vcpu *v, gva_t va, const void *buf, size_t len);

/* Descriptors (cpu_seg.c).  Raw 8-byte descriptor of sel from GDT/LDT;
 * false = #GP(sel & ~3) (outside the table) or a #PF reading it. */
bool cpu_read_desc(struct vcpu *v, uint16_t sel, uint64_t *desc);
/* Decode an 8-byte code/data descriptor into a cached segment. */
void cpu_desc_to_seg(uint64_t desc, uint16_t sel, struct cpu_seg *s);
/* Load CS for a far transfer / iret / gate: the checks of a code segment at
 * privilege `new_cpl` (64-bit: L=1 D=0, or a compat-mode L=0 segment when
 * allow_compat); err_ext is OR-ed into error codes (EXT bit). */
bool cpu_check_code_seg(struct vcpu *v, uint16_t sel, uint64_t desc, unsigned new_cpl,
			uint32_t err_ext);
/* Set the accessed bit of a descriptor in the guest table if clear. */
bool cpu_set_desc_accessed(struct vcpu *v, uint16_t sel, uint64_t *desc);
/* Load SS for a CPL change (iret/lret to an outer level). */
bool cpu_load_ss_for_cpl(struct vcpu *v, uint16_t sel, unsigned cpl);
/* CPL change: CPL and the soft-MMU's view of it. */
void cpu_set_cpl(struct vcpu *v, unsigned cpl);

/* When a completed instruction is followed by a single-step #DB (SDM vol. 3
 * 18.3.1.4): if TF was set when it started (the default), never (it
 * delivered an event, which clears TF; mov ss), or if TF is set after it
 * (syscall: SFMASK decides). */
enum cpu_step { CPU_STEP_TF_BEFORE = 0, CPU_STEP_NONE, CPU_STEP_TF_AFTER };

/* One emulation in progress (cpu_emul*.c). */
struct cpu_emu {
	struct vcpu *v;
	const struct cpu_insn *in;
	gva_t next;	      /* RIP of the next instruction */
	enum cpu_outcome out; /* CONTINUE unless the handler says otherwise */
	bool jumped;	      /* the handler set abi->rip itself */
	enum cpu_step step;   /* single-step #DB after the instruction */
};

enum cpu_emu_rc {
	EMU_OK,		 /* done: RIP = next unless jumped */
	EMU_EXC,	 /* guest exception in v->exc: deliver as a fault */
	EMU_NOTMINE,	 /* not this class */
	EMU_UNSUPPORTED, /* a valid instruction this vCPU does not emulate */
};

/* syscall's transition (Intel: #UD without EFER.SCE or outside 64-bit
 * mode); false = #UD recorded, nothing changed. */
bool cpu_syscall_enter(struct vcpu *v, gva_t next_rip);

/* Deliver the event an instruction at insn_rip raises with abi->rip at the
 * next instruction (int n, int3, into, int1): a fault during the delivery
 * is reported at insn_rip. */
enum bt_status cpu_deliver_insn(struct vcpu *v, uint8_t vector, enum cpu_event_kind kind,
				gva_t insn_rip);

/* Emulation by class. */
enum cpu_emu_rc cpu_emul_io(struct cpu_emu *e);
enum cpu_emu_rc cpu_emul_sys(struct cpu_emu *e);
enum cpu_emu_rc cpu_emul_seg(struct cpu_emu *e);
enum cpu_emu_rc cpu_emul_compat(struct cpu_emu *e); /* near stack/branches, 32/16-bit CS */

static inline enum cpu_emu_rc emu_bool(bool ok)
{
	return ok ? EMU_OK : EMU_EXC;
}

/* Operand access helpers (cpu_emul.c). */
uint64_t cpu_gpr_read(const struct vcpu *v, ZydisRegister r);
void cpu_gpr_write(struct vcpu *v, ZydisRegister r, uint64_t val);
/* Effective address of a memory operand (segment base added for fs/gs). */
gva_t cpu_op_addr(const struct vcpu *v, const struct cpu_insn *in, const ZydisDecodedOperand *op);
/* Register or memory operand of up to 8 bytes (op->size bits). */
bool cpu_op_read(struct vcpu *v, const struct cpu_insn *in, const ZydisDecodedOperand *op,
		 uint64_t *val);
bool cpu_op_write(struct vcpu *v, const struct cpu_insn *in, const ZydisDecodedOperand *op,
		  uint64_t val);

/* Outcome for "the vCPU runs at abi->rip now" (USER if CPL 3). */
static inline enum cpu_outcome cpu_run_outcome(const struct vcpu *v)
{
	return v->cpl == 3 ? CPU_OUT_USER : CPU_OUT_CONTINUE;
}

uint64_t cpu_host_tsc(const struct vcpu *v);

#endif
