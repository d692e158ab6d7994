/*
 * Cross-checking Zydis against LLVM's MC disassembler (LLVM-C), the second
 * and independent x86 decoder: a library of its own, linked only by the
 * pretrans programs, so the translator core and btvm never map LLVM.  Used
 * by xlat_translate() through xcheck_checker_ops when XLAT_OPT_CROSSCHECK is
 * set (instruction length and operands, every instruction) and by `pretrans
 * xcheck IMAGE` (linear sweep statistics over a byte range).
 *
 * Operands are compared for a documented subset (xcheck_operands):
 * the common integer mnemonics (mov add sub and or xor cmp test lea push pop
 * inc dec neg not imul shl shr sar movzx movsx movsxd xchg cmpxchg xadd bt
 * bts btr btc adc sbb) when LLVM spells the mnemonic the same way; what is
 * compared is the set of general-purpose registers (and rip) the explicit
 * operands name, which catches REX/ModRM/SIB interpretation differences.
 */
#ifndef BT_XCHECK_XCHECK_H
#define BT_XCHECK_XCHECK_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/xlat.h"

struct xcheck; /* opaque: one Zydis decoder + one LLVM disassembler */

enum bt_status xcheck_create(struct xcheck **out);
void xcheck_destroy(struct xcheck *xc);

/* Length LLVM decodes at p (n bytes available, instruction at va); 0 when
 * LLVM finds no valid instruction.  Prefixes LLVM prints as separate
 * instructions (lock, xacquire/xrelease, rep*) are merged with the
 * instruction they prefix. */
uint32_t xcheck_length(struct xcheck *xc, const uint8_t *p, size_t n, gva_t va);

/* 1 if both decoders name the same registers in the explicit operands, 0
 * if not, -1 if not compared (outside the subset, different mnemonic or
 * length, undecodable). */
int xcheck_operands(struct xcheck *xc, const uint8_t *p, size_t n, gva_t va);

/* The translator's second decoder (struct xlat_options.checker): agrees()
 * is xcheck_length() == len and xcheck_operands() != 0, remembered per
 * instance for instructions that agreed (by their bytes: a verdict depends
 * on nothing else, see xcheck.c "The memo of agreements"). */
extern const struct xlat_checker_ops xcheck_checker_ops;
/* An instance's checks answered by the memo and run through both decoders. */
void xcheck_checker_counts(const void *inst, uint64_t *memo_hits, uint64_t *checked);

/* Outcome classes of one sweep position. */
enum xcheck_class {
	XCHECK_AGREE = 0,     /* both decode, same length (and operands, where compared) */
	XCHECK_LEN_DIFF,      /* both decode, lengths differ */
	XCHECK_ZYDIS_ONLY,    /* only Zydis decodes */
	XCHECK_LLVM_ONLY,     /* only LLVM decodes */
	XCHECK_BOTH_INVALID,  /* neither decodes (data, padding): skip 1 byte */
	XCHECK_OPERANDS_DIFF, /* same length, operand registers differ (subset) */
	XCHECK_NCLASSES
};
const char *xcheck_class_str(enum xcheck_class c);

#define XCHECK_MAX_SAMPLES 16

struct xcheck_stats {
	uint64_t bytes;			 /* bytes swept */
	uint64_t count[XCHECK_NCLASSES]; /* positions per class */
	/* first disagreements (every class but AGREE and BOTH_INVALID), in order */
	uint32_t n_samples;
	struct {
		gva_t va;
		uint8_t cls;	   /* enum xcheck_class */
		uint8_t zydis_len; /* 0 = invalid */
		uint8_t llvm_len;  /* 0 = invalid */
	} samples[XCHECK_MAX_SAMPLES];
	uint64_t operands_compared; /* AGREE/OPERANDS_DIFF positions in the subset */
};

/* Linear sweep of n bytes at p (guest address va), accumulating into *st
 * (zero it first; several ranges may be accumulated).  After a position
 * the sweep advances by Zydis' length (1 if Zydis found none). */
enum bt_status xcheck_sweep(struct xcheck *xc, const uint8_t *p, size_t n, gva_t va,
			    struct xcheck_stats *st);

#endif
