/*
 * The one growable-array helper of the tree (style rule 16).
 *
 * An array is three caller-owned fields: a pointer, a count and a capacity.
 * bt_vec_reserve() makes room for `need` elements, growing geometrically
 * (at least doubling, starting at `min_cap`) and checking every size
 * computation for overflow; the pointer and capacity change only on
 * success, so on failure the array is intact and still owned by the caller.
 *
 *   struct foo *v = NULL; size_t n = 0, cap = 0;
 *   if (!BT_VEC_RESERVE(v, cap, n + 1, 16))
 *           return BT_ERR_NOMEM;
 *   v[n++] = x;
 *   ...
 *   free(v);
 */
#ifndef BT_BASE_VEC_H
#define BT_BASE_VEC_H

#include <stdbool.h>
#include <stddef.h>

/* Make *p hold at least need elements of elem_size bytes; *cap is updated.
 * Returns false (nothing changed) when memory or size_t runs out. */
bool bt_vec_reserve(void **p, size_t *cap, size_t need, size_t elem_size, size_t min_cap);

/* The same for a typed pointer lvalue ptr and a size_t lvalue cap. */
#define BT_VEC_RESERVE(ptr, cap, need, min_cap)                                                    \
	bt_vec_reserve((void **)&(ptr), &(cap), (need), sizeof(*(ptr)), (min_cap))

#endif
