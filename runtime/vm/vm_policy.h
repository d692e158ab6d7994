/*
 * The adaptive user-mode policy: for each guest address space, run its
 * user code directly on the host (a stub process, runtime/user) or
 * translated (the translator with XLAT_OPT_USER, through the soft-MMU).
 * Pure bookkeeping: no host effects, so it is unit-tested alone
 * (tests/unit/test_vm_policy.c).  The execution loop (vm_exec.c) asks it
 * which mode to enter and tells it what each stay in user mode cost.
 *
 * A stay lasts from the vCPU's entry to CPL 3 until its next kernel entry;
 * its cost is the wall time from its start to the start of the next stay
 * (of any address space): the user code, the kernel work it asked for, and
 * what the mode adds (host stops and mappings in direct mode, the slower
 * soft-MMU code in translated mode), without translation time (one-time).
 *
 * Neither mode is cheaper in general, and their ratio depends on the code
 * (measured in docs/user-mode.md: a system call is ~40x cheaper translated
 * on this host, a fork+exec ~5x, an interpreter loop ~15x dearer), so the
 * policy measures both on the running code instead of modelling them:
 *
 *   EXPLOIT  run the chosen mode for E stays, then
 *   TRIAL    run the other mode for `trial_stays` stays; keep whichever had
 *            the lower mean cost per stay over its last window (the
 *            current mode wins ties within 1/8), back to EXPLOIT.
 *
 *   E starts at `exploit_stays` and doubles after each trial that kept the
 *   mode, up to `exploit_max` (a trial in the worse mode is expensive: 32
 *   system calls direct cost as much as ~800 translated); a trial that
 *   changed the mode resets it (the workload is moving).
 *
 *   A trial of direct mode is skipped (counted, and E doubles as after a
 *   trial that kept the mode) when the translated window's stays ran less
 *   than `trial_min_user_ns` of user code on average and were not cut by
 *   interrupts: a direct stay costs at least one host crossing (a ptrace
 *   round trip, ~30 us measured here), so translated user code shorter
 *   than that cannot be beaten, and such trials only paid for a stub and
 *   its page faults (docs/user-mode.md, "the policy").
 *
 *   Compute phases: a stay ended by an interrupt (the timer cut it) shows
 *   no system-call or fault boundary to save; when at least half of a
 *   window's stays ended that way, the window counts as compute, and
 *   compute runs direct (native speed; the timer bounds both modes'
 *   stays, so their per-stay costs look alike there).  Four stays in a
 *   row ended by an interrupt in translated mode start the trial at once
 *   instead of after E stays: a compute phase of a few ticks would end
 *   before it.
 *
 *   One-time work is not a mode's cost: translation time is left out of
 *   translated stays (above), and a direct stay that started a stub or
 *   mapped present guest pages into one (VM_POLICY_WARMUP: the first
 *   stays of a stub fault in its working set, ~40 us a page here) is left
 *   out of the direct windows.  A trial of direct mode waits for
 *   `trial_stays` stays without warm-up, at most VM_POLICY_WARMUP_MAX
 *   times that many in all (then it decides on what it measured; with
 *   nothing measured the chosen mode stays).  Without this, trials
 *   measured little but the warm-up: the pipes of the Linux benchmark
 *   kept short-lived awk and sort translated (direct trials ~390 us a
 *   stay against ~37 translated, while direct mode ran the phase in 2.3 s
 *   against 5.0, docs/user-mode.md).
 *
 *   Shifts: during EXPLOIT, a full window whose mean cost a stay is more
 *   than VM_POLICY_SHIFT times (or less than 1/VM_POLICY_SHIFT of) the
 *   first window's after the last decision starts the trial at once and
 *   E over: the workload moved.  Without it a slot that had doubled E up
 *   to exploit_max kept a new program on the same CR3 (Linux reuses the
 *   freed page-table page) in the old program's mode for 16,384 stays.
 *
 *   Fidelity: an address space whose code needs guest state the host
 *   cannot provide runs translated for `fidelity_stays` stays after the
 *   last sign of it (vm_policy_need_translated), without trials; an entry
 *   the execution loop would rather not translate (TF single-stepping or
 *   AC alignment checking outside a fidelity stay, which the host does
 *   exactly at native speed) runs direct for that stay (vm_policy_mode's
 *   `cannot_translate`, a fallback).
 *
 * Address spaces are keyed by CR3 (the PML4's physical page), at most
 * VM_POLICY_SLOTS; the least recently used slot is recycled.  A new one
 * starts translated: exec'd programs begin with loader and libc start-up,
 * dense in system calls and page faults.
 */
#ifndef BT_RUNTIME_VM_VM_POLICY_H
#define BT_RUNTIME_VM_VM_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/* btvm run --user=... */
enum vm_user_cfg {
	VM_USER_ADAPTIVE = 0,
	VM_USER_DIRECT,
	VM_USER_TRANSLATED,
};
const char *vm_user_cfg_str(enum vm_user_cfg c);
/* Parse "adaptive" | "direct" | "translated"; false if none. */
bool vm_user_cfg_parse(const char *s, enum vm_user_cfg *out);

enum vm_umode { VM_UMODE_DIRECT = 0, VM_UMODE_TRANSLATED, VM_NUMODES };
const char *vm_umode_str(enum vm_umode m);

struct vm_policy_params {
	uint32_t exploit_stays; /* stays in the chosen mode between trials, at first */
	uint32_t exploit_max;	/* ... and at most, after trials that kept the mode */
	uint32_t trial_stays;	/* stays of a trial (and of the window compared) */
	uint32_t fidelity_stays;
	/* the fidelity window after a fetch from a code page the scan kept
	 * from the host (USER_EV_SENSITIVE): short, since correctness does
	 * not rest on it (the page stays unexecutable in the stub, so every
	 * later fetch from it runs translated again); it only spares the
	 * round trips of a hot loop on that page.  A long window pinned
	 * whole programs translated for seconds for one cpuid in libc's
	 * start-up (docs/user-mode.md "The page scan") */
	uint32_t sensitive_stays;
	/* a translated window whose stays ran less user code than a host
	 * crossing on average (and were not cut by interrupts) skips its
	 * trial of direct mode: a direct stay costs at least one crossing,
	 * which that much translated user code cannot win back.  The
	 * crossing is measured on the running host (the least user time of
	 * a direct stay among the last VM_POLICY_XING_STAYS direct stays of
	 * any space); this is the value until a first measurement (0: always
	 * try, and measure nothing) */
	uint64_t trial_min_user_ns;
};
void vm_policy_params_default(struct vm_policy_params *p);

#define VM_POLICY_SLOTS	     64
#define VM_POLICY_IRQ_RUN    4
#define VM_POLICY_XING_STAYS 64
#define VM_POLICY_WARMUP_MAX 4
#define VM_POLICY_SHIFT	     4

/* vm_policy_stay's flags */
#define VM_POLICY_BY_IRQ 1u /* the stay ended by an interrupt (not a syscall or an exception) */
#define VM_POLICY_WARMUP 2u /* it did one-time work of its mode (user_warmups()) */

/* One measurement window of a mode. */
struct vm_policy_window {
	uint64_t ns;	  /* summed cost */
	uint64_t user_ns; /* of it, user code (until the kernel entry) */
	uint32_t stays;	  /* stays measured */
	uint32_t irq;	  /* of them, ended by an interrupt */
};

struct vm_policy_as {
	uint64_t cr3; /* 0: free */
	uint64_t last_use;
	uint8_t mode;	/* enum vm_umode: the mode the next stay runs in */
	uint8_t chosen; /* the mode EXPLOIT runs (mode differs during a trial) */
	bool trial;
	uint32_t left;	  /* stays left in this phase */
	uint32_t exploit; /* E, see above */
	uint32_t irq_run; /* consecutive stays ended by an interrupt */
	uint32_t warm;	  /* warm-up stays left out of this trial */
	uint64_t ref_ns;  /* mean cost a stay of the first window after the last decision */
	struct vm_policy_window cur[VM_NUMODES];  /* filling, per mode */
	struct vm_policy_window done[VM_NUMODES]; /* the last full window per mode */
	uint32_t fidelity;			  /* stays left that must run translated */
};

struct vm_policy_stats {
	uint64_t switches[VM_NUMODES]; /* switches INTO each mode (trials included) */
	uint64_t stays[VM_NUMODES];
	uint64_t ns[VM_NUMODES]; /* cost of the stays per mode */
	uint64_t trials;
	uint64_t trials_won;	 /* trials after which the chosen mode changed */
	uint64_t trials_skipped; /* trial_min_user_ns said direct could not win */
	uint64_t fidelity_triggers;
	uint64_t fallbacks;   /* stays run direct because translation could not run them */
	uint64_t warmups;     /* direct stays left out of the windows (VM_POLICY_WARMUP) */
	uint64_t shifts;      /* EXPLOIT phases cut short: the cost a stay moved */
	uint64_t crossing_ns; /* the host crossing as last measured, 0: not yet */
};

struct vm_policy {
	enum vm_user_cfg cfg;
	struct vm_policy_params params;
	struct vm_policy_as as[VM_POLICY_SLOTS];
	uint64_t clock;		   /* use counter for LRU */
	struct vm_policy_as *last; /* the slot used last (every stay asks twice) */
	/* the host crossing (trial_min_user_ns): least user time of a direct
	 * stay in the window filling now, and its count */
	uint64_t xing_min;
	uint32_t xing_n;
	struct vm_policy_stats st;
};

void vm_policy_init(struct vm_policy *p, enum vm_user_cfg cfg,
		    const struct vm_policy_params *params);

/* The mode the next stay of address space cr3 runs in.  cannot_translate:
 * this entry cannot run translated (the caller says why); it runs direct
 * and counts as a fallback. */
enum vm_umode vm_policy_mode(struct vm_policy *p, uint64_t cr3, bool cannot_translate);

/* A stay of address space cr3 in mode m cost ns, user_ns of it in user
 * code (from the entry to CPL 3 to the next kernel entry); flags:
 * VM_POLICY_BY_IRQ, VM_POLICY_WARMUP. */
void vm_policy_stay(struct vm_policy *p, uint64_t cr3, enum vm_umode m, uint64_t ns,
		    uint64_t user_ns, unsigned flags);

/* How many stays of address space cr3 may start without asking
 * vm_policy_mode, all in translated mode, so that the next decision (a
 * trial, a trial's end) still comes through vm_policy_mode: 0 when the
 * next stay may run direct, and for an address space not seen yet (a
 * query: it makes no slot); UINT32_MAX with --user=translated.  The
 * caller reports those stays with vm_policy_stay as usual. */
uint32_t vm_policy_budget(struct vm_policy *p, uint64_t cr3);

/* Is address space cr3 under the fidelity trigger (it must run translated
 * for a while, vm_policy_need_translated)? */
bool vm_policy_fidelity(struct vm_policy *p, uint64_t cr3);
/* Address space cr3 showed a need for exact guest state (a sensitive
 * instruction, a loaded LDT, a fault direct execution cannot reproduce):
 * its next `stays` stays (0: fidelity_stays; a window already longer is
 * kept) run translated (unless cfg is VM_USER_DIRECT). */
void vm_policy_need_translated(struct vm_policy *p, uint64_t cr3, uint32_t stays);

#endif
