/*
 * The boot loader: puts an x86-64 ELF kernel (ET_EXEC: our test guest or an
 * unmodified Linux vmlinux) into guest RAM and prepares the machine state
 * of the Linux 64-bit boot protocol, with Firecracker's low-memory layout
 * (/work/shared/notes/linux-direct-boot.md section 1, docs/mmu.md):
 *
 *   0x000500  GDT: 0x08 code32, 0x10 __BOOT_CS (64-bit), 0x18 __BOOT_DS,
 *             0x20 TSS (16-byte descriptor); limit 0x2f
 *   0x000530  IDT (empty, limit 7)
 *   0x000540  TSS (104 bytes of zeros)
 *   0x007000  zero page (struct boot_params), %rsi
 *   0x008ff0  initial %rsp
 *   0x009000  PML4   0x00a000  PDPT   0x00b000..0x00efff  4 PDs (2 MiB pages,
 *             identity map of the first 4 GiB)
 *   0x020000  command line (at most 2048 bytes with its NUL)
 *   kernel    PT_LOAD segments at p_paddr (must be RAM at or above 1 MiB)
 *   initrd    page-aligned at the top of low RAM
 *
 * The kernel is read through pretrans/elf (elfimg, opened without hashing
 * the file).  Everything read from the ELF or initrd file is untrusted and
 * validated; a malformed image is BT_ERR_FORMAT with a one-line message
 * naming it.
 */
#ifndef BT_RUNTIME_BOOT_BOOT_H
#define BT_RUNTIME_BOOT_BOOT_H

#include "pretrans/base/sha256.h"
#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "runtime/mem/guestmem.h"

#define BOOT_GDT_ADDR	    0x500ull
#define BOOT_IDT_ADDR	    0x530ull
#define BOOT_TSS_ADDR	    0x540ull
#define BOOT_ZERO_PAGE_ADDR 0x7000ull
#define BOOT_STACK_TOP	    0x8ff0ull
#define BOOT_PML4_ADDR	    0x9000ull
#define BOOT_PDPT_ADDR	    0xa000ull
#define BOOT_PD_ADDR	    0xb000ull
#define BOOT_PD_COUNT	    4 /* 4 x 1 GiB of 2 MiB pages */
#define BOOT_CMDLINE_ADDR   0x20000ull
#define BOOT_CMDLINE_MAX    2048	/* bytes including the NUL (COMMAND_LINE_SIZE) */
#define BOOT_KERNEL_MIN	    0x100000ull /* segments must start at or above 1 MiB */
#define BOOT_EBDA_START	    0x9fc00ull	/* e820: reserved from here to 1 MiB */

#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define BOOT_TR 0x20

/* A segment register with its cached descriptor.  attr = descriptor bits
 * 40..55 as one value: access byte | (flags nibble << 12), e.g. 0xa09b. */
struct boot_segment {
	uint16_t selector;
	uint64_t base;
	uint32_t limit; /* byte granular, expanded (0xffffffff for 4G flat) */
	uint16_t attr;
};

/* Initial vCPU state of the 64-bit boot protocol (all other GPRs 0). */
struct boot_state {
	uint64_t rip; /* physical entry (e_entry, identity mapped) */
	uint64_t rsi; /* zero page gpa */
	uint64_t rsp;
	uint64_t rflags; /* 0x2: IF clear */
	uint64_t cr0;	 /* PE | ET | NE | PG */
	uint64_t cr3;	 /* BOOT_PML4_ADDR */
	uint64_t cr4;	 /* PAE */
	uint64_t efer;	 /* LME | LMA */
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint64_t idt_base;
	uint16_t idt_limit;
	struct boot_segment cs, ds, es, ss, fs, gs, tr;
};

/* What the loader placed where (for tests, logs and the runtime). */
struct boot_layout {
	gpa_t kernel_start; /* lowest p_paddr of a loaded PT_LOAD */
	gpa_t kernel_end;   /* highest p_paddr + p_memsz (exclusive) */
	gpa_t entry;	    /* = boot_state.rip */
	gpa_t zero_page;
	gpa_t cmdline;
	uint32_t cmdline_size; /* strlen + 1 */
	gpa_t initrd;	       /* 0 if none */
	uint64_t initrd_size;
	gpa_t pml4;
	gpa_t ident_map_end; /* identity map covers [0, ident_map_end) */
	unsigned e820_entries;
	/* The kernel image's identity (what a translation database is keyed
	 * by): its NT_GNU_BUILD_ID in lower-case hex, "" when it has none;
	 * the SHA-256 of the file in hex only when boot_config.hash_image
	 * asked for it and there is no build-id, "" otherwise. */
	char build_id[129];
	char sha256[2 * SHA256_LEN + 1];
	/* the kernel file was a bzImage (its decompressor runs first; its
	 * identity is not a vmlinux's: build_id and sha256 stay "") */
	bool bzimage;
	/* a bzImage's setup-header kernel_version string ("R (BY@HOST) V",
	 * arch/x86/boot/version.c), "" when it has none inside the setup */
	char kernel_version[256];
};

struct boot_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: no initrd */
	const char *cmdline;	 /* NULL: empty */
	bool hash_image;	 /* fill boot_layout.sha256 when there is no build-id */
};

/* Is kver (a bzImage's kernel_version, "R (BY@HOST) V") the kernel whose
 * linux_banner is banner ("Linux version R (BY@HOST) (COMPILER) V\n")?
 * Both come from the same build's UTS_RELEASE, LINUX_COMPILE_BY/HOST and
 * UTS_VERSION; false when either is empty or not of that shape. */
bool boot_kernel_version_matches(const char *banner, const char *kver);

/* The whole job: kernel + zero page + cmdline + initrd + tables + state.
 * The kernel is an x86-64 ELF (vmlinux) or a bzImage (boot_bzimage.c: its
 * 64-bit entry, the decompressor running first). */
enum bt_status boot_load(struct guestmem *gm, const struct boot_config *cfg, struct boot_state *st,
			 struct boot_layout *layout);

/*
 * The pieces, for tests and other loaders.  boot_load_elf_image() loads an
 * ELF held in memory (name is used in messages); it zeroes each segment's
 * bss.  *entry is the physical entry point (a virtual e_entry inside a
 * PT_LOAD's vaddr range is converted to its physical address).
 */
enum bt_status boot_load_elf_image(struct guestmem *gm, const char *name, const uint8_t *img,
				   size_t size, gpa_t *entry, gpa_t *lo, gpa_t *hi);
enum bt_status boot_load_elf_file(struct guestmem *gm, const char *path, gpa_t *entry, gpa_t *lo,
				  gpa_t *hi);

/* e820 entry types. */
#define BOOT_E820_RAM	   1
#define BOOT_E820_RESERVED 2

#endif
