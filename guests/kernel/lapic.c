/*
 * Local APIC self-test (ktest "lapic"): the register page at 0xfee00000
 * as a kernel drives it, on any PC whose CPUID advertises an APIC (QEMU's
 * and btvm's both do).  Prints only what both machines answer alike: the
 * version register, and whether each step worked; the timer counts are
 * chosen so that QEMU (a 1 GHz APIC bus) and btvm (1 MHz) both finish in
 * well under a second.  The guest keeps taking its ticks from the 8259
 * through LINT0 (virtual-wire mode): the test enables the APIC, never
 * touches LINT0, and masks its timer again at the end.
 *
 * Steps: a self-IPI held in IRR while IF=0 and taken after sti; TPR
 * holding back a vector of its class until lowered; a one-shot timer
 * interrupt (its count falling, then 0); at least three periodic
 * interrupts; with CPUID.1:ECX[24], a TSC-deadline interrupt and the MSR
 * reading 0 after it (silent when it works, as QEMU's -cpu max under TCG
 * does not advertise it: btvm always does (test_cpu_state) and always
 * calibrates its TSC ("# tsc: N kHz" in the expect file), so under btvm
 * this step always runs, and a failure prints "not ok").
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/ktest.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/trap.h"
#include "guests/kernel/vm.h"

#define LAPIC_PA 0xfee00000ul
#define LAPIC_VA (POKE_VA - 0x1000) /* a free page beside the poke alias */
#define PTE_PCD	 (1ul << 4)

#define R_VER	0x30
#define R_TPR	0x80
#define R_EOI	0xb0
#define R_SVR	0xf0
#define R_IRR	0x200
#define R_ICR	0x300
#define R_LVTT	0x320
#define R_TMICT 0x380
#define R_TMCCT 0x390
#define R_TDCR	0x3e0

#define MSR_TSC_DEADLINE 0x6e0

static volatile unsigned long hits[2];

static uint32_t rd(unsigned reg)
{
	return *(volatile uint32_t *)(LAPIC_VA + reg);
}

static void wr(unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC_VA + reg) = v;
}

void lapic_vector(unsigned vec)
{
	hits[vec - LAPIC_VEC_IPI]++;
	wr(R_EOI, 0);
}

static bool irr(unsigned vec)
{
	return (rd(R_IRR + (vec / 32) * 16) >> (vec % 32)) & 1;
}

/* Let interrupts in for a moment (they are taken between instructions). */
static void open_window(void)
{
	sti();
	for (int i = 0; i < 1000; i++)
		cpu_relax();
	cli();
}

/* Wait with IF=1 until hits[i] reaches n or ticks pass. */
static bool wait_hits(unsigned i, unsigned long n, unsigned ticks)
{
	for (unsigned t = 0; t < ticks && hits[i] < n; t++)
		sleep_ticks(1);
	return hits[i] >= n;
}

int ktest_lapic(void)
{
	uint32_t a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	KT_CHECK(d & (1u << 9), "CPUID.1:EDX has no APIC");
	KT_CHECK(vm_map_kernel(LAPIC_VA, LAPIC_PA, PTE_W | PTE_PCD | pte_nx) == 0,
		 "cannot map the APIC page");
	uint32_t ver = rd(R_VER);
	printk("# lapic: version 0x%x\n", ver);
	KT_CHECK((ver & 0xff) >= 0x10 && ((ver >> 16) & 0xff) >= 3, "version 0x%x", ver);
	uint64_t f = irq_save();
	cli();
	wr(R_SVR, 0x1ff); /* software enable, spurious 0xff */
	wr(R_TPR, 0);

	/* self-IPI (fixed, shorthand self): IRR while IF=0, taken after sti */
	unsigned long h0 = hits[0];
	wr(R_ICR, (1u << 18) | LAPIC_VEC_IPI);
	KT_CHECK(irr(LAPIC_VEC_IPI), "self-IPI not in IRR");
	KT_CHECK(hits[0] == h0, "self-IPI taken with IF=0");
	open_window();
	KT_CHECK(hits[0] == h0 + 1, "self-IPI: %lu interrupts", hits[0] - h0);
	KT_CHECK(!irr(LAPIC_VEC_IPI), "self-IPI still in IRR");

	/* TPR = the vector's class holds it back */
	wr(R_TPR, LAPIC_VEC_IPI & 0xf0);
	wr(R_ICR, (1u << 18) | LAPIC_VEC_IPI);
	open_window();
	KT_CHECK(hits[0] == h0 + 1 && irr(LAPIC_VEC_IPI), "TPR did not hold the vector back");
	wr(R_TPR, 0);
	open_window();
	KT_CHECK(hits[0] == h0 + 2, "vector not taken after TPR lowered");

	/* one-shot: divide by 1, 40,000 counts (QEMU 40 us, btvm 40 ms) */
	unsigned long h1 = hits[1];
	wr(R_TDCR, 0xb);
	wr(R_LVTT, LAPIC_VEC_TIMER);
	wr(R_TMICT, 40000);
	uint32_t c1 = rd(R_TMCCT);
	KT_CHECK(c1 <= 40000, "current count %u above the initial one", c1);
	irq_restore(f | RFLAGS_IF);
	bool fired = wait_hits(1, h1 + 1, 2000);
	KT_CHECK(fired, "one-shot timer did not fire");
	sleep_ticks(5);
	KT_CHECK(hits[1] == h1 + 1, "one-shot timer fired %lu times", hits[1] - h1);
	KT_CHECK(rd(R_TMCCT) == 0, "count %u after the one-shot", rd(R_TMCCT));

	/* periodic: three interrupts */
	wr(R_LVTT, (1u << 17) | LAPIC_VEC_TIMER);
	wr(R_TMICT, 40000);
	fired = wait_hits(1, h1 + 4, 5000);
	wr(R_LVTT, (1u << 16) | LAPIC_VEC_TIMER); /* masked */
	wr(R_TMICT, 0);
	KT_CHECK(fired, "periodic timer: %lu interrupts", hits[1] - h1 - 1);

	/* TSC-deadline mode, where advertised: 1 ms ahead */
	if ((c & (1u << 24)) && tsc_hz) {
		unsigned long h2 = hits[1];
		wr(R_LVTT, (2u << 17) | LAPIC_VEC_TIMER);
		__asm__ volatile("mfence" ::: "memory");
		wrmsr(MSR_TSC_DEADLINE, rdtsc() + tsc_hz / 1000);
		fired = wait_hits(1, h2 + 1, 2000);
		uint64_t left = rdmsr(MSR_TSC_DEADLINE);
		wr(R_LVTT, (1u << 16) | LAPIC_VEC_TIMER);
		KT_CHECK(fired, "TSC-deadline timer did not fire");
		KT_CHECK(left == 0, "TSC_DEADLINE reads 0x%lx after firing", (unsigned long)left);
	}
	irq_restore(f);
	vm_unmap_kernel(LAPIC_VA);
	printk("# lapic: self-IPI, TPR, one-shot and periodic timer ok\n");
	return 0;
}
