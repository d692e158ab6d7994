/*
 * Unit tests of the translator core and runtime/tc: straight-line code,
 * memory operands, exits, determinism, relocatability, pc map, faults,
 * privileged exits and the interrupt check.  Guest code lives in ordinary
 * host memory; the harness soft-MMU is the identity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tests/xlat/harness.h"
#include "pretrans/base/log.h"
#include "pretrans/xlat/xlat_facts.h"

#include <Zydis/Zydis.h>

#define SENTINEL 0x7ead0000ull

struct env {
	struct xh h;
	uint8_t *code;	/* guest code (identity addresses) */
	uint64_t *data; /* data + stack page(s) */
};

static uint8_t *alloc_pages(size_t n)
{
	void *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	e->code = alloc_pages(2);
	e->data = (uint64_t *)alloc_pages(4);
	assert_int_equal(
	    xh_init(&e->h, (gva_t)(uintptr_t)e->code, (gva_t)(uintptr_t)e->code + 8192, 0), BT_OK);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	xh_fini(&e->h);
	munmap(e->code, 8192);
	munmap(e->data, 4 * 4096);
	free(e);
	return 0;
}

/* Guest stack at the top of the data area with SENTINEL as return address. */
static void set_stack(struct env *e)
{
	uint64_t *top = e->data + 4 * 512 - 8;
	*top = SENTINEL;
	e->h.vcpu.abi->gpr[VCPU_RSP] = (uint64_t)(uintptr_t)top;
}

/* mov rax,[rdi]; add rax,rsi; mov [rdi+8],rax; push rax; pop rcx; ret */
static const uint8_t straight[] = {0x48, 0x8b, 0x07, 0x48, 0x01, 0xf0, 0x48,
				   0x89, 0x47, 0x08, 0x50, 0x59, 0xc3};

static void test_straight_line(void **state)
{
	struct env *e = *state;
	memcpy(e->code, straight, sizeof(straight));
	set_stack(e);
	struct vcpu_abi *a = e->h.vcpu.abi;
	e->data[0] = 40;
	a->gpr[VCPU_RDI] = (uint64_t)(uintptr_t)e->data;
	a->gpr[VCPU_RSI] = 2;
	uint64_t rsp0 = a->gpr[VCPU_RSP];
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 100), XH_OK);
	assert_int_equal(a->gpr[VCPU_RAX], 42);
	assert_int_equal(a->gpr[VCPU_RCX], 42);
	assert_int_equal(e->data[1], 42);
	assert_int_equal(a->gpr[VCPU_RSP], rsp0 + 8);
}

/* mov rax, [rdi]; cmp rax, 1; mov [rdi], rbx; setz cl; ret: the store's
 * probe reuses the load's TLB index register (xe_probe2), but the flags,
 * live across it, are saved first through a scratch register: the index
 * must be computed again, not taken from a register holding RSP. */
static void test_probe_index_reuse(void **state)
{
	struct env *e = *state;
	static const uint8_t code[] = {0x48, 0x8b, 0x07, 0x48, 0x83, 0xf8, 0x01,
				       0x48, 0x89, 0x1f, 0x0f, 0x94, 0xc1, 0xc3};
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	struct vcpu_abi *a = e->h.vcpu.abi;
	for (uint64_t v = 0; v < 2; v++) {
		e->data[0] = v;
		a->gpr[VCPU_RDI] = (uint64_t)(uintptr_t)e->data;
		a->gpr[VCPU_RBX] = 77;
		a->gpr[VCPU_RCX] = 0x100;
		set_stack(e);
		assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 100), XH_OK);
		assert_int_equal(a->gpr[VCPU_RAX], v);
		assert_int_equal(e->data[0], 77);
		assert_int_equal(a->gpr[VCPU_RCX], 0x100 | (v == 1));
	}
}

/*
 * XLAT_OPT_COUNT_PROBES: every inline probe adds 1 to vcpu.probes, in each
 * of the three probe forms, without changing what the code computes.  Ten
 * rounds of
 *     mov rax, [rdi]          two-register probe (xe_probe2)
 *     mov [rdi+8], rax        two-register probe
 *     bt  qword [rdi], rsi    three-register probe (xe_probe), its address in A
 *     mov rdx, [rip+d]        absolute probe (xe_probe_abs: code below 2 GiB)
 * and the ret's pop: 41 probes, whether or not they hit the TLB.  The
 * code lies below 2 GiB (MAP_32BIT) so that the RIP-relative load takes
 * the absolute form.
 */
static void test_count_probes(void **state)
{
	(void)state;
	static const uint8_t code[] = {
	    0xb9, 0x0a, 0x00, 0x00, 0x00,	      /* 0: mov ecx, 10 */
	    0x48, 0x8b, 0x07,			      /* 5: mov rax, [rdi] */
	    0x48, 0x89, 0x47, 0x08,		      /* 8: mov [rdi+8], rax */
	    0x48, 0x0f, 0xa3, 0x37,		      /* 12: bt [rdi], rsi */
	    0x48, 0x8b, 0x15, 0x29, 0x00, 0x00, 0x00, /* 16: mov rdx, [rip+41] -> 64 */
	    0xff, 0xc9,				      /* 23: dec ecx */
	    0x75, 0xea,				      /* 25: jnz 5 */
	    0xc3,				      /* 27: ret */
	};
	uint8_t *c = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	assert_true(c != MAP_FAILED && (uintptr_t)c + 8192 < (1ull << 31));
	memcpy(c, code, sizeof(code));
	memcpy(c + 64, &(uint64_t){0xfeedf00d}, 8);
	uint64_t *data = (uint64_t *)alloc_pages(4);
	for (int counting = 0; counting < 2; counting++) {
		struct xh h;
		assert_int_equal(xh_init(&h, (gva_t)(uintptr_t)c, (gva_t)(uintptr_t)c + 8192,
					 counting ? XLAT_OPT_COUNT_PROBES : 0),
				 BT_OK);
		struct vcpu_abi *a = h.vcpu.abi;
		uint64_t *top = data + 4 * 512 - 8;
		*top = SENTINEL;
		a->gpr[VCPU_RSP] = (uint64_t)(uintptr_t)top;
		data[0] = 0x8001;
		a->gpr[VCPU_RDI] = (uint64_t)(uintptr_t)data;
		a->gpr[VCPU_RSI] = 15; /* bit 15 of 0x8001: set */
		assert_int_equal(xh_run(&h, (gva_t)(uintptr_t)c, SENTINEL, 100), XH_OK);
		assert_int_equal(data[1], 0x8001);
		assert_int_equal(a->gpr[VCPU_RAX], 0x8001);
		assert_int_equal(a->gpr[VCPU_RDX], 0xfeedf00d);
		assert_int_equal(a->gpr[VCPU_RCX], 0);
		assert_int_equal(a->rflags & 1, 1); /* the last bt's CF (dec keeps it) */
		assert_int_equal(a->probes, counting ? 41 : 0);
		assert_true(h.vcpu.mem_slow > 0 && h.vcpu.mem_slow < 41);
		xh_fini(&h);
	}
	munmap(c, 8192);
	munmap(data, 4 * 4096);
}

/* swapgs; ret: the two bases trade places (two loads and two stores since
 * XLAT_VERSION 9, no xchg), the scratch registers keep their values. */
static void test_swapgs(void **state)
{
	struct env *e = *state;
	static const uint8_t code[] = {0x0f, 0x01, 0xf8, 0xc3};
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	struct vcpu_abi *a = e->h.vcpu.abi;
	a->gs_base = 0x1111000;
	a->kernel_gs_base = 0x2222000;
	for (int r = 8; r < 12; r++)
		a->gpr[r] = 0x5eed00 + (uint64_t)r;
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 100), XH_OK);
	assert_int_equal(a->gs_base, 0x2222000);
	assert_int_equal(a->kernel_gs_base, 0x1111000);
	for (int r = 8; r < 12; r++)
		assert_int_equal(a->gpr[r], 0x5eed00 + (uint64_t)r);
}

static size_t read_buf(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const uint8_t *code = opaque;
	gva_t base = 0xffffffff81000000ull;
	if (va < base || va >= base + sizeof(straight))
		return 0;
	size_t n = BT_MIN(len, (size_t)(base + sizeof(straight) - va));
	memcpy(buf, code + (va - base), n);
	return n;
}

static void test_deterministic(void **state)
{
	(void)state;
	struct xlat_ctx *c1, *c2;
	struct bt_block b1, b2;
	struct xlat_source src = {.read = read_buf, .opaque = (void *)straight};
	assert_int_equal(xlat_create(NULL, &c1), BT_OK);
	assert_int_equal(xlat_create(NULL, &c2), BT_OK);
	assert_int_equal(xlat_translate(c1, &src, 0xffffffff81000000ull, &b1), BT_OK);
	assert_int_equal(xlat_translate(c2, &src, 0xffffffff81000000ull, &b2), BT_OK);
	assert_int_equal(b1.refusal, XLAT_OK);
	assert_int_equal(b1.code_len, b2.code_len);
	assert_memory_equal(b1.code, b2.code, b1.code_len);
	assert_int_equal(b1.pcmap_len, b2.pcmap_len);
	assert_memory_equal(b1.pcmap, b2.pcmap, b1.pcmap_len);
	assert_int_equal(b1.guest_hash, b2.guest_hash);
	assert_int_equal(b1.guest_len, sizeof(straight));
	assert_int_equal(b1.n_insns, 6);
	assert_int_equal(b1.guest_hash, xlat_hash_bytes(straight, sizeof(straight)));
	/* the exits: irq + ret */
	assert_int_equal(b1.n_exits, 2);
	assert_int_equal(b1.exits[0].kind, XLAT_EXIT_IRQ);
	assert_int_equal(b1.exits[1].kind, XLAT_EXIT_RET);
	/* translating again in the same context gives the same bytes too */
	uint8_t *copy = malloc(b1.code_len);
	memcpy(copy, b1.code, b1.code_len);
	assert_int_equal(xlat_translate(c1, &src, 0xffffffff81000000ull, &b1), BT_OK);
	assert_memory_equal(copy, b1.code, b1.code_len);
	free(copy);
	xlat_destroy(c1);
	xlat_destroy(c2);
}

/* Does the code refer to the user IBL table (a memory operand whose
 * displacement is inside it)?  The host code is a sequence of instructions
 * without data, decoded from its start (a byte scan matched a rel32 once). */
static bool refers_to_uibl(const struct bt_block *b)
{
	ZydisDecoder dec;
	assert_true(
	    ZYAN_SUCCESS(ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)));
	for (uint32_t i = 0; i < b->code_len;) {
		ZydisDecodedInstruction d;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		assert_true(ZYAN_SUCCESS(
		    ZydisDecoderDecodeFull(&dec, b->code + i, b->code_len - i, &d, ops)));
		for (int k = 0; k < d.operand_count; k++) {
			int64_t v = ops[k].mem.disp.value;
			if (ops[k].type == ZYDIS_OPERAND_TYPE_MEMORY && v >= VCPU_OFF_UIBL &&
			    v < VCPU_OFF_UIBL + VCPU_UIBL_ENTRIES * 16)
				return true;
		}
		i += d.length;
	}
	return false;
}

static const uint8_t jmp_far_page[] = {0x48, 0x89, 0xc1, 0xe9, 0x00, 0x20, 0x00, 0x00};
static size_t read_user(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const uint8_t *code = opaque;
	size_t n = opaque == straight ? sizeof(straight) : sizeof(jmp_far_page);
	if (va < 0x401000 || va >= 0x401000 + n)
		return 0;
	n = BT_MIN(len, (size_t)(0x401000 + n - va));
	memcpy(buf, code + (va - 0x401000), n);
	return n;
}

/* The host bytes by category (xlat_cat_bytes) add up to the code, and
 * the XLAT_VERSION 15 shapes hold: 7 bytes of slow path per access (lea T1,
 * [rip + back]; plus, for the two-register probes, the lea recomputing the
 * address: [rdi] 3, [rdi+8] 4, push's [rsp-8] 5, pop's and ret's [rsp] 4
 * bytes each), then the 20-byte shared path of its mem_info for the first
 * access with that value (a dword store since XLAT_VERSION 15, 21 bytes
 * before) and a 2-byte jmp back to it for the others (12 bytes and the
 * shared paths after them until XLAT_VERSION 11), one
 * kernel exit stub of 9 bytes (RET, falling into the tail: a one-byte
 * exit_info store since XLAT_VERSION 13) and a 21-byte tail (one
 * sign-extended imm32 store of exit_block); the IRQ exit has no stub since
 * XLAT_VERSION 14 (11 bytes before: exit_info, a rel8 jmp to the tail). */
/* 256 blocks "op reg, [rdi + disp]; add rax, rsi; ret" with the
 * operation, register and displacement varying. */
#define MEMO_BLOCKS 256
#define MEMO_STRIDE 16
static uint8_t memo_code[MEMO_BLOCKS * MEMO_STRIDE];

static size_t read_memo(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	(void)opaque;
	gva_t base = 0xffffffff81000000ull;
	if (va < base || va >= base + sizeof(memo_code))
		return 0;
	size_t n = BT_MIN(len, (size_t)(base + sizeof(memo_code) - va));
	memcpy(buf, memo_code + (va - base), n);
	return n;
}

/* The encoder's memo changes no byte: every block translated by one
 * context (its memo warm with the blocks before) equals the block
 * translated by a context of its own, and the memo did answer most
 * requests. */
static void test_encoder_memo(void **state)
{
	(void)state;
	static const uint8_t ops[] = {0x8b, 0x03, 0x2b, 0x33, 0x3b, 0x23, 0x0b, 0x89};
	for (int i = 0; i < MEMO_BLOCKS; i++) {
		uint8_t *p = memo_code + i * MEMO_STRIDE;
		uint32_t disp = (uint32_t)(i % 32) * 8;
		p[0] = 0x48;
		p[1] = ops[i % 8];
		p[2] = (uint8_t)(0x87 | (((i / 8) % 8) << 3)); /* [rdi + disp32], reg varies */
		memcpy(p + 3, &disp, 4);
		p[7] = 0x48, p[8] = 0x01, p[9] = 0xf0, p[10] = 0xc3;
	}
	struct xlat_source src = {.read = read_memo};
	struct xlat_ctx *warm;
	assert_int_equal(xlat_create(NULL, &warm), BT_OK);
	for (int i = 0; i < MEMO_BLOCKS; i++) {
		gva_t va = 0xffffffff81000000ull + (gva_t)i * MEMO_STRIDE;
		struct xlat_ctx *cold;
		struct bt_block a, b;
		assert_int_equal(xlat_create(NULL, &cold), BT_OK);
		assert_int_equal(xlat_translate(warm, &src, va, &a), BT_OK);
		assert_int_equal(a.refusal, XLAT_OK);
		assert_int_equal(a.guest_len, 11);
		assert_int_equal(xlat_translate(cold, &src, va, &b), BT_OK);
		assert_int_equal(a.code_len, b.code_len);
		assert_memory_equal(a.code, b.code, a.code_len);
		assert_int_equal(a.pcmap_len, b.pcmap_len);
		assert_memory_equal(a.pcmap, b.pcmap, a.pcmap_len);
		xlat_destroy(cold);
	}
	uint64_t hits, encoded;
	xlat_encoder_counts(warm, &hits, &encoded);
	assert_true(encoded > 0);
	assert_true(hits > 4 * encoded);
	xlat_destroy(warm);
}

/* mov rax,[rdi]; and eax,1; ret (and leaves AF undefined) and the same
 * with bt eax,1 (which keeps its undefined flags on real CPUs) */
static const uint8_t uf_and[] = {0x48, 0x8b, 0x07, 0x83, 0xe0, 0x01, 0xc3};
static const uint8_t uf_bt[] = {0x48, 0x8b, 0x07, 0x0f, 0xba, 0xe0, 0x01, 0xc3};

static size_t read_uf(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const uint8_t *code = opaque;
	size_t n = code == uf_and ? sizeof(uf_and) : sizeof(uf_bt);
	gva_t base = 0xffffffff81000000ull;
	if (va < base || va >= base + n)
		return 0;
	n = BT_MIN(len, (size_t)(base + n - va));
	memcpy(buf, code + (va - base), n);
	return n;
}

static uint32_t uf_flags_bytes(uint32_t opt, const uint8_t *code)
{
	struct xlat_options o = {.flags = opt};
	struct xlat_ctx *c;
	struct bt_block b;
	struct xlat_source src = {.read = read_uf, .opaque = (void *)code};
	assert_int_equal(xlat_create(&o, &c), BT_OK);
	assert_int_equal(xlat_translate(c, &src, 0xffffffff81000000ull, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_OK);
	uint32_t cats[XLAT_NCATS];
	xlat_cat_bytes(c, cats);
	uint32_t n = cats[XLAT_CAT_FLAGS];
	xlat_destroy(c);
	return n;
}

/* XLAT_OPT_UNDEF_FLAGS: the load before `and` needs no flags save (`and`
 * computes AF from its operands), the load before `bt` still does; on a
 * CPU that fails the check the option is refused (the differential test,
 * xlat_diff -u, checks the rule against the CPU it runs on). */
static void test_undef_flags(void **state)
{
	(void)state;
	/* what the option translates, on any host (nothing runs here) */
	xlat_host_undef_flags_pretend(1);
	/* (the ret's pop still saves the flags `and` made) */
	assert_true(uf_flags_bytes(XLAT_OPT_UNDEF_FLAGS, uf_and) < uf_flags_bytes(0, uf_and));
	assert_int_equal(uf_flags_bytes(XLAT_OPT_UNDEF_FLAGS, uf_bt), uf_flags_bytes(0, uf_bt));
	assert_true(uf_flags_bytes(0, uf_bt) > 0);
	xlat_host_undef_flags_pretend(0);
	struct xlat_options o = {.flags = XLAT_OPT_UNDEF_FLAGS};
	struct xlat_ctx *c = NULL;
	bt_log_set(0, LOG_ERROR); /* the refusal logs an error */
	assert_int_equal(xlat_create(&o, &c), BT_ERR_UNSUPPORTED);
	bt_log_set(LOG_ALL, LOG_WARN);
	assert_null(c);
	xlat_host_undef_flags_pretend(-1);
}

static void test_code_categories(void **state)
{
	(void)state;
	struct xlat_ctx *c;
	struct bt_block b;
	struct xlat_source src = {.read = read_buf, .opaque = (void *)straight};
	assert_int_equal(xlat_create(NULL, &c), BT_OK);
	assert_int_equal(xlat_translate(c, &src, 0xffffffff81000000ull, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_OK);
	uint32_t cats[XLAT_NCATS];
	xlat_cat_bytes(c, cats);
	uint32_t sum = 0;
	for (int k = 0; k < XLAT_NCATS; k++)
		sum += cats[k];
	assert_int_equal(sum, b.code_len);
	/* 5 accesses: [rdi], [rdi+8], push, pop, ret */
	uint32_t slow = cats[XLAT_CAT_SLOW];
	/* k distinct mem_info values: the first access of each holds the
	 * shared path, the others jump back to it with a rel8 */
	uint32_t k = (slow - 5 * 7 - 20 - 5 * 2) / 18;
	assert_true(k >= 1 && k <= 5);
	assert_int_equal(slow, 5 * 7 + 20 + k * 20 + (5 - k) * 2);
	assert_int_equal(cats[XLAT_CAT_STUB], 9 + 21);
	assert_true(cats[XLAT_CAT_PROBE] > 0 && cats[XLAT_CAT_ENTRY] > 0);
	assert_int_equal(cats[XLAT_CAT_COPY], 3); /* add rax, rsi */
	assert_string_equal(xlat_code_cat_str(XLAT_CAT_SLOW), "slowpath");
	xlat_destroy(c);
}

/* XLAT_OPT_STEP: one guest instruction a block, and exits that leave: a
 * return and a jump to another page go straight to their exit stubs where
 * the ordinary user translation looks the user IBL table up. */
static void test_step_option(void **state)
{
	(void)state;
	struct xlat_ctx *user, *step;
	struct bt_block b;
	struct xlat_options uo = {.flags = XLAT_OPT_USER};
	struct xlat_options so = {.flags = XLAT_OPT_USER | XLAT_OPT_STEP, .max_insns = 50};
	struct xlat_source s1 = {.read = read_user, .opaque = (void *)straight};
	struct xlat_source s2 = {.read = read_user, .opaque = (void *)jmp_far_page};
	assert_int_equal(xlat_create(&uo, &user), BT_OK);
	assert_int_equal(xlat_create(&so, &step), BT_OK);
	assert_int_not_equal(xlat_options_hash(&uo), xlat_options_hash(&so));

	/* the ordinary translation: six instructions, the ret through the IBL */
	assert_int_equal(xlat_translate(user, &s1, 0x401000, &b), BT_OK);
	assert_int_equal(b.n_insns, 6);
	assert_true(refers_to_uibl(&b));
	/* stepped: the first instruction alone, then the ret alone, no IBL */
	assert_int_equal(xlat_translate(step, &s1, 0x401000, &b), BT_OK);
	assert_int_equal(b.refusal, XLAT_OK);
	assert_int_equal(b.n_insns, 1);
	assert_int_equal(b.guest_len, 3);
	assert_int_equal(b.exits[b.n_exits - 1].kind, XLAT_EXIT_FALL);
	assert_int_equal(b.exits[b.n_exits - 1].target, 0x401003);
	assert_int_equal(xlat_translate(step, &s1, 0x401000 + sizeof(straight) - 1, &b), BT_OK);
	assert_int_equal(b.n_insns, 1);
	assert_int_equal(b.exits[b.n_exits - 1].kind, XLAT_EXIT_RET);
	assert_false(refers_to_uibl(&b));

	/* a direct jump to another page: probed ordinarily, not stepped */
	assert_int_equal(xlat_translate(user, &s2, 0x401003, &b), BT_OK);
	assert_true(refers_to_uibl(&b));
	assert_int_equal(xlat_translate(step, &s2, 0x401003, &b), BT_OK);
	assert_int_equal(b.exits[b.n_exits - 1].kind, XLAT_EXIT_JMP);
	assert_int_equal(b.exits[b.n_exits - 1].target, 0x401008 + 0x2000);
	assert_false(refers_to_uibl(&b));
	xlat_destroy(user);
	xlat_destroy(step);
}

/* Copy one block to two other places in the cache: all copies run. */
static void test_relocatable(void **state)
{
	struct env *e = *state;
	memcpy(e->code, straight, sizeof(straight));
	struct xh_block *b;
	assert_int_equal(xh_block(&e->h, (gva_t)(uintptr_t)e->code, &b), XH_OK);
	uint8_t *pad, *copy1, *copy2;
	static const uint8_t junk[37] = {0xcc};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tc_cache_add(e->h.cache, junk, sizeof(junk), &pad), BT_OK);
		assert_int_equal(tc_cache_add(e->h.cache, b->rx, b->code_len, i ? &copy2 : &copy1),
				 BT_OK);
	}
	uint8_t *runs[3] = {b->rx, copy1, copy2};
	struct vcpu_abi *a = e->h.vcpu.abi;
	for (int i = 0; i < 3; i++) {
		set_stack(e);
		e->data[0] = 100 * (uint64_t)i;
		a->gpr[VCPU_RDI] = (uint64_t)(uintptr_t)e->data;
		a->gpr[VCPU_RSI] = 7;
		assert_int_equal(tc_run(&e->h.vcpu, runs[i]), TC_EXIT_BLOCK);
		assert_int_equal(VCPU_EXIT_KIND(a->exit_info), XLAT_EXIT_RET);
		assert_int_equal(a->exit_target, SENTINEL);
		assert_int_equal(a->gpr[VCPU_RAX], 100 * (uint64_t)i + 7);
		assert_int_equal(e->data[1], 100 * (uint64_t)i + 7);
	}
}

/* A faulting access leaves through TC_EXIT_FAULT; the pc map names the
 * instruction and the spilled registers give back the exact guest state. */
static void test_fault_pcmap(void **state)
{
	struct env *e = *state;
	/* mov r11, 0x1111; mov rax, [rdi]; (rdi points at fault page) ; ret */
	static const uint8_t code[] = {0x49, 0xc7, 0xc3, 0x11, 0x11, 0x00,
				       0x00, 0x48, 0x8b, 0x07, 0xc3};
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	struct vcpu_abi *a = e->h.vcpu.abi;
	uint8_t *fp = (uint8_t *)(e->data + 1024); /* third data page */
	e->h.fault_page = (gva_t)(uintptr_t)fp;
	a->gpr[VCPU_RDI] = (gva_t)(uintptr_t)fp + 8;
	a->gpr[VCPU_RAX] = 0x5555;
	for (int r = 0; r < 16; r++)
		a->spill[r] = 0;
	enum xh_result r = xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10);
	assert_int_equal(r, XH_FAULT);
	struct xh_block *b;
	assert_int_equal(xh_block(&e->h, (gva_t)(uintptr_t)e->code, &b), XH_OK);
	uint64_t hostpc = a->exit_host_pc;
	assert_true(hostpc > (uint64_t)(uintptr_t)b->rx &&
		    hostpc <= (uint64_t)(uintptr_t)b->rx + b->code_len);
	gva_t rip;
	uint32_t spilled;
	uint32_t off = (uint32_t)(hostpc - (uint64_t)(uintptr_t)b->rx - 1);
	assert_int_equal(xlat_pcmap_lookup(b->pcmap, b->pcmap_len, b->start, off, &rip, &spilled),
			 BT_OK);
	assert_int_equal(rip, (gva_t)(uintptr_t)e->code + 7);
	assert_true(spilled & (1u << VCPU_R11));
	tc_restore_spills(&e->h.vcpu, rip, spilled);
	assert_int_equal(a->gpr[VCPU_R11], 0x1111);
	assert_int_equal(a->gpr[VCPU_RAX], 0x5555);
	assert_int_equal(a->gpr[VCPU_RDI], (gva_t)(uintptr_t)fp + 8);
	assert_int_equal(a->rip, (gva_t)(uintptr_t)e->code + 7);
	/* malformed maps are rejected, not trusted */
	static const uint8_t bad[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
	assert_int_equal(xlat_pcmap_lookup(bad, sizeof(bad), 0, 0, &rip, &spilled), BT_ERR_FORMAT);
}

/* cpuid ends the block with a PRIV exit naming it. */
static void test_priv_exit(void **state)
{
	struct env *e = *state;
	static const uint8_t code[] = {0x48, 0x89, 0xc1, 0x0f, 0xa2, 0xc3};
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	e->h.vcpu.abi->gpr[VCPU_RAX] = 77;
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_PRIV);
	assert_int_equal(e->h.last_rip, (gva_t)(uintptr_t)e->code + 3);
	assert_int_equal(e->h.vcpu.abi->gpr[VCPU_RCX], 77);
	struct xh_block *b;
	assert_int_equal(xh_block(&e->h, (gva_t)(uintptr_t)e->code, &b), XH_OK);
	assert_true(b->flags & XLAT_BLOCK_ENDS_PRIV);
}

/* Run code (whose block increments rax) for every interrupt-word value
 * with IF and REQ bits 0/1 and FORCE 0/1: it exits exactly when the word is
 * at least IF|REQ, before the increment. */
static void irq_sweep(struct env *e, const uint8_t *code, size_t len, bool check_spill)
{
	struct vcpu_abi *a = e->h.vcpu.abi;
	xh_reset(&e->h);
	memcpy(e->code, code, len);
	for (unsigned irq = 0; irq < 0x400; irq++) {
		if ((irq & 0xff) > 1)
			continue;
		set_stack(e);
		a->gpr[VCPU_RAX] = 5;
		a->irq = (uint16_t)irq;
		bool fire = irq >= (VCPU_IRQ_IF | VCPU_IRQ_REQ);
		assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10),
				 fire ? XH_IRQ : XH_OK);
		assert_int_equal(a->gpr[VCPU_RAX], fire ? 5 : 6);
		if (check_spill)
			assert_int_equal(a->gpr[VCPU_RCX] == a->spill[VCPU_RCX] || !fire, true);
	}
}

/* A pending interrupt with IF=1 exits at block entry, before any guest
 * instruction ran; with IF=0 (cli) it does not. */
static void test_irq_check(void **state)
{
	struct env *e = *state;
	static const uint8_t code[] = {0x48, 0xff, 0xc0, 0xc3}; /* inc rax; ret */
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	struct vcpu_abi *a = e->h.vcpu.abi;
	a->gpr[VCPU_RAX] = 1;
	a->irq = VCPU_IRQ_IF | VCPU_IRQ_REQ;
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_IRQ);
	assert_int_equal(e->h.last_rip, (gva_t)(uintptr_t)e->code);
	assert_int_equal(a->gpr[VCPU_RAX], 1);
	a->irq = VCPU_IRQ_REQ; /* IF=0 */
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_OK);
	assert_int_equal(a->gpr[VCPU_RAX], 2);
	a->irq = VCPU_IRQ_FORCE;
	set_stack(e);
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_IRQ);
	/* the same with flags dead at entry (cmp first): the cmp/jae form of
	 * the check instead of the flag-preserving one */
	static const uint8_t code2[] = {0x48, 0x39, 0xc0, 0x48, 0xff, 0xc0, 0xc3};
	irq_sweep(e, code2, sizeof(code2), false);
	/* and every interrupt-word value through the flag-preserving form */
	irq_sweep(e, code, sizeof(code), true);
}

/* cli/sti/pushf/popf act on the virtual IF; popf never reaches host IF/TF. */
static void test_virtual_if(void **state)
{
	struct env *e = *state;
	/* cli; pushfq; pop rbx; sti; nop; push 0x100 (TF); popfq; pushfq; pop rcx; ret */
	static const uint8_t code[] = {0xfa, 0x9c, 0x5b, 0xfb, 0x90, 0x68, 0x00,
				       0x01, 0x00, 0x00, 0x9d, 0x9c, 0x59, 0xc3};
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	struct vcpu_abi *a = e->h.vcpu.abi;
	a->irq = VCPU_IRQ_IF;
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 20), XH_OK);
	assert_int_equal(a->gpr[VCPU_RBX] & 0x200, 0); /* IF was 0 after cli */
	assert_int_equal(a->gpr[VCPU_RCX] & 0x300, 0); /* popf cleared IF, TF never set */
	assert_int_equal(a->irq & 0xff, 0);
}

/* Flags live through a conditional flag writer (the review's case): `clc;
 * inc byte [rdi]; repe cmpsw` with RCX = 0 changes no flag in cmpsw, so CF
 * is the clc's 0 and the rest are inc's.  Liveness used to count cmpsw as
 * overwriting every flag, dropped the flags save around inc's soft-MMU
 * probe and returned the probe's CF (rflags native 0x14, translated 0x15).
 * The same with `repne scasb` and `shl eax, cl` (CL = 0). */
static void test_flags_conditional_writers(void **state)
{
	struct env *e = *state;
	static const uint8_t cmpsw[] = {0xf8, 0xfe, 0x07, 0x66, 0xf3, 0xa7, 0xc3};
	static const uint8_t scasb[] = {0xf8, 0xfe, 0x07, 0xf2, 0xae, 0xc3};
	static const uint8_t shlcl[] = {0xf8, 0xfe, 0x07, 0xd3, 0xe0, 0xc3};
	const uint8_t *codes[] = {cmpsw, scasb, shlcl};
	const size_t lens[] = {sizeof(cmpsw), sizeof(scasb), sizeof(shlcl)};
	struct vcpu_abi *a = e->h.vcpu.abi;
	for (int c = 0; c < 3; c++) {
		xh_reset(&e->h);
		memcpy(e->code, codes[c], lens[c]);
		/* twice: cold TLB (slow path) then warm (probe hit) */
		for (int run = 0; run < 2; run++) {
			set_stack(e);
			uint8_t *bytes = (uint8_t *)e->data;
			bytes[0] = 0x0f; /* inc -> 0x10: AF=1, PF=0, ZF=SF=OF=0 */
			a->gpr[VCPU_RDI] = (uint64_t)(uintptr_t)e->data;
			a->gpr[VCPU_RSI] = (uint64_t)(uintptr_t)e->data + 64;
			a->gpr[VCPU_RCX] = 0;
			a->gpr[VCPU_RAX] = 0xabcd;
			a->rflags = 0x2 | 0x8d5; /* CF and everything else set on entry */
			assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10),
					 XH_OK);
			assert_int_equal(a->rflags & 0x8d5, 0x10);
			assert_int_equal(bytes[0], 0x10);
			assert_int_equal(a->gpr[VCPU_RCX], 0);
			assert_int_equal(a->gpr[VCPU_RDI], (uint64_t)(uintptr_t)e->data);
		}
	}
}

/* The refusal list (xlat_facts.c): what the vCPU's CPUID does not advertise
 * is refused at the block start and ends a block elsewhere. */
struct bytes_src {
	const uint8_t *p;
	size_t n;
};

static size_t read_bytes(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct bytes_src *s = opaque;
	gva_t base = 0xffffffff81000000ull;
	if (va < base || va >= base + s->n)
		return 0;
	size_t n = BT_MIN(len, (size_t)(base + s->n - va));
	memcpy(buf, s->p + (va - base), n);
	return n;
}

static void translate_bytes(struct xlat_ctx *c, const uint8_t *p, size_t n, struct bt_block *b)
{
	struct bytes_src s = {p, n};
	struct xlat_source src = {.read = read_bytes, .opaque = &s};
	assert_int_equal(xlat_translate(c, &src, 0xffffffff81000000ull, b), BT_OK);
}

static void test_not_advertised(void **state)
{
	(void)state;
	static const struct {
		uint8_t b[8];
		uint8_t n;
		bool ok;
	} cases[] = {
	    {{0xc5, 0xfd, 0xef, 0xc0}, 4, false},	      /* vpxor ymm0 (VEX.256, AVX2) */
	    {{0xc5, 0xf9, 0xef, 0xc0}, 4, false},	      /* vpxor xmm0 (VEX.128, AVX) */
	    {{0xc5, 0xf8, 0x77}, 3, false},		      /* vzeroupper */
	    {{0x62, 0xf1, 0x7d, 0x48, 0xef, 0xc0}, 6, false}, /* vpxord zmm0 (EVEX) */
	    {{0xc4, 0xe2, 0x78, 0xf2, 0xc1}, 5, false},	      /* andn (BMI1) */
	    {{0xc4, 0xe2, 0xf3, 0xf7, 0xc0}, 5, false},	      /* shlx (BMI2) */
	    {{0x66, 0x0f, 0x38, 0xf6, 0xc1}, 5, false},	      /* adcx (ADX) */
	    {{0x0f, 0xc7, 0xf0}, 3, false},		      /* rdrand eax */
	    {{0x0f, 0x38, 0xf0, 0x07}, 4, false},	      /* movbe eax, [rdi] */
	    {{0x66, 0x0f, 0x3a, 0x44, 0xc0, 0x00}, 6, false}, /* pclmulqdq */
	    {{0x66, 0x0f, 0xae, 0x38}, 4, false},	      /* clflushopt [rax] */
	    {{0x66, 0x0f, 0xef, 0xc0}, 4, true},	      /* pxor xmm0 (SSE2) */
	    {{0xf3, 0x0f, 0xb8, 0xc1}, 4, true},	      /* popcnt (SSE4.2 era) */
	    {{0xf3, 0x0f, 0x1e, 0xfa}, 4, true},	      /* endbr64 (NOP without CET) */
	    {{0xf3, 0x48, 0x0f, 0xbc, 0xc1}, 5, true},	      /* tzcnt = rep bsf */
	    {{0x0f, 0xae, 0x38}, 3, true},		      /* clflush [rax] */
	    {{0x0f, 0xae, 0x27}, 3, false},		      /* xsave [rdi] (no XSAVE) */
	    {{0x0f, 0x01, 0xd0}, 3, false},		      /* xgetbv */
	    {{0x0f, 0x01, 0xc8}, 3, false},		      /* monitor */
	    {{0x0f, 0x01, 0xee}, 3, false},		      /* rdpkru (no PKU) */
	    {{0x66, 0x0f, 0x38, 0x82, 0x07}, 5, false},	      /* invpcid */
	    {{0xc7, 0xf8, 0, 0, 0, 0}, 6, false},	      /* xbegin (no RTM) */
	    {{0xf3, 0x0f, 0x1b, 0x07}, 4, true},	      /* bndmk = NOP (no MPX) */
	    {{0xf3, 0x48, 0x0f, 0x1e, 0xc8}, 5, true},	      /* rdsspq = NOP (no CET) */
	};
	struct xlat_ctx *c;
	struct bt_block b;
	assert_int_equal(xlat_create(NULL, &c), BT_OK);
	for (size_t i = 0; i < BT_ARRAY_SIZE(cases); i++) {
		uint8_t buf[16];
		memcpy(buf, cases[i].b, cases[i].n);
		buf[cases[i].n] = 0xc3;
		translate_bytes(c, buf, cases[i].n + 1u, &b);
		assert_int_equal(b.refusal, cases[i].ok ? XLAT_OK : XLAT_REFUSE_NOT_ADVERTISED);
		if (!cases[i].ok) {
			assert_int_equal(b.refusal_addr, 0xffffffff81000000ull);
			/* after another instruction: the block ends before it */
			buf[0] = 0x90;
			memcpy(buf + 1, cases[i].b, cases[i].n);
			translate_bytes(c, buf, cases[i].n + 1u, &b);
			assert_int_equal(b.refusal, XLAT_OK);
			assert_int_equal(b.n_insns, 1);
		}
	}
	assert_string_equal(xlat_refusal_str(XLAT_REFUSE_NOT_ADVERTISED), "not-advertised");
	xlat_destroy(c);
}

/* An instruction cut short by the end of what can be read (its next page is
 * not present) is NOBYTES at the first missing byte, where the CPU's fetch
 * faults -- not UNDECODABLE (#UD); after another instruction it ends the
 * block; bytes that are wrong whatever follows stay UNDECODABLE. */
static void test_cut_instruction(void **state)
{
	(void)state;
	const gva_t base = 0xffffffff81000000ull;
	struct xlat_ctx *c;
	struct bt_block b;
	assert_int_equal(xlat_create(NULL, &c), BT_OK);
	static const uint8_t mov_ecx[] = {0xb9, 0x00, 0x00}; /* mov $imm32, %ecx, 3 of 5 */
	translate_bytes(c, mov_ecx, sizeof(mov_ecx), &b);
	assert_int_equal(b.refusal, XLAT_REFUSE_NOBYTES);
	assert_int_equal(b.refusal_addr, base + 3);
	static const uint8_t nop_mov[] = {0x90, 0xb9}; /* nop; the opcode byte alone */
	translate_bytes(c, nop_mov, sizeof(nop_mov), &b);
	assert_int_equal(b.refusal, XLAT_OK);
	assert_int_equal(b.n_insns, 1);
	static const uint8_t ud[] = {0x0f, 0xff}; /* ud0 without its ModRM: still cut */
	translate_bytes(c, ud, sizeof(ud), &b);
	assert_int_equal(b.refusal, XLAT_REFUSE_NOBYTES);
	static const uint8_t bad[] = {0x06, 0x90}; /* push es: invalid in 64-bit mode */
	translate_bytes(c, bad, sizeof(bad), &b);
	assert_int_equal(b.refusal, XLAT_REFUSE_UNDECODABLE);
	assert_int_equal(b.refusal_addr, base);
	xlat_destroy(c);
}

/* The instruction fact table (pretrans/xlat/xlat_facts.h): kind, CPUID,
 * FPU/SIMD state, and the vCPU's decoder modes. */
static void test_fact_table(void **state)
{
	(void)state;
	static const struct {
		uint8_t b[8];
		uint8_t n;
		enum xlat_kind kind;
		enum xlat_adv adv;
		bool fpu;
		ZydisMnemonic m; /* as the vCPU decodes it */
	} cases[] = {
	    {{0x01, 0xd8}, 2, XLAT_KIND_PLAIN, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_ADD},
	    {{0x0f, 0x58, 0xc1}, 3, XLAT_KIND_PLAIN, XLAT_ADV_YES, true, ZYDIS_MNEMONIC_ADDPS},
	    {{0xd9, 0xe8}, 2, XLAT_KIND_PLAIN, XLAT_ADV_YES, true, ZYDIS_MNEMONIC_FLD1},
	    {{0xc5, 0xfd, 0xef, 0xc0}, 4, XLAT_KIND_PLAIN, XLAT_ADV_NO, true, ZYDIS_MNEMONIC_VPXOR},
	    {{0x0f, 0xc7, 0xf0}, 3, XLAT_KIND_PLAIN, XLAT_ADV_NO, false, ZYDIS_MNEMONIC_RDRAND},
	    {{0xc7, 0xf8, 0, 0, 0, 0},
	     6,
	     XLAT_KIND_PLAIN,
	     XLAT_ADV_NO,
	     false,
	     ZYDIS_MNEMONIC_XBEGIN},
	    {{0xfa}, 1, XLAT_KIND_INLINE, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_CLI},
	    {{0x8c, 0xd8}, 2, XLAT_KIND_INLINE, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_MOV},
	    {{0x8e, 0xd8}, 2, XLAT_KIND_PRIV, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_MOV},
	    {{0x0f, 0xa2}, 2, XLAT_KIND_PRIV, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_CPUID},
	    {{0x0f, 0xae, 0x07}, 3, XLAT_KIND_PRIV, XLAT_ADV_YES, true, ZYDIS_MNEMONIC_FXSAVE},
	    {{0x0f, 0xae, 0x27}, 3, XLAT_KIND_PRIV, XLAT_ADV_NO, true, ZYDIS_MNEMONIC_XSAVE},
	    {{0xf3, 0x48, 0x0f, 0xae, 0xc0},
	     5,
	     XLAT_KIND_PRIV,
	     XLAT_ADV_CONFIG,
	     false,
	     ZYDIS_MNEMONIC_RDFSBASE},
	    {{0x0f, 0x22, 0xd8}, 3, XLAT_KIND_PRIV, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_MOV},
	    {{0xc8, 8, 0, 0}, 4, XLAT_KIND_UNCOVERED, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_ENTER},
	    {{0xf3, 0x48, 0x0f, 0xbc, 0xc1},
	     5,
	     XLAT_KIND_PLAIN,
	     XLAT_ADV_YES,
	     false,
	     ZYDIS_MNEMONIC_BSF},
	    {{0xf3, 0x0f, 0x1b, 0x07}, 4, XLAT_KIND_PLAIN, XLAT_ADV_YES, false, ZYDIS_MNEMONIC_NOP},
	    {{0xf3, 0x48, 0x0f, 0x1e, 0xc8},
	     5,
	     XLAT_KIND_PLAIN,
	     XLAT_ADV_YES,
	     false,
	     ZYDIS_MNEMONIC_NOP},
	};
	ZydisDecoder dec;
	assert_true(xlat_decoder_init(&dec, ZYDIS_MACHINE_MODE_LONG_64));
	for (size_t i = 0; i < BT_ARRAY_SIZE(cases); i++) {
		ZydisDecodedInstruction d;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		assert_true(
		    ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, cases[i].b, cases[i].n, &d, ops)));
		assert_int_equal(d.mnemonic, cases[i].m);
		struct xlat_facts f = xlat_insn_facts(&d, ops);
		assert_int_equal(f.kind, cases[i].kind);
		assert_int_equal(f.adv, cases[i].adv);
		assert_int_equal(f.fpu, cases[i].fpu);
	}
}

/* rdtsc in kernel code runs inline (XC_RDTSC): EDX:EAX = host TSC +
 * vcpu.tsc_offset, upper halves of RAX/RDX cleared, flags untouched, no
 * PRIV exit. */
static void test_rdtsc_inline(void **state)
{
	struct env *e = *state;
	/* stc; rdtsc; setc cl; ret */
	static const uint8_t code[] = {0xf9, 0x0f, 0x31, 0x0f, 0x92, 0xc1, 0xc3};
	struct vcpu_abi *a = e->h.vcpu.abi;
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	const int64_t off = 1ll << 40;
	a->tsc_offset = off;
	a->gpr[VCPU_RAX] = ~0ull;
	a->gpr[VCPU_RDX] = ~0ull;
	a->gpr[VCPU_RCX] = 0;
	uint64_t t0 = __builtin_ia32_rdtsc();
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_OK);
	uint64_t t1 = __builtin_ia32_rdtsc();
	assert_true(a->gpr[VCPU_RAX] <= 0xffffffffull && a->gpr[VCPU_RDX] <= 0xffffffffull);
	uint64_t guest = a->gpr[VCPU_RAX] | (a->gpr[VCPU_RDX] << 32);
	assert_true(guest >= t0 + (uint64_t)off && guest <= t1 + (uint64_t)off);
	assert_int_equal(a->gpr[VCPU_RCX] & 0xff, 1); /* CF survived */
	struct xh_block *b;
	assert_int_equal(xh_block(&e->h, (gva_t)(uintptr_t)e->code, &b), XH_OK);
	assert_false(b->flags & XLAT_BLOCK_ENDS_PRIV);
}

/* mov reg, sreg runs inline from vcpu.sel[] (XC_SEGREAD): 16-bit
 * destinations keep their upper bits, 32/64-bit ones are zero-extended;
 * no PRIV exit. */
static void test_segment_reads(void **state)
{
	struct env *e = *state;
	/* mov %es,%eax; mov %ds,%bx; mov %fs,%rcx; mov %gs,%r9; mov %ss,%edx;
	 * mov %cs,%esi; ret */
	static const uint8_t code[] = {0x8c, 0xc0, 0x66, 0x8c, 0xdb, 0x48, 0x8c, 0xe1,
				       0x49, 0x8c, 0xe9, 0x8c, 0xd2, 0x8c, 0xce, 0xc3};
	struct vcpu_abi *a = e->h.vcpu.abi;
	memcpy(e->code, code, sizeof(code));
	set_stack(e);
	static const uint16_t sel[6] = {0x2b, 0x10, 0x18, 0x2b, 0x63, 0x7b}; /* ES CS SS DS FS GS */
	memcpy(a->sel, sel, sizeof(sel));
	a->gpr[VCPU_RAX] = ~0ull;
	a->gpr[VCPU_RBX] = 0x1111222233334444ull;
	a->gpr[VCPU_RCX] = ~0ull;
	a->gpr[VCPU_R9] = ~0ull;
	a->gpr[VCPU_RDX] = ~0ull;
	a->gpr[VCPU_RSI] = ~0ull;
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_OK);
	assert_int_equal(a->gpr[VCPU_RAX], 0x2b);
	assert_int_equal(a->gpr[VCPU_RBX], 0x111122223333002bull);
	assert_int_equal(a->gpr[VCPU_RCX], 0x63);
	assert_int_equal(a->gpr[VCPU_R9], 0x7b);
	assert_int_equal(a->gpr[VCPU_RDX], 0x18);
	assert_int_equal(a->gpr[VCPU_RSI], 0x10);
	struct xh_block *b;
	assert_int_equal(xh_block(&e->h, (gva_t)(uintptr_t)e->code, &b), XH_OK);
	assert_false(b->flags & XLAT_BLOCK_ENDS_PRIV);
	/* a segment load (mov %eax,%ds) is still a PRIV exit */
	static const uint8_t load[] = {0x8e, 0xd8, 0xc3};
	xh_reset(&e->h);
	memcpy(e->code, load, sizeof(load));
	set_stack(e);
	assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_PRIV);
}

/* F3 0F BC runs as bsf, as on a CPU without BMI1: a zero source leaves the
 * destination and sets ZF (tzcnt would give 64 and CF=1). */
static void test_tzcnt_is_bsf(void **state)
{
	struct env *e = *state;
	/* rep bsf rax, rcx; rep bsf rdx, [rdi]; ret */
	static const uint8_t code[] = {0xf3, 0x48, 0x0f, 0xbc, 0xc1, 0xf3,
				       0x48, 0x0f, 0xbc, 0x17, 0xc3};
	memcpy(e->code, code, sizeof(code));
	struct vcpu_abi *a = e->h.vcpu.abi;
	for (int run = 0; run < 2; run++) {
		set_stack(e);
		e->data[0] = run ? 0x100 : 0;
		a->gpr[VCPU_RDI] = (uint64_t)(uintptr_t)e->data;
		a->gpr[VCPU_RCX] = run ? 8 : 0;
		a->gpr[VCPU_RAX] = 0x1234;
		a->gpr[VCPU_RDX] = 0x5678;
		a->rflags = 0x2;
		assert_int_equal(xh_run(&e->h, (gva_t)(uintptr_t)e->code, SENTINEL, 10), XH_OK);
		assert_int_equal(a->gpr[VCPU_RAX], run ? 3 : 0x1234);
		assert_int_equal(a->gpr[VCPU_RDX], run ? 8 : 0x5678);
		assert_int_equal(a->rflags & 0x41, run ? 0 : 0x40); /* ZF, never CF */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_straight_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_swapgs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_index_reuse, setup, teardown),
	    cmocka_unit_test(test_count_probes),
	    cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_encoder_memo),
	    cmocka_unit_test(test_undef_flags),
	    cmocka_unit_test(test_code_categories),
	    cmocka_unit_test_setup_teardown(test_relocatable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fault_pcmap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_priv_exit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_irq_check, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_virtual_if, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_conditional_writers, setup, teardown),
	    cmocka_unit_test(test_not_advertised),
	    cmocka_unit_test(test_fact_table),
	    cmocka_unit_test(test_step_option),
	    cmocka_unit_test_setup_teardown(test_tzcnt_is_bsf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_segment_reads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rdtsc_inline, setup, teardown),
	    cmocka_unit_test(test_cut_instruction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
