/*
 * Unit tests for pretrans/discover on a real gcc-built ELF (this test
 * program): the plan holds exactly the sized function symbols of executable
 * sections, the walk of a function stays inside it, accounts for every one
 * of its bytes (translated or refused), and is deterministic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pretrans/base/log.h"
#include "pretrans/discover.h"
#include "pretrans/xcheck/xcheck.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A function with a loop and calls, so it has several blocks. */
__attribute__((noinline)) int discover_probe(int n);
__attribute__((noinline)) int discover_probe(int n)
{
	int s = 0;
	for (int i = 0; i < n; i++)
		s += (i & 1) ? i * 3 : (int)strlen("abc") + i;
	if (s > 1000)
		printf("%d\n", s);
	return s;
}

static struct elfimg *img;
static struct discover_plan *plan;

static int setup(void **state)
{
	if (elfimg_open("/proc/self/exe", &img) != BT_OK)
		return -1;
	return discover_plan(img, &plan) == BT_OK ? 0 : -1;
}

static int teardown(void **state)
{
	discover_plan_free(plan);
	elfimg_close(img);
	return 0;
}

static const struct discover_func *find(const char *name)
{
	for (size_t i = 0; i < plan->n; i++)
		if (plan->f[i].name && !strcmp(plan->f[i].name, name))
			return &plan->f[i];
	return NULL;
}

static void test_plan_matches_symbols(void **state)
{
	size_t sized = 0;
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *s = &img->syms[i];
		if (s->type != STT_FUNC || !s->size || s->shndx == SHN_UNDEF)
			continue;
		const struct discover_func *f = NULL;
		for (size_t j = 0; j < plan->n; j++)
			if (plan->f[j].start == s->addr && plan->f[j].kind == DISCOVER_FUNC)
				f = &plan->f[j];
		assert_non_null(f);
		assert_true(f->end - f->start >= s->size);
		sized++;
	}
	assert_true(sized > 5);
	size_t funcs = 0;
	for (size_t i = 0; i < plan->n; i++) {
		const struct discover_func *f = &plan->f[i];
		const struct elfimg_code *c = elfimg_code_at(img, f->start);
		assert_non_null(c); /* every region is in an executable section */
		assert_true(f->end <= c->end);
		if (i)
			assert_true(plan->f[i - 1].start <= f->start); /* sorted */
		funcs += f->kind == DISCOVER_FUNC;
	}
	assert_int_equal(funcs + plan->n_alias_syms, sized);
	const struct discover_func *p = find("discover_probe");
	assert_non_null(p);
	assert_int_equal(p->kind, DISCOVER_FUNC);
	assert_string_equal(p->sec->name, ".text");
}

static void walk(const struct discover_func *f, struct discover_result *r)
{
	struct xlat_options xo = {.flags = XLAT_OPT_CROSSCHECK, .checker = &xcheck_checker_ops};
	struct xlat_ctx *x;
	struct discover_walker *w;
	assert_int_equal(xlat_create(&xo, &x), BT_OK);
	assert_int_equal(discover_walker_create(&w), BT_OK);
	assert_int_equal(discover_walk(w, x, img, plan, f, r), BT_OK);
	discover_walker_destroy(w);
	xlat_destroy(x);
}

static void test_walk_accounts_for_every_byte(void **state)
{
	size_t checked = 0;
	for (size_t i = 0; i < plan->n; i++) {
		const struct discover_func *f = &plan->f[i];
		if (f->kind != DISCOVER_FUNC)
			continue;
		struct discover_result r = {0};
		walk(f, &r);
		uint64_t len = f->end - f->start;
		/* the sweep leaves no byte of the function unaccounted for */
		assert_int_equal(r.covered_bytes + r.refused_bytes, len);
		assert_true(r.n >= 1);
		bool at_start = false;
		for (size_t b = 0; b < r.n; b++) {
			/* no block starts outside the function (no data decoded) */
			assert_true(r.b[b].blk.guest_start >= f->start &&
				    r.b[b].blk.guest_start < f->end);
			assert_true(r.b[b].blk.guest_len > 0);
			at_start |= r.b[b].blk.guest_start == f->start;
			if (!r.b[b].blk.refusal) {
				assert_true(r.b[b].blk.code_len > 0);
				assert_true(r.b[b].code_off + r.b[b].blk.code_len <= r.data_len);
			}
		}
		assert_true(at_start);
		discover_result_fini(&r);
		checked++;
	}
	assert_true(checked > 5);
}

static void test_walk_is_deterministic(void **state)
{
	const struct discover_func *f = find("discover_probe");
	assert_non_null(f);
	struct discover_result a = {0}, b = {0};
	walk(f, &a);
	walk(f, &b);
	assert_int_equal(a.n, b.n);
	assert_int_equal(a.data_len, b.data_len);
	assert_memory_equal(a.b, b.b, a.n * sizeof(a.b[0]));
	assert_memory_equal(a.data, b.data, a.data_len);
	assert_true(a.bytes_hash == b.bytes_hash);
	assert_true(a.n > 1); /* a loop and calls: several blocks */
	discover_result_fini(&a);
	discover_result_fini(&b);
}

static void test_insn_len(void **state)
{
	const struct discover_func *f = find("discover_probe");
	assert_non_null(f);
	uint32_t l = discover_insn_len(img, f->start);
	assert_true(l >= 1 && l <= 15);
	assert_int_equal(discover_insn_len(img, 0x10), 0); /* not code */
}

/*
 * Jump-table recovery: a stripped program built here whose entry dispatches
 * through `jmp *table(,%rax,8)`.  Walked as one seed region (no gap sweep),
 * cases 1..3 can only be found through the table.  The plan also shows the
 * table's entries harvested as code pointers from data.
 */
static const char jt_src[] = ".text\n.globl _start\n_start:\n"
			     "  and $3, %rdi\n  mov %rdi, %rax\n  jmp *jt_table(,%rax,8)\n"
			     "c0: mov $10, %eax\n  ret\n"
			     "c1: mov $11, %eax\n  ret\n"
			     "c2: mov $12, %eax\n  ret\n"
			     "c3: mov $13, %eax\n  ret\n"
			     ".section .rodata\n.balign 8\n"
			     "jt_table: .quad c0, c1, c2, c3\n";

static void test_jump_table(void **state)
{
	char dir[] = "/tmp/test_discover.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], cmd[512];
	snprintf(path, sizeof(path), "%s/jt.S", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(jt_src, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -nostdlib -static -no-pie -o %s/jt %s && strip %s/jt", dir,
		 path, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/jt", dir);
	struct elfimg *ji;
	assert_int_equal(elfimg_open(path, &ji), BT_OK);
	struct discover_plan *jp;
	assert_int_equal(discover_plan(ji, &jp), BT_OK);
	/* stripped: the entry point, plus the four code pointers of the table
	 * (harvested from .rodata), all seeds */
	assert_int_equal(jp->n, 5);
	assert_int_equal(jp->n_data_ptrs, 4);
	for (size_t i = 0; i < jp->n; i++)
		assert_int_equal(jp->f[i].kind, DISCOVER_SEED);
	/* the table recovery itself: one unbounded region from the entry */
	const struct elfimg_code *code = elfimg_code_at(ji, ji->entry_va);
	assert_non_null(code);
	struct discover_func whole = {.name = "whole",
				      .start = ji->entry_va,
				      .end = code->end,
				      .sec = code->sec,
				      .kind = DISCOVER_SEED};
	struct xlat_options xo = {.flags = XLAT_OPT_CROSSCHECK, .checker = &xcheck_checker_ops};
	struct xlat_ctx *x;
	struct discover_walker *w;
	assert_int_equal(xlat_create(&xo, &x), BT_OK);
	assert_int_equal(discover_walker_create(&w), BT_OK);
	struct discover_result r = {0};
	assert_int_equal(discover_walk(w, x, ji, jp, &whole, &r), BT_OK);
	/* the four cases are "mov $1x, %eax" (b8 0a..0d 00 00 00) */
	int found = 0;
	for (size_t b = 0; b < r.n; b++) {
		uint8_t ins[2];
		struct xlat_source src;
		discover_source_from_elf(ji, &src);
		if (!r.b[b].blk.refusal &&
		    src.read(src.opaque, r.b[b].blk.guest_start, ins, 2) == 2 && ins[0] == 0xb8 &&
		    ins[1] >= 10 && ins[1] <= 13)
			found |= 1 << (ins[1] - 10);
	}
	assert_int_equal(found, 0xf);
	discover_result_fini(&r);
	discover_walker_destroy(w);
	xlat_destroy(x);
	discover_plan_free(jp);
	elfimg_close(ji);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The xlat_source over an image's code: the file's bytes, a read stops at
 * the end of its section, and outside code gives 0 bytes. */
static void test_source_from_elf(void **state)
{
	const struct elfimg_section *text = elfimg_section_by_name(img, ".text");
	assert_non_null(text);
	const struct elfimg_symbol *me = NULL;
	for (size_t i = 0; i < img->nsyms; i++)
		if (!strcmp(img->syms[i].name, "discover_probe"))
			me = &img->syms[i];
	assert_non_null(me);
	struct xlat_source src;
	discover_source_from_elf(img, &src);
	uint8_t buf[16];
	assert_int_equal(src.read(src.opaque, me->addr, buf, sizeof(buf)), sizeof(buf));
	assert_memory_equal(buf, img->map + text->offset + (me->addr - text->addr), sizeof(buf));
	assert_int_equal(src.read(src.opaque, text->addr + text->size - 3, buf, 16), 3);
	assert_int_equal(src.read(src.opaque, 0x10, buf, 16), 0);
}

int main(void)
{
	bt_log_to(fopen("/dev/null", "w"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plan_matches_symbols),
	    cmocka_unit_test(test_source_from_elf),
	    cmocka_unit_test(test_walk_accounts_for_every_byte),
	    cmocka_unit_test(test_walk_is_deterministic),
	    cmocka_unit_test(test_insn_len),
	    cmocka_unit_test(test_jump_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
