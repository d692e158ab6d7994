/*
 * kmod/ (module identity, relocation, template packs) and the database's
 * `modules` table, on the test guest's real module (guests/kmod-test,
 * gcc-built):
 *  - identity and sections hash; .ko.xz and .ko.zst (made here with liblzma
 *    and libzstd) read as the same module; truncated, damaged and non-ELF
 *    files are BT_ERR_FORMAT;
 *  - the pack's templates, instantiated where the guest's own loader
 *    (guests/lib/kmodld.c) placed the module at a run-time-chosen address,
 *    are byte for byte the translation of the loaded bytes there;
 *  - the pack survives the database (tcdb_add_module / tcdb_module_get) and
 *    a changed byte of it is refused by its tag;
 *  - a malformed pack is refused by kmod_pack_parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db/tcdb.h"
#include "guests/lib/kmodld.h"
#include "kmod/kmod.h"
#include "pretrans/base/log.h"
#include "pretrans/elf/elfimg.h"
#include "tests/unit/tcdb_fixture.h"
#include "tests/unit/test_config.h"

#include <lzma.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#ifndef GU_TESTMOD_PATH
#define GU_TESTMOD_PATH "build/guests/testmod.ko"
#endif

static char dir[64];
static uint8_t *g_obj;
static size_t g_len;

static const char *testmod(void)
{
	return getenv("BT_TESTMOD") ? getenv("BT_TESTMOD") : GU_TESTMOD_PATH;
}

static void write_file(const char *p, const void *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static enum bt_status resolve(void *o, const char *name, gva_t *addr)
{
	*addr = strcmp(name, "kmod_printf") == 0 ? 0xffffffff81100000ull : 0xffffffff81200008ull;
	return BT_OK;
}

static void test_identity_and_codecs(void **state)
{
	struct kmod *m;
	assert_int_equal(kmod_open(testmod(), &m), BT_OK);
	assert_string_equal(m->name, "testmod");
	assert_int_equal(strlen(m->sections_hash), 64);
	bool text = false;
	for (size_t i = 0; i < m->nsecs; i++)
		text |= m->secs[i].code && strcmp(m->secs[i].name, ".text") == 0;
	assert_true(text);
	char hash[65];
	strcpy(hash, m->sections_hash);
	kmod_close(m);

	char p[128];
	/* xz */
	uint8_t *z = malloc(g_len + 4096);
	size_t zl = 0;
	assert_int_equal(
	    lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, g_obj, g_len, z, &zl, g_len + 4096),
	    LZMA_OK);
	snprintf(p, sizeof(p), "%s/testmod.ko.xz", dir);
	write_file(p, z, zl);
	assert_int_equal(kmod_open(p, &m), BT_OK);
	assert_string_equal(m->sections_hash, hash);
	assert_string_equal(m->name, "testmod");
	kmod_close(m);
	snprintf(p, sizeof(p), "%s/cut.ko.xz", dir); /* truncated stream */
	write_file(p, z, zl / 2);
	assert_int_equal(kmod_open(p, &m), BT_ERR_FORMAT);
	/* zstd */
	zl = ZSTD_compress(z, g_len + 4096, g_obj, g_len, 3);
	assert_false(ZSTD_isError(zl));
	snprintf(p, sizeof(p), "%s/testmod.ko.zst", dir);
	write_file(p, z, zl);
	assert_int_equal(kmod_open(p, &m), BT_OK);
	assert_string_equal(m->sections_hash, hash);
	kmod_close(m);
	snprintf(p, sizeof(p), "%s/cut.ko.zst", dir);
	write_file(p, z, zl - 7);
	assert_int_equal(kmod_open(p, &m), BT_ERR_FORMAT);
	free(z);
	/* truncated ELF, and not ELF at all */
	snprintf(p, sizeof(p), "%s/cut.ko", dir);
	write_file(p, g_obj, g_len / 3);
	assert_int_equal(kmod_open(p, &m), BT_ERR_FORMAT);
	snprintf(p, sizeof(p), "%s/text.ko", dir);
	write_file(p, "not a module\n", 13);
	assert_int_equal(kmod_open(p, &m), BT_ERR_FORMAT);
	/* the hash is of the bytes: one changed code byte changes it */
	struct elfimg *img;
	assert_int_equal(elfimg_open(testmod(), &img), BT_OK);
	const struct elfimg_section *t = elfimg_section_by_name(img, ".text");
	uint8_t *mod = malloc(g_len);
	memcpy(mod, g_obj, g_len);
	mod[t->offset + 1] ^= 0x40;
	elfimg_close(img);
	snprintf(p, sizeof(p), "%s/changed.ko", dir);
	write_file(p, mod, g_len);
	free(mod);
	assert_int_equal(kmod_open(p, &m), BT_OK);
	assert_string_not_equal(m->sections_hash, hash);
	kmod_close(m);
}

/* The guest's loader at a run-time address vs the pack. */
struct arena {
	uint8_t *mem;
	uint64_t run;
};
static enum bt_status arena_alloc(void *ctx, uint64_t size, uint64_t align, void **mem,
				  uint64_t *runaddr)
{
	struct arena *a = ctx;
	*mem = a->mem;
	*runaddr = a->run;
	return size <= (1u << 20) ? BT_OK : BT_ERR_NOMEM;
}
static enum bt_status arena_resolve(void *ctx, const char *name, uint64_t *addr)
{
	*addr = strcmp(name, "kmod_printf") == 0 ? 0xffffffff8123a000ull : 0xffffffff8155b008ull;
	return BT_OK;
}

struct src {
	gva_t base;
	const uint8_t *b;
	size_t n;
};
static size_t src_read(void *o, gva_t va, uint8_t *buf, size_t len)
{
	const struct src *s = o;
	if (va < s->base || va - s->base >= s->n)
		return 0;
	size_t k = s->n - (size_t)(va - s->base);
	k = k < len ? k : len;
	memcpy(buf, s->b + (va - s->base), k);
	return k;
}

static void make_pack_of(const char *path, uint8_t **pack, size_t *len, struct kmod_tmpl_stats *st)
{
	struct kmod *m;
	assert_int_equal(kmod_open(path, &m), BT_OK);
	assert_int_equal(kmod_relocate(m, resolve, NULL), BT_OK);
	assert_true(m->n_relocs_applied > 0);
	assert_int_equal(m->n_relocs_unknown, 0);
	struct xlat_ctx *ctx;
	assert_int_equal(xlat_create(&(struct xlat_options){0}, &ctx), BT_OK);
	assert_int_equal(kmod_pack_templates(m, ctx, pack, len, st), BT_OK);
	xlat_destroy(ctx);
	kmod_close(m);
}

static void make_pack(uint8_t **pack, size_t *len, struct kmod_tmpl_stats *st)
{
	make_pack_of(testmod(), pack, len, st);
}

static void test_pack_binds_at_load_address(void **state)
{
	uint8_t *pack;
	size_t len;
	struct kmod_tmpl_stats st;
	make_pack(&pack, &len, &st);
	assert_true(st.n_blocks >= 4);
	struct kmod_pack pk;
	assert_int_equal(kmod_pack_parse(pack, len, &pk), BT_OK);
	assert_int_equal(pk.n, st.n_blocks);

	static uint8_t mem[1 << 20];
	static struct kmodld ld;
	struct arena a = {mem, 0xffffffffa0345000ull};
	struct kmodld_ops ops = {.ctx = &a, .alloc = arena_alloc, .resolve = arena_resolve};
	assert_int_equal(kmodld_load(&ld, g_obj, g_len, &ops), BT_OK);
	struct elfimg *img;
	assert_int_equal(elfimg_open(testmod(), &img), BT_OK);
	struct xlat_ctx *ctx;
	assert_int_equal(xlat_create(&(struct xlat_options){0}, &ctx), BT_OK);
	static uint8_t code[1 << 16];
	struct bt_exit ex[XLAT_MAX_EXITS];
	size_t bound = 0;
	for (size_t i = 0; i < pk.n; i++) {
		const struct kmod_tmpl *k = &pk.tmpls[i];
		const struct elfimg_section *s = elfimg_section_by_name(img, pk.secs[k->sec].name);
		assert_non_null(s);
		uint64_t off = ld.sec_off[s->index];
		gva_t va = a.run + off + k->offset;
		const uint8_t *g = mem + off + k->offset;
		assert_int_equal(xlat_tmpl_instantiate(&k->t, va, g, code, ex), XLAT_TMPL_OK);
		struct src sr = {a.run + off, mem + off, s->size};
		struct xlat_source src = {.read = src_read, .opaque = &sr};
		struct bt_block b;
		assert_int_equal(xlat_translate(ctx, &src, va, &b), BT_OK);
		assert_int_equal(b.refusal, XLAT_OK);
		assert_int_equal(b.code_len, k->t.code_len);
		assert_memory_equal(b.code, code, b.code_len);
		assert_int_equal(b.pcmap_len, k->pcmap_len);
		assert_memory_equal(b.pcmap, k->pcmap, b.pcmap_len);
		for (uint32_t x = 0; x < b.n_exits; x++)
			assert_int_equal(b.exits[x].target, ex[x].target);
		bound++;
	}
	assert_int_equal(bound, pk.n);
	xlat_destroy(ctx);
	elfimg_close(img);
	kmod_pack_fini(&pk);

	/* malformed packs */
	assert_int_equal(kmod_pack_parse(pack, len - 1, &pk), BT_ERR_FORMAT);
	uint8_t *bad = malloc(len);
	memcpy(bad, pack, len);
	bad[0] = 'X';
	assert_int_equal(kmod_pack_parse(bad, len, &pk), BT_ERR_FORMAT);
	free(bad);
	free(pack);
}

static void test_db_modules(void **state)
{
	uint8_t *pack;
	size_t len;
	struct kmod_tmpl_stats st;
	make_pack(&pack, &len, &st);
	char p[128];
	snprintf(p, sizeof(p), "%s/m.tcdb", dir);
	struct tcdb *db;
	struct tcdb_provenance pv = {
	    .xlat_version = XLAT_VERSION, .abi_version = VCPU_ABI_VERSION, .created = 1700000000};
	strcpy(pv.tool_version, "test");
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	struct tcdb_module m = {.name = "testmod",
				.vermagic = "",
				.srcversion = "ABC",
				.sections_hash = "00ff",
				.path = "testmod.ko",
				.n_templates = (uint32_t)st.n_blocks};
	assert_int_equal(tcdb_add_module(db, &m, pack, len), BT_OK);
	assert_int_equal(m.id, 1);
	assert_int_equal(tcdb_commit(db), BT_OK);
	static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
					      .abi_version = VCPU_ABI_VERSION,
					      .n_exit_kinds = XLAT_NEXIT_KINDS,
					      .n_refusals = XLAT_NREFUSALS};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	uint8_t *raw;
	size_t rl;
	assert_int_equal(tcdb_module_get(db, 1, &raw, &rl), BT_OK);
	assert_int_equal(rl, len);
	assert_memory_equal(raw, pack, len);
	free(raw);
	assert_int_equal(tcdb_module_get(db, 2, &raw, &rl), BT_ERR_NOTFOUND);
	tcdb_close(db);
	/* a changed identity (or blob) fails the tag */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "UPDATE modules SET srcversion = 'ABD'", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_module_get(db, 1, &raw, &rl), BT_ERR_AUTH);
	assert_true(tcdb_untrusted(db));
	tcdb_close(db);
	free(pack);
}

/* The sites of Linux's patch tables in a module, from the tables'
 * relocations (an absolute one in __mcount_loc, a self-relative one in
 * .return_sites), at their nominal addresses. */
static void test_table_sites(void **state)
{
	static const char src[] = ".text\n.globl f1, f2\n"
				  "f1: 1: call __fentry__\n ret\n"
				  "f2: 2: jmp __x86_return_thunk\n"
				  ".section __mcount_loc, \"a\"\n .quad 1b\n"
				  ".section .return_sites, \"a\"\n .long 2b - .\n"
				  ".section .rodata, \"a\"\n .quad 2b\n";
	char sp[128], op[128], cmd[400];
	snprintf(sp, sizeof(sp), "%s/sites.S", dir);
	snprintf(op, sizeof(op), "%s/sites.ko", dir);
	write_file(sp, src, strlen(src));
	snprintf(cmd, sizeof(cmd), "cc -c -o %s %s", op, sp);
	assert_int_equal(system(cmd), 0);
	struct kmod *m;
	assert_int_equal(kmod_open(op, &m), BT_OK);
	assert_int_equal(kmod_relocate(m, resolve, NULL), BT_OK);
	gva_t text = 0;
	for (size_t i = 0; i < m->nsecs; i++)
		if (strcmp(m->secs[i].name, ".text") == 0)
			text = m->secs[i].addr;
	assert_int_equal(text, KMOD_NOMINAL_BASE);
	gva_t *sites;
	size_t n, avail;
	assert_int_equal(kmod_table_sites(m, "__mcount_loc", &sites, &n), BT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(sites[0], text);
	uint8_t *p = kmod_code_at(m, sites[0], &avail);
	assert_non_null(p);
	assert_int_equal(p[0], 0xe8);
	assert_int_equal(avail, 11);
	free(sites);
	assert_int_equal(kmod_table_sites(m, ".return_sites", &sites, &n), BT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(sites[0], text + 6);
	p = kmod_code_at(m, sites[0], &avail);
	assert_int_equal(p[0], 0xe9);
	assert_int_equal(avail, 5);
	free(sites);
	assert_int_equal(kmod_table_sites(m, ".retpoline_sites", &sites, &n), BT_OK);
	assert_int_equal(n, 0);
	assert_null(kmod_code_at(m, text + 11, &avail));
	/* .rodata names f2 (a switch table would): a block start; the patch
	 * tables' references are not */
	uint64_t *refs;
	uint32_t ti = 0;
	for (size_t i = 0; i < m->nsecs; i++)
		if (strcmp(m->secs[i].name, ".text") == 0)
			ti = m->secs[i].index;
	assert_int_equal(kmod_code_refs(m, ti, &refs, &n), BT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(refs[0], 6);
	free(refs);
	kmod_close(m);
}

/* ------------------------------------------------ the fingerprint index */

static uint8_t *index_of(uint8_t *const *packs, const size_t *lens, int n, size_t *len)
{
	struct kmod_index_writer w = {0}, one;
	for (int i = 0; i < n; i++) { /* as pretrans: built apart, merged */
		memset(&one, 0, sizeof(one));
		assert_int_equal(kmod_index_add(&one, packs[i], lens[i]), BT_OK);
		assert_int_equal(kmod_index_merge(&w, &one), BT_OK);
		kmod_index_writer_fini(&one);
	}
	uint8_t *ix;
	assert_int_equal(kmod_index_finish(&w, &ix, len), BT_OK);
	kmod_index_writer_fini(&w);
	return ix;
}

/* testmod.ko with the first .text byte of one template made a nop: the
 * template's fingerprint changes (file *path; its bytes in g_nop). */
static uint8_t *g_nop;
static void make_changed(char *path, size_t cap)
{
	uint8_t *pack;
	size_t len;
	struct kmod_tmpl_stats st;
	make_pack(&pack, &len, &st);
	struct kmod_pack pk;
	assert_int_equal(kmod_pack_parse(pack, len, &pk), BT_OK);
	uint64_t off = UINT64_MAX;
	for (size_t i = 0; i < pk.n && off == UINT64_MAX; i++) {
		uint8_t fm[512];
		xlat_tmpl_field_mask(&pk.tmpls[i].t, fm);
		if (strcmp(pk.secs[pk.tmpls[i].sec].name, ".text") == 0 && !(fm[0] & 1) &&
		    pk.tmpls[i].t.guest[0] != 0x90)
			off = pk.tmpls[i].offset;
	}
	assert_true(off != UINT64_MAX);
	kmod_pack_fini(&pk);
	free(pack);
	struct elfimg *img;
	assert_int_equal(elfimg_open(testmod(), &img), BT_OK);
	const struct elfimg_section *t = elfimg_section_by_name(img, ".text");
	uint8_t *mod = malloc(g_len);
	memcpy(mod, g_obj, g_len);
	mod[t->offset + off] = 0x90;
	elfimg_close(img);
	snprintf(path, cap, "%s/nop.ko", dir);
	write_file(path, mod, g_len);
	free(g_nop);
	g_nop = mod;
}

static void test_index_round_trip(void **state)
{
	char nop[128];
	make_changed(nop, sizeof(nop));
	uint8_t *packs[2];
	size_t lens[2];
	struct kmod_tmpl_stats st[2];
	make_pack_of(nop, &packs[0], &lens[0], &st[0]);
	make_pack(&packs[1], &lens[1], &st[1]);
	size_t il;
	uint8_t *ix = index_of(packs, lens, 2, &il);
	/* 12-byte header, 16 per module, 21 per template */
	assert_int_equal(il, 12 + 2 * 16 + 21 * (st[0].n_blocks + st[1].n_blocks));
	struct kmod_index x;
	assert_int_equal(kmod_index_parse(ix, il, &x), BT_OK);
	assert_int_equal(x.nmods, 2);
	assert_int_equal(x.n, st[0].n_blocks + st[1].n_blocks);
	assert_int_equal(x.base[1], st[0].n_blocks);
	assert_int_equal(x.raw_len[0], lens[0]);
	assert_int_equal(x.raw_len[1], lens[1]);
	assert_int_equal(x.start[4096], x.n);
	struct kmod_pack pk[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(kmod_pack_parse(packs[i], lens[i], &pk[i]), BT_OK);
	/* every template is in its page offset's bucket, sorted by (first byte,
	 * template), with the hash of its bytes outside the fields */
	for (uint32_t o = 0; o < 4096; o++)
		for (uint32_t r = x.start[o]; r < x.start[o + 1]; r++) {
			const struct kmod_fp *e = &x.fps[r];
			uint32_t m = e->idx >= x.base[1];
			const struct xlat_tmpl *t = &pk[m].tmpls[e->idx - x.base[m]].t;
			assert_int_equal(t->guest_start & 0xfff, o);
			assert_int_equal(e->key, o << 8 | t->guest[0]);
			assert_int_equal(e->cover, t->guest_len < 64 ? t->guest_len : 64);
			assert_false(e->fmask & 1); /* no template starts with a field */
			assert_int_equal(e->hash, kmod_fp_hash(t->guest, e->cover, e->fmask));
			if (r > x.start[o])
				assert_true(e->key > e[-1].key ||
					    (e->key == e[-1].key && e->idx > e[-1].idx));
		}
	/* the relocated fields are masked: module 0's template 0 at another
	 * address (its fields changed) hashes the same, a changed opcode not */
	const struct xlat_tmpl *t0 = &pk[1].tmpls[0].t;
	size_t r0 = kmod_index_first(&x, (uint32_t)(t0->guest_start & 0xfff) << 8 | t0->guest[0]);
	while (x.fps[r0].idx != x.base[1])
		r0++;
	uint8_t moved[64];
	uint32_t cover = x.fps[r0].cover;
	memcpy(moved, t0->guest, cover);
	bool has_field = false;
	for (uint32_t i = 0; i < cover; i++)
		if (x.fps[r0].fmask >> i & 1) {
			moved[i] ^= 0x5a;
			has_field = true;
		}
	assert_true(has_field);
	assert_int_equal(kmod_fp_hash(moved, cover, x.fps[r0].fmask), x.fps[r0].hash);
	moved[0] ^= 1;
	assert_int_not_equal(kmod_fp_hash(moved, cover, x.fps[r0].fmask), x.fps[r0].hash);
	assert_true(kmod_index_consistent(&x, 0, &pk[0]));
	assert_true(kmod_index_consistent(&x, 1, &pk[1]));
	assert_false(kmod_index_consistent(&x, 0, &pk[1])); /* the changed template */
	assert_false(kmod_index_consistent(&x, 2, &pk[1]));
	kmod_index_fini(&x);
	for (int i = 0; i < 2; i++)
		kmod_pack_fini(&pk[i]);

	/* malformed: short, magic, counts; entry 0 (at 44): page offset, cover,
	 * a field on byte 0 or past the cover */
	assert_int_equal(kmod_index_parse(ix, il - 1, &x), BT_ERR_FORMAT);
	uint8_t *bad = malloc(il);
	memcpy(bad, ix, il);
	bad[0] = 'X';
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_ERR_FORMAT);
	memcpy(bad, ix, il);
	bad[12] += 1; /* module 0 claims one template more */
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_ERR_FORMAT);
	memcpy(bad, ix, il);
	bad[44 + 1] = 0x10; /* page offset 4096 + */
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_ERR_FORMAT);
	memcpy(bad, ix, il);
	bad[44 + 2] = 0;
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_ERR_FORMAT);
	bad[44 + 2] = 65;
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_ERR_FORMAT);
	memcpy(bad, ix, il);
	bad[44 + 4] |= 1;
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_ERR_FORMAT);
	memcpy(bad, ix, il);
	assert_true(bad[44 + 2] < 64);
	bad[44 + 11] |= 0x80;
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_ERR_FORMAT);
	memcpy(bad, ix, il); /* the same bytes parse */
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_OK);
	kmod_index_fini(&x);
	bad[12 + 8] += 1; /* a relocation count that is not the pack's: parses, */
	assert_int_equal(kmod_index_parse(bad, il, &x), BT_OK);
	struct kmod_pack p0; /* but the pack disagrees with it */
	assert_int_equal(kmod_pack_parse(packs[0], lens[0], &p0), BT_OK);
	assert_false(kmod_index_consistent(&x, 0, &p0));
	kmod_pack_fini(&p0);
	kmod_index_fini(&x);
	free(bad);
	free(ix);
	for (int i = 0; i < 2; i++)
		free(packs[i]);
}

/* Packs served by a test fetch: counts the fetches, can fail one. */
struct fetcher {
	uint8_t *packs[2];
	size_t lens[2];
	int fetched[2];
	enum bt_status fail; /* returned for every fetch when not BT_OK */
};
static enum bt_status fetch(void *opaque, uint32_t mod, uint8_t **raw, size_t *len)
{
	struct fetcher *f = opaque;
	assert_true(mod < 2);
	f->fetched[mod]++;
	if (f->fail != BT_OK)
		return f->fail;
	*raw = malloc(f->lens[mod]);
	memcpy(*raw, f->packs[mod], f->lens[mod]);
	*len = f->lens[mod];
	return BT_OK;
}

/* The object obj (testmod.ko or nop.ko, same layout) loaded by the guest's
 * loader at 0xffffffffa0345000: every template address of pack bound
 * through the binder and compared with a translation of the loaded bytes.
 * Returns the count. */
static size_t bind_all(struct kmod_binder *b, const uint8_t *obj, const uint8_t *pack, size_t len)
{
	static uint8_t mem[1 << 20];
	static struct kmodld ld;
	struct arena a = {mem, 0xffffffffa0345000ull};
	struct kmodld_ops ops = {.ctx = &a, .alloc = arena_alloc, .resolve = arena_resolve};
	assert_int_equal(kmodld_load(&ld, obj, g_len, &ops), BT_OK);
	struct kmod_pack pk;
	assert_int_equal(kmod_pack_parse(pack, len, &pk), BT_OK);
	struct elfimg *img;
	assert_int_equal(elfimg_open(testmod(), &img), BT_OK);
	struct xlat_ctx *ctx;
	assert_int_equal(xlat_create(&(struct xlat_options){0}, &ctx), BT_OK);
	size_t bound = 0;
	for (size_t i = 0; i < pk.n; i++) {
		const struct kmod_tmpl *k = &pk.tmpls[i];
		const struct elfimg_section *s = elfimg_section_by_name(img, pk.secs[k->sec].name);
		uint64_t off = ld.sec_off[s->index];
		gva_t va = a.run + off + k->offset;
		struct bt_block got;
		bool found;
		size_t n = s->size - k->offset;
		assert_int_equal(
		    kmod_binder_find(b, NULL, va, mem + off + k->offset, n, &got, &found), BT_OK);
		assert_true(found);
		struct src sr = {a.run + off, mem + off, s->size};
		struct xlat_source src = {.read = src_read, .opaque = &sr};
		struct bt_block want;
		assert_int_equal(xlat_translate(ctx, &src, va, &want), BT_OK);
		assert_int_equal(got.guest_len, want.guest_len);
		assert_int_equal(got.guest_hash, want.guest_hash);
		assert_int_equal(got.code_len, want.code_len);
		assert_memory_equal(got.code, want.code, want.code_len);
		assert_int_equal(got.pcmap_len, want.pcmap_len);
		assert_memory_equal(got.pcmap, want.pcmap, want.pcmap_len);
		assert_int_equal(got.n_exits, want.n_exits);
		for (uint32_t x = 0; x < want.n_exits; x++)
			assert_int_equal(got.exits[x].target, want.exits[x].target);
		bound++;
	}
	xlat_destroy(ctx);
	elfimg_close(img);
	kmod_pack_fini(&pk);
	return bound;
}

/* An index of n synthetic entries (pseudo-random offsets, first bytes and
 * hashes, in few keys so that keys repeat) parsed: sorted by (key, idx),
 * every position and page-offset start right, whichever sort parsing
 * chose (comparison below 65,536 entries, counting above). */
static void check_sorted_index(uint32_t n)
{
	size_t len = 12 + 16 + (size_t)n * 21;
	uint8_t *p = calloc(1, len);
	assert_non_null(p);
	memcpy(p, "KMI2", 4);
	p[4] = 1;
	memcpy(p + 8, &n, 4);
	memcpy(p + 12, &n, 4); /* module 0: every template */
	uint64_t r = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *e = p + 28 + (size_t)i * 21;
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		uint16_t off = (uint16_t)((r >> 33) % 64 * 64); /* 64 page offsets */
		memcpy(e, &off, 2);
		e[2] = 16;		       /* cover */
		e[3] = (uint8_t)(r >> 20) & 3; /* 4 first bytes */
		memcpy(e + 12, &i, 4);	       /* hash */
	}
	struct kmod_index x;
	assert_int_equal(kmod_index_parse(p, len, &x), BT_OK);
	free(p);
	assert_int_equal(x.n, n);
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0)
			assert_true(
			    x.fps[i - 1].key < x.fps[i].key ||
			    (x.fps[i - 1].key == x.fps[i].key && x.fps[i - 1].idx < x.fps[i].idx));
		assert_int_equal(x.pos[x.fps[i].idx], i);
		assert_int_equal(x.fps[i].hash, x.fps[i].idx);
	}
	for (uint32_t o = 0; o < 4096; o++) {
		uint32_t a = x.start[o], b = x.start[o + 1];
		assert_true(a <= b && b <= n);
		for (uint32_t i = a; i < b; i++)
			assert_int_equal(x.fps[i].key >> 8, o);
	}
	assert_int_equal(x.start[0], 0);
	assert_int_equal(x.start[4096], n);
	kmod_index_fini(&x);
}

static void test_index_sorts(void **state)
{
	(void)state;
	check_sorted_index(0);
	check_sorted_index(1000);
	check_sorted_index(70000);
}

static void test_binder_lazy(void **state)
{
	char nop[128];
	make_changed(nop, sizeof(nop));
	struct fetcher f = {0};
	struct kmod_tmpl_stats st;
	make_pack_of(nop, &f.packs[0], &f.lens[0], &st);
	make_pack(&f.packs[1], &f.lens[1], &st);
	size_t il;
	uint8_t *ix = index_of(f.packs, f.lens, 2, &il);
	struct kmod_index x;
	struct kmod_binder *b;

	/* nothing is fetched at start, nor for bytes no fingerprint has */
	assert_int_equal(kmod_index_parse(ix, il, &x), BT_OK);
	assert_int_equal(kmod_binder_create(&x, fetch, &f, 64u << 20, &b), BT_OK);
	assert_null(x.fps); /* taken over */
	static const uint8_t junk[64] = {0xcc, 0xcc, 0xcc, 0xcc};
	struct bt_block xb;
	bool found = true;
	assert_int_equal(
	    kmod_binder_find(b, NULL, 0xffffffffa0345000ull, junk, sizeof(junk), &xb, &found),
	    BT_OK);
	assert_false(found);
	assert_int_equal(f.fetched[0] + f.fetched[1], 0);
	/* the loaded testmod binds entirely; testmod's pack is fetched on its
	 * first match, nop.ko's at most once (before testmod's is resident,
	 * packs already resident are tried first) */
	size_t nb = st.n_blocks;
	assert_int_equal(bind_all(b, g_obj, f.packs[1], f.lens[1]), nb);
	assert_int_equal(f.fetched[1], 1);
	assert_true(f.fetched[0] <= 1);
	/* after a section's first block, the others are found where it placed
	 * the section, without fingerprints */
	struct kmod_pack pkt;
	assert_int_equal(kmod_pack_parse(f.packs[1], f.lens[1], &pkt), BT_OK);
	assert_true(kmod_binder_stats(b)->placement_hits >= nb - pkt.nsecs);
	kmod_pack_fini(&pkt);
	/* the loaded nop.ko needs its own pack for its changed block */
	assert_int_equal(bind_all(b, g_nop, f.packs[0], f.lens[0]), nb);
	assert_int_equal(f.fetched[0], 1);
	assert_int_equal(f.fetched[1], 1);
	const struct kmod_bind_stats *bs = kmod_binder_stats(b);
	assert_int_equal(bs->bound, 2 * nb);
	assert_int_equal(bs->packs_inflated, 2);
	assert_int_equal(bs->packs_evicted, 0);
	uint64_t both = bs->peak_bytes;
	kmod_binder_destroy(b);

	/* a budget of one pack: they take turns, never both resident */
	assert_int_equal(kmod_index_parse(ix, il, &x), BT_OK);
	assert_int_equal(kmod_binder_create(&x, fetch, &f, both - 1, &b), BT_OK);
	assert_int_equal(bind_all(b, g_obj, f.packs[1], f.lens[1]), nb);
	assert_int_equal(bind_all(b, g_nop, f.packs[0], f.lens[0]), nb);
	assert_int_equal(bind_all(b, g_obj, f.packs[1], f.lens[1]), nb);
	bs = kmod_binder_stats(b);
	assert_true(bs->packs_evicted >= 2);
	assert_int_equal(bs->packs_inflated, 1 + bs->packs_evicted); /* one stays resident */
	assert_true(bs->peak_bytes < both);
	kmod_binder_destroy(b);

	/* a pack that disagrees with the index is not used (testmod's pack
	 * served as nop.ko's); asked for nop.ko's own block, the binder
	 * fetches it (the only module that has that block), refuses it, and
	 * finds nothing */
	struct fetcher g = f;
	g.packs[0] = f.packs[1];
	g.lens[0] = f.lens[1];
	g.fetched[0] = g.fetched[1] = 0;
	assert_int_equal(kmod_index_parse(ix, il, &x), BT_OK);
	assert_int_equal(kmod_binder_create(&x, fetch, &g, 64u << 20, &b), BT_OK);
	struct kmod_pack pk0, pk1;
	assert_int_equal(kmod_pack_parse(f.packs[0], f.lens[0], &pk0), BT_OK);
	assert_int_equal(kmod_pack_parse(f.packs[1], f.lens[1], &pk1), BT_OK);
	const struct xlat_tmpl *tn = NULL; /* nop.ko's changed template */
	for (size_t i = 0; i < pk0.n && !tn; i++)
		if (pk0.tmpls[i].t.guest[0] == 0x90 && pk0.tmpls[i].sec == 0)
			tn = &pk0.tmpls[i].t;
	assert_non_null(tn);
	assert_int_equal(
	    kmod_binder_find(b, NULL, tn->guest_start, tn->guest, tn->guest_len, &xb, &found),
	    BT_OK);
	assert_false(found);
	bs = kmod_binder_stats(b);
	assert_int_equal(bs->packs_bad, 1);
	assert_int_equal(g.fetched[0], 1);
	assert_int_equal(g.fetched[1], 0);
	/* a block both modules have fetches neither: ambiguous */
	kmod_binder_destroy(b);
	assert_int_equal(kmod_index_parse(ix, il, &x), BT_OK);
	assert_int_equal(kmod_binder_create(&x, fetch, &f, 64u << 20, &b), BT_OK);
	const struct xlat_tmpl *tl = &pk1.tmpls[pk1.n - 1].t; /* unchanged in nop.ko */
	f.fetched[0] = f.fetched[1] = 0;
	assert_int_equal(
	    kmod_binder_find(b, NULL, tl->guest_start, tl->guest, tl->guest_len, &xb, &found),
	    BT_OK);
	assert_false(found);
	assert_int_equal(f.fetched[0] + f.fetched[1], 0);
	assert_int_equal(kmod_binder_stats(b)->ambiguous, 1);
	/* ... unless guest memory tells them apart: testmod loaded, the block
	 * after nop.ko's changed one is shared, but only testmod's templates
	 * around it match the guest there */
	static uint8_t mem[1 << 20];
	static struct kmodld ld;
	struct arena a = {mem, 0xffffffffa0345000ull};
	struct kmodld_ops ops = {.ctx = &a, .alloc = arena_alloc, .resolve = arena_resolve};
	assert_int_equal(kmodld_load(&ld, g_obj, g_len, &ops), BT_OK);
	size_t c = 0; /* the changed template's index */
	while (&pk0.tmpls[c].t != tn)
		c++;
	assert_true(c + 1 < pk1.n && pk1.tmpls[c + 1].sec == pk1.tmpls[c].sec);
	struct elfimg *img;
	assert_int_equal(elfimg_open(testmod(), &img), BT_OK);
	const struct elfimg_section *es =
	    elfimg_section_by_name(img, pk1.secs[pk1.tmpls[c + 1].sec].name);
	uint64_t soff = ld.sec_off[es->index];
	elfimg_close(img);
	struct src sr = {a.run, mem, ld.size};
	struct xlat_source gs = {.read = src_read, .opaque = &sr};
	gva_t va = a.run + soff + pk1.tmpls[c + 1].offset;
	assert_int_equal(kmod_binder_find(b, &gs, va, mem + soff + pk1.tmpls[c + 1].offset,
					  pk1.tmpls[c + 1].t.guest_len, &xb, &found),
			 BT_OK);
	assert_true(found);
	assert_int_equal(f.fetched[0], 0);
	assert_int_equal(f.fetched[1], 1);
	assert_int_equal(kmod_binder_stats(b)->disambiguated, 1);
	kmod_pack_fini(&pk0);
	kmod_pack_fini(&pk1);
	kmod_binder_destroy(b);

	/* a fetch refused by its tag stops binding: reported once, then nothing */
	f.fail = BT_ERR_AUTH;
	f.fetched[0] = f.fetched[1] = 0;
	assert_int_equal(kmod_index_parse(ix, il, &x), BT_OK);
	assert_int_equal(kmod_binder_create(&x, fetch, &f, 64u << 20, &b), BT_OK);
	struct kmod_pack pk;
	assert_int_equal(kmod_pack_parse(f.packs[1], f.lens[1], &pk), BT_OK);
	const struct xlat_tmpl *t0 = &pk.tmpls[0].t;
	assert_int_equal(
	    kmod_binder_find(b, NULL, t0->guest_start, t0->guest, t0->guest_len, &xb, &found),
	    BT_ERR_AUTH);
	assert_int_equal(
	    kmod_binder_find(b, NULL, t0->guest_start, t0->guest, t0->guest_len, &xb, &found),
	    BT_OK);
	assert_false(found);
	assert_int_equal(f.fetched[0] + f.fetched[1], 1);
	kmod_pack_fini(&pk);
	kmod_binder_destroy(b);
	free(ix);
	free(f.packs[0]);
	free(f.packs[1]);
}

/* The index in the database: round trip, and a changed pack row refused
 * by its tag with one line naming the database. */
static void test_db_index(void **state)
{
	uint8_t *pack;
	size_t len, il;
	struct kmod_tmpl_stats st;
	make_pack(&pack, &len, &st);
	uint8_t *ix = index_of(&pack, &len, 1, &il);
	char p[128];
	snprintf(p, sizeof(p), "%s/ix.tcdb", dir);
	struct tcdb *db;
	struct tcdb_provenance pv = {
	    .xlat_version = XLAT_VERSION, .abi_version = VCPU_ABI_VERSION, .created = 1700000000};
	strcpy(pv.tool_version, "test");
	assert_int_equal(tcdb_create(p, &test_image, &pv, &db), BT_OK);
	assert_int_equal(tcdb_module_index_put(db, ix, il, 1), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);
	static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
					      .abi_version = VCPU_ABI_VERSION,
					      .n_exit_kinds = XLAT_NEXIT_KINDS,
					      .n_refusals = XLAT_NREFUSALS};
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	uint8_t *raw;
	size_t rl;
	uint64_t n;
	assert_int_equal(tcdb_module_index_get(db, &raw, &rl, &n), BT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(rl, il);
	assert_memory_equal(raw, ix, il);
	tcdb_module_index_free(raw, rl);
	tcdb_close(db);

	sqlite3 *h;
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(h, "UPDATE packs SET n_items = 2 WHERE kind = 4", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);
	char lp[128];
	snprintf(lp, sizeof(lp), "%s/log", dir);
	FILE *lf = fopen(lp, "w+");
	assert_non_null(lf);
	bt_log_to(lf);
	assert_int_equal(tcdb_open(p, TCDB_RDONLY, &want, NULL, &db), BT_OK);
	assert_int_equal(tcdb_module_index_get(db, &raw, &rl, &n), BT_ERR_AUTH);
	assert_true(tcdb_untrusted(db));
	assert_int_equal(tcdb_module_index_get(db, &raw, &rl, &n), BT_ERR_AUTH); /* no 2nd line */
	tcdb_close(db);
	bt_log_to(fopen("/dev/null", "w"));
	char line[1024];
	rewind(lf);
	int lines = 0;
	bool named = false;
	while (fgets(line, sizeof(line), lf)) {
		lines++;
		named |= strstr(line, "ix.tcdb: the module fingerprint-index pack fails its "
				      "authentication") != NULL;
	}
	fclose(lf);
	assert_int_equal(lines, 1);
	assert_true(named);
	free(ix);
	free(pack);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/test_kmod.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	FILE *f = fopen(testmod(), "rb");
	if (!f)
		return -1;
	g_obj = malloc(1 << 20);
	g_len = fread(g_obj, 1, 1 << 20, f);
	fclose(f);
	return g_len > 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	free(g_obj);
	free(g_nop);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	test_private_config();
	bt_log_to(fopen("/dev/null", "w")); /* the refusals are expected */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity_and_codecs),
	    cmocka_unit_test(test_pack_binds_at_load_address),
	    cmocka_unit_test(test_db_modules),
	    cmocka_unit_test(test_table_sites),
	    cmocka_unit_test(test_index_round_trip),
	    cmocka_unit_test(test_index_sorts),
	    cmocka_unit_test(test_binder_lazy),
	    cmocka_unit_test(test_db_index),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
