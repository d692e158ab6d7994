/*
 * cpiotree: build a deterministic initrd from (destination path, contents)
 * pairs, independent of the order they are given: every parent directory
 * is added, members are sorted by path (a directory precedes its contents),
 * duplicates and unsafe paths are refused.  Used by mkinitrd and by any
 * host test that needs an initrd in memory.
 */
#ifndef BT_GUESTS_TOOLS_CPIOTREE_H
#define BT_GUESTS_TOOLS_CPIOTREE_H

#include <stddef.h>
#include <stdint.h>

#include "guests/tools/cpiow.h"
#include "pretrans/base/status.h"

struct cpiot_item;

struct cpiot {
	struct cpiot_item *items;
	size_t n, cap;
	char err[160]; /* why the last call failed */
};

void cpiot_init(struct cpiot *t);
void cpiot_fini(struct cpiot *t);

/*
 * Add a file at dest (relative, no "." / ".." / empty components, no
 * trailing slash).  The data is copied; mode holds permission bits only
 * (the type is added).  BT_ERR_INVALID for a bad path.
 */
enum bt_status cpiot_add_file(struct cpiot *t, const char *dest, const void *data, size_t size,
			      uint32_t mode);
/* Add the host file src at dest; 0755 if src is executable, else 0644. */
enum bt_status cpiot_add_host_file(struct cpiot *t, const char *dest, const char *src);

/*
 * Write the sorted tree (with parent directories 0755) and the trailer into
 * a fresh writer w (cpiow_init'ed by the caller).  BT_ERR_INVALID when a
 * path was given twice or both as a file and as a directory.
 */
enum bt_status cpiot_write(struct cpiot *t, struct cpiow *w);

#endif
