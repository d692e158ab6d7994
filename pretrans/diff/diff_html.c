/*
 * HTML writer: one self-contained page (inline CSS, JS and SVG, nothing
 * fetched) with a summary bar chart, a per-file table, a sortable and
 * filterable table of every function, and collapsed side-by-side
 * instruction diffs for changed and renamed functions.
 *
 * Invariants
 *  1. Every entry of the result has exactly one row <tr data-key=KEY> in
 *     table#funcs (tests parse the page and check this).
 *  2. Side-by-side diffs are written for at most o->max_details functions
 *     (changed first, then renamed), each capped at o->max_lines rows; the
 *     page says how many were left out.
 *  3. All text from the images (names, strings in listings) is escaped.
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/xlat/xlat.h"

#include <stdlib.h>
#include <string.h>

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}"
    "h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:24px 0 8px}"
    ".meta{color:#555;font-size:12px}.meta code{background:#eee;padding:1px 4px}"
    "table{border-collapse:collapse;background:#fff}"
    "th,td{border:1px solid #ddd;padding:2px 8px;text-align:left;font-size:13px}"
    "th{background:#f0f0f0;cursor:pointer;user-select:none;position:sticky;top:0}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".c-identical{color:#888}.c-moved{color:#2a6f97}.c-changed{color:#b5179e;font-weight:600}"
    ".c-renamed{color:#e76f51}.c-added{color:#2b9348}.c-removed{color:#d00000}"
    "#controls{margin:8px 0}#controls label{margin-right:12px}"
    "#tablewrap{max-height:520px;overflow:auto;border:1px solid #ccc;display:inline-block}"
    "details{margin:6px 0;background:#fff;border:1px solid #ddd;padding:4px 8px}"
    "summary{cursor:pointer;font-family:monospace}"
    "table.sbs td{font:12px/1.3 monospace;white-space:pre;border:none;padding:0 8px}"
    "table.sbs td.ln{color:#999;text-align:right}"
    "tr.del td.o{background:#ffe3e3}tr.ins td.nw{background:#d3f9d8}"
    "tr.chg td.o{background:#ffe3e3}tr.chg td.nw{background:#d3f9d8}"
    "tr.gap td{color:#999;text-align:center}"
    ".groupwrap{display:flex;gap:24px;align-items:flex-start;}"
    ".groupwrap>div{max-height:460px;overflow:auto;flex:1 1 0;min-width:0}"
    "table.groups{width:100%}"
    "table.groups th,table.groups td{padding:1px 5px;font-size:12px}";

static const char js[] =
    "function sortBy(th){var t=th.closest('table'),i=Array.prototype.indexOf.call("
    "th.parentNode.children,th),b=t.tBodies[0],r=Array.prototype.slice.call(b.rows),"
    "asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';var num=th.classList.contains('n');"
    "r.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,"
    "c=y.cells[i].dataset.v||y.cells[i].textContent;if(num){a=parseFloat(a)||0;"
    "c=parseFloat(c)||0;}return (a<c?-1:a>c?1:0)*(asc?1:-1);});"
    "var f=document.createDocumentFragment();r.forEach(function(e){f.appendChild(e);});"
    "b.appendChild(f);}"
    "function filt(){var q=document.getElementById('q').value.toLowerCase(),on={};"
    "document.querySelectorAll('#controls input[type=checkbox]').forEach(function(c){"
    "on[c.value]=c.checked;});document.querySelectorAll('#funcs tbody tr').forEach("
    "function(r){var ok=on[r.dataset.cls]&&(!q||r.dataset.key.toLowerCase().indexOf(q)>=0"
    "||r.cells[2].textContent.toLowerCase().indexOf(q)>=0);r.style.display=ok?'':'none';});}"
    "document.addEventListener('DOMContentLoaded',function(){"
    "document.querySelectorAll('th').forEach(function(h){h.addEventListener('click',"
    "function(){sortBy(h);});});filt();openHash();});"
    "function openHash(){var e=document.getElementById(location.hash.slice(1));"
    "if(e&&e.tagName==='DETAILS'){e.open=true;e.scrollIntoView();}}"
    "window.addEventListener('hashchange',openHash);";

static const char *const colors[DIFF_NCLASSES] = {"#adb5bd", "#2a6f97", "#b5179e",
						  "#e76f51", "#2b9348", "#d00000"};

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

static void cell_func(FILE *out, const struct diff_func *f)
{
	if (!f) {
		fprintf(out, "<td></td><td class=\"n\" data-v=\"0\"></td>");
		return;
	}
	fprintf(out, "<td>0x%llx</td><td class=\"n\">%llu</td>", (unsigned long long)f->addr,
		(unsigned long long)f->size);
}

static void sbs_row(FILE *out, const char *cls, int ai, const char *a, int bi, const char *b)
{
	fprintf(out, "<tr class=\"%s\"><td class=\"ln\">", cls);
	if (a)
		fprintf(out, "%d", ai + 1);
	fprintf(out, "</td><td class=\"o\">");
	if (a)
		diff_put_html_str(out, a);
	fprintf(out, "</td><td class=\"ln\">");
	if (b)
		fprintf(out, "%d", bi + 1);
	fprintf(out, "</td><td class=\"nw\">");
	if (b)
		diff_put_html_str(out, b);
	fprintf(out, "</td></tr>\n");
}

static void side_by_side(FILE *out, const struct diff_fdiff *d, size_t max_lines)
{
	fprintf(out, "<table class=\"sbs\">\n");
	size_t rows = 0;
	if (d->too_big) {
		fprintf(out, "<tr class=\"gap\"><td colspan=\"4\">more than 500 edits: both "
			     "listings in full</td></tr>\n");
		for (size_t i = 0; i < BT_MAX(d->na, d->nb) && rows < max_lines; i++, rows++)
			sbs_row(out, "chg", (int)i, i < d->na ? d->a[i] : NULL, (int)i,
				i < d->nb ? d->b[i] : NULL);
	} else {
		size_t i = 0;
		while (i < d->nops && rows < max_lines) {
			if (d->ops[i].op == '=') {
				/* context: 3 lines around changes, a gap row otherwise */
				size_t j = i;
				while (j < d->nops && d->ops[j].op == '=')
					j++;
				size_t head = i ? 3 : 0, tail = j < d->nops ? 3 : 0;
				for (size_t k = i; k < j && rows < max_lines; k++) {
					if (k - i >= head && j - k > tail) {
						if (k - i == head)
							fprintf(out,
								"<tr class=\"gap\"><td "
								"colspan=\"4\">&#8942; %zu "
								"equal</td></tr>\n",
								j - i - head - tail);
						continue;
					}
					const struct diff_op *p = &d->ops[k];
					sbs_row(out, "eq", p->ai, d->a[p->ai], p->bi, d->b[p->bi]);
					rows++;
				}
				i = j;
				continue;
			}
			size_t j = i, nd = 0, ni = 0;
			while (j < d->nops && d->ops[j].op != '=')
				*(d->ops[j++].op == '-' ? &nd : &ni) += 1;
			/* pair deletions with insertions row by row */
			const struct diff_op *dels[nd ? nd : 1], *ins[ni ? ni : 1];
			size_t a = 0, b = 0;
			for (size_t k = i; k < j; k++)
				if (d->ops[k].op == '-')
					dels[a++] = &d->ops[k];
				else
					ins[b++] = &d->ops[k];
			for (size_t k = 0; k < BT_MAX(nd, ni) && rows < max_lines; k++, rows++) {
				const struct diff_op *x = k < nd ? dels[k] : NULL;
				const struct diff_op *y = k < ni ? ins[k] : NULL;
				sbs_row(out,
					x && y ? "chg"
					: x    ? "del"
					       : "ins",
					x ? x->ai : 0, x ? d->a[x->ai] : NULL, y ? y->bi : 0,
					y ? d->b[y->bi] : NULL);
			}
			i = j;
		}
	}
	if (rows >= max_lines)
		fprintf(out,
			"<tr class=\"gap\"><td colspan=\"4\">truncated at %zu rows</td></tr>\n",
			max_lines);
	fprintf(out, "</table>\n");
}

enum bt_status diff_write_html(FILE *out, const struct diff_result *r,
			       const struct diff_write_opts *o)
{
	fprintf(out,
		"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		"<title>pretrans diff</title>\n<style>%s</style>\n<script>%s</script>\n"
		"</head><body>\n<h1>pretrans diff</h1>\n",
		css, js);
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

	/* which entries get a side-by-side diff */
	uint8_t *has = calloc(r->n ? r->n : 1, 1);
	if (!has)
		return BT_ERR_NOMEM;
	size_t ndet = 0, want = r->count[DIFF_CHANGED] + r->count[DIFF_RENAMED];
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < r->n && ndet < o->max_details; i++)
			if (r->e[i].cls == (pass ? DIFF_RENAMED : DIFF_CHANGED)) {
				has[i] = 1;
				ndet++;
			}

	fprintf(out, "<h2>Functions</h2>\n<div id=\"controls\">");
	for (int c = 0; c < DIFF_NCLASSES; c++)
		fprintf(out,
			"<label class=\"c-%s\"><input type=\"checkbox\" value=\"%s\"%s "
			"onchange=\"filt()\"> %s (%zu)</label>",
			diff_class_str(c), diff_class_str(c),
			(c == DIFF_IDENTICAL || c == DIFF_MOVED) ? "" : " checked",
			diff_class_str(c), r->count[c]);
	fprintf(out, "<input id=\"q\" placeholder=\"filter by name or file\" "
		     "oninput=\"filt()\"></div>\n");
	fprintf(out, "<div id=\"tablewrap\"><table id=\"funcs\"><thead><tr><th>function</th>"
		     "<th>class</th><th>file</th><th>old address</th><th class=\"n\">old "
		     "size</th><th>new address</th><th class=\"n\">new size</th></tr></thead>"
		     "<tbody>\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_entry *e = &r->e[i];
		const struct diff_func *f = e->new ? e->new : e->old;
		const char *cls = diff_class_str(e->cls);
		fprintf(out, "<tr data-key=\"");
		diff_put_html_str(out, f->key);
		fprintf(out, "\" data-cls=\"%s\"><td>", cls);
		if (has[i])
			fprintf(out, "<a href=\"#d%zu\">", i);
		if (e->cls == DIFF_RENAMED) {
			diff_put_html_str(out, e->old->key);
			fprintf(out, " &#8594; ");
		}
		diff_put_html_str(out, f->key);
		fprintf(out, "%s</td><td class=\"c-%s\">%s</td><td>", has[i] ? "</a>" : "", cls,
			cls);
		diff_put_html_str(out, f->file);
		fprintf(out, "</td>");
		cell_func(out, e->old);
		cell_func(out, e->new);
		fprintf(out, "</tr>\n");
	}
	fprintf(out, "</tbody></table></div>\n");

	fprintf(out, "<h2>Instruction diffs</h2>\n<p class=\"meta\">Addresses are normalised: "
		     "<code>self+off</code> inside the function, <code>symbol+off</code>, "
		     "<code>str:\"...\"</code> for string literals, <code>section+?</code> "
		     "where no symbol covers the target.");
	if (ndet < want)
		fprintf(out,
			" Side-by-side diffs for the first %zu of %zu changed/renamed "
			"functions only.",
			ndet, want);
	fprintf(out, "</p>\n");
	enum bt_status st = BT_OK;
	struct xlat_ctx *xctx = NULL;
	size_t nxlat = 0;
	if (o->listings && o->xlat && ndet && diff_xlat_ctx(r, &xctx) != BT_OK)
		xctx = NULL;
	for (size_t i = 0; i < r->n && st == BT_OK; i++) {
		if (!has[i])
			continue;
		const struct diff_entry *e = &r->e[i];
		struct diff_fdiff d;
		st = diff_fdiff_make(r, e, &d);
		if (st != BT_OK)
			break;
		fprintf(out, "<details id=\"d%zu\"><summary class=\"c-%s\">", i,
			diff_class_str(e->cls));
		diff_put_html_str(out, e->old->key);
		if (e->cls == DIFF_RENAMED) {
			fprintf(out, " &#8594; ");
			diff_put_html_str(out, e->new->key);
		}
		fprintf(out, " (%s, %zu &#8594; %zu instructions)</summary>\n",
			diff_class_str(e->cls), d.na, d.nb);
		side_by_side(out, &d, o->max_lines);
		diff_fdiff_fini(&d);
		if (xctx && e->cls == DIFF_CHANGED && nxlat < o->max_xlat &&
		    diff_fdiff_xlat(r, e, xctx, &d) == BT_OK) {
			nxlat++;
			fprintf(out,
				"<div class=\"meta\">translation (%zu &#8594; %zu lines)</div>\n",
				d.na, d.nb);
			side_by_side(out, &d, o->max_lines);
			diff_fdiff_fini(&d);
		}
		fprintf(out, "</details>\n");
	}
	if (xctx)
		xlat_destroy(xctx);
	free(has);
	fprintf(out, "</body></html>\n");
	if (st == BT_OK && ferror(out))
		st = BT_ERR_IO;
	return st;
}
