/*
 * Unit tests for guests/lib/kmodld.c, the guest kernel's ET_REL loader, on
 * the REAL test module (guests/kmod-test/testmod.c built by gcc with
 * -mcmodel=kernel; path from $BT_TESTMOD or the build).
 *
 *  - higher-half load into a host buffer: every relocation in .rela.text and
 *    .rela.data is re-read with libelf and checked independently of the
 *    loader's layout: the patched field must point at bytes equal to the
 *    original object's bytes at the symbol (or at the resolver's address
 *    for undefined symbols);
 *  - native execution: loaded below 2 GiB (MAP_32BIT) so -mcmodel=kernel
 *    code can run on the host; kmod_init must add 42 to the counter, print
 *    "testmod: init" through the resolver's kmod_printf and return 0;
 *  - a second object (guests/kmod-test/relocmix.c: many sections, SHN_COMMON
 *    symbols, a jump table, function pointers in data, .eh_frame) is loaded
 *    and run natively; its result must equal the same source compiled into
 *    this test (included below);
 *  - rejections: truncations, unknown relocation type, missing symbol,
 *    relocation overflow, wrong ELF type, random corruption (no crash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>
#include <gelf.h>
#include <libelf.h>

#include "guests/lib/kmodld.h"

#ifndef GU_TESTMOD_PATH
#define GU_TESTMOD_PATH "build/guests/testmod.ko"
#endif
#ifndef GU_RELOCMIX_PATH
#define GU_RELOCMIX_PATH "build/guests/relocmix.o"
#endif

/* The host reference of the relocmix object: the same source, compiled
 * normally into this program. */
long kmod_test_counter = 1000;
#include "guests/kmod-test/relocmix.c"

#define HI_BASE	   0xffffffffc0001000ull
#define HI_PRINTF  0xffffffff80100000ull
#define HI_COUNTER 0xffffffff80200008ull
#define ARENA_SIZE (1u << 20)

static uint8_t *g_obj;
static size_t g_len;

struct host_arena {
	uint8_t *mem; /* writable host memory */
	uint64_t run; /* run address of mem[0] */
	size_t size, used;
	int no_printf; /* resolver forgets kmod_printf */
	uint64_t printf_addr, counter_addr;
};

static enum bt_status arena_alloc(void *ctx, uint64_t size, uint64_t align, void **mem,
				  uint64_t *runaddr)
{
	struct host_arena *a = ctx;
	uint64_t off = (a->used + align - 1) & ~(align - 1);

	if (size > a->size || off > a->size - size)
		return BT_ERR_NOMEM;
	*mem = a->mem + off;
	*runaddr = a->run + off;
	a->used = off + size;
	return BT_OK;
}

static enum bt_status arena_resolve(void *ctx, const char *name, uint64_t *addr)
{
	struct host_arena *a = ctx;

	if (strcmp(name, "kmod_printf") == 0 && !a->no_printf) {
		*addr = a->printf_addr;
		return BT_OK;
	}
	if (strcmp(name, "kmod_test_counter") == 0) {
		*addr = a->counter_addr;
		return BT_OK;
	}
	return BT_ERR_NOTFOUND;
}

static const struct kmodld_ops *ops_for(struct host_arena *a)
{
	static struct kmodld_ops ops;

	ops = (struct kmodld_ops){.ctx = a, .alloc = arena_alloc, .resolve = arena_resolve};
	return &ops;
}

static uint8_t *g_mix;
static size_t g_mix_len;

static int read_file(const char *env, const char *dflt, uint8_t **buf, size_t *len)
{
	const char *path = getenv(env);
	if (!path)
		path = dflt;
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(
		    stderr,
		    "test_kmodld: cannot open %s (build it with `make BUILD=... %s` or set %s)\n",
		    path, dflt, env);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = malloc(*len);
	if (!*buf || fread(*buf, 1, *len, f) != *len) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int setup_obj(void **state)
{
	if (read_file("BT_TESTMOD", GU_TESTMOD_PATH, &g_obj, &g_len) != 0)
		return -1;
	return read_file("BT_RELOCMIX", GU_RELOCMIX_PATH, &g_mix, &g_mix_len);
}

static int teardown_obj(void **state)
{
	free(g_obj);
	free(g_mix);
	return 0;
}

/* Independent check of every relocation, through libelf. */
static void test_higher_half(void **state)
{
	static struct kmodld ld;
	uint8_t *buf = aligned_alloc(4096, ARENA_SIZE);
	struct host_arena a = {.mem = buf,
			       .run = HI_BASE,
			       .size = ARENA_SIZE,
			       .printf_addr = HI_PRINTF,
			       .counter_addr = HI_COUNTER};

	assert_non_null(buf);
	memset(buf, 0xcc, ARENA_SIZE);
	assert_int_equal(kmodld_load(&ld, g_obj, g_len, ops_for(&a)), BT_OK);
	assert_string_equal(ld.msg, "");
	assert_int_equal(ld.base, HI_BASE);
	assert_true(ld.init >= ld.base && ld.init < ld.base + ld.size);
	assert_true(ld.nreloc >= 10);

	elf_version(EV_CURRENT);
	Elf *e = elf_memory((char *)g_obj, g_len);
	assert_non_null(e);
	size_t shstrndx;
	assert_int_equal(elf_getshdrstrndx(e, &shstrndx), 0);
	Elf_Scn *symscn = NULL, *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		gelf_getshdr(scn, &sh);
		if (sh.sh_type == SHT_SYMTAB)
			symscn = scn;
	}
	assert_non_null(symscn);
	Elf_Data *symdata = elf_getdata(symscn, NULL);
	GElf_Shdr symsh;
	gelf_getshdr(symscn, &symsh);

	/* relocated bytes of each section: they differ from the object by design */
	size_t nsec;
	assert_int_equal(elf_getshdrnum(e, &nsec), 0);
	uint8_t **masks = calloc(nsec, sizeof(*masks));
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		gelf_getshdr(scn, &sh);
		if (sh.sh_type != SHT_RELA)
			continue;
		GElf_Shdr tsh;
		gelf_getshdr(elf_getscn(e, sh.sh_info), &tsh);
		if (!masks[sh.sh_info])
			masks[sh.sh_info] = calloc(tsh.sh_size + 8, 1);
		Elf_Data *rd = elf_getdata(scn, NULL);
		for (size_t k = 0; k < sh.sh_size / sh.sh_entsize; k++) {
			GElf_Rela r;
			gelf_getrela(rd, (int)k, &r);
			unsigned w = GELF_R_TYPE(r.r_info) == R_X86_64_64 ? 8 : 4;
			memset(masks[sh.sh_info] + r.r_offset, 1, w);
		}
	}

	unsigned checked = 0, types_seen = 0;
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		gelf_getshdr(scn, &sh);
		if (sh.sh_type != SHT_RELA)
			continue;
		GElf_Shdr tsh;
		Elf_Scn *tscn = elf_getscn(e, sh.sh_info);
		gelf_getshdr(tscn, &tsh);
		if (!(tsh.sh_flags & SHF_ALLOC))
			continue;
		/* Locate the target section in the image by content: its first 16
		 * bytes with relocated fields masked are unique in testmod. */
		const uint8_t *orig = g_obj + tsh.sh_offset;
		Elf_Data *rd = elf_getdata(scn, NULL);
		size_t nrel = sh.sh_size / sh.sh_entsize;
		/* find target placement: try every offset, compare unrelocated bytes */
		const uint8_t *mask = masks[sh.sh_info];
		long toff = -1;
		for (size_t cand = 0; cand + tsh.sh_size <= ld.size; cand++) {
			size_t i;
			for (i = 0; i < tsh.sh_size; i++)
				if (!mask[i] && buf[cand + i] != orig[i])
					break;
			if (i == tsh.sh_size) {
				toff = (long)cand;
				break;
			}
		}
		assert_true(toff >= 0);
		for (size_t k = 0; k < nrel; k++) {
			GElf_Rela r;
			GElf_Sym sym;
			gelf_getrela(rd, (int)k, &r);
			gelf_getsym(symdata, (int)GELF_R_SYM(r.r_info), &sym);
			const char *name = elf_strptr(e, symsh.sh_link, sym.st_name);
			uint64_t p = HI_BASE + (uint64_t)toff + r.r_offset;
			uint8_t *field = buf + toff + r.r_offset;
			uint64_t s_plus_a;
			switch (GELF_R_TYPE(r.r_info)) {
			case R_X86_64_64:
				memcpy(&s_plus_a, field, 8);
				types_seen |= 1;
				break;
			case R_X86_64_32S: {
				int32_t v;
				memcpy(&v, field, 4);
				s_plus_a = (uint64_t)(int64_t)v;
				types_seen |= 2;
				break;
			}
			case R_X86_64_PC32:
			case R_X86_64_PLT32: {
				int32_t v;
				memcpy(&v, field, 4);
				s_plus_a = p + (uint64_t)(int64_t)v;
				types_seen |= GELF_R_TYPE(r.r_info) == R_X86_64_PC32 ? 4 : 8;
				break;
			}
			default:
				fail_msg("unexpected relocation type %lu",
					 (unsigned long)GELF_R_TYPE(r.r_info));
				return;
			}
			uint64_t s = s_plus_a - (uint64_t)r.r_addend;
			if (sym.st_shndx == SHN_UNDEF) {
				uint64_t want =
				    strcmp(name, "kmod_printf") == 0 ? HI_PRINTF : HI_COUNTER;
				assert_int_equal(s, want);
			} else {
				/* S must point at the symbol's original bytes in the image */
				GElf_Shdr ssh;
				gelf_getshdr(elf_getscn(e, sym.st_shndx), &ssh);
				assert_true(s >= HI_BASE && s < HI_BASE + ld.size);
				const uint8_t *img = buf + (s - HI_BASE);
				size_t n = ssh.sh_size - sym.st_value;
				if (n > 8)
					n = 8;
				if (ssh.sh_type == SHT_NOBITS) {
					for (size_t i = 0; i < n; i++)
						assert_int_equal(img[i], 0);
				} else {
					const uint8_t *want = g_obj + ssh.sh_offset + sym.st_value;
					const uint8_t *m = masks[sym.st_shndx];
					for (size_t i = 0; i < n; i++)
						if (!m || !m[sym.st_value + i])
							assert_int_equal(img[i], want[i]);
				}
			}
			checked++;
		}
	}
	for (size_t i = 0; i < nsec; i++)
		free(masks[i]);
	free(masks);
	assert_int_equal(types_seen, 15); /* 64, 32S, PC32 and PLT32 all checked */
	assert_int_equal(checked, ld.nreloc);

	/* the .data pointer (R_X86_64_64) points at the .rodata banner */
	uint64_t ptr_sym, ptr;
	assert_int_equal(kmodld_symbol(&ld, g_obj, g_len, "testmod_name_ptr", &ptr_sym), BT_OK);
	memcpy(&ptr, buf + (ptr_sym - HI_BASE), 8);
	assert_string_equal((const char *)buf + (ptr - HI_BASE), "testmod: init");
	assert_int_equal(kmodld_symbol(&ld, g_obj, g_len, "nope", &ptr), BT_ERR_NOTFOUND);
	elf_end(e);
	free(buf);
}

static char g_printed[128];

static int host_kmod_printf(const char *fmt, ...)
{
	va_list ap;
	size_t used = strlen(g_printed);

	va_start(ap, fmt);
	int n = vsnprintf(g_printed + used, sizeof(g_printed) - used, fmt, ap);
	va_end(ap);
	return n;
}

/* Load below 2 GiB and run kmod_init on the host CPU. */
static void test_native_run(void **state)
{
	static struct kmodld ld;
	uint8_t *region = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	assert_true(region != MAP_FAILED);
	assert_true((uintptr_t)region < (1ull << 31));

	/* kernel side: a counter and a trampoline to host_kmod_printf, both
	 * within +-2 GiB of the module as -mcmodel=kernel code requires */
	long *counter = (long *)region;
	*counter = 100;
	uint8_t *tramp = region + 64;
	uint64_t target = (uint64_t)(uintptr_t)host_kmod_printf;
	tramp[0] = 0x49; /* movabs $target, %r11 */
	tramp[1] = 0xbb;
	memcpy(tramp + 2, &target, 8);
	tramp[10] = 0x41; /* jmp *%r11 */
	tramp[11] = 0xff;
	tramp[12] = 0xe3;

	struct host_arena a = {.mem = region + 4096,
			       .run = (uint64_t)(uintptr_t)(region + 4096),
			       .size = ARENA_SIZE - 4096,
			       .printf_addr = (uint64_t)(uintptr_t)tramp,
			       .counter_addr = (uint64_t)(uintptr_t)counter};
	assert_int_equal(kmodld_load(&ld, g_obj, g_len, ops_for(&a)), BT_OK);

	int (*init)(void) = (int (*)(void))(uintptr_t)ld.init;
	g_printed[0] = '\0';
	assert_int_equal(init(), 0);
	assert_int_equal(*counter, 142);
	assert_string_equal(g_printed, "testmod: init\n");

	uint64_t bss;
	assert_int_equal(kmodld_symbol(&ld, g_obj, g_len, "testmod_bss_var", &bss), BT_OK);
	assert_int_equal(*(long *)(uintptr_t)bss, 42);
	munmap(region, ARENA_SIZE);
}

/* relocmix: load below 2 GiB, run relocmix_run, compare with the host build. */
static void test_relocmix(void **state)
{
	static struct kmodld ld;
	uint8_t *region = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	assert_true(region != MAP_FAILED);
	long *counter = (long *)region;
	*counter = kmod_test_counter;
	/* garbage in the arena: the loader must zero .bss and COMMON itself */
	memset(region + 4096, 0xa5, ARENA_SIZE - 4096);
	struct host_arena a = {.mem = region + 4096,
			       .run = (uint64_t)(uintptr_t)(region + 4096),
			       .size = ARENA_SIZE - 4096,
			       .printf_addr = 0,
			       .counter_addr = (uint64_t)(uintptr_t)counter};
	assert_int_equal(kmodld_load(&ld, g_mix, g_mix_len, ops_for(&a)), BT_OK);
	assert_true(ld.nreloc >= 25);

	uint64_t run_addr, common_a;
	assert_int_equal(kmodld_symbol(&ld, g_mix, g_mix_len, "relocmix_run", &run_addr), BT_OK);
	long (*loaded_run)(int) = (long (*)(int))(uintptr_t)run_addr;
	/* COMMON symbols are not "defined in a section": not exported by name */
	assert_int_equal(kmodld_symbol(&ld, g_mix, g_mix_len, "relocmix_common_a", &common_a),
			 BT_ERR_NOTFOUND);
	for (int seed = 0; seed < 8; seed++) {
		long want = relocmix_run(seed); /* host build, same state evolution */
		long got = loaded_run(seed);
		assert_int_equal(got, want);
	}
	int (*init)(void) = (int (*)(void))(uintptr_t)ld.init;
	assert_int_equal(init(), kmod_init());
	munmap(region, ARENA_SIZE);
}

static enum bt_status load_hi(struct kmodld *ld, const uint8_t *obj, size_t len,
			      struct host_arena *a)
{
	static uint8_t *buf;

	if (!buf)
		buf = aligned_alloc(4096, ARENA_SIZE);
	*a = (struct host_arena){.mem = buf,
				 .run = a->run ? a->run : HI_BASE,
				 .size = ARENA_SIZE,
				 .no_printf = a->no_printf,
				 .printf_addr = a->printf_addr ? a->printf_addr : HI_PRINTF,
				 .counter_addr = HI_COUNTER};
	return kmodld_load(ld, obj, len, ops_for(a));
}

/* Patch the type of the first relocation of the first RELA section. */
static void patch_first_rela_type(uint8_t *obj, uint32_t type)
{
	Elf *e = elf_memory((char *)obj, g_len);
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	assert_non_null(e);
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		gelf_getshdr(scn, &sh);
		if (sh.sh_type == SHT_RELA)
			break;
	}
	assert_non_null(scn);
	elf_end(e);
	memcpy(obj + sh.sh_offset + 8, &type, 4);
}

static void test_rejects(void **state)
{
	static struct kmodld ld;
	struct host_arena a = {0};
	uint8_t *c = malloc(g_len);

	assert_non_null(c);
	elf_version(EV_CURRENT);

	/* unknown relocation type */
	memcpy(c, g_obj, g_len);
	patch_first_rela_type(c, 37);
	assert_int_equal(load_hi(&ld, c, g_len, &a), BT_ERR_UNSUPPORTED);
	assert_non_null(strstr(ld.msg, "unknown relocation type 37"));

	/* missing symbol */
	a = (struct host_arena){.no_printf = 1};
	assert_int_equal(load_hi(&ld, g_obj, g_len, &a), BT_ERR_NOTFOUND);
	assert_non_null(strstr(ld.msg, "kmod_printf"));

	/* 32S overflow: image above 2 GiB in the low half */
	a = (struct host_arena){.run = 0x100000000ull};
	assert_int_equal(load_hi(&ld, g_obj, g_len, &a), BT_ERR_RANGE);
	assert_non_null(strstr(ld.msg, "does not fit"));

	/* PC32 overflow: kmod_printf more than 2 GiB away */
	a = (struct host_arena){.printf_addr = 0xffff800000000000ull};
	assert_int_equal(load_hi(&ld, g_obj, g_len, &a), BT_ERR_RANGE);

	/* wrong ELF type, machine, class */
	memcpy(c, g_obj, g_len);
	c[16] = 2;
	assert_int_equal(load_hi(&ld, c, g_len, &a), BT_ERR_UNSUPPORTED);
	memcpy(c, g_obj, g_len);
	c[18] = 3;
	assert_int_equal(load_hi(&ld, c, g_len, &a), BT_ERR_UNSUPPORTED);
	memcpy(c, g_obj, g_len);
	c[4] = 1;
	assert_int_equal(load_hi(&ld, c, g_len, &a), BT_ERR_UNSUPPORTED);
	memcpy(c, g_obj, g_len);
	c[1] = 'X';
	assert_int_equal(load_hi(&ld, c, g_len, &a), BT_ERR_FORMAT);

	/* every truncation fails (the section table sits at the end) */
	for (size_t n = 0; n < g_len; n++) {
		uint8_t *t = malloc(n ? n : 1);
		memcpy(t, g_obj, n);
		a = (struct host_arena){0};
		assert_int_not_equal(load_hi(&ld, t, n, &a), BT_OK);
		assert_true(ld.msg[0] != '\0');
		free(t);
	}
	free(c);
}

/* Random corruption: any outcome but a crash; success keeps init in the image. */
static void test_fuzz(void **state)
{
	static struct kmodld ld;
	struct host_arena a;
	uint8_t *c = malloc(g_len);
	uint32_t seed = 777;
	unsigned ok = 0, bad = 0;

	for (int round = 0; round < 20000; round++) {
		memcpy(c, g_obj, g_len);
		for (int k = 0; k < 1 + round % 3; k++) {
			seed = seed * 1664525u + 1013904223u;
			size_t pos = (seed >> 7) % g_len;
			c[pos] ^= (uint8_t)(1u << ((seed >> 3) & 7));
		}
		a = (struct host_arena){0};
		enum bt_status st = load_hi(&ld, c, g_len, &a);
		if (st == BT_OK) {
			assert_true(ld.init >= ld.base && ld.init < ld.base + ld.size);
			ok++;
		} else {
			assert_true(ld.msg[0] != '\0');
			bad++;
		}
	}
	assert_true(ok > 0 && bad > 0);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_higher_half), cmocka_unit_test(test_native_run),
	    cmocka_unit_test(test_relocmix),	cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, setup_obj, teardown_obj);
}
