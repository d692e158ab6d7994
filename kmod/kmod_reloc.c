/*
 * kmod/ (kmod.h): the nominal layout of a module and the relocation of its
 * code sections there (kmod.h invariant 3).  Only the code matters to the
 * templates: data sections get addresses (symbols in them are referenced
 * from code) but are not copied.  The sites of Linux's patch tables
 * (__mcount_loc, .return_sites, ...) are read from those tables'
 * relocations (kmod_table_sites), for the caller to predict the patching.
 */
#include "kmod/kmod.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"
#include "pretrans/elf/elfimg.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

/* placeholder addresses of symbols the resolver does not know (another
 * module's): in the module area, above any nominal layout */
#define KMOD_UNRESOLVED_OFF 0x8000000ull

static struct kmod_section *sec_of(struct kmod *m, uint32_t index)
{
	for (size_t i = 0; i < m->nsecs; i++)
		if (m->secs[i].index == index)
			return &m->secs[i];
	return NULL;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static enum bt_status relocate_section(struct kmod *m, const struct elfimg_section *rs,
				       struct kmod_section *t, gva_t base, kmod_resolve_fn resolve,
				       void *opaque)
{
	size_t n;
	BT_TRY(elfimg_rela_count(m->img, rs, &n));
	for (size_t k = 0; k < n; k++) {
		struct elfimg_rela r;
		elfimg_rela_get(m->img, rs, k, &r);
		if (r.type == R_X86_64_NONE)
			continue;
		gva_t S = 0;
		if (r.sym != 0) {
			if (r.sym - 1 >= m->img->nsyms) {
				bt_err(LOG_KMOD,
				       "%s: relocation %zu of %s names symbol %llu of %zu", m->path,
				       k, rs->name, (unsigned long long)r.sym, m->img->nsyms + 1);
				return BT_ERR_FORMAT;
			}
			const struct elfimg_symbol *y = &m->img->syms[r.sym - 1];
			if (y->shndx == SHN_UNDEF) {
				if (!resolve || resolve(opaque, y->name, &S) != BT_OK) {
					S = base + KMOD_UNRESOLVED_OFF +
					    64 * (gva_t)m->n_syms_unresolved;
					m->n_syms_unresolved++;
				}
			} else if (y->shndx == SHN_ABS) {
				S = y->addr;
			} else if (y->shndx < SHN_LORESERVE) {
				struct kmod_section *ds = sec_of(m, y->shndx);
				S = (ds ? ds->addr : 0) + y->addr;
			}
		}
		gva_t P = t->addr + r.offset;
		uint64_t v = S + (uint64_t)r.addend;
		unsigned w;
		switch (r.type) {
		case R_X86_64_64:
			w = 8;
			break;
		case R_X86_64_PC64:
			v -= P;
			w = 8;
			break;
		case R_X86_64_PC32:
		case R_X86_64_PLT32:
			v -= P;
			w = 4;
			break;
		case R_X86_64_32:
		case R_X86_64_32S:
			w = 4;
			break;
		default:
			m->n_relocs_unknown++;
			continue;
		}
		if (r.offset > t->size || w > t->size - r.offset) {
			bt_err(LOG_KMOD, "%s: relocation %zu of %s patches bytes outside %s",
			       m->path, k, rs->name, t->name);
			return BT_ERR_FORMAT;
		}
		put_le(t->bytes + r.offset, v, w);
		m->n_relocs_applied++;
	}
	return BT_OK;
}

enum bt_status kmod_relocate(struct kmod *m, kmod_resolve_fn resolve, void *opaque)
{
	return kmod_relocate_at(m, KMOD_NOMINAL_BASE, resolve, opaque);
}

enum bt_status kmod_relocate_at(struct kmod *m, gva_t base, kmod_resolve_fn resolve, void *opaque)
{
	m->n_relocs_applied = m->n_relocs_unknown = m->n_syms_unresolved = 0;
	gva_t at = base;
	for (size_t i = 0; i < m->nsecs; i++) {
		struct kmod_section *k = &m->secs[i];
		const struct elfimg_section *e = &m->img->secs[k->index];
		uint64_t align = k->code ? GUEST_PAGE_SIZE : 16;
		at = (at + align - 1) & ~(align - 1);
		k->addr = at;
		at += k->size;
		if (k->code && !k->bytes) {
			k->bytes = malloc(k->size);
			if (!k->bytes)
				return BT_ERR_NOMEM;
			memcpy(k->bytes, elfimg_section_bytes(m->img, e), k->size);
		}
	}
	for (size_t i = 0; i < m->img->nsecs; i++) {
		const struct elfimg_section *rs = &m->img->secs[i];
		if (rs->type != SHT_RELA)
			continue;
		struct kmod_section *t = sec_of(m, rs->info);
		if (!t || !t->code)
			continue;
		BT_TRY(relocate_section(m, rs, t, base, resolve, opaque));
	}
	return BT_OK;
}

enum bt_status kmod_table_sites(const struct kmod *m, const char *table, gva_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	const struct elfimg_section *ts = elfimg_section_by_name(m->img, table);
	if (!ts)
		return BT_OK;
	size_t cap = 0;
	for (size_t i = 0; i < m->img->nsecs; i++) {
		const struct elfimg_section *rs = &m->img->secs[i];
		if (rs->type != SHT_RELA || rs->info != ts->index)
			continue;
		size_t nr;
		BT_TRY(elfimg_rela_count(m->img, rs, &nr));
		for (size_t k = 0; k < nr; k++) {
			struct elfimg_rela r;
			elfimg_rela_get(m->img, rs, k, &r);
			/* an absolute address or a self-relative offset of the site:
			 * either way the site is S + A */
			if ((r.type != R_X86_64_64 && r.type != R_X86_64_PC32) || r.sym == 0 ||
			    r.sym - 1 >= m->img->nsyms)
				continue;
			const struct elfimg_symbol *y = &m->img->syms[r.sym - 1];
			const struct kmod_section *cs =
			    y->shndx != SHN_UNDEF && y->shndx < SHN_LORESERVE
				? sec_of((struct kmod *)m, y->shndx)
				: NULL;
			if (!cs || !cs->code)
				continue;
			if (!BT_VEC_RESERVE(*out, cap, *n + 1, 256)) {
				free(*out);
				*out = NULL;
				*n = 0;
				return BT_ERR_NOMEM;
			}
			(*out)[(*n)++] = cs->addr + y->addr + (uint64_t)r.addend;
		}
	}
	return BT_OK;
}

uint8_t *kmod_code_at(struct kmod *m, gva_t va, size_t *avail)
{
	for (size_t i = 0; i < m->nsecs; i++) {
		struct kmod_section *k = &m->secs[i];
		if (k->code && k->bytes && va >= k->addr && va - k->addr < k->size) {
			*avail = (size_t)(k->size - (va - k->addr));
			return k->bytes + (va - k->addr);
		}
	}
	*avail = 0;
	return NULL;
}

/* Sections whose relocations name code that is not a block start (patch
 * and unwind tables: instruction boundaries in the middle of blocks). */
static bool not_starts(const char *name)
{
	static const char *const skip[] = {
	    ".orc_unwind_ip",	 "__mcount_loc", ".return_sites",      ".retpoline_sites",
	    ".altinstructions",	 "__jump_table", ".static_call_sites", ".ibt_endbr_seal",
	    ".parainstructions", ".smp_locks",	 "__bug_table",	       ".altinstr_replacement",
	};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(name, skip[i]) == 0)
			return true;
	return false;
}

enum bt_status kmod_code_refs(const struct kmod *m, uint32_t index, uint64_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	for (size_t i = 0; i < m->img->nsecs; i++) {
		const struct elfimg_section *rs = &m->img->secs[i];
		if (rs->type != SHT_RELA || rs->info >= m->img->nsecs)
			continue;
		const struct elfimg_section *ds = &m->img->secs[rs->info];
		if (!(ds->flags & SHF_ALLOC) || (ds->flags & SHF_EXECINSTR) || not_starts(ds->name))
			continue;
		size_t nr;
		BT_TRY(elfimg_rela_count(m->img, rs, &nr));
		for (size_t k = 0; k < nr; k++) {
			struct elfimg_rela r;
			elfimg_rela_get(m->img, rs, k, &r);
			if ((r.type != R_X86_64_64 && r.type != R_X86_64_32S &&
			     r.type != R_X86_64_32 && r.type != R_X86_64_PC32) ||
			    r.sym == 0 || r.sym - 1 >= m->img->nsyms)
				continue;
			const struct elfimg_symbol *y = &m->img->syms[r.sym - 1];
			if (y->shndx != index)
				continue;
			if (!BT_VEC_RESERVE(*out, cap, *n + 1, 256)) {
				free(*out);
				*out = NULL;
				*n = 0;
				return BT_ERR_NOMEM;
			}
			(*out)[(*n)++] = y->addr + (uint64_t)r.addend;
		}
	}
	return BT_OK;
}
