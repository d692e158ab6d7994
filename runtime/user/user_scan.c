/*
 * The sensitive-instruction scan of a guest user code page (user_scan.h).
 *
 * Two stages: SSE2 compares find the offsets whose bytes can start a
 * sensitive instruction (0x0f followed by a second byte of interest,
 * 0x8c/0x8e, and the one-byte I/O and flag opcodes when USER_SCAN_IO is
 * asked), 16 bytes at a time; each such offset
 * is then classified from the bytes after it (and the prefix bytes before
 * it, for the few encodings a prefix decides).  A byte the scan does not
 * have (beyond the page and the `next` bytes given, or before the page)
 * matches anything: the result errs towards "sensitive".
 *
 * Invariants
 *  1. Every offset is tried: a match does not depend on where instructions
 *     start, so jumping into the middle of an instruction cannot hide one.
 *  2. A class outside `mask` never matches, and its opcode bytes are not
 *     even candidates (the I/O bytes are common in data).
 */
#include "runtime/user/user_scan.h"

#include <emmintrin.h>
#include <stdbool.h>
#include <string.h>

/* Classes that start with a 0x0f byte. */
#define SCAN_0F_CLASSES                                                                            \
	(USER_SCAN_DESC | USER_SCAN_SEG | USER_SCAN_TSCAUX | USER_SCAN_FSGS | USER_SCAN_FEAT |     \
	 USER_SCAN_SYSENTER | USER_SCAN_TSC)

/* The bytes around a candidate: b[0] is the opcode byte, `avail` bytes from
 * it are known (>= 1); prev[0] / prev[1] are the one / two bytes before it,
 * -1 when unknown. */
struct scan_at {
	const uint8_t *b;
	size_t avail;
	int prev[2];
};

/* Does a mandatory prefix in `set` (or an unknown byte) precede the 0x0f,
 * skipping one REX byte? */
static int has_prefix(const struct scan_at *a, const uint8_t *set, size_t n)
{
	int p = a->prev[0];
	if (p >= 0x40 && p <= 0x4f)
		p = a->prev[1];
	if (p < 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (p == set[i])
			return 1;
	return 0;
}

static uint32_t classify_0f01(const struct scan_at *a)
{
	if (a->avail < 3)
		return USER_SCAN_DESC | USER_SCAN_TSCAUX | USER_SCAN_FEAT;
	switch (a->b[2]) {
	case 0xf9: /* rdtscp */
		return USER_SCAN_TSCAUX;
	case 0xd0: /* xgetbv */
	case 0xee: /* rdpkru */
	case 0xef: /* wrpkru */
		return USER_SCAN_FEAT;
	default: /* sgdt sidt smsw (/0 /1 /4), and the rest of the group */
		return USER_SCAN_DESC;
	}
}

static uint32_t classify_0fae(const struct scan_at *a)
{
	static const uint8_t wait_prefixes[] = {0xf2, 0xf3, 0x66};
	if (a->avail < 3)
		return USER_SCAN_FSGS | USER_SCAN_FEAT;
	unsigned mod = a->b[2] >> 6, reg = (a->b[2] >> 3) & 7;
	if (mod == 3) {
		if (reg <= 3) /* rd/wr fs/gs base (F3; #UD without it anyway) */
			return USER_SCAN_FSGS;
		/* umonitor/umwait/tpause need a prefix; mfence (NP) is fine */
		if (reg == 6 && has_prefix(a, wait_prefixes, sizeof(wait_prefixes)))
			return USER_SCAN_FEAT;
		return 0;
	}
	/* xsave, xrstor, xsaveopt: fxsave/fxrstor/ldmxcsr/stmxcsr are fine */
	return (reg == 4 || reg == 5 || reg == 6) ? USER_SCAN_FEAT : 0;
}

static uint32_t classify_0fc7(const struct scan_at *a)
{
	static const uint8_t f3[] = {0xf3};
	if (a->avail < 3)
		return USER_SCAN_TSCAUX | USER_SCAN_FEAT;
	unsigned mod = a->b[2] >> 6, reg = (a->b[2] >> 3) & 7;
	if (mod == 3) {
		if (reg == 6) /* rdrand */
			return USER_SCAN_FEAT;
		if (reg == 7) /* rdpid with F3, else rdseed */
			return has_prefix(a, f3, 1) ? USER_SCAN_TSCAUX | USER_SCAN_FEAT
						    : USER_SCAN_FEAT;
		return 0;
	}
	/* xrstors, xsavec, xsaves (cmpxchg8b/16b are /1) */
	return (reg >= 3 && reg <= 5) ? USER_SCAN_FEAT : 0;
}

static uint32_t classify_0f(const struct scan_at *a)
{
	if (a->avail < 2)
		return SCAN_0F_CLASSES;
	switch (a->b[1]) {
	case 0x00: /* sldt str lldt ltr verr verw */
		return USER_SCAN_SEG;
	case 0x02: /* lar */
	case 0x03: /* lsl */
		return USER_SCAN_DESC;
	case 0x01:
		return classify_0f01(a);
	case 0x31: /* rdtsc */
		return USER_SCAN_TSC;
	case 0x34: /* sysenter */
		return USER_SCAN_SYSENTER;
	case 0xa2: /* cpuid */
		return USER_SCAN_FEAT;
	case 0xa0: /* push fs */
	case 0xa1: /* pop fs */
	case 0xa8: /* push gs */
	case 0xa9: /* pop gs */
	case 0xb2: /* lss */
	case 0xb4: /* lfs */
	case 0xb5: /* lgs */
		return USER_SCAN_SEG;
	case 0xae:
		return classify_0fae(a);
	case 0xc7:
		return classify_0fc7(a);
	default:
		return 0;
	}
}

static uint32_t classify(const struct scan_at *a)
{
	uint8_t op = a->b[0];
	switch (op) {
	case 0x0f:
		return classify_0f(a);
	case 0x8c: /* mov r/m, sreg */
	case 0x8e: /* mov sreg, r/m */
		if (a->avail < 2 || ((a->b[1] >> 3) & 7) <= 5)
			return USER_SCAN_SEG;
		return 0; /* sreg 6/7: #UD on host and guest alike */
	default:
		return USER_SCAN_IO; /* the candidate filter let only I/O bytes through */
	}
}

/* Classify offset i of the page, with the next page's bytes for the tail. */
static uint32_t classify_at(const uint8_t *page, const uint8_t *next, size_t next_len, size_t i)
{
	struct scan_at a = {
	    .b = page + i,
	    .avail = USER_SCAN_PAGE - i,
	    .prev = {i >= 1 ? page[i - 1] : -1, i >= 2 ? page[i - 2] : -1},
	};
	uint8_t tail[2 * USER_SCAN_TAIL];
	if (a.avail < 3 && next && next_len) {
		size_t n = next_len < USER_SCAN_TAIL ? next_len : USER_SCAN_TAIL;
		memcpy(tail, page + i, a.avail);
		memcpy(tail + a.avail, next, n);
		a.b = tail;
		a.avail += n;
	}
	return classify(&a);
}

/* Lowest set bit of a nonzero class mask. */
static uint32_t first_class(uint32_t c)
{
	return c & (~c + 1);
}

/* Offsets in page[blk..blk+15] that may start a sensitive instruction, as a
 * 16-bit mask.  For 0x0f the second byte must be one the classifier knows
 * (00-03, 30-35 less 32/33, a0-a3, a8-ab, ae, b2, b4, b5, c7; a few harmless
 * extras are let through): 0x0f alone is ~3% of code bytes.  Needs
 * page[blk..blk+16] readable. */
static unsigned candidates(const uint8_t *p, bool want_0f, bool want_seg, bool want_io)
{
	const __m128i x = _mm_loadu_si128((const __m128i *)p);
	__m128i m = _mm_setzero_si128();
#define EQ(v, c)	_mm_cmpeq_epi8((v), _mm_set1_epi8((char)(c)))
#define MASKEQ(v, k, c) EQ(_mm_and_si128((v), _mm_set1_epi8((char)(k))), (c))
	if (want_0f) {
		const __m128i y = _mm_loadu_si128((const __m128i *)(p + 1));
		__m128i s = MASKEQ(y, 0xfc, 0x00);	    /* 00-03 */
		s = _mm_or_si128(s, MASKEQ(y, 0xfa, 0x30)); /* 30 31 34 35 */
		s = _mm_or_si128(s, MASKEQ(y, 0xf4, 0xa0)); /* a0-a3 a8-ab */
		s = _mm_or_si128(s, EQ(y, 0xae));
		s = _mm_or_si128(s, EQ(y, 0xc7));
		s = _mm_or_si128(s, EQ(y, 0xb2));
		s = _mm_or_si128(s, MASKEQ(y, 0xfe, 0xb4)); /* b4 b5 */
		m = _mm_and_si128(EQ(x, 0x0f), s);
	}
	if (want_seg) /* 0x8c, 0x8e */
		m = _mm_or_si128(m, MASKEQ(x, 0xfd, 0x8c));
	if (want_io) {
		/* e4-e7 ec-ef (in/out), 6c-6f (ins/outs), fa fb, 9c 9d */
		m = _mm_or_si128(m, MASKEQ(x, 0xf4, 0xe4));
		m = _mm_or_si128(m, MASKEQ(x, 0xfc, 0x6c));
		m = _mm_or_si128(m, MASKEQ(x, 0xfe, 0xfa));
		m = _mm_or_si128(m, MASKEQ(x, 0xfe, 0x9c));
	}
#undef EQ
#undef MASKEQ
	return (unsigned)_mm_movemask_epi8(m);
}

uint32_t user_scan_page(const uint8_t *page, const uint8_t *next, size_t next_len, uint32_t mask,
			struct user_scan_hit *hit)
{
	if (hit)
		*hit = (struct user_scan_hit){0, 0};
	if (!page || !(mask & USER_SCAN_ALL))
		return 0;
	const bool want_0f = (mask & SCAN_0F_CLASSES) != 0;
	const bool want_seg = (mask & USER_SCAN_SEG) != 0;
	const bool want_io = (mask & USER_SCAN_IO) != 0;
	/* the last block: its second bytes reach past the page; every byte a
	 * candidate may start gets the classifier, which knows the tail rules */
	uint8_t last[17];
	memcpy(last, page + USER_SCAN_PAGE - 16, 16);
	last[16] = 0x0f; /* unknown or not: let the classifier decide */
	for (size_t blk = 0; blk < USER_SCAN_PAGE; blk += 16) {
		const uint8_t *p = blk + 16 < USER_SCAN_PAGE ? page + blk : last;
		unsigned bits = candidates(p, want_0f, want_seg, want_io);
		if (p == last && want_0f && page[USER_SCAN_PAGE - 1] == 0x0f)
			bits |= 1u << 15;
		while (bits) {
			size_t i = blk + (size_t)__builtin_ctz(bits);
			bits &= bits - 1;
			uint32_t c = classify_at(page, next, next_len, i) & mask;
			if (c) {
				c = first_class(c);
				if (hit)
					*hit = (struct user_scan_hit){c, (uint32_t)i};
				return c;
			}
		}
	}
	return 0;
}

const char *user_scan_class_name(uint32_t cls)
{
	switch (cls) {
	case USER_SCAN_DESC:
		return "desc";
	case USER_SCAN_SEG:
		return "seg";
	case USER_SCAN_TSCAUX:
		return "tscaux";
	case USER_SCAN_FSGS:
		return "fsgsbase";
	case USER_SCAN_FEAT:
		return "feat";
	case USER_SCAN_SYSENTER:
		return "sysenter";
	case USER_SCAN_IO:
		return "io";
	case USER_SCAN_TSC:
		return "tsc";
	case USER_SCAN_WX:
		return "writable code";
	default:
		return "?";
	}
}
