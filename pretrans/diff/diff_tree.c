/*
 * `pretrans diff OLD_DIR NEW_DIR`: two module trees (a lib/modules/<release>
 * directory, or any directory of .ko files) compared module by module.
 *
 * A module is named by its path below the tree with the compression suffix
 * and a leading kernel/ dropped (fs/fat/fat.ko for kernel/fs/fat/fat.ko.xz),
 * so a tree that switched to compressed modules still pairs up, and a
 * lib/modules/<release> tree pairs with another's kernel/ subtree.  Each
 * module is then
 *   added / removed   on one side only;
 *   identical         the same bytes once decompressed (not loaded further);
 *   same code         the function diff finds only identical and moved
 *                     functions (addresses shifted, code equal);
 *   changed           a function changed, was renamed, added or removed;
 *   error             one side could not be read, or is not a module (the
 *                     line says why; the other modules are still compared).
 * Same-code and changed modules keep their really changed functions (every
 * one with --all) for the reports (diff_tree_out.c).
 * Exit status: 0 no module differs, 1 some module was added, removed or
 * changed, 2 a module that could not be read (after the report) or one
 * module twice in a tree, 4 a tree that cannot be walked.
 */
#include "pretrans/diff/diff_int.h"

#include "kmod/kmod.h"
#include "pretrans/base/log.h"
#include "pretrans/base/text.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const diff_tree_class_str[DIFF_T_NCLASSES] = {"added",     "removed", "identical",
							  "same-code", "changed", "error"};

struct tree_mod {
	char *key;  /* path below the tree, compression suffix dropped */
	char *path; /* the file */
};

struct tree {
	struct tree_mod *m;
	size_t n, cap;
	size_t root_len;
};

/* nftw passes no context: the tree being walked (single-threaded). */
static struct tree *walking;

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_F ||
	    !(ends_with(path, ".ko") || ends_with(path, ".ko.xz") || ends_with(path, ".ko.zst")))
		return 0;
	struct tree *t = walking;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		struct tree_mod *m = realloc(t->m, cap * sizeof(*m));
		if (!m)
			return -1;
		t->m = m;
		t->cap = cap;
	}
	const char *rel = path + t->root_len;
	while (*rel == '/')
		rel++;
	char *key = strdup(rel), *p = strdup(path);
	if (!key || !p) {
		free(key);
		free(p);
		return -1;
	}
	char *dot = strstr(key, ".ko.");
	if (dot && (!strcmp(dot, ".ko.xz") || !strcmp(dot, ".ko.zst")))
		dot[3] = '\0';
	if (!strncmp(key, "kernel/", 7)) /* lib/modules/<release>/kernel/... */
		memmove(key, key + 7, strlen(key + 7) + 1);
	t->m[t->n++] = (struct tree_mod){.key = key, .path = p};
	return 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct tree_mod *)a)->key, ((const struct tree_mod *)b)->key);
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->m[i].key);
		free(t->m[i].path);
	}
	free(t->m);
}

static enum bt_status tree_load(const char *dir, struct tree *t)
{
	*t = (struct tree){.root_len = strlen(dir)};
	walking = t;
	int r = nftw(dir, visit, 32, FTW_PHYS);
	walking = NULL;
	if (r != 0) {
		bt_cli_error("diff: cannot read the module tree %s", dir);
		return BT_ERR_IO;
	}
	qsort(t->m, t->n, sizeof(*t->m), by_key);
	for (size_t i = 1; i < t->n; i++)
		if (!strcmp(t->m[i - 1].key, t->m[i].key)) {
			bt_cli_error("diff: %s holds %s and %s: one module twice, compressed and "
				     "not; remove one",
				     dir, t->m[i - 1].path, t->m[i].path);
			return BT_ERR_FORMAT;
		}
	return BT_OK;
}

static int same_bytes(const char *a, const char *b)
{
	uint8_t *x = NULL, *y = NULL;
	size_t xl = 0, yl = 0;
	int same = kmod_read_file(a, &x, &xl) == BT_OK && kmod_read_file(b, &y, &yl) == BT_OK &&
		   xl == yl && !memcmp(x, y, xl);
	free(x);
	free(y);
	return same;
}

static int really_changed(enum diff_class c)
{
	return c == DIFF_CHANGED || c == DIFF_RENAMED || c == DIFF_ADDED || c == DIFF_REMOVED;
}

/* The functions the reports list: the really changed ones, with all every
 * one, in the text report's order (class, then key). */
static enum bt_status keep_functions(const struct diff_result *dr, int all, struct diff_tree_mod *m)
{
	static const enum diff_class order[] = {DIFF_CHANGED, DIFF_RENAMED, DIFF_ADDED,
						DIFF_REMOVED, DIFF_MOVED,   DIFF_IDENTICAL};
	size_t n = 0;
	for (size_t i = 0; i < dr->n; i++)
		n += all || really_changed(dr->e[i].cls);
	m->fn = calloc(n ? n : 1, sizeof(*m->fn));
	if (!m->fn)
		return BT_ERR_NOMEM;
	for (size_t oi = 0; oi < BT_ARRAY_SIZE(order) && m->nfn < n; oi++)
		for (size_t i = 0; i < dr->n; i++) {
			const struct diff_entry *e = &dr->e[i];
			if (e->cls != order[oi])
				continue;
			struct diff_tree_fn *f = &m->fn[m->nfn++];
			f->cls = e->cls;
			if (e->old && !(f->old_key = strdup(e->old->key)))
				return BT_ERR_NOMEM;
			if (e->new && !(f->new_key = strdup(e->new->key)))
				return BT_ERR_NOMEM;
			f->old_size = e->old ? e->old->size : 0;
			f->new_size = e->new ? e->new->size : 0;
		}
	return BT_OK;
}

/* Both files of a module pair loaded, compared and kept in r; r->cls is
 * DIFF_T_ERROR with one line naming the file when one cannot be read or
 * is not a module. */
static void compare_module(const struct tree_mod *o, const struct tree_mod *n, int jobs, int all,
			   struct diff_tree_mod *r)
{
	if (same_bytes(o->path, n->path)) {
		r->cls = DIFF_T_IDENTICAL;
		return;
	}
	struct diff_side *so = NULL, *sn = NULL;
	struct diff_result dr;
	r->cls = DIFF_T_ERROR;
	if (diff_side_load(o->path, &so) != BT_OK || diff_side_load(n->path, &sn) != BT_OK ||
	    diff_sides_check_kind(so, sn) != BT_OK)
		goto out; /* the loader or the kind check said which file and why */
	if (!so->rel) {
		bt_cli_error("diff: %s and %s are linked images, not modules (ET_REL): compare "
			     "kernels as two files",
			     o->path, n->path);
		goto out;
	}
	if (diff_sides_prepare(so, sn, jobs) != BT_OK || diff_compare(so, sn, &dr) != BT_OK) {
		bt_cli_error("diff: comparing %s with %s failed", o->path, n->path);
		goto out;
	}
	memcpy(r->count, dr.count, sizeof(r->count));
	if (keep_functions(&dr, all, r) != BT_OK)
		bt_cli_error("diff: %s: out of memory listing its functions", n->path);
	else
		r->cls = diff_result_differs(&dr) ? DIFF_T_CHANGED : DIFF_T_SAME;
	diff_result_fini(&dr);
out:
	diff_side_free(so);
	diff_side_free(sn);
}

static void mods_free(struct diff_tree_mod *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		for (size_t j = 0; j < m[i].nfn; j++) {
			free(m[i].fn[j].old_key);
			free(m[i].fn[j].new_key);
		}
		free(m[i].fn);
	}
	free(m);
}

int diff_is_tree(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int write_report(const struct diff_tree_report *rep, const struct diff_tree_opts *o)
{
	FILE *out = stdout;
	const char *file = o->json_file;
	if (o->json) {
		if (file && !(out = fopen(file, "w")))
			goto err_write;
		diff_tree_write_json(out, rep);
		if (out != stdout && fclose(out) != 0)
			goto err_write;
	}
	if (o->html) {
		file = o->html;
		if (!(out = fopen(file, "w")))
			goto err_write;
		diff_tree_write_html(out, rep);
		if (fclose(out) != 0)
			goto err_write;
	}
	/* as for two files: stdout has the JSON, else the text unless every
	 * report asked for went to a file (then only with --text) */
	if ((!o->json || o->json_file) && (o->text || (!o->json && !o->html)))
		diff_tree_write_text(stdout, rep);
	if (fflush(stdout) != 0) {
		bt_cli_error("diff: cannot write the report: %m");
		return bt_status_exit(BT_ERR_IO);
	}
	return 0;
err_write:
	bt_cli_error("diff: cannot write %s: %m", file);
	return bt_status_exit(BT_ERR_IO);
}

int diff_trees(const char *od, const char *nd, const struct diff_tree_opts *o)
{
	struct tree to, tn;
	enum bt_status st = tree_load(od, &to);
	if (st == BT_OK && (st = tree_load(nd, &tn)) != BT_OK)
		tree_free(&to);
	if (st != BT_OK)
		return bt_status_exit(st);
	int rc = 2;
	struct diff_tree_mod *r = calloc(to.n + tn.n + 1, sizeof(*r));
	struct diff_tree_report rep = {.old_dir = od, .new_dir = nd, .all = o->all};
	size_t n = 0;
	if (!r) {
		bt_cli_error("diff: out of memory");
		goto out;
	}
	for (size_t i = 0, j = 0; i < to.n || j < tn.n;) {
		int c = i == to.n ? 1 : j == tn.n ? -1 : strcmp(to.m[i].key, tn.m[j].key);
		struct diff_tree_mod *m = &r[n++];
		if (c < 0) {
			*m = (struct diff_tree_mod){.key = to.m[i++].key, .cls = DIFF_T_REMOVED};
		} else if (c > 0) {
			*m = (struct diff_tree_mod){.key = tn.m[j++].key, .cls = DIFF_T_ADDED};
		} else {
			m->key = tn.m[j].key;
			compare_module(&to.m[i++], &tn.m[j++], o->jobs, o->all, m);
		}
		rep.cls[m->cls]++;
	}
	rep.m = r;
	rep.n = n;
	rc = write_report(&rep, o);
	if (rc != 0)
		goto out;
	if (rep.cls[DIFF_T_ERROR])
		rc = 2;
	else if (rep.cls[DIFF_T_ADDED] || rep.cls[DIFF_T_REMOVED] || rep.cls[DIFF_T_CHANGED])
		rc = 1;
out:
	mods_free(r, n);
	tree_free(&to);
	tree_free(&tn);
	return rc;
}
