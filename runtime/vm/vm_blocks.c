/*
 * Finding the host code for a guest RIP: the code cache, then the
 * translation database (only after the block's guest bytes hash to what
 * the database recorded), then the translator.  Also the reactions to
 * guest writes into code pages and to guest TLB flushes, and the --learn
 * write-back.
 *
 * Invariants
 *  1. No block runs unless its guest bytes were checked against guest
 *     memory: database rows by hash at install, and every live block's
 *     physical pages are write-watched, so a write kills it first.
 *  2. Blocks are keyed by guest virtual address; a block is entered from
 *     the dispatcher only if its va still maps to the physical pages it was
 *     made from (checked again after every mapping epoch change), and a
 *     mapping epoch change unchains everything, so chained jumps never
 *     bypass that check.
 */
#include <string.h>

#include "pretrans/base/assert.h"
#include "pretrans/base/log.h"
#include "runtime/vm/vm_int.h"

static size_t src_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;
	struct mmu_fault f;
	size_t got = 0;
	if (mmu_fetch(&vm->mmu, va, buf, len, &got, &f) != BT_OK)
		return 0;
	return got;
}

/* Guest-physical page of the code byte at va, or false (with the fault). */
static bool code_page(struct vm *vm, gva_t va, unsigned extra, gpa_t *gpa, struct mmu_fault *f)
{
	bool mmio = false;
	f->pending = false;
	if (mmu_translate(&vm->mmu, va, MMU_ACC_EXEC | extra, gpa, &mmio, f) != BT_OK)
		return false;
	if (f->pending)
		return false;
	if (mmio) { /* executing device memory: treat as a fetch fault */
		f->pending = true;
		f->vector = MMU_VEC_PF;
		f->addr = va;
		f->error_code = MMU_PF_P | MMU_PF_I;
		return false;
	}
	*gpa &= GUEST_PAGE_MASK;
	return true;
}

/* Is b still what va maps to? */
static bool mapping_still_valid(struct vm *vm, struct tcache_block *b)
{
	struct mmu_fault f;
	gpa_t g0, g1;
	if (!code_page(vm, b->blk.guest_start, MMU_ACC_PROBE, &g0, &f) || g0 != b->gpa[0])
		return false;
	if (b->gpa[1] == TCACHE_NO_PAGE)
		return true;
	gva_t last = b->blk.guest_start + b->blk.guest_len - 1;
	return code_page(vm, last, MMU_ACC_PROBE, &g1, &f) && g1 == b->gpa[1];
}

/* --learn: the boot profile records every block installed, from the
 * database or translated, before anything chains it (docs/db.md "Packs"). */
static void learn_note(struct vm *vm, const struct bt_block *xb)
{
	static bool warned;
	enum bt_status s = tcdb_profile_note(vm->db, xb);
	if (s != BT_OK && !warned) {
		warned = true;
		bt_err(LOG_DB, "%s: the boot profile misses blocks: %s", vm->cfg.tcdb,
		       bt_status_str(s));
	}
}

/* The pages of a block about to be installed. */
static bool block_pages(struct vm *vm, gva_t va, uint32_t len, gpa_t *g0, gpa_t *g1,
			struct mmu_fault *f)
{
	if (!code_page(vm, va, 0, g0, f))
		return false;
	*g1 = TCACHE_NO_PAGE;
	gva_t last = va + (len ? len - 1 : 0);
	if ((last & GUEST_PAGE_MASK) != (va & GUEST_PAGE_MASK) && !code_page(vm, last, 0, g1, f))
		return false;
	return true;
}

static struct tcache_block *install(struct vm *vm, const struct bt_block *xb,
				    enum tcache_origin origin, struct mmu_fault *f)
{
	gpa_t g0, g1;
	struct tcache_block *b;
	if (!block_pages(vm, xb->guest_start, xb->guest_len, &g0, &g1, f))
		return NULL;
	enum bt_status s = tcache_install(vm->tc, xb, g0, g1, origin, &b);
	if (s != BT_OK) {
		bt_err(LOG_TC, "cannot install the block at %#llx: %s",
		       (unsigned long long)xb->guest_start, bt_status_str(s));
		return NULL;
	}
	b->map_epoch = vm->map_epoch;
	/* before a bzImage's kernel is identified (the decompressor, the
	 * kernel's first blocks) nothing goes into the database: the block
	 * counts as written back (vm_ident.c, invariant 2) */
	if (vm->db && vm->ident.state != VM_IDENT_ON)
		b->learned = 1;
	else if (vm->cfg.learn && vm->db)
		learn_note(vm, xb);
	return b;
}

/* --verify-db: the database block a is what the translator makes of the
 * same bytes now (b): code, exits, pc map and every field that decides how
 * the block runs and is chained. */
static bool same_translation(const struct bt_block *a, const struct bt_block *b)
{
	if (b->refusal != XLAT_OK || a->guest_len != b->guest_len || a->n_insns != b->n_insns ||
	    a->flags != b->flags || a->code_len != b->code_len ||
	    memcmp(a->code, b->code, a->code_len) != 0 || a->pcmap_len != b->pcmap_len ||
	    memcmp(a->pcmap, b->pcmap, a->pcmap_len) != 0 || a->n_exits != b->n_exits)
		return false;
	for (uint32_t i = 0; i < a->n_exits; i++) {
		const struct bt_exit *x = &a->exits[i], *y = &b->exits[i];
		if (x->kind != y->kind || x->patch_off != y->patch_off ||
		    x->stub_off != y->stub_off || x->target != y->target)
			return false;
	}
	return true;
}

/* tcdb_lookup_match: do the guest bytes at va, guest_len of them, hash to
 * guest_hash now?  (A version of another length or hash is another
 * version: the kernel patched its text, or another build.) */
static bool guest_bytes_match(void *opaque, gva_t va, uint32_t guest_len, uint64_t guest_hash)
{
	struct vm *vm = opaque;
	uint8_t bytes[4096];
	if (guest_len == 0 || guest_len > sizeof(bytes))
		return false;
	return src_read(vm, va, bytes, guest_len) == guest_len &&
	       xlat_hash_bytes(bytes, guest_len) == guest_hash;
}

/* A database block whose guest bytes match guest memory now: the first
 * such version of the boot profile, of the predicted patching, else the
 * database row. */
static struct tcache_block *from_db(struct vm *vm, gva_t rip, struct mmu_fault *f)
{
	struct tcdb_block row;
	uint64_t t0 = vm_ticks();
	struct tcache_block *b = NULL;
	unsigned tried;

	if (tcdb_lookup_match(vm->db, rip, guest_bytes_match, vm, &row, &tried) != BT_OK) {
		if (tried)
			vm->st.db_stale++; /* another build, or patched at run time */
		goto out;
	}
	if (vm->cfg.verify_db_blocks) {
		struct bt_block fresh;
		struct xlat_source src = {src_read, vm};
		if (xlat_translate(vm->xlat, &src, rip, &fresh) != BT_OK ||
		    !same_translation(&row.blk, &fresh)) {
			bt_err(LOG_TC,
			       "database block at %#llx differs from a run-time translation of the "
			       "same bytes: the database was built with other options",
			       (unsigned long long)rip);
			vm->st.db_stale++;
			goto out;
		}
		vm->st.db_verified++;
	}
	b = install(vm, &row.blk, TCACHE_FROM_DB, f);
	if (b) {
		vm->st.db_used++;
		vm->st.db_predicted += row.origin == TCDB_ORIGIN_PREDICTED;
	}
out:
	vm->st.ticks[VM_PH_DB] += vm_ticks() - t0;
	return b;
}

/* A module block from the database's templates (vm_kmod.c), instantiated
 * at rip over the guest bytes there.  Code of the kernel image is not a
 * module's (the same criterion as kmod_translated): it is not looked up,
 * so that a block of the image equal to some module's does not fetch that
 * module's pack. */
static struct tcache_block *from_kmod(struct vm *vm, gva_t rip, struct mmu_fault *f)
{
	uint8_t bytes[1024];
	uint64_t t0 = vm_ticks();
	struct tcache_block *b = NULL;
	struct mmu_fault pf;
	gpa_t g;
	if (!code_page(vm, rip, MMU_ACC_PROBE, &g, &pf) ||
	    (g >= vm->kernel_start && g < vm->kernel_end))
		goto out;
	size_t got = src_read(vm, rip, bytes, sizeof(bytes));
	struct bt_block xb;
	struct xlat_source gsrc = {src_read, vm};
	if (got && vm_kmod_find(vm, &gsrc, rip, bytes, got, &xb)) {
		if (vm->cfg.verify_db_blocks) { /* as for any database block */
			struct bt_block fresh;
			struct xlat_source src = {src_read, vm};
			if (xlat_translate(vm->xlat, &src, rip, &fresh) != BT_OK ||
			    !same_translation(&xb, &fresh)) {
				bt_err(
				    LOG_TC,
				    "module template instantiated at %#llx differs from a run-time "
				    "translation of the same bytes",
				    (unsigned long long)rip);
				vm->st.db_stale++;
				goto out;
			}
			vm->st.db_verified++;
		}
		b = install(vm, &xb, TCACHE_FROM_DB, f);
		if (b)
			vm->st.kmod_from_db++;
	}
out:
	vm->st.ticks[VM_PH_DB] += vm_ticks() - t0;
	return b;
}

enum xlat_kind { XK_KERNEL, XK_USER, XK_STEP, XK_KSTEP };

static struct tcache_block *translate(struct vm *vm, gva_t rip, enum xlat_kind kind,
				      struct mmu_fault *f)
{
	bool user = kind == XK_USER || kind == XK_STEP;
	struct xlat_ctx *x = kind == XK_STEP	? vm->xlat_step
			     : kind == XK_KSTEP ? vm->xlat_kstep
			     : user		? vm->xlat_user
						: vm->xlat;
	struct bt_block xb;
	struct xlat_source src = {src_read, vm};
	uint64_t t0 = vm_ticks();
	struct tcache_block *b = NULL;

	/* a user block is also kept as a template for other address spaces
	 * (user_relocate): the same block, plus its records */
	struct xlat_tmpl tm;
	enum xlat_tmpl_result tres = XLAT_TMPL_NOT_RELOC;
	enum bt_status s = kind == XK_USER ? xlat_translate_tmpl(x, &src, rip, &xb, &tm, &tres)
					   : xlat_translate(x, &src, rip, &xb);
	if (s != BT_OK) {
		bt_err(LOG_XLAT, "translator failed at %#llx: %s", (unsigned long long)rip,
		       bt_status_str(s));
		goto out;
	}
	if (xb.refusal != XLAT_OK) {
		vm->st.refused++;
		if (xb.refusal == XLAT_REFUSE_NOBYTES) {
			/* the first byte that could not be fetched: rip, or the
			 * next page for an instruction that straddles into it */
			gpa_t g;
			code_page(vm, xb.refusal_addr, 0, &g, f); /* reports the fetch fault */
		} else if ((xb.refusal == XLAT_REFUSE_UNDECODABLE ||
			    xb.refusal == XLAT_REFUSE_NOT_ADVERTISED) &&
			   xb.refusal_addr == rip) {
			/* undecodable, or an extension the vCPU's CPUID does not
			 * advertise: #UD, as on a CPU without it */
			vm->xlat_not_advertised = xb.refusal == XLAT_REFUSE_NOT_ADVERTISED;
			f->pending = true; /* the caller raises #UD */
			f->vector = CPU_EXC_UD;
			f->addr = rip;
			f->error_code = 0;
		} else {
			bt_err(LOG_XLAT, "cannot translate the guest code at %#llx (%s at %#llx)",
			       (unsigned long long)rip, xlat_refusal_str(xb.refusal),
			       (unsigned long long)xb.refusal_addr);
		}
		goto out;
	}
	if (user || kind == XK_KSTEP) { /* never stored, never learned */
		gpa_t g0, g1;
		bool step = kind == XK_STEP || kind == XK_KSTEP;
		if (block_pages(vm, xb.guest_start, xb.guest_len, &g0, &g1, f) &&
		    (step ? tcache_install_step(vm->tc, &xb, g0, g1, user, &b)
			  : tcache_install_user(vm->tc, &xb, g0, g1, &b)) != BT_OK) {
			bt_err(LOG_TC, "cannot install the %s block at %#llx",
			       step ? "one-instruction" : "user", (unsigned long long)rip);
			b = NULL;
		}
		if (b && user)
			vm->st.user_translated++;
		if (b && tres == XLAT_TMPL_OK &&
		    (s = ureloc_add(vm->ureloc, g0 | (rip & (GUEST_PAGE_SIZE - 1)), &tm, &xb)) !=
			BT_OK)
			bt_warn(LOG_TC, "cannot keep the user block at %#llx as a template: %s",
				(unsigned long long)rip, bt_status_str(s));
	} else {
		b = install(vm, &xb, TCACHE_FROM_RUNTIME, f);
		if (b)
			vm->st.translated++;
		/* kernel code outside the image: a module's (or other code the
		 * kernel made at run time) */
		if (b && vm->kernel_end &&
		    (b->gpa[0] < vm->kernel_start || b->gpa[0] >= vm->kernel_end))
			vm->st.kmod_translated++;
	}
out:
	vm->st.ticks[VM_PH_TRANSLATE] += vm_ticks() - t0;
	return b;
}

struct tcache_block *vm_block_get(struct vm *vm, gva_t rip, struct mmu_fault *fault)
{
	fault->pending = false;
	struct tcache_block *b = tcache_lookup(vm->tc, rip);
	if (b && b->map_epoch != vm->map_epoch) {
		if (mapping_still_valid(vm, b)) {
			b->map_epoch = vm->map_epoch;
		} else {
			tcache_invalidate_block(vm->tc, b);
			vm->st.mapping_flushes++;
			b = NULL;
		}
	}
	if (b)
		return b;
	if (vm->ident.state == VM_IDENT_WAIT)
		vm_ident_check(vm, rip);
	bool db_on = vm->ident.state == VM_IDENT_ON;
	if (vm->db && db_on && (b = from_db(vm, rip, fault)) != NULL)
		return b;
	if (fault->pending)
		return NULL;
	if (vm->kmod && db_on && (b = from_kmod(vm, rip, fault)) != NULL)
		return b;
	if (fault->pending)
		return NULL;
	return translate(vm, rip, XK_KERNEL, fault);
}

/* code_page for user code through vm->itlb: a page found executable for
 * user code in this address space since its last flush (invlpg, CR3 load,
 * flush of everything) is not walked again, as a TLB would keep it. */
static bool user_code_page(struct vm *vm, gva_t va, gpa_t *gpa, struct mmu_fault *f)
{
	gva_t page = va & GUEST_PAGE_MASK;
	uint64_t tag = vm->tcv.abi->uibl_tag;
	struct vm_itlb_slot *s = &vm->itlb[(page >> GUEST_PAGE_SHIFT) % VM_ITLB_SLOTS];
	f->pending = false;
	if (s->page == page && s->tag == tag) {
		*gpa = s->gpa;
		return true;
	}
	if (!code_page(vm, va, 0, gpa, f))
		return false;
	s->page = page;
	s->tag = tag;
	s->gpa = *gpa;
	return true;
}

/* A user block made from a template (xb, for rip on guest-physical page
 * g0): with --verify-db re-translated and compared first (*verified, or
 * *differ and NULL: the miss translates), then installed as a translation
 * is (hashed over the bytes it was made from, its pages write-watched). */
static struct tcache_block *install_user_tmpl(struct vm *vm, gva_t rip, gpa_t g0,
					      const struct bt_block *xb, const char *from,
					      uint64_t *verified, uint64_t *differ,
					      struct mmu_fault *f)
{
	struct tcache_block *b = NULL;
	gpa_t g1;
	if (vm->cfg.verify_db_blocks) {
		struct bt_block fresh;
		struct xlat_source src = {src_read, vm};
		if (xlat_translate(vm->xlat_user, &src, rip, &fresh) != BT_OK ||
		    !same_translation(xb, &fresh)) {
			bt_err(LOG_TC,
			       "user block %s instantiated at %#llx differs from a run-time "
			       "translation of the same bytes: translated instead",
			       from, (unsigned long long)rip);
			++*differ;
			return NULL;
		}
		++*verified;
	}
	if (!block_pages(vm, rip, xb->guest_len, &g0, &g1, f))
		return NULL;
	if (tcache_install_user(vm->tc, xb, g0, g1, &b) != BT_OK) {
		bt_err(LOG_TC, "cannot install the user block at %#llx", (unsigned long long)rip);
		return NULL;
	}
	return b;
}

/*
 * A user block from the template of the same guest-physical code (page and
 * offset) translated earlier, maybe for another address space at another
 * virtual address (runtime/ureloc/ureloc.h: the bytes at rip are read and
 * checked now; the result is what the translator would make of them).
 */
static struct tcache_block *user_relocate(struct vm *vm, gva_t rip, gpa_t g0, struct mmu_fault *f)
{
	struct bt_block xb;
	struct xlat_source src = {src_read, vm};
	uint64_t t0 = vm_ticks();
	struct tcache_block *b = NULL;

	if (ureloc_find(vm->ureloc, g0 | (rip & (GUEST_PAGE_SIZE - 1)), rip, &src, &xb)) {
		b = install_user_tmpl(vm, rip, g0, &xb, "template", &vm->st.user_reloc_verified,
				      &vm->st.user_reloc_differ, f);
		if (b)
			vm->st.user_relocated++;
	}
	t0 = vm_ticks() - t0;
	vm->st.ticks[VM_PH_TRANSLATE] += t0;
	vm->st.user_reloc_ticks += t0;
	return b;
}

/*
 * A user block from a template of the database (vm_udb.c: a --learn boot's
 * user templates, found by the bytes at rip, instantiated there), kept in
 * the in-run store too, so that other address spaces running the same
 * physical code relocate it from there.  Counted as the database phase.
 */
static struct tcache_block *user_from_db(struct vm *vm, gva_t rip, gpa_t g0, struct mmu_fault *f)
{
	uint8_t bytes[1024];
	struct bt_block xb;
	uint64_t t0 = vm_ticks();
	struct tcache_block *b = NULL;
	size_t got = src_read(vm, rip, bytes, sizeof(bytes));
	const struct xlat_tmpl *t = got ? vm_udb_find(vm, rip, bytes, got, &xb) : NULL;
	if (t)
		b = install_user_tmpl(vm, rip, g0, &xb, "database template",
				      &vm->st.user_db_verified, &vm->st.user_db_differ, f);
	if (b) {
		vm->st.user_from_db++;
		gpa_t gpa = g0 | (rip & (GUEST_PAGE_SIZE - 1));
		/* the binder's template, not a copy (vm_udb.c invariant 4) */
		enum bt_status s = ureloc_add_ref(vm->ureloc, gpa, t, &xb);
		if (s != BT_OK)
			bt_warn(LOG_TC, "cannot keep the user block at %#llx as a template: %s",
				(unsigned long long)rip, bt_status_str(s));
	}
	t0 = vm_ticks() - t0;
	vm->st.ticks[VM_PH_DB] += t0;
	vm->st.user_db_ticks += t0;
	return b;
}

/*
 * vm_block_get for guest user code (CPL 3, translated user mode): a user
 * block is looked up by RIP and the guest-physical page RIP maps to now (a
 * walk with the user's rights, which is also the fetch check, kept by
 * user_code_page until the space's next flush), so no block of
 * another address space, or of a page since unmapped, can run.  A miss
 * tries the in-run template store (ureloc), then the database's user
 * templates (vm_udb.c), then translates.
 */
static struct tcache_block *user_block_get(struct vm *vm, gva_t rip, enum xlat_kind kind,
					   struct mmu_fault *fault)
{
	gpa_t g0, g1;
	fault->pending = false;
	if (!user_code_page(vm, rip, &g0, fault))
		return NULL;
	struct tcache_block *b = kind == XK_STEP ? tcache_lookup_step(vm->tc, rip, g0)
						 : tcache_lookup_user(vm->tc, rip, g0);
	if (b && b->gpa[1] != TCACHE_NO_PAGE) {
		if (!user_code_page(vm, b->blk.guest_start + b->blk.guest_len - 1, &g1, fault))
			return NULL;
		if (g1 != b->gpa[1]) {
			tcache_invalidate_block(vm->tc, b);
			vm->st.mapping_flushes++;
			b = NULL;
		}
	}
	if (b)
		return b;
	if (kind == XK_USER && (b = user_relocate(vm, rip, g0, fault)) != NULL)
		return b;
	if (fault->pending)
		return NULL;
	if (kind == XK_USER && vm->udb && vm->ident.state == VM_IDENT_ON &&
	    (b = user_from_db(vm, rip, g0, fault)) != NULL)
		return b;
	if (fault->pending)
		return NULL;
	return translate(vm, rip, kind, fault);
}

struct tcache_block *vm_block_get_user(struct vm *vm, gva_t rip, struct mmu_fault *fault)
{
	return user_block_get(vm, rip, XK_USER, fault);
}

struct tcache_block *vm_block_get_step(struct vm *vm, gva_t rip, struct mmu_fault *fault)
{
	fault->pending = false;
	if (vm->cpu.cpl != 3) /* translated afresh each time: kernel stepping is rare */
		return translate(vm, rip, XK_KSTEP, fault);
	return user_block_get(vm, rip, XK_STEP, fault);
}

/* The live user block at va in the current address space, or NULL (a
 * probe walk: no accessed bit, no fault). */
struct tcache_block *vm_user_block_at(struct vm *vm, gva_t va)
{
	struct mmu_fault f;
	gpa_t g0;
	if (!code_page(vm, va, MMU_ACC_PROBE, &g0, &f))
		return NULL;
	return tcache_lookup_user(vm->tc, va, g0);
}

/* guestmem hook: a write is about to land on a page holding translated code. */
void vm_code_write(void *opaque, gpa_t gpa, size_t len)
{
	struct vm *vm = opaque;
	user_on_write(vm->user, gpa, len); /* page tables user stubs map through */
	gpa_t end = gpa + (len ? len : 1);
	for (gpa_t p = gpa & GUEST_PAGE_MASK; p < end; p += GUEST_PAGE_SIZE) {
		/* only the blocks whose bytes the write meets: Linux patches
		 * one site at a time (text_poke), ~17 blocks a page */
		gpa_t lo = gpa > p ? gpa : p;
		gpa_t hi = end < p + GUEST_PAGE_SIZE ? end : p + GUEST_PAGE_SIZE;
		unsigned n = tcache_invalidate_range(vm->tc, lo, hi - lo);
		if (n) {
			vm->st.smc_pages++;
			vm->st.smc_blocks += n;
		}
		user_write_done(vm->user, p);
	}
}

/*
 * One revalidation (new_epoch): the large pages (2 MiB, 1 GiB) its walks
 * found.  Every 4 KiB page inside one is reached through the same entries
 * at every level, so a probe walk of it passes or fails the same checks
 * (canonical, present, reserved bits, U/S, XD, SMEP: all read from those
 * entries) and lands at the same offset of the same frame: one walk answers
 * for all of them (Linux maps its text with 2 MiB pages: a revalidation of
 * ~3,000 code pages walked each).  Only RAM-ness depends on the page
 * itself, and is checked per page as code_page does.  Valid for one
 * revalidation only: the guest's page tables cannot change during it.
 */
#define LEAF_MEMO 8
struct reval {
	struct vm *vm;
	struct {
		gva_t va; /* the large page's first address */
		gpa_t gpa;
		uint64_t size; /* 0: unused */
	} leaf[LEAF_MEMO];
	unsigned next;
};

/* The guest-physical page kernel code at `page` maps to now, ~0 if none. */
static gpa_t kernel_code_gpa(void *opaque, gva_t page)
{
	struct reval *r = opaque;
	struct vm *vm = r->vm;
	vm->st.epoch_pages++;
	for (unsigned i = 0; i < LEAF_MEMO; i++)
		if (r->leaf[i].size && page - r->leaf[i].va < r->leaf[i].size) {
			gpa_t g = r->leaf[i].gpa + (page - r->leaf[i].va);
			return guestmem_is_ram(vm->gm, g, 1) ? g : ~(gpa_t)0;
		}
	struct mmu_walk_info w;
	struct mmu_fault f;
	vm->st.epoch_walks++;
	if (mmu_translate_info(&vm->mmu, page, MMU_ACC_EXEC | MMU_ACC_PROBE, &w, &f) != BT_OK ||
	    f.pending || w.mmio)
		return ~(gpa_t)0; /* as code_page: no mapping, or device memory */
	if (w.page_shift > GUEST_PAGE_SHIFT) {
		uint64_t size = 1ull << w.page_shift;
		unsigned i = r->next++ % LEAF_MEMO;
		r->leaf[i].va = page & ~(size - 1);
		r->leaf[i].gpa = w.gpa & ~(size - 1);
		r->leaf[i].size = size;
	}
	return w.gpa & GUEST_PAGE_MASK;
}

static void new_epoch(struct vm *vm)
{
	struct reval r = {.vm = vm};
	vm->map_epoch++;
	vm->prev = NULL;
	vm->st.epochs++;
	tcache_uibl_forget(vm->tc); /* a fresh tag for the current space too */
	vm->st.mapping_flushes += tcache_revalidate_pages(vm->tc, kernel_code_gpa, &r);
}

/* After a CR3 load: if the kernel half of the new PML4 is the same as the
 * old one, kernel code mappings are unchanged (a guest that changes kernel
 * mappings flushes them with invlpg or a global flush, as Linux does): only
 * lower-half kernel blocks are suspect. */
static void cr3_loaded(struct vm *vm)
{
	uint64_t hi[256];
	gpa_t root = vm->mmu.cr3 & MMU_PTE_ADDR_MASK;
	if (guestmem_read(vm->gm, root + 256 * 8, hi, sizeof(hi)) == BT_OK &&
	    memcmp(hi, vm->pml4_hi, sizeof(hi)) == 0) {
		if (tcache_live_low(vm->tc))
			vm->st.mapping_flushes += tcache_invalidate_va(vm->tc, 0, 1ull << 47);
		return;
	}
	memcpy(vm->pml4_hi, hi, sizeof(hi));
	new_epoch(vm);
}

/* soft-MMU hook: the guest flushed TLB entries, so code mappings may change. */
void vm_mmu_flush(void *opaque, enum mmu_flush_kind kind, gva_t va)
{
	struct vm *vm = opaque;
	user_on_flush(vm->user, kind, va);
	switch (kind) {
	case MMU_FLUSH_INVLPG: {
		/* a 2 MiB window: the page may have been part of a large page.
		 * User blocks stay (tcache.h invariant 5: found by the page
		 * their RIP maps to when entered, chained within their pages);
		 * only user IBL entries into the window go. */
		gva_t lo = va & ~((1ull << 21) - 1), hi = lo + (1ull << 21);
		if ((va >> 63) || tcache_live_low(vm->tc)) /* kernel blocks there */
			vm->st.mapping_flushes += tcache_invalidate_va(vm->tc, lo, hi);
		tcache_uibl_drop(vm->tc, lo, hi);
		memset(vm->itlb, 0xff, sizeof(vm->itlb)); /* user code pages: walk again */
		return;
	}
	case MMU_FLUSH_NONGLOBAL:
		/* A CR3 load.  User blocks stay: they are found by the physical
		 * page their RIP maps to (vm_block_get_user) and chain only
		 * within their own pages (tcache.h invariant 5); only the user
		 * IBL table, which names blocks by virtual address, goes. */
		tcache_uibl_clear(vm->tc);
		cr3_loaded(vm);
		return;
	case MMU_FLUSH_PCID:
		/* A CR3 load to another PCID: the user IBL entries move with
		 * the PCID, as the soft-MMU's TLB entries do (tcache.h
		 * invariant 6) */
		tcache_uibl_switch(vm->tc, MMU_PCID_OLD(va), MMU_PCID_NEW(va),
				   (va & MMU_PCID_KEPT) != 0);
		cr3_loaded(vm);
		return;
	case MMU_FLUSH_ALL:
		new_epoch(vm);
		return;
	}
}

/* --learn: every live run-time translation, unpatched, and the user templates
 * kept (vm_udb.c), in one transaction. */
struct learn_ctx {
	struct vm *vm;
	enum bt_status s;
};

static void learn_one(void *opaque, struct tcache_block *b)
{
	struct learn_ctx *lc = opaque;
	if (lc->s != BT_OK || b->origin != TCACHE_FROM_RUNTIME || b->learned || b->user || b->step)
		return;
	uint8_t *code = malloc(b->blk.code_len);
	if (!code) {
		lc->s = BT_ERR_NOMEM;
		return;
	}
	memcpy(code, b->blk.code, b->blk.code_len);
	/* store the block as the translator made it: exits unchained */
	for (uint32_t i = 0; i < b->blk.n_exits; i++) {
		const struct bt_exit *e = &b->blk.exits[i];
		if (e->patch_off == UINT32_MAX)
			continue;
		int32_t rel = (int32_t)e->stub_off - (int32_t)(e->patch_off + 4);
		memcpy(code + e->patch_off, &rel, 4);
	}
	struct bt_block xb = b->blk;
	xb.code = code;
	lc->s = tcdb_learn_block(lc->vm->db, &xb);
	free(code);
	if (lc->s == BT_OK) {
		b->learned = 1;
		lc->vm->st.learned++;
	}
}

enum bt_status vm_learn(struct vm *vm)
{
	struct learn_ctx lc = {vm, BT_OK};
	BT_TRY(tcdb_learn_begin(vm->db));
	tcache_for_each(vm->tc, learn_one, &lc);
	if (lc.s == BT_OK)
		lc.s = vm_udb_write(vm); /* the user templates, same transaction */
	if (lc.s != BT_OK)
		return lc.s; /* the transaction is rolled back by tcdb_close */
	return tcdb_learn_commit(vm->db);
}
