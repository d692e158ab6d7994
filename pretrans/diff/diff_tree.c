/*
 * `pretrans diff OLD_DIR NEW_DIR`: two module trees (a lib/modules/<release>
 * directory, or any directory of .ko files) compared module by module.
 *
 * A module is named by its path below the tree with the compression suffix
 * dropped (kernel/fs/fat/fat.ko for fat.ko.xz), so a tree that switched to
 * compressed modules still pairs up.  Each module is then
 *   added / removed   on one side only;
 *   identical         the same bytes once decompressed (not loaded further);
 *   same code         the function diff finds only identical and moved
 *                     functions (addresses shifted, code equal);
 *   changed           a function changed, was renamed, added or removed;
 *   error             one side could not be read (the line says why; the
 *                     other modules are still compared).
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

enum tree_class { T_ADDED, T_REMOVED, T_IDENTICAL, T_SAME, T_CHANGED, T_ERROR, T_NCLASSES };
static const char *const tree_class_str[T_NCLASSES] = {"added",	    "removed", "identical",
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

struct mod_result {
	const char *key;
	enum tree_class cls;
	size_t count[DIFF_NCLASSES]; /* functions by class (same-code, changed) */
};

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

static void compare_module(const struct tree_mod *o, const struct tree_mod *n, int jobs,
			   struct mod_result *r)
{
	if (same_bytes(o->path, n->path)) {
		r->cls = T_IDENTICAL;
		return;
	}
	struct diff_side *so = NULL, *sn = NULL;
	struct diff_result dr;
	r->cls = T_ERROR; /* diff_side_load logged which file and why */
	if (diff_side_load(o->path, &so) != BT_OK || diff_side_load(n->path, &sn) != BT_OK ||
	    diff_sides_prepare(so, sn, jobs) != BT_OK || diff_compare(so, sn, &dr) != BT_OK)
		goto out;
	memcpy(r->count, dr.count, sizeof(r->count));
	r->cls = diff_result_differs(&dr) ? T_CHANGED : T_SAME;
	diff_result_fini(&dr);
out:
	diff_side_free(so);
	diff_side_free(sn);
}

static void write_text(FILE *f, const char *od, const char *nd, const struct mod_result *r,
		       size_t n, const size_t *cls, int all)
{
	fprintf(f, "pretrans diff: module trees %s -> %s\n", od, nd);
	fprintf(f,
		"modules: %s added, %s removed, %s changed, %s same code (moved functions only), "
		"%s identical, %s unreadable\n",
		BT_N(cls[T_ADDED]), BT_N(cls[T_REMOVED]), BT_N(cls[T_CHANGED]), BT_N(cls[T_SAME]),
		BT_N(cls[T_IDENTICAL]), BT_N(cls[T_ERROR]));
	for (size_t i = 0; i < n; i++) {
		if (!all && (r[i].cls == T_IDENTICAL || r[i].cls == T_SAME))
			continue;
		fprintf(f, "%-9s %s", tree_class_str[r[i].cls], r[i].key);
		if (r[i].cls == T_CHANGED || r[i].cls == T_SAME)
			fprintf(f,
				": functions %s changed, %s renamed, %s added, %s removed, %s "
				"moved, %s identical",
				BT_N(r[i].count[DIFF_CHANGED]), BT_N(r[i].count[DIFF_RENAMED]),
				BT_N(r[i].count[DIFF_ADDED]), BT_N(r[i].count[DIFF_REMOVED]),
				BT_N(r[i].count[DIFF_MOVED]), BT_N(r[i].count[DIFF_IDENTICAL]));
		fputc('\n', f);
	}
}

static void write_json(FILE *f, const char *od, const char *nd, const struct mod_result *r,
		       size_t n, const size_t *cls)
{
	fprintf(f, "{\"schema\": \"%s\", \"old\": ", DIFF_TREE_JSON_SCHEMA);
	bt_json_str(f, od);
	fprintf(f, ", \"new\": ");
	bt_json_str(f, nd);
	fprintf(f, ",\n \"summary\": {");
	for (int c = 0; c < T_NCLASSES; c++)
		fprintf(f, "%s\"%s\": %zu", c ? ", " : "", tree_class_str[c], cls[c]);
	fprintf(f, "},\n \"modules\": [");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s\n  {\"module\": ", i ? "," : "");
		bt_json_str(f, r[i].key);
		fprintf(f, ", \"class\": \"%s\"", tree_class_str[r[i].cls]);
		if (r[i].cls == T_CHANGED || r[i].cls == T_SAME) {
			fprintf(f, ", \"functions\": {");
			for (int c = 0; c < DIFF_NCLASSES; c++)
				fprintf(f, "%s\"%s\": %zu", c ? ", " : "",
					diff_class_str((enum diff_class)c), r[i].count[c]);
			fputc('}', f);
		}
		fputc('}', f);
	}
	fprintf(f, "\n]}\n");
}

int diff_is_tree(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
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
	struct mod_result *r = calloc(to.n + tn.n + 1, sizeof(*r));
	size_t n = 0, cls[T_NCLASSES] = {0};
	if (!r) {
		bt_cli_error("diff: out of memory");
		goto out;
	}
	for (size_t i = 0, j = 0; i < to.n || j < tn.n;) {
		int c = i == to.n ? 1 : j == tn.n ? -1 : strcmp(to.m[i].key, tn.m[j].key);
		struct mod_result *m = &r[n++];
		if (c < 0) {
			*m = (struct mod_result){.key = to.m[i++].key, .cls = T_REMOVED};
		} else if (c > 0) {
			*m = (struct mod_result){.key = tn.m[j++].key, .cls = T_ADDED};
		} else {
			m->key = tn.m[j].key;
			compare_module(&to.m[i++], &tn.m[j++], o->jobs, m);
		}
		cls[m->cls]++;
	}
	FILE *out = stdout;
	if (o->json_file && !(out = fopen(o->json_file, "w"))) {
		bt_cli_error("diff: cannot write %s: %m", o->json_file);
		goto out;
	}
	if (o->json)
		write_json(out, od, nd, r, n, cls);
	if (out != stdout && fclose(out) != 0) {
		bt_cli_error("diff: cannot write %s: %m", o->json_file);
		goto out;
	}
	/* as for two files: no text on stdout when the report went to a file,
	 * unless --text asks for it */
	if (!o->json || (o->json_file && o->text))
		write_text(stdout, od, nd, r, n, cls, o->all);
	if (fflush(stdout) != 0) {
		bt_cli_error("diff: cannot write the report: %m");
		goto out;
	}
	rc = cls[T_ERROR] ? 2 : (cls[T_ADDED] || cls[T_REMOVED] || cls[T_CHANGED]) ? 1 : 0;
out:
	free(r);
	tree_free(&to);
	tree_free(&tn);
	return rc;
}
