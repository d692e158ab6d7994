/*
 * User processes: spawn (create + exec from the initrd, used by the test
 * runner), fork (copy-on-write address space, child returns 0 through its
 * copied trap frame and iretq), exit (address space freed at once, task kept
 * as a zombie with its Linux wait status), wait (reaps zombies and frees
 * their kernel stacks).  Orphans get parent NULL and are freed by the next
 * task_alloc-time sweep in proc_reap_orphans.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/sched.h"

void task_prepare_user(struct task *t, uint64_t frame_va);

static void proc_reap_orphans(void)
{
	uint64_t f = irq_save();
	for (unsigned i = 1; i < MAX_TASKS; i++)
		if (tasks[i].state == TASK_ZOMBIE && !tasks[i].parent &&
		    &tasks[i] != current_task())
			task_free(&tasks[i]);
	irq_restore(f);
}

static const char *basename(const char *p)
{
	const char *b = p;
	for (; *p; p++)
		if (*p == '/')
			b = p + 1;
	return b;
}

static struct trap_frame *user_frame(struct task *t)
{
	return (struct trap_frame *)(t->kstack_top - sizeof(struct trap_frame));
}

int proc_spawn(const char *path, const char *const *argv, struct task *parent)
{
	static const char *const envp[] = {"PATH=/bin", NULL};
	uint64_t entry, rsp;
	int r = -ENOMEM;

	proc_reap_orphans();
	struct task *t = task_alloc(basename(path));
	if (!t)
		return -EAGAIN;
	t->mm = mm_create();
	if (!t->mm)
		goto err_free_task;
	r = exec_load(t->mm, path, argv, envp, &entry, &rsp);
	if (r)
		goto err_free_mm;
	t->parent = parent;
	struct trap_frame *f = user_frame(t);
	memset(f, 0, sizeof(*f));
	f->rip = entry;
	f->cs = USER_CS;
	f->rflags = 0x202;
	f->rsp = rsp;
	f->ss = USER_DS;
	task_prepare_user(t, (uint64_t)f);
	sched_make_runnable(t);
	return t->pid;

err_free_mm:
	mm_destroy(t->mm);
	t->mm = NULL;
err_free_task:
	task_free(t);
	return r;
}

long proc_fork(struct trap_frame *f)
{
	struct task *cur = current_task();
	if (!cur->mm)
		return -EINVAL;
	proc_reap_orphans();
	struct task *t = task_alloc(cur->name);
	if (!t)
		return -EAGAIN;
	t->mm = mm_fork(cur->mm);
	if (!t->mm) {
		task_free(t);
		return -ENOMEM;
	}
	if (uarch_fork(t, cur)) {
		mm_destroy(t->mm);
		task_free(t);
		return -ENOMEM;
	}
	/* The child inherits the parent's FPU/SSE state. */
	fxsave(t->fx);
	t->parent = cur;
	struct trap_frame *cf = user_frame(t);
	*cf = *f;
	cf->rax = 0;
	task_prepare_user(t, (uint64_t)cf);
	sched_make_runnable(t);
	return t->pid;
}

void proc_exit(int status)
{
	struct task *cur = current_task();
	if (cur == &tasks[0])
		panic("idle task exiting");
	struct mm *mm = cur->mm;
	uarch_exit(cur);
	cur->mm = NULL;
	mm_activate(NULL);
	mm_destroy(mm);

	cli();
	for (unsigned i = 1; i < MAX_TASKS; i++) {
		if (tasks[i].parent == cur && tasks[i].state != TASK_UNUSED) {
			tasks[i].parent = NULL;
			if (tasks[i].state == TASK_ZOMBIE)
				task_free(&tasks[i]);
		}
	}
	cur->exit_status = status;
	cur->state = TASK_ZOMBIE;
	if (cur->parent)
		sched_wakeup(cur->parent);
	schedule();
	panic("zombie %d ran again", cur->pid);
}

void proc_kill_all_user(int sig)
{
	uint64_t f = irq_save();
	for (unsigned i = 1; i < MAX_TASKS; i++) {
		struct task *t = &tasks[i];
		if (!t->mm || t->state == TASK_UNUSED || t->state == TASK_ZOMBIE)
			continue;
		t->kill_sig = sig;
		sched_wake_task(t);
	}
	irq_restore(f);
}

int proc_kill(int pid, int sig, struct task *caller)
{
	if (sig < 0 || sig > 64)
		return -EINVAL;
	uint64_t f = irq_save();
	for (unsigned i = 1; i < MAX_TASKS; i++) {
		struct task *t = &tasks[i];
		if (t->pid != pid || t->state == TASK_UNUSED)
			continue;
		int r = 0;
		if (t != caller && t->parent != caller)
			r = -EPERM;
		else if (sig && t->mm && t->state != TASK_ZOMBIE && !t->kill_sig) {
			t->kill_sig = sig;
			sched_wake_task(t);
		}
		irq_restore(f);
		return r;
	}
	irq_restore(f);
	return -ESRCH;
}

int proc_wait(int pid, int *status, struct task *waiter, uint64_t deadline)
{
	uint64_t f = irq_save();
	for (;;) {
		bool have_child = false;
		for (unsigned i = 1; i < MAX_TASKS; i++) {
			struct task *t = &tasks[i];
			if (t->state == TASK_UNUSED || t->parent != waiter)
				continue;
			if (pid != -1 && t->pid != pid)
				continue;
			have_child = true;
			if (t->state == TASK_ZOMBIE) {
				int cpid = t->pid;
				if (status)
					*status = t->exit_status;
				task_free(t);
				irq_restore(f);
				return cpid;
			}
		}
		if (!have_child) {
			irq_restore(f);
			return -ECHILD;
		}
		if (waiter->kill_sig || (deadline && jiffies >= deadline)) {
			irq_restore(f);
			return waiter->kill_sig ? -EINTR : -ETIMEDOUT;
		}
		sched_sleep(waiter, deadline);
	}
}
