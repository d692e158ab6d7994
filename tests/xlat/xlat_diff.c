/*
 * xlat_diff: differential test of the translator.  From a fixed seed it
 * generates random sequences of non-privileged instructions (assembled with
 * the Zydis encoder), runs each natively and translated (runtime/tc with the
 * identity soft-MMU of tests/xlat/harness.c), and compares all 16 GPRs, the
 * arithmetic flags and DF, and the whole data/stack region.
 *
 *   xlat_diff [-s SEED] [-n CASES] [-v]     exit 0 iff every case matches
 *
 * Layout (fixed addresses so RIP-relative and absolute forms are exercised):
 *   CODE  0x1f000000  generated code (RWX: the native run executes it)
 *   DATA  0x20000000  64 KiB data area; stack at its top; %fs base DATA +
 *                     0x1000, %gs base DATA + 0x2000 in both runs.
 */
#include "tests/xlat/harness.h"
#include "tests/xlat/diffgen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int run_case(struct xh *h, struct dg *g, long index, uint64_t seed, bool verbose)
{
	uint8_t *data = (uint8_t *)(uintptr_t)DG_DATA;
	struct xh_state init, nat;
	dg_generate(g, seed, &init);
	if (g->err) {
		printf("case %ld seed %#" PRIx64 ": generator error\n", index, seed);
		dg_print(g, stdout);
		return 1;
	}
	/* native */
	memcpy(data, g->mem0, DG_DATA_SIZE);
	nat = init;
	xh_native(&nat, (void *)(uintptr_t)DG_CODE, DG_FS_BASE, DG_GS_BASE,
		  (uint64_t)(uintptr_t)h->vcpu.abi);
	memcpy(g->mem_native, data, DG_DATA_SIZE);
	/* translated */
	memcpy(data, g->mem0, DG_DATA_SIZE);
	xh_reset(h);
	/* alternate cold and warm TLBs, chained and unchained exits */
	if (seed & 2)
		tc_tlb_flush(&h->vcpu);
	h->chain = (seed & 4) != 0;
	struct vcpu_abi *a = h->vcpu.abi;
	memcpy(a->gpr, init.gpr, sizeof(a->gpr));
	a->rflags = init.rflags;
	a->irq = VCPU_IRQ_IF;
	a->fs_base = DG_FS_BASE;
	a->gs_base = DG_GS_BASE;
	h->code_lo = DG_CODE;
	h->code_hi = DG_CODE + g->len;
	enum xh_result r = xh_run(h, DG_CODE, DG_CODE + g->len, 100000);
	bool ok = r == XH_OK;
	const uint64_t fmask = 0xcd5;
	if (ok) {
		for (int i = 0; i < 16; i++)
			if (a->gpr[i] != nat.gpr[i])
				ok = false;
		if ((a->rflags & fmask) != (nat.rflags & fmask))
			ok = false;
		if (memcmp(data, g->mem_native, DG_DATA_SIZE) != 0)
			ok = false;
	}
	if (!ok || verbose) {
		printf("case %ld seed %#" PRIx64 ": %s (run result %d, refusal %s at %#" PRIx64
		       ")\n",
		       index, seed, ok ? "ok" : "MISMATCH", r, xlat_refusal_str(h->last_refusal),
		       h->last_rip);
		if (!ok) {
			dg_print(g, stdout);
			for (int i = 0; i < 16; i++)
				if (r == XH_OK && a->gpr[i] != nat.gpr[i])
					printf("  gpr%-2d native %016" PRIx64 " xlat %016" PRIx64
					       "\n",
					       i, nat.gpr[i], a->gpr[i]);
			if (r == XH_OK && (a->rflags & fmask) != (nat.rflags & fmask))
				printf("  rflags native %#" PRIx64 " xlat %#" PRIx64 "\n",
				       nat.rflags & fmask, a->rflags & fmask);
			for (size_t i = 0; r == XH_OK && i < DG_DATA_SIZE; i++)
				if (data[i] != g->mem_native[i]) {
					printf("  mem first difference at %#llx\n",
					       (unsigned long long)(DG_DATA + i));
					break;
				}
		}
	}
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0x5eed;
	long cases = 2000;
	bool verbose = false;
	uint64_t one = 0; /* run just this case seed */
	long first = 0;	  /* first case index */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-s") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			cases = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-1") && i + 1 < argc)
			one = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-k") && i + 1 < argc)
			first = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else {
			fprintf(stderr, "usage: xlat_diff [-s SEED] [-n CASES] [-k FIRST] [-1 "
					"CASESEED] [-v]\n");
			return 2;
		}
	}
	if (dg_map() != 0) {
		fprintf(stderr, "xlat_diff: cannot map the fixed test areas\n");
		return 2;
	}
	struct xh h;
	if (xh_init(&h, DG_CODE, DG_CODE + 1, 0) != BT_OK) {
		fprintf(stderr, "xlat_diff: harness init failed\n");
		return 2;
	}
	struct dg *g = calloc(1, sizeof(*g));
	long failed = 0;
	uint64_t insns = 0, blocks = 0;
	if (one)
		cases = 1;
	for (long c = first; c < first + cases; c++) {
		uint64_t s = one ? one : seed * 0x9e3779b97f4a7c15ull + (uint64_t)c;
		failed += run_case(&h, g, c, s, verbose);
		insns += g->n_insns;
		blocks += h.n_blocks;
		if (failed >= 10)
			break;
	}
	printf("xlat_diff: %ld cases, %" PRIu64 " guest instructions, %" PRIu64 " blocks, %" PRIu64
	       " chained exits, %" PRIu64 " soft-MMU slow paths: %ld mismatches\n",
	       cases, insns, blocks, h.n_chained, h.n_slow, failed);
	xh_fini(&h);
	free(g);
	return failed ? 1 : 0;
}
