/*
 * Model-specific registers, table driven.  Each MSR the vCPU knows is one
 * row of cpu_msr_table: its index, name, where its value lives, which bits a
 * write may set, and optional read/write hooks for the few with side
 * effects (EFER, TSC, the segment bases, PAT validation).
 *
 * Invariants
 *  1. An index not in the table raises #GP(0) on rdmsr and wrmsr, as do
 *     writes to read-only rows and writes setting bits outside `wmask`.
 *  2. Rows for features the CPUID profile does not advertise are absent
 *     (SPEC_CTRL, PRED_CMD, FLUSH_CMD, MCG_*, x2APIC, XSS...): Linux
 *     probes them with *_safe accessors.  APIC_BASE and TSC_DEADLINE go
 *     to the local APIC model when the platform has one (apic_msr).
 *  3. Address-valued MSRs (FS/GS/KERNEL_GS base, LSTAR, CSTAR,
 *     SYSENTER_ESP/EIP) must be canonical: #GP(0) otherwise.
 *  4. FS_BASE/GS_BASE/KERNEL_GS_BASE live in vcpu_abi (translated code adds
 *     them to %fs:/%gs: operands); nothing else does.
 */
#include "runtime/cpu/cpu_internal.h"

#include "pretrans/base/log.h"

#include <stddef.h>

enum cpu_msr_flags {
	MSR_RO = 1u << 0,      /* writes #GP */
	MSR_CANON = 1u << 1,   /* value must be canonical */
	MSR_IN_ABI = 1u << 2,  /* `off` is into struct vcpu_abi, not struct vcpu */
	MSR_WIGNORE = 1u << 3, /* writes accepted and dropped */
};

struct cpu_msr_def {
	uint32_t index;
	const char *name;
	uint32_t flags;
	size_t off;	/* storage offset; SIZE_MAX = no storage (const/hook) */
	uint64_t wmask; /* bits a write may set */
	uint64_t cval;	/* value of storage-less rows */
	bool (*rd)(struct vcpu *v, uint64_t *val);
	bool (*wr)(struct vcpu *v, uint64_t val);
};

#define V(field) offsetof(struct vcpu, field)
#define A(field) offsetof(struct vcpu_abi, field)
#define NOSTORE	 SIZE_MAX
#define ALL	 (~0ull)

uint64_t cpu_guest_tsc(const struct vcpu *v)
{
	return cpu_host_tsc(v) + (uint64_t)v->msr.tsc_offset;
}

static bool msr_tsc_rd(struct vcpu *v, uint64_t *val)
{
	*val = cpu_guest_tsc(v);
	return true;
}

/* A TSC write moves IA32_TSC_ADJUST by the same amount (SDM 17.17.3). */
static bool msr_tsc_wr(struct vcpu *v, uint64_t val)
{
	int64_t off = (int64_t)(val - cpu_host_tsc(v));
	v->msr.tsc_adjust += off - v->msr.tsc_offset;
	v->msr.tsc_offset = off;
	return true;
}

/* IA32_TSC_ADJUST: a write moves the TSC by the change. */
static bool msr_tsc_adjust_rd(struct vcpu *v, uint64_t *val)
{
	*val = (uint64_t)v->msr.tsc_adjust;
	return true;
}

static bool msr_tsc_adjust_wr(struct vcpu *v, uint64_t val)
{
	v->msr.tsc_offset += (int64_t)val - v->msr.tsc_adjust;
	v->msr.tsc_adjust = (int64_t)val;
	return true;
}

/* IA32_APIC_BASE and IA32_TSC_DEADLINE belong to the local APIC model
 * (runtime/dev/lapic.c, through cpu_platform.apic_msr). */
static bool msr_apic_base_rd(struct vcpu *v, uint64_t *val)
{
	if (!v->plat.apic_msr) {
		*val = v->msr.apic_base;
		return true;
	}
	return v->plat.apic_msr(v->plat.opaque, 0x1b, false, cpu_guest_tsc(v), val) ||
	       cpu_raise_gp0(v);
}

static bool msr_apic_base_wr(struct vcpu *v, uint64_t val)
{
	if (!v->plat.apic_msr) {
		v->msr.apic_base = val;
		return true;
	}
	return v->plat.apic_msr(v->plat.opaque, 0x1b, true, cpu_guest_tsc(v), &val) ||
	       cpu_raise_gp0(v);
}

static bool msr_tsc_deadline_rd(struct vcpu *v, uint64_t *val)
{
	if (!v->plat.apic_msr)
		return cpu_raise_gp0(v);
	return v->plat.apic_msr(v->plat.opaque, 0x6e0, false, cpu_guest_tsc(v), val) ||
	       cpu_raise_gp0(v);
}

static bool msr_tsc_deadline_wr(struct vcpu *v, uint64_t val)
{
	if (!v->plat.apic_msr)
		return cpu_raise_gp0(v);
	return v->plat.apic_msr(v->plat.opaque, 0x6e0, true, cpu_guest_tsc(v), &val) ||
	       cpu_raise_gp0(v);
}

static bool msr_efer_wr(struct vcpu *v, uint64_t val)
{
	uint64_t ok = CPU_EFER_SCE | CPU_EFER_LME | CPU_EFER_LMA;
	if (v->cpuid.e1_edx & (1u << 20))
		ok |= CPU_EFER_NXE;
	if (val & ~ok)
		return cpu_raise_gp0(v);
	/* LMA is read-only; LME cannot change while paging is on */
	if ((val ^ v->efer) & CPU_EFER_LME)
		return cpu_raise_gp0(v);
	v->efer = (val & ~CPU_EFER_LMA) | (v->efer & CPU_EFER_LMA);
	cpu_sync_mmu(v);
	return true;
}

/* PAT: each of the 8 entries must be a valid memory type (0,1,4,5,6,7). */
static bool msr_pat_wr(struct vcpu *v, uint64_t val)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned t = (val >> (8 * i)) & 0xff;
		if (t == 2 || t == 3 || t > 7)
			return cpu_raise_gp0(v);
	}
	v->msr.pat = val;
	return true;
}

/* PLATFORM_INFO: max non-turbo ratio (x 100 MHz) = TSC; CPUID faulting off. */
static bool msr_platform_info_rd(struct vcpu *v, uint64_t *val)
{
	uint64_t ratio = v->cpuid.tsc_khz / 100000;
	*val = (ratio & 0xff) << 8;
	return true;
}

/* IA32_BIOS_SIGN_ID (UCODE_REV): Linux writes 0, runs CPUID 1, reads back. */
static bool msr_ucode_wr(struct vcpu *v, uint64_t val)
{
	return true;
}

static const struct cpu_msr_def cpu_msr_table[] = {
    {0x00000010, "TSC", 0, NOSTORE, ALL, 0, msr_tsc_rd, msr_tsc_wr},
    {0x00000017, "PLATFORM_ID", MSR_RO, NOSTORE, 0, 0, NULL, NULL},
    {0x0000001b, "APIC_BASE", 0, NOSTORE, 0x000ffffffffff900ull, 0, msr_apic_base_rd,
     msr_apic_base_wr},
    {0x0000003b, "TSC_ADJUST", 0, NOSTORE, ALL, 0, msr_tsc_adjust_rd, msr_tsc_adjust_wr},
    /* FEAT_CTL locked with VMX/SGX off: Linux clears those features */
    {0x0000003a, "FEAT_CTL", MSR_RO, NOSTORE, 0, 1, NULL, NULL},
    {0x0000008b, "BIOS_SIGN_ID", 0, V(msr.ucode_rev), ALL, 0, NULL, msr_ucode_wr},
    {0x000000ce, "PLATFORM_INFO", MSR_RO, NOSTORE, 0, 0, msr_platform_info_rd, NULL},
    {0x000000fe, "MTRRCAP", MSR_RO, NOSTORE, 0, 0, NULL, NULL},
    /* ARCH_CAPABILITIES: RDCL_NO only (CPUID.7.EDX[29], see cpu_cpuid.c) */
    {0x0000010a, "ARCH_CAPABILITIES", MSR_RO, NOSTORE, 0, 1, NULL, NULL},
    {0x00000174, "SYSENTER_CS", 0, V(msr.sysenter_cs), 0xffff, 0, NULL, NULL},
    {0x00000175, "SYSENTER_ESP", MSR_CANON, V(msr.sysenter_esp), ALL, 0, NULL, NULL},
    {0x00000176, "SYSENTER_EIP", MSR_CANON, V(msr.sysenter_eip), ALL, 0, NULL, NULL},
    /* MISC_ENABLE: FAST_STRING(0), TCC(3), PERF_MON_UNAVAIL(7)... storage;
     * LIMIT_CPUID(22) and XD_DISABLE(34) are honoured by cpu_cpuid() */
    {0x000001a0, "MISC_ENABLE", 0, V(msr.misc_enable), 0x0000000400c51889ull, 0, NULL, NULL},
    {0x000001d9, "DEBUGCTL", MSR_WIGNORE, NOSTORE, 0, 0, NULL, NULL},
    {0x00000277, "PAT", 0, V(msr.pat), ALL, 0, NULL, msr_pat_wr},
    {0x000002ff, "MTRRdefType", 0, V(msr.mtrr_def_type), 0xcffull, 0, NULL, NULL},
    {0x000006e0, "TSC_DEADLINE", 0, NOSTORE, ALL, 0, msr_tsc_deadline_rd, msr_tsc_deadline_wr},
    {0xc0000080, "EFER", 0, V(efer), ALL, 0, NULL, msr_efer_wr},
    {0xc0000081, "STAR", 0, V(msr.star), ALL, 0, NULL, NULL},
    {0xc0000082, "LSTAR", MSR_CANON, V(msr.lstar), ALL, 0, NULL, NULL},
    {0xc0000083, "CSTAR", MSR_CANON, V(msr.cstar), ALL, 0, NULL, NULL},
    {0xc0000084, "SFMASK", 0, V(msr.sfmask), 0xffffffffull, 0, NULL, NULL},
    {0xc0000100, "FS_BASE", MSR_CANON | MSR_IN_ABI, A(fs_base), ALL, 0, NULL, NULL},
    {0xc0000101, "GS_BASE", MSR_CANON | MSR_IN_ABI, A(gs_base), ALL, 0, NULL, NULL},
    {0xc0000102, "KERNEL_GS_BASE", MSR_CANON | MSR_IN_ABI, A(kernel_gs_base), ALL, 0, NULL, NULL},
    {0xc0000103, "TSC_AUX", 0, V(msr.tsc_aux), 0xffffffffull, 0, NULL, NULL},
};

static const struct cpu_msr_def *cpu_msr_find(uint32_t index)
{
	for (size_t i = 0; i < BT_ARRAY_SIZE(cpu_msr_table); i++)
		if (cpu_msr_table[i].index == index)
			return &cpu_msr_table[i];
	return NULL;
}

static uint64_t *cpu_msr_slot(struct vcpu *v, const struct cpu_msr_def *d)
{
	char *base = (d->flags & MSR_IN_ABI) ? (char *)v->abi : (char *)v;
	return (uint64_t *)(base + d->off);
}

bool cpu_rdmsr(struct vcpu *v, uint32_t index, uint64_t *val)
{
	const struct cpu_msr_def *d = cpu_msr_find(index);
	if (!d || v->cpl != 0) {
		if (!d)
			bt_debug(LOG_CPU, "cpu: rdmsr %#x: unknown MSR, #GP", index);
		return cpu_raise_gp0(v);
	}
	if (d->rd)
		return d->rd(v, val);
	*val = d->off == NOSTORE ? d->cval : *cpu_msr_slot(v, d);
	return true;
}

bool cpu_wrmsr(struct vcpu *v, uint32_t index, uint64_t val)
{
	const struct cpu_msr_def *d = cpu_msr_find(index);
	if (!d || v->cpl != 0) {
		if (!d)
			bt_debug(LOG_CPU, "cpu: wrmsr %#x <- %#llx: unknown MSR, #GP", index,
				 (unsigned long long)val);
		return cpu_raise_gp0(v);
	}
	if (d->flags & MSR_RO)
		return cpu_raise_gp0(v);
	if ((d->flags & MSR_CANON) && !cpu_is_canonical(val))
		return cpu_raise_gp0(v);
	if (d->flags & MSR_WIGNORE)
		return val == 0 ? true : cpu_raise_gp0(v);
	if (val & ~d->wmask)
		return cpu_raise_gp0(v);
	if (d->wr)
		return d->wr(v, val);
	*cpu_msr_slot(v, d) = val;
	return true;
}
