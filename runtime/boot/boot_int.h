/*
 * runtime/boot internals shared by its files (boot.c: the ELF kernel and
 * the machine state; boot_bzimage.c: the bzImage).
 */
#ifndef BT_RUNTIME_BOOT_BOOT_INT_H
#define BT_RUNTIME_BOOT_BOOT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/boot/boot.h"

/* What a loaded bzImage gives the zero page: its setup header (bytes
 * 0x1f1 .. 0x1f1 + hdr_len of the file, still mapped) and its load address. */
struct boot_bzimage {
	const uint8_t *hdr;
	size_t hdr_len;
	gpa_t load;
};

/* A boot sector with the "HdrS" setup header (a bzImage, not an ELF). */
bool boot_is_bzimage(const uint8_t *p, size_t size);
/* Copy the protected-mode part of the bzImage p[0..size) (path: for
 * messages) to its load address; fills l->entry, kernel_start, kernel_end
 * (the load address + init_size: what decompression may use) and *bz.
 * BT_ERR_FORMAT / UNSUPPORTED / RANGE with a one-line message. */
enum bt_status boot_load_bzimage(struct guestmem *gm, const char *path, const uint8_t *p,
				 size_t size, struct boot_layout *l, struct boot_bzimage *bz);
/* The image's setup header into the zero page, and the loader's fields
 * that depend on it (code32_start, LOADED_HIGH). */
void boot_bzimage_zero_page(uint8_t *zp, const struct boot_bzimage *bz);

#endif
