/*
 * Unit test of the guest kernel image's boot metadata ($(BUILD)/guests/
 * kernel.elf, or $BT_KERNEL_ELF), read with libelf:
 *  - ELF64 x86-64 executable; every PT_LOAD has a low physical address
 *    (inside the first 1 GiB that the 64-bit boot protocol identity-maps)
 *    and a higher-half virtual address, with one constant offset;
 *  - e_entry (the 64-bit boot protocol entry, a physical address) lies in
 *    the executable PT_LOAD's physical range;
 *  - a PT_NOTE segment (what QEMU's -kernel reads) holds the PVH note:
 *    name "Xen", type 18 (XEN_ELFNOTE_PHYS32_ENTRY), whose 32-bit entry also
 *    lies in the executable PT_LOAD's physical range.
 * A missing kernel is a failure with a message, never a skip.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <gelf.h>
#include <libelf.h>

#ifndef GU_KERNEL_PATH
#define GU_KERNEL_PATH "build/guests/kernel.elf"
#endif

#define HIGHER_HALF  0xffffffff80000000ull
#define IDENTITY_END (1ull << 30)

static int g_fd = -1;
static Elf *g_elf;

static int setup(void **state)
{
	const char *path = getenv("BT_KERNEL_ELF");

	if (!path)
		path = GU_KERNEL_PATH;
	elf_version(EV_CURRENT);
	g_fd = open(path, O_RDONLY);
	if (g_fd < 0) {
		fprintf(stderr,
			"test_elfnote: cannot open the guest kernel %s: build it with "
			"`make BUILD=... $BUILD/guests/kernel.elf` or set BT_KERNEL_ELF\n",
			path);
		return -1;
	}
	g_elf = elf_begin(g_fd, ELF_C_READ, NULL);
	if (!g_elf || elf_kind(g_elf) != ELF_K_ELF) {
		fprintf(stderr, "test_elfnote: %s is not an ELF file\n", path);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	elf_end(g_elf);
	close(g_fd);
	return 0;
}

/* The executable PT_LOAD (exactly one expected). */
static GElf_Phdr text_phdr(void)
{
	size_t n;
	GElf_Phdr ph, text = {0};
	int found = 0;

	assert_int_equal(elf_getphdrnum(g_elf, &n), 0);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(gelf_getphdr(g_elf, (int)i, &ph));
		if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
			text = ph;
			found++;
		}
	}
	assert_int_equal(found, 1);
	return text;
}

static void test_header(void **state)
{
	GElf_Ehdr eh;

	assert_non_null(gelf_getehdr(g_elf, &eh));
	assert_int_equal(gelf_getclass(g_elf), ELFCLASS64);
	assert_int_equal(eh.e_machine, EM_X86_64);
	assert_int_equal(eh.e_type, ET_EXEC);
}

static void test_load_segments(void **state)
{
	size_t n;
	GElf_Phdr ph;
	int loads = 0;
	uint64_t delta = 0;

	assert_int_equal(elf_getphdrnum(g_elf, &n), 0);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(gelf_getphdr(g_elf, (int)i, &ph));
		if (ph.p_type != PT_LOAD)
			continue;
		/* low physical, identity-mapped by the boot protocol */
		assert_true(ph.p_paddr >= 0x100000);
		assert_true(ph.p_paddr + ph.p_memsz <= IDENTITY_END);
		/* higher-half virtual */
		assert_true(ph.p_vaddr >= HIGHER_HALF);
		assert_true(ph.p_filesz <= ph.p_memsz);
		if (loads == 0) {
			delta = ph.p_vaddr - ph.p_paddr;
			/* the first segment is 2 MiB aligned, as Linux requires */
			assert_int_equal(ph.p_paddr % 0x200000, 0);
		}
		assert_int_equal(ph.p_vaddr - ph.p_paddr, delta);
		loads++;
	}
	assert_true(loads >= 1);
}

static void test_entry(void **state)
{
	GElf_Ehdr eh;
	GElf_Phdr text = text_phdr();

	assert_non_null(gelf_getehdr(g_elf, &eh));
	/* physical: the 64-bit boot protocol enters with only low memory mapped */
	assert_true(eh.e_entry >= text.p_paddr);
	assert_true(eh.e_entry < text.p_paddr + text.p_filesz);
}

static void test_pvh_note(void **state)
{
	size_t n;
	GElf_Phdr ph;
	int found = 0;
	uint64_t entry = 0;
	GElf_Phdr text = text_phdr();

	assert_int_equal(elf_getphdrnum(g_elf, &n), 0);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(gelf_getphdr(g_elf, (int)i, &ph));
		if (ph.p_type != PT_NOTE)
			continue;
		Elf_Data *d =
		    elf_getdata_rawchunk(g_elf, (int64_t)ph.p_offset, ph.p_filesz, ELF_T_NHDR);
		assert_non_null(d);
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		while (off < d->d_size &&
		       (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			const char *name = (const char *)d->d_buf + name_off;
			if (nh.n_type == 18 && nh.n_namesz == 4 && memcmp(name, "Xen", 4) == 0) {
				assert_true(nh.n_descsz == 4 || nh.n_descsz == 8);
				const uint8_t *desc = (const uint8_t *)d->d_buf + desc_off;
				uint32_t lo;
				memcpy(&lo, desc, 4);
				entry = lo;
				if (nh.n_descsz == 8) {
					uint32_t hi;
					memcpy(&hi, desc + 4, 4);
					assert_int_equal(hi, 0); /* a 32-bit entry */
				}
				found++;
			}
		}
	}
	assert_int_equal(found, 1);
	assert_true(entry >= text.p_paddr);
	assert_true(entry < text.p_paddr + text.p_filesz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header),
	    cmocka_unit_test(test_load_segments),
	    cmocka_unit_test(test_entry),
	    cmocka_unit_test(test_pvh_note),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
