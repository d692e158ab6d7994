/*
 * Relocatable translation templates (pretrans/xlat/xlat_tmpl.h) against the
 * translator itself: for every block of the test guest kernel, the template
 * instantiated at another address (and with every recorded guest field
 * changed) must be byte for byte what xlat_translate() gives for those bytes
 * at that address; and the test guest's module, loaded by the guest's own
 * loader (guests/lib/kmodld.c) at two module-area addresses, must come out of
 * the first load's templates exactly as translating the second load.  And
 * every block of the test guest's user programs translated as user code
 * (XLAT_OPT_USER), instantiated where another process would run the same
 * bytes (page-multiple shifts, as a shared library under ASLR): the same.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guests/lib/kmodld.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xlat/xlat.h"
#include "pretrans/xlat/xlat_tmpl.h"

#ifndef GU_KERNEL_PATH
#define GU_KERNEL_PATH "build/guests/kernel.elf"
#endif
#ifndef GU_TESTMOD_PATH
#define GU_TESTMOD_PATH "build/guests/testmod.ko"
#endif
#ifndef GU_USER_DIR
#define GU_USER_DIR "build/guests/user/tests"
#endif

/* A code range at `base`, with one window [win, win + wlen) whose bytes come
 * from `over` instead (the perturbed block). */
struct src {
	gva_t base;
	const uint8_t *bytes;
	size_t len;
	gva_t win;
	const uint8_t *over;
	size_t wlen;
};

static size_t src_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct src *s = opaque;
	if (va < s->base || va - s->base >= s->len)
		return 0;
	size_t n = s->len - (size_t)(va - s->base);
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++) {
		gva_t a = va + i;
		buf[i] = (s->over && a >= s->win && a - s->win < s->wlen) ? s->over[a - s->win]
									  : s->bytes[a - s->base];
	}
	return n;
}

struct counts {
	unsigned blocks, ok, form, page, notrel, bytes;
	unsigned uibl; /* templates with user IBL probe records */
};

/* Instantiate t at va2 over guest bytes g2 and compare with translating the
 * source s2 (which holds g2 at va2) directly. */
static void check_one(struct xlat_ctx *ctx2, const struct xlat_tmpl *t, const uint8_t *pcmap,
		      uint32_t pcmap_len, gva_t va2, const uint8_t *g2, struct src *s2,
		      struct counts *c)
{
	static uint8_t code[1 << 17];
	struct bt_exit exits[XLAT_MAX_EXITS];
	enum xlat_tmpl_result r = xlat_tmpl_instantiate(t, va2, g2, code, exits);
	if (r == XLAT_TMPL_FORM) {
		c->form++;
		return;
	}
	if (r == XLAT_TMPL_PAGE) {
		c->page++;
		return;
	}
	if (r == XLAT_TMPL_BYTES) {
		c->bytes++;
		return;
	}
	assert_int_equal(r, XLAT_TMPL_OK);
	struct xlat_source src = {.read = src_read, .opaque = s2};
	struct bt_block d;
	assert_int_equal(xlat_translate(ctx2, &src, va2, &d), BT_OK);
	if (d.refusal != XLAT_OK || d.guest_len != t->guest_len || d.code_len != t->code_len ||
	    memcmp(d.code, code, d.code_len) != 0 || d.n_exits != t->n_exits ||
	    d.pcmap_len != pcmap_len || memcmp(d.pcmap, pcmap, pcmap_len) != 0 ||
	    d.guest_hash != xlat_hash_bytes(g2, t->guest_len) || d.flags != t->flags) {
		fprintf(stderr, "template of %#llx at %#llx: refusal %d len %u/%u code %u/%u\n",
			(unsigned long long)t->guest_start, (unsigned long long)va2, d.refusal,
			d.guest_len, t->guest_len, d.code_len, t->code_len);
		for (uint32_t i = 0; i < d.code_len && i < t->code_len; i++)
			if (d.code[i] != code[i]) {
				fprintf(stderr, "  first difference at host +%#x\n", i);
				break;
			}
		fail();
	}
	for (uint32_t x = 0; x < d.n_exits; x++) {
		assert_int_equal(d.exits[x].kind, exits[x].kind);
		assert_int_equal(d.exits[x].flags, exits[x].flags);
		assert_int_equal(d.exits[x].patch_off, exits[x].patch_off);
		assert_int_equal(d.exits[x].stub_off, exits[x].stub_off);
		assert_int_equal(d.exits[x].target, exits[x].target);
	}
	c->ok++;
}

/* Change every recorded guest field of t's bytes (into g). */
static void perturb(const struct xlat_tmpl *t, uint8_t *g, unsigned salt)
{
	memcpy(g, t->guest, t->guest_len);
	for (uint32_t i = 0; i < t->n_relocs; i++) {
		const struct xlat_reloc *r = &t->relocs[i];
		if (!(r->flags & XLAT_RV_FIELD))
			continue;
		bool seen = false;
		for (uint32_t j = 0; j < i && !seen; j++)
			seen = (t->relocs[j].flags & XLAT_RV_FIELD) && t->relocs[j].goff == r->goff;
		if (seen)
			continue;
		uint64_t v = 0,
			 d = r->gw == 1 ? 1 + salt % 3 : (0x1000ull << (salt % 4)) + 8 * salt;
		for (unsigned b = 0; b < r->gw; b++)
			v |= (uint64_t)g[r->goff + b] << (8 * b);
		v += d;
		for (unsigned b = 0; b < r->gw; b++)
			g[r->goff + b] = (uint8_t)(v >> (8 * b));
	}
}

/* Sweep [base, base + len) linearly: a block, then the next one where it
 * ended (one byte on a refusal).  Each block is a template at its address
 * and checked at base2 + (va - base) over bytes2 (NULL: the same bytes,
 * perturbed in its fields when `perturbed`). */
static void sweep_opts(const uint8_t *bytes, size_t len, gva_t base, gva_t base2,
		       const uint8_t *bytes2, bool perturbed, uint32_t flags, struct counts *c)
{
	struct xlat_ctx *ctx, *ctx2;
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = flags}, &ctx), BT_OK);
	assert_int_equal(xlat_create(&(struct xlat_options){.flags = flags}, &ctx2), BT_OK);
	struct src s1 = {.base = base, .bytes = bytes, .len = len};
	struct xlat_source src = {.read = src_read, .opaque = &s1};
	static uint8_t pcmap[1 << 14];
	uint8_t g2[64 * 16];
	unsigned salt = 0;
	for (gva_t va = base; va < base + len;) {
		struct bt_block b;
		struct xlat_tmpl t;
		enum xlat_tmpl_result res;
		assert_int_equal(xlat_translate_tmpl(ctx, &src, va, &b, &t, &res), BT_OK);
		if (res == XLAT_TMPL_REFUSED) {
			va++;
			continue;
		}
		c->blocks++;
		if (res != XLAT_TMPL_OK) {
			c->notrel++;
			va += b.guest_len;
			continue;
		}
		assert_int_equal(xlat_tmpl_check(&t), BT_OK);
		for (uint32_t i = 0; i < t.n_relocs; i++)
			if (t.relocs[i].kind == XLAT_RELOC_UIBL) {
				c->uibl++;
				break;
			}
		/* the template's block is the plain translation */
		uint32_t pl = b.pcmap_len;
		assert_true(pl <= sizeof(pcmap));
		memcpy(pcmap, b.pcmap, pl);
		gva_t va2 = base2 + (va - base);
		struct src s2 = {.base = base2, .bytes = bytes2 ? bytes2 : bytes, .len = len};
		if (bytes2) {
			memcpy(g2, bytes2 + (va - base), t.guest_len);
		} else {
			if (perturbed)
				perturb(&t, g2, salt++);
			else
				memcpy(g2, t.guest, t.guest_len);
			s2.win = va2;
			s2.over = g2;
			s2.wlen = t.guest_len;
		}
		check_one(ctx2, &t, pcmap, pl, va2, g2, &s2, c);
		/* ctx (the template's storage) is untouched by ctx2 */
		va += t.guest_len;
	}
	xlat_destroy(ctx);
	xlat_destroy(ctx2);
}

static void sweep(const uint8_t *bytes, size_t len, gva_t base, gva_t base2, const uint8_t *bytes2,
		  bool perturbed, struct counts *c)
{
	sweep_opts(bytes, len, base, base2, bytes2, perturbed, 0, c);
}

static void kernel_sweep(gva_t delta, bool perturbed, const char *what)
{
	const char *path = getenv("BT_KERNEL_ELF") ? getenv("BT_KERNEL_ELF") : GU_KERNEL_PATH;
	struct elfimg *img;
	assert_int_equal(elfimg_open(path, &img), BT_OK);
	struct counts c = {0};
	for (size_t i = 0; i < img->ncode; i++) {
		const struct elfimg_code *k = &img->code[i];
		sweep(k->bytes, k->end - k->start, k->start, k->start + delta, NULL, perturbed, &c);
	}
	printf("  %s: %u blocks, %u instantiated = translated, %u form, %u page, %u "
	       "not relocatable\n",
	       what, c.blocks, c.ok, c.form, c.page, c.notrel);
	assert_int_equal(c.bytes, 0);
	assert_true(c.blocks > 1000);
	/* nearly every block is a template and instantiates; changed fields
	 * may need another instruction form (a zero displacement, an imm8) */
	assert_true(c.notrel * 100 <= c.blocks);
	assert_true(c.ok * 100 >= c.blocks * (perturbed ? 85 : delta % 4096 ? 95 : 100));
	elfimg_close(img);
}

static void test_kernel_page_shift(void **state)
{
	kernel_sweep(0x3ab000, false, "kernel +0x3ab000");
}

static void test_kernel_odd_shift(void **state)
{
	kernel_sweep(0x1234568, false, "kernel +0x1234568");
}

static void test_kernel_fields(void **state)
{
	kernel_sweep(0x7000, true, "kernel +0x7000, fields changed");
}

/* --- the test guest's module, loaded by kmodld at two addresses ------------ */

struct arena {
	uint8_t *mem;
	uint64_t run;
	size_t size;
};

static enum bt_status arena_alloc(void *ctx, uint64_t size, uint64_t align, void **mem,
				  uint64_t *runaddr)
{
	struct arena *a = ctx;
	if (size > a->size)
		return BT_ERR_NOMEM;
	*mem = a->mem;
	*runaddr = a->run;
	return BT_OK;
}

static enum bt_status arena_resolve(void *ctx, const char *name, uint64_t *addr)
{
	struct arena *a = ctx;
	/* kernel symbols move with the "kernel" too: another boot, another KASLR */
	*addr = (a->run >> 30 & 1 ? 0xffffffff81234560ull : 0xffffffff82345670ull) +
		(strcmp(name, "kmod_printf") == 0 ? 0 : 0x1000);
	return BT_OK;
}

static void test_module_two_loads(void **state)
{
	const char *path = getenv("BT_TESTMOD") ? getenv("BT_TESTMOD") : GU_TESTMOD_PATH;
	struct elfimg *img;
	assert_int_equal(elfimg_open(path, &img), BT_OK);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static uint8_t obj[1 << 20];
	size_t n = fread(obj, 1, sizeof(obj), f);
	fclose(f);
	static uint8_t m1[1 << 20], m2[1 << 20];
	struct arena a1 = {m1, 0xffffffffc0011000ull, sizeof(m1)};
	struct arena a2 = {m2, 0xffffffffa03e5000ull, sizeof(m2)};
	static struct kmodld l1, l2;
	struct kmodld_ops o1 = {.ctx = &a1, .alloc = arena_alloc, .resolve = arena_resolve};
	struct kmodld_ops o2 = {.ctx = &a2, .alloc = arena_alloc, .resolve = arena_resolve};
	assert_int_equal(kmodld_load(&l1, obj, n, &o1), BT_OK);
	assert_int_equal(kmodld_load(&l2, obj, n, &o2), BT_OK);
	struct counts c = {0};
	unsigned differing = 0;
	for (size_t i = 0; i < img->nsecs; i++) {
		const struct elfimg_section *s = &img->secs[i];
		if (!(s->flags & 0x4) || !(s->flags & 0x2) || s->size == 0)
			continue; /* SHF_EXECINSTR | SHF_ALLOC */
		uint64_t off = l1.sec_off[s->index];
		assert_int_equal(off, l2.sec_off[s->index]);
		for (uint64_t k = 0; k < s->size; k++)
			differing += m1[off + k] != m2[off + k];
		sweep(m1 + off, s->size, a1.run + off, a2.run + off, m2 + off, false, &c);
	}
	printf("  testmod.ko at %#llx and %#llx: %u code bytes differ, %u blocks, %u "
	       "instantiated = translated, %u form, %u page, %u bytes, %u not relocatable\n",
	       (unsigned long long)a1.run, (unsigned long long)a2.run, differing, c.blocks, c.ok,
	       c.form, c.page, c.bytes, c.notrel);
	assert_true(differing > 0); /* the loads really differ */
	assert_true(c.blocks > 3);
	assert_int_equal(c.ok, c.blocks);
	elfimg_close(img);
}

/* --- the test guest's user programs, as user code ---------------------------- */

/* Every user program's code translated with `flags` | XLAT_OPT_USER, each
 * block a template instantiated `delta` higher (the same bytes). */
static void user_sweep(gva_t delta, uint32_t flags, struct counts *c)
{
	const char *dir = getenv("BT_USER_DIR") ? getenv("BT_USER_DIR") : GU_USER_DIR;
	DIR *d = opendir(dir);
	assert_non_null(d);
	unsigned progs = 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || strchr(de->d_name, '.'))
			continue; /* NN-name programs, not their .o or .d */
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct elfimg *img;
		assert_int_equal(elfimg_open(path, &img), BT_OK);
		for (size_t i = 0; i < img->ncode; i++) {
			const struct elfimg_code *k = &img->code[i];
			sweep_opts(k->bytes, k->end - k->start, k->start, k->start + delta, NULL,
				   false, flags | XLAT_OPT_USER, c);
		}
		elfimg_close(img);
		progs++;
	}
	closedir(d);
	assert_true(progs >= 20);
}

static void user_report(const char *what, const struct counts *c)
{
	printf("  %s: %u blocks, %u instantiated = translated, %u form, %u page, %u "
	       "not relocatable, %u with user IBL probe records\n",
	       what, c->blocks, c->ok, c->form, c->page, c->notrel, c->uibl);
	assert_int_equal(c->bytes, 0);
	assert_true(c->blocks > 1000);
	assert_true(c->uibl > 100); /* the probes are exercised */
	assert_true(c->notrel * 100 <= c->blocks);
}

/* Another process, the same program 0x13000 higher (the IBL index of every
 * cross-page target changes): every template instantiates and equals the
 * translation there, with and without exact faults (btvm's default). */
static void test_user_page_shift(void **state)
{
	struct counts c = {0}, e = {0};
	user_sweep(0x13000, 0, &c);
	user_report("user programs +0x13000", &c);
	assert_int_equal(c.ok, c.blocks - c.notrel);
	user_sweep(0x13000, XLAT_OPT_EXACT_FAULTS, &e);
	user_report("user programs +0x13000, exact faults", &e);
	assert_int_equal(e.ok, e.blocks - e.notrel);
}

/* The user IBL records are needed: without them every template that has
 * them instantiates 0x13000 higher into code that differs from the
 * translation there (each probe's entry moved by 0x3000 entries). */
static void test_user_uibl_records_needed(void **state)
{
	const char *dir = getenv("BT_USER_DIR") ? getenv("BT_USER_DIR") : GU_USER_DIR;
	struct xlat_ctx *ctx, *ctx2;
	const struct xlat_options o = {.flags = XLAT_OPT_USER | XLAT_OPT_EXACT_FAULTS};
	assert_int_equal(xlat_create(&o, &ctx), BT_OK);
	assert_int_equal(xlat_create(&o, &ctx2), BT_OK);
	static uint8_t code[1 << 17];
	static struct xlat_reloc kept[XLAT_TMPL_MAX_RELOCS];
	struct bt_exit exits[XLAT_MAX_EXITS];
	unsigned with = 0, differ = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || strchr(de->d_name, '.'))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct elfimg *img;
		assert_int_equal(elfimg_open(path, &img), BT_OK);
		for (size_t i = 0; i < img->ncode; i++) {
			const struct elfimg_code *k = &img->code[i];
			struct src s1 = {
			    .base = k->start, .bytes = k->bytes, .len = k->end - k->start};
			struct src s2 = {
			    .base = k->start + 0x13000, .bytes = k->bytes, .len = s1.len};
			struct xlat_source src1 = {.read = src_read, .opaque = &s1};
			struct xlat_source src2 = {.read = src_read, .opaque = &s2};
			for (gva_t va = s1.base; va < s1.base + s1.len;) {
				struct bt_block b, f;
				struct xlat_tmpl t;
				enum xlat_tmpl_result res;
				assert_int_equal(xlat_translate_tmpl(ctx, &src1, va, &b, &t, &res),
						 BT_OK);
				if (res == XLAT_TMPL_REFUSED) {
					va++;
					continue;
				}
				va += b.guest_len;
				uint32_t n = 0;
				for (uint32_t r = 0; res == XLAT_TMPL_OK && r < t.n_relocs; r++)
					if (t.relocs[r].kind != XLAT_RELOC_UIBL)
						kept[n++] = t.relocs[r];
				if (res != XLAT_TMPL_OK || n == t.n_relocs)
					continue;
				with++;
				t.relocs = kept;
				t.n_relocs = n;
				gva_t va2 = t.guest_start + 0x13000;
				assert_int_equal(
				    xlat_tmpl_instantiate(&t, va2, t.guest, code, exits),
				    XLAT_TMPL_OK);
				assert_int_equal(xlat_translate(ctx2, &src2, va2, &f), BT_OK);
				assert_int_equal(f.code_len, t.code_len);
				differ += memcmp(f.code, code, f.code_len) != 0;
			}
		}
		elfimg_close(img);
	}
	closedir(d);
	printf("  user templates with IBL probe records: %u, wrong without them: %u\n", with,
	       differ);
	assert_true(with > 100);
	assert_int_equal(differ, with);
	xlat_destroy(ctx);
	xlat_destroy(ctx2);
}

/* 0x400000 to a shared library's place under ASLR (0x7f...): a target's
 * `mov rax, imm` needs the 64-bit form there: refused as FORM, never wrong. */
static void test_user_aslr_shift(void **state)
{
	struct counts c = {0};
	user_sweep(0x7f3a5c9e1000ull - 0x400000, XLAT_OPT_EXACT_FAULTS, &c);
	user_report("user programs to 0x7f3a5c9e1000", &c);
	assert_int_equal(c.ok + c.form, c.blocks - c.notrel);
	assert_true(c.ok * 2 >= c.blocks);
}

/* Not a page multiple: the page relation of each exit and the PAGE rule. */
static void test_user_odd_shift(void **state)
{
	struct counts c = {0};
	user_sweep(0x1234568, XLAT_OPT_EXACT_FAULTS, &c);
	user_report("user programs +0x1234568", &c);
	assert_int_equal(c.ok + c.form + c.page, c.blocks - c.notrel);
	assert_true(c.form + c.page > 0);
}

static void test_records_roundtrip(void **state)
{
	struct xlat_reloc r[2] = {
	    {.host_off = 17,
	     .kind = XLAT_RELOC_CODE,
	     .width = 4,
	     .shift = 32,
	     .flags = XLAT_RV_PC | XLAT_RV_FIELD | XLAT_RV_SIGNED,
	     .goff = 3,
	     .gw = 4,
	     .cls = 0x18,
	     .addend = 0xfffffffffffffff0ull},
	    {.host_off = 1, .kind = XLAT_RELOC_EXIT, .flags = XLAT_RV_PC, .addend = 5},
	};
	uint8_t buf[2 * XLAT_RELOC_BYTES];
	xlat_relocs_encode(r, 2, buf);
	struct xlat_reloc back[2];
	uint32_t n;
	assert_int_equal(xlat_relocs_decode(buf, sizeof(buf), back, 2, &n), BT_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(&back[0].addend, &r[0].addend, 8);
	assert_int_equal(back[0].host_off, 17);
	assert_int_equal(back[0].goff, 3);
	assert_int_equal(back[1].kind, XLAT_RELOC_EXIT);
	assert_int_equal(xlat_relocs_decode(buf, sizeof(buf) - 1, back, 2, &n), BT_ERR_FORMAT);
	assert_int_equal(xlat_relocs_decode(buf, sizeof(buf), back, 1, &n), BT_ERR_FORMAT);
	/* bounds of an untrusted template */
	uint8_t code[32] = {0}, guest[8] = {0};
	struct bt_exit ex[2] = {{.kind = XLAT_EXIT_JMP, .patch_off = 0}, {.kind = 1}};
	struct xlat_tmpl t = {.guest_len = 8,
			      .guest = guest,
			      .code = code,
			      .code_len = 32,
			      .exits = ex,
			      .n_exits = 2,
			      .relocs = back,
			      .n_relocs = 2};
	assert_int_equal(xlat_tmpl_check(&t), BT_OK);
	t.code_len = 20; /* host_off 17 + 4 > 20 */
	assert_int_equal(xlat_tmpl_check(&t), BT_ERR_FORMAT);
	t.code_len = 32;
	t.guest_len = 6; /* goff 3 + 4 > 6 */
	assert_int_equal(xlat_tmpl_check(&t), BT_ERR_FORMAT);
	t.guest_len = 8;
	t.n_exits = 1; /* exit index 1 */
	assert_int_equal(xlat_tmpl_check(&t), BT_ERR_FORMAT);
	/* a user IBL probe's field names an exit and lies in the code */
	struct xlat_reloc ur = {.host_off = 28, .kind = XLAT_RELOC_UIBL, .width = 4, .goff = 1};
	t.n_exits = 2;
	t.relocs = &ur;
	t.n_relocs = 1;
	assert_int_equal(xlat_tmpl_check(&t), BT_OK);
	ur.goff = 2;
	assert_int_equal(xlat_tmpl_check(&t), BT_ERR_FORMAT);
	ur.goff = 1;
	ur.host_off = 29;
	assert_int_equal(xlat_tmpl_check(&t), BT_ERR_FORMAT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records_roundtrip),
	    cmocka_unit_test(test_kernel_page_shift),
	    cmocka_unit_test(test_kernel_odd_shift),
	    cmocka_unit_test(test_kernel_fields),
	    cmocka_unit_test(test_module_two_loads),
	    cmocka_unit_test(test_user_page_shift),
	    cmocka_unit_test(test_user_aslr_shift),
	    cmocka_unit_test(test_user_odd_shift),
	    cmocka_unit_test(test_user_uibl_records_needed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
