/*
 * xlat_bench: translation speed and expansion on a real ELF (a gcc-built
 * binary or a kernel vmlinux, read through pretrans/elf).  Every executable
 * section is swept linearly, in address order:
 * translate the block at va, continue at va + guest_len (or va + 1 after a
 * refusal).  Prints blocks/s, guest MB/s, expansion ratio, refusals and
 * where the host bytes go (enum xlat_code_cat: probes, slow paths, stubs).
 * A benchmark, not a test: no pass/fail beyond "the file could be read"
 * and the categories adding up to the host code.
 *
 *   xlat_bench [-x] [-f] [-u] [-m MAXBYTES] FILE
 *     -x  XLAT_OPT_CROSSCHECK
 *     -u  XLAT_OPT_UNDEF_FLAGS (pretrans build's default where the CPU holds it)
 *     -f  translate only at addresses inside sized function symbols (what
 *         `pretrans build` covers; a vmlinux's int3 padding between
 *         functions otherwise counts as millions of one-instruction blocks)
 */
#include "pretrans/base/clock.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xlat/xlat.h"
#include "pretrans/xcheck/xcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sec {
	const uint8_t *p;
	gva_t va;
	size_t n;
};

static size_t sec_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct sec *s = opaque;
	if (va < s->va || va >= s->va + s->n)
		return 0;
	size_t n = BT_MIN(len, (size_t)(s->va + s->n - va));
	memcpy(buf, s->p + (va - s->va), n);
	return n;
}

/* Is va inside a sized function symbol?  fn sorted by start. */
static bool in_function(const gva_t (*fn)[2], size_t n, gva_t va)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (fn[mid][0] <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && va < fn[lo - 1][1];
}

static int cmp_range(const void *a, const void *b)
{
	gva_t x = ((const gva_t *)a)[0], y = ((const gva_t *)b)[0];
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	bool funcs = false;
	struct xlat_options opts = {.checker = &xcheck_checker_ops};
	uint64_t max_bytes = ~0ull;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-x"))
			opts.flags |= XLAT_OPT_CROSSCHECK;
		else if (!strcmp(argv[i], "-f"))
			funcs = true;
		else if (!strcmp(argv[i], "-u"))
			opts.flags |= XLAT_OPT_UNDEF_FLAGS;
		else if (!strcmp(argv[i], "-m") && i + 1 < argc)
			max_bytes = strtoull(argv[++i], NULL, 0);
	}
	if (i + 1 != argc) {
		fprintf(stderr, "usage: xlat_bench [-x] [-f] [-u] [-m MAXBYTES] FILE\n");
		return 2;
	}
	struct elfimg *img;
	if (elfimg_open_nohash(argv[i], &img) != BT_OK)
		return 2; /* elfimg logged the file and the problem */
	/* sized function symbols by start (a nested one hides the end of
	 * its container: good enough for a measurement) */
	size_t nfn = 0;
	gva_t(*fn)[2] = calloc(img->nsyms + 1, sizeof(*fn));
	if (!fn)
		return 2;
	for (size_t k = 0; k < img->nsyms; k++)
		if (img->syms[k].type == 2 /* STT_FUNC */ && img->syms[k].size > 0) {
			fn[nfn][0] = img->syms[k].addr;
			fn[nfn][1] = img->syms[k].addr + img->syms[k].size;
			nfn++;
		}
	qsort(fn, nfn, sizeof(*fn), cmp_range);
	if (funcs && nfn == 0) {
		fprintf(stderr, "xlat_bench: %s: no sized function symbols for -f\n", argv[i]);
		return 2;
	}
	struct xlat_ctx *ctx;
	if (xlat_create(&opts, &ctx) != BT_OK)
		return 2;
	uint64_t cats[XLAT_NCATS] = {0};
	uint64_t blocks = 0, insns = 0, gbytes = 0, hbytes = 0, refused[XLAT_NREFUSALS] = {0};
	uint64_t exits[XLAT_NEXIT_KINDS] = {0}, swept = 0, flags_entry = 0;
	uint64_t t0 = bt_now_ns();
	for (size_t s = 0; s < img->ncode && swept < max_bytes; s++) {
		const struct elfimg_code *c = &img->code[s];
		struct sec sc = {c->bytes, c->start, (size_t)(c->end - c->start)};
		struct xlat_source src = {.read = sec_read, .opaque = &sc};
		gva_t va = sc.va;
		while (va < sc.va + sc.n && swept < max_bytes) {
			struct bt_block b;
			if (funcs && !in_function(fn, nfn, va)) {
				va++;
				continue;
			}
			if (xlat_translate(ctx, &src, va, &b) != BT_OK)
				return 2;
			if (b.refusal != XLAT_OK) {
				if (refused[b.refusal]++ < 3 && b.refusal != XLAT_REFUSE_NOBYTES) {
					gva_t at = b.refusal_addr;
					printf("  refused %s at 0x%" PRIx64 ":",
					       xlat_refusal_str(b.refusal), at);
					for (gva_t k = at; k < at + 8 && k < sc.va + sc.n; k++)
						printf(" %02x", sc.p[k - sc.va]);
					printf("\n");
				}
				va++;
				swept++;
				continue;
			}
			blocks++;
			/* flags live into the block: the entry check is the
			 * flag-free form, which starts by spilling rcx */
			static const uint8_t save[4] = {0x65, 0x48, 0x89, 0x0c};
			if (b.code_len > 4 && !memcmp(b.code, save, 4))
				flags_entry++;
			insns += b.n_insns;
			gbytes += b.guest_len;
			hbytes += b.code_len;
			for (uint32_t k = 0; k < b.n_exits; k++)
				exits[b.exits[k].kind]++;
			uint32_t bc[XLAT_NCATS];
			xlat_cat_bytes(ctx, bc);
			for (int k = 0; k < XLAT_NCATS; k++)
				cats[k] += bc[k];
			va += b.guest_len;
			swept += b.guest_len;
		}
	}
	double dt = (double)(bt_now_ns() - t0) * 1e-9;
	printf("xlat_bench %s%s%s\n", argv[i],
	       opts.flags & XLAT_OPT_CROSSCHECK ? " (cross-check)" : "",
	       funcs ? " (function symbols only)" : "");
	printf("  %" PRIu64 " blocks, %" PRIu64 " instructions, %.2f MB guest code in %.3f s\n",
	       blocks, insns, (double)gbytes / 1e6, dt);
	printf("  %.0f blocks/s, %.2f MB/s guest, %.0f instructions/s\n", (double)blocks / dt,
	       (double)gbytes / 1e6 / dt, (double)insns / dt);
	printf("  expansion: %.2f host bytes per guest byte (%.1f per block)\n",
	       gbytes ? (double)hbytes / (double)gbytes : 0.0,
	       blocks ? (double)hbytes / (double)blocks : 0.0);
	printf("  blocks with live-in flags and rcx (flag-free interrupt check, rcx spilled): "
	       "%" PRIu64 "\n",
	       flags_entry);
	printf("  refusals:");
	for (int r = 1; r < XLAT_NREFUSALS; r++)
		printf(" %s=%" PRIu64, xlat_refusal_str((enum xlat_refusal)r), refused[r]);
	printf("\n  exits:");
	for (int k = 1; k < XLAT_NEXIT_KINDS; k++)
		printf(" %s=%" PRIu64, xlat_exit_kind_str((enum xlat_exit_kind)k), exits[k]);
	printf("\n  host bytes by category (bytes, share of host code, per guest byte):\n");
	uint64_t sum = 0;
	for (int k = 0; k < XLAT_NCATS; k++) {
		sum += cats[k];
		printf("    %-9s %12" PRIu64 " %6.2f%% %6.2f\n",
		       xlat_code_cat_str((enum xlat_code_cat)k), cats[k],
		       hbytes ? 100.0 * (double)cats[k] / (double)hbytes : 0.0,
		       gbytes ? (double)cats[k] / (double)gbytes : 0.0);
	}
	if (sum != hbytes) {
		fprintf(stderr,
			"xlat_bench: categories sum to %" PRIu64 ", host code is %" PRIu64 "\n",
			sum, hbytes);
		return 3;
	}
	xlat_destroy(ctx);
	elfimg_close(img);
	free(fn);
	return 0;
}
