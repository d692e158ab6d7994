/*
 * Tasks, the per-CPU area behind GS and the preemptive round-robin scheduler.
 *
 * Task states and the function performing each transition:
 *   UNUSED -> RUNNABLE        task_create_kthread / proc_spawn / proc_fork
 *   RUNNABLE <-> (running)    schedule
 *   running -> SLEEPING       sched_sleep (wait channel and/or wake tick)
 *   SLEEPING -> RUNNABLE      sched_wakeup (channel), sched_tick (sleep-queue deadline),
 *                             sched_wake_task (kill)
 *   running -> ZOMBIE         proc_exit / task_exit_kthread
 *   ZOMBIE -> UNUSED          proc_wait (parent reaps, frees the kernel stack)
 * Invariants: the scheduler runs with interrupts off; exactly one task is
 * current; percpu.kstack_top and TSS.rsp0 are the current task's stack top.
 */
#ifndef GK_SCHED_H
#define GK_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guests/kernel/trap.h"
#include "guests/kernel/vm.h"

enum task_state { TASK_UNUSED, TASK_RUNNABLE, TASK_RUNNING, TASK_SLEEPING, TASK_ZOMBIE };

#define MAX_TASKS   64
#define KSTACK_SIZE (16 * 1024)
#define TIMESLICE   10 /* ticks */

struct task {
	uint8_t fx[512] __attribute__((aligned(16))); /* FXSAVE image */
	enum task_state state;
	int pid;
	char name[24];
	uint64_t kstack_top;
	uint64_t saved_rsp;
	struct mm *mm; /* NULL for kernel threads */
	struct task *parent;
	int exit_status; /* Linux wait status */
	void *wait_chan;
	uint64_t wake_tick; /* 0: no deadline, else queued on the sleep queue */
	struct task *sleep_next;
	int slice;
	int kill_sig; /* set by proc_kill: exit with this signal at the next chance */
	/* user-visible x86 state (uarch.c), switched with the task */
	uint64_t fsbase, gsbase; /* saved while the task is not running */
	uint16_t sel[4];	 /* ds es fs gs selectors, saved likewise */
	uint8_t iopl_emul;	 /* iopl(3): every port through the I/O bitmap */
	uint64_t io_pa[2];	 /* ioperm bitmap (8 KiB, 1 = denied), 0 = none */
};

struct percpu {
	struct percpu *self;
	uint64_t kstack_top; /* offset 8: used by syscall_entry */
	uint64_t user_rsp;   /* offset 16: scratch at syscall entry */
	struct task *current;
	bool need_resched;
};
_Static_assert(offsetof(struct percpu, kstack_top) == 8, "entry.S PCPU_KSTACK");
_Static_assert(offsetof(struct percpu, user_rsp) == 16, "entry.S PCPU_USERRSP");

extern struct percpu percpu;
extern struct task tasks[MAX_TASKS];

static inline struct task *current_task(void)
{
	return percpu.current;
}

void sched_init(void);
struct task *task_alloc(const char *name);
struct task *task_create_kthread(const char *name, void (*fn)(void *), void *arg);
void sched_make_runnable(struct task *t);
void schedule(void);
void sched_yield(void);
void sched_tick(void);
/* Caller has interrupts off; returns after a wakeup or the deadline. */
void sched_sleep(void *chan, uint64_t wake_tick);
void sched_wakeup(void *chan);
/* SLEEPING -> RUNNABLE regardless of channel/deadline (interrupts off). */
void sched_wake_task(struct task *t);
void sleep_ticks(uint64_t ticks);
void task_free(struct task *t);
void task_exit_kthread(void) __attribute__((noreturn));
void sched_first_run(void);
void sched_idle_loop(void) __attribute__((noreturn));
void fpu_init(void);
void fpu_reset_current(void);

/* gdt.c */
void gdt_init(void);
void tss_set_rsp0(uint64_t rsp0);
void syscall_init(void);

/* proc.c */
/* Create a process running path from the initrd: its pid or -errno. */
int proc_spawn(const char *path, const char *const *argv, struct task *parent);
void proc_exit(int status) __attribute__((noreturn));
/* wait for a child; deadline (jiffies, 0 = none) gives -ETIMEDOUT, a kill -EINTR. */
int proc_wait(int pid, int *status, struct task *waiter, uint64_t deadline);
/* Kill every user process (test watchdog). */
void proc_kill_all_user(int sig);
/* kill(2): sig (1..64; 0 only checks) kills pid, which must be the caller
 * or one of its children; the process exits with sig at its next return
 * to user mode (timer interrupt, fault or syscall).  0 or -errno. */
int proc_kill(int pid, int sig, struct task *caller);
static inline bool task_killed(void)
{
	return percpu.current->kill_sig != 0;
}
long proc_fork(struct trap_frame *f);

/* uarch.c: per-task LDT, I/O permission, FS/GS bases; their syscalls */
void uarch_switch(struct task *prev, struct task *next);
int uarch_fork(struct task *child, struct task *parent);
void uarch_exit(struct task *t);
void uarch_exec_reset(void);
int ldt_fork(struct mm *child, struct mm *parent);
void ldt_free(struct mm *mm);
long sys_modify_ldt(int func, uint64_t uptr, uint64_t bytecount);
long sys_iopl(unsigned level);
long sys_ioperm(uint64_t from, uint64_t num, int on);
long sys_arch_prctl(int code, uint64_t addr);
long sys_getcpu(uint64_t ucpu, uint64_t unode);
/* vsyscall page: a user fetch fault at addr; true = emulated (f updated) */
bool vsyscall_emulate(struct trap_frame *f, uint64_t addr, uint64_t error);
#define VSYSCALL_ADDR 0xffffffffff600000ul
/* The test kernel's one CPU: cpu 0 on NUMA node GK_NODE, so that TSC_AUX
 * ((node << 12) | cpu, as Linux writes it) cannot equal a host's value. */
#define GK_NODE 3

/* gdt.c: the LDT descriptor and the TSS I/O permission bitmap */
void gdt_load_ldt(uint64_t base, unsigned entries);
void tss_io_none(void);
void tss_io_load(const uint8_t *lo, const uint8_t *hi); /* NULL, NULL = all allowed */

/* exec.c */
int exec_load(struct mm *mm, const char *path, const char *const *argv, const char *const *envp,
	      uint64_t *entry, uint64_t *rsp);

/* syscall.c */
int syscall_dispatch(struct trap_frame *f);

/* entry.S */
void switch_stack(uint64_t *save_rsp, uint64_t new_rsp);
void kthread_trampoline(void);
void user_trampoline(void);

#endif
