/*
 * Unit tests for pretrans/elf/elfimg (and the SHA-256 it uses): a real gcc-built
 * ELF (this test program, /proc/self/exe) loads with its sections, symbols,
 * build-id and code ranges; damaged copies of it (truncated, corrupt section
 * table, 32-bit, ARM, no code, not ELF) are refused with the right status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pretrans/base/log.h"
#include "pretrans/base/sha256.h"
#include "pretrans/elf/elfimg.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t *self_bytes(size_t *n)
{
	FILE *f = fopen("/proc/self/exe", "rb");
	assert_non_null(f);
	struct stat st;
	assert_int_equal(fstat(fileno(f), &st), 0);
	uint8_t *b = malloc((size_t)st.st_size);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*n = (size_t)st.st_size;
	return b;
}

static void test_sha256_vectors(void **state)
{
	uint8_t d[SHA256_LEN];
	char hex[65];
	sha256_buf("abc", 3, d);
	sha256_hex(d, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_buf("", 0, d);
	sha256_hex(d, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	struct sha256_ctx c;
	sha256_init(&c);
	for (const char *p = m; *p; p++) /* byte-by-byte update */
		sha256_update(&c, p, 1);
	sha256_final(&c, d);
	sha256_hex(d, hex);
	assert_string_equal(hex,
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* Against sha256sum(1) on 1 MiB of pseudo-random bytes fed in odd pieces
 * (exercises the block path, SHA-NI where the CPU has it, and the tail). */
static void test_sha256_vs_sha256sum(void **state)
{
	size_t n = (1u << 20) + 13;
	uint8_t *b = malloc(n);
	assert_non_null(b);
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (uint8_t)(x >> 16);
	}
	char tmp[] = "/tmp/test_sha.XXXXXX";
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
	char cmd[96], want[65] = "";
	snprintf(cmd, sizeof(cmd), "sha256sum %s", tmp);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%64s", want), 1);
	pclose(p);
	unlink(tmp);
	struct sha256_ctx c;
	sha256_init(&c);
	for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 + 1) {
		size_t take = BT_MIN(step, n - off);
		sha256_update(&c, b + off, take);
		if (take < step)
			break;
	}
	uint8_t d[SHA256_LEN];
	char hex[65];
	sha256_final(&c, d);
	sha256_hex(d, hex);
	assert_string_equal(hex, want);
	free(b);
}

static void test_open_self(void **state)
{
	struct elfimg *img;
	assert_int_equal(elfimg_open("/proc/self/exe", &img), BT_OK);
	assert_true(img->type == ET_DYN || img->type == ET_EXEC);
	assert_true(img->ncode >= 1);
	const struct elfimg_section *text = elfimg_section_by_name(img, ".text");
	assert_non_null(text);
	assert_true(text->flags & SHF_EXECINSTR);
	/* our own function is a symbol inside .text, its bytes readable */
	const struct elfimg_symbol *me = NULL;
	for (size_t i = 0; i < img->nsyms; i++)
		if (!strcmp(img->syms[i].name, "test_open_self"))
			me = &img->syms[i];
	assert_non_null(me);
	assert_int_equal(me->type, STT_FUNC);
	assert_true(me->size > 0);
	assert_true(me->addr >= text->addr && me->addr + me->size <= text->addr + text->size);
	const struct elfimg_code *c = elfimg_code_at(img, me->addr);
	assert_non_null(c);
	assert_ptr_equal(c->sec, text);
	/* the code range and the section bytes are the file's bytes */
	assert_ptr_equal(elfimg_section_bytes(img, text), img->map + text->offset);
	assert_ptr_equal(c->bytes + (me->addr - c->start),
			 img->map + text->offset + (me->addr - text->addr));
	const struct elfimg_section *bss = elfimg_section_by_name(img, ".bss");
	assert_non_null(bss);
	assert_null(elfimg_section_bytes(img, bss));
	Elf64_Ehdr eh;
	memcpy(&eh, img->map, sizeof(eh));
	assert_int_equal(img->phoff, eh.e_phoff);
	/* Debian's gcc links with --build-id */
	assert_int_equal(img->build_id_len, 20);
	char hex[129];
	elfimg_build_id_hex(img, hex);
	assert_int_equal(strlen(hex), 40);
	/* ... in a loaded note: the build-id's address is where its
	 * descriptor lies (after the 12-byte header and "GNU\0") */
	const struct elfimg_section *note = elfimg_section_by_name(img, ".note.gnu.build-id");
	assert_non_null(note);
	assert_true(note->flags & SHF_ALLOC);
	assert_true(img->build_id_va == note->addr + 16);
	assert_memory_equal(img->map + note->offset + 16, img->build_id, 20);
	/* the hash is the hash of the file */
	size_t n;
	uint8_t *b = self_bytes(&n);
	uint8_t d[SHA256_LEN];
	sha256_buf(b, n, d);
	assert_memory_equal(d, img->sha256, SHA256_LEN);
	free(b);
	elfimg_close(img);
}

static enum bt_status open_copy(uint8_t *b, size_t n)
{
	struct elfimg *img = NULL;
	enum bt_status s = elfimg_open_mem("copy", b, n, &img);
	if (s == BT_OK)
		elfimg_close(img);
	return s;
}

static void test_damaged(void **state)
{
	size_t n;
	uint8_t *b = self_bytes(&n);
	assert_int_equal(open_copy(b, n), BT_OK);
	Elf64_Ehdr eh;
	memcpy(&eh, b, sizeof(eh));

	/* truncated: header only, half header, cut inside the section table */
	assert_int_equal(open_copy(b, 40), BT_ERR_FORMAT);
	assert_int_equal(open_copy(b, sizeof(Elf64_Ehdr) + 10), BT_ERR_FORMAT);
	assert_int_equal(open_copy(b, (size_t)eh.e_shoff + 100), BT_ERR_FORMAT);
	assert_int_equal(open_copy(b, n / 2), BT_ERR_FORMAT);

	/* not ELF */
	uint8_t *c = malloc(n);
	memcpy(c, b, n);
	c[1] = 'X';
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);

	/* 32-bit, big-endian, ARM, core file */
	memcpy(c, b, n);
	c[EI_CLASS] = ELFCLASS32;
	assert_int_equal(open_copy(c, n), BT_ERR_UNSUPPORTED);
	memcpy(c, b, n);
	c[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(open_copy(c, n), BT_ERR_UNSUPPORTED);
	memcpy(c, b, n);
	((Elf64_Ehdr *)c)->e_machine = EM_AARCH64;
	assert_int_equal(open_copy(c, n), BT_ERR_UNSUPPORTED);
	memcpy(c, b, n);
	((Elf64_Ehdr *)c)->e_type = ET_CORE;
	assert_int_equal(open_copy(c, n), BT_ERR_UNSUPPORTED);

	/* corrupt section table: offset past the end, bad entry size, a
	 * section whose data runs past the end, a bad name index */
	memcpy(c, b, n);
	((Elf64_Ehdr *)c)->e_shoff = n - 64;
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);
	memcpy(c, b, n);
	((Elf64_Ehdr *)c)->e_shentsize = 32;
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);
	memcpy(c, b, n);
	Elf64_Shdr *sh = (Elf64_Shdr *)(c + eh.e_shoff);
	for (int i = 1; i < eh.e_shnum; i++)
		if (sh[i].sh_type == SHT_PROGBITS) {
			sh[i].sh_size = (uint64_t)n * 4;
			break;
		}
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);
	/* section 0 claiming to be allocated data past the end (found by fuzzing) */
	memcpy(c, b, n);
	sh = (Elf64_Shdr *)(c + eh.e_shoff);
	sh[0].sh_type = SHT_PROGBITS;
	sh[0].sh_flags = SHF_ALLOC;
	sh[0].sh_offset = (uint64_t)n * 8;
	sh[0].sh_size = 64;
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);
	memcpy(c, b, n);
	((Elf64_Ehdr *)c)->e_shstrndx = (uint16_t)(eh.e_shnum + 5);
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);
	memcpy(c, b, n);
	sh = (Elf64_Shdr *)(c + eh.e_shoff);
	sh[1].sh_name = 0xfffffff0u;
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);

	/* no code: clear SHF_EXECINSTR everywhere */
	memcpy(c, b, n);
	sh = (Elf64_Shdr *)(c + eh.e_shoff);
	for (int i = 0; i < eh.e_shnum; i++)
		sh[i].sh_flags &= ~(uint64_t)SHF_EXECINSTR;
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);

	/* a bad program header table */
	memcpy(c, b, n);
	((Elf64_Ehdr *)c)->e_phoff = n - 8;
	assert_int_equal(open_copy(c, n), BT_ERR_FORMAT);

	/* a missing file and an empty file are I/O / format errors */
	struct elfimg *img;
	assert_int_equal(elfimg_open("/nonexistent/kernel.elf", &img), BT_ERR_IO);
	char tmp[] = "/tmp/test_elfimg.XXXXXX";
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(elfimg_open(tmp, &img), BT_ERR_FORMAT);
	unlink(tmp);
	close(fd);
	free(c);
	free(b);
}

static void test_every_truncation_is_refused(void **state)
{
	/* Cutting the file anywhere before the end of the last section that
	 * has contents must be refused, never crash. */
	size_t n;
	uint8_t *b = self_bytes(&n);
	for (size_t cut = 0; cut < 4096; cut += 61)
		assert_int_not_equal(open_copy(b, cut), BT_OK);
	Elf64_Ehdr eh;
	memcpy(&eh, b, sizeof(eh));
	for (size_t cut = (size_t)eh.e_shoff; cut < n; cut += 7)
		assert_int_equal(open_copy(b, cut), BT_ERR_FORMAT);
	free(b);
}

/* An ET_REL object made here: its .rela.text read through elfimg_rela_*,
 * compared with what the compiler must have emitted; a table with a bad
 * entry size is refused. */
static void test_relocations(void **state)
{
	char dir[] = "/tmp/test_elfimg_rel.XXXXXX", cmd[512], path[300];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/r.c", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("extern int callee(int);\nint caller(int x) { return callee(x) + 1; }\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -O2 -fno-pic -c -o %s/r.o %s", dir, path);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/r.o", dir);
	struct elfimg *img;
	assert_int_equal(elfimg_open(path, &img), BT_OK);
	assert_int_equal(img->type, ET_REL);
	const struct elfimg_section *text = elfimg_section_by_name(img, ".text");
	const struct elfimg_section *rela = elfimg_section_by_name(img, ".rela.text");
	assert_non_null(text);
	assert_non_null(rela);
	assert_int_equal(rela->info, text->index);
	size_t n = 0, calls = 0;
	assert_int_equal(elfimg_rela_count(img, rela, &n), BT_OK);
	assert_true(n >= 1);
	for (size_t k = 0; k < n; k++) {
		struct elfimg_rela r;
		elfimg_rela_get(img, rela, k, &r);
		assert_true(r.offset < text->size);
		assert_true(r.sym >= 1 && r.sym <= img->nsyms);
		if (!strcmp(img->syms[r.sym - 1].name, "callee")) {
			assert_true(r.type == R_X86_64_PLT32 || r.type == R_X86_64_PC32);
			assert_int_equal(r.addend, -4);
			calls++;
		}
	}
	assert_int_equal(calls, 1);
	/* the same object with a bad entry size in .rela.text */
	size_t size = img->size;
	uint8_t *c = malloc(size);
	memcpy(c, img->map, size);
	uint32_t idx = rela->index;
	elfimg_close(img);
	Elf64_Ehdr eh;
	memcpy(&eh, c, sizeof(eh));
	Elf64_Shdr *sh = (Elf64_Shdr *)(c + eh.e_shoff);
	sh[idx].sh_entsize = 16;
	assert_int_equal(elfimg_open_mem("bad-rela", c, size, &img), BT_OK);
	assert_int_equal(elfimg_rela_count(img, &img->secs[idx], &n), BT_ERR_FORMAT);
	elfimg_close(img);
	free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	bt_log_to(fopen("/dev/null", "w")); /* the refusals are expected */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test(test_sha256_vs_sha256sum),
	    cmocka_unit_test(test_open_self),
	    cmocka_unit_test(test_damaged),
	    cmocka_unit_test(test_every_truncation_is_refused),
	    cmocka_unit_test(test_relocations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
