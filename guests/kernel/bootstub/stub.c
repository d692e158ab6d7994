/*
 * The 64-bit part of the multiboot boot stub: loads module 0 (the kernel
 * ELF64) at its PT_LOAD physical addresses, builds a Linux boot_params zero
 * page (e820 from the multiboot memory map, command line, module 1 as the
 * initrd) and returns the kernel's e_entry.  Errors are printed on COM1 and
 * reported through isa-debug-exit with 1.  Runs identity-mapped.
 */
#include <stddef.h>
#include <stdint.h>

#define BOOT_PARAMS 0x7000ul
#define CMDLINE	    0x20000ul
#define CMDLINE_MAX 2048

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
};
struct mb_module {
	uint32_t start, end, string, reserved;
};

uint64_t stub_main(uint32_t info, uint32_t magic);

static void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static void put(const char *s)
{
	for (; *s; s++)
		outb(0x3f8, (uint8_t)*s);
}

static void fail(const char *why) __attribute__((noreturn));
static void fail(const char *why)
{
	put("[bootstub] error: ");
	put(why);
	put("\r\n");
	__asm__ volatile("outl %0, %1" : : "a"(1u), "Nd"((uint16_t)0xf4));
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void bzero(void *p, size_t n)
{
	uint8_t *d = p;
	while (n--)
		*d++ = 0;
}

static void copy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (n--)
		*d++ = *s++;
}

static void put16(uint64_t a, uint16_t v)
{
	copy((void *)a, &v, 2);
}
static void put32(uint64_t a, uint32_t v)
{
	copy((void *)a, &v, 4);
}
static void put64(uint64_t a, uint64_t v)
{
	copy((void *)a, &v, 8);
}

struct ehdr {
	uint8_t ident[16];
	uint16_t type, machine;
	uint32_t version;
	uint64_t entry, phoff, shoff;
	uint32_t flags;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

static uint64_t load_elf(const uint8_t *img, uint64_t size)
{
	const struct ehdr *eh = (const void *)img;
	if (size < sizeof(*eh) || img[0] != 0x7f || img[1] != 'E' || img[2] != 'L' ||
	    img[3] != 'F' || img[4] != 2 || eh->machine != 62 ||
	    eh->phentsize != sizeof(struct phdr) || eh->phoff + eh->phnum * 56ul > size)
		fail("module 0 is not an x86-64 ELF64 kernel");
	for (unsigned i = 0; i < eh->phnum; i++) {
		const struct phdr *ph = (const void *)(img + eh->phoff + i * 56ul);
		if (ph->type != 1)
			continue;
		if (ph->offset + ph->filesz > size || ph->filesz > ph->memsz ||
		    ph->paddr + ph->memsz > 0x1000000)
			fail("bad PT_LOAD (must lie below 16 MiB)");
		copy((void *)ph->paddr, img + ph->offset, ph->filesz);
		bzero((void *)(ph->paddr + ph->filesz), ph->memsz - ph->filesz);
	}
	return eh->entry;
}

uint64_t stub_main(uint32_t info, uint32_t magic)
{
	const struct mb_info *mb = (const void *)(uint64_t)info;
	if (magic != 0x2badb002)
		fail("not started by a multiboot loader");
	if (!(mb->flags & (1u << 3)) || mb->mods_count < 1)
		fail("no kernel module: use -initrd \"kernel.elf[,initrd.cpio]\"");
	const struct mb_module *mods = (const void *)(uint64_t)mb->mods_addr;

	uint64_t bp = BOOT_PARAMS;
	bzero((void *)bp, 4096);

	/* e820 from the multiboot memory map. */
	unsigned n = 0;
	if (mb->flags & (1u << 6)) {
		uint64_t p = mb->mmap_addr, end = p + mb->mmap_length;
		while (p + 24 <= end && n < 128) {
			uint32_t sz;
			uint64_t addr, len;
			uint32_t type;
			copy(&sz, (void *)p, 4);
			copy(&addr, (void *)(p + 4), 8);
			copy(&len, (void *)(p + 12), 8);
			copy(&type, (void *)(p + 20), 4);
			uint64_t e = bp + 0x2d0 + n * 20;
			put64(e, addr);
			put64(e + 8, len);
			put32(e + 16, type);
			n++;
			p += sz + 4;
		}
	}
	if (n < 2)
		fail("no usable multiboot memory map");
	*(uint8_t *)(bp + 0x1e8) = (uint8_t)n;
	put16(bp + 0x1fe, 0xaa55);
	put32(bp + 0x202, 0x53726448); /* "HdrS" */
	put16(bp + 0x206, 0x020f);
	*(uint8_t *)(bp + 0x210) = 0xff; /* type_of_loader: undefined */
	*(uint8_t *)(bp + 0x211) = 0x01; /* LOADED_HIGH */

	/* Command line without the first word (QEMU puts the image path there). */
	char *cl = (char *)CMDLINE;
	cl[0] = 0;
	if (mb->flags & (1u << 2)) {
		const char *s = (const char *)(uint64_t)mb->cmdline;
		while (*s && *s != ' ')
			s++;
		while (*s == ' ')
			s++;
		unsigned i = 0;
		for (; s[i] && i + 1 < CMDLINE_MAX; i++)
			cl[i] = s[i];
		cl[i] = 0;
	}
	put32(bp + 0x228, (uint32_t)CMDLINE);
	put32(bp + 0x238, CMDLINE_MAX - 1);

	if (mb->mods_count >= 2) {
		put32(bp + 0x218, mods[1].start);
		put32(bp + 0x21c, mods[1].end - mods[1].start);
	}
	return load_elf((const uint8_t *)(uint64_t)mods[0].start, mods[0].end - mods[0].start);
}
