/*
 * libFuzzer target for the translator core: arbitrary bytes as guest code
 * (and as an untrusted pc map).  Checks that translation never crashes,
 * stays bounded, is deterministic, and that its pc map covers its code.
 *
 * Input: byte 0 = options (bit 0 cross-check, bit 1 exact faults, bits 2-7
 * max_insns), byte 1 = start offset within the page (x16, so page-end
 * blocks are exercised), the rest = guest bytes.
 */
#include "pretrans/xlat/xlat.h"
#include "pretrans/xcheck/xcheck.h"

#include <stdlib.h>
#include <string.h>

#define BASE 0xffffffff81000000ull

struct fz {
	const uint8_t *p;
	size_t n;
	gva_t start;
};

static size_t fz_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct fz *f = opaque;
	if (va < f->start || va >= f->start + f->n)
		return 0;
	size_t n = BT_MIN(len, (size_t)(f->start + f->n - va));
	memcpy(buf, f->p + (va - f->start), n);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct xlat_ctx *ctx[4], *ctx2[4];
	static uint8_t copy[1 << 18];
	if (size < 3)
		return 0;
	unsigned o = data[0] & 3;
	if (!ctx[o]) {
		struct xlat_options opts = {
		    .flags = o, .max_insns = 0, .checker = &xcheck_checker_ops};
		if (xlat_create(&opts, &ctx[o]) != BT_OK || xlat_create(&opts, &ctx2[o]) != BT_OK)
			abort();
	}
	struct fz f = {.p = data + 2, .n = size - 2};
	f.start = BASE + (gva_t)data[1] * 16;
	struct xlat_source src = {.read = fz_read, .opaque = &f};
	gva_t va = f.start;
	for (int blocks = 0; blocks < 64 && va < f.start + f.n; blocks++) {
		struct bt_block b, b2;
		if (xlat_translate(ctx[o], &src, va, &b) != BT_OK)
			abort();
		if (b.refusal != XLAT_OK)
			break;
		if (b.guest_len == 0 || b.guest_len > 64 * 15 || b.code_len == 0 ||
		    b.code_len > sizeof(copy) || b.n_exits == 0 || b.n_exits > XLAT_MAX_EXITS)
			abort();
		for (uint32_t i = 0; i < b.n_exits; i++)
			if (b.exits[i].stub_off >= b.code_len ||
			    (b.exits[i].patch_off != ~0u && b.exits[i].patch_off + 4 > b.code_len))
				abort();
		/* every host offset after the first map entry maps into the block */
		for (uint32_t off = 0; off < b.code_len; off++) {
			gva_t rip;
			uint32_t sp;
			enum bt_status s =
			    xlat_pcmap_lookup(b.pcmap, b.pcmap_len, b.guest_start, off, &rip, &sp);
			if (s == BT_OK &&
			    (rip < b.guest_start || rip > b.guest_start + b.guest_len))
				abort();
			if (s == BT_ERR_FORMAT)
				abort();
		}
		memcpy(copy, b.code, b.code_len);
		if (xlat_translate(ctx2[o], &src, va, &b2) != BT_OK || b2.code_len != b.code_len ||
		    memcmp(copy, b2.code, b.code_len) != 0)
			abort(); /* not deterministic */
		va += b.guest_len;
	}
	/* the raw input as an untrusted pc map: rejected or mapped, never a crash */
	gva_t rip;
	uint32_t sp;
	(void)xlat_pcmap_lookup(data, (uint32_t)size, BASE, (uint32_t)size * 3, &rip, &sp);
	return 0;
}
