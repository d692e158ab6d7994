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
#include "runtime/tc/tc.h"

#define GUEST_FLAGS_MASK 0xcd5ull

int tc_mem_fast(struct tc_vcpu *t);

int tc_mem_fast(struct tc_vcpu *t)
{
	struct vcpu_abi *a = t->abi;
	uint32_t size = (uint32_t)(a->mem_info & 0xffff);
	bool write = (a->mem_info & VCPU_MEM_WRITE) != 0;
	unsigned ra = (unsigned)(a->mem_info >> VCPU_MEM_ADDR_SHIFT) & 15;
	unsigned rr = (unsigned)(a->mem_info >> VCPU_MEM_RET_SHIFT) & 15;
	uint8_t *host;

	if (!t->h.mem_fast || !(host = t->h.mem_fast(t, a->gpr[ra], size, write)))
		return 0;
	/* the same stores, in the same order, as tc_callout_c */
	a->exit_host_pc = a->gpr[rr];
	a->gpr[rr] = 0;
	a->mem_va = a->gpr[ra];
	t->mem_slow++;
	a->mem_host = (uint64_t)(uintptr_t)host;
	a->gpr[ra] = a->mem_host;
	a->rflags = (a->rflags & GUEST_FLAGS_MASK) | 2;
	return 1;
}
