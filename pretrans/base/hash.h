/*
 * Stable 64-bit hashing of byte strings (FNV-1a, 64-bit).  The value is part
 * of the translation database format: never change the function, add a new
 * one instead.
 */
#ifndef BT_BASE_HASH_H
#define BT_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define BT_HASH_SEED 0xcbf29ce484222325ull

/* Continue an FNV-1a hash from state h (start with BT_HASH_SEED). */
uint64_t bt_hash_update(uint64_t h, const void *p, size_t n);
uint64_t bt_hash64(const void *p, size_t n);

#endif
