/*
 * bench_core: the measured functions of the guest benchmark, compiled for
 * the guest (ulib) and natively for the host (glibc) so the two can be
 * compared.  Each returns 0 on success and fills a measurement; printing
 * is left to the caller (bench.c).
 */
#ifndef BT_GUESTS_USER_BENCH_CORE_H
#define BT_GUESTS_USER_BENCH_CORE_H

#include <stdint.h>

struct bench_time {
	uint64_t ns;	 /* CLOCK_MONOTONIC nanoseconds for all iterations */
	uint64_t cycles; /* rdtsc ticks for all iterations */
	uint64_t iters;
};

uint64_t bench_now_ns(void);
/* getpid round trips (a raw syscall instruction, never a cached value). */
int bench_getpid(uint64_t iters, struct bench_time *t);
/* A dependent integer chain: one multiply-add per iteration; *out defeats DCE. */
int bench_dep_loop(uint64_t iters, struct bench_time *t, uint64_t *out);
/* Table-driven CRC-32 (IEEE, reflected) over len bytes, `reps` times. */
int bench_crc32(const uint8_t *buf, uint64_t len, unsigned reps, struct bench_time *t,
		uint32_t *crc);
/* Bit-at-a-time CRC-32 of the same polynomial (the correctness reference). */
uint32_t bench_crc32_bitwise(const uint8_t *buf, uint64_t len);
/* fork + child _exit(0) + wait4, `iters` times. */
int bench_fork_wait(uint64_t iters, struct bench_time *t);
/* First touch of `pages` fresh anonymous pages (one write each). */
int bench_page_fault(uint64_t pages, struct bench_time *t);

#endif
