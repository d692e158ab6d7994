/*
 * One virtual machine: guest RAM, soft-MMU, vCPU, platform devices, the
 * code cache, the translator (dynamic path) and optionally the translation
 * database (warm path).  `btvm run` is a thin CLI over this.
 *
 * VM states (function for each transition):
 *
 *   CREATED --vm_create--> READY (kernel loaded, vCPU at the boot entry)
 *   READY --vm_run [cfg.sandbox: enter the sandbox]--> RUNNING --guest exit port / triple fault /
 * hlt with IF=0 / timeout / fatal host error--> STOPPED (vm->result says why) STOPPED --vm_finish
 * (learn write-back, run statistics)--> vm_destroy
 */
#ifndef BT_RUNTIME_VM_VM_H
#define BT_RUNTIME_VM_VM_H

#include <stdio.h>

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

struct vm;

/* Limits of --fault-around and --stub-pool (runtime/user/user.h's). */
#define VM_FAULT_AROUND_MAX 64
#define VM_STUB_POOL_MAX    8

struct vm_config {
	const char *kernel;
	const char *initrd;	 /* NULL: none */
	const char *disk;	 /* NULL: none */
	const char *virtio_disk; /* raw image for virtio-blk on PCI, NULL: none */
	bool virtio_disk_read_only;
	const char *cmdline; /* NULL: empty */
	const char *tcdb;    /* NULL: cold (no database) */
	uint64_t mem_bytes;
	bool learn;	       /* write run-time translations back to tcdb */
	bool verify_db_blocks; /* re-translate every database block and compare */
	double timeout_s;      /* 0: none */
	/* vm_run enters btvm's sandbox (runtime/sandbox, docs/security.md)
	 * before the guest runs: irreversible, for a process that runs one VM
	 * and then exits (btvm sets it; unit tests do not). */
	bool sandbox;
	int console_in_fd, console_out_fd;
	/* console_in_fd is a terminal btvm made raw (runtime/dev/conterm.h):
	 * the console escape is on (Ctrl-A x stops the VM as SIGINT does) and
	 * the sandbox lets the terminal's settings be restored at the end */
	bool console_is_tty;
	bool perf_map;	       /* write /tmp/perf-PID.map for perf (tcache_set_perf_map) */
	bool no_fast_syscalls; /* every syscall/sysretq of translated code through the dispatcher */
	bool no_fast_paths;    /* no fast path in the memory and string call-outs (tc_handlers) */
	int user_mode;	       /* enum vm_user_cfg (vm_policy.h): adaptive, direct, translated */
	unsigned fault_around; /* direct mode: user_config.around_pages (0: default), a power
				  of two up to VM_FAULT_AROUND_MAX */
	int stub_pool; /* direct mode: user_config.pool (-1: default), up to VM_STUB_POOL_MAX */
	/* translate with XLAT_OPT_COUNT_PROBES (a measuring run: the inline
	 * probes' hit rate in --stats); no database (vm_create refuses tcdb) */
	bool count_probes;
};

void vm_config_init(struct vm_config *cfg);

/* How the run ended. */
enum vm_stop {
	VM_STOP_NONE = 0,
	VM_STOP_EXIT_PORT, /* guest wrote isa-debug-exit: exit_status = (v << 1) | 1 */
	VM_STOP_TRIPLE_FAULT,
	VM_STOP_HALTED, /* hlt with interrupts disabled */
	VM_STOP_TIMEOUT,
	VM_STOP_RESET,	  /* guest asked for a reset (0x92, 0xcf9, 0x64, ACPI): stops, as
			   * QEMU's -no-reboot */
	VM_STOP_POWEROFF, /* guest entered ACPI S5 */
	VM_STOP_ERROR,	  /* a host-side failure (message already printed) */
	VM_STOP_SIGNAL,	  /* btvm got SIGINT or SIGTERM: vm_result.signal says which */
	VM_STOP_PANIC,	  /* the guest kernel said it panicked (pvpanic PANICKED) */
};
const char *vm_stop_str(enum vm_stop s);

/*
 * vm_result.exit_status when the guest did not choose it (VM_STOP_EXIT_PORT
 * carries the guest's odd (v << 1) | 1).  The numbers are part of btvm's
 * interface (docs/runtime.md): --stats prints them and main.c returns
 * VM_EXIT_TIMEOUT as the process exit status.
 */
enum vm_exit_status {
	VM_EXIT_POWEROFF = 0,  /* ACPI S5 */
	VM_EXIT_STOPPED = 2,   /* triple fault, hlt with IF=0 */
	VM_EXIT_RESET = 8,     /* a reset request (0x92, 0xcf9, 0x64, the ACPI reset register) */
	VM_EXIT_PANIC = 12,    /* the guest kernel panicked (pvpanic) */
	VM_EXIT_ERROR = 3,     /* a host-side failure */
	VM_EXIT_TIMEOUT = 124, /* --timeout expired (as timeout(1)) */
	VM_EXIT_SIGNAL = 130,  /* stopped by SIGINT or SIGTERM (128 + SIGINT, as a shell) */
};

struct vm_result {
	enum vm_stop stop;
	int exit_status; /* the guest's exit port value, or an enum vm_exit_status */
	gva_t rip;	 /* guest RIP when it stopped */
	int signal;	 /* VM_STOP_SIGNAL: the host signal */
};

enum bt_status vm_create(const struct vm_config *cfg, struct vm **out);
enum bt_status vm_run(struct vm *vm, struct vm_result *res);
/* Write learned blocks and run statistics (if a database is open). */
enum bt_status vm_finish(struct vm *vm);
/* exit_status: the process exit status the program returns, printed as is
 * so the statistics and the status always agree. */
void vm_print_stats(struct vm *vm, FILE *f, bool json, int exit_status);
/* The "schema" key of --stats=json; bumped when a key changes meaning or goes
 * away (adding keys keeps it). */
#define VM_STATS_SCHEMA "btkern-btvm-stats/1"
void vm_destroy(struct vm *vm);

#endif
