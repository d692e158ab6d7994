/*
 * Boot-time patching of a Linux x86-64 image, predicted (see kpatch.h and
 * docs/pretrans.md "Boot-time patching").  Each apply_* below follows the
 * Linux 6.1 function of the same name (arch/x86/kernel/alternative.c,
 * static_call.c, ftrace.c, paravirt.c; kernel/static_call_inline.c) on a
 * copy of the image's executable sections.
 */
#include "pretrans/kpatch/kpatch.h"

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"

#include <Zydis/Zydis.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 32 /* NCAPINTS + NBUGINTS Linux may have */

struct kp_range {
	gva_t start, end;
	uint8_t *bytes;	  /* predicted */
	uint8_t *early;	  /* after static_call_init and ftrace_init only */
	uint8_t *changed; /* per byte: enum kp_kind of the last change, 0 = none */
	uint16_t *sites;  /* per byte: 1 << kind of every table site covering it */
};

struct kp_text {
	const struct elfimg *img;
	struct kp_range *r;
	size_t nr;
	uint32_t caps[MAX_WORDS];
	unsigned ncapints, nbugints;
	struct kp_stats st;
	ZydisDecoder dec;
	/* symbols */
	gva_t text, etext, fentry, ret_thunk, thunk_array, paravirt_nop, paravirt_bug, sc_ret0,
	    pv_ops;
	size_t pv_ops_size;
};

static const uint8_t nops[9][8] = {
    {0},
    {0x90},
    {0x66, 0x90},
    {0x0f, 0x1f, 0x00},
    {0x0f, 0x1f, 0x40, 0x00},
    {0x0f, 0x1f, 0x44, 0x00, 0x00},
    {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
    {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
    {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
};

const char *kp_kind_name(enum kp_kind k)
{
	static const char *const n[KP_NKINDS] = {"none",	"static_call", "mcount",
						 "paravirt",	"retpoline",   "return",
						 "alternative", "smp_lock",    "jump_label"};
	return (unsigned)k < KP_NKINDS ? n[k] : "?";
}

/* ---------------------------------------------------------------- text */

static struct kp_range *range_of(const struct kp_text *t, gva_t va)
{
	size_t lo = 0, hi = t->nr;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (va < t->r[m].start)
			hi = m;
		else if (va >= t->r[m].end)
			lo = m + 1;
		else
			return &t->r[m];
	}
	return NULL;
}

size_t kp_read(const struct kp_text *t, gva_t va, uint8_t *buf, size_t len)
{
	const struct kp_range *r = range_of(t, va);
	if (!r)
		return 0;
	size_t n = r->end - va < len ? (size_t)(r->end - va) : len;
	memcpy(buf, r->bytes + (va - r->start), n);
	return n;
}

size_t kp_read_early(const struct kp_text *t, gva_t va, uint8_t *buf, size_t len)
{
	const struct kp_range *r = range_of(t, va);
	if (!r || !r->early)
		return 0;
	size_t n = r->end - va < len ? (size_t)(r->end - va) : len;
	memcpy(buf, r->early + (va - r->start), n);
	return n;
}

/* The live bytes at va (len of them, inside one range), or NULL. */
static uint8_t *text_at(const struct kp_text *t, gva_t va, size_t len)
{
	struct kp_range *r = range_of(t, va);
	if (!r || r->end - va < len)
		return NULL;
	return r->bytes + (va - r->start);
}

/* How many live bytes are readable at va (inside one range). */
static size_t avail_at(const struct kp_text *t, gva_t va)
{
	const struct kp_range *r = range_of(t, va);
	return r ? (size_t)(r->end - va) : 0;
}

/* text_poke_early: write len bytes at va, noting which patch changed what. */
static void poke(struct kp_text *t, gva_t va, const uint8_t *p, size_t len, enum kp_kind k)
{
	struct kp_range *r = range_of(t, va);
	if (!r || r->end - va < len)
		return;
	size_t o = va - r->start;
	for (size_t i = 0; i < len; i++)
		if (r->bytes[o + i] != p[i]) {
			r->bytes[o + i] = p[i];
			r->changed[o + i] = (uint8_t)k;
		}
}

static void mark_site(struct kp_text *t, gva_t va, size_t len, enum kp_kind k)
{
	struct kp_range *r = range_of(t, va);
	if (!r)
		return;
	for (size_t i = 0; i < len && va + i < r->end; i++)
		r->sites[va - r->start + i] |= (uint16_t)(1u << k);
}

bool kp_changed(const struct kp_text *t, gva_t va, size_t len)
{
	return kp_kinds(t, va, len, true) != 0;
}

unsigned kp_kinds(const struct kp_text *t, gva_t va, size_t len, bool changed)
{
	unsigned m = 0;
	while (len) {
		const struct kp_range *r = range_of(t, va);
		if (!r)
			return m;
		size_t o = va - r->start, n = r->end - va < len ? (size_t)(r->end - va) : len;
		for (size_t i = 0; i < n; i++)
			m |= changed ? (r->changed[o + i] ? 1u << r->changed[o + i] : 0)
				     : r->sites[o + i];
		va += n;
		len -= n;
	}
	return m;
}

const struct kp_stats *kp_get_stats(const struct kp_text *t)
{
	return &t->st;
}

void kp_free(struct kp_text *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nr; i++) {
		free(t->r[i].bytes);
		free(t->r[i].early);
		free(t->r[i].changed);
		free(t->r[i].sites);
	}
	free(t->r);
	free(t);
}

/* Instruction length at p (avail bytes readable), 0 if it does not decode. */
static unsigned insn_len(const struct kp_text *t, const uint8_t *p, size_t avail)
{
	ZydisDecodedInstruction in;
	if (ZYAN_FAILED(ZydisDecoderDecodeInstruction(&t->dec, NULL, p, avail, &in)))
		return 0;
	return in.length;
}

static void add_nops(uint8_t *p, size_t len)
{
	while (len) {
		size_t n = len > 8 ? 8 : len;
		memcpy(p, nops[n], n);
		p += n;
		len -= n;
	}
}

/* optimize_nops: runs of single-byte NOPs into the longest NOPs.  buf is
 * len bytes; instructions are decoded with up to avail bytes (Linux reads
 * past the end of the patched range). */
static void optimize_nops(const struct kp_text *t, uint8_t *buf, size_t len, size_t avail)
{
	size_t i = 0;
	for (;;) {
		unsigned l = insn_len(t, buf + i, avail - i);
		if (!l)
			return;
		if (l == 1 && buf[i] == 0x90) {
			size_t j = i;
			while (j < len && buf[j] == 0x90)
				j++;
			if (j - i > 1)
				add_nops(buf + i, j - i);
			i = j;
		} else {
			i += l;
		}
		if (i >= len)
			return;
	}
}

/* ---------------------------------------------------------------- features */

bool kp_has_feature(const struct kp_text *t, unsigned bit)
{
	return bit / 32 < MAX_WORDS && (t->caps[bit / 32] >> (bit % 32) & 1);
}

static void set_cap(struct kp_text *t, unsigned word, unsigned bit)
{
	t->caps[word] |= 1u << bit;
}

/* Linux 6.1's boot_cpu_data.x86_capability for the profile: the CPUID
 * words as the vCPU answers them, plus the synthetic bits Linux sets for
 * an Intel family-6 model-0x0f CPU under an unknown hypervisor (the rules
 * and their sources: docs/pretrans.md "Boot-time patching"). */
static void compute_caps(struct kp_text *t, const struct kp_config *cfg)
{
	const struct cpuid_profile *p = cfg->cpu;
	memset(t->caps, 0, sizeof(t->caps));
	t->caps[0] = p->f1_edx;
	t->caps[1] = p->e1_edx;
	t->caps[4] = p->f1_ecx;
	t->caps[6] = p->e1_ecx;
	t->caps[9] = p->f7_ebx;
	t->caps[16] = p->f7_ecx;
	t->caps[18] = p->f7_edx;
	unsigned fam = (p->f1_eax >> 8) & 0xf, model = (p->f1_eax >> 4) & 0xf;
	set_cap(t, 3, 21); /* ALWAYS */
	if (p->f1_edx & (1u << 26))
		set_cap(t, 3, 18); /* LFENCE_RDTSC: init_intel, with SSE2 */
	if (fam == 6)
		set_cap(t, 3, 16); /* REP_GOOD: init_intel (MISC_ENABLE.FAST_STRING is 1) */
	set_cap(t, 3, 15);	   /* SYSENTER32: early_init_intel, 64-bit */
	set_cap(t, 11, 27);	   /* APIC_MSRS_FENCE: identify_cpu, Intel keeps it */
	if (fam == 6 && model >= 0xe)
		set_cap(t, 3, 8); /* CONSTANT_TSC */
	/* the mitigation bits (words 7, 11, 21: RETPOLINE, RETHUNK, IBRS,
	 * CLEAR_CPU_BUF, ...) stay clear: with mitigations=off none is
	 * chosen; without, the prediction is the same only for a CPU the
	 * vulnerability tables call unaffected (documented, not modelled) */
	(void)cfg->mitigations_off;
	/* bug bits (words NCAPINTS..): none of those the alternatives test
	 * (AMD errata, CLFLUSH_MONITOR for models 29/46/47, ...) applies */
}

/* ---------------------------------------------------------------- tables */

static bool rd(const struct kp_text *t, gva_t va, void *buf, size_t n)
{
	return elfimg_read(t->img, va, buf, n) == BT_OK;
}

static int32_t rel32(const uint8_t *p)
{
	return (int32_t)bt_get32(p);
}

/* rel32 of an instruction of length len at va that jumps/calls to dst */
static void put_rel(uint8_t *p, gva_t va, unsigned len, gva_t dst)
{
	bt_put32(p, (uint32_t)(int32_t)(dst - (va + len)));
}

/* A static_call_update: key's sites (and trampoline) now call func. */
struct kp_update {
	gva_t key, tramp, func;
};

/* static_call_init: every inline site calls the key's initial function;
 * with updates (nu > 0), only the updated keys' sites, to the new one. */
static void apply_static_calls(struct kp_text *t, gva_t start, gva_t stop,
			       const struct kp_update *up, size_t nu)
{
	for (gva_t s = start; s + 8 <= stop; s += 8) {
		uint8_t e[8], kf[8];
		if (!nu)
			t->st.sites[KP_STATIC_CALL]++;
		if (!rd(t, s, e, 8)) {
			t->st.skipped[KP_STATIC_CALL]++;
			continue;
		}
		gva_t site = s + (int64_t)rel32(e);
		int32_t kr = rel32(e + 4);
		gva_t keyp = (s + 4 + (int64_t)kr);
		bool tail = keyp & 1;
		keyp &= ~(gva_t)3;
		uint8_t *p = text_at(t, site, 6);
		if (!p || !rd(t, keyp, kf, 8)) {
			t->st.skipped[KP_STATIC_CALL]++;
			continue;
		}
		gva_t func = bt_get64(kf);
		if (nu) {
			size_t k = 0;
			while (k < nu && up[k].key != keyp)
				k++;
			if (k == nu)
				continue;
			func = up[k].func;
		}
		mark_site(t, site, 5, KP_STATIC_CALL);
		uint8_t code[6];
		size_t size = 5;
		bool jcc = tail && p[0] == 0x0f && (p[1] & 0xf0) == 0x80;
		if (jcc && !func) { /* Jcc to __static_call_return: not modelled */
			t->st.skipped[KP_STATIC_CALL]++;
			continue;
		}
		if (jcc) {
			code[0] = 0x0f;
			code[1] = p[1];
			put_rel(code + 2, site, 6, func);
			size = 6;
		} else if (!tail && !func) {
			memcpy(code, nops[5], 5);
		} else if (!tail && func == t->sc_ret0 && t->sc_ret0) {
			static const uint8_t xor5rax[] = {0x2e, 0x2e, 0x2e, 0x31, 0xc0};
			memcpy(code, xor5rax, 5);
		} else if (!tail) {
			code[0] = 0xe8;
			put_rel(code + 1, site, 5, func);
		} else if (!func) {
			static const uint8_t retinsn[] = {0xc3, 0xcc, 0xcc, 0xcc, 0xcc};
			memcpy(code, retinsn, 5);
		} else {
			code[0] = 0xe9;
			put_rel(code + 1, site, 5, func);
		}
		if (memcmp(p, code, size) != 0) {
			bool was = kp_kinds(t, site, size, true) & (1u << KP_STATIC_CALL);
			poke(t, site, code, size, KP_STATIC_CALL);
			t->st.patched[KP_STATIC_CALL] += !was;
		}
	}
	/* the trampolines: jmp func, or ret for NULL (no RETHUNK) */
	for (size_t k = 0; k < nu; k++) {
		uint8_t *p = up[k].tramp ? text_at(t, up[k].tramp, 8) : NULL;
		if (!p || p[5] != 0x0f || p[6] != 0xb9 || p[7] != 0xcc)
			continue; /* not a trampoline (its ud1 signature) */
		uint8_t code[5] = {0xc3, 0xcc, 0xcc, 0xcc, 0xcc};
		if (up[k].func) {
			code[0] = 0xe9;
			put_rel(code + 1, up[k].tramp, 5, up[k].func);
		}
		poke(t, up[k].tramp, code, 5, KP_STATIC_CALL);
	}
}

/* sched_init -> preempt_dynamic_init -> sched_dynamic_update(mode) */
static void apply_preempt_dynamic(struct kp_text *t, gva_t a, gva_t b, enum kp_preempt mode);

/* ftrace_init: every `call __fentry__` of __mcount_loc becomes a NOP. */
/* What one patch site becomes (the *_site functions): SITE_SKIP, Linux
 * skips it (or WARNs); SITE_KEEP, a site Linux leaves as it is; SITE_PATCH,
 * *len bytes of out replace it. */
enum site_res { SITE_SKIP, SITE_KEEP, SITE_PATCH };

/* ftrace_init / ftrace_module_init: call __fentry__ -> the 5-byte NOP. */
static enum site_res mcount_site(const struct kp_text *t, gva_t ip, const uint8_t *p, size_t avail,
				 uint8_t *out, unsigned *len)
{
	if (avail < 5 || p[0] != 0xe8 || ip + 5 + (int64_t)rel32(p + 1) != t->fentry)
		return SITE_SKIP;
	memcpy(out, nops[5], 5);
	*len = 5;
	return SITE_PATCH;
}

static void apply_mcount(struct kp_text *t, gva_t start, gva_t stop)
{
	for (gva_t s = start; s + 8 <= stop; s += 8) {
		uint8_t e[8], out[16];
		unsigned len;
		t->st.sites[KP_MCOUNT]++;
		if (!rd(t, s, e, 8))
			continue;
		gva_t ip = bt_get64(e);
		uint8_t *p = ip ? text_at(t, ip, 1) : NULL;
		if (!p || mcount_site(t, ip, p, avail_at(t, ip), out, &len) != SITE_PATCH) {
			t->st.skipped[KP_MCOUNT]++;
			continue;
		}
		mark_site(t, ip, 5, KP_MCOUNT);
		poke(t, ip, out, len, KP_MCOUNT);
		t->st.patched[KP_MCOUNT]++;
	}
}

/* apply_paravirt: each pv_ops call site calls the native op directly (or
 * is NOPed for _paravirt_nop), padded with NOPs. */
static void apply_paravirt(struct kp_text *t, const struct elfimg_section *sec)
{
	for (uint64_t o = 0; o + 16 <= sec->size; o += 16) {
		uint8_t e[16], f[8];
		t->st.sites[KP_PARAVIRT]++;
		if (!rd(t, sec->addr + o, e, 16)) {
			t->st.skipped[KP_PARAVIRT]++;
			continue;
		}
		gva_t instr = bt_get64(e);
		unsigned type = e[8], len = e[9];
		uint8_t *p = text_at(t, instr, len);
		if (!p || len > 16 || len < 5 || (size_t)type * 8 + 8 > t->pv_ops_size ||
		    !rd(t, t->pv_ops + type * 8, f, 8)) {
			t->st.skipped[KP_PARAVIRT]++;
			continue;
		}
		gva_t op = bt_get64(f);
		uint8_t buf[16];
		unsigned used = 5;
		if (op == t->paravirt_nop) {
			used = 0;
		} else {
			buf[0] = 0xe8;
			put_rel(buf + 1, instr, 5, op ? op : t->paravirt_bug);
		}
		add_nops(buf + used, len - used);
		mark_site(t, instr, len, KP_PARAVIRT);
		if (memcmp(p, buf, len) != 0) {
			poke(t, instr, buf, len, KP_PARAVIRT);
			t->st.patched[KP_PARAVIRT]++;
		}
	}
}

/* apply_retpolines (spectre_v2 off, no ITS): call/jmp/jcc to
 * __x86_indirect_thunk_REG become the indirect branch itself. */
/* apply_retpolines, one site: call/jmp/jcc __x86_indirect_thunk_REG
 * (*len: the site's length, also for SITE_KEEP). */
static enum site_res retpoline_site(const struct kp_text *t, gva_t addr, const uint8_t *p,
				    size_t avail, uint8_t *out, unsigned *len_out)
{
	bool retpoline = kp_has_feature(t, 11 * 32 + 12), lfence = kp_has_feature(t, 11 * 32 + 13);
	unsigned len = avail >= 6 ? insn_len(t, p, avail < 15 ? avail : 15) : 0;
	if (!len || len > avail)
		return SITE_SKIP;
	bool jcc = p[0] == 0x0f && (p[1] & 0xf0) == 0x80;
	unsigned op = jcc ? 0xe9 : p[0];
	if (op != 0xe8 && op != 0xe9)
		return SITE_SKIP;
	gva_t dst = addr + len + (int64_t)rel32(p + len - 4);
	int64_t reg = (int64_t)(dst - t->thunk_array) / 32;
	if (dst < t->thunk_array || (dst - t->thunk_array) % 32 || reg > 15 || reg == 4)
		return SITE_SKIP;
	*len_out = len;
	if (retpoline && !lfence)
		return SITE_KEEP;
	uint8_t b[16];
	unsigned i = 0;
	if (jcc) {
		b[i++] = (uint8_t)(0x70 + ((p[1] & 0xf) ^ 1));
		b[i++] = (uint8_t)(len - 2);
	}
	if (lfence) {
		b[i++] = 0x0f;
		b[i++] = 0xae;
		b[i++] = 0xe8;
	}
	unsigned r = (unsigned)reg;
	if (r >= 8) {
		b[i++] = 0x41;
		r -= 8;
	}
	b[i++] = 0xff;
	b[i++] = (uint8_t)((op == 0xe8 ? 0x10 : 0x20) | 0xc0 | r);
	if (op == 0xe9 && i < len)
		b[i++] = 0xcc;
	while (i < len)
		b[i++] = 0x90;
	if (i != len)
		return SITE_SKIP;
	optimize_nops(t, b, len, len);
	memcpy(out, b, len);
	return SITE_PATCH;
}

/* apply_returns (no RETHUNK), one site: `jmp __x86_return_thunk` becomes
 * ret; int3.  __static_call_fixup: a trampoline (ud1 %esp,%ecx; int3 after
 * it) gets the same. */
static enum site_res return_site(const struct kp_text *t, gva_t addr, const uint8_t *p,
				 size_t avail, uint8_t *out, unsigned *len)
{
	if (avail < 5 || p[0] != 0xe9)
		return SITE_SKIP;
	gva_t dst = addr + 5 + (int64_t)rel32(p + 1);
	bool tramp = avail >= 8 && p[5] == 0x0f && p[6] == 0xb9 && p[7] == 0xcc;
	if (!tramp && dst != t->ret_thunk)
		return SITE_SKIP;
	*len = 5;
	if (kp_has_feature(t, 11 * 32 + 14)) /* RETHUNK */
		return SITE_KEEP;
	static const uint8_t retinsn[] = {0xc3, 0xcc, 0xcc, 0xcc, 0xcc};
	memcpy(out, retinsn, 5);
	return SITE_PATCH;
}

typedef enum site_res site_fn(const struct kp_text *t, gva_t addr, const uint8_t *p, size_t avail,
			      uint8_t *out, unsigned *len);

/* A table of 32-bit self-relative site addresses (.retpoline_sites,
 * .return_sites): each site as `site` says, counted under kind k. */
static void apply_rel_sites(struct kp_text *t, const struct elfimg_section *sec, enum kp_kind k,
			    site_fn *site)
{
	for (uint64_t o = 0; o + 4 <= sec->size; o += 4) {
		uint8_t e[4], out[16];
		unsigned len = 0;
		t->st.sites[k]++;
		if (!rd(t, sec->addr + o, e, 4))
			continue;
		gva_t addr = sec->addr + o + (int64_t)rel32(e);
		uint8_t *p = text_at(t, addr, 1);
		enum site_res r = p ? site(t, addr, p, avail_at(t, addr), out, &len) : SITE_SKIP;
		if (r == SITE_SKIP) {
			t->st.skipped[k]++;
			continue;
		}
		mark_site(t, addr, len, k);
		if (r == SITE_KEEP)
			continue;
		poke(t, addr, out, len, k);
		t->st.patched[k]++;
	}
}

unsigned kp_patch_site(const struct kp_text *t, enum kp_kind k, gva_t va, uint8_t *p, size_t avail)
{
	uint8_t out[16];
	unsigned len = 0;
	enum site_res r = k == KP_MCOUNT      ? mcount_site(t, va, p, avail, out, &len)
			  : k == KP_RETURN    ? return_site(t, va, p, avail, out, &len)
			  : k == KP_RETPOLINE ? retpoline_site(t, va, p, avail, out, &len)
					      : SITE_SKIP;
	if (r != SITE_PATCH)
		return 0;
	memcpy(p, out, len);
	return len;
}

/* apply_alternatives, in table order (a later entry may overwrite an
 * earlier one's bytes, as in Linux). */
static void apply_alternatives(struct kp_text *t, const struct elfimg_section *sec)
{
	unsigned nwords = t->ncapints + t->nbugints;
	for (uint64_t o = 0; o + 12 <= sec->size; o += 12) {
		uint8_t e[12];
		t->st.sites[KP_ALT]++;
		if (!rd(t, sec->addr + o, e, 12))
			continue;
		gva_t instr = sec->addr + o + (int64_t)rel32(e);
		gva_t repl = sec->addr + o + 4 + (int64_t)rel32(e + 4);
		uint16_t cpuid = (uint16_t)(e[8] | e[9] << 8);
		unsigned ilen = e[10], rlen = e[11], feature = cpuid & 0x7fff;
		bool inv = cpuid & 0x8000;
		uint8_t *p = text_at(t, instr, ilen);
		uint8_t r[256], buf[256];
		if (!p || ilen == 0 || rlen > ilen || feature >= nwords * 32 ||
		    !rd(t, repl, r, rlen)) {
			t->st.skipped[KP_ALT]++;
			continue;
		}
		mark_site(t, instr, ilen, KP_ALT);
		if (kp_has_feature(t, feature) != inv) {
			memcpy(buf, r, rlen);
			if (rlen == 5 && buf[0] == 0xe8)
				bt_put32(buf + 1,
					 (uint32_t)(rel32(buf + 1) + (int32_t)(repl - instr)));
			if (rlen == 5 && (r[0] == 0xeb || r[0] == 0xe9)) { /* recompute_jump */
				gva_t tgt = repl + 5 + (int64_t)rel32(buf + 1);
				int32_t n = (int32_t)(tgt - instr);
				bool two = (int64_t)(tgt - instr) >= 0 ? n - 2 <= 127
								       : ((n - 2) & 0xff) == n - 2;
				if (two) {
					buf[0] = 0xeb;
					buf[1] = (uint8_t)(int8_t)(n - 2);
					add_nops(buf + 2, 3);
				} else {
					buf[0] = 0xe9;
					bt_put32(buf + 1, (uint32_t)(n - 5));
				}
			}
			for (unsigned i = rlen; i < ilen; i++)
				buf[i] = 0x90;
			poke(t, instr, buf, ilen, KP_ALT);
		}
		/* optimize_nops on the live text, patched or not */
		memcpy(buf, p, ilen);
		size_t avail = ilen;
		uint8_t *q = text_at(t, instr, ilen + 15);
		if (q) {
			memcpy(buf, q, ilen + 15);
			avail = ilen + 15;
		}
		optimize_nops(t, buf, ilen, avail);
		poke(t, instr, buf, ilen, KP_ALT);
		if (kp_kinds(t, instr, ilen, true) & (1u << KP_ALT))
			t->st.patched[KP_ALT]++;
	}
}

/* alternatives_smp_unlock: with one CPU, lock prefixes in [_text, _etext)
 * become DS prefixes. */
static void apply_smp_locks(struct kp_text *t, const struct elfimg_section *sec, unsigned ncpus)
{
	for (uint64_t o = 0; o + 4 <= sec->size; o += 4) {
		uint8_t e[4];
		t->st.sites[KP_SMP_LOCK]++;
		if (!rd(t, sec->addr + o, e, 4))
			continue;
		int32_t d = rel32(e);
		gva_t ptr = sec->addr + o + (int64_t)d;
		if (!d || ptr < t->text || ptr >= t->etext) {
			t->st.skipped[KP_SMP_LOCK]++;
			continue;
		}
		uint8_t *p = text_at(t, ptr, 1);
		if (!p)
			continue;
		mark_site(t, ptr, 1, KP_SMP_LOCK);
		if (ncpus == 1 && *p == 0xf0) {
			static const uint8_t ds = 0x3e;
			poke(t, ptr, &ds, 1, KP_SMP_LOCK);
			t->st.patched[KP_SMP_LOCK]++;
		}
	}
}

/* __jump_table: sites only (see kpatch.h). */
static void mark_jump_labels(struct kp_text *t, gva_t start, gva_t stop)
{
	for (gva_t s = start; s + 16 <= stop; s += 16) {
		uint8_t e[16];
		t->st.sites[KP_JUMP_LABEL]++;
		if (!rd(t, s, e, 16))
			continue;
		gva_t code = s + (int64_t)rel32(e);
		uint8_t *p = text_at(t, code, 2);
		if (p)
			mark_site(t, code, p[0] == 0xe9 || p[0] == 0x0f ? 5 : 2, KP_JUMP_LABEL);
	}
}

/* ---------------------------------------------------------------- predict */

static gva_t sym(const struct elfimg *img, const char *name, uint64_t *size);

static void apply_preempt_dynamic(struct kp_text *t, gva_t a, gva_t b, enum kp_preempt mode)
{
	/* Linux 6.1 kernel/sched/core.c: enabled = the function, disabled =
	 * __static_call_return0 (cond_resched, might_resched) or NULL */
	static const struct {
		const char *key, *tramp, *enabled;
		bool ret0;
		bool on[3]; /* none, voluntary, full */
	} rule[] = {
	    {"__SCK__cond_resched", "__SCT__cond_resched", "__cond_resched", true, {1, 1, 0}},
	    {"__SCK__might_resched", "__SCT__might_resched", "__cond_resched", true, {0, 1, 0}},
	    {"__SCK__preempt_schedule",
	     "__SCT__preempt_schedule",
	     "preempt_schedule_dynamic_enabled",
	     false,
	     {0, 0, 1}},
	    {"__SCK__preempt_schedule_notrace",
	     "__SCT__preempt_schedule_notrace",
	     "preempt_schedule_notrace_dynamic_enabled",
	     false,
	     {0, 0, 1}},
	    {"__SCK__irqentry_exit_cond_resched",
	     "__SCT__irqentry_exit_cond_resched",
	     "irqentry_exit_cond_resched",
	     false,
	     {0, 0, 1}},
	};
	struct kp_update up[5];
	size_t nu = 0;
	for (size_t i = 0; i < 5; i++) {
		gva_t key = sym(t->img, rule[i].key, NULL);
		gva_t on = sym(t->img, rule[i].enabled, NULL);
		if (!key || !on)
			continue;
		bool en = rule[i].on[mode - KP_PREEMPT_NONE];
		up[nu++] = (struct kp_update){.key = key,
					      .tramp = sym(t->img, rule[i].tramp, NULL),
					      .func = en	     ? on
						      : rule[i].ret0 ? t->sc_ret0
								     : 0};
	}
	apply_static_calls(t, a, b, up, nu);
}

static gva_t sym(const struct elfimg *img, const char *name, uint64_t *size)
{
	for (size_t i = 0; i < img->nsyms; i++)
		if (img->syms[i].name && strcmp(img->syms[i].name, name) == 0) {
			if (size)
				*size = img->syms[i].size;
			return img->syms[i].addr;
		}
	return 0;
}

static enum bt_status copy_text(struct kp_text *t)
{
	t->r = calloc(t->img->ncode ? t->img->ncode : 1, sizeof(*t->r));
	if (!t->r)
		return BT_ERR_NOMEM;
	for (size_t i = 0; i < t->img->ncode; i++) {
		const struct elfimg_code *c = &t->img->code[i];
		struct kp_range *r = &t->r[t->nr++];
		size_t n = c->end - c->start;
		r->start = c->start;
		r->end = c->end;
		r->bytes = malloc(n ? n : 1);
		r->changed = calloc(n ? n : 1, 1);
		r->sites = calloc(n ? n : 1, sizeof(*r->sites));
		if (!r->bytes || !r->changed || !r->sites)
			return BT_ERR_NOMEM;
		memcpy(r->bytes, c->bytes, n);
	}
	return BT_OK;
}

enum bt_status kp_predict(const struct elfimg *img, const struct kp_config *cfg,
			  struct kp_text **out)
{
	*out = NULL;
	const struct elfimg_section *alt = elfimg_section_by_name(img, ".altinstructions");
	uint64_t capsz = 0, bugsz = 0;
	gva_t mc0 = sym(img, "__start_mcount_loc", NULL), mc1 = sym(img, "__stop_mcount_loc", NULL);
	if (!alt && !(mc0 && mc1))
		return BT_ERR_NOTFOUND;
	struct kp_text *t = calloc(1, sizeof(*t));
	if (!t)
		return BT_ERR_NOMEM;
	t->img = img;
	ZydisDecoderInit(&t->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	enum bt_status s = copy_text(t);
	if (s != BT_OK) {
		kp_free(t);
		return s;
	}
	/* NCAPINTS and NBUGINTS of this kernel: its flag-name tables have 32
	 * pointers a word */
	sym(img, "x86_cap_flags", &capsz);
	sym(img, "x86_bug_flags", &bugsz);
	t->ncapints = capsz ? (unsigned)(capsz / 256) : 21;
	t->nbugints = bugsz ? (unsigned)(bugsz / 256) : 2;
	if (t->ncapints + t->nbugints > MAX_WORDS)
		t->ncapints = t->nbugints = 0; /* implausible: every alternative skipped */
	compute_caps(t, cfg);
	t->text = sym(img, "_text", NULL);
	t->etext = sym(img, "_etext", NULL);
	t->fentry = sym(img, "__fentry__", NULL);
	t->ret_thunk = sym(img, "__x86_return_thunk", NULL);
	t->thunk_array = sym(img, "__x86_indirect_thunk_array", NULL);
	t->paravirt_nop = sym(img, "_paravirt_nop", NULL);
	t->paravirt_bug = sym(img, "paravirt_BUG", NULL);
	t->sc_ret0 = sym(img, "__static_call_return0", NULL);
	t->pv_ops = sym(img, "pv_ops", &t->pv_ops_size);

	gva_t a, b;
	if ((a = sym(img, "__start_static_call_sites", NULL)) &&
	    (b = sym(img, "__stop_static_call_sites", NULL)))
		apply_static_calls(t, a, b, NULL, 0);
	if (mc0 && mc1 && t->fentry)
		apply_mcount(t, mc0, mc1);
	if (a && b && cfg->preempt != KP_PREEMPT_KEEP && sym(img, "preempt_dynamic_mode", NULL))
		apply_preempt_dynamic(t, a, b, cfg->preempt);
	/* the text Linux runs between ftrace_init and alternative_instructions */
	for (size_t i = 0; i < t->nr; i++) {
		size_t n = t->r[i].end - t->r[i].start;
		if (!(t->r[i].early = malloc(n ? n : 1))) {
			kp_free(t);
			return BT_ERR_NOMEM;
		}
		memcpy(t->r[i].early, t->r[i].bytes, n);
	}
	if ((a = sym(img, "__start___jump_table", NULL)) &&
	    (b = sym(img, "__stop___jump_table", NULL)))
		mark_jump_labels(t, a, b);
	const struct elfimg_section *sec;
	if ((sec = elfimg_section_by_name(img, ".parainstructions")) && t->pv_ops)
		apply_paravirt(t, sec);
	if ((sec = elfimg_section_by_name(img, ".retpoline_sites")) && t->thunk_array)
		apply_rel_sites(t, sec, KP_RETPOLINE, retpoline_site);
	if ((sec = elfimg_section_by_name(img, ".return_sites")) && t->ret_thunk)
		apply_rel_sites(t, sec, KP_RETURN, return_site);
	if (alt)
		apply_alternatives(t, alt);
	if ((sec = elfimg_section_by_name(img, ".smp_locks")) && t->text && t->etext)
		apply_smp_locks(t, sec, cfg->ncpus);
	for (size_t i = 0; i < t->nr; i++)
		for (gva_t v = t->r[i].start; v < t->r[i].end; v++)
			t->st.bytes_changed += t->r[i].changed[v - t->r[i].start] != 0;
	*out = t;
	return BT_OK;
}
