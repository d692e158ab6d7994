/*
 * Reports of a module-tree diff (diff_tree.c compares): text, JSON (schema
 * DIFF_TREE_JSON_SCHEMA) and one self-contained HTML page.
 *
 * Invariants
 *  1. Modules in key order; a module's functions in the text report's order
 *     (changed, renamed, added, removed, then with --all moved and
 *     identical; key order within a class), the same in every format.
 *  2. Within DIFF_TREE_JSON_SCHEMA keys are only added (docs/diff.md).
 *  3. The HTML page fetches nothing and runs no script.
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/base/text.h"

/* A module with its functions compared (the others have no counts). */
static int compared(const struct diff_tree_mod *m)
{
	return m->cls == DIFF_T_CHANGED || m->cls == DIFF_T_SAME;
}

static int listed(const struct diff_tree_report *r, const struct diff_tree_mod *m)
{
	return r->all || (m->cls != DIFF_T_IDENTICAL && m->cls != DIFF_T_SAME);
}

/* ---- text ---- */

static void text_fn(FILE *f, const struct diff_tree_fn *x)
{
	fprintf(f, "    %-9s ", diff_class_str(x->cls));
	if (x->cls == DIFF_RENAMED)
		fprintf(f, "%s -> %s", x->old_key, x->new_key);
	else
		fputs(x->new_key ? x->new_key : x->old_key, f);
	if (x->old_key && x->new_key && x->old_size != x->new_size)
		fprintf(f, "  size %llu -> %llu", (unsigned long long)x->old_size,
			(unsigned long long)x->new_size);
	else
		fprintf(f, "  size %llu",
			(unsigned long long)(x->new_key ? x->new_size : x->old_size));
	fputc('\n', f);
}

void diff_tree_write_text(FILE *f, const struct diff_tree_report *r)
{
	const size_t *cls = r->cls;
	fprintf(f, "pretrans diff: module trees %s -> %s\n", r->old_dir, r->new_dir);
	fprintf(f,
		"modules: %s added, %s removed, %s changed, %s same code (moved functions only), "
		"%s identical, %s unreadable\n",
		BT_N(cls[DIFF_T_ADDED]), BT_N(cls[DIFF_T_REMOVED]), BT_N(cls[DIFF_T_CHANGED]),
		BT_N(cls[DIFF_T_SAME]), BT_N(cls[DIFF_T_IDENTICAL]), BT_N(cls[DIFF_T_ERROR]));
	size_t total[DIFF_NCLASSES] = {0};
	for (size_t i = 0; i < r->n; i++)
		for (int c = 0; c < DIFF_NCLASSES; c++)
			total[c] += r->m[i].count[c];
	fprintf(f,
		"functions of the compared modules: %s changed, %s renamed, %s added, %s removed, "
		"%s moved, %s identical\n",
		BT_N(total[DIFF_CHANGED]), BT_N(total[DIFF_RENAMED]), BT_N(total[DIFF_ADDED]),
		BT_N(total[DIFF_REMOVED]), BT_N(total[DIFF_MOVED]), BT_N(total[DIFF_IDENTICAL]));
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_tree_mod *m = &r->m[i];
		if (!listed(r, m))
			continue;
		fprintf(f, "%-9s %s", diff_tree_class_str[m->cls], m->key);
		if (compared(m))
			fprintf(f,
				": functions %s changed, %s renamed, %s added, %s removed, %s "
				"moved, %s identical",
				BT_N(m->count[DIFF_CHANGED]), BT_N(m->count[DIFF_RENAMED]),
				BT_N(m->count[DIFF_ADDED]), BT_N(m->count[DIFF_REMOVED]),
				BT_N(m->count[DIFF_MOVED]), BT_N(m->count[DIFF_IDENTICAL]));
		fputc('\n', f);
		for (size_t j = 0; j < m->nfn; j++)
			text_fn(f, &m->fn[j]);
	}
}

/* ---- JSON ---- */

static void json_name(FILE *f, const char *s)
{
	if (s)
		diff_put_json_str(f, s);
	else
		fputs("null", f);
}

void diff_tree_write_json(FILE *f, const struct diff_tree_report *r)
{
	fprintf(f, "{\"schema\": \"%s\", \"old\": ", DIFF_TREE_JSON_SCHEMA);
	diff_put_json_str(f, r->old_dir);
	fprintf(f, ", \"new\": ");
	diff_put_json_str(f, r->new_dir);
	fprintf(f, ", \"all\": %s,\n \"summary\": {", r->all ? "true" : "false");
	for (int c = 0; c < DIFF_T_NCLASSES; c++)
		fprintf(f, "%s\"%s\": %zu", c ? ", " : "", diff_tree_class_str[c], r->cls[c]);
	fprintf(f, "},\n \"modules\": [");
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_tree_mod *m = &r->m[i];
		fprintf(f, "%s\n  {\"module\": ", i ? "," : "");
		diff_put_json_str(f, m->key);
		fprintf(f, ", \"class\": \"%s\"", diff_tree_class_str[m->cls]);
		if (compared(m)) {
			fprintf(f, ", \"functions\": {");
			for (int c = 0; c < DIFF_NCLASSES; c++)
				fprintf(f, "%s\"%s\": %zu", c ? ", " : "",
					diff_class_str((enum diff_class)c), m->count[c]);
			fprintf(f, "}, \"changes\": [");
			for (size_t j = 0; j < m->nfn; j++) {
				const struct diff_tree_fn *x = &m->fn[j];
				fprintf(f, "%s{\"class\": \"%s\", \"old\": ", j ? ", " : "",
					diff_class_str(x->cls));
				json_name(f, x->old_key);
				fprintf(f, ", \"new\": ");
				json_name(f, x->new_key);
				fprintf(f, ", \"old_size\": %llu, \"new_size\": %llu}",
					(unsigned long long)x->old_size,
					(unsigned long long)x->new_size);
			}
			fputc(']', f);
		}
		fputc('}', f);
	}
	fprintf(f, "\n]}\n");
}

/* ---- HTML ---- */

static const char html_style[] =
    "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}"
    "code{font:13px ui-monospace,monospace}"
    ".changed{color:#b35900}.added{color:#1a7f37}.removed{color:#cf222e}"
    ".renamed{color:#8250df}.error{color:#cf222e;font-weight:bold}"
    "details{margin:.2em 0}summary{cursor:pointer}";

void diff_tree_write_html(FILE *f, const struct diff_tree_report *r)
{
	fprintf(f,
		"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		"<title>pretrans diff: module trees</title><style>%s</style></head><body>\n",
		html_style);
	fprintf(f, "<h1>pretrans diff: module trees</h1>\n<p><code>");
	diff_put_html_str(f, r->old_dir);
	fprintf(f, "</code> &rarr; <code>");
	diff_put_html_str(f, r->new_dir);
	fprintf(f, "</code></p>\n<table id=\"summary\"><tr><th>modules</th><th>count</th></tr>\n");
	for (int c = 0; c < DIFF_T_NCLASSES; c++)
		fprintf(f, "<tr><td class=\"%s\">%s</td><td>%zu</td></tr>\n",
			diff_tree_class_str[c], diff_tree_class_str[c], r->cls[c]);
	fprintf(f, "</table>\n<p>Compare two modules with <code>pretrans diff OLD.ko NEW.ko "
		   "--html FILE</code> for their instruction diffs.</p>\n");
	fprintf(f, "<table id=\"modules\"><tr><th>module</th><th>class</th>");
	for (int c = 0; c < DIFF_NCLASSES; c++)
		fprintf(f, "<th>%s</th>", diff_class_str((enum diff_class)c));
	fprintf(f, "</tr>\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_tree_mod *m = &r->m[i];
		if (!listed(r, m))
			continue;
		fprintf(f, "<tr><td>");
		if (m->nfn) {
			fprintf(f, "<details><summary><code>");
			diff_put_html_str(f, m->key);
			fprintf(f, "</code></summary>");
			for (size_t j = 0; j < m->nfn; j++) {
				const struct diff_tree_fn *x = &m->fn[j];
				fprintf(f, "<div class=\"%s fn\">%s <code>", diff_class_str(x->cls),
					diff_class_str(x->cls));
				diff_put_html_str(f, x->new_key ? x->new_key : x->old_key);
				if (x->cls == DIFF_RENAMED) {
					fprintf(f, "</code> (was <code>");
					diff_put_html_str(f, x->old_key);
					fprintf(f, "</code>)");
				} else {
					fprintf(f, "</code>");
				}
				fprintf(f, "</div>");
			}
			fprintf(f, "</details>");
		} else {
			fprintf(f, "<code>");
			diff_put_html_str(f, m->key);
			fprintf(f, "</code>");
		}
		fprintf(f, "</td><td class=\"%s\">%s</td>", diff_tree_class_str[m->cls],
			diff_tree_class_str[m->cls]);
		for (int c = 0; c < DIFF_NCLASSES; c++)
			if (compared(m))
				fprintf(f, "<td>%zu</td>", m->count[c]);
			else
				fprintf(f, "<td></td>");
		fprintf(f, "</tr>\n");
	}
	fprintf(f, "</table>\n</body></html>\n");
}
