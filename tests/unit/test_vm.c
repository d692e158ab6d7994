/*
 * Unit tests of runtime/vm's execution loop on tiny guests
 * (tests/guests/vmtest.S), each run through the public API
 * (vm_create/vm_run/vm_finish) against a real translation database built
 * from the same ELF by the pretrans pipeline (pbuild_run):
 *  - a database block is validated, installed and run (stats: from the
 *    database, nothing translated);
 *  - a block whose guest bytes were patched at run time is rejected as
 *    stale and retranslated (the guest reports the patched value);
 *  - --learn writes that translation back: the row is then a learned one
 *    with another bytes hash, and a second boot takes it from the database;
 *  - an interrupt (PIT -> PIC -> IDT) is taken at a block boundary (the
 *    guest's handler checks the interrupted RIP);
 *  - a #PF raised by a soft-MMU call-out reaches the guest's handler with
 *    the right CR2, error code and RIP.
 * The guest's verdict comes back through isa-debug-exit as the exit status.
 * Boots of the real test kernel: tests/integration/btvm-boot.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/tcdb.h"
#include "pretrans/base/clock.h"
#include "pretrans/build.h"
#include "pretrans/xlat/xlat_facts.h"
#include "runtime/vm/vm_int.h"
#include "tests/unit/test_config.h"

#define GUEST(name)	VM_TEST_GUESTS "/vmtest-" name ".elf"
#define REPORT_VA	0x201000ull /* vmtest.S: report() */
#define GUEST_STATUS(v) (((v) << 1) | 1)

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_vm.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A database of the ELF at elf, as `pretrans build` makes it. */
static void build_db(const char *elf, const char *name, char *out, size_t out_len)
{
	snprintf(out, out_len, "%s/%s.tcdb", dir, name);
	struct pbuild_options o = {.image_path = elf,
				   .out_path = out,
				   .jobs = 1,
				   .created = 1,
				   .xlat_flags = XLAT_OPT_CROSSCHECK | XLAT_OPT_EXACT_FAULTS};
	struct pbuild_stats st;
	assert_int_equal(pbuild_run(&o, &st), BT_OK);
	assert_true(st.n_blocks > 0);
}

/* Boot elf (with tcdb, if not NULL) until it stops; the caller destroys. */
static struct vm *boot(const char *elf, const char *tcdb, bool learn, struct vm_result *res)
{
	struct vm_config cfg;
	vm_config_init(&cfg);
	cfg.kernel = elf;
	cfg.tcdb = tcdb;
	cfg.learn = learn;
	cfg.mem_bytes = 64ull << 20;
	cfg.timeout_s = 20; /* a broken loop fails the test, it does not hang it */
	cfg.console_out_fd = open("/dev/null", O_WRONLY);
	assert_true(cfg.console_out_fd >= 0);
	struct vm *vm;
	assert_int_equal(vm_create(&cfg, &vm), BT_OK);
	assert_int_equal(vm_run(vm, res), BT_OK);
	assert_int_equal(vm_finish(vm), BT_OK);
	close(cfg.console_out_fd);
	return vm;
}

static void test_db_block_is_used(void **state)
{
	(void)state;
	char db[128];
	build_db(GUEST("exit"), "exit", db, sizeof(db));
	struct vm_result res;
	struct vm *vm = boot(GUEST("exit"), db, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x21));
	/* _start and report, both from the database */
	assert_true(vm->st.db_used >= 2);
	assert_int_equal(vm->st.db_stale, 0);
	assert_int_equal(vm->st.translated, 0);
	vm_destroy(vm);

	/* the same guest cold: everything translated, nothing from a database */
	vm = boot(GUEST("exit"), NULL, false, &res);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x21));
	assert_int_equal(vm->st.db_used, 0);
	assert_true(vm->st.translated >= 2);
	vm_destroy(vm);
}

/* A database made with the undefined-flags rule (XLAT_OPT_UNDEF_FLAGS) on
 * a CPU that does not hold it: refused at vm_create, naming it; on this
 * CPU it runs, its options the VM's. */
static void test_undef_flags_db(void **state)
{
	(void)state;
	if (!xlat_host_undef_flags_ok())
		skip();
	char db[128];
	snprintf(db, sizeof(db), "%s/undef.tcdb", dir);
	struct pbuild_options o = {.image_path = GUEST("exit"),
				   .out_path = db,
				   .jobs = 1,
				   .created = 1,
				   .xlat_flags = XLAT_OPT_CROSSCHECK | XLAT_OPT_EXACT_FAULTS |
						 XLAT_OPT_UNDEF_FLAGS};
	struct pbuild_stats st;
	assert_int_equal(pbuild_run(&o, &st), BT_OK);
	struct vm_result res;
	struct vm *vm = boot(GUEST("exit"), db, false, &res);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x21));
	assert_true(vm->xopts.flags & XLAT_OPT_UNDEF_FLAGS);
	assert_true(vm->st.db_used >= 2);
	vm_destroy(vm);

	xlat_host_undef_flags_pretend(0);
	struct vm_config cfg;
	vm_config_init(&cfg);
	cfg.kernel = GUEST("exit");
	cfg.tcdb = db;
	cfg.mem_bytes = 64ull << 20;
	vm = NULL;
	assert_int_equal(vm_create(&cfg, &vm), BT_ERR_UNSUPPORTED);
	assert_null(vm);
	/* without a database the VM translates without the rule */
	cfg.tcdb = NULL;
	assert_int_equal(vm_create(&cfg, &vm), BT_OK);
	assert_false(vm->xopts.flags & XLAT_OPT_UNDEF_FLAGS);
	vm_destroy(vm);
	xlat_host_undef_flags_pretend(-1);
}

static void test_stale_block_is_retranslated(void **state)
{
	(void)state;
	char db[128];
	build_db(GUEST("stale"), "stale", db, sizeof(db));
	struct vm_result res;
	struct vm *vm = boot(GUEST("stale"), db, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* the patched immediate ran, not the database's copy of the bytes */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x2a));
	assert_int_equal(vm->st.db_stale, 1);
	assert_true(vm->st.translated >= 1);
	assert_true(vm->st.db_used >= 1); /* _start */
	assert_int_equal(vm->st.learned, 0);
	vm_destroy(vm);
}

/* What this translator expects of a database it reads. */
static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

static void test_learned_block_is_written_back(void **state)
{
	(void)state;
	char db[128];
	build_db(GUEST("stale"), "learn", db, sizeof(db));
	struct tcdb *t;
	struct tcdb_block row;
	assert_int_equal(tcdb_open(db, TCDB_RDONLY, &want, NULL, &t), BT_OK);
	assert_int_equal(tcdb_lookup(t, REPORT_VA, &row), BT_OK);
	assert_int_equal(row.origin, TCDB_ORIGIN_STATIC);
	uint64_t static_hash = row.blk.guest_hash;
	tcdb_close(t);

	struct vm_result res;
	struct vm *vm = boot(GUEST("stale"), db, true, &res);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x2a));
	assert_int_equal(vm->st.db_stale, 1);
	assert_true(vm->st.learned >= 1);
	vm_destroy(vm);

	/* the row at report is now the run-time translation of the patched bytes */
	assert_int_equal(tcdb_open(db, TCDB_RDONLY, &want, NULL, &t), BT_OK);
	assert_int_equal(tcdb_lookup(t, REPORT_VA, &row), BT_OK);
	assert_int_equal(row.origin, TCDB_ORIGIN_LEARNED);
	assert_true(row.blk.guest_hash != static_hash);
	struct tcdb_run_stats rs;
	uint64_t n_runs;
	assert_int_equal(tcdb_last_run(t, &rs, &n_runs), BT_OK);
	assert_int_equal(n_runs, 1);
	assert_int_equal(rs.blocks_stale, 1);
	assert_true(rs.blocks_learned >= 1);
	tcdb_close(t);

	/* and the next boot takes it from the database */
	vm = boot(GUEST("stale"), db, false, &res);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x2a));
	assert_int_equal(vm->st.db_stale, 0);
	assert_int_equal(vm->st.translated, 0);
	assert_true(vm->st.db_used >= 2);
	vm_destroy(vm);
}

static void test_interrupt_at_block_boundary(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("irq"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* 0x44 would mean the handler saw a RIP that is not the loop's start */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x33));
	assert_true(vm->st.irqs >= 1);
	assert_true(vm->st.exits[XLAT_EXIT_IRQ] >= 1);
	vm_destroy(vm);
}

static void test_callout_fault_reaches_guest(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("pf"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* 0x77: the load did not fault; 0x66: wrong CR2, error code or RIP */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x55));
	assert_int_equal(vm->st.faults, 1);
	assert_int_equal(vm->st.host_signals, 0);
	vm_destroy(vm);
}

/* A block killed while it runs (it wrote its own bytes) and reached by a
 * chained jump still leaves through its own exit record: its stub stores
 * no target, and the code cache no longer finds it by its address. */
static void test_block_killed_while_running_exits(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("smc"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x3c));
	assert_true(vm->st.smc_blocks >= 1);
	vm_destroy(vm);
}

/* An extension the vCPU's CPUID does not advertise (AVX: vzeroupper) is
 * #UD in the guest, as on a CPU without it, not a stopped VM. */
static void test_not_advertised_is_ud(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("ud"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* 0x7d: vzeroupper ran; 0x6d: #UD with the wrong saved RIP */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x5d));
	assert_true(vm->st.refused >= 1);
	vm_destroy(vm);
}

/* A #GP the host CPU raises in translated code (ldmxcsr with reserved
 * bits) is the guest's #GP(0) at that instruction, not a stopped VM. */
static void test_host_gp_is_guest_gp(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("gp"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* 0x6e: ldmxcsr did not fault; 0x5e: wrong error code or saved RIP */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x4d));
	assert_int_equal(vm->st.host_signals, 1);
	vm_destroy(vm);
}

/* A device for test_store_to_device_memory: 8 bytes of registers, and a
 * log of every access in the order it reached the device. */
struct regdev {
	uint32_t reg[2];
	char log[8][24];
	unsigned n;
};

static void regdev_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct regdev *d = opaque;
	*value = off < 8 ? d->reg[off / 4] : 0;
	if (d->n < 8)
		snprintf(d->log[d->n++], sizeof(d->log[0]), "r%u@%u", size, (unsigned)off);
}

static void regdev_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct regdev *d = opaque;
	if (off < 8)
		d->reg[off / 4] = (uint32_t)value;
	if (d->n < 8)
		snprintf(d->log[d->n++], sizeof(d->log[0]), "w%u@%u=%#x", size, (unsigned)off,
			 (unsigned)value);
}

/* Boot a vmtest guest with the regdev at 0x4000000 (64 MiB) until it
 * writes its exit port; res says how it ended. */
static void run_with_regdev(const char *guest, struct regdev *dev, struct vm_result *res)
{
	static const struct iobus_ops ops = {
	    .read = regdev_read, .write = regdev_write, .name = "test-regs"};
	struct vm_config cfg;
	vm_config_init(&cfg);
	cfg.kernel = guest;
	cfg.mem_bytes = 32ull << 20;
	cfg.timeout_s = 20;
	cfg.console_out_fd = open("/dev/null", O_WRONLY);
	assert_true(cfg.console_out_fd >= 0);
	struct vm *vm;
	assert_int_equal(vm_create(&cfg, &vm), BT_OK);
	assert_int_equal(iobus_register_mmio(vm->plat->bus, 0x4000000, 8, &ops, dev), BT_OK);
	assert_int_equal(vm_run(vm, res), BT_OK);
	assert_int_equal(vm_finish(vm), BT_OK);
	close(cfg.console_out_fd);
	vm_destroy(vm);
	assert_int_equal(res->stop, VM_STOP_EXIT_PORT);
}

/* Stores from translated code to device memory reach the device, once and
 * in program order: a plain store does not read the device, a
 * read-modify-write reads it first (as the instruction does on hardware),
 * a later load sees what was written, and naturally aligned 2- and 8-byte
 * stores arrive whole. */
static void test_store_to_device_memory(void **state)
{
	(void)state;
	struct regdev dev = {.reg = {0, 0xa0}};
	struct vm_result res;
	run_with_regdev(GUEST("mmio"), &dev, &res);
	/* 0x2c: the load did not see the read-modify-write's result */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x3c));
	assert_int_equal(dev.n, 6);
	assert_string_equal(dev.log[0], "w4@0=0x11223344");
	assert_string_equal(dev.log[1], "r4@4");
	assert_string_equal(dev.log[2], "w4@4=0x1a0");
	assert_string_equal(dev.log[3], "r4@4");
	/* aligned accesses reach the device whole, as on hardware (they were
	 * split into bytes and dwords) */
	assert_string_equal(dev.log[4], "w2@2=0x5566");
	assert_string_equal(dev.log[5], "w8@0=0x5060708");
}

/* String instructions on device memory take the string call-out's full
 * path, both times (the second with every RAM page in the TLB): the
 * device sees each fill and each read of the copy, in order. */
static void test_string_device_memory(void **state)
{
	(void)state;
	struct regdev dev = {0};
	struct vm_result res;
	run_with_regdev(GUEST("strmmio"), &dev, &res);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x3a));
	/* one access per element, as on hardware: never one wider access
	 * for a whole chunk of a rep (tc_string.c string_chunk) */
	static const char *const log[] = {"w4@0=0xa1b2c3d4", "w4@4=0xa1b2c3d4", "r4@0", "r4@4",
					  "w4@0=0xa2b3c4d5", "w4@4=0xa2b3c4d5", "r4@0", "r4@4"};
	assert_int_equal(dev.n, 8);
	for (unsigned i = 0; i < 8; i++)
		assert_string_equal(dev.log[i], log[i]);
}

/* A store split between RAM and device memory from translated code: the
 * RAM half lands, the device half reaches the device whole; a store split
 * into a page that is not present faults there having written nothing
 * (the guest checks both; vmtest.S VMTEST_SPLIT). */
static void test_split_store(void **state)
{
	(void)state;
	struct regdev dev = {0};
	struct vm_result res;
	run_with_regdev(GUEST("split"), &dev, &res);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x4b));
	assert_int_equal(dev.n, 1);
	assert_string_equal(dev.log[0], "w4@0=0x11223344");
}

/* A global flush (CR4.PGE) revalidates kernel code pages, a large page's
 * with one walk for all its pages: a block whose large page now maps
 * another frame dies (a call through the IBL reaches the new code), one of
 * an unchanged large page lives (vmtest.S VMTEST_EPOCH). */
static void test_epoch_large_pages(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("epoch"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* 0x4e: wrong before the move, 0x5f: a stale block ran after it */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x3e));
	assert_int_equal(vm->st.epochs, 2);
	/* B's two pages answered by one walk */
	assert_true(vm->st.epoch_walks < vm->st.epoch_pages);
	assert_true(vm->st.mapping_flushes >= 2); /* f and g through A */
	vm_destroy(vm);
}

/* The memory call-out's fast path (tc_co_mem before its FPU save; the
 * second-level TLB) serves the misses of stores that alternate between two
 * pages of one first-level slot, and leaves every GPR, the arithmetic
 * flags, DF, xmm0-15 and MXCSR as they were (vmtest.S VMTEST_L2 checks
 * them after 128 such stores). */
static void test_fast_path_keeps_state(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("l2"), NULL, false, &res);
	struct mmu_stats mm;
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* 0x3f: a GPR or the flags changed, 0x4f: XMM or MXCSR, 0x5f: a store */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x2e));
	mmu_get_stats(&vm->mmu, &mm);
	/* each store after the first two missed and was served fast (the
	 * class is `user`: a low address at CPL 0, vm_probe_miss_kind) */
	uint64_t served = 0;
	for (unsigned k = 0; k < VM_NMISS; k++) {
		assert_true(vm->st.l2_served[k] <= vm->st.probe_miss[k]);
		served += vm->st.l2_served[k];
	}
	assert_true(served >= 120);
	assert_true(mm.l2_hits >= 120);
	assert_true(vm->tcv.mem_slow >= served);
	vm_destroy(vm);
}

/* The string call-out's fast path (tc_co_string before its FPU save):
 * copies and fills across pages with DF 0 and 1, overlapping copies,
 * repe cmps and repne scas stopping on their second page, every
 * GPR, the flags, xmm0-15 and MXCSR kept, a copy into translated code
 * still seen as one, and a copy faulting on its second page leaving the
 * architectural RSI/RDI/RCX (vmtest.S VMTEST_STR checks each). */
static void test_string_fast_path(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("str"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	/* 0x31-0x39: which check failed (vmtest.S) */
	assert_int_equal(res.exit_status, GUEST_STATUS(0x2f));
	/* (a), (b), (c) and (e) repeat instructions on pages already in the
	 * TLB: at least the second (a), the two aligned (b) with their
	 * fills, the five copies of (c) and the four compares of (e) were
	 * completed fast; the copies into code never are (they write
	 * watched pages) */
	assert_true(vm->tcv.str_fast >= 13);
	assert_true(vm->tcv.str_fast < vm->tcv.str_calls);
	vm_destroy(vm);
}

/* hlt sleeps until the next device deadline to the nanosecond: Linux's
 * one-shot timers are due at sub-millisecond deadlines, and a sleep rounded
 * up to whole milliseconds woke them 0.8-1.7 ms late on average */
static void test_idle_until_deadline(void **state)
{
	(void)state;
	assert_int_equal(vm_until_deadline_ns(1000300000ull, 1000000000ull, VM_IDLE_MAX_NS),
			 300000);
	assert_int_equal(vm_until_deadline_ns(1000000001ull, 1000000000ull, VM_IDLE_MAX_NS), 1);
	assert_int_equal(vm_until_deadline_ns(1000000000ull, 1000000000ull, VM_IDLE_MAX_NS),
			 0); /* due now */
	assert_int_equal(vm_until_deadline_ns(999999999ull, 1000000000ull, VM_IDLE_MAX_NS),
			 0); /* overdue */
	assert_int_equal(vm_until_deadline_ns(UINT64_MAX, 5, VM_IDLE_MAX_NS),
			 VM_IDLE_MAX_NS); /* no deadline */
	assert_int_equal(vm_until_deadline_ns(5000000000ull, 1000000000ull, VM_IDLE_MAX_NS),
			 VM_IDLE_MAX_NS);
	/* a direct stay's stub: the same deadline, its own maximum */
	assert_int_equal(vm_until_deadline_ns(1000250000ull, 1000000000ull, VM_DIRECT_KICK_MAX_NS),
			 250000);
	assert_int_equal(vm_until_deadline_ns(1050000000ull, 1000000000ull, VM_DIRECT_KICK_MAX_NS),
			 VM_DIRECT_KICK_MAX_NS);
	assert_int_equal(vm_until_deadline_ns(UINT64_MAX, 5, VM_DIRECT_KICK_MAX_NS),
			 VM_DIRECT_KICK_MAX_NS);
}

/* A halted vCPU sleeps until its device deadline: the 1 ms host timer does
 * not wake it on the way (vm_signal.c contract 5).  Ten 8 ms PIT ticks took
 * ~80 sleeps with the timer's signal let through, one or two a tick now. */
static void test_hlt_sleeps_through_host_timer(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("hlt"), NULL, false, &res);
	assert_int_equal(res.stop, VM_STOP_EXIT_PORT);
	assert_int_equal(res.exit_status, GUEST_STATUS(0x2d));
	assert_true(vm->st.irqs >= 10);
	assert_true(vm->st.halts >= 10);
	assert_true(vm->st.halts <= 30);
	vm_destroy(vm);
}

/* Spin (as a stub computing would) until bt_now_ns() reaches until; the
 * host timer's ticks that set VCPU_IRQ_FORCE on the way, counted. */
static unsigned spin_ticks(struct vm *vm, uint64_t until)
{
	unsigned n = 0;
	while (bt_now_ns() < until) {
		if (__atomic_fetch_and(&vm->tcv.abi->irq, ~VCPU_IRQ_FORCE, __ATOMIC_RELAXED) &
		    VCPU_IRQ_FORCE)
			n++;
	}
	return n;
}

/* Wait for the host timer's next tick (at most 20 ms under load), and
 * clear its request. */
static void wait_tick(struct vm *vm)
{
	__atomic_fetch_and(&vm->tcv.abi->irq, ~VCPU_IRQ_FORCE, __ATOMIC_RELAXED);
	uint64_t t = bt_now_ns() + 20000000;
	while (!(vm->tcv.abi->irq & VCPU_IRQ_FORCE) && bt_now_ns() < t)
		;
	assert_true(vm->tcv.abi->irq & VCPU_IRQ_FORCE);
	__atomic_fetch_and(&vm->tcv.abi->irq, ~VCPU_IRQ_FORCE, __ATOMIC_RELAXED);
}

/* The host timer ticks every 1 ms from now on: its next expiry at most 1 ms
 * away, then every 1 ms (read back, not waited for: no load can fail it). */
static void assert_periodic(struct vm *vm)
{
	struct itimerspec its;
	assert_int_equal(timer_gettime(vm->host_timer, &its), 0);
	assert_int_equal(its.it_interval.tv_sec, 0);
	assert_int_equal(its.it_interval.tv_nsec, VM_HOST_TICK_NS);
	assert_int_equal(its.it_value.tv_sec, 0);
	assert_true(its.it_value.tv_nsec > 0 && its.it_value.tv_nsec <= (long)VM_HOST_TICK_NS);
}

/* A stub computing through a direct stay wakes btvm once, at its deadline,
 * not every millisecond (vm_signal.c contract 7): armed at the stay's entry,
 * the timer does not fire before kick_at_ns; unarmed, the first early tick
 * moves it there (and only that one is early); after the deadline, and after vm_timer_periodic, it
 * ticks every millisecond again.  With a timer that kept its 1 ms period, each 6 ms stay below took
 * ~5 early signals (~1,000 a second of compute on the Linux benchmark: ~4% of its compute phase).
 */
static void test_direct_stay_timer_at_deadline(void **state)
{
	(void)state;
	struct vm_result res;
	struct vm *vm = boot(GUEST("exit"), NULL, false, &res);
	assert_int_equal(vm_signals_install(vm), BT_OK);
	uint64_t t;

	/* armed at entry: no tick before the deadline, one at it (a tick
	 * of the old period still pending from a descheduled moment is
	 * taken first: it is not the armed timer's).  The counters, not the
	 * clock, decide: a loaded host may deschedule this test anywhere */
	sigset_t alrm, old;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	wait_tick(vm);
	assert_int_equal(sigprocmask(SIG_BLOCK, &alrm, &old), 0);
	uint64_t early = vm->st.timer_early, moved = vm->st.timer_moved;
	vm->kick_at_ns = bt_now_ns() + 6000000;
	vm_timer_at_kick(vm);
	struct timespec zero = {0, 0};
	(void)sigtimedwait(&alrm, NULL, &zero);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
	assert_int_equal(vm->st.timer_moved, moved + 1);
	struct itimerspec its;
	assert_int_equal(timer_gettime(vm->host_timer, &its), 0);
	assert_true(bt_now_ns() >= vm->kick_at_ns || its.it_value.tv_nsec > (long)VM_HOST_TICK_NS ||
		    its.it_value.tv_sec > 0);
	(void)spin_ticks(vm, vm->kick_at_ns - 200000);
	assert_int_equal(vm->st.timer_early, early); /* no signal before it */
	t = bt_now_ns() + 20000000;		     /* the kick: at most 20 ms late under load */
	while (!(vm->tcv.abi->irq & VCPU_IRQ_FORCE) && bt_now_ns() < t)
		;
	assert_true(vm->tcv.abi->irq & VCPU_IRQ_FORCE);
	assert_true(bt_now_ns() >= vm->kick_at_ns);
	assert_int_equal(vm->timer_at_kick, 0); /* past it: periodic again */
	assert_int_equal(vm->st.timer_early, early);
	vm->kick_at_ns = 0;
	assert_periodic(vm);

	/* unarmed: one early tick, which moves the timer to the deadline */
	wait_tick(vm);
	early = vm->st.timer_early;
	moved = vm->st.timer_moved;
	vm->kick_at_ns = bt_now_ns() + 30000000;
	(void)spin_ticks(vm, vm->kick_at_ns - 15000000); /* then 15 ms before it */
	assert_int_equal(vm->st.timer_early, early + 1);
	assert_int_equal(vm->st.timer_moved, moved + 1);

	/* a stay that ends early puts the 1 ms period back */
	vm->kick_at_ns = 0;
	vm_timer_periodic(vm);
	assert_int_equal(vm->timer_at_kick, 0);
	assert_periodic(vm);
	vm_signals_remove(vm);
	vm_destroy(vm);
}

int main(void)
{
	test_private_config();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_db_block_is_used),
	    cmocka_unit_test(test_stale_block_is_retranslated),
	    cmocka_unit_test(test_undef_flags_db),
	    cmocka_unit_test(test_learned_block_is_written_back),
	    cmocka_unit_test(test_interrupt_at_block_boundary),
	    cmocka_unit_test(test_callout_fault_reaches_guest),
	    cmocka_unit_test(test_store_to_device_memory),
	    cmocka_unit_test(test_split_store),
	    cmocka_unit_test(test_epoch_large_pages),
	    cmocka_unit_test(test_fast_path_keeps_state),
	    cmocka_unit_test(test_string_fast_path),
	    cmocka_unit_test(test_string_device_memory),
	    cmocka_unit_test(test_idle_until_deadline),
	    cmocka_unit_test(test_hlt_sleeps_through_host_timer),
	    cmocka_unit_test(test_direct_stay_timer_at_deadline),
	    cmocka_unit_test(test_block_killed_while_running_exits),
	    cmocka_unit_test(test_not_advertised_is_ud),
	    cmocka_unit_test(test_host_gp_is_guest_gp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
