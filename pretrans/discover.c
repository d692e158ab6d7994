/*
 * Code discovery (see discover.h).  Owns the plan of regions to walk and the
 * per-thread walker scratch.
 *
 * Invariants
 *  1. Only bytes inside executable sections are ever handed to the
 *     translator, and a sized function's walk never starts a block outside
 *     [start, end): data between functions is never decoded as code.
 *  2. A walk is a pure function of (image, plan, region, translator options):
 *     the same region gives the same blocks in the same order, whatever
 *     thread runs it (the --jobs determinism rests on this).
 *  3. Every block start is translated at most once per walk; every loop
 *     iteration either translates a new start or marks bytes refused, so a
 *     walk terminates.
 */
#include "pretrans/discover.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"
#include "pretrans/xlat/xlat_facts.h"

#include <Zydis/Zydis.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALT_SECTION   ".altinstr_replacement"
#define EXTABLE	      "__ex_table"
#define EXTABLE_ENTRY 12 /* Linux 6.1: s32 insn, s32 fixup, s32 data */
#define JT_MAX	      1024

/* ------------------------------------------------------------------ plan */

static enum bt_status plan_push(struct discover_plan *p, const struct discover_func *f)
{
	if (!BT_VEC_RESERVE(p->f, p->cap, p->n + 1, 256))
		return BT_ERR_NOMEM;
	p->f[p->n++] = *f;
	return BT_OK;
}

/* Generated names live in p->names; store offsets until the plan is final. */
static enum bt_status name_gen(struct discover_plan *p, const char *fmt, gva_t va, size_t *off)
{
	char tmp[64];
	int len = snprintf(tmp, sizeof(tmp), fmt, (unsigned long long)va);
	if (!BT_VEC_RESERVE(p->names, p->names_cap, p->names_len + (size_t)len + 1, 4096))
		return BT_ERR_NOMEM;
	*off = p->names_len;
	memcpy(p->names + p->names_len, tmp, (size_t)len + 1);
	p->names_len += (size_t)len + 1;
	return BT_OK;
}

static int func_cmp(const void *a, const void *b)
{
	const struct discover_func *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1; /* larger first */
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static int va_cmp(const void *a, const void *b)
{
	gva_t x = *(const gva_t *)a, y = *(const gva_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort, then bound every seed not walked yet by the next region start
 * (of any kind) or the end of its section, so that seeds do not walk each
 * other's code again. */
void discover_plan_sort(struct discover_plan *p)
{
	qsort(p->f, p->n, sizeof(*p->f), func_cmp);
	p->n_sorted = p->n;
	for (size_t i = 0; i < p->n; i++) {
		struct discover_func *f = &p->f[i];
		if (f->kind != DISCOVER_SEED || f->done)
			continue;
		gva_t end = f->sec->addr + f->sec->size;
		for (size_t j = i + 1; j < p->n; j++)
			if (p->f[j].start > f->start) {
				end = BT_MIN(end, p->f[j].start);
				break;
			}
		f->end = BT_MAX(end, f->start + 1);
	}
}

/* Index of the first sized function starting after va, or n. */
static gva_t next_func_start(const struct discover_plan *p, gva_t va, gva_t limit)
{
	size_t lo = 0, hi = p->n_sorted;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->f[mid].start <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < p->n_sorted; i++)
		if (p->f[i].kind == DISCOVER_FUNC)
			return BT_MIN(p->f[i].start, limit);
	return limit;
}

/* The sized function containing va, or NULL (p sorted). */
static const struct discover_func *func_containing(const struct discover_plan *p, gva_t va)
{
	size_t lo = 0, hi = p->n_sorted;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->f[mid].start <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* functions do not nest in practice; look back a few for aliases */
	for (size_t i = lo, k = 0; i-- > 0 && k < 8; k++)
		if (p->f[i].kind == DISCOVER_FUNC && va >= p->f[i].start && va < p->f[i].end)
			return &p->f[i];
	return NULL;
}

static size_t source_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct elfimg *img = opaque;
	const struct elfimg_code *c = elfimg_code_at(img, va);
	if (!c)
		return 0;
	size_t n = BT_MIN(len, (size_t)(c->end - va));
	memcpy(buf, c->bytes + (va - c->start), n);
	return n;
}

void discover_source_from_elf(const struct elfimg *img, struct xlat_source *src)
{
	src->read = source_read;
	src->opaque = (void *)img;
}

enum bt_status discover_add_seed(struct discover_plan *p, const struct elfimg *img, gva_t va)
{
	const struct elfimg_code *c = elfimg_code_at(img, va);
	if (!c)
		return BT_ERR_RANGE;
	if (func_containing(p, va))
		return BT_ERR_RANGE;
	size_t lo = 0, hi = p->n_sorted;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->f[mid].start < va)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->n_sorted && p->f[lo].start == va)
		return BT_ERR_RANGE;
	uintptr_t old = (uintptr_t)p->names, old_len = p->names_len;
	size_t off;
	BT_TRY(name_gen(p, "sub_%llx", va, &off));
	if ((uintptr_t)p->names != old) /* generated names moved: re-point them */
		for (size_t i = 0; i < p->n; i++) {
			uintptr_t q = (uintptr_t)p->f[i].name;
			if (q >= old && q < old + old_len)
				p->f[i].name = p->names + (q - old);
		}
	struct discover_func f = {.name = p->names + off,
				  .start = va,
				  .end = next_func_start(p, va, c->end),
				  .sec = c->sec,
				  .kind = DISCOVER_SEED};
	return plan_push(p, &f);
}

/* Every aligned 8-byte value in an allocated, non-executable PROGBITS
 * section that points into an executable section.  Used only when the image
 * has no sized function symbols: a false positive starts a useless block,
 * it never changes what a correct one contains. */
static enum bt_status plan_data_pointers(struct discover_plan *p, const struct elfimg *img)
{
	for (size_t i = 0; i < img->nsecs; i++) {
		const struct elfimg_section *sec = &img->secs[i];
		if (sec->type != SHT_PROGBITS || !(sec->flags & SHF_ALLOC) ||
		    (sec->flags & SHF_EXECINSTR))
			continue;
		const uint8_t *base = img->map + sec->offset;
		uint64_t skip = (8 - (sec->addr & 7)) & 7;
		for (uint64_t off = skip; off + 8 <= sec->size; off += 8) {
			uint64_t v;
			memcpy(&v, base + off, 8);
			if (!elfimg_code_at(img, v))
				continue;
			enum bt_status st = discover_add_seed(p, img, v);
			if (st == BT_ERR_NOMEM)
				return st;
			p->n_data_ptrs += st == BT_OK;
		}
	}
	return BT_OK;
}

static enum bt_status plan_ex_table(struct discover_plan *p, const struct elfimg *img)
{
	const struct elfimg_section *s = elfimg_section_by_name(img, EXTABLE);
	if (!s || s->type != SHT_PROGBITS || s->size % EXTABLE_ENTRY)
		return BT_OK;
	size_t n = s->size / EXTABLE_ENTRY;
	p->leaders = calloc(n ? n : 1, sizeof(gva_t));
	if (!p->leaders)
		return BT_ERR_NOMEM;
	const uint8_t *base = img->map + s->offset;
	for (size_t i = 0; i < n; i++) {
		int32_t fix;
		memcpy(&fix, base + i * EXTABLE_ENTRY + 4, 4);
		gva_t va = s->addr + i * EXTABLE_ENTRY + 4 + (gva_t)(int64_t)fix;
		if (func_containing(p, va)) {
			p->leaders[p->n_leaders++] = va;
		} else {
			/* fixup code in unsized (asm) functions: a seed of its own */
			enum bt_status st = discover_add_seed(p, img, va);
			if (st == BT_ERR_NOMEM)
				return st;
		}
	}
	discover_plan_sort(p);
	qsort(p->leaders, p->n_leaders, sizeof(gva_t), va_cmp);
	size_t u = 0;
	for (size_t i = 0; i < p->n_leaders; i++)
		if (u == 0 || p->leaders[u - 1] != p->leaders[i])
			p->leaders[u++] = p->leaders[i];
	p->n_leaders = u;
	p->n_ex_table = n;
	return BT_OK;
}

enum bt_status discover_plan(const struct elfimg *img, struct discover_plan **out)
{
	enum bt_status s;
	struct discover_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return BT_ERR_NOMEM;
	/* 1. sized function symbols wholly inside one executable section */
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *sy = &img->syms[i];
		if (sy->type != STT_FUNC || sy->size == 0 || sy->shndx == SHN_UNDEF ||
		    img->type == ET_REL)
			continue;
		const struct elfimg_code *c = elfimg_code_at(img, sy->addr);
		if (!c || sy->size > c->end - sy->addr) {
			p->n_skipped_syms++;
			continue;
		}
		struct discover_func f = {.name = sy->name,
					  .start = sy->addr,
					  .end = sy->addr + sy->size,
					  .sec = c->sec,
					  .kind = DISCOVER_FUNC};
		if ((s = plan_push(p, &f)) != BT_OK)
			goto err_free_plan;
		p->n_func_syms++;
	}
	/* aliases: keep one region per start (the largest, then by name) */
	discover_plan_sort(p);
	size_t u = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (u && p->f[u - 1].start == p->f[i].start) {
			p->n_alias_syms++;
			continue;
		}
		p->f[u++] = p->f[i];
	}
	p->n = u;
	/* 2. seeds: the entry point and unsized function symbols */
	if (img->type != ET_REL) {
		discover_add_seed(p, img, img->entry_va);
		for (size_t i = 0; i < img->nsyms; i++) {
			const struct elfimg_symbol *sy = &img->syms[i];
			if (sy->type == STT_FUNC && sy->size == 0 && sy->shndx != SHN_UNDEF)
				discover_add_seed(p, img, sy->addr);
		}
	}
	/* 2b. stripped images: code pointers stored in data (function pointer
	 * tables, ops structures) become seeds too */
	if (img->type != ET_REL && p->n_func_syms == 0) {
		discover_plan_sort(p);
		if ((s = plan_data_pointers(p, img)) != BT_OK)
			goto err_free_plan;
	}
	/* 3. code-only sections without function symbols */
	for (size_t i = 0; i < img->ncode; i++) {
		const struct elfimg_code *c = &img->code[i];
		if (strcmp(c->sec->name, ALT_SECTION) != 0)
			continue;
		struct discover_func f = {.name = c->sec->name,
					  .start = c->start,
					  .end = c->end,
					  .sec = c->sec,
					  .kind = DISCOVER_SWEEP};
		if ((s = plan_push(p, &f)) != BT_OK)
			goto err_free_plan;
	}
	discover_plan_sort(p);
	/* 4. the kernel's exception-table fixups */
	if ((s = plan_ex_table(p, img)) != BT_OK)
		goto err_free_plan;
	*out = p;
	return BT_OK;

err_free_plan:
	discover_plan_free(p);
	return s;
}

void discover_plan_free(struct discover_plan *p)
{
	if (!p)
		return;
	free(p->f);
	free(p->leaders);
	free(p->names);
	free(p);
}

/* ------------------------------------------------------------------ walk */

struct discover_walker {
	ZydisDecoder dec;
	uint64_t *covered, *refused; /* bitmaps over the region (bounded kinds) */
	size_t bm_words;
	gva_t *work;
	size_t n_work, cap_work;
	uint64_t *seen; /* open-addressing set of translated starts, 0 = empty */
	size_t seen_mask, n_seen;
	discover_translate_fn translate; /* NULL: xlat_translate */
	void *translate_opaque;
};

void discover_walker_set_translate(struct discover_walker *w, discover_translate_fn fn,
				   void *opaque)
{
	w->translate = fn;
	w->translate_opaque = opaque;
}

enum bt_status discover_walker_create(struct discover_walker **out)
{
	struct discover_walker *w = calloc(1, sizeof(*w));
	if (!w)
		return BT_ERR_NOMEM;
	/* decode as the translator and the vCPU do (pretrans/xlat/xlat_facts.h) */
	if (!xlat_decoder_init(&w->dec, ZYDIS_MACHINE_MODE_LONG_64)) {
		free(w);
		return BT_ERR_INTERNAL;
	}
	*out = w;
	return BT_OK;
}

void discover_walker_destroy(struct discover_walker *w)
{
	if (!w)
		return;
	free(w->covered);
	free(w->refused);
	free(w->work);
	free(w->seen);
	free(w);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	return x;
}

static bool seen_has(const struct discover_walker *w, gva_t va)
{
	gva_t key = va ? va : 1;
	if (!w->seen)
		return false;
	for (size_t i = mix(key) & w->seen_mask;; i = (i + 1) & w->seen_mask) {
		if (w->seen[i] == key)
			return true;
		if (!w->seen[i])
			return false;
	}
}

/* Insert va; false if it was already there. */
static bool seen_add(struct discover_walker *w, gva_t va)
{
	if ((w->n_seen + 1) * 2 > w->seen_mask + 1 || !w->seen) {
		size_t cap = w->seen ? (w->seen_mask + 1) * 2 : 1024;
		uint64_t *ns = calloc(cap, sizeof(*ns));
		if (!ns)
			abort(); /* tiny allocation; out of memory here is fatal */
		for (size_t i = 0; w->seen && i <= w->seen_mask; i++) {
			if (!w->seen[i])
				continue;
			size_t j = mix(w->seen[i]) & (cap - 1);
			while (ns[j])
				j = (j + 1) & (cap - 1);
			ns[j] = w->seen[i];
		}
		free(w->seen);
		w->seen = ns;
		w->seen_mask = cap - 1;
	}
	gva_t key = va ? va : 1; /* 0 is the empty marker; no code lives at 0..1 both */
	for (size_t i = mix(key) & w->seen_mask;; i = (i + 1) & w->seen_mask) {
		if (w->seen[i] == key)
			return false;
		if (!w->seen[i]) {
			w->seen[i] = key;
			w->n_seen++;
			return true;
		}
	}
}

static enum bt_status work_push(struct discover_walker *w, gva_t va)
{
	if (!BT_VEC_RESERVE(w->work, w->cap_work, w->n_work + 1, 256))
		return BT_ERR_NOMEM;
	w->work[w->n_work++] = va;
	return BT_OK;
}

static void bm_set(uint64_t *bm, size_t from, size_t to)
{
	for (size_t i = from; i < to;) {
		if ((i & 63) == 0 && to - i >= 64) {
			bm[i >> 6] = ~0ull;
			i += 64;
		} else {
			bm[i >> 6] |= 1ull << (i & 63);
			i++;
		}
	}
}

static bool bm_get(const uint64_t *bm, size_t i)
{
	return bm[i >> 6] >> (i & 63) & 1;
}

static size_t bm_count(const uint64_t *bm, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n / 64; i++)
		c += (size_t)__builtin_popcountll(bm[i]);
	for (size_t i = n & ~(size_t)63; i < n; i++)
		c += bm_get(bm, i);
	return c;
}

/* First offset in [from, n) set in neither bitmap, or n. */
static size_t bm_first_gap(const uint64_t *a, const uint64_t *b, size_t from, size_t n)
{
	size_t i = from;
	while (i < n) {
		if ((i & 63) == 0 && (a[i >> 6] | b[i >> 6]) == ~0ull) {
			i += 64;
			continue;
		}
		if (!bm_get(a, i) && !bm_get(b, i))
			return i;
		i++;
	}
	return n;
}

static enum bt_status res_data(struct discover_result *r, const uint8_t *p, uint32_t n,
			       uint32_t *off)
{
	if (!BT_VEC_RESERVE(r->data, r->data_cap, r->data_len + n, 4096))
		return BT_ERR_NOMEM;
	if (n)
		memcpy(r->data + r->data_len, p, n);
	*off = (uint32_t)r->data_len;
	r->data_len += n;
	return BT_OK;
}

static enum bt_status res_block(struct discover_result *r, const struct discover_block *b)
{
	if (!BT_VEC_RESERVE(r->b, r->cap, r->n + 1, 64))
		return BT_ERR_NOMEM;
	r->b[r->n++] = *b;
	return BT_OK;
}

static enum bt_status res_call(struct discover_result *r, gva_t va)
{
	if (!BT_VEC_RESERVE(r->calls, r->calls_cap, r->n_calls + 1, 16))
		return BT_ERR_NOMEM;
	r->calls[r->n_calls++] = va;
	return BT_OK;
}

static uint32_t insn_len(const ZydisDecoder *dec, const struct elfimg *img, gva_t va)
{
	const struct elfimg_code *c = elfimg_code_at(img, va);
	if (!c)
		return 0;
	ZydisDecodedInstruction in;
	size_t avail = (size_t)(c->end - va);
	if (ZYAN_FAILED(ZydisDecoderDecodeInstruction(dec, NULL, c->bytes + (va - c->start),
						      BT_MIN(avail, 15), &in)))
		return 0;
	return in.length;
}

uint32_t discover_insn_len(const struct elfimg *img, gva_t va)
{
	ZydisDecoder dec;
	if (!xlat_decoder_init(&dec, ZYDIS_MACHINE_MODE_LONG_64))
		return 0;
	return insn_len(&dec, img, va);
}

/* Jump-table recovery: the block ends in `jmp *disp(,%reg,8)`; push every
 * table entry that points into [lo, hi).  Entries are read while they stay
 * inside the bounds (the table ends at the first entry that does not). */
static enum bt_status jump_table(struct discover_walker *w, const struct elfimg *img, gva_t start,
				 uint32_t len, gva_t lo, gva_t hi)
{
	const struct elfimg_code *c = elfimg_code_at(img, start);
	if (!c || len > c->end - start)
		return BT_OK;
	const uint8_t *p = c->bytes + (start - c->start);
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	uint32_t off = 0, last = 0;
	while (off < len) {
		if (ZYAN_FAILED(
			ZydisDecoderDecodeInstruction(&w->dec, NULL, p + off, len - off, &in)))
			return BT_OK;
		last = off;
		off += in.length;
	}
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(&w->dec, p + last, len - last, &in, ops)))
		return BT_OK;
	if (in.mnemonic != ZYDIS_MNEMONIC_JMP || ops[0].type != ZYDIS_OPERAND_TYPE_MEMORY)
		return BT_OK;
	const ZydisDecodedOperand *m = &ops[0];
	if (m->mem.base != ZYDIS_REGISTER_NONE || m->mem.index == ZYDIS_REGISTER_NONE ||
	    m->mem.scale != 8 || !m->mem.disp.has_displacement)
		return BT_OK;
	gva_t table = (gva_t)m->mem.disp.value;
	for (int i = 0; i < JT_MAX; i++) {
		uint64_t e;
		if (elfimg_read(img, table + 8u * (unsigned)i, &e, 8) != BT_OK || e < lo || e >= hi)
			break;
		BT_TRY(work_push(w, e));
	}
	return BT_OK;
}

static bool in_region(const struct discover_func *f, gva_t va)
{
	return va >= f->start && va < f->end;
}

enum bt_status discover_walk(struct discover_walker *w, struct xlat_ctx *ctx,
			     const struct elfimg *img, const struct discover_plan *p,
			     const struct discover_func *f, struct discover_result *res)
{
	res->n = res->data_len = res->n_calls = 0;
	res->covered_bytes = res->refused_bytes = res->bytes_hash = 0;
	res->status = BT_OK;
	bool bounded = f->kind != DISCOVER_SEED;
	size_t len = (size_t)(f->end - f->start);
	if (bounded) {
		size_t words = (len + 63) / 64 + 1;
		if (words > w->bm_words) {
			free(w->covered);
			free(w->refused);
			w->covered = malloc(words * 8);
			w->refused = malloc(words * 8);
			if (!w->covered || !w->refused) {
				w->bm_words = 0;
				return BT_ERR_NOMEM;
			}
			w->bm_words = words;
		}
		memset(w->covered, 0, words * 8);
		memset(w->refused, 0, words * 8);
		const struct elfimg_code *c = elfimg_code_at(img, f->start);
		res->bytes_hash = xlat_hash_bytes(c->bytes + (f->start - c->start), len);
	}
	if (w->seen)
		memset(w->seen, 0, (w->seen_mask + 1) * sizeof(*w->seen));
	w->n_seen = 0;
	w->n_work = 0;

	struct xlat_source src;
	discover_source_from_elf(img, &src);
	BT_TRY(work_push(w, f->start));
	/* extra leaders (exception fixups) inside this region, pushed last-first */
	if (p->n_leaders && bounded) {
		size_t lo = 0, hi = p->n_leaders;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (p->leaders[mid] < f->start)
				lo = mid + 1;
			else
				hi = mid;
		}
		size_t first = lo;
		while (lo < p->n_leaders && p->leaders[lo] < f->end)
			lo++;
		for (size_t i = lo; i-- > first;)
			BT_TRY(work_push(w, p->leaders[i]));
	}
	size_t gap_from = 0;
	for (;;) {
		while (w->n_work) {
			gva_t va = w->work[--w->n_work];
			if (!in_region(f, va) || !seen_add(w, va))
				continue;
			struct bt_block xb;
			BT_TRY(w->translate ? w->translate(w->translate_opaque, ctx, &src, va, &xb)
					    : xlat_translate(ctx, &src, va, &xb));
			/* the record as translated, its bytes moved to res->data */
			struct discover_block db = {.blk = xb};
			db.blk.code = NULL;
			db.blk.pcmap = NULL;
			if (xb.refusal == XLAT_OK && xb.guest_len == 0) {
				bt_err(LOG_XLAT, "translator returned an empty block at %#llx",
				       (unsigned long long)va);
				return BT_ERR_INTERNAL;
			}
			if (xb.refusal != XLAT_OK) {
				/* refused region: up to the end of the offending instruction */
				gva_t at = xb.refusal_addr >= va ? xb.refusal_addr : va;
				uint32_t il = insn_len(&w->dec, img, at);
				gva_t end = at + (il ? il : 1);
				db.blk.guest_len = (uint32_t)(end - va);
				db.blk.code_len = 0;
				db.blk.pcmap_len = 0;
				db.blk.n_exits = 0;
				{
					/* the hash of the refused bytes, so verify can check them
					 */
					uint8_t rb[1024];
					size_t got = src.read(src.opaque, va, rb,
							      BT_MIN(sizeof(rb), db.blk.guest_len));
					db.blk.guest_len = (uint32_t)BT_MAX(got, 1);
					db.blk.guest_hash = xlat_hash_bytes(rb, got);
				}
				if (bounded) {
					size_t a = (size_t)(va - f->start);
					size_t b = BT_MIN((size_t)(end - f->start), len);
					bm_set(w->refused, a, b);
				}
				if (il)
					BT_TRY(work_push(w, end));
				BT_TRY(res_block(res, &db));
				continue;
			}
			BT_TRY(res_data(res, xb.code, xb.code_len, &db.code_off));
			BT_TRY(res_data(res, xb.pcmap, xb.pcmap_len, &db.pcmap_off));
			BT_TRY(res_block(res, &db));
			if (bounded) {
				size_t a = (size_t)(va - f->start);
				size_t b = BT_MIN((size_t)(va + xb.guest_len - f->start), len);
				bm_set(w->covered, a, b);
			}
			gva_t end = va + xb.guest_len;
			/* push in reverse so the first exit is walked first */
			for (uint32_t i = db.blk.n_exits; i-- > 0;) {
				const struct bt_exit *e = &db.blk.exits[i];
				switch (e->kind) {
				case XLAT_EXIT_JMP:
				case XLAT_EXIT_JCC_TAKEN:
				case XLAT_EXIT_JCC_FALL:
				case XLAT_EXIT_FALL:
					if (in_region(f, e->target))
						BT_TRY(work_push(w, e->target));
					else if (e->kind == XLAT_EXIT_JMP)
						BT_TRY(res_call(res, e->target));
					break;
				case XLAT_EXIT_CALL:
					BT_TRY(work_push(w, end)); /* the return site */
					if (in_region(f, e->target))
						BT_TRY(work_push(w, e->target));
					else
						BT_TRY(res_call(res, e->target));
					break;
				case XLAT_EXIT_INDIRECT:
					BT_TRY(work_push(w, end)); /* return site if a call */
					BT_TRY(
					    jump_table(w, img, va, xb.guest_len, f->start, f->end));
					break;
				case XLAT_EXIT_PRIV: {
					uint32_t il = insn_len(&w->dec, img, e->target);
					if (il)
						BT_TRY(work_push(w, e->target + il));
					BT_TRY(work_push(w, end));
					break;
				}
				default:
					break;
				}
			}
		}
		if (!bounded)
			break;
		/* sweep: the first byte of the region neither translated nor refused */
		gap_from = bm_first_gap(w->covered, w->refused, gap_from, len);
		if (gap_from >= len)
			break;
		if (seen_has(w, f->start + gap_from)) {
			/* a translated start is always covered: cannot happen, but
			 * mark the byte refused so that the walk still terminates */
			bm_set(w->refused, gap_from, gap_from + 1);
			continue;
		}
		BT_TRY(work_push(w, f->start + gap_from));
	}
	if (bounded) {
		res->covered_bytes = bm_count(w->covered, len);
		/* refused bytes that no translated block covers */
		size_t r = 0;
		for (size_t i = 0; i < (len + 63) / 64; i++)
			r += (size_t)__builtin_popcountll(w->refused[i] & ~w->covered[i]);
		res->refused_bytes = r;
	}
	return BT_OK;
}

void discover_result_fini(struct discover_result *res)
{
	free(res->b);
	free(res->data);
	free(res->calls);
	memset(res, 0, sizeof(*res));
}
