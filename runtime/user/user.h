/*
 * Guest user code, run directly: every guest address space (keyed by the
 * PML4 address in CR3) is a stub process (ustub_ctl.h) whose host mappings
 * are a software-managed TLB of the guest page tables.  The runtime calls
 * user_enter() when the vCPU is at CPL 3; it returns the next event the
 * guest kernel must see (syscall, exception, interrupt window), with the
 * guest's registers back in the vCPU area.  Lazy mappings are made inside,
 * without the guest kernel noticing.
 *
 * Coherence rules (docs/user-direct.md):
 *  1. A stub maps a page only after a guest page walk for a user access of
 *     the faulting kind granted it (setting A, and D for writes), with at
 *     most the walk's permissions: writable only if D is already set and
 *     the page is not write-watched code, executable only if not NX.
 *  2. The guest page-table pages every mapping was walked through are
 *     write-watched: the first guest write copies the table and ends the
 *     watch; before a stub using it runs again, entries that lost rights
 *     drop what they mapped and the table is watched again;
 *     invlpg drops the page (or the large page around it) from the
 *     current stub; a paging-mode change empties every stub.  So a stub is
 *     never less strict than a TLB the guest has flushed, and a CR3 load
 *     (a context switch) costs no flush.
 *  3. Stubs never share state between address spaces: a stub reused for
 *     another CR3 is emptied and its FPU/SIMD state reset first.
 *  4. The FPU state of the last stub that ran stays in it until read
 *     (user_fpu_sync); entering another address space reads it first.
 */
#ifndef BT_RUNTIME_USER_USER_H
#define BT_RUNTIME_USER_USER_H

#include <stdio.h>
#include <sys/types.h>

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/vcpu_abi.h"
#include "runtime/mem/guestmem.h"
#include "runtime/mmu/mmu.h"

struct user_mode;

struct user_config {
	struct guestmem *gm;
	struct mmu *mmu;      /* the vCPU's soft-MMU: its CR3 is the current address space */
	struct vcpu_abi *abi; /* registers in and out */
	unsigned max_stubs;   /* live stub processes at most; 0: 64 */
	/* false (the default): the calling thread (the vCPU) and every stub it
	 * spawns share one host CPU, the one it runs on at user_create, unless
	 * its affinity already allows only one.  A guest event is a hand-off
	 * between the two processes; on different CPUs each costs a cross-CPU
	 * wake-up (docs/user-direct.md, "Measured costs").  One vCPU only. */
	bool float_cpus;
	/* Code pages direct execution cannot run exactly (user_scan.h): a page
	 * the guest lets user code execute is scanned for these classes each
	 * time a stub maps it; with a hit it is mapped without PROT_EXEC and a
	 * fetch from it returns USER_EV_SENSITIVE instead of running on the
	 * host.  USER_SCAN_WX in the mask also counts a page the guest lets
	 * user code both write and execute (its bytes may change after the
	 * scan).  0: no scan (--user=direct). */
	uint32_t scan_mask;
	/* Fault-around (docs/user-direct.md): a granted fault maps the other
	 * pages of its aligned window of this many pages that the guest has
	 * present, user and accessed, in the same host call.  A power of two
	 * up to 64; 0: USER_DEFAULT_AROUND; 1: off. */
	unsigned around_pages;
	/* Spare stubs kept started ahead (user_idle), up to USER_POOL_MAX:
	 * a new address space takes one instead of spawning.  -1: the default
	 * USER_DEFAULT_POOL; 0: none. */
	int pool;
};

#define USER_DEFAULT_AROUND 16
#define USER_AROUND_MAX	    64
#define USER_DEFAULT_POOL   2
#define USER_POOL_MAX	    8
/* user_idle starts a spare only if the vCPU would sleep at least this long. */
#define USER_POOL_IDLE_NS 2000000

enum user_event_kind {
	USER_EV_SYSCALL,   /* `syscall`: next_rip; gpr[RAX] is the number */
	USER_EV_EXCEPTION, /* vector/has_error/error; addr = CR2 for #PF; abi->rip is
			      the faulting instruction, or the next one when trap */
	USER_EV_SOFTINT,   /* int n / int3: vector; abi->rip after the instruction */
	USER_EV_KICK,	   /* the host timer stopped user code: abi->rip where it stopped */
	/* a fetch from a code page holding an instruction the host would answer
	 * differently from the vCPU (cfg.scan_mask): abi->rip is the
	 * instruction that fetched, not run; addr the page, error its scan
	 * class.  Run it translated. */
	USER_EV_SENSITIVE,
};

struct user_event {
	enum user_event_kind kind;
	uint8_t vector;
	bool has_error;
	bool trap;
	uint32_t error;
	gva_t addr;
	gva_t next_rip;
	uint64_t rflags; /* guest RFLAGS at the event */
};

struct user_stats {
	uint64_t enters;
	uint64_t syscalls, exceptions, softints, kicks;
	uint64_t faults;     /* host SIGSEGVs from guest memory accesses */
	uint64_t maps;	     /* pages mapped into stubs */
	uint64_t upgrades;   /* read-only mappings made writable (first write, D set) */
	uint64_t prefaults;  /* of them, mapped before the retried instruction ran */
	uint64_t guest_pf;   /* of the faults, those that became a guest #PF */
	uint64_t invlpg;     /* drops that unmapped something (invlpg, page-table writes) */
	uint64_t downgrades; /* pages made read-only in place (copy-on-write) */
	uint64_t pt_writes;  /* guest writes to watched page-table pages */
	uint64_t unwatched;  /* stale page-table watches dropped (frame reused as data) */
	uint64_t flushes;    /* stubs emptied (CR3 loads, reuse) */
	uint64_t stub_moves; /* stub code pages moved out of the guest's way */
	uint64_t stubs_spawned, stubs_reused;
	uint64_t fpu_syncs;   /* FPU images read back from a stub */
	uint64_t scans;	      /* executable pages scanned before a stub mapped them */
	uint64_t scan_hits;   /* of them, kept not executable (sensitive or writable code) */
	uint64_t sensitive;   /* fetches from such pages: USER_EV_SENSITIVE */
	uint64_t around;      /* pages mapped ahead by fault-around */
	uint64_t batches;     /* host calls of the batch gadget */
	uint64_t calls_saved; /* host calls one page each would have added */
	uint64_t pool_spawned, pool_taken; /* spare stubs started while idle / used */
	int cpu; /* host CPU the vCPU and its stubs are pinned to, -1: none */
	uint64_t stops, hostcalls, ptrace_calls;
	uint64_t ns_user;  /* wall time with guest user code running or stopped in ptrace */
	uint64_t ns_fault; /* of it, handling lazy mappings */
	uint64_t ns_spawn; /* of it, starting stub processes */
	uint64_t ns_pool;  /* starting spare stubs while the vCPU was idle (not in ns_user) */
};

enum bt_status user_create(const struct user_config *cfg, struct user_mode **out);
void user_destroy(struct user_mode *u);

/*
 * Run guest user code: address space cr3, registers from cfg.abi (gpr,
 * rip, fs_base, gs_base = the user GS base, fxsave), code segment cs
 * (0x33, or a 32-bit one), flags rflags.  Returns at the next event with
 * the registers in cfg.abi.  A non-BT_OK status is a host failure (the
 * stub died, a mapping the host refused): the message is logged.
 */
enum bt_status user_enter(struct user_mode *u, uint64_t cr3, uint16_t cs, uint64_t rflags,
			  struct user_event *ev);

/*
 * FPU state (rule 4).  After user_enter the guest's FPU/SIMD registers are
 * still in the stub: cfg.abi->fxsave is the image last loaded into it.
 * Before anything reads or replaces that image (the guest kernel's
 * fxsave/xsave/fxrstor, its own SIMD use), call user_fpu_sync, which reads
 * it from the stub.  A syscall that does not touch the FPU costs no
 * transfer at all.
 */
bool user_fpu_pending(const struct user_mode *u);
enum bt_status user_fpu_sync(struct user_mode *u);

/* The soft-MMU's flush hook, forwarded (rule 2). */
void user_on_flush(struct user_mode *u, enum mmu_flush_kind kind, gva_t va);
/* The guestmem code-write hook, forwarded: a write of len bytes at gpa is
 * about to land on a write-watched page (rule 2). */
void user_on_write(struct user_mode *u, gpa_t gpa, size_t len);
/* After the hook's other users ran (no translation is left on the page):
 * stop watching gpa's page if no stub maps through it any more. */
void user_write_done(struct user_mode *u, gpa_t gpa);

/* The vCPU is about to sleep for ns nanoseconds (hlt): start a spare stub
 * if the pool is short and the sleep is long enough (USER_POOL_IDLE_NS).
 * True if it did (the caller's deadline moved on meanwhile). */
bool user_idle(struct user_mode *u, uint64_t ns);
/* Pids of the spare stubs (tests): how many, up to max. */
unsigned user_pool_pids(const struct user_mode *u, pid_t *pids, unsigned max);

/* The host pid of the stub holding address space cr3, or 0 (tests). */
pid_t user_stub_pid(const struct user_mode *u, uint64_t cr3);

/* Async-signal-safe: stop running user code soon (USER_EV_KICK). */
void user_kick(struct user_mode *u);

void user_get_stats(const struct user_mode *u, struct user_stats *out);

/* One-time work of direct mode so far, a count that only grows: stubs
 * started or taken from the pool (a new address space's first stay) and
 * host faults that mapped a present guest page into a stub
 * (not those that became a guest #PF).  0 for NULL.  The adaptive policy
 * leaves stays that did some out of its cost windows (vm_policy.h). */
uint64_t user_warmups(const struct user_mode *u);
void user_print_stats(const struct user_mode *u, FILE *f);

#endif
