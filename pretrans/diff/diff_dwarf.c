/*
 * Source files of functions from DWARF, through libdw (elfutils):
 * .debug_aranges (dwarf_getaranges) maps an address to its compilation unit,
 * and the unit's DW_AT_name (dwarf_diename) is the source path.  Paths are
 * made relative by removing the directory prefix common to every unit of the
 * image (the build's source root, which embeds the version and so differs
 * between the two sides).  docs/diff.md says why libdw and not a reader of
 * our own (measured: the same attributions, +50 ms on a Debian vmlinux).
 *
 * Invariants
 *  1. The DWARF sections are untrusted: libdw bounds-checks every read.
 *     DWARF that libdw rejects (address ranges, a unit header, a unit's
 *     name) is BT_ERR_FORMAT with one logged line naming the file.
 *  2. An image without .debug_aranges, .debug_info or .debug_abbrev is not
 *     an error: its functions keep their STT_FILE names.  So do functions
 *     outside every range and those of a unit without DW_AT_name.
 *  3. f[].file set here points into s->dwarf_names (owned by the side), never
 *     into libdw's memory, which is gone when this function returns.
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/base/log.h"

#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <stdlib.h>
#include <string.h>

/* The section is present with file contents inside the image. */
static int has_sec(const struct elfimg *img, const char *name)
{
	const struct elfimg_section *s = elfimg_section_by_name(img, name);
	return s && s->type != SHT_NOBITS && s->offset <= img->size &&
	       s->size <= img->size - s->offset;
}

struct arange {
	gva_t lo, hi;
	const char *name; /* in libdw's memory */
};

static int cmp_arange(const void *pa, const void *pb)
{
	const struct arange *a = pa, *b = pb;
	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static int cmp_ptr(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	return a < b ? -1 : a > b;
}

static enum bt_status bad_dwarf(const struct diff_side *s, const char *what)
{
	bt_err(LOG_CORE,
	       "diff: %s: malformed DWARF debug information (%s: %s); "
	       "compare the images without it (objcopy --strip-debug)",
	       s->path, what, dwarf_errmsg(-1));
	return BT_ERR_FORMAT;
}

/* The aranges of units with a name, sorted by lo, in *out (n in *nout);
 * *out is left alone on error. */
static enum bt_status read_aranges(const struct diff_side *s, Dwarf *dw, struct arange **out,
				   size_t *nout)
{
	Dwarf_Aranges *ar;
	size_t nar;
	if (dwarf_getaranges(dw, &ar, &nar) != 0)
		return bad_dwarf(s, "address ranges");
	struct arange *v = nar ? malloc(nar * sizeof(*v)) : NULL;
	if (nar && !v)
		return BT_ERR_NOMEM;
	size_t n = 0;
	Dwarf_Off last_off = (Dwarf_Off)-1;
	const char *last_name = NULL;
	for (size_t i = 0; i < nar; i++) {
		Dwarf_Addr lo;
		Dwarf_Word len;
		Dwarf_Off off;
		if (dwarf_getarangeinfo(dwarf_onearange(ar, i), &lo, &len, &off) != 0) {
			free(v);
			return bad_dwarf(s, "address range");
		}
		if (off != last_off) {
			Dwarf_Die die;
			if (!dwarf_offdie(dw, off, &die)) {
				free(v);
				return bad_dwarf(s, "compilation unit");
			}
			last_name = dwarf_diename(&die);
			if (!last_name && dwarf_hasattr(&die, DW_AT_name)) {
				free(v);
				return bad_dwarf(s, "compilation unit name");
			}
			last_off = off;
		}
		if (last_name && len)
			v[n++] = (struct arange){lo, lo + len, last_name};
	}
	qsort(v, n, sizeof(*v), cmp_arange);
	*out = v;
	*nout = n;
	return BT_OK;
}

/* Length of the directory prefix common to every absolute unit name. */
static size_t common_dir(const struct arange *v, size_t n)
{
	const char *pre = NULL;
	size_t plen = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].name[0] != '/')
			continue;
		if (!pre) {
			pre = v[i].name;
			plen = (size_t)(strrchr(pre, '/') - pre) + 1;
			continue;
		}
		size_t k = 0;
		while (k < plen && v[i].name[k] == pre[k])
			k++;
		while (k > 0 && pre[k - 1] != '/')
			k--;
		plen = k;
	}
	return plen;
}

/* The name (in libdw's memory) of the unit whose range holds addr, or NULL. */
static const char *name_at(const struct arange *v, size_t n, gva_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].lo <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= v[lo - 1].hi)
		return NULL;
	return v[lo - 1].name;
}

/* Copy the distinct unit names (prefix removed) into s->dwarf_names and
 * point the functions' files there. */
static enum bt_status attribute(struct diff_side *s, const struct arange *v, size_t n, size_t plen)
{
	const char **u = malloc(n * sizeof(*u));
	if (!u)
		return BT_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		u[i] = v[i].name;
	qsort(u, n, sizeof(*u), cmp_ptr);
	size_t nu = 0, total = 0;
	for (size_t i = 0; i < n; i++)
		if (!nu || u[nu - 1] != u[i])
			u[nu++] = u[i];
	size_t *at = malloc(nu * sizeof(*at)); /* offset of u[i] in the copy */
	if (!at) {
		free(u);
		return BT_ERR_NOMEM;
	}
	for (size_t i = 0; i < nu; i++) {
		const char *nm = u[i][0] == '/' && plen ? u[i] + plen : u[i];
		at[i] = total;
		total += strlen(nm) + 1;
	}
	char *blob = malloc(total);
	if (!blob) {
		free(at);
		free(u);
		return BT_ERR_NOMEM;
	}
	for (size_t i = 0; i < nu; i++) {
		const char *nm = u[i][0] == '/' && plen ? u[i] + plen : u[i];
		memcpy(blob + at[i], nm, strlen(nm) + 1);
	}
	size_t hits = 0;
	for (size_t i = 0; i < s->n; i++) {
		const char *nm = name_at(v, n, s->f[i].addr);
		if (!nm)
			continue;
		const char **p = bsearch(&nm, u, nu, sizeof(*u), cmp_ptr);
		s->f[i].file = blob + at[p - u];
		s->f[i].file_guessed = 0;
		hits++;
	}
	free(at);
	free(u);
	free(s->dwarf_names);
	s->dwarf_names = blob;
	s->files_from_dwarf = hits > 0;
	bt_debug(LOG_CORE, "diff: %s: %zu of %zu functions mapped to DWARF units", s->path, hits,
		 s->n);
	return BT_OK;
}

enum bt_status diff_dwarf_files(struct diff_side *s)
{
	const struct elfimg *img = s->img;
	if (!has_sec(img, ".debug_aranges") || !has_sec(img, ".debug_info") ||
	    !has_sec(img, ".debug_abbrev"))
		return BT_OK; /* no DWARF: STT_FILE names stay */
	enum bt_status st;
	Dwarf *dw = dwarf_begin_elf(elfimg_libelf(img), DWARF_C_READ, NULL);
	if (!dw)
		return bad_dwarf(s, "sections");
	struct arange *v = NULL;
	size_t n = 0;
	st = read_aranges(s, dw, &v, &n);
	if (st == BT_OK && n)
		st = attribute(s, v, n, common_dir(v, n));
	free(v);
	dwarf_end(dw);
	return st;
}
