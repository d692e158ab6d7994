/*
 * Source files of functions from DWARF, without libdw: .debug_aranges maps
 * an address to the offset of its compilation unit in .debug_info, and the
 * CU's DW_AT_name (read through .debug_abbrev, .debug_str, .debug_line_str)
 * is the source path.  Paths are made relative by removing the directory
 * prefix common to every CU of the image (the build's source root, which
 * embeds the version and so differs between the two sides).
 *
 * Invariants
 *  1. The DWARF sections are untrusted: every read is bounds-checked; a
 *     malformed unit is skipped (its functions keep their STT_FILE name),
 *     never an error for the diff as a whole.
 *  2. Only DWARF 2-5 32-bit units with 8-byte addresses are read.
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/base/log.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

struct rd {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t rd_n(struct rd *r, unsigned n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned sh = 0; sh < 64; sh += 7) {
		uint64_t b = rd_n(r, 1);
		if (r->bad)
			return 0;
		v |= (b & 0x7f) << sh;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static const char *rd_cstr(struct rd *r)
{
	const uint8_t *s = r->p;
	while (r->p < r->end && *r->p)
		r->p++;
	if (r->p >= r->end) {
		r->bad = 1;
		return NULL;
	}
	r->p++;
	return (const char *)s;
}

struct sec {
	const uint8_t *p;
	size_t n;
};

static struct sec get_sec(const struct elfimg *img, const char *name)
{
	const struct elfimg_section *s = elfimg_section_by_name(img, name);
	if (!s || s->type == SHT_NOBITS || s->offset > img->size || s->size > img->size - s->offset)
		return (struct sec){NULL, 0};
	return (struct sec){img->map + s->offset, s->size};
}

static const char *str_at(struct sec s, uint64_t off)
{
	if (off >= s.n || !memchr(s.p + off, 0, s.n - off))
		return NULL;
	return (const char *)s.p + off;
}

/* Skip one attribute value of form; returns a string for string forms. */
static const char *skip_form(struct rd *r, uint64_t form, struct sec str, struct sec lstr)
{
	switch (form) {
	case 0x08: /* string */
		return rd_cstr(r);
	case 0x0e: /* strp */
		return str_at(str, rd_n(r, 4));
	case 0x1f: /* line_strp */
		return str_at(lstr, rd_n(r, 4));
	case 0x01: /* addr */
	case 0x07: /* data8 */
	case 0x14: /* ref8 */
	case 0x20: /* ref_sig8 */
		rd_n(r, 8);
		break;
	case 0x0b: /* data1 */
	case 0x0c: /* flag */
	case 0x11: /* ref1 */
	case 0x25: /* strx1 */
	case 0x29: /* addrx1 */
		rd_n(r, 1);
		break;
	case 0x05: /* data2 */
	case 0x12: /* ref2 */
	case 0x26: /* strx2 */
	case 0x2a: /* addrx2 */
		rd_n(r, 2);
		break;
	case 0x27: /* strx3 */
	case 0x2b: /* addrx3 */
		rd_n(r, 3);
		break;
	case 0x06: /* data4 */
	case 0x13: /* ref4 */
	case 0x17: /* sec_offset */
	case 0x10: /* ref_addr (32-bit DWARF) */
	case 0x28: /* strx4 */
	case 0x2c: /* addrx4 */
	case 0x1d: /* ref_sup4 */
		rd_n(r, 4);
		break;
	case 0x1e: /* data16 */
		rd_n(r, 16);
		break;
	case 0x0d: /* sdata */
	case 0x0f: /* udata */
	case 0x15: /* ref_udata */
	case 0x1a: /* strx */
	case 0x1b: /* addrx */
	case 0x22: /* loclistx */
	case 0x23: /* rnglistx */
		rd_uleb(r);
		break;
	case 0x19: /* flag_present */
	case 0x21: /* implicit_const: value in the abbreviation */
		break;
	case 0x0a: /* block1 */
		r->p += rd_n(r, 1);
		break;
	case 0x03: /* block2 */
		r->p += rd_n(r, 2);
		break;
	case 0x04: /* block4 */
		r->p += rd_n(r, 4);
		break;
	case 0x09: /* block */
	case 0x18: /* exprloc */
		r->p += rd_uleb(r);
		break;
	default:
		r->bad = 1;
	}
	if (r->p > r->end)
		r->bad = 1;
	return NULL;
}

/* DW_AT_name of the unit at off in .debug_info, or NULL. */
static const char *cu_name(struct sec info, struct sec abbrev, struct sec str, struct sec lstr,
			   uint64_t off)
{
	if (off >= info.n)
		return NULL;
	struct rd r = {info.p + off, info.p + info.n, 0};
	uint64_t len = rd_n(&r, 4);
	if (len >= 0xfffffff0u || len > (uint64_t)(r.end - r.p))
		return NULL;
	r.end = r.p + len;
	unsigned ver = (unsigned)rd_n(&r, 2);
	uint64_t aoff;
	if (ver >= 5) {
		rd_n(&r, 1); /* unit type */
		rd_n(&r, 1); /* address size */
		aoff = rd_n(&r, 4);
	} else if (ver >= 2) {
		aoff = rd_n(&r, 4);
		rd_n(&r, 1);
	} else {
		return NULL;
	}
	uint64_t code = rd_uleb(&r);
	if (r.bad || aoff >= abbrev.n || code == 0)
		return NULL;
	/* find the abbreviation */
	struct rd a = {abbrev.p + aoff, abbrev.p + abbrev.n, 0};
	for (;;) {
		uint64_t c = rd_uleb(&a);
		if (a.bad || c == 0)
			return NULL;
		rd_uleb(&a); /* tag */
		rd_n(&a, 1); /* children */
		if (c == code)
			break;
		for (;;) { /* skip its attribute specs */
			uint64_t at = rd_uleb(&a), form = rd_uleb(&a);
			if (form == 0x21)
				rd_uleb(&a);
			if (a.bad)
				return NULL;
			if (!at && !form)
				break;
		}
	}
	for (;;) {
		uint64_t at = rd_uleb(&a), form = rd_uleb(&a);
		if (form == 0x21)
			rd_uleb(&a);
		if (a.bad || (!at && !form))
			return NULL;
		const char *s = skip_form(&r, form, str, lstr);
		if (r.bad)
			return NULL;
		if (at == 0x03) /* DW_AT_name */
			return s;
	}
}

struct arange {
	gva_t lo, hi;
	const char *name;
};

static int cmp_arange(const void *pa, const void *pb)
{
	const struct arange *a = pa, *b = pb;
	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

enum bt_status diff_dwarf_files(struct diff_side *s)
{
	const struct elfimg *img = s->img;
	struct sec ar = get_sec(img, ".debug_aranges"), info = get_sec(img, ".debug_info");
	struct sec abbrev = get_sec(img, ".debug_abbrev"), str = get_sec(img, ".debug_str");
	struct sec lstr = get_sec(img, ".debug_line_str");
	if (!ar.p || !info.p || !abbrev.p)
		return BT_OK; /* no DWARF: STT_FILE names stay */
	struct arange *v = NULL;
	size_t n = 0, cap = 0;
	struct rd r = {ar.p, ar.p + ar.n, 0};
	uint64_t last_off = UINT64_MAX;
	const char *last_name = NULL;
	while (r.p < r.end && !r.bad) {
		const uint8_t *set = r.p;
		uint64_t len = rd_n(&r, 4);
		if (r.bad || len >= 0xfffffff0u || len > (uint64_t)(r.end - r.p))
			break;
		const uint8_t *set_end = r.p + len;
		rd_n(&r, 2);
		uint64_t off = rd_n(&r, 4);
		unsigned asz = (unsigned)rd_n(&r, 1), ssz = (unsigned)rd_n(&r, 1);
		if (r.bad || asz != 8 || ssz != 0) {
			r.p = set_end;
			continue;
		}
		size_t hdr = (size_t)(r.p - set);
		r.p = set + ((hdr + 15) & ~(size_t)15); /* tuples aligned to 2 * 8 */
		const char *name =
		    off == last_off ? last_name : cu_name(info, abbrev, str, lstr, off);
		last_off = off;
		last_name = name;
		struct rd t = {r.p, set_end, 0};
		while (t.p + 16 <= set_end) {
			uint64_t lo = rd_n(&t, 8), l = rd_n(&t, 8);
			if (!lo && !l)
				break;
			if (!name || !l)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				struct arange *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					return BT_ERR_NOMEM;
				}
				v = nv;
			}
			v[n++] = (struct arange){lo, lo + l, name};
		}
		r.p = set_end;
	}
	if (!n) {
		free(v);
		return BT_OK;
	}
	qsort(v, n, sizeof(*v), cmp_arange);
	/* common directory prefix of every absolute unit name */
	const char *pre = NULL;
	size_t plen = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].name[0] != '/')
			continue;
		if (!pre) {
			pre = v[i].name;
			const char *sl = strrchr(pre, '/');
			plen = (size_t)(sl - pre) + 1;
			continue;
		}
		size_t k = 0;
		while (k < plen && v[i].name[k] == pre[k])
			k++;
		while (k > 0 && pre[k - 1] != '/')
			k--;
		plen = k;
	}
	size_t hits = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct diff_func *f = &s->f[i];
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (v[mid].lo <= f->addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!lo || f->addr >= v[lo - 1].hi)
			continue;
		const char *nm = v[lo - 1].name;
		if (nm[0] == '/' && pre && !strncmp(nm, pre, plen))
			nm += plen;
		f->file = nm;
		f->file_guessed = 0;
		hits++;
	}
	free(v);
	s->files_from_dwarf = hits > 0;
	bt_debug(LOG_CORE, "diff: %s: %zu of %zu functions mapped to DWARF units", s->path, hits,
		 s->n);
	return BT_OK;
}
