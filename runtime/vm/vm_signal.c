/*
 * Host signals of a running VM: the 1 ms host timer (SIGALRM) and the
 * synchronous signals translated code raises itself (SIGFPE, SIGILL,
 * SIGSEGV, SIGBUS), all taken on an alternate signal stack.
 *
 * Contract
 *  1. vm_signals_install() makes vm the thread's current VM (the one
 *     thread-local the style allows, for signal handlers), installs the
 *     handlers and starts a periodic 1 ms CLOCK_MONOTONIC timer;
 *     vm_signals_remove() undoes all of it (default dispositions).  The
 *     timer is process-wide: one running VM per process.
 *  2. The timer handler only sets VCPU_IRQ_FORCE in the vCPU's IRQ word and
 *     kicks a running user stub: it is async-signal-safe, and translated
 *     code sees the request at its next block entry check, guest user code
 *     at its next stop (user_enter returns USER_EV_KICK).  So the vCPU loop
 *     checks --timeout and stop signals at least every millisecond plus one
 *     event, whatever the guest does.
 *  4. SIGINT and SIGTERM (while the VM runs) do the same after recording
 *     the signal in vm->stop_signal: the loop stops with VM_STOP_SIGNAL, and
 *     vm_finish (--learn) still runs.  SA_RESTART: no host call of the
 *     runtime sees EINTR.
 *  3. A synchronous signal whose PC is inside the code cache is the guest's:
 *     the handler copies the guest registers out of the signal frame into
 *     the vCPU area, records the exception (vm_host_signal_take: #DE for
 *     SIGFPE, #UD for SIGILL, 255 "translated code touched host memory" for
 *     SIGSEGV/SIGBUS) and resumes at tc_signal_return, which unwinds to
 *     tc_run's caller as a faulting call-out does.  A signal anywhere else
 *     is a bug of the runtime: the default action runs (a core dump).
 *  5. While the vCPU sleeps in hlt (vm_exec.c idle) the timer's signal is
 *     blocked (vm->idle_mask, ppoll's mask): the sleep already ends at the
 *     next device deadline, at most 10 ms away, and housekeeping follows
 *     it; the timer woke it every millisecond for nothing (a host context
 *     switch each, under load a wait for the CPU).  SIGINT and SIGTERM
 *     still end the sleep at once; the timer's signal, pending, is taken
 *     when it returns.
 *  6. While a stub runs guest user code (vm->kick_at_ns set by
 *     run_user_direct), the timer stops it only once kick_at_ns has passed:
 *     the next device deadline (the guest's timer interrupt), at most
 *     VM_DIRECT_KICK_MAX_NS away; every tick before it stopped the stub for
 *     nothing (a ptrace round trip each, ~5% of a compute phase's time).
 *     VCPU_IRQ_FORCE is still set at every tick; SIGINT and SIGTERM still
 *     stop the stub at once.
 *  7. A tick that finds a stub running before kick_at_ns moves the timer:
 *     its next expiry is kick_at_ns, then every 1 ms again
 *     (vm_timer_at_kick, TIMER_ABSTIME; timer_settime is async-signal-safe),
 *     and run_user_direct arms it so at the entry of a stay that follows
 *     one ended at its deadline (a compute-bound stub): while guest user
 *     code computes, btvm wakes once per device deadline instead of every
 *     millisecond (each wake-up a host context switch to btvm and back,
 *     ~4% of a compute phase, docs/user-direct.md "Where a compute phase's
 *     time goes").  A stay that ends before its deadline puts the 1 ms
 *     period back (vm_timer_periodic), so translated code keeps its tick.
 */
#include <signal.h>

#include "pretrans/base/clock.h"
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "runtime/vm/vm_int.h"

static __thread struct vm *current_vm;
static __thread volatile sig_atomic_t host_signal_vector = -1;

void vm_host_signal_clear(void)
{
	host_signal_vector = -1;
}

int vm_host_signal_take(void)
{
	return host_signal_vector;
}

static void on_host_timer(int sig)
{
	(void)sig; /* sa_handler's signature */
	struct vm *vm = current_vm;
	if (vm) {
		__atomic_or_fetch(&vm->tcv.abi->irq, VCPU_IRQ_FORCE, __ATOMIC_RELAXED);
		/* a stub running guest user code stops too, when a device
		 * deadline is due (contract 6; clock_gettime is
		 * async-signal-safe) */
		uint64_t at = vm->kick_at_ns;
		if (!at || bt_now_ns() >= at) {
			vm->timer_at_kick = 0; /* past kick_at: every 1 ms again */
			user_kick(vm->user);
		} else {
			vm->st.timer_early++; /* contract 7 */
			if (!vm->timer_at_kick)
				vm_timer_at_kick(vm);
		}
	}
}

static struct timespec ns_to_ts(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ull),
				 .tv_nsec = (long)(ns % 1000000000ull)};
}

void vm_timer_at_kick(struct vm *vm)
{
	uint64_t at = vm->kick_at_ns;
	if (!vm->have_timer || !at)
		return;
	struct itimerspec its = {.it_interval = ns_to_ts(VM_HOST_TICK_NS),
				 .it_value = ns_to_ts(at)};
	if (timer_settime(vm->host_timer, TIMER_ABSTIME, &its, NULL) == 0) {
		vm->timer_at_kick = 1;
		vm->st.timer_moved++;
	}
}

void vm_timer_periodic(struct vm *vm)
{
	if (!vm->have_timer)
		return;
	struct itimerspec its = {.it_interval = ns_to_ts(VM_HOST_TICK_NS),
				 .it_value = ns_to_ts(VM_HOST_TICK_NS)};
	timer_settime(vm->host_timer, 0, &its, NULL);
	vm->timer_at_kick = 0;
}

static void on_stop_signal(int sig)
{
	struct vm *vm = current_vm;
	if (vm) {
		vm->stop_signal = sig;
		__atomic_or_fetch(&vm->tcv.abi->irq, VCPU_IRQ_FORCE, __ATOMIC_RELAXED);
		user_kick(vm->user);
	}
}

static bool is_canonical(uint64_t va)
{
	return (uint64_t)((int64_t)(va << 16) >> 16) == va;
}

/* A fault raised by translated code itself. */
static void on_host_fault(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	struct vm *vm = current_vm;
	greg_t *g = uc->uc_mcontext.gregs;
	const void *pc = (const void *)(uintptr_t)g[REG_RIP];

	if (!vm || !tcache_find_host(vm->tc, pc)) {
		/* not guest code: a bug in the runtime itself */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	struct vcpu_abi *a = vm->tcv.abi;
	static const int map[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
				    REG_RSI, REG_RDI, REG_R8,  REG_R9,	REG_R10, REG_R11,
				    REG_R12, REG_R13, REG_R14, REG_R15};
	for (int i = 0; i < 16; i++)
		a->gpr[i] = (uint64_t)g[map[i]];
	a->rflags = ((uint64_t)g[REG_EFL] & 0xcd5ull) | 2 | ((uint64_t)(a->irq & 1) << 9) |
		    ((uint64_t)(a->ac & 1) << 18);
	if (uc->uc_mcontext.fpregs)
		memcpy(a->fxsave, uc->uc_mcontext.fpregs, sizeof(a->fxsave));
	a->exit_host_pc = (uint64_t)(uintptr_t)pc + 1; /* as a call-out's return address */
	/* SIGSEGV with SI_KERNEL is a #GP of the instruction itself (a misaligned
	 * SSE operand or cmpxchg16b, reserved MXCSR bits): the guest's #GP(0),
	 * as on hardware, unless the guest's stack pointer is not canonical
	 * (translated code runs on it: the host's own interrupt return faults).
	 * A SIGSEGV with an address (MAPERR/ACCERR) or SIGBUS is a translated
	 * access that reached host memory: a bug. */
	if (sig == SIGFPE)
		host_signal_vector = CPU_EXC_DE;
	else if (sig == SIGILL)
		host_signal_vector = CPU_EXC_UD;
	else if (sig == SIGSEGV && si->si_code == SI_KERNEL)
		host_signal_vector =
		    is_canonical((uint64_t)g[REG_RSP]) ? CPU_EXC_GP : VM_HOST_SIGNAL_RSP;
	else
		host_signal_vector = VM_HOST_SIGNAL_BUG;
	g[REG_RSP] = (greg_t)a->host_rsp;
	g[REG_RIP] = (greg_t)(uintptr_t)tc_signal_return;
	g[REG_EFL] &= ~(greg_t)0x400; /* DF clear for C code */
}

enum bt_status vm_signals_install(struct vm *vm)
{
	static __thread uint8_t altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	struct sigaction sa;

	current_vm = vm;
	if (sigaltstack(&ss, NULL) != 0)
		return BT_ERR_IO;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_host_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGFPE, &sa, NULL) || sigaction(SIGILL, &sa, NULL) ||
	    sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		return BT_ERR_IO;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_host_timer;
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL))
		return BT_ERR_IO;
	sa.sa_handler = on_stop_signal;
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return BT_ERR_IO;
	if (sigprocmask(SIG_BLOCK, NULL, &vm->idle_mask) != 0 ||
	    sigaddset(&vm->idle_mask, SIGALRM) != 0)
		return BT_ERR_IO;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
	if (timer_create(CLOCK_MONOTONIC, &sev, &vm->host_timer) != 0)
		return BT_ERR_IO;
	vm->have_timer = true;
	struct itimerspec its = {.it_interval = ns_to_ts(VM_HOST_TICK_NS),
				 .it_value = ns_to_ts(VM_HOST_TICK_NS)};
	if (timer_settime(vm->host_timer, 0, &its, NULL) != 0)
		return BT_ERR_IO;
	vm->timer_at_kick = 0;
	return BT_OK;
}

void vm_signals_remove(struct vm *vm)
{
	if (vm->have_timer) {
		timer_delete(vm->host_timer);
		vm->have_timer = false;
	}
	signal(SIGALRM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGFPE, SIG_DFL);
	signal(SIGILL, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	current_vm = NULL;
}
