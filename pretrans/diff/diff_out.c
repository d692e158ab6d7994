/*
 * Text and JSON writers of a diff result, and the per-function listing diff
 * they share with the HTML writer.
 *
 * Invariants
 *  1. The JSON output follows schema DIFF_JSON_SCHEMA (docs/diff.md): keys
 *     are only ever added within a schema version, never renamed/removed.
 *  2. Output order is deterministic: entries in key order, groups by number
 *     of real changes then name.
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/xlat/xlat.h"
#include "pretrans/xcheck/xcheck.h"

#include <stdlib.h>
#include <string.h>

void diff_write_opts_default(struct diff_write_opts *o)
{
	*o = (struct diff_write_opts){.listings = 1,
				      .xlat = 1,
				      .all = 0,
				      .max_details = 2000,
				      .max_xlat = 300,
				      .max_lines = 400};
}

/* Listing of one side's function: guest code (ctx NULL) or its translation. */
static enum bt_status side_listing(const struct diff_side *s, const struct diff_func *f,
				   struct xlat_ctx *ctx, char ***lines, size_t *n)
{
	return ctx ? diff_func_xlat_listing(s, f, ctx, lines, n)
		   : diff_func_listing(s, f, lines, n);
}

/* Both sides' listings and their line diff (too_big past 500 edits);
 * guest listings come with each line's offset. */
static enum bt_status fdiff(const struct diff_result *r, const struct diff_entry *e,
			    struct xlat_ctx *ctx, struct diff_fdiff *d)
{
	memset(d, 0, sizeof(*d));
	if (e->old)
		BT_TRY(ctx ? side_listing(r->old, e->old, ctx, &d->a, &d->na)
			   : diff_func_listing_offs(r->old, e->old, &d->a, &d->aoff, &d->na));
	if (e->new) {
		enum bt_status st =
		    ctx ? side_listing(r->new, e->new, ctx, &d->b, &d->nb)
			: diff_func_listing_offs(r->new, e->new, &d->b, &d->boff, &d->nb);
		if (st != BT_OK) {
			diff_fdiff_fini(d);
			return st;
		}
	}
	enum bt_status st = diff_lines(d->a, d->na, d->b, d->nb, 500, &d->ops, &d->nops);
	if (st == BT_ERR_RANGE) {
		d->too_big = 1;
		return BT_OK;
	}
	if (st != BT_OK)
		diff_fdiff_fini(d);
	return st;
}

enum bt_status diff_fdiff_make(const struct diff_result *r, const struct diff_entry *e,
			       struct diff_fdiff *d)
{
	return fdiff(r, e, NULL, d);
}

enum bt_status diff_fdiff_xlat(const struct diff_result *r, const struct diff_entry *e,
			       struct xlat_ctx *xctx, struct diff_fdiff *d)
{
	if (!xctx)
		return BT_ERR_INVALID;
	return fdiff(r, e, xctx, d);
}

enum bt_status diff_xlat_ctx(const struct diff_result *r, struct xlat_ctx **out)
{
	if (r->old->rel || r->new->rel)
		return BT_ERR_UNSUPPORTED; /* unrelocated code: nothing to compare */
	struct xlat_options opts = {.flags = XLAT_OPT_CROSSCHECK, .checker = &xcheck_checker_ops};
	return xlat_create(&opts, out);
}

void diff_fdiff_fini(struct diff_fdiff *d)
{
	free(d->a);
	free(d->b);
	free(d->aoff);
	free(d->boff);
	free(d->ops);
	memset(d, 0, sizeof(*d));
}

void diff_put_json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void diff_put_html_str(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '&':
			fputs("&amp;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		default:
			fputc(*s, out);
		}
	}
}

/* ---- text ---- */

static void text_side(FILE *out, const char *label, const struct diff_side *s)
{
	char bid[129];
	elfimg_build_id_hex(s->img, bid);
	fprintf(out, "  %s: %s", label, s->path);
	if (s->db_path)
		fprintf(out, " (image %s)", s->image_path);
	fprintf(out, ", build-id %s, %zu functions%s\n", bid[0] ? bid : "none", s->n,
		s->has_file_syms ? "" : ", no source-file symbols");
}

/* Colours of the text report (git's defaults), or none. */
struct paint {
	const char *meta, *frag, *old, *new, *bold, *off;
};

static struct paint paint_of(const struct diff_write_opts *o)
{
	if (!o->color)
		return (struct paint){"", "", "", "", "", ""};
	return (struct paint){"\033[1m", "\033[36m", "\033[31m", "\033[32m", "\033[1m", "\033[m"};
}

#define HUNK_CONTEXT 3

/* "name+0x1a" for the hunk header of a guest diff: the offset of the
 * first line of side (a or b) at or after op i, else the function's end. */
static void hunk_at(const struct diff_fdiff *d, const struct diff_func *f, int new_side, size_t i,
		    char *buf, size_t n)
{
	uint64_t off = f ? f->size : 0;
	const uint32_t *offs = new_side ? d->boff : d->aoff;
	for (size_t k = i; k < d->nops; k++) {
		int idx = new_side ? d->ops[k].bi : d->ops[k].ai;
		if (idx >= 0) {
			if (offs)
				off = offs[idx];
			break;
		}
	}
	snprintf(buf, n, "%s+0x%llx", f ? f->name : "?", (unsigned long long)off);
}

/* Unified hunks (git's format) with HUNK_CONTEXT lines of context.  Guest
 * diffs (offsets known): the header names symbol+offset on each side and
 * every line starts with its offset in the function; translation diffs:
 * line numbers, and the block each hunk is in after the @@. */
static void text_hunks(FILE *out, const struct diff_fdiff *d, const struct diff_entry *e,
		       size_t max_lines, const struct paint *c)
{
	if (d->too_big) {
		fprintf(out,
			"%s@@ more than 500 line edits: %zu -> %zu lines (pretrans show lists "
			"each side) @@%s\n",
			c->frag, d->na, d->nb, c->off);
		return;
	}
	int guest = d->aoff || d->boff;
	size_t shown = 0;
	for (size_t i = 0; i < d->nops && shown < max_lines;) {
		if (d->ops[i].op == '=') {
			i++;
			continue;
		}
		/* a hunk: from HUNK_CONTEXT before this change to HUNK_CONTEXT after
		 * the last change that is at most 2 * HUNK_CONTEXT further */
		size_t start = i > HUNK_CONTEXT ? i - HUNK_CONTEXT : 0, last = i;
		for (size_t k = i + 1; k < d->nops && k <= last + 2 * HUNK_CONTEXT; k++)
			if (d->ops[k].op != '=')
				last = k;
		size_t end = BT_MIN(d->nops, last + 1 + HUNK_CONTEXT);
		size_t na = 0, nb = 0, la = 0, lb = 0;
		int seen_a = 0, seen_b = 0;
		for (size_t k = start; k < end; k++) {
			if (d->ops[k].ai >= 0 && d->ops[k].op != '+') {
				na++;
				if (!seen_a++)
					la = (size_t)d->ops[k].ai + 1;
			}
			if (d->ops[k].bi >= 0 && d->ops[k].op != '-') {
				nb++;
				if (!seen_b++)
					lb = (size_t)d->ops[k].bi + 1;
			}
		}
		if (guest) {
			char ha[300], hb[300];
			hunk_at(d, e->old, 0, start, ha, sizeof(ha));
			hunk_at(d, e->new, 1, start, hb, sizeof(hb));
			fprintf(out, "%s@@ -%s,%zu +%s,%zu @@%s\n", c->frag, ha, na, hb, nb,
				c->off);
		} else {
			/* git's funcname: the block the hunk starts in */
			const char *ctx = "";
			for (size_t k = start + 1; k-- > 0;) {
				const struct diff_op *p = &d->ops[k];
				const char *line = p->bi >= 0 ? d->b[p->bi] : d->a[p->ai];
				if (!strncmp(line, "block ", 6)) {
					ctx = line;
					break;
				}
			}
			fprintf(out, "%s@@ -%zu,%zu +%zu,%zu @@%s %s\n", c->frag, la, na, lb, nb,
				c->off, ctx);
		}
		for (size_t k = start; k < end && shown < max_lines; k++, shown++) {
			const struct diff_op *p = &d->ops[k];
			const char *line = p->op == '+' ? d->b[p->bi] : d->a[p->ai];
			const char *col = p->op == '+' ? c->new : p->op == '-' ? c->old : "";
			char op = p->op == '=' ? ' ' : p->op;
			if (guest) {
				const uint32_t *offs = p->op == '-' ? d->aoff : d->boff;
				int idx = p->op == '-' ? p->ai : p->bi;
				fprintf(out, "%s%c%6x:  %s%s\n", col, op,
					offs && idx >= 0 ? offs[idx] : 0, line, *col ? c->off : "");
			} else {
				fprintf(out, "%s%c%s%s\n", col, op, line, *col ? c->off : "");
			}
		}
		i = end;
	}
	if (shown >= max_lines)
		fprintf(out, "%s@@ truncated at %zu lines @@%s\n", c->frag, max_lines, c->off);
}

static void text_file_header(FILE *out, const struct diff_entry *e, const char *suffix,
			     const char *what, const struct paint *c)
{
	fprintf(out, "%sdiff --pretrans a/%s%s b/%s%s%s\n", c->meta, e->old->key, suffix,
		e->new->key, suffix, c->off);
	fprintf(out, "%s--- a/%s%s\t%#llx, %llu bytes%s%s\n", c->meta, e->old->key, suffix,
		(unsigned long long)e->old->addr, (unsigned long long)e->old->size, what, c->off);
	fprintf(out, "%s+++ b/%s%s\t%#llx, %llu bytes%s%s\n", c->meta, e->new->key, suffix,
		(unsigned long long)e->new->addr, (unsigned long long)e->new->size, what, c->off);
}

static void text_listing(FILE *out, const struct diff_result *r, const struct diff_entry *e,
			 struct xlat_ctx *xctx, const struct diff_write_opts *o)
{
	struct paint c = paint_of(o);
	struct diff_fdiff d;
	text_file_header(out, e, "", "", &c);
	if (diff_fdiff_make(r, e, &d) != BT_OK) {
		fprintf(out, "%s@@ listing unavailable: out of memory @@%s\n", c.frag, c.off);
		return;
	}
	text_hunks(out, &d, e, o->max_lines, &c);
	diff_fdiff_fini(&d);
	if (!xctx)
		return;
	text_file_header(out, e, ".xlat", ", translated", &c);
	if (diff_fdiff_xlat(r, e, xctx, &d) != BT_OK) {
		fprintf(out, "%s@@ translation unavailable @@%s\n", c.frag, c.off);
		return;
	}
	text_hunks(out, &d, e, o->max_lines, &c);
	diff_fdiff_fini(&d);
}

static void text_entry(FILE *out, const struct diff_entry *e)
{
	const struct diff_func *f = e->new ? e->new : e->old;
	if (e->cls == DIFF_RENAMED)
		fprintf(out, "  %-40s -> %s", e->old->key, e->new->key);
	else
		fprintf(out, "  %-40s", f->key);
	if (e->old && e->new && e->old->size != e->new->size)
		fprintf(out, "  size %llu -> %llu", (unsigned long long)e->old->size,
			(unsigned long long)e->new->size);
	else
		fprintf(out, "  size %llu", (unsigned long long)f->size);
	if (f->file[0])
		fprintf(out, "  [%s%s]", f->file, f->file_guessed ? "?" : "");
	fputc('\n', out);
}

static const char *files_source(const struct diff_result *r)
{
	if (r->new->files_from_dwarf || r->old->files_from_dwarf)
		return "DWARF compilation units";
	if (r->new->has_file_syms || r->old->has_file_syms)
		return "STT_FILE symbols, '?' = guessed from neighbours";
	return "no debug info or file symbols";
}

static enum bt_status text_groups(FILE *out, const struct diff_result *r, int by_dir, size_t max)
{
	struct diff_group *g;
	size_t ng;
	BT_TRY(diff_summary(r, by_dir, &g, &ng));
	size_t real = 0;
	for (size_t i = 0; i < ng; i++)
		if (g[i].total != g[i].count[DIFF_IDENTICAL] + g[i].count[DIFF_MOVED])
			real++;
	if (real) {
		fprintf(out, "\nby source %s (%s; %zu with real changes):\n",
			by_dir ? "directory" : "file", files_source(r), real);
		fprintf(out, "  %-40s %7s %7s %7s %7s %7s %7s\n", by_dir ? "directory" : "file",
			"changed", "renamed", "added", "removed", "moved", "ident");
		for (size_t i = 0; i < ng && i < max; i++) {
			if (g[i].total == g[i].count[DIFF_IDENTICAL] + g[i].count[DIFF_MOVED])
				continue;
			fprintf(out, "  %-40s %7zu %7zu %7zu %7zu %7zu %7zu\n", g[i].name,
				g[i].count[DIFF_CHANGED], g[i].count[DIFF_RENAMED],
				g[i].count[DIFF_ADDED], g[i].count[DIFF_REMOVED],
				g[i].count[DIFF_MOVED], g[i].count[DIFF_IDENTICAL]);
		}
		if (real > max)
			fprintf(out, "  ... %zu more\n", real - max);
	}
	for (size_t i = 0; i < ng; i++)
		free((char *)g[i].name);
	free(g);
	return BT_OK;
}

enum bt_status diff_write_text(FILE *out, const struct diff_result *r,
			       const struct diff_write_opts *o)
{
	fprintf(out, "pretrans diff\n");
	text_side(out, "old", r->old);
	text_side(out, "new", r->new);
	size_t total = r->n;
	fprintf(out, "functions: %zu entries:", total);
	for (int c = 0; c < DIFF_NCLASSES; c++)
		fprintf(out, " %s %zu%s", diff_class_str(c), r->count[c],
			c + 1 < DIFF_NCLASSES ? "," : "\n");
	size_t real = r->count[DIFF_CHANGED] + r->count[DIFF_ADDED] + r->count[DIFF_REMOVED] +
		      r->count[DIFF_RENAMED];
	fprintf(out, "really changed: %zu functions; a naive `objdump -d | diff` would flag %zu\n",
		real, r->naive_flagged);
	struct xlat_ctx *xctx = NULL;
	if (o->listings && o->xlat && r->count[DIFF_CHANGED] && diff_xlat_ctx(r, &xctx) != BT_OK)
		xctx = NULL;
	if (o->listings && r->count[DIFF_CHANGED])
		fprintf(out, "translations: %s\n",
			xctx ? "compared for changed functions (after each guest diff)"
			     : "not compared");
	if (real == 0 && r->count[DIFF_MOVED] == 0)
		fprintf(out, "the two images have the same code\n");

	static const enum diff_class order[] = {DIFF_CHANGED, DIFF_RENAMED, DIFF_ADDED,
						DIFF_REMOVED, DIFF_MOVED,   DIFF_IDENTICAL};
	for (size_t oi = 0; oi < BT_ARRAY_SIZE(order); oi++) {
		enum diff_class c = order[oi];
		if (!r->count[c] || ((c == DIFF_MOVED || c == DIFF_IDENTICAL) && !o->all))
			continue;
		fprintf(out, "\n%s (%zu):\n", diff_class_str(c), r->count[c]);
		for (size_t i = 0; i < r->n; i++)
			if (r->e[i].cls == c)
				text_entry(out, &r->e[i]);
	}

	BT_TRY(text_groups(out, r, 0, 40));
	if (r->new->files_from_dwarf || r->old->files_from_dwarf)
		BT_TRY(text_groups(out, r, 1, 25));

	if (o->listings && r->count[DIFF_CHANGED]) {
		fprintf(out, "\ninstruction-level diffs of changed functions "
			     "(addresses normalised to symbol+offset):\n");
		size_t nx = 0;
		for (size_t i = 0; i < r->n; i++)
			if (r->e[i].cls == DIFF_CHANGED)
				text_listing(out, r, &r->e[i], nx++ < o->max_xlat ? xctx : NULL, o);
		if (xctx && nx > o->max_xlat)
			fprintf(out,
				"\n(translation diffs shown for the first %zu of %zu changed "
				"functions)\n",
				o->max_xlat, nx);
	}
	if (xctx)
		xlat_destroy(xctx);
	return ferror(out) ? BT_ERR_IO : BT_OK;
}

/* ---- JSON ---- */

static void json_side(FILE *out, const struct diff_side *s)
{
	char bid[129], sha[2 * SHA256_LEN + 1];
	elfimg_build_id_hex(s->img, bid);
	sha256_hex(s->img->sha256, sha);
	fprintf(out, "{\"path\": ");
	diff_put_json_str(out, s->path);
	fprintf(out, ", \"image\": ");
	diff_put_json_str(out, s->image_path);
	fprintf(out, ", \"database\": ");
	if (s->db_path)
		diff_put_json_str(out, s->db_path);
	else
		fputs("null", out);
	fprintf(out, ", \"build_id\": \"%s\", \"sha256\": \"%s\", \"functions\": %zu}", bid, sha,
		s->n);
}

static void json_func(FILE *out, const struct diff_func *f)
{
	if (!f) {
		fputs("null", out);
		return;
	}
	fprintf(out, "{\"name\": ");
	diff_put_json_str(out, f->name);
	fprintf(out, ", \"addr\": \"0x%llx\", \"size\": %llu, \"norm_hash\": \"%016llx\"}",
		(unsigned long long)f->addr, (unsigned long long)f->size,
		(unsigned long long)f->norm_hash);
}

static void json_counts(FILE *out, const size_t *count)
{
	for (int c = 0; c < DIFF_NCLASSES; c++)
		fprintf(out, "\"%s\": %zu, ", diff_class_str(c), count[c]);
}

static void json_ops(FILE *out, const struct diff_fdiff *d, size_t max_lines)
{
	if (d->too_big) {
		fputs("null", out);
		return;
	}
	fputc('[', out);
	for (size_t k = 0; k < d->nops && k < max_lines; k++) {
		const struct diff_op *p = &d->ops[k];
		fprintf(out, "%s[\"%c\", ", k ? ", " : "", p->op);
		diff_put_json_str(out, p->op == '+' ? d->b[p->bi] : d->a[p->ai]);
		fputc(']', out);
	}
	fputc(']', out);
}

static enum bt_status json_groups(FILE *out, const struct diff_result *r, int by_dir)
{
	struct diff_group *g;
	size_t ng;
	BT_TRY(diff_summary(r, by_dir, &g, &ng));
	fprintf(out, "[");
	for (size_t i = 0; i < ng; i++) {
		fprintf(out, "%s\n {\"name\": ", i ? "," : "");
		diff_put_json_str(out, g[i].name);
		fputs(", ", out);
		json_counts(out, g[i].count);
		fprintf(out, "\"total\": %zu}", g[i].total);
		free((char *)g[i].name);
	}
	free(g);
	fprintf(out, "]");
	return BT_OK;
}

enum bt_status diff_write_json(FILE *out, const struct diff_result *r,
			       const struct diff_write_opts *o)
{
	fprintf(out, "{\n\"schema\": \"%s\",\n\"old\": ", DIFF_JSON_SCHEMA);
	json_side(out, r->old);
	fprintf(out, ",\n\"new\": ");
	json_side(out, r->new);
	struct xlat_ctx *xctx = NULL;
	if (o->listings && o->xlat && r->count[DIFF_CHANGED] && diff_xlat_ctx(r, &xctx) != BT_OK)
		xctx = NULL;
	fprintf(out, ",\n\"translations_compared\": %s,\n\"summary\": {", xctx ? "true" : "false");
	json_counts(out, r->count);
	fprintf(out, "\"total\": %zu, \"naive_flagged\": %zu},\n\"files\": ", r->n,
		r->naive_flagged);

	BT_TRY(json_groups(out, r, 0));
	fprintf(out, ",\n\"directories\": ");
	BT_TRY(json_groups(out, r, 1));
	fprintf(out, ",\n\"files_from\": \"%s\"",
		r->new->files_from_dwarf || r->old->files_from_dwarf ? "dwarf"
		: r->new->has_file_syms || r->old->has_file_syms     ? "symtab"
								     : "none");
	fprintf(out, ",\n\"functions\": [");
	size_t details = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_entry *e = &r->e[i];
		const struct diff_func *f = e->new ? e->new : e->old;
		fprintf(out, "%s\n {\"key\": ", i ? "," : "");
		diff_put_json_str(out, f->key);
		fprintf(out, ", \"class\": \"%s\", \"file\": ", diff_class_str(e->cls));
		diff_put_json_str(out, f->file);
		fprintf(out,
			", \"naive\": %s, \"reusable\": %s, \"old\": ", e->naive ? "true" : "false",
			diff_entry_reusable(e) ? "true" : "false");
		json_func(out, e->old);
		fprintf(out, ", \"new\": ");
		json_func(out, e->new);
		if (e->cls == DIFF_CHANGED && o->listings && details < o->max_details) {
			details++;
			struct diff_fdiff d;
			fprintf(out, ", \"diff\": ");
			if (diff_fdiff_make(r, e, &d) == BT_OK) {
				json_ops(out, &d, o->max_lines);
				diff_fdiff_fini(&d);
			} else {
				fputs("null", out);
			}
			if (xctx && details <= o->max_xlat) {
				fprintf(out, ", \"xlat_diff\": ");
				if (diff_fdiff_xlat(r, e, xctx, &d) == BT_OK) {
					json_ops(out, &d, o->max_lines);
					diff_fdiff_fini(&d);
				} else {
					fputs("null", out);
				}
			}
		}
		fputc('}', out);
	}
	fprintf(out, "\n]\n}\n");
	if (xctx)
		xlat_destroy(xctx);
	return ferror(out) ? BT_ERR_IO : BT_OK;
}
