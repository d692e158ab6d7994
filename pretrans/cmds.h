/*
 * The pretrans commands other than build (program sources, not library):
 * each takes the arguments after the command name and returns an exit code.
 */
#ifndef BT_PRETRANS_CMDS_H
#define BT_PRETRANS_CMDS_H

#include "db/tcdb.h"
#include "pretrans/base/status.h"
#include "pretrans/cli.h"

/* The "schema" key of `pretrans stats --json` (docs/cli.md); bumped when a
 * key changes meaning or goes away. */
#define PRETRANS_STATS_SCHEMA "btkern-pretrans-stats/1"

int cmd_stats(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_xcheck(int argc, char **argv);

#endif
