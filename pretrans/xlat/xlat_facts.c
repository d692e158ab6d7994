/*
 * Facts about guest instructions that the rules depend on and that are
 * easy to get wrong, each in one place:
 *
 *  - xlat_insn_facts() (public, xlat_facts.h): ONE table of instruction
 *    facts — kind (plain, inline-sensitive, privileged, uncovered), whether
 *    the vCPU's CPUID advertises it, whether it touches FPU/SIMD state.
 *    The translator classifies and refuses from it, the runtime's
 *    instruction emulation raises #UD from it.  Translated code runs guest
 *    instructions natively, so an instruction the vCPU's CPUID does not
 *    advertise (runtime/cpu/cpu_cpuid.c) would run on the host although a
 *    CPU with that profile raises #UD; worse, the call-outs save only the
 *    fxsave64 image, so YMM/ZMM/opmask state would not survive one.  Such
 *    instructions are refused (XLAT_REFUSE_NOT_ADVERTISED; docs/xlat.md,
 *    "The instruction fact table").
 *  - xlat_decoder_init(): the decoder modes of the vCPU.
 *  - xlat_flags_write_conditional(): instructions whose flag writes depend
 *    on a runtime value (a count that may be zero).  Liveness must not treat
 *    them as overwriting the flags (they "may write").
 *
 * All are pure functions of the decoded instruction (invariant 1 of
 * xlat.c: the translation depends only on the guest bytes).
 */
#include "pretrans/xlat/xlat_facts.h"

#include <pthread.h>
#include <stdint.h>
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
 * MOVDIRI MOVDIR64B (7.ECX), RTM (7.EBX), PCLMULQDQ AES MOVBE RDRAND
 * (1.ECX), SSE4A XOP FMA4 TBM 3DNow! CLZERO (AMD leaves), KEYLOCKER, AMX,
 * PADLOCK, PT, TSX_LDTRK.
 * Hint space that runs as a NOP on a CPU without the feature is decoded as
 * that NOP (xlat_decoder_init): MPX's bnd*, CET's endbr32/endbr64 and
 * rdssp, CLDEMOTE; PREFETCHWT1 is a prefetch hint.
 * TZCNT (BMI1) is decoded as BSF (ZYDIS_DECODER_MODE_TZCNT off) and emitted
 * without its F3 prefix: that is what `rep bsf` does on a CPU without BMI1,
 * and Linux relies on it (__ffs).
 * Privileged/sensitive instructions are judged by the mnemonic table below
 * only (their extensions are not looked at): a PRIV exit unless the table
 * says no vCPU profile has them.
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

/* The mnemonic table: kind, CPUID and FPU facts that the ISA extension and
 * the operands do not give.  An absent entry is a plain instruction judged
 * by its extension. */
enum {
	M_INLINE = 1,			     /* XLAT_KIND_INLINE */
	M_PRIV = 2,			     /* XLAT_KIND_PRIV */
	M_UNCOVERED = 3,		     /* XLAT_KIND_UNCOVERED */
	M_KIND = 3,			     /* mask of the kind */
	M_ABSENT = 1u << 2,		     /* in no vCPU profile: XLAT_ADV_NO */
	M_CONFIG = 1u << 3,		     /* advertised as cpu_config says: XLAT_ADV_CONFIG */
	M_FPU = 1u << 4,		     /* saves/restores/configures FPU state */
	M_XSAVE = M_PRIV | M_ABSENT | M_FPU, /* 1.ECX XSAVE = 0 */
};

static const uint8_t mnem_facts[ZYDIS_MNEMONIC_MAX_VALUE + 1] = {
    /* inline in kernel blocks (xlat_mangle.c; user blocks: PRIV exits) */
    [ZYDIS_MNEMONIC_CLI] = M_INLINE,
    [ZYDIS_MNEMONIC_STI] = M_INLINE,
    [ZYDIS_MNEMONIC_STAC] = M_INLINE,
    [ZYDIS_MNEMONIC_CLAC] = M_INLINE,
    [ZYDIS_MNEMONIC_SWAPGS] = M_INLINE,
    [ZYDIS_MNEMONIC_PUSHFQ] = M_INLINE,
    [ZYDIS_MNEMONIC_POPFQ] = M_INLINE,
    [ZYDIS_MNEMONIC_SERIALIZE] = M_INLINE, /* 7.EDX[14], emulated */
    [ZYDIS_MNEMONIC_RDTSC] = M_INLINE,
    /* privileged or sensitive, in every profile: the runtime emulates */
    [ZYDIS_MNEMONIC_CPUID] = M_PRIV,
    [ZYDIS_MNEMONIC_RDTSCP] = M_PRIV,
    [ZYDIS_MNEMONIC_RDPMC] = M_PRIV,
    [ZYDIS_MNEMONIC_INT] = M_PRIV,
    [ZYDIS_MNEMONIC_INT1] = M_PRIV,
    [ZYDIS_MNEMONIC_INT3] = M_PRIV,
    [ZYDIS_MNEMONIC_INTO] = M_PRIV,
    [ZYDIS_MNEMONIC_UD0] = M_PRIV,
    [ZYDIS_MNEMONIC_UD1] = M_PRIV,
    [ZYDIS_MNEMONIC_UD2] = M_PRIV,
    [ZYDIS_MNEMONIC_HLT] = M_PRIV,
    [ZYDIS_MNEMONIC_IN] = M_PRIV,
    [ZYDIS_MNEMONIC_OUT] = M_PRIV,
    [ZYDIS_MNEMONIC_INSB] = M_PRIV,
    [ZYDIS_MNEMONIC_INSW] = M_PRIV,
    [ZYDIS_MNEMONIC_INSD] = M_PRIV,
    [ZYDIS_MNEMONIC_OUTSB] = M_PRIV,
    [ZYDIS_MNEMONIC_OUTSW] = M_PRIV,
    [ZYDIS_MNEMONIC_OUTSD] = M_PRIV,
    [ZYDIS_MNEMONIC_SYSCALL] = M_PRIV,
    [ZYDIS_MNEMONIC_SYSENTER] = M_PRIV,
    [ZYDIS_MNEMONIC_SYSEXIT] = M_PRIV,
    [ZYDIS_MNEMONIC_SYSRET] = M_PRIV,
    [ZYDIS_MNEMONIC_IRET] = M_PRIV,
    [ZYDIS_MNEMONIC_IRETD] = M_PRIV,
    [ZYDIS_MNEMONIC_IRETQ] = M_PRIV,
    [ZYDIS_MNEMONIC_FXSAVE] = M_PRIV | M_FPU, /* 1.EDX FXSR; the stub's FPU state */
    [ZYDIS_MNEMONIC_FXSAVE64] = M_PRIV | M_FPU,
    [ZYDIS_MNEMONIC_FXRSTOR] = M_PRIV | M_FPU,
    [ZYDIS_MNEMONIC_FXRSTOR64] = M_PRIV | M_FPU,
    [ZYDIS_MNEMONIC_LSL] = M_PRIV,
    [ZYDIS_MNEMONIC_LAR] = M_PRIV,
    [ZYDIS_MNEMONIC_VERR] = M_PRIV,
    [ZYDIS_MNEMONIC_VERW] = M_PRIV,
    [ZYDIS_MNEMONIC_SMSW] = M_PRIV,
    [ZYDIS_MNEMONIC_LMSW] = M_PRIV,
    [ZYDIS_MNEMONIC_CLTS] = M_PRIV | M_FPU, /* CR0.TS */
    [ZYDIS_MNEMONIC_SGDT] = M_PRIV,
    [ZYDIS_MNEMONIC_SIDT] = M_PRIV,
    [ZYDIS_MNEMONIC_STR] = M_PRIV,
    [ZYDIS_MNEMONIC_SLDT] = M_PRIV,
    [ZYDIS_MNEMONIC_LGDT] = M_PRIV,
    [ZYDIS_MNEMONIC_LIDT] = M_PRIV,
    [ZYDIS_MNEMONIC_LTR] = M_PRIV,
    [ZYDIS_MNEMONIC_LLDT] = M_PRIV,
    [ZYDIS_MNEMONIC_INVLPG] = M_PRIV,
    [ZYDIS_MNEMONIC_WBINVD] = M_PRIV,
    [ZYDIS_MNEMONIC_INVD] = M_PRIV,
    [ZYDIS_MNEMONIC_WRMSR] = M_PRIV,
    [ZYDIS_MNEMONIC_RDMSR] = M_PRIV,
    [ZYDIS_MNEMONIC_LSS] = M_PRIV,
    [ZYDIS_MNEMONIC_LFS] = M_PRIV,
    [ZYDIS_MNEMONIC_LGS] = M_PRIV,
    /* privileged, advertised as the configuration says (7.EBX[0] FSGSBASE,
     * 7.ECX[22] RDPID): the runtime checks the vCPU's bit */
    [ZYDIS_MNEMONIC_RDPID] = M_PRIV | M_CONFIG,
    [ZYDIS_MNEMONIC_RDFSBASE] = M_PRIV | M_CONFIG,
    [ZYDIS_MNEMONIC_RDGSBASE] = M_PRIV | M_CONFIG,
    [ZYDIS_MNEMONIC_WRFSBASE] = M_PRIV | M_CONFIG,
    [ZYDIS_MNEMONIC_WRGSBASE] = M_PRIV | M_CONFIG,
    /* in no profile: #UD, as on a CPU without them */
    [ZYDIS_MNEMONIC_XSETBV] = M_XSAVE,
    [ZYDIS_MNEMONIC_XGETBV] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVE] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVE64] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVEC] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVEC64] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVEOPT] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVEOPT64] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVES] = M_XSAVE,
    [ZYDIS_MNEMONIC_XSAVES64] = M_XSAVE,
    [ZYDIS_MNEMONIC_XRSTOR] = M_XSAVE,
    [ZYDIS_MNEMONIC_XRSTOR64] = M_XSAVE,
    [ZYDIS_MNEMONIC_XRSTORS] = M_XSAVE,
    [ZYDIS_MNEMONIC_XRSTORS64] = M_XSAVE,
    [ZYDIS_MNEMONIC_MONITOR] = M_PRIV | M_ABSENT, /* 1.ECX[3] */
    [ZYDIS_MNEMONIC_MWAIT] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_INVPCID] = M_PRIV | M_ABSENT, /* 7.EBX[10] */
    [ZYDIS_MNEMONIC_RDPKRU] = M_PRIV | M_ABSENT,  /* 7.ECX[3] PKU */
    [ZYDIS_MNEMONIC_WRPKRU] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_UMONITOR] = M_PRIV | M_ABSENT, /* 7.ECX[5] WAITPKG */
    [ZYDIS_MNEMONIC_UMWAIT] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_TPAUSE] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_MONITORX] = M_PRIV | M_ABSENT, /* AMD */
    [ZYDIS_MNEMONIC_MWAITX] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_INVLPGA] = M_PRIV | M_ABSENT, /* SVM */
    [ZYDIS_MNEMONIC_VMMCALL] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_VMCALL] = M_PRIV | M_ABSENT, /* VMX */
    [ZYDIS_MNEMONIC_RDPRU] = M_PRIV | M_ABSENT,	 /* AMD */
    [ZYDIS_MNEMONIC_CLUI] = M_PRIV | M_ABSENT,	 /* 7.EDX[5] UINTR */
    [ZYDIS_MNEMONIC_STUI] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_TESTUI] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_UIRET] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_SENDUIPI] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_ENQCMD] = M_PRIV | M_ABSENT, /* 7.ECX[29] */
    [ZYDIS_MNEMONIC_ENQCMDS] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_PCONFIG] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_ENCLS] = M_PRIV | M_ABSENT, /* SGX */
    [ZYDIS_MNEMONIC_ENCLU] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_ENCLV] = M_PRIV | M_ABSENT,
    [ZYDIS_MNEMONIC_GETSEC] = M_PRIV | M_ABSENT, /* SMX */
    [ZYDIS_MNEMONIC_RSM] = M_PRIV | M_ABSENT,	 /* no SMM */
    [ZYDIS_MNEMONIC_RDRAND] = M_ABSENT,		 /* 1.ECX[30] */
    [ZYDIS_MNEMONIC_RDSEED] = M_ABSENT,		 /* 7.EBX[18] */
    [ZYDIS_MNEMONIC_XBEGIN] = M_ABSENT,		 /* 7.EBX[11] RTM */
    [ZYDIS_MNEMONIC_XEND] = M_ABSENT,
    [ZYDIS_MNEMONIC_XABORT] = M_ABSENT,
    [ZYDIS_MNEMONIC_XTEST] = M_ABSENT,
    [ZYDIS_MNEMONIC_MOVDIR64B] = M_ABSENT, /* 7.ECX[28] */
    /* not covered by the rules: a hidden memory operand or a form 64-bit
     * kernels do not use (16-bit flags, enter, xlat; jcxz is not
     * encodable in 64-bit mode) */
    [ZYDIS_MNEMONIC_ENTER] = M_UNCOVERED,
    [ZYDIS_MNEMONIC_XLAT] = M_UNCOVERED,
    [ZYDIS_MNEMONIC_PUSHF] = M_UNCOVERED,
    [ZYDIS_MNEMONIC_POPF] = M_UNCOVERED,
    [ZYDIS_MNEMONIC_PUSHFD] = M_UNCOVERED,
    [ZYDIS_MNEMONIC_POPFD] = M_UNCOVERED,
    [ZYDIS_MNEMONIC_JCXZ] = M_UNCOVERED,
};

/* A control, debug, segment or descriptor-table register operand. */
static bool names_special_reg(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops)
{
	for (int i = 0; i < d->operand_count; i++) {
		const ZydisDecodedOperand *o = &ops[i];
		if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		ZydisRegisterClass c = ZydisRegisterGetClass(o->reg.value);
		if (c == ZYDIS_REGCLASS_SEGMENT || c == ZYDIS_REGCLASS_CONTROL ||
		    c == ZYDIS_REGCLASS_DEBUG || o->reg.value == ZYDIS_REGISTER_GDTR ||
		    o->reg.value == ZYDIS_REGISTER_LDTR || o->reg.value == ZYDIS_REGISTER_IDTR ||
		    o->reg.value == ZYDIS_REGISTER_TR)
			return true;
	}
	return false;
}

/* mov r16/r32/r64, sreg (not into rsp): the selector comes from vcpu.sel[],
 * which the runtime keeps equal to the vCPU's.  Reading a selector is
 * unprivileged at any CPL; Linux's context switch reads four of them
 * (savesegment) each time, 474,000 PRIV exits in one benchmark phase. */
static bool is_segread(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops)
{
	const ZydisDecodedOperand *r = &ops[0], *s = &ops[1];
	return d->mnemonic == ZYDIS_MNEMONIC_MOV && d->operand_count_visible == 2 &&
	       r->type == ZYDIS_OPERAND_TYPE_REGISTER && s->type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       ZydisRegisterGetClass(s->reg.value) == ZYDIS_REGCLASS_SEGMENT &&
	       ZydisRegisterGetId(s->reg.value) < 6 &&
	       ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r->reg.value) !=
		   ZYDIS_REGISTER_RSP &&
	       (ZydisRegisterGetClass(r->reg.value) == ZYDIS_REGCLASS_GPR16 ||
		ZydisRegisterGetClass(r->reg.value) == ZYDIS_REGCLASS_GPR32 ||
		ZydisRegisterGetClass(r->reg.value) == ZYDIS_REGCLASS_GPR64);
}

static bool ext_fpu(ZydisISAExt ext)
{
	switch (ext) {
	case ZYDIS_ISA_EXT_X87:
	case ZYDIS_ISA_EXT_MMX:
	case ZYDIS_ISA_EXT_SSE:
	case ZYDIS_ISA_EXT_SSE2:
	case ZYDIS_ISA_EXT_SSE3:
	case ZYDIS_ISA_EXT_SSSE3:
	case ZYDIS_ISA_EXT_SSE4:
	case ZYDIS_ISA_EXT_SSE4A:
	case ZYDIS_ISA_EXT_AVX:
	case ZYDIS_ISA_EXT_AVX2:
	case ZYDIS_ISA_EXT_FMA:
	case ZYDIS_ISA_EXT_F16C:
	case ZYDIS_ISA_EXT_AES:
	case ZYDIS_ISA_EXT_PCLMULQDQ:
	case ZYDIS_ISA_EXT_SHA:
	case ZYDIS_ISA_EXT_GFNI:
	case ZYDIS_ISA_EXT_AMD3DNOW:
	case ZYDIS_ISA_EXT_XSAVE:
	case ZYDIS_ISA_EXT_XSAVEC:
	case ZYDIS_ISA_EXT_XSAVEOPT:
	case ZYDIS_ISA_EXT_XSAVES:
		return true;
	default:
		return false;
	}
}

static bool touches_fpu(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops)
{
	if (ext_fpu(d->meta.isa_ext) || d->encoding == ZYDIS_INSTRUCTION_ENCODING_VEX ||
	    d->encoding == ZYDIS_INSTRUCTION_ENCODING_EVEX ||
	    d->encoding == ZYDIS_INSTRUCTION_ENCODING_XOP ||
	    d->encoding == ZYDIS_INSTRUCTION_ENCODING_MVEX)
		return true;
	for (int i = 0; i < d->operand_count; i++) {
		if (ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		ZydisRegister r = ops[i].reg.value;
		switch (ZydisRegisterGetClass(r)) {
		case ZYDIS_REGCLASS_X87:
		case ZYDIS_REGCLASS_MMX:
		case ZYDIS_REGCLASS_XMM:
		case ZYDIS_REGCLASS_YMM:
		case ZYDIS_REGCLASS_ZMM:
		case ZYDIS_REGCLASS_TMM:
		case ZYDIS_REGCLASS_MASK:
			return true;
		default:
			break;
		}
		if (r == ZYDIS_REGISTER_MXCSR || r == ZYDIS_REGISTER_X87CONTROL ||
		    r == ZYDIS_REGISTER_X87STATUS || r == ZYDIS_REGISTER_X87TAG)
			return true;
	}
	return false;
}

struct xlat_facts xlat_insn_facts(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops)
{
	struct xlat_facts f = {XLAT_KIND_PLAIN, XLAT_ADV_YES, false};
	uint8_t m = d->mnemonic <= ZYDIS_MNEMONIC_MAX_VALUE ? mnem_facts[d->mnemonic] : 0;
	switch (m & M_KIND) {
	case M_INLINE:
		f.kind = XLAT_KIND_INLINE;
		break;
	case M_PRIV:
		f.kind = XLAT_KIND_PRIV;
		break;
	case M_UNCOVERED:
		f.kind = XLAT_KIND_UNCOVERED;
		break;
	default:
		if (is_segread(d, ops))
			f.kind = XLAT_KIND_INLINE;
		else if ((d->attributes & ZYDIS_ATTRIB_IS_PRIVILEGED) ||
			 names_special_reg(d, ops) || d->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
			f.kind = XLAT_KIND_PRIV;
		break;
	}
	f.fpu = (m & M_FPU) || touches_fpu(d, ops);
	if (m & M_ABSENT)
		f.adv = XLAT_ADV_NO;
	else if (m & M_CONFIG)
		f.adv = XLAT_ADV_CONFIG;
	else if (f.kind == XLAT_KIND_PRIV || f.kind == XLAT_KIND_INLINE)
		f.adv = XLAT_ADV_YES; /* judged by the table above only */
	else if (d->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY &&
		 d->encoding != ZYDIS_INSTRUCTION_ENCODING_3DNOW)
		f.adv = XLAT_ADV_NO; /* VEX (incl. VEX.L=1, BMI1/2), EVEX, XOP, MVEX */
	else if (d->mnemonic == ZYDIS_MNEMONIC_ENDBR32 || d->mnemonic == ZYDIS_MNEMONIC_ENDBR64)
		f.adv = XLAT_ADV_YES; /* NOP without CET (decoded as one anyway) */
	else
		f.adv = ext_advertised(d->meta.isa_ext) ? XLAT_ADV_YES : XLAT_ADV_NO;
	return f;
}

uint32_t xlat_undef_flags_computed(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_AND:
	case ZYDIS_MNEMONIC_OR:
	case ZYDIS_MNEMONIC_XOR:
	case ZYDIS_MNEMONIC_TEST:
		return ZYDIS_CPUFLAG_AF;
	case ZYDIS_MNEMONIC_MUL:
	case ZYDIS_MNEMONIC_IMUL:
		return ZYDIS_CPUFLAG_SF | ZYDIS_CPUFLAG_ZF | ZYDIS_CPUFLAG_AF | ZYDIS_CPUFLAG_PF;
	default:
		return 0;
	}
}

/* One instruction of the check, run with RFLAGS' arithmetic bits all clear
 * (before = 0) or all set (0x8d5), on a and b (a in rax, b in rdx); the
 * arithmetic flags after it.  Every form xlat_undef_flags_computed names:
 * the flags' rule does not depend on the operand form. */
#define UF_RUN(insn)                                                                               \
	__asm__ volatile("push %[f]; popfq; mov %[a], %%rax; mov %[b], %%rdx; " insn               \
			 "; pushfq; pop %[out]"                                                    \
			 : [out] "=&r"(out)                                                        \
			 : [f] "r"(before), [a] "r"(a), [b] "r"(b)                                 \
			 : "rax", "rdx", "cc", "memory")

static uint64_t uf_one(int which, uint64_t before, uint64_t a, uint64_t b)
{
	uint64_t out = 0;
	switch (which) {
	case 0:
		UF_RUN("and %%rdx, %%rax");
		break;
	case 1:
		UF_RUN("or %%edx, %%eax");
		break;
	case 2:
		UF_RUN("xor %%dl, %%al");
		break;
	case 3:
		UF_RUN("test %%rdx, %%rax");
		break;
	case 4:
		UF_RUN("and $0x6c02, %%eax");
		break;
	case 5:
		UF_RUN("mul %%rdx");
		break;
	case 6:
		UF_RUN("mul %%dl");
		break;
	case 7:
		UF_RUN("imul %%rdx, %%rax");
		break;
	case 8:
		UF_RUN("imul $7, %%rdx, %%rax");
		break;
	case 9:
		UF_RUN("imul %%edx");
		break;
	default:
		break;
	}
	return out;
}

static bool undef_flags_check(void)
{
	static const uint64_t vals[] = {0,
					1,
					0xf,
					0x10,
					0x7f,
					0x80,
					0xff,
					0x1234,
					0x8000000000000000ull,
					0xffffffffffffffffull,
					0x123456789abcdef0ull};
	/* the instruction of each case, for its flags' rule */
	static const ZydisMnemonic mn[] = {
	    ZYDIS_MNEMONIC_AND,	 ZYDIS_MNEMONIC_OR,  ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_TEST,
	    ZYDIS_MNEMONIC_AND,	 ZYDIS_MNEMONIC_MUL, ZYDIS_MNEMONIC_MUL, ZYDIS_MNEMONIC_IMUL,
	    ZYDIS_MNEMONIC_IMUL, ZYDIS_MNEMONIC_IMUL};
	for (int w = 0; w < (int)(sizeof(mn) / sizeof(mn[0])); w++) {
		uint64_t m = xlat_undef_flags_computed(mn[w]);
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
			for (size_t j = 0; j < sizeof(vals) / sizeof(vals[0]); j++)
				if ((uf_one(w, 0x2, vals[i], vals[j]) ^
				     uf_one(w, 0x2 | 0x8d5, vals[i], vals[j])) &
				    m)
					return false;
	}
	return true;
}

static pthread_once_t uf_once = PTHREAD_ONCE_INIT;
static bool uf_ok;
static int uf_pretend = -1;

static void uf_init(void)
{
	uf_ok = undef_flags_check();
}

bool xlat_host_undef_flags_ok(void)
{
	if (uf_pretend >= 0)
		return uf_pretend != 0;
	pthread_once(&uf_once, uf_init);
	return uf_ok;
}

void xlat_host_undef_flags_pretend(int v)
{
	uf_pretend = v;
}

bool xlat_decoder_init(ZydisDecoder *dec, ZydisMachineMode mode)
{
	ZydisStackWidth w = mode == ZYDIS_MACHINE_MODE_LONG_64		? ZYDIS_STACK_WIDTH_64
			    : mode == ZYDIS_MACHINE_MODE_LONG_COMPAT_32 ? ZYDIS_STACK_WIDTH_32
									: ZYDIS_STACK_WIDTH_16;
	return ZYAN_SUCCESS(ZydisDecoderInit(dec, mode, w)) &&
	       /* no BMI1: F3 0F BC is `rep bsf` */
	       ZYAN_SUCCESS(ZydisDecoderEnableMode(dec, ZYDIS_DECODER_MODE_TZCNT, ZYAN_FALSE)) &&
	       /* no MPX, CET, CLDEMOTE: their hint-space forms are NOPs */
	       ZYAN_SUCCESS(ZydisDecoderEnableMode(dec, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE)) &&
	       ZYAN_SUCCESS(ZydisDecoderEnableMode(dec, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE)) &&
	       ZYAN_SUCCESS(ZydisDecoderEnableMode(dec, ZYDIS_DECODER_MODE_CLDEMOTE, ZYAN_FALSE));
}

/* Shifts and rotates: their count operand is masked, their flag writes
 * depend on it (liveness) and templates leave it unrecorded. */
bool xlat_is_shift(ZydisMnemonic m)
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
	if (!xlat_is_shift(d->mnemonic))
		return false;
	uint64_t count;
	if (!shift_count_imm(in, &count) || count == 0)
		return true;
	return (d->mnemonic == ZYDIS_MNEMONIC_SHLD || d->mnemonic == ZYDIS_MNEMONIC_SHRD) &&
	       d->operand_width == 16 && count > 16;
}
