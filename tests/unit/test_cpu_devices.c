/*
 * runtime/cpu with the REAL device platform (runtime/dev platform_create:
 * iobus, 8259 pair, local APIC, IOAPIC, UART, debug-exit), wired to struct
 * cpu_platform the way runtime/vm wires it (port I/O through the
 * platform's iobus, interrupts through platform_intr_pending/ack, the
 * APIC's MSRs through apic_msr): emulated in/out program the PIC the way
 * Linux does, a device interrupt is acknowledged through the PIC (LINT0
 * in virtual-wire mode) and delivered through the guest IDT, EOI clears
 * it; the LAPIC timer in TSC-deadline mode armed by an emulated wrmsr
 * delivers its vector; a globally disabled APIC lets the 8259 through.
 */
#include "tests/unit/test_cpu_env.h"

#include "runtime/bus/iobus.h"
#include "runtime/dev/lapic.h"
#include "runtime/dev/pic.h"
#include "runtime/dev/platform.h"

struct pf_env {
	struct cpu_env *e;
	struct platform *p;
	struct vclock *clock; /* manual */
};

/* The callbacks runtime/vm gives the vCPU (vm.c plat_*), on the platform. */
static enum bt_status pf_pio_in(void *o, uint16_t port, unsigned size, uint32_t *val)
{
	return iobus_pio_in(((struct pf_env *)o)->p->bus, port, size, val);
}

static enum bt_status pf_pio_out(void *o, uint16_t port, unsigned size, uint32_t val)
{
	return iobus_pio_out(((struct pf_env *)o)->p->bus, port, size, val);
}

static bool pf_intr_pending(void *o)
{
	return platform_intr_pending(((struct pf_env *)o)->p);
}

static uint8_t pf_intr_ack(void *o)
{
	return platform_intr_ack(((struct pf_env *)o)->p);
}

static uint64_t pf_read_tsc(void *o)
{
	return ((struct pf_env *)o)->e->tsc;
}

static bool pf_apic_msr(void *o, uint32_t index, bool write, uint64_t tsc, uint64_t *val)
{
	struct lapic *a = ((struct pf_env *)o)->p->lapic;
	if (index == 0x1b) {
		if (write)
			return lapic_set_base_msr(a, *val);
		*val = lapic_base_msr(a);
		return true;
	}
	if (write)
		lapic_set_tsc_deadline(a, *val, tsc);
	else
		*val = lapic_tsc_deadline(a);
	return true;
}

static void pf_apic_cr8(void *o, bool write, uint64_t *val)
{
	struct lapic *a = ((struct pf_env *)o)->p->lapic;
	if (write)
		lapic_write(a, LAPIC_TPR, (uint32_t)*val << 4);
	else
		*val = lapic_read(a, LAPIC_TPR) >> 4;
}

static int setup(void **state)
{
	struct pf_env *pe = calloc(1, sizeof(*pe));
	assert_non_null(pe);
	pe->e = env_create();
	assert_int_equal(vclock_create_manual(0, &pe->clock), BT_OK);
	struct platform_config cfg;
	platform_config_init(&cfg);
	cfg.console_in_fd = -1;
	cfg.console_out_fd = -1;
	cfg.clock = pe->clock;
	cfg.tsc_khz = pe->e->v.cpuid.tsc_khz;
	assert_int_equal(platform_create(&cfg, &pe->p), BT_OK);
	pe->e->v.plat = (struct cpu_platform){
	    .opaque = pe,
	    .pio_in = pf_pio_in,
	    .pio_out = pf_pio_out,
	    .intr_pending = pf_intr_pending,
	    .intr_ack = pf_intr_ack,
	    .read_tsc = pf_read_tsc,
	    .apic_msr = pf_apic_msr,
	    .apic_cr8 = pf_apic_cr8,
	};
	*state = pe;
	return 0;
}

static int teardown(void **state)
{
	struct pf_env *pe = *state;
	env_destroy(pe->e);
	platform_destroy(pe->p);
	vclock_destroy(pe->clock);
	free(pe);
	return 0;
}

/* out %al,$port with al = val */
static void out8(struct cpu_env *e, uint8_t port, uint8_t val)
{
	e->abi->gpr[VCPU_RAX] = val;
	uint8_t b[2] = {0xe6, port};
	assert_int_equal(env_run(e, b, 2), CPU_OUT_CONTINUE);
}

/* in $port,%al */
static uint8_t in8(struct cpu_env *e, uint8_t port)
{
	uint8_t b[2] = {0xe4, port};
	assert_int_equal(env_run(e, b, 2), CPU_OUT_CONTINUE);
	return (uint8_t)e->abi->gpr[VCPU_RAX];
}

static void test_uart_scratch_and_unclaimed(void **state)
{
	struct pf_env *pe = *state;
	struct cpu_env *e = pe->e;
	/* 16550 scratch register at 0x3ff through in/out %dx */
	e->abi->gpr[VCPU_RDX] = 0x3ff;
	e->abi->gpr[VCPU_RAX] = 0x5a;
	assert_int_equal(ENV_RUN(e, 0xee), CPU_OUT_CONTINUE); /* out %al,%dx */
	e->abi->gpr[VCPU_RAX] = 0;
	assert_int_equal(ENV_RUN(e, 0xec), CPU_OUT_CONTINUE); /* in %dx,%al */
	assert_int_equal(e->abi->gpr[VCPU_RAX], 0x5a);
	/* an unclaimed port reads all-ones */
	e->abi->gpr[VCPU_RDX] = 0x2e8;
	assert_int_equal(ENV_RUN(e, 0x66, 0xed), CPU_OUT_CONTINUE); /* in %dx,%ax */
	assert_int_equal(e->abi->gpr[VCPU_RAX], 0xffff);
}

static void test_pic_interrupt_delivery(void **state)
{
	struct pf_env *pe = *state;
	struct cpu_env *e = pe->e;
	struct vcpu *v = &e->v;
	/* Linux's init_8259A: ICW1-4 on both chips, vectors 0x20/0x28 */
	out8(e, 0x21, 0xff);
	out8(e, 0xa1, 0xff);
	out8(e, 0x20, 0x11);
	out8(e, 0x21, 0x20);
	out8(e, 0x21, 0x04);
	out8(e, 0x21, 0x01);
	out8(e, 0xa0, 0x11);
	out8(e, 0xa1, 0x28);
	out8(e, 0xa1, 0x02);
	out8(e, 0xa1, 0x01);
	out8(e, 0x21, 0xef); /* unmask IRQ4 only */
	assert_int_equal(in8(e, 0x21), 0xef);

	/* the device raises IRQ4: pending, but IF = 0 */
	pic_set_irq(pe->p->pic, 4, true);
	enum cpu_outcome out;
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_CODE + 2); /* after the last in */
	assert_int_equal(e->abi->irq, VCPU_IRQ_REQ);

	/* sti (emulated) opens a shadow; once RIP has moved on, the
	 * interrupt is acknowledged and delivered as vector 0x24 */
	assert_int_equal(ENV_RUN(e, 0xfb), CPU_OUT_CONTINUE);
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(e->abi->rip, ENV_CODE + 1); /* still in the shadow */
	e->abi->rip = ENV_CODE + 5;		     /* the next block ran */
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(0x24));
	assert_int_equal(env_r64(e, e->abi->gpr[VCPU_RSP]), ENV_CODE + 5);
	assert_int_equal(pic_isr(pe->p->pic, 0), 1u << 4);
	assert_false(cpu_if(v));

	/* the handler's EOI */
	out8(e, 0x20, 0x20);
	assert_int_equal(pic_isr(pe->p->pic, 0), 0);
	assert_false(pic_has_interrupt(pe->p->pic));
	assert_int_equal(e->abi->irq & VCPU_IRQ_REQ, 0);
}

/* wrmsr with ecx, edx:eax */
static void wrmsr(struct cpu_env *e, uint32_t msr, uint64_t val)
{
	e->abi->gpr[VCPU_RCX] = msr;
	e->abi->gpr[VCPU_RAX] = (uint32_t)val;
	e->abi->gpr[VCPU_RDX] = val >> 32;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x30), CPU_OUT_CONTINUE);
}

static uint64_t rdmsr(struct cpu_env *e, uint32_t msr)
{
	e->abi->gpr[VCPU_RCX] = msr;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x32), CPU_OUT_CONTINUE);
	return (uint32_t)e->abi->gpr[VCPU_RAX] | e->abi->gpr[VCPU_RDX] << 32;
}

static void test_lapic_deadline_delivery(void **state)
{
	struct pf_env *pe = *state;
	struct cpu_env *e = pe->e;
	struct vcpu *v = &e->v;
	struct lapic *a = pe->p->lapic;
	assert_int_equal(rdmsr(e, 0x1b), 0xfee00900u);
	/* as Linux sets it up (the MMIO writes, straight to the model here) */
	lapic_write(a, LAPIC_SVR, 0x1ff);
	lapic_write(a, LAPIC_LVT_LINT0, LAPIC_LVT_MASKED | 0x700);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_DEADLINE | 0xec);
	/* 2.4 GHz: 2,400,000 cycles ahead is 1 ms of virtual time */
	e->tsc = 1000000;
	wrmsr(e, 0x6e0, 3400000);
	assert_int_equal(rdmsr(e, 0x6e0), 3400000);
	assert_int_equal(vclock_next_deadline(pe->clock), 1000000);
	e->abi->irq |= 1; /* IF = 1 */
	enum cpu_outcome out;
	assert_int_equal(vclock_run_until(pe->clock, 999999), BT_OK);
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(e->abi->rip, ENV_CODE + 2); /* nothing yet */
	assert_int_equal(vclock_run_until(pe->clock, 1000000), BT_OK);
	assert_true(platform_intr_pending(pe->p));
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(0xec));
	assert_int_equal(rdmsr(e, 0x6e0), 0); /* fired */
	lapic_write(a, LAPIC_EOI, 0);
	assert_false(platform_intr_pending(pe->p));
	/* x2APIC enable and a relocation #GP */
	e->abi->rip = ENV_CODE;
	e->abi->gpr[VCPU_RCX] = 0x1b;
	e->abi->gpr[VCPU_RAX] = 0xfee00d00u;
	e->abi->gpr[VCPU_RDX] = 0;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x30), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
	e->abi->rip = ENV_CODE;
	e->abi->gpr[VCPU_RAX] = 0xfed00900u;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x30), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
	/* globally disabled: LINT0 was masked, yet the 8259's INTR reaches
	 * the CPU (unprogrammed 8259: the request is pending all the same) */
	pic_set_irq(pe->p->pic, 3, true);
	assert_false(platform_intr_pending(pe->p));
	e->abi->rip = ENV_CODE;
	wrmsr(e, 0x1b, 0xfee00100u);
	assert_int_equal(rdmsr(e, 0x1b), 0xfee00100u);
	assert_true(platform_intr_pending(pe->p));
}

/* CR8 is the TPR's priority class, both ways, and it gates delivery. */
static void test_cr8_is_tpr(void **state)
{
	struct pf_env *pe = *state;
	struct cpu_env *e = pe->e;
	struct lapic *a = pe->p->lapic;
	lapic_write(a, LAPIC_SVR, 0x1ff);
	lapic_write(a, LAPIC_LVT_LINT0, LAPIC_LVT_MASKED | 0x700);
	e->abi->gpr[VCPU_RAX] = 4;
	assert_int_equal(ENV_RUN(e, 0x44, 0x0f, 0x22, 0xc0), CPU_OUT_CONTINUE); /* mov %rax,%cr8 */
	assert_int_equal(lapic_read(a, LAPIC_TPR), 0x40);
	lapic_write(a, LAPIC_ICR_LO, (1u << 18) | 0x45); /* self-IPI, class 4 */
	assert_false(platform_intr_pending(pe->p));
	lapic_write(a, LAPIC_TPR, 0x30);
	assert_int_equal(ENV_RUN(e, 0x44, 0x0f, 0x20, 0xc0), CPU_OUT_CONTINUE); /* mov %cr8,%rax */
	assert_int_equal(e->abi->gpr[VCPU_RAX], 3);
	assert_true(platform_intr_pending(pe->p));
	/* bits above 3: #GP, the TPR unchanged */
	e->abi->gpr[VCPU_RAX] = 0x10;
	assert_int_equal(ENV_RUN(e, 0x44, 0x0f, 0x22, 0xc0), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
	assert_int_equal(lapic_read(a, LAPIC_TPR), 0x30);
}

static void test_debug_exit(void **state)
{
	struct pf_env *pe = *state;
	struct cpu_env *e = pe->e;
	int status = -1;
	assert_false(platform_exit_requested(pe->p, &status));
	out8(e, 0xf4, 0x10);
	assert_true(platform_exit_requested(pe->p, &status));
	assert_int_equal(status, (0x10 << 1) | 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_uart_scratch_and_unclaimed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pic_interrupt_delivery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lapic_deadline_delivery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cr8_is_tpr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_debug_exit, setup, teardown),
	};
	return cmocka_run_group_tests_name("cpu_devices", tests, NULL, NULL);
}
