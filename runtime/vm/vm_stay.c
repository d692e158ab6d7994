/*
 * Stays in user mode and the fast system calls' catch-up (vm_exec.c runs
 * the loop): a stay starts when the vCPU reaches CPL 3, the adaptive
 * policy (vm_policy.c) picks its mode and hears its cost when the next
 * one starts; the fidelity trigger (guest state a stub cannot have); and,
 * after translated code switched privilege levels itself (fast system
 * calls, runtime/tc/tc_entry.S), the vCPU and the stays made to follow.
 */
#include "pretrans/base/log.h"
#include "runtime/user/ustub.h"
#include "runtime/vm/vm_int.h"

/* Single-stepping (TF) or alignment checking (AC with CR0.AM) at CPL 3:
 * the host CPU does both itself in direct mode; translated, user code
 * runs one instruction a block (run_step). */
bool vm_wants_step(const struct vcpu *v)
{
	uint64_t f = cpu_rflags(v);
	return (f & CPU_RFLAGS_TF) || ((f & CPU_RFLAGS_AC) && (v->cr0 & CPU_CR0_AM));
}

/* This CPL-3 entry runs direct: 32/16-bit code that the interpreter gave
 * up on (vm->compat_to_host, run_user_compat; the translator decodes
 * 64-bit code only), or, with the adaptive policy, single-stepping and
 * alignment checking, which the host does at native speed -- unless the
 * address space is under the fidelity trigger (it needs guest state the
 * host lacks, such as RFLAGS.NT across a system call): then it steps
 * translated.  --user=translated always steps translated. */
static bool cannot_translate(struct vm *vm)
{
	const struct vcpu *v = &vm->cpu;
	if (!(v->seg[CPU_CS].ar & CPU_AR_L))
		return true;
	return vm_wants_step(v) && vm->policy.cfg == VM_USER_ADAPTIVE &&
	       !vm_policy_fidelity(&vm->policy, v->cr3 & MMU_PTE_ADDR_MASK);
}

/*
 * The fidelity trigger at an entry to user mode: user code that depends on
 * guest state a stub cannot have.  A loaded LDT (segment loads, LAR/LSL see
 * the host's tables in a stub); RFLAGS.NT (the host clears it at every
 * stub event); a DS/ES/SS selector other than null or __USER_DS (0x2b, the
 * stub's own), or any non-null FS/GS selector (the host reloads that base
 * from its own descriptor at every event); an FS or GS base the host will
 * not give a process (at or above its TASK_SIZE: ptrace refuses to set it,
 * with EIO, so a direct stay could not even start).
 */
static bool needs_guest_state(const struct vcpu *v)
{
	if ((v->ldtr.sel & ~3u) && !(v->ldtr.ar & CPU_AR_UNUSABLE))
		return true;
	if (cpu_rflags(v) & CPU_RFLAGS_NT)
		return true;
	static const unsigned segs[] = {CPU_DS, CPU_ES, CPU_SS};
	for (unsigned i = 0; i < BT_ARRAY_SIZE(segs); i++) {
		uint16_t sel = v->seg[segs[i]].sel;
		if ((sel & ~3u) != 0 && sel != 0x2b)
			return true;
	}
	/* the bases live in the vCPU area (cpu_seg.base is unused for FS/GS);
	 * at CPL 3 gs_base is the user's */
	if (v->abi->fs_base >= USTUB_TASK_END || v->abi->gs_base >= USTUB_TASK_END)
		return true;
	return (v->seg[CPU_FS].sel & ~3u) != 0 || (v->seg[CPU_GS].sel & ~3u) != 0;
}

/* The one place the user mode changes, inside a stay or at its start. */
void vm_stay_switch(struct vm *vm, enum vm_umode to)
{
	if (vm->stay.mode == to)
		return;
	if (to == VM_UMODE_TRANSLATED && user_fpu_pending(vm->user) &&
	    user_fpu_sync(vm->user) != BT_OK) {
		/* the stub died: the next direct entry reports it */
		return;
	}
	/* to direct: user_enter loads registers and the FPU image from the
	 * vCPU at every entry, nothing to hand over */
	vm->stay.mode = to;
}

/* Nanoseconds from the stay's start to TSC t, translation time (a one-time
 * cost) left out. */
static uint64_t stay_ns_at(const struct vm *vm, uint64_t t)
{
	uint64_t xt = vm->st.ticks[VM_PH_TRANSLATE] - vm->stay.xlat0;
	uint64_t dt = t > vm->stay.t0 ? t - vm->stay.t0 : 0;
	return (uint64_t)((double)(dt > xt ? dt - xt : 0) * vm->ns_per_tick);
}

/* The user code of the stay ended at TSC t (a kernel entry). */
static void stay_end_at(struct vm *vm, uint64_t t)
{
	vm->stay.in_user = false;
	/* a stay that ran no user code (an interrupt at its entry) says
	 * nothing about either mode */
	vm->stay.report = vm->stay.runs != 0;
	vm->stay.by_irq = vm->cpu.stats.irqs != vm->stay.irqs0;
	vm->stay.warmup = user_warmups(vm->user) != vm->stay.warm0;
	vm->stay.user_ns = stay_ns_at(vm, t);
}

/* The last stay's cost, now (TSC t) that the next one starts: from its
 * start to t. */
static void stay_report_at(struct vm *vm, uint64_t t)
{
	if (!vm->stay.report)
		return;
	vm->stay.report = false;
	unsigned flags =
	    (vm->stay.by_irq ? VM_POLICY_BY_IRQ : 0) | (vm->stay.warmup ? VM_POLICY_WARMUP : 0);
	/* one line a stay, for tuning the policy (docs/user-mode.md) */
	bt_debug(LOG_USER, "stay cr3=%#llx mode=%s ns=%llu user_ns=%llu%s%s",
		 (unsigned long long)vm->stay.cr3, vm_umode_str(vm->stay.mode),
		 (unsigned long long)stay_ns_at(vm, t), (unsigned long long)vm->stay.user_ns,
		 vm->stay.by_irq ? " irq" : "", vm->stay.warmup ? " warmup" : "");
	vm_policy_stay(&vm->policy, vm->stay.cr3, vm->stay.mode, stay_ns_at(vm, t),
		       vm->stay.user_ns, flags);
}

static void stay_report(struct vm *vm)
{
	stay_report_at(vm, vm_ticks());
}

/* Track stays in user mode: one starts when the vCPU reaches CPL 3 (the
 * policy picks its mode) and ends at the next kernel entry; its cost is
 * reported when the next stay starts.  Returns the mode to run user code
 * in. */
enum vm_umode vm_stay_track(struct vm *vm)
{
	struct vcpu *v = &vm->cpu;
	if (v->cpl != 3) {
		if (vm->stay.in_user)
			stay_end_at(vm, vm_ticks());
		return vm->stay.mode;
	}
	if (!vm->stay.in_user) {
		stay_report(vm);
		vm->stay.in_user = true;
		vm->stay.cr3 = v->cr3 & MMU_PTE_ADDR_MASK;
		vm->stay.t0 = vm_ticks();
		vm->stay.xlat0 = vm->st.ticks[VM_PH_TRANSLATE];
		vm->stay.irqs0 = v->stats.irqs;
		vm->stay.warm0 = user_warmups(vm->user);
		vm->stay.runs = 0;
		vm->stay.retried = false;
		if (needs_guest_state(v))
			vm_policy_need_translated(&vm->policy, vm->stay.cr3, 0);
		vm_stay_switch(vm, vm_policy_mode(&vm->policy, vm->stay.cr3, cannot_translate(vm)));
	} else if (vm->stay.mode == VM_UMODE_TRANSLATED && cannot_translate(vm)) {
		/* TF or AC+AM set inside a translated stay (adaptive, no
		 * fidelity trigger): the host steps it */
		vm->policy.st.fallbacks++;
		vm_stay_switch(vm, VM_UMODE_DIRECT);
	}
	return vm->stay.mode;
}

/*
 * Fast system calls (runtime/tc/tc_entry.S; docs/runtime.md "Fast system
 * calls").  A Linux system call in translated user mode used to leave
 * translated code twice -- at the user's `syscall` and at the kernel's
 * `sysretq` -- each time through FXSAVE/FXRSTOR, the dispatcher and the
 * outer loop, half of a getppid round trip.  The exit trampoline now does
 * both transitions itself when fx_arm allows, and this file catches up
 * afterwards (vm_fx_sync): the vCPU's CPL and segments, and the stays the
 * adaptive policy must hear about.
 *
 * vm_fx_arm, before translated code runs in the kernel or translated user
 * state: both transitions need the vCPU in the state they assume
 * (cpu_fx_armable); a sysretq also needs the address space's next stays
 * to be translated ones (vm_policy_budget: no trial due, at most that
 * many) and its FPU state in the vCPU area (no stub holds it).  The
 * trampoline itself
 * refuses a return to TF, AC, IOPL, NT, ID, VIF, VIP or a kernel address,
 * and any target not in the IBL table of the new level: those go through
 * the dispatcher as before.
 */
void vm_fx_arm(struct vm *vm, bool translated)
{
	struct vcpu_abi *a = vm->tcv.abi;
	struct vcpu *v = &vm->cpu;
	a->fx_arm = 0;
	a->fx_cpl = (uint8_t)v->cpl;
	if (vm->cfg.no_fast_syscalls || !translated || !cpu_fx_armable(v))
		return;
	uint8_t arm = VCPU_FX_SYSCALL;
	uint32_t budget = vm_policy_budget(&vm->policy, v->cr3 & MMU_PTE_ADDR_MASK);
	/* no needs_guest_state(): it only ever sends a stay to translated
	 * mode, which a fast sysretq is, and every direct stay still starts
	 * in stay_track, which checks it */
	if (budget && !user_fpu_pending(vm->user))
		arm |= VCPU_FX_SYSRET;
	a->fx_budget = budget;
	a->fx_arm = arm;
}

/* After translated code ran (tc_run returned, or a call-out came): the
 * vCPU and the stays follow what the trampoline did.  True if it did
 * anything. */
bool vm_fx_sync(struct vm *vm)
{
	struct vcpu_abi *a = vm->tcv.abi;
	uint32_t ns = a->fx_n_sys, nr = a->fx_n_ret;
	if (!(ns | nr))
		return false;
	struct vcpu *v = &vm->cpu;
	cpu_fx_sync(v, a->fx_cpl);
	vm->st.fx_syscalls += ns;
	vm->st.fx_sysrets += nr;
	/* transitions alternate: the stay in progress at the entry to
	 * translated code (if any) ended at the first fast syscall */
	if (vm->stay.in_user && ns)
		stay_end_at(vm, a->fx_t_first_sys);
	if (nr) {
		uint64_t cr3 = v->cr3 & MMU_PTE_ADDR_MASK;
		/* the first fast sysretq started a stay: the one before is
		 * reported as the dispatcher would have */
		stay_report_at(vm, a->fx_t_first_ret);
		/* the stays between the first and the last fast sysretq, all
		 * translated, their mean cost and user time each */
		if (nr > 1) {
			uint64_t span = a->fx_t_ret - a->fx_t_first_ret, user = a->fx_user;
			if (a->fx_cpl == 0)
				user -= a->fx_t_sys - a->fx_t_ret; /* the last one's own */
			uint64_t ns_each = (uint64_t)((double)span * vm->ns_per_tick / (nr - 1));
			uint64_t user_each = (uint64_t)((double)user * vm->ns_per_tick / (nr - 1));
			for (uint32_t i = 0; i + 1 < nr; i++)
				vm_policy_stay(&vm->policy, cr3, VM_UMODE_TRANSLATED, ns_each,
					       user_each, 0);
		}
		/* the last one: still running, or over */
		vm->stay.cr3 = cr3;
		vm->stay.mode = VM_UMODE_TRANSLATED;
		vm->stay.t0 = a->fx_t_ret;
		vm->stay.xlat0 = vm->st.ticks[VM_PH_TRANSLATE];
		vm->stay.irqs0 = v->stats.irqs;
		vm->stay.warm0 = user_warmups(vm->user);
		vm->stay.runs = 1;
		vm->stay.retried = false;
		vm->stay.in_user = true;
		vm->stay.report = false;
		if (a->fx_cpl == 0)
			stay_end_at(vm, a->fx_t_sys);
	}
	a->fx_n_sys = a->fx_n_ret = 0;
	a->fx_t_first_sys = a->fx_t_first_ret = 0;
	a->fx_t_ret = 0;
	a->fx_user = 0;
	return true;
}
