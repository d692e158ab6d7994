/*
 * Facts about one guest x86-64 instruction, from one table in the
 * translator core (xlat_facts.c), for every module that decodes guest
 * instructions: the translator (what an instruction becomes, whether the
 * vCPU has it) and the runtime's instruction emulation (which instructions
 * raise #UD because the vCPU's CPUID does not advertise them).  The table,
 * the refusal list and the CPUID leaf behind each entry: docs/xlat.md,
 * "The instruction fact table".
 *
 * Also the one decoder set-up: xlat_decoder_init() decodes bytes as the
 * vCPU runs them (no BMI1, MPX, CET or CLDEMOTE: their hint-space and
 * `rep`-prefixed encodings are the older instructions they alias).
 */
#ifndef BT_XLAT_XLAT_FACTS_H
#define BT_XLAT_XLAT_FACTS_H

#include <Zydis/Zydis.h>
#include <stdbool.h>

enum xlat_kind {
	XLAT_KIND_PLAIN = 0, /* ordinary: copied or rewritten (memory, branches) */
	XLAT_KIND_INLINE,    /* sensitive, done inline on the vCPU area in kernel
				blocks: cli sti stac clac swapgs pushfq popfq
				serialize rdtsc (mov r, sreg is decided by operands) */
	XLAT_KIND_PRIV,	     /* privileged or sensitive: the block ends with a PRIV
				exit and the runtime emulates it */
	XLAT_KIND_UNCOVERED, /* the translation rules do not cover it (refused as
				XLAT_REFUSE_UNSUPPORTED) */
};

enum xlat_adv {
	XLAT_ADV_YES = 0, /* in every vCPU profile, or a NOP without the feature,
			     or present exactly when the host has it */
	XLAT_ADV_NO,	  /* in no vCPU profile: refused (XLAT_REFUSE_NOT_ADVERTISED),
			     #UD when the runtime meets it */
	XLAT_ADV_CONFIG,  /* depends on the configured profile (cpu_config:
			     FSGSBASE, RDPID, UMIP): a PRIV exit, the runtime
			     checks the vCPU's CPUID bit */
};

struct xlat_facts {
	enum xlat_kind kind;
	enum xlat_adv adv;
	bool fpu; /* reads or writes x87/MMX/SSE/AVX state or MXCSR */
};

/* The facts of a decoded instruction (ops: its operands, as decoded). */
struct xlat_facts xlat_insn_facts(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops);

/* The arithmetic flags (ZYDIS_CPUFLAG_*) that instruction m leaves
 * "undefined" but that every host xlat_host_undef_flags_ok() accepts
 * computes from the operands alone, whatever the flags were before: AF
 * after and, or, xor, test; SF, ZF, AF, PF after mul, imul.  0 for every
 * other instruction (bt, rol and others keep such flags unchanged on real
 * CPUs). */
uint32_t xlat_undef_flags_computed(ZydisMnemonic m);

/* Does this host CPU compute those flags as xlat_undef_flags_computed says
 * (each instruction run with the flags all clear and all set before, on
 * several operands: the flags after must not differ)?  Computed once. */
bool xlat_host_undef_flags_ok(void);
/* Tests only: make xlat_host_undef_flags_ok() answer v (0 or 1), or
 * measure the host again (-1). */
void xlat_host_undef_flags_pretend(int v);

/* Initialise dec for mode (ZYDIS_MACHINE_MODE_LONG_64, _LONG_COMPAT_32,
 * _LONG_COMPAT_16) with the decoder modes of the vCPU.  False on a Zydis
 * error. */
bool xlat_decoder_init(ZydisDecoder *dec, ZydisMachineMode mode);

#endif
