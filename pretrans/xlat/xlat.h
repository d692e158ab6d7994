/*
 * The translator core: guest x86-64 kernel bytes -> "safe" host x86-64 code.
 * The only code in the project that turns guest bytes into host code; used
 * by pretrans (ahead of time) and by the runtime (on a miss), so a block
 * translated either way is byte-for-byte the same.
 *
 * Contract
 *  - Deterministic: output depends only on the guest bytes, their address,
 *    the options and XLAT_VERSION / VCPU_ABI_VERSION.  No clock, no
 *    environment, no host addresses.
 *  - Relocatable output: a block's code reaches runtime state only through
 *    %gs (struct vcpu_abi); internal jumps are relative inside the block;
 *    every direct exit is a `jmp rel32` whose rel32 initially targets the
 *    block's own unchained exit stub, so copying the bytes anywhere works.
 *    Chaining = rewriting that rel32 (bt_exit.patch_off) to another block.
 *  - "Cannot translate" is a result (bt_block.refusal), not an error.
 *
 * Owned by the translator core; pretrans and the runtime are its two
 * clients.  Rules, protocols and the pc map encoding: docs/xlat.md.
 */
#ifndef BT_XLAT_XLAT_H
#define BT_XLAT_XLAT_H

#include "pretrans/base/block.h"
#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/vcpu_abi.h"

#define XLAT_VERSION 16

/* Where guest code bytes come from (an ELF image, or guest RAM). */
struct xlat_source {
	/* Copy up to len bytes at va into buf; return how many are readable
	 * (0 if va is not code/mapped).  Never fails otherwise. */
	size_t (*read)(void *opaque, gva_t va, uint8_t *buf, size_t len);
	void *opaque;
};

enum xlat_opt_flags {
	XLAT_OPT_CROSSCHECK = 1u << 0,	 /* refuse blocks the LLVM decoder disagrees on */
	XLAT_OPT_EXACT_FAULTS = 1u << 1, /* spill scratch registers even when dead, so a
					  * fault reports every register exactly (see
					  * docs/xlat.md, "precise state") */
	XLAT_OPT_USER = 1u << 2,	 /* guest user code (CPL 3): memory through the user TLB
					  * (vcpu_abi.utlb), indirect branches through uibl, and
					  * cli/sti/popf/stac/clac/swapgs emulated at a PRIV exit
					  * (docs/user-mode.md) */
	XLAT_OPT_STEP = 1u << 3,	 /* one guest instruction per block, and every exit
					  * leaves to the runtime: no IBL lookup, no user
					  * direct-exit probe; pushf/popf are PRIV exits in
					  * kernel code too (single-stepping with TF, NT set,
					  * alignment checking with AC; docs/user-mode.md) */
	XLAT_OPT_UNDEF_FLAGS = 1u << 4,	 /* the flags x86 leaves "undefined" after and, or,
					  * xor, test, mul and imul are computed by the host
					  * CPU from the operands alone (checked at start by
					  * xlat_host_undef_flags_ok): they end the previous
					  * flags' liveness (docs/xlat.md, "Flag liveness") */
	XLAT_OPT_COUNT_PROBES = 1u << 5, /* every inline soft-MMU probe first adds 1 to
					  * vcpu_abi.probes (three instructions, no flags
					  * touched): a measuring build of the code, for
					  * the inline hit rate (btvm --count-probes;
					  * docs/xlat.md "The inline probes' hit rate") */
};

/*
 * A second, independent decoder for XLAT_OPT_CROSSCHECK.  The translator core
 * links none: pretrans supplies LLVM MC's (pretrans/xcheck/xcheck.h,
 * xcheck_checker_ops); the runtime never cross-checks.  The translator
 * creates one instance per context (contexts are per thread).
 */
struct xlat_checker_ops {
	enum bt_status (*create)(void **out);
	void (*destroy)(void *inst);
	/* True when the second decoder also decodes the instruction at p (n
	 * bytes available, at va) as len bytes naming the same operands. */
	bool (*agrees)(void *inst, const uint8_t *p, size_t n, gva_t va, uint32_t len);
};

struct xlat_options {
	uint32_t flags;
	uint32_t max_insns; /* per block; 0 = default */
	/* Required with XLAT_OPT_CROSSCHECK (xlat_create refuses without it);
	 * not part of xlat_options_hash: it decides nothing when it agrees. */
	const struct xlat_checker_ops *checker;
};

/* Why a block was not translated (0 = it was). */
enum xlat_refusal {
	XLAT_OK = 0,
	XLAT_REFUSE_NOBYTES,	 /* start address not readable, or the first instruction runs into
				    bytes that are not (refusal_addr: the first missing byte) */
	XLAT_REFUSE_UNDECODABLE, /* Zydis could not decode the first instruction */
	XLAT_REFUSE_DISAGREE,	 /* Zydis and LLVM MC disagree (length/operands) */
	XLAT_REFUSE_UNSUPPORTED, /* an instruction class the rules do not cover */
	XLAT_REFUSE_ENCODE,	 /* the encoder rejected a rewritten instruction */
	XLAT_REFUSE_NOT_ADVERTISED, /* the vCPU's CPUID lacks its feature (AVX, BMI...):
				     * the guest must get #UD (docs/xlat.md) */
	XLAT_NREFUSALS
};
const char *xlat_refusal_str(enum xlat_refusal r);

enum xlat_exit_kind {
	XLAT_EXIT_JMP = 1,   /* direct jmp: target known, chainable */
	XLAT_EXIT_JCC_TAKEN, /* conditional branch taken side, chainable */
	XLAT_EXIT_JCC_FALL,  /* conditional branch fall-through side, chainable */
	XLAT_EXIT_CALL,	     /* direct call (return address already pushed), chainable */
	XLAT_EXIT_FALL,	     /* block cut (length/page limit), chainable */
	XLAT_EXIT_INDIRECT,  /* jmp/call through register or memory: IBL */
	XLAT_EXIT_RET,	     /* return: IBL */
	XLAT_EXIT_PRIV,	     /* privileged/sensitive instruction: runtime emulates at target */
	XLAT_EXIT_IRQ,	     /* block-entry interrupt check fired */
	XLAT_NEXIT_KINDS
};
const char *xlat_exit_kind_str(enum xlat_exit_kind k);

/* bt_exit.flags: the PRIV instruction is `syscall` (the exit stub says
 * so in exit_info, VCPU_EXIT_SYSCALL, so the runtime needs no decoder) */
#define XLAT_EXIT_F_SYSCALL 0x01
/* ... or a 64-bit `sysretq` (VCPU_EXIT_SYSRET) */
#define XLAT_EXIT_F_SYSRET 0x02

#define XLAT_MAX_EXITS BT_MAX_EXITS

/* Where a block's host bytes go (xlat_cat_bytes; a measurement for
 * tests/bench/xlat-size-bench.sh, docs/xlat.md "Where the host bytes go"). */
enum xlat_code_cat {
	XLAT_CAT_INSN,	 /* guest instructions re-encoded and their rewrites */
	XLAT_CAT_COPY,	 /* guest instructions copied verbatim */
	XLAT_CAT_ENTRY,	 /* the block-entry interrupt check */
	XLAT_CAT_SPILL,	 /* scratch register spills and restores */
	XLAT_CAT_FLAGS,	 /* guest flags saves and restores */
	XLAT_CAT_PROBE,	 /* inline soft-MMU probes (address, TLB compare) */
	XLAT_CAT_SLOW,	 /* soft-MMU slow paths (COLD) */
	XLAT_CAT_BRANCH, /* exit branches in MAIN (chainable rel32 sites) */
	XLAT_CAT_IBL,	 /* inline indirect-branch lookups */
	XLAT_CAT_STUB,	 /* exit stubs and the block's exit tail (COLD) */
	XLAT_NCATS
};
const char *xlat_code_cat_str(enum xlat_code_cat c);

enum xlat_block_flags {
	XLAT_BLOCK_TWO_PAGES = 1u << 0, /* guest bytes span two guest pages */
	XLAT_BLOCK_ENDS_PRIV = 1u << 1,
};

struct xlat_ctx; /* opaque: decoders, encoder, arena (about 200 KiB) */

enum bt_status xlat_create(const struct xlat_options *opts, struct xlat_ctx **out);
void xlat_destroy(struct xlat_ctx *ctx);
/* Host instructions this context took from its encoder memo and had Zydis
 * encode (the memo is a cache: the bytes are the encoder's either way). */
void xlat_encoder_counts(const struct xlat_ctx *ctx, uint64_t *memo_hits, uint64_t *encoded);
/* The host bytes of the context's last translated block by enum
 * xlat_code_cat (they add up to its code_len). */
void xlat_cat_bytes(const struct xlat_ctx *ctx, uint32_t out[XLAT_NCATS]);

/* Translate the block starting at va into the block record (its code and
 * pc map are the context's until its next translation; copy what you
 * keep).  BT_OK even when refused. */
enum bt_status xlat_translate(struct xlat_ctx *ctx, const struct xlat_source *src, gva_t va,
			      struct bt_block *out);

/* Map a host offset inside a block back to the guest RIP of the instruction
 * to restart (and the registers whose guest value is in vcpu.spill[] at that
 * point, a bitmask of enum vcpu_gpr; bit 16 = guest flags in spill_flags).
 * For a call-out, look up (return address - block base - 1).
 * BT_ERR_NOTFOUND if host_off precedes the first entry, BT_ERR_FORMAT if the
 * map is malformed (it is untrusted when read from a database). */
enum bt_status xlat_pcmap_lookup(const uint8_t *pcmap, uint32_t pcmap_len, gva_t guest_start,
				 uint32_t host_off, gva_t *guest_rip, uint32_t *spilled);

/* Hash of guest bytes used to validate cached blocks (stable, documented). */
uint64_t xlat_hash_bytes(const void *p, size_t n);

/* The most guest instructions a block translated with opts holds (a block
 * cut there ends with an XLAT_EXIT_FALL exit). */
uint32_t xlat_max_insns(const struct xlat_options *opts);

/* Hash of translator version, ABI version and options (database provenance). */
uint64_t xlat_options_hash(const struct xlat_options *opts);

#endif
