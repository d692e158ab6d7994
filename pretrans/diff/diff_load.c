/*
 * Loading one side of a diff: the functions of an ELF image (or of the image
 * a translation database was built from), their source files, their keys
 * and the address-resolution table used by the normaliser.
 *
 * Invariants
 *  1. A function is a sized STT_FUNC symbol whose whole [addr, addr+size)
 *     lies in one executable file-backed section; one function per address
 *     (aliases are folded into the preferred name: global, then shortest,
 *     then smallest), so every function's bytes are read exactly once.
 *  2. Keys are assigned by diff_sides_prepare() from both sides at once: a
 *     local name that is ambiguous on EITHER side is qualified on BOTH, so a
 *     key means the same function on both sides.
 *  3. After diff_sides_prepare() a side is read-only.
 */
#include "pretrans/diff/diff_int.h"

#include "db/tcdb.h"
#include "kmod/kmod.h"
#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/xlat/xlat.h"

#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Heap concatenation of a, b and c (b, c may be NULL). */
static char *concat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
	char *p = malloc(la + lb + lc + 1);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	if (lb)
		memcpy(p + la, b, lb);
	if (lc)
		memcpy(p + la + lb, c, lc);
	p[la + lb + lc] = 0;
	return p;
}

const struct elfimg_section *diff_sec_by_index(const struct diff_side *s, uint32_t idx)
{
	const struct elfimg *img = s->img;
	if (idx < img->nsecs && img->secs[idx].index == idx)
		return &img->secs[idx];
	for (size_t k = 0; k < img->nsecs; k++)
		if (img->secs[k].index == idx)
			return &img->secs[k];
	return NULL;
}

gva_t diff_sym_addr(const struct diff_side *s, const struct elfimg_symbol *y)
{
	if (!s->rel)
		return y->addr;
	if (y->shndx == SHN_UNDEF || y->shndx >= SHN_LORESERVE || y->shndx >= s->nsec_base)
		return y->addr;
	return s->sec_base[y->shndx] + y->addr;
}

/* The bytes of the function symbol y, if all of it is in executable code. */
static int code_range(const struct diff_side *s, const struct elfimg_symbol *y, uint64_t size,
		      const uint8_t **bytes)
{
	const struct elfimg *img = s->img;
	if (!s->rel) {
		const struct elfimg_code *c = elfimg_code_at(img, y->addr);
		if (!c || size > c->end - y->addr)
			return 0;
		*bytes = c->bytes + (y->addr - c->start);
		return 1;
	}
	const struct elfimg_section *sec =
	    y->shndx < SHN_LORESERVE ? diff_sec_by_index(s, y->shndx) : NULL;
	if (!sec || sec->type != SHT_PROGBITS || !(sec->flags & SHF_EXECINSTR) ||
	    !(sec->flags & SHF_ALLOC) || y->addr > sec->size || size > sec->size - y->addr)
		return 0;
	*bytes = elfimg_section_bytes(img, sec) + y->addr;
	return 1;
}

/* ET_REL: give every allocated section a distinct synthetic address (as a
 * linker would), so that symbols, intra-section branches and relocation
 * targets all live in one address space. */
static enum bt_status layout_rel(struct diff_side *s)
{
	const struct elfimg *img = s->img;
	uint32_t maxidx = 0;
	for (size_t k = 0; k < img->nsecs; k++)
		maxidx = BT_MAX(maxidx, img->secs[k].index);
	s->nsec_base = maxidx + 1;
	s->sec_base = calloc(s->nsec_base, sizeof(*s->sec_base));
	if (!s->sec_base)
		return BT_ERR_NOMEM;
	gva_t next = 0x10000000;
	for (size_t k = 0; k < img->nsecs; k++) {
		const struct elfimg_section *sc = &img->secs[k];
		if (!(sc->flags & SHF_ALLOC) || !sc->size)
			continue;
		s->sec_base[sc->index] = next;
		next = (next + sc->size + 0xfff) & ~(gva_t)0xfff;
	}
	return BT_OK;
}

/* Preference among symbols at one address: lower is better. */
static int sym_rank(const struct elfimg_symbol *y)
{
	return (y->bind == STB_GLOBAL ? 0 : y->bind == STB_WEAK ? 1 : 2);
}

static int better_name(const struct elfimg_symbol *a, const struct elfimg_symbol *b)
{
	if (sym_rank(a) != sym_rank(b))
		return sym_rank(a) < sym_rank(b);
	size_t la = strlen(a->name), lb = strlen(b->name);
	if (la != lb)
		return la < lb;
	return strcmp(a->name, b->name) < 0;
}

struct fsym {
	const struct elfimg_symbol *y;
	const char *file;
	size_t order;
	gva_t addr;
};

static int cmp_fsym_addr(const void *pa, const void *pb)
{
	const struct fsym *a = pa, *b = pb;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (better_name(a->y, b->y))
		return -1;
	if (better_name(b->y, a->y))
		return 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int cmp_sym(const void *pa, const void *pb)
{
	const struct diff_sym *a = pa, *b = pb;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->is_func != b->is_func)
		return b->is_func - a->is_func;
	if ((a->size != 0) != (b->size != 0))
		return a->size ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Object names like "__already_done.12" carry a compiler counter that moves
 * with unrelated changes: references use the name without it. */
static const char *strip_counter(const char *name, char *buf, size_t len)
{
	const char *dot = strrchr(name, '.');
	if (!dot || !dot[1] || dot == name)
		return name;
	for (const char *p = dot + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return name;
	size_t n = (size_t)(dot - name);
	if (n >= len)
		return name;
	memcpy(buf, name, n);
	buf[n] = 0;
	return buf;
}

static enum bt_status build_functions(struct diff_side *s)
{
	const struct elfimg *img = s->img;
	struct fsym *fs = calloc(img->nsyms ? img->nsyms : 1, sizeof(*fs));
	if (!fs)
		return BT_ERR_NOMEM;
	size_t nfs = 0;
	const char *file = "";
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *y = &img->syms[i];
		if (y->type == STT_FILE) {
			file = y->name;
			s->has_file_syms = 1;
			continue;
		}
		if (y->bind != STB_LOCAL)
			file = ""; /* globals follow the locals: no file context */
		const uint8_t *bytes;
		if (y->type != STT_FUNC || y->size == 0 || !y->name[0] ||
		    !code_range(s, y, y->size, &bytes))
			continue;
		fs[nfs++] =
		    (struct fsym){.y = y, .file = file, .order = i, .addr = diff_sym_addr(s, y)};
	}
	qsort(fs, nfs, sizeof(*fs), cmp_fsym_addr);

	s->f = calloc(nfs ? nfs : 1, sizeof(*s->f));
	if (!s->f) {
		free(fs);
		return BT_ERR_NOMEM;
	}
	for (size_t i = 0; i < nfs; i++) {
		const struct elfimg_symbol *y = fs[i].y;
		if (s->n && s->f[s->n - 1].addr == fs[i].addr) {
			/* alias: keep the first (preferred); remember a file */
			struct diff_func *prev = &s->f[s->n - 1];
			if (!prev->file[0] && fs[i].file[0])
				prev->file = fs[i].file;
			if (y->size > prev->size && code_range(s, y, y->size, &prev->bytes))
				prev->size = y->size;
			continue;
		}
		struct diff_func *f = &s->f[s->n++];
		const uint8_t *bytes = NULL;
		code_range(s, y, y->size, &bytes);
		*f = (struct diff_func){.key = y->name,
					.name = y->name,
					.file = fs[i].file,
					.addr = fs[i].addr,
					.size = y->size,
					.bytes = bytes,
					.bad_at = UINT32_MAX,
					.shndx = y->shndx,
					.global = y->bind != STB_LOCAL};
	}
	free(fs);

	/* Globals have no STT_FILE context: an object's code is contiguous,
	 * so take the file of the neighbouring local functions. */
	const char *prev_file = "";
	for (size_t i = 0; i < s->n; i++) {
		struct diff_func *f = &s->f[i];
		if (f->file[0]) {
			prev_file = f->file;
			continue;
		}
		const char *next_file = "";
		for (size_t j = i + 1; j < s->n && j < i + 64; j++)
			if (s->f[j].file[0] && !s->f[j].file_guessed) {
				next_file = s->f[j].file;
				break;
			}
		f->file = prev_file[0] ? prev_file : next_file;
		f->file_guessed = f->file[0] != 0;
	}
	return BT_OK;
}

static enum bt_status build_symtab(struct diff_side *s)
{
	const struct elfimg *img = s->img;
	s->syms = calloc(img->nsyms + 1, sizeof(*s->syms));
	if (!s->syms)
		return BT_ERR_NOMEM;
	const struct elfimg_section *percpu = elfimg_section_by_name(img, ".data..percpu");
	if (percpu && percpu->addr == 0 && (percpu->flags & SHF_ALLOC)) {
		s->percpu_base = 0;
		s->percpu_end = percpu->size;
	}
	s->alloc_lo = UINT64_MAX;
	for (size_t k = 0; k < img->nsecs; k++) {
		const struct elfimg_section *sc = &img->secs[k];
		if (!(sc->flags & SHF_ALLOC) || !sc->addr || !sc->size)
			continue;
		s->alloc_lo = BT_MIN(s->alloc_lo, sc->addr);
		s->alloc_hi = BT_MAX(s->alloc_hi, sc->addr + sc->size);
	}
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *y = &img->syms[i];
		if (!y->name[0] || y->type == STT_FILE || y->type == STT_SECTION ||
		    y->shndx == SHN_UNDEF || y->shndx >= SHN_LORESERVE || y->shndx >= img->nsecs)
			continue;
		const struct elfimg_section *sec = NULL;
		for (size_t k = 0; k < img->nsecs; k++)
			if (img->secs[k].index == y->shndx) {
				sec = &img->secs[k];
				break;
			}
		if (!sec || !(sec->flags & SHF_ALLOC))
			continue;
		if (y->type == STT_FUNC && y->size)
			continue; /* functions are added from s->f with their keys */
		s->syms[s->nsyms++] = (struct diff_sym){.addr = diff_sym_addr(s, y),
							.size = y->size,
							.name = y->name,
							.is_func = y->type == STT_FUNC};
	}
	return BT_OK;
}

/* After keys are assigned: add functions, hash names, sort. */
static enum bt_status finish_symtab(struct diff_side *s)
{
	struct diff_sym *n = realloc(s->syms, (s->nsyms + s->n + 1) * sizeof(*s->syms));
	if (!n)
		return BT_ERR_NOMEM;
	s->syms = n;
	for (size_t i = 0; i < s->n; i++)
		s->syms[s->nsyms++] = (struct diff_sym){
		    .addr = s->f[i].addr, .size = s->f[i].size, .name = s->f[i].key, .is_func = 1};
	char buf[256];
	for (size_t i = 0; i < s->nsyms; i++) {
		const char *nm = s->syms[i].is_func
				     ? s->syms[i].name
				     : strip_counter(s->syms[i].name, buf, sizeof(buf));
		s->syms[i].hash = diff_strhash(nm);
	}
	qsort(s->syms, s->nsyms, sizeof(*s->syms), cmp_sym);
	return BT_OK;
}

const struct diff_sym *diff_sym_at(const struct diff_side *s, gva_t va)
{
	size_t lo = 0, hi = s->nsyms;
	while (lo < hi) { /* first entry with addr > va */
		size_t mid = lo + (hi - lo) / 2;
		if (s->syms[mid].addr <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	/* The preferred entry at the highest address <= va. */
	size_t i = lo - 1;
	gva_t a = s->syms[i].addr;
	while (i > 0 && s->syms[i - 1].addr == a)
		i--;
	for (size_t j = i; j < lo; j++)
		if (va == s->syms[j].addr || va - s->syms[j].addr < s->syms[j].size)
			return &s->syms[j];
	/* Nested or preceding sized symbols (a few steps back only). */
	for (size_t j = i, k = 0; j > 0 && k < 8; j--, k++) {
		const struct diff_sym *y = &s->syms[j - 1];
		if (y->size && va - y->addr < y->size)
			return y;
	}
	return NULL;
}

static int compressed_module(const char *path)
{
	size_t n = strlen(path);
	return (n > 6 && !strcmp(path + n - 6, ".ko.xz")) ||
	       (n > 7 && !strcmp(path + n - 7, ".ko.zst"));
}

static enum bt_status open_image(struct diff_side *s, const char *path)
{
	enum bt_status st;
	if (compressed_module(path)) { /* .ko.xz, .ko.zst: read through kmod/ */
		size_t len;
		st = kmod_read_file(path, &s->file_buf, &len);
		if (st == BT_OK)
			st = elfimg_open_mem(path, s->file_buf, len, &s->img);
	} else {
		st = elfimg_open(path, &s->img);
	}
	if (st != BT_OK)
		return st; /* elfimg logged the file and the problem */
	s->image_path = strdup(path);
	if (!s->image_path)
		return BT_ERR_NOMEM;
	if (s->img->type == ET_REL) {
		s->rel = 1;
		BT_TRY(layout_rel(s));
		BT_TRY(diff_relocs_load(s));
	}
	return BT_OK;
}

static int is_sqlite(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	char hdr[16] = {0};
	size_t n = fread(hdr, 1, sizeof(hdr), f);
	fclose(f);
	return n == sizeof(hdr) && !memcmp(hdr, "SQLite format 3", 16);
}

static enum bt_status open_db(struct diff_side *s, const char *path)
{
	struct tcdb *db;
	static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
					      .abi_version = VCPU_ABI_VERSION,
					      .n_exit_kinds = XLAT_NEXIT_KINDS,
					      .n_refusals = XLAT_NREFUSALS};
	enum bt_status st = tcdb_open(path, TCDB_RDONLY, &want, NULL, &db);
	if (st != BT_OK)
		return st; /* tcdb logged what is wrong and what to do */
	struct tcdb_image im;
	st = tcdb_get_image(db, &im);
	tcdb_close(db);
	if (st != BT_OK) {
		bt_err(LOG_CORE, "diff: database %s has no image record: %s", path,
		       bt_status_str(st));
		return st;
	}
	s->db_path = strdup(path);
	if (!s->db_path)
		return BT_ERR_NOMEM;
	char where[sizeof(im.path)];
	tcdb_image_locate(path, im.path, where, sizeof(where));
	st = open_image(s, where);
	if (st != BT_OK) {
		bt_err(LOG_CORE,
		       "diff: %s was built from %s, which cannot be read; "
		       "the diff compares guest code and needs that image",
		       path, where);
		return st;
	}
	char hex[2 * SHA256_LEN + 1];
	sha256_hex(s->img->sha256, hex);
	if (strcmp(hex, im.sha256) != 0) {
		bt_err(LOG_CORE,
		       "diff: %s was built from %s with SHA-256 %.16s..., the file now "
		       "has %.16s...: rebuild the database with `pretrans build`",
		       path, im.path, im.sha256, hex);
		return BT_ERR_VERSION;
	}
	return BT_OK;
}

enum bt_status diff_side_load(const char *path, struct diff_side **out)
{
	uint64_t t0 = bt_now_ns();
	struct diff_side *s = calloc(1, sizeof(*s));
	if (!s)
		return BT_ERR_NOMEM;
	enum bt_status st = BT_ERR_NOMEM;
	s->path = strdup(path);
	if (!s->path)
		goto err_free;
	st = is_sqlite(path) ? open_db(s, path) : open_image(s, path);
	if (st != BT_OK)
		goto err_free;
	if (s->img->nsyms == 0)
		bt_warn(LOG_CORE, "diff: %s has no symbol table: no functions to compare", path);
	st = build_functions(s);
	if (st != BT_OK)
		goto err_free;
	if (!s->rel) /* unrelocated DWARF of an object file: STT_FILE names only */
		st = diff_dwarf_files(s);
	if (st != BT_OK)
		goto err_free;
	st = build_symtab(s);
	if (st != BT_OK)
		goto err_free;
	s->load_seconds = (double)(bt_now_ns() - t0) * 1e-9;
	*out = s;
	return BT_OK;
err_free:
	/* every other failure was logged, naming the file, where it was found */
	if (st == BT_ERR_NOMEM)
		bt_err(LOG_CORE, "diff: %s: out of memory while loading it", path);
	diff_side_free(s);
	return st;
}

/* What a side is, for the kind check: a module (ET_REL) or a linked image. */
static const char *side_kind(const struct diff_side *s)
{
	return s->rel ? "a relocatable module (ELF type ET_REL)"
		      : "a linked image (a kernel, ELF type ET_EXEC or ET_DYN)";
}

enum bt_status diff_sides_check_kind(const struct diff_side *old, const struct diff_side *new_)
{
	if (old->rel == new_->rel)
		return BT_OK;
	bt_err(LOG_CORE,
	       "diff: %s is %s but %s is %s: compare a module with a module, a kernel with a "
	       "kernel",
	       old->path, side_kind(old), new_->path, side_kind(new_));
	return BT_ERR_FORMAT;
}

void diff_side_free(struct diff_side *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->f[i].key != s->f[i].name)
			free((char *)s->f[i].key);
	free(s->f);
	free(s->syms);
	free(s->sec_base);
	free(s->relocs);
	free(s->dwarf_names);
	if (s->img)
		elfimg_close(s->img);
	free(s->file_buf);
	free(s->path);
	free(s->image_path);
	free(s->db_path);
	free(s);
}

/* ---- keys ---- */

struct nref {
	const char *name;
	struct diff_func *f;
	uint8_t side;
};

static int cmp_nref(const void *pa, const void *pb)
{
	const struct nref *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);
	if (c)
		return c;
	if (a->side != b->side)
		return a->side - b->side;
	return a->f < b->f ? -1 : a->f > b->f;
}

static int cmp_key(const void *pa, const void *pb)
{
	const struct diff_func *a = pa, *b = pb;
	return strcmp(a->key, b->key);
}

static enum bt_status qualify(struct nref *r, size_t n)
{
	/* r[0..n) share a raw name; qualify locals with the file, then an
	 * ordinal (by address within one side) for equal name@file. */
	for (size_t i = 0; i < n; i++) {
		struct diff_func *f = r[i].f;
		if (f->global)
			continue;
		/* the basename: the same with DWARF paths or STT_FILE names */
		const char *base = strrchr(f->file, '/');
		base = base ? base + 1 : f->file;
		char *k = concat3(f->name, "@", base[0] ? base : "?");
		if (!k)
			return BT_ERR_NOMEM;
		f->key = k;
	}
	/* ordinals first, from the name@file keys of all (renaming while
	 * counting would hide the later duplicates and give two "#1") */
	int *ord = calloc(n ? n : 1, sizeof(*ord));
	if (!ord)
		return BT_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct diff_func *f = r[i].f;
		if (f->global)
			continue;
		int dup = 0, below = 0;
		for (size_t j = 0; j < n; j++) {
			if (r[j].side != r[i].side || j == i || r[j].f->global ||
			    strcmp(r[j].f->key, f->key))
				continue;
			dup = 1;
			if (r[j].f->addr < f->addr)
				below++;
		}
		ord[i] = dup ? below + 1 : 0;
	}
	enum bt_status st = BT_OK;
	for (size_t i = 0; i < n && st == BT_OK; i++) {
		if (!ord[i])
			continue;
		struct diff_func *f = r[i].f;
		char num[24];
		snprintf(num, sizeof(num), "#%d", ord[i]);
		char *k = concat3(f->key, num, NULL);
		if (!k) {
			st = BT_ERR_NOMEM;
			break;
		}
		free((char *)f->key);
		f->key = k;
	}
	free(ord);
	return st;
}

static enum bt_status assign_keys(struct diff_side *old, struct diff_side *new_)
{
	size_t n = old->n + new_->n;
	struct nref *r = calloc(n ? n : 1, sizeof(*r));
	if (!r)
		return BT_ERR_NOMEM;
	size_t k = 0;
	for (size_t i = 0; i < old->n; i++)
		r[k++] = (struct nref){old->f[i].name, &old->f[i], 0};
	for (size_t i = 0; i < new_->n; i++)
		r[k++] = (struct nref){new_->f[i].name, &new_->f[i], 1};
	qsort(r, n, sizeof(*r), cmp_nref);
	enum bt_status st = BT_OK;
	for (size_t i = 0; i < n && st == BT_OK;) {
		size_t j = i + 1;
		while (j < n && !strcmp(r[j].name, r[i].name))
			j++;
		size_t c0 = 0, c1 = 0;
		for (size_t m = i; m < j; m++)
			*(r[m].side ? &c1 : &c0) += 1;
		if (c0 > 1 || c1 > 1)
			st = qualify(r + i, j - i);
		i = j;
	}
	free(r);
	return st;
}

/* ---- normalisation threads ---- */

static void hash_side(struct diff_side *s)
{
	for (size_t i = 0; i < s->n; i++)
		diff_norm_hash(s, &s->f[i]);
}

static void *hash_thread(void *arg)
{
	hash_side(arg);
	return NULL;
}

enum bt_status diff_sides_prepare(struct diff_side *old, struct diff_side *new_, int threads)
{
	BT_TRY(assign_keys(old, new_));
	qsort(old->f, old->n, sizeof(*old->f), cmp_key);
	qsort(new_->f, new_->n, sizeof(*new_->f), cmp_key);
	BT_TRY(finish_symtab(old));
	BT_TRY(finish_symtab(new_));
	pthread_t th;
	if (threads > 1 && pthread_create(&th, NULL, hash_thread, old) == 0) {
		hash_side(new_);
		pthread_join(th, NULL);
	} else {
		hash_side(old);
		hash_side(new_);
	}
	return BT_OK;
}
