/*
 * cpiow: newc cpio writer for host tools and tests.
 *
 * Owns: a growing heap buffer holding the archive being written.
 * Invariants:
 *  1. w->len is always a multiple of 4 (every header, name and data block
 *     is padded), so every header starts 4-byte aligned as newc requires.
 *  2. Nothing is added after cpiow_finish().
 *  3. Header fields are deterministic (see cpiow.h).
 */
#include "guests/tools/cpiow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guests/lib/cpio.h"
#include "pretrans/base/vec.h"

void cpiow_init(struct cpiow *w)
{
	memset(w, 0, sizeof(*w));
	w->next_ino = 1;
}

void cpiow_fini(struct cpiow *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static enum bt_status cpiow_reserve(struct cpiow *w, size_t more)
{
	if (more > SIZE_MAX / 2 - w->len)
		return BT_ERR_NOMEM;
	return BT_VEC_RESERVE(w->buf, w->cap, w->len + more, 4096) ? BT_OK : BT_ERR_NOMEM;
}

static void cpiow_put(struct cpiow *w, const void *p, size_t n)
{
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
	while (w->len % 4)
		w->buf[w->len++] = 0;
}

static enum bt_status cpiow_member(struct cpiow *w, const char *name, uint32_t ino, uint32_t mode,
				   uint32_t nlink, const void *data, size_t size)
{
	char hdr[CPIO_HDR_SIZE + 1];
	size_t nlen = strlen(name) + 1;

	if (size > 0xffffffffu || nlen > 0xffffffffu)
		return BT_ERR_RANGE;
	BT_TRY(cpiow_reserve(w, CPIO_HDR_SIZE + nlen + size + 8));
	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 ino, mode, 0u, 0u, nlink, 0u, (unsigned)size, 0u, 0u, 0u, 0u, (unsigned)nlen, 0u);
	memcpy(w->buf + w->len, hdr, CPIO_HDR_SIZE);
	w->len += CPIO_HDR_SIZE;
	/* name directly after the 110-byte header, padded so data is aligned */
	memcpy(w->buf + w->len, name, nlen);
	w->len += nlen;
	while (w->len % 4)
		w->buf[w->len++] = 0;
	cpiow_put(w, data, size);
	return BT_OK;
}

enum bt_status cpiow_add(struct cpiow *w, const char *name, uint32_t mode, const void *data,
			 size_t size)
{
	if (!w || !name || !name[0] || w->finished || (size && !data))
		return BT_ERR_INVALID;
	if (strcmp(name, CPIO_TRAILER) == 0)
		return BT_ERR_INVALID;
	uint32_t nlink = (mode & CPIO_S_IFMT) == CPIO_S_IFDIR ? 2 : 1;
	return cpiow_member(w, name, w->next_ino++, mode, nlink, data, size);
}

enum bt_status cpiow_finish(struct cpiow *w)
{
	if (!w || w->finished)
		return BT_ERR_INVALID;
	BT_TRY(cpiow_member(w, CPIO_TRAILER, 0, 0, 1, NULL, 0));
	w->finished = 1;
	return BT_OK;
}
