/* Internal state of runtime/vm, shared by its files only. */
#ifndef BT_RUNTIME_VM_VM_INT_H
#define BT_RUNTIME_VM_VM_INT_H

#include <signal.h>
#include <time.h>

#include "db/tcdb.h"
#include "pretrans/xlat/xlat.h"
#include "runtime/boot/boot.h"
#include "runtime/cache/tcache.h"
#include "runtime/cpu/cpu.h"
#include "runtime/dev/platform.h"
#include "runtime/mem/guestmem.h"
#include "runtime/mmu/mmu.h"
#include "runtime/tc/tc.h"
#include "runtime/ureloc/ureloc.h"
#include "runtime/user/user.h"
#include "runtime/vm/vm.h"
#include "runtime/vm/vm_policy.h"

enum vm_phase {
	VM_PH_TRANSLATE,
	VM_PH_DB,
	VM_PH_RUN,
	VM_PH_EMULATE,
	VM_PH_DEVICES,
	VM_PH_IDLE,
	VM_PH_USER, /* guest user code in stubs, with its faults and mappings */
	VM_NPHASES
};

/* Why an inline probe missed (vm_fast.c vm_probe_miss_kind), in that order. */
enum vm_miss {
	VM_MISS_CROSS,	  /* the access crosses a page */
	VM_MISS_USER,	  /* a kernel access to a user address (no entry under SMAP) */
	VM_MISS_PERM,	  /* the slot holds the page, without this access's right */
	VM_MISS_EMPTY,	  /* the slot is empty: never filled, or flushed */
	VM_MISS_CONFLICT, /* the slot holds another page */
	VM_MISS_MMIO,	  /* device memory (never in the TLB), counted after the walk */
	VM_NMISS,
};

struct vm_stats {
	uint64_t exits[XLAT_NEXIT_KINDS];
	uint64_t probe_miss[VM_NMISS]; /* inline probe misses by kind */
	uint64_t l2_served[VM_NMISS];  /* ... of them, served by the fast path (vm_fast.c) */
	uint64_t str_l2_pages;	       /* string pages the fast path found behind the first level */
	uint64_t faults;	  /* guest faults raised by translated code (call-outs, signals) */
	uint64_t host_signals;	  /* #DE/#UD... taken as host signals inside translated code */
	uint64_t translated;	  /* blocks translated at run time */
	uint64_t refused;	  /* run-time translations refused (then single-stepped) */
	uint64_t db_used;	  /* database blocks validated and installed */
	uint64_t db_stale;	  /* database blocks whose guest bytes differ */
	uint64_t db_predicted;	  /* of db_used: predicted versions (pretrans/kpatch) */
	uint64_t db_verified;	  /* database blocks re-translated identically (--verify-db) */
	uint64_t kmod_from_db;	  /* module blocks instantiated from templates (vm_kmod.c) */
	uint64_t kmod_translated; /* kernel blocks outside the kernel image translated */
	uint64_t smc_pages;	  /* code-page writes that invalidated blocks */
	uint64_t smc_blocks;
	uint64_t mapping_flushes; /* blocks dropped because a code mapping changed */
	uint64_t epochs;	  /* mapping epochs: code pages revalidated (new_epoch) */
	uint64_t epoch_pages;	  /* kernel code pages they checked */
	uint64_t epoch_walks;	  /* ... with a page walk (the others: a large page's) */
	uint64_t irqs;
	uint64_t halts;
	uint64_t idle_waits;   /* hlt sleeps that woke after a device deadline */
	uint64_t idle_late_ns; /* ... how long after it, in all */
	/* host timer signals while a stub ran guest user code before its
	 * deadline (vm_signal.c contract 6): each a host context switch to
	 * btvm and back for nothing; and the direct stays whose timer was
	 * moved to their deadline (at entry or by such a signal) */
	uint64_t timer_early, timer_moved;
	uint64_t learned;
	uint64_t user_translated;     /* user blocks translated (XLAT_OPT_USER) */
	uint64_t user_relocated;      /* user blocks instantiated from templates (ureloc) */
	uint64_t user_reloc_verified; /* ... re-translated identically (--verify-db) */
	uint64_t user_reloc_differ;   /* ... that differed (a bug: translated instead) */
	uint64_t user_reloc_ticks;    /* user misses tried on templates (in VM_PH_TRANSLATE) */
	uint64_t user_from_db;	      /* user blocks from the database's templates (vm_udb.c) */
	uint64_t user_db_verified;    /* ... re-translated identically (--verify-db) */
	uint64_t user_db_differ;      /* ... that differed (a bug: translated instead) */
	uint64_t user_stored;	      /* user templates a --learn boot stored */
	uint64_t user_db_ticks;	      /* user misses tried on the database (in VM_PH_DB) */
	uint64_t split_accesses, split_maps; /* vm_split.c */
	uint64_t user_retries;		     /* direct-mode faults re-run translated (vm_exec.c) */
	uint64_t user_sensitive;	  /* direct-mode fetches of sensitive code pages (same) */
	uint64_t steps;			  /* instructions run one a block (run_step) */
	uint64_t fx_syscalls, fx_sysrets; /* fast system calls (tc_entry.S, vm_exec.c) */
	uint64_t user_host_features;	  /* translated user code used a feature only the
					   * host's CPUID shows: run direct (vm_exec.c) */
	uint64_t ticks[VM_NPHASES];	  /* TSC ticks by phase (vm_ticks); shown in ns */
};

#define VM_SPLIT_WINDOWS 2

/* The bytes of user block templates kept for relocation (runtime/ureloc):
 * Debian 12's boot to a login and poweroff keeps 97,700 templates in 107 MB
 * (docs/user-mode.md); past the budget the oldest go. */
#define VM_URELOC_BUDGET (128ull << 20)

#define VM_PRIV_SLOTS 256
#define VM_ITLB_SLOTS 64

struct vm {
	struct vm_config cfg;
	int perf_map_fd; /* --perf-map: /tmp/perf-PID.map, 0: none */
	struct guestmem *gm;
	struct mmu mmu;
	struct tc_vcpu tcv;
	struct vcpu cpu;
	struct platform *plat;
	struct tcache *tc;
	struct xlat_ctx *xlat;
	struct xlat_ctx *xlat_user;  /* the same translator for CPL-3 code (XLAT_OPT_USER) */
	struct xlat_ctx *xlat_step;  /* ... one instruction a block (XLAT_OPT_STEP) */
	struct xlat_ctx *xlat_kstep; /* kernel code, one instruction a block */
	struct ureloc *ureloc;	     /* templates of user blocks by guest-physical address */
	struct xlat_options xopts;
	struct tcdb *db;
	/* whether the database serves this boot (vm_ident.c): a bzImage's
	 * database waits for its kernel to be identified */
	struct {
		enum vm_ident_state { VM_IDENT_ON, VM_IDENT_WAIT, VM_IDENT_OFF } state;
		uint8_t build_id[64];
		size_t len;
		gva_t va;	/* the note's descriptor at the link address */
		gva_t rip;	/* the kernel-half block that decided (0: none yet) */
		uint64_t kaslr; /* the offset the note was found at when not 0 */
	} ident;
	struct vm_kmod *kmod;		/* module templates of the database (vm_kmod.c) */
	struct kmod_binder *udb;	/* user templates of the database (vm_udb.c) */
	size_t udb_indexed;		/* ... their fingerprints */
	gpa_t kernel_start, kernel_end; /* the kernel image's physical range (boot_layout) */
	struct user_mode *user;		/* guest user code in stub processes */
	struct vm_policy policy;	/* which user mode, per address space */
	/* the current stay in user mode (vm_exec.c) */
	struct {
		bool in_user;
		enum vm_umode mode;
		uint64_t cr3;
		uint64_t t0;	  /* vm_ticks() at the entry */
		uint64_t xlat0;	  /* st.ticks[VM_PH_TRANSLATE] at the entry */
		uint64_t irqs0;	  /* vcpu interrupts delivered at the entry */
		uint64_t warm0;	  /* user_warmups() at the entry */
		bool by_irq;	  /* the last stay ended by an interrupt */
		bool warmup;	  /* the last stay did one-time direct-mode work */
		bool report;	  /* the last stay's cost is still to be reported */
		uint32_t runs;	  /* user code runs in this stay */
		bool retried;	  /* a direct-mode fault was re-run translated in this stay */
		uint64_t user_ns; /* its user code: entry to CPL 3 to the kernel entry */
	} stay;

	uint64_t map_epoch; /* bumped when code mappings may have changed */

	/* The decoded PRIV instruction ending a block, by block: its bytes
	 * cannot change while the block lives (write-watched), so a PRIV exit
	 * of a block seen before needs neither a fetch (a page walk) nor the
	 * decoder.  gen: tcache_generation (a flush reuses block memory). */
	struct vm_priv_slot {
		const struct tcache_block *b;
		uint64_t gen;
		gva_t rip;
		bool valid;
		struct cpu_insn insn;
	} priv[VM_PRIV_SLOTS];
	/* User code pages by (page, vcpu_abi.uibl_tag): the guest-physical page
	 * a user RIP maps to, as a TLB would keep it (the tag changes with
	 * every CR3 load or flush of the address space; invlpg empties it). */
	struct vm_itlb_slot {
		gva_t page;
		uint64_t tag;
		gpa_t gpa;
	} itlb[VM_ITLB_SLOTS];

	/* the last exit, for lazy chaining */
	struct tcache_block *prev;
	unsigned prev_exit;

	/* a guest fault reported by a call-out handler */
	struct mmu_fault co_fault;
	bool co_unsupported;
	bool xlat_not_advertised; /* the last refusal: an extension the vCPU lacks */
	/* accesses across two non-adjacent guest pages (vm_split.c) */
	struct {
		uint8_t *base;
		gpa_t pair[VM_SPLIT_WINDOWS][2];
		unsigned next;
	} split;
	uint8_t bounce[64] __attribute__((aligned(16)));
	/* a store to device memory from translated code lands in bounce[]
	 * and reaches the device at the runtime's next entry (vm_exec.c,
	 * mmio_store_flush) */
	struct {
		bool pending;
		gva_t va;
		uint32_t size;
	} mmio_store;

	/* the upper half of the PML4 at the last CR3 load, to decide whether a
	 * CR3 switch keeps kernel code mappings */
	uint64_t pml4_hi[256];

	timer_t host_timer; /* vm_signal.c */
	bool have_timer;
	/* the thread's signal mask plus the host timer's SIGALRM: hlt's sleep
	 * (vm_exec.c idle) runs under it, so the 1 ms timer does not wake a
	 * halted vCPU that has a deadline of its own (vm_signal.c contract 5) */
	sigset_t idle_mask;
	/* while a stub runs guest user code (a direct stay): the host time
	 * (bt_now_ns) before which the 1 ms timer leaves it running, 0 =
	 * stop it at every tick (vm_signal.c contract 6, vm_exec.c
	 * run_user_direct) */
	volatile uint64_t kick_at_ns;
	/* the host timer fires next at kick_at_ns, then every 1 ms again (set
	 * by vm_timer_at_kick, cleared by vm_timer_periodic) */
	volatile sig_atomic_t timer_at_kick;
	bool stay_kicked;		      /* the last direct stay ended at its deadline */
	uint64_t clock_t0_ns, clock_t0_ticks; /* to convert phase ticks to ns */
	double ns_per_tick;		      /* the same rate, refreshed by housekeeping */
	uint64_t deadline_ns;		      /* CLOCK_MONOTONIC, 0 = none */
	volatile sig_atomic_t stop_signal;    /* SIGINT/SIGTERM received (vm_signal.c) */
	enum vm_stop stop_request; /* a device asked: VM_STOP_RESET or VM_STOP_POWEROFF */
	bool compat_to_host;	   /* 32-bit flat code the interpreter does not cover: direct */
	struct vm_result res;
	struct vm_stats st;
	int64_t started_unix;
};

/* Phase accounting runs on every exit: the TSC, not clock_gettime (which
 * cost 11% of a Linux boot); vm_ticks_to_ns converts with the rate seen
 * between vm_run's start and now (bt_now_ns). */
static inline uint64_t vm_ticks(void)
{
	return __builtin_ia32_rdtsc();
}
double vm_ticks_to_ns(const struct vm *vm, uint64_t ticks);

/* vm_stay.c: stays in user mode, the fidelity trigger, fast system calls */
/* Single-stepping (TF) or alignment checking (AC with CR0.AM) at CPL 3. */
bool vm_wants_step(const struct vcpu *v);
/* Ends or starts a stay (at the outer loop); the mode user code runs in. */
enum vm_umode vm_stay_track(struct vm *vm);
/* The one place the user mode changes, inside a stay or at its start. */
void vm_stay_switch(struct vm *vm, enum vm_umode to);
/* Arm the fast system calls for the next run of translated code (none
 * unless translated is true: the kernel or translated-user state). */
void vm_fx_arm(struct vm *vm, bool translated);
/* After translated code ran or at a call-out: the vCPU and the stays
 * follow the fast system calls made; true if there were any. */
bool vm_fx_sync(struct vm *vm);

/* vm_blocks.c */
struct tcache_block *vm_block_get(struct vm *vm, gva_t rip, struct mmu_fault *fault);
struct tcache_block *vm_block_get_user(struct vm *vm, gva_t rip, struct mmu_fault *fault);
struct tcache_block *vm_user_block_at(struct vm *vm, gva_t va);
/* The one-instruction block at rip (XLAT_OPT_STEP, tcache_install_step) for
 * single-stepping and alignment checking (vm_exec.c, run_step): a user
 * block is cached; a kernel one is translated afresh and the caller kills
 * it after its run. */
struct tcache_block *vm_block_get_step(struct vm *vm, gva_t rip, struct mmu_fault *fault);
void vm_code_write(void *opaque, gpa_t gpa, size_t len);
void vm_mmu_flush(void *opaque, enum mmu_flush_kind kind, gva_t va);
enum bt_status vm_learn(struct vm *vm);

/* vm_ident.c (its contract is at the top of that file): a bzImage's
 * database waits (VM_IDENT_WAIT) for vm_ident_check to find its build-id
 * in the kernel the decompressor unpacked; im: the database's image row,
 * kver: the bzImage's kernel_version (boot_layout) */
enum bt_status vm_ident_init(struct vm *vm, const struct tcdb_image *im, const char *kver);
void vm_ident_check(struct vm *vm, gva_t rip);

/* vm_split.c */
enum bt_status vm_split_init(struct vm *vm);
void vm_split_fini(struct vm *vm);
uint8_t *vm_split_host(struct vm *vm, gva_t va, uint32_t size, gpa_t gpa0, gpa_t gpa1, bool write);

/* vm_exec.c */
enum bt_status vm_loop(struct vm *vm);
int vm_callout_mem(struct tc_vcpu *t, gva_t va, uint32_t size, bool write, uint8_t **host);
/* vm_fast.c (general registers only): the memory call-out's fast path
 * (tc_handlers.mem_fast), and why an inline probe missed */
uint8_t *vm_callout_mem_fast(struct tc_vcpu *t, gva_t va, uint32_t size, bool write);
uint8_t *vm_string_fast(struct tc_vcpu *t, gva_t va, uint32_t size, bool write);
enum vm_miss vm_probe_miss_kind(const struct vm *vm, unsigned cpl, gva_t va, uint32_t size,
				bool write);

/* The time in ns from now to the device deadline next (UINT64_MAX: none),
 * at most max, 0 when it is due: how long hlt sleeps (max VM_IDLE_MAX_NS,
 * vm_exec.c idle) and how long a direct stay runs before the host timer
 * stops its stub (max VM_DIRECT_KICK_MAX_NS: the latency of --timeout,
 * console input and housekeeping in direct mode; a stop signal stops it at
 * once; vm_exec.c run_user_direct) */
#define VM_IDLE_MAX_NS	      10000000ull
#define VM_DIRECT_KICK_MAX_NS 4000000ull
#define VM_HOST_TICK_NS	      1000000ull /* the host timer's period (vm_signal.c) */
uint64_t vm_until_deadline_ns(uint64_t next, uint64_t now, uint64_t max);

/* vm_signal.c (its contract is at the top of that file) */
enum bt_status vm_signals_install(struct vm *vm);
void vm_signals_remove(struct vm *vm);
/* The host timer fires next at vm->kick_at_ns (CLOCK_MONOTONIC), then every
 * 1 ms; vm_timer_periodic: every 1 ms from now (contract 6). */
void vm_timer_at_kick(struct vm *vm);
void vm_timer_periodic(struct vm *vm);
/* The exception a host signal in translated code stands for, since the
 * last vm_host_signal_clear(): -1 none (the exit was a call-out fault),
 * a guest vector, or VM_HOST_SIGNAL_BUG. */
#define VM_HOST_SIGNAL_BUG 255 /* translated code touched host memory */
#define VM_HOST_SIGNAL_RSP 254 /* the guest's %rsp is not canonical (a host #GP) */
void vm_host_signal_clear(void);
int vm_host_signal_take(void);

/* vm_kmod.c: module templates from the database (docs/kmod.md) */
struct vm_kmod;
struct kmod_bind_stats;
struct kmod_binder;
enum bt_status vm_kmod_load(struct vm *vm);
void vm_kmod_free(struct vm *vm);
/* A template matching the guest bytes at rip (got of them readable),
 * instantiated into xb (storage: vm->kmod's until the next call). */
bool vm_kmod_find(struct vm *vm, const struct xlat_source *src, gva_t rip, const uint8_t *bytes,
		  size_t got, struct bt_block *xb);
/* The binder's counters (NULL without module templates). */
const struct kmod_bind_stats *vm_kmod_stats(const struct vm *vm);

/* vm_udb.c: user templates from and to the database (docs/user-mode.md) */
enum bt_status vm_udb_load(struct vm *vm);
void vm_udb_free(struct vm *vm);
/* A template matching the guest bytes at rip (got of them readable),
 * instantiated into xb (storage: vm->udb's until the next call), and the
 * template itself (for the in-run store), or NULL. */
const struct xlat_tmpl *vm_udb_find(struct vm *vm, gva_t rip, const uint8_t *bytes, size_t got,
				    struct bt_block *xb);
/* --learn: the user templates kept this boot into the open learn
 * transaction (at most VM_UDB_BUDGET bytes). */
enum bt_status vm_udb_write(struct vm *vm);
size_t vm_udb_indexed(const struct vm *vm);
const struct kmod_bind_stats *vm_udb_stats(const struct vm *vm);

#endif
