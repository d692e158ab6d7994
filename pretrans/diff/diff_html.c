/*
 * HTML writer: one self-contained page (inline CSS, JS and SVG, nothing
 * fetched) with a summary bar chart, tables by directory and file, a
 * sortable and filterable table of every function and side-by-side
 * instruction diffs of changed and renamed functions, drawn on demand.
 *
 * The page scales to a whole kernel (46 k functions, 3 k changed): the
 * function table and every diff are data, embedded once as compact JSON in
 * <script type="application/json" id="data">, and the script of
 * diff_report.js (embedded by diff_html_assets.S) keeps only the visible rows
 * of the table in the DOM, sorts index arrays, filters with a debounce and
 * draws one diff at a time with token-level highlights.
 *
 * Data (schema "btkern-diff-html/1", docs/diff.md), columns by entry i in
 * key order:
 *   k[i] key, c[i] class index (cls[]), f[i] index into files[] (sorted),
 *   oa/na[i] address - ob/nb (hex bases) or -1 when absent (addresses as
 *   16-digit hex strings instead when a side spans 2^53 or more), os/ns[i]
 *   size or -1, ren[] pairs [i, old key] for renamed entries, d[] triples
 *   [i, guest diff, translation diff or 0] for every changed and renamed
 *   entry, L[] the distinct lines of all diffs (a diff names a line by its
 *   index into L: 136 k lines of 6.1.0-47 -> -50 are 43 k distinct ones).
 *   A diff is {h: hunks} or {big: 1, a: [...], b: [...], cut: n}; hunks are
 *   a list of: a negative number -n (n equal lines not shown), a line (an
 *   equal line shown as context), [deleted lines, inserted lines].
 *
 * Invariants
 *  1. Every entry of the result is in the data exactly once (k[]), and every
 *     changed or renamed entry has a guest diff in d[] (no cap on their
 *     number; listings shown in full past 500 edits are capped at
 *     o->max_lines lines and say so).
 *  2. Translation diffs for at most o->max_xlat changed functions.
 *  3. All text from the images is escaped: JSON strings never contain '<',
 *     '>' or '&' (written as \u003c...), HTML text goes through
 *     diff_put_html_str().
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/xlat/xlat.h"

#include <stdlib.h>
#include <string.h>

/* diff_html_assets.S: the page's style sheet and script, NUL-terminated. */
extern const char diff_report_css[], diff_report_js[];

#define CONTEXT 3 /* equal lines shown around a change */

static const char *const colors[DIFF_NCLASSES] = {"#adb5bd", "#2a6f97", "#b5179e",
						  "#e76f51", "#2b9348", "#d00000"};

/* A JSON string that is safe inside a <script> element. */
static void put_js_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&')
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void chart(FILE *out, const struct diff_result *r)
{
	size_t max = r->naive_flagged;
	for (int c = 0; c < DIFF_NCLASSES; c++)
		max = BT_MAX(max, r->count[c]);
	if (!max)
		max = 1;
	int rows = DIFF_NCLASSES + 1, bh = 26, w = 760, lw = 210, bw = w - lw - 90;
	fprintf(out,
		"<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" role=\"img\" aria-label=\"functions per category\">\n",
		w, rows * bh + 10);
	for (int i = 0; i < rows; i++) {
		size_t v = i < DIFF_NCLASSES ? r->count[i] : r->naive_flagged;
		const char *label = i < DIFF_NCLASSES ? diff_class_str(i) : "naive objdump|diff";
		const char *col = i < DIFF_NCLASSES ? colors[i] : "#6c757d";
		int y = 5 + i * bh, len = (int)((double)v / (double)max * bw);
		if (v && len < 2)
			len = 2;
		fprintf(out,
			"<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"13\">%s</text>"
			"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"%s/>"
			"<text x=\"%d\" y=\"%d\" font-size=\"13\">%zu</text>\n",
			lw - 8, y + 17, label, lw, y + 3, len, bh - 8, col,
			i == DIFF_NCLASSES ? " fill-opacity=\"0.5\"" : "", lw + len + 6, y + 17, v);
	}
	fprintf(out, "</svg>\n");
}

static void side_meta(FILE *out, const char *label, const struct diff_side *s)
{
	char bid[129];
	elfimg_build_id_hex(s->img, bid);
	fprintf(out, "<div class=\"meta\">%s: <code>", label);
	diff_put_html_str(out, s->path);
	fprintf(out, "</code> build-id <code>%s</code>, %zu functions</div>\n",
		bid[0] ? bid : "none", s->n);
}

static void files_table(FILE *out, const struct diff_result *r, int by_dir, size_t max)
{
	struct diff_group *g;
	size_t ng;
	if (diff_summary(r, by_dir, &g, &ng) != BT_OK)
		return;
	const char *what = by_dir ? "directory" : "file";
	fprintf(out,
		"<h2>By source %s</h2>\n<table id=\"%s\" class=\"groups\"><thead><tr><th>%s</th>",
		what, by_dir ? "dirs" : "files", what);
	for (int c = 0; c < DIFF_NCLASSES; c++)
		fprintf(out, "<th class=\"n\">%s</th>", diff_class_str(c));
	fprintf(out, "<th class=\"n\">total</th></tr></thead><tbody>\n");
	size_t shown = 0;
	for (size_t i = 0; i < ng; i++) {
		if (g[i].total == g[i].count[DIFF_IDENTICAL] + g[i].count[DIFF_MOVED] ||
		    shown >= max)
			continue;
		shown++;
		fprintf(out, "<tr><td>");
		diff_put_html_str(out, g[i].name);
		fprintf(out, "</td>");
		for (int c = 0; c < DIFF_NCLASSES; c++)
			fprintf(out, "<td class=\"n\">%zu</td>", g[i].count[c]);
		fprintf(out, "<td class=\"n\">%zu</td></tr>\n", g[i].total);
	}
	fprintf(out,
		"</tbody></table>\n<p class=\"meta\">%zu files with real changes shown "
		"(of %zu files); files whose functions are all identical or moved are "
		"omitted.</p>\n",
		shown, ng);
	for (size_t i = 0; i < ng; i++)
		free((char *)g[i].name);
	free(g);
}

/* ---- data ---- */

static const struct diff_func *entry_func(const struct diff_entry *e)
{
	return e->new ? e->new : e->old;
}

static int cmp_str_ptr(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* The distinct source files of the entries, sorted (the file column's
 * values index it, so sorting by file is sorting by index). */
static enum bt_status file_table(const struct diff_result *r, const char ***out, size_t *n)
{
	const char **v = malloc((r->n ? r->n : 1) * sizeof(*v));
	if (!v)
		return BT_ERR_NOMEM;
	for (size_t i = 0; i < r->n; i++)
		v[i] = entry_func(&r->e[i])->file;
	qsort(v, r->n, sizeof(*v), cmp_str_ptr);
	size_t m = 0;
	for (size_t i = 0; i < r->n; i++)
		if (!m || strcmp(v[m - 1], v[i]))
			v[m++] = v[i];
	*out = v;
	*n = m;
	return BT_OK;
}

static size_t file_index(const char **files, size_t n, const char *file)
{
	const char **p = bsearch(&file, files, n, sizeof(*files), cmp_str_ptr);
	return p ? (size_t)(p - files) : 0;
}

/* Hex base (lowest address) of one side's entries; *wide when the span does
 * not fit a JavaScript number exactly. */
static gva_t side_base(const struct diff_result *r, int new_, int *wide)
{
	gva_t lo = ~(gva_t)0, hi = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_func *f = new_ ? r->e[i].new : r->e[i].old;
		if (f) {
			lo = BT_MIN(lo, f->addr);
			hi = BT_MAX(hi, f->addr);
		}
	}
	if (lo > hi)
		lo = hi = 0;
	*wide = hi - lo >= (1ull << 53);
	return lo;
}

static void column_addr(FILE *out, const char *name, const struct diff_result *r, int new_,
			gva_t base, int wide)
{
	fprintf(out, ",\"%s\":[", name);
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_func *f = new_ ? r->e[i].new : r->e[i].old;
		fputs(i ? "," : "", out);
		if (!f)
			fputs("-1", out);
		else if (wide)
			fprintf(out, "\"%016llx\"", (unsigned long long)f->addr);
		else
			fprintf(out, "%llu", (unsigned long long)(f->addr - base));
	}
	fputc(']', out);
}

static void column_size(FILE *out, const char *name, const struct diff_result *r, int new_)
{
	fprintf(out, ",\"%s\":[", name);
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_func *f = new_ ? r->e[i].new : r->e[i].old;
		fputs(i ? "," : "", out);
		if (f)
			fprintf(out, "%llu", (unsigned long long)f->size);
		else
			fputs("-1", out);
	}
	fputc(']', out);
}

/* The distinct lines of the diffs, numbered in order of first use. */
struct line_set {
	char **line; /* by number */
	size_t n, cap;
	uint32_t *slot; /* open addressing: number + 1, 0 empty */
	size_t nslots;
	int nomem;
};

static int line_set_grow(struct line_set *t)
{
	size_t ns = t->nslots ? 2 * t->nslots : 1 << 12;
	uint32_t *slot = calloc(ns, sizeof(*slot));
	if (!slot)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t h = diff_strhash(t->line[i]) & (ns - 1);
		while (slot[h])
			h = (h + 1) & (ns - 1);
		slot[h] = (uint32_t)i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->nslots = ns;
	return 0;
}

/* The number of line s (added when new); 0 after a failed allocation,
 * which sets t->nomem. */
static size_t line_set_id(struct line_set *t, const char *s)
{
	if ((t->n + 1) * 2 > t->nslots && line_set_grow(t) != 0)
		goto err_nomem;
	size_t h = diff_strhash(s) & (t->nslots - 1);
	for (; t->slot[h]; h = (h + 1) & (t->nslots - 1))
		if (!strcmp(t->line[t->slot[h] - 1], s))
			return t->slot[h] - 1;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1024;
		char **l = realloc(t->line, cap * sizeof(*l));
		if (!l)
			goto err_nomem;
		t->line = l;
		t->cap = cap;
	}
	if (!(t->line[t->n] = strdup(s)))
		goto err_nomem;
	t->slot[h] = (uint32_t)++t->n;
	return t->n - 1;
err_nomem:
	t->nomem = 1;
	return 0;
}

static void line_set_fini(struct line_set *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->line[i]);
	free(t->line);
	free(t->slot);
}

static void put_ids(FILE *out, struct line_set *t, char *const *l, size_t lo, size_t hi)
{
	fputc('[', out);
	for (size_t i = lo; i < hi; i++)
		fprintf(out, "%s%zu", i > lo ? "," : "", line_set_id(t, l[i]));
	fputc(']', out);
}

static void put_lines(FILE *out, char *const *l, size_t lo, size_t hi)
{
	fputc('[', out);
	for (size_t i = lo; i < hi; i++) {
		if (i > lo)
			fputc(',', out);
		put_js_str(out, l[i]);
	}
	fputc(']', out);
}

/* One listing diff as hunks: context around each change, counts of the
 * equal lines in between (as the side-by-side view shows them). */
static void put_fdiff(FILE *out, struct line_set *t, const struct diff_fdiff *d, size_t max_lines)
{
	if (d->too_big) {
		size_t na = BT_MIN(d->na, max_lines), nb = BT_MIN(d->nb, max_lines);
		fputs("{\"big\":1,\"a\":", out);
		put_ids(out, t, d->a, 0, na);
		fputs(",\"b\":", out);
		put_ids(out, t, d->b, 0, nb);
		fprintf(out, ",\"cut\":%zu}", BT_MAX(d->na - na, d->nb - nb));
		return;
	}
	fputs("{\"h\":[", out);
	int first = 1;
	for (size_t i = 0; i < d->nops;) {
		size_t j = i;
		if (d->ops[i].op == '=') {
			while (j < d->nops && d->ops[j].op == '=')
				j++;
			size_t head = i ? CONTEXT : 0, tail = j < d->nops ? CONTEXT : 0;
			for (size_t k = i; k < j; k++) {
				if (k - i >= head && j - k > tail) {
					if (k - i == head)
						fprintf(out, "%s-%zu", first ? "" : ",",
							j - i - head - tail);
				} else {
					fprintf(out, "%s%zu", first ? "" : ",",
						line_set_id(t, d->a[d->ops[k].ai]));
				}
				first = 0;
			}
			i = j;
			continue;
		}
		/* a change: its deleted lines, then its inserted lines */
		while (j < d->nops && d->ops[j].op != '=')
			j++;
		fputs(first ? "[[" : ",[[", out);
		int n = 0;
		for (size_t k = i; k < j; k++)
			if (d->ops[k].op == '-')
				fprintf(out, "%s%zu", n++ ? "," : "",
					line_set_id(t, d->a[d->ops[k].ai]));
		fputs("],[", out);
		n = 0;
		for (size_t k = i; k < j; k++)
			if (d->ops[k].op == '+')
				fprintf(out, "%s%zu", n++ ? "," : "",
					line_set_id(t, d->b[d->ops[k].bi]));
		fputs("]]", out);
		first = 0;
		i = j;
	}
	fputs("]}", out);
}

/* d[]: the guest diff of every changed and renamed entry, with the diff of
 * the translations for the first o->max_xlat changed ones, into a buffer
 * while their lines are collected; then L[] and d[]. */
static enum bt_status diffs_data(FILE *final, const struct diff_result *r,
				 const struct diff_write_opts *o, size_t *ndiffs, size_t *nxlat)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (!out)
		return BT_ERR_NOMEM;
	struct line_set t = {0};
	struct xlat_ctx *xctx = NULL;
	if (o->listings && o->xlat && diff_xlat_ctx(r, &xctx) != BT_OK)
		xctx = NULL;
	enum bt_status st = BT_OK;
	fputs(",\"d\":[", out);
	*ndiffs = *nxlat = 0;
	for (size_t i = 0; o->listings && i < r->n && st == BT_OK; i++) {
		const struct diff_entry *e = &r->e[i];
		if (e->cls != DIFF_CHANGED && e->cls != DIFF_RENAMED)
			continue;
		struct diff_fdiff d;
		st = diff_fdiff_make(r, e, &d);
		if (st != BT_OK)
			break;
		fprintf(out, "%s[%zu,", (*ndiffs)++ ? "," : "", i);
		put_fdiff(out, &t, &d, o->max_lines);
		diff_fdiff_fini(&d);
		if (xctx && e->cls == DIFF_CHANGED && *nxlat < o->max_xlat &&
		    diff_fdiff_xlat(r, e, xctx, &d) == BT_OK) {
			(*nxlat)++;
			fputc(',', out);
			put_fdiff(out, &t, &d, o->max_lines);
			diff_fdiff_fini(&d);
		} else {
			fputs(",0", out);
		}
		fputc(']', out);
	}
	fputc(']', out);
	if (xctx)
		xlat_destroy(xctx);
	if (fclose(out) != 0 || t.nomem)
		st = st == BT_OK ? BT_ERR_NOMEM : st;
	if (st == BT_OK) {
		fputs(",\"L\":", final);
		put_lines(final, t.line, 0, t.n);
		fwrite(buf, 1, len, final);
	}
	free(buf);
	line_set_fini(&t);
	return st;
}

static enum bt_status data(FILE *out, const struct diff_result *r, const struct diff_write_opts *o)
{
	const char **files;
	size_t nfiles;
	BT_TRY(file_table(r, &files, &nfiles));
	fputs("{\"schema\":\"btkern-diff-html/1\",\"cls\":[", out);
	for (int c = 0; c < DIFF_NCLASSES; c++)
		fprintf(out, "%s\"%s\"", c ? "," : "", diff_class_str(c));
	fputs("],\"files\":", out);
	put_lines(out, (char *const *)files, 0, nfiles);
	fputs(",\"k\":[", out);
	for (size_t i = 0; i < r->n; i++) {
		fputs(i ? "," : "", out);
		put_js_str(out, entry_func(&r->e[i])->key);
	}
	fputs("],\"c\":[", out);
	for (size_t i = 0; i < r->n; i++)
		fprintf(out, "%s%d", i ? "," : "", (int)r->e[i].cls);
	fputs("],\"f\":[", out);
	for (size_t i = 0; i < r->n; i++)
		fprintf(out, "%s%zu", i ? "," : "",
			file_index(files, nfiles, entry_func(&r->e[i])->file));
	free(files);
	fputs("],\"ren\":[", out);
	for (size_t i = 0, n = 0; i < r->n; i++)
		if (r->e[i].cls == DIFF_RENAMED) {
			fprintf(out, "%s[%zu,", n++ ? "," : "", i);
			put_js_str(out, r->e[i].old->key);
			fputc(']', out);
		}
	fputc(']', out);
	int owide, nwide;
	gva_t ob = side_base(r, 0, &owide), nb = side_base(r, 1, &nwide);
	fprintf(out, ",\"ob\":\"%llx\",\"nb\":\"%llx\"", (unsigned long long)(owide ? 0 : ob),
		(unsigned long long)(nwide ? 0 : nb));
	column_addr(out, "oa", r, 0, ob, owide);
	column_size(out, "os", r, 0);
	column_addr(out, "na", r, 1, nb, nwide);
	column_size(out, "ns", r, 1);
	size_t ndiffs, nxlat;
	BT_TRY(diffs_data(out, r, o, &ndiffs, &nxlat));
	fprintf(out, ",\"max_xlat\":%zu,\"nxlat\":%zu}", o->max_xlat, nxlat);
	return BT_OK;
}

enum bt_status diff_write_html(FILE *out, const struct diff_result *r,
			       const struct diff_write_opts *o)
{
	fprintf(out,
		"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		"<title>pretrans diff</title>\n<style>%s</style>\n"
		"</head><body>\n<h1>pretrans diff</h1>\n",
		diff_report_css);
	side_meta(out, "old", r->old);
	side_meta(out, "new", r->new);
	size_t real = r->count[DIFF_CHANGED] + r->count[DIFF_ADDED] + r->count[DIFF_REMOVED] +
		      r->count[DIFF_RENAMED];
	fprintf(out,
		"<p><b>%zu</b> of %zu functions really changed; a naive <code>objdump -d | "
		"diff</code> would flag <b>%zu</b>. Moved = equal once addresses are "
		"normalised to symbol+offset.",
		real, r->n, r->naive_flagged);
	if (o->listings && o->xlat)
		fprintf(out,
			" The instruction diff of a changed function is followed by the "
			"diff of its translations (for the first %zu).",
			o->max_xlat);
	fprintf(out, "</p>\n");
	chart(out, r);
	fprintf(out, "<div class=\"groupwrap\"><div>");
	files_table(out, r, 1, 40);
	fprintf(out, "</div><div>");
	files_table(out, r, 0, 100);
	fprintf(out, "</div></div>\n");

	fprintf(out, "<h2>Functions</h2>\n<div id=\"controls\">");
	for (int c = 0; c < DIFF_NCLASSES; c++)
		fprintf(out,
			"<label class=\"c-%s\"><input type=\"checkbox\" value=\"%d\"%s> %s "
			"(%zu)</label>",
			diff_class_str(c), c,
			(c == DIFF_IDENTICAL || c == DIFF_MOVED) ? "" : " checked",
			diff_class_str(c), r->count[c]);
	fprintf(out, "<input id=\"q\" placeholder=\"filter by name or file\" autocomplete=\"off\">"
		     "<span id=\"shown\" class=\"meta\"></span></div>\n");
	fprintf(out, "<div id=\"tablewrap\"><table id=\"funcs\"><colgroup><col class=\"w-fn\">"
		     "<col class=\"w-cls\"><col class=\"w-file\"><col class=\"w-addr\">"
		     "<col class=\"w-size\"><col class=\"w-addr\"><col class=\"w-size\">"
		     "</colgroup><thead><tr><th>function</th><th>class</th><th>file</th>"
		     "<th class=\"n\">old address</th><th class=\"n\">old size</th>"
		     "<th class=\"n\">new address</th><th class=\"n\">new size</th></tr></thead>"
		     "<tbody></tbody></table></div>\n");
	fprintf(out, "<h2>Instruction diffs</h2>\n<p class=\"meta\">Click a function's name to "
		     "see its diff (every changed and renamed function has one; "
		     "<kbd>n</kbd>/<kbd>p</kbd> step through the listed ones). Addresses are "
		     "normalised: <code>self+off</code> inside the function, "
		     "<code>symbol+off</code>, <code>str:\"...\"</code> for string literals, "
		     "<code>section+?</code> where no symbol covers the target.</p>\n"
		     "<div id=\"diffview\"></div>\n"
		     "<noscript>The function table and the diffs need JavaScript.</noscript>\n");

	fputs("<script type=\"application/json\" id=\"data\">", out);
	enum bt_status st = data(out, r, o);
	fprintf(out, "</script>\n<script>%s</script>\n</body></html>\n", diff_report_js);
	if (st == BT_OK && ferror(out))
		st = BT_ERR_IO;
	return st;
}
