/*
 * asmfmt: Zydis 4's formatter with three hooks (see asmfmt.h):
 *  - PRINT_ADDRESS_ABS: a %gs:disp operand of translated code is a vCPU
 *    field; any other absolute address (branch and call targets,
 *    rip-relative operands) gets " <symbol+off>" after Zydis' own text;
 *  - PRINT_DISP: %gs:disp(base) in translated code names the field
 *    (vcpu.tlb(%r10): the soft-MMU's TLB indexed by a register);
 *  - PRINT_IMM: in translated code, an immediate that is a guest code
 *    address (a pushed return address, an exit target) gets <symbol>.
 * The hooks find their struct asmfmt in the formatter context's user_data.
 */
#include "pretrans/asmfmt/asmfmt.h"

#include "pretrans/xlat/vcpu_abi.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

bool asmfmt_parse_syntax(const char *arg, enum asmfmt_syntax *out)
{
	if (!strcmp(arg, "att") || !strcmp(arg, "att-mnemonic")) {
		*out = ASMFMT_ATT;
		return true;
	}
	if (!strcmp(arg, "intel") || !strcmp(arg, "intel-mnemonic")) {
		*out = ASMFMT_INTEL;
		return true;
	}
	return false;
}

#define VF(m, elem)                                                                                \
	{                                                                                          \
		offsetof(struct vcpu_abi, m), sizeof(((struct vcpu_abi *)0)->m), elem, #m          \
	}

static const struct {
	uint32_t off, size, elem; /* elem: array element size, 0 for a scalar */
	const char *name;
} vcpu_fields[] = {
    VF(tlb, 0),
    VF(gpr, 8),
    VF(rip, 0),
    VF(rflags, 0),
    VF(spill, 8),
    VF(spill_flags, 0),
    VF(host_rsp, 0),
    VF(guest_rsp_save, 0),
    VF(exit_info, 0),
    VF(exit_target, 0),
    VF(irq, 0),
    VF(ac, 0),
    VF(fs_base, 0),
    VF(gs_base, 0),
    VF(kernel_gs_base, 0),
    VF(callout, 8),
    VF(mem_va, 0),
    VF(mem_info, 0),
    VF(mem_host, 0),
    VF(exit_block, 0),
    VF(exit_host_pc, 0),
    VF(enter_target, 0),
    VF(br_host, 0),
    VF(mem_tmp, 0),
    VF(host_ctx, 0),
    VF(sel, 2),
    VF(tsc_offset, 0),
    VF(flags_sp_save, 0),
    VF(flags_sp_load, 0),
    VF(ibl, 0),
    VF(fxsave, 0),
    VF(utlb, 0),
    VF(uibl, 0),
    VF(uibl_tag, 0),
};

bool asmfmt_vcpu_field(uint64_t off, char *buf, size_t n)
{
	for (size_t i = 0; i < sizeof(vcpu_fields) / sizeof(vcpu_fields[0]); i++) {
		if (off < vcpu_fields[i].off || off - vcpu_fields[i].off >= vcpu_fields[i].size)
			continue;
		uint64_t d = off - vcpu_fields[i].off;
		if (vcpu_fields[i].elem && d % vcpu_fields[i].elem == 0)
			snprintf(buf, n, "vcpu.%s[%llu]", vcpu_fields[i].name,
				 (unsigned long long)(d / vcpu_fields[i].elem));
		else if (d)
			snprintf(buf, n, "vcpu.%s+0x%llx", vcpu_fields[i].name,
				 (unsigned long long)d);
		else
			snprintf(buf, n, "vcpu.%s", vcpu_fields[i].name);
		return true;
	}
	return false;
}

static ZyanStatus append(ZydisFormatterBuffer *buf, const char *text, bool token)
{
	if (token)
		ZYAN_CHECK(ZydisFormatterBufferAppend(buf, ZYDIS_TOKEN_SYMBOL));
	ZyanString *s;
	ZyanStringView v;
	ZYAN_CHECK(ZydisFormatterBufferGetString(buf, &s));
	ZYAN_CHECK(ZyanStringViewInsideBuffer(&v, text));
	return ZyanStringAppend(s, &v);
}

/* " <sym+off>" after an address, when the caller's look-up knows it. */
static ZyanStatus append_sym(const struct asmfmt *f, ZydisFormatterBuffer *buf, uint64_t addr)
{
	char name[200], tag[208];
	if (!f->sym || !f->sym(f->sym_opaque, addr, name, sizeof(name)))
		return ZYAN_STATUS_SUCCESS;
	snprintf(tag, sizeof(tag), " <%s>", name);
	return append(buf, tag, false);
}

static bool gs_operand(const struct asmfmt *f, const ZydisDecodedOperand *op)
{
	return f->host && op && op->type == ZYDIS_OPERAND_TYPE_MEMORY &&
	       op->mem.segment == ZYDIS_REGISTER_GS;
}

static ZyanStatus hook_abs(const ZydisFormatter *fmt, ZydisFormatterBuffer *buf,
			   ZydisFormatterContext *ctx)
{
	const struct asmfmt *f = ctx->user_data;
	const ZydisDecodedOperand *op = ctx->operand;
	char name[96];
	if (gs_operand(f, op) && op->mem.base == ZYDIS_REGISTER_NONE &&
	    op->mem.index == ZYDIS_REGISTER_NONE &&
	    asmfmt_vcpu_field((uint64_t)op->mem.disp.value, name, sizeof(name)))
		return append(buf, name, true);
	ZYAN_CHECK(f->print_abs(fmt, buf, ctx));
	ZyanU64 addr;
	if (f->host && op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		return ZYAN_STATUS_SUCCESS; /* a block-local target: the offset says it */
	if (f->host && op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base == ZYDIS_REGISTER_RIP)
		return ZYAN_STATUS_SUCCESS; /* block-local data */
	if (ZYAN_FAILED(
		ZydisCalcAbsoluteAddress(ctx->instruction, op, ctx->runtime_address, &addr)))
		return ZYAN_STATUS_SUCCESS;
	return append_sym(f, buf, addr);
}

static ZyanStatus hook_disp(const ZydisFormatter *fmt, ZydisFormatterBuffer *buf,
			    ZydisFormatterContext *ctx)
{
	const struct asmfmt *f = ctx->user_data;
	const ZydisDecodedOperand *op = ctx->operand;
	char name[96];
	if (gs_operand(f, op) && op->mem.disp.value > 0 &&
	    asmfmt_vcpu_field((uint64_t)op->mem.disp.value, name, sizeof(name))) {
		if (f->syntax == ASMFMT_INTEL) {
			ZYAN_CHECK(ZydisFormatterBufferAppend(buf, ZYDIS_TOKEN_DELIMITER));
			ZYAN_CHECK(append(buf, "+", false));
		}
		return append(buf, name, true);
	}
	return f->print_disp(fmt, buf, ctx);
}

static ZyanStatus hook_imm(const ZydisFormatter *fmt, ZydisFormatterBuffer *buf,
			   ZydisFormatterContext *ctx)
{
	const struct asmfmt *f = ctx->user_data;
	ZYAN_CHECK(f->print_imm(fmt, buf, ctx));
	const ZydisDecodedOperand *op = ctx->operand;
	if (!f->host || op->type != ZYDIS_OPERAND_TYPE_IMMEDIATE || op->imm.is_relative ||
	    ctx->instruction->operand_width != 64) /* a 32-bit half of an address is not one */
		return ZYAN_STATUS_SUCCESS;
	return append_sym(f, buf, op->imm.value.u);
}

void asmfmt_init(struct asmfmt *f, enum asmfmt_syntax syntax)
{
	memset(f, 0, sizeof(*f));
	f->syntax = syntax;
	ZydisDecoderInit(&f->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	ZydisFormatterInit(&f->fmt, syntax == ASMFMT_INTEL ? ZYDIS_FORMATTER_STYLE_INTEL
							   : ZYDIS_FORMATTER_STYLE_ATT);
	ZydisFormatterSetProperty(&f->fmt, ZYDIS_FORMATTER_PROP_HEX_UPPERCASE, ZYAN_FALSE);
	ZydisFormatterSetProperty(&f->fmt, ZYDIS_FORMATTER_PROP_ADDR_PADDING_ABSOLUTE,
				  ZYDIS_PADDING_DISABLED);
	ZydisFormatterSetProperty(&f->fmt, ZYDIS_FORMATTER_PROP_ADDR_PADDING_RELATIVE,
				  ZYDIS_PADDING_DISABLED);
	ZydisFormatterSetProperty(&f->fmt, ZYDIS_FORMATTER_PROP_DISP_PADDING,
				  ZYDIS_PADDING_DISABLED);
	ZydisFormatterSetProperty(&f->fmt, ZYDIS_FORMATTER_PROP_IMM_PADDING,
				  ZYDIS_PADDING_DISABLED);
	f->print_abs = hook_abs;
	ZydisFormatterSetHook(&f->fmt, ZYDIS_FORMATTER_FUNC_PRINT_ADDRESS_ABS,
			      (const void **)&f->print_abs);
	f->print_disp = hook_disp;
	ZydisFormatterSetHook(&f->fmt, ZYDIS_FORMATTER_FUNC_PRINT_DISP,
			      (const void **)&f->print_disp);
	f->print_imm = hook_imm;
	ZydisFormatterSetHook(&f->fmt, ZYDIS_FORMATTER_FUNC_PRINT_IMM,
			      (const void **)&f->print_imm);
}

void asmfmt_set_symbols(struct asmfmt *f, asmfmt_sym_fn fn, void *opaque)
{
	f->sym = fn;
	f->sym_opaque = opaque;
}

size_t asmfmt_insn(struct asmfmt *f, const uint8_t *p, size_t len, uint64_t ip, bool host,
		   char *buf, size_t bufsz)
{
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	f->host = host;
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(&f->dec, p, len, &in, ops)) ||
	    ZYAN_FAILED(ZydisFormatterFormatInstruction(&f->fmt, &in, ops, in.operand_count_visible,
							buf, bufsz, ip, f))) {
		snprintf(buf, bufsz, "(bad)");
		return 0;
	}
	return in.length;
}
