/*
 * The pretrans commands other than build (program sources, not library):
 * each takes the arguments after the command name and returns an exit code.
 */
#ifndef BT_PRETRANS_CMDS_H
#define BT_PRETRANS_CMDS_H

#include "db/tcdb.h"
#include "pretrans/base/status.h"

enum pretrans_exit {
	PRETRANS_EXIT_OK = 0,
	PRETRANS_EXIT_USAGE = 1,
	PRETRANS_EXIT_INPUT = 2,
	PRETRANS_EXIT_INTERNAL = 3,
	PRETRANS_EXIT_IO = 4,
	PRETRANS_EXIT_MISMATCH = 5,
};

int pretrans_exit_code(enum bt_status s);
int cmd_stats(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_xcheck(int argc, char **argv);

#endif
