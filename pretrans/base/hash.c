/*
 * FNV-1a 64-bit.  Owns nothing; pure functions.  Invariant: the output for a
 * given byte string never changes (databases store it).
 */
#include "pretrans/base/hash.h"

uint64_t bt_hash_update(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t bt_hash64(const void *p, size_t n)
{
	return bt_hash_update(BT_HASH_SEED, p, n);
}
