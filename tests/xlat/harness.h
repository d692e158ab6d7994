/*
 * Test harness for translated code: a tiny dispatcher over runtime/tc with
 * an identity soft-MMU (guest VA == host VA, TLB addend 0), lazy chaining of
 * direct exits and IBL filling, plus a native runner for the reference run.
 * Used by the differential tests, the unit tests and the golden tool.
 */
#ifndef BT_TESTS_XLAT_HARNESS_H
#define BT_TESTS_XLAT_HARNESS_H

#include "pretrans/xlat/xlat.h"
#include "runtime/tc/tc.h"

#include <stddef.h>

#define XH_MAX_BLOCKS 4096

struct xh_block {
	gva_t start;
	uint8_t *rx;
	uint32_t code_len;
	uint32_t flags;
	uint32_t n_exits;
	struct bt_exit exits[XLAT_MAX_EXITS];
	uint8_t *pcmap; /* malloc'ed copy */
	uint32_t pcmap_len;
};

enum xh_result {
	XH_OK = 0,
	XH_REFUSED,  /* a block was refused */
	XH_PRIV,     /* a PRIV exit (the harness does not emulate) */
	XH_FAULT,    /* the soft-MMU reported a fault (fault_page) */
	XH_STEPS,    /* too many exits */
	XH_INTERNAL, /* harness trouble (cache full, ...) */
	XH_IRQ,	     /* an IRQ exit */
};

struct xh {
	struct tc_vcpu vcpu;
	struct tc_cache *cache;
	struct xlat_ctx *ctx;
	struct xh_block *blocks; /* XH_MAX_BLOCKS */
	uint32_t n_blocks;
	gva_t code_lo, code_hi; /* bytes the translator may read */
	bool chain;
	gva_t fault_page; /* accesses to this page fault (0 = none) */
	bool str_fast;	  /* string call-outs try their fast path (harness_fast.c) */
	/* Interrupt exits: with irq_resume an IRQ exit is taken as the runtime
	 * takes one (the request cleared, the block re-entered at its guest
	 * start) instead of ending xh_run; irq_every > 0 also raises a request
	 * before every irq_every-th entry into translated code. */
	bool irq_resume;
	uint32_t irq_every;
	/* what happened */
	gva_t last_rip;
	enum xlat_refusal last_refusal;
	uint64_t n_runs, n_chained, n_slow, n_faults, n_irqs;
};

enum bt_status xh_init(struct xh *h, gva_t code_lo, gva_t code_hi, uint32_t xlat_flags);
uint8_t *xh_str_fast(struct tc_vcpu *t, gva_t va, uint32_t size, bool write);
void xh_fini(struct xh *h);
/* Drop every translated block (the guest code changed). */
void xh_reset(struct xh *h);
/* Raise an interrupt request (byte 1 of vcpu.irq; async-signal-safe). */
void xh_irq_request(struct tc_vcpu *t);
/* Run from start until the guest reaches stop (guest state in h->vcpu.abi). */
enum xh_result xh_run(struct xh *h, gva_t start, gva_t stop, uint64_t max_exits);
/* After XH_FAULT: map exit_host_pc back through the pc map, put the
 * spilled guest values back and set vcpu.rip to the instruction to restart. */
enum xh_result xh_fault_restore(struct xh *h);
/* Find or translate the block at va. */
enum xh_result xh_block(struct xh *h, gva_t va, struct xh_block **out);

/* Native reference: run code at `code` with the state in st until it jumps
 * to xh_native_ret (the caller places that jump).  fs_base/gs_base are set
 * for the duration of the run.  The calling thread's GS is left at gs_base
 * restored to `restore_gs`. */
struct xh_state {
	uint64_t gpr[16];
	uint64_t rflags;
	uint64_t pad;
	/* x87/SSE state, fxsave64 image: loaded before the run (it must hold a
	 * valid MXCSR/FCW, e.g. from the caller's own fxsave64), saved after */
	uint8_t fx[512] __attribute__((aligned(16)));
};
_Static_assert(offsetof(struct xh_state, rflags) == 128, "native.S: rflags");
_Static_assert(offsetof(struct xh_state, fx) == 144, "native.S: fx");
void xh_native(struct xh_state *st, const void *code, uint64_t fs_base, uint64_t gs_base,
	       uint64_t restore_gs);
extern void xh_native_ret(void);

#endif
