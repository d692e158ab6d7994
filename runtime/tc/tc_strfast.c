/*
 * The string call-out's fast path (tc_entry.S tc_co_string): called right
 * after the guest's GPRs and flags are saved, before its x87/SSE/AVX
 * state is, so it is built with -mgeneral-regs-only (runtime/tc/module.mk,
 * `make check-fastpath`) and calls nothing but tc_handlers.str_fast, whose
 * implementation must be built the same way.
 *
 * It runs movs, stos, lods, cmps and scas (rep or not, every element
 * size, DF = 0 or 1) a page at a time on host memory: each step takes the
 * elements that stay inside the current source page and the current
 * destination page,
 * asks str_fast for both (the source first, as tc_string_run asks
 * tc_handlers.mem), moves them with the host's own string instruction of
 * the same element size and direction (so an overlapping copy gives the
 * architectural element-by-element result by construction), then
 * advances RSI/RDI/RCX as the architecture does.  cmps/scas (rep, repe,
 * repne) likewise run the host's own instruction on a page's worth of
 * elements, which stops where the guest's would and leaves the flags of
 * the last compare (read back with lahf/seto).
 *
 * Contract: returns 1 having completed the instruction (the vCPU area then
 * holds what tc_callout_c would leave: registers, the guest-view flags;
 * exit_host_pc is the trampoline's) or 0 to let the full path run.  A 0
 * may come after some steps were done: the registers then describe the
 * elements done, exactly as after a partial rep on hardware, and
 * tc_string_run continues from there (it re-reads every register).
 * Declined: str_fast missing or refusing a page (unmapped, not writable,
 * watched, device memory, anything the full path does more for), the
 * stepping loop's one iteration (str_single), an element straddling a
 * page.
 */
#include "runtime/tc/tc_int.h"

#define RFLAGS_DF 0x400ull

int tc_string_fast(struct tc_vcpu *t);

typedef uint16_t __attribute__((may_alias)) u16a;
typedef uint32_t __attribute__((may_alias)) u32a;
typedef uint64_t __attribute__((may_alias)) u64a;

/* Elements of size n from va on, in the direction of the copy, that lie
 * wholly inside va's page (0 if the first one straddles its end). */
static uint64_t room(uint64_t va, unsigned n, bool back)
{
	uint64_t off = va & (GUEST_PAGE_SIZE - 1);
	if (off + n > GUEST_PAGE_SIZE)
		return 0;
	return back ? (off + n) / n : (GUEST_PAGE_SIZE - off) / n;
}

/* rep movs of k n-byte elements, s and d the first (DF = 0) or last
 * (DF = 1) element's host address: the host instruction itself */
static void host_movs(uint8_t *s, uint8_t *d, uint64_t k, unsigned n, bool back)
{
	if (back)
		__asm__ volatile("std" ::: "cc");
	switch (n) {
	case 1:
		__asm__ volatile("rep movsb" : "+S"(s), "+D"(d), "+c"(k) : : "memory");
		break;
	case 2:
		__asm__ volatile("rep movsw" : "+S"(s), "+D"(d), "+c"(k) : : "memory");
		break;
	case 4:
		__asm__ volatile("rep movsl" : "+S"(s), "+D"(d), "+c"(k) : : "memory");
		break;
	default:
		__asm__ volatile("rep movsq" : "+S"(s), "+D"(d), "+c"(k) : : "memory");
		break;
	}
	if (back)
		__asm__ volatile("cld" ::: "cc");
}

static void host_stos(uint8_t *d, uint64_t v, uint64_t k, unsigned n, bool back)
{
	if (back)
		__asm__ volatile("std" ::: "cc");
	switch (n) {
	case 1:
		__asm__ volatile("rep stosb" : "+D"(d), "+c"(k) : "a"(v) : "memory");
		break;
	case 2:
		__asm__ volatile("rep stosw" : "+D"(d), "+c"(k) : "a"(v) : "memory");
		break;
	case 4:
		__asm__ volatile("rep stosl" : "+D"(d), "+c"(k) : "a"(v) : "memory");
		break;
	default:
		__asm__ volatile("rep stosq" : "+D"(d), "+c"(k) : "a"(v) : "memory");
		break;
	}
	if (back)
		__asm__ volatile("cld" ::: "cc");
}

/*
 * repe/repne (or no-rep) cmps/scas of at most k >= 1 n-byte elements,
 * s/d the first element's host address (scas: s unused, RAX the operand):
 * the host instruction itself, which stops where the guest's would.  Returns the
 * elements compared and, in *flags, the arithmetic flags it left (the
 * last compare's: lahf gives SF ZF AF PF CF, seto OF).
 */
#define CMP_ASM(insn)                                                                              \
	__asm__ volatile(insn "\n\tlahf\n\tseto %%al"                                              \
			 : "+S"(s), "+D"(d), "+c"(c), "+a"(ax)                                     \
			 :                                                                         \
			 : "cc", "memory")

static uint64_t host_cmp(unsigned op, uint8_t *s, uint8_t *d, uint64_t rax, uint64_t k, unsigned n,
			 bool back, unsigned pfx, uint64_t *flags)
{
	uint64_t c = k, ax = rax;
	if (back)
		__asm__ volatile("std" ::: "cc");
	/* pfx: 0 none, 1 repe, 2 repne; n: 1 2 4 8 */
	switch ((op == VCPU_STR_SCAS ? 24 : 0) + pfx * 8 + n) {
	case 1:
		CMP_ASM("cmpsb");
		break;
	case 2:
		CMP_ASM("cmpsw");
		break;
	case 4:
		CMP_ASM("cmpsl");
		break;
	case 8:
		CMP_ASM("cmpsq");
		break;
	case 9:
		CMP_ASM("repe cmpsb");
		break;
	case 10:
		CMP_ASM("repe cmpsw");
		break;
	case 12:
		CMP_ASM("repe cmpsl");
		break;
	case 16:
		CMP_ASM("repe cmpsq");
		break;
	case 17:
		CMP_ASM("repne cmpsb");
		break;
	case 18:
		CMP_ASM("repne cmpsw");
		break;
	case 20:
		CMP_ASM("repne cmpsl");
		break;
	case 24:
		CMP_ASM("repne cmpsq");
		break;
	case 25:
		CMP_ASM("scasb");
		break;
	case 26:
		CMP_ASM("scasw");
		break;
	case 28:
		CMP_ASM("scasl");
		break;
	case 32:
		CMP_ASM("scasq");
		break;
	case 33:
		CMP_ASM("repe scasb");
		break;
	case 34:
		CMP_ASM("repe scasw");
		break;
	case 36:
		CMP_ASM("repe scasl");
		break;
	case 40:
		CMP_ASM("repe scasq");
		break;
	case 41:
		CMP_ASM("repne scasb");
		break;
	case 42:
		CMP_ASM("repne scasw");
		break;
	case 44:
		CMP_ASM("repne scasl");
		break;
	default:
		CMP_ASM("repne scasq");
		break;
	}
	if (back)
		__asm__ volatile("cld" ::: "cc");
	if (pfx == 0)
		c = k - 1; /* one compare, whatever RCX held */
	*flags = ((ax >> 8) & 0xd5) | ((ax & 0xff) ? 0x800 : 0);
	return k - c;
}

/* RAX after lods of the n-byte element at p (as tc_string.c put_rax) */
static uint64_t lods_rax(uint64_t rax, const uint8_t *p, unsigned n)
{
	switch (n) {
	case 1:
		return (rax & ~0xffull) | *p;
	case 2:
		return (rax & ~0xffffull) | *(const u16a *)p;
	case 4:
		return *(const u32a *)p;
	default:
		return *(const u64a *)p;
	}
}

/*
 * One step: up to k elements inside one page on each side.  Returns the
 * number done (registers advanced), 0 if a page was declined (nothing
 * done).
 */
static uint64_t string_step(struct tc_vcpu *t, unsigned op, unsigned n, uint64_t seg, bool back,
			    uint64_t k)
{
	struct vcpu_abi *a = t->abi;
	uint64_t rsi = a->gpr[VCPU_RSI], rdi = a->gpr[VCPU_RDI];
	uint8_t *s = NULL, *d = NULL;

	if (op != VCPU_STR_STOS)
		k = BT_MIN(k, room(rsi + seg, n, back));
	if (op != VCPU_STR_LODS)
		k = BT_MIN(k, room(rdi, n, back));
	if (k == 0)
		return 0;
	uint64_t bytes = k * n, span = back ? bytes - n : 0; /* first byte below the element */
	if (op != VCPU_STR_STOS &&
	    !(s = t->h.str_fast(t, rsi + seg - span, (uint32_t)bytes, false)))
		return 0;
	if (op != VCPU_STR_LODS && !(d = t->h.str_fast(t, rdi - span, (uint32_t)bytes, true)))
		return 0;
	switch (op) {
	case VCPU_STR_MOVS:
		host_movs(s + span, d + span, k, n, back);
		break;
	case VCPU_STR_STOS:
		host_stos(d + span, a->gpr[VCPU_RAX], k, n, back);
		break;
	default: /* lods: only the last element stays in RAX */
		a->gpr[VCPU_RAX] = lods_rax(a->gpr[VCPU_RAX], back ? s : s + bytes - n, n);
		break;
	}
	uint64_t delta = back ? (uint64_t)0 - bytes : bytes;
	if (op != VCPU_STR_STOS)
		a->gpr[VCPU_RSI] = rsi + delta;
	if (op != VCPU_STR_LODS)
		a->gpr[VCPU_RDI] = rdi + delta;
	return k;
}

/*
 * One step of cmps/scas: up to k elements inside one page on each side
 * (both read), compared until the prefix's condition fails (pfx: 0 none,
 * 1 repe, 2 repne).  Returns the number compared (registers and flags
 * advanced; *stop when the condition failed), 0 if a page was declined
 * (nothing done).
 */
static uint64_t cmp_step(struct tc_vcpu *t, unsigned op, unsigned n, uint64_t seg, bool back,
			 uint64_t k, unsigned pfx, bool *stop)
{
	struct vcpu_abi *a = t->abi;
	uint64_t rsi = a->gpr[VCPU_RSI], rdi = a->gpr[VCPU_RDI], fl;
	uint8_t *s = NULL, *d;

	if (op == VCPU_STR_CMPS)
		k = BT_MIN(k, room(rsi + seg, n, back));
	k = BT_MIN(k, room(rdi, n, back));
	if (k == 0)
		return 0;
	uint64_t bytes = k * n, span = back ? bytes - n : 0;
	if (op == VCPU_STR_CMPS &&
	    !(s = t->h.str_fast(t, rsi + seg - span, (uint32_t)bytes, false)))
		return 0;
	if (!(d = t->h.str_fast(t, rdi - span, (uint32_t)bytes, false)))
		return 0;
	uint64_t done =
	    host_cmp(op, s ? s + span : NULL, d + span, a->gpr[VCPU_RAX], k, n, back, pfx, &fl);
	a->rflags = (a->rflags & ~0x8d5ull) | fl;
	uint64_t delta = back ? (uint64_t)0 - done * n : done * n;
	if (op == VCPU_STR_CMPS)
		a->gpr[VCPU_RSI] = rsi + delta;
	a->gpr[VCPU_RDI] = rdi + delta;
	*stop = pfx == 1 ? !(fl & 0x40) : pfx == 2 ? (fl & 0x40) != 0 : true;
	return done;
}

int tc_string_fast(struct tc_vcpu *t)
{
	struct vcpu_abi *a = t->abi;
	struct tc_str_req q = tc_str_req(a);
	unsigned op = q.op, n = q.n;
	bool rep = q.rep;
	bool back = (a->rflags & RFLAGS_DF) != 0;
	uint64_t seg = q.seg;

	t->str_calls++;
	if (!t->h.str_fast || t->str_single || (n != 1 && n != 2 && n != 4 && n != 8) ||
	    op < VCPU_STR_MOVS || op > VCPU_STR_SCAS)
		return 0;
	if (op == VCPU_STR_CMPS || op == VCPU_STR_SCAS) {
		unsigned pfx = q.repne ? 2 : rep ? 1 : 0;
		bool stop = false;
		if (!rep) {
			if (!cmp_step(t, op, n, seg, back, 1, 0, &stop))
				return 0;
		} else {
			while (a->gpr[VCPU_RCX] != 0 && !stop) {
				uint64_t k =
				    cmp_step(t, op, n, seg, back, a->gpr[VCPU_RCX], pfx, &stop);
				if (!k)
					return 0;
				a->gpr[VCPU_RCX] -= k;
			}
		}
	} else if (!rep) {
		if (!string_step(t, op, n, seg, back, 1))
			return 0;
	} else {
		while (a->gpr[VCPU_RCX] != 0) {
			uint64_t k = string_step(t, op, n, seg, back, a->gpr[VCPU_RCX]);
			if (!k)
				return 0;
			a->gpr[VCPU_RCX] -= k;
		}
	}
	t->str_fast++;
	tc_flags_sanitize(a);
	return 1;
}
