/*
 * The instruction classes of the translator core: which rewriting rule of
 * xlat_mangle.c each guest instruction takes (xlat_classify), how CPL-3
 * code changes that (xlat_class_user), and which classes end a block.
 *
 * Invariants
 *  1. A pure function of the decoded instruction (no context, no state):
 *     the same bytes classify the same way in pretrans and the runtime.
 *  2. Every instruction the rules do not cover is XC_REFUSE (the block is
 *     refused with a reason), never silently copied.
 */
#include "pretrans/xlat/xlat_int.h"

static bool is_mnem(ZydisMnemonic m, const ZydisMnemonic *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == m)
			return true;
	return false;
}

static const ZydisMnemonic copy_mem_list[] = {
    /* memory operand that is not an access (hints, nop) */
    ZYDIS_MNEMONIC_NOP,	       ZYDIS_MNEMONIC_PREFETCH,	   ZYDIS_MNEMONIC_PREFETCHNTA,
    ZYDIS_MNEMONIC_PREFETCHT0, ZYDIS_MNEMONIC_PREFETCHT1,  ZYDIS_MNEMONIC_PREFETCHT2,
    ZYDIS_MNEMONIC_PREFETCHW,  ZYDIS_MNEMONIC_PREFETCHWT1, ZYDIS_MNEMONIC_CLDEMOTE,
};

int xlat_mem_operand(const struct xlat_insn *in, int *n_explicit, int *n_hidden)
{
	int idx = -1;
	*n_explicit = *n_hidden = 0;
	for (int i = 0; i < in->d.operand_count; i++) {
		const ZydisDecodedOperand *o = &in->ops[i];
		if (o->type != ZYDIS_OPERAND_TYPE_MEMORY || o->mem.type == ZYDIS_MEMOP_TYPE_AGEN)
			continue;
		if (o->visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN) {
			(*n_hidden)++;
		} else {
			(*n_explicit)++;
			idx = i;
		}
	}
	return idx;
}

enum xlat_class xlat_classify(const struct xlat_insn *in)
{
	const ZydisDecodedInstruction *d = &in->d;
	ZydisMnemonic m = d->mnemonic;
	int nexp, nhid;
	int mi = xlat_mem_operand(in, &nexp, &nhid);

	/* kind from the instruction fact table (xlat_facts.c) */
	switch (in->facts.kind) {
	case XLAT_KIND_INLINE:
		switch (m) {
		case ZYDIS_MNEMONIC_CLI:
			return XC_CLI;
		case ZYDIS_MNEMONIC_STI:
			return XC_STI;
		case ZYDIS_MNEMONIC_STAC:
			return XC_STAC;
		case ZYDIS_MNEMONIC_CLAC:
			return XC_CLAC;
		case ZYDIS_MNEMONIC_SWAPGS:
			return XC_SWAPGS;
		case ZYDIS_MNEMONIC_PUSHFQ:
			return XC_PUSHF;
		case ZYDIS_MNEMONIC_POPFQ:
			return XC_POPF;
		case ZYDIS_MNEMONIC_SERIALIZE:
			return XC_SERIALIZE;
		case ZYDIS_MNEMONIC_MOV:
			return XC_SEGREAD;
		case ZYDIS_MNEMONIC_RDTSC:
			return XC_RDTSC;
		default:
			return XC_PRIV;
		}
	case XLAT_KIND_PRIV:
		return XC_PRIV;
	case XLAT_KIND_UNCOVERED:
		return XC_REFUSE;
	default:
		break;
	}
	if (d->meta.category == ZYDIS_CATEGORY_STRINGOP) {
		if (d->address_width != 64)
			return XC_REFUSE;
		return XC_STRING;
	}
	switch (m) {
	case ZYDIS_MNEMONIC_JMP:
		return in->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? XC_JMP : XC_JMP_IND;
	case ZYDIS_MNEMONIC_CALL:
		if (d->operand_width != 64)
			return XC_REFUSE;
		return in->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? XC_CALL : XC_CALL_IND;
	case ZYDIS_MNEMONIC_RET:
		return d->operand_width == 64 ? XC_RET : XC_REFUSE;
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE:
	case ZYDIS_MNEMONIC_JRCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
		return XC_LOOP;
	case ZYDIS_MNEMONIC_PUSH:
		return d->operand_width == 64 && nexp <= 1 ? XC_PUSH : XC_REFUSE;
	case ZYDIS_MNEMONIC_POP:
		return d->operand_width == 64 && nexp <= 1 &&
			       (in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER ||
				in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY)
			   ? XC_POP
			   : XC_REFUSE;
	case ZYDIS_MNEMONIC_LEAVE:
		return d->operand_width == 64 ? XC_LEAVE : XC_REFUSE;
	default:
		break;
	}
	if (d->meta.category == ZYDIS_CATEGORY_COND_BR)
		return XC_JCC;
	if (d->meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
	    d->meta.category == ZYDIS_CATEGORY_CALL || d->meta.category == ZYDIS_CATEGORY_RET)
		return XC_REFUSE;
	if (m == ZYDIS_MNEMONIC_LEA) {
		for (int i = 0; i < d->operand_count_visible; i++)
			if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
			    in->ops[i].mem.base == ZYDIS_REGISTER_RIP)
				return XC_RIPLEA;
		return XC_COPY;
	}
	if (is_mnem(m, copy_mem_list, BT_ARRAY_SIZE(copy_mem_list)))
		return XC_COPY;
	if (nhid > 0 || nexp > 1)
		return XC_REFUSE;
	if (nexp == 1) {
		const ZydisDecodedOperand *o = &in->ops[mi];
		if (o->mem.type != ZYDIS_MEMOP_TYPE_MEM)
			return XC_REFUSE; /* vsib gathers, MIB */
		return XC_MEM;
	}
	/* anything else touching rip-relative state has a memory operand;
	 * an instruction without one is safe to copy */
	return XC_COPY;
}

/*
 * At CPL 3 the instructions the kernel's translation handles inline act on
 * state user code does not own: cli/sti need IOPL 3, popf may change IF
 * and IOPL only with enough privilege (and TF, NT, AC have effects the
 * inline form does not model), stac/clac/swapgs are #UD.  A user block
 * ends with them as a PRIV exit and the vCPU emulates them at CPL 3
 * (runtime/cpu).  pushf too: the inline form rebuilds RFLAGS from the
 * arithmetic flags and the virtual IF/AC only, but user code may have set
 * NT or IOPL-visible bits through an emulated popf, and pushf must show
 * them (the vCPU holds the whole RFLAGS).
 */
enum xlat_class xlat_class_user(enum xlat_class c)
{
	switch (c) {
	case XC_CLI:
	case XC_STI:
	case XC_POPF:
	case XC_STAC:
	case XC_CLAC:
	case XC_SWAPGS:
	case XC_PUSHF:
	case XC_RDTSC: /* CR4.TSD may forbid it at CPL 3 */
		return XC_PRIV;
	default:
		return c;
	}
}

bool xlat_class_ends_block(enum xlat_class c)
{
	switch (c) {
	case XC_JMP:
	case XC_JCC:
	case XC_LOOP:
	case XC_CALL:
	case XC_JMP_IND:
	case XC_CALL_IND:
	case XC_RET:
	case XC_PRIV:
	case XC_POPF:
	case XC_SERIALIZE:
		return true;
	default:
		return false;
	}
}
