/*
 * Relocatable translation templates (xlat_tmpl.h, docs/kmod.md): the
 * recorder the emitter and the manglers call while a block is translated
 * with xlat_translate_tmpl(), and instantiation.
 *
 * How a record is made: the mangler knows where each value it hands the
 * encoder comes from (the block's address, a displacement or immediate of the
 * guest instruction, both) and says so (struct xe_val).  xe_note() decodes the
 * host instruction just emitted to find which bytes hold the value, checks
 * they do, and records the field with the value's addend and class.
 *
 * Invariants
 *  1. A block is a template only if every exit with a guest target says how
 *     the target derives (XV_SET), every noted field was found in the host
 *     bytes holding the noted value, and the block did not end because of the
 *     instruction after it; otherwise tm->bad and no template.
 *  2. Copied guest instructions (class copy) keep their displacement and
 *     immediate fields at the same place: recorded as verbatim fields, except
 *     shift/rotate counts (liveness depends on a zero count: not a field, so a
 *     different count is a byte mismatch and refused).
 *  3. Guest bytes outside the recorded fields must be equal for an
 *     instantiation: the decoder, the classes and liveness see the same
 *     instructions; only the recorded values differ.
 */
#include "pretrans/xlat/xlat_int.h"

#include "pretrans/base/le.h"

#include <string.h>

_Static_assert((int)XV_PC == (int)XLAT_RV_PC && (int)XV_FIELD == (int)XLAT_RV_FIELD &&
		   (int)XV_SIGNED == (int)XLAT_RV_SIGNED && (int)XV_T32 == (int)XLAT_RV_T32 &&
		   (int)XV_T16 == (int)XLAT_RV_T16,
	       "one encoding of a value's derivation");
#define XV_DERIVE (XV_PC | XV_FIELD | XV_SIGNED | XV_T32 | XV_T16)

const char *xlat_tmpl_result_str(enum xlat_tmpl_result r)
{
	static const char *const names[] = {"ok",    "refused", "not-relocatable",
					    "bytes", "form",	"page"};
	_Static_assert(BT_ARRAY_SIZE(names) == XLAT_NTMPL_RESULTS, "one name per result");
	return (unsigned)r < BT_ARRAY_SIZE(names) ? names[r] : "?";
}

uint8_t xlat_value_class(uint64_t v)
{
	int64_t s = (int64_t)v;
	uint8_t c = 0;
	if (v == 0)
		c |= 1;
	if (s >= -128 && s <= 127)
		c |= 2;
	if (s >= -32768 && s <= 32767)
		c |= 4;
	if (s == (int64_t)(int32_t)s)
		c |= 8;
	if (v <= 0xffffffffu)
		c |= 16;
	if (v <= 0xffu)
		c |= 32;
	if (v <= 0xffffu)
		c |= 64;
	return c;
}

static uint64_t load_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t guest_field(const uint8_t *g, uint16_t goff, uint8_t gw, bool sgn)
{
	uint64_t v = load_le(g + goff, gw);
	if (sgn && gw < 8 && (v >> (8 * gw - 1) & 1))
		v |= ~0ull << (8 * gw);
	return v;
}

static uint64_t truncate(uint8_t flags, uint64_t v)
{
	if (flags & XV_T32)
		return (uint32_t)v;
	if (flags & XV_T16)
		return (uint16_t)v;
	return v;
}

/* (value before the addend is added) */
static uint64_t derive_base(uint8_t flags, uint16_t goff, uint8_t gw, gva_t start, const uint8_t *g)
{
	uint64_t v = 0;
	if (flags & XV_PC)
		v += start;
	if (flags & XV_FIELD)
		v += guest_field(g, goff, gw, (flags & XV_SIGNED) != 0);
	return v;
}

static bool exit_is_direct(uint8_t kind)
{
	return kind == XLAT_EXIT_JMP || kind == XLAT_EXIT_JCC_TAKEN || kind == XLAT_EXIT_JCC_FALL ||
	       kind == XLAT_EXIT_CALL || kind == XLAT_EXIT_FALL;
}

static uint8_t same_page(gva_t target, gva_t start)
{
	return ((target ^ start) & GUEST_PAGE_MASK) == 0;
}

/* An XLAT_RELOC_UIBL field's value: the user IBL entry of target. */
static uint32_t uibl_disp(gva_t target, uint64_t addend)
{
	return (uint32_t)(addend + (uint64_t)VCPU_UIBL_INDEX(target) * 16);
}

static uint64_t reloc_value(const struct xlat_reloc *r, gva_t start, const uint8_t *g)
{
	return truncate(r->flags, derive_base(r->flags, r->goff, r->gw, start, g) + r->addend);
}

void xe_tm_begin(struct xe_tm *tm, const uint8_t *guest, bool bad)
{
	if (tm->guest == NULL) { /* first use: the decoder once */
		ZydisDecoderInit(&tm->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
		/* host_insn needs the length, the mnemonic and the raw fields'
		 * offsets only: no semantic decode (Zydis' minimal mode) */
		ZydisDecoderEnableMode(&tm->dec, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE);
	}
	tm->guest = guest;
	tm->n = 0;
	tm->bad = bad;
}

static struct xlat_reloc *tm_add(struct xe *e, uint32_t pos)
{
	struct xe_tm *tm = e->tm;
	if (tm->n >= XLAT_TMPL_MAX_RELOCS) {
		tm->bad = true;
		return NULL;
	}
	struct xe_rec *rc = &tm->rec[tm->n++];
	memset(rc, 0, sizeof(*rc));
	rc->sec = (uint8_t)e->cur;
	rc->pos = pos;
	return &rc->r;
}

struct xe_val xe_val_pc(void)
{
	return (struct xe_val){.flags = XV_PC | XV_SET};
}

static struct xe_val val_field(const struct xlat_insn *in, uint8_t off, uint8_t bits, bool sgn,
			       bool pc)
{
	struct xe_val v = {.flags = XV_SET | (pc ? XV_PC : 0)};
	if (bits == 0)
		return v;
	v.flags |= XV_FIELD | (sgn ? XV_SIGNED : 0);
	v.gw = (uint8_t)(bits / 8);
	v.goff = (uint16_t)(in->goff + off);
	return v;
}

struct xe_val xe_val_disp(const struct xlat_insn *in, bool pc)
{
	return val_field(in, in->d.raw.disp.offset, in->d.raw.disp.size, true, pc);
}

struct xe_val xe_val_imm(const struct xlat_insn *in, int k, bool pc)
{
	return val_field(in, in->d.raw.imm[k].offset, in->d.raw.imm[k].size,
			 in->d.raw.imm[k].is_signed, pc);
}

/* The host instruction emitted since `before`, decoded. */
static bool host_insn(struct xe *e, uint32_t before, ZydisDecodedInstruction *d)
{
	uint32_t n = e->len[e->cur] - before;
	if (n == 0 ||
	    ZYAN_FAILED(
		ZydisDecoderDecodeInstruction(&e->tm->dec, NULL, e->sec[e->cur] + before, n, d)) ||
	    d->length != n) {
		e->tm->bad = true;
		return false;
	}
	return true;
}

/* Record `val` (derived as v says) held in the field off/bytes of the host
 * instruction at `before`, after checking the field holds it. */
static void record(struct xe *e, uint32_t before, uint8_t off, uint8_t bytes, struct xe_val v,
		   uint64_t val, uint8_t shift, bool fixed)
{
	if (bytes == 0 && val != 0) { /* only a zero displacement may vanish */
		e->tm->bad = true;
		return;
	}
	uint64_t field = shift < 64 ? val >> shift : 0;
	if (bytes > 0 && bytes < 8)
		field &= (1ull << (8 * bytes)) - 1;
	if (bytes > 0 && load_le(e->sec[e->cur] + before + off, bytes) != field) {
		e->tm->bad = true;
		return;
	}
	struct xlat_reloc *r = tm_add(e, before + off);
	if (!r)
		return;
	r->kind = XLAT_RELOC_CODE;
	r->width = bytes;
	r->shift = shift;
	r->flags = (uint8_t)((v.flags & XV_DERIVE) | (fixed ? 0 : XLAT_RV_FORM));
	r->goff = v.goff;
	r->gw = v.gw;
	r->cls = xlat_value_class(val);
	r->addend = val - derive_base(v.flags, v.goff, v.gw, e->block_start, e->tm->guest);
}

void xe_note(struct xe *e, uint32_t before, int which, struct xe_val v, uint64_t val, bool fixed)
{
	if (!e->tm || e->failed || e->overflow || !(v.flags & (XV_PC | XV_FIELD)))
		return;
	ZydisDecodedInstruction d;
	if (!host_insn(e, before, &d))
		return;
	uint8_t off, bits;
	if (which == XE_NOTE_DISP) {
		off = d.raw.disp.offset;
		bits = d.raw.disp.size;
	} else {
		off = d.raw.imm[which].offset;
		bits = d.raw.imm[which].size;
	}
	/* a field narrower than the value holds it sign-extended (the class
	 * pins the width, invariant 2 of xlat_tmpl.h): compare its bytes */
	record(e, before, off, (uint8_t)(bits / 8), v, val, 0, fixed);
}

/* An XLAT_RELOC_TLB field's value for value v; held: what the template's
 * field holds, sign-extended.  Shift 0: the entry's displacement, whose
 * constant part comes from held alone (the TLB: kernel or user, whose
 * offsets are multiples of 32 at least 32 entries apart, and the field
 * offset, below 32), so the template's own value is not needed (reuse
 * instantiates with the new bytes). */
_Static_assert(VCPU_OFF_TLB == 0 && VCPU_OFF_UTLB % 32 == 0 &&
		   VCPU_OFF_UTLB >= VCPU_TLB_ENTRIES * 32,
	       "TLB offsets as tlb_field reads them");
static uint64_t tlb_field(uint8_t shift, uint64_t v, uint64_t held)
{
	if (shift == 0)
		return (held >= VCPU_OFF_UTLB ? VCPU_OFF_UTLB : VCPU_OFF_TLB) +
		       (uint64_t)VCPU_TLB_INDEX(v) * 32 + (held & 31);
	return (v + shift - 1) & GUEST_PAGE_MASK;
}

/* The class of an XLAT_RELOC_TLB page immediate: what decides its form (imm8,
 * imm32, or no xe_probe_abs at all). */
static uint8_t tlb_class(uint64_t f)
{
	return (int64_t)f == (int8_t)f ? 0 : ((int64_t)f == (int32_t)f ? 1 : 2);
}

void xe_note_tlb(struct xe *e, uint32_t before, int which, struct xe_val v, uint64_t val,
		 uint64_t field, unsigned sub)
{
	if (!e->tm || e->failed || e->overflow || !(v.flags & (XV_PC | XV_FIELD)))
		return;
	ZydisDecodedInstruction d;
	if (!host_insn(e, before, &d))
		return;
	uint8_t off = which == XE_NOTE_DISP ? d.raw.disp.offset : d.raw.imm[which].offset;
	uint8_t bytes = (which == XE_NOTE_DISP ? d.raw.disp.size : d.raw.imm[which].size) / 8;
	uint64_t f = bytes < 8 ? field & ((1ull << (8 * bytes)) - 1) : field;
	if (bytes == 0 || load_le(e->sec[e->cur] + before + off, bytes) != f) {
		e->tm->bad = true;
		return;
	}
	struct xlat_reloc *r = tm_add(e, before + off);
	if (!r)
		return;
	r->kind = XLAT_RELOC_TLB;
	r->width = bytes;
	r->shift = (uint8_t)sub;
	/* an entry's displacement is always a disp32 (no base register) */
	r->flags = (uint8_t)((v.flags & XV_DERIVE) | (sub ? XLAT_RV_FORM : 0));
	r->goff = v.goff;
	r->gw = v.gw;
	r->cls = sub ? tlb_class(field) : 0;
	r->addend = val - derive_base(v.flags, v.goff, v.gw, e->block_start, e->tm->guest);
}

void xe_note_exit_store(struct xe *e, uint32_t before, int idx, int shift, bool fixed)
{
	if (!e->tm || e->failed || e->overflow)
		return;
	struct xe_val v = xe_val_pc();
	gva_t target = e->block_start;
	if (idx >= 0) {
		v = e->exit_val[idx];
		target = e->exits[idx].target;
		if (!(v.flags & XV_SET)) { /* invariant 1 */
			e->tm->bad = true;
			return;
		}
	}
	ZydisDecodedInstruction d;
	if (before != XE_NOTE_NO_CODE && !host_insn(e, before, &d))
		return;
	if (before != XE_NOTE_NO_CODE && d.raw.imm[0].size != 32) {
		e->tm->bad = true;
		return;
	}
	if (before != XE_NOTE_NO_CODE && (v.flags & (XV_PC | XV_FIELD)))
		record(e, before, d.raw.imm[0].offset, 4, v, target, (uint8_t)shift, fixed);
	if (idx >= 0 && shift == 0 && (v.flags & (XV_PC | XV_FIELD))) {
		struct xlat_reloc *r = tm_add(e, 0);
		if (!r)
			return;
		r->kind = XLAT_RELOC_EXIT;
		r->host_off = (uint32_t)idx;
		r->flags = v.flags & XV_DERIVE;
		r->goff = v.goff;
		r->gw = v.gw;
		r->addend =
		    target - derive_base(v.flags, v.goff, v.gw, e->block_start, e->tm->guest);
		/* a user block probes the user IBL for a direct exit that leaves
		 * its first page (xe_emit_stubs): the probe is there or not */
		if (e->off_ibl == VCPU_OFF_UIBL && !e->step && exit_is_direct(e->exits[idx].kind)) {
			r->flags |= XLAT_RV_PAGE;
			r->cls = same_page(target, e->block_start);
		}
	}
}

void xe_note_uibl(struct xe *e, uint32_t before, int idx)
{
	if (!e->tm || e->failed || e->overflow)
		return;
	ZydisDecodedInstruction d;
	if (!host_insn(e, before, &d))
		return;
	if (d.raw.disp.size != 32 || idx < 0 || (uint32_t)idx >= e->n_exits) {
		e->tm->bad = true;
		return;
	}
	uint32_t disp = (uint32_t)load_le(e->sec[e->cur] + before + d.raw.disp.offset, 4);
	struct xlat_reloc *r = tm_add(e, before + d.raw.disp.offset);
	if (!r)
		return;
	r->kind = XLAT_RELOC_UIBL;
	r->width = 4;
	r->goff = (uint16_t)idx;
	r->addend = disp - uibl_disp(e->exits[idx].target, 0);
}

void xe_note_copy(struct xe *e, uint32_t before, const struct xlat_insn *in)
{
	if (!e->tm || e->failed || e->overflow)
		return;
	struct {
		uint8_t off, bits;
	} f[3] = {{in->d.raw.disp.offset, in->d.raw.disp.size},
		  {in->d.raw.imm[0].offset, in->d.raw.imm[0].size},
		  {in->d.raw.imm[1].offset, in->d.raw.imm[1].size}};
	for (int i = 0; i < 3; i++) {
		if (f[i].bits == 0 || (i > 0 && xlat_is_shift(in->d.mnemonic)))
			continue;
		struct xlat_reloc *r = tm_add(e, before + f[i].off);
		if (!r)
			return;
		r->kind = XLAT_RELOC_CODE;
		r->width = (uint8_t)(f[i].bits / 8);
		r->flags = XV_FIELD;
		r->goff = (uint16_t)(in->goff + f[i].off);
		r->gw = r->width;
	}
}

bool xe_tm_end(const struct xe *e, const struct xe_tm *tm, struct xlat_reloc *out, uint32_t cap,
	       uint32_t *n)
{
	if (tm->bad || tm->n > cap)
		return false;
	for (uint32_t i = 0; i < tm->n; i++) {
		out[i] = tm->rec[i].r;
		if (out[i].kind == XLAT_RELOC_CODE || out[i].kind == XLAT_RELOC_UIBL ||
		    out[i].kind == XLAT_RELOC_TLB)
			out[i].host_off = tm->rec[i].sec == XE_MAIN
					      ? tm->rec[i].pos
					      : e->len[XE_MAIN] + tm->rec[i].pos;
	}
	/* invariant 1: every exit with a guest target has its EXIT record */
	for (uint32_t x = 0; x < e->n_exits; x++) {
		uint8_t k = e->exits[x].kind;
		if (k == XLAT_EXIT_INDIRECT || k == XLAT_EXIT_RET)
			continue;
		bool found = false;
		for (uint32_t i = 0; i < tm->n && !found; i++)
			found = out[i].kind == XLAT_RELOC_EXIT && out[i].host_off == x;
		if (!found)
			return false;
	}
	*n = tm->n;
	return true;
}

void xlat_tmpl_field_mask(const struct xlat_tmpl *t, uint8_t *mask)
{
	memset(mask, 0, (t->guest_len + 7) / 8);
	for (uint32_t i = 0; i < t->n_relocs; i++) {
		const struct xlat_reloc *r = &t->relocs[i];
		if (!(r->flags & XV_FIELD))
			continue;
		for (uint32_t b = r->goff; b < (uint32_t)r->goff + r->gw && b < t->guest_len; b++)
			mask[b / 8] |= (uint8_t)(1u << (b % 8));
	}
}

enum xlat_tmpl_result xlat_tmpl_instantiate(const struct xlat_tmpl *t, gva_t va,
					    const uint8_t *guest, uint8_t *code,
					    struct bt_exit *exits)
{
	/* the block ends where it did only if its instructions sit the same
	 * way on pages: the same page offset, or one page with room after */
	if (((va - t->guest_start) & (GUEST_PAGE_SIZE - 1)) != 0 &&
	    ((t->guest_start & (GUEST_PAGE_SIZE - 1)) + t->guest_len >= GUEST_PAGE_SIZE ||
	     (va & (GUEST_PAGE_SIZE - 1)) + t->guest_len >= GUEST_PAGE_SIZE))
		return XLAT_TMPL_PAGE;
	uint8_t mask[XLAT_HARD_MAX_INSNS * 16 / 8];
	if (t->guest_len > XLAT_HARD_MAX_INSNS * 16)
		return XLAT_TMPL_BYTES;
	xlat_tmpl_field_mask(t, mask);
	for (uint32_t i = 0; i < t->guest_len; i++)
		if (guest[i] != t->guest[i] && !(mask[i / 8] >> (i % 8) & 1))
			return XLAT_TMPL_BYTES;
	memcpy(code, t->code, t->code_len);
	memcpy(exits, t->exits, t->n_exits * sizeof(*exits));
	for (uint32_t i = 0; i < t->n_relocs; i++) {
		const struct xlat_reloc *r = &t->relocs[i];
		if (r->kind == XLAT_RELOC_UIBL)
			continue; /* below, once the exits have their targets */
		uint64_t v = reloc_value(r, va, guest);
		if (r->kind == XLAT_RELOC_TLB) {
			uint64_t held = load_le(t->code + r->host_off, r->width);
			if (r->width < 8 && (held >> (8 * r->width - 1) & 1)) /* sign-extend */
				held |= ~0ull << (8 * r->width);
			v = tlb_field(r->shift, v, held);
			if ((r->flags & XLAT_RV_FORM) && tlb_class(v) != r->cls)
				return XLAT_TMPL_FORM;
		} else if ((r->flags & XLAT_RV_FORM) && xlat_value_class(v) != r->cls) {
			return XLAT_TMPL_FORM;
		}
		if (r->kind == XLAT_RELOC_EXIT) {
			if ((r->flags & XLAT_RV_PAGE) && same_page(v, va) != r->cls)
				return XLAT_TMPL_FORM; /* a user IBL probe comes or goes */
			exits[r->host_off].target = v;
			continue;
		}
		if (r->kind != XLAT_RELOC_TLB) /* a TLB field is v itself */
			v = r->shift < 64 ? v >> r->shift : 0;
		for (unsigned b = 0; b < r->width; b++)
			code[r->host_off + b] = (uint8_t)(v >> (8 * b));
	}
	for (uint32_t i = 0; i < t->n_relocs; i++) {
		const struct xlat_reloc *r = &t->relocs[i];
		if (r->kind != XLAT_RELOC_UIBL)
			continue;
		uint32_t v = uibl_disp(exits[r->goff].target, r->addend);
		for (unsigned b = 0; b < 4; b++)
			code[r->host_off + b] = (uint8_t)(v >> (8 * b));
	}
	return XLAT_TMPL_OK;
}

void xlat_relocs_encode(const struct xlat_reloc *r, uint32_t n, uint8_t *out)
{
	for (uint32_t i = 0; i < n; i++, out += XLAT_RELOC_BYTES) {
		bt_put32(out, r[i].host_off);
		out[4] = r[i].kind;
		out[5] = r[i].width;
		out[6] = r[i].shift;
		out[7] = r[i].flags;
		bt_put16(out + 8, r[i].goff);
		out[10] = r[i].gw;
		out[11] = r[i].cls;
		memset(out + 12, 0, 4);
		bt_put64(out + 16, r[i].addend);
	}
}

enum bt_status xlat_relocs_decode(const uint8_t *p, size_t len, struct xlat_reloc *out,
				  uint32_t cap, uint32_t *n)
{
	if (len % XLAT_RELOC_BYTES || len / XLAT_RELOC_BYTES > cap)
		return BT_ERR_FORMAT;
	*n = (uint32_t)(len / XLAT_RELOC_BYTES);
	for (uint32_t i = 0; i < *n; i++, p += XLAT_RELOC_BYTES) {
		out[i].host_off = bt_get32(p);
		out[i].kind = p[4];
		out[i].width = p[5];
		out[i].shift = p[6];
		out[i].flags = p[7];
		out[i].goff = (uint16_t)(p[8] | p[9] << 8);
		out[i].gw = p[10];
		out[i].cls = p[11];
		out[i].addend = bt_get64(p + 16);
	}
	return BT_OK;
}

enum bt_status xlat_tmpl_check(const struct xlat_tmpl *t)
{
	if (t->guest_len == 0 || t->guest_len > XLAT_HARD_MAX_INSNS * 16 ||
	    t->n_exits > XLAT_MAX_EXITS)
		return BT_ERR_FORMAT;
	for (uint32_t i = 0; i < t->n_relocs; i++) {
		const struct xlat_reloc *r = &t->relocs[i];
		if ((r->flags & XV_FIELD) && (r->gw == 0 || r->gw > 8 || (r->gw & (r->gw - 1)) ||
					      (uint32_t)r->goff + r->gw > t->guest_len))
			return BT_ERR_FORMAT;
		if (r->kind == XLAT_RELOC_EXIT) {
			if (r->host_off >= t->n_exits)
				return BT_ERR_FORMAT;
		} else if (r->kind == XLAT_RELOC_UIBL) {
			if (r->goff >= t->n_exits || (r->flags & XV_FIELD) ||
			    (uint64_t)r->host_off + 4 > t->code_len)
				return BT_ERR_FORMAT;
		} else if (r->kind == XLAT_RELOC_TLB) {
			if ((r->width != 1 && r->width != 4) || r->shift > 16 ||
			    (uint64_t)r->host_off + r->width > t->code_len)
				return BT_ERR_FORMAT;
		} else if (r->kind == XLAT_RELOC_CODE) {
			if (r->width > 8 || (r->width & (r->width - 1)) || r->shift > 32 ||
			    (uint64_t)r->host_off + r->width > t->code_len)
				return BT_ERR_FORMAT;
		} else {
			return BT_ERR_FORMAT;
		}
	}
	for (uint32_t x = 0; x < t->n_exits; x++)
		if (t->exits[x].patch_off != ~0u &&
		    (uint64_t)t->exits[x].patch_off + 4 > t->code_len)
			return BT_ERR_FORMAT;
	return BT_OK;
}
