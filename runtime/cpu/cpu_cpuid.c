/*
 * The CPUID profile of the vCPU: a fixed "GenuineIntel" family-6 machine
 * that advertises only what the runtime implements (docs/cpu.md has the
 * table, leaf by leaf).  Its feature bits are computed by pretrans/cpuid
 * (shared with pretrans, which predicts the guest's boot-time patching).
 *
 * Invariants
 *  1. A feature bit is advertised only if (a) the runtime implements its
 *     privileged side and (b) for instruction-set bits that translated code
 *     executes natively (SSE*, POPCNT, CX16, LZCNT, ERMS...), the host has it.
 *  2. Not advertised, on purpose: x2APIC (Linux 6.1 refuses x2APIC without
 *     interrupt remapping on a hypervisor it does not know; the xAPIC is
 *     runtime/dev/lapic.c), MTRR/PAT/MCE/MCA, INVPCID, XSAVE/OSXSAVE/AVX*,
 *     MONITOR, VMX/SMX, PDCM, RDRAND/RDSEED, PDPE1GB, SPEC_CTRL and friends.
 *     ARCH_CAPABILITIES is advertised (RDCL_NO only, see its comment).
 *     FSGSBASE, UMIP and RDPID only when cpu_config.features asks: their
 *     privileged side is emulated, but guest user code in direct mode would
 *     run them on the host CPU.
 *  3. The profile is computed once (cpu_cpuid_init) and is a pure function
 *     of the host's CPUID and the config; the dynamic outputs (OSXSAVE,
 *     OSPKE, APIC IDs) are derived from vCPU state at query time.
 *  4. Leaves above the maximum of their range return the data of the
 *     highest basic leaf, as Intel CPUs do; the hypervisor range answers
 *     only 0x40000000 ("btvmbtvmbtvm") and zeros above it.
 */
#include "runtime/cpu/cpu_internal.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/cpuid/cpuid.h"

#include <cpuid.h>
#include <string.h>

#define CPU_HV_BASE 0x40000000u

_Static_assert(CPU_FEAT_FSGSBASE == CPUID_FEAT_FSGSBASE && CPU_FEAT_RDPID == CPUID_FEAT_RDPID &&
		   CPU_FEAT_UMIP == CPUID_FEAT_UMIP,
	       "cpu_config.features are pretrans/cpuid's bits");

static void host_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

/* Host TSC frequency: CPUID 0x15, else 0x16, else a 20 ms calibration. */
static uint32_t host_tsc_khz(void)
{
	uint32_t r[4];
	host_cpuid(0, 0, r);
	uint32_t max = r[0];
	if (max >= 0x15) {
		host_cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2])
			return (uint32_t)((uint64_t)r[2] * r[1] / r[0] / 1000);
	}
	uint64_t t0 = bt_now_ns(), c0 = __builtin_ia32_rdtsc();
	uint64_t t1;
	do
		t1 = bt_now_ns();
	while (t1 - t0 < 20000000ull);
	uint64_t c1 = __builtin_ia32_rdtsc();
	return (uint32_t)((c1 - c0) * 1000000ull / (t1 - t0));
}

void cpu_cpuid_init(struct cpu_cpuid_profile *p, const struct cpu_config *cfg)
{
	/* the feature bits: pretrans/cpuid (shared with pretrans's prediction
	 * of the guest kernel's boot-time patching) */
	struct cpuid_host h;
	struct cpuid_profile cp;
	cpuid_host_read(&h);
	cpuid_profile_make(&cp, &h, cfg->features);
	memset(p, 0, sizeof(*p));
	p->max_basic = cp.max_basic;
	p->max_ext = cp.max_ext;
	p->f1_eax = cp.f1_eax;
	p->f1_ebx = cp.f1_ebx;
	p->f1_ecx = cp.f1_ecx;
	p->f1_edx = cp.f1_edx;
	p->f7_ebx = cp.f7_ebx;
	p->f7_ecx = cp.f7_ecx;
	p->f7_edx = cp.f7_edx;
	p->e1_ecx = cp.e1_ecx;
	p->e1_edx = cp.e1_edx;
	p->hash = cpuid_profile_hash(&cp);
	p->tsc_khz = cfg->tsc_khz ? cfg->tsc_khz : host_tsc_khz();
	if (p->tsc_khz < 1000)
		p->tsc_khz = 1000000; /* implausible measurement: claim 1 GHz */
	/* the soft-MMU default: covers every RAM size guestmem allows */
	p->phys_bits = cfg->phys_bits ? cfg->phys_bits : MMU_DEFAULT_PHYS_BITS;
	bt_debug(LOG_CPU,
		 "cpu: CPUID profile %s v%d (%016llx): tsc %u kHz, %u physical address bits",
		 CPUID_PROFILE_NAME, CPUID_PROFILE_VERSION, (unsigned long long)p->hash, p->tsc_khz,
		 p->phys_bits);
}

static void put_str(uint32_t *regs, const char *s)
{
	memcpy(regs, s, 4);
}

/* Brand string for 0x80000002..4: 48 bytes, NUL padded. */
static const char cpu_brand[48] = "btvm virtual CPU";

static void cpu_cpuid_basic(const struct vcpu *v, uint32_t leaf, uint32_t sub, uint32_t o[4])
{
	const struct cpu_cpuid_profile *p = &v->cpuid;
	switch (leaf) {
	case 0:
		/* IA32_MISC_ENABLE.LIMIT_CPUID (bit 22) caps the max leaf at 2 */
		o[0] = (v->msr.misc_enable & (1ull << 22)) ? 2 : p->max_basic;
		put_str(&o[1], "Genu");
		put_str(&o[3], "ineI");
		put_str(&o[2], "ntel");
		return;
	case 1:
		o[0] = p->f1_eax;
		o[1] = p->f1_ebx;
		o[2] = p->f1_ecx;
		o[3] = p->f1_edx;
		return;
	case 2:
		o[0] = 0x00000001; /* one iteration, no descriptors */
		return;
	case 6:
		o[0] = 1u << 2; /* ARAT */
		return;
	case 7:
		if (sub == 0) {
			o[0] = 0; /* max subleaf */
			o[1] = p->f7_ebx;
			o[2] = p->f7_ecx;
			o[3] = p->f7_edx;
		}
		return;
	case 0xb:
	case 0x1f:
		/* one thread, one core: SMT level then core level */
		if (sub == 0) {
			o[0] = 0;
			o[1] = 1;
			o[2] = (1u << 8) | sub;
		} else if (sub == 1) {
			o[0] = 0;
			o[1] = 1;
			o[2] = (2u << 8) | sub;
		} else {
			o[2] = sub & 0xff;
		}
		o[3] = 0; /* x2APIC ID */
		return;
	case 0x15:
		/* Linux computes crystal_khz * EBX / EAX in 32 bits (6.1
		 * native_calibrate_tsc), so keep the product small: a 1 MHz
		 * crystal (also the LAPIC timer clock, LAPIC_BUS_HZ), EBX/EAX =
		 * tsc_khz/1000 reduced; above 4.29 GHz, MHz precision */
		if (p->tsc_khz <= 0xffffffffu / 1000) {
			uint32_t num = p->tsc_khz, den = 1000;
			while (num % 10 == 0 && den % 10 == 0)
				num /= 10, den /= 10;
			while (num % 2 == 0 && den % 2 == 0)
				num /= 2, den /= 2;
			while (num % 5 == 0 && den % 5 == 0)
				num /= 5, den /= 5;
			o[0] = den;
			o[1] = num;
		} else {
			o[0] = 1;
			o[1] = (p->tsc_khz + 500) / 1000;
		}
		o[2] = 1000000;
		return;
	case 0x16:
		o[0] = p->tsc_khz / 1000; /* base MHz */
		o[1] = p->tsc_khz / 1000; /* max MHz */
		o[2] = 100;		  /* bus MHz */
		return;
	default:
		/* 3,4,5,8,9,0xa (no PMU),0xc,0xd (no XSAVE),0xe..0x14: all zero */
		return;
	}
}

static void cpu_cpuid_ext(const struct vcpu *v, uint32_t leaf, uint32_t o[4])
{
	const struct cpu_cpuid_profile *p = &v->cpuid;
	switch (leaf) {
	case 0x80000000u:
		o[0] = p->max_ext;
		return;
	case 0x80000001u:
		o[2] = p->e1_ecx;
		o[3] = p->e1_edx;
		/* IA32_MISC_ENABLE.XD_DISABLE (bit 34) hides NX */
		if (v->msr.misc_enable & (1ull << 34))
			o[3] &= ~(1u << 20);
		return;
	case 0x80000002u:
	case 0x80000003u:
	case 0x80000004u:
		memcpy(o, cpu_brand + 16 * (leaf - 0x80000002u), 16);
		return;
	case 0x80000006u:
		o[2] = (256u << 16) | (6u << 12) | 64; /* L2: 256 KiB, 8-way, 64 B lines */
		return;
	case 0x80000007u:
		o[3] = 1u << 8; /* invariant TSC */
		return;
	case 0x80000008u:
		o[0] = (48u << 8) | p->phys_bits;
		return;
	default:
		return; /* 0x80000005: reserved on Intel */
	}
}

void cpu_cpuid(const struct vcpu *v, uint32_t leaf, uint32_t sub, uint32_t o[4])
{
	uint32_t max_basic = (v->msr.misc_enable & (1ull << 22)) ? 2 : v->cpuid.max_basic;
	o[0] = o[1] = o[2] = o[3] = 0;
	if (leaf >= CPU_HV_BASE && leaf < 0x50000000u) {
		if (leaf == CPU_HV_BASE) {
			o[0] = CPU_HV_BASE; /* highest hypervisor leaf */
			put_str(&o[1], "btvm");
			put_str(&o[2], "btvm");
			put_str(&o[3], "btvm");
		}
		return;
	}
	if (leaf >= 0x80000000u && leaf <= v->cpuid.max_ext) {
		cpu_cpuid_ext(v, leaf, o);
		return;
	}
	if (leaf > max_basic) /* Intel: out-of-range leaves alias the top basic leaf */
		leaf = max_basic, sub = 0;
	cpu_cpuid_basic(v, leaf, sub, o);
}
