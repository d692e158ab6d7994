/*
 * The boot loader (see boot.h for the memory layout and docs/mmu.md for the
 * references).
 *
 * Owns: validating the kernel ELF (read through pretrans/elf's elfimg and
 * checked by elfimg_check_kernel, the rules `pretrans build` applies too,
 * with the loader's own rules on top: ET_EXEC, RAM layout) and the initrd
 * file, writing them into
 * guest RAM, and writing the loader structures of the Linux
 * 64-bit boot protocol (zero page, e820, command line, identity page
 * tables, GDT/IDT/TSS) plus the initial register state.
 *
 * Invariants
 *  1. Nothing is written to guest RAM for an ELF that fails validation:
 *     elfimg checks the whole file at open, elfimg_check_kernel the image
 *     rules, then every PT_LOAD is checked against the RAM layout (pass 1)
 *     before any byte is copied (pass 2).
 *  2. Loaded PT_LOAD segments lie entirely in RAM, at or above 1 MiB (the
 *     loader structures and the e820 reserved area live below), inside
 *     the identity map, and below the initrd.
 *  3. The zero page is all zeros except the fields written here; the
 *     sentinel at 0x1ef stays 0 so sanitize_boot_params() keeps them.
 */
#include "runtime/boot/boot_int.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pretrans/base/assert.h"
#include "pretrans/base/le.h"
#include "pretrans/base/log.h"
#include "pretrans/elf/elfimg.h"

/* boot_params offsets (Documentation/arch/x86/zero-page.rst, boot.rst). */
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE  0x0c4
#define ZP_EXT_CMD_LINE_PTR  0x0c8
#define ZP_E820_ENTRIES	     0x1e8
#define ZP_SENTINEL	     0x1ef
#define ZP_BOOT_FLAG	     0x1fe
#define ZP_HEADER	     0x202
#define ZP_VERSION	     0x206
#define ZP_TYPE_OF_LOADER    0x210
#define ZP_LOADFLAGS	     0x211
#define ZP_RAMDISK_IMAGE     0x218
#define ZP_RAMDISK_SIZE	     0x21c
#define ZP_CMD_LINE_PTR	     0x228
#define ZP_INITRD_ADDR_MAX   0x22c
#define ZP_KERNEL_ALIGNMENT  0x230
#define ZP_CMDLINE_SIZE	     0x238
#define ZP_INIT_SIZE	     0x260
#define ZP_E820_TABLE	     0x2d0
#define ZP_E820_MAX	     128
#define E820_ENTRY_SIZE	     20

#define IDENT_MAP_END (BOOT_PD_COUNT * (1ull << 30))
#define PTE_P_RW      0x3ull
#define PTE_PS	      0x80ull
#define GDT_ENTRIES   6 /* null, code32, code64, data, TSS (two slots) */
#define TSS_LIMIT     0x67
#define CR0_PE	      0x1ull
#define CR0_ET	      0x10ull
#define CR0_NE	      0x20ull
#define CR0_PG	      0x80000000ull
#define CR4_PAE	      0x20ull
#define EFER_LME      0x100ull
#define EFER_LMA      0x400ull
#define LOADED_HIGH   0x01

/* A GDT descriptor from Firecracker-style flags (e.g. 0xa09b), base, limit. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

static bool in_range(uint64_t a, uint64_t lo, uint64_t len)
{
	return a >= lo && a - lo < len;
}

/* elfimg refuses a file with one logged line; a kernel of another class,
 * byte order or machine, or a relocatable object (BT_ERR_UNSUPPORTED
 * there) is a malformed kernel here. */
static enum bt_status open_status(enum bt_status s)
{
	return s == BT_ERR_UNSUPPORTED ? BT_ERR_FORMAT : s;
}

/* The image rules shared with `pretrans build` (elfimg_check_kernel: type,
 * program header table, PT_LOAD ranges and overlaps, text, entry), then
 * the loader's own: an executable, not a shared object (segments are
 * loaded at p_paddr, nothing is relocated). */
static enum bt_status check_image(const struct elfimg *e)
{
	BT_TRY(open_status(elfimg_check_kernel(e)));
	if (e->type != ET_EXEC) {
		bt_err(LOG_ELF,
		       "%s: ELF type %u (%s) is not a kernel: btvm boots an ET_EXEC vmlinux "
		       "(extract-vmlinux or Debian's linux-image-*-dbg)",
		       e->path, e->type,
		       e->type == ET_DYN   ? "ET_DYN, a PIE or shared object"
		       : e->type == ET_REL ? "ET_REL, an object file or module"
					   : "not an executable");
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* The RAM-layout rule for one PT_LOAD (elfimg_open checked its file bytes
 * and p_filesz <= p_memsz). */
static enum bt_status check_load(struct guestmem *gm, const struct elfimg *e, unsigned i,
				 const struct elfimg_segment *ph)
{
	if (ph->paddr < BOOT_KERNEL_MIN || ph->paddr + ph->memsz < ph->paddr ||
	    ph->paddr + ph->memsz > IDENT_MAP_END || !guestmem_is_ram(gm, ph->paddr, ph->memsz)) {
		bt_err(LOG_ELF,
		       "%s: segment %u: physical [%#llx, +%#llx) is not guest RAM between 1 MiB "
		       "and the end of low RAM (%#llx): more --mem?",
		       e->path, i, (unsigned long long)ph->paddr, (unsigned long long)ph->memsz,
		       (unsigned long long)guestmem_low_end(gm));
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* Load the PT_LOAD segments of an opened image into guest RAM. */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Map the image bytes [p, p + len) in one system call before copying them:
 * a 600 MB vmlinux is a file mapping, and faulting its ~40 MB of segments
 * in 64 KiB at a time cost about 90 ms of a Debian boot.  Only a speed-up
 * (an image in memory, or a kernel without MADV_POPULATE_READ, copies as
 * before). */
static void populate_source(const uint8_t *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(GUEST_PAGE_SIZE - 1);
	if (len)
		(void)madvise((void *)lo, (uintptr_t)p + len - lo, MADV_POPULATE_READ);
}

static enum bt_status load_segments(struct guestmem *gm, const struct elfimg *e, gpa_t *entry,
				    gpa_t *lo, gpa_t *hi)
{
	const struct elfimg_segment *ph = e->segs;
	gpa_t min = ~0ull, max = 0, ent = 0;
	bool have_entry = false;
	unsigned nload = 0;

	BT_TRY(check_image(e));
	/* Pass 1: validate everything, find the range and the entry. */
	for (unsigned i = 0; i < e->nsegs; i++) {
		if (ph[i].type != PT_LOAD || ph[i].memsz == 0)
			continue;
		BT_TRY(check_load(gm, e, i, &ph[i]));
		nload++;
		min = BT_MIN(min, ph[i].paddr);
		max = BT_MAX(max, ph[i].paddr + ph[i].memsz);
		if (!have_entry && in_range(e->entry, ph[i].paddr, ph[i].memsz)) {
			ent = e->entry;
			have_entry = true;
		}
	}
	/* A virtual e_entry: convert through the segment that contains it. */
	for (unsigned i = 0; !have_entry && i < e->nsegs; i++) {
		if (ph[i].type == PT_LOAD && ph[i].memsz &&
		    in_range(e->entry, ph[i].vaddr, ph[i].memsz)) {
			ent = ph[i].paddr + (e->entry - ph[i].vaddr);
			have_entry = true;
		}
	}
	/* check_image found a loadable segment and the entry's segment. */
	BT_ASSERT(nload > 0 && have_entry);

	/* Pass 2: copy file bytes, zero the rest (bss). */
	for (unsigned i = 0; i < e->nsegs; i++) {
		uint8_t *dst;
		if (ph[i].type != PT_LOAD || ph[i].memsz == 0)
			continue;
		dst = guestmem_gpa_to_host(gm, ph[i].paddr, ph[i].memsz);
		guestmem_notify_write(gm, ph[i].paddr, ph[i].memsz);
		populate_source(e->map + ph[i].offset, ph[i].filesz);
		memcpy(dst, e->map + ph[i].offset, ph[i].filesz);
		memset(dst + ph[i].filesz, 0, ph[i].memsz - ph[i].filesz);
	}
	bt_info(LOG_ELF, "%s: loaded %u segments at [%#llx, %#llx), entry %#llx", e->path, nload,
		(unsigned long long)min, (unsigned long long)max, (unsigned long long)ent);
	*entry = ent;
	*lo = min;
	*hi = max;
	return BT_OK;
}

enum bt_status boot_load_elf_image(struct guestmem *gm, const char *name, const uint8_t *img,
				   size_t size, gpa_t *entry, gpa_t *lo, gpa_t *hi)
{
	struct elfimg *e;
	enum bt_status st;

	if (!gm || !name || (!img && size) || !entry || !lo || !hi)
		return BT_ERR_INVALID;
	BT_TRY(open_status(elfimg_open_mem_nohash(name, img, size, &e)));
	st = load_segments(gm, e, entry, lo, hi);
	elfimg_close(e);
	return st;
}

enum bt_status boot_load_elf_file(struct guestmem *gm, const char *path, gpa_t *entry, gpa_t *lo,
				  gpa_t *hi)
{
	struct elfimg *e;
	enum bt_status st;

	if (!gm || !path || !entry || !lo || !hi)
		return BT_ERR_INVALID;
	BT_TRY(open_status(elfimg_open_nohash(path, &e)));
	st = load_segments(gm, e, entry, lo, hi);
	elfimg_close(e);
	return st;
}

/* The kernel of boot_load: its segments, and its identity into l.  The
 * file is hashed only when asked and it has no build-id (hashing a 600 MB
 * vmlinux costs a third of a second); a failed hash writes no RAM. */
static enum bt_status load_kernel(struct guestmem *gm, const struct boot_config *cfg,
				  struct boot_layout *l)
{
	struct elfimg *e;
	enum bt_status st;

	BT_TRY(open_status(elfimg_open_nohash(cfg->kernel_path, &e)));
	elfimg_build_id_hex(e, l->build_id);
	if (cfg->hash_image && !e->build_id_len) {
		if ((st = elfimg_hash(e)) != BT_OK)
			goto err_close;
		sha256_hex(e->sha256, l->sha256);
	}
	st = load_segments(gm, e, &l->entry, &l->kernel_start, &l->kernel_end);
err_close:
	elfimg_close(e);
	return st;
}

/* Map a whole file read-only.  An empty file maps to (NULL, 0). */
static enum bt_status map_file(const char *path, const uint8_t **img, size_t *size)
{
	struct stat sb;
	void *p;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		bt_err(LOG_ELF, "%s: cannot open: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		bt_err(LOG_ELF, "%s: not a regular file", path);
		close(fd);
		return BT_ERR_IO;
	}
	*size = (size_t)sb.st_size;
	*img = NULL;
	if (*size) {
		p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			bt_err(LOG_ELF, "%s: cannot map: %s", path, strerror(errno));
			close(fd);
			return BT_ERR_IO;
		}
		*img = p;
	}
	close(fd);
	return BT_OK;
}

static void unmap_file(const uint8_t *img, size_t size)
{
	if (img)
		munmap((void *)(uintptr_t)img, size);
}

/* e820: [0, EBDA) RAM, [EBDA, 1 MiB) reserved, [1 MiB, low end) RAM, high RAM. */
static unsigned write_e820(struct guestmem *gm, uint8_t *zp)
{
	struct {
		uint64_t addr, size;
		uint32_t type;
	} e[4];
	unsigned n = 0;

	e[n++] = (typeof(e[0])){0, BOOT_EBDA_START, BOOT_E820_RAM};
	e[n++] =
	    (typeof(e[0])){BOOT_EBDA_START, BOOT_KERNEL_MIN - BOOT_EBDA_START, BOOT_E820_RESERVED};
	if (guestmem_low_end(gm) > BOOT_KERNEL_MIN)
		e[n++] = (typeof(e[0])){BOOT_KERNEL_MIN, guestmem_low_end(gm) - BOOT_KERNEL_MIN,
					BOOT_E820_RAM};
	for (size_t r = 1; r < guestmem_nregions(gm); r++) {
		const struct guestmem_region *reg = guestmem_region(gm, r);
		e[n++] = (typeof(e[0])){reg->gpa, reg->size, BOOT_E820_RAM};
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = zp + ZP_E820_TABLE + i * E820_ENTRY_SIZE;
		bt_put64(p, e[i].addr);
		bt_put64(p + 8, e[i].size);
		bt_put32(p + 16, e[i].type);
	}
	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	return n;
}

static void write_page_tables(struct guestmem *gm)
{
	uint8_t *pml4 = guestmem_gpa_to_host(gm, BOOT_PML4_ADDR, GUEST_PAGE_SIZE);
	uint8_t *pdpt = guestmem_gpa_to_host(gm, BOOT_PDPT_ADDR, GUEST_PAGE_SIZE);

	memset(pml4, 0, GUEST_PAGE_SIZE);
	memset(pdpt, 0, GUEST_PAGE_SIZE);
	bt_put64(pml4, BOOT_PDPT_ADDR | PTE_P_RW);
	for (unsigned i = 0; i < BOOT_PD_COUNT; i++) {
		gpa_t pd_gpa = BOOT_PD_ADDR + i * GUEST_PAGE_SIZE;
		uint8_t *pd = guestmem_gpa_to_host(gm, pd_gpa, GUEST_PAGE_SIZE);
		bt_put64(pdpt + 8 * i, pd_gpa | PTE_P_RW);
		for (unsigned j = 0; j < 512; j++)
			bt_put64(pd + 8 * j,
				 (((uint64_t)i << 30) + ((uint64_t)j << 21)) | PTE_P_RW | PTE_PS);
	}
}

static void write_gdt(struct guestmem *gm, struct boot_state *st)
{
	uint8_t *gdt = guestmem_gpa_to_host(gm, BOOT_GDT_ADDR, GDT_ENTRIES * 8);
	uint8_t *tss = guestmem_gpa_to_host(gm, BOOT_TSS_ADDR, TSS_LIMIT + 1);
	uint8_t *idt = guestmem_gpa_to_host(gm, BOOT_IDT_ADDR, 8);

	bt_put64(gdt + 0x00, 0);
	bt_put64(gdt + 0x08, gdt_entry(0xc09b, 0, 0xfffff)); /* 32-bit code, unused */
	bt_put64(gdt + BOOT_CS, gdt_entry(0xa09b, 0, 0xfffff));
	bt_put64(gdt + BOOT_DS, gdt_entry(0xc093, 0, 0xfffff));
	/* 64-bit TSS: 16 bytes, upper half holds base[63:32] = 0 */
	bt_put64(gdt + BOOT_TR, gdt_entry(0x008b, (uint32_t)BOOT_TSS_ADDR, TSS_LIMIT));
	bt_put64(gdt + BOOT_TR + 8, 0);
	memset(idt, 0, 8);
	memset(tss, 0, TSS_LIMIT + 1);

	st->gdt_base = BOOT_GDT_ADDR;
	st->gdt_limit = GDT_ENTRIES * 8 - 1;
	st->idt_base = BOOT_IDT_ADDR;
	st->idt_limit = 7;
	st->cs = (struct boot_segment){BOOT_CS, 0, 0xffffffffu, 0xa09b};
	st->ds = (struct boot_segment){BOOT_DS, 0, 0xffffffffu, 0xc093};
	st->es = st->ds;
	st->ss = st->ds;
	st->fs = st->ds;
	st->gs = st->ds;
	st->tr = (struct boot_segment){BOOT_TR, BOOT_TSS_ADDR, TSS_LIMIT, 0x008b};
}

static enum bt_status load_initrd(struct guestmem *gm, const char *path, gpa_t kernel_end,
				  gpa_t *addr, uint64_t *size)
{
	const uint8_t *img;
	size_t n;
	gpa_t low_end = guestmem_low_end(gm), at, floor;
	enum bt_status st = BT_OK;

	BT_TRY(map_file(path, &img, &n));
	floor = (BT_MAX(kernel_end, BOOT_KERNEL_MIN) + GUEST_PAGE_SIZE - 1) & GUEST_PAGE_MASK;
	if (n == 0) {
		bt_err(LOG_CORE, "%s: the initrd is empty", path);
		st = BT_ERR_INVALID;
		goto err_unmap;
	}
	if (n > low_end || ((low_end - n) & GUEST_PAGE_MASK) < floor) {
		bt_err(LOG_CORE,
		       "%s: the initrd (%zu bytes) does not fit between the kernel end %#llx and "
		       "the top of low RAM %#llx: more --mem?",
		       path, n, (unsigned long long)kernel_end, (unsigned long long)low_end);
		st = BT_ERR_RANGE;
		goto err_unmap;
	}
	at = (low_end - n) & GUEST_PAGE_MASK;
	st = guestmem_write(gm, at, img, n);
	*addr = at;
	*size = n;
err_unmap:
	unmap_file(img, n);
	return st;
}

enum bt_status boot_load(struct guestmem *gm, const struct boot_config *cfg, struct boot_state *st,
			 struct boot_layout *layout)
{
	const char *cmdline;
	struct boot_layout l;
	size_t clen;
	uint8_t *zp;

	if (!gm || !cfg || !cfg->kernel_path || !st || !layout)
		return BT_ERR_INVALID;
	cmdline = cfg->cmdline ? cfg->cmdline : "";
	clen = strlen(cmdline) + 1;
	if (clen > BOOT_CMDLINE_MAX) {
		bt_err(LOG_CORE, "the kernel command line is %zu bytes, the limit is %d", clen - 1,
		       BOOT_CMDLINE_MAX - 1);
		return BT_ERR_INVALID;
	}
	if (guestmem_low_end(gm) < 2 * BOOT_KERNEL_MIN) {
		bt_err(LOG_CORE, "guest RAM is too small to boot (%llu bytes, need 2 MiB)",
		       (unsigned long long)guestmem_size(gm));
		return BT_ERR_INVALID;
	}
	memset(&l, 0, sizeof(l));
	memset(st, 0, sizeof(*st));
	/* a bzImage or an ELF: the first bytes say (the mapping is lazy) */
	const uint8_t *kimg;
	size_t ksize;
	struct boot_bzimage bz = {0};
	BT_TRY(map_file(cfg->kernel_path, &kimg, &ksize));
	l.bzimage = kimg && boot_is_bzimage(kimg, ksize);
	enum bt_status s = l.bzimage ? boot_load_bzimage(gm, cfg->kernel_path, kimg, ksize, &l, &bz)
				     : load_kernel(gm, cfg, &l);
	if (s == BT_OK && cfg->initrd_path)
		s = load_initrd(gm, cfg->initrd_path, l.kernel_end, &l.initrd, &l.initrd_size);
	if (s != BT_OK) {
		unmap_file(kimg, ksize);
		return s;
	}

	l.cmdline = BOOT_CMDLINE_ADDR;
	l.cmdline_size = (uint32_t)clen;
	memcpy(guestmem_gpa_to_host(gm, BOOT_CMDLINE_ADDR, clen), cmdline, clen);

	zp = guestmem_gpa_to_host(gm, BOOT_ZERO_PAGE_ADDR, GUEST_PAGE_SIZE);
	memset(zp, 0, GUEST_PAGE_SIZE);
	l.zero_page = BOOT_ZERO_PAGE_ADDR;
	l.e820_entries = write_e820(gm, zp);
	zp[ZP_SENTINEL] = 0;
	bt_put16(zp + ZP_BOOT_FLAG, 0xaa55);
	bt_put32(zp + ZP_HEADER, 0x53726448); /* "HdrS" */
	bt_put16(zp + ZP_VERSION, 0x020f);
	zp[ZP_TYPE_OF_LOADER] = 0xff;
	zp[ZP_LOADFLAGS] = LOADED_HIGH;
	bt_put32(zp + ZP_RAMDISK_IMAGE, (uint32_t)l.initrd);
	bt_put32(zp + ZP_RAMDISK_SIZE, (uint32_t)l.initrd_size);
	bt_put32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(l.initrd >> 32));
	bt_put32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)(l.initrd_size >> 32));
	bt_put32(zp + ZP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
	bt_put32(zp + ZP_EXT_CMD_LINE_PTR, (uint32_t)(BOOT_CMDLINE_ADDR >> 32));
	bt_put32(zp + ZP_INITRD_ADDR_MAX, 0x7fffffff);
	bt_put32(zp + ZP_KERNEL_ALIGNMENT, 0x1000000);
	bt_put32(zp + ZP_CMDLINE_SIZE, BOOT_CMDLINE_MAX - 1);
	bt_put32(zp + ZP_INIT_SIZE, (uint32_t)BT_MIN(l.kernel_end - l.kernel_start, 0xffffffffull));
	if (l.bzimage) {
		/* the image's own header (version, alignment, init_size, ...),
		 * then again what the loader says */
		boot_bzimage_zero_page(zp, &bz);
		zp[ZP_TYPE_OF_LOADER] = 0xff;
		bt_put32(zp + ZP_RAMDISK_IMAGE, (uint32_t)l.initrd);
		bt_put32(zp + ZP_RAMDISK_SIZE, (uint32_t)l.initrd_size);
		bt_put32(zp + ZP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
	}
	unmap_file(kimg, ksize);

	write_page_tables(gm);
	l.pml4 = BOOT_PML4_ADDR;
	l.ident_map_end = IDENT_MAP_END;
	write_gdt(gm, st);

	st->rip = l.entry;
	st->rsi = BOOT_ZERO_PAGE_ADDR;
	st->rsp = BOOT_STACK_TOP;
	st->rflags = 0x2;
	st->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	st->cr3 = BOOT_PML4_ADDR;
	st->cr4 = CR4_PAE;
	st->efer = EFER_LME | EFER_LMA;
	*layout = l;
	return BT_OK;
}
