/*
 * The btvm virtual CPU: architectural state of one x86-64 vCPU, exception
 * and interrupt delivery through the guest IDT, and emulation of the
 * privileged/sensitive instructions that translated code hands back to the
 * runtime (XLAT_EXIT_PRIV).
 *
 * Ownership of state
 *  - GPRs, RIP, the arithmetic RFLAGS bits, the FS/GS/KERNEL_GS bases, the
 *    virtual IF (byte 0 of abi->irq) and the virtual AC (abi->ac) live in the
 *    struct vcpu_abi area that translated code reaches through %gs.  They are
 *    the single copy: use cpu_rflags()/cpu_set_rflags() to see RFLAGS whole.
 *  - The guest's x87/SSE state is abi->fxsave (FXSAVE64 layout) whenever C
 *    code runs: the translator's trampolines load it into the host FPU on
 *    entry to translated code and save it back on every exit; emulated
 *    fxsave/fxrstor work on that image.
 *  - Everything else (CRs, EFER, CPL, segments, descriptor-table registers,
 *    DRs, MSRs, the CPUID profile) lives in struct vcpu.
 *
 * vCPU modes (CPL and the halt/stop flags):
 *
 *   KERNEL (CPL0) --iretq/sysret to CPL3 [cpu_emulate]--> USER (CPL3)
 *   USER --event [cpu_deliver] / syscall [cpu_syscall_from_user]--> KERNEL
 *   KERNEL --hlt, IF=1 [cpu_emulate]--> HALTED --interrupt [cpu_check_interrupts]--> KERNEL
 *   any --triple fault [cpu_deliver] / hlt with IF=0 [cpu_check_interrupts]--> STOPPED
 *
 * Guest events are results, not errors: a #GP raised by an emulated
 * instruction is delivered through the guest IDT and the call returns BT_OK.
 * A non-BT_OK status means a host-side problem (or BT_ERR_GUEST from
 * cpu_deliver when the guest triple-faulted; v->stop then says why).
 */
#ifndef BT_RUNTIME_CPU_CPU_H
#define BT_RUNTIME_CPU_CPU_H

#include <stdio.h>
#include <Zydis/Zydis.h>

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/vcpu_abi.h"

struct mmu;
struct boot_state;

/* Segment registers in x86 encoding order. */
enum cpu_sreg { CPU_ES, CPU_CS, CPU_SS, CPU_DS, CPU_FS, CPU_GS, CPU_NSREG };

/* Cached descriptor access rights, VMX layout (descriptor bits 40-55). */
#define CPU_AR_TYPE_MASK 0x000fu
#define CPU_AR_S	 (1u << 4) /* code/data (1) vs system (0) */
#define CPU_AR_DPL_SHIFT 5
#define CPU_AR_DPL_MASK	 (3u << CPU_AR_DPL_SHIFT)
#define CPU_AR_P	 (1u << 7)
#define CPU_AR_AVL	 (1u << 12)
#define CPU_AR_L	 (1u << 13)
#define CPU_AR_DB	 (1u << 14)
#define CPU_AR_G	 (1u << 15)
#define CPU_AR_UNUSABLE	 (1u << 16) /* a null selector was loaded */

struct cpu_seg {
	uint16_t sel;
	uint32_t limit; /* byte granular (G already applied) */
	uint32_t ar;	/* CPU_AR_* */
	uint64_t base;	/* FS/GS: unused, the bases live in vcpu_abi */
};

struct cpu_dtr {
	uint64_t base;
	uint16_t limit;
};

/* Control-register, EFER and RFLAGS bits used by the vCPU. */
#define CPU_CR0_PE (1ull << 0)
#define CPU_CR0_MP (1ull << 1)
#define CPU_CR0_EM (1ull << 2)
#define CPU_CR0_TS (1ull << 3)
#define CPU_CR0_ET (1ull << 4)
#define CPU_CR0_NE (1ull << 5)
#define CPU_CR0_WP (1ull << 16)
#define CPU_CR0_AM (1ull << 18)
#define CPU_CR0_NW (1ull << 29)
#define CPU_CR0_CD (1ull << 30)
#define CPU_CR0_PG (1ull << 31)

#define CPU_CR4_VME	   (1ull << 0)
#define CPU_CR4_PVI	   (1ull << 1)
#define CPU_CR4_TSD	   (1ull << 2)
#define CPU_CR4_DE	   (1ull << 3)
#define CPU_CR4_PSE	   (1ull << 4)
#define CPU_CR4_PAE	   (1ull << 5)
#define CPU_CR4_MCE	   (1ull << 6)
#define CPU_CR4_PGE	   (1ull << 7)
#define CPU_CR4_PCE	   (1ull << 8)
#define CPU_CR4_OSFXSR	   (1ull << 9)
#define CPU_CR4_OSXMMEXCPT (1ull << 10)
#define CPU_CR4_UMIP	   (1ull << 11)
#define CPU_CR4_LA57	   (1ull << 12)
#define CPU_CR4_FSGSBASE   (1ull << 16)
#define CPU_CR4_PCIDE	   (1ull << 17)
#define CPU_CR4_OSXSAVE	   (1ull << 18)
#define CPU_CR4_SMEP	   (1ull << 20)
#define CPU_CR4_SMAP	   (1ull << 21)
#define CPU_CR4_PKE	   (1ull << 22)

#define CPU_EFER_SCE (1ull << 0)
#define CPU_EFER_LME (1ull << 8)
#define CPU_EFER_LMA (1ull << 10)
#define CPU_EFER_NXE (1ull << 11)

#define CPU_RFLAGS_CF	 (1ull << 0)
#define CPU_RFLAGS_FIXED (1ull << 1) /* always 1 */
#define CPU_RFLAGS_PF	 (1ull << 2)
#define CPU_RFLAGS_AF	 (1ull << 4)
#define CPU_RFLAGS_ZF	 (1ull << 6)
#define CPU_RFLAGS_SF	 (1ull << 7)
#define CPU_RFLAGS_TF	 (1ull << 8)
#define CPU_RFLAGS_IF	 (1ull << 9)
#define CPU_RFLAGS_DF	 (1ull << 10)
#define CPU_RFLAGS_OF	 (1ull << 11)
#define CPU_RFLAGS_IOPL	 (3ull << 12)
#define CPU_RFLAGS_NT	 (1ull << 14)
#define CPU_RFLAGS_RF	 (1ull << 16)
#define CPU_RFLAGS_VM	 (1ull << 17)
#define CPU_RFLAGS_AC	 (1ull << 18)
#define CPU_RFLAGS_VIF	 (1ull << 19)
#define CPU_RFLAGS_VIP	 (1ull << 20)
#define CPU_RFLAGS_ID	 (1ull << 21)
/* The flags translated code does not keep (tc_run writes back only the
 * arithmetic bits and DF): the vCPU keeps them in vcpu.rflags_sys. */
#define CPU_RFLAGS_SYS                                                                             \
	(CPU_RFLAGS_TF | CPU_RFLAGS_IOPL | CPU_RFLAGS_NT | CPU_RFLAGS_RF | CPU_RFLAGS_ID |         \
	 CPU_RFLAGS_VIF | CPU_RFLAGS_VIP)
#define CPU_DR6_BS (1ull << 14) /* single-step #DB */

/* Exception vectors. */
enum cpu_vector {
	CPU_EXC_DE = 0,
	CPU_EXC_DB = 1,
	CPU_EXC_NMI = 2,
	CPU_EXC_BP = 3,
	CPU_EXC_OF = 4,
	CPU_EXC_BR = 5,
	CPU_EXC_UD = 6,
	CPU_EXC_NM = 7,
	CPU_EXC_DF = 8,
	CPU_EXC_TS = 10,
	CPU_EXC_NP = 11,
	CPU_EXC_SS = 12,
	CPU_EXC_GP = 13,
	CPU_EXC_PF = 14,
	CPU_EXC_MF = 16,
	CPU_EXC_AC = 17,
	CPU_EXC_MC = 18,
	CPU_EXC_XM = 19,
};

/* How an event arises; decides the DPL check, the EXT bit and the RIP pushed
 * (faults: the faulting instruction, the rest: abi->rip as set by the caller,
 * i.e. the next instruction). */
enum cpu_event_kind {
	CPU_EV_FAULT,	 /* exception, RIP = faulting instruction */
	CPU_EV_TRAP,	 /* exception, RIP = next instruction */
	CPU_EV_EXTERNAL, /* interrupt from the PIC (or NMI) */
	CPU_EV_SOFTWARE, /* int n / int3 / into: gate DPL checked against CPL */
};

/* What the runtime does after cpu_emulate / cpu_check_interrupts. */
enum cpu_outcome {
	CPU_OUT_CONTINUE, /* run guest kernel code at abi->rip */
	CPU_OUT_HALT,	  /* hlt: wait for an interrupt, then cpu_check_interrupts */
	CPU_OUT_STOP,	  /* VM stops: v->stop says why */
	CPU_OUT_USER,	  /* CPL is now 3: resume guest user code at abi->rip */
};

enum cpu_stop_reason {
	CPU_STOP_NONE = 0,
	CPU_STOP_TRIPLE_FAULT,
	CPU_STOP_HALT_IF0, /* hlt with IF=0: halted for good */
};
const char *cpu_stop_reason_str(enum cpu_stop_reason r);

/*
 * The platform as the vCPU sees it: port I/O and the interrupt controller.
 * Callbacks so that the vCPU does not depend on a device model; the runtime
 * wires them to iobus_pio_in/out and pic_has_interrupt/pic_ack.
 */
struct cpu_platform {
	void *opaque;
	/* size 1, 2 or 4; a failure reads as all-ones / drops the write */
	enum bt_status (*pio_in)(void *opaque, uint16_t port, unsigned size, uint32_t *val);
	enum bt_status (*pio_out)(void *opaque, uint16_t port, unsigned size, uint32_t val);
	bool (*intr_pending)(void *opaque);
	uint8_t (*intr_ack)(void *opaque); /* INTA cycle: the vector */
	/* optional: host TSC source (tests make it deterministic); NULL = rdtsc */
	uint64_t (*read_tsc)(void *opaque);
	/* optional: the local APIC's MSRs, IA32_APIC_BASE (0x1b) and
	 * IA32_TSC_DEADLINE (0x6e0), read or written; tsc is the guest TSC at
	 * the access; false raises #GP(0).  NULL: APIC_BASE is storage only
	 * and TSC_DEADLINE raises #GP(0) */
	bool (*apic_msr)(void *opaque, uint32_t index, bool write, uint64_t tsc, uint64_t *val);
	/* optional: CR8 is the local APIC's TPR bits 7:4 (SDM 10.8.6.1); a
	 * read fills *val, a write passes 0-15.  NULL: CR8 is storage */
	void (*apic_cr8)(void *opaque, bool write, uint64_t *val);
};

/* Optional CPUID features (cpu_config.features).  Off by default: they are
 * exact only for guest code the vCPU emulates (kernel code, translated user
 * code); guest user code in direct mode runs them on the host CPU, which
 * answers with the host's state (docs/cpu.md "Sensitive instructions"). */
#define CPU_FEAT_FSGSBASE (1u << 0) /* CPUID.7.EBX[0], CR4.FSGSBASE */
#define CPU_FEAT_RDPID	  (1u << 1) /* CPUID.7.ECX[22] */
#define CPU_FEAT_UMIP	  (1u << 2) /* CPUID.7.ECX[2], CR4.UMIP */

struct cpu_config {
	uint32_t tsc_khz;  /* advertised TSC frequency; 0 = measure the host's */
	uint8_t phys_bits; /* CPUID 0x80000008 physical address width; 0 = 46 */
	uint32_t features; /* CPU_FEAT_* to advertise in addition */
};

/* The CPUID profile, computed once at vcpu_init (see cpu_cpuid.c). */
struct cpu_cpuid_profile {
	uint32_t max_basic, max_ext;
	uint32_t f1_eax, f1_ebx, f1_ecx, f1_edx;
	uint32_t f7_ebx, f7_ecx, f7_edx;
	uint32_t e1_ecx, e1_edx;
	uint32_t tsc_khz;
	uint8_t phys_bits;
	uint64_t hash; /* cpuid_profile_hash() of the feature bits */
};

/* MSR storage (the table in cpu_msr.c says which index maps where). */
struct cpu_msrs {
	uint64_t star, lstar, cstar, sfmask;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	int64_t tsc_offset; /* guest TSC = host TSC + tsc_offset */
	int64_t tsc_adjust; /* IA32_TSC_ADJUST: what the guest's writes added */
	uint64_t tsc_aux;
	uint64_t pat;
	uint64_t misc_enable;
	uint64_t mtrr_def_type;
	uint64_t apic_base;
	uint64_t ucode_rev;
};

struct cpu_stats {
	uint64_t emulated; /* instructions emulated */
	uint64_t delivered[256];
	uint64_t double_faults;
	uint64_t irqs;
	uint64_t pio;
};

/* A decoded instruction as cpu_emulate takes it. */
struct cpu_insn {
	ZydisDecodedInstruction di;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	/* of xlat_insn_facts(), computed by cpu_decode (cached with it): not
	 * advertised by the vCPU's CPUID (#UD), touches x87/SSE state; a
	 * PRIV exit emulates from the per-block slot without asking again */
	bool not_advertised, fpu;
};

/* cpu_decode's cache: the same bytes in the same code-segment mode decode
 * the same way, and a guest's system-call path emulates the same few
 * instructions (sysretq, swapgs...) over and over (Zydis was 9% of a Linux
 * system-call loop in translated user mode). */
#define CPU_DCACHE_N 16
struct cpu_dcache_entry {
	const ZydisDecoder *dec; /* NULL: empty */
	uint8_t len;		 /* bytes compared */
	uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
	struct cpu_insn insn;
};

/* A guest exception recorded by an emulation helper, delivered by its caller. */
struct cpu_exc {
	bool pending;
	uint8_t vector;
	bool has_error;
	uint32_t error;
	gva_t cr2; /* #PF only */
};

struct vcpu {
	struct vcpu_abi *abi; /* caller-owned, outlives the vcpu */
	struct mmu *mmu;      /* caller-owned soft-MMU bound to abi */
	struct cpu_platform plat;

	uint64_t cr0, cr2, cr3, cr4, cr8, efer, xcr0;
	uint64_t rflags_sys; /* the CPU_RFLAGS_SYS bits of RFLAGS */
	unsigned cpl;
	struct cpu_seg seg[CPU_NSREG];
	struct cpu_seg ldtr, tr;
	struct cpu_dtr gdtr, idtr;
	uint64_t dr[8]; /* storage only; DR4/DR5 alias DR6/DR7 */
	struct cpu_msrs msr;
	struct cpu_cpuid_profile cpuid;

	bool shadow; /* interrupt shadow (sti, mov ss) until rip != shadow_rip */
	gva_t shadow_rip;
	bool halted; /* after hlt, until an interrupt */
	bool nmi_blocked;
	enum cpu_stop_reason stop;
	/* set by the caller: an instruction the emulation does not cover
	 * returns BT_ERR_UNSUPPORTED with nothing changed and nothing logged
	 * (the caller has another way to run it) */
	bool quiet_unsupported;
	struct cpu_exc exc; /* scratch: exception raised by the current emulation */

	ZydisDecoder dec, dec32, dec16; /* 64-bit, 32- and 16-bit compat code */
	struct cpu_dcache_entry dcache[CPU_DCACHE_N];
	struct cpu_stats stats;
};

/* Reset the vCPU to the 64-bit boot protocol's shape (long mode, flat
 * segments, IF=0); cpu_load_boot_state() then fills in the loader's values. */
enum bt_status vcpu_init(struct vcpu *v, struct vcpu_abi *abi, struct mmu *mmu,
			 const struct cpu_platform *plat, const struct cpu_config *cfg);
void vcpu_fini(struct vcpu *v);
/* Import the boot loader's initial state (runtime/boot/boot.h). */
enum bt_status cpu_load_boot_state(struct vcpu *v, const struct boot_state *bs);

/* Architectural RFLAGS (virtual IF and AC merged in) and its setter, which
 * also keeps the IRQ word's IF byte and abi->ac in step. */
uint64_t cpu_rflags(const struct vcpu *v);
void cpu_set_rflags(struct vcpu *v, uint64_t rflags);
bool cpu_if(const struct vcpu *v);

/* Control registers: the checks of mov-to-CRn.  false = #GP(0) raised into
 * v->exc, nothing changed.  Paging-relevant changes reach the soft-MMU. */
bool cpu_write_cr(struct vcpu *v, unsigned n, uint64_t val);
uint64_t cpu_read_cr(const struct vcpu *v, unsigned n);
/* Tell the soft-MMU about CR0/CR3/CR4/EFER/CPL/AC. */
void cpu_sync_mmu(struct vcpu *v);

/* MSRs (cpu_msr.c): false = #GP(0) recorded in v->exc. */
bool cpu_rdmsr(struct vcpu *v, uint32_t index, uint64_t *val);
bool cpu_wrmsr(struct vcpu *v, uint32_t index, uint64_t val);
uint64_t cpu_guest_tsc(const struct vcpu *v);

/* CPUID (cpu_cpuid.c). */
void cpu_cpuid(const struct vcpu *v, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
void cpu_cpuid_init(struct cpu_cpuid_profile *p, const struct cpu_config *cfg);

/* Segments (cpu_seg.c).  Load a data/stack segment register the way mov sreg
 * does (descriptor from the guest GDT/LDT, all checks); false = exception in
 * v->exc. */
bool cpu_load_sreg(struct vcpu *v, enum cpu_sreg r, uint16_t sel);
/* Flat 64-bit state helpers used by boot and sysret/syscall. */
void cpu_seg_set_flat(struct cpu_seg *s, uint16_t sel, bool code, unsigned dpl);

/* Deliver an event through the guest IDT.  BT_OK: delivered (the vCPU now
 * runs the handler); BT_ERR_GUEST: triple fault, v->stop set, registers
 * dumped through the log.  For #PF use cpu_deliver_pf, which sets CR2 first.
 * has_error is advisory: exceptions (fault/trap) push an error code exactly
 * when the architecture does (#DF #TS #NP #SS #GP #PF #AC #CP; 0 when the
 * caller has none), interrupts never. */
enum bt_status cpu_deliver(struct vcpu *v, uint8_t vector, enum cpu_event_kind kind, bool has_error,
			   uint32_t error_code);
enum bt_status cpu_deliver_pf(struct vcpu *v, gva_t addr, uint32_t error_code);
/* Deliver v->exc (if pending) as a fault; maps the result to an outcome. */
enum bt_status cpu_deliver_exc(struct vcpu *v, enum cpu_outcome *out);

/* Interrupt acceptance at a block boundary: deliver a PIC interrupt if IF=1
 * and no shadow; wake from hlt; keep the IRQ word's request byte. */
enum bt_status cpu_check_interrupts(struct vcpu *v, enum cpu_outcome *out);
/* Recompute the request byte of the IRQ word from the platform. */
void cpu_update_irq_request(struct vcpu *v);

/* Decode one instruction in the mode of the current code segment (64-bit,
 * or 32/16-bit compatibility mode). BT_ERR_FORMAT if undecodable. */
enum bt_status cpu_decode(struct vcpu *v, const uint8_t *bytes, size_t len, struct cpu_insn *insn);
/* Emulate one decoded instruction located at abi->rip. */
enum bt_status cpu_emulate(struct vcpu *v, const struct cpu_insn *insn, enum cpu_outcome *out);
/* Fetch (through the soft-MMU), decode and emulate the instruction at
 * abi->rip; a fetch fault is delivered as #PF. */
enum bt_status cpu_step_priv(struct vcpu *v, enum cpu_outcome *out);
/* The same with a caller's decode cache for this instruction: if *valid,
 * *insn is the instruction at abi->rip (its bytes cannot have changed, its
 * page is executable: a translated block that ends with it just ran), and
 * neither fetch nor decoder run; else they do and fill the cache. */
enum bt_status cpu_step_priv_cached(struct vcpu *v, struct cpu_insn *insn, bool *valid,
				    enum cpu_outcome *out);
/* The first half of cpu_step_priv_cached: fill the cache if !*valid.  It
 * is ready to emulate (cpu_step_priv_cached then neither fetches nor
 * decodes) when *valid and *out is CPU_OUT_CONTINUE; *out is CPU_OUT_STOP
 * when the VM is stopping, and *valid is false when a fetch fault or #UD
 * was delivered instead. */
enum bt_status cpu_priv_decode(struct vcpu *v, struct cpu_insn *insn, bool *valid,
			       enum cpu_outcome *out);
/* Does the decoded instruction read or write x87/SSE state (the
 * translator's fact table, pretrans/xlat/xlat_facts.h)?  Before emulating
 * one that does, the FPU state of guest user code must be current. */
bool cpu_insn_touches_fpu(const struct cpu_insn *insn);
/* Does the instruction at rip read the memory it writes (add/or/xchg... to
 * memory, as opposed to a plain mov or stos)?  BT_ERR_GUEST when its bytes
 * cannot be fetched or decoded. */
enum bt_status cpu_insn_reads_dest(struct vcpu *v, gva_t rip, bool *reads);

/* The single-step #DB trap after an instruction that completed outside
 * the emulation (translated code run one instruction at a time): DR6.BS
 * set, RIP as it stands. */
enum bt_status cpu_single_step(struct vcpu *v, enum cpu_outcome *out);
/* Alignment checking (CPL 3 with CR0.AM and RFLAGS.AC): when a data access
 * of the instruction at RIP lacks the alignment its size needs, deliver
 * #AC(0) as a fault and set *raised; else nothing happens. */
enum bt_status cpu_check_alignment(struct vcpu *v, bool *raised, enum cpu_outcome *out);

/* Guest user code executed `syscall` (the user-mode owner calls this).  The
 * same transition as a `syscall` reaching cpu_step_priv: #UD without
 * EFER.SCE or outside 64-bit mode (Intel), else CPL 0 at LSTAR with RFLAGS
 * masked by SFMASK; a single-step #DB follows if TF survives the mask. */
enum bt_status cpu_syscall_from_user(struct vcpu *v, gva_t next_rip, enum cpu_outcome *out);

/*
 * Fast system calls (runtime/tc/tc_entry.S, docs/runtime.md): the exit
 * trampoline switches between user and kernel code itself, in the vCPU
 * area only.  cpu_fx_armable says which of the two transitions it may do
 * from the current state (VCPU_FX_SYSCALL at CPL 3, VCPU_FX_SYSRET at CPL
 * 0): long mode with SCE, 64-bit code, no TF/IOPL/NT/ID/VIF/VIP, and copies
 * the MSRs into the vCPU area.  cpu_fx_sync makes the vCPU's own state
 * follow, after at least one transition: CPL, CS, SS (the flat segments
 * STAR gives the level the last transition reached, whatever they were
 * before) and the soft-MMU's CPL.
 */
unsigned cpu_fx_armable(struct vcpu *v);
void cpu_fx_sync(struct vcpu *v, unsigned cpl);

/* Current I/O privilege level (RFLAGS.IOPL). */
unsigned cpu_iopl(const struct vcpu *v);

void cpu_dump(const struct vcpu *v, FILE *f);

#endif
