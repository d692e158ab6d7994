/*
 * Prediction of the boot-time self-patching of a Linux x86-64 vmlinux
 * (prefix kp_): from the image's own patch tables and the vCPU's CPUID
 * profile (pretrans/cpuid), the kernel text as Linux 6.1's boot leaves it,
 * so that `pretrans build` can translate the patched code ahead of time.
 * The rules, what is predicted and what is not (and why): docs/pretrans.md
 * "Boot-time patching".
 *
 * Applied in the order Linux applies them: static_call_init
 * (.static_call_sites), ftrace_init (__mcount_loc: call __fentry__ -> NOP),
 * sched_init's preempt_dynamic_init (static_call_update of five keys),
 * then alternative_instructions: apply_paravirt (.parainstructions),
 * apply_retpolines (.retpoline_sites), apply_returns (.return_sites),
 * apply_alternatives (.altinstructions, optimize_nops and the relative
 * call/jmp fix-ups of replacement code), and with one CPU the uniprocessor
 * lock-prefix patching (.smp_locks inside [_text, _etext)).  Jump labels
 * (__jump_table) are recorded as sites but not predicted: they change when
 * a static key is enabled at run time.
 *
 * Invariants
 *  1. The image is only read; the patched text is a copy of every
 *     executable section (elfimg_code ranges).  A table entry pointing
 *     outside them, or bytes that are not what Linux expects there, are
 *     skipped as Linux skips (or WARNs about) them, and counted.
 *  2. kp_predict on an image without Linux's tables (no .altinstructions
 *     and no __mcount_loc) is BT_ERR_NOTFOUND: nothing to predict.
 */
#ifndef BT_PRETRANS_KPATCH_KPATCH_H
#define BT_PRETRANS_KPATCH_KPATCH_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/cpuid/cpuid.h"
#include "pretrans/elf/elfimg.h"

#include <stdbool.h>
#include <stddef.h>

enum kp_kind {
	KP_NONE = 0,
	KP_STATIC_CALL,
	KP_MCOUNT,
	KP_PARAVIRT,
	KP_RETPOLINE,
	KP_RETURN,
	KP_ALT,
	KP_SMP_LOCK,
	KP_JUMP_LABEL, /* sites only: never predicted */
	KP_NKINDS
};

/* The preemption model a PREEMPT_DYNAMIC kernel's sched_init selects
 * (from its Kconfig, or preempt= on the command line): it re-points the
 * cond_resched, might_resched, preempt_schedule{,_notrace} and
 * irqentry_exit_cond_resched static calls. */
enum kp_preempt { KP_PREEMPT_KEEP = 0, KP_PREEMPT_NONE, KP_PREEMPT_VOLUNTARY, KP_PREEMPT_FULL };

/* What the boot looks like, besides the image. */
struct kp_config {
	const struct cpuid_profile *cpu;
	unsigned ncpus;	      /* CPUs the guest has (btvm: 1) */
	bool mitigations_off; /* "mitigations=off" on the command line */
	enum kp_preempt preempt;
};

struct kp_stats {
	size_t sites[KP_NKINDS];   /* table entries read */
	size_t patched[KP_NKINDS]; /* sites whose bytes the prediction changes */
	size_t skipped[KP_NKINDS]; /* entries skipped: outside the text, unexpected bytes */
	size_t bytes_changed;
};

struct kp_text;

enum bt_status kp_predict(const struct elfimg *img, const struct kp_config *cfg,
			  struct kp_text **out);
void kp_free(struct kp_text *t);

/* Copy up to len predicted bytes at va (executable sections only); returns
 * how many are readable. */
size_t kp_read(const struct kp_text *t, gva_t va, uint8_t *buf, size_t len);
/* The same, of the text between two of Linux's steps: after
 * static_call_init and ftrace_init, before alternative_instructions (the
 * scheduler, RCU and timer set-up run it). */
size_t kp_read_early(const struct kp_text *t, gva_t va, uint8_t *buf, size_t len);
/* Does the prediction change any byte of [va, va + len)? */
bool kp_changed(const struct kp_text *t, gva_t va, size_t len);
/* Bit (1 << kind) for every kind whose patch changed a byte of [va, va+len)
 * (changed = true), or whose table has a site there (changed = false). */
unsigned kp_kinds(const struct kp_text *t, gva_t va, size_t len, bool changed);
const struct kp_stats *kp_get_stats(const struct kp_text *t);
const char *kp_kind_name(enum kp_kind k);
/* One site of a loadable module's text as Linux 6.1 patches it when it
 * loads the module (ftrace_module_init, module_finalize), with the rules
 * and configuration of t: kind KP_MCOUNT (an entry of the module's
 * __mcount_loc), KP_RETURN (.return_sites) or KP_RETPOLINE
 * (.retpoline_sites).  p holds the avail bytes at va of the module
 * relocated against t's image's symbols (so its calls reach t's __fentry__,
 * return thunk and indirect thunks).  Writes the new bytes over p and
 * returns how many; 0 when Linux leaves or skips the site.  t is only
 * read (callable from several threads). */
unsigned kp_patch_site(const struct kp_text *t, enum kp_kind k, gva_t va, uint8_t *p, size_t avail);
/* Linux's capability bit (word * 32 + bit) as the prediction sets it. */
bool kp_has_feature(const struct kp_text *t, unsigned bit);

#endif
