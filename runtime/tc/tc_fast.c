/*
 * The memory call-out's fast path (tc_entry.S tc_co_mem): called right
 * after LEAVE_GUEST, before the guest's x87/SSE/AVX state is saved, so it
 * is built with -mgeneral-regs-only (runtime/tc/module.mk, `make
 * check-fastpath`) and calls nothing but tc_handlers.mem_fast, whose
 * implementation must be built the same way.
 *
 * Contract: returns 0 and changes nothing when the handler declines (the
 * trampoline then takes the full path, tc_callout_c, as if this had not
 * run); otherwise leaves the vCPU area exactly as tc_callout_c's
 * VCPU_CO_MEM case does for a served access (exit_host_pc, the resume
 * register zeroed, mem_va, mem_host, the address register, mem_slow, the
 * guest-view flags) and returns 1.
 */
#include "runtime/tc/tc_int.h"

int tc_mem_fast(struct tc_vcpu *t);

int tc_mem_fast(struct tc_vcpu *t)
{
	struct vcpu_abi *a = t->abi;
	struct tc_mem_req q = tc_mem_req(a);
	uint8_t *host;

	if (!t->h.mem_fast || !(host = t->h.mem_fast(t, a->gpr[q.ra], q.size, q.write)))
		return 0;
	/* the same stores, in the same order, as tc_callout_c */
	tc_mem_take(t, &q);
	tc_mem_served(a, &q, host);
	tc_flags_sanitize(a);
	return 1;
}
