/*
 * Cross-checking Zydis against LLVM's MC disassembler (LLVM-C), the second
 * and independent x86 decoder.  Used by xlat_translate() when
 * XLAT_OPT_CROSSCHECK is set (instruction length, every instruction) and by
 * `pretrans xcheck IMAGE` (linear sweep statistics over a byte range).
 *
 * Operands are compared for a documented subset (xlat_xcheck_operands):
 * the common integer mnemonics (mov add sub and or xor cmp test lea push pop
 * inc dec neg not imul shl shr sar movzx movsx movsxd xchg cmpxchg xadd bt
 * bts btr btc adc sbb) when LLVM spells the mnemonic the same way; what is
 * compared is the set of general-purpose registers (and rip) the explicit
 * operands name, which catches REX/ModRM/SIB interpretation differences.
 */
#ifndef BT_XLAT_XCHECK_H
#define BT_XLAT_XCHECK_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

struct xlat_xcheck; /* opaque: one Zydis decoder + one LLVM disassembler */

enum bt_status xlat_xcheck_create(struct xlat_xcheck **out);
void xlat_xcheck_destroy(struct xlat_xcheck *xc);

/* Length LLVM decodes at p (n bytes available, instruction at va); 0 when
 * LLVM finds no valid instruction.  Prefixes LLVM prints as separate
 * instructions (lock, xacquire/xrelease, rep*) are merged with the
 * instruction they prefix. */
uint32_t xlat_xcheck_length(struct xlat_xcheck *xc, const uint8_t *p, size_t n, gva_t va);

/* 1 if both decoders name the same registers in the explicit operands, 0
 * if not, -1 if not compared (outside the subset, different mnemonic or
 * length, undecodable). */
int xlat_xcheck_operands(struct xlat_xcheck *xc, const uint8_t *p, size_t n, gva_t va);

/* Outcome classes of one sweep position. */
enum xlat_xcheck_class {
	XLAT_XC_AGREE = 0,     /* both decode, same length (and operands, where compared) */
	XLAT_XC_LEN_DIFF,      /* both decode, lengths differ */
	XLAT_XC_ZYDIS_ONLY,    /* only Zydis decodes */
	XLAT_XC_LLVM_ONLY,     /* only LLVM decodes */
	XLAT_XC_BOTH_INVALID,  /* neither decodes (data, padding): skip 1 byte */
	XLAT_XC_OPERANDS_DIFF, /* same length, operand registers differ (subset) */
	XLAT_XC_NCLASSES
};
const char *xlat_xcheck_class_str(enum xlat_xcheck_class c);

#define XLAT_XCHECK_MAX_SAMPLES 16

struct xlat_xcheck_stats {
	uint64_t bytes;			  /* bytes swept */
	uint64_t count[XLAT_XC_NCLASSES]; /* positions per class */
	/* first disagreements (every class but AGREE and BOTH_INVALID), in order */
	uint32_t n_samples;
	struct {
		gva_t va;
		uint8_t cls;	   /* enum xlat_xcheck_class */
		uint8_t zydis_len; /* 0 = invalid */
		uint8_t llvm_len;  /* 0 = invalid */
	} samples[XLAT_XCHECK_MAX_SAMPLES];
	uint64_t operands_compared; /* AGREE/OPERANDS_DIFF positions in the subset */
};

/* Linear sweep of n bytes at p (guest address va), accumulating into *st
 * (zero it first; several ranges may be accumulated).  After a position
 * the sweep advances by Zydis' length (1 if Zydis found none). */
enum bt_status xlat_xcheck_sweep(struct xlat_xcheck *xc, const uint8_t *p, size_t n, gva_t va,
				 struct xlat_xcheck_stats *st);

#endif
