/*
 * --reuse: pairing NEW's functions with OLD's (reuse.h reuse_map_functions)
 * and the OLD addresses a block of NEW may have had (reuse_candidates),
 * for reuse_tmpl.c.  Pairing only proposes candidates: a wrong pair costs
 * a refused look-up, never a wrong block (reuse_tmpl.c checks the bytes).
 *
 * Invariant: r->fm is sorted by NEW start; built once before the workers
 * start, read-only after.
 */
#include "pretrans/reuse_int.h"

#include "pretrans/base/vec.h"
#include "pretrans/discover.h"

#include <stdlib.h>
#include <string.h>

struct fn {
	const char *name;
	gva_t addr;
	uint64_t size;
};

struct fn_list {
	struct fn *f;
	size_t n, cap;
	char **names; /* OLD's names, owned */
	size_t n_names, cap_names;
	enum bt_status s;
};

static int fn_cmp(const void *a, const void *b)
{
	const struct fn *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int old_fn(void *opaque, const struct tcdb_function *f)
{
	struct fn_list *l = opaque;
	if (f->kind != DISCOVER_FUNC || !f->name[0])
		return 0;
	char *name = strdup(f->name);
	if (!name || !BT_VEC_RESERVE(l->f, l->cap, l->n + 1, 1024) ||
	    !BT_VEC_RESERVE(l->names, l->cap_names, l->n_names + 1, 1024)) {
		free(name);
		l->s = BT_ERR_NOMEM;
		return 1;
	}
	l->names[l->n_names++] = name;
	l->f[l->n++] = (struct fn){.name = name, .addr = f->address, .size = f->size};
	return 0;
}

static int fmap_cmp(const void *a, const void *b)
{
	const struct reuse_fmap *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The one entry of g[0, n) with this size, or NULL (none or several). */
static const struct fn *unique_size(const struct fn *g, size_t n, uint64_t size)
{
	const struct fn *hit = NULL;
	for (size_t i = 0; i < n; i++)
		if (g[i].size == size) {
			if (hit)
				return NULL;
			hit = &g[i];
		}
	return hit;
}

/* Pair one name's functions: by rank when both sides have as many, else
 * those whose size is unique on both sides. */
static enum bt_status pair_group(struct reuse *r, size_t *cap, const struct fn *o, size_t no,
				 const struct fn *nw, size_t nn)
{
	for (size_t i = 0; i < nn; i++) {
		const struct fn *old = no == nn ? &o[i] : NULL;
		if (!old && unique_size(nw, nn, nw[i].size))
			old = unique_size(o, no, nw[i].size);
		if (!old || (old->addr == nw[i].addr && old->size == nw[i].size))
			continue;
		if (!BT_VEC_RESERVE(r->fm, *cap, r->n_fm + 1, 1024))
			return BT_ERR_NOMEM;
		r->fm[r->n_fm++] = (struct reuse_fmap){
		    .start = nw[i].addr,
		    .end = nw[i].addr + nw[i].size,
		    .delta = (int64_t)(old->addr - nw[i].addr),
		    .delta_end = (int64_t)(old->addr + old->size - nw[i].addr - nw[i].size)};
	}
	return BT_OK;
}

enum bt_status reuse_map_functions(struct reuse *r, const struct discover_plan *plan)
{
	struct fn_list ol = {0};
	struct fn *nw = NULL;
	size_t nn = 0, cap = 0;
	enum bt_status s = tcdb_foreach_function(r->db, old_fn, &ol);
	if (s == BT_OK)
		s = ol.s;
	if (s == BT_OK && !(nw = calloc(plan->n ? plan->n : 1, sizeof(*nw))))
		s = BT_ERR_NOMEM;
	if (s != BT_OK)
		goto out;
	for (size_t i = 0; i < plan->n; i++)
		if (plan->f[i].kind == DISCOVER_FUNC && plan->f[i].name && plan->f[i].name[0])
			nw[nn++] = (struct fn){.name = plan->f[i].name,
					       .addr = plan->f[i].start,
					       .size = plan->f[i].end - plan->f[i].start};
	qsort(ol.f, ol.n, sizeof(*ol.f), fn_cmp);
	qsort(nw, nn, sizeof(*nw), fn_cmp);
	for (size_t i = 0, j = 0; i < ol.n && j < nn && s == BT_OK;) {
		int c = strcmp(ol.f[i].name, nw[j].name);
		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0) {
			j++;
			continue;
		}
		size_t ie = i, je = j;
		while (ie < ol.n && !strcmp(ol.f[ie].name, ol.f[i].name))
			ie++;
		while (je < nn && !strcmp(nw[je].name, nw[j].name))
			je++;
		s = pair_group(r, &cap, ol.f + i, ie - i, nw + j, je - j);
		i = ie;
		j = je;
	}
	qsort(r->fm, r->n_fm, sizeof(*r->fm), fmap_cmp);
out:
	for (size_t i = 0; i < ol.n_names; i++)
		free(ol.names[i]);
	free(ol.names);
	free(ol.f);
	free(nw);
	return s;
}

/* The paired function holding va, or NULL. */
static const struct reuse_fmap *fmap_find(const struct reuse *r, gva_t va)
{
	size_t lo = 0, hi = r->n_fm;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->fm[mid].start <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && va < r->fm[lo - 1].end ? &r->fm[lo - 1] : NULL;
}

/* The OLD addresses where the block at va of NEW may be (at most 2, not va
 * itself): at the same offset from its paired function's start, and from
 * its end (the blocks after a change that grew or shrank the function). */
size_t reuse_candidates(const struct reuse *r, gva_t va, gva_t ova[2])
{
	const struct reuse_fmap *fm = fmap_find(r, va);
	size_t n = 0;
	if (fm && fm->delta)
		ova[n++] = va + (gva_t)fm->delta;
	if (fm && fm->delta_end && fm->delta_end != fm->delta)
		ova[n++] = va + (gva_t)fm->delta_end;
	return n;
}
