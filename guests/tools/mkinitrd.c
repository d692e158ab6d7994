/*
 * mkinitrd: write a deterministic newc cpio archive from DEST=SRC pairs.
 *
 *   mkinitrd -o initrd.cpio bin/bench=build/guests/user/bin/bench tests/01-hello=...
 *
 * Owns: only the command line and file output.  The archive is built by
 * cpiotree (parent directories, sorting, duplicate and path checks) and
 * read back with the guest's own reader before the tool reports success.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guests/lib/cpio.h"
#include "guests/tools/cpiotree.h"
#include "guests/tools/cpiow.h"

static void usage(void)
{
	fprintf(stderr, "usage: mkinitrd -o OUT.cpio DEST=SRC...\n"
			"  writes a newc cpio archive holding each SRC file at path DEST\n"
			"  (parent directories are added; output is sorted and deterministic)\n");
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	struct cpiot tree;
	struct cpiow w;
	size_t count;
	int rc = 1;

	cpiot_init(&tree);
	cpiow_init(&w);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			out = argv[++i];
			continue;
		}
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			usage();
			goto out_free;
		}
		*eq = '\0';
		if (cpiot_add_host_file(&tree, argv[i], eq + 1) != BT_OK) {
			fprintf(stderr, "mkinitrd: %s\n", tree.err);
			goto out_free;
		}
	}
	if (!out || tree.n == 0) {
		usage();
		goto out_free;
	}
	if (cpiot_write(&tree, &w) != BT_OK) {
		fprintf(stderr, "mkinitrd: %s\n", tree.err);
		goto out_free;
	}
	if (cpio_validate(w.buf, w.len, &count) != BT_OK) {
		fprintf(stderr,
			"mkinitrd: internal error: the written archive does not read back\n");
		goto out_free;
	}
	FILE *f = fopen(out, "wb");
	if (!f) {
		fprintf(stderr, "mkinitrd: cannot create %s: %s\n", out, strerror(errno));
		goto out_free;
	}
	if (fwrite(w.buf, 1, w.len, f) != w.len || fclose(f) != 0) {
		fprintf(stderr, "mkinitrd: cannot write %s\n", out);
		remove(out);
		goto out_free;
	}
	rc = 0;
out_free:
	cpiow_fini(&w);
	cpiot_fini(&tree);
	return rc;
}
