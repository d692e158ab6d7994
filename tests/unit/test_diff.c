/*
 * Unit tests for pretrans/diff on the real synthetic kernel pair built by
 * guests/diffpair (gcc, three variants of one source): exact classification
 * of every function for a source change and for a pure layout shift,
 * identical inputs, duplicate local names, malformed DWARF, the reuse
 * predicate, the line diff, and database inputs (a real sqlite file pointing
 * at the image, one from another translator version, one whose image
 * changed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "db/tcdb.h"
#include "pretrans/base/log.h"
#include "pretrans/diff/diff.h"
#include "pretrans/xlat/xlat.h"
#include "pretrans/xcheck/xcheck.h"
#include "tests/unit/test_config.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DP_DIR
#error "DP_DIR (the directory of the diffpair images) must be defined by the build"
#endif

struct pair {
	struct diff_side *old, *new;
	struct diff_result r;
};

static void load_pair(struct pair *p, const char *a, const char *b)
{
	assert_int_equal(diff_side_load(a, &p->old), BT_OK);
	assert_int_equal(diff_side_load(b, &p->new), BT_OK);
	assert_int_equal(diff_sides_prepare(p->old, p->new, 2), BT_OK);
	assert_int_equal(diff_compare(p->old, p->new, &p->r), BT_OK);
}

static void free_pair(struct pair *p)
{
	diff_result_fini(&p->r);
	diff_side_free(p->old);
	diff_side_free(p->new);
}

static const struct diff_entry *find(const struct diff_result *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct diff_func *f = r->e[i].new ? r->e[i].new : r->e[i].old;
		if (!strcmp(f->key, key))
			return &r->e[i];
	}
	return NULL;
}

static void expect(const struct diff_result *r, const char *key, enum diff_class c)
{
	const struct diff_entry *e = find(r, key);
	if (!e)
		fail_msg("no entry for %s", key);
	if (e->cls != c)
		fail_msg("%s: expected %s, got %s", key, diff_class_str(c), diff_class_str(e->cls));
}

static void test_change_pair(void **state)
{
	struct pair p;
	load_pair(&p, DP_DIR "/base.elf", DP_DIR "/change.elf");
	assert_int_equal(p.old->n, 11);
	assert_int_equal(p.new->n, 11);
	expect(&p.r, "checksum", DIFF_CHANGED);
	expect(&p.r, "old_func", DIFF_REMOVED);
	expect(&p.r, "new_func", DIFF_ADDED);
	expect(&p.r, "util_renamed", DIFF_RENAMED);
	assert_string_equal(find(&p.r, "util_renamed")->old->key, "util_name");
	/* everything else is unchanged up to addresses */
	static const char *const same[] = {"add3",
					   "log_msg",
					   "classify",
					   "fib",
					   "start",
					   "b_entry",
					   "helper@diffpair_a.c",
					   "helper@diffpair_b.c"};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		const struct diff_entry *e = find(&p.r, same[i]);
		assert_non_null(e);
		assert_true(e->cls == DIFF_IDENTICAL || e->cls == DIFF_MOVED);
		assert_true(diff_entry_reusable(e));
	}
	assert_int_equal(p.r.n, 12);
	assert_int_equal(p.r.count[DIFF_CHANGED], 1);
	assert_int_equal(p.r.count[DIFF_ADDED], 1);
	assert_int_equal(p.r.count[DIFF_REMOVED], 1);
	assert_int_equal(p.r.count[DIFF_RENAMED], 1);
	assert_false(diff_entry_reusable(find(&p.r, "checksum")));
	assert_false(diff_entry_reusable(find(&p.r, "new_func")));
	assert_true(diff_entry_reusable(find(&p.r, "util_renamed")));
	free_pair(&p);
}

static void test_shift_pair(void **state)
{
	struct pair p;
	load_pair(&p, DP_DIR "/base.elf", DP_DIR "/shift.elf");
	assert_int_equal(p.r.n, 11);
	assert_int_equal(p.r.count[DIFF_CHANGED], 0);
	assert_int_equal(p.r.count[DIFF_ADDED] + p.r.count[DIFF_REMOVED], 0);
	assert_int_equal(p.r.count[DIFF_RENAMED], 0);
	/* every address moved: a naive objdump | diff flags everything */
	assert_int_equal(p.r.naive_flagged, 11);
	/* functions that reference data or strings have different bytes */
	expect(&p.r, "log_msg", DIFF_MOVED);
	expect(&p.r, "start", DIFF_MOVED);
	expect(&p.r, "b_entry", DIFF_MOVED);
	expect(&p.r, "classify", DIFF_MOVED); /* jump table in .rodata */
	expect(&p.r, "add3", DIFF_IDENTICAL);
	/* the normalised listings of a moved function are equal line by line */
	const struct diff_entry *e = find(&p.r, "start");
	assert_true(e->old->addr != e->new->addr);
	char **a, **b;
	size_t na, nb;
	assert_int_equal(diff_func_listing(p.old, e->old, &a, &na), BT_OK);
	assert_int_equal(diff_func_listing(p.new, e->new, &b, &nb), BT_OK);
	assert_int_equal(na, nb);
	int saw_str = 0, saw_sym = 0;
	for (size_t i = 0; i < na; i++) {
		assert_string_equal(a[i], b[i]);
		saw_str |= strstr(a[i], "str:\"diffpair start\\n\"") != NULL;
		saw_sym |= strstr(a[i], "call classify+0x0") != NULL;
	}
	assert_true(saw_str);
	assert_true(saw_sym);
	free(a);
	free(b);
	free_pair(&p);
}

static void test_identical_inputs(void **state)
{
	struct pair p;
	load_pair(&p, DP_DIR "/change.elf", DP_DIR "/change.elf");
	assert_int_equal(p.r.count[DIFF_IDENTICAL], p.r.n);
	assert_int_equal(p.r.naive_flagged, 0);
	free_pair(&p);
}

static void test_duplicate_locals(void **state)
{
	struct pair p;
	load_pair(&p, DP_DIR "/base.elf", DP_DIR "/shift.elf");
	const struct diff_entry *a = find(&p.r, "helper@diffpair_a.c");
	const struct diff_entry *b = find(&p.r, "helper@diffpair_b.c");
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->old->name, "helper");
	/* files come from DWARF (the images are built with -g) */
	assert_true(p.old->files_from_dwarf);
	assert_string_equal(a->old->file, "guests/diffpair/diffpair_a.c");
	assert_string_equal(b->new->file, "guests/diffpair/diffpair_b.c");
	assert_string_equal(find(&p.r, "start")->new->file, "guests/diffpair/diffpair_a.c");
	assert_true(a->old->norm_hash != b->old->norm_hash); /* x*3+1 vs x*5-2 */
	assert_null(find(&p.r, "helper"));
	free_pair(&p);
}

/* The translations of functions that only moved are equal once normalised
 * (the reuse argument); those of a changed function differ. */
static void test_xlat_listings(void **state)
{
	struct pair p;
	load_pair(&p, DP_DIR "/base.elf", DP_DIR "/shift.elf");
	struct xlat_ctx *ctx;
	struct xlat_options opts = {.flags = XLAT_OPT_CROSSCHECK, .checker = &xcheck_checker_ops};
	assert_int_equal(xlat_create(&opts, &ctx), BT_OK);
	size_t compared = 0;
	for (size_t i = 0; i < p.r.n; i++) {
		const struct diff_entry *e = &p.r.e[i];
		char **a, **b;
		size_t na, nb;
		assert_int_equal(diff_func_xlat_listing(p.old, e->old, ctx, &a, &na), BT_OK);
		assert_int_equal(diff_func_xlat_listing(p.new, e->new, ctx, &b, &nb), BT_OK);
		assert_true(na > 1);
		assert_int_equal(na, nb);
		for (size_t k = 0; k < na; k++)
			assert_string_equal(a[k], b[k]);
		assert_non_null(strstr(a[0], "block self+0x0"));
		free(a);
		free(b);
		compared++;
	}
	assert_int_equal(compared, 11);
	free_pair(&p);

	load_pair(&p, DP_DIR "/base.elf", DP_DIR "/change.elf");
	const struct diff_entry *e = find(&p.r, "checksum");
	char **a, **b;
	size_t na, nb;
	assert_int_equal(diff_func_xlat_listing(p.old, e->old, ctx, &a, &na), BT_OK);
	assert_int_equal(diff_func_xlat_listing(p.new, e->new, ctx, &b, &nb), BT_OK);
	int differ = na != nb;
	for (size_t k = 0; k < na && k < nb; k++)
		differ |= strcmp(a[k], b[k]) != 0;
	assert_true(differ);
	free(a);
	free(b);
	free_pair(&p);
	xlat_destroy(ctx);
}

/* Relocatable modules (ld -r of the same objects): relocated fields are
 * masked, the classification is the same as for the linked images. */
static void test_ko_pairs(void **state)
{
	struct pair p;
	load_pair(&p, DP_DIR "/base.ko", DP_DIR "/change.ko");
	assert_true(p.old->rel);
	assert_true(p.old->nrelocs > 10);
	expect(&p.r, "checksum", DIFF_CHANGED);
	expect(&p.r, "old_func", DIFF_REMOVED);
	expect(&p.r, "new_func", DIFF_ADDED);
	expect(&p.r, "util_renamed", DIFF_RENAMED);
	assert_int_equal(p.r.count[DIFF_IDENTICAL] + p.r.count[DIFF_MOVED], 8);
	free_pair(&p);

	load_pair(&p, DP_DIR "/base.ko", DP_DIR "/shift.ko");
	assert_int_equal(p.r.count[DIFF_IDENTICAL] + p.r.count[DIFF_MOVED], 11);
	assert_int_equal(p.r.naive_flagged, 11); /* every function moved in .text */
	/* a call through a relocation prints its symbol */
	const struct diff_entry *e = find(&p.r, "start");
	char **a;
	size_t na;
	assert_int_equal(diff_func_listing(p.new, e->new, &a, &na), BT_OK);
	int saw = 0;
	for (size_t i = 0; i < na; i++)
		saw |= !strcmp(a[i], "call log_msg+0x0");
	assert_true(saw);
	free(a);
	free_pair(&p);
}

/* Equal bytes are not "identical" when a relocation sends a call elsewhere:
 * f() calls g() in one object and h() in the other (both e8 00 00 00 00). */
static void test_equal_bytes_other_target(void **state)
{
	char dir[] = "/tmp/test_diff_rel.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && echo 'int g(void); int f(void) { return g() + 1; }' > a.c && "
		 "echo 'int h(void); int f(void) { return h() + 1; }' > b.c && "
		 "cc -O2 -fno-pic -fcf-protection=none -c a.c && "
		 "cc -O2 -fno-pic -fcf-protection=none -c b.c && cmp -s a.o b.o; "
		 "test $? -eq 1",
		 dir);
	assert_int_equal(system(cmd), 0);
	char a[128], b[128];
	snprintf(a, sizeof(a), "%s/a.o", dir);
	snprintf(b, sizeof(b), "%s/b.o", dir);
	struct pair p;
	load_pair(&p, a, b);
	const struct diff_entry *e = find(&p.r, "f");
	assert_non_null(e);
	assert_int_equal(e->old->size, e->new->size);
	assert_memory_equal(e->old->bytes, e->new->bytes, e->old->size);
	assert_int_equal(e->cls, DIFF_CHANGED);
	free_pair(&p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Keys do not depend on where file names come from: an image without its
 * DWARF (STT_FILE names only) matches the same image with it. */
static void test_keys_without_dwarf(void **state)
{
	char path[] = "/tmp/test_diff_nodbg.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "objcopy --remove-section='.debug_*' %s/base.elf %s", DP_DIR,
		 path);
	assert_int_equal(system(cmd), 0);
	struct pair p;
	load_pair(&p, DP_DIR "/base.elf", path);
	assert_true(p.old->files_from_dwarf);
	assert_false(p.new->files_from_dwarf);
	assert_int_equal(p.r.count[DIFF_IDENTICAL], p.r.n);
	const struct diff_entry *e = find(&p.r, "helper@diffpair_b.c");
	assert_non_null(e);
	assert_string_equal(e->new->file, "diffpair_b.c");
	free_pair(&p);
	unlink(path);
}

/* Malformed DWARF is refused with BT_ERR_FORMAT: base.elf whose first
 * .debug_aranges set claims 3-byte addresses. */
static void test_bad_dwarf(void **state)
{
	FILE *f = fopen(DP_DIR "/base.elf", "rb");
	assert_non_null(f);
	static uint8_t img[1 << 20];
	size_t n = fread(img, 1, sizeof(img), f);
	fclose(f);
	assert_true(n > sizeof(Elf64_Ehdr) && n < sizeof(img));
	Elf64_Ehdr eh;
	memcpy(&eh, img, sizeof(eh));
	Elf64_Shdr strs;
	memcpy(&strs, img + eh.e_shoff + (size_t)eh.e_shstrndx * sizeof(strs), sizeof(strs));
	size_t at = 0;
	for (unsigned i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, img + eh.e_shoff + (size_t)i * sizeof(sh), sizeof(sh));
		if (!strcmp((const char *)img + strs.sh_offset + sh.sh_name, ".debug_aranges"))
			at = sh.sh_offset + 10; /* length 4, version 2, CU offset 4 */
	}
	assert_true(at > 10 && at < n);
	assert_int_equal(img[at], 8);
	img[at] = 3;
	char path[] = "/tmp/test_diff_baddw.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, n), (ssize_t)n);
	close(fd);
	struct diff_side *s = NULL;
	assert_int_equal(diff_side_load(path, &s), BT_ERR_FORMAT);
	assert_null(s);
	unlink(path);
}

static void check_ops(char *const *a, size_t na, char *const *b, size_t nb, size_t want_edits)
{
	struct diff_op *ops;
	size_t n, ai = 0, bi = 0, edits = 0;
	assert_int_equal(diff_lines(a, na, b, nb, 100, &ops, &n), BT_OK);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].op == '=') {
			assert_int_equal(ops[i].ai, (int)ai++);
			assert_int_equal(ops[i].bi, (int)bi++);
			assert_string_equal(a[ops[i].ai], b[ops[i].bi]);
		} else if (ops[i].op == '-') {
			assert_int_equal(ops[i].ai, (int)ai++);
			edits++;
		} else {
			assert_int_equal(ops[i].op, '+');
			assert_int_equal(ops[i].bi, (int)bi++);
			edits++;
		}
	}
	assert_int_equal(ai, na);
	assert_int_equal(bi, nb);
	assert_int_equal(edits, want_edits);
	free(ops);
}

static void test_lines(void **state)
{
	char *a[] = {"a", "b", "c", "a", "b", "b", "a"};
	char *b[] = {"c", "b", "a", "b", "a", "c"};
	check_ops(a, 7, b, 6, 5); /* the classic Myers example: D = 5 */
	check_ops(a, 7, a, 7, 0);
	check_ops(a, 0, b, 6, 6);
	check_ops(a, 7, b, 0, 7);
	char *x[] = {"push rbp", "mov eax, 0x1", "ret"};
	char *y[] = {"push rbp", "mov eax, 0x2", "ret"};
	check_ops(x, 3, y, 3, 2);
	struct diff_op *ops;
	size_t n;
	assert_int_equal(diff_lines(a, 7, b, 6, 2, &ops, &n), BT_ERR_RANGE);
}

static void make_db(const char *out, const char *image, int foreign_version)
{
	struct diff_side *s;
	assert_int_equal(diff_side_load(image, &s), BT_OK);
	struct tcdb_image im = {.entry = s->img->entry, .arch = "x86_64"};
	snprintf(im.path, sizeof(im.path), "%s", image);
	sha256_hex(s->img->sha256, im.sha256);
	diff_side_free(s);
	struct xlat_options opts = {0};
	struct tcdb_provenance prov = {.xlat_version = XLAT_VERSION,
				       .abi_version = VCPU_ABI_VERSION,
				       .options_hash = xlat_options_hash(&opts),
				       .options_flags = opts.flags};
	if (foreign_version)
		prov.xlat_version += 1;
	struct tcdb *db;
	assert_int_equal(tcdb_create(out, &im, &prov, &db), BT_OK);
	assert_int_equal(tcdb_commit(db), BT_OK);
}

static void test_database_inputs(void **state)
{
	char dir[] = "/tmp/test_diff.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char good[128], foreign[128], stale[128], copy[128];
	snprintf(good, sizeof(good), "%s/good.tcdb", dir);
	snprintf(foreign, sizeof(foreign), "%s/foreign.tcdb", dir);
	snprintf(stale, sizeof(stale), "%s/stale.tcdb", dir);
	snprintf(copy, sizeof(copy), "%s/kernel.elf", dir);

	make_db(good, DP_DIR "/base.elf", 0);
	struct pair p;
	load_pair(&p, good, DP_DIR "/change.elf");
	assert_string_equal(p.old->db_path, good);
	assert_string_equal(p.old->image_path, DP_DIR "/base.elf");
	expect(&p.r, "checksum", DIFF_CHANGED);
	expect(&p.r, "util_renamed", DIFF_RENAMED);
	free_pair(&p);

	struct diff_side *s = NULL;
	make_db(foreign, DP_DIR "/base.elf", 1);
	assert_int_equal(diff_side_load(foreign, &s), BT_ERR_VERSION);

	/* a database whose image file was replaced afterwards */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp %s/base.elf %s", DP_DIR, copy);
	assert_int_equal(system(cmd), 0);
	make_db(stale, copy, 0);
	snprintf(cmd, sizeof(cmd), "cp %s/change.elf %s", DP_DIR, copy);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(diff_side_load(stale, &s), BT_ERR_VERSION);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_bad_images(void **state)
{
	struct diff_side *s = NULL;
	assert_int_not_equal(diff_side_load("/nonexistent/vmlinux", &s), BT_OK);
	assert_null(s);
	char dir[] = "/tmp/test_diff.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char txt[128], arm[128], cmd[512];
	snprintf(txt, sizeof(txt), "%s/notes.txt", dir);
	snprintf(arm, sizeof(arm), "%s/arm.elf", dir);
	FILE *f = fopen(txt, "w");
	assert_non_null(f);
	fputs("not an ELF file\n", f);
	fclose(f);
	assert_int_equal(diff_side_load(txt, &s), BT_ERR_FORMAT);
	/* the same image claiming to be AArch64 (e_machine = 183) */
	snprintf(cmd, sizeof(cmd),
		 "cp %s/base.elf %s && printf '\\267\\000' | dd of=%s bs=1 seek=18 "
		 "conv=notrunc status=none",
		 DP_DIR, arm, arm);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(diff_side_load(arm, &s), BT_ERR_UNSUPPORTED);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	test_private_config();
	bt_log_set(LOG_ALL, LOG_ERROR);
	bt_log_to(fopen("/dev/null", "w"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_change_pair),
	    cmocka_unit_test(test_shift_pair),
	    cmocka_unit_test(test_identical_inputs),
	    cmocka_unit_test(test_duplicate_locals),
	    cmocka_unit_test(test_lines),
	    cmocka_unit_test(test_database_inputs),
	    cmocka_unit_test(test_bad_images),
	    cmocka_unit_test(test_keys_without_dwarf),
	    cmocka_unit_test(test_bad_dwarf),
	    cmocka_unit_test(test_xlat_listings),
	    cmocka_unit_test(test_ko_pairs),
	    cmocka_unit_test(test_equal_bytes_other_target),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
