/*
 * runtime/user/user_scan: the sensitive-instruction scan of a code page.
 * Real instruction bytes (hand-encoded from the SDM and checked against the
 * Zydis decoder here) placed at every kind of offset, the page-end rules,
 * and a false-negative hunt: random byte strings that Zydis decodes to a
 * sensitive instruction must be found wherever they sit.
 *
 * Measurement mode (not a test; docs/user-direct.md "Sensitive
 * instructions" has the figures and the command):
 *   build/tests/test_user_scan --measure FILE...
 * scans every 4 KiB page of every executable PT_LOAD segment of each ELF
 * FILE and prints, per file, the share of pages with a hit per class and
 * the median time per page (best of 5 passes over all pages).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <Zydis/Zydis.h>
#include <elf.h>
#include <time.h>

#include "pretrans/base/types.h"
#include "runtime/user/user_scan.h"

struct insn {
	const char *name;
	uint8_t b[8];
	uint8_t n;
	uint32_t cls;
	ZydisMnemonic m;
};

/* One of each sensitive instruction, with its class and Zydis mnemonic. */
static const struct insn sensitive[] = {
    {"sldt %eax", {0x0f, 0x00, 0xc0}, 3, USER_SCAN_SEG, ZYDIS_MNEMONIC_SLDT},
    {"str %eax", {0x0f, 0x00, 0xc8}, 3, USER_SCAN_SEG, ZYDIS_MNEMONIC_STR},
    {"verr %ax", {0x0f, 0x00, 0xe0}, 3, USER_SCAN_SEG, ZYDIS_MNEMONIC_VERR},
    {"verw (%rdi)", {0x0f, 0x00, 0x2f}, 3, USER_SCAN_SEG, ZYDIS_MNEMONIC_VERW},
    {"sgdt (%rax)", {0x0f, 0x01, 0x00}, 3, USER_SCAN_DESC, ZYDIS_MNEMONIC_SGDT},
    {"sidt 8(%rsp)", {0x0f, 0x01, 0x4c, 0x24, 0x08}, 5, USER_SCAN_DESC, ZYDIS_MNEMONIC_SIDT},
    {"smsw %eax", {0x0f, 0x01, 0xe0}, 3, USER_SCAN_DESC, ZYDIS_MNEMONIC_SMSW},
    {"lar %ecx,%eax", {0x0f, 0x02, 0xc1}, 3, USER_SCAN_DESC, ZYDIS_MNEMONIC_LAR},
    {"lsl %ecx,%eax", {0x0f, 0x03, 0xc1}, 3, USER_SCAN_DESC, ZYDIS_MNEMONIC_LSL},
    {"mov %ds,%eax", {0x8c, 0xd8}, 2, USER_SCAN_SEG, ZYDIS_MNEMONIC_MOV},
    {"mov %eax,%ss", {0x8e, 0xd0}, 2, USER_SCAN_SEG, ZYDIS_MNEMONIC_MOV},
    {"mov %eax,%gs", {0x8e, 0xe8}, 2, USER_SCAN_SEG, ZYDIS_MNEMONIC_MOV},
    {"push %fs", {0x0f, 0xa0}, 2, USER_SCAN_SEG, ZYDIS_MNEMONIC_PUSH},
    {"pop %gs", {0x0f, 0xa9}, 2, USER_SCAN_SEG, ZYDIS_MNEMONIC_POP},
    {"lss (%rax),%eax", {0x0f, 0xb2, 0x00}, 3, USER_SCAN_SEG, ZYDIS_MNEMONIC_LSS},
    {"lfs (%rax),%eax", {0x0f, 0xb4, 0x00}, 3, USER_SCAN_SEG, ZYDIS_MNEMONIC_LFS},
    {"lgs (%rax),%eax", {0x0f, 0xb5, 0x00}, 3, USER_SCAN_SEG, ZYDIS_MNEMONIC_LGS},
    {"rdtscp", {0x0f, 0x01, 0xf9}, 3, USER_SCAN_TSCAUX, ZYDIS_MNEMONIC_RDTSCP},
    {"rdpid %rax", {0xf3, 0x0f, 0xc7, 0xf8}, 4, USER_SCAN_TSCAUX, ZYDIS_MNEMONIC_RDPID},
    {"rdfsbase %rax", {0xf3, 0x48, 0x0f, 0xae, 0xc0}, 5, USER_SCAN_FSGS, ZYDIS_MNEMONIC_RDFSBASE},
    {"rdgsbase %eax", {0xf3, 0x0f, 0xae, 0xc8}, 4, USER_SCAN_FSGS, ZYDIS_MNEMONIC_RDGSBASE},
    {"wrfsbase %rdi", {0xf3, 0x48, 0x0f, 0xae, 0xd7}, 5, USER_SCAN_FSGS, ZYDIS_MNEMONIC_WRFSBASE},
    {"wrgsbase %rax", {0xf3, 0x48, 0x0f, 0xae, 0xd8}, 5, USER_SCAN_FSGS, ZYDIS_MNEMONIC_WRGSBASE},
    {"cpuid", {0x0f, 0xa2}, 2, USER_SCAN_FEAT, ZYDIS_MNEMONIC_CPUID},
    {"xgetbv", {0x0f, 0x01, 0xd0}, 3, USER_SCAN_FEAT, ZYDIS_MNEMONIC_XGETBV},
    {"rdpkru", {0x0f, 0x01, 0xee}, 3, USER_SCAN_FEAT, ZYDIS_MNEMONIC_RDPKRU},
    {"xsave (%rsp)", {0x0f, 0xae, 0x24, 0x24}, 4, USER_SCAN_FEAT, ZYDIS_MNEMONIC_XSAVE},
    {"xrstor64 (%rsp)", {0x48, 0x0f, 0xae, 0x2c, 0x24}, 5, USER_SCAN_FEAT, ZYDIS_MNEMONIC_XRSTOR64},
    {"xsavec (%rsp)", {0x0f, 0xc7, 0x24, 0x24}, 4, USER_SCAN_FEAT, ZYDIS_MNEMONIC_XSAVEC},
    {"rdrand %eax", {0x0f, 0xc7, 0xf0}, 3, USER_SCAN_FEAT, ZYDIS_MNEMONIC_RDRAND},
    {"rdseed %eax", {0x0f, 0xc7, 0xf8}, 3, USER_SCAN_FEAT, ZYDIS_MNEMONIC_RDSEED},
    {"umwait %ecx", {0xf2, 0x0f, 0xae, 0xf1}, 4, USER_SCAN_FEAT, ZYDIS_MNEMONIC_UMWAIT},
    {"tpause %ecx", {0x66, 0x0f, 0xae, 0xf1}, 4, USER_SCAN_FEAT, ZYDIS_MNEMONIC_TPAUSE},
    {"sysenter", {0x0f, 0x34}, 2, USER_SCAN_SYSENTER, ZYDIS_MNEMONIC_SYSENTER},
    {"rdtsc", {0x0f, 0x31}, 2, USER_SCAN_TSC, ZYDIS_MNEMONIC_RDTSC},
    {"in $0x80,%al", {0xe4, 0x80}, 2, USER_SCAN_IO, ZYDIS_MNEMONIC_IN},
    {"out %al,(%dx)", {0xee}, 1, USER_SCAN_IO, ZYDIS_MNEMONIC_OUT},
    {"in (%dx),%eax", {0xed}, 1, USER_SCAN_IO, ZYDIS_MNEMONIC_IN},
    {"rep insb", {0xf3, 0x6c}, 2, USER_SCAN_IO, ZYDIS_MNEMONIC_INSB},
    {"outsl", {0x6f}, 1, USER_SCAN_IO, ZYDIS_MNEMONIC_OUTSD},
    {"cli", {0xfa}, 1, USER_SCAN_IO, ZYDIS_MNEMONIC_CLI},
    {"sti", {0xfb}, 1, USER_SCAN_IO, ZYDIS_MNEMONIC_STI},
    {"pushfq", {0x9c}, 1, USER_SCAN_IO, ZYDIS_MNEMONIC_PUSHFQ},
    {"popfq", {0x9d}, 1, USER_SCAN_IO, ZYDIS_MNEMONIC_POPFQ},
};

/* Instructions that run exactly on the host (faulting or not) and must not
 * match: the privileged ones fault there as in the guest, the rest do not
 * read machine state. */
static const struct insn faithful[] = {
    {"syscall", {0x0f, 0x05}, 2, 0, ZYDIS_MNEMONIC_SYSCALL},
    {"int $0x80", {0xcd, 0x80}, 2, 0, ZYDIS_MNEMONIC_INT},
    {"int3", {0xcc}, 1, 0, ZYDIS_MNEMONIC_INT3},
    {"ud2", {0x0f, 0x0b}, 2, 0, ZYDIS_MNEMONIC_UD2},
    {"hlt", {0xf4}, 1, 0, ZYDIS_MNEMONIC_HLT},
    {"wrmsr", {0x0f, 0x30}, 2, 0, ZYDIS_MNEMONIC_WRMSR},
    {"mov %cr3,%rax", {0x0f, 0x20, 0xd8}, 3, 0, ZYDIS_MNEMONIC_MOV},
    {"mfence", {0x0f, 0xae, 0xf0}, 3, 0, ZYDIS_MNEMONIC_MFENCE},
    {"lfence", {0x0f, 0xae, 0xe8}, 3, 0, ZYDIS_MNEMONIC_LFENCE},
    {"fxsave64 (%rsp)", {0x48, 0x0f, 0xae, 0x04, 0x24}, 5, 0, ZYDIS_MNEMONIC_FXSAVE64},
    {"ldmxcsr (%rsp)", {0x0f, 0xae, 0x14, 0x24}, 4, 0, ZYDIS_MNEMONIC_LDMXCSR},
    {"cmpxchg16b (%rdi)", {0x48, 0x0f, 0xc7, 0x0f}, 4, 0, ZYDIS_MNEMONIC_CMPXCHG16B},
    {"nopl 0(%rax)", {0x0f, 0x1f, 0x40, 0x00}, 4, 0, ZYDIS_MNEMONIC_NOP},
    {"mov %rax,%rbx", {0x48, 0x89, 0xc3}, 3, 0, ZYDIS_MNEMONIC_MOV},
    {"lretq", {0x48, 0xcb}, 2, 0, ZYDIS_MNEMONIC_RET},
};

static ZydisDecoder dec;

static int setup_group(void **state)
{
	(void)state;
	return ZYAN_FAILED(ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64))
		   ? -1
		   : 0;
}

/* The encoding is what its name says (Zydis agrees, whole length). */
static void check_encoding(const struct insn *in)
{
	ZydisDecodedInstruction di;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(&dec, in->b, in->n, &di, ops)))
		fail_msg("%s: Zydis cannot decode it", in->name);
	if (di.mnemonic != in->m || di.length != in->n)
		fail_msg("%s: Zydis says %s, %u bytes", in->name,
			 ZydisMnemonicGetString(di.mnemonic), di.length);
}

static void fill_nops(uint8_t *page)
{
	memset(page, 0x90, USER_SCAN_PAGE);
}

static void test_each_class_anywhere(void **state)
{
	(void)state;
	static uint8_t page[USER_SCAN_PAGE];
	static const size_t offsets[] = {0, 1, 7, 15, 16, 17, 2047, 4000, 4080};
	for (size_t k = 0; k < BT_ARRAY_SIZE(sensitive); k++) {
		const struct insn *in = &sensitive[k];
		check_encoding(in);
		for (size_t o = 0; o < BT_ARRAY_SIZE(offsets); o++) {
			fill_nops(page);
			memcpy(page + offsets[o], in->b, in->n);
			struct user_scan_hit hit;
			uint32_t c = user_scan_page(page, NULL, 0, USER_SCAN_ALL, &hit);
			/* 0f c7 f8 is rdpid after an f3, else rdseed: at offset 0 the
			 * byte before is unknown and either class may be reported */
			uint32_t ok = in->cls;
			if (in->m == ZYDIS_MNEMONIC_RDSEED && offsets[o] == 0)
				ok |= USER_SCAN_TSCAUX;
			if (!(c & ok) || (c & (c - 1)))
				fail_msg("%s at %zu: class %s, expected %s", in->name, offsets[o],
					 user_scan_class_name(c), user_scan_class_name(in->cls));
			assert_int_equal(hit.cls, c);
			/* the opcode is at or after the prefixes */
			assert_true(hit.offset >= offsets[o] && hit.offset < offsets[o] + in->n);
			/* outside the mask: not found (a page of nops has nothing else);
			 * f3 0f c7 f8 also counts as rdseed (FEAT): the f3 may be the
			 * last byte of another instruction; a one-byte I/O opcode may
			 * sit inside another instruction (0f 01 ee: ee is `out`) */
			uint32_t also = in->m == ZYDIS_MNEMONIC_RDPID ? USER_SCAN_FEAT : 0;
			if (in->cls != USER_SCAN_IO)
				also |= USER_SCAN_IO;
			also |= ok;
			assert_int_equal(
			    user_scan_page(page, NULL, 0, USER_SCAN_ALL & ~(in->cls | also), NULL),
			    0);
		}
	}
}

static void test_faithful_not_matched(void **state)
{
	(void)state;
	static uint8_t page[USER_SCAN_PAGE];
	fill_nops(page);
	size_t at = 0;
	for (size_t k = 0; k < BT_ARRAY_SIZE(faithful); k++) {
		check_encoding(&faithful[k]);
		memcpy(page + at, faithful[k].b, faithful[k].n);
		at += faithful[k].n + 3;
	}
	struct user_scan_hit hit;
	uint32_t c = user_scan_page(page, NULL, 0, USER_SCAN_ALL, &hit);
	if (c)
		fail_msg("a faithful instruction matched: class %s at %u", user_scan_class_name(c),
			 hit.offset);
}

/* An instruction crossing the page end: the next page's bytes decide;
 * without them the scan assumes the worst. */
static void test_page_end(void **state)
{
	(void)state;
	static uint8_t page[USER_SCAN_PAGE];
	fill_nops(page);
	page[USER_SCAN_PAGE - 1] = 0x0f;
	static const uint8_t nopl[] = {0x1f, 0x40, 0x00}; /* 0f 1f 40 00: nopl */
	static const uint8_t lsl[] = {0x03, 0xc1};	  /* 0f 03 c1: lsl */
	static const uint8_t rdtscp[] = {0x01, 0xf9};	  /* 0f 01 f9 */
	assert_int_not_equal(user_scan_page(page, NULL, 0, USER_SCAN_ALL, NULL), 0);
	assert_int_equal(user_scan_page(page, nopl, sizeof(nopl), USER_SCAN_ALL, NULL), 0);
	assert_int_equal(user_scan_page(page, lsl, sizeof(lsl), USER_SCAN_ALL, NULL),
			 USER_SCAN_DESC);
	assert_int_equal(user_scan_page(page, rdtscp, sizeof(rdtscp), USER_SCAN_ALL, NULL),
			 USER_SCAN_TSCAUX);
	/* two bytes at the end, the ModRM byte on the next page */
	page[USER_SCAN_PAGE - 2] = 0x0f;
	page[USER_SCAN_PAGE - 1] = 0x01;
	static const uint8_t modrm_rdtscp[] = {0xf9};
	static const uint8_t modrm_sgdt[] = {0x00};
	assert_int_equal(user_scan_page(page, modrm_rdtscp, 1, USER_SCAN_TSCAUX, NULL),
			 USER_SCAN_TSCAUX);
	assert_int_equal(user_scan_page(page, modrm_sgdt, 1, USER_SCAN_TSCAUX, NULL), 0);
	assert_int_equal(user_scan_page(page, modrm_sgdt, 1, USER_SCAN_ALL, NULL), USER_SCAN_DESC);
	/* a prefix decides umwait vs mfence-like forms: at page start unknown */
	fill_nops(page);
	static const uint8_t umw[] = {0x0f, 0xae, 0xf1};
	memcpy(page, umw, sizeof(umw));
	assert_int_equal(user_scan_page(page, NULL, 0, USER_SCAN_ALL, NULL), USER_SCAN_FEAT);
	page[0] = 0x90; /* no prefix: 0f ae f1 at 1 is preceded by a nop */
	memcpy(page + 1, umw, sizeof(umw));
	assert_int_equal(user_scan_page(page, NULL, 0, USER_SCAN_ALL, NULL), 0);
	/* bad arguments */
	assert_int_equal(user_scan_page(NULL, NULL, 0, USER_SCAN_ALL, NULL), 0);
	assert_int_equal(user_scan_page(page, NULL, 0, 0, NULL), 0);
}

static bool is_sensitive_mnemonic(const ZydisDecodedInstruction *di, const ZydisDecodedOperand *ops)
{
	for (size_t k = 0; k < BT_ARRAY_SIZE(sensitive); k++)
		if (sensitive[k].m == di->mnemonic && di->mnemonic != ZYDIS_MNEMONIC_MOV &&
		    di->mnemonic != ZYDIS_MNEMONIC_PUSH && di->mnemonic != ZYDIS_MNEMONIC_POP)
			return true;
	/* mov/push/pop: only with a segment register operand */
	if (di->mnemonic == ZYDIS_MNEMONIC_MOV || di->mnemonic == ZYDIS_MNEMONIC_PUSH ||
	    di->mnemonic == ZYDIS_MNEMONIC_POP)
		for (unsigned i = 0; i < di->operand_count; i++)
			if (ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			    ZydisRegisterGetClass(ops[i].reg.value) == ZYDIS_REGCLASS_SEGMENT)
				return true;
	switch (di->mnemonic) { /* the rest of the classes' members */
	case ZYDIS_MNEMONIC_LLDT:
	case ZYDIS_MNEMONIC_LTR:
	case ZYDIS_MNEMONIC_SLDT:
	case ZYDIS_MNEMONIC_STR:
	case ZYDIS_MNEMONIC_WRPKRU:
	case ZYDIS_MNEMONIC_XSAVES:
	case ZYDIS_MNEMONIC_XRSTORS:
	case ZYDIS_MNEMONIC_XSAVEOPT:
	case ZYDIS_MNEMONIC_UMONITOR:
	case ZYDIS_MNEMONIC_INSW:
	case ZYDIS_MNEMONIC_INSD:
	case ZYDIS_MNEMONIC_OUTSB:
	case ZYDIS_MNEMONIC_OUTSW:
	case ZYDIS_MNEMONIC_PUSHF:
	case ZYDIS_MNEMONIC_POPF:
		return true;
	default:
		return false;
	}
}

/* Random byte strings: whatever Zydis decodes as sensitive, the scan finds
 * (no false negative), wherever it lies in the page. */
static void test_no_false_negative_random(void **state)
{
	(void)state;
	static uint8_t page[USER_SCAN_PAGE];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned found = 0;
	for (unsigned n = 0; n < 400000; n++) {
		uint8_t b[15];
		for (unsigned i = 0; i < 15; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b[i] = (uint8_t)x;
		}
		/* bias towards the interesting opcode space */
		if (n & 1)
			b[n & 2 ? 0 : 1] = 0x0f;
		ZydisDecodedInstruction di;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		if (ZYAN_FAILED(ZydisDecoderDecodeFull(&dec, b, 15, &di, ops)))
			continue;
		if (!is_sensitive_mnemonic(&di, ops))
			continue;
		found++;
		size_t at = (x >> 20) % (USER_SCAN_PAGE - di.length);
		fill_nops(page);
		memcpy(page + at, b, di.length);
		if (!user_scan_page(page, NULL, 0, USER_SCAN_ALL, NULL))
			fail_msg("missed %s (%u bytes %02x %02x %02x %02x) at %zu",
				 ZydisMnemonicGetString(di.mnemonic), di.length, b[0], b[1], b[2],
				 b[3], at);
	}
	/* the hunt did look at many sensitive encodings */
	assert_true(found > 1000);
}

/* ---- measurement mode -------------------------------------------------- */

struct pages {
	uint8_t *data; /* n pages, each followed by its next page's first bytes */
	size_t n;
};

static void add_exec_pages(const char *path, struct pages *p)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "test_user_scan: cannot open %s\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *img = malloc((size_t)size);
	if (!img || fread(img, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "test_user_scan: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	if (size < (long)sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)size) {
		fprintf(stderr, "test_user_scan: %s is not a 64-bit ELF file\n", path);
		exit(2);
	}
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + eh->e_phoff);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X))
			continue;
		uint64_t start = ph[i].p_offset & ~4095ull;
		uint64_t end = ph[i].p_offset + ph[i].p_filesz;
		/* a partial last page (the vDSO's) is zero-filled, as mapped */
		for (uint64_t o = start; o < end && o < (uint64_t)size; o += 4096) {
			p->data = realloc(p->data, (p->n + 1) * (4096 + USER_SCAN_TAIL));
			uint8_t *d = p->data + p->n * (4096 + USER_SCAN_TAIL);
			uint64_t have = (uint64_t)size - o;
			if (have > 4096 + USER_SCAN_TAIL)
				have = 4096 + USER_SCAN_TAIL;
			memset(d, 0, 4096 + USER_SCAN_TAIL);
			memcpy(d, img + o, have);
			p->n++;
		}
	}
	free(img);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int measure(int argc, char **argv)
{
	static const uint32_t classes[] = {USER_SCAN_DESC, USER_SCAN_SEG,  USER_SCAN_TSCAUX,
					   USER_SCAN_FSGS, USER_SCAN_FEAT, USER_SCAN_SYSENTER,
					   USER_SCAN_IO,   USER_SCAN_TSC};
	printf("%-40s %6s %8s %8s", "file", "pages", "ns/page", "ALWAYS");
	for (size_t c = 0; c < BT_ARRAY_SIZE(classes); c++)
		printf(" %8s", user_scan_class_name(classes[c]));
	printf("\n");
	for (int a = 0; a < argc; a++) {
		struct pages p = {0};
		add_exec_pages(argv[a], &p);
		if (!p.n) {
			printf("%-40s no executable pages\n", argv[a]);
			continue;
		}
		size_t stride = 4096 + USER_SCAN_TAIL;
		double t[5];
		volatile uint32_t sink = 0;
		for (int r = 0; r < 5; r++) {
			double t0 = now_ns();
			for (size_t i = 0; i < p.n; i++)
				sink +=
				    user_scan_page(p.data + i * stride, p.data + i * stride + 4096,
						   USER_SCAN_TAIL, USER_SCAN_ALWAYS, NULL);
			t[r] = (now_ns() - t0) / (double)p.n;
		}
		qsort(t, 5, sizeof(t[0]), cmp_double);
		size_t always = 0, per[BT_ARRAY_SIZE(classes)] = {0};
		for (size_t i = 0; i < p.n; i++) {
			const uint8_t *pg = p.data + i * stride;
			always += user_scan_page(pg, pg + 4096, USER_SCAN_TAIL, USER_SCAN_ALWAYS,
						 NULL) != 0;
			for (size_t c = 0; c < BT_ARRAY_SIZE(classes); c++)
				per[c] += user_scan_page(pg, pg + 4096, USER_SCAN_TAIL, classes[c],
							 NULL) != 0;
		}
		const char *base = strrchr(argv[a], '/');
		printf("%-40s %6zu %8.0f %7.1f%%", base ? base + 1 : argv[a], p.n, t[2],
		       100.0 * (double)always / (double)p.n);
		for (size_t c = 0; c < BT_ARRAY_SIZE(classes); c++)
			printf(" %7.1f%%", 100.0 * (double)per[c] / (double)p.n);
		printf("\n");
		free(p.data);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--measure") == 0)
		return measure(argc - 2, argv + 2);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_class_anywhere),
	    cmocka_unit_test(test_faithful_not_matched),
	    cmocka_unit_test(test_page_end),
	    cmocka_unit_test(test_no_false_negative_random),
	};
	return cmocka_run_group_tests_name("user_scan", tests, setup_group, NULL);
}
