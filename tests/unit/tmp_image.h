/*
 * Fixture for build tests: a scratch directory holding a copy of the
 * running test binary (a real gcc-built x86-64 ELF) as the image to build.
 */
#ifndef BT_TESTS_UNIT_TMP_IMAGE_H
#define BT_TESTS_UNIT_TMP_IMAGE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], image[128];

/* Create /tmp/<prefix>.XXXXXX and copy /proc/self/exe into it as "image". */
static int tmp_image_setup(const char *prefix)
{
	snprintf(dir, sizeof(dir), "/tmp/%s.XXXXXX", prefix);
	if (!mkdtemp(dir))
		return -1;
	snprintf(image, sizeof(image), "%s/image", dir);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "cp /proc/%d/exe '%s'", (int)getpid(), image);
	return system(cmd) == 0 ? 0 : -1;
}

static int tmp_image_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
