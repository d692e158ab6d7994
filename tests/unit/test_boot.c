/*
 * Boot loader tests: a synthetic gcc-built kernel (runtime/boot/testdata,
 * laid out like a vmlinux) and the real test guest kernel
 * ($(BUILD)/guests/kernel.elf) loaded into memfd guest RAM; the zero page
 * compared byte by byte with an image built here from the documented
 * offsets; e820; the identity map checked through the soft-MMU; GDT
 * descriptors decoded; malformed ELF files rejected without writing RAM,
 * and a table of them refused by the boot loader and by `pretrans build`
 * (pbuild_run) alike, with the same logged line.
 */
#include <elf.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pretrans/base/log.h"
#include "pretrans/build.h"
#include "runtime/boot/boot.h"
#include "runtime/mmu/mmu.h"
#include "tests/unit/test_config.h"

#ifndef BOOT_TEST_SYNTH_ELF
#error "BOOT_TEST_SYNTH_ELF is set by runtime/boot/module.mk"
#endif

static uint8_t *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f) {
		print_error("cannot open %s (is it built? `make %s`)\n", path, path);
		fail();
	}
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*size = (size_t)n;
	return buf;
}

/* A temp file holding `len` bytes (pattern or given data); caller unlinks. */
static char *temp_file(const void *data, size_t len)
{
	char *path = strdup("/tmp/btvm-test-boot-XXXXXX");
	int fd = mkstemp(path);
	uint8_t *pat = NULL;

	assert_true(fd >= 0);
	if (!data) {
		pat = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			pat[i] = (uint8_t)(i * 7 + 3);
		data = pat;
	}
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	free(pat);
	return path;
}

static uint8_t *ram(struct guestmem *gm, gpa_t gpa)
{
	uint8_t *p = guestmem_gpa_to_host(gm, gpa, 1);
	assert_non_null(p);
	return p;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void setle(uint8_t *p, unsigned n, uint64_t v)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Every PT_LOAD of the file is in RAM at p_paddr, bss zeroed. */
static void check_segments(struct guestmem *gm, const uint8_t *img, size_t size)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
	unsigned loads = 0;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || !ph[i].p_memsz)
			continue;
		const uint8_t *m = guestmem_gpa_to_host(gm, ph[i].p_paddr, ph[i].p_memsz);
		assert_non_null(m);
		assert_true(ph[i].p_offset + ph[i].p_filesz <= size);
		assert_memory_equal(m, img + ph[i].p_offset, ph[i].p_filesz);
		for (uint64_t j = ph[i].p_filesz; j < ph[i].p_memsz; j++)
			if (m[j] != 0) {
				print_error("bss byte %#llx of segment %u is %#x\n",
					    (unsigned long long)j, i, m[j]);
				fail();
			}
		loads++;
	}
	assert_true(loads > 0);
}

/* The identity map, seen through the soft-MMU with the boot CR state. */
static void check_ident_map(struct guestmem *gm, const struct boot_state *st,
			    const struct boot_layout *l)
{
	struct vcpu_abi *abi = calloc(1, sizeof(*abi));
	struct mmu mmu;
	struct mmu_fault f;
	const gva_t probes[] = {0,
				BOOT_ZERO_PAGE_ADDR + 0x2d0,
				BOOT_CMDLINE_ADDR,
				l->entry,
				l->kernel_end - 1,
				(1ull << 30) - 8,
				(1ull << 30) + 0x123456,
				0xfee00300ull,
				(4ull << 30) - 1};

	assert_non_null(abi);
	assert_int_equal(mmu_init(&mmu, gm, abi), BT_OK);
	assert_int_equal(mmu_set_mode(&mmu, st->cr0, st->cr3, st->cr4, st->efer), BT_OK);
	for (size_t i = 0; i < BT_ARRAY_SIZE(probes); i++) {
		gpa_t gpa = 1;
		assert_int_equal(
		    mmu_translate(&mmu, probes[i], MMU_ACC_WRITE | MMU_ACC_PROBE, &gpa, NULL, &f),
		    BT_OK);
		assert_false(f.pending);
		assert_int_equal(gpa, probes[i]);
	}
	/* nothing above 4 GiB */
	gpa_t gpa;
	mmu_translate(&mmu, 4ull << 30, MMU_ACC_READ | MMU_ACC_PROBE, &gpa, NULL, &f);
	assert_true(f.pending);
	assert_int_equal(f.error_code, 0);
	assert_int_equal(l->ident_map_end, 4ull << 30);
	/* the entry point is fetchable and holds the kernel's first bytes */
	uint8_t code[8];
	size_t got;
	assert_int_equal(mmu_fetch(&mmu, st->rip, code, sizeof(code), &got, &f), BT_OK);
	assert_int_equal(got, sizeof(code));
	assert_memory_equal(code, ram(gm, l->entry), sizeof(code));
	mmu_fini(&mmu);
	free(abi);
}

/* Raw table entries as documented: PML4 -> PDPT -> 4 PDs of 2 MiB pages. */
static void check_page_tables(struct guestmem *gm)
{
	assert_int_equal(le(ram(gm, 0x9000), 8), 0xa003);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(le(ram(gm, 0x9000 + 8 * i), 8), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(le(ram(gm, 0xa000 + 8 * i), 8), 0xb003 + 0x1000 * i);
	assert_int_equal(le(ram(gm, 0xa000 + 8 * 4), 8), 0);
	assert_int_equal(le(ram(gm, 0xb000), 8), 0x83);
	assert_int_equal(le(ram(gm, 0xb000 + 8 * 8), 8), 0x1000083);
	assert_int_equal(le(ram(gm, 0xe000 + 8 * 511), 8), 0xffe00083ull);
}

static void check_gdt_and_state(struct guestmem *gm, const struct boot_state *st,
				const struct boot_layout *l)
{
	uint64_t cs = le(ram(gm, 0x500 + 0x10), 8), ds = le(ram(gm, 0x500 + 0x18), 8);

	assert_int_equal(le(ram(gm, 0x500), 8), 0);
	/* __BOOT_CS: present, DPL0, code exec/read (0x9b), L=1, D=0, G=1 */
	assert_int_equal((cs >> 40) & 0xff, 0x9b);
	assert_int_equal((cs >> 53) & 1, 1);
	assert_int_equal((cs >> 54) & 1, 0);
	assert_int_equal((cs >> 55) & 1, 1);
	/* __BOOT_DS: data read/write (0x93), 4G flat: limit 0xfffff, G=1, B=1, base 0 */
	assert_int_equal((ds >> 40) & 0xff, 0x93);
	assert_int_equal((ds & 0xffff) | ((ds >> 32) & 0xf0000), 0xfffff);
	assert_int_equal((ds >> 54) & 3, 3);
	assert_int_equal(((ds >> 16) & 0xffffff) | ((ds >> 32) & 0xff000000), 0);
	assert_int_equal(cs, 0x00af9b000000ffffull);
	assert_int_equal(ds, 0x00cf93000000ffffull);
	/* the 16-byte TSS descriptor: type 0xb (busy 64-bit TSS), base, limit */
	uint64_t tss = le(ram(gm, 0x520), 8);
	assert_int_equal((tss >> 40) & 0xff, 0x8b);
	assert_int_equal(((tss >> 16) & 0xffffff) | ((tss >> 32) & 0xff000000), BOOT_TSS_ADDR);
	assert_int_equal(le(ram(gm, 0x528), 8), 0);

	assert_int_equal(st->rip, l->entry);
	assert_int_equal(st->rsi, 0x7000);
	assert_int_equal(st->rsp, 0x8ff0);
	assert_int_equal(st->rflags, 0x2);
	assert_int_equal(st->cr0, 0x80000031ull); /* PG | NE | ET | PE */
	assert_int_equal(st->cr3, 0x9000);
	assert_int_equal(st->cr4, 0x20);   /* PAE, LA57 clear */
	assert_int_equal(st->efer, 0x500); /* LMA | LME */
	assert_int_equal(st->gdt_base, 0x500);
	assert_int_equal(st->gdt_limit, 0x2f);
	assert_int_equal(st->idt_limit, 7);
	assert_int_equal(st->cs.selector, 0x10);
	assert_int_equal(st->cs.attr, 0xa09b);
	assert_int_equal(st->cs.limit, 0xffffffffu);
	assert_int_equal(st->ds.selector, 0x18);
	assert_int_equal(st->es.selector, 0x18);
	assert_int_equal(st->ss.selector, 0x18);
	assert_int_equal(st->ss.attr, 0xc093);
	assert_int_equal(st->tr.selector, 0x20);
	assert_int_equal(st->tr.base, BOOT_TSS_ADDR);
}

struct e820 {
	uint64_t addr, size;
	uint32_t type;
};

/* Build the expected zero page from the documented offsets and compare all
 * 4096 bytes. */
static void check_zero_page(struct guestmem *gm, const struct boot_layout *l, const struct e820 *e,
			    unsigned ne)
{
	uint8_t want[4096];
	const uint8_t *zp = ram(gm, 0x7000);

	memset(want, 0, sizeof(want));
	setle(want + 0x0c0, 4, l->initrd >> 32);      /* ext_ramdisk_image */
	setle(want + 0x0c4, 4, l->initrd_size >> 32); /* ext_ramdisk_size */
	setle(want + 0x0c8, 4, 0);		      /* ext_cmd_line_ptr */
	want[0x1e8] = (uint8_t)ne;		      /* e820_entries */
	want[0x1ef] = 0;			      /* sentinel */
	setle(want + 0x1fe, 2, 0xaa55);		      /* boot_flag */
	memcpy(want + 0x202, "HdrS", 4);	      /* header */
	setle(want + 0x206, 2, 0x020f);		      /* version */
	want[0x210] = 0xff;			      /* type_of_loader */
	want[0x211] = 0x01;			      /* loadflags: LOADED_HIGH */
	setle(want + 0x218, 4, (uint32_t)l->initrd);  /* ramdisk_image */
	setle(want + 0x21c, 4, (uint32_t)l->initrd_size);
	setle(want + 0x228, 4, 0x20000);			 /* cmd_line_ptr */
	setle(want + 0x22c, 4, 0x7fffffff);			 /* initrd_addr_max */
	setle(want + 0x230, 4, 0x1000000);			 /* kernel_alignment */
	setle(want + 0x238, 4, 2047);				 /* cmdline_size */
	setle(want + 0x260, 4, l->kernel_end - l->kernel_start); /* init_size */
	for (unsigned i = 0; i < ne; i++) {
		setle(want + 0x2d0 + 20 * i, 8, e[i].addr);
		setle(want + 0x2d0 + 20 * i + 8, 8, e[i].size);
		setle(want + 0x2d0 + 20 * i + 16, 4, e[i].type);
	}
	for (unsigned i = 0; i < sizeof(want); i++)
		if (zp[i] != want[i]) {
			print_error("zero page byte %#x is %#x, want %#x\n", i, zp[i], want[i]);
			fail();
		}
	assert_int_equal(l->e820_entries, ne);
}

/* Everything the boot protocol lays out for a RAM size of ram bytes: the
 * zero page with its e820 map, the identity page tables, the GDT and the
 * initial state, and the identity map through the soft-MMU. */
static void check_boot_structures(struct guestmem *gm, const struct boot_state *st,
				  const struct boot_layout *l, uint64_t ram)
{
	const struct e820 e[] = {
	    {0, 0x9fc00, 1},
	    {0x9fc00, 0x100000 - 0x9fc00, 2},
	    {0x100000, ram - 0x100000, 1},
	};
	check_zero_page(gm, l, e, 3);
	check_page_tables(gm);
	check_gdt_and_state(gm, st, l);
	check_ident_map(gm, st, l);
}

static void test_boot_synthetic(void **state)
{
	struct guestmem *gm;
	struct boot_state st;
	struct boot_layout l;
	size_t size;
	uint8_t *img = read_file(BOOT_TEST_SYNTH_ELF, &size);
	char *initrd = temp_file(NULL, 10000);
	const char *cmd = "console=ttyS0 test=all panic=1";
	struct boot_config cfg = {.kernel_path = BOOT_TEST_SYNTH_ELF,
				  .initrd_path = initrd,
				  .cmdline = cmd,
				  .hash_image = true};

	assert_int_equal(guestmem_create(64ull << 20, &gm), BT_OK);
	memset(ram(gm, 0x1000000), 0xcc, 0x400000); /* bss must be cleared */
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_OK);
	unlink(initrd);

	assert_int_equal(l.entry, 0x1000000);
	assert_int_equal(l.kernel_start, 0x1000000);
	assert_int_equal(l.kernel_end, 0x1200000 + 0x180017);
	check_segments(gm, img, size);
	assert_int_equal(le(ram(gm, 0x1200000), 8), 0x1122334455667788ull);

	/* initrd: page-aligned at the top of low RAM */
	assert_int_equal(l.initrd, 0x3ffd000);
	assert_int_equal(l.initrd_size, 10000);
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(*ram(gm, 0x3ffd000 + i), (uint8_t)(i * 7 + 3));
	/* cmdline */
	assert_int_equal(l.cmdline, 0x20000);
	assert_int_equal(l.cmdline_size, strlen(cmd) + 1);
	assert_string_equal((const char *)ram(gm, 0x20000), cmd);

	check_boot_structures(gm, &st, &l, 64ull << 20);
	/* identity: no build-id (--build-id=none), so the file's sha256 */
	uint8_t d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	sha256_buf(img, size, d);
	sha256_hex(d, hex);
	assert_string_equal(l.build_id, "");
	assert_string_equal(l.sha256, hex);
	free(initrd);
	free(img);
	guestmem_destroy(gm);
}

/* RAM above the PCI hole: a fourth e820 entry; initrd stays in low RAM. */
static void test_boot_high_memory(void **state)
{
	struct guestmem *gm;
	struct boot_state st;
	struct boot_layout l;
	struct boot_config cfg = {.kernel_path = BOOT_TEST_SYNTH_ELF};
	const uint64_t size = GUESTMEM_HOLE_START + (256ull << 20);

	assert_int_equal(guestmem_create(size, &gm), BT_OK);
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_OK);
	assert_string_equal(l.sha256, ""); /* hash_image not asked for */
	const struct e820 e[] = {
	    {0, 0x9fc00, 1},
	    {0x9fc00, 0x100000 - 0x9fc00, 2},
	    {0x100000, GUESTMEM_HOLE_START - 0x100000, 1},
	    {1ull << 32, 256ull << 20, 1},
	};
	assert_int_equal(l.initrd, 0);
	assert_int_equal(l.cmdline_size, 1);
	assert_int_equal(*ram(gm, 0x20000), 0);
	check_zero_page(gm, &l, e, 4);
	guestmem_destroy(gm);
}

static void test_boot_guest_kernel(void **state)
{
	const char *path = BOOT_TEST_KERNEL_ELF;
	struct guestmem *gm;
	struct boot_state st;
	struct boot_layout l;
	size_t size;
	uint8_t *img;
	char *initrd = temp_file(NULL, 3 * 4096 + 1);
	struct boot_config cfg = {
	    .kernel_path = path, .initrd_path = initrd, .cmdline = "console=ttyS0 test=kernel"};

	if (access(path, R_OK) != 0) {
		print_error("%s is missing: the guest kernel is built by guests/kernel/module.mk "
			    "(`make BUILD=... %s`)\n",
			    path, path);
		unlink(initrd);
		fail();
	}
	img = read_file(path, &size);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	assert_int_equal(guestmem_create(256ull << 20, &gm), BT_OK);
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_OK);
	unlink(initrd);
	check_segments(gm, img, size);
	/* entry: e_entry itself if physical, else its physical alias */
	assert_true(l.entry >= l.kernel_start && l.entry < l.kernel_end);
	if (eh->e_entry >= l.kernel_start && eh->e_entry < l.kernel_end)
		assert_int_equal(l.entry, eh->e_entry);
	assert_int_equal(l.initrd, (256ull << 20) - 4 * 4096);
	assert_int_equal(l.initrd_size, 3 * 4096 + 1);
	check_boot_structures(gm, &st, &l, 256ull << 20);
	free(initrd);
	free(img);
	guestmem_destroy(gm);
}

/* ---- malformed images -------------------------------------------------- */

static enum bt_status load_variant(struct guestmem *gm, const uint8_t *img, size_t size)
{
	gpa_t entry = 0, lo = 0, hi = 0;
	enum bt_status s = boot_load_elf_image(gm, "variant.elf", img, size, &entry, &lo, &hi);
	/* a refused image wrote nothing */
	if (s != BT_OK) {
		assert_int_equal(*ram(gm, 0x1000000), 0x5a);
		assert_int_equal(*ram(gm, 0x1200000), 0x5a);
	}
	return s;
}

static void test_malformed(void **state)
{
	struct guestmem *gm;
	size_t size;
	uint8_t *img = read_file(BOOT_TEST_SYNTH_ELF, &size);
	uint8_t *v = malloc(size);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)v;
	Elf64_Phdr *ph;
	const size_t cuts[] = {0, 4, 10, 63, 64, 64 + 56, 64 + 2 * 56 - 1, 0x1000 + 5, 0x2000 + 3};

	assert_int_equal(guestmem_create(64ull << 20, &gm), BT_OK);
	memset(ram(gm, 0x1000000), 0x5a, 0x400000);
#define RESET() (memcpy(v, img, size), ph = (Elf64_Phdr *)(v + eh->e_phoff))
	RESET();
	for (size_t i = 0; i < BT_ARRAY_SIZE(cuts); i++)
		assert_int_equal(load_variant(gm, v, cuts[i]), BT_ERR_FORMAT);
	RESET();
	v[1] = 'X';
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	eh->e_machine = EM_AARCH64;
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	v[EI_CLASS] = ELFCLASS32;
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	v[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	eh->e_type = ET_DYN;
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	eh->e_phentsize = 32;
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	eh->e_phnum = 0xfff0; /* table past the end of the file */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[1].p_paddr = 0x7f000000; /* beyond 64 MiB of RAM */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[1].p_paddr = 0x3f00000; /* starts in RAM, bss runs past the end */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[1].p_paddr = 0xfee00000; /* MMIO */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[1].p_paddr = 0x8000; /* over the loader structures */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[1].p_paddr = ~0ull - 0x10; /* wraps */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[0].p_filesz = ph[0].p_memsz + 1;
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[0].p_offset = size - 4; /* bytes outside the file */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[0].p_offset = ~0ull - 2;
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	eh->e_entry = 0x5000000; /* not in any segment */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);
	RESET();
	ph[0].p_type = PT_NOTE;
	ph[1].p_type = PT_NOTE; /* nothing loadable */
	assert_int_equal(load_variant(gm, v, size), BT_ERR_FORMAT);

	/* a virtual e_entry is converted to its physical address */
	RESET();
	eh->e_entry = 0xffffffff81000002ull;
	gpa_t entry, lo, hi;
	assert_int_equal(boot_load_elf_image(gm, "v", v, size, &entry, &lo, &hi), BT_OK);
	assert_int_equal(entry, 0x1000002);
	assert_int_equal(lo, 0x1000000);
	assert_int_equal(hi, 0x1380017);
	assert_int_equal(le(ram(gm, 0x1200000), 8), 0x1122334455667788ull);
	assert_int_equal(*ram(gm, 0x1200000 + 0x17), 0); /* bss cleared */
#undef RESET

	/* files: missing, empty, truncated */
	assert_int_equal(boot_load_elf_file(gm, "/nonexistent/vmlinux", &entry, &lo, &hi),
			 BT_ERR_IO);
	char *empty = temp_file("", 0);
	assert_int_equal(boot_load_elf_file(gm, empty, &entry, &lo, &hi), BT_ERR_FORMAT);
	unlink(empty);
	free(empty);
	char *trunc = temp_file(img, 0x1000 + 4);
	assert_int_equal(boot_load_elf_file(gm, trunc, &entry, &lo, &hi), BT_ERR_FORMAT);
	unlink(trunc);
	free(trunc);
	free(v);
	free(img);
	guestmem_destroy(gm);
}

/* Random corruption of the headers and truncations: every result is either
 * a clean load inside RAM or BT_ERR_FORMAT, never a crash or a stray write. */
static void test_mutations(void **state)
{
	struct guestmem *gm;
	size_t size;
	uint8_t *img = read_file(BOOT_TEST_SYNTH_ELF, &size);
	uint8_t *v = malloc(size);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned ok = 0, bad = 0;

	assert_int_equal(guestmem_create(64ull << 20, &gm), BT_OK);
	FILE *devnull = fopen("/dev/null", "w");
	assert_non_null(devnull);
	bt_log_to(devnull); /* thousands of expected one-line refusals */
	for (unsigned it = 0; it < 20000; it++) {
		size_t n = size;
		memcpy(v, img, size);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned flips = 1 + (x & 3);
		for (unsigned k = 0; k < flips; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* header and program headers: the first 0xb0 bytes */
			v[(x >> 8) % 0xb0] ^= (uint8_t)(1u << ((x >> 4) & 7));
		}
		if ((x >> 40) % 8 == 0)
			n = (size_t)((x >> 20) % size);
		gpa_t entry = 0, lo = 0, hi = 0;
		enum bt_status s = boot_load_elf_image(gm, "fuzz", v, n, &entry, &lo, &hi);
		if (s == BT_OK) {
			ok++;
			assert_true(lo >= 0x100000 && lo <= entry && entry < hi);
			assert_true(hi <= (64ull << 20));
		} else {
			bad++;
			assert_int_equal(s, BT_ERR_FORMAT);
		}
	}
	bt_log_to(NULL);
	fclose(devnull);
	assert_true(ok > 0 && bad > 0);
	free(v);
	free(img);
	guestmem_destroy(gm);
}

/* ---- the same refusals from `pretrans build` -------------------------------- */

/* One malformed variant of the synthetic kernel: what to change, what the
 * boot loader and pbuild_run return, and a piece of their common message. */
struct bad_image {
	const char *what;
	void (*mutate)(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh);
	enum bt_status boot, build;
	const char *msg;
};

static void mut_none(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)eh, (void)ph, (void)sh;
}
static void mut_rel(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)ph, (void)sh;
	eh->e_type = ET_REL;
}
static void mut_huge_memsz(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)eh, (void)sh;
	ph[1].p_memsz = ~0ull - 0x1000;
}
static void mut_huge_vaddr(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)eh, (void)sh;
	ph[1].p_memsz = 0x7f000000000000ull; /* physically fine, wraps virtually */
}
static void mut_entry_out(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)ph, (void)sh;
	eh->e_entry = 0x5000000;
}
static void mut_entry_data(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)ph, (void)sh;
	eh->e_entry = 0x1200000; /* in the data segment */
}
static void mut_overlap_paddr(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)eh, (void)sh;
	ph[1].p_paddr = ph[0].p_paddr + 4;
}
static void mut_overlap_vaddr(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)eh, (void)sh;
	ph[1].p_vaddr = ph[0].p_vaddr + 4;
}
static void mut_no_pfx(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)eh, (void)sh;
	ph[0].p_flags &= ~(uint32_t)PF_X;
}
static void mut_no_execinstr(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)ph;
	for (unsigned i = 0; i < eh->e_shnum; i++)
		sh[i].sh_flags &= ~(uint64_t)SHF_EXECINSTR;
}
static void mut_no_phdrs(Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh)
{
	(void)ph, (void)sh;
	eh->e_phnum = 0;
}

/* Run f(arg) with the log captured; returns the captured text (malloc'd). */
static char *captured(enum bt_status (*f)(void *), void *arg, enum bt_status *s)
{
	FILE *t = tmpfile();
	assert_non_null(t);
	bt_log_to(t);
	*s = f(arg);
	bt_log_to(NULL);
	long n = ftell(t);
	assert_true(n >= 0);
	char *buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	rewind(t);
	assert_int_equal(fread(buf, 1, (size_t)n, t), (size_t)n);
	fclose(t);
	return buf;
}

struct both_arg {
	struct guestmem *gm;
	const char *path, *out;
};

static enum bt_status via_boot(void *p)
{
	struct both_arg *a = p;
	gpa_t entry, lo, hi;
	return boot_load_elf_file(a->gm, a->path, &entry, &lo, &hi);
}

static enum bt_status via_build(void *p)
{
	struct both_arg *a = p;
	struct pbuild_options o = {
	    .image_path = a->path, .out_path = a->out, .jobs = 1, .created = 1};
	struct pbuild_stats st;
	return pbuild_run(&o, &st);
}

/* Every malformed variant is refused by the boot loader and by
 * `pretrans build` (pbuild_run) alike, with the same one-line message
 * naming the file (both call elfimg_check_kernel); nothing is written to
 * RAM or to the output.  The unmodified image loads and builds. */
static void test_build_and_boot_agree(void **state)
{
	static const struct bad_image table[] = {
	    {"unmodified", mut_none, BT_OK, BT_OK, NULL},
	    {"ET_REL", mut_rel, BT_ERR_FORMAT, BT_ERR_UNSUPPORTED, "a relocatable object"},
	    {"p_memsz near 2^64", mut_huge_memsz, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "segment 1: physical range .* wraps around"},
	    {"virtual range wraps", mut_huge_vaddr, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "segment 1: virtual range .* wraps around"},
	    {"entry outside every segment", mut_entry_out, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "entry point 0x5000000 is outside every loadable segment"},
	    {"entry in a data segment", mut_entry_data, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "entry point 0x1200000 is in segment 1, which is not executable"},
	    {"PT_LOADs overlap by paddr", mut_overlap_paddr, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "segments 0 and 1 overlap in physical memory"},
	    {"PT_LOADs overlap by vaddr", mut_overlap_vaddr, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "segments 0 and 1 overlap in virtual memory"},
	    {"text in no executable segment", mut_no_pfx, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "no executable section .* lies in an executable \\(PF_X\\) loadable segment"},
	    {"no executable section", mut_no_execinstr, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "no executable section \\(SHF_ALLOC\\|SHF_EXECINSTR with contents\\)$"},
	    {"no program headers", mut_no_phdrs, BT_ERR_FORMAT, BT_ERR_FORMAT,
	     "bad or truncated program header table"},
	};
	struct guestmem *gm;
	size_t size;
	uint8_t *img = read_file(BOOT_TEST_SYNTH_ELF, &size);
	uint8_t *v = malloc(size);
	char dir[] = "/tmp/test_boot_agree.XXXXXX", path[64], out[64];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k.elf", dir);
	snprintf(out, sizeof(out), "%s/k.tcdb", dir);
	assert_int_equal(guestmem_create(64ull << 20, &gm), BT_OK);
	for (size_t t = 0; t < BT_ARRAY_SIZE(table); t++) {
		const struct bad_image *b = &table[t];
		struct both_arg a = {gm, path, out};
		memcpy(v, img, size);
		Elf64_Ehdr *eh = (Elf64_Ehdr *)v;
		b->mutate(eh, (Elf64_Phdr *)(v + eh->e_phoff), (Elf64_Shdr *)(v + eh->e_shoff));
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(v, 1, size, f), size);
		fclose(f);
		unlink(out);
		memset(ram(gm, 0x1000000), 0x5a, 0x400000);

		enum bt_status sb, sp;
		char *lb = captured(via_boot, &a, &sb);
		char *lp = captured(via_build, &a, &sp);
		print_message("%-30s boot %d, build %d: %s", b->what, sb, sp,
			      *lb ? lb : "(no message)\n");
		assert_int_equal(sb, b->boot);
		assert_int_equal(sp, b->build);
		if (b->msg) {
			/* one line, naming the file, matching, and the same from both */
			char pat[512];
			snprintf(pat, sizeof(pat), "^[a-z_]+: error: %s: .*%s", path, b->msg);
			assert_non_null(strchr(lb, '\n'));
			assert_int_equal(strchr(lb, '\n') - lb, (long)strlen(lb) - 1);
			assert_string_equal(lb, lp);
			regex_t re;
			assert_int_equal(regcomp(&re, pat, REG_EXTENDED | REG_NEWLINE), 0);
			int rc = regexec(&re, lb, 0, NULL, 0);
			if (rc)
				print_error("/%s/ does not match %s", pat, lb);
			assert_int_equal(rc, 0);
			regfree(&re);
			assert_int_equal(*ram(gm, 0x1000000), 0x5a);
			assert_int_equal(*ram(gm, 0x1200000), 0x5a);
			assert_int_not_equal(access(out, F_OK), 0);
		}
		free(lb);
		free(lp);
	}
	unlink(path);
	unlink(out);
	rmdir(dir);
	guestmem_destroy(gm);
	free(v);
	free(img);
}

static void test_boot_errors(void **state)
{
	struct guestmem *gm;
	struct boot_state st;
	struct boot_layout l;
	char *longcmd = malloc(4096);
	char *big = temp_file(NULL, 20u << 20);
	struct boot_config cfg = {.kernel_path = BOOT_TEST_SYNTH_ELF, .cmdline = longcmd};

	memset(longcmd, 'a', 2048);
	longcmd[2048] = 0; /* 2048 chars + NUL: one too many */
	assert_int_equal(guestmem_create(32ull << 20, &gm), BT_OK);
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_ERR_INVALID);
	longcmd[2047] = 0; /* exactly the limit */
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_OK);
	assert_int_equal(l.cmdline_size, 2048);
	/* kernel ends at ~19.5 MiB, 32 MiB of RAM: a 20 MiB initrd cannot fit */
	cfg.cmdline = "x";
	cfg.initrd_path = big;
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_ERR_RANGE);
	cfg.initrd_path = "/nonexistent/initrd";
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_ERR_IO);
	cfg.initrd_path = NULL;
	cfg.kernel_path = "/nonexistent/vmlinux";
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_ERR_IO);
	unlink(big);
	free(big);
	free(longcmd);
	guestmem_destroy(gm);
	/* 1 MiB of RAM cannot hold a kernel */
	assert_int_equal(guestmem_create(1ull << 20, &gm), BT_OK);
	cfg.kernel_path = BOOT_TEST_SYNTH_ELF;
	assert_int_equal(boot_load(gm, &cfg, &st, &l), BT_ERR_INVALID);
	guestmem_destroy(gm);
}

/* A synthetic bzImage: boot sector, one setup sector, `payload` bytes of
 * protected-mode code, with a protocol 2.15 64-bit setup header. */
#define BZ_PAYLOAD 8192u
static uint8_t *make_bzimage(size_t *size)
{
	*size = 2 * 512 + BZ_PAYLOAD;
	uint8_t *p = calloc(1, *size);
	assert_non_null(p);
	p[0x1f1] = 1;		     /* setup_sects */
	setle(p + 0x1fe, 2, 0xaa55); /* boot flag */
	p[0x200] = 0xeb;	     /* jmp: the header ends at 0x202 + 0x66 */
	p[0x201] = 0x66;
	memcpy(p + 0x202, "HdrS", 4);
	setle(p + 0x206, 2, 0x020f);	/* version */
	setle(p + 0x230, 4, 0x200000);	/* kernel_alignment */
	p[0x234] = 1;			/* relocatable_kernel */
	setle(p + 0x236, 2, 0x1);	/* xloadflags: XLF_KERNEL_64 */
	setle(p + 0x238, 4, 2047);	/* cmdline_size */
	setle(p + 0x258, 8, 0x1000000); /* pref_address */
	setle(p + 0x260, 4, 0x100000);	/* init_size */
	for (unsigned i = 0; i < BZ_PAYLOAD; i++)
		p[1024 + i] = (uint8_t)(i * 13 + 5);
	return p;
}

static enum bt_status boot_bz(const uint8_t *img, size_t size, uint64_t ram_bytes,
			      struct boot_state *st, struct boot_layout *l, bool *ram_untouched)
{
	struct guestmem *gm;
	char *path = temp_file(img, size);
	struct boot_config cfg = {.kernel_path = path, .cmdline = "console=ttyS0"};
	assert_int_equal(guestmem_create(ram_bytes, &gm), BT_OK);
	enum bt_status s = boot_load(gm, &cfg, st, l);
	if (s == BT_OK) {
		/* the payload at the preferred address, the entry 0x200 in */
		assert_memory_equal(ram(gm, 0x1000000), img + 1024, BZ_PAYLOAD);
		const uint8_t *zp = ram(gm, BOOT_ZERO_PAGE_ADDR);
		/* the image's header in the zero page, the loader's fields on top */
		assert_memory_equal(zp + 0x1f1, img + 0x1f1, 0x210 - 0x1f1);
		assert_int_equal(le(zp + 0x258, 8), 0x1000000);
		assert_int_equal(le(zp + 0x260, 4), 0x100000);
		assert_int_equal(zp[0x210], 0xff);		/* type_of_loader */
		assert_true(zp[0x211] & 1);			/* LOADED_HIGH */
		assert_int_equal(le(zp + 0x214, 4), 0x1000000); /* code32_start */
		assert_int_equal(le(zp + 0x228, 4), BOOT_CMDLINE_ADDR);
	}
	if (ram_untouched)
		*ram_untouched = *ram(gm, 0x1000000) == 0;
	guestmem_destroy(gm);
	unlink(path);
	free(path);
	return s;
}

/* A bzImage boots through its 64-bit entry; a malformed or unsupported one
 * is refused before any RAM is written. */
static void test_bzimage(void **state)
{
	(void)state;
	size_t size;
	uint8_t *img = make_bzimage(&size);
	struct boot_state st;
	struct boot_layout l;
	bool untouched;
	assert_int_equal(boot_bz(img, size, 64ull << 20, &st, &l, NULL), BT_OK);
	assert_true(l.bzimage);
	assert_int_equal(l.entry, 0x1000200);
	assert_int_equal(st.rip, 0x1000200);
	assert_int_equal(st.rsi, BOOT_ZERO_PAGE_ADDR);
	assert_int_equal(l.kernel_start, 0x1000000);
	assert_int_equal(l.kernel_end, 0x1100000);
	assert_string_equal(l.build_id, "");
	assert_string_equal(l.kernel_version, "");
	/* the setup header's kernel_version: inside the setup, NUL-terminated */
	static const char kv[] = "6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP";
	memcpy(img + 0x300, kv, sizeof(kv));
	setle(img + 0x20e, 2, 0x100);
	assert_int_equal(boot_bz(img, size, 64ull << 20, &st, &l, NULL), BT_OK);
	assert_string_equal(l.kernel_version, kv);
	setle(img + 0x20e, 2, 0x200); /* at the protected-mode part: not the setup's */
	assert_int_equal(boot_bz(img, size, 64ull << 20, &st, &l, NULL), BT_OK);
	assert_string_equal(l.kernel_version, "");
	memset(img + 0x300, 'x', 0x100); /* no NUL before the setup ends */
	setle(img + 0x20e, 2, 0x100);
	assert_int_equal(boot_bz(img, size, 64ull << 20, &st, &l, NULL), BT_OK);
	assert_string_equal(l.kernel_version, "");
	memset(img + 0x300, 0, 0x100);
	setle(img + 0x20e, 2, 0);

	static const struct {
		unsigned off, n;
		uint64_t v;
		enum bt_status want;
	} bad[] = {
	    {0x206, 2, 0x020b, BT_ERR_UNSUPPORTED}, /* protocol 2.11: no 64-bit entry */
	    {0x236, 2, 0, BT_ERR_UNSUPPORTED},	    /* no XLF_KERNEL_64 */
	    {0x1f1, 1, 200, BT_ERR_FORMAT},	    /* setup beyond the file */
	    {0x258, 8, 0x1000001, BT_ERR_FORMAT},   /* preferred address not aligned */
	    {0x258, 8, 0x80000, BT_ERR_FORMAT},	    /* below 1 MiB */
	    {0x260, 4, 0x40000000, BT_ERR_RANGE},   /* init_size past the RAM */
	    {0x201, 1, 0x02, BT_ERR_FORMAT},	    /* header too short */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *m = malloc(size);
		memcpy(m, img, size);
		setle(m + bad[i].off, bad[i].n, bad[i].v);
		assert_int_equal(boot_bz(m, size, 64ull << 20, &st, &l, &untouched), bad[i].want);
		assert_true(untouched);
		free(m);
	}
	free(img);
}

/* A bzImage's kernel_version against a vmlinux's linux_banner (Debian's
 * 6.1 cloud kernel's own strings, and near misses). */
static void test_kernel_version_matches(void **state)
{
	(void)state;
	static const char kv[] = "6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP "
				 "PREEMPT_DYNAMIC Debian 6.1.176-1 (2026-07-02)";
	static const char banner[] =
	    "Linux version 6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
	    "12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
	    "PREEMPT_DYNAMIC Debian 6.1.176-1 (2026-07-02)\n";
	assert_true(boot_kernel_version_matches(banner, kv));
	/* another release, another build of the same release, another builder */
	assert_false(boot_kernel_version_matches(
	    banner, "6.1.0-47-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC "
		    "Debian 6.1.176-1 (2026-07-02)"));
	assert_false(boot_kernel_version_matches(
	    banner, "6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC "
		    "Debian 6.1.170-1 (2026-05-02)"));
	assert_false(boot_kernel_version_matches(
	    banner, "6.1.0-50-cloud-amd64 (me@example.org) #1 SMP PREEMPT_DYNAMIC Debian "
		    "6.1.176-1 (2026-07-02)"));
	/* a version that is only the banner's tail, a banner without its newline
	 * or its prefix, empty strings */
	assert_false(boot_kernel_version_matches(banner, "(2026-07-02)"));
	char cut[sizeof(banner)];
	memcpy(cut, banner, sizeof(banner));
	cut[sizeof(banner) - 2] = 0;
	assert_false(boot_kernel_version_matches(cut, kv));
	assert_false(boot_kernel_version_matches(banner + 6, kv));
	assert_false(boot_kernel_version_matches(banner, ""));
	assert_false(boot_kernel_version_matches("", kv));
}

int main(void)
{
	test_private_config();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boot_synthetic),
	    cmocka_unit_test(test_boot_high_memory),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_mutations),
	    cmocka_unit_test(test_boot_errors),
	    cmocka_unit_test(test_bzimage),
	    cmocka_unit_test(test_kernel_version_matches),
	    cmocka_unit_test(test_boot_guest_kernel),
	    cmocka_unit_test(test_build_and_boot_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
