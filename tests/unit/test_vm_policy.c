/*
 * Unit tests of the adaptive user-mode policy (runtime/vm/vm_policy.c):
 * trials that pick the cheaper mode both ways as the workload changes,
 * the tie margin, compute phases going direct, the fidelity trigger and
 * its expiry, fallbacks, the fixed configurations, per-address-space
 * state and slot recycling.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/vm/vm_policy.h"

static const struct vm_policy_params params = {
    .exploit_stays = 8,
    .exploit_max = 8,
    .trial_stays = 4,
    .fidelity_stays = 10,
    .sensitive_stays = 3,
};

/* per-stay costs, indexed by mode */
static const uint64_t direct_cheaper[2] = {[VM_UMODE_DIRECT] = 100, [VM_UMODE_TRANSLATED] = 300};
static const uint64_t translated_cheaper[2] = {
    [VM_UMODE_DIRECT] = 900, [VM_UMODE_TRANSLATED] = 100};

#define AS1 0x1000
#define AS2 0x2000

/* n stays of AS cr3 in whatever mode the policy picks, costing
 * cost[mode] each (by_irq: ended by an interrupt). */
static void run(struct vm_policy *p, uint64_t cr3, const uint64_t cost[2], bool by_irq, int n)
{
	for (int i = 0; i < n; i++) {
		enum vm_umode m = vm_policy_mode(p, cr3, false);
		vm_policy_stay(p, cr3, m, cost[m], cost[m], by_irq ? VM_POLICY_BY_IRQ : 0);
	}
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

/* A new space starts translated; after exploit_stays a trial of
 * trial_stays runs direct; the cheaper one wins. */
static void test_trial_picks_cheaper(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	run(&p, AS1, direct_cheaper, false, 7);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	run(&p, AS1, direct_cheaper, false, 1); /* the 8th: the trial starts */
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.trials, 1);
	run(&p, AS1, direct_cheaper, false, 4); /* the trial: direct wins */
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.trials_won, 1);
	/* the next trial (translated) loses: direct stays */
	run(&p, AS1, direct_cheaper, false, 8 + 4);
	assert_int_equal(p.st.trials, 2);
	assert_int_equal(p.st.trials_won, 1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	/* the workload changes: translated becomes cheaper, the next trial
	 * moves it back */
	run(&p, AS1, translated_cheaper, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	assert_int_equal(p.st.trials_won, 2);
	assert_true(p.st.switches[VM_UMODE_DIRECT] >= 2);
}

/* The current mode keeps its place unless the other is > 1/8 cheaper. */
static void test_hysteresis(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	const uint64_t close[2] = {[VM_UMODE_DIRECT] = 90, [VM_UMODE_TRANSLATED] = 100};
	run(&p, AS1, close, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	assert_int_equal(p.st.trials_won, 0);
	const uint64_t apart[2] = {[VM_UMODE_DIRECT] = 80, [VM_UMODE_TRANSLATED] = 100};
	run(&p, AS1, apart, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
}

/* Stays ended by interrupts (a compute phase) go direct even when the
 * per-stay costs say otherwise (the timer bounds both). */
static void test_compute_goes_direct(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	const uint64_t ticks[2] = {[VM_UMODE_DIRECT] = 4000000, [VM_UMODE_TRANSLATED] = 3900000};
	run(&p, AS1, ticks, true, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
}

/* Four translated stays in a row ended by interrupts start a trial at once
 * (a short compute phase), which compute then wins. */
static void test_compute_trial_early(void **state)
{
	(void)state;
	struct vm_policy p;
	const struct vm_policy_params bp = {
	    .exploit_stays = 64, .exploit_max = 64, .trial_stays = 4, .fidelity_stays = 10};
	vm_policy_init(&p, VM_USER_ADAPTIVE, &bp);
	/* the same cost a stay as before (no shift, test_shift): only the
	 * interrupts tell */
	const uint64_t ticks[2] = {[VM_UMODE_DIRECT] = 100, [VM_UMODE_TRANSLATED] = 100};
	run(&p, AS1, translated_cheaper, false, 10);
	run(&p, AS1, ticks, true, 3);
	assert_int_equal(p.st.trials, 0);
	run(&p, AS1, ticks, true, 1);
	assert_int_equal(p.st.trials, 1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	run(&p, AS1, ticks, true, 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
}

/* The fidelity trigger forces translated for fidelity_stays stays without
 * trials, then trials resume; it does nothing with --user=direct. */
static void test_fidelity(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	run(&p, AS1, direct_cheaper, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	vm_policy_need_translated(&p, AS1, 0);
	assert_int_equal(p.st.fidelity_triggers, 1);
	uint64_t trials = p.st.trials;
	for (unsigned i = 0; i < params.fidelity_stays; i++) {
		assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
		run(&p, AS1, direct_cheaper, false, 1);
	}
	assert_int_equal(p.st.trials, trials);
	/* expired: the next trial finds direct cheaper again */
	run(&p, AS1, direct_cheaper, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);

	vm_policy_init(&p, VM_USER_DIRECT, &params);
	vm_policy_need_translated(&p, AS1, 0);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.fidelity_triggers, 0);
}

/* A fetch from a page the scan kept from the host is a short window
 * (sensitive_stays), not the fidelity trigger's long one: a program whose
 * start-up ran cpuid goes back to direct for its compute; and a short
 * window never cuts a long one short. */
static void test_sensitive_window(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	run(&p, AS1, direct_cheaper, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	vm_policy_need_translated(&p, AS1, params.sensitive_stays);
	for (unsigned i = 0; i < params.sensitive_stays; i++) {
		assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
		assert_true(vm_policy_fidelity(&p, AS1));
		run(&p, AS1, direct_cheaper, false, 1);
	}
	assert_false(vm_policy_fidelity(&p, AS1));
	run(&p, AS1, direct_cheaper, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);

	/* a long window, then a short one: the long one runs out */
	vm_policy_need_translated(&p, AS1, 0);
	run(&p, AS1, direct_cheaper, false, 1);
	vm_policy_need_translated(&p, AS1, params.sensitive_stays);
	for (unsigned i = 0; i + 1 < params.fidelity_stays; i++) {
		assert_true(vm_policy_fidelity(&p, AS1));
		run(&p, AS1, direct_cheaper, false, 1);
	}
	assert_false(vm_policy_fidelity(&p, AS1));
}

/* Fixed configurations, fallbacks, and what a fallback stay teaches. */
static void test_fixed_and_fallback(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_TRANSLATED, &params);
	run(&p, AS1, direct_cheaper, false, 100);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	assert_int_equal(vm_policy_mode(&p, AS1, true), VM_UMODE_DIRECT);
	assert_int_equal(p.st.fallbacks, 1);
	assert_int_equal(p.st.trials, 0);
	vm_policy_init(&p, VM_USER_DIRECT, &params);
	run(&p, AS1, direct_cheaper, false, 100);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.stays[VM_UMODE_DIRECT], 100);
	/* adaptive: fallback stays (direct while translated is chosen) do
	 * not count toward any window or phase */
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(vm_policy_mode(&p, AS1, true), VM_UMODE_DIRECT);
		vm_policy_stay(&p, AS1, VM_UMODE_DIRECT, 1, 1, 0);
	}
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	assert_int_equal(p.st.trials, 0);
}

/* trial_min_user_ns: a space whose translated stays run little user code
 * never tries direct mode (the trials are counted as skipped and back
 * off like kept ones); with more user code per stay, or stays cut by
 * interrupts (compute), it does. */
static void test_skip_trials_short_user(void **state)
{
	(void)state;
	struct vm_policy_params pp = params;
	pp.exploit_max = 64;
	pp.trial_min_user_ns = 30000;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &pp);
	/* stays of 100 us, 5 us of them user code: no trial ever */
	for (int i = 0; i < 200; i++) {
		assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
		vm_policy_stay(&p, AS1, VM_UMODE_TRANSLATED, 100000, 5000, 0);
	}
	assert_int_equal(p.st.trials, 0);
	assert_true(p.st.trials_skipped >= 2);
	assert_int_equal(p.st.switches[VM_UMODE_DIRECT], 0);
	/* the same stays cut by the timer: a compute phase tries direct */
	for (int i = 0; i < 200 && p.st.trials == 0; i++) {
		enum vm_umode m = vm_policy_mode(&p, AS1, false);
		vm_policy_stay(&p, AS1, m, 100000, 5000, VM_POLICY_BY_IRQ);
	}
	assert_true(p.st.trials > 0);
	/* another space with 50 us of user code per stay: trials happen */
	uint64_t t0 = p.st.trials;
	for (int i = 0; i < 200; i++) {
		enum vm_umode m = vm_policy_mode(&p, AS2, false);
		vm_policy_stay(&p, AS2, m, 100000, 50000, 0);
	}
	assert_true(p.st.trials > t0);
}

/* The crossing that decides whether a direct trial can pay is measured on
 * the host: until VM_POLICY_XING_STAYS direct stays were seen it is
 * trial_min_user_ns; then it is the least user time of those stays, so on
 * a host whose crossing is 5 us, translated stays running 10 us of user
 * code try direct again. */
static void test_crossing_measured(void **state)
{
	(void)state;
	struct vm_policy_params pp = params;
	pp.exploit_max = 64;
	pp.trial_min_user_ns = 30000;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &pp);
	for (int i = 0; i < 200; i++) /* 10 us of user code: below 30 us */
		vm_policy_stay(&p, AS1, vm_policy_mode(&p, AS1, false), 100000, 10000, 0);
	assert_int_equal(p.st.trials, 0);
	assert_int_equal(p.st.crossing_ns, 0);
	/* direct stays elsewhere (a fallback counts too): the least is 5 us */
	for (int i = 0; i < VM_POLICY_XING_STAYS - 1; i++)
		vm_policy_stay(&p, AS2, VM_UMODE_DIRECT, 200000, 5000 + 1000 * (uint64_t)(i % 7),
			       0);
	assert_int_equal(p.st.crossing_ns, 0); /* one stay short of a window */
	vm_policy_stay(&p, AS2, VM_UMODE_DIRECT, 200000, 9000, 0);
	assert_int_equal(p.st.crossing_ns, 5000);
	for (int i = 0; i < 200 && !p.st.trials; i++)
		vm_policy_stay(&p, AS1, vm_policy_mode(&p, AS1, false), 100000, 10000, 0);
	assert_true(p.st.trials > 0);
	/* --user=translated measures nothing and never tries */
	struct vm_policy q;
	vm_policy_init(&q, VM_USER_TRANSLATED, &pp);
	for (int i = 0; i < 2 * VM_POLICY_XING_STAYS; i++)
		vm_policy_stay(&q, AS2, VM_UMODE_DIRECT, 200000, 5000, 0);
	assert_int_equal(q.st.crossing_ns, 0);
}

/* Trials that keep the mode come less and less often (up to exploit_max);
 * one that changes it brings them back to exploit_stays. */
static void test_backoff(void **state)
{
	(void)state;
	struct vm_policy p;
	const struct vm_policy_params bp = {
	    .exploit_stays = 8, .exploit_max = 32, .trial_stays = 4, .fidelity_stays = 10};
	vm_policy_init(&p, VM_USER_ADAPTIVE, &bp);
	run(&p, AS1, translated_cheaper, false, 8 + 4); /* trial 1 lost: E = 16 */
	assert_int_equal(p.st.trials, 1);
	run(&p, AS1, translated_cheaper, false, 15);
	assert_int_equal(p.st.trials, 1);
	run(&p, AS1, translated_cheaper, false, 1 + 4); /* trial 2 lost: E = 32 */
	assert_int_equal(p.st.trials, 2);
	run(&p, AS1, translated_cheaper, false, 32 + 4); /* trial 3: E stays 32 */
	assert_int_equal(p.st.trials, 3);
	run(&p, AS1, translated_cheaper, false, 31);
	assert_int_equal(p.st.trials, 3);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
	/* the workload turns: the next trial wins and E is 8 again */
	run(&p, AS1, direct_cheaper, false, 1 + 4);
	assert_int_equal(p.st.trials_won, 1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	run(&p, AS1, direct_cheaper, false, 8);
	assert_int_equal(p.st.trials, 5);
}

/* A direct trial's first stays start a stub and fault in its working set:
 * that one-time work (VM_POLICY_WARMUP) is left out of the window, so a
 * trial that would lose on warm-up alone picks direct when its measured
 * stays are cheaper; a trial that does nothing but warm up stops after
 * VM_POLICY_WARMUP_MAX windows' worth and keeps the chosen mode. */
static void test_warmup_left_out(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	/* direct: 10 warm-up stays of 2000, then 100 each; translated 300 */
	int warm_left = 10;
	for (int i = 0; i < 8 + 10 + 4; i++) {
		enum vm_umode m = vm_policy_mode(&p, AS1, false);
		bool warm = m == VM_UMODE_DIRECT && warm_left > 0;
		if (warm)
			warm_left--;
		vm_policy_stay(&p, AS1, m, warm ? 2000 : direct_cheaper[m],
			       warm ? 2000 : direct_cheaper[m], warm ? VM_POLICY_WARMUP : 0);
	}
	assert_int_equal(p.st.trials, 1);
	assert_int_equal(p.st.warmups, 10);
	assert_int_equal(p.st.trials_won, 1);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	/* the same without the flag: the warm-up decides, translated stays */
	struct vm_policy q;
	vm_policy_init(&q, VM_USER_ADAPTIVE, &params);
	warm_left = 10;
	for (int i = 0; i < 8 + 4; i++) {
		enum vm_umode m = vm_policy_mode(&q, AS1, false);
		bool warm = m == VM_UMODE_DIRECT && warm_left > 0;
		if (warm)
			warm_left--;
		vm_policy_stay(&q, AS1, m, warm ? 2000 : direct_cheaper[m],
			       warm ? 2000 : direct_cheaper[m], 0);
	}
	assert_int_equal(q.st.trials, 1);
	assert_int_equal(q.st.trials_won, 0);
	assert_int_equal(vm_policy_mode(&q, AS1, false), VM_UMODE_TRANSLATED);
	/* a trial of nothing but warm-up: ends after 4 windows' worth plus
	 * its own length, measured nothing, keeps translated */
	struct vm_policy r;
	vm_policy_init(&r, VM_USER_ADAPTIVE, &params);
	run(&r, AS2, translated_cheaper, false, 8);
	assert_int_equal(vm_policy_mode(&r, AS2, false), VM_UMODE_DIRECT);
	int n = 0;
	while (vm_policy_mode(&r, AS2, false) == VM_UMODE_DIRECT && n < 1000) {
		vm_policy_stay(&r, AS2, VM_UMODE_DIRECT, 50, 50, VM_POLICY_WARMUP);
		n++;
	}
	assert_int_equal(n, VM_POLICY_WARMUP_MAX * 4 + 4);
	assert_int_equal(r.st.trials_won, 0);
	assert_int_equal(vm_policy_mode(&r, AS2, false), VM_UMODE_TRANSLATED);
	/* warm-up flags on translated stays mean nothing */
	uint64_t w = r.st.warmups;
	vm_policy_stay(&r, AS2, VM_UMODE_TRANSLATED, 100, 100, VM_POLICY_WARMUP);
	assert_int_equal(r.st.warmups, w);
}

/* A long EXPLOIT (E at its maximum) is cut short when the cost a stay
 * moves by more than VM_POLICY_SHIFT either way: a new program on the same
 * CR3 gets its trial at once, and E starts over. */
static void test_shift(void **state)
{
	(void)state;
	struct vm_policy p;
	const struct vm_policy_params bp = {
	    .exploit_stays = 8, .exploit_max = 1024, .trial_stays = 4, .fidelity_stays = 10};
	vm_policy_init(&p, VM_USER_ADAPTIVE, &bp);
	/* translated cheaper for long: trials keep it, E grows */
	run(&p, AS1, translated_cheaper, false, 300);
	uint64_t trials = p.st.trials;
	assert_true(trials >= 4);
	assert_true(p.as[0].exploit >= 64 || p.as[1].exploit >= 64);
	/* small drifts (within 4x) change nothing */
	const uint64_t drift[2] = {[VM_UMODE_DIRECT] = 900, [VM_UMODE_TRANSLATED] = 250};
	run(&p, AS1, drift, false, 16);
	assert_int_equal(p.st.shifts, 0);
	/* another program: translated stays 20x dearer, direct cheap */
	const uint64_t other[2] = {[VM_UMODE_DIRECT] = 300, [VM_UMODE_TRANSLATED] = 2000};
	int n = 0;
	while (vm_policy_mode(&p, AS1, false) == VM_UMODE_TRANSLATED && n < 64) {
		run(&p, AS1, other, false, 1);
		n++;
	}
	assert_true(n <= 8 + 1); /* a window to see it, then the trial */
	assert_int_equal(p.st.shifts, 1);
	run(&p, AS1, other, false, 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(p.st.trials, trials + 1);
}

/* The budget of stays that may start without asking (fast system calls):
 * none for an unknown space (and asking makes no slot), EXPLOIT's stays
 * left minus 2 in translated mode, none in a trial or in direct mode,
 * unlimited with --user=translated, none with --user=direct. */
static void test_budget(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	assert_int_equal(vm_policy_budget(&p, AS1), 0);
	for (unsigned i = 0; i < VM_POLICY_SLOTS; i++)
		assert_int_not_equal(p.as[i].cr3, AS1);
	run(&p, AS1, translated_cheaper, false, 3); /* EXPLOIT: 8 - 3 left */
	assert_int_equal(vm_policy_budget(&p, AS1), 5 - 2);
	run(&p, AS1, translated_cheaper, false, 5); /* the trial of direct */
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(vm_policy_budget(&p, AS1), 0);
	const uint64_t cheap_direct[2] = {[VM_UMODE_DIRECT] = 10, [VM_UMODE_TRANSLATED] = 100};
	run(&p, AS1, cheap_direct, false, 4); /* direct wins: no budget */
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(vm_policy_budget(&p, AS1), 0);
	struct vm_policy q;
	vm_policy_init(&q, VM_USER_TRANSLATED, &params);
	assert_int_equal(vm_policy_budget(&q, AS1), UINT32_MAX);
	vm_policy_init(&q, VM_USER_DIRECT, &params);
	assert_int_equal(vm_policy_budget(&q, AS1), 0);
}

/* State is per address space; slots are recycled least recently used. */
static void test_per_space(void **state)
{
	(void)state;
	struct vm_policy p;
	vm_policy_init(&p, VM_USER_ADAPTIVE, &params);
	run(&p, AS1, direct_cheaper, false, 8 + 4);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_DIRECT);
	assert_int_equal(vm_policy_mode(&p, AS2, false), VM_UMODE_TRANSLATED);
	for (uint64_t i = 0; i < VM_POLICY_SLOTS; i++)
		(void)vm_policy_mode(&p, 0x100000 + i * 0x1000, false);
	assert_int_equal(vm_policy_mode(&p, AS1, false), VM_UMODE_TRANSLATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_trial_picks_cheaper),
	    cmocka_unit_test(test_hysteresis),
	    cmocka_unit_test(test_compute_goes_direct),
	    cmocka_unit_test(test_compute_trial_early),
	    cmocka_unit_test(test_fidelity),
	    cmocka_unit_test(test_sensitive_window),
	    cmocka_unit_test(test_fixed_and_fallback),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_skip_trials_short_user),
	    cmocka_unit_test(test_crossing_measured),
	    cmocka_unit_test(test_warmup_left_out),
	    cmocka_unit_test(test_shift),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_per_space),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
