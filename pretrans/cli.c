/*
 * What every pretrans command shares: the exit status of a bt_status, help
 * and usage-error printing.  Depends on nothing else of pretrans, so the
 * commands (cmd_*.c) and the dispatcher (main.c) all use it without calling
 * each other.
 */
#include "pretrans/cli.h"
#include "pretrans/base/log.h"

#include <stdio.h>
#include <string.h>

int pretrans_exit_code(enum bt_status s)
{
	return bt_status_exit(s);
}

/* Help goes to stdout; a usage error is one line on stderr (the first
 * line of the text) plus where to find more. */
int pretrans_usage(const char *text, bool error)
{
	if (!error) {
		fputs(text, stdout);
		return 0;
	}
	const char *nl = strchr(text, '\n');
	bt_cli_usage("%.*s", (int)(nl ? nl - text : (long)strlen(text)), text);
	return PRETRANS_EXIT_USAGE;
}

bool pretrans_want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}
