/* gcc-compiled test functions for the differential test (funcs.c). */
#ifndef BT_TESTS_XLAT_FUNCS_H
#define BT_TESTS_XLAT_FUNCS_H

#include <stdint.h>

void xf_crc_init(void);
uint64_t xf_crc32(const uint8_t *p, uint64_t n);
uint64_t xf_isort(int64_t *a, uint64_t n);
uint64_t xf_copy(uint8_t *d, const uint8_t *s, uint64_t n);
uint64_t xf_switch(uint64_t x, uint64_t y);
uint64_t xf_fib(uint64_t n);
uint64_t xf_apply(int64_t *a, uint64_t n, int (*cmp)(const void *, const void *));
int xf_cmp(const void *a, const void *b);
uint64_t xf_divmix(uint64_t a, uint64_t b);

extern const uint8_t __start_xlat_funcs[], __stop_xlat_funcs[];

#endif
