/*
 * Shared by the pretrans commands: exit statuses (documented in
 * docs/pretrans.md), the bt_status -> exit status rule, help and usage
 * errors.  Program sources, not library: main.c and cmd_*.c include it.
 */
#ifndef BT_PRETRANS_CLI_H
#define BT_PRETRANS_CLI_H

#include <stdbool.h>

#include "pretrans/base/status.h"

enum pretrans_exit {
	PRETRANS_EXIT_OK = 0,
	PRETRANS_EXIT_USAGE = 2, /* BT_EXIT_USAGE: the same as bad input */
	PRETRANS_EXIT_INPUT = 2,
	PRETRANS_EXIT_INTERNAL = 3,
	PRETRANS_EXIT_IO = 4,
	PRETRANS_EXIT_MISMATCH = 5,
};

int pretrans_exit_code(enum bt_status s);
/* Help (error false) goes to stdout, exit 0; a usage error is the first
 * line of text on stderr plus where to find more, exit PRETRANS_EXIT_USAGE. */
int pretrans_usage(const char *text, bool error);
/* True when any argument is --help or -h. */
bool pretrans_want_help(int argc, char **argv);

#endif
