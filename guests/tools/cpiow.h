/*
 * cpiow: a host-side writer of "newc" cpio archives (the format read by
 * guests/lib/cpio.h).  Output is deterministic: members get inode numbers in
 * the order they are added, mtime 0, uid/gid 0, so the same inputs always
 * give the same bytes.
 */
#ifndef BT_GUESTS_TOOLS_CPIOW_H
#define BT_GUESTS_TOOLS_CPIOW_H

#include <stddef.h>
#include <stdint.h>

#include "pretrans/base/status.h"

struct cpiow {
	uint8_t *buf;
	size_t len;
	size_t cap;
	uint32_t next_ino;
	int finished;
};

void cpiow_init(struct cpiow *w);
void cpiow_fini(struct cpiow *w);

/* Append a member; mode carries the type bits (CPIO_S_IFREG / CPIO_S_IFDIR). */
enum bt_status cpiow_add(struct cpiow *w, const char *name, uint32_t mode, const void *data,
			 size_t size);
/* Append the trailer; the archive is then w->buf[0..w->len). */
enum bt_status cpiow_finish(struct cpiow *w);

#endif
