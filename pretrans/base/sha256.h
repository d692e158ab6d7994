/*
 * SHA-256 (FIPS 180-4), used to identify image files in the translation
 * database, and HMAC-SHA256 (RFC 2104), which authenticates its rows with
 * the user's key (db/tcdb_auth.c).  Caller-owned contexts; no allocation.
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

/*
 * HMAC-SHA256.  hmac_sha256_init() keys a context (a key longer than the
 * block is hashed first); a keyed context may be copied by value and each
 * copy used for one message, which saves re-keying per message.
 */
struct hmac_sha256_ctx {
	struct sha256_ctx inner, outer;
};

void hmac_sha256_init(struct hmac_sha256_ctx *c, const void *key, size_t key_len);
void hmac_sha256_update(struct hmac_sha256_ctx *c, const void *data, size_t n);
void hmac_sha256_final(struct hmac_sha256_ctx *c, uint8_t out[SHA256_LEN]);
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
		 uint8_t out[SHA256_LEN]);
/* Compare n bytes in time independent of where they differ. */
bool bt_memeq_ct(const void *a, const void *b, size_t n);

#endif
