/*
 * `pretrans xcheck IMAGE`: Zydis against LLVM MC over the code discovery
 * finds (every sized function symbol's bytes and swept sections; bytes
 * between functions are not code and are not swept), using the translator's
 * cross-check API (pretrans/xcheck/xcheck.h).  Prints counts per outcome and
 * explains the first disagreements with their bytes and Zydis' reading.
 */
#include "pretrans/cmds.h"

#include "pretrans/base/log.h"
#include "pretrans/discover.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xcheck/xcheck.h"

#include <Zydis/Zydis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *explain(enum xcheck_class c)
{
	switch (c) {
	case XCHECK_LEN_DIFF:
		return "the decoders split the bytes differently (prefix or operand-size "
		       "handling); the translator refuses blocks containing it";
	case XCHECK_ZYDIS_ONLY:
		return "LLVM rejects an encoding Zydis accepts (often a newer or "
		       "vendor-specific instruction); refused under --crosscheck";
	case XCHECK_LLVM_ONLY:
		return "Zydis rejects an encoding LLVM accepts; the translator cannot decode it "
		       "either (undecodable)";
	default:
		return "";
	}
}

int cmd_xcheck(int argc, char **argv)
{
	if (argc >= 2 && argv[1][0] == '-')
		return bt_cli_usage("xcheck: option '%s' is unknown", argv[1]);
	if (argc != 2)
		return bt_cli_usage(argc < 2 ? "xcheck: need an IMAGE"
					     : "xcheck: unexpected argument '%s' after IMAGE",
				    argc > 2 ? argv[2] : "");

	struct elfimg *img;
	enum bt_status s = elfimg_open(argv[1], &img);
	if (s != BT_OK)
		return pretrans_exit_code(s);
	struct discover_plan *plan = NULL;
	struct xcheck *xc = NULL;
	struct xcheck_stats *st = calloc(1, sizeof(*st));
	if (!st)
		s = BT_ERR_NOMEM;
	if (s == BT_OK)
		s = discover_plan(img, &plan);
	if (s == BT_OK)
		s = xcheck_create(&xc);
	size_t regions = 0;
	for (size_t i = 0; s == BT_OK && i < plan->n; i++) {
		const struct discover_func *f = &plan->f[i];
		if (f->kind == DISCOVER_SEED)
			continue;
		const struct elfimg_code *c = elfimg_code_at(img, f->start);
		s = xcheck_sweep(xc, c->bytes + (f->start - c->start), f->end - f->start, f->start,
				 st);
		regions++;
	}
	if (s == BT_OK) {
		printf("xcheck %s: %zu regions, %llu bytes swept\n", argv[1], regions,
		       (unsigned long long)st->bytes);
		for (int k = 0; k < XCHECK_NCLASSES; k++)
			printf("  %-14s %llu\n", xcheck_class_str((enum xcheck_class)k),
			       (unsigned long long)st->count[k]);
		for (uint32_t i = 0; i < st->n_samples; i++) {
			gva_t va = st->samples[i].va;
			const struct elfimg_code *c = elfimg_code_at(img, va);
			const uint8_t *p = c->bytes + (va - c->start);
			size_t avail = BT_MIN((size_t)(c->end - va), 15);
			char hex[64] = "";
			for (size_t b = 0; b < avail && b < 15; b++)
				snprintf(hex + 3 * b, sizeof(hex) - 3 * b, "%02x ", p[b]);
			ZydisDisassembledInstruction in;
			bool zok = ZYAN_SUCCESS(
			    ZydisDisassembleATT(ZYDIS_MACHINE_MODE_LONG_64, va, p, avail, &in));
			const char *why = explain((enum xcheck_class)st->samples[i].cls);
			if (st->samples[i].cls == XCHECK_LEN_DIFF && st->samples[i].llvm_len == 1 &&
			    p[0] == 0xf0)
				why = "LLVM MC returns a LOCK (f0) prefix as an instruction of its "
				      "own; "
				      "a false disagreement, but the translator refuses the block";
			printf("  %#llx: %s: zydis %u bytes (%s), llvm %u bytes\n    bytes %s\n    "
			       "%s\n",
			       (unsigned long long)va,
			       xcheck_class_str((enum xcheck_class)st->samples[i].cls),
			       st->samples[i].zydis_len, zok ? in.text : "invalid",
			       st->samples[i].llvm_len, hex, why);
		}
	}
	xcheck_destroy(xc);
	discover_plan_free(plan);
	free(st);
	elfimg_close(img);
	return pretrans_exit_code(s);
}
