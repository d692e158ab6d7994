/*
 * kmod_tmpl_bench: relocatable translation templates (docs/kmod.md) on a
 * real kernel and its modules.  Not a test: a measurement with a built-in
 * oracle.
 *
 *   kmod_tmpl_bench VMLINUX [MODULE_DIR] [-s STRIDE] [-m MSTRIDE]
 *
 * vmlinux: every STRIDE-th function symbol, swept block by block inside the
 * function as templates at its link address, instantiated at a 2 MiB-aligned
 * slide (as KASLR moves the kernel) and at an odd one, each compared byte for
 * byte with xlat_translate() of the same bytes at the new address.
 * Modules: every MSTRIDE-th .ko under MODULE_DIR, relocated twice (kmod/: two
 * module-area bases and two kernel slides, as two boots load it), the first
 * load's pack parsed back and every template instantiated at the second
 * load with its bytes, compared with translating the second load directly.
 * Prints counts (templates, instantiated = translated, refusals by reason,
 * MISMATCHES, which must be 0) and the time of xlat_translate() vs
 * xlat_tmpl_instantiate() per block (median of 3 passes over the sample).
 */
#include "kmod/kmod.h"
#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/elf/elfimg.h"

#include <dirent.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct counts {
	size_t tmpl, ok, form, page, bytes, notrel, mismatch;
	uint64_t guest_bytes;
};

struct src {
	gva_t base;
	const uint8_t *b;
	uint64_t n;
};
static size_t src_read(void *o, gva_t va, uint8_t *buf, size_t len)
{
	const struct src *s = o;
	if (va < s->base || va - s->base >= s->n)
		return 0;
	size_t k = (size_t)(s->n - (va - s->base));
	k = k < len ? k : len;
	memcpy(buf, s->b + (va - s->base), k);
	return k;
}

static uint8_t g_code[1 << 17];

/* instantiate t at va over g (in source s2) and compare with translating */
static void check(struct xlat_ctx *c2, const struct xlat_tmpl *t, const uint8_t *pcmap, uint32_t pl,
		  gva_t va, const uint8_t *g, struct src *s2, struct counts *c)
{
	struct bt_exit ex[XLAT_MAX_EXITS];
	enum xlat_tmpl_result r = xlat_tmpl_instantiate(t, va, g, g_code, ex);
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
	struct xlat_source src = {.read = src_read, .opaque = s2};
	struct bt_block b;
	bool same = xlat_translate(c2, &src, va, &b) == BT_OK && b.refusal == XLAT_OK &&
		    b.code_len == t->code_len && !memcmp(b.code, g_code, b.code_len) &&
		    b.pcmap_len == pl && !memcmp(b.pcmap, pcmap, pl) && b.n_exits == t->n_exits &&
		    b.guest_len == t->guest_len;
	for (uint32_t x = 0; same && x < b.n_exits; x++)
		same = b.exits[x].target == ex[x].target && b.exits[x].kind == ex[x].kind &&
		       b.exits[x].patch_off == ex[x].patch_off;
	if (!same) {
		c->mismatch++;
		if (c->mismatch <= 5)
			fprintf(stderr, "MISMATCH: template of %#llx at %#llx\n",
				(unsigned long long)t->guest_start, (unsigned long long)va);
		return;
	}
	c->ok++;
}

static void vmlinux_sample(const char *path, size_t stride, gva_t slide, struct counts *c,
			   double *t_tr, double *t_inst)
{
	struct elfimg *img;
	if (elfimg_open_nohash(path, &img) != BT_OK)
		exit(2);
	struct xlat_ctx *c1, *c2;
	xlat_create(&(struct xlat_options){.flags = XLAT_OPT_EXACT_FAULTS}, &c1);
	xlat_create(&(struct xlat_options){.flags = XLAT_OPT_EXACT_FAULTS}, &c2);
	static uint8_t pcmap[1 << 14], guest[2048];
	size_t k = 0;
	uint64_t ns_tr = 0, ns_inst = 0;
	size_t n_timed = 0;
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *y = &img->syms[i];
		if (y->type != STT_FUNC || y->size == 0 || (k++ % stride) != 0)
			continue;
		const struct elfimg_code *cr = elfimg_code_at(img, y->addr);
		if (!cr || y->addr + y->size > cr->end)
			continue;
		struct src s1 = {cr->start, cr->bytes, cr->end - cr->start};
		struct src s2 = {cr->start + slide, cr->bytes, cr->end - cr->start};
		struct xlat_source src = {.read = src_read, .opaque = &s1};
		for (gva_t va = y->addr; va < y->addr + y->size;) {
			struct bt_block b;
			struct xlat_tmpl t;
			enum xlat_tmpl_result res;
			uint64_t t0 = bt_now_ns();
			xlat_translate_tmpl(c1, &src, va, &b, &t, &res);
			if (res == XLAT_TMPL_REFUSED) {
				va++;
				continue;
			}
			if (res != XLAT_TMPL_OK) {
				c->notrel++;
				va += b.guest_len;
				continue;
			}
			c->tmpl++;
			c->guest_bytes += t.guest_len;
			memcpy(pcmap, b.pcmap, b.pcmap_len);
			memcpy(guest, t.guest, t.guest_len);
			check(c2, &t, pcmap, b.pcmap_len, va + slide, guest, &s2, c);
			/* timing: one plain translation vs one instantiation */
			struct bt_block d;
			struct xlat_source src2 = {.read = src_read, .opaque = &s2};
			t0 = bt_now_ns();
			xlat_translate(c2, &src2, va + slide, &d);
			uint64_t t1 = bt_now_ns();
			struct bt_exit ex[XLAT_MAX_EXITS];
			xlat_tmpl_instantiate(&t, va + slide, guest, g_code, ex);
			uint64_t t2 = bt_now_ns();
			ns_tr += t1 - t0;
			ns_inst += t2 - t1;
			n_timed++;
			va += t.guest_len;
		}
	}
	*t_tr = n_timed ? (double)ns_tr / (double)n_timed : 0;
	*t_inst = n_timed ? (double)ns_inst / (double)n_timed : 0;
	xlat_destroy(c1);
	xlat_destroy(c2);
	elfimg_close(img);
}

/* --- modules ------------------------------------------------------------ */

struct ksyms {
	struct elfimg *img;
	gva_t slide;
};
static enum bt_status resolve(void *o, const char *name, gva_t *addr)
{
	const struct ksyms *k = o;
	for (size_t i = 0; i < k->img->nsyms; i++) /* fine for a sample */
		if (k->img->syms[i].shndx != SHN_UNDEF && k->img->syms[i].bind != STB_LOCAL &&
		    strcmp(k->img->syms[i].name, name) == 0) {
			*addr = k->img->syms[i].addr + k->slide;
			return BT_OK;
		}
	return BT_ERR_NOTFOUND;
}

static char **g_files;
static size_t g_nfiles, g_cap;
static void scan(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		struct stat sb;
		if (stat(p, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			scan(p);
		else if (strstr(e->d_name, ".ko")) {
			if (g_nfiles == g_cap) {
				g_cap = g_cap ? 2 * g_cap : 1024;
				g_files = realloc(g_files, g_cap * sizeof(*g_files));
			}
			g_files[g_nfiles++] = strdup(p);
		}
	}
	closedir(d);
}
static int scmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void modules_sample(const char *vmlinux, const char *dir, size_t stride, struct counts *c,
			   size_t *n_mods)
{
	struct ksyms k1 = {NULL, 0}, k2 = {NULL, 0x2600000};
	if (elfimg_open_nohash(vmlinux, &k1.img) != BT_OK)
		exit(2);
	k2.img = k1.img;
	scan(dir);
	qsort(g_files, g_nfiles, sizeof(*g_files), scmp);
	struct xlat_ctx *c1, *c2;
	xlat_create(&(struct xlat_options){.flags = XLAT_OPT_EXACT_FAULTS}, &c1);
	xlat_create(&(struct xlat_options){.flags = XLAT_OPT_EXACT_FAULTS}, &c2);
	for (size_t i = 0; i < g_nfiles; i += stride) {
		struct kmod *m1, *m2;
		if (kmod_open(g_files[i], &m1) != BT_OK)
			continue;
		if (kmod_open(g_files[i], &m2) != BT_OK) {
			kmod_close(m1);
			continue;
		}
		const gva_t b2 = 0xffffffffc1a37000ull;
		if (kmod_relocate(m1, resolve, &k1) != BT_OK ||
		    kmod_relocate_at(m2, b2, resolve, &k2) != BT_OK)
			goto next;
		uint8_t *pack;
		size_t len;
		struct kmod_tmpl_stats st;
		if (kmod_pack_templates(m1, c1, &pack, &len, &st) != BT_OK)
			goto next;
		c->notrel += st.n_not_reloc;
		struct kmod_pack pk;
		if (kmod_pack_parse(pack, len, &pk) != BT_OK) {
			fprintf(stderr, "%s: its own pack does not parse\n", g_files[i]);
			c->mismatch++;
			free(pack);
			goto next;
		}
		(*n_mods)++;
		for (size_t j = 0; j < pk.n; j++) {
			const struct kmod_tmpl *t = &pk.tmpls[j];
			/* the same section in the second load */
			const struct kmod_section *s = NULL;
			for (size_t q = 0; q < m2->nsecs && !s; q++)
				if (!strcmp(m2->secs[q].name, pk.secs[t->sec].name) &&
				    m2->secs[q].code)
					s = &m2->secs[q];
			if (!s)
				continue;
			c->tmpl++;
			c->guest_bytes += t->t.guest_len;
			struct src s2 = {s->addr, s->bytes, s->size};
			check(c2, &t->t, t->pcmap, t->pcmap_len, s->addr + t->offset,
			      s->bytes + t->offset, &s2, c);
		}
		kmod_pack_fini(&pk);
		free(pack);
	next:
		kmod_close(m1);
		kmod_close(m2);
	}
	xlat_destroy(c1);
	xlat_destroy(c2);
	elfimg_close(k1.img);
}

static void print(const char *what, const struct counts *c)
{
	printf("%s: %zu templates (%llu guest bytes), %zu instantiated = translated "
	       "(%.2f%%), refused: %zu form, %zu page, %zu bytes; %zu blocks not relocatable; "
	       "%zu MISMATCHES\n",
	       what, c->tmpl, (unsigned long long)c->guest_bytes, c->ok,
	       c->tmpl ? 100.0 * (double)c->ok / (double)c->tmpl : 0.0, c->form, c->page, c->bytes,
	       c->notrel, c->mismatch);
}

int main(int argc, char **argv)
{
	size_t stride = 20, mstride = 10;
	const char *vm = NULL, *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-s") && i + 1 < argc)
			stride = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "-m") && i + 1 < argc)
			mstride = (size_t)atol(argv[++i]);
		else if (!vm)
			vm = argv[i];
		else
			dir = argv[i];
	}
	if (!vm || !stride || !mstride) {
		fprintf(stderr, "usage: kmod_tmpl_bench VMLINUX [MODULE_DIR] [-s STRIDE] [-m "
				"MSTRIDE]\n");
		return 2;
	}
	bt_log_to(fopen("/dev/null", "w"));
	size_t mism = 0;
	double tr[3], in[3];
	struct counts c;
	for (int pass = 0; pass < 3; pass++) {
		memset(&c, 0, sizeof(c));
		vmlinux_sample(vm, stride, 0x2200000, &c, &tr[pass], &in[pass]);
	}
	print("vmlinux, every function in STRIDE, slide +0x2200000", &c);
	mism += c.mismatch;
	/* median of 3 */
	for (int a = 0; a < 3; a++)
		for (int b = a + 1; b < 3; b++) {
			if (tr[b] < tr[a]) {
				double x = tr[a];
				tr[a] = tr[b];
				tr[b] = x;
			}
			if (in[b] < in[a]) {
				double x = in[a];
				in[a] = in[b];
				in[b] = x;
			}
		}
	printf("per block (median of 3 passes): xlat_translate %.0f ns, xlat_tmpl_instantiate "
	       "%.0f ns (%.1fx)\n",
	       tr[1], in[1], in[1] > 0 ? tr[1] / in[1] : 0.0);
	memset(&c, 0, sizeof(c));
	double d1, d2;
	vmlinux_sample(vm, stride, 0x1234568, &c, &d1, &d2);
	print("vmlinux, same sample, odd slide +0x1234568", &c);
	mism += c.mismatch;
	if (dir) {
		memset(&c, 0, sizeof(c));
		size_t nm = 0;
		modules_sample(vm, dir, mstride, &c, &nm);
		char w[128];
		snprintf(w, sizeof(w), "modules, %zu of %zu (every %zu-th), two loads", nm,
			 g_nfiles, mstride);
		print(w, &c);
		mism += c.mismatch;
	}
	return mism ? 1 : 0;
}
