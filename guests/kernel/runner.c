/*
 * The test runner thread: parses test= and bench= from the command line,
 * resolves the selection (kernel tests by name, user tests = initrd files
 * tests/<name> in lexical order), prints TAP, runs each test (user tests
 * are spawned from the initrd and waited for; ok iff exit status 0), runs
 * /bin/bench when bench=1, prints SUMMARY and exits via isa-debug-exit.
 * skip=NAME[,NAME...] reports those user tests as "ok N - user/NAME # SKIP"
 * without running them (TAP: a skip is a pass; the numbering stays).
 * A configuration error (unknown name, missing initrd) fails at once.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/ktest.h"
#include "guests/kernel/mm.h"
#include "guests/kernel/sched.h"
#include "guests/lib/cpio.h"

const struct ktest ktests[] = {
    {"smc", ktest_smc},
    {"jumptable", ktest_jumptable},
    {"fnptr", ktest_fnptr},
    {"computed_goto", ktest_computed_goto},
    {"tailcall", ktest_tailcall},
    {"extable", ktest_extable},
    {"demand_fault", ktest_demand_fault},
    {"timer_loop", ktest_timer_loop},
    {"nested_exception", ktest_nested_exception},
    {"divide_error", ktest_divide_error},
    {"int3", ktest_int3},
    {"cpuid", ktest_cpuid},
    {"rdtsc", ktest_rdtsc},
    {"rtc", ktest_rtc},
    {"uart_loopback", ktest_uart_loopback},
    {"sched", ktest_sched},
    {"disk", ktest_disk},
    {"kmod", ktest_kmod},
    {"wp", ktest_wp},
    {"nx", ktest_nx},
    {"smep_smap", ktest_smep_smap},
    {"lapic", ktest_lapic},
};
const unsigned nktests = ARRAY_SIZE(ktests);

#define MAX_SEL	 96
#define NAME_MAX 64

struct selection {
	int kind[MAX_SEL]; /* 0 kernel, 1 user */
	char name[MAX_SEL][NAME_MAX];
	unsigned n;
};

static char user_tests[MAX_SEL][NAME_MAX];
static unsigned nuser;
static struct selection sel;

static void collect_user_tests(void)
{
	struct cpio_iter it;
	struct cpio_entry e;
	nuser = 0;
	if (!initrd_present())
		return;
	cpio_iter_init(&it, (const void *)pa_to_va(boot_info.initrd_pa), boot_info.initrd_size);
	while (cpio_iter_next(&it, &e) == BT_OK) {
		const char *n = cpio_path_norm(e.name);
		if (strncmp(n, "tests/", 6) || (e.mode & CPIO_S_IFMT) != CPIO_S_IFREG)
			continue;
		n += 6;
		size_t len = strlen(n);
		bool slash = false;
		for (size_t i = 0; i < len; i++)
			slash |= n[i] == '/';
		if (!len || slash || len >= NAME_MAX || nuser >= MAX_SEL)
			continue;
		/* insertion sort: lexical order */
		unsigned i = nuser++;
		while (i > 0 && strcmp(user_tests[i - 1], n) > 0) {
			memcpy(user_tests[i], user_tests[i - 1], NAME_MAX);
			i--;
		}
		strncpy_z(user_tests[i], n, NAME_MAX);
	}
}

static void add_sel(int kind, const char *name)
{
	if (sel.n < MAX_SEL) {
		sel.kind[sel.n] = kind;
		strncpy_z(sel.name[sel.n], name, NAME_MAX);
		sel.n++;
	}
}

static void print_known(void)
{
	for (unsigned i = 0; i < nktests; i++)
		printk("%s%s", i ? "," : "", ktests[i].name);
	for (unsigned i = 0; i < nuser; i++)
		printk(",%s", user_tests[i]);
}

static void fail_config(void) __attribute__((noreturn));
static void fail_config(void)
{
	printk("SUMMARY: 0 passed, 1 failed\n");
	debug_exit(1);
}

static void no_initrd(void) __attribute__((noreturn));
static void no_initrd(void)
{
	printk("[kernel] error: no initrd: cannot run user tests\n");
	fail_config();
}

/* Parse value of key in the command line into out; false when absent. */
static bool cmdline_get(const char *key, char *out, size_t outlen)
{
	const char *s = boot_info.cmdline;
	size_t kl = strlen(key);
	while (*s) {
		while (*s == ' ')
			s++;
		const char *tok = s;
		while (*s && *s != ' ')
			s++;
		if ((size_t)(s - tok) > kl && !strncmp(tok, key, kl) && tok[kl] == '=') {
			size_t vl = MIN((size_t)(s - tok) - kl - 1, outlen - 1);
			memcpy(out, tok + kl + 1, vl);
			out[vl] = 0;
			return true;
		}
	}
	return false;
}

static void select_tests(const char *spec)
{
	if (!strcmp(spec, "all") || !strcmp(spec, "kernel")) {
		for (unsigned i = 0; i < nktests; i++)
			add_sel(0, ktests[i].name);
		if (!strcmp(spec, "kernel"))
			return;
		if (!initrd_present())
			no_initrd();
		for (unsigned i = 0; i < nuser; i++)
			add_sel(1, user_tests[i]);
		return;
	}
	if (!strcmp(spec, "none"))
		return;
	const char *s = spec;
	while (*s) {
		char name[NAME_MAX];
		size_t n = 0;
		while (*s && *s != ',') {
			if (n + 1 < sizeof(name))
				name[n++] = *s;
			s++;
		}
		name[n] = 0;
		if (*s == ',')
			s++;
		if (!n)
			continue;
		bool found = false;
		for (unsigned i = 0; i < nktests && !found; i++)
			if (!strcmp(ktests[i].name, name)) {
				add_sel(0, name);
				found = true;
			}
		for (unsigned i = 0; i < nuser && !found; i++)
			if (!strcmp(user_tests[i], name)) {
				add_sel(1, name);
				found = true;
			}
		if (!found) {
			printk("[kernel] error: unknown test '%s' (known: ", name);
			print_known();
			printk(")\n");
			if (!initrd_present()) /* it may name a user test */
				no_initrd();
			fail_config();
		}
	}
}

static char skip_list[256];

/* Is name one of the comma-separated skip= names? */
static bool skipped(const char *name)
{
	size_t nl = strlen(name);
	for (const char *s = skip_list; *s;) {
		const char *e = s;
		while (*e && *e != ',')
			e++;
		if ((size_t)(e - s) == nl && !strncmp(s, name, nl))
			return true;
		s = *e ? e + 1 : e;
	}
	return false;
}

static uint64_t test_timeout_s = 20;

/*
 * Spawn an initrd program and wait for it; returns its wait status or
 * -errno.  After test_timeout_s seconds every user process is killed.
 */
static int run_program(const char *path, const char *argv0)
{
	const char *argv[] = {argv0, NULL};
	int pid = proc_spawn(path, argv, current_task());
	if (pid < 0) {
		printk("# cannot start %s: %s (%d)\n", path,
		       pid == -ENOEXEC	? "not a valid static x86-64 ELF executable"
		       : pid == -ENOENT ? "not found in the initrd"
					: "out of resources",
		       pid);
		return pid;
	}
	int status = 0;
	int r = proc_wait(pid, &status, current_task(), jiffies + test_timeout_s * HZ);
	if (r == -ETIMEDOUT) {
		printk("# %s: timed out after %lu s, killing it\n", path,
		       (unsigned long)test_timeout_s);
		proc_kill_all_user(9);
		r = proc_wait(pid, &status, current_task(), 0);
		if (r >= 0)
			r = -ETIMEDOUT;
	}
	return r < 0 ? r : status;
}

/*
 * crash=KIND: deliberately break the kernel to exercise the fatal paths
 * (each must print "[kernel] PANIC: ..." and exit with 1, never hang or
 * triple fault): stack (kernel stack overflow -> guard page -> #DF on IST),
 * null (kernel NULL dereference -> #PF), ud2 (#UD in the kernel).
 * userspin is the one that hangs on purpose: tests/15-spin_kill run as
 * "spin" loops in page faults and system calls forever and is waited for
 * without a watchdog, so only the host can end the machine (btvm's
 * --timeout, SIGINT/SIGTERM; tests/integration/btvm-user.sh).  idle hangs
 * the other way: the kernel masks every IRQ at the PIC and waits for
 * interrupts (sti; hlt) forever, as an idle Linux whose one-shot timer was
 * lost did (btvm then sleeps in its idle poll, which used to swallow the
 * stop signals).
 */
static volatile uint64_t recurse_limit = ~0ul;
static volatile uint64_t crash_addr = 8;

__attribute__((noinline)) static uint64_t recurse(uint64_t n)
{
	volatile uint8_t pad[256];
	pad[n & 255] = (uint8_t)n;
	if (n >= recurse_limit)
		return pad[0];
	return recurse(n + 1) + pad[(n + 1) & 255];
}

static void crash(const char *kind)
{
	printk("# crash=%s requested\n", kind);
	if (!strcmp(kind, "stack"))
		recurse(0);
	else if (!strcmp(kind, "null"))
		(void)*(volatile uint64_t *)crash_addr;
	else if (!strcmp(kind, "ud2"))
		__asm__ volatile("ud2");
	else if (!strcmp(kind, "userspin")) {
		const char *argv[] = {"spin", NULL};
		int status = 0;
		int pid = proc_spawn("tests/15-spin_kill", argv, current_task());
		if (pid < 0)
			panic("crash=userspin: cannot start tests/15-spin_kill: %d", pid);
		proc_wait(pid, &status, current_task(), 0);
		panic("crash=userspin: the spinning program ended (status 0x%x)", status);
	} else if (!strcmp(kind, "pvpanic")) {
		/* what Linux's pvpanic driver does from its panic notifier */
		if (!(inb(0x505) & 1))
			panic("crash=pvpanic: no pvpanic device at port 0x505");
		outb(0x505, 1);
		for (;;)
			safe_halt();
	} else if (!strcmp(kind, "idle")) {
		/* every IRQ masked at the PIC: nothing ever wakes the CPU */
		outb(0x21, 0xff);
		outb(0xa1, 0xff);
		for (;;)
			safe_halt();
	} else
		panic("crash=%s: unknown kind (stack, null, ud2, userspin, idle, pvpanic)", kind);
	panic("crash=%s did not crash", kind);
}

/*
 * The benchmark's disk figure: user programs cannot reach the disk (guest
 * contract), so the kernel times ATA PIO reads itself: 256 sectors
 * (128 KiB) from the start of the primary disk.
 */
static int bench_disk_read(void)
{
	static uint8_t buf[512];
	const unsigned n = 256;
	uint64_t t0 = monotonic_ns();
	for (unsigned i = 0; i < n; i++) {
		int r = ata_read(i, buf);
		if (r != 0) {
			printk("# disk_read: reading sector %u failed: %d\n", i, r);
			return -1;
		}
	}
	uint64_t dt = monotonic_ns() - t0;
	if (dt == 0)
		dt = 1;
	uint64_t kib_s = (uint64_t)n * 512 * 1000000000ull / 1024 / dt;
	printk("RESULT disk_read %lu KiB/s\n", (unsigned long)kib_s);
	return 0;
}

void runner_main(void *arg)
{
	char spec[256] = "all", bench[16] = "0";
	unsigned passed = 0, failed = 0;

	cmdline_get("test", spec, sizeof(spec));
	cmdline_get("bench", bench, sizeof(bench));
	cmdline_get("skip", skip_list, sizeof(skip_list));
	char tmo[16];
	if (cmdline_get("test_timeout", tmo, sizeof(tmo))) {
		uint64_t v = 0;
		for (const char *p = tmo; *p >= '0' && *p <= '9'; p++)
			v = v * 10 + (uint64_t)(*p - '0');
		if (v)
			test_timeout_s = v;
	}
	char crash_kind[16];
	if (cmdline_get("crash", crash_kind, sizeof(crash_kind)))
		crash(crash_kind);
	size_t nfiles = 0;
	if (initrd_present() && cpio_validate((const void *)pa_to_va(boot_info.initrd_pa),
					      boot_info.initrd_size, &nfiles) != BT_OK) {
		printk("[kernel] error: the initrd (%lu bytes) is not a valid newc cpio archive\n",
		       (unsigned long)boot_info.initrd_size);
		fail_config();
	}
	collect_user_tests();
	select_tests(spec);
	bool run_bench = !strcmp(bench, "1");
	if (run_bench && !initrd_present())
		no_initrd();

	printk("TAP version 13\n1..%u\n", sel.n);
	uint64_t free_before_user = 0;
	bool user_started = false;
	for (unsigned i = 0; i < sel.n; i++) {
		bool ok;
		if (sel.kind[i] == 0) {
			int r = 1;
			for (unsigned k = 0; k < nktests; k++)
				if (!strcmp(ktests[k].name, sel.name[i]))
					r = ktests[k].fn();
			ok = r == 0;
			printk("%s %u - kernel/%s\n", ok ? "ok" : "not ok", i + 1, sel.name[i]);
		} else if (skipped(sel.name[i])) {
			ok = true;
			printk("ok %u - user/%s # SKIP\n", i + 1, sel.name[i]);
		} else {
			if (!user_started) {
				free_before_user = pmm_free_pages();
				user_started = true;
			}
			char path[NAME_MAX + 8] = "tests/";
			strncpy_z(path + 6, sel.name[i], NAME_MAX);
			int st = run_program(path, path);
			ok = st == 0;
			if (st > 0) /* st < 0: run_program said why */
				printk("# %s: wait status 0x%x\n", path, st);
			printk("%s %u - user/%s\n", ok ? "ok" : "not ok", i + 1, sel.name[i]);
		}
		if (ok)
			passed++;
		else
			failed++;
	}
	if (run_bench) {
		int st = run_program("bin/bench", "/bin/bench");
		if (st != 0) {
			printk("# /bin/bench failed: wait status 0x%x (negative: error)\n", st);
			failed++;
		}
		if (bench_disk_read() != 0)
			failed++;
	}
	if (user_started)
		printk("# mm: %lu pages free before the user tests, %lu after\n",
		       (unsigned long)free_before_user, (unsigned long)pmm_free_pages());
	printk("SUMMARY: %u passed, %u failed\n", passed, failed);
	debug_exit(failed ? 1 : 0);
}
