/*
 * The vCPU ABI: the layout of the virtual-CPU area that translated code
 * reaches through the host GS segment base (set with arch_prctl(ARCH_SET_GS)
 * by the runtime).  Translated code never contains a host address: every
 * piece of runtime state it needs (saved registers, virtual flags, the
 * interrupt word, the call-out table, the software TLB, the indirect-branch
 * lookup table) is a %gs:offset below.  A block read from the database is
 * therefore copied into the code cache as is; only chain exits get patched.
 *
 * Invariants
 *  1. Every offset that translated code or assembly uses is a VCPU_OFF_*
 *     constant checked against offsetof() by a static assert here.
 *  2. Changing any of them bumps VCPU_ABI_VERSION, which is stored in every
 *     translation database; a database of another ABI version is refused.
 *  3. The structure is plain data (no pointers into guest memory); host
 *     pointers in it (call-outs, TLB addends, IBL host targets) are written
 *     only by the runtime.
 *
 * STATUS: draft owned by the translator core (pretrans/xlat).  The runtime
 * consumes it.  Extend it, keep the asserts, bump the version.
 */
#ifndef BT_XLAT_VCPU_ABI_H
#define BT_XLAT_VCPU_ABI_H

#include <stddef.h>
#include <stdint.h>

#define VCPU_ABI_VERSION 1

/* Guest GPR numbering = x86 encoding order. */
enum vcpu_gpr {
	VCPU_RAX, VCPU_RCX, VCPU_RDX, VCPU_RBX, VCPU_RSP, VCPU_RBP, VCPU_RSI, VCPU_RDI,
	VCPU_R8, VCPU_R9, VCPU_R10, VCPU_R11, VCPU_R12, VCPU_R13, VCPU_R14, VCPU_R15,
	VCPU_NGPR
};

/* Software TLB for kernel-mode data accesses (direct mapped). */
#define VCPU_TLB_BITS    10
#define VCPU_TLB_ENTRIES (1u << VCPU_TLB_BITS)

struct vcpu_tlb_entry {
	uint64_t tag_read;  /* page-aligned gva readable through this entry, or ~0 */
	uint64_t tag_write; /* page-aligned gva writable through this entry, or ~0 */
	int64_t addend;     /* host pointer = gva + addend */
	uint64_t gpa_page;  /* guest-physical page (runtime bookkeeping) */
};
_Static_assert(sizeof(struct vcpu_tlb_entry) == 32, "TLB entry is 32 bytes");

/* Indirect-branch lookup table: guest RIP -> host code address. */
#define VCPU_IBL_BITS    12
#define VCPU_IBL_ENTRIES (1u << VCPU_IBL_BITS)

struct vcpu_ibl_entry {
	uint64_t guest_rip; /* ~0 when empty */
	uint64_t host;      /* absolute host address of the block's entry */
};
_Static_assert(sizeof(struct vcpu_ibl_entry) == 16, "IBL entry is 16 bytes");

/* Call-outs: host entry points translated code calls through the table. */
enum vcpu_callout {
	VCPU_CO_EXIT = 0,   /* leave translated code: return to the dispatcher */
	VCPU_CO_MEM_LOAD,   /* soft-MMU slow path, see pretrans/xlat docs */
	VCPU_CO_MEM_STORE,
	VCPU_CO_IBL_MISS,   /* indirect target not in the IBL table */
	VCPU_NCALLOUTS = 16
};

/*
 * The interrupt word.  Byte 0 is the virtual IF (0 or 1: cli/sti are byte
 * stores), byte 1 is the runtime's request: 1 = an interrupt is deliverable
 * when IF=1, 2 = exit now regardless of IF (timer housekeeping, stop).
 * Block entry does `cmp word %gs:VCPU_OFF_IRQ, 0x0101; jae exit`.
 */
#define VCPU_IRQ_IF     0x0001
#define VCPU_IRQ_REQ    0x0100
#define VCPU_IRQ_FORCE  0x0200

struct vcpu_abi {
	uint64_t gpr[VCPU_NGPR];   /* guest GPRs while outside translated code */
	uint64_t rip;              /* guest RIP of the next instruction to run */
	uint64_t rflags;           /* guest RFLAGS (arithmetic bits + virtual IF/AC) */
	uint64_t spill[VCPU_NGPR]; /* scratch spill slot per register number */
	uint64_t spill_flags;      /* spilled host RFLAGS */
	uint64_t host_rsp;         /* host stack for call-outs */
	uint64_t guest_rsp_save;   /* guest RSP while on the host stack */
	uint64_t exit_info;        /* exit record of the last exit (block/exit id) */
	uint64_t exit_target;      /* guest target of the last exit */
	uint16_t irq;              /* interrupt word, see VCPU_IRQ_* */
	uint8_t ac;                /* virtual EFLAGS.AC (stac/clac) */
	uint8_t pad0[5];
	uint64_t fs_base;          /* virtual segment bases for %fs:/%gs: operands */
	uint64_t gs_base;
	uint64_t kernel_gs_base;   /* swapped with gs_base by swapgs */
	uint64_t callout[VCPU_NCALLOUTS];
	uint64_t reserved[32];
	struct vcpu_tlb_entry tlb[VCPU_TLB_ENTRIES];
	struct vcpu_ibl_entry ibl[VCPU_IBL_ENTRIES];
};

#define VCPU_OFF_GPR         0x000
#define VCPU_OFF_RIP         0x080
#define VCPU_OFF_RFLAGS      0x088
#define VCPU_OFF_SPILL       0x090
#define VCPU_OFF_SPILL_FLAGS 0x110
#define VCPU_OFF_HOST_RSP    0x118
#define VCPU_OFF_GUEST_RSP   0x120
#define VCPU_OFF_EXIT_INFO   0x128
#define VCPU_OFF_EXIT_TARGET 0x130
#define VCPU_OFF_IRQ         0x138
#define VCPU_OFF_AC          0x13a
#define VCPU_OFF_FS_BASE     0x140
#define VCPU_OFF_GS_BASE     0x148
#define VCPU_OFF_KGS_BASE    0x150
#define VCPU_OFF_CALLOUT     0x158
#define VCPU_OFF_TLB         0x2d8
#define VCPU_OFF_IBL         (VCPU_OFF_TLB + 32 * VCPU_TLB_ENTRIES)

_Static_assert(offsetof(struct vcpu_abi, gpr) == VCPU_OFF_GPR, "gpr");
_Static_assert(offsetof(struct vcpu_abi, rip) == VCPU_OFF_RIP, "rip");
_Static_assert(offsetof(struct vcpu_abi, rflags) == VCPU_OFF_RFLAGS, "rflags");
_Static_assert(offsetof(struct vcpu_abi, spill) == VCPU_OFF_SPILL, "spill");
_Static_assert(offsetof(struct vcpu_abi, spill_flags) == VCPU_OFF_SPILL_FLAGS, "spill_flags");
_Static_assert(offsetof(struct vcpu_abi, host_rsp) == VCPU_OFF_HOST_RSP, "host_rsp");
_Static_assert(offsetof(struct vcpu_abi, guest_rsp_save) == VCPU_OFF_GUEST_RSP, "guest_rsp");
_Static_assert(offsetof(struct vcpu_abi, exit_info) == VCPU_OFF_EXIT_INFO, "exit_info");
_Static_assert(offsetof(struct vcpu_abi, exit_target) == VCPU_OFF_EXIT_TARGET, "exit_target");
_Static_assert(offsetof(struct vcpu_abi, irq) == VCPU_OFF_IRQ, "irq");
_Static_assert(offsetof(struct vcpu_abi, ac) == VCPU_OFF_AC, "ac");
_Static_assert(offsetof(struct vcpu_abi, fs_base) == VCPU_OFF_FS_BASE, "fs_base");
_Static_assert(offsetof(struct vcpu_abi, gs_base) == VCPU_OFF_GS_BASE, "gs_base");
_Static_assert(offsetof(struct vcpu_abi, kernel_gs_base) == VCPU_OFF_KGS_BASE, "kgs_base");
_Static_assert(offsetof(struct vcpu_abi, callout) == VCPU_OFF_CALLOUT, "callout");
_Static_assert(offsetof(struct vcpu_abi, tlb) == VCPU_OFF_TLB, "tlb");
_Static_assert(offsetof(struct vcpu_abi, ibl) == VCPU_OFF_IBL, "ibl");

#endif
