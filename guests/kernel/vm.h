/*
 * Page tables: the kernel address space (direct map, image with per-section
 * permissions, demand region, module area, poke alias), user address spaces
 * with VMAs, copy-on-write fork, demand-zero faults and munmap.
 */
#ifndef GK_VM_H
#define GK_VM_H

#include <stdbool.h>
#include <stdint.h>

#define PTE_P	 (1ul << 0)
#define PTE_W	 (1ul << 1)
#define PTE_U	 (1ul << 2)
#define PTE_PS	 (1ul << 7)
#define PTE_G	 (1ul << 8)
#define PTE_COW	 (1ul << 9) /* software: write-protected copy-on-write page */
#define PTE_NX	 (1ul << 63)
#define PTE_ADDR 0x000ffffffffff000ul

#define VMA_READ  1u
#define VMA_WRITE 2u
#define VMA_EXEC  4u
#define VMA_MAX	  32

struct vma {
	uint64_t start, end;
	uint32_t prot;
};

struct mm {
	bool used;
	uint64_t pml4_pa;
	struct vma vma[VMA_MAX];
	unsigned nvma;
	uint64_t mmap_next;
	uint64_t ldt_pa;      /* modify_ldt: one page of descriptors, 0 = no LDT */
	unsigned ldt_entries; /* highest entry written + 1 */
};

extern uint64_t kernel_pml4_pa;
extern uint64_t pte_nx; /* PTE_NX when EFER.NXE is on, else 0 */

void vm_init(void);
/* Map one 4 KiB page in the kernel half; prot = PTE_W / PTE_NX bits. */
int vm_map_kernel(uint64_t va, uint64_t pa, uint64_t flags);
void vm_unmap_kernel(uint64_t va);
/* Physical address behind a 4 KiB kernel mapping, 0 when unmapped. */
uint64_t vm_kernel_pa(uint64_t va);
/* Resolve a kernel #PF in the demand region; true when handled. */
bool vm_demand_fault(uint64_t addr);
/* Write into kernel text through a temporary writable alias (text_poke). */
void text_poke(void *addr, const void *src, unsigned len);

struct mm *mm_create(void);
void mm_destroy(struct mm *mm);
struct mm *mm_fork(struct mm *parent);
void mm_activate(struct mm *mm); /* NULL: kernel page tables */
int mm_add_vma(struct mm *mm, uint64_t start, uint64_t end, uint32_t prot);
/* Map [va, va+len) with fresh pages now and copy data in (ELF loading). */
int mm_map_now(struct mm *mm, uint64_t va, uint32_t prot);
/* Kernel pointer to the bytes at user va in mm (page must be mapped). */
void *mm_user_ptr(struct mm *mm, uint64_t va);
/* Resolve a user-address #PF (demand zero, COW).  0 or -EFAULT. */
int vm_user_fault(struct mm *mm, uint64_t addr, uint64_t error);
uint64_t mm_mmap(struct mm *mm, uint64_t hint, uint64_t len, uint32_t prot, bool fixed);
int mm_munmap(struct mm *mm, uint64_t addr, uint64_t len);
/* Move the whole VMA at old (len bytes) to new_addr, its pages with it (the
 * same physical pages: Linux's mremap MREMAP_MAYMOVE | MREMAP_FIXED of a
 * whole mapping); what new_addr held is unmapped.  new_addr or -errno. */
uint64_t mm_mremap(struct mm *mm, uint64_t old, uint64_t len, uint64_t new_addr);

#endif
