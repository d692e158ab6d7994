/*
 * Relocations of ET_REL inputs (.ko, .o): the RELA entries that patch
 * executable sections, so the normaliser can mask every relocated field and
 * replace it by what it refers to (symbol + addend), as a linker would.
 *
 * Invariants
 *  1. The section headers and RELA tables are untrusted: every offset and
 *     index is checked; a bad table is BT_ERR_FORMAT with one logged line.
 *  2. s->relocs is sorted by (section, offset) after diff_relocs_load().
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/base/log.h"

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
	Elf64_Ehdr eh;
	if (img->size < sizeof(eh))
		return bad(s, "truncated ELF header");
	memcpy(&eh, img->map, sizeof(eh));
	if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > img->size ||
	    (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > img->size - eh.e_shoff)
		return bad(s, "section header table out of the file");
	size_t cap = 0;
	for (unsigned i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, img->map + eh.e_shoff + (uint64_t)i * sizeof(sh), sizeof(sh));
		if (sh.sh_type != SHT_RELA)
			continue;
		const struct elfimg_section *tgt = diff_sec_by_index(s, sh.sh_info);
		if (!tgt || !(tgt->flags & SHF_EXECINSTR) || !(tgt->flags & SHF_ALLOC))
			continue;
		if (sh.sh_entsize != sizeof(Elf64_Rela) || sh.sh_offset > img->size ||
		    sh.sh_size > img->size - sh.sh_offset || sh.sh_size % sizeof(Elf64_Rela))
			return bad(s, "relocation table out of the file or malformed");
		size_t n = sh.sh_size / sizeof(Elf64_Rela);
		if (s->nrelocs + n > cap) {
			cap = BT_MAX(2 * cap, s->nrelocs + n);
			struct diff_reloc *nr = realloc(s->relocs, cap * sizeof(*nr));
			if (!nr)
				return BT_ERR_NOMEM;
			s->relocs = nr;
		}
		for (size_t k = 0; k < n; k++) {
			Elf64_Rela ra;
			memcpy(&ra, img->map + sh.sh_offset + k * sizeof(ra), sizeof(ra));
			uint64_t si = ELF64_R_SYM(ra.r_info);
			if (si > img->nsyms)
				return bad(s, "relocation refers to a symbol past the table");
			if (ra.r_offset >= tgt->size)
				return bad(s, "relocation offset past its section");
			s->relocs[s->nrelocs++] = (struct diff_reloc){
			    .sec = tgt->index,
			    .type = (uint32_t)ELF64_R_TYPE(ra.r_info),
			    .off = ra.r_offset,
			    .addend = ra.r_addend,
			    .sym = si ? &img->syms[si - 1] : NULL,
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
