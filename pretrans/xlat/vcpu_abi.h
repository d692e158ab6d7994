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
 * Owned by the translator core (pretrans/xlat); the runtime consumes it.
 * Protocols (exit, call-out, soft-MMU, IBL) are documented in docs/xlat.md.
 */
#ifndef BT_XLAT_VCPU_ABI_H
#define BT_XLAT_VCPU_ABI_H

#define VCPU_ABI_VERSION 11

/* Assembly (runtime/tc/tc_entry.S) includes this header for the VCPU_OFF_*
 * constants only; the C declarations are hidden from it. */
#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

/* Guest GPR numbering = x86 encoding order. */
enum vcpu_gpr {
	VCPU_RAX,
	VCPU_RCX,
	VCPU_RDX,
	VCPU_RBX,
	VCPU_RSP,
	VCPU_RBP,
	VCPU_RSI,
	VCPU_RDI,
	VCPU_R8,
	VCPU_R9,
	VCPU_R10,
	VCPU_R11,
	VCPU_R12,
	VCPU_R13,
	VCPU_R14,
	VCPU_R15,
	VCPU_NGPR
};

#endif /* !__ASSEMBLER__ */

#ifdef __ASSEMBLER__
#define VCPU_U(x) x
#else
#define VCPU_U(x) x##u
#endif

/* Software TLBs for data accesses (direct mapped): tlb[] for CPL 0, utlb[]
 * for CPL 3 (user-mode translations probe only utlb[]). */
/* 4 Ki entries (VCPU ABI 5; 1 Ki before): a warm Debian boot walked the
 * guest's page tables 210,000 times with 1 Ki, 106,000 with 4 Ki.  The
 * soft-MMU keeps bitmaps of valid and non-global entries, so a CR3 load
 * costs what is cached, not the table's size. */
#define VCPU_TLB_BITS	 12
#define VCPU_TLB_ENTRIES (VCPU_U(1) << VCPU_TLB_BITS)
/* Indirect-branch lookup table sizes (entries of 16 bytes): the kernel's
 * ibl[] has 64 Ki entries (with 4 Ki, a Debian boot left translated code
 * 154,000 times through returns whose targets collided; with 64 Ki,
 * 47,000 -- mostly first uses); the user uibl[] 64 Ki too: it used to be
 * 4 Ki because every CR3 load emptied all of it, but now its entries are
 * tagged with the address space (uibl_tag below) and none is emptied,
 * and with 4 Ki a Linux pipeline of busybox programs left translated code
 * 1.46 million times through indirect branches in one benchmark phase,
 * with 64 Ki 5,000.  Its size and uibl_tag (after every offset a kernel
 * block uses) are in user blocks only, which no database stores, so they
 * are not part of VCPU_ABI_VERSION. */
#define VCPU_IBL_BITS	  16
#define VCPU_IBL_ENTRIES  (VCPU_U(1) << VCPU_IBL_BITS)
#define VCPU_UIBL_BITS	  16
#define VCPU_UIBL_ENTRIES (VCPU_U(1) << VCPU_UIBL_BITS)

#ifndef __ASSEMBLER__

struct vcpu_tlb_entry {
	uint64_t tag_read;  /* page-aligned gva readable through this entry, or ~0 */
	uint64_t tag_write; /* page-aligned gva writable through this entry, or ~0 */
	int64_t addend;	    /* host pointer = gva + addend */
	uint64_t gpa_page;  /* guest-physical page (runtime bookkeeping) */
};
_Static_assert(sizeof(struct vcpu_tlb_entry) == 32, "TLB entry is 32 bytes");

/* Indirect-branch lookup tables: guest RIP -> host code address.
 * Entry index = guest_rip & (VCPU_IBL_ENTRIES - 1) (VCPU_IBL_INDEX) in
 * ibl[], guest_rip & (VCPU_UIBL_ENTRIES - 1) (VCPU_UIBL_INDEX) in uibl[]. */
#define VCPU_IBL_INDEX(rip)  ((rip) & (VCPU_IBL_ENTRIES - 1))
#define VCPU_UIBL_INDEX(rip) ((rip) & (VCPU_UIBL_ENTRIES - 1))
/* TLB index of a guest virtual address (VCPU_TLB_INDEX). */
#define VCPU_TLB_INDEX(va) (((va) >> 12) & (VCPU_TLB_ENTRIES - 1))

/* The guest_rip of an empty entry i: a value whose own index is not i, so
 * no guest RIP probing entry i can match it (~0 could: a guest jump to
 * 0xffffffffffffffff hit the empty last entry and ran its host 0). */
#define VCPU_IBL_EMPTY(i) (~(uint64_t)(i))

struct vcpu_ibl_entry {
	uint64_t guest_rip; /* VCPU_IBL_EMPTY(index) when empty */
	uint64_t host;	    /* absolute host address of the block's entry */
};
_Static_assert(sizeof(struct vcpu_ibl_entry) == 16, "IBL entry is 16 bytes");

/* Call-outs: host entry points translated code calls through the table. */
#endif /* !__ASSEMBLER__ */
#define VCPU_CO_EXIT_IDX   0
#define VCPU_CO_MEM_IDX	   1
#define VCPU_CO_STRING_IDX 4
#ifndef __ASSEMBLER__
enum vcpu_callout {
	VCPU_CO_EXIT = 0,  /* leave translated code: return to the dispatcher */
	VCPU_CO_MEM,	   /* soft-MMU slow path, jumped to (VCPU_MEM_ADDR_SHIFT) */
	VCPU_CO_RESERVED2, /* the store slow path until VCPU ABI 8 */
	VCPU_CO_IBL_MISS,  /* reserved: IBL misses currently leave through VCPU_CO_EXIT */
	VCPU_CO_STRING,	   /* movs/stos/lods/cmps/scas (rep) emulation, info in mem_info */
	VCPU_NCALLOUTS = 16
};

/*
 * The interrupt word.  Byte 0 is the virtual IF (0 or 1: cli/sti are byte
 * stores), byte 1 is the runtime's request: 1 = an interrupt is deliverable
 * when IF=1, 2 = exit now regardless of IF (timer housekeeping, stop).
 * Block entry does `cmp word %gs:VCPU_OFF_IRQ, 0x0101; jae exit`.
 */
#define VCPU_IRQ_IF    0x0001
#define VCPU_IRQ_REQ   0x0100
#define VCPU_IRQ_FORCE 0x0200

/* exit_info: its low byte is kind (enum xlat_exit_kind, bits 0-3) | exit
 * index << 4 (bits 4-5), plus VCPU_EXIT_SYSCALL for a PRIV exit at a
 * `syscall` instruction (VCPU_EXIT_SYSRET: a 64-bit `sysretq`).  Exit stubs
 * store that byte only (one `mov byte`, VCPU ABI 10; a dword with the index
 * in bits 8-15 and the flags in bits 16-17 until ABI 9): nothing reads the
 * other bytes.  The target of an IRQ exit is exit_block (its stub stores no
 * exit_target, VCPU ABI 8); a direct or PRIV exit's is exits[index].target
 * of the block exit_block names (its stub stores none since VCPU ABI 9,
 * except a PRIV exit with VCPU_EXIT_SYSCALL, for tc_entry.S's fast system
 * call); INDIRECT and RET exits' is exit_target, which the block's code
 * stored.  An IRQ exit stores no exit_info either (it has no stub, VCPU ABI
 * 11): tc_entry.S stores VCPU_EXIT_INFO_PRESET, kind IRQ and index 0,
 * whenever it enters translated code, and only an exit stub, which leaves,
 * changes it. */
#define VCPU_EXIT_INFO(kind, idx) ((uint8_t)((kind) | (idx) << 4))
#define VCPU_EXIT_KIND(info)	  ((unsigned)(info)&0x0f)
#define VCPU_EXIT_INDEX(info)	  (((unsigned)(info) >> 4) & 0x03)
#endif /* !__ASSEMBLER__ */
#define VCPU_EXIT_SYSCALL 0x40
#define VCPU_EXIT_SYSRET  0x80
/* ... and VCPU_EXIT_INFO(XLAT_EXIT_IRQ, 0) on entry into translated code */
#define VCPU_EXIT_INFO_PRESET 0x09
#ifndef __ASSEMBLER__

/* mem_info for VCPU_CO_MEM: access size in bytes | VCPU_MEM_WRITE | A <<
 * VCPU_MEM_ADDR_SHIFT | R << VCPU_MEM_RET_SHIFT.  Translated code jumps to
 * the call-out on the guest stack with the guest address in GPR A and the
 * host address to resume at in GPR R; the runtime saves the state, sets
 * exit_host_pc = R (the pc map is looked up at R - 1), puts the host
 * address of the bytes into A and resumes at R with every other GPR and
 * the flags as they were, or unwinds (a guest fault).  Until VCPU ABI 8 the
 * slow path switched stacks and `call`ed VCPU_CO_MEM_LOAD/STORE itself
 * with mem_va and got mem_host back (71 bytes per access, now 12).
 * A write access checks tag_write; the runtime sets tag_write only for
 * pages that are also readable.  Translated code stores the low 32 bits of
 * mem_info only (`mov dword`, XLAT_VERSION 15; both uses fit them): the
 * runtime reads those. */
#define VCPU_MEM_WRITE	    0x10000u
#define VCPU_MEM_ADDR_SHIFT 20
#define VCPU_MEM_RET_SHIFT  24

/* mem_info for VCPU_CO_STRING: bits 0-7 the Zydis mnemonic class
 * (VCPU_STR_*), bits 8-15 element size, bit 16 rep/repe, bit 17 repne,
 * bit 18 source segment is %fs, bit 19 %gs. */
enum vcpu_str_op { VCPU_STR_MOVS = 1, VCPU_STR_STOS, VCPU_STR_LODS, VCPU_STR_CMPS, VCPU_STR_SCAS };
#define VCPU_STR_REP   (1u << 16)
#define VCPU_STR_REPNE (1u << 17)
#define VCPU_STR_FS    (1u << 18)
#define VCPU_STR_GS    (1u << 19)

struct vcpu_abi {
	/* First, at %gs:0, so that kernel code's inline probes reach an entry's
	 * fields with an 8-bit displacement from the scaled index (VCPU ABI 8:
	 * 6 bytes less per probe than a 32-bit one). */
	struct vcpu_tlb_entry tlb[VCPU_TLB_ENTRIES];
	uint64_t gpr[VCPU_NGPR];   /* guest GPRs while outside translated code */
	uint64_t rip;		   /* guest RIP of the next instruction to run */
	uint64_t rflags;	   /* guest RFLAGS (arithmetic bits + virtual IF/AC) */
	uint64_t spill[VCPU_NGPR]; /* scratch spill slot per register number */
	uint64_t spill_flags;	   /* spilled host RFLAGS */
	uint64_t host_rsp;	   /* host stack for call-outs */
	uint64_t guest_rsp_save;   /* guest RSP while on the host stack */
	uint64_t exit_info;	   /* low byte: kind and index of the last exit */
	uint64_t exit_target;	   /* guest target: INDIRECT, RET, syscall exits */
	uint16_t irq;		   /* interrupt word, see VCPU_IRQ_* */
	uint8_t ac;		   /* virtual EFLAGS.AC (stac/clac) */
	uint8_t pad0[5];
	uint64_t fs_base; /* virtual segment bases for %fs:/%gs: operands */
	uint64_t gs_base;
	uint64_t kernel_gs_base; /* swapped with gs_base by swapgs */
	uint64_t callout[VCPU_NCALLOUTS];
	/* Call-out arguments and exit records (see docs/xlat.md). */
	uint64_t mem_va;       /* soft-MMU slow path: guest VA to translate */
	uint64_t mem_info;     /* low dword: VCPU_MEM_* (size, write) or string info */
	uint64_t mem_host;     /* slow path result: host address for mem_va */
	uint64_t exit_block;   /* guest start of the block that exited */
	uint64_t exit_host_pc; /* host return address of the last call-out */
	uint64_t enter_target; /* host code address tc_enter jumps to */
	uint64_t br_host;      /* IBL hit: host target of the indirect jump */
	uint64_t mem_tmp;      /* value carried between two accesses (push [mem]) */
	uint64_t host_ctx;     /* runtime-side handler table (struct tc_handlers *) */
	/* segment selectors ES CS SS DS FS GS (the SDM's sreg order), copied
	 * from the vCPU before every entry into translated code, which reads
	 * them for `mov reg, sreg` (XC_SEGREAD) and never writes them */
	uint16_t sel[8];
	/* guest TSC - host TSC (IA32_TSC writes), copied like sel[]: kernel
	 * code's rdtsc runs inline as host rdtsc + tsc_offset (XC_RDTSC) */
	int64_t tsc_offset;
	/*
	 * Fast system calls (runtime/tc/tc_entry.S tc_exit_asm, docs/
	 * runtime.md "Fast system calls"): the runtime's, never read by
	 * translated code.  fx_arm says which of the two transitions the exit
	 * trampoline may do itself, without leaving to C: VCPU_FX_SYSCALL (a
	 * `syscall` exit of user code straight to the kernel block at LSTAR)
	 * and VCPU_FX_SYSRET (a `sysretq` exit of kernel code straight to the
	 * user block at RCX, at most fx_budget times).  fx_cpl is the CPL they
	 * left; the counts and TSC stamps tell the runtime what happened when
	 * it next runs (vm_stay.c vm_fx_sync).  fx_star, fx_lstar, fx_sfmask copy
	 * the MSRs, set with fx_arm.
	 */
	uint8_t fx_arm;
	uint8_t fx_cpl;
	uint8_t fx_pad[2];
	uint32_t fx_budget;
	uint32_t fx_n_sys, fx_n_ret;
	uint64_t fx_t_first_sys, fx_t_first_ret; /* TSC of the first of each since the sync */
	uint64_t fx_t_sys, fx_t_ret;		 /* ... and of the last */
	uint64_t fx_user; /* TSC ticks of user code in stays entered and left fast */
	uint64_t fx_star, fx_lstar, fx_sfmask;
	/* host addresses of spill_flags + 8 and of spill_flags, set by the
	 * runtime: a flags save points RSP at the first and runs pushfq, a
	 * restore at the second and runs popfq (VCPU ABI 8) */
	uint64_t flags_sp_save;
	uint64_t flags_sp_load;
	/* inline soft-MMU probes run, counted by code translated with
	 * XLAT_OPT_COUNT_PROBES only (a measuring option: nothing else reads
	 * or writes it) */
	uint64_t probes;
	uint64_t reserved[7];
	struct vcpu_ibl_entry ibl[VCPU_IBL_ENTRIES];
	/* Guest x87/SSE state (fxsave64 image) while outside translated code and
	 * during call-outs: host C code may use the vector registers freely. */
	uint8_t fxsave[512] __attribute__((aligned(64)));
	/* Translated guest user code (CPL 3) has its own TLB and IBL table:
	 * an entry filled for a kernel access can never serve a user access,
	 * and a user indirect branch can never reach a kernel block.  utlb[]
	 * entries only name pages user code may access (U/S = 1 at every
	 * level).  A uibl[] entry's key is the guest RIP ORed with the tag of
	 * the address space (PCID) it was found in, uibl_tag: user code ORs
	 * the current uibl_tag into the target before comparing, so entries
	 * of other address spaces never match, and a CR3 load or a flush only
	 * changes uibl_tag (runtime/cache tcache_uibl_switch). */
	struct vcpu_tlb_entry utlb[VCPU_TLB_ENTRIES];
	struct vcpu_ibl_entry uibl[VCPU_UIBL_ENTRIES];
	uint64_t uibl_tag; /* tag << VCPU_UIBL_TAG_SHIFT, tag in 1..VCPU_UIBL_TAG_MAX */
};

#endif /* !__ASSEMBLER__ */

#define VCPU_OFF_TLB	     0x000
#define VCPU_OFF_TLB_END     0x20000 /* 32 * VCPU_TLB_ENTRIES */
#define VCPU_OFF_GPR	     (VCPU_OFF_TLB_END + 0x000)
#define VCPU_OFF_RIP	     (VCPU_OFF_TLB_END + 0x080)
#define VCPU_OFF_RFLAGS	     (VCPU_OFF_TLB_END + 0x088)
#define VCPU_OFF_SPILL	     (VCPU_OFF_TLB_END + 0x090)
#define VCPU_OFF_SPILL_FLAGS (VCPU_OFF_TLB_END + 0x110)
#define VCPU_OFF_HOST_RSP    (VCPU_OFF_TLB_END + 0x118)
#define VCPU_OFF_GUEST_RSP   (VCPU_OFF_TLB_END + 0x120)
#define VCPU_OFF_EXIT_INFO   (VCPU_OFF_TLB_END + 0x128)
#define VCPU_OFF_EXIT_TARGET (VCPU_OFF_TLB_END + 0x130)
#define VCPU_OFF_IRQ	     (VCPU_OFF_TLB_END + 0x138)
#define VCPU_OFF_AC	     (VCPU_OFF_TLB_END + 0x13a)
#define VCPU_OFF_FS_BASE     (VCPU_OFF_TLB_END + 0x140)
#define VCPU_OFF_GS_BASE     (VCPU_OFF_TLB_END + 0x148)
#define VCPU_OFF_KGS_BASE    (VCPU_OFF_TLB_END + 0x150)
#define VCPU_OFF_CALLOUT     (VCPU_OFF_TLB_END + 0x158)
#define VCPU_OFF_MEM_VA	     (VCPU_OFF_TLB_END + 0x1d8)
#define VCPU_OFF_MEM_INFO    (VCPU_OFF_TLB_END + 0x1e0)
#define VCPU_OFF_MEM_HOST    (VCPU_OFF_TLB_END + 0x1e8)
#define VCPU_OFF_EXIT_BLOCK  (VCPU_OFF_TLB_END + 0x1f0)
#define VCPU_OFF_EXIT_HOSTPC (VCPU_OFF_TLB_END + 0x1f8)
#define VCPU_OFF_ENTER_TGT   (VCPU_OFF_TLB_END + 0x200)
#define VCPU_OFF_BR_HOST     (VCPU_OFF_TLB_END + 0x208)
#define VCPU_OFF_MEM_TMP     (VCPU_OFF_TLB_END + 0x210)
#define VCPU_OFF_HOST_CTX    (VCPU_OFF_TLB_END + 0x218)
#define VCPU_OFF_SEL	     (VCPU_OFF_TLB_END + 0x220)
#define VCPU_OFF_TSC_OFFSET  (VCPU_OFF_TLB_END + 0x230)
#define VCPU_OFF_FX_ARM	     (VCPU_OFF_TLB_END + 0x238)
#define VCPU_OFF_FX_CPL	     (VCPU_OFF_TLB_END + 0x239)
#define VCPU_OFF_FX_BUDGET   (VCPU_OFF_TLB_END + 0x23c)
#define VCPU_OFF_FX_N_SYS    (VCPU_OFF_TLB_END + 0x240)
#define VCPU_OFF_FX_N_RET    (VCPU_OFF_TLB_END + 0x244)
#define VCPU_OFF_FX_T_FSYS   (VCPU_OFF_TLB_END + 0x248)
#define VCPU_OFF_FX_T_FRET   (VCPU_OFF_TLB_END + 0x250)
#define VCPU_OFF_FX_T_SYS    (VCPU_OFF_TLB_END + 0x258)
#define VCPU_OFF_FX_T_RET    (VCPU_OFF_TLB_END + 0x260)
#define VCPU_OFF_FX_USER     (VCPU_OFF_TLB_END + 0x268)
#define VCPU_OFF_FX_STAR     (VCPU_OFF_TLB_END + 0x270)
#define VCPU_OFF_FX_LSTAR    (VCPU_OFF_TLB_END + 0x278)
#define VCPU_OFF_FX_SFMASK   (VCPU_OFF_TLB_END + 0x280)
/* fx_arm bits */
#define VCPU_FX_SYSCALL	       1
#define VCPU_FX_SYSRET	       2
#define VCPU_OFF_FLAGS_SP_SAVE (VCPU_OFF_TLB_END + 0x288)
#define VCPU_OFF_FLAGS_SP_LOAD (VCPU_OFF_TLB_END + 0x290)
#define VCPU_OFF_PROBES	       (VCPU_OFF_TLB_END + 0x298)
#define VCPU_OFF_IBL	       (VCPU_OFF_TLB_END + 0x2d8)
#define VCPU_OFF_FXSAVE	       ((VCPU_OFF_IBL + 16 * VCPU_IBL_ENTRIES + 63) & ~63)
#define VCPU_OFF_UTLB	       (VCPU_OFF_FXSAVE + 512)
#define VCPU_OFF_UIBL	       (VCPU_OFF_UTLB + 32 * VCPU_TLB_ENTRIES)
#define VCPU_OFF_UIBL_TAG      (VCPU_OFF_UIBL + 16 * VCPU_UIBL_ENTRIES)
/* uibl keys: guest RIP (user: below 2^47) | tag << 48; an empty entry
 * (VCPU_IBL_EMPTY, bit 63 set) never matches a key */
#define VCPU_UIBL_TAG_SHIFT 48
#define VCPU_UIBL_TAG_MAX   0x7fff

#ifndef __ASSEMBLER__
_Static_assert(VCPU_CO_EXIT == VCPU_CO_EXIT_IDX, "co exit");
_Static_assert(VCPU_CO_MEM == VCPU_CO_MEM_IDX, "co mem");
_Static_assert(VCPU_CO_STRING == VCPU_CO_STRING_IDX, "co string");
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
_Static_assert(offsetof(struct vcpu_abi, mem_va) == VCPU_OFF_MEM_VA, "mem_va");
_Static_assert(offsetof(struct vcpu_abi, mem_info) == VCPU_OFF_MEM_INFO, "mem_info");
_Static_assert(offsetof(struct vcpu_abi, mem_host) == VCPU_OFF_MEM_HOST, "mem_host");
_Static_assert(offsetof(struct vcpu_abi, exit_block) == VCPU_OFF_EXIT_BLOCK, "exit_block");
_Static_assert(offsetof(struct vcpu_abi, exit_host_pc) == VCPU_OFF_EXIT_HOSTPC, "exit_host_pc");
_Static_assert(offsetof(struct vcpu_abi, enter_target) == VCPU_OFF_ENTER_TGT, "enter_target");
_Static_assert(offsetof(struct vcpu_abi, br_host) == VCPU_OFF_BR_HOST, "br_host");
_Static_assert(offsetof(struct vcpu_abi, mem_tmp) == VCPU_OFF_MEM_TMP, "mem_tmp");
_Static_assert(offsetof(struct vcpu_abi, host_ctx) == VCPU_OFF_HOST_CTX, "host_ctx");
_Static_assert(offsetof(struct vcpu_abi, sel) == VCPU_OFF_SEL, "sel");
_Static_assert(offsetof(struct vcpu_abi, tsc_offset) == VCPU_OFF_TSC_OFFSET, "tsc_offset");
_Static_assert(offsetof(struct vcpu_abi, fx_arm) == VCPU_OFF_FX_ARM, "fx_arm");
_Static_assert(offsetof(struct vcpu_abi, fx_cpl) == VCPU_OFF_FX_CPL, "fx_cpl");
_Static_assert(offsetof(struct vcpu_abi, fx_budget) == VCPU_OFF_FX_BUDGET, "fx_budget");
_Static_assert(offsetof(struct vcpu_abi, fx_n_sys) == VCPU_OFF_FX_N_SYS, "fx_n_sys");
_Static_assert(offsetof(struct vcpu_abi, fx_n_ret) == VCPU_OFF_FX_N_RET, "fx_n_ret");
_Static_assert(offsetof(struct vcpu_abi, fx_t_first_sys) == VCPU_OFF_FX_T_FSYS, "fx_t_first_sys");
_Static_assert(offsetof(struct vcpu_abi, fx_t_first_ret) == VCPU_OFF_FX_T_FRET, "fx_t_first_ret");
_Static_assert(offsetof(struct vcpu_abi, fx_t_sys) == VCPU_OFF_FX_T_SYS, "fx_t_sys");
_Static_assert(offsetof(struct vcpu_abi, fx_t_ret) == VCPU_OFF_FX_T_RET, "fx_t_ret");
_Static_assert(offsetof(struct vcpu_abi, fx_user) == VCPU_OFF_FX_USER, "fx_user");
_Static_assert(offsetof(struct vcpu_abi, fx_star) == VCPU_OFF_FX_STAR, "fx_star");
_Static_assert(offsetof(struct vcpu_abi, fx_lstar) == VCPU_OFF_FX_LSTAR, "fx_lstar");
_Static_assert(offsetof(struct vcpu_abi, fx_sfmask) == VCPU_OFF_FX_SFMASK, "fx_sfmask");
_Static_assert(offsetof(struct vcpu_abi, flags_sp_save) == VCPU_OFF_FLAGS_SP_SAVE, "flags_sp_save");
_Static_assert(offsetof(struct vcpu_abi, flags_sp_load) == VCPU_OFF_FLAGS_SP_LOAD, "flags_sp_load");
_Static_assert(offsetof(struct vcpu_abi, probes) == VCPU_OFF_PROBES, "probes");
_Static_assert(offsetof(struct vcpu_abi, tlb) == VCPU_OFF_TLB, "tlb");
_Static_assert(VCPU_OFF_TLB_END == 32 * VCPU_TLB_ENTRIES, "tlb end");
_Static_assert(offsetof(struct vcpu_abi, ibl) == VCPU_OFF_IBL, "ibl");
_Static_assert(offsetof(struct vcpu_abi, fxsave) == VCPU_OFF_FXSAVE, "fxsave");
_Static_assert(VCPU_OFF_FXSAVE % 64 == 0, "fxsave alignment");
_Static_assert(offsetof(struct vcpu_abi, utlb) == VCPU_OFF_UTLB, "utlb");
_Static_assert(offsetof(struct vcpu_abi, uibl) == VCPU_OFF_UIBL, "uibl");
_Static_assert(offsetof(struct vcpu_abi, uibl_tag) == VCPU_OFF_UIBL_TAG, "uibl_tag");
#endif /* !__ASSEMBLER__ */

#endif
