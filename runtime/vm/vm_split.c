/*
 * Accesses that cross a page boundary onto a guest-physical page that is
 * not the next one ("split"): translated code performs its own access
 * through one host pointer (the soft-MMU call-out protocol, docs/xlat.md),
 * so the two guest pages must appear contiguous in the host.  A split
 * window is two host pages at a reserved address onto which the two guest
 * pages are mapped (MAP_SHARED | MAP_FIXED of guest RAM's memfd): the
 * access then goes straight to guest memory, a store included.  User code
 * makes such accesses all the time (a 16-byte SSE copy across two pages
 * of a heap); before this, btvm stopped on them.
 *
 * Two windows are used in turn, so the second access of one instruction
 * (push/pop with a memory operand) never remaps the first's under it.  A
 * window is remapped only when its page pair changes.  Windows are never
 * code: a store through one into a watched page (translated code, a page
 * table) is announced first, as every store is (guestmem_notify_write).
 */
#include <sys/mman.h>

#include "pretrans/base/log.h"
#include "runtime/vm/vm_int.h"

enum bt_status vm_split_init(struct vm *vm)
{
	void *p = mmap(NULL, VM_SPLIT_WINDOWS * 2 * GUEST_PAGE_SIZE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		bt_err(LOG_TC, "cannot reserve the split-access windows");
		return BT_ERR_NOMEM;
	}
	vm->split.base = p;
	for (unsigned i = 0; i < VM_SPLIT_WINDOWS; i++)
		vm->split.pair[i][0] = vm->split.pair[i][1] = ~(gpa_t)0;
	return BT_OK;
}

void vm_split_fini(struct vm *vm)
{
	if (vm->split.base)
		munmap(vm->split.base, VM_SPLIT_WINDOWS * 2 * GUEST_PAGE_SIZE);
	vm->split.base = NULL;
}

static bool map_page(struct vm *vm, uint8_t *at, gpa_t gpa)
{
	uint64_t off;
	if (guestmem_gpa_to_offset(vm->gm, gpa, &off) != BT_OK)
		return false;
	return mmap(at, GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		    guestmem_fd(vm->gm), (off_t)off) == at;
}

/* Host pointer for the `size` bytes at va, whose first byte is on guest
 * page gpa0 and whose last is on gpa1 (both RAM), or NULL. */
uint8_t *vm_split_host(struct vm *vm, gva_t va, uint32_t size, gpa_t gpa0, gpa_t gpa1, bool write)
{
	unsigned w = vm->split.next;
	vm->split.next = (w + 1) % VM_SPLIT_WINDOWS;
	uint8_t *base = vm->split.base + (size_t)w * 2 * GUEST_PAGE_SIZE;
	if (vm->split.pair[w][0] != gpa0 || vm->split.pair[w][1] != gpa1) {
		vm->split.pair[w][0] = vm->split.pair[w][1] = ~(gpa_t)0;
		if (!map_page(vm, base, gpa0) || !map_page(vm, base + GUEST_PAGE_SIZE, gpa1)) {
			bt_err(LOG_TC, "cannot map guest pages %#llx and %#llx side by side",
			       (unsigned long long)gpa0, (unsigned long long)gpa1);
			return NULL;
		}
		vm->split.pair[w][0] = gpa0;
		vm->split.pair[w][1] = gpa1;
		vm->st.split_maps++;
	}
	vm->st.split_accesses++;
	uint32_t off = (uint32_t)(va & (GUEST_PAGE_SIZE - 1));
	uint32_t n0 = GUEST_PAGE_SIZE - off;
	if (write) {
		if (guestmem_page_flags(vm->gm, gpa0) & GUESTMEM_PAGE_WATCHED)
			guestmem_notify_write(vm->gm, gpa0 + off, n0);
		if (guestmem_page_flags(vm->gm, gpa1) & GUESTMEM_PAGE_WATCHED)
			guestmem_notify_write(vm->gm, gpa1, size - n0);
	}
	return base + off;
}
