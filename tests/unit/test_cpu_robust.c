/*
 * runtime/cpu robustness: guest state and guest memory are untrusted.
 * Deterministic pseudo-random privileged instructions (opcode templates of
 * every emulated class with random ModRM/SIB/displacement bytes) run on
 * random register values and on a guest that scribbles over its own GDT,
 * IDT and TSS.  Every step must end in a defined outcome with the vCPU
 * invariants intact: never a crash, never a non-canonical RIP, CPL 0 or 3.
 */
#include "tests/unit/test_cpu_env.h"

#include "pretrans/base/log.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Opcode templates: the bytes before the random tail. */
static const struct {
	uint8_t len;
	uint8_t b[4];
} templates[] = {
    {2, {0x0f, 0x01}}, /* lgdt/lidt/sgdt/sidt/smsw/lmsw/invlpg/swapgs/... */
    {2, {0x0f, 0x00}}, /* sldt/str/lldt/ltr/verr/verw */
    {2, {0x0f, 0x20}},
    {2, {0x0f, 0x22}},
    {2, {0x0f, 0x21}},
    {2, {0x0f, 0x23}},
    {1, {0x8e}},
    {1, {0x8c}},
    {2, {0x0f, 0x02}},
    {2, {0x0f, 0x03}},
    {2, {0x48, 0xcf}},
    {1, {0xcf}},
    {2, {0x48, 0xcb}},
    {2, {0x48, 0xca}},
    {2, {0x48, 0xff}},
    {1, {0xff}},
    {3, {0x48, 0x0f, 0x07}},
    {1, {0xe4}},
    {1, {0xe7}},
    {1, {0xec}},
    {1, {0xef}},
    {2, {0xf3, 0x6c}},
    {2, {0xf3, 0x6f}},
    {3, {0x66, 0xf3, 0x6d}},
    {2, {0x0f, 0x32}},
    {2, {0x0f, 0x30}},
    {2, {0x0f, 0xa2}},
    {2, {0x0f, 0x31}},
    {1, {0xcd}},
    {1, {0xcc}},
    {2, {0x0f, 0x0b}},
    {1, {0xf4}},
    {1, {0xfb}},
    {1, {0xfa}},
    {1, {0x9c}},
    {1, {0x9d}},
    {3, {0x48, 0x0f, 0xae}},
    {2, {0x0f, 0xae}},
    {3, {0x48, 0x0f, 0xb2}},
    {2, {0x0f, 0xa1}},
    {2, {0x0f, 0xa9}},
};

static uint64_t random_value(void)
{
	switch (rnd() % 6) {
	case 0:
		return rnd();
	case 1:
		return rnd() % ENV_RAM; /* somewhere in RAM */
	case 2:
		return 0x8000 + (rnd() % 0x1000);
	case 3:
		return rnd() & 0xffff; /* selectors, ports */
	case 4:
		return 0xffff800000000000ull | (rnd() & 0xffffffffffull);
	default:
		return rnd() % 0x80;
	}
}

static void scribble(struct cpu_env *e)
{
	/* damage a random byte of the GDT, IDT, TSS or page tables */
	static const uint64_t areas[][2] = {
	    {ENV_GDT, 0x50}, {ENV_IDT, 0x1000}, {ENV_TSS, 0x68}, {ENV_PD, 0x40}};
	unsigned a = rnd() % 4;
	e->ram[areas[a][0] + rnd() % areas[a][1]] = (uint8_t)rnd();
}

static void test_random_privileged_instructions(void **state)
{
	(void)state;
	struct cpu_env *e = env_create();
	unsigned steps = 0, stops = 0, unsupported = 0, recreated = 0;
	for (unsigned iter = 0; iter < 40000; iter++) {
		struct vcpu *v = &e->v;
		uint8_t code[16];
		unsigned t = (unsigned)(rnd() % BT_ARRAY_SIZE(templates));
		memcpy(code, templates[t].b, templates[t].len);
		for (unsigned i = templates[t].len; i < sizeof(code); i++)
			code[i] = (uint8_t)rnd();
		memcpy(e->ram + ENV_CODE, code, sizeof(code));
		for (unsigned r = 0; r < VCPU_NGPR; r++)
			e->abi->gpr[r] = random_value();
		if (rnd() % 4)
			e->abi->gpr[VCPU_RSP] = ENV_RSP - (rnd() % 0x100);
		e->abi->rip = ENV_CODE;
		if (rnd() % 16 == 0)
			scribble(e);
		e->irq_pending = rnd() % 8 == 0;
		e->irq_vector = (uint8_t)rnd();

		enum cpu_outcome out = CPU_OUT_CONTINUE;
		enum bt_status s = cpu_step_priv(v, &out);
		steps++;
		assert_true(s == BT_OK || s == BT_ERR_UNSUPPORTED);
		if (s == BT_ERR_UNSUPPORTED)
			unsupported++;
		if (s == BT_OK && out != CPU_OUT_STOP) {
			assert_true(v->cpl == 0 || v->cpl == 3);
			assert_true((uint64_t)((int64_t)(e->abi->rip << 16) >> 16) == e->abi->rip);
			assert_int_equal(out == CPU_OUT_USER, v->cpl == 3);
			assert_int_equal(e->mmu.cpl, v->cpl);
			assert_true(v->efer & CPU_EFER_LMA);
			assert_true(v->cr0 & CPU_CR0_PG);
			assert_true(v->cr4 & CPU_CR4_PAE);
			assert_int_equal(cpu_check_interrupts(v, &out), BT_OK);
		}
		if (out == CPU_OUT_STOP || v->stop || v->cpl != 0 || rnd() % 64 == 0) {
			if (v->stop)
				stops++;
			env_destroy(e);
			e = env_create();
			recreated++;
		}
	}
	env_destroy(e);
	/* the run covered the interesting outcomes */
	assert_int_equal(steps, 40000);
	assert_true(recreated > 100);
	fprintf(stderr, "robust: %u steps, %u stops, %u unsupported, %u fresh vCPUs\n", steps,
		stops, unsupported, recreated);
}

int main(void)
{
	/* triple faults and unsupported instructions log errors: keep the test
	 * output short */
	FILE *sink = tmpfile();
	if (!sink)
		return 1;
	bt_log_to(sink);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_privileged_instructions),
	};
	int rc = cmocka_run_group_tests_name("cpu_robust", tests, NULL, NULL);
	bt_log_to(NULL);
	fclose(sink);
	return rc;
}
