/*
 * cpio: a reader for "newc" cpio archives (magic 070701, trailer
 * "TRAILER!!!"), freestanding: used by the guest kernel on its initrd and by
 * host tools and tests.  The archive is untrusted input: every header field
 * and length is checked against the buffer; a malformed archive yields
 * BT_ERR_FORMAT, never an out-of-bounds read.
 */
#ifndef BT_GUESTS_LIB_CPIO_H
#define BT_GUESTS_LIB_CPIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pretrans/base/status.h"

#define CPIO_HDR_SIZE 110u
#define CPIO_TRAILER  "TRAILER!!!"

/* File type bits of cpio_entry.mode (same values as POSIX st_mode). */
#define CPIO_S_IFMT  0170000u
#define CPIO_S_IFREG 0100000u
#define CPIO_S_IFDIR 0040000u

/* One member, pointing into the archive buffer (nothing is copied). */
struct cpio_entry {
	const char *name; /* NUL-terminated inside the archive, as stored */
	size_t name_len;  /* strlen(name) */
	const void *data; /* file contents (size bytes) */
	size_t size;
	uint32_t mode;
	uint32_t ino;
	uint32_t mtime;
	uint32_t nlink;
};

/* Iterator state; caller-owned, initialise with cpio_iter_init. */
struct cpio_iter {
	const uint8_t *buf;
	size_t len;
	size_t off;
	bool done;
};

void cpio_iter_init(struct cpio_iter *it, const void *buf, size_t len);

/*
 * Next member: BT_OK and *out filled, BT_ERR_NOTFOUND after the trailer,
 * BT_ERR_FORMAT when the archive is malformed or truncated (the iterator
 * then stays failed).
 */
enum bt_status cpio_iter_next(struct cpio_iter *it, struct cpio_entry *out);

/*
 * Find a member by path.  Leading "/" and "./" are ignored on both sides, so
 * "/bin/bench" finds "bin/bench".  BT_ERR_NOTFOUND when absent, BT_ERR_FORMAT
 * when the archive is malformed before the member is reached.
 */
enum bt_status cpio_find(const void *buf, size_t len, const char *path, struct cpio_entry *out);

/* Walk the whole archive: BT_OK and the member count (trailer excluded). */
enum bt_status cpio_validate(const void *buf, size_t len, size_t *count);

/* Strip leading "/" and "./" components (pointer into the same string). */
const char *cpio_path_norm(const char *path);

#endif
