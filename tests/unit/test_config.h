/*
 * Unit tests that build or open translation databases never touch the
 * user's database key: test_private_config() points XDG_CONFIG_HOME at a
 * fresh temporary directory (a key is made there on first use) and removes
 * it at exit.  Call it first in main().
 */
#ifndef BT_TESTS_UNIT_TEST_CONFIG_H
#define BT_TESTS_UNIT_TEST_CONFIG_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char test_config_dir[64];

static void test_config_remove(void)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/btkern/db.key", test_config_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/btkern", test_config_dir);
	rmdir(p);
	rmdir(test_config_dir);
}

static void test_private_config(void)
{
	snprintf(test_config_dir, sizeof(test_config_dir), "/tmp/btkern-test-config-XXXXXX");
	if (!mkdtemp(test_config_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	setenv("XDG_CONFIG_HOME", test_config_dir, 1);
	atexit(test_config_remove);
}

#endif
