/* Block records between the translator and the database (xdb.h). */
#include "pretrans/xdb/xdb.h"

#include <string.h>

void xdb_to_row(const struct bt_block *xb, int origin, struct tcdb_block *row)
{
	*row = (struct tcdb_block){
	    .guest_start = xb->guest_start,
	    .guest_len = xb->guest_len,
	    .n_insns = xb->n_insns,
	    .guest_hash = xb->guest_hash,
	    .flags = xb->flags,
	    .code = xb->code,
	    .code_len = xb->code_len,
	    .n_exits = xb->n_exits,
	    .pcmap = xb->pcmap,
	    .pcmap_len = xb->pcmap_len,
	    .origin = origin,
	};
	for (uint32_t i = 0; i < xb->n_exits; i++)
		row->exits[i] = (struct tcdb_exit){.kind = xb->exits[i].kind,
						   .patch_off = xb->exits[i].patch_off,
						   .stub_off = xb->exits[i].stub_off,
						   .target = xb->exits[i].target};
}

void xdb_from_row(const struct tcdb_block *row, struct bt_block *xb)
{
	memset(xb, 0, sizeof(*xb));
	xb->guest_start = row->guest_start;
	xb->guest_len = row->guest_len;
	xb->n_insns = row->n_insns;
	xb->guest_hash = row->guest_hash;
	xb->flags = row->flags;
	xb->refusal = XLAT_OK;
	xb->code = row->code;
	xb->code_len = row->code_len;
	xb->n_exits = row->n_exits;
	for (uint32_t i = 0; i < row->n_exits; i++)
		xb->exits[i] = (struct bt_exit){.kind = row->exits[i].kind,
						.patch_off = row->exits[i].patch_off,
						.stub_off = row->exits[i].stub_off,
						.target = row->exits[i].target};
	xb->pcmap = row->pcmap;
	xb->pcmap_len = row->pcmap_len;
}
