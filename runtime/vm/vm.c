/*
 * VM construction and teardown, the run/finish entry points, statistics.
 * Owns the wiring between the modules: guest RAM <-> soft-MMU <-> vCPU
 * <-> devices, and the code cache's hooks into guest memory and the
 * soft-MMU.  The execution loop itself is vm_exec.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "runtime/sandbox/sandbox.h"
#include "runtime/user/user_scan.h"
#include "runtime/user/ustub.h"
#include "pretrans/xlat/xlat_facts.h"
#include "runtime/vm/vm_int.h"

#define VM_CODE_CACHE_BYTES (256ull << 20)

_Static_assert(VM_FAULT_AROUND_MAX == USER_AROUND_MAX, "--fault-around: user.h's limit");
_Static_assert(VM_STUB_POOL_MAX == USER_POOL_MAX, "--stub-pool: user.h's limit");

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_bytes = 256ull << 20;
	cfg->console_in_fd = -1;
	cfg->console_out_fd = 1;
	cfg->stub_pool = -1;
}

const char *vm_stop_str(enum vm_stop s)
{
	switch (s) {
	case VM_STOP_NONE:
		return "running";
	case VM_STOP_EXIT_PORT:
		return "guest exit port";
	case VM_STOP_TRIPLE_FAULT:
		return "triple fault";
	case VM_STOP_HALTED:
		return "halted with interrupts disabled";
	case VM_STOP_TIMEOUT:
		return "timeout";
	case VM_STOP_RESET:
		return "reset requested";
	case VM_STOP_POWEROFF:
		return "powered off";
	case VM_STOP_ERROR:
		return "runtime error";
	case VM_STOP_SIGNAL:
		return "stopped by a signal";
	case VM_STOP_PANIC:
		return "guest kernel panic";
	}
	return "?";
}

static enum bt_status plat_pio_in(void *opaque, uint16_t port, unsigned size, uint32_t *val)
{
	struct vm *vm = opaque;
	return iobus_pio_in(vm->plat->bus, port, size, val);
}

static enum bt_status plat_pio_out(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
	struct vm *vm = opaque;
	return iobus_pio_out(vm->plat->bus, port, size, val);
}

static bool plat_intr_pending(void *opaque)
{
	struct vm *vm = opaque;
	return platform_intr_pending(vm->plat);
}

static uint8_t plat_intr_ack(void *opaque)
{
	struct vm *vm = opaque;
	return platform_intr_ack(vm->plat);
}

/* IA32_APIC_BASE and IA32_TSC_DEADLINE: the local APIC's. */
static bool plat_apic_msr(void *opaque, uint32_t index, bool write, uint64_t tsc, uint64_t *val)
{
	struct vm *vm = opaque;
	struct lapic *a = vm->plat->lapic;
	if (index == 0x1b) {
		if (write)
			return lapic_set_base_msr(a, *val);
		*val = lapic_base_msr(a);
		return true;
	}
	if (write)
		lapic_set_tsc_deadline(a, *val, tsc);
	else
		*val = lapic_tsc_deadline(a);
	return true;
}

/* CR8: the LAPIC's TPR[7:4]. */
static void plat_apic_cr8(void *opaque, bool write, uint64_t *val)
{
	struct vm *vm = opaque;
	if (write)
		lapic_write(vm->plat->lapic, LAPIC_TPR, (uint32_t)*val << 4);
	else
		*val = lapic_read(vm->plat->lapic, LAPIC_TPR) >> 4;
}

/* The vCPU's interrupt request changed (platform_intr_pending). */
static void on_intr(void *opaque, bool intr)
{
	struct vm *vm = opaque;
	if (intr)
		__atomic_or_fetch(&vm->tcv.abi->irq, VCPU_IRQ_REQ, __ATOMIC_RELAXED);
	else
		__atomic_and_fetch(&vm->tcv.abi->irq, (uint16_t)~VCPU_IRQ_REQ, __ATOMIC_RELAXED);
}

/* A device asked to stop the machine: the loop's next outer check stops
 * (force an exit from translated code so it comes at once). */
static void request_stop(struct vm *vm, enum vm_stop why)
{
	if (vm->stop_request == VM_STOP_NONE)
		vm->stop_request = why;
	__atomic_or_fetch(&vm->tcv.abi->irq, VCPU_IRQ_FORCE, __ATOMIC_RELAXED);
}

static void on_reset(void *opaque)
{
	request_stop(opaque, VM_STOP_RESET);
}

static void on_poweroff(void *opaque)
{
	request_stop(opaque, VM_STOP_POWEROFF);
}

static void on_panic(void *opaque)
{
	request_stop(opaque, VM_STOP_PANIC);
}

static enum bt_status mmio(void *opaque, gpa_t gpa, void *buf, size_t len, bool is_write)
{
	struct vm *vm = opaque;
	/* A naturally aligned access of 1, 2, 4 or 8 bytes reaches the device
	 * whole, as on hardware (a device register is written once, with the
	 * width the guest used); anything else goes in the largest aligned
	 * pieces, in address order. */
	for (size_t off = 0; off < len;) {
		unsigned sz = 8;
		while (sz > 1 && (len - off < sz || ((gpa + off) & (sz - 1))))
			sz >>= 1;
		uint64_t v = 0;
		if (is_write) {
			memcpy(&v, (uint8_t *)buf + off, sz);
			BT_TRY(iobus_mmio_write(vm->plat->bus, gpa + off, sz, v));
		} else {
			BT_TRY(iobus_mmio_read(vm->plat->bus, gpa + off, sz, &v));
			memcpy((uint8_t *)buf + off, &v, sz);
		}
		off += sz;
	}
	return BT_OK;
}

/* Device DMA into guest RAM: translated code on the pages written is
 * invalidated before the bytes land. */
static void *dma_map(void *opaque, gpa_t gpa, size_t len, bool write)
{
	struct vm *vm = opaque;
	void *p = guestmem_gpa_to_host(vm->gm, gpa, len);
	if (p && write)
		guestmem_notify_write(vm->gm, gpa, len);
	return p;
}

/* Open the database for this kernel image (refused if it is another's),
 * by the identity boot_load read from the image. */
/* tcdb_set_code_sink: the boot profile's code goes into the code cache's
 * preloaded region, where its blocks run without a copy (tcache_preload;
 * docs/runtime.md "Getting code"); NULL (the database keeps it) if it
 * does not fit. */
static uint8_t *code_sink(void *opaque, size_t len)
{
	struct vm *vm = opaque;
	uint8_t *rw;
	if (tcache_preload(vm->tc, len, &rw) != BT_OK) {
		bt_info(LOG_DB,
			"%s: the boot profile's %zu bytes of code do not fit the code "
			"cache: its blocks are copied in one by one",
			vm->cfg.tcdb, len);
		return NULL;
	}
	return rw;
}

static enum bt_status open_db(struct vm *vm, const struct boot_layout *layout)
{
	/* The image is identified by its build-id when it has one (hashing a
	 * 600 MB vmlinux would cost a third of a second on every boot), by
	 * its sha256 otherwise (boot_load hashed it: hash_image).  Either way
	 * no block runs before its own guest bytes are checked against guest
	 * memory. */
	struct tcdb_expect ex = {.image_name = vm->cfg.kernel};
	/* A bzImage's kernel is compressed: the database is accepted
	 * provisionally and serves nothing until the kernel the decompressor
	 * unpacked shows the database's build-id (vm_ident.c). */
	if (!layout->bzimage && layout->build_id[0])
		ex.build_id = layout->build_id;
	else if (!layout->bzimage)
		ex.sha256 = layout->sha256;
	/* predicted versions are used only if made for this vCPU's CPUID
	 * profile (they are checked against guest memory like every block) */
	ex.cpu_profile_hash = vm->cpu.cpuid.hash;
	unsigned flags = vm->cfg.learn ? TCDB_RDWR : TCDB_RDONLY;
	static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
					      .abi_version = VCPU_ABI_VERSION,
					      .n_exit_kinds = XLAT_NEXIT_KINDS,
					      .n_refusals = XLAT_NREFUSALS};
	BT_TRY(tcdb_open(vm->cfg.tcdb, flags, &want, &ex, &vm->db));
	if (layout->bzimage) {
		struct tcdb_image im;
		BT_TRY(tcdb_get_image(vm->db, &im));
		BT_TRY(vm_ident_init(vm, &im, layout->kernel_version));
	}
	struct tcdb_provenance p;
	BT_TRY(tcdb_get_provenance(vm->db, &p));
	/* translate misses with the database's options, so that a block made
	 * now is byte-identical to one the database would hold; except the
	 * LLVM cross-check, which only refuses blocks and never changes bytes
	 * (--verify-db proves it) and doubles the translation time */
	vm->xopts.flags = p.options_flags & ~(uint32_t)XLAT_OPT_CROSSCHECK;
	if ((vm->xopts.flags & XLAT_OPT_UNDEF_FLAGS) && !xlat_host_undef_flags_ok()) {
		bt_err(LOG_DB,
		       "%s: its translations assume a CPU that computes the flags x86 leaves "
		       "undefined after and/or/xor/test/mul/imul, and this one does not: "
		       "rebuild it on this machine with pretrans build",
		       vm->cfg.tcdb);
		return BT_ERR_UNSUPPORTED;
	}
	size_t n;
	tcdb_set_code_sink(vm->db, code_sink, vm);
	BT_TRY(tcdb_load_index(vm->db, &n));
	bt_info(LOG_DB, "%s: %zu pre-translated blocks, %zu predicted versions", vm->cfg.tcdb, n,
		tcdb_predicted_entries(vm->db));
	return BT_OK;
}

/* --perf-map: perf reads /tmp/perf-PID.map for code it has no file for.
 * Created, never followed through a link nor reused: a file of that name
 * (another process's, or an attacker's link) is an error. */
static enum bt_status open_perf_map(struct vm *vm)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		bt_err(LOG_TC, "--perf-map: cannot create %s: %s (remove it if it is stale)", path,
		       strerror(errno));
		return BT_ERR_IO;
	}
	vm->perf_map_fd = fd;
	tcache_set_perf_map(vm->tc, fd);
	return BT_OK;
}

enum bt_status vm_create(const struct vm_config *cfg, struct vm **out)
{
	enum bt_status s;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return BT_ERR_NOMEM;
	vm->cfg = *cfg;
	if (cfg->count_probes && cfg->tcdb) {
		/* a database's blocks have no counters: the rate would be wrong */
		bt_err(LOG_DB,
		       "%s: --count-probes counts in code translated at run time only: run "
		       "without --tcdb",
		       cfg->tcdb);
		free(vm);
		return BT_ERR_INVALID;
	}
	vm->xopts.flags = XLAT_OPT_EXACT_FAULTS;
	if (xlat_host_undef_flags_ok())
		vm->xopts.flags |= XLAT_OPT_UNDEF_FLAGS;
	vm->started_unix = (int64_t)time(NULL);

	if ((s = guestmem_create(cfg->mem_bytes, &vm->gm)) != BT_OK)
		goto err;

	struct tc_handlers h = {.mem = vm_callout_mem};
	if (!cfg->no_fast_paths) {
		h.mem_fast = vm_callout_mem_fast;
		h.str_fast = vm_string_fast;
	}
	if ((s = tc_vcpu_init(&vm->tcv, &h, vm)) != BT_OK)
		goto err;
	if ((s = mmu_init(&vm->mmu, vm->gm, vm->tcv.abi)) != BT_OK)
		goto err;

	/* the vCPU first: the LAPIC's TSC-deadline timer needs its TSC rate */
	struct cpu_platform cp = {
	    .opaque = vm,
	    .pio_in = plat_pio_in,
	    .pio_out = plat_pio_out,
	    .intr_pending = plat_intr_pending,
	    .intr_ack = plat_intr_ack,
	    .apic_msr = plat_apic_msr,
	    .apic_cr8 = plat_apic_cr8,
	};
	if ((s = vcpu_init(&vm->cpu, vm->tcv.abi, &vm->mmu, &cp, NULL)) != BT_OK)
		goto err;

	struct platform_config pc;
	platform_config_init(&pc);
	pc.tsc_khz = vm->cpu.cpuid.tsc_khz;
	pc.console_in_fd = cfg->console_in_fd;
	pc.console_out_fd = cfg->console_out_fd;
	pc.console_escape = cfg->console_is_tty;
	pc.disk_path = cfg->disk;
	pc.virtio_disk_path = cfg->virtio_disk;
	pc.virtio_disk_read_only = cfg->virtio_disk_read_only;
	pc.dma = (struct dev_dma){.map = dma_map, .opaque = vm};
	pc.ram_bytes = cfg->mem_bytes;
	pc.on_intr = on_intr;
	pc.intr_opaque = vm;
	pc.on_reset = on_reset;
	pc.on_poweroff = on_poweroff;
	pc.on_panic = on_panic;
	pc.reset_opaque = vm;
	if ((s = platform_create(&pc, &vm->plat)) != BT_OK)
		goto err;
	mmu_set_mmio_handler(&vm->mmu, mmio, vm);

	struct boot_config bc = {.kernel_path = cfg->kernel,
				 .initrd_path = cfg->initrd,
				 .cmdline = cfg->cmdline,
				 .hash_image = cfg->tcdb != NULL};
	struct boot_state bs;
	struct boot_layout layout;
	if ((s = boot_load(vm->gm, &bc, &bs, &layout)) != BT_OK)
		goto err;
	/* ACPI tables in the BIOS area (reserved in the e820 map): Linux's
	 * RSDP scan finds them (runtime/dev/acpi.h) */
	uint8_t *acpi_area = guestmem_gpa_to_host(vm->gm, ACPI_TABLES_BASE, ACPI_TABLES_SIZE);
	if (!acpi_area || !acpi_build_tables(acpi_area, ACPI_TABLES_SIZE, ACPI_TABLES_BASE)) {
		s = BT_ERR_INTERNAL;
		goto err;
	}
	/* before the database: its boot profile's code is loaded straight
	 * into the cache (code_sink) */
	if ((s = tcache_create(VM_CODE_CACHE_BYTES, vm->gm, vm->tcv.abi, &vm->tc)) != BT_OK)
		goto err;
	if (cfg->perf_map && (s = open_perf_map(vm)) != BT_OK)
		goto err;
	if (cfg->tcdb && (s = open_db(vm, &layout)) != BT_OK)
		goto err;
	/* where the image lies, to tell module code from it (the counters of
	 * kmod blocks); unknown for a bzImage, whose decompressor picks the
	 * kernel's place: 0..0, no block counts as a module's */
	vm->kernel_start = layout.bzimage ? 0 : layout.kernel_start;
	vm->kernel_end = layout.bzimage ? 0 : layout.kernel_end;
	if (vm->db && (s = vm_kmod_load(vm)) != BT_OK)
		goto err;
	if (vm->db && (s = vm_udb_load(vm)) != BT_OK)
		goto err;
	if ((s = cpu_load_boot_state(&vm->cpu, &bs)) != BT_OK)
		goto err;

	if (cfg->count_probes)
		vm->xopts.flags |= XLAT_OPT_COUNT_PROBES;
	if ((s = xlat_create(&vm->xopts, &vm->xlat)) != BT_OK)
		goto err;
	struct xlat_options uopts = vm->xopts;
	uopts.flags |= XLAT_OPT_USER;
	if ((s = xlat_create(&uopts, &vm->xlat_user)) != BT_OK)
		goto err;
	if ((s = ureloc_create(VM_URELOC_BUDGET, &vm->ureloc)) != BT_OK)
		goto err;
	uopts.flags |= XLAT_OPT_STEP;
	if ((s = xlat_create(&uopts, &vm->xlat_step)) != BT_OK)
		goto err;
	struct xlat_options kopts = vm->xopts;
	kopts.flags |= XLAT_OPT_STEP;
	if ((s = xlat_create(&kopts, &vm->xlat_kstep)) != BT_OK)
		goto err;
	vm_policy_init(&vm->policy, (enum vm_user_cfg)cfg->user_mode, NULL);
	if ((s = vm_split_init(vm)) != BT_OK)
		goto err;
	guestmem_set_code_write_hook(vm->gm, vm_code_write, vm);
	mmu_set_flush_hook(&vm->mmu, vm_mmu_flush, vm);
	/* --user=direct runs everything on the host, as documented; the other
	 * modes keep sensitive code pages from it (user_scan.h) */
	struct user_config uc = {
	    .gm = vm->gm,
	    .mmu = &vm->mmu,
	    .abi = vm->tcv.abi,
	    .scan_mask = cfg->user_mode == VM_USER_DIRECT ? 0 : USER_SCAN_TRIGGER,
	    .around_pages = cfg->fault_around,
	    /* no stub ever runs with --user=translated: no spares */
	    .pool = cfg->user_mode == VM_USER_TRANSLATED ? 0 : cfg->stub_pool,
	};
	if ((s = user_create(&uc, &vm->user)) != BT_OK)
		goto err;
	*out = vm;
	return BT_OK;
err:
	vm_destroy(vm);
	return s;
}

double vm_ticks_to_ns(const struct vm *vm, uint64_t ticks)
{
	uint64_t dn = bt_now_ns() - vm->clock_t0_ns, dt = vm_ticks() - vm->clock_t0_ticks;
	return dt ? (double)ticks * (double)dn / (double)dt : 0.0;
}

enum bt_status vm_run(struct vm *vm, struct vm_result *res)
{
	enum bt_status s = tc_vcpu_activate(&vm->tcv);
	if (s != BT_OK)
		return s;
	vm->clock_t0_ns = bt_now_ns();
	vm->clock_t0_ticks = vm_ticks();
	if (vm->cfg.timeout_s > 0)
		vm->deadline_ns = vm->clock_t0_ns + (uint64_t)(vm->cfg.timeout_s * 1e9);
	if ((s = vm_signals_install(vm)) != BT_OK) {
		bt_err(LOG_CORE, "cannot install signal handlers and the host timer");
		return s;
	}
	if (vm->cfg.sandbox) {
		/* everything that opens files or needs privileges is done: the
		 * guest's RAM, devices, database, stub image, host timer.  The
		 * libc's time zone is read now (no open() later). */
		tzset();
		struct sandbox_config sc = {
		    .db_write = vm->cfg.learn,
		    .stub_exec_fd = USTUB_MEMFD + 1,
		    .tty_fd = vm->cfg.console_is_tty ? vm->cfg.console_in_fd : -1,
		};
		if ((s = sandbox_enter(&sc)) != BT_OK) {
			vm_signals_remove(vm);
			bt_err(LOG_CORE, "cannot enter the sandbox (--no-sandbox runs without)");
			return s;
		}
	}
	s = vm_loop(vm);
	vm_signals_remove(vm);
	*res = vm->res;
	return s;
}

enum bt_status vm_finish(struct vm *vm)
{
	if (!vm->db)
		return BT_OK;
	enum bt_status s = BT_OK;
	if (vm->cfg.learn && vm->ident.state != VM_IDENT_ON) {
		/* a bzImage whose kernel was not identified as the database's
		 * (said when it was decided, vm_ident.c) or never started */
		bt_err(LOG_DB,
		       "%s: no learned blocks written: the kernel %s unpacked was not identified "
		       "as the database's image",
		       vm->cfg.tcdb, vm->cfg.kernel);
	} else if (vm->cfg.learn && tcdb_untrusted(vm->db)) {
		/* a row failed its authentication (logged then): the file is not
		 * ours to add to */
		bt_err(LOG_DB,
		       "%s: no learned blocks written: the database failed its "
		       "authentication",
		       vm->cfg.tcdb);
	} else if (vm->cfg.learn) {
		s = vm_learn(vm);
		if (s != BT_OK) {
			bt_err(LOG_DB, "%s: writing learned blocks failed: %s", vm->cfg.tcdb,
			       bt_status_str(s));
			vm->st.learned = 0; /* the transaction rolled back: none were stored */
		}
		struct tcdb_run_stats rs = {
		    .started = vm->started_unix,
		    .ended = (int64_t)time(NULL),
		    .blocks_used = vm->st.db_used,
		    .blocks_stale = vm->st.db_stale,
		    .misses = vm->st.translated,
		    .blocks_learned = vm->st.learned,
		};
		snprintf(rs.boot_id, sizeof(rs.boot_id), "%lld-%d", (long long)vm->started_unix,
			 (int)getpid());
		enum bt_status s2 = tcdb_record_run(vm->db, &rs);
		if (s == BT_OK)
			s = s2;
	}
	return s;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	user_destroy(vm->user);
	if (vm->tc)
		tcache_destroy(vm->tc);
	if (vm->perf_map_fd > 0)
		close(vm->perf_map_fd);
	if (vm->xlat)
		xlat_destroy(vm->xlat);
	if (vm->xlat_user)
		xlat_destroy(vm->xlat_user);
	ureloc_destroy(vm->ureloc);
	if (vm->xlat_step)
		xlat_destroy(vm->xlat_step);
	if (vm->xlat_kstep)
		xlat_destroy(vm->xlat_kstep);
	vm_split_fini(vm);
	if (vm->cpu.abi)
		vcpu_fini(&vm->cpu);
	if (vm->plat)
		platform_destroy(vm->plat);
	if (vm->tcv.abi) {
		mmu_fini(&vm->mmu);
		tc_vcpu_fini(&vm->tcv);
	}
	if (vm->gm)
		guestmem_destroy(vm->gm);
	vm_kmod_free(vm);
	vm_udb_free(vm);
	if (vm->db)
		tcdb_close(vm->db);
	free(vm);
}
