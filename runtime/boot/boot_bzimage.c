/*
 * A bzImage (/boot/vmlinuz-*) through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit boot protocol"): the protected-
 * mode part -- the decompressor with the compressed kernel -- is copied to
 * its preferred load address, the zero page gets the image's own setup
 * header, and the vCPU enters at load address + 0x200 (startup_64) in long
 * mode with the loader's identity map.  The decompressor then runs
 * translated like any guest code, unpacks the kernel and jumps to it.
 *
 * Checked (everything in the file is untrusted): the boot sector and "HdrS"
 * magics, protocol 2.12 or later (xloadflags, pref_address, init_size),
 * XLF_KERNEL_64, a setup size inside the file, a preferred address at or
 * above 1 MiB and aligned to the kernel's alignment, and [load address,
 * load address + init_size) inside low RAM, which must hold the payload.
 */
#include "runtime/boot/boot_int.h"

#include <string.h>

#include "pretrans/base/le.h"
#include "pretrans/base/log.h"

#define HDR_SETUP_SECTS	   0x1f1
#define HDR_JUMP	   0x200 /* 2-byte jump; its offset byte says where the header ends */
#define HDR_MAGIC	   0x202
#define HDR_VERSION	   0x206
#define HDR_LOADFLAGS	   0x211
#define HDR_KERNEL_VERSION 0x20e /* its string's offset - 0x200 */
#define HDR_CODE32_START   0x214
#define HDR_KERNEL_ALIGN   0x230
#define HDR_RELOCATABLE	   0x234
#define HDR_XLOADFLAGS	   0x236
#define HDR_PREF_ADDRESS   0x258
#define HDR_INIT_SIZE	   0x260
#define HDR_MIN_SIZE	   0x268
#define XLF_KERNEL_64	   0x1
#define BZ_ENTRY_64_OFFSET 0x200

bool boot_is_bzimage(const uint8_t *p, size_t size)
{
	return size >= 0x206 && p[0x1fe] == 0x55 && p[0x1ff] == 0xaa &&
	       memcmp(p + HDR_MAGIC, "HdrS", 4) == 0;
}

static enum bt_status bad(const char *path, const char *what)
{
	bt_err(LOG_CORE, "%s: %s", path, what);
	return BT_ERR_FORMAT;
}

/* The setup header's kernel_version string, if it points inside the setup
 * (before the protected-mode part at setup_end) and ends there. */
static void kernel_version(const uint8_t *p, size_t setup_end, char *out, size_t cap)
{
	out[0] = 0;
	size_t off = bt_get16(p + HDR_KERNEL_VERSION);
	if (!off || off + 0x200 >= setup_end)
		return;
	const uint8_t *str = p + off + 0x200;
	size_t max = setup_end - off - 0x200;
	const uint8_t *nul = memchr(str, 0, max < cap ? max : cap);
	if (!nul)
		return;
	memcpy(out, str, (size_t)(nul - str) + 1);
}

bool boot_kernel_version_matches(const char *banner, const char *kver)
{
	static const char prefix[] = "Linux version ";
	/* kver = head tail: head "R (BY@HOST) ", tail V */
	const char *close = strstr(kver, ") ");
	if (!kver[0] || !close || strncmp(banner, prefix, sizeof(prefix) - 1) != 0)
		return false;
	size_t head = (size_t)(close + 2 - kver);
	const char *b = banner + sizeof(prefix) - 1;
	if (strncmp(b, kver, head) != 0 || b[head] != '(')
		return false;
	/* then "(" COMPILER ") " V "\n" */
	const char *tail = close + 2;
	size_t bl = strlen(b), tl = strlen(tail);
	if (bl < head + tl + 4)
		return false;
	const char *v = b + bl - 1 - tl;
	return b[bl - 1] == '\n' && memcmp(v, tail, tl) == 0 && v[-2] == ')' && v[-1] == ' ';
}

enum bt_status boot_load_bzimage(struct guestmem *gm, const char *path, const uint8_t *p,
				 size_t size, struct boot_layout *l, struct boot_bzimage *bz)
{
	if (size < HDR_MIN_SIZE || !boot_is_bzimage(p, size))
		return bad(path, "not a bzImage (no boot sector and \"HdrS\" setup header)");
	uint16_t version = bt_get16(p + HDR_VERSION);
	if (version < 0x020c) {
		bt_err(LOG_CORE,
		       "%s: boot protocol %u.%02u: a 64-bit entry needs 2.12 or later "
		       "(Linux 3.8+); pass the matching vmlinux instead",
		       path, version >> 8, version & 0xff);
		return BT_ERR_UNSUPPORTED;
	}
	if (!(bt_get16(p + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		bt_err(LOG_CORE,
		       "%s: the bzImage has no 64-bit entry point (XLF_KERNEL_64): a 32-bit "
		       "kernel? btvm boots x86-64 kernels",
		       path);
		return BT_ERR_UNSUPPORTED;
	}
	unsigned sects = p[HDR_SETUP_SECTS] ? p[HDR_SETUP_SECTS] : 4;
	size_t pm_off = ((size_t)sects + 1) * 512;
	size_t hdr_end = HDR_MAGIC + p[HDR_JUMP + 1];
	if (pm_off >= size || hdr_end > pm_off || hdr_end < HDR_MIN_SIZE)
		return bad(path, "corrupt setup header (setup size or header length)");
	uint64_t align = bt_get32(p + HDR_KERNEL_ALIGN);
	uint64_t load = bt_get64(p + HDR_PREF_ADDRESS);
	uint64_t init_size = bt_get32(p + HDR_INIT_SIZE);
	size_t pm_size = size - pm_off;
	if (!load || !p[HDR_RELOCATABLE])
		load = 0x100000;
	if (load < BOOT_KERNEL_MIN || (align && (align & (align - 1)) == 0 && (load & (align - 1))))
		return bad(path, "the preferred load address is below 1 MiB or not aligned");
	if (init_size < pm_size)
		init_size = pm_size;
	gpa_t low_end = guestmem_low_end(gm);
	if (load + init_size > low_end || load + init_size < load) {
		bt_err(
		    LOG_CORE,
		    "%s: the kernel needs %llu bytes of RAM from %#llx to decompress (init_size); "
		    "low RAM ends at %#llx: more --mem?",
		    path, (unsigned long long)init_size, (unsigned long long)load,
		    (unsigned long long)low_end);
		return BT_ERR_RANGE;
	}
	kernel_version(p, pm_off, l->kernel_version, sizeof(l->kernel_version));
	BT_TRY(guestmem_write(gm, load, p + pm_off, pm_size));
	l->entry = load + BZ_ENTRY_64_OFFSET;
	l->kernel_start = load;
	l->kernel_end = load + init_size;
	bz->hdr = p + HDR_SETUP_SECTS;
	bz->hdr_len = hdr_end - HDR_SETUP_SECTS;
	bz->load = load;
	return BT_OK;
}

void boot_bzimage_zero_page(uint8_t *zp, const struct boot_bzimage *bz)
{
	/* the image's own setup header, then the loader's fields on top of it */
	memcpy(zp + HDR_SETUP_SECTS, bz->hdr, bz->hdr_len);
	bt_put32(zp + HDR_CODE32_START, (uint32_t)bz->load);
	zp[HDR_LOADFLAGS] |= 0x01; /* LOADED_HIGH */
}
