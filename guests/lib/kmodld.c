/*
 * kmodld: x86-64 ET_REL loader (freestanding).
 *
 * Owns: validation of an untrusted relocatable object, image layout,
 * symbol resolution and RELA relocation.
 * Invariants:
 *  1. Every byte read from the object is read through kmodld_rd*() after a
 *     bounds check against len; fields are read byte-wise, so the object
 *     may sit at any alignment (an initrd member is only 4-byte aligned).
 *  2. Every relocation target range [r_offset, r_offset + width) lies inside
 *     its target section; every symbol and string index is range-checked.
 *  3. Image layout is deterministic: SHF_ALLOC sections in section-table
 *     order, each at its own alignment, then SHN_COMMON symbols.
 *  4. The loader writes only into the block returned by ops->alloc and into
 *     ld; it never calls libc (the kernel build is -ffreestanding).
 *
 * Pipeline: kmodld_check_header -> kmodld_layout -> ops->alloc ->
 * kmodld_copy -> kmodld_relocate_all -> kmodld_symbol("kmod_init").
 */
#include "guests/lib/kmodld.h"

#include <stdbool.h>

#include "guests/lib/fmt.h"

/* ELF constants (spelled out: this file must not depend on a libc <elf.h>). */
#define EHDR_SIZE     64u
#define SHDR_SIZE     64u
#define SYM_SIZE      24u
#define RELA_SIZE     24u
#define ET_REL	      1
#define EM_X86_64     62
#define SHT_NULL      0
#define SHT_SYMTAB    2
#define SHT_STRTAB    3
#define SHT_RELA      4
#define SHT_NOBITS    8
#define SHT_REL	      9
#define SHF_ALLOC     0x2ull
#define SHN_UNDEF     0
#define SHN_LORESERVE 0xff00u
#define SHN_ABS	      0xfff1u
#define SHN_COMMON    0xfff2u
#define STB_LOCAL     0
#define STB_GLOBAL    1
#define STB_WEAK      2

#define R_X86_64_NONE  0
#define R_X86_64_64    1
#define R_X86_64_PC32  2
#define R_X86_64_PLT32 4
#define R_X86_64_32    10
#define R_X86_64_32S   11
#define R_X86_64_PC64  24

#define KMODLD_MAX_IMAGE (64ull << 20) /* refuse absurd images */
#define KMODLD_MAX_ALIGN (1ull << 21)

/* Parsed view of the object; lives on the stack of kmodld_load (small). */
struct kmodld_obj {
	const uint8_t *b;
	size_t len;
	uint64_t shoff;
	unsigned shnum;
	unsigned shstrndx;
	unsigned symtab; /* section index of SHT_SYMTAB */
	uint64_t sym_off, nsyms;
	uint64_t str_off, str_size;
};

static uint16_t kmodld_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t kmodld_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t kmodld_rd64(const uint8_t *p)
{
	return (uint64_t)kmodld_rd32(p) | ((uint64_t)kmodld_rd32(p + 4) << 32);
}

static void kmodld_wr(uint8_t *p, uint64_t v, unsigned width)
{
	for (unsigned i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* [off, off + size) inside [0, len)? */
static bool kmodld_in(uint64_t off, uint64_t size, uint64_t len)
{
	return off <= len && size <= len - off;
}

static const uint8_t *kmodld_sh(const struct kmodld_obj *o, unsigned i)
{
	return o->b + o->shoff + (uint64_t)i * SHDR_SIZE;
}

#define SH_NAME(s)   kmodld_rd32((s) + 0)
#define SH_TYPE(s)   kmodld_rd32((s) + 4)
#define SH_FLAGS(s)  kmodld_rd64((s) + 8)
#define SH_OFFSET(s) kmodld_rd64((s) + 24)
#define SH_SIZE(s)   kmodld_rd64((s) + 32)
#define SH_LINK(s)   kmodld_rd32((s) + 40)
#define SH_INFO(s)   kmodld_rd32((s) + 44)
#define SH_ALIGN(s)  kmodld_rd64((s) + 48)
#define SH_ENTSZ(s)  kmodld_rd64((s) + 56)

static enum bt_status kmodld_fail(struct kmodld *ld, enum bt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum bt_status kmodld_fail(struct kmodld *ld, enum bt_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fmt_vsnprintf(ld->msg, sizeof(ld->msg), fmt, ap);
	va_end(ap);
	return st;
}

/* NUL-terminated string at table offset off of a string table section, or NULL. */
static const char *kmodld_str(const struct kmodld_obj *o, uint64_t tab_off, uint64_t tab_size,
			      uint64_t off)
{
	if (off >= tab_size)
		return NULL;
	for (uint64_t i = off; i < tab_size; i++)
		if (o->b[tab_off + i] == '\0')
			return (const char *)o->b + tab_off + off;
	return NULL;
}

static const char *kmodld_secname(const struct kmodld_obj *o, unsigned i)
{
	const uint8_t *ss = kmodld_sh(o, o->shstrndx);
	const char *n = NULL;

	if (SH_TYPE(ss) == SHT_STRTAB)
		n = kmodld_str(o, SH_OFFSET(ss), SH_SIZE(ss), SH_NAME(kmodld_sh(o, i)));
	return n ? n : "?";
}

static bool kmodld_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static enum bt_status kmodld_check_header(struct kmodld *ld, struct kmodld_obj *o)
{
	const uint8_t *b = o->b;

	if (o->len < EHDR_SIZE)
		return kmodld_fail(ld, BT_ERR_FORMAT, "object too short (%zu bytes)", o->len);
	if (b[0] != 0x7f || b[1] != 'E' || b[2] != 'L' || b[3] != 'F')
		return kmodld_fail(ld, BT_ERR_FORMAT, "not an ELF file");
	if (b[4] != 2 || b[5] != 1 || b[6] != 1)
		return kmodld_fail(ld, BT_ERR_UNSUPPORTED, "not a little-endian ELF64 v1 object");
	if (kmodld_rd16(b + 16) != ET_REL)
		return kmodld_fail(ld, BT_ERR_UNSUPPORTED, "ELF type %u is not ET_REL",
				   kmodld_rd16(b + 16));
	if (kmodld_rd16(b + 18) != EM_X86_64)
		return kmodld_fail(ld, BT_ERR_UNSUPPORTED, "machine %u is not x86-64",
				   kmodld_rd16(b + 18));
	o->shoff = kmodld_rd64(b + 40);
	o->shnum = kmodld_rd16(b + 60);
	o->shstrndx = kmodld_rd16(b + 62);
	if (kmodld_rd16(b + 58) != SHDR_SIZE)
		return kmodld_fail(ld, BT_ERR_FORMAT, "section header size %u",
				   kmodld_rd16(b + 58));
	if (o->shnum == 0)
		return kmodld_fail(ld, BT_ERR_UNSUPPORTED,
				   "no section table (or extended numbering)");
	if (o->shnum > KMODLD_MAX_SECTIONS)
		return kmodld_fail(ld, BT_ERR_UNSUPPORTED, "%u sections, at most %u supported",
				   o->shnum, KMODLD_MAX_SECTIONS);
	if (!kmodld_in(o->shoff, (uint64_t)o->shnum * SHDR_SIZE, o->len))
		return kmodld_fail(ld, BT_ERR_FORMAT, "section table outside the file");
	if (o->shstrndx >= o->shnum)
		return kmodld_fail(ld, BT_ERR_FORMAT, "bad section name table index %u",
				   o->shstrndx);

	o->symtab = 0;
	for (unsigned i = 0; i < o->shnum; i++) {
		const uint8_t *s = kmodld_sh(o, i);
		uint32_t type = SH_TYPE(s);
		if (type != SHT_NOBITS && type != SHT_NULL &&
		    !kmodld_in(SH_OFFSET(s), SH_SIZE(s), o->len))
			return kmodld_fail(ld, BT_ERR_FORMAT, "section %u outside the file", i);
		if (type == SHT_SYMTAB) {
			if (o->symtab)
				return kmodld_fail(ld, BT_ERR_FORMAT, "two symbol tables");
			o->symtab = i;
		}
	}
	if (!o->symtab)
		return kmodld_fail(ld, BT_ERR_FORMAT, "no symbol table");
	const uint8_t *st = kmodld_sh(o, o->symtab);
	if (SH_ENTSZ(st) != SYM_SIZE || SH_SIZE(st) % SYM_SIZE != 0)
		return kmodld_fail(ld, BT_ERR_FORMAT, "bad symbol table entry size");
	o->sym_off = SH_OFFSET(st);
	o->nsyms = SH_SIZE(st) / SYM_SIZE;
	uint32_t strndx = SH_LINK(st);
	if (strndx == 0 || strndx >= o->shnum || SH_TYPE(kmodld_sh(o, strndx)) != SHT_STRTAB)
		return kmodld_fail(ld, BT_ERR_FORMAT, "bad symbol string table");
	o->str_off = SH_OFFSET(kmodld_sh(o, strndx));
	o->str_size = SH_SIZE(kmodld_sh(o, strndx));
	return BT_OK;
}

static const uint8_t *kmodld_sym(const struct kmodld_obj *o, uint64_t i)
{
	return o->b + o->sym_off + i * SYM_SIZE;
}

#define ST_NAME(s)  kmodld_rd32((s) + 0)
#define ST_INFO(s)  ((s)[4])
#define ST_SHNDX(s) kmodld_rd16((s) + 6)
#define ST_VALUE(s) kmodld_rd64((s) + 8)
#define ST_SIZE(s)  kmodld_rd64((s) + 16)

static bool kmodld_pow2(uint64_t a)
{
	return a != 0 && (a & (a - 1)) == 0;
}

/* Place a block of size/align at the end of the image (*total). */
static enum bt_status kmodld_place(struct kmodld *ld, uint64_t *total, uint64_t size,
				   uint64_t align, uint64_t *off, uint64_t *maxalign)
{
	if (align == 0)
		align = 1;
	if (!kmodld_pow2(align) || align > KMODLD_MAX_ALIGN)
		return kmodld_fail(ld, BT_ERR_FORMAT, "bad alignment %llu",
				   (unsigned long long)align);
	uint64_t o = (*total + align - 1) & ~(align - 1);
	if (size > KMODLD_MAX_IMAGE || o + size > KMODLD_MAX_IMAGE)
		return kmodld_fail(ld, BT_ERR_RANGE, "image larger than %llu bytes",
				   (unsigned long long)KMODLD_MAX_IMAGE);
	*off = o;
	*total = o + size;
	if (align > *maxalign)
		*maxalign = align;
	return BT_OK;
}

static enum bt_status kmodld_layout(struct kmodld *ld, const struct kmodld_obj *o, uint64_t *total,
				    uint64_t *maxalign)
{
	*total = 0;
	*maxalign = 1;
	for (unsigned i = 0; i < o->shnum; i++) {
		const uint8_t *s = kmodld_sh(o, i);
		ld->sec_off[i] = (uint64_t)-1;
		if (!(SH_FLAGS(s) & SHF_ALLOC) || SH_TYPE(s) == SHT_NULL)
			continue;
		BT_TRY(kmodld_place(ld, total, SH_SIZE(s), SH_ALIGN(s), &ld->sec_off[i], maxalign));
	}
	/* SHN_COMMON symbols: st_value is the alignment, st_size the size. */
	uint64_t common_start = 0;
	bool first = true;
	for (uint64_t i = 1; i < o->nsyms; i++) {
		const uint8_t *sy = kmodld_sym(o, i);
		uint64_t off;
		if (ST_SHNDX(sy) != SHN_COMMON)
			continue;
		BT_TRY(kmodld_place(ld, total, ST_SIZE(sy), ST_VALUE(sy), &off, maxalign));
		if (first)
			common_start = off;
		first = false;
	}
	ld->common_off = common_start;
	if (*total == 0)
		return kmodld_fail(ld, BT_ERR_FORMAT, "no loadable sections");
	return BT_OK;
}

/* Image offset of the n-th COMMON symbol (same walk as the layout). */
static uint64_t kmodld_common_off(const struct kmodld_obj *o, uint64_t symidx, uint64_t start)
{
	uint64_t total = start;

	for (uint64_t i = 1; i < o->nsyms; i++) {
		const uint8_t *sy = kmodld_sym(o, i);
		if (ST_SHNDX(sy) != SHN_COMMON)
			continue;
		uint64_t a = ST_VALUE(sy) ? ST_VALUE(sy) : 1;
		total = (total + a - 1) & ~(a - 1);
		if (i == symidx)
			return total;
		total += ST_SIZE(sy);
	}
	return 0;
}

/* Run-time value of symbol i (S in the relocation formulas). */
static enum bt_status kmodld_symval(struct kmodld *ld, const struct kmodld_obj *o,
				    const struct kmodld_ops *ops, uint64_t i, uint64_t *val)
{
	if (i >= o->nsyms)
		return kmodld_fail(ld, BT_ERR_FORMAT, "symbol index %llu out of range",
				   (unsigned long long)i);
	const uint8_t *sy = kmodld_sym(o, i);
	unsigned shndx = ST_SHNDX(sy);
	const char *name = kmodld_str(o, o->str_off, o->str_size, ST_NAME(sy));

	if (!name)
		return kmodld_fail(ld, BT_ERR_FORMAT, "symbol %llu has a bad name",
				   (unsigned long long)i);
	if (shndx == SHN_UNDEF) {
		if (i == 0) {
			*val = 0;
			return BT_OK;
		}
		enum bt_status st =
		    ops->resolve ? ops->resolve(ops->ctx, name, val) : BT_ERR_NOTFOUND;
		if (st == BT_ERR_NOTFOUND && (ST_INFO(sy) >> 4) == STB_WEAK) {
			*val = 0;
			return BT_OK;
		}
		if (st != BT_OK)
			return kmodld_fail(
			    ld, st, "undefined symbol '%s' not provided by the kernel", name);
		return BT_OK;
	}
	if (shndx == SHN_ABS) {
		*val = ST_VALUE(sy);
		return BT_OK;
	}
	if (shndx == SHN_COMMON) {
		*val = ld->base + kmodld_common_off(o, i, ld->common_off);
		return BT_OK;
	}
	if (shndx >= SHN_LORESERVE || shndx >= o->shnum)
		return kmodld_fail(ld, BT_ERR_FORMAT, "symbol '%s' has section index %u", name,
				   shndx);
	if (ld->sec_off[shndx] == (uint64_t)-1)
		return kmodld_fail(ld, BT_ERR_FORMAT, "symbol '%s' is in non-loaded section %s",
				   name, kmodld_secname(o, shndx));
	if (ST_VALUE(sy) > SH_SIZE(kmodld_sh(o, shndx)))
		return kmodld_fail(ld, BT_ERR_FORMAT, "symbol '%s' lies outside its section", name);
	*val = ld->base + ld->sec_off[shndx] + ST_VALUE(sy);
	return BT_OK;
}

static enum bt_status kmodld_relocate(struct kmodld *ld, const struct kmodld_obj *o,
				      const struct kmodld_ops *ops, uint8_t *mem, unsigned rsec)
{
	const uint8_t *rs = kmodld_sh(o, rsec);
	unsigned tgt = SH_INFO(rs);

	if (tgt == 0 || tgt >= o->shnum)
		return kmodld_fail(ld, BT_ERR_FORMAT, "relocation section %u targets section %u",
				   rsec, tgt);
	const uint8_t *ts = kmodld_sh(o, tgt);
	if (!(SH_FLAGS(ts) & SHF_ALLOC))
		return BT_OK; /* debug info and the like: not loaded */
	if (SH_TYPE(rs) == SHT_REL)
		return kmodld_fail(ld, BT_ERR_UNSUPPORTED, "SHT_REL section %s (x86-64 uses RELA)",
				   kmodld_secname(o, rsec));
	if (SH_LINK(rs) != o->symtab)
		return kmodld_fail(ld, BT_ERR_FORMAT, "relocation section %s uses another symtab",
				   kmodld_secname(o, rsec));
	if (SH_ENTSZ(rs) != RELA_SIZE || SH_SIZE(rs) % RELA_SIZE != 0)
		return kmodld_fail(ld, BT_ERR_FORMAT, "bad RELA entry size in %s",
				   kmodld_secname(o, rsec));
	if (SH_TYPE(ts) == SHT_NOBITS)
		return kmodld_fail(ld, BT_ERR_FORMAT, "relocations against NOBITS section %s",
				   kmodld_secname(o, tgt));

	uint64_t n = SH_SIZE(rs) / RELA_SIZE;
	uint64_t tsize = SH_SIZE(ts);
	uint8_t *tmem = mem + ld->sec_off[tgt];
	uint64_t taddr = ld->base + ld->sec_off[tgt];

	for (uint64_t k = 0; k < n; k++) {
		const uint8_t *r = o->b + SH_OFFSET(rs) + k * RELA_SIZE;
		uint64_t off = kmodld_rd64(r);
		uint64_t info = kmodld_rd64(r + 8);
		int64_t addend = (int64_t)kmodld_rd64(r + 16);
		uint32_t type = (uint32_t)info;
		uint64_t symi = info >> 32;
		unsigned width;
		uint64_t s, v;

		switch (type) {
		case R_X86_64_NONE:
			continue;
		case R_X86_64_64:
		case R_X86_64_PC64:
			width = 8;
			break;
		case R_X86_64_PC32:
		case R_X86_64_PLT32:
		case R_X86_64_32:
		case R_X86_64_32S:
			width = 4;
			break;
		default:
			return kmodld_fail(ld, BT_ERR_UNSUPPORTED,
					   "unknown relocation type %u in %s (entry %llu)", type,
					   kmodld_secname(o, rsec), (unsigned long long)k);
		}
		if (!kmodld_in(off, width, tsize))
			return kmodld_fail(
			    ld, BT_ERR_FORMAT, "relocation %llu of %s points outside %s",
			    (unsigned long long)k, kmodld_secname(o, rsec), kmodld_secname(o, tgt));
		BT_TRY(kmodld_symval(ld, o, ops, symi, &s));
		uint64_t p = taddr + off;
		switch (type) {
		case R_X86_64_64:
			v = s + (uint64_t)addend;
			break;
		case R_X86_64_PC64:
			v = s + (uint64_t)addend - p;
			break;
		case R_X86_64_32:
			v = s + (uint64_t)addend;
			if (v > 0xffffffffull)
				goto overflow;
			break;
		case R_X86_64_32S:
			v = s + (uint64_t)addend;
			if ((int64_t)v != (int64_t)(int32_t)(uint32_t)v)
				goto overflow;
			break;
		default: /* PC32, PLT32 (no PLT: direct) */
			v = s + (uint64_t)addend - p;
			if ((int64_t)v != (int64_t)(int32_t)(uint32_t)v)
				goto overflow;
			break;
		}
		kmodld_wr(tmem + off, v, width);
		ld->nreloc++;
		continue;
	overflow:
		return kmodld_fail(
		    ld, BT_ERR_RANGE, "relocation type %u at %s+0x%llx: value 0x%llx does not fit",
		    type, kmodld_secname(o, tgt), (unsigned long long)off, (unsigned long long)v);
	}
	return BT_OK;
}

static enum bt_status kmodld_find(struct kmodld *ld, const struct kmodld_obj *o, const char *want,
				  uint64_t *addr)
{
	for (uint64_t i = 1; i < o->nsyms; i++) {
		const uint8_t *sy = kmodld_sym(o, i);
		unsigned bind = ST_INFO(sy) >> 4;
		unsigned shndx = ST_SHNDX(sy);
		const char *name = kmodld_str(o, o->str_off, o->str_size, ST_NAME(sy));
		if (!name || !kmodld_streq(name, want))
			continue;
		if (bind != STB_GLOBAL && bind != STB_WEAK)
			continue;
		if (shndx == SHN_UNDEF || shndx == SHN_COMMON || shndx >= o->shnum ||
		    ld->sec_off[shndx] == (uint64_t)-1)
			continue;
		if (ST_VALUE(sy) >= SH_SIZE(kmodld_sh(o, shndx)))
			return kmodld_fail(ld, BT_ERR_FORMAT, "symbol '%s' outside its section",
					   want);
		*addr = ld->base + ld->sec_off[shndx] + ST_VALUE(sy);
		return BT_OK;
	}
	return kmodld_fail(ld, BT_ERR_NOTFOUND, "no global symbol '%s' in the object", want);
}

enum bt_status kmodld_load(struct kmodld *ld, const void *elf, size_t len,
			   const struct kmodld_ops *ops)
{
	struct kmodld_obj o = {.b = elf, .len = len};
	uint64_t total, maxalign;
	void *mem = NULL;
	enum bt_status st;

	if (!ld)
		return BT_ERR_INVALID;
	ld->msg[0] = '\0';
	ld->base = ld->size = ld->init = 0;
	ld->nreloc = 0;
	if (!elf || !ops || !ops->alloc)
		return kmodld_fail(ld, BT_ERR_INVALID, "missing object or allocator");
	BT_TRY(kmodld_check_header(ld, &o));
	BT_TRY(kmodld_layout(ld, &o, &total, &maxalign));

	st = ops->alloc(ops->ctx, total, maxalign, &mem, &ld->base);
	if (st != BT_OK || !mem)
		return kmodld_fail(ld, st != BT_OK ? st : BT_ERR_NOMEM,
				   "cannot allocate %llu bytes for the image",
				   (unsigned long long)total);
	if ((ld->base & (maxalign - 1)) != 0)
		return kmodld_fail(ld, BT_ERR_INVALID, "allocator returned a misaligned address");
	ld->size = total;

	uint8_t *m = mem;
	for (uint64_t i = 0; i < total; i++)
		m[i] = 0;
	for (unsigned i = 0; i < o.shnum; i++) {
		const uint8_t *s = kmodld_sh(&o, i);
		if (ld->sec_off[i] == (uint64_t)-1 || SH_TYPE(s) == SHT_NOBITS)
			continue;
		const uint8_t *src = o.b + SH_OFFSET(s);
		for (uint64_t k = 0; k < SH_SIZE(s); k++)
			m[ld->sec_off[i] + k] = src[k];
	}
	for (unsigned i = 0; i < o.shnum; i++) {
		uint32_t type = SH_TYPE(kmodld_sh(&o, i));
		if (type == SHT_RELA || type == SHT_REL)
			BT_TRY(kmodld_relocate(ld, &o, ops, m, i));
	}
	return kmodld_find(ld, &o, "kmod_init", &ld->init);
}

enum bt_status kmodld_symbol(struct kmodld *ld, const void *elf, size_t len, const char *name,
			     uint64_t *addr)
{
	struct kmodld_obj o = {.b = elf, .len = len};

	if (!ld || !elf || !name || !addr)
		return BT_ERR_INVALID;
	BT_TRY(kmodld_check_header(ld, &o));
	return kmodld_find(ld, &o, name, addr);
}
