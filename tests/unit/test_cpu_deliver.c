/*
 * runtime/cpu: exception and interrupt delivery through a guest IDT in real
 * memfd RAM (stack frames checked byte by byte), nesting (#DF, triple
 * fault), iretq back, interrupt acceptance and the sti shadow.
 */
#include "tests/unit/test_cpu_env.h"

/* The frame at the vCPU's RSP after a delivery. */
static void expect_frame(struct cpu_env *e, uint64_t frame_at, bool has_err, uint64_t err,
			 uint64_t rip, uint64_t cs, uint64_t rflags, uint64_t rsp, uint64_t ss)
{
	assert_int_equal(e->abi->gpr[VCPU_RSP], frame_at);
	uint64_t a = frame_at;
	if (has_err) {
		assert_int_equal(env_r64(e, a), err);
		a += 8;
	}
	assert_int_equal(env_r64(e, a), rip);
	assert_int_equal(env_r64(e, a + 8), cs);
	assert_int_equal(env_r64(e, a + 16), rflags);
	assert_int_equal(env_r64(e, a + 24), rsp);
	assert_int_equal(env_r64(e, a + 32), ss);
}

static void test_cpl0_no_error_code(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	e->abi->gpr[VCPU_RSP] = ENV_RSP + 8; /* unaligned: aligned down to 16 */
	cpu_set_rflags(v, CPU_RFLAGS_IF | CPU_RFLAGS_TF | CPU_RFLAGS_CF | CPU_RFLAGS_AC);
	uint64_t fl = cpu_rflags(v);
	assert_int_equal(cpu_deliver(v, CPU_EXC_UD, CPU_EV_FAULT, false, 0), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_UD));
	expect_frame(e, ENV_RSP - 40, false, 0, ENV_CODE, ENV_KCS, fl, ENV_RSP + 8, ENV_KDS);
	/* raw bytes of the first slot, little endian */
	assert_int_equal(e->ram[ENV_RSP - 40], ENV_CODE & 0xff);
	assert_int_equal(e->ram[ENV_RSP - 40 + 2], (ENV_CODE >> 16) & 0xff);
	assert_int_equal(e->ram[ENV_RSP - 40 + 8], ENV_KCS);
	/* interrupt gate: IF and TF cleared, AC and CF kept */
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_CF | CPU_RFLAGS_AC);
	assert_int_equal(v->cpl, 0);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_KCS);
	assert_int_equal(v->seg[CPU_SS].sel, ENV_KDS); /* no CPL change: SS kept */
	assert_int_equal(v->stats.delivered[CPU_EXC_UD], 1);
}

static void test_cpl0_error_code(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	uint64_t fl = cpu_rflags(v);
	assert_int_equal(cpu_deliver(v, CPU_EXC_GP, CPU_EV_FAULT, true, 0x1234), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
	expect_frame(e, ENV_RSP - 48, true, 0x1234, ENV_CODE, ENV_KCS, fl, ENV_RSP, ENV_KDS);
}

static void test_error_code_by_architecture(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* a #GP without the caller's error code still pushes one (0) */
	assert_int_equal(cpu_deliver(v, CPU_EXC_GP, CPU_EV_FAULT, false, 0x55), BT_OK);
	assert_int_equal(e->abi->gpr[VCPU_RSP], ENV_RSP - 48);
	assert_int_equal(env_r64(e, ENV_RSP - 48), 0);
	assert_int_equal(env_r64(e, ENV_RSP - 40), ENV_CODE);
	/* #UD never pushes one, whatever the caller says */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	e->abi->rip = ENV_CODE;
	assert_int_equal(cpu_deliver(v, CPU_EXC_UD, CPU_EV_FAULT, true, 7), BT_OK);
	assert_int_equal(e->abi->gpr[VCPU_RSP], ENV_RSP - 40);
	/* `int $13` is a software interrupt: no error code either */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	e->abi->rip = ENV_CODE;
	assert_int_equal(cpu_deliver(v, CPU_EXC_GP, CPU_EV_SOFTWARE, true, 7), BT_OK);
	assert_int_equal(e->abi->gpr[VCPU_RSP], ENV_RSP - 40);
	assert_int_equal(env_r64(e, ENV_RSP - 40), ENV_CODE);
}

static void test_page_fault_sets_cr2(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	assert_int_equal(cpu_deliver_pf(v, 0xdead000, 6), BT_OK);
	assert_int_equal(v->cr2, 0xdead000);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_PF));
	assert_int_equal(env_r64(e, e->abi->gpr[VCPU_RSP]), 6);
}

static void enter_user(struct cpu_env *e, uint64_t rip, uint64_t rsp)
{
	struct vcpu *v = &e->v;
	cpu_seg_set_flat(&v->seg[CPU_CS], ENV_UCS, true, 3);
	cpu_seg_set_flat(&v->seg[CPU_SS], ENV_UDS, false, 3);
	cpu_seg_set_flat(&v->seg[CPU_DS], ENV_UDS, false, 3);
	cpu_seg_set_flat(&v->seg[CPU_ES], ENV_UDS, false, 3);
	v->cpl = 3;
	cpu_sync_mmu(v);
	e->abi->rip = rip;
	e->abi->gpr[VCPU_RSP] = rsp;
	cpu_set_rflags(v, CPU_RFLAGS_IF);
}

static void test_cpl3_to_cpl0_and_iretq_back(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	enter_user(e, 0x401000, 0x7777);
	uint64_t fl = cpu_rflags(v);
	assert_int_equal(cpu_deliver(v, 0x20, CPU_EV_EXTERNAL, false, 0), BT_OK);
	assert_int_equal(v->cpl, 0);
	assert_int_equal(e->abi->rip, ENV_HANDLER(0x20));
	/* stack from TSS.rsp0, user SS:RSP saved */
	expect_frame(e, ENV_RSP0 - 40, false, 0, 0x401000, ENV_UCS, fl, 0x7777, ENV_UDS);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_KCS);
	assert_int_equal(v->seg[CPU_SS].sel, 0); /* null SS, RPL = new CPL */
	assert_true(v->seg[CPU_SS].ar & CPU_AR_UNUSABLE);
	assert_false(cpu_if(v));
	assert_int_equal(e->mmu.cpl, 0);

	/* iretq back to user */
	enum cpu_outcome out = ENV_RUN(e, 0x48, 0xcf);
	assert_int_equal(out, CPU_OUT_USER);
	assert_int_equal(v->cpl, 3);
	assert_int_equal(e->mmu.cpl, 3);
	assert_int_equal(e->abi->rip, 0x401000);
	assert_int_equal(e->abi->gpr[VCPU_RSP], 0x7777);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_UCS);
	assert_int_equal(v->seg[CPU_SS].sel, ENV_UDS);
	assert_true(cpu_if(v));
	assert_int_equal(v->seg[CPU_DS].sel, ENV_UDS); /* DPL 3: kept */
}

static void test_iretq_same_level(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	cpu_set_rflags(v, CPU_RFLAGS_IF);
	assert_int_equal(cpu_deliver(v, 0x21, CPU_EV_EXTERNAL, false, 0), BT_OK);
	enum cpu_outcome out = ENV_RUN(e, 0x48, 0xcf);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_CODE);
	assert_int_equal(e->abi->gpr[VCPU_RSP], ENV_RSP);
	assert_true(cpu_if(v));
	assert_int_equal(v->cpl, 0);
}

static void test_ist_stack(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* vector 2 (NMI) through IST1, from CPL0: the stack switches anyway */
	env_set_gate(e, 2, ENV_HANDLER(2), ENV_KCS, 0xe, 0, 1, true);
	uint64_t fl = cpu_rflags(v);
	assert_int_equal(cpu_deliver(v, 2, CPU_EV_EXTERNAL, false, 0), BT_OK);
	expect_frame(e, ENV_IST1 - 40, false, 0, ENV_CODE, ENV_KCS, fl, ENV_RSP, ENV_KDS);
	assert_true(v->nmi_blocked);
	/* and #DF (IST2) with its error code 0 */
	assert_int_equal(cpu_deliver(v, CPU_EXC_DF, CPU_EV_FAULT, true, 0), BT_OK);
	assert_int_equal(e->abi->gpr[VCPU_RSP], ENV_IST2 - 48);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_DF));
}

static void test_trap_gate_keeps_if(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	env_set_gate(e, 0x30, ENV_HANDLER(0x30), ENV_KCS, 0xf, 0, 0, true);
	cpu_set_rflags(v, CPU_RFLAGS_IF);
	assert_int_equal(cpu_deliver(v, 0x30, CPU_EV_EXTERNAL, false, 0), BT_OK);
	assert_true(cpu_if(v));
}

static void test_software_int_dpl(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	enter_user(e, 0x401000, 0x7777);
	/* int 0x81 from CPL3 hits a DPL0 gate: #GP(0x81*8+2), no EXT */
	assert_int_equal(cpu_deliver(v, 0x81, CPU_EV_SOFTWARE, false, 0), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
	assert_int_equal(env_r64(e, e->abi->gpr[VCPU_RSP]), 0x81 * 8 + 2);
	/* int 0x80 has a DPL3 gate: delivered */
	enter_user(e, 0x401000, 0x7777);
	assert_int_equal(cpu_deliver(v, 0x80, CPU_EV_SOFTWARE, false, 0), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(0x80));
	/* an external interrupt ignores the gate DPL */
	enter_user(e, 0x401000, 0x7777);
	assert_int_equal(cpu_deliver(v, 0x81, CPU_EV_EXTERNAL, false, 0), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(0x81));
}

static void test_not_present_gate_benign(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	env_set_gate(e, 0x20, ENV_HANDLER(0x20), ENV_KCS, 0xe, 0, 0, false);
	assert_int_equal(cpu_deliver(v, 0x20, CPU_EV_EXTERNAL, false, 0), BT_OK);
	/* #NP(idt index | IDT bit | EXT) */
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_NP));
	assert_int_equal(env_r64(e, e->abi->gpr[VCPU_RSP]), 0x20 * 8 + 2 + 1);
	assert_int_equal(v->stats.double_faults, 0);
}

static void test_double_fault_on_not_present_gate(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	env_set_gate(e, CPU_EXC_GP, ENV_HANDLER(13), ENV_KCS, 0xe, 0, 0, false);
	uint64_t fl = cpu_rflags(v);
	/* #GP -> #NP while delivering (contributory twice) -> #DF on IST2 */
	assert_int_equal(cpu_deliver(v, CPU_EXC_GP, CPU_EV_FAULT, true, 0), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_DF));
	expect_frame(e, ENV_IST2 - 48, true, 0, ENV_CODE, ENV_KCS, fl, ENV_RSP, ENV_KDS);
	assert_int_equal(v->stats.double_faults, 1);
	assert_int_equal(v->stop, CPU_STOP_NONE);
}

static void test_double_fault_on_stack_page_fault(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* the kernel stack is not mapped: #UD -> #PF (delivered), whose own
	 * push faults again -> #DF through IST2 */
	e->abi->gpr[VCPU_RSP] = 0x40001000; /* beyond the 1 GiB identity map */
	assert_int_equal(cpu_deliver(v, CPU_EXC_UD, CPU_EV_FAULT, false, 0), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_DF));
	/* CR2 of the second #PF: the push of the 48-byte #PF frame */
	assert_int_equal(v->cr2, 0x40001000 - 48);
	assert_int_equal(v->stats.double_faults, 1);
	assert_int_equal(e->abi->gpr[VCPU_RSP], ENV_IST2 - 48);
}

static void test_triple_fault(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	env_set_gate(e, CPU_EXC_GP, ENV_HANDLER(13), ENV_KCS, 0xe, 0, 0, false);
	env_set_gate(e, CPU_EXC_DF, ENV_HANDLER(8), ENV_KCS, 0xe, 0, 2, false);
	uint64_t rip = e->abi->rip, rsp = e->abi->gpr[VCPU_RSP];
	assert_int_equal(cpu_deliver(v, CPU_EXC_GP, CPU_EV_FAULT, true, 0), BT_ERR_GUEST);
	assert_int_equal(v->stop, CPU_STOP_TRIPLE_FAULT);
	/* no half-delivered state */
	assert_int_equal(e->abi->rip, rip);
	assert_int_equal(e->abi->gpr[VCPU_RSP], rsp);
	/* a stopped vCPU stays stopped */
	enum cpu_outcome out;
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_STOP);
	/* an empty IDT (limit 0) also triple-faults: the boot-time case */
	struct cpu_env *e2 = env_create();
	e2->v.idtr.limit = 7;
	assert_int_equal(cpu_deliver(&e2->v, CPU_EXC_PF, CPU_EV_FAULT, true, 0), BT_ERR_GUEST);
	assert_int_equal(e2->v.stop, CPU_STOP_TRIPLE_FAULT);
	env_destroy(e2);
}

static void test_idt_limit(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	v->idtr.limit = 16 * 0x40 - 1;
	assert_int_equal(cpu_deliver(v, 0x40, CPU_EV_EXTERNAL, false, 0), BT_OK);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
	assert_int_equal(env_r64(e, e->abi->gpr[VCPU_RSP]), 0x40 * 8 + 2 + 1);
}

static void test_interrupt_acceptance(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	enum cpu_outcome out;
	e->irq_pending = true;
	e->irq_vector = 0x20;
	/* IF = 0: not taken, but the request byte is set */
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(e->irq_acks, 0);
	assert_int_equal(e->abi->irq, VCPU_IRQ_REQ);
	/* IF = 1: acknowledged and delivered */
	cpu_set_rflags(v, CPU_RFLAGS_IF);
	assert_int_equal(e->abi->irq, VCPU_IRQ_REQ | VCPU_IRQ_IF);
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(e->irq_acks, 1);
	assert_int_equal(e->abi->rip, ENV_HANDLER(0x20));
	assert_int_equal(env_r64(e, e->abi->gpr[VCPU_RSP]), ENV_CODE);
	assert_int_equal(e->abi->irq, 0); /* IF cleared, nothing pending */
	assert_int_equal(v->stats.irqs, 1);
}

static void test_sti_shadow_and_hlt(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	enum cpu_outcome out;
	e->irq_pending = true;
	e->irq_vector = 0x21;
	/* sti; hlt at ENV_CODE */
	e->ram[ENV_CODE] = 0xfb;
	e->ram[ENV_CODE + 1] = 0xf4;
	assert_int_equal(cpu_step_priv(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_true(cpu_if(v));
	assert_int_equal(e->abi->rip, ENV_CODE + 1);
	/* inside the shadow: no delivery, request byte clear so translated
	 * code does not exit at once */
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(e->irq_acks, 0);
	assert_int_equal(e->abi->irq & VCPU_IRQ_REQ, 0);
	/* hlt runs, then the interrupt wakes it with RIP after the hlt */
	assert_int_equal(cpu_step_priv(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_HALT);
	assert_true(v->halted);
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(e->irq_acks, 1);
	assert_false(v->halted);
	assert_int_equal(env_r64(e, e->abi->gpr[VCPU_RSP]), ENV_CODE + 2);
}

static void test_halt_wait_and_if0_stop(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	enum cpu_outcome out;
	cpu_set_rflags(v, CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0xf4), CPU_OUT_HALT);
	/* nothing pending: still halted */
	assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_HALT);
	/* cli; hlt: halted for good */
	cpu_set_rflags(v, 0);
	v->halted = false;
	assert_int_equal(ENV_RUN(e, 0xf4), CPU_OUT_STOP);
	assert_int_equal(v->stop, CPU_STOP_HALT_IF0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cpl0_no_error_code, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_cpl0_error_code, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_error_code_by_architecture, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_page_fault_sets_cr2, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_cpl3_to_cpl0_and_iretq_back, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_iretq_same_level, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_ist_stack, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_trap_gate_keeps_if, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_software_int_dpl, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_not_present_gate_benign, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_double_fault_on_not_present_gate, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_double_fault_on_stack_page_fault, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_triple_fault, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_idt_limit, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_interrupt_acceptance, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_sti_shadow_and_hlt, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_halt_wait_and_if0_stop, env_setup, env_teardown),
	};
	return cmocka_run_group_tests_name("cpu_deliver", tests, NULL, NULL);
}
