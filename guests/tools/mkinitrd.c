/*
 * mkinitrd: write a deterministic newc cpio archive from DEST=SRC pairs.
 *
 *   mkinitrd -o initrd.cpio bin/bench=build/guests/user/bench tests/01-hello=...
 *
 * Owns: command-line parsing, reading the source files, adding every parent
 * directory of each DEST, sorting members by path (so a directory precedes
 * its contents) and writing the archive with cpiow.  The written archive is
 * read back with the guest's own reader before the tool reports success.
 * Invariants: DEST paths are relative, without "." / ".." components and
 * unique; files keep their executable bit (0755 else 0644); directories 0755.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guests/lib/cpio.h"
#include "guests/tools/cpiow.h"

struct mkinitrd_item {
	char *dest;
	const char *src; /* NULL for a directory */
};

static int mkinitrd_cmp(const void *a, const void *b)
{
	const struct mkinitrd_item *x = a, *y = b;

	return strcmp(x->dest, y->dest);
}

static void usage(void)
{
	fprintf(stderr, "usage: mkinitrd -o OUT.cpio DEST=SRC...\n"
			"  writes a newc cpio archive holding each SRC file at path DEST\n"
			"  (parent directories are added; output is sorted and deterministic)\n");
}

static int mkinitrd_valid_dest(const char *d)
{
	if (!d[0] || d[0] == '/')
		return 0;
	for (const char *p = d; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
		if (e && !*p)
			return 0; /* trailing slash */
	}
	return 1;
}

static int mkinitrd_read(const char *path, uint8_t **data, size_t *size, uint32_t *mode)
{
	struct stat stbuf;
	FILE *f = fopen(path, "rb");

	if (!f) {
		fprintf(stderr, "mkinitrd: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &stbuf) != 0 || !S_ISREG(stbuf.st_mode)) {
		fprintf(stderr, "mkinitrd: %s is not a regular file\n", path);
		fclose(f);
		return -1;
	}
	*size = (size_t)stbuf.st_size;
	*data = malloc(*size ? *size : 1);
	if (!*data || fread(*data, 1, *size, f) != *size) {
		fprintf(stderr, "mkinitrd: cannot read %s\n", path);
		free(*data);
		fclose(f);
		return -1;
	}
	fclose(f);
	*mode = CPIO_S_IFREG | ((stbuf.st_mode & 0111) ? 0755u : 0644u);
	return 0;
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	struct mkinitrd_item *items = calloc((size_t)argc * 16 + 1, sizeof(*items));
	size_t n = 0;
	int rc = 1;

	if (!items)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			out = argv[++i];
			continue;
		}
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			usage();
			goto out_items;
		}
		char *dest = strndup(argv[i], (size_t)(eq - argv[i]));
		if (!dest || !mkinitrd_valid_dest(dest)) {
			fprintf(stderr, "mkinitrd: bad destination path in '%s'\n", argv[i]);
			free(dest);
			goto out_items;
		}
		/* parent directories: at most 15 per file (checked below) */
		int depth = 0;
		for (char *s = strchr(dest, '/'); s; s = strchr(s + 1, '/')) {
			if (++depth > 15) {
				fprintf(stderr, "mkinitrd: '%s' is nested too deeply\n", dest);
				free(dest);
				goto out_items;
			}
			char *dir = strndup(dest, (size_t)(s - dest));
			if (!dir)
				goto out_items;
			items[n++] = (struct mkinitrd_item){.dest = dir, .src = NULL};
		}
		items[n++] = (struct mkinitrd_item){.dest = dest, .src = eq + 1};
	}
	if (!out || n == 0) {
		usage();
		goto out_items;
	}
	qsort(items, n, sizeof(*items), mkinitrd_cmp);

	struct cpiow w;
	cpiow_init(&w);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(items[i].dest, items[i - 1].dest) == 0) {
			if (!items[i].src && !items[i - 1].src)
				continue; /* shared parent directory */
			fprintf(stderr, "mkinitrd: '%s' given twice (or as file and directory)\n",
				items[i].dest);
			goto out_writer;
		}
		enum bt_status st;
		if (!items[i].src) {
			st = cpiow_add(&w, items[i].dest, CPIO_S_IFDIR | 0755u, NULL, 0);
		} else {
			uint8_t *data;
			size_t size;
			uint32_t mode;
			if (mkinitrd_read(items[i].src, &data, &size, &mode) != 0)
				goto out_writer;
			st = cpiow_add(&w, items[i].dest, mode, data, size);
			free(data);
		}
		if (st != BT_OK) {
			fprintf(stderr, "mkinitrd: cannot add %s: %s\n", items[i].dest,
				bt_status_str(st));
			goto out_writer;
		}
	}
	size_t count;
	if (cpiow_finish(&w) != BT_OK || cpio_validate(w.buf, w.len, &count) != BT_OK) {
		fprintf(stderr,
			"mkinitrd: internal error: the written archive does not read back\n");
		goto out_writer;
	}
	FILE *f = fopen(out, "wb");
	if (!f) {
		fprintf(stderr, "mkinitrd: cannot create %s: %s\n", out, strerror(errno));
		goto out_writer;
	}
	if (fwrite(w.buf, 1, w.len, f) != w.len || fclose(f) != 0) {
		fprintf(stderr, "mkinitrd: cannot write %s\n", out);
		remove(out);
		goto out_writer;
	}
	rc = 0;
out_writer:
	cpiow_fini(&w);
out_items:
	for (size_t i = 0; i < n; i++)
		free(items[i].dest);
	free(items);
	return rc;
}
