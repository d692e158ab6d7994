/*
 * The adaptive user-mode policy: for each guest address space, run its
 * user code directly on the host (a stub process, runtime/user) or
 * translated (the translator with XLAT_OPT_USER, through the soft-MMU).
 * Pure bookkeeping: no host effects, so it is unit-tested alone
 * (tests/unit/test_vm_policy.c).  The execution loop (vm_exec.c) asks it
 * which mode to enter and tells it how each stay in user mode ended.
 *
 * The decision (docs/user-mode.md has the measurements behind it):
 *
 *   A stay in user mode lasts from the vCPU's entry to CPL 3 until its next
 *   kernel entry (syscall, exception, interrupt).  Direct mode pays a fixed
 *   boundary cost per stay, C_d (host stops, register and FPU transfer),
 *   and runs the stay's code at native speed; translated mode pays a small
 *   one, C_t, but runs code s times slower.  A stay of native length L
 *   costs L + C_d direct and s*L + C_t translated, so the break-even is
 *   L* = (C_d - C_t) / (s - 1): shorter stays are cheaper translated.  C_d
 *   starts at params.direct_cost_ns and follows the shortest direct stay
 *   seen (a stay is at least one boundary); s and C_t are measured
 *   parameters (docs/user-mode.md, "break-even").
 *
 *   Per address space an exponential average of native stay lengths
 *   (weight 1/8) is kept in the mode it runs in (a direct stay minus C_d, a
 *   translated one divided by s).  DIRECT -> TRANSLATED when the average
 *   falls below L* / hysteresis; TRANSLATED -> DIRECT when it rises above
 *   L* * hysteresis; never before `min_stays` stays in the current mode (so
 *   one odd stay does not flip it).  A stay cut by the host timer (a kick
 *   in direct mode) counts as long.
 *
 *   Fidelity: an address space whose code needs guest state the host
 *   cannot provide runs translated for `fidelity_stays` stays after the
 *   last sign of it (vm_policy_need_translated), whatever the averages say;
 *   an entry the translator cannot run (32-bit code, TF single-stepping)
 *   runs direct for that stay (vm_policy_mode's `cannot_translate`).
 *
 * Address spaces are keyed by CR3 (the PML4's physical page), at most
 * VM_POLICY_SLOTS; the least recently used slot is recycled.
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

enum vm_umode {
	VM_UMODE_DIRECT = 0,
	VM_UMODE_TRANSLATED,
	VM_NUMODES
};
const char *vm_umode_str(enum vm_umode m);

struct vm_policy_params {
	uint64_t direct_cost_ns;     /* C_d before any direct stay was seen */
	uint64_t translated_cost_ns; /* C_t */
	uint32_t slowdown_x16;	     /* s, times 16 (> 16) */
	uint32_t hysteresis;	/* switch at break_even / h and break_even * h */
	uint32_t min_stays;	/* stays in a mode before the averages may switch it */
	uint32_t fidelity_stays;
};
/* The measured defaults (docs/user-mode.md, "break-even"). */
void vm_policy_params_default(struct vm_policy_params *p);

#define VM_POLICY_SLOTS 64

struct vm_policy_as {
	uint64_t cr3; /* 0: free */
	uint64_t last_use;
	uint8_t mode;	    /* enum vm_umode */
	uint32_t stays;	    /* in the current mode */
	uint64_t avg_ns;    /* native-equivalent stay length, exponential average */
	uint32_t fidelity;  /* stays left that must run translated */
};

struct vm_policy_stats {
	uint64_t switches[VM_NUMODES]; /* switches INTO each mode */
	uint64_t stays[VM_NUMODES];
	uint64_t ns[VM_NUMODES]; /* time spent in user stays per mode */
	uint64_t fidelity_triggers;
	uint64_t fallbacks; /* stays run direct because translation could not run them */
};

struct vm_policy {
	enum vm_user_cfg cfg;
	struct vm_policy_params params;
	uint64_t direct_cost_ns; /* C_d now */
	struct vm_policy_as as[VM_POLICY_SLOTS];
	uint64_t clock; /* use counter for LRU */
	struct vm_policy_stats st;
};

void vm_policy_init(struct vm_policy *p, enum vm_user_cfg cfg,
		    const struct vm_policy_params *params);

/* L*, the native stay length where both modes cost the same, now. */
uint64_t vm_policy_break_even_ns(const struct vm_policy *p);

/* The mode the next stay of address space cr3 runs in.  cannot_translate:
 * this entry cannot run translated (the caller says why); it runs direct
 * and counts as a fallback. */
enum vm_umode vm_policy_mode(struct vm_policy *p, uint64_t cr3, bool cannot_translate);

/* A stay of address space cr3 in mode m ended after ns (wall time);
 * kicked: the host timer cut it (direct mode), so it was at least a tick. */
void vm_policy_stay(struct vm_policy *p, uint64_t cr3, enum vm_umode m, uint64_t ns,
		    bool kicked);

/* Address space cr3 showed a need for exact guest state (a sensitive
 * instruction, a loaded LDT, a fault direct execution cannot reproduce):
 * its next stays run translated (unless cfg is VM_USER_DIRECT). */
void vm_policy_need_translated(struct vm_policy *p, uint64_t cr3);

#endif
