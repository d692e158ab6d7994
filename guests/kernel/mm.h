/*
 * Physical page allocator over the e820 RAM map, with a reference count per
 * page frame (shared copy-on-write pages, shared read-only ELF pages).
 */
#ifndef GK_MM_H
#define GK_MM_H

#include <stdint.h>

void pmm_init(void);
/* Returns a zeroed page's physical address, or 0 when memory is exhausted. */
uint64_t page_alloc(void);
void page_get(uint64_t pa);
/* Drops one reference; frees the page at zero. */
void page_put(uint64_t pa);
unsigned page_refcount(uint64_t pa);
uint64_t pmm_free_pages(void);
uint64_t pmm_total_pages(void);
/* End of RAM covered by the direct map (the initrd may lie above MAX_MEM). */
uint64_t pmm_max_pa(void);
/* Kernel pointer to physical memory (boot mapping before vm_init). */
void *phys_to_virt(uint64_t pa);
extern bool pmm_direct_map_ready;

#endif
