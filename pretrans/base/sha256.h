/*
 * SHA-256 (FIPS 180-4), used to identify image files in the translation
 * database.  Caller-owned context; no allocation.
 */
#ifndef BT_BASE_SHA256_H
#define BT_BASE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256_ctx {
	uint32_t h[8];
	uint64_t nbytes;
	uint8_t buf[64];
	size_t nbuf;
	int ni; /* use the SHA extensions (set by sha256_init from CPUID) */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t n);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);
void sha256_buf(const void *data, size_t n, uint8_t out[SHA256_LEN]);
/* Lower-case hex, out must hold 2 * SHA256_LEN + 1 bytes. */
void sha256_hex(const uint8_t digest[SHA256_LEN], char *out);

#endif
