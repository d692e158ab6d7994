/*
 * Zydis vs LLVM MC cross-check.  Owns one Zydis decoder and one LLVM-C
 * disassembler context per struct xcheck.
 *
 * Invariants
 *  1. Never more than 15 bytes are handed to either decoder per position.
 *  2. LLVM target initialisation is idempotent (LLVM guards it), so
 *     creating several checkers is safe; the checker itself holds no
 *     global state.
 */
#include "pretrans/xcheck/xcheck.h"

#include "pretrans/base/hash.h"
#include "pretrans/base/log.h"

#include <Zydis/Zydis.h>
#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>
#include <stdbool.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

struct xcheck {
	ZydisDecoder dec;
	LLVMDisasmContextRef llvm;
	/* register names (GPRs, rip, eip) sorted for bsearch */
	struct regname {
		const char *name;
		ZydisRegister reg;
	} names[96];
	size_t n_names;
	/* instructions both decoders agreed on (checker_agrees), by their
	 * bytes: see memo_find */
	struct memo_slot {
		uint8_t len; /* 0: empty */
		uint8_t bytes[15];
	} * memo;
	uint64_t memo_hits, memo_misses;
};

/* 64 Ki slots of 16 bytes: 1 MiB per checker (one per translating thread) */
#define MEMO_BITS 16

/* A set of Zydis registers (GPRs of every width and rip/eip). */
struct regset {
	uint64_t w[(ZYDIS_REGISTER_MAX_VALUE + 64) / 64];
};

static bool is_named_reg(ZydisRegister r)
{
	ZydisRegisterClass c = ZydisRegisterGetClass(r);
	return c == ZYDIS_REGCLASS_GPR8 || c == ZYDIS_REGCLASS_GPR16 || c == ZYDIS_REGCLASS_GPR32 ||
	       c == ZYDIS_REGCLASS_GPR64 || r == ZYDIS_REGISTER_RIP || r == ZYDIS_REGISTER_EIP;
}

static void regset_add(struct regset *s, ZydisRegister r)
{
	if (r != ZYDIS_REGISTER_NONE && is_named_reg(r))
		s->w[r / 64] |= 1ull << (r % 64);
}

static int cmp_regname(const void *a, const void *b)
{
	return strcmp(((const struct regname *)a)->name, ((const struct regname *)b)->name);
}

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;

static void llvm_init(void)
{
	LLVMInitializeX86TargetInfo();
	LLVMInitializeX86TargetMC();
	LLVMInitializeX86Disassembler();
}

enum bt_status xcheck_create(struct xcheck **out)
{
	if (!out)
		return BT_ERR_INVALID;
	struct xcheck *xc = calloc(1, sizeof(*xc));
	if (!xc)
		return BT_ERR_NOMEM;
	/* LLVM's target registry is a global list: registering from two
	 * threads at once corrupts it (pretrans builds hung in lookupTarget) */
	pthread_once(&llvm_once, llvm_init);
	xc->llvm = LLVMCreateDisasm("x86_64-linux-gnu", NULL, 0, NULL, NULL);
	if (!xc->llvm) {
		free(xc);
		return BT_ERR_UNSUPPORTED;
	}
	for (int r = 1; r <= ZYDIS_REGISTER_MAX_VALUE && xc->n_names < BT_ARRAY_SIZE(xc->names);
	     r++) {
		const char *name = ZydisRegisterGetString((ZydisRegister)r);
		if (name && is_named_reg((ZydisRegister)r)) {
			xc->names[xc->n_names].name = name;
			xc->names[xc->n_names].reg = (ZydisRegister)r;
			xc->n_names++;
		}
	}
	qsort(xc->names, xc->n_names, sizeof(xc->names[0]), cmp_regname);
	/* Intel syntax: mnemonics and register names spelled as Zydis does */
	LLVMSetDisasmOptions(xc->llvm, LLVMDisassembler_Option_AsmPrinterVariant);
	if (ZYAN_FAILED(
		ZydisDecoderInit(&xc->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64))) {
		LLVMDisasmDispose(xc->llvm);
		free(xc);
		return BT_ERR_INTERNAL;
	}
	*out = xc;
	return BT_OK;
}

void xcheck_destroy(struct xcheck *xc)
{
	if (!xc)
		return;
	LLVMDisasmDispose(xc->llvm);
	free(xc->memo);
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

/* LLVM's length at p, with split prefixes merged; text gets the text of
 * the instruction itself (Intel syntax). */
static uint32_t llvm_decode(struct xcheck *xc, const uint8_t *p, size_t n, gva_t va, char *text,
			    size_t text_len)
{
	uint8_t buf[16];
	if (n > 15)
		n = 15;
	memcpy(buf, p, n);
	size_t total = 0;
	while (total < n) {
		size_t l = LLVMDisasmInstruction(xc->llvm, buf + total, n - total, va + total, text,
						 text_len);
		if (l == 0)
			return 0;
		total += l;
		if (!split_prefix(text))
			return (uint32_t)total;
	}
	return 0; /* nothing but prefixes */
}

uint32_t xcheck_length(struct xcheck *xc, const uint8_t *p, size_t n, gva_t va)
{
	char text[160];
	return llvm_decode(xc, p, n, va, text, sizeof(text));
}

/* Mnemonics whose operands are compared (documented in xcheck.h). */
static const ZydisMnemonic operand_subset[] = {
    ZYDIS_MNEMONIC_MOV,	  ZYDIS_MNEMONIC_ADD,	 ZYDIS_MNEMONIC_SUB,  ZYDIS_MNEMONIC_AND,
    ZYDIS_MNEMONIC_OR,	  ZYDIS_MNEMONIC_XOR,	 ZYDIS_MNEMONIC_CMP,  ZYDIS_MNEMONIC_TEST,
    ZYDIS_MNEMONIC_LEA,	  ZYDIS_MNEMONIC_PUSH,	 ZYDIS_MNEMONIC_POP,  ZYDIS_MNEMONIC_INC,
    ZYDIS_MNEMONIC_DEC,	  ZYDIS_MNEMONIC_NEG,	 ZYDIS_MNEMONIC_NOT,  ZYDIS_MNEMONIC_IMUL,
    ZYDIS_MNEMONIC_SHL,	  ZYDIS_MNEMONIC_SHR,	 ZYDIS_MNEMONIC_SAR,  ZYDIS_MNEMONIC_MOVZX,
    ZYDIS_MNEMONIC_MOVSX, ZYDIS_MNEMONIC_MOVSXD, ZYDIS_MNEMONIC_XCHG, ZYDIS_MNEMONIC_CMPXCHG,
    ZYDIS_MNEMONIC_XADD,  ZYDIS_MNEMONIC_BT,	 ZYDIS_MNEMONIC_BTS,  ZYDIS_MNEMONIC_BTR,
    ZYDIS_MNEMONIC_BTC,	  ZYDIS_MNEMONIC_ADC,	 ZYDIS_MNEMONIC_SBB,
};

/* Zydis' decoding d/ops against LLVM's text of the same bytes (ll bytes
 * long): 1 same registers, 0 not, -1 not compared (see xcheck_operands). */
static int operands_cmp(const struct xcheck *xc, const ZydisDecodedInstruction *d,
			const ZydisDecodedOperand *ops, const char *text, uint32_t ll)
{
	bool in_subset = false;
	for (size_t i = 0; i < BT_ARRAY_SIZE(operand_subset); i++)
		if (operand_subset[i] == d->mnemonic)
			in_subset = true;
	/* mov to/from a segment register: Zydis names the 16-bit register, LLVM
	 * the 32-bit one; a spelling difference, and privileged anyway */
	for (int i = 0; i < d->operand_count_visible; i++)
		if (ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(ops[i].reg.value) == ZYDIS_REGCLASS_SEGMENT)
			in_subset = false;
	if (!in_subset || ll != d->length)
		return -1;
	/* LLVM Intel syntax: "\tmnemonic\toperands"; same mnemonic or no verdict */
	const char *t = text;
	while (*t == ' ' || *t == '\t')
		t++;
	const char *zm = ZydisMnemonicGetString(d->mnemonic);
	size_t ml = strcspn(t, " \t");
	if (ml != strlen(zm) || strncmp(t, zm, ml) != 0)
		return -1;
	struct regset zs, ls;
	memset(&zs, 0, sizeof(zs));
	memset(&ls, 0, sizeof(ls));
	for (int i = 0; i < d->operand_count_visible; i++) {
		if (ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER) {
			regset_add(&zs, ops[i].reg.value);
		} else if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY) {
			regset_add(&zs, ops[i].mem.base);
			regset_add(&zs, ops[i].mem.index);
		}
	}
	/* register names among LLVM's operand tokens */
	for (const char *q = t + ml; *q;) {
		if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9'))) {
			q++;
			continue;
		}
		char tok[16];
		size_t k = 0;
		while (((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')) &&
		       k + 1 < sizeof(tok))
			tok[k++] = *q++;
		tok[k] = 0;
		while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9'))
			q++;
		struct regname key = {.name = tok};
		const struct regname *hit =
		    bsearch(&key, xc->names, xc->n_names, sizeof(key), cmp_regname);
		if (hit)
			regset_add(&ls, hit->reg);
	}
	return memcmp(&zs, &ls, sizeof(zs)) == 0 ? 1 : 0;
}

int xcheck_operands(struct xcheck *xc, const uint8_t *p, size_t n, gva_t va)
{
	ZydisDecodedInstruction d;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	char text[160];
	if (n > 15)
		n = 15;
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(&xc->dec, p, n, &d, ops)))
		return -1;
	return operands_cmp(xc, &d, ops, text, llvm_decode(xc, p, n, va, text, sizeof(text)));
}

const char *xcheck_class_str(enum xcheck_class c)
{
	static const char *const names[] = {"agree",	 "length-differs", "zydis-only",
					    "llvm-only", "both-invalid",   "operands-differ"};
	return (unsigned)c < BT_ARRAY_SIZE(names) ? names[c] : "?";
}

enum bt_status xcheck_sweep(struct xcheck *xc, const uint8_t *p, size_t n, gva_t va,
			    struct xcheck_stats *st)
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
		uint32_t ll = xcheck_length(xc, p + pos, avail, va + pos);
		enum xcheck_class c;
		if (zl && ll && zl == ll) {
			int op = xcheck_operands(xc, p + pos, avail, va + pos);
			if (op >= 0)
				st->operands_compared++;
			c = op == 0 ? XCHECK_OPERANDS_DIFF : XCHECK_AGREE;
		} else if (zl && ll)
			c = XCHECK_LEN_DIFF;
		else if (zl)
			c = XCHECK_ZYDIS_ONLY;
		else if (ll)
			c = XCHECK_LLVM_ONLY;
		else
			c = XCHECK_BOTH_INVALID;
		st->count[c]++;
		if (c != XCHECK_AGREE && c != XCHECK_BOTH_INVALID &&
		    st->n_samples < XCHECK_MAX_SAMPLES) {
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

static enum bt_status checker_create(void **out)
{
	struct xcheck *xc;
	BT_TRY(xcheck_create(&xc));
	/* without the memo every check runs both decoders, as before */
	xc->memo = calloc((size_t)1 << MEMO_BITS, sizeof(*xc->memo));
	*out = xc;
	return BT_OK;
}

static void checker_destroy(void *inst)
{
	struct xcheck *xc = inst;
	if (xc && xc->memo_hits + xc->memo_misses)
		bt_debug(LOG_XLAT,
			 "cross-check: %llu instructions answered by the memo, %llu checked",
			 (unsigned long long)xc->memo_hits, (unsigned long long)xc->memo_misses);
	xcheck_destroy(inst);
}

/*
 * The memo of agreements.  A verdict depends only on the instruction's own
 * bytes: both decoders consumed exactly len bytes, so the bytes after them
 * decided nothing, and the address only shifts the numbers LLVM prints
 * (branch targets, never a register name), which the comparison skips.
 * So an instruction whose bytes both decoders agreed on once agrees again
 * anywhere, and only agreements are kept (a slot holds the bytes whole, so
 * a hash collision is a miss, never a wrong verdict).  Kernel code repeats
 * its instructions (the same moves, pushes, calls' ModRM forms), and the
 * blocks of a function overlap: most checks are answered here without
 * running LLVM.
 */
static struct memo_slot *memo_slot(struct xcheck *xc, const uint8_t *p, uint32_t len)
{
	uint64_t h = bt_hash64(p, len); /* FNV-1a: its low bits mix poorly */
	h ^= h >> 29;
	return &xc->memo[(h * 0xbf58476d1ce4e5b9ull) >> (64 - MEMO_BITS)];
}

static bool checker_agrees(void *inst, const uint8_t *p, size_t n, gva_t va, uint32_t len)
{
	struct xcheck *xc = inst;
	struct memo_slot *m = NULL;
	if (len >= 1 && len <= 15 && len <= n && xc->memo) {
		m = memo_slot(xc, p, len);
		if (m->len == len && memcmp(m->bytes, p, len) == 0) {
			xc->memo_hits++;
			return true;
		}
		xc->memo_misses++;
	}
	char text[160];
	size_t avail = n > 15 ? 15 : n;
	uint32_t ll = llvm_decode(xc, p, avail, va, text, sizeof(text));
	if (ll != len)
		return false;
	ZydisDecodedInstruction d;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(&xc->dec, p, avail, &d, ops)) &&
	    operands_cmp(xc, &d, ops, text, ll) == 0)
		return false;
	if (m) {
		m->len = (uint8_t)len;
		memcpy(m->bytes, p, len);
	}
	return true;
}

void xcheck_checker_counts(const void *inst, uint64_t *memo_hits, uint64_t *checked)
{
	const struct xcheck *xc = inst;
	*memo_hits = xc->memo_hits;
	*checked = xc->memo_misses;
}

const struct xlat_checker_ops xcheck_checker_ops = {
    .create = checker_create,
    .destroy = checker_destroy,
    .agrees = checker_agrees,
};
