/*
 * Unit tests of the adaptive user-mode policy (runtime/vm/vm_policy.c):
 * the break-even formula, switching both ways with hysteresis and a
 * minimum dwell, the boundary cost learned from direct stays, timer-cut
 * stays, the fidelity trigger and its expiry, fallbacks, the fixed
 * configurations, per-address-space state and slot recycling.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/vm/vm_policy.h"

static const struct vm_policy_params params = {
    .direct_cost_ns = 40000,
    .translated_cost_ns = 1000,
    .slowdown_x16 = 18, /* s = 1.125 */
    .hysteresis = 2,
    .min_stays = 4,
    .fidelity_stays = 10,
};

#define AS1 0x1000
#define AS2 0x2000

static void stays(struct vm_policy *p, uint64_t cr3, enum vm_umode m, uint64_t ns, int n)
{
	for (int i = 0; i < n; i++)
		vm_policy_stay(p, cr3, m, ns, false);
}

static void test_parse(void **state)
{
	(void)state;
	enum vm_user_cfg c;
	assert_true(vm_user_cfg_parse("adaptive", &c));
	assert_int_equal(c, VM_USER_ADAPTIVE);
	assert_true(vm_user_cfg_parse("direct", &c));
	assert_int_equal(c, VM_USER_DIRECT);
	assert_true(vm_user_cfg_parse("translated", &c));
	assert_int_equal(c, VM_USER_TRANSLATED);
	assert_false(vm_user_cfg_parse("Direct", &c));
	assert_false(vm_user_cfg_parse("", &c));
	assert_false(vm_user_cfg_parse(NULL, &c));
	assert_string_equal(vm_user_cfg_str(VM_USER_TRANSLATED), "translated");
	assert_string_equal(vm_umode_str(VM_UMODE_DIRECT), "direct");
}

static void test_break_even(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	/* (40000 - 1000) / (18/16 - 1) = 39000 * 8 */
	assert_int_equal(vm_policy_break_even_ns(&p), 312000);
	/* a direct stay shorter than the boundary cost lowers it */
	vm_policy_stay(&p, AS1, VM_UMODE_TRANSLATED, 100, false); /* no effect */
	assert_int_equal(p.direct_cost_ns, 40000);
	vm_policy_stay(&p, AS1, VM_UMODE_DIRECT, 5000, false);
	assert_int_equal(p.direct_cost_ns, 5000);
	assert_int_equal(vm_policy_break_even_ns(&p), 4000 * 8);
	/* a kicked stay says nothing about the boundary */
	vm_policy_stay(&p, AS1, VM_UMODE_DIRECT, 10, true);
	assert_int_equal(p.direct_cost_ns, 5000);
}

/* A new address space starts translated; long stays move it to direct
 * only after min_stays, short direct stays move it back. */
static void test_switch_both_ways(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	uint64_t be = vm_policy_break_even_ns(&p);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	/* stays of 10 x break-even translated (native 10/1.125 x): long */
	stays(&p, AS1, VM_UMODE_TRANSLATED, be * 10, 3);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED); /* dwell */
	stays(&p, AS1, VM_UMODE_TRANSLATED, be * 10, 1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.switches[VM_UMODE_DIRECT], 1);
	/* direct stays of exactly the boundary cost: native 0, short */
	stays(&p, AS1, VM_UMODE_DIRECT, 40000, 3);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	stays(&p, AS1, VM_UMODE_DIRECT, 40000, 1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	assert_int_equal(p.st.switches[VM_UMODE_TRANSLATED], 1);
	assert_int_equal(p.st.stays[VM_UMODE_DIRECT], 4);
	assert_int_equal(p.st.stays[VM_UMODE_TRANSLATED], 4);
}

/* Between L* / h and L* * h nothing moves (hysteresis), either way. */
static void test_hysteresis(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	uint64_t be = vm_policy_break_even_ns(&p);
	/* translated stays of native 1.5 L*: not above 2 L* */
	stays(&p, AS1, VM_UMODE_TRANSLATED, be * 3 / 2 * 18 / 16, 50);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	/* then native 3 L*: moves */
	stays(&p, AS1, VM_UMODE_TRANSLATED, be * 3 * 18 / 16, 50);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	/* direct stays of native 0.75 L*: not below L* / 2 */
	stays(&p, AS1, VM_UMODE_DIRECT, 40000 + be * 3 / 4, 50);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	stays(&p, AS1, VM_UMODE_DIRECT, 40000 + be / 4, 50);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
}

/* A stay cut by the host timer counts as long, whatever its length. */
static void test_kicked_is_long(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	for (int i = 0; i < 8; i++)
		vm_policy_stay(&p, AS1, VM_UMODE_TRANSLATED, 1, true);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
}

/* The fidelity trigger forces translated for fidelity_stays stays, then
 * the averages decide again; it does nothing with --user=direct. */
static void test_fidelity(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	uint64_t be = vm_policy_break_even_ns(&p);
	stays(&p, AS1, VM_UMODE_TRANSLATED, be * 10, 8);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	vm_policy_need_translated(&p, AS1);
	assert_int_equal(p.st.fidelity_triggers, 1);
	for (unsigned i = 0; i < params.fidelity_stays; i++) {
		assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
		vm_policy_stay(&p, AS1, VM_UMODE_TRANSLATED, be * 10, false);
	}
	/* expired: long stays move it to direct again */
	stays(&p, AS1, VM_UMODE_TRANSLATED, be * 10, 1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);

	vm_policy_init(&p, VM_USER_DIRECT, &params);
	vm_policy_need_translated(&p, AS1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.fidelity_triggers, 0);
}

/* Fixed configurations, fallbacks, and what a fallback stay teaches. */
static void test_fixed_and_fallback(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_TRANSLATED, &params);
	stays(&p, AS1, VM_UMODE_TRANSLATED, 1000000000, 100);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	assert_int_equal(vm_policy_mode(&p, AS1, true), VM_UMODE_DIRECT);
	assert_int_equal(p.st.fallbacks, 1);
	vm_policy_init(&p, VM_USER_DIRECT, &params);
	stays(&p, AS1, VM_UMODE_DIRECT, 1, 100);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.fallbacks, 0);
	/* adaptive: a fallback stay (direct while the space is translated)
	 * does not count toward the translated average */
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	assert_int_equal(vm_policy_mode(&p, AS1, true), VM_UMODE_DIRECT);
	stays(&p, AS1, VM_UMODE_DIRECT, 1000000000, 100);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
}

/* State is per address space; slots are recycled least recently used. */
static void test_per_space(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	uint64_t be = vm_policy_break_even_ns(&p);
	stays(&p, AS1, VM_UMODE_TRANSLATED, be * 10, 8);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(vm_policy_mode(&p, AS2, false), VM_UMODE_TRANSLATED);
	/* fill every other slot: AS1, used least recently, is recycled */
	for (uint64_t i = 0; i < VM_POLICY_SLOTS; i++)
		(void)vm_policy_mode(&p, 0x100000 + i * 0x1000, false);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_break_even),
	    cmocka_unit_test(test_switch_both_ways),
	    cmocka_unit_test(test_hysteresis),
	    cmocka_unit_test(test_kicked_is_long),
	    cmocka_unit_test(test_fidelity),
	    cmocka_unit_test(test_fixed_and_fallback),
	    cmocka_unit_test(test_per_space),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
