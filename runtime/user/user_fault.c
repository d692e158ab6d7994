/*
 * Host faults of guest user code: what kind of access faulted (fetch, read,
 * write), the guest page walk for it, and either a lazy mapping of the
 * guest-physical page into the stub or a guest #PF with the walk's error
 * code and CR2.
 *
 * Invariants
 *  1. A page is mapped only after mmu_translate_info granted a user access of
 *     the faulting kind (so A, and D for a write, are set in the guest
 *     PTE as hardware would), with protections no wider than the guest's:
 *     PROT_WRITE only if every level allows writes, the leaf is dirty and
 *     the page holds no translated code; PROT_EXEC only without NX.
 *  2. A fault whose kind cannot be told is treated as a read: a write then
 *     faults again on the read-only mapping and is handled as a write.
 *  3. With cfg.scan_mask, a page is mapped PROT_EXEC only after its bytes,
 *     read at that moment, were scanned clean (user_scan.h) and the guest
 *     does not also let user code write it; otherwise a fetch from it is
 *     USER_EV_SENSITIVE, and no instruction of it runs on the host.
 *  4. Fault-around: with a page mapped for a granted fault, the other pages
 *     of its aligned window (cfg.around_pages, within one guest page table)
 *     are mapped in the same host call (ustub_mmap_batch) only if a probe
 *     walk (no A/D change) grants a user read, A is set at every level (so
 *     the guest's LRU aging never sees a page unused that user code used
 *     without a fault), the page is RAM, not mapped yet and not the stub's;
 *     with the same protections as rules 1 and 3 (page_prot): writable only
 *     if D is already set, otherwise the first write faults and sets D;
 *     with cfg.scan_mask, not executable until its first fetch scans it.
 */
#include <string.h>
#include <sys/mman.h>

#include "pretrans/base/log.h"
#include "runtime/user/user_int.h"
#include "runtime/user/user_scan.h"
#include "runtime/user/ustub.h"

enum acc { ACC_READ, ACC_WRITE, ACC_EXEC };

size_t user_fetch_insn(struct user_mode *u, gva_t rip, uint8_t *buf, size_t len)
{
	struct mmu_fault f;
	size_t got = 0;
	if (mmu_fetch(u->cfg.mmu, rip, buf, len, &got, &f) != BT_OK)
		return 0;
	return got;
}

/* Does the instruction at rip write the page holding addr? */
static bool insn_writes(struct user_mode *u, struct user_as *as, gva_t addr)
{
	const struct user_regs_struct *r = &as->stub.regs;
	uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
	size_t n = user_fetch_insn(u, r->rip, bytes, sizeof(bytes));
	ZydisDecodedInstruction di;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	const ZydisDecoder *dec = r->cs == 0x23 ? &u->dec32 : &u->dec64;
	if (!n || !ZYAN_SUCCESS(ZydisDecoderDecodeFull(dec, bytes, n, &di, ops)))
		return false;
	static __thread ZydisRegisterContext ctx;
	const ZydisRegister gprs[16] = {
	    ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RBX,
	    ZYDIS_REGISTER_RSP, ZYDIS_REGISTER_RBP, ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDI,
	    ZYDIS_REGISTER_R8,	ZYDIS_REGISTER_R9,  ZYDIS_REGISTER_R10, ZYDIS_REGISTER_R11,
	    ZYDIS_REGISTER_R12, ZYDIS_REGISTER_R13, ZYDIS_REGISTER_R14, ZYDIS_REGISTER_R15};
	const uint64_t vals[16] = {r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
				   r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};
	for (int i = 0; i < 16; i++) {
		ctx.values[gprs[i]] = vals[i];
		ctx.values[ZydisRegisterEncode(ZYDIS_REGCLASS_GPR32, (ZyanU8)i)] =
		    (uint32_t)vals[i];
	}
	ctx.values[ZYDIS_REGISTER_RIP] = r->rip;
	ctx.values[ZYDIS_REGISTER_EIP] = (uint32_t)r->rip;
	bool any_write = false;
	for (unsigned i = 0; i < di.operand_count; i++) {
		const ZydisDecodedOperand *op = &ops[i];
		if (op->type != ZYDIS_OPERAND_TYPE_MEMORY || op->mem.type != ZYDIS_MEMOP_TYPE_MEM)
			continue;
		bool w = (op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
		any_write |= w;
		ZyanU64 a;
		if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddressEx(&di, op, r->rip, &ctx, &a)))
			continue;
		if (op->mem.segment == ZYDIS_REGISTER_FS)
			a += r->fs_base;
		else if (op->mem.segment == ZYDIS_REGISTER_GS)
			a += r->gs_base;
		uint64_t size = op->size ? op->size / 8 : 1;
		/* push/call write below the stack pointer Zydis reports */
		uint64_t lo = a - (op->mem.base == ZYDIS_REGISTER_RSP && w ? 8 : 0);
		if ((addr & GUEST_PAGE_MASK) + GUEST_PAGE_SIZE > lo && addr < a + size + 8)
			return w;
	}
	return any_write;
}

static enum acc fault_kind(struct user_mode *u, struct user_as *as, gva_t addr, bool maperr,
			   bool exec_hint)
{
	gva_t rip = as->stub.regs.rip, page = addr & GUEST_PAGE_MASK;
	bool at_rip = page == (rip & GUEST_PAGE_MASK) ||
		      (page == (rip & GUEST_PAGE_MASK) + GUEST_PAGE_SIZE && addr - rip < 16);
	if (exec_hint)
		return ACC_EXEC;
	struct user_map *m = maperr ? NULL : user_map_lookup(as, page);
	if (m) {
		/* mapped: the access needed a permission the mapping lacks; a
		 * fetch happens before the instruction's data accesses */
		if (!(m->prot & PROT_EXEC) && at_rip)
			return ACC_EXEC;
		return ACC_WRITE;
	}
	if (at_rip)
		return ACC_EXEC;
	return insn_writes(u, as, addr) ? ACC_WRITE : ACC_READ;
}

static const unsigned acc_bits[] = {MMU_ACC_READ, MMU_ACC_WRITE, MMU_ACC_EXEC};

static enum bt_status map_access(struct user_mode *u, struct user_as *as, gva_t addr, enum acc kind,
				 bool *handled, struct user_event *ev);

enum bt_status user_fault(struct user_mode *u, struct user_as *as, gva_t addr, bool host_maperr,
			  bool exec_hint, bool *handled, struct user_event *ev)
{
	enum acc kind = fault_kind(u, as, addr, host_maperr, exec_hint);
	BT_TRY(map_access(u, as, addr, kind, handled, ev));
	if (!*handled && ev->kind == USER_EV_EXCEPTION && ev->vector == MMU_VEC_PF) {
		/* remember it: if the guest kernel resolves it and resumes the
		 * same instruction, the page is mapped before the stub runs */
		as->pf_pending = true;
		as->pf_addr = addr;
		as->pf_rip = as->stub.regs.rip;
		as->pf_kind = (uint8_t)kind;
	}
	return BT_OK;
}

enum bt_status user_prefault(struct user_mode *u, struct user_as *as)
{
	struct mmu_fault f = {0};
	gpa_t gpa;
	bool mmio = false, handled;
	struct user_event ev;
	if (!as->pf_pending)
		return BT_OK;
	as->pf_pending = false;
	if (u->cfg.abi->rip != as->pf_rip)
		return BT_OK; /* not going back to the faulting instruction */
	enum acc kind = (enum acc)as->pf_kind;
	BT_TRY(mmu_translate(u->cfg.mmu, as->pf_addr, acc_bits[kind] | MMU_ACC_USER | MMU_ACC_PROBE,
			     &gpa, &mmio, &f));
	if (f.pending || mmio)
		return BT_OK; /* still faults: the stub will say so */
	/* the instruction retries this access at once: A (and D) as hardware */
	BT_TRY(map_access(u, as, as->pf_addr, kind, &handled, &ev));
	if (handled)
		u->st.prefaults++;
	return BT_OK;
}

/*
 * May the stub execute guest page `page` (at gpa, executable for user code,
 * writable for it when `writable`)?  0 when it may, else the scan class that
 * says no (rule 3).  The bytes an instruction at the end of the page may
 * take from the next one are read through a probe walk (no A bit set);
 * without them the scan counts a pattern cut by the page end as a hit.
 */
static uint32_t code_check(struct user_mode *u, gva_t page, gpa_t gpa, bool writable)
{
	uint32_t mask = u->cfg.scan_mask;
	if (!mask)
		return 0;
	u->st.scans++;
	if (writable && (mask & USER_SCAN_WX)) {
		u->st.scan_hits++;
		return USER_SCAN_WX;
	}
	const uint8_t *bytes = guestmem_gpa_to_host(u->cfg.gm, gpa, GUEST_PAGE_SIZE);
	if (!bytes)
		return USER_SCAN_WX; /* not RAM: never mapped anyway */
	uint8_t next[USER_SCAN_TAIL];
	size_t next_len = 0;
	gpa_t ngpa;
	bool mmio = false;
	struct mmu_fault f = {0};
	if (mmu_translate(u->cfg.mmu, page + GUEST_PAGE_SIZE,
			  MMU_ACC_EXEC | MMU_ACC_USER | MMU_ACC_PROBE, &ngpa, &mmio, &f) == BT_OK &&
	    !f.pending && !mmio && guestmem_read(u->cfg.gm, ngpa, next, sizeof(next)) == BT_OK)
		next_len = sizeof(next);
	uint32_t cls = user_scan_page(bytes, next_len ? next : NULL, next_len, mask, NULL);
	if (cls)
		u->st.scan_hits++;
	return cls;
}

/* Is gpa one of the tables of its own walk? */
static bool own_table(const struct mmu_walk_info *w, gpa_t gpa)
{
	bool own = false;
	for (int i = 0; i < 4; i++)
		own |= w->tables[i] == gpa;
	return own;
}

/*
 * The protections of a stub mapping of guest page `page` at gpa, walked as
 * w (rules 1 and 3): PROT_READ; PROT_WRITE only if every level allows
 * writes, the leaf is dirty, the page is none of its own tables and not
 * watched; PROT_EXEC unless NX or the scan says no.  Returns that scan
 * class (0: none).  ahead (a page mapped ahead, rule 4): a page that would
 * need a scan is mapped without PROT_EXEC, unscanned; its first fetch
 * faults and scans it (most pages mapped ahead never run: scanning them
 * all made adaptive mode's fault handling slower than without).
 */
static uint32_t page_prot(struct user_mode *u, gva_t page, gpa_t gpa, const struct mmu_walk_info *w,
			  bool ahead, int *prot)
{
	int p = PROT_READ;
	uint32_t cls = 0;
	if (w->writable && w->dirty && !own_table(w, gpa) &&
	    !(guestmem_page_flags(u->cfg.gm, gpa) & GUESTMEM_PAGE_WATCHED))
		p |= PROT_WRITE;
	if (!w->nx && !(ahead && u->cfg.scan_mask)) {
		cls = code_check(u, page, gpa, w->writable);
		if (!cls)
			p |= PROT_EXEC;
	}
	*prot = p;
	return cls;
}

/* One page of a fault-around window. */
struct around_page {
	gva_t va;
	gpa_t gpa;
	uint64_t off; /* memfd offset */
	int prot;
	bool large;
	gpa_t tables[4];
};

/*
 * May neighbour `page` be mapped ahead (rule 4)?  Fills *p if so.  leaf:
 * the faulting page's last-level table (NULL for a large page), the
 * neighbour's too since the window is aligned within it: an entry there
 * that is not present, user and accessed rules the page out without a
 * walk (most neighbours of a demand-zero fault); the probe walk decides
 * for the others.
 */
static bool around_ok(struct user_mode *u, struct user_as *as, const uint64_t *leaf, gva_t page,
		      struct around_page *p)
{
	struct mmu_fault f = {0};
	struct mmu_walk_info w;
	const uint64_t need = MMU_PTE_P | MMU_PTE_US | MMU_PTE_A;
	if (leaf && (__atomic_load_n(&leaf[(page >> GUEST_PAGE_SHIFT) & 511], __ATOMIC_RELAXED) &
		     need) != need)
		return false;
	if (page >= USTUB_TASK_END || page == as->stub.base || user_map_lookup(as, page))
		return false;
	if (mmu_translate_info(u->cfg.mmu, page, MMU_ACC_READ | MMU_ACC_USER | MMU_ACC_PROBE, &w,
			       &f) != BT_OK ||
	    f.pending || w.mmio || !w.accessed)
		return false;
	p->va = page;
	p->gpa = w.gpa & GUEST_PAGE_MASK;
	if (guestmem_gpa_to_offset(u->cfg.gm, p->gpa, &p->off) != BT_OK)
		return false;
	page_prot(u, page, p->gpa, &w, true, &p->prot);
	p->large = w.page_shift > GUEST_PAGE_SHIFT;
	memcpy(p->tables, w.tables, sizeof(p->tables));
	return true;
}

/*
 * Map the faulting page (pages[0]) and whichever neighbours of its window
 * may be (rule 4): runs of pages adjacent in the stub and in the memfd with
 * the same protections become one entry of the batch gadget's table, at
 * most USTUB_BATCH_MAX per host call.
 */
static enum bt_status map_around(struct user_mode *u, struct user_as *as,
				 const struct around_page *fault)
{
	struct around_page pg[USTUB_BATCH_WINDOW];
	unsigned n = 0, win = u->cfg.around_pages;
	gva_t base = fault->va & ~((gva_t)win * GUEST_PAGE_SIZE - 1);
	const uint64_t *leaf = NULL;
	if (!fault->large && fault->tables[0] != ~0ull)
		leaf = guestmem_gpa_to_host(u->cfg.gm, fault->tables[0], GUEST_PAGE_SIZE);
	for (unsigned i = 0; i < win; i++) {
		gva_t va = base + (gva_t)i * GUEST_PAGE_SIZE;
		if (va == fault->va)
			pg[n++] = *fault;
		else if (around_ok(u, as, leaf, va, &pg[n]))
			n++;
	}
	if (n == 1)
		return user_map_page(u, as, fault->va, fault->gpa, fault->prot, fault->large,
				     fault->tables);
	uint64_t runs[USTUB_BATCH_WINDOW];
	unsigned nruns = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t idx = (pg[i].va - base) >> GUEST_PAGE_SHIFT;
		if (i && pg[i].va == pg[i - 1].va + GUEST_PAGE_SIZE &&
		    pg[i].off == pg[i - 1].off + GUEST_PAGE_SIZE && pg[i].prot == pg[i - 1].prot) {
			runs[nruns - 1] += 1ull << USTUB_BATCH_CNT_SHIFT; /* one page longer */
			continue;
		}
		runs[nruns++] = (uint64_t)pg[i].prot | idx << USTUB_BATCH_IDX_SHIFT |
				(pg[i].off >> GUEST_PAGE_SHIFT) << USTUB_BATCH_OFF_SHIFT;
	}
	unsigned calls = 0;
	for (unsigned i = 0; i < nruns; i += USTUB_BATCH_MAX, calls++)
		BT_TRY(ustub_mmap_batch(&as->stub, base, runs + i,
					BT_MIN(nruns - i, USTUB_BATCH_MAX)));
	for (unsigned i = 0; i < n; i++)
		BT_TRY(user_map_record(u, as, pg[i].va, pg[i].gpa, pg[i].prot, pg[i].large,
				       pg[i].tables));
	u->st.around += n - 1;
	u->st.batches += calls;
	u->st.calls_saved += n - calls;
	return BT_OK;
}

static enum bt_status map_access(struct user_mode *u, struct user_as *as, gva_t addr, enum acc kind,
				 bool *handled, struct user_event *ev)
{
	gva_t page = addr & GUEST_PAGE_MASK;
	struct mmu_fault f = {0};
	struct mmu_walk_info w;
	*handled = false;

	/* one walk: the grant (A, and D for a write) and the leaf's effective
	 * permissions and tables come from the same reading of the tables */
	BT_TRY(mmu_translate_info(u->cfg.mmu, addr, acc_bits[kind] | MMU_ACC_USER, &w, &f));
	if (f.pending) {
		u->st.guest_pf++;
		ev->kind = USER_EV_EXCEPTION;
		ev->vector = f.vector;
		ev->has_error = true;
		ev->error = f.vector == MMU_VEC_PF ? f.error_code : 0;
		ev->addr = f.addr;
		return BT_OK;
	}
	if (w.mmio) {
		bt_err(LOG_USER,
		       "guest user code at %#llx accessed device memory at %#llx (gpa %#llx): "
		       "user-mode MMIO is not supported",
		       (unsigned long long)as->stub.regs.rip, (unsigned long long)addr,
		       (unsigned long long)w.gpa);
		return BT_ERR_UNSUPPORTED;
	}
	if (page >= USTUB_TASK_END) {
		bt_err(LOG_USER,
		       "the guest maps user page %#llx, which a stub process cannot map (beyond "
		       "the host's user address space): see docs/user-direct.md",
		       (unsigned long long)page);
		return BT_ERR_UNSUPPORTED;
	}
	/* the stub's own code page gives way (user.c, rule 3) */
	if (page == as->stub.base)
		BT_TRY(user_stub_clear(u, as));
	gpa_t gpa = w.gpa & GUEST_PAGE_MASK;
	if (kind == ACC_WRITE && own_table(&w, gpa)) {
		bt_err(LOG_USER,
		       "the guest gives user code write access to one of its own page tables "
		       "(guest-physical %#llx at %#llx): not supported, see docs/user-direct.md",
		       (unsigned long long)gpa, (unsigned long long)page);
		return BT_ERR_UNSUPPORTED;
	}
	if (kind == ACC_WRITE && (guestmem_page_flags(u->cfg.gm, gpa) & GUESTMEM_PAGE_WATCHED)) {
		/* refused if it is a table of this very walk; otherwise
		 * translations on it die before the write can land, and a stale
		 * page-table watch on it ends */
		BT_TRY(user_unwatch(u, gpa, w.tables));
		guestmem_notify_write(u->cfg.gm, gpa | (addr & (GUEST_PAGE_SIZE - 8)), 8);
	}
	int prot;
	uint32_t cls = page_prot(u, page, gpa, &w, false, &prot);
	if (cls && kind == ACC_EXEC) {
		/* not mapped: the caller runs this code translated (a data
		 * access maps it, not executable) */
		u->st.sensitive++;
		ev->kind = USER_EV_SENSITIVE;
		ev->vector = 0;
		ev->has_error = false;
		ev->trap = false;
		ev->error = cls;
		ev->addr = page;
		return BT_OK;
	}
	if (kind == ACC_WRITE && !(prot & PROT_WRITE)) {
		bt_err(LOG_USER, "guest page %#llx stays read-only after a granted write",
		       (unsigned long long)page);
		return BT_ERR_INTERNAL;
	}
	if (as->pending_all || as->n_pending || as->n_dirty)
		BT_TRY(user_apply_pending(u, as)); /* user_unwatch may have flushed it */
	struct user_map *m = user_map_lookup(as, page);
	if (m && (prot & PROT_WRITE) && !(m->prot & PROT_WRITE))
		u->st.upgrades++;
	else
		u->st.maps++;
	struct around_page fp = {
	    .va = page, .gpa = gpa, .prot = prot, .large = w.page_shift > GUEST_PAGE_SHIFT};
	memcpy(fp.tables, w.tables, sizeof(fp.tables));
	if (!m && u->cfg.around_pages > 1 &&
	    guestmem_gpa_to_offset(u->cfg.gm, gpa, &fp.off) == BT_OK)
		BT_TRY(map_around(u, as, &fp));
	else
		BT_TRY(user_map_page(u, as, page, gpa, prot, fp.large, w.tables));
	*handled = true;
	return BT_OK;
}
