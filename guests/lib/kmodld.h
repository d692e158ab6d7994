/*
 * kmodld: a freestanding loader for x86-64 relocatable objects (ET_REL,
 * e.g. a gcc -c output built with -mcmodel=kernel), used by the guest kernel
 * to load the lib/modules/ objects from its initrd and by host tests.
 *
 * The object is untrusted: the ELF header, section table, symbol table,
 * string tables and every relocation are checked against the buffer length
 * and against the sections they name.  Loading lays out every SHF_ALLOC
 * section (text, rodata, data, bss, plus SHN_COMMON symbols) in one block
 * obtained from the caller's allocator, resolves undefined symbols through
 * the caller's resolver, applies RELA relocations (R_X86_64_64, _32, _32S,
 * _PC32, _PLT32 (as PC32: no PLT), _PC64, _NONE) with overflow checks, and
 * returns the run-time address of `kmod_init`.
 *
 * Memory and run addresses are kept apart: the allocator returns a writable
 * pointer and the address the code will run at, so a loader may prepare an
 * image for another address space (tests do this to check -mcmodel=kernel
 * relocations with a higher-half run address).
 */
#ifndef BT_GUESTS_LIB_KMODLD_H
#define BT_GUESTS_LIB_KMODLD_H

#include <stddef.h>
#include <stdint.h>

#include "pretrans/base/status.h"

/* Most sections an object may have (caller-owned state holds one slot per section). */
#define KMODLD_MAX_SECTIONS 128
#define KMODLD_MSG_SIZE	    160

struct kmodld_ops {
	void *ctx;
	/*
	 * Provide size bytes aligned to align (a power of two): *mem is where the
	 * loader writes, *runaddr the address the image will execute at (both
	 * aligned).  The loader zeroes the block itself.
	 */
	enum bt_status (*alloc)(void *ctx, uint64_t size, uint64_t align, void **mem,
				uint64_t *runaddr);
	/* Address of an undefined symbol, or BT_ERR_NOTFOUND. */
	enum bt_status (*resolve)(void *ctx, const char *name, uint64_t *addr);
};

/* Caller-owned loader state and result (keep it off small stacks: ~1.2 KiB). */
struct kmodld {
	/* results */
	uint64_t base;		   /* run address of the image */
	uint64_t size;		   /* bytes of the image */
	uint64_t init;		   /* run address of kmod_init */
	unsigned nreloc;	   /* relocations applied */
	char msg[KMODLD_MSG_SIZE]; /* why loading failed ("" on success) */
	/* private */
	uint64_t sec_off[KMODLD_MAX_SECTIONS]; /* offset of each alloc section in the image */
	uint64_t common_off;
};

/*
 * Load the object elf[0..len).  Returns BT_OK and fills ld->base/size/init, or:
 *  BT_ERR_FORMAT      malformed or truncated ELF, bad indices or offsets
 *  BT_ERR_UNSUPPORTED not ELF64/x86-64/ET_REL, unknown relocation type, too many sections
 *  BT_ERR_NOTFOUND    an undefined symbol the resolver does not know, or no kmod_init
 *  BT_ERR_RANGE       a relocated value does not fit its field
 *  BT_ERR_NOMEM       (or any status) from the allocator
 * with a one-line explanation in ld->msg.
 */
enum bt_status kmodld_load(struct kmodld *ld, const void *elf, size_t len,
			   const struct kmodld_ops *ops);

/*
 * Run address of a global symbol defined by the image ld loaded from the
 * same object (BT_ERR_NOTFOUND with ld->msg set when absent).
 */
enum bt_status kmodld_symbol(struct kmodld *ld, const void *elf, size_t len, const char *name,
			     uint64_t *addr);

#endif
