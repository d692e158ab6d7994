/*
 * The translated-code test harness (see harness.h).  Owns a vCPU, a code
 * cache, a translator context and a linear block table.
 *
 * Invariants
 *  1. Soft-MMU is the identity: every slow-path access returns va itself
 *     (and fills the TLB with addend 0) unless it touches fault_page.
 *  2. A direct exit is chained (its rel32 patched) only after its target
 *     block exists; IBL entries are filled for every block entered.
 */
#include "tests/xlat/harness.h"
#include "pretrans/xcheck/xcheck.h"

#include <asm/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void xh_native_asm(struct xh_state *st, const void *code, uint64_t fs, uint64_t gs,
		   uint64_t fs_orig, uint64_t gs_restore);

static int xh_mem(struct tc_vcpu *t, gva_t va, uint32_t size, bool write, uint8_t **host)
{
	struct xh *h = t->opaque;
	(void)write;
	h->n_slow++;
	gva_t last = va + (size ? size - 1 : 0);
	if (h->fault_page &&
	    ((va & GUEST_PAGE_MASK) == h->fault_page || (last & GUEST_PAGE_MASK) == h->fault_page))
		return 1;
	if ((va & GUEST_PAGE_MASK) == (last & GUEST_PAGE_MASK))
		tc_tlb_set(t, va, 0, true, true);
	*host = (uint8_t *)(uintptr_t)va;
	return 0;
}

static size_t xh_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	struct xh *h = opaque;
	if (va < h->code_lo || va >= h->code_hi)
		return 0;
	size_t n = BT_MIN(len, (size_t)(h->code_hi - va));
	memcpy(buf, (const void *)(uintptr_t)va, n);
	return n;
}

enum bt_status xh_init(struct xh *h, gva_t code_lo, gva_t code_hi, uint32_t xlat_flags)
{
	memset(h, 0, sizeof(*h));
	h->code_lo = code_lo;
	h->code_hi = code_hi;
	h->chain = true;
	struct tc_handlers hd = {.mem = xh_mem, .str_fast = xh_str_fast};
	struct xlat_options o = {.flags = xlat_flags, .checker = &xcheck_checker_ops};
	BT_TRY(tc_vcpu_init(&h->vcpu, &hd, h));
	h->blocks = calloc(XH_MAX_BLOCKS, sizeof(*h->blocks));
	if (!h->blocks)
		goto err_fini;
	if (tc_cache_create(64u << 20, &h->cache) != BT_OK)
		goto err_free;
	if (xlat_create(&o, &h->ctx) != BT_OK)
		goto err_cache;
	h->vcpu.abi->irq = VCPU_IRQ_IF;
	return tc_vcpu_activate(&h->vcpu);
err_cache:
	tc_cache_destroy(h->cache);
err_free:
	free(h->blocks);
err_fini:
	tc_vcpu_fini(&h->vcpu);
	return BT_ERR_NOMEM;
}

void xh_fini(struct xh *h)
{
	xlat_destroy(h->ctx);
	tc_cache_destroy(h->cache);
	for (uint32_t i = 0; i < h->n_blocks; i++)
		free(h->blocks[i].pcmap);
	free(h->blocks);
	tc_vcpu_fini(&h->vcpu);
}

void xh_reset(struct xh *h)
{
	for (uint32_t i = 0; i < h->n_blocks; i++)
		free(h->blocks[i].pcmap);
	h->n_blocks = 0;
	tc_cache_reset(h->cache);
	tc_ibl_flush(&h->vcpu);
}

static struct xh_block *find(struct xh *h, gva_t va)
{
	for (uint32_t i = 0; i < h->n_blocks; i++)
		if (h->blocks[i].start == va)
			return &h->blocks[i];
	return NULL;
}

enum xh_result xh_block(struct xh *h, gva_t va, struct xh_block **out)
{
	struct xh_block *b = find(h, va);
	if (b) {
		*out = b;
		return XH_OK;
	}
	if (h->n_blocks >= XH_MAX_BLOCKS)
		return XH_INTERNAL;
	struct xlat_source src = {.read = xh_read, .opaque = h};
	struct bt_block xb;
	if (xlat_translate(h->ctx, &src, va, &xb) != BT_OK)
		return XH_INTERNAL;
	if (xb.refusal != XLAT_OK) {
		h->last_refusal = xb.refusal;
		h->last_rip = xb.refusal_addr;
		return XH_REFUSED;
	}
	b = &h->blocks[h->n_blocks];
	if (tc_cache_add(h->cache, xb.code, xb.code_len, &b->rx) != BT_OK)
		return XH_INTERNAL;
	h->n_blocks++;
	b->start = va;
	b->code_len = xb.code_len;
	b->flags = xb.flags;
	b->n_exits = xb.n_exits;
	memcpy(b->exits, xb.exits, sizeof(b->exits));
	b->pcmap = malloc(xb.pcmap_len ? xb.pcmap_len : 1);
	if (!b->pcmap)
		return XH_INTERNAL;
	memcpy(b->pcmap, xb.pcmap, xb.pcmap_len);
	b->pcmap_len = xb.pcmap_len;
	tc_ibl_set(&h->vcpu, va, b->rx);
	*out = b;
	return XH_OK;
}

void xh_irq_request(struct tc_vcpu *t)
{
	__atomic_or_fetch((uint8_t *)&t->abi->irq + 1, VCPU_IRQ_REQ >> 8, __ATOMIC_SEQ_CST);
}

enum xh_result xh_run(struct xh *h, gva_t start, gva_t stop, uint64_t max_exits)
{
	struct vcpu_abi *a = h->vcpu.abi;
	gva_t rip = start;
	struct xh_block *from = NULL;
	uint32_t from_exit = 0;
	bool after_irq = false; /* the last exit was an interrupt exit */
	for (uint64_t n = 0; n < max_exits; n++) {
		if (rip == stop)
			return XH_OK;
		struct xh_block *b;
		enum xh_result r = xh_block(h, rip, &b);
		if (r != XH_OK)
			return r;
		if (h->chain && from && from_exit < from->n_exits &&
		    from->exits[from_exit].patch_off != ~0u && !(b->flags & XLAT_BLOCK_TWO_PAGES)) {
			if (tc_cache_patch_rel32(h->cache, from->rx,
						 from->exits[from_exit].patch_off, b->rx) == BT_OK)
				h->n_chained++;
		}
		h->n_runs++;
		if (h->irq_every && h->n_runs % h->irq_every == 0 && !after_irq)
			xh_irq_request(&h->vcpu);
		after_irq = false;
		int rc = tc_run(&h->vcpu, b->rx);
		if (rc == TC_EXIT_FAULT) {
			h->last_rip = a->exit_host_pc;
			return XH_FAULT;
		}
		unsigned kind = VCPU_EXIT_KIND(a->exit_info);
		from_exit = VCPU_EXIT_INDEX(a->exit_info);
		from = find(h, a->exit_block);
		/* a direct or PRIV exit's stub stores no target (XLAT_VERSION
		 * 10): the exit record of the block the tail named has it */
		if (kind == XLAT_EXIT_IRQ) {
			rip = a->exit_block;
		} else if (kind == XLAT_EXIT_INDIRECT || kind == XLAT_EXIT_RET) {
			rip = a->exit_target;
		} else {
			if (!from || from_exit >= from->n_exits ||
			    from->exits[from_exit].kind != kind)
				return XH_INTERNAL;
			rip = from->exits[from_exit].target;
		}
		h->last_rip = rip;
		if (kind == XLAT_EXIT_PRIV)
			return XH_PRIV;
		if (kind == XLAT_EXIT_IRQ) {
			/* nothing of the block ran: its guest start is the target */
			if (!h->irq_resume)
				return XH_IRQ;
			/* the stub stores no target: the exit record and the
			 * block the tail named must agree */
			if (!from || from_exit >= from->n_exits ||
			    from->exits[from_exit].kind != XLAT_EXIT_IRQ ||
			    from->exits[from_exit].target != rip)
				return XH_INTERNAL;
			h->n_irqs++;
			after_irq = true;
			__atomic_store_n((uint8_t *)&a->irq + 1, 0, __ATOMIC_SEQ_CST);
			from = NULL;
		}
	}
	return XH_STEPS;
}

void xh_native(struct xh_state *st, const void *code, uint64_t fs_base, uint64_t gs_base,
	       uint64_t restore_gs)
{
	unsigned long fs_orig = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_orig);
	xh_native_asm(st, code, fs_base, gs_base, fs_orig, restore_gs);
}

enum xh_result xh_fault_restore(struct xh *h)
{
	struct vcpu_abi *a = h->vcpu.abi;
	uint64_t pc = a->exit_host_pc;
	for (uint32_t i = 0; i < h->n_blocks; i++) {
		struct xh_block *b = &h->blocks[i];
		uint64_t lo = (uint64_t)(uintptr_t)b->rx;
		if (pc <= lo || pc > lo + b->code_len)
			continue;
		gva_t rip;
		uint32_t spilled;
		if (xlat_pcmap_lookup(b->pcmap, b->pcmap_len, b->start, (uint32_t)(pc - lo - 1),
				      &rip, &spilled) != BT_OK)
			return XH_INTERNAL;
		tc_restore_spills(&h->vcpu, rip, spilled);
		return XH_OK;
	}
	return XH_INTERNAL;
}
