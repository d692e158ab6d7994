/*
 * The soft-MMU: guest-virtual -> guest-physical translation for one vCPU,
 * with the x86-64 4-level page walk, the SDM permission rules (U/S, R/W with
 * CR0.WP, NX with EFER.NXE, SMEP, SMAP with EFLAGS.AC and implicit
 * supervisor accesses), reserved-bit checks, accessed/dirty bits written
 * atomically into guest page tables, and precise #PF error codes.  It fills
 * the software TLB in struct vcpu_abi (tlb[]) that translated kernel code
 * uses for its inline fast path.
 *
 * PCIDs (CR4.PCIDE): the TLB holds the entries of the current PCID and the
 * global ones; a CR3 load that changes the PCID puts the old PCID's
 * non-global entries aside (up to MMU_PCID_SLOTS PCIDs, least recently
 * used recycled) and, with bit 63 set, brings the new PCID's back
 * (mmu_pcid.c).
 *
 * Not supported (documented in docs/mmu.md): 5-level paging (CR4.LA57),
 * legacy 32-bit / PAE paging outside long mode (BT_ERR_UNSUPPORTED),
 * protection keys, INVPCID.
 *
 * A guest fault is a RESULT (struct mmu_fault.pending), never an error
 * status: functions return BT_OK and set fault->pending.  Statuses other
 * than BT_OK mean a broken caller or runtime (bad argument, MMIO handler
 * failure, unsupported paging mode).
 *
 * Software TLB contract (struct vcpu_tlb_entry, index = (gva >> 12) &
 * (VCPU_TLB_ENTRIES - 1)):
 *  - entries describe CPL0 explicit data accesses only; host = gva + addend;
 *  - tag_read == page-aligned gva when reads are allowed, else ~0;
 *  - tag_write == page-aligned gva only when a supervisor write is allowed,
 *    the leaf's D bit is already set, and the page is RAM without
 *    GUESTMEM_PAGE_WATCHED (translated code or a watched page table);
 *    else ~0 (so such writes take the slow path);
 *  - never filled for MMIO, for exec, at CPL3, or for user pages while
 *    CR4.SMAP=1 (stac/clac may flip AC inline without telling the MMU);
 *  - evicted entries go to a second level (mmu_tlb.c), as do whole large
 *    pages and, under SMAP, supervisor entries for user pages (served only
 *    while AC = 1); mmu_tlb_fast serves from it, coherent with the rules
 *    below;
 *  - invalidated by mmu_invlpg (the whole large page), mmu_flush_nonglobal
 *    (CR3 writes), mmu_flush_all (mode changes), and by setting
 *    a GUESTMEM_PAGE_WATCHED flag on the page (write permission only, in
 *    the entries put aside for other PCIDs too).
 */
#ifndef BT_RUNTIME_MMU_MMU_H
#define BT_RUNTIME_MMU_MMU_H

#include <stdio.h>

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/vcpu_abi.h"
#include "runtime/mem/guestmem.h"

/* Access kinds (exactly one) and modifiers, OR-ed into `access`. */
enum mmu_access {
	MMU_ACC_READ = 0,
	MMU_ACC_WRITE = 1u << 0,
	MMU_ACC_EXEC = 1u << 1,
	MMU_ACC_KIND_MASK = MMU_ACC_WRITE | MMU_ACC_EXEC,
	/* user-mode access regardless of the current CPL */
	MMU_ACC_USER = 1u << 2,
	/* implicit supervisor access (SDM 4.6: GDT/LDT/IDT/TSS accesses):
	 * supervisor at any CPL, and SMAP denies user pages whatever AC is.
	 * Stack pushes of event delivery are ordinary accesses at the new CPL. */
	MMU_ACC_IMPLICIT = 1u << 3,
	/* probe only: no A/D updates, no statistics, no TLB use */
	MMU_ACC_PROBE = 1u << 4,
};

/* #PF error code bits (SDM vol. 3, 4.7). */
#define MMU_PF_P    (1u << 0) /* 0: not present, 1: protection/reserved */
#define MMU_PF_W    (1u << 1) /* write access */
#define MMU_PF_U    (1u << 2) /* user-mode access */
#define MMU_PF_RSVD (1u << 3) /* reserved bit set in a paging-structure entry */
#define MMU_PF_I    (1u << 4) /* instruction fetch (set only if NXE or SMEP) */

#define MMU_VEC_GP 13 /* non-canonical address in 64-bit mode: #GP(0) */
#define MMU_VEC_PF 14

/* A guest fault produced by an access.  addr is the faulting linear address
 * (CR2 for #PF).  vector is MMU_VEC_PF, or MMU_VEC_GP (error code 0) for a
 * non-canonical address (the caller turns it into #SS for stack accesses). */
struct mmu_fault {
	bool pending;
	uint8_t vector;
	gva_t addr;
	uint32_t error_code;
};

/* Control-register bits the MMU looks at. */
#define MMU_CR0_PE    (1ull << 0)
#define MMU_CR0_WP    (1ull << 16)
#define MMU_CR0_PG    (1ull << 31)
#define MMU_CR4_PSE   (1ull << 4)
#define MMU_CR4_PAE   (1ull << 5)
#define MMU_CR4_PGE   (1ull << 7)
#define MMU_CR4_LA57  (1ull << 12)
#define MMU_CR4_PCIDE (1ull << 17)
#define MMU_CR3_PCID  0xfffull /* CR3[11:0] with CR4.PCIDE */
#define MMU_CR4_SMEP  (1ull << 20)
#define MMU_CR4_SMAP  (1ull << 21)
#define MMU_EFER_LME  (1ull << 8)
#define MMU_EFER_LMA  (1ull << 10)
#define MMU_EFER_NXE  (1ull << 11)

/* Page-table entry bits. */
#define MMU_PTE_P   (1ull << 0)
#define MMU_PTE_RW  (1ull << 1)
#define MMU_PTE_US  (1ull << 2)
#define MMU_PTE_PWT (1ull << 3)
#define MMU_PTE_PCD (1ull << 4)
#define MMU_PTE_A   (1ull << 5)
#define MMU_PTE_D   (1ull << 6)
#define MMU_PTE_PS  (1ull << 7)
#define MMU_PTE_G   (1ull << 8)
#define MMU_PTE_NX  (1ull << 63)

/* Bits 51:12: the physical address in a paging-structure entry (of the next
 * table or of a 4 KiB page) and in CR3; the architectural maximum, bits at
 * or above MAXPHYADDR are reserved (mmu->rsvd_addr_mask). */
#define MMU_PTE_ADDR_MASK 0x000ffffffffff000ull

#define MMU_DEFAULT_PHYS_BITS 46 /* MAXPHYADDR; match CPUID 0x80000008 EAX[7:0] */

/*
 * MMIO: bytes of an access whose guest-physical address is not RAM go
 * through this handler (one call per page-contiguous piece).  Without a
 * handler, MMIO reads return all-ones and writes are dropped.
 */
typedef enum bt_status (*mmu_mmio_fn)(void *opaque, gpa_t gpa, void *buf, size_t len,
				      bool is_write);

/*
 * Flush hook: told after every TLB flush the guest causes, so that the code
 * cache can drop translations whose code mapping may have changed.
 * NONGLOBAL comes from CR3 loads (mmu->cr3 is already the new root).
 */
enum mmu_flush_kind { MMU_FLUSH_INVLPG, MMU_FLUSH_NONGLOBAL, MMU_FLUSH_ALL, MMU_FLUSH_PCID };
/* MMU_FLUSH_PCID: a CR3 load changed the PCID (CR4.PCIDE).  The old PCID's
 * non-global entries were put aside; the new PCID's came back if gva has
 * MMU_PCID_KEPT (CR3 bit 63 and entries of it were kept), else the new PCID
 * starts empty (its entries were flushed, as for NONGLOBAL).  A hook keeping
 * per-address-space state of its own does the same with it. */
#define MMU_PCID_OLD(g) ((unsigned)((g)&0xfffu))
#define MMU_PCID_NEW(g) ((unsigned)(((g) >> 12) & 0xfffu))
#define MMU_PCID_KEPT	(1ull << 63)
#define MMU_PCID_SLOTS	8 /* PCIDs whose entries are kept aside (Linux uses 6) */
typedef void (*mmu_flush_fn)(void *opaque, enum mmu_flush_kind kind, gva_t gva);

struct mmu_stats {
	uint64_t walks;	     /* page walks (including TLB fills) */
	uint64_t tlb_hits;   /* slow-path accesses served by the software TLB */
	uint64_t tlb_misses; /* slow-path accesses that had to walk */
	uint64_t tlb_fills;  /* mmu_tlb_fill calls that installed an entry */
	uint64_t flush_all;  /* full flushes */
	uint64_t flush_nonglobal;
	uint64_t invlpg;
	uint64_t faults;	/* #PF/#GP results */
	uint64_t mmio;		/* MMIO pieces routed to the handler */
	uint64_t code_writes;	/* slow-path writes that hit a watched code page */
	uint64_t pcid_switches; /* CR3 loads that changed the PCID */
	uint64_t pcid_kept;	/* ... that brought the new PCID's entries back */
	uint64_t pcid_restored; /* TLB entries brought back */
	uint64_t l2_hits;	/* mmu_tlb_fast: served from the second level (no walk) */
	uint64_t l2_smap_hits;	/* ... from its SMAP array (user pages, AC = 1) */
	uint64_t l2_large_hits; /* ... refilled from a large-page entry (no walk) */
};

/* TLB entries of one PCID while another is current (mmu_pcid.c). */
struct mmu_saved_tlb {
	struct vcpu_tlb_entry e;
	uint16_t idx;
	uint8_t meta;
};
struct mmu_pcid_store {
	bool used;
	uint16_t pcid;
	uint64_t stamp; /* last use, for recycling */
	struct mmu_saved_tlb *e[2];
	uint32_t n[2], cap[2];
};

struct mmu_l2; /* the second-level TLB (mmu_int.h, mmu_tlb.c) */

/*
 * Per-vCPU soft-MMU state.  Caller storage (mmu_init/mmu_fini); fields are
 * private to runtime/mmu: use the functions below.
 */
struct mmu {
	struct guestmem *gm;
	struct vcpu_abi *abi; /* its tlb[] and utlb[] are ours; its ac byte is the virtual AC */
	uint64_t cr0, cr3, cr4, efer;
	unsigned cpl;
	unsigned phys_bits;
	uint64_t rsvd_addr_mask; /* address bits >= MAXPHYADDR (bits 51:phys_bits) */
	mmu_mmio_fn mmio_fn;
	void *mmio_opaque;
	mmu_flush_fn flush_fn;
	void *flush_opaque;
	struct mmu_stats stats;
	/* Two TLBs (MMU_TLB_KERNEL: abi->tlb, MMU_TLB_USER: abi->utlb) */
	unsigned n_large[2];		       /* entries that came from 2M/1G pages */
	unsigned n_huge[2];		       /* ... of them, from 1G pages */
	uint8_t tlb_meta[2][VCPU_TLB_ENTRIES]; /* MMU_TLBM_* per entry */
	/* bit i of valid[set]: entry i is valid; of local[set]: valid and not
	 * global.  A CR3 load, a code page and a flush visit these bits, not
	 * every entry (a Debian boot loads CR3 17,000 times). */
	uint64_t tlb_valid[2][VCPU_TLB_ENTRIES / 64];
	uint64_t tlb_local[2][VCPU_TLB_ENTRIES / 64];
	/* the non-global entries of other PCIDs (mmu_pcid.c) */
	struct mmu_pcid_store pcid[MMU_PCID_SLOTS];
	uint64_t pcid_clock;
	struct mmu_l2 *l2; /* heap, mmu_init/mmu_fini */
};

/* Bind to guest memory and a vCPU ABI area; flushes its TLB.  Paging off
 * (cr0 = 0), CPL 0, AC 0. */
enum bt_status mmu_init(struct mmu *mmu, struct guestmem *gm, struct vcpu_abi *abi);
void mmu_fini(struct mmu *mmu);

void mmu_set_mmio_handler(struct mmu *mmu, mmu_mmio_fn fn, void *opaque);
void mmu_set_flush_hook(struct mmu *mmu, mmu_flush_fn fn, void *opaque);
/* MAXPHYADDR (32..52); flushes the TLB. */
enum bt_status mmu_set_phys_bits(struct mmu *mmu, unsigned bits);

/*
 * Paging state from the vCPU.  Flushes as hardware would (and a bit more:
 * this TLB caches permission decisions): a change of CR0.PG/WP/PE, of
 * CR4.PGE/PCIDE/PAE/PSE/SMEP/SMAP/LA57 or of EFER.NXE/LMA flushes all; a
 * CR3 change flushes non-global entries.  BT_ERR_UNSUPPORTED for CR4.LA57.
 */
enum bt_status mmu_set_mode(struct mmu *mmu, uint64_t cr0, uint64_t cr3, uint64_t cr4,
			    uint64_t efer);
/* A MOV to CR3.  Without CR4.PCIDE: flushes non-global entries (even for
 * the same value).  With it: the same PCID flushes its entries unless bit
 * 63 is set and CR3 is unchanged; another PCID puts the current one's
 * entries aside and starts the new one with its kept entries (bit 63) or
 * none.  Bit 63 is not stored. */
void mmu_write_cr3(struct mmu *mmu, uint64_t cr3);
/* CPL (0..3) and EFLAGS.AC; AC is stored in abi->ac (the one virtual AC). */
void mmu_set_cpl_ac(struct mmu *mmu, unsigned cpl, bool ac);

/*
 * Translate one linear address.  On success *gpa is set and *mmio tells
 * whether it is outside RAM (route to the bus); on a guest fault
 * fault->pending is set and *gpa is untouched.  Sets A/D bits unless
 * MMU_ACC_PROBE.  mmio may be NULL.
 */
enum bt_status mmu_translate(struct mmu *mmu, gva_t gva, unsigned access, gpa_t *gpa, bool *mmio,
			     struct mmu_fault *fault);

/* What the walk of a granted access found (mmu_translate_info). */
struct mmu_walk_info {
	gpa_t gpa;	     /* translated address */
	bool mmio;	     /* gpa is outside RAM */
	unsigned page_shift; /* 12, 21 or 30 (12 with paging off) */
	bool user;	     /* U/S = 1 at every level */
	bool writable;	     /* R/W = 1 at every level (CR0.WP not applied) */
	bool nx;	     /* XD = 1 at some level, with EFER.NXE */
	bool dirty;	     /* the leaf's D bit (set by this access if a write) */
	bool accessed;	     /* A = 1 at every level (set by this access unless probing) */
	/* [level - 1]: guest-physical address of the table read at that
	 * level ([3]: the PML4 from CR3); ~0 below the leaf and with paging
	 * off */
	gpa_t tables[4];
};

/*
 * mmu_translate with the details of the walk: the same single walk, the
 * same checks, A/D updates (none with MMU_ACC_PROBE), statistics and
 * faults; on success *info describes the leaf mapping, on a guest fault
 * fault->pending is set and *info is untouched.
 */
enum bt_status mmu_translate_info(struct mmu *mmu, gva_t gva, unsigned access,
				  struct mmu_walk_info *info, struct mmu_fault *fault);

/*
 * Read/write len bytes at gva, crossing pages as needed.  All pages are
 * translated and checked before any byte moves: on a fault nothing is
 * written, and the fault address is the first byte of the access on the
 * faulting page (a fault on the second page reports that page's start).
 * Writes to watched code pages call the guestmem code-write hook first.
 * `access` carries the modifiers (USER/IMPLICIT); the kind is implied.
 */
enum bt_status mmu_read(struct mmu *mmu, gva_t gva, void *buf, size_t len, unsigned access,
			struct mmu_fault *fault);
enum bt_status mmu_write(struct mmu *mmu, gva_t gva, const void *buf, size_t len, unsigned access,
			 struct mmu_fault *fault);

/*
 * Instruction fetch (exec access, RAM only).  Copies up to len bytes and
 * stops at the first page that faults (or is not RAM): *got bytes were
 * fetched, and if *got < len, fault describes why the next byte could not
 * be (pending #PF; for MMIO code: pending=false and *got short).  A caller
 * decoding an instruction raises the fault only if it needed those bytes.
 */
enum bt_status mmu_fetch(struct mmu *mmu, gva_t gva, void *buf, size_t len, size_t *got,
			 struct mmu_fault *fault);

/*
 * Fill the software TLB entry for a CPL0 data access of kind `access`
 * (MMU_ACC_READ or MMU_ACC_WRITE) at gva: walks (setting A, and D for a
 * write), checks permissions, and installs the entry per the contract
 * above.  *filled (may be NULL) says whether an entry was installed; a
 * guest fault leaves the TLB unchanged and sets fault->pending.
 */
enum bt_status mmu_tlb_fill(struct mmu *mmu, gva_t gva, unsigned access, bool *filled,
			    struct mmu_fault *fault);

/* Why mmu_host_access() gave no host pointer. */
enum mmu_host_kind {
	MMU_HOST_RAM = 0, /* *host points at the bytes */
	MMU_HOST_MMIO,	  /* some byte is not RAM: use mmu_read/mmu_write (bus) */
	MMU_HOST_SPLIT,	  /* crosses into a non-adjacent page: mmu_read/mmu_write */
};

/*
 * The slow path behind translated code's inline TLB check (the
 * VCPU_CO_MEM call-out): translate the data access
 * [gva, gva+size) (1 <= size <= 4096, kind READ or WRITE, modifiers
 * allowed) under the current mode, all pages checked before A/D are set,
 * and return a host pointer to its bytes when they are contiguous RAM
 * (always within a page; across two pages when their guest-physical pages
 * are adjacent).  For a write to a watched code page the code-write hook
 * runs before this returns.  For CPL0 explicit accesses the TLB entry of
 * each page is refilled (mmu_tlb_fill rules).  Otherwise *host = NULL and
 * *kind says why; a fault sets fault->pending (address as mmu_write).
 */
enum bt_status mmu_host_access(struct mmu *mmu, gva_t gva, size_t size, unsigned access,
			       uint8_t **host, enum mmu_host_kind *kind, struct mmu_fault *fault);

/*
 * The memory call-out's fast path (runtime/vm/vm_fast.c), with the guest's
 * FPU state still in the registers (mmu_tlb.c is built with
 * -mgeneral-regs-only): the host address of a one-page explicit data
 * access [va, va+size) that the first-level TLB or the second level can
 * serve under the current CPL and AC, or NULL (the caller takes the full
 * path, mmu_host_access).  A second-level hit of the kernel or user array
 * refills the first-level entry; a hit of the SMAP array does not.
 * Whatever it serves, mmu_host_access would have served with the same
 * host address and no side effect on guest memory.
 */
uint8_t *mmu_tlb_fast(struct mmu *mmu, gva_t va, uint32_t size, bool write);
/* The same at CPL cpl instead of the MMU's (the one mmu_set_cpl_ac is
 * about to be given: a caller that has not caught up with fast system
 * calls yet, runtime/vm/vm_fast.c). */
uint8_t *mmu_tlb_fast_at(struct mmu *mmu, unsigned cpl, gva_t va, uint32_t size, bool write);

/* INVLPG: drop the entries of the page holding gva (a whole 2M/1G page if
 * it came from one; global entries too). */
void mmu_invlpg(struct mmu *mmu, gva_t gva);
void mmu_flush_all(struct mmu *mmu);
void mmu_flush_nonglobal(struct mmu *mmu);

void mmu_get_stats(const struct mmu *mmu, struct mmu_stats *out);
void mmu_print_stats(const struct mmu *mmu, FILE *f);

#endif
