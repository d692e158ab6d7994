/*
 * Matching and classification of the functions of two prepared sides, the
 * reuse predicate, the line diff used for instruction-level listings and
 * the per-file summary.
 *
 * Invariants
 *  1. Every function of each side appears in exactly one entry.
 *  2. Match by key first; among the unmatched, an old and a new function
 *     with the same normalised hash and size are paired as renamed (in key
 *     order when several share a hash), the rest are removed / added.
 *  3. The result refers into the sides; they must outlive it.
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/base/vec.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *diff_class_str(enum diff_class c)
{
	static const char *const names[DIFF_NCLASSES] = {
	    "identical", "moved", "changed", "renamed", "added", "removed",
	};
	return (unsigned)c < DIFF_NCLASSES ? names[c] : "?";
}

int diff_entry_reusable(const struct diff_entry *e)
{
	return e->old && e->new &&
	       (e->cls == DIFF_IDENTICAL || e->cls == DIFF_MOVED || e->cls == DIFF_RENAMED);
}

enum bt_status diff_buf_printf(struct diff_buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return BT_ERR_INTERNAL;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return BT_OK;
		}
		if ((size_t)n > SIZE_MAX - 1 - b->len ||
		    !BT_VEC_RESERVE(b->p, b->cap, b->len + (size_t)n + 1, 256))
			return BT_ERR_NOMEM;
	}
}

void diff_buf_fini(struct diff_buf *b)
{
	free(b->p);
	*b = (struct diff_buf){0};
}

struct cand {
	const struct diff_func *f;
	uint8_t side;
};

static int cmp_cand(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	if (a->f->norm_hash != b->f->norm_hash)
		return a->f->norm_hash < b->f->norm_hash ? -1 : 1;
	if (a->f->size != b->f->size)
		return a->f->size < b->f->size ? -1 : 1;
	if (a->side != b->side)
		return a->side - b->side;
	return strcmp(a->f->key, b->f->key);
}

static const char *entry_key(const struct diff_entry *e)
{
	return e->new ? e->new->key : e->old->key;
}

static int cmp_entry(const void *pa, const void *pb)
{
	return strcmp(entry_key(pa), entry_key(pb));
}

static int naive_differs(const struct diff_func *a, const struct diff_func *b)
{
	return a->addr != b->addr || a->size != b->size || memcmp(a->bytes, b->bytes, a->size);
}

enum bt_status diff_compare(const struct diff_side *old, const struct diff_side *new_,
			    struct diff_result *out)
{
	memset(out, 0, sizeof(*out));
	out->old = old;
	out->new = new_;
	size_t cap = old->n + new_->n;
	out->e = calloc(cap ? cap : 1, sizeof(*out->e));
	struct cand *c = calloc(cap ? cap : 1, sizeof(*c));
	if (!out->e || !c) {
		free(c);
		free(out->e);
		out->e = NULL;
		return BT_ERR_NOMEM;
	}
	size_t nc = 0, i = 0, j = 0;
	/* Both sides are sorted by key: merge. */
	while (i < old->n || j < new_->n) {
		int k = i >= old->n ? 1 : j >= new_->n ? -1 : strcmp(old->f[i].key, new_->f[j].key);
		if (k < 0) {
			c[nc++] = (struct cand){&old->f[i++], 0};
		} else if (k > 0) {
			c[nc++] = (struct cand){&new_->f[j++], 1};
		} else {
			const struct diff_func *a = &old->f[i++], *b = &new_->f[j++];
			struct diff_entry *e = &out->e[out->n++];
			e->old = a;
			e->new = b;
			/* Equal bytes are not enough: a relative call at another
			 * address, or an ET_REL field relocated against another
			 * symbol, goes elsewhere.  The normalised streams decide. */
			if (a->norm_hash != b->norm_hash || a->size != b->size)
				e->cls = DIFF_CHANGED;
			else if (!memcmp(a->bytes, b->bytes, a->size))
				e->cls = DIFF_IDENTICAL;
			else
				e->cls = DIFF_MOVED;
			e->naive = (uint8_t)naive_differs(a, b);
		}
	}
	/* Renames among the unmatched. */
	qsort(c, nc, sizeof(*c), cmp_cand);
	for (size_t a = 0; a < nc;) {
		size_t b = a + 1;
		while (b < nc && c[b].f->norm_hash == c[a].f->norm_hash &&
		       c[b].f->size == c[a].f->size)
			b++;
		size_t o = a, n = a;
		while (n < b && c[n].side == 0)
			n++;
		size_t n_end = b, o_end = n;
		for (; o < o_end && n < n_end; o++, n++) {
			struct diff_entry *e = &out->e[out->n++];
			*e = (struct diff_entry){DIFF_RENAMED, c[o].f, c[n].f, 1};
		}
		for (; o < o_end; o++)
			out->e[out->n++] = (struct diff_entry){DIFF_REMOVED, c[o].f, NULL, 1};
		for (; n < n_end; n++)
			out->e[out->n++] = (struct diff_entry){DIFF_ADDED, NULL, c[n].f, 1};
		a = b;
	}
	free(c);
	qsort(out->e, out->n, sizeof(*out->e), cmp_entry);
	for (size_t k = 0; k < out->n; k++) {
		out->count[out->e[k].cls]++;
		out->naive_flagged += out->e[k].naive;
	}
	return BT_OK;
}

/* Does name denote e: its key, or the raw name of either side? */
static int entry_named(const struct diff_entry *e, const char *name)
{
	return (e->old && (!strcmp(e->old->key, name) || !strcmp(e->old->name, name))) ||
	       (e->new && (!strcmp(e->new->key, name) || !strcmp(e->new->name, name)));
}

enum bt_status diff_result_restrict(struct diff_result *r, char *const *names, size_t n,
				    const char **missing)
{
	*missing = NULL;
	for (size_t j = 0; j < n; j++) {
		size_t i = 0;
		while (i < r->n && !entry_named(&r->e[i], names[j]))
			i++;
		if (i == r->n) {
			*missing = names[j];
			return BT_ERR_NOTFOUND;
		}
	}
	size_t k = 0;
	memset(r->count, 0, sizeof(r->count));
	r->naive_flagged = 0;
	for (size_t i = 0; i < r->n; i++) {
		int keep = 0;
		for (size_t j = 0; j < n && !keep; j++)
			keep = entry_named(&r->e[i], names[j]);
		if (!keep)
			continue;
		r->e[k] = r->e[i];
		r->count[r->e[k].cls]++;
		r->naive_flagged += r->e[k].naive;
		k++;
	}
	r->n = k;
	return BT_OK;
}

int diff_result_differs(const struct diff_result *r)
{
	return r->count[DIFF_CHANGED] + r->count[DIFF_RENAMED] + r->count[DIFF_ADDED] +
		   r->count[DIFF_REMOVED] !=
	       0;
}

void diff_result_fini(struct diff_result *r)
{
	free(r->e);
	memset(r, 0, sizeof(*r));
}

/* ---- Myers line diff ---- */

enum bt_status diff_lines(char *const *a, size_t na, char *const *b, size_t nb, size_t max_d,
			  struct diff_op **ops_out, size_t *nops_out)
{
	long n = (long)na, m = (long)nb;
	if ((size_t)(n + m) < max_d)
		max_d = (size_t)(n + m);
	long dmax = (long)max_d, off = dmax + 1, w = 2 * dmax + 3;
	/* trace + d * w: V at the start of round d, indexed by off + k. */
	int *trace = malloc((size_t)(dmax + 1) * (size_t)w * sizeof(int));
	int *v = calloc((size_t)w, sizeof(int));
	struct diff_op *ops = malloc((size_t)(n + m + 1) * sizeof(*ops));
	enum bt_status st = BT_ERR_NOMEM;
	if (!trace || !v || !ops)
		goto err_free;
	long d_found = -1;
	for (long d = 0; d <= dmax && d_found < 0; d++) {
		memcpy(trace + d * w, v, (size_t)w * sizeof(int));
		for (long k = -d; k <= d; k += 2) {
			long x;
			if (k == -d || (k != d && v[off + k - 1] < v[off + k + 1]))
				x = v[off + k + 1];
			else
				x = v[off + k - 1] + 1;
			long y = x - k;
			while (x < n && y < m && !strcmp(a[x], b[y]))
				x++, y++;
			v[off + k] = (int)x;
			if (x >= n && y >= m) {
				d_found = d;
				break;
			}
		}
	}
	st = BT_ERR_RANGE;
	if (d_found < 0)
		goto err_free;
	size_t nops = 0;
	long x = n, y = m;
	for (long d = d_found; d >= 0; d--) {
		const int *vd = trace + d * w;
		long k = x - y, pk;
		if (k == -d || (k != d && vd[off + k - 1] < vd[off + k + 1]))
			pk = k + 1;
		else
			pk = k - 1;
		long px = d ? vd[off + pk] : 0, py = d ? px - pk : 0;
		while (x > px && y > py)
			ops[nops++] = (struct diff_op){'=', (int)--x, (int)--y};
		if (d == 0)
			break;
		if (x == px)
			ops[nops++] = (struct diff_op){'+', -1, (int)py};
		else
			ops[nops++] = (struct diff_op){'-', (int)px, -1};
		x = px;
		y = py;
	}
	for (size_t i = 0; i < nops / 2; i++) {
		struct diff_op t = ops[i];
		ops[i] = ops[nops - 1 - i];
		ops[nops - 1 - i] = t;
	}
	*ops_out = ops;
	*nops_out = nops;
	ops = NULL;
	st = BT_OK;
err_free:
	free(ops);
	free(v);
	free(trace);
	return st;
}

/* ---- summary ---- */

static const char *group_name(const struct diff_entry *e, int by_dir, char *buf, size_t len)
{
	const struct diff_func *f = e->new ? e->new : e->old;
	const char *file = f->file[0] ? f->file : "(unknown)";
	if (!by_dir)
		return file;
	const char *slash = strrchr(file, '/');
	if (!slash)
		return "(no directory)";
	size_t n = (size_t)(slash - file);
	if (n >= len)
		n = len - 1;
	memcpy(buf, file, n);
	buf[n] = 0;
	return buf;
}

static int cmp_group(const void *pa, const void *pb)
{
	const struct diff_group *a = pa, *b = pb;
	size_t ca = a->total - a->count[DIFF_IDENTICAL] - a->count[DIFF_MOVED];
	size_t cb = b->total - b->count[DIFF_IDENTICAL] - b->count[DIFF_MOVED];
	if (ca != cb)
		return ca > cb ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int cmp_str_ptr(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

enum bt_status diff_summary(const struct diff_result *r, int by_dir, struct diff_group **out,
			    size_t *nout)
{
	/* Names of every entry, sorted and made unique, then counted. */
	char **names = calloc(r->n ? r->n : 1, sizeof(*names));
	if (!names)
		return BT_ERR_NOMEM;
	char buf[512];
	size_t nn = 0;
	enum bt_status st = BT_OK;
	for (size_t i = 0; i < r->n; i++) {
		names[nn] = strdup(group_name(&r->e[i], by_dir, buf, sizeof(buf)));
		if (!names[nn]) {
			st = BT_ERR_NOMEM;
			goto err_free_names;
		}
		nn++;
	}
	qsort(names, nn, sizeof(*names), cmp_str_ptr);
	struct diff_group *g = calloc(nn ? nn : 1, sizeof(*g));
	if (!g) {
		st = BT_ERR_NOMEM;
		goto err_free_names;
	}
	size_t ng = 0;
	for (size_t i = 0; i < nn; i++)
		if (!ng || strcmp(g[ng - 1].name, names[i]))
			g[ng++].name = names[i];
	for (size_t i = 0; i < r->n; i++) {
		const char *nm = group_name(&r->e[i], by_dir, buf, sizeof(buf));
		size_t lo = 0, hi = ng;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			int c = strcmp(g[mid].name, nm);
			if (c == 0) {
				lo = mid;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		g[lo].count[r->e[i].cls]++;
		g[lo].total++;
	}
	/* Keep the group names alive: make each group own its string. */
	for (size_t i = 0; i < ng; i++) {
		g[i].name = strdup(g[i].name);
		if (!g[i].name) {
			for (size_t k = 0; k < i; k++)
				free((char *)g[k].name);
			free(g);
			st = BT_ERR_NOMEM;
			goto err_free_names;
		}
	}
	qsort(g, ng, sizeof(*g), cmp_group);
	*out = g;
	*nout = ng;
err_free_names:
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	return st;
}
