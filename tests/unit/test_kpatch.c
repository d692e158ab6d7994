/*
 * Unit tests for pretrans/kpatch (the predicted boot-time patching of a
 * Linux image) and pretrans/cpuid (the vCPU's CPUID profile), on a small
 * gcc-built ELF carrying Linux 6.1's patch tables in their real formats:
 * each kind of site is checked byte for byte against what Linux's own
 * routine writes there for btvm's profile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pretrans/cpuid/cpuid.h"
#include "pretrans/kpatch/kpatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char src[] =
    ".macro FJMP dst\n .byte 0xe9\n .long \\dst - (. + 4)\n.endm\n"
    ".macro ALT feat, site, slen, repl, rlen\n .pushsection .altinstructions, \"a\"\n"
    " .long \\site - .\n .long \\repl - .\n .word \\feat\n .byte \\slen\n .byte \\rlen\n"
    " .popsection\n.endm\n"
    ".text\n.globl _start, _text, _etext\n"
    "_text:\n_start: ret\n"
    ".globl __fentry__\n__fentry__: ret\n"
    ".globl __x86_return_thunk\n__x86_return_thunk: ret\n int3\n"
    ".balign 32\n.globl __x86_indirect_thunk_array\n__x86_indirect_thunk_array:\n"
    " .rept 16\n .balign 32\n int3\n .endr\n .balign 32\n"
    ".globl _paravirt_nop\n_paravirt_nop: ret\n"
    ".globl native_foo, sc_func, alt_target\n"
    "native_foo: ret\nsc_func: ret\nalt_target: ret\n"
    ".globl f_mcount, f_return, f_rp_call, f_rp_jmp, f_lock, f_pv, f_sc_call, f_sc_tail\n"
    ".globl f_sc_null, f_alt_on, f_alt_off, f_alt_call, f_alt_jmp\n"
    "f_mcount: call __fentry__\n ret\n"
    "f_return: FJMP __x86_return_thunk\n"
    "f_rp_call: call __x86_indirect_thunk_array + 11 * 32\n ret\n"
    "f_rp_jmp: FJMP __x86_indirect_thunk_array\n"
    "f_lock: 1: lock incl (%rdi)\n ret\n"
    " .pushsection .smp_locks, \"a\"\n .long 1b - .\n .popsection\n"
    "f_pv: 2: call *pv_ops + 8(%rip)\n ret\n"
    " .pushsection .parainstructions, \"a\"\n .quad 2b\n .byte 1, 6\n .skip 6\n .popsection\n"
    "f_sc_call: 3: call sc_tramp\n ret\n"
    "f_sc_tail: 4: FJMP sc_tramp\n"
    "f_sc_null: 5: call sc_tramp2\n ret\n"
    "f_alt_on: 6: xorl %eax, %eax\n .byte 0x0f, 0x1f, 0x00\n ret\n"
    " ALT 26, 6b, 5, 16f, 5\n"
    "f_alt_off: 7: xorl %eax, %eax\n nop\n nop\n nop\n ret\n"
    " ALT (4 * 32 + 28), 7b, 5, 17f, 5\n"
    "f_alt_call: 8: call native_foo\n ret\n"
    " ALT (3 * 32 + 21), 8b, 5, 18f, 5\n"
    "f_alt_jmp: 9: movl $5, %eax\n ret\n"
    " ALT (3 * 32 + 21), 9b, 5, 19f, 5\n"
    "sc_tramp: FJMP sc_func\n .byte 0x0f, 0xb9, 0xcc\n"
    "sc_tramp2: ret\n .byte 0xcc, 0xcc, 0xcc, 0xcc, 0x0f, 0xb9, 0xcc\n"
    "_etext:\n"
    ".section .altinstr_replacement, \"ax\"\n"
    "16: movl $1, %eax\n17: movl $2, %eax\n18: call alt_target\n"
    "19: FJMP alt_target\n"
    ".section .retpoline_sites, \"a\"\n .long f_rp_call - .\n .long f_rp_jmp - .\n"
    ".section .return_sites, \"a\"\n .long f_return - .\n"
    ".data\n.balign 8\n"
    ".globl pv_ops\n.type pv_ops, @object\npv_ops: .quad _paravirt_nop, native_foo\n"
    ".size pv_ops, 16\n"
    ".globl __start_mcount_loc, __stop_mcount_loc\n"
    "__start_mcount_loc: .quad f_mcount\n__stop_mcount_loc:\n"
    "sc_key: .quad sc_func, 1\nsc_key2: .quad 0, 1\n"
    ".globl __start_static_call_sites, __stop_static_call_sites\n"
    "__start_static_call_sites:\n"
    " .long 3b - .\n .long sc_key - .\n"
    " .long 4b - .\n .long sc_key - . + 1\n"
    " .long 5b - .\n .long sc_key2 - .\n"
    "__stop_static_call_sites:\n";

static char dir[64];
static struct elfimg *img;
static struct kp_text *kp;
static struct cpuid_profile prof;

static gva_t sym(const char *name)
{
	for (size_t i = 0; i < img->nsyms; i++)
		if (img->syms[i].name && !strcmp(img->syms[i].name, name))
			return img->syms[i].addr;
	fail_msg("no symbol %s", name);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_kpatch.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char path[128], cmd[512];
	snprintf(path, sizeof(path), "%s/k.S", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(src, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -nostdlib -static -no-pie -Wl,--no-relax -o %s/k %s", dir,
		 path);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/k", dir);
	if (elfimg_open(path, &img) != BT_OK)
		return -1;
	/* a host with SSE4.2/POPCNT, no leaf-7 extras */
	struct cpuid_host h = {.l1 = {0, 0, (1u << 20) | (1u << 23), 0}};
	cpuid_profile_make(&prof, &h, 0);
	struct kp_config cfg = {.cpu = &prof, .ncpus = 1, .mitigations_off = true};
	return kp_predict(img, &cfg, &kp) == BT_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	kp_free(kp);
	elfimg_close(img);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The predicted bytes at symbol name equal want (n bytes). */
static void expect(const char *name, const uint8_t *want, size_t n)
{
	uint8_t got[16];
	gva_t va = sym(name);
	assert_int_equal(kp_read(kp, va, got, n), n);
	if (memcmp(got, want, n) != 0) {
		char g[64] = "", w[64] = "";
		for (size_t i = 0; i < n; i++) {
			sprintf(g + 3 * i, "%02x ", got[i]);
			sprintf(w + 3 * i, "%02x ", want[i]);
		}
		fail_msg("%s: predicted %s, want %s", name, g, w);
	}
}

static void rel(uint8_t *p, gva_t site, unsigned len, const char *dst)
{
	int32_t d = (int32_t)(sym(dst) - (site + len));
	memcpy(p, &d, 4);
}

static void test_sites(void **state)
{
	(void)state;
	expect("f_mcount", (const uint8_t[]){0x0f, 0x1f, 0x44, 0x00, 0x00}, 5);
	expect("f_return", (const uint8_t[]){0xc3, 0xcc, 0xcc, 0xcc, 0xcc}, 5);
	/* call *%r11 and jmp *%rax; int3, padded, NOPs optimized */
	expect("f_rp_call", (const uint8_t[]){0x41, 0xff, 0xd3, 0x66, 0x90}, 5);
	expect("f_rp_jmp", (const uint8_t[]){0xff, 0xe0, 0xcc, 0x66, 0x90}, 5);
	/* one CPU: lock -> ds */
	expect("f_lock", (const uint8_t[]){0x3e, 0xff, 0x07}, 3);
	/* pv_ops[1] is native_foo: a direct call, NOP-padded */
	uint8_t pv[6] = {0xe8, 0, 0, 0, 0, 0x90};
	rel(pv + 1, sym("f_pv"), 5, "native_foo");
	expect("f_pv", pv, 6);
	/* static calls: call/jmp the key's function; a NULL key NOPs the call */
	uint8_t sc[5] = {0xe8};
	rel(sc + 1, sym("f_sc_call"), 5, "sc_func");
	expect("f_sc_call", sc, 5);
	sc[0] = 0xe9;
	rel(sc + 1, sym("f_sc_tail"), 5, "sc_func");
	expect("f_sc_tail", sc, 5);
	expect("f_sc_null", (const uint8_t[]){0x0f, 0x1f, 0x44, 0x00, 0x00}, 5);
	/* alternatives: SSE2 is advertised (patched), AVX is not (only the
	 * padding NOPs optimized), a call's rel32 fixed up, a jmp shortened */
	expect("f_alt_on", (const uint8_t[]){0xb8, 0x01, 0x00, 0x00, 0x00}, 5);
	expect("f_alt_off", (const uint8_t[]){0x31, 0xc0, 0x0f, 0x1f, 0x00}, 5);
	uint8_t ac[5] = {0xe8};
	rel(ac + 1, sym("f_alt_call"), 5, "alt_target");
	expect("f_alt_call", ac, 5);
	int64_t d = (int64_t)(sym("alt_target") - (sym("f_alt_jmp") + 2));
	assert_true(d >= -128 && d < 0); /* backwards: Linux keeps 5 bytes */
	uint8_t aj[5] = {0xe9};
	rel(aj + 1, sym("f_alt_jmp"), 5, "alt_target");
	expect("f_alt_jmp", aj, 5);
}

/* kp_patch_site (a loaded module's sites, the same rules): the image's own
 * bytes at each site become what kp_predict made of them; a site of another
 * kind, or a kind without a per-site rule, is left alone. */
static void test_patch_site(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum kp_kind kind;
	} sites[] = {{"f_mcount", KP_MCOUNT},
		     {"f_return", KP_RETURN},
		     {"f_rp_call", KP_RETPOLINE},
		     {"f_rp_jmp", KP_RETPOLINE}};
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		gva_t va = sym(sites[i].name);
		uint8_t b[16], want[5];
		assert_int_equal(elfimg_read(img, va, b, sizeof(b)), BT_OK);
		assert_int_equal(kp_read(kp, va, want, 5), 5);
		assert_memory_not_equal(b, want, 5);
		assert_int_equal(kp_patch_site(kp, sites[i].kind, va, b, sizeof(b)), 5);
		assert_memory_equal(b, want, 5);
		assert_int_equal(kp_patch_site(kp, sites[i].kind, va, b, sizeof(b)), 0); /* done */
	}
	uint8_t b[16], orig[16];
	gva_t va = sym("f_return");
	assert_int_equal(elfimg_read(img, va, orig, sizeof(orig)), BT_OK);
	memcpy(b, orig, sizeof(b));
	assert_int_equal(kp_patch_site(kp, KP_MCOUNT, va, b, sizeof(b)), 0);
	assert_int_equal(kp_patch_site(kp, KP_ALT, va, b, sizeof(b)), 0);
	assert_int_equal(kp_patch_site(kp, KP_RETURN, va, b, 4), 0); /* cut short */
	assert_memory_equal(b, orig, sizeof(b));
}

static void test_kinds_and_stats(void **state)
{
	(void)state;
	const struct kp_stats *st = kp_get_stats(kp);
	assert_int_equal(st->sites[KP_ALT], 4);
	assert_int_equal(st->patched[KP_ALT], 4); /* three replaced, one NOP-optimized */
	assert_int_equal(st->patched[KP_RETPOLINE], 2);
	assert_int_equal(st->patched[KP_RETURN], 1);
	assert_int_equal(st->patched[KP_SMP_LOCK], 1);
	assert_int_equal(st->patched[KP_PARAVIRT], 1);
	assert_int_equal(st->patched[KP_STATIC_CALL], 3);
	assert_int_equal(st->patched[KP_MCOUNT], 1);
	assert_true(kp_changed(kp, sym("f_mcount"), 1));
	assert_false(kp_changed(kp, sym("native_foo"), 1));
	assert_int_equal(kp_kinds(kp, sym("f_lock"), 4, true), 1u << KP_SMP_LOCK);
	assert_int_equal(kp_kinds(kp, sym("f_pv"), 7, false), 1u << KP_PARAVIRT);
	/* the second CPU keeps the lock prefix */
	struct kp_config cfg = {.cpu = &prof, .ncpus = 2};
	struct kp_text *k2;
	assert_int_equal(kp_predict(img, &cfg, &k2), BT_OK);
	assert_false(kp_changed(k2, sym("f_lock"), 1));
	kp_free(k2);
}

static void test_profile(void **state)
{
	(void)state;
	struct cpuid_host h = {.l1 = {0, 0, (1u << 20) | (1u << 23), 0}};
	struct cpuid_profile a, b;
	cpuid_profile_make(&a, &h, 0);
	cpuid_profile_make(&b, &h, 0);
	assert_int_equal(cpuid_profile_hash(&a), cpuid_profile_hash(&b));
	assert_true(a.f1_ecx & (1u << 31)); /* HYPERVISOR */
	assert_true(a.f1_ecx & (1u << 20)); /* SSE4.2, as the host */
	assert_false(a.f1_ecx & (1u << 0)); /* SSE3: not the host's */
	cpuid_profile_make(&b, &h, CPUID_FEAT_FSGSBASE);
	assert_true(b.f7_ebx & 1);
	assert_true(cpuid_profile_hash(&a) != cpuid_profile_hash(&b));
	/* a prediction for another profile differs where a site tests a bit */
	h.l7[3] = 1u << 4; /* FSRM */
	cpuid_profile_make(&b, &h, 0);
	assert_true(cpuid_profile_hash(&a) != cpuid_profile_hash(&b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sites),
	    cmocka_unit_test(test_patch_site),
	    cmocka_unit_test(test_kinds_and_stats),
	    cmocka_unit_test(test_profile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
