/*
 * xlat_diff: differential test of the translator.  From a fixed seed it
 * generates random sequences of non-privileged instructions (assembled with
 * the Zydis encoder), runs each natively and translated (runtime/tc with the
 * identity soft-MMU of tests/xlat/harness.c), and compares all 16 GPRs, the
 * arithmetic flags and DF, XMM0-15 and MXCSR, and the whole data/stack
 * region.
 *
 *   xlat_diff [-s SEED] [-n CASES] [-F] [-v]   exit 0 iff every case matches
 *   (-F: also run gcc-compiled functions of funcs.c translated vs native;
 *    -e / -x / -u: translate with XLAT_OPT_EXACT_FAULTS / XLAT_OPT_CROSSCHECK /
 *    XLAT_OPT_UNDEF_FLAGS, the undefined-flags rule, which the native run
 *    checks on this very CPU: refused where the CPU does not hold it)
 *
 * Layout (fixed addresses so RIP-relative and absolute forms are exercised):
 *   CODE  0x1f000000  generated code (RWX: the native run executes it)
 *   DATA  0x20000000  64 KiB data area; stack at its top; %fs base DATA +
 *                     0x1000, %gs base DATA + 0x2000 in both runs.
 */
#include "tests/xlat/harness.h"
#include "pretrans/xlat/xlat_facts.h"
#include "pretrans/xcheck/xcheck.h"
#include "tests/xlat/diffgen.h"
#include "tests/xlat/funcs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

static unsigned le16(const uint8_t *p)
{
	return p[0] | (unsigned)p[1] << 8;
}

/* FCW, FSW, the abridged tag word and ST0-7 (10 bytes each) of two fxsave64
 * images; FOP, FIP and FDP are not compared (docs/xlat.md, Known limits). */
static bool x87_equal(const uint8_t *x, const uint8_t *y)
{
	if (memcmp(x, y, 5) != 0)
		return false;
	for (int i = 0; i < 8; i++)
		if (memcmp(x + DG_FX_ST + 16 * i, y + DG_FX_ST + 16 * i, 10) != 0)
			return false;
	return true;
}

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
	/* every other case: string instructions through the string call-out's
	 * fast path (tc_strfast.c; the fault page still declined to the full
	 * path, which faults there), the others through tc_string_run only */
	h->str_fast = (seed & 32) != 0;
	struct vcpu_abi *a = h->vcpu.abi;
	memcpy(a->gpr, init.gpr, sizeof(a->gpr));
	a->rflags = init.rflags;
	memcpy(a->fxsave, init.fx, sizeof(a->fxsave));
	a->irq = VCPU_IRQ_IF;
	a->fs_base = DG_FS_BASE;
	a->gs_base = DG_GS_BASE;
	h->code_lo = DG_CODE;
	h->code_hi = DG_CODE + g->len;
	/* every 8th case: one data page faults once; the fault is "handled"
	 * (the page mapped) and the guest restarts at the pc-map RIP with the
	 * spilled registers restored: the result must still match native */
	h->fault_page = (seed & 8) ? DG_DATA + ((seed >> 8) % 16) * 0x1000 : 0;
	/* every other case: an interrupt request before every 1st..4th entry
	 * into translated code (taken at the next block's entry check, flags
	 * live or not); the timer of main() adds requests at random points */
	h->irq_every = (seed & 16) ? 1 + (uint32_t)((seed >> 12) % 4) : 0;
	enum xh_result r = xh_run(h, DG_CODE, DG_CODE + g->len, 100000);
	if (r == XH_FAULT) {
		h->n_faults++;
		h->fault_page = 0;
		r = xh_fault_restore(h);
		if (r == XH_OK)
			r = xh_run(h, a->rip, DG_CODE + g->len, 100000);
	}
	h->fault_page = 0;
	h->irq_every = 0;
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
		if (memcmp(a->fxsave + DG_FX_XMM, nat.fx + DG_FX_XMM, 256) != 0 ||
		    memcmp(a->fxsave + DG_FX_MXCSR, nat.fx + DG_FX_MXCSR, 4) != 0 ||
		    !x87_equal(a->fxsave, nat.fx))
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
			for (int i = 0; r == XH_OK && i < 16; i++)
				if (memcmp(a->fxsave + DG_FX_XMM + 16 * i,
					   nat.fx + DG_FX_XMM + 16 * i, 16) != 0)
					printf("  xmm%d differs\n", i);
			if (r == XH_OK && memcmp(a->fxsave + DG_FX_MXCSR, nat.fx + DG_FX_MXCSR, 4))
				printf("  mxcsr differs\n");
			if (r == XH_OK && !x87_equal(a->fxsave, nat.fx))
				printf("  x87 differs: fcw/fsw/ftw native %04x/%04x/%02x xlat "
				       "%04x/%04x/%02x\n",
				       le16(nat.fx), le16(nat.fx + 2), nat.fx[4], le16(a->fxsave),
				       le16(a->fxsave + 2), a->fxsave[4]);
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

/* Asynchronous interrupt requests: SIGALRM every 211 us on its own stack
 * (RSP is a guest address in translated code and in the native run). */
static struct xh *irq_h;

static void on_alarm(int sig)
{
	(void)sig;
	xh_irq_request(&irq_h->vcpu);
}

static int irq_timer_start(struct xh *h)
{
	static uint8_t altstack[1 << 16];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_ONSTACK | SA_RESTART};
	struct itimerval it = {.it_interval = {0, 211}, .it_value = {0, 211}};
	irq_h = h;
	if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGALRM, &sa, NULL) != 0 ||
	    setitimer(ITIMER_REAL, &it, NULL) != 0)
		return -1;
	return 0;
}

static void irq_timer_stop(void)
{
	struct itimerval it = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &it, NULL);
}

#define SENTINEL 0x7ead0000ull

static uint64_t fstack[1 << 16];

/* Call fn(a0, a1, a2) translated; the guest stack is fstack. */
static int xcall(struct xh *h, const void *fn, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t *ret)
{
	struct vcpu_abi *a = h->vcpu.abi;
	for (int i = 0; i < 16; i++)
		a->gpr[i] = 0xdead0000ull + (uint64_t)i;
	a->gpr[VCPU_RDI] = a0;
	a->gpr[VCPU_RSI] = a1;
	a->gpr[VCPU_RDX] = a2;
	uint64_t *top = &fstack[(sizeof(fstack) / 8) - 2];
	*top = SENTINEL;
	a->gpr[VCPU_RSP] = (uint64_t)(uintptr_t)top;
	a->rflags = 0x202;
	a->irq = VCPU_IRQ_IF;
	enum xh_result r = xh_run(h, (gva_t)(uintptr_t)fn, SENTINEL, 100000000);
	*ret = a->gpr[VCPU_RAX];
	if (r != XH_OK)
		printf("  translated call of %p: result %d (refusal %s at %#" PRIx64 ")\n", fn, r,
		       xlat_refusal_str(h->last_refusal), h->last_rip);
	return r == XH_OK && a->gpr[VCPU_RSP] == (uint64_t)(uintptr_t)top + 8 ? 0 : 1;
}

#define CHECK(name, cond)                                                                          \
	do {                                                                                       \
		n++;                                                                               \
		if (!(cond)) {                                                                     \
			printf("  function test %s: MISMATCH\n", name);                            \
			bad++;                                                                     \
		}                                                                                  \
	} while (0)

/* gcc-compiled functions, translated from their own bytes, against native. */
static int run_funcs(struct xh *h, uint64_t seed)
{
	int n = 0, bad = 0;
	uint64_t r, v;
	xh_reset(h);
	h->chain = true;
	h->code_lo = (gva_t)(uintptr_t)__start_xlat_funcs;
	h->code_hi = (gva_t)(uintptr_t)__stop_xlat_funcs;
	static uint8_t buf[4096], out1[4096], out2[4096];
	static int64_t arr1[300], arr2[300];
	uint64_t x = seed | 1;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(x >> 56);
	}
	for (int i = 0; i < 300; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		arr1[i] = arr2[i] = (int64_t)(x >> 20) - (1ll << 43);
	}
	xf_crc_init();
	v = xf_crc32(buf, sizeof(buf));
	CHECK("crc32",
	      xcall(h, xf_crc32, (uint64_t)(uintptr_t)buf, sizeof(buf), 0, &r) == 0 && r == v);
	v = xf_isort(arr1, 300);
	CHECK("isort", xcall(h, xf_isort, (uint64_t)(uintptr_t)arr2, 300, 0, &r) == 0 && r == v &&
			   !memcmp(arr1, arr2, sizeof(arr1)));
	v = xf_copy(out1, buf, 3000);
	CHECK("copy", xcall(h, xf_copy, (uint64_t)(uintptr_t)out2, (uint64_t)(uintptr_t)buf, 3000,
			    &r) == 0 &&
			  r == v && !memcmp(out1, out2, sizeof(out1)));
	for (uint64_t i = 0; i < 40; i++) {
		v = xf_switch(i, i * 0x9e3779b97f4a7c15ull);
		CHECK("switch",
		      xcall(h, xf_switch, i, i * 0x9e3779b97f4a7c15ull, 0, &r) == 0 && r == v);
	}
	v = xf_fib(20);
	CHECK("fib", xcall(h, xf_fib, 20, 0, 0, &r) == 0 && r == v);
	for (int i = 0; i < 300; i++)
		arr1[i] = arr2[i] = (int64_t)((i * 7919) % 301);
	v = xf_apply(arr1, 300, xf_cmp);
	CHECK("apply", xcall(h, xf_apply, (uint64_t)(uintptr_t)arr2, 300,
			     (uint64_t)(uintptr_t)xf_cmp, &r) == 0 &&
			   r == v);
	v = xf_divmix(seed, 12345);
	CHECK("divmix", xcall(h, xf_divmix, seed, 12345, 0, &r) == 0 && r == v);
	printf("xlat_diff: %d gcc-compiled function runs (%u blocks): %d mismatches\n", n,
	       h->n_blocks, bad);
	return bad;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0x5eed;
	long cases = 2000;
	bool verbose = false;
	uint64_t one = 0; /* run just this case seed */
	long first = 0;	  /* first case index */
	bool funcs = false;
	uint32_t xflags = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-s") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			cases = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-1") && i + 1 < argc)
			one = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-k") && i + 1 < argc)
			first = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-e"))
			xflags |= XLAT_OPT_EXACT_FAULTS;
		else if (!strcmp(argv[i], "-x"))
			xflags |= XLAT_OPT_CROSSCHECK;
		else if (!strcmp(argv[i], "-u"))
			xflags |= XLAT_OPT_UNDEF_FLAGS;
		else if (!strcmp(argv[i], "-F"))
			funcs = true;
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else {
			fprintf(stderr, "usage: xlat_diff [-s SEED] [-n CASES] [-k FIRST] "
					"[-1 CASESEED] [-F] [-e] [-x] [-u] [-v]\n");
			return 2;
		}
	}
	if ((xflags & XLAT_OPT_UNDEF_FLAGS) && !xlat_host_undef_flags_ok()) {
		/* the option is refused on this CPU: that refusal is what to check */
		struct xlat_options o = {.flags = xflags, .checker = &xcheck_checker_ops};
		struct xlat_ctx *c = NULL;
		bool refused = xlat_create(&o, &c) == BT_ERR_UNSUPPORTED && !c;
		printf(
		    "xlat_diff: -u: this CPU keeps flags x86 leaves undefined: the option is %s; "
		    "nothing translated with it\n",
		    refused ? "refused, as it must be" : "NOT refused");
		return refused ? 0 : 1;
	}
	if (dg_map() != 0) {
		fprintf(stderr, "xlat_diff: cannot map the fixed test areas\n");
		return 2;
	}
	struct xh h;
	if (xh_init(&h, DG_CODE, DG_CODE + 1, xflags) != BT_OK) {
		fprintf(stderr, "xlat_diff: harness init failed\n");
		return 2;
	}
	h.irq_resume = true;
	if (irq_timer_start(&h) != 0) {
		fprintf(stderr, "xlat_diff: cannot start the interrupt timer\n");
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
	irq_timer_stop();
	printf("xlat_diff: %ld cases, %" PRIu64 " guest instructions, %" PRIu64 " blocks, %" PRIu64
	       " chained exits, %" PRIu64 " soft-MMU slow paths, %" PRIu64
	       " faults restarted, %" PRIu64 " interrupt exits, %" PRIu64
	       " string call-outs (%" PRIu64 " completed by the fast path): %ld mismatches\n",
	       cases, insns, blocks, h.n_chained, h.n_slow, h.n_faults, h.n_irqs, h.vcpu.str_calls,
	       h.vcpu.str_fast, failed);
	if (funcs)
		failed += run_funcs(&h, seed);
	xh_fini(&h);
	free(g);
	return failed ? 1 : 0;
}
