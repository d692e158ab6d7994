/*
 * The memory call-out's fast path (tc_handlers.mem_fast, called by
 * runtime/tc/tc_fast.c before the guest's FPU state is saved): serve an
 * inline probe's miss from the soft-MMU's TLBs (mmu_tlb_fast: the first
 * level, the second level, the SMAP array) when the full path,
 * vm_callout_mem, would do exactly the same; decline everything else.
 * Built with -mgeneral-regs-only (runtime/vm/module.mk, `make
 * check-fastpath`): no call outside runtime/mmu/mmu_tlb.c and this file.
 *
 * After fast system calls not caught up yet (fx_n_sys/fx_n_ret non-zero),
 * the access is looked up and classified at the CPL vm_fx_sync will set
 * (fx_cpl), as the string call-out's fast path does (vm_string_fast); the
 * catching up waits for the next full call-out or exit.
 * Declined, since vm_callout_mem does more than translate for them:
 *  - a pending store to device memory (mmio_store_flush runs first);
 *  - an access crossing a page (two walks, maybe a split window).
 * The counts stay those of the full path: the miss is classified first
 * (st.probe_miss, what the probe's slot held) and also counted in
 * st.l2_served; tc_fast.c counts the call-out in tc_vcpu.mem_slow.
 */
#include "runtime/vm/vm_int.h"

/* Why the inline probe of [va, va + size) at privilege level cpl missed:
 * what its TLB slot held when the call-out came (before anything refills
 * it). */
enum vm_miss vm_probe_miss_kind(const struct vm *vm, unsigned cpl, gva_t va, uint32_t size,
				bool write)
{
	if ((va & (GUEST_PAGE_SIZE - 1)) + size > GUEST_PAGE_SIZE)
		return VM_MISS_CROSS;
	if (cpl != 3 && !(va >> 63))
		return VM_MISS_USER;
	const struct vcpu_tlb_entry *e =
	    &(cpl == 3 ? vm->tcv.abi->utlb : vm->tcv.abi->tlb)[VCPU_TLB_INDEX(va)];
	gva_t page = va & ~(gva_t)(GUEST_PAGE_SIZE - 1);
	if (e->tag_read == page || (!write && e->tag_write == page))
		return VM_MISS_PERM;
	if (e->tag_read == ~0ull)
		return VM_MISS_EMPTY;
	return VM_MISS_CONFLICT;
}

/* The CPL an access is checked at: after fast system calls not caught up
 * yet (fx_n_sys/fx_n_ret non-zero), the one vm_fx_sync will set (fx_cpl;
 * cpu_fx_sync: mmu_set_cpl_ac, abi->ac already current), else the MMU's.
 * The catching up waits for the next full call-out or exit, as it does
 * between the fast transitions themselves. */
static unsigned fast_cpl(const struct vm *vm, const struct vcpu_abi *a)
{
	return (a->fx_n_sys | a->fx_n_ret) ? a->fx_cpl : vm->mmu.cpl;
}

uint8_t *vm_callout_mem_fast(struct tc_vcpu *t, gva_t va, uint32_t size, bool write)
{
	struct vm *vm = t->opaque;
	const struct vcpu_abi *a = t->abi;
	enum vm_miss miss;
	uint8_t *host;

	if (vm->mmio_store.pending || (va & (GUEST_PAGE_SIZE - 1)) + size > GUEST_PAGE_SIZE)
		return NULL;
	unsigned cpl = fast_cpl(vm, a);
	miss = vm_probe_miss_kind(vm, cpl, va, size, write);
	host = mmu_tlb_fast_at(&vm->mmu, cpl, va, size, write);
	if (!host)
		return NULL;
	vm->st.probe_miss[miss]++;
	vm->st.l2_served[miss]++;
	return host;
}

/*
 * The string call-out's fast path (tc_handlers.str_fast, runtime/tc/
 * tc_strfast.c): one page of a string instruction's source or destination.
 * tc_string_run asks vm_callout_mem for the same bytes (a chunk inside one
 * page), which catches up fast system calls and flushes a pending device
 * store first (declined here), then looks in the first-level TLB
 * (mmu_host_access), and walks on a miss; mmu_tlb_fast_at serves what that
 * first look or a live second-level entry would give, at the same CPL and
 * SMAP state (the kernel TLB never maps a user page under SMAP; the SMAP
 * array only while AC = 1), never a watched page for a write, never device
 * memory.
 */
uint8_t *vm_string_fast(struct tc_vcpu *t, gva_t va, uint32_t size, bool write)
{
	struct vm *vm = t->opaque;
	const struct vcpu_abi *a = t->abi;
	uint64_t hits = vm->mmu.stats.tlb_hits;
	uint8_t *host;

	if (vm->mmio_store.pending)
		return NULL;
	host = mmu_tlb_fast_at(&vm->mmu, fast_cpl(vm, a), va, size, write);
	/* served from behind the first level: its second level, SMAP array
	 * or large pages (mmu_tlb_fast_at counted which) */
	if (host && vm->mmu.stats.tlb_hits == hits)
		vm->st.str_l2_pages++;
	return host;
}
