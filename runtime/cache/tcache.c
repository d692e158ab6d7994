/*
 * The code cache (see tcache.h for the block lifecycle and invariants).
 *
 * Owns: the block descriptors, the guest-RIP hash, the guest-page index and
 * the chain links.  Code memory is runtime/tc's dual-mapped tc_cache (bump
 * allocated, RW and RX views); dead blocks keep their bytes until the next
 * flush so a host PC inside them can still be attributed.
 *
 * Bulk install (tcache_preload, invariant 7): the cache's first bytes can
 * be handed to an owner (btvm: the database's boot profile) who writes
 * host code there in one piece; a kernel block whose code lies there is
 * installed by writing its descriptor only (no copy, its pc map
 * borrowed).  Such blocks are found by host address through a list per
 * 4 KiB of the region (pre_page), and a bit per 16 bytes (pre_live) says
 * whether a live block runs from a place, so a second block wanting the
 * same bytes gets a copy with its exits at their stubs.
 */
#include "runtime/cache/tcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pretrans/base/assert.h"
#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"
#include "runtime/mem/guestmem.h"
#include "runtime/tc/tc.h"
#include "runtime/tc/tc_arena.h"

enum { IDX_GPA = 0, IDX_VA = 1 }; /* the two page indexes */

#define TCACHE_HASH_BITS 16
#define TCACHE_PAGE_BITS 14

struct tcache_page {
	gpa_t page;
	struct tcache_block *blocks; /* linked through pg_next[index][slot] */
	struct tcache_page *next;
	/* guest-virtual pages: the guest-physical page every block on it was
	 * made from, unless `mixed` (tcache_revalidate_pages) */
	gpa_t gpa;
	bool mixed;
};

#define UIBL_PCIDS 8 /* PCIDs whose tag is kept (runtime/mmu keeps as many) */

struct tcache {
	struct guestmem *gm;
	struct vcpu_abi *abi;
	struct tc_cache *code;
	size_t size, used; /* code bytes handed out since the last flush */
	struct tcache_block *hash[1u << TCACHE_HASH_BITS];
	struct tcache_page *pages[2][1u << TCACHE_PAGE_BITS]; /* [IDX_GPA], [IDX_VA] */
	uint64_t live_low;
	/* the RIPs put into uibl under the current tag: [uibl_lo, uibl_hi] */
	gva_t uibl_lo, uibl_hi;
	/* uibl tags (invariant 6): the next unused one, and the tag of each
	 * PCID that is not current */
	uint32_t utag_next;
	struct {
		bool used;
		uint16_t pcid, tag;
		uint64_t stamp;
		gva_t lo, hi; /* its uibl_lo, uibl_hi */
	} upcid[UIBL_PCIDS];
	uint64_t uclock;
	/* tcache_revalidate_pages' list of blocks to kill */
	struct tcache_block **victims;
	size_t cap_victims;
	/* every block ever installed since the last flush, in host order */
	struct tcache_block **all;
	size_t n_all, cap_all;
	/* the blocks and their pc maps, all freed at once by a flush */
	struct tc_arena arena;
	/* the preloaded region (invariant 7): its two views, the blocks
	 * installed in place since the last flush (install order), the
	 * longest one's code length */
	uint8_t *pre_rw, *pre_rx;
	size_t pre_len;
	struct tcache_block **pre;
	size_t n_pre, cap_pre;
	struct tcache_block **pre_page; /* per 4 KiB of it: the blocks starting there */
	uint64_t *pre_live;		/* a bit per 16 bytes: a live block starts there */
	uint32_t pre_max_code;
	struct tcache_stats stats;
	int perf_map_fd; /* -1: none (tcache_set_perf_map) */
};

static void uibl_range_reset(struct tcache *tc)
{
	tc->uibl_lo = ~(gva_t)0;
	tc->uibl_hi = 0;
}

static void ibl_empty(struct vcpu_ibl_entry *t, unsigned n);

/* A tag no uibl entry carries for the current address space; after
 * VCPU_UIBL_TAG_MAX of them the table is emptied and they start again. */
static void utag_fresh(struct tcache *tc)
{
	if (tc->utag_next == 0 || tc->utag_next > VCPU_UIBL_TAG_MAX) {
		ibl_empty(tc->abi->uibl, VCPU_UIBL_ENTRIES);
		for (unsigned i = 0; i < UIBL_PCIDS; i++)
			tc->upcid[i].used = false;
		tc->utag_next = 1;
	}
	tc->abi->uibl_tag = (uint64_t)tc->utag_next++ << VCPU_UIBL_TAG_SHIFT;
	tc->stats.uibl_tags++;
	uibl_range_reset(tc); /* [uibl_lo, uibl_hi]: the current tag's RIPs */
}

/* The guest RIP of a uibl key (bit 63 set: an empty entry). */
static uint64_t ukey_rip(uint64_t key)
{
	return key & ((1ull << VCPU_UIBL_TAG_SHIFT) - 1);
}

/* Empty an IBL table of n entries. */
static void ibl_empty(struct vcpu_ibl_entry *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		t[i].guest_rip = VCPU_IBL_EMPTY(i);
}

/* b's entry in its IBL table (ibl[] or, for a user block, uibl[]). */
static unsigned ibl_index(const struct tcache_block *b)
{
	return (unsigned)(b->user ? VCPU_UIBL_INDEX(b->blk.guest_start)
				  : VCPU_IBL_INDEX(b->blk.guest_start));
}

static unsigned hash_va(gva_t va)
{
	return (unsigned)((va ^ (va >> 17) ^ (va >> 31)) & ((1u << TCACHE_HASH_BITS) - 1));
}

static unsigned hash_page(gpa_t page)
{
	uint64_t p = page >> GUEST_PAGE_SHIFT;
	return (unsigned)((p ^ (p >> TCACHE_PAGE_BITS)) & ((1u << TCACHE_PAGE_BITS) - 1));
}

/* Put b on the list of the region page it starts in (the latest first). */
static void pre_page_put(struct tcache *tc, struct tcache_block *b)
{
	size_t pg = (size_t)(b->blk.code - tc->pre_rx) >> 12;
	b->host_next = tc->pre_page[pg];
	tc->pre_page[pg] = b;
}

/* The live bit of region offset off (a live block installed in place there). */
static bool pre_live(const struct tcache *tc, size_t off)
{
	return tc->pre_live[off >> 10] >> ((off >> 4) & 63) & 1;
}

static void pre_live_set(struct tcache *tc, size_t off, bool live)
{
	uint64_t bit = 1ull << ((off >> 4) & 63);
	tc->pre_live[off >> 10] =
	    live ? tc->pre_live[off >> 10] | bit : tc->pre_live[off >> 10] & ~bit;
}

enum bt_status tcache_create(size_t code_size, struct guestmem *gm, struct vcpu_abi *abi,
			     struct tcache **out)
{
	if (!out || !abi || code_size == 0 || code_size > (1ull << 31))
		return BT_ERR_INVALID; /* rel32 chains must reach across the cache */
	struct tcache *tc = calloc(1, sizeof(*tc));
	if (!tc)
		return BT_ERR_NOMEM;
	enum bt_status s = tc_cache_create(code_size, &tc->code);
	if (s != BT_OK) {
		free(tc);
		bt_err(LOG_TC, "code cache: cannot allocate %zu bytes of code memory", code_size);
		return s;
	}
	tc->gm = gm;
	tc->abi = abi;
	tc->size = code_size;
	tc->perf_map_fd = -1;
	ibl_empty(abi->ibl, VCPU_IBL_ENTRIES);
	utag_fresh(tc); /* the first tag empties uibl */
	*out = tc;
	return BT_OK;
}

static void patch_rel32(struct tcache *tc, struct tcache_block *b, unsigned i, const uint8_t *dst);

/* Invariant 7: the preloaded region back to its owner's bytes. */
static void pre_restore(struct tcache *tc)
{
	for (size_t k = 0; k < tc->n_pre; k++) {
		struct tcache_block *b = tc->pre[k];
		for (unsigned i = 0; !b->dead && i < b->blk.n_exits; i++)
			if (b->out[i].to)
				patch_rel32(tc, b, i, b->blk.code + b->blk.exits[i].stub_off);
	}
	tc->n_pre = 0;
	tc->pre_max_code = 0;
	if (tc->pre_page)
		memset(tc->pre_page, 0, ((tc->pre_len >> 12) + 1) * sizeof(tc->pre_page[0]));
	if (tc->pre_live)
		memset(tc->pre_live, 0, ((tc->pre_len >> 10) + 1) * sizeof(tc->pre_live[0]));
}

static void free_blocks(struct tcache *tc)
{
	pre_restore(tc);
	tc_arena_reset(&tc->arena);
	tc->n_all = 0;
	for (unsigned k = 0; k < 2; k++)
		for (unsigned i = 0; i < (1u << TCACHE_PAGE_BITS); i++) {
			struct tcache_page *p = tc->pages[k][i], *n;
			for (; p; p = n) {
				n = p->next;
				if (k == IDX_GPA && tc->gm)
					guestmem_page_clear_flags(tc->gm, p->page,
								  GUESTMEM_PAGE_CODE);
				free(p);
			}
			tc->pages[k][i] = NULL;
		}
	tc->live_low = 0;
	memset(tc->hash, 0, sizeof(tc->hash));
	ibl_empty(tc->abi->ibl, VCPU_IBL_ENTRIES);
	ibl_empty(tc->abi->uibl, VCPU_UIBL_ENTRIES);
	uibl_range_reset(tc);
	tcache_uibl_forget(tc);
	tc->used = 0;
	tc_cache_reset(tc->code);
}

void tcache_destroy(struct tcache *tc)
{
	if (!tc)
		return;
	free_blocks(tc);
	tc_arena_destroy(&tc->arena);
	free(tc->all);
	free(tc->pre);
	free(tc->pre_live);
	free(tc->pre_page);
	free(tc->victims);
	tc_cache_destroy(tc->code);
	free(tc);
}

void tcache_flush(struct tcache *tc)
{
	free_blocks(tc);
	tc->stats.flushes++;
}

/* Point exit i's rel32 at host address dst. */
static void patch_rel32(struct tcache *tc, struct tcache_block *b, unsigned i, const uint8_t *dst)
{
	enum bt_status s =
	    tc_cache_patch_rel32(tc->code, b->blk.code, b->blk.exits[i].patch_off, dst);
	/* install() checked patch_off; both ends are in the cache */
	BT_ASSERT(s == BT_OK);
}

static bool exit_chainable(const struct bt_exit *e)
{
	switch (e->kind) {
	case XLAT_EXIT_JMP:
	case XLAT_EXIT_JCC_TAKEN:
	case XLAT_EXIT_JCC_FALL:
	case XLAT_EXIT_CALL:
	case XLAT_EXIT_FALL:
		return e->patch_off != UINT32_MAX;
	default:
		return false;
	}
}

static void unlink_out(struct tcache *tc, struct tcache_block *b, unsigned i)
{
	struct tcache_link *l = &b->out[i];
	if (!l->to)
		return;
	if (l->prev)
		l->prev->next = l->next;
	else
		l->to->incoming = l->next;
	if (l->next)
		l->next->prev = l->prev;
	patch_rel32(tc, b, i, b->blk.code + b->blk.exits[i].stub_off);
	l->to = NULL;
	l->prev = l->next = NULL;
	tc->stats.unchains++;
}

/* Invariant 5: every page of `to` is a page of `from`, virtual and physical. */
static bool user_chain_safe(const struct tcache_block *from, const struct tcache_block *to)
{
	for (unsigned s = 0; s < 2; s++) {
		if (to->pg[IDX_VA][s] == TCACHE_NO_PAGE)
			continue;
		bool found = false;
		for (unsigned t = 0; t < 2; t++)
			if (from->pg[IDX_VA][t] == to->pg[IDX_VA][s] &&
			    from->pg[IDX_GPA][t] == to->pg[IDX_GPA][s])
				found = true;
		if (!found)
			return false;
	}
	return true;
}

enum bt_status tcache_chain(struct tcache *tc, struct tcache_block *from, unsigned exit,
			    struct tcache_block *to)
{
	if (!from || !to || from->dead || to->dead || exit >= from->blk.n_exits)
		return BT_ERR_INVALID;
	struct bt_exit *e = &from->blk.exits[exit];
	if (!exit_chainable(e) || e->target != to->blk.guest_start || from->user != to->user ||
	    from->step || to->step)
		return BT_ERR_INVALID;
	if (from->user && !user_chain_safe(from, to)) {
		tc->stats.user_chain_refused++;
		return BT_ERR_INVALID;
	}
	if (from->out[exit].to == to)
		return BT_OK;
	unlink_out(tc, from, exit);
	struct tcache_link *l = &from->out[exit];
	l->from = from;
	l->to = to;
	l->prev = NULL;
	l->next = to->incoming;
	if (to->incoming)
		to->incoming->prev = l;
	to->incoming = l;
	patch_rel32(tc, from, exit, to->blk.code);
	tc->stats.chains++;
	return BT_OK;
}

static struct tcache_page **page_bucket(struct tcache *tc, unsigned k, uint64_t page)
{
	return &tc->pages[k][hash_page(page)];
}

static struct tcache_page *page_get(struct tcache *tc, unsigned k, uint64_t page, bool create)
{
	page &= GUEST_PAGE_MASK;
	struct tcache_page **bucket = page_bucket(tc, k, page);
	for (struct tcache_page *p = *bucket; p; p = p->next)
		if (p->page == page)
			return p;
	if (!create)
		return NULL;
	struct tcache_page *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->page = page;
	p->next = *bucket;
	*bucket = p;
	if (k == IDX_GPA && tc->gm)
		guestmem_page_set_flags(tc->gm, page, GUESTMEM_PAGE_CODE);
	return p;
}

static void page_free(struct tcache *tc, unsigned k, struct tcache_page *p)
{
	struct tcache_page **pp = page_bucket(tc, k, p->page);
	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	/* No code left on a physical page: stop watching its writes. */
	if (k == IDX_GPA && tc->gm)
		guestmem_page_clear_flags(tc->gm, p->page, GUESTMEM_PAGE_CODE);
	free(p);
}

static void page_remove_block(struct tcache *tc, unsigned k, struct tcache_block *b, unsigned slot)
{
	struct tcache_page *p = page_get(tc, k, b->pg[k][slot], false);
	if (!p)
		return;
	struct tcache_block **pp = &p->blocks;
	while (*pp) {
		struct tcache_block *cur = *pp;
		unsigned cs = (cur->pg[k][0] & GUEST_PAGE_MASK) == p->page ? 0 : 1;
		if (cur == b) {
			*pp = cur->pg_next[k][cs];
			break;
		}
		pp = &cur->pg_next[k][cs];
	}
	if (!p->blocks)
		page_free(tc, k, p);
}

static void page_add_block(struct tcache_page *p, unsigned k, struct tcache_block *b, unsigned slot)
{
	b->pg_next[k][slot] = p->blocks;
	p->blocks = b;
}

static void hash_remove(struct tcache *tc, struct tcache_block *b)
{
	struct tcache_block **pp = &tc->hash[hash_va(b->blk.guest_start)];
	while (*pp && *pp != b)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = b->hash_next;
}

void tcache_invalidate_block(struct tcache *tc, struct tcache_block *b)
{
	if (!b || b->dead)
		return;
	while (b->incoming)
		unlink_out(tc, b->incoming->from, (unsigned)(b->incoming - b->incoming->from->out));
	for (unsigned i = 0; i < b->blk.n_exits; i++)
		unlink_out(tc, b, i);
	hash_remove(tc, b);
	for (unsigned k = 0; k < 2; k++)
		for (unsigned slot = 0; slot < 2; slot++)
			if (b->pg[k][slot] != TCACHE_NO_PAGE)
				page_remove_block(tc, k, b, slot);
	if (!(b->blk.guest_start >> 63) && !b->user)
		tc->live_low--;
	unsigned ix = ibl_index(b);
	struct vcpu_ibl_entry *ie = &(b->user ? tc->abi->uibl : tc->abi->ibl)[ix];
	uint64_t rip = b->user ? ukey_rip(ie->guest_rip) : ie->guest_rip;
	if (rip == b->blk.guest_start && ie->host == (uint64_t)(uintptr_t)b->blk.code)
		ie->guest_rip = VCPU_IBL_EMPTY(ix);
	if (b->in_place)
		pre_live_set(tc, (size_t)(b->blk.code - tc->pre_rx), false);
	b->dead = 1;
	tc->stats.invalidations++;
}

/* Do b's guest bytes on physical page `page` meet page offsets [lo, hi)?
 * A block whose two virtual pages map to the one physical page is taken
 * to meet every write to it. */
static bool bytes_meet(const struct tcache_block *b, gpa_t page, uint32_t lo, uint32_t hi)
{
	uint32_t first = (uint32_t)(b->blk.guest_start & ~GUEST_PAGE_MASK);
	uint32_t end = first + b->blk.guest_len; /* past its last byte, from page 0's start */
	if (b->pg[IDX_GPA][1] == TCACHE_NO_PAGE)
		return first < hi && lo < end;
	if (b->pg[IDX_GPA][0] == b->pg[IDX_GPA][1])
		return true;
	if (b->pg[IDX_GPA][0] == page)
		return first < hi;		     /* its bytes run to the end of this page */
	return lo < end - (uint32_t)GUEST_PAGE_SIZE; /* from this page's start */
}

unsigned tcache_invalidate_range(struct tcache *tc, gpa_t gpa, size_t len)
{
	gpa_t page = gpa & GUEST_PAGE_MASK;
	uint32_t lo = (uint32_t)(gpa - page);
	uint32_t hi = len >= GUEST_PAGE_SIZE - lo ? (uint32_t)GUEST_PAGE_SIZE : lo + (uint32_t)len;
	unsigned n = 0;
	if (len == 0)
		return 0;
	/* Start over after each kill: killing a page's last block frees the
	 * page node, and unchaining may reorder nothing else. */
	for (;;) {
		struct tcache_page *p = page_get(tc, IDX_GPA, page, false);
		struct tcache_block *b = p ? p->blocks : NULL;
		while (b && !bytes_meet(b, page, lo, hi)) {
			unsigned slot = b->pg[IDX_GPA][0] == page ? 0 : 1;
			b = b->pg_next[IDX_GPA][slot];
		}
		if (!b)
			break;
		tcache_invalidate_block(tc, b);
		n++;
	}
	if (n)
		tc->stats.page_invalidations++;
	return n;
}

unsigned tcache_invalidate_page(struct tcache *tc, gpa_t gpa)
{
	return tcache_invalidate_range(tc, gpa & GUEST_PAGE_MASK, GUEST_PAGE_SIZE);
}

unsigned tcache_invalidate_va(struct tcache *tc, gva_t lo, gva_t hi)
{
	unsigned n = 0;
	if (hi <= lo)
		return 0;
	if (((hi - lo) >> GUEST_PAGE_SHIFT) > 4096) { /* a huge range: scan the blocks */
		for (size_t i = 0; i < tc->n_all + tc->n_pre; i++) {
			struct tcache_block *b =
			    i < tc->n_all ? tc->all[i] : tc->pre[i - tc->n_all];
			if (!b->dead && !b->user && b->blk.guest_start < hi &&
			    b->blk.guest_start + b->blk.guest_len > lo) {
				tcache_invalidate_block(tc, b);
				n++;
			}
		}
		return n;
	}
	for (gva_t pg = lo & GUEST_PAGE_MASK; pg < hi; pg += GUEST_PAGE_SIZE) {
		struct tcache_page *p = page_get(tc, IDX_VA, pg, false);
		/* re-look the page up after each kill: the last one frees it */
		while (p) {
			struct tcache_block *b = p->blocks;
			while (b && b->user)
				b = b->pg_next[IDX_VA][b->pg[IDX_VA][0] == pg ? 0 : 1];
			if (!b)
				break;
			tcache_invalidate_block(tc, b);
			n++;
			p = page_get(tc, IDX_VA, pg, false);
		}
	}
	return n;
}

uint64_t tcache_live_low(const struct tcache *tc)
{
	return tc->live_low;
}

void tcache_uibl_drop(struct tcache *tc, gva_t lo, gva_t hi)
{
	/* a block starting on the page before lo may end in the window */
	lo = lo >= GUEST_PAGE_SIZE ? lo - GUEST_PAGE_SIZE : 0;
	if (hi <= tc->uibl_lo || lo > tc->uibl_hi)
		return; /* the current space put nothing there: the common invlpg */
	/* invlpg acts on the current address space only: a fresh tag drops
	 * all of its entries at once, more than the window but no scan of
	 * the table (other spaces' entries keep their tags) */
	utag_fresh(tc);
}

void tcache_uibl_clear(struct tcache *tc)
{
	utag_fresh(tc); /* the current space's entries no longer match */
}

/* Put b into uibl under the current tag. */
static void uibl_put(struct tcache *tc, struct tcache_block *b)
{
	struct vcpu_ibl_entry *ie = &tc->abi->uibl[ibl_index(b)];
	if (b->blk.guest_start < tc->uibl_lo)
		tc->uibl_lo = b->blk.guest_start;
	if (b->blk.guest_start > tc->uibl_hi)
		tc->uibl_hi = b->blk.guest_start;
	ie->guest_rip = b->blk.guest_start | tc->abi->uibl_tag;
	ie->host = (uint64_t)(uintptr_t)b->blk.code;
}

void tcache_uibl_switch(struct tcache *tc, unsigned old_pcid, unsigned new_pcid, bool kept)
{
	unsigned cur = (unsigned)(tc->abi->uibl_tag >> VCPU_UIBL_TAG_SHIFT);
	int slot = -1, lru = -1, found = -1;
	for (unsigned i = 0; i < UIBL_PCIDS; i++) {
		if (tc->upcid[i].used && tc->upcid[i].pcid == old_pcid)
			slot = (int)i;
		if (tc->upcid[i].used && tc->upcid[i].pcid == new_pcid)
			found = (int)i;
		if (!tc->upcid[i].used && lru < 0)
			lru = (int)i;
	}
	if (slot < 0 && lru < 0) /* recycle the least recently used */
		for (unsigned i = 0; i < UIBL_PCIDS; i++)
			if ((int)i != found &&
			    (lru < 0 || tc->upcid[i].stamp < tc->upcid[lru].stamp))
				lru = (int)i;
	if (slot < 0)
		slot = lru;
	/* the old PCID keeps its tag (and so its entries) */
	tc->upcid[slot].used = true;
	tc->upcid[slot].pcid = (uint16_t)old_pcid;
	tc->upcid[slot].tag = (uint16_t)cur;
	tc->upcid[slot].stamp = ++tc->uclock;
	tc->upcid[slot].lo = tc->uibl_lo;
	tc->upcid[slot].hi = tc->uibl_hi;
	if (found >= 0 && found != slot) {
		tc->upcid[found].used = false; /* the current PCID has no slot */
		if (kept) {
			tc->abi->uibl_tag = (uint64_t)tc->upcid[found].tag << VCPU_UIBL_TAG_SHIFT;
			tc->stats.uibl_kept++;
			tc->uibl_lo = tc->upcid[found].lo;
			tc->uibl_hi = tc->upcid[found].hi;
			return;
		}
	}
	utag_fresh(tc);
}

void tcache_uibl_forget(struct tcache *tc)
{
	for (unsigned i = 0; i < UIBL_PCIDS; i++)
		tc->upcid[i].used = false;
	utag_fresh(tc);
}

size_t tcache_revalidate_pages(struct tcache *tc, gpa_t (*page_gpa)(void *opaque, gva_t page),
			       void *opaque)
{
	/* first find the victims, then kill them: a kill edits the page lists */
	size_t n = 0, killed = 0;
	for (unsigned i = 0; i < (1u << TCACHE_PAGE_BITS); i++)
		for (struct tcache_page *p = tc->pages[IDX_VA][i]; p; p = p->next) {
			bool low = !(p->page >> 63);
			if (low && !tc->live_low)
				continue; /* user blocks only: tcache.h invariant 5 */
			gpa_t g = page_gpa(opaque, p->page);
			if (!low && !p->mixed && p->gpa == g)
				continue; /* every block on it still maps */
			for (struct tcache_block *b = p->blocks, *next; b; b = next) {
				unsigned slot =
				    (b->pg[IDX_VA][0] & GUEST_PAGE_MASK) == p->page ? 0 : 1;
				next = b->pg_next[IDX_VA][slot];
				if (b->user || b->dead || b->gpa[slot] == g)
					continue;
				if (n == tc->cap_victims) {
					size_t nc = n ? n * 2 : 1024;
					struct tcache_block **nv =
					    realloc(tc->victims, nc * sizeof(*nv));
					if (!nv) { /* out of memory: drop everything, safely */
						tcache_flush(tc);
						return 0;
					}
					tc->victims = nv;
					tc->cap_victims = nc;
				}
				tc->victims[n++] = b;
			}
			if (!low) { /* the survivors all agree with g */
				p->gpa = g;
				p->mixed = false;
			}
		}
	for (size_t k = 0; k < n; k++)
		if (!tc->victims[k]->dead) {
			tcache_invalidate_block(tc, tc->victims[k]);
			killed++;
		}
	return killed;
}

uint64_t tcache_generation(const struct tcache *tc)
{
	return tc->stats.flushes;
}

struct tcache_block *tcache_lookup(struct tcache *tc, gva_t va)
{
	tc->stats.lookups++;
	for (struct tcache_block *b = tc->hash[hash_va(va)]; b; b = b->hash_next)
		if (b->blk.guest_start == va && !b->user && !b->step) {
			tc->stats.lookup_hits++;
			return b;
		}
	return NULL;
}

/* The live block at va of a kind: user or kernel, step or not; user
 * blocks also by their first guest-physical page. */
static struct tcache_block *find(struct tcache *tc, gva_t va, gpa_t gpa0, bool user, bool step)
{
	tc->stats.lookups++;
	gpa0 &= GUEST_PAGE_MASK;
	for (struct tcache_block *b = tc->hash[hash_va(va)]; b; b = b->hash_next)
		if (b->blk.guest_start == va && b->user == user && b->step == step &&
		    (!user || b->gpa[0] == gpa0)) {
			tc->stats.lookup_hits++;
			return b;
		}
	return NULL;
}

struct tcache_block *tcache_lookup_user(struct tcache *tc, gva_t va, gpa_t gpa0)
{
	return find(tc, va, gpa0, true, false);
}

struct tcache_block *tcache_lookup_step(struct tcache *tc, gva_t va, gpa_t gpa0)
{
	return find(tc, va, gpa0, true, true);
}

struct tcache_block *tcache_find_host(struct tcache *tc, const void *pc)
{
	const uint8_t *p = pc;
	if (tc->pre_len && (uintptr_t)p >= (uintptr_t)tc->pre_rx &&
	    (uintptr_t)p - (uintptr_t)tc->pre_rx < tc->pre_len) {
		/* the blocks installed in place starting on pc's region page or
		 * the pages before it, as far back as the longest one reaches;
		 * a live one before a dead one at the same place */
		size_t off = (size_t)(p - tc->pre_rx);
		size_t first = off >= tc->pre_max_code ? (off - tc->pre_max_code) >> 12 : 0;
		struct tcache_block *found = NULL;
		for (size_t pg = off >> 12;; pg--) {
			for (struct tcache_block *b = tc->pre_page[pg]; b; b = b->host_next)
				if (p >= b->blk.code && p < b->blk.code + b->blk.code_len &&
				    (!found || found->dead))
					found = b;
			if (pg == first || (found && !found->dead))
				break;
		}
		return found;
	}
	size_t lo = 0, hi = tc->n_all;
	while (lo < hi) { /* blocks are in ascending host order */
		size_t mid = lo + (hi - lo) / 2;
		struct tcache_block *b = tc->all[mid];
		if (p < b->blk.code)
			hi = mid;
		else if (p >= b->blk.code + b->blk.code_len)
			lo = mid + 1;
		else
			return b;
	}
	return NULL;
}

void tcache_ibl_insert(struct tcache *tc, struct tcache_block *b)
{
	if (!b || b->dead || b->step)
		return;
	if (b->user) {
		uibl_put(tc, b);
		return;
	}
	struct vcpu_ibl_entry *ie = &tc->abi->ibl[ibl_index(b)];
	ie->guest_rip = b->blk.guest_start;
	ie->host = (uint64_t)(uintptr_t)b->blk.code;
}

static enum bt_status install(struct tcache *tc, const struct bt_block *xb, gpa_t gpa0, gpa_t gpa1,
			      enum tcache_origin origin, bool user, bool step,
			      struct tcache_block **out)
{
	if (!tc || !xb || !out || xb->refusal != XLAT_OK || !xb->code || xb->code_len == 0 ||
	    xb->n_exits > XLAT_MAX_EXITS)
		return BT_ERR_INVALID;
	for (uint32_t i = 0; i < xb->n_exits; i++) {
		const struct bt_exit *e = &xb->exits[i];
		if (e->stub_off >= xb->code_len ||
		    (e->patch_off != UINT32_MAX && e->patch_off + 4 > xb->code_len))
			return BT_ERR_FORMAT; /* a corrupt database row must not patch outside */
	}
	if (xb->code_len > tc->size)
		return BT_ERR_RANGE;
	/* invariant 7: a kernel block whose code is in the preloaded region
	 * runs there, unless a live block does already */
	uint8_t *host;
	const uint8_t *code = xb->code;
	uintptr_t at = (uintptr_t)code, rw = (uintptr_t)tc->pre_rw;
	size_t pre_off = tc->pre_len && at >= rw ? (size_t)(at - rw) : 0;
	bool from_pre = tc->pre_len && at >= rw && pre_off < tc->pre_len &&
			xb->code_len <= tc->pre_len - pre_off;
	bool in_place = from_pre && !user && !step && (pre_off & 15) == 0;
	if (in_place)
		in_place = !pre_live(tc, pre_off);
	if (!BT_VEC_RESERVE(tc->all, tc->cap_all, tc->n_all + 1, 1024) ||
	    !BT_VEC_RESERVE(tc->pre, tc->cap_pre, tc->n_pre + 1, 1024))
		return BT_ERR_NOMEM;
	if (in_place) {
		host = tc->pre_rx + pre_off;
	} else {
		if (tc_cache_add(tc->code, code, xb->code_len, &host) != BT_OK) {
			bt_info(LOG_TC, "code cache full (%zu bytes): flushing", tc->used);
			tcache_flush(tc);
			if (tc_cache_add(tc->code, code, xb->code_len, &host) != BT_OK)
				return BT_ERR_RANGE;
		}
		tc->used += xb->code_len;
	}
	if (xb->pcmap_len > TC_ARENA_MAX)
		return BT_ERR_FORMAT;
	size_t n_ex = xb->n_exits;
	struct tcache_block *b = tc_arena_alloc(&tc->arena, sizeof(*b) + n_ex * sizeof(b->out[0]));
	if (!b)
		return BT_ERR_NOMEM;
	b->out = (struct tcache_link *)(void *)(b + 1);
	/* the record, then where its code and pc map are now */
	b->blk = *xb;
	b->blk.code = host;
	b->blk.pcmap = NULL;
	if (xb->pcmap_len && in_place) {
		b->blk.pcmap = xb->pcmap; /* borrowed: tcache_preload */
	} else if (xb->pcmap_len) {
		/* a failure below leaves these bytes unused until the next flush */
		uint8_t *m = tc_arena_alloc(&tc->arena, xb->pcmap_len);
		if (!m)
			return BT_ERR_NOMEM;
		memcpy(m, xb->pcmap, xb->pcmap_len);
		b->blk.pcmap = m;
	}
	/* Kill a block at the same va (and, for user blocks, the same page)
	 * first: that may free page nodes. */
	struct tcache_block *old = find(tc, xb->guest_start, gpa0, user, step);
	if (old)
		tcache_invalidate_block(tc, old);
	gva_t va0 = xb->guest_start & GUEST_PAGE_MASK;
	gva_t va_last =
	    (xb->guest_start + (xb->guest_len ? xb->guest_len - 1 : 0)) & GUEST_PAGE_MASK;
	uint64_t pg[2][2] = {
	    {gpa0 & GUEST_PAGE_MASK,
	     gpa1 == TCACHE_NO_PAGE ? TCACHE_NO_PAGE : (gpa1 & GUEST_PAGE_MASK)},
	    {va0, va_last != va0 ? va_last : TCACHE_NO_PAGE},
	};
	struct tcache_page *pp[2][2] = {{NULL, NULL}, {NULL, NULL}};
	for (unsigned k = 0; k < 2; k++)
		for (unsigned slot = 0; slot < 2; slot++)
			if (pg[k][slot] != TCACHE_NO_PAGE &&
			    !(pp[k][slot] = page_get(tc, k, pg[k][slot], true)))
				return BT_ERR_NOMEM; /* empty page nodes are harmless */

	b->gpa[0] = pg[0][0];
	b->gpa[1] = pg[0][1];
	memcpy(b->pg, pg, sizeof(pg));
	b->origin = (uint8_t)origin;
	b->user = user;
	b->step = step;
	b->in_place = in_place;
	if (from_pre && !in_place) /* a copy of bytes a live block may chain */
		for (unsigned i = 0; i < b->blk.n_exits; i++)
			if (b->blk.exits[i].patch_off != UINT32_MAX)
				patch_rel32(tc, b, i, b->blk.code + b->blk.exits[i].stub_off);

	unsigned h = hash_va(b->blk.guest_start);
	b->hash_next = tc->hash[h];
	tc->hash[h] = b;
	for (unsigned k = 0; k < 2; k++)
		for (unsigned slot = 0; slot < 2; slot++)
			if (pp[k][slot]) {
				struct tcache_page *p = pp[k][slot];
				if (k == IDX_VA && !p->blocks)
					p->gpa = b->gpa[slot];
				else if (k == IDX_VA && p->gpa != b->gpa[slot])
					p->mixed = true;
				page_add_block(p, k, b, slot);
			}
	if (!(b->blk.guest_start >> 63) && !user)
		tc->live_low++;
	if (user)
		tc->stats.user_installed++;
	if (in_place) {
		tc->pre[tc->n_pre++] = b;
		pre_page_put(tc, b);
		pre_live_set(tc, pre_off, true);
		if (b->blk.code_len > tc->pre_max_code)
			tc->pre_max_code = b->blk.code_len;
		tc->stats.in_place++;
	} else {
		tc->all[tc->n_all++] = b;
	}
	if (tc->perf_map_fd >= 0)
		/* perf's JIT map: host start, length, name (k/u, guest va) */
		dprintf(tc->perf_map_fd, "%lx %x btvm:%c:%llx\n", (unsigned long)(uintptr_t)host,
			(unsigned)xb->code_len, user ? 'u' : 'k',
			(unsigned long long)xb->guest_start);
	tc->stats.installed++;
	tc->stats.code_bytes += xb->code_len;
	if (origin == TCACHE_FROM_DB)
		tc->stats.from_db++;
	else
		tc->stats.from_runtime++;
	*out = b;
	return BT_OK;
}

enum bt_status tcache_install(struct tcache *tc, const struct bt_block *xb, gpa_t gpa0, gpa_t gpa1,
			      enum tcache_origin origin, struct tcache_block **out)
{
	return install(tc, xb, gpa0, gpa1, origin, false, false, out);
}

enum bt_status tcache_install_user(struct tcache *tc, const struct bt_block *xb, gpa_t gpa0,
				   gpa_t gpa1, struct tcache_block **out)
{
	return install(tc, xb, gpa0, gpa1, TCACHE_FROM_RUNTIME, true, false, out);
}

enum bt_status tcache_install_step(struct tcache *tc, const struct bt_block *xb, gpa_t gpa0,
				   gpa_t gpa1, bool user, struct tcache_block **out)
{
	return install(tc, xb, gpa0, gpa1, TCACHE_FROM_RUNTIME, user, true, out);
}

void tcache_set_perf_map(struct tcache *tc, int fd)
{
	tc->perf_map_fd = fd;
}

void tcache_for_each(struct tcache *tc, void (*fn)(void *opaque, struct tcache_block *b),
		     void *opaque)
{
	for (size_t i = 0; i < tc->n_all; i++)
		if (!tc->all[i]->dead)
			fn(opaque, tc->all[i]);
	for (size_t i = 0; i < tc->n_pre; i++)
		if (!tc->pre[i]->dead)
			fn(opaque, tc->pre[i]);
}

enum bt_status tcache_preload(struct tcache *tc, size_t len, uint8_t **rw)
{
	if (!tc || !rw || tc->pre_len || tc->n_all || tc->used)
		return BT_ERR_INVALID;
	uint8_t *w, *x;
	tc->pre_live = calloc((len >> 10) + 1, sizeof(tc->pre_live[0]));
	tc->pre_page = calloc((len >> 12) + 1, sizeof(tc->pre_page[0]));
	enum bt_status s =
	    tc->pre_live && tc->pre_page ? tc_cache_preload(tc->code, len, &w, &x) : BT_ERR_NOMEM;
	if (s != BT_OK) {
		free(tc->pre_live);
		free(tc->pre_page);
		tc->pre_live = NULL;
		tc->pre_page = NULL;
		return s;
	}
	tc->pre_rw = w;
	tc->pre_rx = x;
	tc->pre_len = len;
	*rw = w;
	return BT_OK;
}

void tcache_get_stats(const struct tcache *tc, struct tcache_stats *out)
{
	*out = tc->stats;
}
