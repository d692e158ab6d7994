/*
 * Physical page allocator.  A bitmap over the first MAX_MEM bytes (bit set =
 * free) built from the usable e820 entries, minus the first MiB, the kernel
 * image, the initrd and the boot structure; a 16-bit reference count per
 * frame.  Invariants: a frame is free iff its bit is set iff its refcount is
 * 0; all state is changed with interrupts off (the #PF handler allocates).
 * Before vm_init pages are reached through the boot mapping at KERNEL_VMA,
 * afterwards through the direct map.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/mm.h"

#define NPAGES (MAX_MEM / PAGE_SIZE)

static uint64_t free_bitmap[NPAGES / 64];
static uint16_t refcnt[NPAGES];
static uint64_t nfree, ntotal, max_pa, hint;
bool pmm_direct_map_ready;

void *phys_to_virt(uint64_t pa)
{
	return (void *)(pmm_direct_map_ready ? pa_to_va(pa) : pa + KERNEL_VMA);
}

static bool overlaps(uint64_t pa, uint64_t start, uint64_t len)
{
	return len && pa + PAGE_SIZE > start && pa < start + len;
}

void pmm_init(void)
{
	uint64_t kstart = va_to_pa((uint64_t)_kernel_start);
	uint64_t kend = va_to_pa((uint64_t)_kernel_end);

	for (unsigned i = 0; i < boot_info.nmem; i++) {
		const struct boot_mem *m = &boot_info.mem[i];
		if (m->type != 1)
			continue;
		uint64_t s = PAGE_UP(m->addr), e = (m->addr + m->size) & PAGE_MASK;
		if (m->addr + m->size > max_pa)
			max_pa = m->addr + m->size;
		if (s < 0x100000)
			s = 0x100000;
		if (e > MAX_MEM)
			e = MAX_MEM;
		for (uint64_t pa = s; pa < e; pa += PAGE_SIZE) {
			if (overlaps(pa, kstart, kend - kstart) ||
			    overlaps(pa, boot_info.initrd_pa, boot_info.initrd_size) ||
			    overlaps(pa, boot_info.info_pa, boot_info.info_size))
				continue;
			uint64_t pfn = pa / PAGE_SIZE;
			if (!(free_bitmap[pfn / 64] & (1ul << (pfn % 64)))) {
				free_bitmap[pfn / 64] |= 1ul << (pfn % 64);
				nfree++;
				ntotal++;
			}
		}
	}
	if (max_pa > MAX_MEM)
		printk("# mm: pages are allocated below %lu MiB only\n", MAX_MEM >> 20);
	if (max_pa > MAX_DIRECT_MAP) {
		printk("# mm: RAM above %lu GiB is not mapped\n", MAX_DIRECT_MAP >> 30);
		max_pa = MAX_DIRECT_MAP;
	}
	hint = 0x100000 / PAGE_SIZE;
}

uint64_t page_alloc(void)
{
	uint64_t f = irq_save();
	uint64_t words = NPAGES / 64;
	for (uint64_t n = 0; n < words; n++) {
		uint64_t w = (hint / 64 + n) % words;
		if (!free_bitmap[w])
			continue;
		unsigned bit = (unsigned)__builtin_ctzl(free_bitmap[w]);
		uint64_t pfn = w * 64 + bit;
		free_bitmap[w] &= ~(1ul << bit);
		refcnt[pfn] = 1;
		nfree--;
		hint = pfn;
		irq_restore(f);
		uint64_t pa = pfn * PAGE_SIZE;
		memset(phys_to_virt(pa), 0, PAGE_SIZE);
		return pa;
	}
	irq_restore(f);
	return 0;
}

static uint64_t pfn_checked(uint64_t pa)
{
	uint64_t pfn = pa / PAGE_SIZE;
	if (pfn >= NPAGES)
		panic("mm: page 0x%lx outside managed memory", (unsigned long)pa);
	return pfn;
}

void page_get(uint64_t pa)
{
	uint64_t pfn = pfn_checked(pa);
	uint64_t f = irq_save();
	if (refcnt[pfn] == 0 || refcnt[pfn] == 0xffff)
		panic("mm: page_get on page 0x%lx with refcount %u", (unsigned long)pa,
		      refcnt[pfn]);
	refcnt[pfn]++;
	irq_restore(f);
}

void page_put(uint64_t pa)
{
	uint64_t pfn = pfn_checked(pa);
	uint64_t f = irq_save();
	if (refcnt[pfn] == 0)
		panic("mm: double free of page 0x%lx", (unsigned long)pa);
	if (--refcnt[pfn] == 0) {
		free_bitmap[pfn / 64] |= 1ul << (pfn % 64);
		nfree++;
	}
	irq_restore(f);
}

unsigned page_refcount(uint64_t pa)
{
	return refcnt[pfn_checked(pa)];
}

uint64_t pmm_free_pages(void)
{
	return nfree;
}

uint64_t pmm_total_pages(void)
{
	return ntotal;
}

uint64_t pmm_max_pa(void)
{
	return max_pa;
}
