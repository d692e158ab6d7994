/*
 * Loadable-module glue: module memory is allocated at run time from the page
 * allocator and mapped in the module area (within the top 2 GiB, so
 * -mcmodel=kernel code and R_X86_64_32S relocations work), the symbols a
 * module may import (kmod_printf, kmod_test_counter) are resolved here, and
 * guests/lib/kmodld does the ELF work.  The module area is mapped RWX: the
 * loader writes code and data in one block (a known simplification).
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/mm.h"
#include "guests/kernel/vm.h"
#include "guests/lib/kmodld.h"

long kmod_test_counter;
static uint64_t module_next = MODULE_BASE;
static struct kmodld loader;

int kmod_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}

static enum bt_status mod_alloc(void *ctx, uint64_t size, uint64_t align, void **mem,
				uint64_t *runaddr)
{
	if (align > PAGE_SIZE)
		align = PAGE_SIZE;
	uint64_t base = (module_next + align - 1) & ~(align - 1);
	base = PAGE_UP(base);
	uint64_t end = PAGE_UP(base + size);
	if (size == 0 || end > MODULE_BASE + MODULE_SIZE || end < base)
		return BT_ERR_NOMEM;
	for (uint64_t va = base; va < end; va += PAGE_SIZE) {
		uint64_t pa = page_alloc();
		if (!pa || vm_map_kernel(va, pa, PTE_W)) {
			for (uint64_t v = base; v < va; v += PAGE_SIZE)
				vm_unmap_kernel(v); /* frames leak: boot-time only */
			return BT_ERR_NOMEM;
		}
	}
	module_next = end + PAGE_SIZE; /* unmapped guard page */
	*mem = (void *)base;
	*runaddr = base;
	return BT_OK;
}

static enum bt_status mod_resolve(void *ctx, const char *name, uint64_t *addr)
{
	if (!strcmp(name, "kmod_printf"))
		*addr = (uint64_t)kmod_printf;
	else if (!strcmp(name, "kmod_test_counter"))
		*addr = (uint64_t)&kmod_test_counter;
	else
		return BT_ERR_NOTFOUND;
	return BT_OK;
}

int kmod_load_from_initrd(const char *path, int *ret)
{
	const void *data;
	size_t size;
	int r = initrd_find(path, &data, &size);
	if (r)
		return r;
	struct kmodld_ops ops = {NULL, mod_alloc, mod_resolve};
	enum bt_status s = kmodld_load(&loader, data, size, &ops);
	if (s != BT_OK) {
		printk("# kmod: loading %s failed: %s\n", path, loader.msg);
		return -ENOEXEC;
	}
	printk("# kmod: %s at 0x%lx (%lu bytes, %u relocations)\n", path,
	       (unsigned long)loader.base, (unsigned long)loader.size, loader.nreloc);
	int (*init)(void) = (int (*)(void))loader.init;
	*ret = init();
	return 0;
}
