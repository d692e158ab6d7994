/*
 * The user template store (runtime/ureloc): a block kept at a guest-physical
 * address comes back at another virtual address as the translator's own
 * block there; other bytes, another page offset or no template give
 * nothing; the budget evicts the oldest; an entry kept by reference
 * (ureloc_add_ref) reads its lender's template.  Across boots (runtime/vm/vm_udb.c):
 * the store's templates, in kmod/'s pack and fingerprint index, are found
 * by the bytes at another address and instantiate as the translator's
 * block there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kmod/kmod.h"
#include "pretrans/xlat/xlat.h"
#include "pretrans/xlat/xlat_tmpl.h"
#include "runtime/ureloc/ureloc.h"

/* A code page at `base` (one page of bytes). */
struct page {
	gva_t base;
	uint8_t bytes[4096];
};

static size_t page_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct page *p = opaque;
	if (va < p->base || va - p->base >= sizeof(p->bytes))
		return 0;
	size_t n = sizeof(p->bytes) - (size_t)(va - p->base);
	n = n < len ? n : len;
	memcpy(buf, p->bytes + (va - p->base), n);
	return n;
}

/* At offset 0x100: a loop with a call to the next page, a RIP-relative load,
 * a conditional branch and a jump to another page. */
static const uint8_t code[] = {
    0x48, 0x8b, 0x05, 0x10, 0x20, 0x00, 0x00, /* mov rax, [rip+0x2010] */
    0x48, 0x01, 0xc3,			      /* add rbx, rax */
    0xe8, 0x00, 0x30, 0x00, 0x00,	      /* call +0x3000 */
    0x48, 0xff, 0xc9,			      /* dec rcx */
    0x75, 0xe9,				      /* jnz -0x17 */
    0xe9, 0x00, 0x10, 0x00, 0x00,	      /* jmp +0x1000 */
};

static void setup_page(struct page *p, gva_t base)
{
	memset(p->bytes, 0x90, sizeof(p->bytes));
	p->base = base;
	memcpy(p->bytes + 0x100, code, sizeof(code));
}

/* got (from a template) is fresh (translated at the same place). */
static void assert_same_block(const struct bt_block *got, const struct bt_block *fresh)
{
	assert_int_equal(got->guest_len, fresh->guest_len);
	assert_int_equal(got->n_insns, fresh->n_insns);
	assert_int_equal(got->guest_hash, fresh->guest_hash);
	assert_int_equal(got->flags, fresh->flags);
	assert_int_equal(got->code_len, fresh->code_len);
	assert_memory_equal(got->code, fresh->code, fresh->code_len);
	assert_int_equal(got->pcmap_len, fresh->pcmap_len);
	assert_memory_equal(got->pcmap, fresh->pcmap, fresh->pcmap_len);
	assert_int_equal(got->n_exits, fresh->n_exits);
	for (uint32_t i = 0; i < got->n_exits; i++) {
		assert_int_equal(got->exits[i].kind, fresh->exits[i].kind);
		assert_int_equal(got->exits[i].target, fresh->exits[i].target);
		assert_int_equal(got->exits[i].patch_off, fresh->exits[i].patch_off);
		assert_int_equal(got->exits[i].stub_off, fresh->exits[i].stub_off);
	}
}

static const gpa_t GPA = 0x1234000 + 0x100; /* where the page lives */

static void test_relocated_equals_translated(void **state)
{
	struct xlat_ctx *x;
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = XLAT_OPT_USER}, &x), BT_OK);
	struct ureloc *u;
	assert_int_equal(ureloc_create(1 << 20, &u), BT_OK);
	static struct page p1, p2;
	setup_page(&p1, 0x7f0000401000ull);
	setup_page(&p2, 0x55aa00a13000ull); /* another process, another place */
	struct xlat_source s1 = {page_read, &p1}, s2 = {page_read, &p2};

	struct bt_block b, fresh, got;
	struct xlat_tmpl t;
	enum xlat_tmpl_result r;
	assert_int_equal(xlat_translate_tmpl(x, &s1, p1.base + 0x100, &b, &t, &r), BT_OK);
	assert_int_equal(r, XLAT_TMPL_OK);
	assert_int_equal(ureloc_add(u, GPA, &t, &b), BT_OK);
	static uint8_t made[1 << 16]; /* the context's storage is reused below */
	uint32_t made_len = b.code_len;
	assert_true(made_len <= sizeof(made));
	memcpy(made, b.code, made_len);

	/* no template at another physical address */
	assert_false(ureloc_find(u, GPA + 0x1000, p2.base + 0x100, &s2, &got));
	assert_int_equal(ureloc_stats(u)->none, 1);
	assert_true(ureloc_find(u, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(xlat_translate(x, &s2, p2.base + 0x100, &fresh), BT_OK);
	assert_int_equal(got.guest_start, p2.base + 0x100);
	assert_same_block(&got, &fresh);
	/* the relocated code is not the template's (addresses moved) */
	assert_true(made_len != got.code_len || memcmp(got.code, made, made_len) != 0);
	assert_int_equal(ureloc_stats(u)->hits, 1);

	/* another page offset: not the same code (invariant 1) */
	assert_false(ureloc_find(u, GPA, p2.base + 0x180, &s2, &got));

	/* the page holds other bytes now: stale, and the template goes */
	p2.bytes[0x100 + 9] ^= 0x08; /* add rbx, rax -> add rbx, rcx */
	assert_false(ureloc_find(u, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(ureloc_stats(u)->stale, 1);
	assert_int_equal(ureloc_stats(u)->entries, 0);
	assert_false(ureloc_find(u, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(ureloc_stats(u)->none, 3);
	ureloc_destroy(u);
	xlat_destroy(x);
}

/* A 64-bit target where the template had a 32-bit one: another form. */
static void test_form_refused(void **state)
{
	struct xlat_ctx *x;
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = XLAT_OPT_USER}, &x), BT_OK);
	struct ureloc *u;
	assert_int_equal(ureloc_create(1 << 20, &u), BT_OK);
	static struct page p1, p2;
	setup_page(&p1, 0x401000);
	setup_page(&p2, 0x7f0000401000ull);
	struct xlat_source s1 = {page_read, &p1}, s2 = {page_read, &p2};
	struct bt_block b, got;
	struct xlat_tmpl t;
	enum xlat_tmpl_result r;
	assert_int_equal(xlat_translate_tmpl(x, &s1, p1.base + 0x100, &b, &t, &r), BT_OK);
	assert_int_equal(r, XLAT_TMPL_OK);
	assert_int_equal(ureloc_add(u, GPA, &t, &b), BT_OK);
	assert_false(ureloc_find(u, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(ureloc_stats(u)->refused[XLAT_TMPL_FORM], 1);
	assert_int_equal(ureloc_stats(u)->entries, 1); /* kept: the bytes are right */
	ureloc_destroy(u);
	xlat_destroy(x);
}

/* The budget: adding past it evicts the oldest; one address, one entry. */
static void test_budget(void **state)
{
	struct xlat_ctx *x;
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = XLAT_OPT_USER}, &x), BT_OK);
	static struct page p;
	setup_page(&p, 0x401000);
	struct xlat_source s = {page_read, &p};
	struct bt_block b, got;
	struct xlat_tmpl t;
	enum xlat_tmpl_result r;
	assert_int_equal(xlat_translate_tmpl(x, &s, p.base + 0x100, &b, &t, &r), BT_OK);
	assert_int_equal(r, XLAT_TMPL_OK);
	struct ureloc *u;
	assert_int_equal(ureloc_create(1 << 20, &u), BT_OK);
	assert_int_equal(ureloc_add(u, GPA, &t, &b), BT_OK);
	uint64_t one = ureloc_stats(u)->bytes;
	ureloc_destroy(u);

	assert_int_equal(ureloc_create(3 * one, &u), BT_OK);
	for (gpa_t i = 0; i < 5; i++)
		assert_int_equal(ureloc_add(u, GPA + (i << 12), &t, &b), BT_OK);
	assert_int_equal(ureloc_stats(u)->entries, 3);
	assert_int_equal(ureloc_stats(u)->evicted, 2);
	assert_true(ureloc_stats(u)->bytes <= 3 * one);
	assert_false(ureloc_find(u, GPA, p.base + 0x100, &s, &got)); /* the oldest went */
	assert_true(ureloc_find(u, GPA + (4 << 12), p.base + 0x100, &s, &got));
	assert_int_equal(ureloc_add(u, GPA + (4 << 12), &t, &b), BT_OK);
	assert_int_equal(ureloc_stats(u)->replaced, 1);
	assert_int_equal(ureloc_stats(u)->entries, 3);
	ureloc_destroy(u);

	/* bigger than the whole budget: not kept */
	assert_int_equal(ureloc_create(one - 1, &u), BT_OK);
	assert_int_equal(ureloc_add(u, GPA, &t, &b), BT_OK);
	assert_int_equal(ureloc_stats(u)->entries, 0);
	ureloc_destroy(u);
	xlat_destroy(x);
}

/* Translate the block at p->base + 0x100 as a template and keep it at gpa. */
static void keep_block(struct xlat_ctx *x, struct ureloc *u, struct page *p, gpa_t gpa,
		       struct bt_block *b, struct xlat_tmpl *t)
{
	struct xlat_source src = {page_read, p};
	enum xlat_tmpl_result r;
	assert_int_equal(xlat_translate_tmpl(x, &src, p->base + 0x100, b, t, &r), BT_OK);
	assert_int_equal(r, XLAT_TMPL_OK);
	assert_int_equal(ureloc_add(u, gpa, t, b), BT_OK);
}

/* ureloc_foreach's templates, oldest first, with their blocks' facts. */
struct kept {
	unsigned n;
	gpa_t gpa[4];
	struct kmod_tmpl kt[4];
};

static int keep(void *opaque, gpa_t gpa, const struct xlat_tmpl *t, uint32_t n_insns,
		const uint8_t *pcmap, uint32_t pcmap_len)
{
	struct kept *k = opaque;
	if (k->n == 4)
		return 1;
	k->gpa[k->n] = gpa;
	k->kt[k->n] =
	    (struct kmod_tmpl){.t = *t, .pcmap = pcmap, .pcmap_len = pcmap_len, .n_insns = n_insns};
	k->n++;
	return 0;
}

static const uint8_t *the_pack;
static size_t the_pack_len;

static enum bt_status fetch_pack(void *opaque, uint32_t mod, uint8_t **raw, size_t *len)
{
	(void)opaque;
	if (mod != 0)
		return BT_ERR_NOTFOUND;
	*raw = malloc(the_pack_len);
	memcpy(*raw, the_pack, the_pack_len);
	*len = the_pack_len;
	return BT_OK;
}

/* Across boots: the store's template, packed as --learn packs it (one
 * section for its 4 GiB window, its offset there), indexed, bound at
 * another process's address by the bytes there: the translator's block;
 * changed bytes: nothing; out-of-order templates: not packed. */
static void test_across_boots(void **state)
{
	struct xlat_ctx *x;
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = XLAT_OPT_USER}, &x), BT_OK);
	static struct page p1, p2;
	setup_page(&p1, 0x7f0000401000ull);
	setup_page(&p2, 0x55aa00a13000ull);
	struct xlat_source s2 = {page_read, &p2};
	struct bt_block b, fresh, got;
	struct xlat_tmpl t;
	struct ureloc *u;
	assert_int_equal(ureloc_create(1 << 20, &u), BT_OK);
	keep_block(x, u, &p1, GPA, &b, &t);
	assert_int_equal(ureloc_add(u, GPA + 0x1000, &t, &b), BT_OK);
	struct kept k = {0};
	ureloc_foreach(u, keep, &k);
	assert_int_equal(k.n, 2);
	assert_int_equal(k.gpa[0], GPA); /* oldest first */
	assert_int_equal(k.gpa[1], GPA + 0x1000);
	assert_int_equal(k.kt[0].t.guest_start, p1.base + 0x100);
	assert_int_equal(k.kt[0].n_insns, b.n_insns);
	assert_int_equal(k.kt[0].pcmap_len, b.pcmap_len);

	gva_t va = k.kt[0].t.guest_start;
	struct kmod_pack_section sec = {
	    .name = "user.0", .nominal = va & ~0xffffffffull, .size = 1ull << 32};
	k.kt[0].sec = 0;
	k.kt[0].offset = va & 0xffffffffull;
	k.kt[1] = k.kt[0];
	uint8_t *pack, *index;
	size_t pack_len, index_len;
	/* the same offset twice: not the order a pack needs */
	assert_int_equal(kmod_pack_build(&sec, 1, k.kt, 2, &pack, &pack_len), BT_ERR_INVALID);
	assert_int_equal(kmod_pack_build(&sec, 1, k.kt, 1, &pack, &pack_len), BT_OK);
	struct kmod_index_writer w = {0};
	assert_int_equal(kmod_index_add(&w, pack, pack_len), BT_OK);
	assert_int_equal(kmod_index_finish(&w, &index, &index_len), BT_OK);
	kmod_index_writer_fini(&w);
	the_pack = pack;
	the_pack_len = pack_len;
	struct kmod_binder *bd;
	size_t nfp;
	assert_int_equal(
	    kmod_binder_open(index, index_len, 2, fetch_pack, NULL, 1 << 20, &bd, &nfp),
	    BT_ERR_FORMAT); /* not two packs */
	assert_int_equal(
	    kmod_binder_open(index, index_len, 1, fetch_pack, NULL, 1 << 20, &bd, &nfp), BT_OK);
	assert_int_equal(nfp, 1);
	free(index);

	gva_t at = p2.base + 0x100;
	bool found = false;
	assert_int_equal(
	    kmod_binder_find(bd, NULL, at, p2.bytes + 0x100, 0x1000 - 0x100, &got, &found), BT_OK);
	assert_true(found);
	assert_non_null(kmod_binder_last(bd));
	assert_int_equal(kmod_binder_last(bd)->t.guest_start, va);
	assert_int_equal(xlat_translate(x, &s2, at, &fresh), BT_OK);
	assert_int_equal(got.guest_start, at);
	assert_same_block(&got, &fresh);

	/* other bytes at the address: no template */
	p2.bytes[0x100 + 9] ^= 0x08;
	found = true;
	assert_int_equal(
	    kmod_binder_find(bd, NULL, at, p2.bytes + 0x100, 0x1000 - 0x100, &got, &found), BT_OK);
	assert_false(found);
	assert_null(kmod_binder_last(bd));
	kmod_binder_destroy(bd);
	free(pack);
	ureloc_destroy(u);
	xlat_destroy(x);
}

/* ureloc_pack: templates in 4 GiB-window sections, a second template at an
 * address taken in a section of its own; within any budget the pack costs a
 * binder at most that budget, oldest templates first. */
static void test_pack(void **state)
{
	struct xlat_ctx *x;
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = XLAT_OPT_USER}, &x), BT_OK);
	static struct page pa, pb;
	setup_page(&pa, 0x401000);	    /* a static program */
	setup_page(&pb, 0x7f0000401000ull); /* a library */
	struct bt_block b;
	struct xlat_tmpl t;
	struct ureloc *u;
	assert_int_equal(ureloc_create(1 << 20, &u), BT_OK);
	keep_block(x, u, &pa, GPA, &b, &t); /* the oldest */
	keep_block(x, u, &pb, GPA + 0x1000, &b, &t);
	assert_int_equal(ureloc_add(u, GPA + 0x2000, &t, &b), BT_OK); /* same va, another copy */

	struct ureloc_pack pk;
	assert_int_equal(ureloc_pack(u, 1 << 30, &pk), BT_OK);
	assert_int_equal(pk.n, 3);
	assert_int_equal(pk.nsecs, 3);
	assert_false(pk.full);
	struct kmod_pack parsed;
	assert_int_equal(kmod_pack_parse(pk.pack, pk.pack_len, &parsed), BT_OK);
	assert_int_equal(parsed.n, 3);
	assert_string_equal(parsed.secs[0].name, "user.0");
	assert_int_equal(parsed.secs[0].nominal, 0);
	assert_int_equal(parsed.secs[1].nominal, 0x7f0000000000ull);
	assert_string_equal(parsed.secs[2].name, "user.1");
	assert_int_equal(parsed.secs[2].nominal, 0x7f0000000000ull);
	assert_int_equal(parsed.tmpls[0].t.guest_start, pa.base + 0x100);
	assert_int_equal(parsed.tmpls[1].t.guest_start, pb.base + 0x100);
	assert_int_equal(parsed.tmpls[2].t.guest_start, pb.base + 0x100);
	assert_int_equal(parsed.tmpls[0].n_insns, b.n_insns);
	kmod_pack_fini(&parsed);
	ureloc_pack_fini(&pk);

	/* every budget: the binder's cost of the pack within it, oldest first */
	size_t last = 0;
	unsigned seen = 0; /* the counts met: 0, 1, 2 and 3 */
	for (uint64_t budget = 60 << 10; budget < (72 << 10); budget += 64) {
		assert_int_equal(ureloc_pack(u, budget, &pk), BT_OK);
		assert_true(pk.n >= last);
		last = pk.n;
		seen |= 1u << pk.n;
		assert_int_equal(pk.full, pk.n < 3);
		if (pk.n == 0) {
			assert_null(pk.pack);
			continue;
		}
		struct kmod_index idx;
		assert_int_equal(kmod_index_parse(pk.index, pk.index_len, &idx), BT_OK);
		assert_int_equal(idx.n, pk.n);
		assert_true(idx.cost[0] <= budget);
		kmod_index_fini(&idx);
		assert_int_equal(kmod_pack_parse(pk.pack, pk.pack_len, &parsed), BT_OK);
		if (pk.n == 1)
			assert_int_equal(parsed.tmpls[0].t.guest_start, pa.base + 0x100);
		kmod_pack_fini(&parsed);
		ureloc_pack_fini(&pk);
	}
	assert_int_equal(last, 3);
	assert_int_equal(seen, 0xf);

	/* nothing kept: nothing packed */
	ureloc_destroy(u);
	assert_int_equal(ureloc_create(1 << 20, &u), BT_OK);
	assert_int_equal(ureloc_pack(u, 1 << 30, &pk), BT_OK);
	assert_int_equal(pk.n, 0);
	ureloc_destroy(u);
	xlat_destroy(x);
}

/* The first byte of t's code that no relocation writes (code_len: none). */
static uint32_t unrelocated_byte(const struct xlat_tmpl *t)
{
	for (uint32_t k = 0; k < t->code_len; k++) {
		bool written = false;
		for (uint32_t i = 0; i < t->n_relocs && !written; i++) {
			const struct xlat_reloc *r = &t->relocs[i];
			uint32_t w = r->kind == XLAT_RELOC_UIBL ? 4 : r->width;
			written =
			    r->kind != XLAT_RELOC_EXIT && k >= r->host_off && k < r->host_off + w;
		}
		if (!written)
			return k;
	}
	return t->code_len;
}

/* ureloc_add_ref: the entry reads the lender's template (no copy, the
 * store's bytes are its struct's alone) and instantiates as the
 * translator's block elsewhere, as a copied one does. */
static void test_borrowed(void **state)
{
	(void)state;
	struct xlat_ctx *x;
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = XLAT_OPT_USER}, &x), BT_OK);
	struct ureloc *u, *c;
	assert_int_equal(ureloc_create(1 << 20, &u), BT_OK);
	assert_int_equal(ureloc_create(1 << 20, &c), BT_OK);
	static struct page p1, p2;
	setup_page(&p1, 0x7f0000401000ull);
	setup_page(&p2, 0x55aa00a13000ull);
	struct xlat_source s1 = {page_read, &p1}, s2 = {page_read, &p2};
	struct bt_block b, fresh, got;
	struct xlat_tmpl t;
	enum xlat_tmpl_result r;
	assert_int_equal(xlat_translate_tmpl(x, &s1, p1.base + 0x100, &b, &t, &r), BT_OK);
	assert_int_equal(r, XLAT_TMPL_OK);
	/* the lender's memory: the template's arrays, held by the test */
	static uint8_t guest[1024], hcode[1 << 16], pcmap[4096];
	static struct xlat_reloc relocs[XLAT_TMPL_MAX_RELOCS];
	assert_true(t.guest_len <= sizeof(guest) && t.code_len <= sizeof(hcode) &&
		    b.pcmap_len <= sizeof(pcmap) && t.n_relocs <= XLAT_TMPL_MAX_RELOCS);
	memcpy(guest, t.guest, t.guest_len);
	memcpy(hcode, t.code, t.code_len);
	memcpy(pcmap, b.pcmap, b.pcmap_len);
	memcpy(relocs, t.relocs, t.n_relocs * sizeof(*relocs));
	t.guest = guest;
	t.code = hcode;
	t.relocs = relocs;
	b.pcmap = pcmap;
	assert_int_equal(ureloc_add_ref(u, GPA, &t, &b), BT_OK);
	assert_int_equal(ureloc_add(c, GPA, &t, &b), BT_OK);
	assert_int_equal(ureloc_stats(u)->entries, 1);
	assert_true(ureloc_stats(u)->bytes + t.guest_len + t.code_len + b.pcmap_len <=
		    ureloc_stats(c)->bytes);

	assert_true(ureloc_find(u, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(xlat_translate(x, &s2, p2.base + 0x100, &fresh), BT_OK);
	assert_same_block(&got, &fresh);
	assert_ptr_equal(got.pcmap, pcmap);

	/* by reference: what the lender holds is what it instantiates (a
	 * byte no relocation writes; the copied entry still has the old one) */
	uint32_t k = unrelocated_byte(&t);
	assert_true(k < t.code_len);
	hcode[k] ^= 0xff;
	assert_true(ureloc_find(u, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(got.code[k], (uint8_t)(fresh.code[k] ^ 0xff));
	assert_true(ureloc_find(c, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(got.code[k], fresh.code[k]);
	hcode[k] ^= 0xff;

	/* the stale rule holds for a borrowed entry too: it goes */
	p2.bytes[0x100 + 9] ^= 0x08;
	assert_false(ureloc_find(u, GPA, p2.base + 0x100, &s2, &got));
	assert_int_equal(ureloc_stats(u)->entries, 0);
	assert_int_equal(ureloc_stats(u)->bytes, 0);
	ureloc_destroy(u);
	ureloc_destroy(c);
	xlat_destroy(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_relocated_equals_translated),
	    cmocka_unit_test(test_form_refused),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_across_boots),
	    cmocka_unit_test(test_pack),
	    cmocka_unit_test(test_borrowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
