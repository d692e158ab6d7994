/*
 * Relocations of ET_REL inputs (.ko, .o): the RELA entries that patch
 * executable sections, so the normaliser can mask every relocated field and
 * replace it by what it refers to (symbol + addend), as a linker would.
 *
 * Invariants
 *  1. The RELA tables are untrusted: elfimg checked the section headers at
 *     open and checks each table's shape (elfimg_rela_count); the symbol
 *     index and the offset of every entry are checked here; a bad table is
 *     BT_ERR_FORMAT with one logged line.
 *  2. s->relocs is sorted by (section, offset) after diff_relocs_load().
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

static int cmp_reloc(const void *pa, const void *pb)
{
	const struct diff_reloc *a = pa, *b = pb;
	if (a->sec != b->sec)
		return a->sec < b->sec ? -1 : 1;
	return a->off < b->off ? -1 : a->off > b->off;
}

static enum bt_status bad(const struct diff_side *s, const char *what)
{
	bt_err(LOG_ELF, "%s: %s", s->image_path, what);
	return BT_ERR_FORMAT;
}

enum bt_status diff_relocs_load(struct diff_side *s)
{
	const struct elfimg *img = s->img;
	size_t cap = 0;
	for (size_t i = 0; i < img->nsecs; i++) {
		const struct elfimg_section *sh = &img->secs[i];
		if (sh->type != SHT_RELA)
			continue;
		const struct elfimg_section *tgt = diff_sec_by_index(s, sh->info);
		if (!tgt || !(tgt->flags & SHF_EXECINSTR) || !(tgt->flags & SHF_ALLOC))
			continue;
		size_t n;
		BT_TRY(elfimg_rela_count(img, sh, &n)); /* elfimg logged the problem */
		if (n > SIZE_MAX - s->nrelocs ||
		    !BT_VEC_RESERVE(s->relocs, cap, s->nrelocs + n, 64))
			return BT_ERR_NOMEM;
		for (size_t k = 0; k < n; k++) {
			struct elfimg_rela ra;
			elfimg_rela_get(img, sh, k, &ra);
			if (ra.sym > img->nsyms)
				return bad(s, "relocation refers to a symbol past the table");
			if (ra.offset >= tgt->size)
				return bad(s, "relocation offset past its section");
			s->relocs[s->nrelocs++] = (struct diff_reloc){
			    .sec = tgt->index,
			    .type = ra.type,
			    .off = ra.offset,
			    .addend = ra.addend,
			    .sym = ra.sym ? &img->syms[ra.sym - 1] : NULL,
			};
		}
	}
	if (s->nrelocs)
		qsort(s->relocs, s->nrelocs, sizeof(*s->relocs), cmp_reloc);
	return BT_OK;
}

const struct diff_reloc *diff_reloc_at(const struct diff_side *s, uint32_t sec, uint64_t off)
{
	size_t lo = 0, hi = s->nrelocs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct diff_reloc *r = &s->relocs[mid];
		if (r->sec < sec || (r->sec == sec && r->off < off))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nrelocs && s->relocs[lo].sec == sec && s->relocs[lo].off == off)
		return &s->relocs[lo];
	return NULL;
}
