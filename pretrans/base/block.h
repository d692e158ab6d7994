/*
 * The block record: one translated block (or refused region) as every
 * stage holds it.  The translator fills it (pretrans/xlat: xlat_translate),
 * discovery keeps it (pretrans/discover.h), the database stores and reads
 * it back (db/tcdb.h struct tcdb_block wraps it with its row placement)
 * and the code cache installs it (runtime/cache: tcache_install; struct
 * tcache_block wraps it with its chaining and page links).  A stage's own
 * fields sit around the record in the stage's struct; the record moves
 * between stages by pointer or by one assignment, never field by field
 * (one exception: `pretrans build --reuse` indexes an old database in
 * compact entries, pretrans/reuse_int.h struct reuse_blk).
 *
 * It lives in the base because db/ may know only the base (docs/layers.md):
 * the values are the translator's (exit kinds, block flags, refusal codes:
 * pretrans/xlat/xlat.h), the database checks what it reads against the
 * counts its caller gives it (tcdb_prov.n_exit_kinds, n_refusals).
 * Architecture: docs/architecture.md "One block record".
 */
#ifndef BT_BASE_BLOCK_H
#define BT_BASE_BLOCK_H

#include "pretrans/base/types.h"

/* Exits a block holds at most (the translator's limit and the database
 * format's). */
#define BT_MAX_EXITS 4

/* An exit of a translated block. */
struct bt_exit {
	uint8_t kind;  /* enum xlat_exit_kind, never 0 */
	uint8_t flags; /* XLAT_EXIT_F_*: the translator's only (the exit stub
			* carries the same fact; the database does not store it) */
	uint8_t pad[2];
	uint32_t patch_off; /* offset of the rel32 to patch for chaining; ~0 if none */
	uint32_t stub_off;  /* offset of the unchained exit stub */
	gva_t target;	    /* guest target (direct exits, PRIV: the instruction) */
};

/*
 * A block.  code and pcmap point at bytes the holder owns (the translator's
 * arena until its next translation, a database read until the next call on
 * that database, the code cache's memory): copy what you keep.
 */
struct bt_block {
	gva_t guest_start;
	uint32_t guest_len;
	uint32_t n_insns;
	uint64_t guest_hash; /* xlat_hash_bytes() of the guest bytes */
	uint32_t flags;	     /* enum xlat_block_flags */
	uint32_t refusal;    /* enum xlat_refusal; 0: translated */
	gva_t refusal_addr;  /* the instruction that caused the refusal */

	const uint8_t *code;  /* host code */
	const uint8_t *pcmap; /* compact host-offset -> guest-offset map */
	uint32_t code_len;
	uint32_t pcmap_len;
	uint32_t n_exits;
	struct bt_exit exits[BT_MAX_EXITS];
};

#endif
