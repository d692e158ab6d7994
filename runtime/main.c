/*
 * btvm: boot a guest kernel in a pure user-space VMM, running the kernel
 * from a (warm) translation cache.  This file is only the command line;
 * runtime/vm/ is the machine.
 *
 * Exit status (docs/runtime.md has the table): 0 the guest powered off;
 * odd values come from the guest's isa-debug-exit port ((value << 1) | 1,
 * as QEMU); 2 bad usage or input (missing file, bad ELF, a database of
 * another image or translator); 4 the VM stopped abnormally (a guest user
 * stub that died, a runtime error); 6 the guest ran but the database
 * write-back (--learn) failed; 8 the guest reset the machine (or triple
 * faulted); 10 it halted with interrupts off; 12 its kernel panicked
 * (pvpanic); 124 --timeout expired; 130 stopped by SIGINT, SIGTERM or
 * Ctrl-A x.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pretrans/base/log.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/xlat.h"
#include "runtime/dev/conterm.h"
#include "runtime/mem/guestmem.h"
#include "runtime/sandbox/sandbox.h"
#include "runtime/vm/vm.h"
#include "runtime/vm/vm_policy.h"

#define BTVM_VERSION "0.1"
/* The process exit statuses of the header comment (docs/runtime.md). */
/* The longest --timeout: a year, far inside the 64-bit nanosecond clock. */
#define BTVM_TIMEOUT_MAX_S (365 * 24 * 3600)

enum btvm_exit {
	EXIT_POWEROFF = 0,
	EXIT_USAGE = 2,
	EXIT_ABNORMAL = 4,
	EXIT_DB_WRITE = 6,
	EXIT_RESET = 8,
	EXIT_HALTED = 10,
	EXIT_PANIC = VM_EXIT_PANIC,
	EXIT_TIMEOUT = VM_EXIT_TIMEOUT,
	EXIT_SIGNAL = VM_EXIT_SIGNAL,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: btvm run --kernel FILE [options]\n"
		"\n"
		"Boot an x86-64 guest kernel (Linux 64-bit boot protocol) in a user-space VMM.\n"
		"Guest kernel code runs translated, from the --tcdb translation cache when its\n"
		"guest bytes match, translated on the fly otherwise.\n"
		"\n"
		"options:\n"
		"  --kernel FILE      the guest kernel (required): a vmlinux-style ELF, or a\n"
		"                     bzImage (/boot/vmlinuz: its decompressor runs translated;\n"
		"                     --tcdb of its vmlinux serves the kernel it unpacks when\n"
		"                     booted with nokaslr)\n"
		"  --tcdb DB          translation database from `pretrans build` (warm boot); its\n"
		"                     code runs only if signed with your key (made on first use\n"
		"                     in $XDG_CONFIG_HOME/btkern/db.key, default ~/.config/...)\n"
		"  --learn            write blocks translated at run time back into --tcdb\n"
		"                     (kernel blocks and user-code templates; user code runs\n"
		"                     translated then, unless --user says otherwise)\n"
		"  --verify-db        re-translate each database block the guest runs, before its\n"
		"                     first use, and refuse it unless code, exits and pc map are\n"
		"                     identical (`pretrans verify DB IMAGE` checks every row)\n"
		"  --initrd FILE      initial ramdisk\n"
		"  --disk IMG         raw disk image on the primary ATA channel\n"
		"  --virtio-disk IMG[,ro]  raw disk image as a virtio-blk PCI disk (Linux:\n"
		"                     /dev/vda); ,ro opens it read-only\n"
		"  --mem SIZE         guest RAM, e.g. 256M, 1G (default 256M)\n"
		"  --cmdline STR      kernel command line\n"
		"  --user MODE        how guest user code runs: adaptive (default: per address\n"
		"                     space, translated while it crosses into the kernel often,\n"
		"                     directly on the host CPU while it computes), direct, or\n"
		"                     translated (docs/user-mode.md)\n"
		"  --timeout S        stop the guest after S seconds, at most 31536000 (a year);\n"
		"                     exit status 124\n"
		"  --stats[=json]     print statistics on stderr at the end (JSON: one object,\n"
		"                     \"schema\": \"btkern-btvm-stats/1\", docs/cli.md)\n"
		"  --stats-file FILE  write them to FILE instead (created or truncated, as\n"
		"                     perf stat -o); implies --stats\n"
		"  --log SPEC         log subsystems and level, e.g. tc,cpu:debug\n"
		"  --no-fast-syscalls every system call of translated user code through the\n"
		"                     dispatcher (for measuring and debugging the fast path,\n"
		"                     docs/runtime.md \"Fast system calls\")\n"
		"  --no-fast-paths    every soft-MMU and string call-out through its full path\n"
		"                     (FPU saved, page walked): for measuring the call-outs'\n"
		"                     fast paths (docs/mmu.md)\n"
		"  --count-probes     translate with a counter in every inline soft-MMU probe\n"
		"                     (slower code) and print the probes' inline hit rate\n"
		"                     with --stats; blocks translated at run time only: not\n"
		"                     with --tcdb (docs/xlat.md \"The inline probes' hit rate\")\n"
		"  --fault-around N   user code run directly (--user=direct, adaptive's direct\n"
		"                     stays): a page fault the guest grants also maps the\n"
		"                     pages of its aligned N-page window the guest has present,\n"
		"                     user and accessed (writable only if dirty), in the same\n"
		"                     host call (a power of two up to 64, 1: off; default 16;\n"
		"                     docs/user-direct.md \"Fault-around\")\n"
		"  --stub-pool N      user code run directly: stub processes started ahead while\n"
		"                     the vCPU idles (hlt), taken by the next new address space\n"
		"                     (0-8, 0: none; default 2; docs/user-direct.md)\n"
		"  --perf-map         write /tmp/perf-PID.map (perf's JIT symbol file): one line\n"
		"                     per translated block, named btvm:k:VA or btvm:u:VA\n"
		"                     (docs/runtime.md \"Profiling translated code\")\n"
		"  --no-sandbox       do not sandbox btvm (for debugging: strace, gdb, new\n"
		"                     host calls); by default, before the guest runs, btvm\n"
		"                     drops every capability and installs a seccomp allowlist\n"
		"                     (docs/security.md)\n"
		"  --sandbox-selftest enter the sandbox, then make a forbidden call (socket):\n"
		"                     btvm must die by SIGSYS (exit status 159 in a shell)\n"
		"  --version, --help\n"
		"\n"
		"The guest console is stdin/stdout; at a terminal it is raw while the guest\n"
		"runs (keys, Ctrl-C included, go to the guest; Ctrl-A x stops btvm, Ctrl-A\n"
		"Ctrl-A sends Ctrl-A). Logs and statistics go to stderr.\n"
		"exit status: 0 = the guest powered off (ACPI S5, e.g. Linux's poweroff),\n"
		"odd = the guest's exit port ((v << 1) | 1, as QEMU's isa-debug-exit),\n"
		"2 = bad usage or input, 4 = abnormal stop (runtime error, unsupported),\n"
		"6 = writing learned blocks to the database failed, 8 = the guest reset the\n"
		"machine (reboot, 0xcf9, 0x64, 0x92, or a triple fault), 10 = the guest halted\n"
		"with interrupts disabled (can never run again), 12 = the guest kernel\n"
		"panicked (pvpanic), 124 = timeout, 130 = stopped\n"
		"by SIGINT, SIGTERM or Ctrl-A x (learned blocks are still written).\n");
}

/* --stats-file: created if missing, truncated only after checking it is
 * none of the VM's own files (a typo must not wipe the disk image). */
static FILE *open_stats_file(const char *path, const char *inputs[][2], size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	struct stat so, si;
	if (fd < 0 || fstat(fd, &so) != 0) {
		bt_cli_error("--stats-file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (inputs[i][1] && stat(inputs[i][1], &si) == 0 && si.st_dev == so.st_dev &&
		    si.st_ino == so.st_ino) {
			bt_cli_error("--stats-file %s is the %s: give another file", path,
				     inputs[i][0]);
			close(fd);
			return NULL;
		}
	}
	FILE *f = NULL;
	if (!S_ISREG(so.st_mode) || ftruncate(fd, 0) == 0)
		f = fdopen(fd, "w");
	if (!f) {
		bt_cli_error("--stats-file %s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

static int need_file(const char *what, const char *path)
{
	if (access(path, R_OK) != 0) {
		bt_cli_error("%s %s: %s", what, path, strerror(errno));
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	enum {
		O_KERNEL = 256,
		O_TCDB,
		O_LEARN,
		O_VERIFY,
		O_INITRD,
		O_DISK,
		O_VIRTIO_DISK,
		O_MEM,
		O_CMDLINE,
		O_TIMEOUT,
		O_USER,
		O_STATS,
		O_STATS_FILE,
		O_LOG,
		O_NO_SANDBOX,
		O_PERF_MAP,
		O_NO_FAST_SYSCALLS,
		O_NO_FAST_PATHS,
		O_COUNT_PROBES,
		O_FAULT_AROUND,
		O_STUB_POOL,
		O_VERSION,
	};
	static const struct option opts[] = {
	    {"kernel", required_argument, NULL, O_KERNEL},
	    {"tcdb", required_argument, NULL, O_TCDB},
	    {"learn", no_argument, NULL, O_LEARN},
	    {"verify-db", no_argument, NULL, O_VERIFY},
	    {"initrd", required_argument, NULL, O_INITRD},
	    {"disk", required_argument, NULL, O_DISK},
	    {"virtio-disk", required_argument, NULL, O_VIRTIO_DISK},
	    {"mem", required_argument, NULL, O_MEM},
	    {"cmdline", required_argument, NULL, O_CMDLINE},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"user", required_argument, NULL, O_USER},
	    {"stats", optional_argument, NULL, O_STATS},
	    {"stats-file", required_argument, NULL, O_STATS_FILE},
	    {"log", required_argument, NULL, O_LOG},
	    {"no-sandbox", no_argument, NULL, O_NO_SANDBOX},
	    {"perf-map", no_argument, NULL, O_PERF_MAP},
	    {"no-fast-syscalls", no_argument, NULL, O_NO_FAST_SYSCALLS},
	    {"no-fast-paths", no_argument, NULL, O_NO_FAST_PATHS},
	    {"count-probes", no_argument, NULL, O_COUNT_PROBES},
	    {"fault-around", required_argument, NULL, O_FAULT_AROUND},
	    {"stub-pool", required_argument, NULL, O_STUB_POOL},
	    {"version", no_argument, NULL, O_VERSION},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vm_config cfg;
	int stats = 0;		 /* 1 text, 2 json */
	bool user_given = false; /* --user on the command line */
	const char *stats_path = NULL;

	bt_log_progname("btvm");
	vm_config_init(&cfg);
	cfg.console_in_fd = STDIN_FILENO;
	cfg.console_out_fd = STDOUT_FILENO;
	cfg.sandbox = true;
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("btvm %s (translator v%d, vCPU ABI v%d)\n", BTVM_VERSION, XLAT_VERSION,
		       VCPU_ABI_VERSION);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--sandbox-selftest"))
		return sandbox_selftest();
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		return bt_cli_usage("expected a command: `btvm run --kernel ELF ...`");
	}
	optind = 2;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
		switch (c) {
		case O_KERNEL:
			cfg.kernel = optarg;
			break;
		case O_TCDB:
			cfg.tcdb = optarg;
			break;
		case O_LEARN:
			cfg.learn = true;
			break;
		case O_VERIFY:
			cfg.verify_db_blocks = true;
			break;
		case O_INITRD:
			cfg.initrd = optarg;
			break;
		case O_DISK:
			cfg.disk = optarg;
			break;
		case O_VIRTIO_DISK: {
			size_t n = strlen(optarg);
			cfg.virtio_disk = optarg;
			if (n > 3 && !strcmp(optarg + n - 3, ",ro")) {
				optarg[n - 3] = 0; /* IMG,ro */
				cfg.virtio_disk_read_only = true;
			}
			break;
		}
		case O_MEM:
			if (guestmem_parse_size(optarg, &cfg.mem_bytes) != BT_OK) {
				return bt_cli_usage("--mem %s: not a size (use e.g. 256M or 1G)",
						    optarg);
			}
			break;
		case O_CMDLINE:
			cfg.cmdline = optarg;
			break;
		case O_TIMEOUT: {
			char *end;
			cfg.timeout_s = strtod(optarg, &end);
			/* NaN fails both comparisons; the bound keeps the deadline
			 * in range of the nanosecond clock. */
			if (end == optarg || *end ||
			    !(cfg.timeout_s > 0 && cfg.timeout_s <= BTVM_TIMEOUT_MAX_S)) {
				return bt_cli_usage(
				    "--timeout %s: not a number of seconds between 0 and "
				    "%d",
				    optarg, BTVM_TIMEOUT_MAX_S);
			}
			break;
		}
		case O_USER: {
			enum vm_user_cfg u;
			if (!vm_user_cfg_parse(optarg, &u)) {
				return bt_cli_usage("--user %s: use adaptive, direct or translated",
						    optarg);
			}
			cfg.user_mode = (int)u;
			user_given = true;
			break;
		}
		case O_STATS:
			stats = optarg && !strcmp(optarg, "json") ? 2 : 1;
			if (optarg && strcmp(optarg, "json") != 0) {
				return bt_cli_usage("--stats=%s: only --stats or --stats=json",
						    optarg);
			}
			break;
		case O_STATS_FILE:
			stats_path = optarg;
			break;
		case O_LOG:
			if (bt_log_configure(optarg) != 0) {
				return bt_cli_usage(
				    "--log %s: expected e.g. all:info or tc,cpu:debug", optarg);
			}
			break;
		case O_NO_SANDBOX:
			cfg.sandbox = false;
			break;
		case O_PERF_MAP:
			cfg.perf_map = true;
			break;
		case O_NO_FAST_SYSCALLS:
			cfg.no_fast_syscalls = true;
			break;
		case O_NO_FAST_PATHS:
			cfg.no_fast_paths = true;
			break;
		case O_COUNT_PROBES:
			cfg.count_probes = true;
			break;
		case O_FAULT_AROUND: {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (end == optarg || *end || !n || n > VM_FAULT_AROUND_MAX || (n & (n - 1)))
				return bt_cli_usage(
				    "--fault-around %s: a power of two from 1 (off) "
				    "to %d pages",
				    optarg, VM_FAULT_AROUND_MAX);
			cfg.fault_around = (unsigned)n;
			break;
		}
		case O_STUB_POOL: {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (end == optarg || *end || n > VM_STUB_POOL_MAX)
				return bt_cli_usage(
				    "--stub-pool %s: from 0 (none) to %d spare stubs", optarg,
				    VM_STUB_POOL_MAX);
			cfg.stub_pool = (int)n;
			break;
		}
		case O_VERSION:
			printf("btvm %s\n", BTVM_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bt_cli_bad_option(c, argc, argv, optind, optopt);
		}
	}
	if (optind < argc) {
		return bt_cli_usage("unexpected argument `%s` (see --help)", argv[optind]);
	}
	if (!cfg.kernel) {
		return bt_cli_usage("--kernel ELF is required");
	}
	if (cfg.learn && !cfg.tcdb) {
		return bt_cli_usage("--learn needs --tcdb DB to write into");
	}
	if (cfg.count_probes && cfg.tcdb) {
		return bt_cli_usage("--count-probes counts in code translated at run time: "
				    "drop --tcdb %s",
				    cfg.tcdb);
	}
	if (!need_file("kernel", cfg.kernel) || (cfg.initrd && !need_file("initrd", cfg.initrd)) ||
	    (cfg.disk && !need_file("disk image", cfg.disk)) ||
	    (cfg.virtio_disk && !need_file("virtio disk image", cfg.virtio_disk)) ||
	    (cfg.tcdb && !need_file("translation database", cfg.tcdb)))
		return EXIT_USAGE;
	/* Opened now: the sandbox forbids opening files once the guest runs. */
	FILE *stats_out = stderr;
	if (stats_path) {
		const char *inputs[][2] = {{"kernel", cfg.kernel},
					   {"initrd", cfg.initrd},
					   {"disk image", cfg.disk},
					   {"virtio disk image", cfg.virtio_disk},
					   {"translation database", cfg.tcdb}};
		stats_out = open_stats_file(stats_path, inputs, BT_ARRAY_SIZE(inputs));
		if (!stats_out)
			return EXIT_USAGE;
		if (!stats)
			stats = 1;
	}

	/* a console at a terminal is raw while the guest runs, as QEMU's
	 * -nographic: keys reach the guest, Ctrl-A x stops btvm */
	struct conterm term;
	if (!conterm_raw(&term, cfg.console_in_fd))
		bt_cli_error("the console terminal cannot be made raw (%s): typed keys are "
			     "echoed and sent a line at a time",
			     strerror(errno));
	cfg.console_is_tty = term.active;
	struct vm *vm;
	/* a --learn boot stores the user code it translated (docs/db.md, user
	 * templates), so its user code runs translated unless --user says
	 * otherwise: code the adaptive policy ran direct would have none */
	if (cfg.learn && !user_given)
		cfg.user_mode = VM_USER_TRANSLATED;
	enum bt_status s = vm_create(&cfg, &vm);
	if (s != BT_OK) {
		conterm_restore(&term);
		bt_cli_error("cannot start the guest: %s (see the message above)",
			     bt_status_str(s));
		return EXIT_USAGE;
	}
	struct vm_result res = {0};
	s = vm_run(vm, &res);
	fflush(stdout);
	conterm_restore(&term);
	enum bt_status fs = vm_finish(vm);
	int rc;
	switch (res.stop) {
	case VM_STOP_EXIT_PORT:
		rc = res.exit_status;
		/* the guest chose this status: say so, since 1 is usually "passed" */
		fprintf(
		    stderr,
		    "btvm: the guest wrote %d to its exit port (I/O port 0xf4, QEMU's convention): "
		    "exit status (%d << 1) | 1 = %d\n",
		    rc >> 1, rc >> 1, rc);
		break;
	case VM_STOP_TIMEOUT:
		fprintf(stderr,
			"btvm: timeout: the guest ran for %g s without stopping (rip %#llx)\n",
			cfg.timeout_s, (unsigned long long)res.rip);
		rc = EXIT_TIMEOUT;
		break;
	case VM_STOP_SIGNAL:
		fprintf(stderr, "btvm: stopped by signal %d (%s) at guest rip %#llx\n", res.signal,
			strsignal(res.signal), (unsigned long long)res.rip);
		rc = EXIT_SIGNAL;
		break;
	case VM_STOP_POWEROFF:
		rc = EXIT_POWEROFF; /* as QEMU: a guest that powers off ends the VM quietly */
		break;
	case VM_STOP_RESET:
	case VM_STOP_TRIPLE_FAULT:
		/* a CPU resets after a triple fault; btvm stops, as QEMU -no-reboot */
		fprintf(
		    stderr,
		    "btvm: the guest stopped: %s at rip %#llx (the machine resets: btvm stops)\n",
		    vm_stop_str(res.stop), (unsigned long long)res.rip);
		rc = EXIT_RESET;
		break;
	case VM_STOP_PANIC:
		fprintf(
		    stderr,
		    "btvm: the guest kernel panicked (it said so through the pvpanic device) at "
		    "rip %#llx\n",
		    (unsigned long long)res.rip);
		rc = EXIT_PANIC;
		break;
	case VM_STOP_HALTED:
		fprintf(stderr,
			"btvm: the guest stopped: %s at rip %#llx (it can never run again: a "
			"halt, not a power-off)\n",
			vm_stop_str(res.stop), (unsigned long long)res.rip);
		rc = EXIT_HALTED;
		break;
	default:
		fprintf(stderr, "btvm: the guest stopped: %s at rip %#llx\n", vm_stop_str(res.stop),
			(unsigned long long)res.rip);
		rc = EXIT_ABNORMAL;
		break;
	}
	if (s != BT_OK && rc != EXIT_TIMEOUT && rc != EXIT_SIGNAL && !(rc & 1))
		rc = EXIT_ABNORMAL;
	if (fs != BT_OK) {
		fprintf(stderr,
			"btvm: the guest ran, but writing %s failed (see the message above): "
			"nothing was learned\n",
			cfg.tcdb);
		rc = EXIT_DB_WRITE;
	}
	if (stats) {
		vm_print_stats(vm, stats_out, stats == 2, rc);
		if (stats_out != stderr && fclose(stats_out) != 0) {
			bt_cli_error("%s: cannot write the statistics: %s", stats_path,
				     strerror(errno));
			if (rc == 0 || (rc & 1))
				rc = EXIT_ABNORMAL;
		}
	}
	vm_destroy(vm);
	return rc;
}
