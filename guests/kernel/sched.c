/*
 * Tasks and the preemptive round-robin scheduler (state diagram in sched.h).
 * Task 0 is the boot context, which becomes the idle task.  schedule() runs
 * with interrupts off, switches FXSAVE state, CR3, TSS.rsp0 and the per-CPU
 * kernel stack, then switch_stack(); each task restores its own saved RFLAGS
 * when it resumes.  Sleeping tasks wait on a channel and/or a tick deadline.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/mm.h"
#include "guests/kernel/sched.h"

struct task tasks[MAX_TASKS];
static int next_pid = 1;
static uint8_t fx_default[512] __attribute__((aligned(16)));

#define KSTACK_PAGES (KSTACK_SIZE / PAGE_SIZE)

void fpu_init(void)
{
	__asm__ volatile("fninit");
	uint32_t mxcsr = 0x1f80;
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	fxsave(fx_default);
}

void sched_init(void)
{
	struct task *t = &tasks[0];
	t->state = TASK_RUNNING;
	t->pid = 0;
	strncpy_z(t->name, "idle", sizeof(t->name));
	memcpy(t->fx, fx_default, sizeof(t->fx));
	percpu.current = t;
}

/*
 * Kernel stacks live in the stack area, one slot per task index, each slot
 * a KSTACK_SIZE stack above an unmapped guard page: an overflow faults on
 * the guard, the #PF cannot be delivered on the same stack and becomes a #DF
 * on its IST stack, which panics with a clear message.
 */
static uint64_t kstack_slot(const struct task *t)
{
	return KSTACK_AREA + (uint64_t)(t - tasks) * (KSTACK_SIZE + PAGE_SIZE) + PAGE_SIZE;
}

static void kstack_unmap(uint64_t base, unsigned pages)
{
	for (unsigned i = 0; i < pages; i++) {
		uint64_t va = base + i * PAGE_SIZE;
		uint64_t pa = vm_kernel_pa(va);
		vm_unmap_kernel(va);
		if (pa)
			page_put(pa);
	}
}

static int kstack_map(const struct task *t)
{
	uint64_t base = kstack_slot(t);
	for (unsigned i = 0; i < KSTACK_PAGES; i++) {
		uint64_t pa = page_alloc();
		if (!pa || vm_map_kernel(base + i * PAGE_SIZE, pa, PTE_W | pte_nx)) {
			if (pa)
				page_put(pa);
			kstack_unmap(base, i);
			return -ENOMEM;
		}
	}
	return 0;
}

struct task *task_alloc(const char *name)
{
	uint64_t f = irq_save();
	struct task *t = NULL;
	for (unsigned i = 1; i < MAX_TASKS; i++) {
		if (tasks[i].state == TASK_UNUSED) {
			t = &tasks[i];
			memset(t, 0, sizeof(*t));
			t->state = TASK_SLEEPING; /* not runnable until set up */
			t->pid = next_pid++;
			break;
		}
	}
	irq_restore(f);
	if (!t)
		return NULL;
	strncpy_z(t->name, name, sizeof(t->name));
	memcpy(t->fx, fx_default, sizeof(t->fx));
	if (kstack_map(t)) {
		t->state = TASK_UNUSED;
		return NULL;
	}
	t->kstack_top = kstack_slot(t) + KSTACK_SIZE;
	return t;
}

void task_free(struct task *t)
{
	kstack_unmap(kstack_slot(t), KSTACK_PAGES);
	t->state = TASK_UNUSED;
}

/* Initial stack for switch_stack: r15 r14 r13 r12 rbx rbp, return address. */
static void task_prepare_stack(struct task *t, void (*tramp)(void), uint64_t r12, uint64_t r13,
			       uint64_t top)
{
	uint64_t *sp = (uint64_t *)top;
	*--sp = 0; /* alignment: trampoline entered like a call target */
	*--sp = (uint64_t)tramp;
	*--sp = 0;   /* rbp */
	*--sp = 0;   /* rbx */
	*--sp = r12; /* r12 */
	*--sp = r13; /* r13 */
	*--sp = 0;   /* r14 */
	*--sp = 0;   /* r15 */
	t->saved_rsp = (uint64_t)sp;
}

struct task *task_create_kthread(const char *name, void (*fn)(void *), void *arg)
{
	struct task *t = task_alloc(name);
	if (!t)
		return NULL;
	t->parent = current_task();
	task_prepare_stack(t, kthread_trampoline, (uint64_t)fn, (uint64_t)arg, t->kstack_top);
	sched_make_runnable(t);
	return t;
}

/* Used by proc.c: a user task resumes at its trap frame via iretq. */
void task_prepare_user(struct task *t, uint64_t frame_va);
void task_prepare_user(struct task *t, uint64_t frame_va)
{
	task_prepare_stack(t, user_trampoline, frame_va, 0, frame_va);
}

void sched_make_runnable(struct task *t)
{
	uint64_t f = irq_save();
	t->state = TASK_RUNNABLE;
	t->slice = TIMESLICE;
	irq_restore(f);
}

void sched_first_run(void)
{
	sti();
}

static struct task *pick_next(void)
{
	struct task *cur = current_task();
	unsigned start = (unsigned)(cur - tasks);
	for (unsigned k = 1; k <= MAX_TASKS; k++) {
		struct task *t = &tasks[(start + k) % MAX_TASKS];
		if (t == &tasks[0])
			continue;
		if (t->state == TASK_RUNNABLE || (t == cur && t->state == TASK_RUNNING))
			return t;
	}
	return &tasks[0]; /* idle */
}

void schedule(void)
{
	uint64_t f = irq_save();
	struct task *prev = current_task();
	percpu.need_resched = false;
	struct task *next = pick_next();
	if (next == prev) {
		prev->slice = TIMESLICE;
		irq_restore(f);
		return;
	}
	if (prev->state == TASK_RUNNING)
		prev->state = TASK_RUNNABLE;
	next->state = TASK_RUNNING;
	next->slice = TIMESLICE;
	fxsave(prev->fx);
	fxrstor(next->fx);
	mm_activate(next->mm);
	uarch_switch(prev, next);
	if (next != &tasks[0])
		tss_set_rsp0(next->kstack_top);
	percpu.current = next;
	switch_stack(&prev->saved_rsp, next->saved_rsp);
	irq_restore(f);
}

void sched_yield(void)
{
	schedule();
}

/*
 * The sleep queue: tasks with a wake-up deadline, sorted by wake_tick, so a
 * tick only looks at the head.  A task is in it iff it is SLEEPING with
 * wake_tick != 0.  Changed with interrupts off only.
 */
static struct task *sleep_queue;

static void sleepq_insert(struct task *t)
{
	struct task **pp = &sleep_queue;
	while (*pp && (*pp)->wake_tick <= t->wake_tick)
		pp = &(*pp)->sleep_next;
	t->sleep_next = *pp;
	*pp = t;
}

static void sleepq_remove(struct task *t)
{
	for (struct task **pp = &sleep_queue; *pp; pp = &(*pp)->sleep_next) {
		if (*pp == t) {
			*pp = t->sleep_next;
			break;
		}
	}
	t->sleep_next = NULL;
}

/* SLEEPING -> RUNNABLE, whatever it waited for.  Interrupts off. */
void sched_wake_task(struct task *t)
{
	if (t->state != TASK_SLEEPING)
		return;
	if (t->wake_tick)
		sleepq_remove(t);
	t->wake_tick = 0;
	t->wait_chan = NULL;
	t->state = TASK_RUNNABLE;
	percpu.need_resched = true;
}

void sched_tick(void)
{
	struct task *cur = current_task();
	while (sleep_queue && sleep_queue->wake_tick <= jiffies)
		sched_wake_task(sleep_queue);
	if (cur == &tasks[0] || --cur->slice <= 0)
		percpu.need_resched = true;
}

void sched_sleep(void *chan, uint64_t wake_tick)
{
	struct task *t = current_task();
	t->wait_chan = chan;
	t->wake_tick = wake_tick;
	t->state = TASK_SLEEPING;
	if (wake_tick)
		sleepq_insert(t);
	schedule();
	t->wait_chan = NULL;
}

void sched_wakeup(void *chan)
{
	uint64_t f = irq_save();
	for (unsigned i = 1; i < MAX_TASKS; i++) {
		struct task *t = &tasks[i];
		if (t->state == TASK_SLEEPING && t->wait_chan == chan)
			sched_wake_task(t);
	}
	irq_restore(f);
}

void sleep_ticks(uint64_t ticks)
{
	uint64_t deadline = jiffies + (ticks ? ticks : 1);
	uint64_t f = irq_save();
	while (jiffies < deadline && !current_task()->kill_sig)
		sched_sleep(NULL, deadline);
	irq_restore(f);
}

void task_exit_kthread(void)
{
	cli();
	struct task *t = current_task();
	t->state = TASK_ZOMBIE;
	t->exit_status = 0;
	if (t->parent)
		sched_wakeup(t->parent);
	schedule();
	panic("zombie kthread %s ran again", t->name);
}

void sched_idle_loop(void)
{
	for (;;) {
		cli();
		if (percpu.need_resched)
			schedule();
		safe_halt();
	}
}

/* execve: the new program starts with the default FPU/SSE state. */
void fpu_reset_current(void)
{
	uint64_t f = irq_save();
	memcpy(current_task()->fx, fx_default, sizeof(fx_default));
	fxrstor(fx_default);
	irq_restore(f);
}
