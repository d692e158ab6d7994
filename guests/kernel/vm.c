/*
 * Page tables.  The kernel PML4 holds: the direct map of all RAM (2 MiB
 * pages, RW, NX, global) at DIRECT_MAP; the kernel image at KERNEL_VMA with
 * 4 KiB pages (text RX, rodata R+NX, data/bss RW+NX); the demand region
 * (filled by #PF); the module area and the text_poke alias page.
 *
 * Invariants
 *  1. The kernel-half PML4 slots (256-511) used by the kernel all exist
 *     before the first user address space is created; user PML4s copy those
 *     slots, so later kernel mappings below them are seen everywhere.
 *  2. Every present user leaf PTE holds one reference on its frame.  A frame
 *     shared after fork is mapped read-only with PTE_COW in every sharer
 *     (unless its VMA is read-only); the write fault copies it, or just
 *     re-enables writing when the refcount has dropped to 1.
 *  3. Page-table pages of the user half belong to exactly one mm and are
 *     freed by mm_destroy after switching to the kernel CR3.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/mm.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/vm.h"

uint64_t kernel_pml4_pa;
uint64_t pte_nx;

#define MAX_MM 64
static struct mm mm_pool[MAX_MM];

static uint64_t *table(uint64_t pa)
{
	return phys_to_virt(pa & PTE_ADDR);
}

/*
 * Entry for va at `level` (1 = PT entry, 2 = PD entry) under pml4_pa,
 * creating intermediate tables when `create`.  NULL when absent or on OOM.
 */
static uint64_t *walk(uint64_t pml4_pa, uint64_t va, int level, bool create)
{
	uint64_t *t = table(pml4_pa);
	bool user = va < USER_TOP;
	for (int l = 4; l > level; l--) {
		unsigned idx = (va >> (12 + 9 * (l - 1))) & 511;
		uint64_t e = t[idx];
		if (!(e & PTE_P)) {
			if (!create)
				return NULL;
			uint64_t pa = page_alloc();
			if (!pa)
				return NULL;
			e = pa | PTE_P | PTE_W | (user ? PTE_U : 0);
			t[idx] = e;
		}
		if (e & PTE_PS)
			return NULL;
		t = table(e);
	}
	return &t[(va >> (12 + 9 * (level - 1))) & 511];
}

int vm_map_kernel(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t f = irq_save();
	uint64_t *pte = walk(kernel_pml4_pa, va, 1, true);
	if (pte)
		*pte = (pa & PTE_ADDR) | PTE_P | PTE_G | flags;
	invlpg(va);
	irq_restore(f);
	return pte ? 0 : -ENOMEM;
}

void vm_unmap_kernel(uint64_t va)
{
	uint64_t f = irq_save();
	uint64_t *pte = walk(kernel_pml4_pa, va, 1, false);
	if (pte)
		*pte = 0;
	invlpg(va);
	irq_restore(f);
}

void vm_init(void)
{
	kernel_pml4_pa = page_alloc();
	if (!kernel_pml4_pa)
		panic("vm: no memory for the kernel page tables");

	uint64_t end = (pmm_max_pa() + (2ul << 20) - 1) & ~((2ul << 20) - 1);
	for (uint64_t pa = 0; pa < end; pa += 2ul << 20) {
		uint64_t *pde = walk(kernel_pml4_pa, DIRECT_MAP + pa, 2, true);
		if (!pde)
			panic("vm: out of memory building the direct map");
		*pde = pa | PTE_P | PTE_W | PTE_PS | PTE_G | pte_nx;
	}

	for (uint64_t va = (uint64_t)_kernel_start; va < (uint64_t)_kernel_end; va += PAGE_SIZE) {
		uint64_t fl;
		if (va < (uint64_t)_text_end)
			fl = 0; /* RX */
		else if (va < (uint64_t)_rodata_end)
			fl = pte_nx; /* R */
		else
			fl = PTE_W | pte_nx; /* RW */
		uint64_t *pte = walk(kernel_pml4_pa, va, 1, true);
		if (!pte)
			panic("vm: out of memory mapping the kernel");
		*pte = va_to_pa(va) | PTE_P | PTE_G | fl;
	}

	/* Invariant 1: pre-create the demand, module and poke tables. */
	if (!walk(kernel_pml4_pa, DEMAND_BASE, 2, true) ||
	    !walk(kernel_pml4_pa, MODULE_BASE, 1, true) || !walk(kernel_pml4_pa, POKE_VA, 1, true))
		panic("vm: out of memory for kernel regions");

	/* Page tables are now read through the direct map. */
	pmm_direct_map_ready = true;
	write_cr3(kernel_pml4_pa);
}

uint64_t vm_kernel_pa(uint64_t va)
{
	uint64_t *pte = walk(kernel_pml4_pa, va, 1, false);
	return pte && (*pte & PTE_P) ? *pte & PTE_ADDR : 0;
}

bool vm_demand_fault(uint64_t addr)
{
	uint64_t pa = page_alloc();
	if (!pa)
		return false;
	if (vm_map_kernel(addr & PAGE_MASK, pa, PTE_W | pte_nx)) {
		page_put(pa);
		return false;
	}
	return true;
}

void text_poke(void *addr, const void *src, unsigned len)
{
	uint64_t va = (uint64_t)addr;
	const uint8_t *s = src;
	uint64_t f = irq_save();
	while (len) {
		uint64_t *pte = walk(kernel_pml4_pa, va, 1, false);
		if (!pte || !(*pte & PTE_P))
			panic("text_poke: 0x%lx is not mapped", (unsigned long)va);
		unsigned off = va & (PAGE_SIZE - 1);
		unsigned n = MIN(len, (unsigned)(PAGE_SIZE - off));
		vm_map_kernel(POKE_VA, *pte & PTE_ADDR, PTE_W | pte_nx);
		memcpy((void *)(POKE_VA + off), s, n);
		vm_unmap_kernel(POKE_VA);
		va += n;
		s += n;
		len -= n;
	}
	sync_core();
	irq_restore(f);
}

/* ---- user address spaces ---- */

struct mm *mm_create(void)
{
	uint64_t f = irq_save();
	struct mm *mm = NULL;
	for (unsigned i = 0; i < MAX_MM; i++) {
		if (!mm_pool[i].used) {
			mm = &mm_pool[i];
			memset(mm, 0, sizeof(*mm));
			mm->used = true;
			break;
		}
	}
	irq_restore(f);
	if (!mm)
		return NULL;
	mm->pml4_pa = page_alloc();
	if (!mm->pml4_pa) {
		mm->used = false;
		return NULL;
	}
	uint64_t *dst = table(mm->pml4_pa), *src = table(kernel_pml4_pa);
	for (unsigned i = 256; i < 512; i++)
		dst[i] = src[i];
	mm->mmap_next = USER_MMAP;
	return mm;
}

static void free_level(uint64_t pa, int level)
{
	uint64_t *t = table(pa);
	for (unsigned i = 0; i < 512; i++) {
		if (!(t[i] & PTE_P))
			continue;
		if (level == 1)
			page_put(t[i] & PTE_ADDR);
		else
			free_level(t[i] & PTE_ADDR, level - 1);
	}
	page_put(pa);
}

void mm_destroy(struct mm *mm)
{
	if (!mm)
		return;
	if ((read_cr3() & PTE_ADDR) == mm->pml4_pa)
		write_cr3(kernel_pml4_pa);
	uint64_t *t = table(mm->pml4_pa);
	for (unsigned i = 0; i < 256; i++)
		if (t[i] & PTE_P)
			free_level(t[i] & PTE_ADDR, 3);
	page_put(mm->pml4_pa);
	ldt_free(mm);
	mm->used = false;
}

void mm_activate(struct mm *mm)
{
	uint64_t want = mm ? mm->pml4_pa : kernel_pml4_pa;
	if ((read_cr3() & PTE_ADDR) != want)
		write_cr3(want);
}

static struct vma *vma_find(struct mm *mm, uint64_t addr)
{
	for (unsigned i = 0; i < mm->nvma; i++)
		if (addr >= mm->vma[i].start && addr < mm->vma[i].end)
			return &mm->vma[i];
	return NULL;
}

static bool vma_overlaps(struct mm *mm, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < mm->nvma; i++)
		if (start < mm->vma[i].end && end > mm->vma[i].start)
			return true;
	return false;
}

int mm_add_vma(struct mm *mm, uint64_t start, uint64_t end, uint32_t prot)
{
	if (start >= end || end > USER_TOP || (start | end) & (PAGE_SIZE - 1))
		return -EINVAL;
	if (vma_overlaps(mm, start, end))
		return -EINVAL;
	if (mm->nvma >= VMA_MAX)
		return -ENOMEM;
	mm->vma[mm->nvma++] = (struct vma){start, end, prot};
	return 0;
}

static uint64_t user_pte_flags(uint32_t prot)
{
	uint64_t fl = PTE_P | PTE_U;
	if (prot & VMA_WRITE)
		fl |= PTE_W;
	if (!(prot & VMA_EXEC))
		fl |= pte_nx;
	return fl;
}

int mm_map_now(struct mm *mm, uint64_t va, uint32_t prot)
{
	uint64_t *pte = walk(mm->pml4_pa, va, 1, true);
	if (!pte)
		return -ENOMEM;
	if (*pte & PTE_P)
		return 0;
	uint64_t pa = page_alloc();
	if (!pa)
		return -ENOMEM;
	*pte = pa | user_pte_flags(prot);
	return 0;
}

void *mm_user_ptr(struct mm *mm, uint64_t va)
{
	uint64_t *pte = walk(mm->pml4_pa, va, 1, false);
	if (!pte || !(*pte & PTE_P))
		return NULL;
	return (void *)(pa_to_va(*pte & PTE_ADDR) + (va & (PAGE_SIZE - 1)));
}

static bool mm_is_current(struct mm *mm)
{
	return (read_cr3() & PTE_ADDR) == mm->pml4_pa;
}

int vm_user_fault(struct mm *mm, uint64_t addr, uint64_t error)
{
	if (addr >= USER_TOP)
		return -EFAULT;
	struct vma *v = vma_find(mm, addr);
	if (!v)
		return -EFAULT;
	bool write = error & 2, present = error & 1, ifetch = error & 16;
	if ((write && !(v->prot & VMA_WRITE)) || (ifetch && !(v->prot & VMA_EXEC)))
		return -EFAULT;

	uint64_t f = irq_save();
	int r = 0;
	uint64_t va = addr & PAGE_MASK;
	uint64_t *pte = walk(mm->pml4_pa, va, 1, true);
	if (!pte) {
		r = -ENOMEM;
	} else if (!(*pte & PTE_P)) {
		uint64_t pa = page_alloc(); /* demand zero */
		if (!pa)
			r = -ENOMEM;
		else
			*pte = pa | user_pte_flags(v->prot);
	} else if (write && (*pte & PTE_COW)) {
		uint64_t old = *pte & PTE_ADDR;
		if (page_refcount(old) == 1) {
			*pte = (*pte | PTE_W) & ~PTE_COW;
		} else {
			uint64_t pa = page_alloc();
			if (!pa) {
				r = -ENOMEM;
			} else {
				memcpy((void *)pa_to_va(pa), (void *)pa_to_va(old), PAGE_SIZE);
				*pte = pa | user_pte_flags(v->prot);
				page_put(old);
			}
		}
	} else if (present) {
		r = -EFAULT; /* protection fault not explained by COW */
	}
	if (mm_is_current(mm))
		invlpg(va);
	irq_restore(f);
	return r;
}

static int fork_level(uint64_t src_pa, uint64_t dst_pa, int level, uint64_t base)
{
	uint64_t *s = table(src_pa), *d = table(dst_pa);
	unsigned n = level == 4 ? 256 : 512;
	for (unsigned i = 0; i < n; i++) {
		if (!(s[i] & PTE_P))
			continue;
		if (level == 1) {
			if (s[i] & PTE_W)
				s[i] = (s[i] & ~PTE_W) | PTE_COW;
			page_get(s[i] & PTE_ADDR);
			d[i] = s[i];
			continue;
		}
		uint64_t pa = page_alloc();
		if (!pa)
			return -ENOMEM;
		d[i] = pa | (s[i] & ~PTE_ADDR);
		int r = fork_level(s[i] & PTE_ADDR, pa, level - 1,
				   base + ((uint64_t)i << (12 + 9 * (level - 1))));
		if (r)
			return r;
	}
	return 0;
}

struct mm *mm_fork(struct mm *parent)
{
	struct mm *mm = mm_create();
	if (!mm)
		return NULL;
	memcpy(mm->vma, parent->vma, sizeof(mm->vma));
	mm->nvma = parent->nvma;
	mm->mmap_next = parent->mmap_next;
	if (ldt_fork(mm, parent)) {
		mm_destroy(mm);
		return NULL;
	}
	uint64_t f = irq_save();
	int r = fork_level(parent->pml4_pa, mm->pml4_pa, 4, 0);
	if (mm_is_current(parent))
		write_cr3(parent->pml4_pa); /* parent PTEs lost W: flush */
	irq_restore(f);
	if (r) {
		mm_destroy(mm);
		return NULL;
	}
	return mm;
}

static void unmap_range(struct mm *mm, uint64_t start, uint64_t end)
{
	bool cur = mm_is_current(mm);
	for (uint64_t va = start; va < end; va += PAGE_SIZE) {
		uint64_t *pte = walk(mm->pml4_pa, va, 1, false);
		if (!pte || !(*pte & PTE_P))
			continue;
		uint64_t pa = *pte & PTE_ADDR;
		*pte = 0;
		if (cur)
			invlpg(va);
		page_put(pa);
	}
}

int mm_munmap(struct mm *mm, uint64_t addr, uint64_t len)
{
	if ((addr & (PAGE_SIZE - 1)) || len == 0 || addr >= USER_TOP || len > USER_TOP - addr)
		return -EINVAL;
	uint64_t end = PAGE_UP(addr + len);
	uint64_t f = irq_save();
	unmap_range(mm, addr, end);
	for (unsigned i = 0; i < mm->nvma;) {
		struct vma *v = &mm->vma[i];
		if (end <= v->start || addr >= v->end) {
			i++;
			continue;
		}
		if (addr <= v->start && end >= v->end) { /* whole VMA */
			mm->vma[i] = mm->vma[--mm->nvma];
			continue;
		}
		if (addr > v->start && end < v->end) { /* split */
			if (mm->nvma >= VMA_MAX) {
				irq_restore(f);
				return -ENOMEM;
			}
			mm->vma[mm->nvma++] = (struct vma){end, v->end, v->prot};
			v->end = addr;
		} else if (addr <= v->start) {
			v->start = end;
		} else {
			v->end = addr;
		}
		i++;
	}
	irq_restore(f);
	return 0;
}

uint64_t mm_mremap(struct mm *mm, uint64_t old, uint64_t len, uint64_t new_addr)
{
	len = PAGE_UP(len);
	struct vma *v = vma_find(mm, old);
	if ((old | new_addr) & (PAGE_SIZE - 1) || len == 0 || new_addr == 0 ||
	    new_addr >= USER_TOP || len > USER_TOP - new_addr || !v || v->start != old ||
	    v->end != old + len || (new_addr < old + len && old < new_addr + len))
		return (uint64_t)-EINVAL;
	int r = mm_munmap(mm, new_addr, len);
	if (r)
		return (uint64_t)(int64_t)r;
	v = vma_find(mm, old); /* munmap may have moved the table's entries */
	uint64_t f = irq_save();
	bool cur = mm_is_current(mm);
	for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
		uint64_t *src = walk(mm->pml4_pa, old + off, 1, false);
		if (!src || !(*src & PTE_P))
			continue;
		uint64_t *dst = walk(mm->pml4_pa, new_addr + off, 1, true);
		if (!dst) {
			irq_restore(f);
			return (uint64_t)-ENOMEM;
		}
		*dst = *src;
		*src = 0;
		if (cur)
			invlpg(old + off);
	}
	v->start = new_addr;
	v->end = new_addr + len;
	irq_restore(f);
	return new_addr;
}

uint64_t mm_mmap(struct mm *mm, uint64_t hint, uint64_t len, uint32_t prot, bool fixed)
{
	len = PAGE_UP(len);
	if (len == 0 || len > USER_TOP)
		return (uint64_t)-EINVAL;
	if (fixed) {
		if ((hint & (PAGE_SIZE - 1)) || hint == 0 || hint >= USER_TOP ||
		    len > USER_TOP - hint)
			return (uint64_t)-EINVAL;
		mm_munmap(mm, hint, len);
		int r = mm_add_vma(mm, hint, hint + len, prot);
		return r ? (uint64_t)(int64_t)r : hint;
	}
	hint &= PAGE_MASK;
	if (hint >= 0x10000 && hint < USER_TOP && len <= USER_TOP - hint &&
	    !vma_overlaps(mm, hint, hint + len) && mm_add_vma(mm, hint, hint + len, prot) == 0)
		return hint;
	for (int tries = 0; tries < 64; tries++) {
		uint64_t a = mm->mmap_next;
		if (a + len > USER_STACK - USER_STACK_SZ)
			return (uint64_t)-ENOMEM;
		mm->mmap_next = a + len + PAGE_SIZE; /* guard gap */
		if (!vma_overlaps(mm, a, a + len)) {
			int r = mm_add_vma(mm, a, a + len, prot);
			return r ? (uint64_t)(int64_t)r : a;
		}
	}
	return (uint64_t)-ENOMEM;
}
