/*
 * String instructions (class XC_STRING): the VCPU_CO_STRING call-out, and
 * since XLAT_VERSION 16 rep movs/stos (b, q) of kernel blocks inline when
 * DF = 0 and both ranges hit the TLB within a page (docs/xlat.md "String
 * instructions inline").
 */
#include "pretrans/xlat/xlat_int.h"
#include <string.h>

/* rep movsb/movsq/stosb/stosq of a kernel block, with no segment, operand
 * size or repne prefix: string_inline runs it inline when it can. */
bool xlat_string_inline_ok(const struct xe *e, const struct xlat_insn *in)
{
	ZydisMnemonic m = in->d.mnemonic;
	if (m != ZYDIS_MNEMONIC_MOVSB && m != ZYDIS_MNEMONIC_MOVSQ && m != ZYDIS_MNEMONIC_STOSB &&
	    m != ZYDIS_MNEMONIC_STOSQ)
		return false;
	const ZydisInstructionAttributes bad = ZYDIS_ATTRIB_HAS_REPNE | ZYDIS_ATTRIB_HAS_SEGMENT |
					       ZYDIS_ATTRIB_HAS_OPERANDSIZE |
					       ZYDIS_ATTRIB_HAS_ADDRESSSIZE | ZYDIS_ATTRIB_HAS_LOCK;
	return (in->d.attributes & ZYDIS_ATTRIB_HAS_REP) && !(in->d.attributes & bad) &&
	       in->d.address_width == 64 && !e->step && !e->count_probes &&
	       e->off_ibl != VCPU_OFF_UIBL;
}

/* One range's TLB check for string_inline: the entry of the first byte
 * (reg) must hold the page of the last one, reg + rcx * size - 1, for the
 * access (as a probe's; the count is at most a page, so the two are one
 * page), then T2 = that entry's addend.  Flags are clobbered. */
static void string_range(struct xe *e, ZydisRegister reg, unsigned size, bool write,
			 ZydisRegister A, ZydisRegister T1, ZydisRegister T2, int slow)
{
	ZydisEncoderOperand oa = xe_r(A), ot1 = xe_r(T1), ot2 = xe_r(T2), orr = xe_r(reg), im, mm;
	xe_ins(e, ZYDIS_MNEMONIC_MOV, false, 2, &ot1, &orr, NULL);
	im = xe_i(12 - 5);
	xe_ins(e, ZYDIS_MNEMONIC_SHR, false, 2, &ot1, &im, NULL);
	im = xe_i((VCPU_TLB_ENTRIES - 1) << 5);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &ot1, &im, NULL);
	mm = xe_m(8, reg, ZYDIS_REGISTER_RCX, (uint8_t)size, -1);
	xe_ins(e, ZYDIS_MNEMONIC_LEA, false, 2, &oa, &mm, NULL);
	im = xe_i(-4096);
	xe_ins(e, ZYDIS_MNEMONIC_AND, false, 2, &oa, &im, NULL);
	mm = xe_m(8, T1, ZYDIS_REGISTER_NONE, 0,
		  e->off_tlb + (write ? offsetof(struct vcpu_tlb_entry, tag_write)
				      : offsetof(struct vcpu_tlb_entry, tag_read)));
	xe_ins(e, ZYDIS_MNEMONIC_CMP, true, 2, &oa, &mm, NULL);
	xe_branch(e, ZYDIS_MNEMONIC_JNZ, slow);
	mm = xe_m(8, T1, ZYDIS_REGISTER_NONE, 0,
		  e->off_tlb + offsetof(struct vcpu_tlb_entry, addend));
	xe_ins(e, ZYDIS_MNEMONIC_MOV, true, 2, &ot2, &mm, NULL);
}

/*
 * rep movs/stos inline (XLAT_VERSION 16): Linux's memcpy_erms and
 * memset_erms are `rep movsb`/`rep stosb`, and the crypto API's small
 * hashes run several a call, each a VCPU_CO_STRING call-out until now
 * (an FPU save and restore each, docs/linux-bench.md "Where btvm's time
 * goes").  With DF = 0, RCX at most a page's worth of elements and each
 * range within one page whose TLB entry allows the access (a write tag:
 * writable, dirty, no code), the host runs the instruction itself on the
 * host addresses; anything else takes the call-out as before:
 *     test  byte %gs:spill_flags+1, 4 ; jnz slow        DF (the saved image)
 *     cmp   rcx, 4096 / size ; ja slow
 *     [movs: rsi's range, read: T2 = its addend]       string_range
 *     rdi's range, write: A = its addend
 *     [add rsi, T2] ; add rdi, A ; rep movs/stos ; sub rdi, A ; [sub rsi, T2]
 *   done:
 *   slow (COLD): everything pending back, mem_info, the call-out, jmp done
 * Nothing on the fast path can fault: host DF is the guest's (flags saves
 * never change it), and the guest flags stay saved (pending) after it.
 */
static void string_inline(struct xe *e, const struct xlat_insn *in, uint32_t info)
{
	ZydisMnemonic m = in->d.mnemonic;
	bool movs = m == ZYDIS_MNEMONIC_MOVSB || m == ZYDIS_MNEMONIC_MOVSQ;
	unsigned size = (m == ZYDIS_MNEMONIC_MOVSQ || m == ZYDIS_MNEMONIC_STOSQ) ? 8 : 1;
	struct xlat_scratch s;
	xlat_begin_scratch(e, in, 3, &s, true); /* the flags hold DF; the checks clobber them */
	ZydisRegister A = s.reg[0], T1 = s.reg[1], T2 = s.reg[2];
	ZydisEncoderOperand oa = xe_r(A), ot2 = xe_r(T2), osi = xe_r(ZYDIS_REGISTER_RSI),
			    odi = xe_r(ZYDIS_REGISTER_RDI), ocx = xe_r(ZYDIS_REGISTER_RCX), im, mm;
	e->idx_valid = false;
	int cat = xe_cat(e, XLAT_CAT_PROBE);
	int slow = xe_label_new(e), done = xe_label_new(e);
	mm = xe_m(1, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, 0, VCPU_OFF_SPILL_FLAGS + 1);
	im = xe_i(0x04); /* DF is bit 10 */
	xe_ins(e, ZYDIS_MNEMONIC_TEST, true, 2, &mm, &im, NULL);
	xe_branch(e, ZYDIS_MNEMONIC_JNZ, slow);
	im = xe_i(GUEST_PAGE_SIZE / size);
	xe_ins(e, ZYDIS_MNEMONIC_CMP, false, 2, &ocx, &im, NULL);
	xe_branch(e, ZYDIS_MNEMONIC_JNBE, slow);
	if (movs)
		string_range(e, ZYDIS_REGISTER_RSI, size, false, A, T1, T2, slow);
	string_range(e, ZYDIS_REGISTER_RDI, size, true, A, T1, A, slow);
	if (movs)
		xe_ins(e, ZYDIS_MNEMONIC_ADD, false, 2, &osi, &ot2, NULL);
	xe_ins(e, ZYDIS_MNEMONIC_ADD, false, 2, &odi, &oa, NULL);
	static const uint8_t op[2][2][3] = {{{0xf3, 0xaa}, {0xf3, 0x48, 0xab}},
					    {{0xf3, 0xa4}, {0xf3, 0x48, 0xa5}}};
	xe_bytes(e, op[movs][size == 8], size == 8 ? 3 : 2);
	xe_ins(e, ZYDIS_MNEMONIC_SUB, false, 2, &odi, &oa, NULL);
	if (movs)
		xe_ins(e, ZYDIS_MNEMONIC_SUB, false, 2, &osi, &ot2, NULL);
	xe_label_place(e, done);

	/* the call-out wants every guest register and the flags in place;
	 * MAIN goes on with them pending, whose saved values still hold */
	uint32_t mask = e->mask, pend = e->pend_regs;
	bool pflags = e->pend_flags;
	xe_cat(e, XLAT_CAT_SLOW);
	xe_section(e, XE_COLD);
	xe_label_place(e, slow);
	xlat_flush_pending(e);
	xe_gs_store_imm32(e, 4, VCPU_OFF_MEM_INFO, info); /* the low dword only */
	xe_callout(e, VCPU_CO_STRING);
	xe_branch(e, ZYDIS_MNEMONIC_JMP, done);
	e->mask = mask;
	e->pend_regs = pend;
	e->pend_flags = pflags;
	xe_section(e, XE_MAIN);
	xe_cat(e, cat);
}

void xlat_mangle_string(struct xe *e, const struct xlat_insn *in)
{
	const char *name = ZydisMnemonicGetString(in->d.mnemonic);
	uint32_t info = 0;
	if (!strncmp(name, "movs", 4))
		info = VCPU_STR_MOVS;
	else if (!strncmp(name, "stos", 4))
		info = VCPU_STR_STOS;
	else if (!strncmp(name, "lods", 4))
		info = VCPU_STR_LODS;
	else if (!strncmp(name, "cmps", 4))
		info = VCPU_STR_CMPS;
	else if (!strncmp(name, "scas", 4))
		info = VCPU_STR_SCAS;
	else {
		e->failed = true;
		return;
	}
	info |= (uint32_t)(in->d.operand_width / 8) << 8;
	if (in->d.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
		info |= VCPU_STR_REP;
	if (in->d.attributes & ZYDIS_ATTRIB_HAS_REPNE)
		info |= VCPU_STR_REPNE;
	if (in->d.attributes & ZYDIS_ATTRIB_HAS_SEGMENT_FS)
		info |= VCPU_STR_FS;
	if (in->d.attributes & ZYDIS_ATTRIB_HAS_SEGMENT_GS)
		info |= VCPU_STR_GS;
	if (!xlat_string_inline_ok(e, in)) {
		xe_gs_store_imm32(e, 4, VCPU_OFF_MEM_INFO, info); /* the low dword only */
		xe_callout(e, VCPU_CO_STRING);
		return;
	}
	string_inline(e, in, info);
}
