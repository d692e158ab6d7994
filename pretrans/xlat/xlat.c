/*
 * The translator core's front: context (decoder, arena), the block loop
 * (which guest instructions form a block), liveness, and the output record.
 *
 * Block lifecycle inside xlat_translate():
 *   DECODE [decode_block] -> LIVENESS [compute_liveness] -> EMIT [emit_block]
 *   -> FINISH [xe_finish] -> translated | refused (block->refusal)
 *
 * Invariants
 *  1. Deterministic: the output depends only on the guest bytes, their
 *     address, the options and XLAT_VERSION/VCPU_ABI_VERSION.
 *  2. No allocation per block: every buffer lives in the context, sized for
 *     XLAT_HARD_MAX_INSNS instructions of at most XLAT_MAX_EXPANSION bytes.
 *  3. A block never reaches into a third guest page; it spans two only when
 *     its last instruction straddles the boundary (XLAT_BLOCK_TWO_PAGES).
 *  4. Guest bytes are untrusted: a decode failure ends or refuses the block,
 *     never aborts.
 */
#include "pretrans/xlat/xlat_int.h"
#include "pretrans/base/hash.h"
#include "pretrans/base/log.h"

#include <stdlib.h>
#include <string.h>

struct xlat_ctx {
	struct xlat_options opts;
	ZydisDecoder dec;
	void *xc; /* the second decoder's instance (opts.checker), with XLAT_OPT_CROSSCHECK */
	struct xlat_insn insns[XLAT_HARD_MAX_INSNS];
	enum xlat_class cls[XLAT_HARD_MAX_INSNS];
	uint8_t guest[XLAT_HARD_MAX_INSNS * 16];
	struct xe e;
	uint8_t sec_main[XLAT_SEC_CAP];
	uint8_t sec_cold[XLAT_SEC_CAP];
	uint8_t code[2 * XLAT_SEC_CAP];
	uint8_t pcmap[8 * XLAT_MAX_PCENT];
	uint32_t cat_bytes[XLAT_NCATS]; /* the last block's (xlat_cat_bytes) */
	/* xlat_translate_tmpl(): the recorder and its output */
	bool tm_on;
	struct xe_tm tm;
	struct xlat_reloc relocs[XLAT_TMPL_MAX_RELOCS];
};

const char *xlat_refusal_str(enum xlat_refusal r)
{
	static const char *const names[] = {"ok",	   "nobytes", "undecodable",   "disagree",
					    "unsupported", "encode",  "not-advertised"};
	_Static_assert(BT_ARRAY_SIZE(names) == XLAT_NREFUSALS, "one name per refusal");
	return (unsigned)r < BT_ARRAY_SIZE(names) ? names[r] : "?";
}

const char *xlat_exit_kind_str(enum xlat_exit_kind k)
{
	static const char *const names[] = {"?",    "jmp",	"jcc-taken", "jcc-fall", "call",
					    "fall", "indirect", "ret",	     "priv",	 "irq"};
	return (unsigned)k < BT_ARRAY_SIZE(names) ? names[k] : "?";
}

uint64_t xlat_hash_bytes(const void *p, size_t n)
{
	return bt_hash64(p, n);
}

uint64_t xlat_options_hash(const struct xlat_options *opts)
{
	uint32_t v[4] = {XLAT_VERSION, VCPU_ABI_VERSION, opts ? opts->flags : 0,
			 opts ? opts->max_insns : 0};
	return bt_hash64(v, sizeof(v));
}

uint32_t xlat_max_insns(const struct xlat_options *opts)
{
	uint32_t n = opts ? opts->max_insns : 0;
	if (n == 0)
		return XLAT_DEFAULT_MAX_INSNS;
	return n > XLAT_HARD_MAX_INSNS ? XLAT_HARD_MAX_INSNS : n;
}

enum bt_status xlat_create(const struct xlat_options *opts, struct xlat_ctx **out)
{
	if (!out)
		return BT_ERR_INVALID;
	struct xlat_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return BT_ERR_NOMEM;
	if (opts)
		ctx->opts = *opts;
	ctx->opts.max_insns = xlat_max_insns(opts);
	/* the undefined-flags rule holds only where the host computes them */
	if ((ctx->opts.flags & XLAT_OPT_UNDEF_FLAGS) && !xlat_host_undef_flags_ok()) {
		bt_err(LOG_XLAT, "this CPU keeps flags x86 leaves undefined after and/or/xor/test/"
				 "mul/imul unchanged: translations made with XLAT_OPT_UNDEF_FLAGS "
				 "cannot run here (docs/xlat.md, \"Flag liveness\")");
		free(ctx);
		return BT_ERR_UNSUPPORTED;
	}
	/* the encoder's memo (xe_req): only a speed-up, none if it cannot be had */
	ctx->e.enc = calloc(1, sizeof(*ctx->e.enc));
	if (ctx->opts.flags & XLAT_OPT_STEP)
		ctx->opts.max_insns = 1;
	/* decode as the vCPU runs: no BMI1, MPX, CET (xlat_facts.c) */
	if (!xlat_decoder_init(&ctx->dec, ZYDIS_MACHINE_MODE_LONG_64)) {
		free(ctx->e.enc);
		free(ctx);
		return BT_ERR_INTERNAL;
	}
	if (ctx->opts.flags & XLAT_OPT_CROSSCHECK) {
		if (!ctx->opts.checker) {
			bt_err(
			    LOG_XLAT,
			    "XLAT_OPT_CROSSCHECK without a second decoder (xlat_options.checker)");
			free(ctx->e.enc);
			free(ctx);
			return BT_ERR_INVALID;
		}
		enum bt_status s = ctx->opts.checker->create(&ctx->xc);
		if (s != BT_OK) {
			free(ctx->e.enc);
			free(ctx);
			return s;
		}
	}
	*out = ctx;
	return BT_OK;
}

void xlat_encoder_counts(const struct xlat_ctx *ctx, uint64_t *memo_hits, uint64_t *encoded)
{
	*memo_hits = ctx->e.enc_hits;
	*encoded = ctx->e.enc_misses;
}

void xlat_cat_bytes(const struct xlat_ctx *ctx, uint32_t out[XLAT_NCATS])
{
	memcpy(out, ctx->cat_bytes, sizeof(ctx->cat_bytes));
}

void xlat_destroy(struct xlat_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->xc)
		ctx->opts.checker->destroy(ctx->xc);
	if (ctx->e.enc_hits + ctx->e.enc_misses)
		bt_debug(LOG_XLAT, "encoder: %llu requests answered by the memo, %llu encoded",
			 (unsigned long long)ctx->e.enc_hits,
			 (unsigned long long)ctx->e.enc_misses);
	free(ctx->e.enc);
	free(ctx);
}

/* Register and flag use of one instruction, from Zydis' operand list. */
static void insn_usage(struct xlat_insn *in, uint32_t opt_flags)
{
	in->regs_used = in->regs_read = in->regs_kill = 0;
	for (int i = 0; i < in->d.operand_count; i++) {
		const ZydisDecodedOperand *o = &in->ops[i];
		if (o->type == ZYDIS_OPERAND_TYPE_MEMORY) {
			int b = xe_gpr_num(o->mem.base), x = xe_gpr_num(o->mem.index);
			if (b >= 0)
				in->regs_used |= in->regs_read |= 1u << b;
			if (x >= 0)
				in->regs_used |= in->regs_read |= 1u << x;
			continue;
		}
		if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		int r = xe_gpr_num(o->reg.value);
		if (r < 0)
			continue;
		uint32_t bit = 1u << r;
		in->regs_used |= bit;
		bool full = o->size == 64 || o->size == 32;
		if ((o->actions & ZYDIS_OPERAND_ACTION_MASK_READ) ||
		    (o->actions & ZYDIS_OPERAND_ACTION_CONDWRITE) ||
		    ((o->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) && !full))
			in->regs_read |= bit;
		if ((o->actions & ZYDIS_OPERAND_ACTION_WRITE) && full)
			in->regs_kill |= bit;
	}
	/* bsf/bsr leave the destination unchanged for a zero source */
	if (in->d.mnemonic == ZYDIS_MNEMONIC_BSF || in->d.mnemonic == ZYDIS_MNEMONIC_BSR)
		in->regs_read |= in->regs_kill;
	in->regs_kill &= ~in->regs_read;
	if (in->d.cpu_flags) {
		const ZydisAccessedFlags *f = in->d.cpu_flags;
		in->flags_read = f->tested & XLAT_FLAGS_ARITH;
		/* "undefined" flags are not kills: CPUs may leave them unchanged,
		 * so their previous value can still be observed; except those
		 * the host computes from the operands alone (XLAT_OPT_UNDEF_FLAGS) */
		uint32_t computed = (opt_flags & XLAT_OPT_UNDEF_FLAGS)
					? f->undefined & xlat_undef_flags_computed(in->d.mnemonic)
					: 0;
		in->flags_kill =
		    (((f->modified | f->set_0 | f->set_1) & ~f->undefined) | computed) &
		    XLAT_FLAGS_ARITH & ~in->flags_read;
		/* DF too: a pending flags restore would undo std/cld */
		in->flags_may = (f->modified | f->set_0 | f->set_1 | f->undefined) &
				(XLAT_FLAGS_ARITH | ZYDIS_CPUFLAG_DF);
	} else {
		in->flags_read = XLAT_FLAGS_ARITH;
		in->flags_kill = 0;
		in->flags_may = XLAT_FLAGS_ARITH;
	}
	/* a write that depends on a runtime count is a "may write": the
	 * previous flags stay live through it (xlat_facts.c) */
	if (xlat_flags_write_conditional(in))
		in->flags_kill = 0;
}

static void compute_liveness(struct xlat_ctx *ctx, uint32_t n, bool exact)
{
	uint32_t live = 0xffff;
	uint32_t flags = XLAT_FLAGS_ARITH;
	for (uint32_t i = n; i-- > 0;) {
		struct xlat_insn *in = &ctx->insns[i];
		in->live_out = exact ? 0xffff : live;
		in->flags_live_out = flags != 0;
		live = (live & ~in->regs_kill) | in->regs_read;
		flags = (flags & ~in->flags_kill) | in->flags_read;
		in->flags_live_in = flags != 0;
	}
}

struct decode_result {
	uint32_t n;
	gva_t end;	/* guest address after the last instruction */
	bool ended;	/* the last instruction ends the block itself */
	bool two_pages; /* the last instruction straddles a page boundary */
	bool cut_next;	/* ended because of the instruction after it (templates) */
};

static void refuse(struct bt_block *b, enum xlat_refusal r, gva_t at)
{
	b->refusal = r;
	b->refusal_addr = at;
}

static void decode_block(struct xlat_ctx *ctx, const struct xlat_source *src, gva_t va,
			 struct bt_block *b, struct decode_result *r)
{
	gva_t page = va & GUEST_PAGE_MASK;
	gva_t pc = va;
	bool sti_shadow = false;
	memset(r, 0, sizeof(*r));
	for (uint32_t i = 0; i < ctx->opts.max_insns; i++) {
		struct xlat_insn *in = &ctx->insns[i];
		if ((pc & GUEST_PAGE_MASK) != page)
			break; /* next page: FALL exit */
		memset(in->bytes, 0, sizeof(in->bytes));
		size_t got = src->read(src->opaque, pc, in->bytes, 15);
		if (got > 15)
			got = 15;
		if (got == 0) {
			if (i == 0)
				refuse(b, XLAT_REFUSE_NOBYTES, pc);
			r->cut_next = true;
			break;
		}
		ZyanStatus zs = ZydisDecoderDecodeFull(&ctx->dec, in->bytes, got, &in->d, in->ops);
		if (ZYAN_FAILED(zs)) {
			/* fewer than 15 bytes readable and the instruction needs
			 * more: the CPU faults fetching the first missing byte
			 * (a #PF on the next page), not #UD */
			bool cut = zs == ZYDIS_STATUS_NO_MORE_DATA && got < 15;
			if (i == 0)
				refuse(b, cut ? XLAT_REFUSE_NOBYTES : XLAT_REFUSE_UNDECODABLE,
				       cut ? pc + got : pc);
			r->cut_next = true;
			break;
		}
		if (ctx->xc) {
			if (!ctx->opts.checker->agrees(ctx->xc, in->bytes, got, pc, in->d.length)) {
				refuse(b, XLAT_REFUSE_DISAGREE, pc);
				return;
			}
		}
		in->va = pc;
		in->goff = (uint32_t)(pc - va);
		insn_usage(in, ctx->opts.flags);
		in->facts = xlat_insn_facts(&in->d, in->ops);
		enum xlat_class c = xlat_classify(in);
		if (ctx->opts.flags & XLAT_OPT_USER)
			c = xlat_class_user(c);
		else if ((ctx->opts.flags & XLAT_OPT_STEP) && (c == XC_PUSHF || c == XC_POPF))
			c = XC_PRIV; /* the vCPU holds TF and NT, the inline forms do not */
		if (c == XC_REFUSE) {
			if (i == 0)
				refuse(b, XLAT_REFUSE_UNSUPPORTED, pc);
			r->cut_next = true;
			break;
		}
		/* not in the vCPU's CPUID (privileged or not): #UD at run time */
		if (in->facts.adv == XLAT_ADV_NO) {
			if (i == 0)
				refuse(b, XLAT_REFUSE_NOT_ADVERTISED, pc);
			r->cut_next = true;
			break;
		}
		if (c == XC_STI && i > 0 && i + 1 >= ctx->opts.max_insns) {
			r->cut_next = true;
			break; /* keep sti and its shadow instruction in one block */
		}
		ctx->cls[i] = c;
		memcpy(ctx->guest + in->goff, in->bytes, in->d.length);
		r->n = i + 1;
		pc += in->d.length;
		r->end = pc;
		if (xlat_class_ends_block(c)) {
			r->ended = true;
			break;
		}
		if (((pc - 1) & GUEST_PAGE_MASK) != page) {
			r->two_pages = true;
			break;
		}
		if (sti_shadow)
			break; /* the instruction after sti ran: end, check interrupts */
		if (c == XC_STI)
			sti_shadow = true;
	}
	if (r->n > 0 && ((r->end - 1) & GUEST_PAGE_MASK) != page)
		r->two_pages = true;
}

/* Block entry: `cmp word %gs:irq, 0x0101; jae irq_stub` (the IRQ exit's
 * "stub" is the exit tail since XLAT_VERSION 14, xe_emit_stubs).  When the flags
 * are live into the block, a flag-free form instead (rcx spilled unless the
 * block overwrites it before reading it):
 *     movzx ecx, word %gs:irq ; lea ecx, [rcx + 0xfeff]   bit 16 = (irq >= 0x101)
 *     bswap ecx ; movzx ecx, ch ; jrcxz +5 ; jmp irq_exit
 * (irq_exit: restore rcx, jmp irq_stub); rcx stays pending in spill[] like a
 * scratch register (restored by whatever needs it).  With rcx dead, irq_exit
 * is the stub itself and nothing is restored: the interrupt sees rcx = 1
 * there, a value the block never reads (like a dead scratch register at a
 * fault; XLAT_OPT_EXACT_FAULTS makes rcx live). */
static void emit_entry(struct xe *e, bool flags_live, bool rcx_live)
{
	int x = xe_exit_new(e, XLAT_EXIT_IRQ, e->block_start);
	if ((uint32_t)x < e->n_exits)
		e->exit_val[x] = xe_val_pc();
	if (!flags_live) {
		ZydisEncoderOperand m =
		    xe_m(2, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_IRQ);
		ZydisEncoderOperand i = xe_i(VCPU_IRQ_IF | VCPU_IRQ_REQ);
		xe_ins(e, ZYDIS_MNEMONIC_CMP, true, 2, &m, &i, NULL);
		xe_branch(e, ZYDIS_MNEMONIC_JNB, e->exit_stub_label[x]);
		return;
	}
	int cold = rcx_live ? xe_label_new(e) : e->exit_stub_label[x];
	ZydisEncoderOperand ecx = xe_r(ZYDIS_REGISTER_ECX), ch = xe_r(ZYDIS_REGISTER_CH), m;
	if (rcx_live) {
		xe_gs_store(e, VCPU_OFF_SPILL + 8 * VCPU_RCX, ZYDIS_REGISTER_RCX);
		e->mask |= 1u << VCPU_RCX;
		xe_pcmark(e);
	}
	m = xe_m(2, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_IRQ);
	xe_ins(e, ZYDIS_MNEMONIC_MOVZX, true, 2, &ecx, &m, NULL);
	m = xe_m(8, ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_NONE, 0,
		 0x10000 - (VCPU_IRQ_IF | VCPU_IRQ_REQ));
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &ecx, &m, NULL);
	xe_ins(e, ZYDIS_MNEMONIC_BSWAP, false, 1, &ecx, NULL, NULL);
	xe_ins(e, ZYDIS_MNEMONIC_MOVZX, false, 2, &ecx, &ch, NULL);
	ZydisEncoderRequest req;
	memset(&req, 0, sizeof(req));
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.mnemonic = ZYDIS_MNEMONIC_JRCXZ;
	req.branch_type = ZYDIS_BRANCH_TYPE_SHORT;
	req.branch_width = ZYDIS_BRANCH_WIDTH_8;
	req.operand_count = 1;
	req.operands[0] = xe_i(5); /* over the jmp rel32 */
	xe_req(e, &req);
	xe_branch(e, ZYDIS_MNEMONIC_JMP, cold);
	if (!rcx_live)
		return;
	/* rcx stays in spill[] as a pending scratch register: the first
	 * instructions may use it, whoever needs its guest value restores it */
	e->pend_regs |= 1u << VCPU_RCX;
	uint32_t mask = e->mask;
	xe_section(e, XE_COLD);
	xe_label_place(e, cold);
	xe_gs_load(e, ZYDIS_REGISTER_RCX, VCPU_OFF_SPILL + 8 * VCPU_RCX);
	e->mask &= ~(1u << VCPU_RCX);
	xe_pcmark(e);
	xe_exit_jump_stub(e, x);
	e->mask = mask; /* MAIN goes on with rcx in spill[] */
	xe_section(e, XE_MAIN);
}

static void emit_block(struct xlat_ctx *ctx, const struct decode_result *r)
{
	struct xe *e = &ctx->e;
	/* A block that is just one privileged instruction exits at once: the
	 * runtime takes interrupts at that exit, no entry check is needed. */
	if (!(r->n == 1 && ctx->cls[0] == XC_PRIV))
		emit_entry(e, ctx->insns[0].flags_live_in,
			   ((ctx->insns[0].live_out & ~ctx->insns[0].regs_kill) |
			    ctx->insns[0].regs_read) >>
				   VCPU_RCX &
			       1);
	for (uint32_t i = 0; i < r->n; i++) {
		if (e->len[XE_MAIN] + XLAT_MAX_EXPANSION > XLAT_SEC_CAP ||
		    e->len[XE_COLD] + XLAT_MAX_EXPANSION > XLAT_SEC_CAP) {
			e->overflow = true;
			return;
		}
		xe_set_goff(e, ctx->insns[i].goff);
		xlat_mangle(e, &ctx->insns[i], ctx->cls[i]);
		if (e->failed || e->overflow)
			return;
	}
	if (!r->ended) {
		xe_set_goff(e, (uint32_t)(r->end - e->block_start));
		xlat_flush_pending(e);
		xlat_mangle_fall(e, r->end);
	}
	xe_emit_stubs(e);
}

enum bt_status xlat_translate(struct xlat_ctx *ctx, const struct xlat_source *src, gva_t va,
			      struct bt_block *out)
{
	if (!ctx || !src || !src->read || !out)
		return BT_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	memset(ctx->cat_bytes, 0, sizeof(ctx->cat_bytes));
	out->guest_start = va;
	struct decode_result r;
	decode_block(ctx, src, va, out, &r);
	if (out->refusal != XLAT_OK)
		return BT_OK;
	if (r.n == 0) {
		refuse(out, XLAT_REFUSE_UNDECODABLE, va);
		return BT_OK;
	}
	uint32_t n = r.n;
	compute_liveness(ctx, n, (ctx->opts.flags & XLAT_OPT_EXACT_FAULTS) != 0);
	xe_reset(&ctx->e, ctx->sec_main, ctx->sec_cold, va);
	if (ctx->opts.flags & XLAT_OPT_USER) {
		ctx->e.off_tlb = VCPU_OFF_UTLB;
		ctx->e.off_ibl = VCPU_OFF_UIBL;
	}
	ctx->e.step = (ctx->opts.flags & XLAT_OPT_STEP) != 0;
	ctx->e.count_probes = (ctx->opts.flags & XLAT_OPT_COUNT_PROBES) != 0;
	if (ctx->tm_on) {
		ctx->e.tm = &ctx->tm;
		xe_tm_begin(&ctx->tm, ctx->guest, r.cut_next || (ctx->opts.flags & XLAT_OPT_STEP));
	}
	emit_block(ctx, &r);
	uint32_t code_len = 0, pcmap_len = 0;
	if (ctx->e.failed || ctx->e.overflow ||
	    !xe_finish(&ctx->e, ctx->code, sizeof(ctx->code), &code_len, ctx->pcmap,
		       sizeof(ctx->pcmap), &pcmap_len)) {
		/* find the instruction that failed: the last one emitted */
		refuse(out, XLAT_REFUSE_ENCODE, va + ctx->e.goff);
		bt_debug(LOG_XLAT, "xlat: block %#llx refused: encoder", (unsigned long long)va);
		return BT_OK;
	}
	out->guest_len = (uint32_t)(r.end - va);
	out->n_insns = n;
	out->guest_hash = xlat_hash_bytes(ctx->guest, out->guest_len);
	out->flags = (r.two_pages ? XLAT_BLOCK_TWO_PAGES : 0) |
		     (ctx->cls[n - 1] == XC_PRIV ? XLAT_BLOCK_ENDS_PRIV : 0);
	out->code = ctx->code;
	out->code_len = code_len;
	memcpy(out->exits, ctx->e.exits, sizeof(out->exits));
	out->n_exits = ctx->e.n_exits;
	out->pcmap = ctx->pcmap;
	out->pcmap_len = pcmap_len;
	memcpy(ctx->cat_bytes, ctx->e.cat_bytes, sizeof(ctx->cat_bytes));
	return BT_OK;
}

enum bt_status xlat_translate_tmpl(struct xlat_ctx *ctx, const struct xlat_source *src, gva_t va,
				   struct bt_block *b, struct xlat_tmpl *t,
				   enum xlat_tmpl_result *res)
{
	if (!ctx || !t || !res)
		return BT_ERR_INVALID;
	ctx->tm_on = true;
	enum bt_status st = xlat_translate(ctx, src, va, b);
	ctx->tm_on = false;
	BT_TRY(st);
	memset(t, 0, sizeof(*t));
	if (b->refusal != XLAT_OK) {
		*res = XLAT_TMPL_REFUSED;
		return BT_OK;
	}
	uint32_t n = 0;
	if (!xe_tm_end(&ctx->e, &ctx->tm, ctx->relocs, XLAT_TMPL_MAX_RELOCS, &n)) {
		*res = XLAT_TMPL_NOT_RELOC;
		return BT_OK;
	}
	t->guest_start = va;
	t->guest_len = b->guest_len;
	t->flags = b->flags;
	t->guest = ctx->guest;
	t->code = b->code;
	t->code_len = b->code_len;
	t->exits = b->exits;
	t->n_exits = b->n_exits;
	t->relocs = ctx->relocs;
	t->n_relocs = n;
	*res = XLAT_TMPL_OK;
	return BT_OK;
}

static bool get_varint(const uint8_t *p, uint32_t len, uint32_t *pos, uint32_t *v)
{
	uint32_t x = 0;
	for (int shift = 0; shift < 35; shift += 7) {
		if (*pos >= len)
			return false;
		uint8_t b = p[(*pos)++];
		x |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

enum bt_status xlat_pcmap_lookup(const uint8_t *pcmap, uint32_t pcmap_len, gva_t guest_start,
				 uint32_t host_off, gva_t *guest_rip, uint32_t *spilled)
{
	if (!pcmap || !guest_rip || !spilled)
		return BT_ERR_INVALID;
	uint32_t pos = 0, off = 0;
	bool found = false;
	uint32_t goff = 0, mask = 0;
	while (pos < pcmap_len) {
		uint32_t d, g, m;
		if (!get_varint(pcmap, pcmap_len, &pos, &d) ||
		    !get_varint(pcmap, pcmap_len, &pos, &g) ||
		    !get_varint(pcmap, pcmap_len, &pos, &m))
			return BT_ERR_FORMAT;
		off += d;
		if (off > host_off)
			break;
		found = true;
		goff = g;
		mask = m;
	}
	if (!found)
		return BT_ERR_NOTFOUND;
	*guest_rip = guest_start + goff;
	*spilled = mask;
	return BT_OK;
}
