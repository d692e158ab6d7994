/*
 * The harness's string fast-path handler (tc_handlers.str_fast): guest
 * memory is host memory at the same address, so a page is served as
 * itself, unless the case made it fault (fault_page: the full path,
 * xh_mem, reports the fault) or the case runs without the fast path
 * (str_fast off: tc_string_run serves every string instruction).  Called
 * with the guest's FPU state live: built with -mgeneral-regs-only
 * (tests/xlat/module.mk).
 */
#include "tests/xlat/harness.h"

uint8_t *xh_str_fast(struct tc_vcpu *t, gva_t va, uint32_t size, bool write)
{
	const struct xh *h = t->opaque;
	gva_t last = va + size - 1;
	(void)write;
	if (!h->str_fast || size == 0 ||
	    (h->fault_page && ((va & GUEST_PAGE_MASK) == h->fault_page ||
			       (last & GUEST_PAGE_MASK) == h->fault_page)))
		return NULL;
	return (uint8_t *)(uintptr_t)va;
}
