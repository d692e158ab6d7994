/*
 * The vCPU's CPUID profile (see cpuid.h): which feature bits btvm
 * advertises, from the host's leaves.  Moved here from runtime/cpu so that
 * pretrans can predict what a guest kernel does with the same bits.
 */
#include "pretrans/cpuid/cpuid.h"

#include "pretrans/base/hash.h"

#include <cpuid.h>
#include <string.h>

#define CPU_MAX_BASIC 0x16u
#define CPU_MAX_EXT   0x80000008u

void cpuid_host_read(struct cpuid_host *h)
{
	uint32_t r[4];
	memset(h, 0, sizeof(*h));
	__cpuid_count(0, 0, r[0], r[1], r[2], r[3]);
	uint32_t host_max = r[0];
	__cpuid_count(1, 0, h->l1[0], h->l1[1], h->l1[2], h->l1[3]);
	if (host_max >= 7)
		__cpuid_count(7, 0, h->l7[0], h->l7[1], h->l7[2], h->l7[3]);
	__cpuid_count(0x80000000u, 0, r[0], r[1], r[2], r[3]);
	if (r[0] >= 0x80000001u)
		__cpuid_count(0x80000001u, 0, h->le1[0], h->le1[1], h->le1[2], h->le1[3]);
}

void cpuid_profile_make(struct cpuid_profile *p, const struct cpuid_host *h, uint32_t features)
{
	memset(p, 0, sizeof(*p));
	p->max_basic = CPU_MAX_BASIC;
	p->max_ext = CPU_MAX_EXT;
	p->f1_eax = CPUID_FMS;
	/* CLFLUSH line 8*8 bytes, 1 logical processor, APIC ID 0 */
	p->f1_ebx = (8u << 8) | (1u << 16);
	/* EDX: FPU PSE TSC MSR PAE CX8 APIC SEP PGE CMOV CLFSH MMX FXSR SSE
	 * SSE2 (APIC since v2: runtime/dev/lapic.c) */
	p->f1_edx = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) |
		    (1u << 9) | (1u << 11) | (1u << 13) | (1u << 15) | (1u << 19) | (1u << 23) |
		    (1u << 24) | (1u << 25) | (1u << 26);
	/* ECX: SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT, as the host has them */
	uint32_t ecx_native =
	    (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 23);
	p->f1_ecx = (h->l1[2] & ecx_native) | (1u << 31); /* + HYPERVISOR */
	/* PCID (bit 17): the soft-MMU keeps each PCID's TLB entries and the
	 * code cache its user IBL entries (runtime/mmu/mmu_pcid.c), so a
	 * guest switching processes with CR3 bit 63 keeps them warm */
	p->f1_ecx |= 1u << 17;
	/* TSC_DEADLINE (bit 24, since v2): the LAPIC timer's third mode, so
	 * Linux programs one MSR per timer event and calibrates nothing */
	p->f1_ecx |= 1u << 24;
	/* leaf 7: SMEP, SMAP (the soft-MMU enforces them), ERMS and FSRM
	 * (string ops run natively) if the host has them */
	p->f7_ebx = (1u << 7) | (1u << 20) | (h->l7[1] & (1u << 9));
	/* TSC_ADJUST (bit 1, since v2): with CONSTANT_TSC and the invariant
	 * TSC (0x80000007) Linux then trusts the TSC without a clocksource
	 * watchdog (6.1 check_system_tsc_reliable), no tsc=reliable needed */
	p->f7_ebx |= 1u << 1;
	p->f7_ecx = 0;
	/* optional, all emulated by the vCPU (cpu_config.features) */
	if (features & CPUID_FEAT_FSGSBASE)
		p->f7_ebx |= 1u << 0;
	if (features & CPUID_FEAT_UMIP)
		p->f7_ecx |= 1u << 2;
	if (features & CPUID_FEAT_RDPID)
		p->f7_ecx |= 1u << 22;
	/* ARCH_CAPABILITIES (bit 29): the MSR reports RDCL_NO, which is true by
	 * construction (guest user code runs in stub processes that map no guest
	 * kernel memory), so Linux does not turn on page-table isolation */
	p->f7_edx = (h->l7[3] & (1u << 4)) | (1u << 29);
	/* SERIALIZE (bit 14), emulated (a PRIV exit: every exit re-fetches,
	 * which is what serializing means to a translator).  Linux's
	 * sync_core() then runs one instruction instead of iret-to-self (mov
	 * %ss, mov %cs, iretq: three exits); a Debian boot syncs 108,000
	 * times, after each text_poke */
	p->f7_edx |= 1u << 14;
	/* 0x80000001 ECX: LAHF_LM, LZCNT, PREFETCHW as the host; EDX: SYSCALL,
	 * NX, RDTSCP, LM */
	p->e1_ecx = h->le1[2] & ((1u << 0) | (1u << 5) | (1u << 8));
	p->e1_edx = (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29);
}

uint64_t cpuid_profile_hash(const struct cpuid_profile *p)
{
	uint8_t buf[64 + sizeof(*p)];
	size_t n = 0;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, CPUID_PROFILE_NAME, sizeof(CPUID_PROFILE_NAME));
	n = 32;
	buf[n++] = CPUID_PROFILE_VERSION & 0xff;
	buf[n++] = (CPUID_PROFILE_VERSION >> 8) & 0xff;
	const uint32_t w[] = {p->max_basic, p->max_ext, p->f1_eax, p->f1_ebx, p->f1_ecx, p->f1_edx,
			      p->f7_ebx,    p->f7_ecx,	p->f7_edx, p->e1_ecx, p->e1_edx};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		for (int b = 0; b < 4; b++)
			buf[n++] = (uint8_t)(w[i] >> (8 * b));
	uint64_t x = bt_hash64(buf, n);
	return x ? x : 1;
}
