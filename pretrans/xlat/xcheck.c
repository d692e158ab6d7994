/*
 * Zydis vs LLVM MC cross-check.  Owns one Zydis decoder and one LLVM-C
 * disassembler context per struct xlat_xcheck.
 *
 * Invariants
 *  1. Never more than 15 bytes are handed to either decoder per position.
 *  2. LLVM target initialisation is idempotent (LLVM guards it), so
 *     creating several checkers is safe; the checker itself holds no
 *     global state.
 */
#include "pretrans/xlat/xcheck.h"

#include <Zydis/Zydis.h>
#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct xlat_xcheck {
	ZydisDecoder dec;
	LLVMDisasmContextRef llvm;
};

enum bt_status xlat_xcheck_create(struct xlat_xcheck **out)
{
	if (!out)
		return BT_ERR_INVALID;
	struct xlat_xcheck *xc = calloc(1, sizeof(*xc));
	if (!xc)
		return BT_ERR_NOMEM;
	LLVMInitializeX86TargetInfo();
	LLVMInitializeX86TargetMC();
	LLVMInitializeX86Disassembler();
	xc->llvm = LLVMCreateDisasm("x86_64-linux-gnu", NULL, 0, NULL, NULL);
	if (!xc->llvm) {
		free(xc);
		return BT_ERR_UNSUPPORTED;
	}
	if (ZYAN_FAILED(
		ZydisDecoderInit(&xc->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64))) {
		LLVMDisasmDispose(xc->llvm);
		free(xc);
		return BT_ERR_INTERNAL;
	}
	*out = xc;
	return BT_OK;
}

void xlat_xcheck_destroy(struct xlat_xcheck *xc)
{
	if (!xc)
		return;
	LLVMDisasmDispose(xc->llvm);
	free(xc);
}

/* LLVM prints some prefixes as an instruction of their own ("lock",
 * "xacquire", "rep", ...) followed by the instruction they modify; those
 * splits keep the meaning, so their lengths are added up.  A lone "rex64"
 * or "data16" is not merged: it is a real difference of interpretation. */
static bool split_prefix(const char *text)
{
	static const char *const names[] = {"lock", "xacquire", "xrelease", "rep",
					    "repe", "repne",	"repz",	    "repnz"};
	while (*text == ' ' || *text == '\t')
		text++;
	size_t len = strlen(text);
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	for (size_t i = 0; i < BT_ARRAY_SIZE(names); i++)
		if (len == strlen(names[i]) && !strncmp(text, names[i], len))
			return true;
	return false;
}

uint32_t xlat_xcheck_length(struct xlat_xcheck *xc, const uint8_t *p, size_t n, gva_t va)
{
	uint8_t buf[16];
	char text[128];
	if (n > 15)
		n = 15;
	memcpy(buf, p, n);
	size_t total = 0;
	while (total < n) {
		size_t l = LLVMDisasmInstruction(xc->llvm, buf + total, n - total, va + total, text,
						 sizeof(text));
		if (l == 0)
			return 0;
		total += l;
		if (!split_prefix(text))
			return (uint32_t)total;
	}
	return 0; /* nothing but prefixes */
}

const char *xlat_xcheck_class_str(enum xlat_xcheck_class c)
{
	static const char *const names[] = {"agree", "length-differs", "zydis-only", "llvm-only",
					    "both-invalid"};
	return (unsigned)c < BT_ARRAY_SIZE(names) ? names[c] : "?";
}

enum bt_status xlat_xcheck_sweep(struct xlat_xcheck *xc, const uint8_t *p, size_t n, gva_t va,
				 struct xlat_xcheck_stats *st)
{
	if (!xc || (!p && n) || !st)
		return BT_ERR_INVALID;
	size_t pos = 0;
	while (pos < n) {
		size_t avail = BT_MIN(n - pos, (size_t)15);
		ZydisDecodedInstruction d;
		uint32_t zl = 0;
		if (ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&xc->dec, NULL, p + pos, avail, &d)))
			zl = d.length;
		uint32_t ll = xlat_xcheck_length(xc, p + pos, avail, va + pos);
		enum xlat_xcheck_class c;
		if (zl && ll)
			c = zl == ll ? XLAT_XC_AGREE : XLAT_XC_LEN_DIFF;
		else if (zl)
			c = XLAT_XC_ZYDIS_ONLY;
		else if (ll)
			c = XLAT_XC_LLVM_ONLY;
		else
			c = XLAT_XC_BOTH_INVALID;
		st->count[c]++;
		if (c != XLAT_XC_AGREE && c != XLAT_XC_BOTH_INVALID &&
		    st->n_samples < XLAT_XCHECK_MAX_SAMPLES) {
			st->samples[st->n_samples].va = va + pos;
			st->samples[st->n_samples].cls = (uint8_t)c;
			st->samples[st->n_samples].zydis_len = (uint8_t)zl;
			st->samples[st->n_samples].llvm_len = (uint8_t)ll;
			st->n_samples++;
		}
		pos += zl ? zl : 1;
	}
	st->bytes += n;
	return BT_OK;
}
