/*
 * The C half of runtime/tc: vCPU area lifetime, the GS base, tc_run, the
 * call-out dispatcher and the code cache.
 *
 * Invariants
 *  1. vcpu.callout[] holds only the trampolines of tc_entry.S; the runtime's
 *     handlers are reached through vcpu.host_ctx -> struct tc_vcpu.
 *  2. vcpu.rflags seen by C code outside tc_run is the guest view:
 *     arithmetic flags, DF, bit 1, virtual IF (irq byte 0) and AC.
 *  3. The code cache never has a page both writable and executable in one
 *     mapping: RW and RX are two views of one memfd, at unrelated random
 *     addresses (no fixed distance between them).
 */
#include "runtime/tc/tc.h"
#include "runtime/tc/tc_int.h"
#include "pretrans/base/log.h"

#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

uint64_t tc_enter_asm(void);
void tc_exit_asm(void);
void tc_co_mem(void);
void tc_co_string(void);
int tc_callout_c(struct tc_vcpu *t, uint64_t which);

enum bt_status tc_vcpu_init(struct tc_vcpu *t, const struct tc_handlers *h, void *opaque)
{
	if (!t || !h || !h->mem)
		return BT_ERR_INVALID;
	memset(t, 0, sizeof(*t));
	void *p = mmap(NULL, sizeof(struct vcpu_abi), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return BT_ERR_NOMEM;
	t->abi = p;
	t->h = *h;
	t->opaque = opaque;
	t->abi->callout[VCPU_CO_EXIT] = (uint64_t)(uintptr_t)tc_exit_asm;
	t->abi->callout[VCPU_CO_MEM] = (uint64_t)(uintptr_t)tc_co_mem;
	t->abi->callout[VCPU_CO_STRING] = (uint64_t)(uintptr_t)tc_co_string;
	t->abi->host_ctx = (uint64_t)(uintptr_t)t;
	t->abi->flags_sp_save = (uint64_t)(uintptr_t)&t->abi->spill_flags + 8;
	t->abi->flags_sp_load = (uint64_t)(uintptr_t)&t->abi->spill_flags;
	t->abi->rflags = 2;
	/* a valid x87/SSE image to start from (MXCSR reserved bits clear) */
	__asm__ volatile("fxsave64 %0" : "=m"(t->abi->fxsave));
	tc_tlb_flush(t);
	tc_ibl_flush(t);
	return BT_OK;
}

void tc_vcpu_fini(struct tc_vcpu *t)
{
	if (t && t->abi)
		munmap(t->abi, sizeof(struct vcpu_abi));
	if (t)
		t->abi = NULL;
}

enum bt_status tc_vcpu_activate(struct tc_vcpu *t)
{
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)t->abi) != 0) {
		bt_err(LOG_TC, "tc: arch_prctl(ARCH_SET_GS) failed: %s", strerror(errno));
		return BT_ERR_IO;
	}
	return BT_OK;
}

static uint64_t guest_flags(const struct vcpu_abi *a, uint64_t host)
{
	return (host & TC_GUEST_FLAGS_MASK) | 2 | ((uint64_t)(a->irq & 1) << 9) |
	       ((uint64_t)(a->ac & 1) << 18);
}

int tc_run(struct tc_vcpu *t, const void *code)
{
	struct vcpu_abi *a = t->abi;
	a->enter_target = (uint64_t)(uintptr_t)code;
	int r = (int)tc_enter_asm();
	a->rflags = guest_flags(a, a->rflags);
	return r;
}

int tc_callout_c(struct tc_vcpu *t, uint64_t which)
{
	struct vcpu_abi *a = t->abi;
	int r = 1;
	switch (which) {
	case VCPU_CO_MEM: {
		uint8_t *host = NULL;
		struct tc_mem_req q = tc_mem_req(a);
		tc_mem_take(t, &q); /* before anything can fault */
		t->probe_miss = true;
		r = t->h.mem(t, a->mem_va, q.size, q.write, &host);
		t->probe_miss = false;
		if (r == 0)
			tc_mem_served(a, &q, host);
		break;
	}
	case VCPU_CO_STRING:
		r = tc_string_run(t);
		break;
	default:
		bt_err(LOG_TC, "tc: unknown call-out %llu", (unsigned long long)which);
		break;
	}
	tc_flags_sanitize(a);
	return r;
}

void tc_tlb_flush(struct tc_vcpu *t)
{
	for (unsigned i = 0; i < VCPU_TLB_ENTRIES; i++) {
		t->abi->tlb[i].tag_read = ~0ull;
		t->abi->tlb[i].tag_write = ~0ull;
		t->abi->tlb[i].addend = 0;
		t->abi->tlb[i].gpa_page = 0;
	}
}

void tc_tlb_set(struct tc_vcpu *t, gva_t va, int64_t addend, bool readable, bool writable)
{
	struct vcpu_tlb_entry *e = &t->abi->tlb[VCPU_TLB_INDEX(va)];
	gva_t page = va & GUEST_PAGE_MASK;
	e->tag_read = readable ? page : ~0ull;
	e->tag_write = writable && readable ? page : ~0ull;
	e->addend = addend;
}

void tc_ibl_flush(struct tc_vcpu *t)
{
	for (unsigned i = 0; i < VCPU_IBL_ENTRIES; i++) {
		t->abi->ibl[i].guest_rip = VCPU_IBL_EMPTY(i);
		t->abi->ibl[i].host = 0;
	}
}

void tc_ibl_set(struct tc_vcpu *t, gva_t rip, const void *host)
{
	struct vcpu_ibl_entry *e = &t->abi->ibl[VCPU_IBL_INDEX(rip)];
	e->guest_rip = rip;
	e->host = (uint64_t)(uintptr_t)host;
}

void tc_restore_spills(struct tc_vcpu *t, gva_t guest_rip, uint32_t spilled)
{
	struct vcpu_abi *a = t->abi;
	for (int r = 0; r < VCPU_NGPR; r++)
		if (spilled & (1u << r))
			a->gpr[r] = a->spill[r];
	if (spilled & (1u << 16))
		a->rflags = guest_flags(a, a->spill_flags);
	a->rip = guest_rip;
}

/*
 * The code cache's two views of one memfd (invariant 3, docs/security.md):
 *  - RX, where translated code runs, and RW, where it is written, are
 *    mapped each at its own random address (randomise_map), so the
 *    distance between them is not a constant an attacker could add to a
 *    leaked code address;
 *  - the RW view stays writable: making it writable only during a write
 *    (mprotect around each tc_cache_add / patch) cost 15-25% of the guest
 *    suite's wall time (docs/security.md), so it is not done;
 *  - the memfd is sealed against growing and shrinking (its size is the
 *    cache's; a truncate would turn the RX view into SIGBUS);
 *  - pages are populated ahead of the writer, TC_POPULATE at a time, in
 *    both views (MADV_POPULATE_WRITE on RW, MADV_POPULATE_READ on RX):
 *    on this host a page fault costs 11-15 us, and a first touch would
 *    otherwise fault twice per page (once writing, once executing) --
 *    about 20,000 faults, a quarter of a warm Debian boot's getting-code
 *    time (docs/runtime.md "Getting code").
 */
struct tc_cache {
	int fd;
	uint8_t *rw, *rx;
	size_t size, used;
	size_t populated; /* both views are populated below this offset */
	size_t keep;	  /* the preloaded prefix (tc_cache_preload), kept by resets */
	bool no_populate; /* the host kernel has no MADV_POPULATE_* (< 5.14) */
};

#define TC_POPULATE (2ull << 20)
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define TC_PAGE 4096ull
/* Random placements are 2 MiB aligned in [4 GiB, 64 TiB): far from the
 * program, the heap and the stack, and inside every x86-64 user space. */
#define TC_RAND_ALIGN (2ull << 20)
#define TC_RAND_LO    (4ull << 30)
#define TC_RAND_HI    (64ull << 40)
#define TC_RAND_TRIES 32
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Map fd at a random address (MAP_FIXED_NOREPLACE: never over another
 * mapping); the kernel's choice if no random place is free. */
static void *randomise_map(size_t size, int prot, int fd)
{
	for (int i = 0; i < TC_RAND_TRIES; i++) {
		uint64_t r;
		if (syscall(SYS_getrandom, &r, sizeof(r), 0) != (long)sizeof(r))
			break;
		uint64_t slots = (TC_RAND_HI - TC_RAND_LO - size) / TC_RAND_ALIGN;
		uintptr_t want = (uintptr_t)(TC_RAND_LO + (r % slots) * TC_RAND_ALIGN);
		void *p = mmap((void *)want, size, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
		if (p == (void *)want)
			return p;
		if (p != MAP_FAILED)
			munmap(p, size); /* a kernel without MAP_FIXED_NOREPLACE */
		else if (errno != EEXIST)
			break;
	}
	return mmap(NULL, size, prot, MAP_SHARED, fd, 0);
}

enum bt_status tc_cache_create(size_t size, struct tc_cache **out)
{
	struct tc_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return BT_ERR_NOMEM;
	size = (size + TC_PAGE - 1) & ~(size_t)(TC_PAGE - 1);
	c->size = size;
	c->fd = memfd_create("tc-code-cache", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->fd < 0)
		goto err_free;
	if (ftruncate(c->fd, (off_t)size) != 0 ||
	    fcntl(c->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		goto err_close;
	c->rx = randomise_map(size, PROT_READ | PROT_EXEC, c->fd);
	if (c->rx == MAP_FAILED)
		goto err_close;
	c->rw = randomise_map(size, PROT_READ | PROT_WRITE, c->fd);
	if (c->rw == MAP_FAILED)
		goto err_unmap_rx;
	*out = c;
	return BT_OK;
err_unmap_rx:
	munmap(c->rx, size);
err_close:
	close(c->fd);
err_free:
	bt_err(LOG_TC, "tc: code cache of %zu bytes: %s", size, strerror(errno));
	free(c);
	return BT_ERR_NOMEM;
}

void tc_cache_destroy(struct tc_cache *c)
{
	if (!c)
		return;
	munmap(c->rx, c->size);
	munmap(c->rw, c->size);
	close(c->fd);
	free(c);
}

/* Populate both views up to at least `end` (see struct tc_cache).  Only a
 * speed-up: on failure the pages fault in one by one as before. */
static void populate_to(struct tc_cache *c, size_t end)
{
	size_t to = (end + TC_POPULATE - 1) & ~(size_t)(TC_POPULATE - 1);
	if (to > c->size)
		to = c->size;
	size_t from = c->populated, len = to - from;
	if (madvise(c->rw + from, len, MADV_POPULATE_WRITE) != 0 ||
	    madvise(c->rx + from, len, MADV_POPULATE_READ) != 0) {
		c->no_populate = true;
		return;
	}
	c->populated = to;
}

enum bt_status tc_cache_add(struct tc_cache *c, const void *code, size_t len, uint8_t **rx)
{
	size_t at = (c->used + 15) & ~(size_t)15;
	if (at + len > c->size)
		return BT_ERR_NOMEM;
	if (at + len > c->populated && !c->no_populate)
		populate_to(c, at + len);
	memcpy(c->rw + at, code, len);
	c->used = at + len;
	*rx = c->rx + at;
	return BT_OK;
}

enum bt_status tc_cache_patch_rel32(struct tc_cache *c, const uint8_t *rx, uint32_t off,
				    const uint8_t *target)
{
	if (rx < c->rx || rx + off + 4 > c->rx + c->size || target < c->rx ||
	    target >= c->rx + c->size)
		return BT_ERR_RANGE;
	int32_t rel = (int32_t)(target - (rx + off + 4));
	size_t at = (size_t)(rx - c->rx) + off;
	__atomic_store_n((uint32_t *)(void *)(c->rw + at), (uint32_t)rel, __ATOMIC_RELEASE);
	return BT_OK;
}

void tc_cache_reset(struct tc_cache *c)
{
	c->used = c->keep;
}

enum bt_status tc_cache_preload(struct tc_cache *c, size_t len, uint8_t **rw, uint8_t **rx)
{
	if (c->used != 0 || c->keep != 0 || len == 0)
		return BT_ERR_INVALID;
	len = (len + 15) & ~(size_t)15;
	if (len > c->size - c->size / 4)
		return BT_ERR_NOMEM; /* the run-time translations need room too */
	if (!c->no_populate)
		populate_to(c, len);
	c->used = c->keep = len;
	*rw = c->rw;
	*rx = c->rx;
	return BT_OK;
}
