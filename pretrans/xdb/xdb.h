/*
 * The translator's block record (struct bt_block) and the database's
 * (struct tcdb_block) converted in one place (prefix xdb_): db/ knows
 * nothing of the translator and the translator nothing of db/, so whoever
 * moves blocks between them -- pretrans build's predicted pass, btvm's
 * database look-ups and --learn -- goes through here.
 *
 * Both directions copy pointers, not bytes: the code and pc map stay where
 * the source record has them.
 */
#ifndef BT_PRETRANS_XDB_XDB_H
#define BT_PRETRANS_XDB_XDB_H

#include "db/tcdb.h"
#include "pretrans/xlat/xlat.h"

_Static_assert(TCDB_MAX_EXITS == XLAT_MAX_EXITS, "a block's exits fit the database format");

/* xb (a translated block, not refused) as a database block of origin
 * (TCDB_ORIGIN_*); chunk placement fields zero. */
void xdb_to_row(const struct bt_block *xb, int origin, struct tcdb_block *row);

/* A database block (checked by db/ against the limits it was opened with)
 * as the translator's record (refusal XLAT_OK). */
void xdb_from_row(const struct tcdb_block *row, struct bt_block *xb);

#endif
