/*
 * runtime/cpu with the REAL device platform (runtime/dev platform_create:
 * iobus, 8259 pair, UART, debug-exit), wired to struct cpu_platform the way
 * runtime/vm wires it (port I/O through the platform's iobus, interrupts
 * through its PIC): emulated in/out program the PIC the way Linux does, a
 * device interrupt is acknowledged through the PIC and delivered through
 * the guest IDT, EOI clears it.
 */
#include "tests/unit/test_cpu_env.h"

#include "runtime/bus/iobus.h"
#include "runtime/dev/pic.h"
#include "runtime/dev/platform.h"

struct pf_env {
	struct cpu_env *e;
	struct platform *p;
};

/* The callbacks runtime/vm gives the vCPU (vm.c plat_*), on the platform. */
static enum bt_status pf_pio_in(void *o, uint16_t port, unsigned size, uint32_t *val)
{
	return iobus_pio_in(((struct platform *)o)->bus, port, size, val);
}

static enum bt_status pf_pio_out(void *o, uint16_t port, unsigned size, uint32_t val)
{
	return iobus_pio_out(((struct platform *)o)->bus, port, size, val);
}

static bool pf_intr_pending(void *o)
{
	return pic_has_interrupt(((struct platform *)o)->pic);
}

static uint8_t pf_intr_ack(void *o)
{
	return pic_ack(((struct platform *)o)->pic);
}

static int setup(void **state)
{
	struct pf_env *pe = calloc(1, sizeof(*pe));
	assert_non_null(pe);
	pe->e = env_create();
	struct platform_config cfg;
	platform_config_init(&cfg);
	cfg.console_in_fd = -1;
	cfg.console_out_fd = -1;
	assert_int_equal(platform_create(&cfg, &pe->p), BT_OK);
	pe->e->v.plat = (struct cpu_platform){
	    .opaque = pe->p,
	    .pio_in = pf_pio_in,
	    .pio_out = pf_pio_out,
	    .intr_pending = pf_intr_pending,
	    .intr_ack = pf_intr_ack,
	};
	*state = pe;
	return 0;
}

static int teardown(void **state)
{
	struct pf_env *pe = *state;
	env_destroy(pe->e);
	platform_destroy(pe->p);
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
	    cmocka_unit_test_setup_teardown(test_debug_exit, setup, teardown),
	};
	return cmocka_run_group_tests_name("cpu_devices", tests, NULL, NULL);
}
