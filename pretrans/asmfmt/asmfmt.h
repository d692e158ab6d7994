/*
 * asmfmt: the one instruction formatter of `pretrans show` and `pretrans
 * diff`, so both print the same syntax (-M intel|att), lower-case hex
 * without padding, and name what objdump would name: branch and call
 * targets and rip-relative operands as `<symbol+0x12>` (through a caller's
 * symbol look-up), and, in translated code, the vCPU fields it reaches
 * through %gs (`%gs:vcpu.irq`, `%gs:vcpu.tlb(%r10)`; offsets from
 * pretrans/xlat/vcpu_abi.h).
 *
 * Caller-owned object (asmfmt_init), no global state, no allocation; one
 * object per thread.  Formats bytes the caller already holds.
 */
#ifndef BT_PRETRANS_ASMFMT_ASMFMT_H
#define BT_PRETRANS_ASMFMT_ASMFMT_H

#include <Zydis/Zydis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum asmfmt_syntax { ASMFMT_INTEL = 0, ASMFMT_ATT = 1 };

/* The argument of -M: "intel" or "att" (also objdump's "intel-mnemonic",
 * "att-mnemonic"); false when it is neither. */
bool asmfmt_parse_syntax(const char *arg, enum asmfmt_syntax *out);

/* Names a guest address into buf ("func" or "func+0x1c"); false if none. */
typedef bool (*asmfmt_sym_fn)(void *opaque, uint64_t addr, char *buf, size_t n);

struct asmfmt {
	ZydisDecoder dec;
	ZydisFormatter fmt;
	enum asmfmt_syntax syntax;
	asmfmt_sym_fn sym;
	void *sym_opaque;
	/* Zydis' own printers, called by the hooks */
	ZydisFormatterFunc print_abs, print_disp, print_imm;
	bool host; /* the instruction being formatted is translated code */
};

void asmfmt_init(struct asmfmt *f, enum asmfmt_syntax syntax);
/* Symbolise absolute targets through fn (NULL: never). */
void asmfmt_set_symbols(struct asmfmt *f, asmfmt_sym_fn fn, void *opaque);

/* The vCPU field at byte offset off of struct vcpu_abi: "irq", "gpr[3]",
 * "tlb+0x40" into buf; false when off is outside the structure. */
bool asmfmt_vcpu_field(uint64_t off, char *buf, size_t n);

/* Decode and format one 64-bit instruction at address ip.  host: the bytes
 * are translated code (%gs operands are vCPU fields, immediates that are
 * guest code addresses get a <symbol>); else guest code (%gs is the
 * guest's own per-CPU base and is printed as is).  Returns the length, or
 * 0 when the bytes do not decode (buf then holds "(bad)"). */
size_t asmfmt_insn(struct asmfmt *f, const uint8_t *p, size_t len, uint64_t ip, bool host,
		   char *buf, size_t bufsz);

#endif
