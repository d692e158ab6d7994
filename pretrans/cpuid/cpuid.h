/*
 * The CPUID profile btvm's vCPU presents, as a named, versioned input
 * shared by the runtime (runtime/cpu answers CPUID from it) and pretrans
 * (pretrans/kpatch predicts how Linux patches itself for it).  A pure
 * function of the host's CPUID leaves and the optional features asked for;
 * docs/cpu.md has the table leaf by leaf, docs/pretrans.md "Boot-time
 * patching" how the prediction uses it.
 *
 * Invariants
 *  1. cpuid_profile_make() depends only on its arguments (no host access);
 *     cpuid_host_read() is the one place that executes CPUID.
 *  2. CPUID_PROFILE_VERSION changes whenever the bits make() produces for
 *     the same input change; cpuid_profile_hash() covers the name, the
 *     version and every feature word, so a database's predictions made for
 *     another profile are recognised (and skipped) by their hash.
 */
#ifndef BT_PRETRANS_CPUID_CPUID_H
#define BT_PRETRANS_CPUID_CPUID_H

#include "pretrans/base/types.h"

#define CPUID_PROFILE_NAME "btvm-intel-6-0f"
/* v1: no APIC; v2: + APIC, TSC_DEADLINE, TSC_ADJUST */
#define CPUID_PROFILE_VERSION 2

/* Optional features the vCPU emulates on request (cpu_config.features). */
#define CPUID_FEAT_FSGSBASE (1u << 0) /* CPUID.7.EBX[0], CR4.FSGSBASE */
#define CPUID_FEAT_RDPID    (1u << 1) /* CPUID.7.ECX[22] */
#define CPUID_FEAT_UMIP	    (1u << 2) /* CPUID.7.ECX[2], CR4.UMIP */

/* Family 6, model 0x0f (ext model 0), stepping 0xb: a Core-2 class model
 * number, >= 0xe so Linux sets CONSTANT_TSC and takes the MISC_ENABLE path,
 * and old enough that no model-specific MSR quirks (PLATFORM_INFO ratios,
 * split-lock, TSX) key off it. */
#define CPUID_FMS 0x000006fbu

/* The host leaves the profile is made of. */
struct cpuid_host {
	uint32_t l1[4];	 /* leaf 1 */
	uint32_t l7[4];	 /* leaf 7 subleaf 0 (zeros when absent) */
	uint32_t le1[4]; /* leaf 0x80000001 (zeros when absent) */
};

struct cpuid_profile {
	uint32_t max_basic, max_ext;
	uint32_t f1_eax, f1_ebx, f1_ecx, f1_edx;
	uint32_t f7_ebx, f7_ecx, f7_edx;
	uint32_t e1_ecx, e1_edx;
};

void cpuid_host_read(struct cpuid_host *h);
void cpuid_profile_make(struct cpuid_profile *p, const struct cpuid_host *h, uint32_t features);
/* Name, version and feature words, hashed (never 0). */
uint64_t cpuid_profile_hash(const struct cpuid_profile *p);

#endif
