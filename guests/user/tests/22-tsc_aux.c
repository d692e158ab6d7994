/*
 * tsc_aux: RDTSCP (and RDPID where CPUID offers it) return IA32_TSC_AUX,
 * which the kernel sets to (node << 12) | cpu as Linux does: it matches
 * getcpu(2).  Direct execution on a host shows the host's CPU number.
 * Without RDPID in CPUID only rdtscp is checked (the #UD of rdpid would
 * print a kill line that depends on the CPU model; test_cpu_user checks
 * it).
 */
#include "guests/user/tests/sens.h"

int main(void)
{
	unsigned cpu = 99, node = 99;
	UT_CHECK(sens_syscall3(SYS_getcpu, (long)&cpu, (long)&node, 0) == 0);
	uint32_t want = (node << 12) | cpu, r[4];
	sens_cpuid(0x80000001u, r);
	if (r[3] & (1u << 27)) {
		uint32_t aux, lo, hi;
		__asm__ volatile("rdtscp" : "=c"(aux), "=a"(lo), "=d"(hi));
		UT_CHECKF(aux == want, "rdtscp TSC_AUX %#x, getcpu says %#x", aux, want);
	}
	sens_cpuid(7, r);
	if (r[2] & (1u << 22)) {
		uint64_t v;
		__asm__ volatile("rdpid %0" : "=r"(v));
		UT_CHECKF(v == want, "rdpid %#lx, getcpu says %#x", (unsigned long)v, want);
	}
	return UT_DONE();
}
