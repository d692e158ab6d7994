/*
 * Random instruction-sequence generator of the differential translator test
 * (tests/xlat/xlat_diff.c).  Deterministic for a seed; assembles with the
 * Zydis encoder straight into the fixed code area.
 */
#ifndef BT_TESTS_XLAT_DIFFGEN_H
#define BT_TESTS_XLAT_DIFFGEN_H

#include "tests/xlat/harness.h"

#include <stdio.h>

#define DG_CODE	     0x1f000000ull
#define DG_CODE_SIZE 0x10000ull
#define DG_DATA	     0x20000000ull
#define DG_DATA_SIZE 0x10000ull
#define DG_FS_BASE   (DG_DATA + 0x1000)
#define DG_GS_BASE   (DG_DATA + 0x2000)
#define DG_STACK_TOP (DG_DATA + 0xf000)
#define DG_FX_XMM    160 /* XMM0-15 in an fxsave64 image */
#define DG_FX_MXCSR  24
#define DG_FX_ST     32 /* ST0-7 / MM0-7, 16 bytes each */

struct dg {
	uint64_t rng;
	uint32_t len;	  /* bytes of generated code (the native tail follows) */
	uint32_t n_insns; /* instructions generated */
	bool err;	  /* the encoder rejected something (a generator bug) */
	uint32_t avoid;	  /* registers mem_form must not use as base/index */
	uint8_t mem0[DG_DATA_SIZE];
	uint8_t mem_native[DG_DATA_SIZE];
};

/* Map CODE (RWX) and DATA at their fixed addresses; 0 on success. */
int dg_map(void);
/* Generate one case from seed: code at DG_CODE, initial memory in g->mem0,
 * initial registers/flags/XMM in *init.  The code is followed by a jump to
 * xh_native_ret (outside [DG_CODE, DG_CODE + len)). */
void dg_generate(struct dg *g, uint64_t seed, struct xh_state *init);
void dg_print(const struct dg *g, FILE *f);

#endif
