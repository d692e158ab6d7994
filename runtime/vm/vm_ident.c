/*
 * Which kernel a bzImage decompressed: a database built from a vmlinux
 * serves a bzImage's boot only once the kernel the decompressor unpacked
 * is known to be that vmlinux (docs/runtime.md "A database with a
 * bzImage").
 *
 * At open, a bzImage whose setup header names its kernel (kernel_version)
 * and a database whose image has a linux_banner must name the same build,
 * else the database is refused.  The database also records where its
 * image keeps its build-id: the NT_GNU_BUILD_ID note's descriptor at its
 * link address (tcdb_image.build_id_va, schema 6).  The decompressor runs identity-mapped in low
 * memory; the kernel's first block in the top 2 GiB (startup_64's jump to
 * its virtual addresses, after it loaded page tables mapping the whole
 * image) is the moment the image is in memory and mapped: its build-id is
 * read there through the guest's page tables.
 *
 *   WAIT --[first kernel-half block, note = the DB's]--------> ON
 *   WAIT --[the note 2 MiB * k higher: KASLR moved the kernel]-> OFF
 *   WAIT --[no such note]-------------------------------------> OFF
 *   (vm_ident_init enters WAIT; vm_ident_check leaves it.  A vmlinux boot,
 *   or one without a database, is ON from the start: vm->db says which.)
 *
 * Invariants
 *  1. Database blocks and module templates are looked up only ON; every
 *     block is still checked against guest memory by its guest-bytes hash.
 *  2. Blocks installed before ON are never written back (--learn), and a
 *     database that never turned ON is not written at all (vm_finish).
 *  3. Guest memory is read with probe walks only: no accessed bits set, no
 *     fault raised, whatever the guest's page tables hold.
 */
#include <string.h>

#include "pretrans/base/log.h"
#include "runtime/boot/boot.h"
#include "runtime/vm/vm_int.h"

#define KERNEL_HALF	 0xffffffff80000000ull /* __START_KERNEL_map */
#define KASLR_ALIGN	 0x200000ull	       /* CONFIG_PHYSICAL_ALIGN's x86-64 minimum */
#define KASLR_RANGE	 0x40000000ull	       /* KERNEL_IMAGE_SIZE with RANDOMIZE_BASE */
#define NOTE_HDR	 16		       /* namesz, descsz, type, "GNU\0" */
#define NT_GNU_BUILD_ID_ 3

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

enum bt_status vm_ident_init(struct vm *vm, const struct tcdb_image *im, const char *kver)
{
	/* another build's database is refused now, when both say which kernel
	 * they are (the setup header's kernel_version, the vmlinux's banner) */
	if (im->banner[0] && kver[0] && !boot_kernel_version_matches(im->banner, kver)) {
		size_t bl = strlen(im->banner);
		bt_err(LOG_DB,
		       "%s is for the kernel \"%.*s\", not for the bzImage %s (\"%s\"): build a "
		       "database from the vmlinux of the same build (Debian: "
		       "linux-image-RELEASE-dbg) with `pretrans build`",
		       vm->cfg.tcdb, (int)(im->banner[bl - 1] == '\n' ? bl - 1 : bl), im->banner,
		       vm->cfg.kernel, kver);
		return BT_ERR_VERSION;
	}
	size_t n = strlen(im->build_id);
	if (n == 0 || n % 2 || n / 2 > sizeof(vm->ident.build_id) || !im->build_id_va) {
		bt_err(LOG_DB,
		       "%s: the database records no build-id location for %s, so the kernel "
		       "the bzImage %s unpacks cannot be checked against it: rebuild it with "
		       "`pretrans build` from the vmlinux (with its build-id note), or pass "
		       "that vmlinux as --kernel",
		       vm->cfg.tcdb, im->path, vm->cfg.kernel);
		return BT_ERR_INVALID;
	}
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(im->build_id[2 * i]), lo = hexval(im->build_id[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			bt_err(LOG_DB, "%s: corrupt build-id in the image row", vm->cfg.tcdb);
			return BT_ERR_FORMAT;
		}
		vm->ident.build_id[i] = (uint8_t)(hi << 4 | lo);
	}
	vm->ident.len = n / 2;
	vm->ident.va = im->build_id_va;
	vm->ident.state = VM_IDENT_WAIT;
	return BT_OK;
}

/* Copy len bytes at va through the guest's page tables (probe walks). */
static bool peek(struct vm *vm, gva_t va, uint8_t *buf, size_t len)
{
	while (len) {
		size_t n = GUEST_PAGE_SIZE - (va & (GUEST_PAGE_SIZE - 1));
		if (n > len)
			n = len;
		gpa_t gpa;
		bool mmio = false;
		struct mmu_fault f = {0};
		if (mmu_translate(&vm->mmu, va, MMU_ACC_READ | MMU_ACC_PROBE, &gpa, &mmio, &f) !=
			BT_OK ||
		    f.pending || mmio)
			return false;
		const uint8_t *p = guestmem_gpa_to_host(vm->gm, gpa, n);
		if (!p)
			return false;
		memcpy(buf, p, n);
		buf += n;
		va += n;
		len -= n;
	}
	return true;
}

/* Does the guest hold the database's build-id note with its descriptor at va? */
static bool note_at(struct vm *vm, gva_t va)
{
	uint8_t b[NOTE_HDR + sizeof(vm->ident.build_id)];
	size_t len = NOTE_HDR + vm->ident.len;
	if (va < NOTE_HDR || !peek(vm, va - NOTE_HDR, b, len))
		return false;
	uint32_t namesz, descsz, type;
	memcpy(&namesz, b, 4);
	memcpy(&descsz, b + 4, 4);
	memcpy(&type, b + 8, 4);
	return namesz == 4 && descsz == vm->ident.len && type == NT_GNU_BUILD_ID_ &&
	       memcmp(b + 12, "GNU", 4) == 0 &&
	       memcmp(b + NOTE_HDR, vm->ident.build_id, len - NOTE_HDR) == 0;
}

void vm_ident_check(struct vm *vm, gva_t rip)
{
	if (rip < KERNEL_HALF)
		return;
	char hex[2 * sizeof(vm->ident.build_id) + 1];
	for (size_t i = 0; i < vm->ident.len; i++)
		snprintf(hex + 2 * i, 3, "%02x", vm->ident.build_id[i]);
	hex[2 * vm->ident.len] = 0;
	vm->ident.rip = rip;
	if (note_at(vm, vm->ident.va)) {
		vm->ident.state = VM_IDENT_ON;
		bt_info(LOG_DB,
			"%s: the kernel %s unpacked is the database's (build-id %s at %#llx): "
			"database look-ups on from %#llx",
			vm->cfg.tcdb, vm->cfg.kernel, hex, (unsigned long long)vm->ident.va,
			(unsigned long long)rip);
		return;
	}
	vm->ident.state = VM_IDENT_OFF;
	for (uint64_t off = KASLR_ALIGN; off < KASLR_RANGE; off += KASLR_ALIGN) {
		if (vm->ident.va + off < vm->ident.va || !note_at(vm, vm->ident.va + off))
			continue;
		vm->ident.kaslr = off;
		bt_warn(LOG_DB,
			"%s: the kernel is the database's (build-id %s) but KASLR moved it by "
			"+%#llx from the link address its blocks are keyed by: every block is "
			"translated at run time; add nokaslr to --cmdline for a warm boot",
			vm->cfg.tcdb, hex, (unsigned long long)off);
		return;
	}
	bt_warn(LOG_DB,
		"%s: the kernel %s unpacked is not the database's image (no build-id %s at "
		"%#llx): every block is translated at run time and --learn writes nothing",
		vm->cfg.tcdb, vm->cfg.kernel, hex, (unsigned long long)vm->ident.va);
}
