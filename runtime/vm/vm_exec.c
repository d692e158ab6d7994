/*
 * The execution loop: find the block for the guest RIP, chain the previous
 * exit to it, run it, and handle whatever made translated code stop.
 *
 *   loop:  housekeeping (devices, timeout, SIGINT/SIGTERM) when the host
 *          timer or a stop signal asked (VCPU_IRQ_FORCE; guest user code
 *          leaves its stub for it within one stop, user.h)
 *          interrupts at the block boundary   [cpu_check_interrupts]
 *          hlt: sleep until a device deadline or console input
 *          block = cache | database | translator   [vm_block_get]
 *          chain the previous direct exit to it    [tcache_chain]
 *          run it                                  [tc_run]
 *          exit: direct/indirect -> next RIP; PRIV -> emulate one
 *          instruction [cpu_step_priv]; fault -> deliver it through the
 *          guest IDT [cpu_deliver*]
 *
 * Host signals raised by translated code itself (a guest divide error is a
 * host SIGFPE) come back here as a fault with a vector (vm_signal.c); a
 * fault reported by a call-out comes back with vm->co_fault.  Either way
 * the guest registers are restored from the pc map and the exception is
 * raised on the vCPU [vm_raise_fault, cpu_deliver].
 */
#include <poll.h>

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "runtime/user/ustub.h"
#include "runtime/vm/vm_int.h"

#include <string.h>

/* Soft-MMU slow path of translated code (struct tc_handlers.mem). */
/*
 * A store from translated code to device memory: the call-out cannot
 * complete it (translated code does the store itself, after the call-out
 * returns the host address), so it hands out bounce[] and the bytes reach
 * the device at the runtime's very next entry -- the next call-out of any
 * kind, or the return from translated code (an exit, an interrupt check,
 * a fault).  The store instruction is the first thing translated code runs
 * after its call-out returns, and every access to device memory takes a
 * call-out (no TLB entry maps MMIO), so the device sees the accesses in
 * program order.  For an instruction that reads what it writes (or, xchg,
 * add to device memory) bounce[] first holds the device's value, as the
 * read half of the instruction on hardware; a plain store reads nothing.
 */
static void mmio_store_flush(struct vm *vm)
{
	if (!vm->mmio_store.pending)
		return;
	struct mmu_fault f = {0};
	vm->mmio_store.pending = false;
	/* the translation was checked when the bounce was handed out */
	if (mmu_write(&vm->mmu, vm->mmio_store.va, vm->bounce, vm->mmio_store.size, 0, &f) !=
		BT_OK ||
	    f.pending)
		bt_err(LOG_TC, "a store of %u bytes to device memory at %#llx could not complete",
		       vm->mmio_store.size, (unsigned long long)vm->mmio_store.va);
}

/* The guest RIP of the instruction whose call-out is running. */
static bool callout_rip(struct vm *vm, gva_t *rip)
{
	const uint8_t *pc = (const uint8_t *)(uintptr_t)vm->tcv.abi->exit_host_pc - 1;
	struct tcache_block *b = tcache_find_host(vm->tc, pc);
	uint32_t spilled;
	return b && xlat_pcmap_lookup(b->blk.pcmap, b->blk.pcmap_len, b->blk.guest_start,
				      (uint32_t)(pc - b->blk.code), rip, &spilled) == BT_OK;
}

/* Hand out bounce[] for a store of size bytes to device memory at va (0),
 * or say why not (1, with co_fault or co_unsupported set). */
static int mmio_store_begin(struct vm *vm, gva_t va, uint32_t size)
{
	gva_t rip;
	bool reads = false;
	struct mmu_fault f = {0};
	if (size > sizeof(vm->bounce) || !callout_rip(vm, &rip) ||
	    cpu_insn_reads_dest(&vm->cpu, rip, &reads) != BT_OK)
		return -1;
	memset(vm->bounce, 0, size);
	if (reads) {
		if (mmu_read(&vm->mmu, va, vm->bounce, size, 0, &f) != BT_OK)
			return -1;
		if (f.pending) {
			vm->co_fault = f;
			return 1;
		}
	}
	vm->mmio_store.pending = true;
	vm->mmio_store.va = va;
	vm->mmio_store.size = size;
	return 0;
}

int vm_callout_mem(struct tc_vcpu *t, gva_t va, uint32_t size, bool write, uint8_t **host)
{
	struct vm *vm = t->opaque;
	enum mmu_host_kind kind;
	struct mmu_fault f;
	unsigned acc = write ? MMU_ACC_WRITE : MMU_ACC_READ;

	vm_fx_sync(vm);	      /* the access's privilege level, after a fast syscall */
	mmio_store_flush(vm); /* the previous instruction's, before anything else */
	/* what the probe's TLB slot held, before the access refills it */
	enum vm_miss miss =
	    t->probe_miss ? vm_probe_miss_kind(vm, vm->cpu.cpl, va, size, write) : VM_NMISS;
	enum bt_status s = mmu_host_access(&vm->mmu, va, size, acc, host, &kind, &f);
	if (miss != VM_NMISS) {
		if (s == BT_OK && !f.pending && kind == MMU_HOST_MMIO && miss != VM_MISS_CROSS)
			miss = VM_MISS_MMIO;
		vm->st.probe_miss[miss]++;
	}
	if (s != BT_OK) {
		vm->co_unsupported = true;
		return 1;
	}
	if (f.pending) {
		vm->co_fault = f;
		return 1;
	}
	if (*host)
		return 0;
	/* a chunk of a rep movs/stos that is not all RAM: nothing done yet,
	 * the string call-out goes element by element (tc.h) */
	if (t->str_chunk)
		return TC_MEM_NOT_RAM;
	/* Across two non-adjacent RAM pages: both side by side in a window */
	if (kind == MMU_HOST_SPLIT) {
		gpa_t g0, g1;
		bool m0 = false, m1 = false;
		gva_t last = va + size - 1;
		if (mmu_translate(&vm->mmu, va, acc | MMU_ACC_PROBE, &g0, &m0, &f) == BT_OK &&
		    !f.pending &&
		    mmu_translate(&vm->mmu, last, acc | MMU_ACC_PROBE, &g1, &m1, &f) == BT_OK &&
		    !f.pending && !m0 && !m1 &&
		    (*host = vm_split_host(vm, va, size, g0 & GUEST_PAGE_MASK, g1 & GUEST_PAGE_MASK,
					   write)) != NULL)
			return 0;
	}
	/* MMIO (any byte of the access is not RAM, a split RAM/device
	 * access included: test_vm test_split_store): a load is served from
	 * a bounce buffer, a store goes through one (mmio_store_begin); so
	 * does a store across two RAM pages no window could map.  Both pages'
	 * translations were checked above, so a fault on the second page
	 * wrote nothing, and mmu_write puts each byte where it belongs */
	if (write && (kind == MMU_HOST_MMIO || kind == MMU_HOST_SPLIT)) {
		int r = mmio_store_begin(vm, va, size);
		if (r == 0)
			*host = vm->bounce;
		if (r >= 0)
			return r;
		goto unsupported;
	}
	if (!write && size <= sizeof(vm->bounce)) {
		if (mmu_read(&vm->mmu, va, vm->bounce, size, 0, &f) != BT_OK)
			goto unsupported;
		if (f.pending) {
			vm->co_fault = f;
			return 1;
		}
		*host = vm->bounce;
		return 0;
	}
unsupported:
	bt_err(LOG_TC,
	       "translated code stored %u bytes at %#llx, which is %s: not supported yet "
	       "(see docs/runtime.md, known limits)",
	       size, (unsigned long long)va, kind == MMU_HOST_MMIO ? "device memory" : "split");
	vm->co_unsupported = true;
	return 1;
}

static void stop(struct vm *vm, enum vm_stop why, int status)
{
	vm->res.stop = why;
	vm->res.exit_status = status;
	vm->res.rip = vm->tcv.abi->rip;
}

/* Devices, console input, timeout: when the host timer asked, or halted. */
static void housekeeping(struct vm *vm)
{
	uint64_t t0 = vm_ticks();
	__atomic_and_fetch(&vm->tcv.abi->irq, (uint16_t)~VCPU_IRQ_FORCE, __ATOMIC_RELAXED);
	vm->ns_per_tick = vm_ticks_to_ns(vm, 1000000) / 1e6; /* for the per-stay costs */
	platform_poll(vm->plat);
	cpu_update_irq_request(&vm->cpu);
	vm->st.ticks[VM_PH_DEVICES] += vm_ticks() - t0;
}

/*
 * How long a halted vCPU sleeps: until the next device deadline, to the
 * nanosecond (the guest's timer interrupt is due then; a sleep rounded up
 * to whole milliseconds woke Linux's one-shot timers up to a millisecond
 * late, ~0.5 ms a hlt: docs/runtime.md "Idle"), 0 when it is already due,
 * at most 10 ms (console input and a stop signal wake it sooner; the 1 ms
 * host timer's signal is blocked meanwhile, vm_signal.c contract 5).
 */
uint64_t vm_until_deadline_ns(uint64_t next, uint64_t now, uint64_t max)
{
	if (next == UINT64_MAX)
		return max;
	return next > now ? BT_MIN(next - now, max) : 0;
}

/* hlt: sleep until the next device deadline or console input. */
static void idle(struct vm *vm)
{
	uint64_t t0 = vm_ticks();
	uint64_t next = platform_next_deadline(vm->plat);
	uint64_t ns = vm_until_deadline_ns(next, vclock_now_ns(vm->plat->clock), VM_IDLE_MAX_NS);
	/* time the guest would sleep anyway: start a spare user stub */
	if (user_idle(vm->user, ns))
		ns = vm_until_deadline_ns(next, vclock_now_ns(vm->plat->clock), VM_IDLE_MAX_NS);
	/* the console only while COM1 still reads it: at its end of file
	 * (stdin from /dev/null) or with a full FIFO it is readable at once,
	 * and the halted guest would spin instead of sleeping */
	int fd = uart_rx_wait_fd(vm->plat->com1);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};
	if (ns > 0) {
		ppoll(&pfd, fd >= 0 ? 1 : 0, &ts, vm->have_timer ? &vm->idle_mask : NULL);
		uint64_t woke = vclock_now_ns(vm->plat->clock);
		if (next != UINT64_MAX && woke > next) { /* how late, for --stats */
			vm->st.idle_waits++;
			vm->st.idle_late_ns += woke - next;
		}
	}
	vm->st.halts++;
	vm->st.ticks[VM_PH_IDLE] += vm_ticks() - t0;
	housekeeping(vm);
}

static bool outcome(struct vm *vm, enum bt_status s, enum cpu_outcome out)
{
	if (s == BT_ERR_GUEST || out == CPU_OUT_STOP || vm->cpu.stop) {
		if (vm->cpu.stop == CPU_STOP_HALT_IF0)
			stop(vm, VM_STOP_HALTED, VM_EXIT_STOPPED);
		else
			stop(vm, VM_STOP_TRIPLE_FAULT, VM_EXIT_STOPPED);
		return false;
	}
	if (s != BT_OK) {
		bt_err(LOG_CPU, "vCPU emulation failed at rip %#llx: %s",
		       (unsigned long long)vm->tcv.abi->rip, bt_status_str(s));
		stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
		return false;
	}
	return true; /* CPU_OUT_USER: the loop sees CPL 3 and runs the stub */
}

/* ------------------------------------------------------------------ */
/* User-mode stays and the mode transitions (vm_policy.h)               */

/* 32/16-bit user code the host can run as the guest means it: a code
 * segment from the GDT (the host's GDT has the same flat __USER32_CS),
 * base 0, limit 4 GiB.  An LDT segment or one with a base or a smaller
 * limit cannot run on the host. */
static bool compat_host_runnable(const struct vcpu *v)
{
	const struct cpu_seg *cs = &v->seg[CPU_CS];
	return !(cs->sel & 4) && cs->base == 0 && cs->limit == 0xffffffffu;
}

/* Translated code reads segment selectors from vcpu.sel[] (`mov reg,
 * sreg` inline, XC_SEGREAD) and the TSC offset from vcpu.tsc_offset (kernel
 * rdtsc inline, XC_RDTSC) and never changes them: every change happens in
 * the vCPU's emulation, outside translated code. */
static void sync_abi_copies(struct vcpu *v)
{
	for (unsigned i = 0; i < CPU_NSREG; i++)
		v->abi->sel[i] = v->seg[i].sel;
	v->abi->tsc_offset = v->msr.tsc_offset; /* inline rdtsc (XC_RDTSC) */
}

/* Run block b's translated code once; its exit is in the ABI area (or a
 * fault, rc != TC_EXIT_BLOCK). */
static int enter_block(struct vm *vm, struct tcache_block *b)
{
	uint64_t t0 = vm_ticks();
	vm->co_unsupported = false;
	vm_host_signal_clear();
	sync_abi_copies(&vm->cpu);
	int rc = tc_run(&vm->tcv, b->blk.code);
	vm_fx_sync(vm);	      /* before anything reads the CPL or segments */
	mmio_store_flush(vm); /* a store translated code made to device memory */
	vm->st.ticks[VM_PH_RUN] += vm_ticks() - t0;
	return rc;
}

static bool handle_fault(struct vm *vm, int vector);

/* Translated code left through a fault (a call-out's or a host signal's). */
static bool left_by_fault(struct vm *vm)
{
	int vec = vm_host_signal_take();
	if (vec >= 0)
		vm->st.host_signals++;
	return handle_fault(vm, vec);
}

/* Kernel code with TF (a sysenter from user code that set it) or NT set:
 * the inline pushf/popf of translated kernel code do not keep either. */
static bool kernel_wants_step(const struct vcpu *v)
{
	return (cpu_rflags(v) & (CPU_RFLAGS_TF | CPU_RFLAGS_NT)) != 0;
}

/* Direct user mode: run guest user code in its stub until the next event,
 * and hand that event to the guest kernel as the hardware would. */
static bool run_user_direct(struct vm *vm)
{
	struct vcpu *v = &vm->cpu;
	struct user_event ev;
	enum cpu_outcome out = CPU_OUT_CONTINUE;
	uint64_t t0 = vm_ticks();
	/* the host timer leaves the stub running until the next device
	 * deadline (vm_signal.c contract 6), and after a stay that lasted
	 * until its deadline, fires only then (contract 7) */
	uint64_t run = vm_until_deadline_ns(platform_next_deadline(vm->plat),
					    vclock_now_ns(vm->plat->clock), VM_DIRECT_KICK_MAX_NS);
	uint64_t at = bt_now_ns() + run;
	vm->kick_at_ns = at;
	if (vm->stay_kicked && run > VM_HOST_TICK_NS)
		vm_timer_at_kick(vm);
	enum bt_status s = user_enter(vm->user, v->cr3, v->seg[CPU_CS].sel, cpu_rflags(v), &ev);
	vm->kick_at_ns = 0;
	vm->stay_kicked = s == BT_OK && ev.kind == USER_EV_KICK && bt_now_ns() >= at;
	if (vm->timer_at_kick && !vm->stay_kicked)
		vm_timer_periodic(vm); /* the stay ended early: the 1 ms tick again */
	vm->st.ticks[VM_PH_USER] += vm_ticks() - t0;
	if (s != BT_OK) {
		bt_err(LOG_USER, "guest user code at %#llx cannot continue: %s",
		       (unsigned long long)vm->tcv.abi->rip, bt_status_str(s));
		stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
		return false;
	}
	cpu_set_rflags(v, ev.rflags);
	switch (ev.kind) {
	case USER_EV_SYSCALL:
		s = cpu_syscall_from_user(v, ev.next_rip, &out);
		break;
	case USER_EV_EXCEPTION:
		/* A #GP or #UD the host raised may not be the guest's answer:
		 * the host CPU knows nothing of the guest's IOPL and I/O
		 * bitmap, descriptor tables, CR4 or CPUID.  Where translation
		 * can run the instruction, run it again translated (the vCPU
		 * decides exactly) and keep the address space translated for
		 * a while (the fidelity trigger, vm_policy.h). */
		if (!ev.trap && (ev.vector == CPU_EXC_GP || ev.vector == CPU_EXC_UD) &&
		    vm->policy.cfg != VM_USER_DIRECT && (v->seg[CPU_CS].ar & CPU_AR_L)) {
			vm->st.user_retries++;
			vm->stay.retried = true;
			vm_policy_need_translated(&vm->policy, vm->stay.cr3, 0);
			vm_stay_switch(vm, VM_UMODE_TRANSLATED);
			return true;
		}
		if (ev.vector == CPU_EXC_PF)
			s = cpu_deliver_pf(v, ev.addr, ev.error | MMU_PF_U);
		else
			s = cpu_deliver(v, ev.vector, ev.trap ? CPU_EV_TRAP : CPU_EV_FAULT,
					ev.has_error, ev.error);
		break;
	case USER_EV_SOFTINT:
		s = cpu_deliver(v, ev.vector, CPU_EV_SOFTWARE, false, 0);
		break;
	case USER_EV_KICK:
		break; /* the host timer: housekeeping and interrupts at the loop's top */
	case USER_EV_SENSITIVE:
		/* the code about to run would see the host instead of the vCPU
		 * (its CPU number, CPUID, XSAVE layout...), or may change after
		 * the scan: nothing of it ran; the vCPU runs it translated, and
		 * the address space stays translated a short while (the page
		 * stays unexecutable in the stub: a later fetch from it comes
		 * back here) */
		vm->st.user_sensitive++;
		vm->stay.retried = true;
		vm_policy_need_translated(&vm->policy, vm->stay.cr3,
					  vm->policy.params.sensitive_stays);
		vm_stay_switch(vm, VM_UMODE_TRANSLATED);
		return true;
	}
	return outcome(vm, s, out);
}

/* Map a host PC inside translated code back to the guest instruction and
 * put the spilled guest registers back. */
static bool restore_guest_state(struct vm *vm)
{
	struct vcpu_abi *a = vm->tcv.abi;
	const uint8_t *pc = (const uint8_t *)(uintptr_t)a->exit_host_pc - 1;
	struct tcache_block *b = tcache_find_host(vm->tc, pc);
	gva_t rip;
	uint32_t spilled;
	if (!b || xlat_pcmap_lookup(b->blk.pcmap, b->blk.pcmap_len, b->blk.guest_start,
				    (uint32_t)(pc - b->blk.code), &rip, &spilled) != BT_OK) {
		bt_err(LOG_TC, "a fault in translated code at host %p has no guest RIP",
		       (void *)pc);
		return false;
	}
	tc_restore_spills(&vm->tcv, rip, spilled);
	return true;
}

/*
 * The one translation of a struct mmu_fault (from the soft-MMU, a call-out
 * or the block lookup) into a guest exception: #PF with CR2 and its error
 * code; #UD (an undecodable instruction at RIP) without an error code;
 * anything else (#GP for a non-canonical address) with error code 0.
 */
static enum bt_status vm_raise_fault(struct vm *vm, const struct mmu_fault *f)
{
	switch (f->vector) {
	case MMU_VEC_PF:
		return cpu_deliver_pf(&vm->cpu, f->addr, f->error_code);
	case CPU_EXC_UD:
		return cpu_deliver(&vm->cpu, CPU_EXC_UD, CPU_EV_FAULT, false, 0);
	default:
		return cpu_deliver(&vm->cpu, f->vector, CPU_EV_FAULT, true, 0);
	}
}

static bool handle_fault(struct vm *vm, int vector)
{
	enum cpu_outcome out = CPU_OUT_CONTINUE;
	enum bt_status s;
	vm->st.faults++;
	if (vm->co_unsupported) {
		stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
		return false;
	}
	if (!restore_guest_state(vm)) {
		stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
		return false;
	}
	if (vector >= 0) {
		if (vector == VM_HOST_SIGNAL_BUG) {
			bt_err(LOG_TC, "translated code at guest %#llx touched host memory (bug)",
			       (unsigned long long)vm->tcv.abi->rip);
			stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
			return false;
		}
		if (vector == VM_HOST_SIGNAL_RSP && vm->cpu.cpl == 3) {
			/* Translated user code runs on the guest's stack, which
			 * a non-canonical %rsp makes impossible; the host CPU
			 * can run the instruction: let it, directly, and raise
			 * what it raises (#SS, #GP) through the guest. */
			vm->policy.st.fallbacks++;
			vm_stay_switch(vm, VM_UMODE_DIRECT);
			return true;
		}
		if (vector == VM_HOST_SIGNAL_RSP) {
			bt_err(LOG_TC,
			       "the guest's stack pointer %#llx at guest %#llx is not canonical: "
			       "translated code runs on the guest's stack, so btvm cannot go on "
			       "(not supported; the VM stops)",
			       (unsigned long long)vm->tcv.abi->gpr[4],
			       (unsigned long long)vm->tcv.abi->rip);
			stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
			return false;
		}
		/* #GP carries an error code (0 for these host-raised ones) */
		s = cpu_deliver(&vm->cpu, (uint8_t)vector, CPU_EV_FAULT, vector == CPU_EXC_GP, 0);
	} else {
		s = vm_raise_fault(vm, &vm->co_fault);
	}
	return outcome(vm, s, out);
}

/*
 * The block that exited: its exit record gives the target of a direct or
 * PRIV exit (the stubs do not store it, docs/xlat.md "Exits and
 * chaining"), and the dispatcher chains its direct exits.  exit_block is
 * its guest start; a run stays in one mode and installs nothing, so
 *  - the block entered (`ran`) is it when it has that address and mode
 *    (step blocks never chain: always them);
 *  - else the live block of that mode at that address (user blocks: in
 *    this address space);
 *  - else it was killed while it ran (it wrote its own bytes, in a call-out
 *    whose resume address, exit_host_pc, lies in its code): that dead block.
 */
static struct tcache_block *exiting_block(struct vm *vm, struct tcache_block *ran)
{
	gva_t va = vm->tcv.abi->exit_block;
	bool user = vm->cpu.cpl == 3;
	if (ran && ran->blk.guest_start == va && (bool)ran->user == user)
		return ran;
	struct tcache_block *b = user ? vm_user_block_at(vm, va) : tcache_lookup(vm->tc, va);
	if (b)
		return b;
	b = tcache_find_host(vm->tc, (const void *)(uintptr_t)vm->tcv.abi->exit_host_pc);
	return b && b->dead && b->blk.guest_start == va && (bool)b->user == user ? b : NULL;
}

/* The decode cache slot of the PRIV instruction at RIP ending block b,
 * the one that exited (NULL: no such block, emulate from a fresh fetch). */
static struct vm_priv_slot *priv_slot(struct vm *vm, struct tcache_block *b)
{
	gva_t rip = vm->tcv.abi->rip;
	if (!b || b->dead || rip < b->blk.guest_start ||
	    rip - b->blk.guest_start >= b->blk.guest_len)
		return NULL;
	uintptr_t h = (uintptr_t)b >> 6;
	struct vm_priv_slot *c = &vm->priv[(h ^ (h >> 8) ^ rip) % VM_PRIV_SLOTS];
	uint64_t gen = tcache_generation(vm->tc);
	if (c->b != b || c->gen != gen || c->rip != rip) {
		c->b = b;
		c->gen = gen;
		c->rip = rip;
		c->valid = false;
	}
	return c;
}

static bool handle_exit(struct vm *vm, struct tcache_block *ran)
{
	struct vcpu_abi *a = vm->tcv.abi;
	unsigned kind = VCPU_EXIT_KIND(a->exit_info), idx = VCPU_EXIT_INDEX(a->exit_info);
	enum cpu_outcome out = CPU_OUT_CONTINUE;

	if (kind < XLAT_NEXIT_KINDS)
		vm->st.exits[kind]++;
	/* the target: an IRQ exit's is the block start (nothing of the block
	 * ran), an indirect one's the code stored, a direct or PRIV exit's is
	 * in the exiting block's exit record (its stub stores none) */
	struct tcache_block *from = NULL;
	if (kind == XLAT_EXIT_IRQ) {
		a->exit_target = a->exit_block;
	} else if (kind != XLAT_EXIT_INDIRECT && kind != XLAT_EXIT_RET) {
		from = exiting_block(vm, ran);
		if (!from || idx >= from->blk.n_exits || from->blk.exits[idx].kind != kind) {
			bt_err(LOG_TC,
			       "block %#llx left through exit %u (kind %u), which the code cache "
			       "does not know (internal error; the VM stops)",
			       (unsigned long long)a->exit_block, idx, kind);
			stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
			return false;
		}
		a->exit_target = from->blk.exits[idx].target;
	}
	a->rip = a->exit_target;
	vm->prev = NULL;
	switch (kind) {
	case XLAT_EXIT_JMP:
	case XLAT_EXIT_JCC_TAKEN:
	case XLAT_EXIT_JCC_FALL:
	case XLAT_EXIT_CALL:
	case XLAT_EXIT_FALL:
		if (!from->dead) {
			vm->prev = from;
			vm->prev_exit = idx;
		}
		return true;
	case XLAT_EXIT_INDIRECT:
	case XLAT_EXIT_RET:
	case XLAT_EXIT_IRQ:
		return true;
	case XLAT_EXIT_PRIV: {
		uint64_t t0 = vm_ticks();
		if (vm->cpu.cpl == 3 && (a->exit_info & VCPU_EXIT_SYSCALL)) {
			/* the hot one in translated user mode: the exit stub said
			 * so, no fetch and no decoder */
			enum bt_status s = cpu_syscall_from_user(&vm->cpu, a->rip + 2, &out);
			vm->st.ticks[VM_PH_EMULATE] += vm_ticks() - t0;
			return outcome(vm, s, out);
		}
		/* decoded once per block (the slot), then: an instruction that
		 * reads or writes x87/SSE state (the translator's fact table:
		 * fxsave, xsave, clts...) first gets the FPU state of guest user
		 * code back from its stub (user_fpu_sync); the ones on every
		 * syscall and interrupt path do not touch it */
		struct vm_priv_slot *c = priv_slot(vm, from);
		struct cpu_insn one;
		bool one_valid = false;
		struct cpu_insn *insn = c ? &c->insn : &one;
		bool *valid = c ? &c->valid : &one_valid;
		enum bt_status s = cpu_priv_decode(&vm->cpu, insn, valid, &out);
		if (s == BT_OK && *valid && out == CPU_OUT_CONTINUE) {
			if (user_fpu_pending(vm->user) && cpu_insn_touches_fpu(insn) &&
			    user_fpu_sync(vm->user) != BT_OK) {
				stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
				return false;
			}
			s = cpu_step_priv_cached(&vm->cpu, insn, valid, &out);
		}
		vm->st.ticks[VM_PH_EMULATE] += vm_ticks() - t0;
		return outcome(vm, s, out);
	}
	default:
		bt_err(LOG_TC, "block %#llx left through an unknown exit kind %u",
		       (unsigned long long)(ran ? ran->blk.guest_start : 0), kind);
		stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
		return false;
	}
}

/*
 * Direct mode cannot hide the host's CPUID from user code (this host has no
 * CPUID faulting), so a program that ran `cpuid` directly may use AVX or
 * another extension the vCPU does not advertise, and the translator
 * refuses it (#UD on the vCPU).  With the adaptive policy such code runs
 * direct, as the program expects from what it was shown; the host raises
 * #UD itself if it lacks the extension too.  Not after a direct-mode fault
 * was re-run translated in this stay (that was the host's #UD already),
 * and not with --user=translated, where user code only ever sees the
 * vCPU's CPUID.
 */
static bool host_feature_fallback(struct vm *vm, const struct mmu_fault *f)
{
	if (f->vector != CPU_EXC_UD || !vm->xlat_not_advertised ||
	    vm->policy.cfg != VM_USER_ADAPTIVE || vm->stay.retried)
		return false;
	vm->st.user_host_features++;
	vm->policy.st.fallbacks++;
	vm_stay_switch(vm, VM_UMODE_DIRECT);
	return true;
}

/* A direct exit (jmp, jcc, call, fall-through) or an indirect one that
 * missed the IBL table: the next block follows at once, in the same mode,
 * without the outer loop's checks (the next block's entry check sees
 * interrupts, the host timer and stop requests). */
static bool exit_is_flow(const struct vcpu_abi *a)
{
	switch (VCPU_EXIT_KIND(a->exit_info)) {
	case XLAT_EXIT_JMP:
	case XLAT_EXIT_JCC_TAKEN:
	case XLAT_EXIT_JCC_FALL:
	case XLAT_EXIT_CALL:
	case XLAT_EXIT_FALL:
	case XLAT_EXIT_INDIRECT:
	case XLAT_EXIT_RET:
		return true;
	default:
		return false;
	}
}

/*
 * The inner loop: find -> chain -> run translated blocks of one mode
 * (kernel, or user with XLAT_OPT_USER) until an exit that needs the outer
 * loop (PRIV, IRQ, a fault, a mode change).  false: the VM stopped.
 */
static bool run_translated(struct vm *vm, bool user)
{
	struct vcpu_abi *a = vm->tcv.abi;
	for (;;) {
		struct mmu_fault f;
		uint64_t gen = tcache_generation(vm->tc);
		struct tcache_block *b =
		    user ? vm_block_get_user(vm, a->rip, &f) : vm_block_get(vm, a->rip, &f);
		if (!b) {
			if (f.pending && user && host_feature_fallback(vm, &f))
				return true;
			if (f.pending)
				return outcome(vm, vm_raise_fault(vm, &f), CPU_OUT_CONTINUE);
			stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
			return false;
		}
		if (tcache_generation(vm->tc) != gen)
			vm->prev = NULL; /* the cache was flushed under us */
		if (vm->prev && !vm->prev->dead)
			tcache_chain(vm->tc, vm->prev, vm->prev_exit, b);
		vm->prev = NULL;
		if (user || b->map_epoch == vm->map_epoch)
			tcache_ibl_insert(vm->tc, b);
		b->execs++;

		if (enter_block(vm, b) != TC_EXIT_BLOCK)
			return left_by_fault(vm);
		bool flow = exit_is_flow(a);
		if (!handle_exit(vm, b))
			return false;
		/* a fast system call moved to the other privilege level: the
		 * outer loop picks its state */
		if (!flow || (vm->cpu.cpl == 3) != user)
			return true;
	}
}

/*
 * Translated code one instruction a block (XLAT_OPT_STEP: no chaining, no
 * IBL, every exit back here): user code with TF or AC (wants_step), kernel
 * code with TF or NT (kernel_wants_step: after a sysenter, which masks
 * neither, until the kernel's popf clears them).  So that
 *   - alignment checking sees every user data access before it happens
 *     (cpu_check_alignment: #AC(0) as a fault, nothing done);
 *   - a single-step #DB follows every instruction that completed with TF
 *     set at its start, a rep string instruction after each iteration
 *     (str_single), as on hardware;
 *   - pushf/popf see and change the whole RFLAGS (they are PRIV exits).
 * An instruction the vCPU emulates (a PRIV exit: popf, syscall, iret...)
 * raises its own #DB (cpu_emulate), a fault or an interrupt check none.
 * A kernel block is translated for this one run and killed after it.
 */
static bool run_step(struct vm *vm)
{
	struct vcpu *v = &vm->cpu;
	struct vcpu_abi *a = vm->tcv.abi;
	enum cpu_outcome out = CPU_OUT_CONTINUE;
	struct mmu_fault f;
	bool raised = false;
	vm->prev = NULL;
	vm->st.steps++;
	enum bt_status s = cpu_check_alignment(v, &raised, &out);
	if (s != BT_OK || raised)
		return outcome(vm, s, out);
	bool tf = (cpu_rflags(v) & CPU_RFLAGS_TF) != 0;
	struct tcache_block *b = vm_block_get_step(vm, a->rip, &f);
	if (!b) {
		if (f.pending)
			return outcome(vm, vm_raise_fault(vm, &f), CPU_OUT_CONTINUE);
		stop(vm, VM_STOP_ERROR, VM_EXIT_ERROR);
		return false;
	}
	b->execs++;
	vm->tcv.str_single = tf;
	vm->tcv.str_unfinished = false;
	int rc = enter_block(vm, b);
	vm->tcv.str_single = false;
	if (!b->user)
		tcache_invalidate_block(vm->tc, b); /* its pc map stays for a fault */
	if (rc != TC_EXIT_BLOCK)
		return left_by_fault(vm);
	bool flow = exit_is_flow(a);
	if (!handle_exit(vm, b))
		return false;
	vm->prev = NULL; /* a step block is never chained */
	if (!flow)
		return true; /* emulated (its own #DB), or the interrupt check */
	if (vm->tcv.str_unfinished)
		a->rip = b->blk.guest_start; /* the rep string instruction goes on */
	if (!tf)
		return true;
	s = cpu_single_step(v, &out);
	return outcome(vm, s, out);
}

/*
 * Compatibility-mode user code (a 32- or 16-bit code segment, often from
 * the guest's LDT): one instruction through the vCPU's emulation, whatever
 * the user mode.  The host cannot run it (its LDT is not the guest's) and
 * the translator decodes 64-bit code only; the emulation covers the near
 * stack and branch instructions such code runs between a far transfer in
 * and out (cpu_emul_compat.c) and stops the VM naming anything else.
 */
static bool run_user_compat(struct vm *vm)
{
	enum cpu_outcome out = CPU_OUT_CONTINUE;
	uint64_t t0 = vm_ticks();
	/* flat GDT code (an ordinary 32-bit program) the interpreter does
	 * not cover runs on the host, as it did before there was one */
	bool host_ok = compat_host_runnable(&vm->cpu);
	vm->cpu.quiet_unsupported = host_ok;
	enum bt_status s = cpu_step_priv(&vm->cpu, &out);
	vm->cpu.quiet_unsupported = false;
	vm->st.ticks[VM_PH_EMULATE] += vm_ticks() - t0;
	if (s == BT_ERR_UNSUPPORTED && host_ok) {
		vm->compat_to_host = true;
		return true;
	}
	return outcome(vm, s, out);
}

/*
 * What the vCPU does next: the outer loop's states.  Every change of
 * state happens here or in stay_track (user mode, policy), never as a
 * `continue` in the middle of the loop.
 */
enum vm_exec_state {
	VX_HALTED,	    /* hlt: sleep until a device deadline or input */
	VX_KERNEL,	    /* CPL 0: translated kernel code */
	VX_USER_TRANSLATED, /* CPL 3, translated (XLAT_OPT_USER) */
	VX_STEP,	    /* translated one instruction at a time (run_step): user
			     * code with TF or AC, kernel code with TF or NT */
	VX_USER_DIRECT,	    /* CPL 3, in the address space's stub */
	VX_USER_COMPAT,	    /* CPL 3, 32/16-bit CS: interpreted (run_user_compat) */
};

static enum vm_exec_state exec_state(struct vm *vm)
{
	enum vm_umode m = vm_stay_track(vm); /* ends or starts a user stay */
	if (vm->cpu.halted)
		return VX_HALTED;
	if (vm->cpu.cpl != 3) {
		vm->compat_to_host = false; /* each return to user code decides anew */
		return kernel_wants_step(&vm->cpu) ? VX_STEP : VX_KERNEL;
	}
	if (!(vm->cpu.seg[CPU_CS].ar & CPU_AR_L)) {
		if (!vm->compat_to_host)
			return VX_USER_COMPAT;
	} else {
		vm->compat_to_host = false; /* back in 64-bit code */
	}
	if (m == VM_UMODE_DIRECT)
		return VX_USER_DIRECT;
	return vm_wants_step(&vm->cpu) ? VX_STEP : VX_USER_TRANSLATED;
}

/* Stop, timeout, housekeeping: false when the VM must stop. */
static bool outer_checks(struct vm *vm)
{
	int status;
	if (vm->stop_request != VM_STOP_NONE) { /* reset, power-off (vm.c) */
		stop(vm, vm->stop_request,
		     vm->stop_request == VM_STOP_POWEROFF ? VM_EXIT_POWEROFF
		     : vm->stop_request == VM_STOP_PANIC  ? VM_EXIT_PANIC
							  : VM_EXIT_RESET);
		return false;
	}
	if (platform_exit_requested(vm->plat, &status)) {
		stop(vm, VM_STOP_EXIT_PORT, status);
		return false;
	}
	/* sticky, so tested whatever VCPU_IRQ_FORCE says: an idle guest's
	 * poll() in idle() ends with housekeeping, which clears the flag the
	 * stop signal set, and a halted guest kept btvm from ever seeing
	 * SIGINT or SIGTERM; one arriving during the housekeeping below is
	 * seen here at the next pass */
	if (vm->stop_signal) {
		stop(vm, VM_STOP_SIGNAL, VM_EXIT_SIGNAL);
		vm->res.signal = vm->stop_signal;
		return false;
	}
	if (!(vm->tcv.abi->irq & VCPU_IRQ_FORCE))
		return true;
	housekeeping(vm);
	if (vm->deadline_ns && bt_now_ns() >= vm->deadline_ns) {
		stop(vm, VM_STOP_TIMEOUT, VM_EXIT_TIMEOUT);
		return false;
	}
	/* the exit port may have been written by a device */
	if (platform_exit_requested(vm->plat, &status)) {
		stop(vm, VM_STOP_EXIT_PORT, status);
		return false;
	}
	return true;
}

enum bt_status vm_loop(struct vm *vm)
{
	housekeeping(vm);
	for (;;) {
		if (!outer_checks(vm))
			break;
		enum cpu_outcome out = CPU_OUT_CONTINUE;
		uint64_t irqs = vm->cpu.stats.irqs;
		enum bt_status s = cpu_check_interrupts(&vm->cpu, &out);
		if (vm->cpu.stats.irqs != irqs)
			vm->st.irqs++;
		if (!outcome(vm, s, out))
			break;

		bool go_on = true;
		enum vm_exec_state st = exec_state(vm);
		vm_fx_arm(vm, st == VX_KERNEL || st == VX_USER_TRANSLATED);
		switch (st) {
		case VX_HALTED:
			idle(vm);
			if (vm->deadline_ns && bt_now_ns() >= vm->deadline_ns) {
				stop(vm, VM_STOP_TIMEOUT, VM_EXIT_TIMEOUT);
				go_on = false;
			}
			break;
		case VX_USER_DIRECT:
			vm->stay.runs++;
			go_on = run_user_direct(vm);
			break;
		case VX_USER_COMPAT:
			go_on = run_user_compat(vm);
			break;
		case VX_USER_TRANSLATED:
			vm->stay.runs++;
			go_on = run_translated(vm, true);
			break;
		case VX_STEP:
			if (vm->cpu.cpl == 3)
				vm->stay.runs++;
			go_on = run_step(vm);
			break;
		case VX_KERNEL:
			go_on = run_translated(vm, false);
			break;
		}
		if (!go_on)
			break;
	}
	return vm->res.stop == VM_STOP_ERROR ? BT_ERR_INTERNAL : BT_OK;
}
