/*
 * Facts about guest instructions that the rules depend on and that are
 * easy to get wrong, each in one place:
 *
 *  - xlat_insn_advertised(): the refusal list.  Translated code runs guest
 *    instructions natively, so an instruction the vCPU's CPUID does not
 *    advertise (runtime/cpu/cpu_cpuid.c) would run on the host although a
 *    CPU with that profile raises #UD; worse, the call-outs save only the
 *    fxsave64 image, so YMM/ZMM/opmask state would not survive one.  Such
 *    instructions are refused (XLAT_REFUSE_NOT_ADVERTISED).  One table,
 *    keyed by Zydis ISA extension, mirrors the profile (docs/xlat.md,
 *    "Refusal list").
 *  - xlat_flags_write_conditional(): instructions whose flag writes depend
 *    on a runtime value (a count that may be zero).  Liveness must not treat
 *    them as overwriting the flags (they "may write").
 *
 * Both are pure functions of the decoded instruction (invariant 1 of
 * xlat.c: the translation depends only on the guest bytes).
 */
#include "pretrans/xlat/xlat_int.h"

/*
 * ISA extensions the vCPU advertises (or that execute as hints/NOPs on a
 * CPU without them).  Everything else, and every VEX/EVEX/XOP/MVEX encoding,
 * is refused.  Leaf by leaf (runtime/cpu/cpu_cpuid.c, cpu_cpuid_init):
 *   1.EDX   FPU CX8 CMOV CLFSH MMX FXSR SSE SSE2  -> X87 BASE MMX SSE SSE2 CLFSH
 *   1.ECX   SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT (as the host has them; a
 *           host without them faults natively like the vCPU would)
 *                                                 -> SSE3 SSSE3 SSE4 LONGMODE
 *   7.EBX   SMEP SMAP ERMS                        -> SMAP (stac/clac, inline)
 *   7.EDX   SERIALIZE (emulated)                  -> SERIALIZE (ends the block)
 *   80000001.ECX LAHF_LM LZCNT PREFETCHW (host)   -> LZCNT AMD3DNOW_PREFETCH
 *   80000001.EDX SYSCALL NX RDTSCP LM             -> RDTSCP (PRIV exit anyway)
 * Not advertised (refused): AVX AVX2 AVX-512 FMA F16C (1.ECX XSAVE/AVX=0),
 * BMI1 BMI2 ADX RDSEED SHA CLFLUSHOPT CLWB (7.EBX), GFNI VAES VPCLMULQDQ
 * MOVDIRI (7.ECX), PCLMULQDQ AES MOVBE RDRAND (1.ECX), SSE4A XOP FMA4 TBM
 * 3DNow! CLZERO (AMD leaves), KEYLOCKER, AMX, PADLOCK, PT, TSX_LDTRK.
 * Hint space that runs as a NOP on a CPU without the feature: CLDEMOTE,
 * PREFETCHWT1, and CET's endbr32/endbr64 (allowed below by mnemonic).
 * TZCNT (BMI1) is decoded as BSF (ZYDIS_DECODER_MODE_TZCNT off, see
 * xlat_create) and emitted without its F3 prefix: that is what `rep bsf`
 * does on a CPU without BMI1, and Linux relies on it (__ffs).
 * Privileged/sensitive instructions (XSAVE*, RDPID, RDFSBASE, INVPCID,
 * MONITOR, RDPKRU ...) are not judged here: they are PRIV exits and the
 * runtime decides at the exit.
 */
static bool ext_advertised(ZydisISAExt ext)
{
	switch (ext) {
	case ZYDIS_ISA_EXT_BASE:
	case ZYDIS_ISA_EXT_LONGMODE:
	case ZYDIS_ISA_EXT_X87:
	case ZYDIS_ISA_EXT_MMX:
	case ZYDIS_ISA_EXT_SSE:
	case ZYDIS_ISA_EXT_SSE2:
	case ZYDIS_ISA_EXT_SSE3:
	case ZYDIS_ISA_EXT_SSSE3:
	case ZYDIS_ISA_EXT_SSE4:
	case ZYDIS_ISA_EXT_CLFSH:
	case ZYDIS_ISA_EXT_PAUSE:
	case ZYDIS_ISA_EXT_RDTSCP:
	case ZYDIS_ISA_EXT_LZCNT:
	case ZYDIS_ISA_EXT_SMAP:
	case ZYDIS_ISA_EXT_AMD3DNOW_PREFETCH:
	case ZYDIS_ISA_EXT_PREFETCHWT1:
	case ZYDIS_ISA_EXT_CLDEMOTE:
	case ZYDIS_ISA_EXT_SERIALIZE:
		return true;
	default:
		return false;
	}
}

bool xlat_insn_advertised(const ZydisDecodedInstruction *d)
{
	switch (d->encoding) {
	case ZYDIS_INSTRUCTION_ENCODING_LEGACY:
	case ZYDIS_INSTRUCTION_ENCODING_3DNOW:
		break;
	default:
		/* VEX (incl. VEX.L=1, BMI1/2), EVEX, XOP, MVEX: no AVX, no XSAVE */
		return false;
	}
	if (d->mnemonic == ZYDIS_MNEMONIC_ENDBR32 || d->mnemonic == ZYDIS_MNEMONIC_ENDBR64)
		return true; /* NOP without CET */
	return ext_advertised(d->meta.isa_ext);
}

static bool is_shift(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_SHL:
	case ZYDIS_MNEMONIC_SHR:
	case ZYDIS_MNEMONIC_SAR:
	case ZYDIS_MNEMONIC_ROL:
	case ZYDIS_MNEMONIC_ROR:
	case ZYDIS_MNEMONIC_RCL:
	case ZYDIS_MNEMONIC_RCR:
	case ZYDIS_MNEMONIC_SHLD:
	case ZYDIS_MNEMONIC_SHRD:
		return true;
	default:
		return false;
	}
}

/* The masked count if it is an immediate; false for a count in CL. */
static bool shift_count_imm(const struct xlat_insn *in, uint64_t *count)
{
	for (int i = 1; i < in->d.operand_count_visible; i++) {
		const ZydisDecodedOperand *o = &in->ops[i];
		if (o->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			*count = o->imm.value.u & (in->d.operand_width == 64 ? 63 : 31);
			return true;
		}
	}
	return false;
}

/*
 * Does `in` write its flags only under a runtime condition?  Then liveness
 * counts none of them as overwritten.  The conditional flag writers:
 *  - shifts and rotates (shl/shr/sar/rol/ror/rcl/rcr/shld/shrd) by CL, or
 *    by an immediate that is zero after masking: a zero count changes no
 *    flag;
 *  - 16-bit shld/shrd by more than 16: result and flags undefined (a CPU
 *    may leave them), so not a sure write;
 *  - rep/repe/repne cmps/scas: RCX = 0 runs no iteration and changes no
 *    flag (rep movs/stos/lods write none anyway).
 * Not conditional: loop/loope/loopne/jrcxz (write none), bt* (CF always), bsf/bsr (ZF
 * always; their destination is handled in insn_usage), cmpxchg* (always),
 * mul/imul (CF/OF always), div/idiv (all undefined, never a kill).
 */
bool xlat_flags_write_conditional(const struct xlat_insn *in)
{
	const ZydisDecodedInstruction *d = &in->d;
	if (d->meta.category == ZYDIS_CATEGORY_STRINGOP &&
	    (d->attributes &
	     (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)))
		return true;
	if (!is_shift(d->mnemonic))
		return false;
	uint64_t count;
	if (!shift_count_imm(in, &count) || count == 0)
		return true;
	return (d->mnemonic == ZYDIS_MNEMONIC_SHLD || d->mnemonic == ZYDIS_MNEMONIC_SHRD) &&
	       d->operand_width == 16 && count > 16;
}
