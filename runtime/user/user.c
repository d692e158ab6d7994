/*
 * Guest address spaces as stub processes: which stub runs which CR3, the
 * table of pages each stub maps, flushes, and the run loop that turns stub
 * stops into guest events (user.h has the coherence rules).
 *
 * Address-space states (function for each transition):
 *
 *   FREE --user_enter, new CR3 [get_as: spawn or reuse LRU]--> LIVE(epoch e)
 *   LIVE(e) --paging mode change [user_on_flush(ALL): epoch++]--> STALE
 *   STALE --user_enter [flush_as: unmap all]--> LIVE(current epoch)
 *   LIVE --invlpg [user_on_flush], page becomes code [user_on_protect]:
 *        queue, write to a watched page table [user_on_write]: copy it-->
 *        LIVE with pending drops / dirty tables --user_enter
 *        [user_apply_pending: check_dirty, drops]--> LIVE
 *   LIVE/STALE --LRU reuse for another CR3 [get_as]--> LIVE (emptied, FPU reset)
 *
 * Invariants
 *  1. as->buckets lists exactly the pages mapped in the stub (besides the
 *     stub's own page), with the protection they were mapped with.
 *  2. A stub only runs guest code when as->epoch == u->epoch and no drops
 *     are pending (user_enter checks both first).
 *  3. The stub's own page [stub.base, + 4 KiB) is never unmapped or
 *     replaced; a guest mapping there first moves it to a page the guest
 *     has not mapped (user_stub_move).
 *  5. user_enter returns within one stop of the host timer's request
 *     (VCPU_IRQ_FORCE), whatever guest user code does: no loop of faults
 *     handled inside it keeps the vCPU loop (guest interrupts, --timeout,
 *     a stop signal) waiting.
 *  4. Every guest page-table page a mapping was walked through is in its
 *     address space's pts set (refs = mappings through it) and flagged
 *     GUESTMEM_PAGE_PTABLE, so a guest write to it reaches user_on_write
 *     before it lands; a CR3 load thus needs no flush.  The flag is
 *     cleared after the first write once no address space watches the
 *     page (user_write_done).  The code cache watches its pages with a
 *     flag of its own (GUESTMEM_PAGE_CODE), so neither clears the
 *     other's watch.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pretrans/base/text.h"
#include "pretrans/base/assert.h"
#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/xlat/xlat_facts.h"
#include "runtime/user/user_int.h"
#include "runtime/user/ustub.h"

#define USER_DEFAULT_MAX_STUBS 64

/* RFLAGS bits guest user code changes natively (the rest are the kernel's). */
#define USER_RFLAGS_MASK 0x244dd5ull

static void user_on_protect(void *opaque, gpa_t gpa_page);
static void pt_acquire(struct user_mode *u, struct user_as *as, const gpa_t tables[4], gva_t va);
static void pt_release(struct user_mode *u, struct user_as *as, const gpa_t tables[4]);
static void pt_free_all(struct user_mode *u, struct user_as *as);
static void watch_page(struct user_mode *u, gpa_t t);
static void check_dirty(struct user_mode *u, struct user_as *as);

/* One host CPU for the vCPU thread and its stubs (user_config.float_cpus):
 * the one it runs on now, unless its affinity already names only one. */
static int pin_one_cpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	int cpu = sched_getcpu();
	if (CPU_COUNT(&set) == 1) {
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				return c;
	}
	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		bt_warn(LOG_USER, "cannot pin the vCPU and its user stubs to host CPU %d: %s", cpu,
			strerror(errno));
		return -1;
	}
	return cpu;
}

enum bt_status user_create(const struct user_config *cfg, struct user_mode **out)
{
	if (!cfg || !cfg->gm || !cfg->mmu || !cfg->abi || !out)
		return BT_ERR_INVALID;
	struct user_mode *u = calloc(1, sizeof(*u));
	if (!u)
		return BT_ERR_NOMEM;
	u->cfg = *cfg;
	if (!u->cfg.max_stubs)
		u->cfg.max_stubs = USER_DEFAULT_MAX_STUBS;
	if (!u->cfg.around_pages)
		u->cfg.around_pages = USER_DEFAULT_AROUND;
	if (u->cfg.pool < 0)
		u->cfg.pool = USER_DEFAULT_POOL;
	_Static_assert(USER_AROUND_MAX == USTUB_BATCH_WINDOW, "a window is one batch's");
	if (u->cfg.around_pages > USER_AROUND_MAX ||
	    (u->cfg.around_pages & (u->cfg.around_pages - 1)) || u->cfg.pool > USER_POOL_MAX) {
		free(u);
		return BT_ERR_INVALID;
	}
	u->as = calloc(u->cfg.max_stubs, sizeof(*u->as));
	if (!u->as) {
		free(u);
		return BT_ERR_NOMEM;
	}
	enum bt_status s = ustub_image_create(&u->image_fd);
	if (s != BT_OK) {
		bt_err(LOG_USER, "cannot create the user stub image: %s", strerror(errno));
		free(u->as);
		free(u);
		return s;
	}
	for (size_t i = 0; i < guestmem_nregions(cfg->gm); i++) {
		const struct guestmem_region *r = guestmem_region(cfg->gm, i);
		u->n_pages = BT_MAX(u->n_pages, (r->offset + r->size) >> GUEST_PAGE_SHIFT);
	}
	u->ptw = calloc(u->n_pages, sizeof(*u->ptw));
	u->umw = calloc(u->n_pages, 1);
	if (!u->ptw || !u->umw || guestmem_add_listener(cfg->gm, user_on_protect, u) != BT_OK) {
		free(u->ptw);
		free(u->umw);
		close(u->image_fd);
		free(u->as);
		free(u);
		return BT_ERR_NOMEM;
	}
	u->st.cpu = cfg->float_cpus ? -1 : pin_one_cpu();
	/* decoded as the vCPU decodes (no BMI1, MPX, CET: xlat_facts.h) */
	if (!xlat_decoder_init(&u->dec64, ZYDIS_MACHINE_MODE_LONG_64) ||
	    !xlat_decoder_init(&u->dec32, ZYDIS_MACHINE_MODE_LONG_COMPAT_32)) {
		user_destroy(u);
		return BT_ERR_INTERNAL;
	}
	*out = u;
	return BT_OK;
}

static void free_maps(struct user_mode *u, struct user_as *as)
{
	for (unsigned b = 0; b < USER_MAP_BUCKETS; b++) {
		while (as->buckets[b]) {
			struct user_map *m = as->buckets[b];
			as->buckets[b] = m->next;
			m->next = u->free_maps;
			u->free_maps = m;
		}
	}
	as->n_maps = as->n_large = 0;
	pt_free_all(u, as);
}

void user_destroy(struct user_mode *u)
{
	if (!u)
		return;
	user_pool_fini(u);
	for (unsigned i = 0; i < u->n_as; i++) {
		ustub_kill(&u->as[i]->stub);
		free_maps(u, u->as[i]);
		free(u->as[i]);
	}
	while (u->free_maps) {
		struct user_map *m = u->free_maps;
		u->free_maps = m->next;
		free(m);
	}
	if (u->image_fd > 0)
		close(u->image_fd);
	guestmem_remove_listener(u->cfg.gm, user_on_protect, u);
	free(u->ptw);
	free(u->umw);
	free(u->as);
	free(u);
}

static unsigned bucket(gva_t page)
{
	return (unsigned)((page >> 12) * 0x9e3779b97f4a7c15ull >> 54) & (USER_MAP_BUCKETS - 1);
}

struct user_map *user_map_lookup(struct user_as *as, gva_t page)
{
	for (struct user_map *m = as->buckets[bucket(page)]; m; m = m->next)
		if (m->va == page)
			return m;
	return NULL;
}

static void map_remove(struct user_mode *u, struct user_as *as, gva_t page)
{
	struct user_map **pp = &as->buckets[bucket(page)];
	for (; *pp; pp = &(*pp)->next) {
		struct user_map *m = *pp;
		if (m->va != page)
			continue;
		*pp = m->next;
		as->n_maps--;
		as->n_large -= m->large;
		pt_release(u, as, m->tables);
		m->next = u->free_maps;
		u->free_maps = m;
		return;
	}
}

enum bt_status user_map_page(struct user_mode *u, struct user_as *as, gva_t page, gpa_t gpa,
			     int prot, bool large, const gpa_t tables[4])
{
	uint64_t off;
	BT_TRY(guestmem_gpa_to_offset(u->cfg.gm, gpa, &off));
	BT_TRY(ustub_mmap(&as->stub, page, GUEST_PAGE_SIZE, prot, off));
	return user_map_record(u, as, page, gpa, prot, large, tables);
}

enum bt_status user_map_record(struct user_mode *u, struct user_as *as, gva_t page, gpa_t gpa,
			       int prot, bool large, const gpa_t tables[4])
{
	struct user_map *m = user_map_lookup(as, page);
	if (!m) {
		m = u->free_maps;
		if (m)
			u->free_maps = m->next;
		else if (!(m = malloc(sizeof(*m))))
			return BT_ERR_NOMEM;
		m->va = page;
		m->large = 0;
		for (int i = 0; i < 4; i++)
			m->tables[i] = ~0ull;
		unsigned b = bucket(page);
		m->next = as->buckets[b];
		as->buckets[b] = m;
		as->n_maps++;
	}
	as->n_large -= m->large;
	uint64_t idx;
	if ((prot & PROT_WRITE) && user_page_index(u, gpa, &idx))
		u->umw[idx] = 1;
	m->gpa = gpa;
	m->prot = (uint8_t)prot;
	m->large = large;
	as->n_large += m->large;
	pt_acquire(u, as, tables, page);
	pt_release(u, as, m->tables);
	memcpy(m->tables, tables, sizeof(m->tables));
	return BT_OK;
}

/* munmap [start, start+len) except the stub's own page. */
static enum bt_status unmap_host(struct user_as *as, gva_t start, uint64_t len)
{
	gva_t end = start + len;
	if (end > USTUB_TASK_END)
		end = USTUB_TASK_END;
	gva_t base = as->stub.base, base_end = base + GUEST_PAGE_SIZE;
	if (start < base && end > start)
		BT_TRY(ustub_munmap(&as->stub, start, BT_MIN(end, base) - start));
	if (start < base_end)
		start = base_end;
	if (end > start)
		BT_TRY(ustub_munmap(&as->stub, start, end - start));
	return BT_OK;
}

enum bt_status user_drop_range(struct user_mode *u, struct user_as *as, gva_t start, uint64_t len)
{
	bool any = false;
	if (len <= 512 * GUEST_PAGE_SIZE) {
		for (gva_t p = start; p < start + len; p += GUEST_PAGE_SIZE)
			if (user_map_lookup(as, p)) {
				map_remove(u, as, p);
				any = true;
			}
	} else {
		for (unsigned b = 0; b < USER_MAP_BUCKETS; b++)
			for (struct user_map *m = as->buckets[b], *n; m; m = n) {
				n = m->next;
				if (m->va >= start && m->va - start < len) {
					map_remove(u, as, m->va);
					any = true;
				}
			}
	}
	if (!any)
		return BT_OK;
	u->st.invlpg++;
	return unmap_host(as, start, len);
}

/* Does the guest map va for user code?  A probe: no A/D bit changes. */
static bool guest_maps(struct user_mode *u, gva_t va)
{
	struct mmu_fault f = {0};
	gpa_t gpa;
	bool mmio = false;
	if (mmu_translate(u->cfg.mmu, va, MMU_ACC_READ | MMU_ACC_USER | MMU_ACC_PROBE, &gpa, &mmio,
			  &f) != BT_OK)
		return true; /* cannot tell: keep out of its way */
	return !f.pending;
}

enum bt_status user_stub_clear(struct user_mode *u, struct user_as *as)
{
	gva_t base = as->stub.base;
	if (!user_map_lookup(as, base) && !guest_maps(u, base))
		return BT_OK;
	/* the first of the candidates the guest neither maps nor has mapped */
	for (gva_t c = USTUB_BASE; c >= USTUB_MOVE_STEP; c -= USTUB_MOVE_STEP) {
		if (c == base || user_map_lookup(as, c) || guest_maps(u, c))
			continue;
		BT_TRY(ustub_relocate(&as->stub, c));
		u->st.stub_moves++;
		return BT_OK;
	}
	bt_err(LOG_USER, "no free page to move the user stub's code page to");
	return BT_ERR_UNSUPPORTED;
}

static enum bt_status flush_as(struct user_mode *u, struct user_as *as)
{
	as->n_pending = 0;
	as->n_down = 0;
	as->pending_all = false;
	bool any = as->n_maps > 0;
	free_maps(u, as); /* and its page-table watches */
	if (!any)
		return BT_OK;
	u->st.flushes++;
	return unmap_host(as, 0, USTUB_TASK_END);
}

/* Insertion sorts, not qsort: glibc's qsort of more than 1 KiB asks
 * sysinfo() for the machine's memory size, a call btvm's sandbox refuses
 * (it killed btvm with 65 or more pending drops).  The lists are short and
 * mostly in order already. */
static void sort_vas(gva_t *a, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		gva_t x = a[i];
		unsigned j = i;
		for (; j > 0 && a[j - 1] > x; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

static void sort_ranges(struct user_range *a, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		struct user_range x = a[i];
		unsigned j = i;
		for (; j > 0 && a[j - 1].va > x.va; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/* The pages check_dirty found write-protected, made read-only in the stub:
 * one mprotect per run of adjacent pages with the same remaining rights. */
static enum bt_status apply_downgrades(struct user_mode *u, struct user_as *as)
{
	unsigned n = as->n_down;
	as->n_down = 0;
	sort_vas(as->down, n);
	for (unsigned i = 0; i < n;) {
		struct user_map *m = user_map_lookup(as, as->down[i]);
		if (!m || !(m->prot & PROT_WRITE)) {
			i++; /* dropped meanwhile, or already read-only */
			continue;
		}
		int prot = m->prot & ~PROT_WRITE;
		gva_t start = m->va, end = start + GUEST_PAGE_SIZE;
		m->prot = (uint8_t)prot;
		for (i++; i < n; i++) {
			struct user_map *x = user_map_lookup(as, as->down[i]);
			if (as->down[i] == end - GUEST_PAGE_SIZE)
				continue; /* the same page twice */
			if (as->down[i] != end || !x || (x->prot & ~PROT_WRITE) != prot)
				break;
			x->prot = (uint8_t)prot;
			end += GUEST_PAGE_SIZE;
		}
		BT_TRY(ustub_mprotect(&as->stub, start, end - start, prot));
		u->st.downgrades += (end - start) / GUEST_PAGE_SIZE;
	}
	return BT_OK;
}

enum bt_status user_apply_pending(struct user_mode *u, struct user_as *as)
{
	if (as->n_dirty)
		check_dirty(u, as);
	if (as->pending_all) {
		as->n_down = 0;
		return flush_as(u, as);
	}
	unsigned n = as->n_pending;
	for (unsigned i = 0; i < n; i++) {
		struct user_range *r = &as->pending[i];
		if (as->n_large && r->len < (1ull << 30)) {
			/* the page may be part of a large guest page (2 MiB or
			 * 1 GiB): drop the 1 GiB around it */
			r->va &= ~((1ull << 30) - 1);
			r->len = 1ull << 30;
		}
	}
	/* sorted, adjacent ranges merged: one munmap for a run of pages (a
	 * fork write-protects the stack and data pages in a row) */
	sort_ranges(as->pending, n);
	for (unsigned i = 0; i < n;) {
		gva_t va = as->pending[i].va, end = va + as->pending[i].len;
		for (i++; i < n && as->pending[i].va <= end; i++)
			end = BT_MAX(end, as->pending[i].va + as->pending[i].len);
		BT_TRY(user_drop_range(u, as, va, end - va));
	}
	as->n_pending = 0;
	return apply_downgrades(u, as);
}

static struct user_as *find_as(struct user_mode *u, uint64_t key)
{
	for (unsigned i = 0; i < u->n_as; i++)
		if (u->as[i]->cr3 == key)
			return u->as[i];
	return NULL;
}

static enum bt_status get_as(struct user_mode *u, uint64_t key, struct user_as **out)
{
	struct user_as *as = find_as(u, key);
	if (as && as->stub.pid > 0) {
		*out = as;
		return BT_OK;
	}
	if (!as && u->n_as < u->cfg.max_stubs) {
		as = calloc(1, sizeof(*as));
		if (!as)
			return BT_ERR_NOMEM;
		if (!user_pool_take(u, &as->stub)) {
			uint64_t t0 = bt_now_ns();
			enum bt_status s =
			    ustub_spawn(u->image_fd, guestmem_fd(u->cfg.gm), &u->sst, &as->stub);
			if (s != BT_OK) {
				free(as);
				return s;
			}
			u->st.ns_spawn += bt_now_ns() - t0;
			u->st.stubs_spawned++;
		}
		u->as[u->n_as++] = as;
	} else if (!as) {
		/* reuse the least recently used stub: empty it; its FPU state is
		 * reset before it runs (fpu_valid = false) */
		as = u->as[0];
		for (unsigned i = 1; i < u->n_as; i++)
			if (u->as[i]->last_use < as->last_use)
				as = u->as[i];
		BT_TRY(flush_as(u, as));
		u->st.stubs_reused++;
	} else {
		/* its stub died earlier (already reported) */
		return BT_ERR_IO;
	}
	as->cr3 = key;
	as->epoch = u->epoch;
	as->fpu_valid = false;
	as->n_pending = 0;
	as->pending_all = false;
	*out = as;
	return BT_OK;
}

static void queue_drop(struct user_as *as, gva_t va, uint64_t len)
{
	if (as->pending_all || !as->n_maps)
		return;
	if (as->n_pending == USER_MAX_PENDING)
		as->pending_all = true;
	else
		as->pending[as->n_pending++] = (struct user_range){va, len};
}

void user_on_flush(struct user_mode *u, enum mmu_flush_kind kind, gva_t va)
{
	if (!u)
		return;
	switch (kind) {
	case MMU_FLUSH_ALL: /* paging mode changes: nothing is proven any more */
		u->epoch++;
		return;
	case MMU_FLUSH_NONGLOBAL:
	case MMU_FLUSH_PCID:
		/* a CR3 load: every stub's mappings are still what a fresh walk
		 * gives, because every write to their page tables dropped what
		 * it could change (user_on_write) */
		return;
	case MMU_FLUSH_INVLPG:
		break;
	}
	if (va >= USTUB_TASK_END)
		return; /* kernel half: never mapped in a stub */
	struct user_as *as = find_as(u, u->cfg.mmu->cr3 & MMU_PTE_ADDR_MASK);
	if (!as || !as->n_maps)
		return;
	va &= GUEST_PAGE_MASK;
	if (!as->n_large && !user_map_lookup(as, va))
		return;
	queue_drop(as, va, GUEST_PAGE_SIZE);
}

bool user_page_index(const struct user_mode *u, gpa_t gpa, uint64_t *idx)
{
	uint64_t off;
	if (guestmem_gpa_to_offset(u->cfg.gm, gpa, &off) != BT_OK)
		return false;
	*idx = off >> GUEST_PAGE_SHIFT;
	return *idx < u->n_pages;
}

static unsigned pt_bucket(gpa_t page)
{
	return (unsigned)((page >> 12) * 0x9e3779b97f4a7c15ull >> 56) & (USER_PT_BUCKETS - 1);
}

static struct user_pt *pt_lookup(struct user_as *as, gpa_t page)
{
	for (struct user_pt *p = as->pts[pt_bucket(page)]; p; p = p->next)
		if (p->gpa == page)
			return p;
	return NULL;
}

/* Watch the page tables a walk for va went through (one more mapping
 * through each). */
static void pt_acquire(struct user_mode *u, struct user_as *as, const gpa_t tables[4], gva_t va)
{
	for (unsigned level = 4; level >= 1; level--) {
		gpa_t t = tables[level - 1];
		if (t == ~0ull)
			continue;
		gva_t base = level == 4 ? 0 : va & ~((1ull << (12 + 9 * level)) - 1);
		struct user_pt *p = pt_lookup(as, t);
		if (p) {
			if (p->base != base || p->level != level)
				p->aliased = 1;
			p->refs++;
			continue;
		}
		p = malloc(sizeof(*p));
		if (!p) {
			as->pending_all = true; /* cannot watch: do not trust it */
			continue;
		}
		*p = (struct user_pt){.gpa = t, .base = base, .level = (uint8_t)level, .refs = 1};
		unsigned b = pt_bucket(t);
		p->next = as->pts[b];
		as->pts[b] = p;
		as->n_pts++;
		watch_page(u, t);
	}
}

static void pt_unlink(struct user_mode *u, struct user_as *as, struct user_pt *p)
{
	struct user_pt **pp = &as->pts[pt_bucket(p->gpa)];
	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	as->n_pts--;
	uint64_t idx;
	/* the GUESTMEM_PAGE_PTABLE flag stays until the next write to the page
	 * (user_write_done) */
	if (!p->dirty && user_page_index(u, p->gpa, &idx) && u->ptw[idx])
		u->ptw[idx]--;
	as->n_dirty -= p->dirty;
	free(p->snap);
	free(p);
}

static void pt_release(struct user_mode *u, struct user_as *as, const gpa_t tables[4])
{
	for (unsigned i = 0; i < 4; i++) {
		if (tables[i] == ~0ull)
			continue;
		struct user_pt *p = pt_lookup(as, tables[i]);
		if (p && --p->refs == 0)
			pt_unlink(u, as, p);
	}
}

static void pt_free_all(struct user_mode *u, struct user_as *as)
{
	for (unsigned b = 0; b < USER_PT_BUCKETS; b++)
		while (as->pts[b])
			pt_unlink(u, as, as->pts[b]);
}

void user_write_done(struct user_mode *u, gpa_t gpa)
{
	uint64_t idx;
	if (u && user_page_index(u, gpa, &idx) && !u->ptw[idx])
		guestmem_page_clear_flags(u->cfg.gm, gpa, GUESTMEM_PAGE_PTABLE);
}

/* Watch page t (again) for one more address space. */
static void watch_page(struct user_mode *u, gpa_t t)
{
	uint64_t idx;
	if (user_page_index(u, t, &idx) && u->ptw[idx]++ == 0 &&
	    !(guestmem_page_flags(u->cfg.gm, t) & GUESTMEM_PAGE_PTABLE))
		guestmem_page_set_flags(u->cfg.gm, t, GUESTMEM_PAGE_PTABLE);
}

/*
 * A guest write is about to land on a watched page table.  Each address
 * space using it keeps a copy of the table as it is now (what its
 * mappings were made from) and stops watching it: the rest of a burst of
 * writes (fork write-protecting, exec or exit tearing down, a freed table
 * recycled as data) runs at full speed.  Before the stub runs again,
 * check_dirty() compares, drops what changed and watches again.
 */
void user_on_write(struct user_mode *u, gpa_t gpa, size_t len)
{
	uint64_t idx;
	if (!u || !len || !user_page_index(u, gpa, &idx) || !u->ptw[idx])
		return;
	gpa_t page = gpa & GUEST_PAGE_MASK;
	const uint64_t *t = guestmem_gpa_to_host(u->cfg.gm, page, GUEST_PAGE_SIZE);
	u->st.pt_writes++;
	for (unsigned i = 0; i < u->n_as; i++) {
		struct user_as *as = u->as[i];
		struct user_pt *p = pt_lookup(as, page);
		if (!p || p->dirty)
			continue;
		if (!p->aliased && (p->snap = malloc(GUEST_PAGE_SIZE)) != NULL)
			memcpy(p->snap, t, GUEST_PAGE_SIZE);
		else
			as->pending_all = true; /* cannot tell what changes: empty it */
		p->dirty = 1;
		as->n_dirty++;
		if (u->ptw[idx])
			u->ptw[idx]--;
	}
}

/* An entry change that can revoke something: any bit but A/D changed, or
 * A/D cleared (the MMU setting A/D is no revocation). */
static bool entry_revoked(uint64_t old, uint64_t cur)
{
	const uint64_t ad = MMU_PTE_A | MMU_PTE_D;
	return (old & MMU_PTE_P) && (((old ^ cur) & ~ad) || (old & ~cur & ad));
}

/* A leaf PTE change that only takes write access away: RW or D cleared,
 * same frame, same other rights (software bits aside), A kept (clearing A asks for the next
 * access to fault: that needs a drop).  A read-only mapping stays valid. */
static bool entry_write_revoked(uint64_t old, uint64_t cur)
{
	const uint64_t wr = MMU_PTE_RW | MMU_PTE_D;
	/* the bits the MMU ignores (9-11, 52-58): kernels keep their own
	 * copy-on-write and soft-dirty marks there */
	const uint64_t sw = 0xe00ull | (0x7full << 52);
	return (old & MMU_PTE_P) && !((old ^ cur) & ~(wr | MMU_PTE_A | sw)) &&
	       !(old & ~cur & MMU_PTE_A) && (old & ~cur & wr);
}

/* Before as's stub runs: drop what changed in its written page tables and
 * watch them again. */
static void check_dirty(struct user_mode *u, struct user_as *as)
{
	for (unsigned b = 0; as->n_dirty && b < USER_PT_BUCKETS; b++)
		for (struct user_pt *p = as->pts[b]; p; p = p->next) {
			if (!p->dirty)
				continue;
			const uint64_t *t =
			    guestmem_gpa_to_host(u->cfg.gm, p->gpa, GUEST_PAGE_SIZE);
			uint64_t span = 1ull << (12 + 9 * (p->level - 1));
			unsigned lim = p->level == 4 ? 256 : 512; /* not the kernel half */
			for (unsigned e = 0; p->snap && t && e < lim; e++) {
				if (!entry_revoked(p->snap[e], t[e]))
					continue;
				gva_t va = p->base + e * span;
				struct user_map *m = p->level == 1 ? user_map_lookup(as, va) : NULL;
				if (va >= USTUB_TASK_END || (p->level == 1 && !as->n_large && !m))
					continue; /* nothing of it is mapped */
				if (m && !m->large && entry_write_revoked(p->snap[e], t[e])) {
					/* copy-on-write protection: keep the page readable */
					if (!(m->prot & PROT_WRITE))
						continue;
					if (as->n_down < USER_MAX_PENDING) {
						as->down[as->n_down++] = va;
						continue;
					}
				}
				queue_drop(as, va, span);
			}
			if (!t)
				as->pending_all = true;
			free(p->snap);
			p->snap = NULL;
			p->dirty = 0;
			as->n_dirty--;
			watch_page(u, p->gpa);
		}
}

enum bt_status user_unwatch(struct user_mode *u, gpa_t gpa, const gpa_t tables[4])
{
	uint64_t idx;
	if (!user_page_index(u, gpa, &idx) || !u->ptw[idx])
		return BT_OK;
	for (int i = 0; i < 4; i++)
		if (tables[i] == gpa) {
			bt_err(
			    LOG_USER,
			    "the guest gives user code write access to one of its own page "
			    "tables (guest-physical %#llx): not supported, see docs/user-direct.md",
			    (unsigned long long)gpa);
			return BT_ERR_UNSUPPORTED;
		}
	for (unsigned i = 0; i < u->n_as; i++) {
		struct user_as *as = u->as[i];
		if (pt_lookup(as, gpa))
			as->pending_all =
			    true; /* emptied (and its watches dropped) before it runs */
	}
	for (unsigned i = 0; i < u->n_as; i++) {
		struct user_as *as = u->as[i];
		if (!as->pending_all)
			continue;
		if (as->stub.pid > 0)
			BT_TRY(user_apply_pending(u, as));
		else
			free_maps(u, as); /* nothing to unmap in a dead stub */
	}
	u->st.unwatched++;
	if (u->ptw[idx]) {
		bt_err(LOG_USER, "page-table watch of %#llx survived a flush",
		       (unsigned long long)gpa);
		return BT_ERR_INTERNAL;
	}
	return guestmem_page_clear_flags(u->cfg.gm, gpa, GUESTMEM_PAGE_PTABLE);
}

/* guestmem listener: translated code now lives on gpa_page; no stub may
 * keep it writable (guest stores to it must reach the code-write hook). */
static void user_on_protect(void *opaque, gpa_t gpa_page)
{
	struct user_mode *u = opaque;
	uint64_t idx;
	if (!user_page_index(u, gpa_page, &idx) || !u->umw[idx])
		return;
	u->umw[idx] = 0;
	for (unsigned i = 0; i < u->n_as; i++) {
		struct user_as *as = u->as[i];
		for (unsigned b = 0; as->n_maps && b < USER_MAP_BUCKETS; b++)
			for (struct user_map *m = as->buckets[b]; m; m = m->next)
				if (m->gpa == gpa_page && (m->prot & PROT_WRITE))
					queue_drop(as, m->va, GUEST_PAGE_SIZE);
	}
}

pid_t user_stub_pid(const struct user_mode *u, uint64_t cr3)
{
	for (unsigned i = 0; i < u->n_as; i++)
		if (u->as[i]->cr3 == (cr3 & MMU_PTE_ADDR_MASK))
			return u->as[i]->stub.pid;
	return 0;
}

void user_kick(struct user_mode *u)
{
	if (u)
		ustub_kick(u->running);
}

/* Guest registers into the stub. */
static void regs_in(struct user_mode *u, struct user_as *as, uint16_t cs, uint64_t rflags)
{
	const struct vcpu_abi *a = u->cfg.abi;
	struct user_regs_struct *r = &as->stub.regs;
	r->rax = a->gpr[VCPU_RAX];
	r->rcx = a->gpr[VCPU_RCX];
	r->rdx = a->gpr[VCPU_RDX];
	r->rbx = a->gpr[VCPU_RBX];
	r->rsp = a->gpr[VCPU_RSP];
	r->rbp = a->gpr[VCPU_RBP];
	r->rsi = a->gpr[VCPU_RSI];
	r->rdi = a->gpr[VCPU_RDI];
	r->r8 = a->gpr[VCPU_R8];
	r->r9 = a->gpr[VCPU_R9];
	r->r10 = a->gpr[VCPU_R10];
	r->r11 = a->gpr[VCPU_R11];
	r->r12 = a->gpr[VCPU_R12];
	r->r13 = a->gpr[VCPU_R13];
	r->r14 = a->gpr[VCPU_R14];
	r->r15 = a->gpr[VCPU_R15];
	r->rip = a->rip;
	r->orig_rax = ~0ull; /* no host syscall restart on the way back */
	r->eflags = (rflags & USER_RFLAGS_MASK) | 0x202;
	r->cs = (cs & 0xfffc) == 0x20 ? 0x23 : 0x33;
	r->ss = 0x2b;
	/* the host refuses bases outside user space; the guest kernel allowed a
	 * kernel address: guest code faults on first use either way */
	r->fs_base = a->fs_base < USTUB_TASK_END ? a->fs_base : 0;
	r->gs_base = a->gs_base < USTUB_TASK_END ? a->gs_base : 0;
	as->stub.regs_dirty = true;
}

/* Stub registers back into the vCPU area. */
static void regs_out(struct user_mode *u, struct user_as *as, uint64_t rflags_in,
		     struct user_event *ev)
{
	struct vcpu_abi *a = u->cfg.abi;
	const struct user_regs_struct *r = &as->stub.regs;
	a->gpr[VCPU_RAX] = r->rax;
	a->gpr[VCPU_RCX] = r->rcx;
	a->gpr[VCPU_RDX] = r->rdx;
	a->gpr[VCPU_RBX] = r->rbx;
	a->gpr[VCPU_RSP] = r->rsp;
	a->gpr[VCPU_RBP] = r->rbp;
	a->gpr[VCPU_RSI] = r->rsi;
	a->gpr[VCPU_RDI] = r->rdi;
	a->gpr[VCPU_R8] = r->r8;
	a->gpr[VCPU_R9] = r->r9;
	a->gpr[VCPU_R10] = r->r10;
	a->gpr[VCPU_R11] = r->r11;
	a->gpr[VCPU_R12] = r->r12;
	a->gpr[VCPU_R13] = r->r13;
	a->gpr[VCPU_R14] = r->r14;
	a->gpr[VCPU_R15] = r->r15;
	a->rip = r->rip;
	a->fs_base = r->fs_base;
	a->gs_base = r->gs_base;
	ev->rflags = (rflags_in & ~USER_RFLAGS_MASK) | (r->eflags & USER_RFLAGS_MASK) | 2;
}

static enum bt_status fpu_in(struct user_as *as, const uint8_t *fx)
{
	if (as->fpu_valid && !memcmp(as->fpu_copy, fx, 512))
		return BT_OK;
	if (as->fpu_valid)
		BT_TRY(ustub_set_fpu(&as->stub, fx));
	else
		BT_TRY(ustub_reset_fpu(&as->stub, fx));
	memcpy(as->fpu_copy, fx, 512);
	as->fpu_valid = true;
	return BT_OK;
}

bool user_fpu_pending(const struct user_mode *u)
{
	return u && u->fpu_lazy;
}

enum bt_status user_fpu_sync(struct user_mode *u)
{
	struct user_as *as = u ? u->fpu_lazy : NULL;
	if (!as)
		return BT_OK;
	u->fpu_lazy = NULL;
	BT_TRY(ustub_get_fpu(&as->stub, as->fpu_copy));
	memcpy(u->cfg.abi->fxsave, as->fpu_copy, 512);
	u->st.fpu_syncs++;
	return BT_OK;
}

static void exception(struct user_event *ev, uint8_t vector, bool has_error, uint32_t error)
{
	ev->kind = USER_EV_EXCEPTION;
	ev->vector = vector;
	ev->has_error = has_error;
	ev->error = error;
	ev->trap = false;
}

/* A host signal stop: *handled (resume) or an event in ev. */
static enum bt_status on_signal(struct user_mode *u, struct user_as *as, const siginfo_t *si,
				bool *handled, struct user_event *ev)
{
	struct user_regs_struct *r = &as->stub.regs;
	*handled = false;
	switch (si->si_signo) {
	case USTUB_KICK_SIG:
		ev->kind = USER_EV_KICK;
		return BT_OK;
	case SIGSEGV:
		if (si->si_code == SI_KERNEL) {
			/* a #GP: privileged instruction, non-canonical address, or
			 * an `int n` whose host gate is not DPL 3 */
			uint8_t b[2];
			if (user_fetch_insn(u, r->rip, b, 2) == 2 && b[0] == 0xcd) {
				ev->kind = USER_EV_SOFTINT;
				ev->vector = b[1];
				r->rip += 2;
				return BT_OK;
			}
			exception(ev, 13, true, 0);
			return BT_OK;
		}
		u->st.faults++;
		return user_fault(u, as, (gva_t)(uintptr_t)si->si_addr, si->si_code == SEGV_MAPERR,
				  false, handled, ev);
	case SIGSYS: /* the seccomp filter: the vsyscall page, see ustub.S */
		u->st.faults++;
		return user_fault(u, as, r->rip, true, true, handled, ev);
	case SIGILL:
		exception(ev, 6, false, 0);
		return BT_OK;
	case SIGFPE:
		if (si->si_code == FPE_INTDIV || si->si_code == FPE_INTOVF)
			exception(ev, 0, false, 0);
		else
			exception(ev, 19, false, 0); /* SIMD floating point (#XM) */
		return BT_OK;
	case SIGTRAP:
		if (si->si_code == SI_KERNEL) { /* int3: a trap, rip after it */
			ev->kind = USER_EV_SOFTINT;
			ev->vector = 3;
			return BT_OK;
		}
		exception(ev, 1, false, 0); /* single step / debug trap */
		ev->trap = true;
		return BT_OK;
	case SIGBUS:
		if (si->si_code == BUS_ADRALN) {
			exception(ev, 17, true, 0);
			return BT_OK;
		}
		bt_err(LOG_USER, "guest user code at %#llx: host bus error at %p (code %d)",
		       (unsigned long long)r->rip, si->si_addr, si->si_code);
		return BT_ERR_IO;
	default:
		*handled = true; /* not ours: suppressed */
		return BT_OK;
	}
}

enum bt_status user_enter(struct user_mode *u, uint64_t cr3, uint16_t cs, uint64_t rflags,
			  struct user_event *ev)
{
	struct user_as *as;
	uint64_t t0 = bt_now_ns();
	enum bt_status s;
	memset(ev, 0, sizeof(*ev));
	/* another address space's registers are still in its stub: the
	 * "hardware" FPU state is that one until something reads it */
	if (u->fpu_lazy && u->fpu_lazy->cr3 != (cr3 & MMU_PTE_ADDR_MASK))
		BT_TRY(user_fpu_sync(u));
	BT_TRY(get_as(u, cr3 & MMU_PTE_ADDR_MASK, &as));
	as->last_use = ++u->clock;
	u->st.enters++;
	if (as->epoch != u->epoch) {
		BT_TRY(flush_as(u, as));
		as->epoch = u->epoch;
	} else if (as->n_pending || as->pending_all || as->n_dirty) {
		BT_TRY(user_apply_pending(u, as));
	}
	/* the guest may have mapped the stub page's address since (rule 3) */
	BT_TRY(user_stub_clear(u, as));
	BT_TRY(user_prefault(u, as));
	regs_in(u, as, cs, rflags);
	BT_TRY(fpu_in(as, u->cfg.abi->fxsave));

	for (;;) {
		enum ustub_stop stop;
		siginfo_t si;
		if (__atomic_load_n(&u->cfg.abi->irq, __ATOMIC_RELAXED) & VCPU_IRQ_FORCE) {
			/* the host timer (or a stop request) wants the vCPU loop:
			 * leave before guest code runs again (rule 5) */
			ev->kind = USER_EV_KICK;
			u->st.kicks++;
			break;
		}
		if ((as->n_pending || as->pending_all || as->n_dirty) &&
		    (s = user_apply_pending(u, as)) != BT_OK)
			goto out;
		if ((s = ustub_run(&as->stub, &u->running, &stop, &si)) != BT_OK)
			goto out;
		if (stop == USTUB_STOP_SYSCALL) {
			struct user_regs_struct *r = &as->stub.regs;
			uint8_t b[2];
			r->rax = r->orig_rax;
			if (user_fetch_insn(u, r->rip - 2, b, 2) == 2 && b[0] == 0xcd &&
			    b[1] == 0x80) {
				ev->kind = USER_EV_SOFTINT;
				ev->vector = 0x80;
				u->st.softints++;
			} else {
				ev->kind = USER_EV_SYSCALL;
				ev->next_rip = r->rip;
				u->st.syscalls++;
			}
			break;
		}
		bool handled;
		uint64_t tf = bt_now_ns();
		s = on_signal(u, as, &si, &handled, ev);
		u->st.ns_fault += bt_now_ns() - tf;
		if (s != BT_OK)
			goto out;
		if (handled)
			continue;
		if (ev->kind == USER_EV_KICK)
			u->st.kicks++;
		else if (ev->kind == USER_EV_SOFTINT)
			u->st.softints++;
		else if (ev->kind == USER_EV_EXCEPTION)
			u->st.exceptions++;
		break;
	}
	regs_out(u, as, rflags, ev);
	/* the FPU/SIMD state stays in the stub until the guest kernel reads its
	 * image (user_fpu_sync): cfg.abi->fxsave == as->fpu_copy meanwhile */
	u->fpu_lazy = as;
out:
	if (s != BT_OK && as->stub.pid <= 0) {
		as->cr3 = USER_NO_CR3; /* the stub is gone: a later CR3 gets a new one */
		if (u->fpu_lazy == as)
			u->fpu_lazy = NULL;
	}
	u->st.ns_user += bt_now_ns() - t0;
	return s;
}

void user_get_stats(const struct user_mode *u, struct user_stats *out)
{
	*out = u->st;
	out->stops = u->sst.stops;
	out->hostcalls = u->sst.hostcalls;
	out->ptrace_calls = u->sst.ptrace_calls;
}

uint64_t user_warmups(const struct user_mode *u)
{
	if (!u)
		return 0;
	return u->st.stubs_spawned + u->st.pool_taken + (u->st.faults - u->st.guest_pf);
}

void user_print_stats(const struct user_mode *u, FILE *f)
{
	struct user_stats s;
	user_get_stats(u, &s);
	fprintf(f,
		"btvm: user: %s entries (%s syscalls, %s exceptions, %s int n, %s timer "
		"kicks), %s stubs spawned, %s reused, %s FPU images read back\n",
		BT_N(s.enters), BT_N(s.syscalls), BT_N(s.exceptions), BT_N(s.softints),
		BT_N(s.kicks), BT_N(s.stubs_spawned), BT_N(s.stubs_reused), BT_N(s.fpu_syncs));
	fprintf(f,
		"btvm: user: %s host faults: %s pages mapped, %s upgraded to writable, "
		"%s guest #PF (%s pages mapped on the way back); %s drops (invlpg, "
		"page-table writes), %s pages made read-only, %s watched page-table "
		"writes, %s stub flushes, %s stub pages moved out of the guest's way\n",
		BT_N(s.faults), BT_N(s.maps), BT_N(s.upgrades), BT_N(s.guest_pf), BT_N(s.prefaults),
		BT_N(s.invlpg), BT_N(s.downgrades), BT_N(s.pt_writes), BT_N(s.flushes),
		BT_N(s.stub_moves));
	fprintf(f,
		"btvm: user: fault-around (%u pages): %s pages mapped ahead in %s batched host "
		"calls, %s host calls saved; stub pool (%d): %s spares started while idle "
		"(%.1f ms), %s taken\n",
		u->cfg.around_pages, BT_N(s.around), BT_N(s.batches), BT_N(s.calls_saved),
		u->cfg.pool, BT_N(s.pool_spawned), (double)s.ns_pool / 1e6, BT_N(s.pool_taken));
	if (s.scans)
		fprintf(f,
			"btvm: user: %s code pages scanned before mapping, %s kept from running "
			"on the host (sensitive instructions or writable code), %s fetches from "
			"them run translated\n",
			BT_N(s.scans), BT_N(s.scan_hits), BT_N(s.sensitive));
	fprintf(f,
		"btvm: user: %s ptrace stops of guest code, %s host calls in stubs, %s "
		"ptrace calls; %.1f ms in user mode (%.1f ms handling faults, %.1f ms spawning "
		"stubs)\n",
		BT_N(s.stops), BT_N(s.hostcalls), BT_N(s.ptrace_calls), (double)s.ns_user / 1e6,
		(double)s.ns_fault / 1e6, (double)s.ns_spawn / 1e6);
	if (s.cpu >= 0)
		fprintf(f, "btvm: user: the vCPU and its stubs run on host CPU %d\n", s.cpu);
	else
		fprintf(f, "btvm: user: the vCPU and its stubs float over the host CPUs\n");
}
