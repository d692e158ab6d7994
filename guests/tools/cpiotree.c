/*
 * cpiotree: order-independent, deterministic initrd construction.
 *
 * Owns: a list of (path, bytes, mode) items; directories are derived from
 * the file paths at write time.
 * Invariants:
 *  1. Paths in the list are validated (cpiot_valid_path) when added.
 *  2. cpiot_write emits members in strcmp order of their paths, each
 *     directory once, so the archive depends only on the set of inputs.
 *  3. t->err describes the last failure of a public call.
 */
#include "guests/tools/cpiotree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guests/lib/cpio.h"
#include "pretrans/base/vec.h"

#define CPIOT_MAX_DEPTH 32

struct cpiot_item {
	char *path;
	uint8_t *data; /* NULL for a directory */
	size_t size;
	uint32_t mode; /* full mode: type and permissions */
};

static enum bt_status cpiot_fail(struct cpiot *t, enum bt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum bt_status cpiot_fail(struct cpiot *t, enum bt_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	return st;
}

void cpiot_init(struct cpiot *t)
{
	memset(t, 0, sizeof(*t));
}

void cpiot_fini(struct cpiot *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->items[i].path);
		free(t->items[i].data);
	}
	free(t->items);
	memset(t, 0, sizeof(*t));
}

static int cpiot_valid_path(const char *d)
{
	int depth = 0;

	if (!d || !d[0] || d[0] == '/')
		return 0;
	for (const char *p = d;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (++depth > CPIOT_MAX_DEPTH)
			return 0;
		if (!e)
			return 1;
		p = e + 1;
	}
}

static enum bt_status cpiot_push(struct cpiot *t, char *path, uint8_t *data, size_t size,
				 uint32_t mode)
{
	if (!BT_VEC_RESERVE(t->items, t->cap, t->n + 1, 32))
		return BT_ERR_NOMEM;
	t->items[t->n++] =
	    (struct cpiot_item){.path = path, .data = data, .size = size, .mode = mode};
	return BT_OK;
}

enum bt_status cpiot_add_file(struct cpiot *t, const char *dest, const void *data, size_t size,
			      uint32_t mode)
{
	if (!cpiot_valid_path(dest))
		return cpiot_fail(t, BT_ERR_INVALID, "bad destination path '%s'", dest ? dest : "");
	if (size && !data)
		return cpiot_fail(t, BT_ERR_INVALID, "no data for '%s'", dest);
	char *path = strdup(dest);
	uint8_t *copy = malloc(size ? size : 1);
	if (!path || !copy) {
		free(path);
		free(copy);
		return cpiot_fail(t, BT_ERR_NOMEM, "out of memory");
	}
	if (size)
		memcpy(copy, data, size);
	enum bt_status st = cpiot_push(t, path, copy, size, CPIO_S_IFREG | (mode & 07777));
	if (st != BT_OK) {
		free(path);
		free(copy);
		return cpiot_fail(t, st, "out of memory");
	}
	return BT_OK;
}

enum bt_status cpiot_add_host_file(struct cpiot *t, const char *dest, const char *src)
{
	struct stat sb;
	FILE *f = fopen(src, "rb");

	if (!f)
		return cpiot_fail(t, BT_ERR_IO, "cannot open %s: %s", src, strerror(errno));
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fclose(f);
		return cpiot_fail(t, BT_ERR_IO, "%s is not a regular file", src);
	}
	size_t size = (size_t)sb.st_size;
	uint8_t *data = malloc(size ? size : 1);
	if (!data || fread(data, 1, size, f) != size) {
		free(data);
		fclose(f);
		return cpiot_fail(t, BT_ERR_IO, "cannot read %s", src);
	}
	fclose(f);
	enum bt_status st = cpiot_add_file(t, dest, data, size, (sb.st_mode & 0111) ? 0755 : 0644);
	free(data);
	return st;
}

static int cpiot_cmp(const void *a, const void *b)
{
	const struct cpiot_item *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	/* same path: directories first, so duplicates are adjacent and ordered */
	return (int)((x->mode & CPIO_S_IFMT) == CPIO_S_IFREG) -
	       (int)((y->mode & CPIO_S_IFMT) == CPIO_S_IFREG);
}

enum bt_status cpiot_write(struct cpiot *t, struct cpiow *w)
{
	struct cpiot all;
	enum bt_status st = BT_OK;

	/* files plus one directory item per parent path (duplicates merged below) */
	cpiot_init(&all);
	for (size_t i = 0; i < t->n && st == BT_OK; i++) {
		struct cpiot_item *it = &t->items[i];
		st = cpiot_push(&all, it->path, it->data, it->size, it->mode);
		for (const char *s = strchr(it->path, '/'); s && st == BT_OK;
		     s = strchr(s + 1, '/')) {
			char *dir = strndup(it->path, (size_t)(s - it->path));
			st = dir ? cpiot_push(&all, dir, NULL, 0, CPIO_S_IFDIR | 0755)
				 : BT_ERR_NOMEM;
			if (st != BT_OK)
				free(dir);
		}
	}
	if (st != BT_OK) {
		st = cpiot_fail(t, st, "out of memory");
		goto out_all;
	}
	qsort(all.items, all.n, sizeof(*all.items), cpiot_cmp);
	for (size_t i = 0; i < all.n; i++) {
		struct cpiot_item *it = &all.items[i];
		if (i > 0 && strcmp(it->path, all.items[i - 1].path) == 0) {
			if (!it->data && !all.items[i - 1].data)
				continue; /* a parent shared by several files */
			st =
			    cpiot_fail(t, BT_ERR_INVALID,
				       "'%s' given twice (or as a file and a directory)", it->path);
			goto out_all;
		}
		st = cpiow_add(w, it->path, it->mode, it->data, it->size);
		if (st != BT_OK) {
			st = cpiot_fail(t, st, "cannot add '%s': %s", it->path, bt_status_str(st));
			goto out_all;
		}
	}
	st = cpiow_finish(w);
	if (st != BT_OK)
		st = cpiot_fail(t, st, "cannot finish the archive");
out_all:
	/* all.items shares the file items of t; free only the directory paths */
	for (size_t i = 0; i < all.n; i++)
		if (!all.items[i].data)
			free(all.items[i].path);
	free(all.items);
	return st;
}
