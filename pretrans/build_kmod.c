/*
 * `pretrans build VMLINUX --modules DIR|FILE.ko ...` (build.h, docs/kmod.md):
 * after the kernel's own blocks, each loadable module of the kernel's
 * release is relocated at a nominal address against the kernel's symbols
 * and its code translated as relocatable templates (kmod/), stored with the
 * module's identity in the database's `modules` table.  When the kernel's
 * boot-time patching is predicted (pretrans/kpatch), the code is first
 * patched as Linux patches a module it loads (the ftrace NOPs of
 * __mcount_loc, .return_sites, .retpoline_sites: kp_patch_site), so the
 * templates are of the bytes the guest runs; blocks Linux leaves as they
 * are do not change.
 *
 * Order and determinism: the module files are sorted by path; workers take
 * the next file, the results are written in file order, so the database
 * does not depend on --jobs.  A module of another release is reported and
 * skipped; a file that is not a readable module fails the build naming it
 * (the previous output stays).
 */
#include "pretrans/build_int.h"

#include "kmod/kmod.h"
#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"
#include "pretrans/xcheck/xcheck.h"

#include <dirent.h>
#include <elf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ksym {
	const char *name;
	gva_t addr;
	bool global;
};

struct kmods {
	const struct pbuild_options *o;
	const struct kp_text *kp; /* the kernel's predicted patching, or NULL */
	char release[128];
	struct ksym *syms;
	size_t nsyms;
	char **files;
	size_t nfiles, cap_files;
	/* per file: the result, filled by a worker */
	struct kres {
		bool done;
		enum bt_status s;
		struct kmod *m;
		uint8_t *pack;
		size_t pack_len;
		struct kmod_tmpl_stats ts;
		struct kmod_index_writer fp; /* this module's fingerprints */
		size_t n_patched;	     /* patch sites predicted */
		bool skipped;
	} * res;
	size_t next;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (int)y->global - (int)x->global; /* globals first */
}

static enum bt_status resolve(void *opaque, const char *name, gva_t *addr)
{
	const struct kmods *k = opaque;
	size_t lo = 0, hi = k->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(k->syms[mid].name, name);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < k->nsyms && strcmp(k->syms[lo].name, name) == 0) {
		*addr = k->syms[lo].addr;
		return BT_OK;
	}
	return BT_ERR_NOTFOUND;
}

static bool ko_name(const char *n)
{
	size_t l = strlen(n);
	return (l > 3 && !strcmp(n + l - 3, ".ko")) || (l > 6 && !strcmp(n + l - 6, ".ko.xz")) ||
	       (l > 7 && !strcmp(n + l - 7, ".ko.zst"));
}

static enum bt_status add_file(struct kmods *k, const char *path)
{
	if (!BT_VEC_RESERVE(k->files, k->cap_files, k->nfiles + 1, 256))
		return BT_ERR_NOMEM;
	if (!(k->files[k->nfiles] = strdup(path)))
		return BT_ERR_NOMEM;
	k->nfiles++;
	return BT_OK;
}

static enum bt_status scan_dir(struct kmods *k, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	if (!d) {
		bt_err(LOG_KMOD, "%s: cannot read the module directory", dir);
		return BT_ERR_IO;
	}
	enum bt_status s = BT_OK;
	struct dirent *e;
	while (s == BT_OK && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= sizeof(p))
			continue;
		struct stat sb;
		if (stat(p, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode) && depth < 16)
			s = scan_dir(k, p, depth + 1);
		else if (S_ISREG(sb.st_mode) && ko_name(e->d_name))
			s = add_file(k, p);
	}
	closedir(d);
	return s;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "Linux version RELEASE (...)" from linux_banner, or "" */
static void kernel_release(const struct elfimg *img, char *out, size_t cap)
{
	out[0] = 0;
	for (size_t i = 0; i < img->nsyms; i++) {
		if (strcmp(img->syms[i].name, "linux_banner") != 0)
			continue;
		char b[256] = {0};
		if (elfimg_read(img, img->syms[i].addr, b, sizeof(b) - 1) != BT_OK)
			return;
		if (strncmp(b, "Linux version ", 14) != 0)
			return;
		size_t n = strcspn(b + 14, " ");
		if (n >= cap)
			n = cap - 1;
		memcpy(out, b + 14, n);
		out[n] = 0;
		return;
	}
}

/* Linux's patching of a module it loads (kp_patch_site), over m's
 * relocated code. */
static enum bt_status predict(const struct kp_text *kp, struct kmod *m, size_t *n_patched)
{
	static const struct {
		const char *table;
		enum kp_kind kind;
	} tables[] = {
	    {"__mcount_loc", KP_MCOUNT},
	    {".retpoline_sites", KP_RETPOLINE},
	    {".return_sites", KP_RETURN},
	};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		gva_t *sites;
		size_t n, avail;
		BT_TRY(kmod_table_sites(m, tables[i].table, &sites, &n));
		for (size_t j = 0; j < n; j++) {
			uint8_t *p = kmod_code_at(m, sites[j], &avail);
			if (p && kp_patch_site(kp, tables[i].kind, sites[j], p, avail))
				++*n_patched;
		}
		free(sites);
	}
	return BT_OK;
}

static void one_module(struct kmods *k, struct xlat_ctx *ctx, size_t i)
{
	struct kres *r = &k->res[i];
	r->s = kmod_open(k->files[i], &r->m);
	if (r->s != BT_OK)
		return;
	struct kmod *m = r->m;
	if (k->release[0] ? strcmp(m->release, k->release) != 0 : m->release[0] != 0) {
		bt_warn(LOG_KMOD, "%s: built for release '%s', the kernel is '%s': skipped",
			m->path, m->release[0] ? m->release : "(no vermagic)",
			k->release[0] ? k->release : "(no linux_banner)");
		r->skipped = true;
		return;
	}
	if ((r->s = kmod_relocate(m, resolve, k)) != BT_OK)
		return;
	if (k->kp && (r->s = predict(k->kp, m, &r->n_patched)) != BT_OK)
		return;
	if ((r->s = kmod_pack_templates(m, ctx, &r->pack, &r->pack_len, &r->ts)) != BT_OK)
		return;
	r->s = kmod_index_add(&r->fp, r->pack, r->pack_len);
}

static void *worker(void *arg)
{
	struct kmods *k = arg;
	struct xlat_ctx *ctx = NULL;
	struct xlat_options xo = {.flags = k->o->xlat_flags, .checker = &xcheck_checker_ops};
	enum bt_status cs = xlat_create(&xo, &ctx);
	for (;;) {
		pthread_mutex_lock(&k->mu);
		size_t i = k->next++;
		pthread_mutex_unlock(&k->mu);
		if (i >= k->nfiles)
			break;
		if (cs != BT_OK)
			k->res[i].s = cs;
		else
			one_module(k, ctx, i);
		pthread_mutex_lock(&k->mu);
		k->res[i].done = true;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
	}
	xlat_destroy(ctx);
	return NULL;
}

static void free_result(struct kres *r)
{
	kmod_close(r->m);
	free(r->pack);
	kmod_index_writer_fini(&r->fp);
	r->m = NULL;
	r->pack = NULL;
}

enum bt_status pbuild_modules(const struct pbuild_options *o, const struct elfimg *img,
			      const struct kp_text *kp, struct tcdb *db, struct pbuild_stats *st)
{
	struct kmods k = {.o = o, .kp = kp};
	struct kmod_index_writer idx = {0};
	enum bt_status s = BT_OK;
	kernel_release(img, k.release, sizeof(k.release));
	k.syms = calloc(img->nsyms ? img->nsyms : 1, sizeof(*k.syms));
	if (!k.syms)
		return BT_ERR_NOMEM;
	for (size_t i = 0; i < img->nsyms; i++)
		if (img->syms[i].shndx != SHN_UNDEF && img->syms[i].name[0])
			k.syms[k.nsyms++] = (struct ksym){img->syms[i].name, img->syms[i].addr,
							  img->syms[i].bind != STB_LOCAL};
	qsort(k.syms, k.nsyms, sizeof(*k.syms), ksym_cmp);
	for (size_t i = 0; i < o->n_modules && s == BT_OK; i++) {
		struct stat sb;
		if (stat(o->modules[i], &sb) != 0) {
			bt_err(LOG_KMOD, "%s: no such module file or directory", o->modules[i]);
			s = BT_ERR_IO;
		} else if (S_ISDIR(sb.st_mode)) {
			s = scan_dir(&k, o->modules[i], 0);
		} else {
			s = add_file(&k, o->modules[i]);
		}
	}
	if (s != BT_OK)
		goto out;
	qsort(k.files, k.nfiles, sizeof(*k.files), str_cmp);
	k.res = calloc(k.nfiles ? k.nfiles : 1, sizeof(*k.res));
	if (!k.res) {
		s = BT_ERR_NOMEM;
		goto out;
	}
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	int jobs = o->jobs < 1 ? 1 : o->jobs;
	pthread_t th[256];
	int nt = 0;
	for (; nt < jobs && nt < 256; nt++)
		if (pthread_create(&th[nt], NULL, worker, &k) != 0)
			break;
	if (nt == 0)
		worker(&k);
	/* write in file order as results arrive */
	for (size_t i = 0; i < k.nfiles; i++) {
		pthread_mutex_lock(&k.mu);
		while (!k.res[i].done)
			pthread_cond_wait(&k.cv, &k.mu);
		pthread_mutex_unlock(&k.mu);
		struct kres *r = &k.res[i];
		if (s == BT_OK && r->s != BT_OK) {
			/* kmod/ and the ELF reader name the file and the problem */
			if (r->s != BT_ERR_FORMAT && r->s != BT_ERR_IO &&
			    r->s != BT_ERR_UNSUPPORTED)
				bt_err(LOG_KMOD, "%s: cannot pre-translate this module (%s)",
				       k.files[i], bt_status_str(r->s));
			s = r->s;
		}
		if (s == BT_OK && r->skipped)
			st->n_mod_skipped++;
		if (s == BT_OK && !r->skipped) {
			struct tcdb_module tm = {.name = r->m->name,
						 .vermagic = r->m->vermagic,
						 .srcversion = r->m->srcversion,
						 .sections_hash = r->m->sections_hash,
						 .path = r->m->path,
						 .n_templates = (uint32_t)r->ts.n_blocks};
			s = tcdb_add_module(db, &tm, r->pack, r->pack_len);
			if (s == BT_OK)
				s = kmod_index_merge(&idx, &r->fp);
			st->n_modules++;
			st->n_mod_templates += r->ts.n_blocks;
			st->n_mod_patched += r->n_patched;
			st->n_mod_refused += r->ts.n_refused;
			st->n_mod_not_reloc += r->ts.n_not_reloc;
			st->mod_guest_bytes += r->ts.guest_bytes;
			st->mod_host_bytes += r->ts.code_bytes;
			st->mod_pack_bytes += r->pack_len;
		}
		free_result(r);
		if (s != BT_OK) {
			pthread_mutex_lock(&k.mu);
			k.next = k.nfiles; /* stop handing out; workers finish theirs */
			pthread_mutex_unlock(&k.mu);
			break;
		}
	}
	for (int t = 0; t < nt; t++)
		pthread_join(th[t], NULL);
	if (s == BT_OK && idx.nmods > 0) {
		uint8_t *ib;
		size_t il;
		if ((s = kmod_index_finish(&idx, &ib, &il)) == BT_OK) {
			s = tcdb_module_index_put(db, ib, il, idx.nmods);
			st->mod_index_bytes = il;
			free(ib);
		}
	}
	for (size_t i = 0; i < k.nfiles; i++)
		free_result(&k.res[i]);
	pthread_mutex_destroy(&k.mu);
	pthread_cond_destroy(&k.cv);
out:
	for (size_t i = 0; i < k.nfiles; i++)
		free(k.files[i]);
	free(k.files);
	free(k.res);
	free(k.syms);
	kmod_index_writer_fini(&idx);
	return s;
}
