/*
 * elfimg_check_kernel (see elfimg.h): the rules an opened image must meet
 * before `pretrans build` translates it or the boot loader loads it.  Both
 * call this one function, so an image is refused by both or by neither
 * (apart from the loader's own RAM-layout rules and its ET_EXEC rule), with
 * the same one-line message.
 *
 * Only properties of the file are checked here, never of a machine: where
 * the segments may sit in guest RAM is the boot loader's business.  The
 * rules are applied in a fixed order and the first one broken is reported,
 * so the message for a given file does not depend on who asks.
 */
#include "pretrans/elf/elfimg.h"

#include "pretrans/base/log.h"

#include <elf.h>
#include <stdlib.h>

/* A PT_LOAD that occupies memory: [start, last] (inclusive, so that a
 * segment ending exactly at 2^64 needs no 65-bit arithmetic). */
struct span {
	uint64_t start, last;
	unsigned seg;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seg < y->seg ? -1 : x->seg > y->seg;
}

static bool loaded(const struct elfimg_segment *g)
{
	return g->type == PT_LOAD && g->memsz != 0;
}

static bool holds(uint64_t start, uint64_t len, uint64_t a)
{
	return a >= start && a - start < len;
}

/* Sort the spans and report the first two that share a byte.  Sorted by
 * start, any overlap shows between neighbours: if i < j overlap then
 * start[i+1] <= start[j] <= last[i]. */
static enum bt_status check_overlap(const struct elfimg *img, struct span *sp, size_t n,
				    const char *space)
{
	qsort(sp, n, sizeof(*sp), span_cmp);
	for (size_t i = 1; i < n; i++) {
		if (sp[i].start > sp[i - 1].last)
			continue;
		const struct span *a = &sp[i - 1], *b = &sp[i];
		unsigned lo = BT_MIN(a->seg, b->seg), hi = BT_MAX(a->seg, b->seg);
		bt_err(LOG_ELF,
		       "%s: segments %u and %u overlap in %s memory ([%#llx, %#llx] and "
		       "[%#llx, %#llx])",
		       img->path, lo, hi, space, (unsigned long long)a->start,
		       (unsigned long long)a->last, (unsigned long long)b->start,
		       (unsigned long long)b->last);
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* Segment i's range [base, base + memsz) of one address space must not
 * run past 2^64 (ending exactly at 2^64 is allowed). */
static enum bt_status check_wrap(const struct elfimg *img, unsigned i, const char *space,
				 uint64_t base, uint64_t memsz)
{
	if (base + (memsz - 1) >= base)
		return BT_OK;
	bt_err(LOG_ELF, "%s: segment %u: %s range [%#llx, +%#llx) wraps around the address space",
	       img->path, i, space, (unsigned long long)base, (unsigned long long)memsz);
	return BT_ERR_FORMAT;
}

static enum bt_status check_segments(const struct elfimg *img)
{
	size_t n = 0;
	for (unsigned i = 0; i < img->nsegs; i++) {
		const struct elfimg_segment *g = &img->segs[i];
		if (!loaded(g))
			continue;
		n++;
		BT_TRY(check_wrap(img, i, "physical", g->paddr, g->memsz));
		BT_TRY(check_wrap(img, i, "virtual", g->vaddr, g->memsz));
	}
	if (n == 0) {
		bt_err(LOG_ELF, "%s: no loadable segment", img->path);
		return BT_ERR_FORMAT;
	}
	struct span *sp = malloc(n * sizeof(*sp));
	if (!sp)
		return BT_ERR_NOMEM;
	enum bt_status s = BT_OK;
	for (int pass = 0; pass < 2 && s == BT_OK; pass++) {
		size_t k = 0;
		for (unsigned i = 0; i < img->nsegs; i++) {
			const struct elfimg_segment *g = &img->segs[i];
			if (!loaded(g))
				continue;
			uint64_t a = pass == 0 ? g->paddr : g->vaddr;
			sp[k++] = (struct span){.start = a, .last = a + (g->memsz - 1), .seg = i};
		}
		s = check_overlap(img, sp, n, pass == 0 ? "physical" : "virtual");
	}
	free(sp);
	return s;
}

/* Whether some code range starts inside [start, start + len): a binary
 * search of img->code, which elfimg_open sorted by start (not ET_REL). */
static bool code_starts_in(const struct elfimg *img, uint64_t start, uint64_t len)
{
	size_t lo = 0, hi = img->ncode;
	while (lo < hi) { /* the first range with start >= start */
		size_t mid = lo + (hi - lo) / 2;
		if (img->code[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < img->ncode && holds(start, len, img->code[lo].start);
}

/* Some executable section with bytes starts inside an executable PT_LOAD
 * (by virtual or physical address: section addresses are link addresses,
 * virtual for a vmlinux, but a loader script may use physical ones). */
static enum bt_status check_text(const struct elfimg *img)
{
	for (unsigned i = 0; i < img->nsegs; i++) {
		const struct elfimg_segment *g = &img->segs[i];
		if (loaded(g) && (g->flags & PF_X) &&
		    (code_starts_in(img, g->vaddr, g->memsz) ||
		     code_starts_in(img, g->paddr, g->memsz)))
			return BT_OK;
	}
	bt_err(LOG_ELF,
	       "%s: no executable section (SHF_ALLOC|SHF_EXECINSTR with contents) lies in an "
	       "executable (PF_X) loadable segment",
	       img->path);
	return BT_ERR_FORMAT;
}

/* The segment holding e_entry is looked up as the boot loader does: by
 * physical address first (a kernel's e_entry is physical), then by virtual
 * address.  A shared object (ET_DYN) with e_entry 0 has no entry point. */
static enum bt_status check_entry(const struct elfimg *img)
{
	if (img->type == ET_DYN && img->entry == 0)
		return BT_OK;
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < img->nsegs; i++) {
			const struct elfimg_segment *g = &img->segs[i];
			if (!loaded(g) ||
			    !holds(pass == 0 ? g->paddr : g->vaddr, g->memsz, img->entry))
				continue;
			if (g->flags & PF_X)
				return BT_OK;
			bt_err(LOG_ELF,
			       "%s: entry point %#llx is in segment %u, which is not executable "
			       "(no PF_X)",
			       img->path, (unsigned long long)img->entry, i);
			return BT_ERR_FORMAT;
		}
	bt_err(LOG_ELF, "%s: entry point %#llx is outside every loadable segment", img->path,
	       (unsigned long long)img->entry);
	return BT_ERR_FORMAT;
}

enum bt_status elfimg_check_kernel(const struct elfimg *img)
{
	if (img->type == ET_REL) {
		bt_err(LOG_ELF,
		       "%s: a relocatable object (ET_REL, e.g. a .ko module), not a linked image: "
		       "give the vmlinux (modules are pre-translated with their kernel: `pretrans "
		       "build VMLINUX --modules %s -o OUT.tcdb`)",
		       img->path, img->path);
		return BT_ERR_UNSUPPORTED;
	}
	if (img->nsegs == 0 || (img->phoff & 7) != 0) {
		bt_err(LOG_ELF, "%s: bad or truncated program header table (off %#llx, %zu x %zu)",
		       img->path, (unsigned long long)img->phoff, img->nsegs, sizeof(Elf64_Phdr));
		return BT_ERR_FORMAT;
	}
	BT_TRY(check_segments(img));
	BT_TRY(check_text(img));
	return check_entry(img);
}
