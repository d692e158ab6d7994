/*
 * ELF64 loader for static user executables (ET_EXEC, x86-64) from the
 * initrd, and the Linux initial stack: argc, argv[], NULL, envp[], NULL,
 * auxv (AT_PAGESZ, AT_HWCAP2, AT_NULL), strings above; rsp 16-byte aligned at entry.
 * The ELF is untrusted: every offset, size and address is checked.
 */
#include "guests/kernel/kernel.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/vm.h"

#define PT_LOAD	  1
#define PF_X	  1
#define PF_W	  2
#define ARG_MAX	  32
#define STACK_MAP (4 * PAGE_SIZE) /* mapped eagerly for argv/envp */

struct elf64_ehdr {
	unsigned char ident[16];
	uint16_t type, machine;
	uint32_t version;
	uint64_t entry, phoff, shoff;
	uint32_t flags;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/* Copy into user memory of mm (pages already mapped). */
static int mm_write(struct mm *mm, uint64_t va, const void *src, size_t n)
{
	const uint8_t *s = src;
	while (n) {
		uint8_t *p = mm_user_ptr(mm, va);
		if (!p)
			return -EFAULT;
		size_t chunk = MIN(n, PAGE_SIZE - (va & (PAGE_SIZE - 1)));
		memcpy(p, s, chunk);
		va += chunk;
		s += chunk;
		n -= chunk;
	}
	return 0;
}

static int load_segment(struct mm *mm, const uint8_t *img, size_t size, const struct elf64_phdr *ph)
{
	uint64_t end = ph->vaddr + ph->memsz;
	if (ph->filesz > ph->memsz || ph->offset > size || ph->filesz > size - ph->offset)
		return -ENOEXEC;
	if (ph->vaddr < 0x1000 || end < ph->vaddr || end > USER_STACK - USER_STACK_SZ)
		return -ENOEXEC;
	uint32_t prot =
	    VMA_READ | (ph->flags & PF_W ? VMA_WRITE : 0) | (ph->flags & PF_X ? VMA_EXEC : 0);
	uint64_t start = ph->vaddr & PAGE_MASK, stop = PAGE_UP(end);
	/* Skip a first page shared with the previous segment. */
	while (start < stop && mm_add_vma(mm, start, stop, prot) != 0)
		start += PAGE_SIZE;
	for (uint64_t va = ph->vaddr & PAGE_MASK; va < stop; va += PAGE_SIZE) {
		int r = mm_map_now(mm, va, prot);
		if (r)
			return r;
	}
	return mm_write(mm, ph->vaddr, img + ph->offset, ph->filesz);
}

static int push_strings(struct mm *mm, uint64_t *sp, const char *const *v, uint64_t *out,
			unsigned *count)
{
	unsigned n = 0;
	for (; v && v[n]; n++) {
		if (n >= ARG_MAX)
			return -E2BIG;
		size_t len = strlen(v[n]) + 1;
		if (len > PAGE_SIZE || *sp - len < USER_STACK - STACK_MAP + 512)
			return -E2BIG;
		*sp -= len;
		int r = mm_write(mm, *sp, v[n], len);
		if (r)
			return r;
		out[n] = *sp;
	}
	*count = n;
	return 0;
}

int exec_load(struct mm *mm, const char *path, const char *const *argv, const char *const *envp,
	      uint64_t *entry, uint64_t *rsp)
{
	const void *data;
	size_t size;
	int r = initrd_find(path, &data, &size);
	if (r)
		return r;
	const uint8_t *img = data;
	const struct elf64_ehdr *eh = data;
	if (size < sizeof(*eh) || memcmp(eh->ident, "\177ELF", 4) || eh->ident[4] != 2 ||
	    eh->ident[5] != 1 || eh->type != 2 || eh->machine != 62 ||
	    eh->phentsize != sizeof(struct elf64_phdr) || eh->phnum == 0 || eh->phnum > 64 ||
	    eh->phoff > size || (uint64_t)eh->phnum * sizeof(struct elf64_phdr) > size - eh->phoff)
		return -ENOEXEC;

	bool entry_ok = false;
	for (unsigned i = 0; i < eh->phnum; i++) {
		struct elf64_phdr ph;
		memcpy(&ph, img + eh->phoff + i * sizeof(ph), sizeof(ph));
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		r = load_segment(mm, img, size, &ph);
		if (r)
			return r;
		if (eh->entry >= ph.vaddr && eh->entry < ph.vaddr + ph.memsz && (ph.flags & PF_X))
			entry_ok = true;
	}
	if (!entry_ok)
		return -ENOEXEC;

	/* Stack: demand-zero VMA, top pages mapped now for the arguments. */
	r = mm_add_vma(mm, USER_STACK - USER_STACK_SZ, USER_STACK, VMA_READ | VMA_WRITE);
	if (r)
		return r;
	for (uint64_t va = USER_STACK - STACK_MAP; va < USER_STACK; va += PAGE_SIZE) {
		r = mm_map_now(mm, va, VMA_READ | VMA_WRITE);
		if (r)
			return r;
	}
	uint64_t sp = USER_STACK - 16;
	uint64_t argp[ARG_MAX], envpp[ARG_MAX];
	unsigned argc, envc;
	r = push_strings(mm, &sp, argv, argp, &argc);
	if (r)
		return r;
	r = push_strings(mm, &sp, envp, envpp, &envc);
	if (r)
		return r;

	uint64_t words[ARG_MAX * 2 + 10];
	unsigned n = 0;
	words[n++] = argc;
	for (unsigned i = 0; i < argc; i++)
		words[n++] = argp[i];
	words[n++] = 0;
	for (unsigned i = 0; i < envc; i++)
		words[n++] = envpp[i];
	words[n++] = 0;
	words[n++] = 6; /* AT_PAGESZ */
	words[n++] = PAGE_SIZE;
	words[n++] = 26; /* AT_HWCAP2: HWCAP2_FSGSBASE (bit 1) when CR4.FSGSBASE is on */
	words[n++] = cpu_has_fsgsbase ? 2 : 0;
	words[n++] = 0; /* AT_NULL */
	words[n++] = 0;
	sp &= ~15ul;
	sp -= n * 8;
	sp &= ~15ul;
	r = mm_write(mm, sp, words, n * 8);
	if (r)
		return r;
	*entry = eh->entry;
	*rsp = sp;
	return 0;
}
