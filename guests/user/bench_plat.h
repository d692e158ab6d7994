/*
 * bench_plat: what bench_core.c needs from its C library, for both builds:
 * the guest (ulib, -DBENCH_GUEST) and the native Linux host (glibc).
 */
#ifndef BT_GUESTS_USER_BENCH_PLAT_H
#define BT_GUESTS_USER_BENCH_PLAT_H

#ifdef BENCH_GUEST
#include "guests/user/ulib/ulib.h"
#else
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
#endif

#endif
