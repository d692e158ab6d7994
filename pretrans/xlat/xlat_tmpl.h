/*
 * Relocatable translation templates (docs/kmod.md).  A template is a block
 * as xlat_translate() produces it plus one record for every place where the
 * host code (or an exit record) holds a value derived from the block's guest
 * address or from a displacement/immediate of its guest bytes.  Instantiating
 * it at another guest address, with guest bytes that differ only inside those
 * displacement/immediate fields (a relocated module, a function that moved),
 * patches the recorded places and gives exactly the bytes xlat_translate()
 * would give for the new address and bytes; when it cannot promise that (a
 * value needs another instruction form, the block would end elsewhere at the
 * new page offset, bytes differ outside the recorded fields), it refuses and
 * the caller translates.
 *
 * Invariants
 *  1. A record's value is (XLAT_RV_PC ? block start : 0) + (XLAT_RV_FIELD ?
 *     the guest field, sign- or zero-extended : 0) + addend, truncated with
 *     XLAT_RV_T32/T16; a CODE record's host field holds value >> shift in
 *     width bytes, an EXIT record is exits[host_off].target.
 *  2. XLAT_RV_FORM records carry the value's class at translation time (which
 *     of zero/s8/s16/s32/u32/u8/u16 it is): the encoder's choice of form
 *     depends on nothing else, so an equal class means an equal form.
 *  3. Templates come only from blocks translated without XLAT_OPT_STEP
 *     (kernel or user code) that did not end because of the instruction
 *     after them.  A user block's code also depends on which direct exits
 *     leave its first page (those probe the user IBL table at an index of
 *     their target: XLAT_RELOC_UIBL records, and XLAT_RV_PAGE on the exit's
 *     record pins the relation).
 *  4. Records read from a database are untrusted: xlat_tmpl_check() bounds
 *     them before use.
 */
#ifndef BT_XLAT_XLAT_TMPL_H
#define BT_XLAT_XLAT_TMPL_H

#include "pretrans/xlat/xlat.h"

enum xlat_reloc_kind {
	XLAT_RELOC_CODE = 1, /* a field of the host code */
	XLAT_RELOC_EXIT = 2, /* exits[host_off].target */
	XLAT_RELOC_UIBL = 3, /* a 4-byte field of the host code holding addend +
			      * VCPU_UIBL_INDEX(exits[goff].target) * 16 (the user
			      * IBL entry a direct exit probes; fixed form) */
	XLAT_RELOC_TLB = 4,  /* a field of the host code derived from an absolute
			      * address's TLB entry (xe_probe_abs): shift 0, a
			      * displacement holding VCPU_TLB_INDEX(value) * 32 plus
			      * a constant; shift n (1..16), the page of the last byte
			      * of an n-byte access at value, XLAT_RV_FORM with cls
			      * 0, 1, 2 for an s8, s32 or wider page (tlb_class) */
};

enum xlat_reloc_flags {
	XLAT_RV_PC = 1u << 0,	  /* + the block's guest start */
	XLAT_RV_FIELD = 1u << 1,  /* + the guest field goff, gw bytes */
	XLAT_RV_SIGNED = 1u << 2, /* the guest field is sign-extended */
	XLAT_RV_T32 = 1u << 3,	  /* value truncated to 32 bits */
	XLAT_RV_T16 = 1u << 4,	  /* value truncated to 16 bits */
	XLAT_RV_FORM = 1u << 6,	  /* the host encoding's form depends on the value's class */
	XLAT_RV_PAGE = 1u << 7,	  /* EXIT: the code depends on whether the target is on the
				   * block's first page (cls: 1 if it is); a change is FORM */
};

struct xlat_reloc {
	uint32_t host_off; /* CODE: offset of the field in the code; EXIT: exit index */
	uint8_t kind;	   /* enum xlat_reloc_kind */
	uint8_t width;	   /* CODE: field bytes 0 (no field, class only), 1, 2, 4 or 8 */
	uint8_t shift;	   /* CODE: the field holds value >> shift (0 or 32) */
	uint8_t flags;	   /* enum xlat_reloc_flags */
	uint16_t goff;	   /* XLAT_RV_FIELD: the field's offset in the guest bytes;
			    * XLAT_RELOC_UIBL: the exit index */
	uint8_t gw;	   /* XLAT_RV_FIELD: its width, 1, 2, 4 or 8 */
	uint8_t cls;	   /* XLAT_RV_FORM: class of the value (xlat_value_class);
			    * XLAT_RV_PAGE: 1 if the target is on the block's page */
	uint64_t addend;
};

#define XLAT_RELOC_BYTES     24 /* one record serialised (xlat_relocs_encode) */
#define XLAT_TMPL_MAX_RELOCS 1024

/* A template: what xlat_translate_tmpl() returns (storage in the context
 * until the next translation), or what a database holds. */
struct xlat_tmpl {
	gva_t guest_start;
	uint32_t guest_len;
	uint32_t flags;	      /* enum xlat_block_flags */
	const uint8_t *guest; /* the guest bytes translated */
	const uint8_t *code;
	uint32_t code_len;
	const struct bt_exit *exits;
	uint32_t n_exits;
	const struct xlat_reloc *relocs;
	uint32_t n_relocs;
};

/* Why a block has no template, or a template was not instantiated. */
enum xlat_tmpl_result {
	XLAT_TMPL_OK = 0,
	XLAT_TMPL_REFUSED,   /* the block itself was refused (block.refusal) */
	XLAT_TMPL_NOT_RELOC, /* translated, but not describable (cut by the next insn,
			      * the step option, an unrecorded site) */
	XLAT_TMPL_BYTES,     /* guest bytes differ outside the recorded fields */
	XLAT_TMPL_FORM,	     /* a value needs another instruction form */
	XLAT_TMPL_PAGE,	     /* at the new page offset the block would end elsewhere */
	XLAT_NTMPL_RESULTS
};
const char *xlat_tmpl_result_str(enum xlat_tmpl_result r);

/* Translate the block at va as xlat_translate() does (b is identical) and
 * describe it as a template in t (t->code == b->code ...).  *res is OK or
 * REFUSED/NOT_RELOC; storage is the context's until its next translation. */
enum bt_status xlat_translate_tmpl(struct xlat_ctx *ctx, const struct xlat_source *src, gva_t va,
				   struct bt_block *b, struct xlat_tmpl *t,
				   enum xlat_tmpl_result *res);

/* Instantiate t at va for the guest bytes `guest` (t->guest_len of them):
 * code (t->code_len bytes) and exits (t->n_exits) receive the block that
 * xlat_translate() would produce there; its pc map is t's (guest offsets are
 * relative), its guest hash xlat_hash_bytes(guest, len).  Returns OK or why
 * not (BYTES, FORM, PAGE); nothing is promised about code/exits then. */
enum xlat_tmpl_result xlat_tmpl_instantiate(const struct xlat_tmpl *t, gva_t va,
					    const uint8_t *guest, uint8_t *code,
					    struct bt_exit *exits);

/* Which guest bytes of t may differ (bit i of mask[i / 8]; mask holds
 * (t->guest_len + 7) / 8 bytes): the recorded fields. */
void xlat_tmpl_field_mask(const struct xlat_tmpl *t, uint8_t *mask);

/* Class of a value as the encoder sees it (invariant 2). */
uint8_t xlat_value_class(uint64_t v);

/* Serialise n records into out (n * XLAT_RELOC_BYTES bytes), and back
 * (BT_ERR_FORMAT if len is not a multiple or n exceeds cap). */
void xlat_relocs_encode(const struct xlat_reloc *r, uint32_t n, uint8_t *out);
enum bt_status xlat_relocs_decode(const uint8_t *p, size_t len, struct xlat_reloc *out,
				  uint32_t cap, uint32_t *n);
/* Bounds of an untrusted template's records (BT_ERR_FORMAT if one is off). */
enum bt_status xlat_tmpl_check(const struct xlat_tmpl *t);

#endif
