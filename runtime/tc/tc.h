/*
 * Running translated code on the host: the enter/exit/call-out trampolines
 * (tc_entry.S), the per-thread vCPU area reached through the GS base, and a
 * minimal dual-mapped code-cache allocator for tests and the runtime.
 *
 * Protocol (docs/xlat.md, "Running translated code"):
 *   tc_run()  saves host callee-saved registers and the host RSP in
 *             vcpu.host_rsp, loads the guest GPRs/flags from the vCPU area and
 *             jumps to the host code.  It returns when translated code
 *             leaves through an exit stub (TC_EXIT_BLOCK: vcpu.exit_info /
 *             exit_target / exit_block say which exit and where to) or when a
 *             call-out handler reported a guest fault (TC_EXIT_FAULT:
 *             vcpu.exit_host_pc is the call-out's return address; map it with
 *             xlat_pcmap_lookup and tc_restore_spills).
 *   After either, vcpu.gpr[] and vcpu.rflags hold the guest state (rflags
 *   with the virtual IF and AC merged in).
 *
 * The handler table lives in struct tc_vcpu (runtime memory), never in
 * translated code; vcpu.host_ctx points at it.
 */
#ifndef BT_RUNTIME_TC_TC_H
#define BT_RUNTIME_TC_TC_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/vcpu_abi.h"

enum tc_exit_code {
	TC_EXIT_BLOCK = 1, /* an exit stub ran */
	TC_EXIT_FAULT = 2, /* a call-out handler reported a guest fault */
};

struct tc_vcpu;

/* tc_handlers.mem: the chunk asked for is not all RAM (tc_vcpu.str_chunk) */
#define TC_MEM_NOT_RAM 2

struct tc_handlers {
	/*
	 * Soft-MMU slow path: translate the guest access [va, va+size) for
	 * reading or writing.  On success store a host pointer to `size`
	 * contiguous bytes in *host, optionally refill the TLB, and return 0.
	 * On a guest fault record it (in the runtime's own state) and return
	 * non-zero: translated code is abandoned, tc_run returns TC_EXIT_FAULT.
	 * Called on the host stack with DF clear; may not re-enter tc_run.
	 * While tc_vcpu.str_chunk is set (a whole chunk of a rep movs/stos),
	 * an access that is not all RAM returns TC_MEM_NOT_RAM having done
	 * nothing, so the string call-out goes element by element and a
	 * device sees one access per element, as on hardware.
	 */
	int (*mem)(struct tc_vcpu *t, gva_t va, uint32_t size, bool write, uint8_t **host);
	/*
	 * Optional fast path of the same call-out, tried first (tc_fast.c):
	 * called with the guest's x87/SSE/AVX state still live in the
	 * registers, so it must be built with -mgeneral-regs-only and call
	 * nothing that is not.  Returns the host address of an access `mem`
	 * would have served with that address and no other effect than the
	 * ones it performs itself, or NULL to let `mem` run.
	 */
	uint8_t *(*mem_fast)(struct tc_vcpu *t, gva_t va, uint32_t size, bool write);
	/*
	 * Optional fast path of the string call-out (tc_strfast.c), under
	 * the same rules as mem_fast: the host address of [va, va + size)
	 * (one page) for a string instruction's explicit access, when `mem`
	 * would have served exactly that with no other effect than the
	 * ones this performs itself, or NULL to let tc_string_run run.
	 */
	uint8_t *(*str_fast)(struct tc_vcpu *t, gva_t va, uint32_t size, bool write);
};

struct tc_vcpu {
	struct vcpu_abi *abi; /* mmap'ed, page aligned; the thread's GS base */
	struct tc_handlers h;
	void *opaque; /* the runtime's */
	/* Single-stepping a rep string instruction (the runtime's stepping
	 * loop): str_single makes the string call-out run one iteration;
	 * str_unfinished says it left some (RCX != 0 and the condition
	 * still holds), so the instruction runs again, as on hardware,
	 * where TF traps after every iteration. */
	bool str_single;
	bool str_unfinished;
	/* set while the string call-out asks `mem` for a chunk of elements
	 * (tc_string.c string_chunk): see tc_handlers.mem */
	bool str_chunk;
	/* VCPU_CO_MEM call-outs: inline probes that missed (their slow path);
	 * probe_miss is true while the handler serves one (tc_handlers.mem
	 * also serves string instructions) */
	uint64_t mem_slow;
	bool probe_miss;
	/* VCPU_CO_STRING call-outs, and those the fast path completed
	 * without tc_string_run (tc_strfast.c) */
	uint64_t str_calls;
	uint64_t str_fast;
};

/* Allocate and reset the vCPU area (TLB and IBL empty, IF=0, call-outs set). */
enum bt_status tc_vcpu_init(struct tc_vcpu *t, const struct tc_handlers *h, void *opaque);
void tc_vcpu_fini(struct tc_vcpu *t);
/* Point this thread's GS base at t->abi (arch_prctl ARCH_SET_GS). */
enum bt_status tc_vcpu_activate(struct tc_vcpu *t);

/* Run host code at `code` until an exit; returns enum tc_exit_code. */
int tc_run(struct tc_vcpu *t, const void *code);

/* Resume point for a signal handler that interrupted translated code: with
 * the guest state already copied into the vCPU area (gpr, rflags, fxsave,
 * exit_host_pc = faulting pc + 1), set the frame's RSP to vcpu.host_rsp and
 * RIP here; tc_run then returns TC_EXIT_FAULT. */
void tc_signal_return(void);

void tc_tlb_flush(struct tc_vcpu *t);
/* Map the guest page containing va: host = va + addend. */
void tc_tlb_set(struct tc_vcpu *t, gva_t va, int64_t addend, bool readable, bool writable);
void tc_ibl_flush(struct tc_vcpu *t);
void tc_ibl_set(struct tc_vcpu *t, gva_t rip, const void *host);

/* After TC_EXIT_FAULT: put the spilled guest values back into gpr[]/rflags
 * (spilled as returned by xlat_pcmap_lookup) and set vcpu.rip. */
void tc_restore_spills(struct tc_vcpu *t, gva_t guest_rip, uint32_t spilled);

/* The string-instruction call-out (movs/stos/lods/cmps/scas, rep forms),
 * element by element through h.mem.  Returns 0, or non-zero on a fault
 * with the registers describing the completed iterations. */
int tc_string_run(struct tc_vcpu *t);

/*
 * Code cache: one memfd (sealed against resizing) mapped twice, each view
 * at its own random address (RW for writing and patching, RX for running;
 * docs/security.md), bump allocation, no freeing.
 */
struct tc_cache;
enum bt_status tc_cache_create(size_t size, struct tc_cache **out);
void tc_cache_destroy(struct tc_cache *c);
/* Forget every block (the caller drops all references, unchains, flushes IBL).
 * A preloaded prefix (tc_cache_preload) stays. */
void tc_cache_reset(struct tc_cache *c);
/* On an empty cache: hand out its first len bytes (populated, both views)
 * for the caller to fill through *rw before anything of them runs at *rx;
 * they stay across resets.  BT_ERR_INVALID if code was added already,
 * BT_ERR_NOMEM if len does not fit with a quarter of the cache to spare. */
enum bt_status tc_cache_preload(struct tc_cache *c, size_t len, uint8_t **rw, uint8_t **rx);
/* Copy len bytes of code in; *rx is where it runs.  BT_ERR_NOMEM when full. */
enum bt_status tc_cache_add(struct tc_cache *c, const void *code, size_t len, uint8_t **rx);
/* Rewrite the rel32 at rx + off (in the cache) to jump to target (in the cache). */
enum bt_status tc_cache_patch_rel32(struct tc_cache *c, const uint8_t *rx, uint32_t off,
				    const uint8_t *target);

#endif
