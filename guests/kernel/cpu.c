/*
 * CPU feature setup: EFER.NXE when CPUID offers NX, CR0.WP/MP/NE with EM and
 * TS clear, CR4.OSFXSR/OSXMMEXCPT for SSE in user code, CR4.PGE, and
 * SMEP/SMAP/FSGSBASE when CPUID leaf 7 offers them; TSC_AUX when rdtscp or
 * rdpid exists.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/vm.h"

bool cpu_has_smap, cpu_has_smep, cpu_has_nx, cpu_has_fsgsbase;

void cpu_init_features(void)
{
	uint32_t a, b, c, d, maxleaf, maxext;
	bool rdtscp = false, rdpid = false;

	cpuid(0, 0, &maxleaf, &b, &c, &d);
	cpuid(0x80000000, 0, &maxext, &b, &c, &d);
	if (maxext >= 0x80000001) {
		cpuid(0x80000001, 0, &a, &b, &c, &d);
		cpu_has_nx = (d >> 20) & 1;
		rdtscp = (d >> 27) & 1;
	}
	if (maxleaf >= 7) {
		cpuid(7, 0, &a, &b, &c, &d);
		cpu_has_smep = (b >> 7) & 1;
		cpu_has_smap = (b >> 20) & 1;
		cpu_has_fsgsbase = b & 1;
		rdpid = (c >> 22) & 1;
	}
	if (cpu_has_nx) {
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
		pte_nx = PTE_NX;
	}

	uint64_t cr0 = read_cr0();
	cr0 |= CR0_WP | CR0_MP | CR0_NE | CR0_AM; /* AM: user code may ask for #AC, as on Linux */
	cr0 &= ~(CR0_EM | CR0_TS);
	write_cr0(cr0);

	uint64_t cr4 = read_cr4();
	cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_PGE;
	if (cpu_has_smep)
		cr4 |= CR4_SMEP;
	if (cpu_has_smap)
		cr4 |= CR4_SMAP;
	if (cpu_has_fsgsbase) /* user rd/wr{fs,gs}base; AT_HWCAP2 tells programs */
		cr4 |= CR4_FSGSBASE;
	write_cr4(cr4);
	/* TSC_AUX as Linux writes it, (node << 12) | cpu: rdtscp and rdpid
	 * agree with getcpu */
	if (rdtscp || rdpid)
		wrmsr(MSR_TSC_AUX, (uint64_t)GK_NODE << 12);
	__asm__ volatile("fninit");
}
