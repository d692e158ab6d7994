/*
 * runtime/tc internals shared by the call-outs' full paths (tc.c,
 * tc_string.c) and their fast paths (tc_fast.c, tc_strfast.c, built with
 * -mgeneral-regs-only): how a call-out's %gs:mem_info reads, and the vCPU
 * area's state after a served memory access.  Integer code only, inline:
 * nothing here may touch the FPU/SSE state.  Not for other modules.
 */
#ifndef BT_RUNTIME_TC_TC_INT_H
#define BT_RUNTIME_TC_TC_INT_H

#include "runtime/tc/tc.h"

/* The guest's flags as the host holds them in translated code: the
 * arithmetic flags and DF (vcpu.rflags outside tc_run: tc.c invariant 2) */
#define TC_GUEST_FLAGS_MASK 0xcd5ull

/* vcpu.rflags as popfq may restore it on the way back to translated code */
static inline void tc_flags_sanitize(struct vcpu_abi *a)
{
	a->rflags = (a->rflags & TC_GUEST_FLAGS_MASK) | 2;
}

/* A VCPU_CO_MEM call-out's mem_info (vcpu_abi.h VCPU_MEM_*): the access,
 * the GPR holding its address (ra) and the one holding the resume address
 * (rr). */
struct tc_mem_req {
	uint32_t size;
	bool write;
	unsigned ra, rr;
};

static inline struct tc_mem_req tc_mem_req(const struct vcpu_abi *a)
{
	struct tc_mem_req q = {
	    .size = (uint32_t)(a->mem_info & 0xffff),
	    .write = (a->mem_info & VCPU_MEM_WRITE) != 0,
	    .ra = (unsigned)(a->mem_info >> VCPU_MEM_ADDR_SHIFT) & 15,
	    .rr = (unsigned)(a->mem_info >> VCPU_MEM_RET_SHIFT) & 15,
	};
	return q;
}

/* Taking the call-out: resume at rr's address (the pc map is looked up at
 * it - 1), rr zeroed (a scratch register: no host address for the guest),
 * mem_va the guest address; one more slow path. */
static inline void tc_mem_take(struct tc_vcpu *t, const struct tc_mem_req *q)
{
	struct vcpu_abi *a = t->abi;
	a->exit_host_pc = a->gpr[q->rr];
	a->gpr[q->rr] = 0;
	a->mem_va = a->gpr[q->ra];
	t->mem_slow++;
}

/* Served: the host address in mem_host and in the address register. */
static inline void tc_mem_served(struct vcpu_abi *a, const struct tc_mem_req *q, uint8_t *host)
{
	a->mem_host = (uint64_t)(uintptr_t)host;
	a->gpr[q->ra] = a->mem_host;
}

/* A VCPU_CO_STRING call-out's mem_info (vcpu_abi.h VCPU_STR_*): the
 * operation, the element size, the prefix and the source segment's base. */
struct tc_str_req {
	unsigned op, n;
	bool rep, repne;
	uint64_t seg;
};

static inline struct tc_str_req tc_str_req(const struct vcpu_abi *a)
{
	uint32_t info = (uint32_t)a->mem_info;
	struct tc_str_req q = {
	    .op = info & 0xff,
	    .n = (info >> 8) & 0xff,
	    .rep = (info & (VCPU_STR_REP | VCPU_STR_REPNE)) != 0,
	    .repne = (info & VCPU_STR_REPNE) != 0,
	    .seg = (info & VCPU_STR_FS)	  ? a->fs_base
		   : (info & VCPU_STR_GS) ? a->gs_base
					  : 0,
	};
	return q;
}

#endif
