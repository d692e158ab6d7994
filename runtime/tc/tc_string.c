/*
 * The VCPU_CO_STRING call-out: movs/stos/lods/cmps/scas with and without
 * rep/repe/repne, 64-bit addressing, through the runtime's soft-MMU
 * handler (tc_handlers.mem).  Forward rep movs/stos go a page-contiguous
 * chunk at a time (one handler call per page instead of per element:
 * Linux clears and copies memory with them); everything else one element
 * at a time.
 *
 * Invariants
 *  1. Registers in the vCPU area are updated after every completed element,
 *     so a fault leaves the exact architectural state of a partially done
 *     rep instruction (the guest restarts it with the remaining count).
 *  2. Flags follow `cmp src, dst` exactly for cmps/scas; other string
 *     instructions leave the flags alone.
 */
#include "runtime/tc/tc_int.h"

#include <string.h>

static uint64_t load_n(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	memcpy(&v, p, n);
	return v;
}

/* RFLAGS arithmetic bits of `cmp a, b` at width n bytes. */
static uint64_t cmp_flags(uint64_t a, uint64_t b, unsigned n)
{
	unsigned bits = n * 8;
	uint64_t mask = bits == 64 ? ~0ull : ((1ull << bits) - 1);
	uint64_t sign = 1ull << (bits - 1);
	a &= mask;
	b &= mask;
	uint64_t r = (a - b) & mask;
	uint64_t f = 0;
	if (a < b)
		f |= 0x001; /* CF */
	if (!__builtin_parity((unsigned)(r & 0xff)))
		f |= 0x004; /* PF */
	if ((a ^ b ^ r) & 0x10)
		f |= 0x010; /* AF */
	if (r == 0)
		f |= 0x040; /* ZF */
	if (r & sign)
		f |= 0x080; /* SF */
	if ((a ^ b) & (a ^ r) & sign)
		f |= 0x800; /* OF */
	return f;
}

static void put_rax(struct vcpu_abi *a, uint64_t v, unsigned n)
{
	switch (n) {
	case 1:
		a->gpr[VCPU_RAX] = (a->gpr[VCPU_RAX] & ~0xffull) | (v & 0xff);
		break;
	case 2:
		a->gpr[VCPU_RAX] = (a->gpr[VCPU_RAX] & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		a->gpr[VCPU_RAX] = v & 0xffffffffull;
		break;
	default:
		a->gpr[VCPU_RAX] = v;
		break;
	}
}

/* Elements of size n from va to the end of its page (0 if the first one
 * straddles the boundary). */
static uint64_t page_room(uint64_t va, unsigned n)
{
	return (GUEST_PAGE_SIZE - (va & (GUEST_PAGE_SIZE - 1))) / n;
}

/*
 * One chunk of a forward rep movs/stos: k >= 2 elements that stay inside one
 * page on each side.  Returns 0 and advances the registers, 1 on a guest
 * fault (registers untouched: the chunk is all or nothing, and its first
 * element is the one the guest faults on), or -1 when the chunk does not
 * apply, device memory included (the caller does one element).
 */
/* Fill d[0, bytes) with the n-byte element v (bytes a multiple of n):
 * memset when every byte of the element is the same (rep stosq of 0, as
 * Linux clears pages and structures), else one element then doubling
 * copies, never a loop per element. */
static void fill(uint8_t *d, size_t bytes, uint64_t v, unsigned n)
{
	uint64_t rep = (v & 0xff) * 0x0101010101010101ull;
	if (n == 1 || (v ^ rep) << (64 - 8 * n) == 0) {
		memset(d, (int)(v & 0xff), bytes);
		return;
	}
	memcpy(d, &v, n);
	for (size_t done = n; done < bytes;) {
		size_t k = BT_MIN(done, bytes - done);
		memcpy(d + done, d, k);
		done += k;
	}
}

/* A chunk's range through the handler: 0 with *host, 1 on a guest fault,
 * -1 when the range is not all RAM (device memory gets one access per
 * element, never one wider access for the chunk: the caller goes element
 * by element; a source range granted before costs nothing). */
static int chunk_mem(struct tc_vcpu *t, uint64_t va, size_t bytes, bool write, uint8_t **host)
{
	t->str_chunk = true;
	int r = t->h.mem(t, va, (uint32_t)bytes, write, host);
	t->str_chunk = false;
	return r == TC_MEM_NOT_RAM ? -1 : (r ? 1 : 0);
}

static int string_chunk(struct tc_vcpu *t, unsigned op, unsigned n, uint64_t seg)
{
	struct vcpu_abi *a = t->abi;
	uint64_t rsi = a->gpr[VCPU_RSI], rdi = a->gpr[VCPU_RDI];
	uint64_t k = BT_MIN(a->gpr[VCPU_RCX], page_room(rdi, n));
	if (op == VCPU_STR_MOVS)
		k = BT_MIN(k, page_room(rsi + seg, n));
	if (k < 2)
		return -1;
	size_t bytes = (size_t)(k * n);
	uint8_t *s = NULL, *d = NULL;
	int r;
	if (op == VCPU_STR_MOVS) {
		if ((r = chunk_mem(t, rsi + seg, bytes, false, &s)) != 0)
			return r;
		if ((r = chunk_mem(t, rdi, bytes, true, &d)) != 0)
			return r;
		if (d > s && d < s + bytes) {
			/* overlapping forward copy: element by element, each read
			 * before its write, exactly as rep movs does */
			for (size_t i = 0; i < bytes; i += n) {
				uint64_t e;
				memcpy(&e, s + i, n);
				memcpy(d + i, &e, n);
			}
		} else {
			/* disjoint, or the destination below the source: every
			 * element reads bytes no earlier element wrote */
			memmove(d, s, bytes);
		}
		a->gpr[VCPU_RSI] = rsi + bytes;
	} else {
		uint64_t v = a->gpr[VCPU_RAX];
		if ((r = chunk_mem(t, rdi, bytes, true, &d)) != 0)
			return r;
		fill(d, bytes, v, n);
	}
	a->gpr[VCPU_RDI] = rdi + bytes;
	a->gpr[VCPU_RCX] -= k;
	return 0;
}

int tc_string_run(struct tc_vcpu *t)
{
	struct vcpu_abi *a = t->abi;
	struct tc_str_req q = tc_str_req(a);
	unsigned op = q.op, n = q.n;
	bool rep = q.rep, repne = q.repne;
	uint64_t seg = q.seg;
	int64_t step = (a->rflags & 0x400) ? -(int64_t)n : (int64_t)n;
	if (n != 1 && n != 2 && n != 4 && n != 8)
		return 1;
	bool chunked =
	    rep && step > 0 && (op == VCPU_STR_MOVS || op == VCPU_STR_STOS) && !t->str_single;
	for (;;) {
		if (rep && a->gpr[VCPU_RCX] == 0)
			break;
		if (chunked) {
			int c = string_chunk(t, op, n, seg);
			if (c >= 0) {
				if (c)
					return 1;
				continue;
			}
		}
		uint8_t *s = NULL, *d = NULL;
		uint64_t rsi = a->gpr[VCPU_RSI], rdi = a->gpr[VCPU_RDI];
		switch (op) {
		case VCPU_STR_MOVS:
			if (t->h.mem(t, rsi + seg, n, false, &s) || t->h.mem(t, rdi, n, true, &d))
				return 1;
			memmove(d, s, n);
			a->gpr[VCPU_RSI] = rsi + (uint64_t)step;
			a->gpr[VCPU_RDI] = rdi + (uint64_t)step;
			break;
		case VCPU_STR_STOS: {
			uint64_t v = a->gpr[VCPU_RAX];
			if (t->h.mem(t, rdi, n, true, &d))
				return 1;
			memcpy(d, &v, n);
			a->gpr[VCPU_RDI] = rdi + (uint64_t)step;
			break;
		}
		case VCPU_STR_LODS:
			if (t->h.mem(t, rsi + seg, n, false, &s))
				return 1;
			put_rax(a, load_n(s, n), n);
			a->gpr[VCPU_RSI] = rsi + (uint64_t)step;
			break;
		case VCPU_STR_CMPS:
			if (t->h.mem(t, rsi + seg, n, false, &s) || t->h.mem(t, rdi, n, false, &d))
				return 1;
			a->rflags =
			    (a->rflags & ~0x8d5ull) | cmp_flags(load_n(s, n), load_n(d, n), n);
			a->gpr[VCPU_RSI] = rsi + (uint64_t)step;
			a->gpr[VCPU_RDI] = rdi + (uint64_t)step;
			break;
		case VCPU_STR_SCAS:
			if (t->h.mem(t, rdi, n, false, &d))
				return 1;
			a->rflags =
			    (a->rflags & ~0x8d5ull) | cmp_flags(a->gpr[VCPU_RAX], load_n(d, n), n);
			a->gpr[VCPU_RDI] = rdi + (uint64_t)step;
			break;
		default:
			return 1;
		}
		if (!rep)
			break;
		a->gpr[VCPU_RCX]--;
		if (op == VCPU_STR_CMPS || op == VCPU_STR_SCAS) {
			bool zf = (a->rflags & 0x40) != 0;
			if (repne ? zf : !zf)
				break;
		}
		if (t->str_single) { /* one iteration per single-step trap */
			t->str_unfinished = a->gpr[VCPU_RCX] != 0;
			break;
		}
	}
	return 0;
}
