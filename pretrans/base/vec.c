/* The growable-array helper (vec.h). */
#include "pretrans/base/vec.h"

#include <stdint.h>
#include <stdlib.h>

bool bt_vec_reserve(void **p, size_t *cap, size_t need, size_t elem_size, size_t min_cap)
{
	if (need <= *cap)
		return true;
	if (elem_size == 0)
		return false;
	size_t nc = *cap ? *cap : (min_cap ? min_cap : 1);
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return false;
		nc *= 2;
	}
	if (nc > SIZE_MAX / elem_size)
		return false;
	void *np = realloc(*p, nc * elem_size);
	if (!np)
		return false;
	*p = np;
	*cap = nc;
	return true;
}
