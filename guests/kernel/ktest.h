/*
 * Kernel-mode self-tests.  Each returns 0 on success and prints its
 * diagnostics as "# " lines; the runner prints the TAP line.
 */
#ifndef GK_KTEST_H
#define GK_KTEST_H

struct ktest {
	const char *name;
	int (*fn)(void);
};

extern const struct ktest ktests[];
extern const unsigned nktests;

int ktest_smc(void);
int ktest_jumptable(void);
int ktest_fnptr(void);
int ktest_computed_goto(void);
int ktest_tailcall(void);
int ktest_extable(void);
int ktest_demand_fault(void);
int ktest_timer_loop(void);
int ktest_nested_exception(void);
int ktest_divide_error(void);
int ktest_int3(void);
int ktest_cpuid(void);
int ktest_rdtsc(void);
int ktest_rtc(void);
int ktest_uart_loopback(void);
int ktest_sched(void);
int ktest_disk(void);
int ktest_kmod(void);
int ktest_wp(void);
int ktest_nx(void);
int ktest_smep_smap(void);
int ktest_lapic(void);

#define KT_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printk("# check failed: %s: ", #cond);                                     \
			printk(__VA_ARGS__);                                                       \
			printk("\n");                                                              \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

#endif
