/*
 * IDT and trap dispatch.  Vectors 0-31 are exceptions, 0x20-0x2f the PIC
 * IRQs, 0x30-0x31 the local APIC self-test's, 0xff spurious; SYSCALL arrives through entry.S
 * separately.
 *
 * Kernel-mode faults are resolved in this order: demand region (#PF),
 * user address under an exception-table-covered access (demand zero / COW),
 * exception-table fixup, otherwise panic.  User-mode faults are resolved as
 * #PF on a VMA, or kill the process with the contract's signal.
 * Preemption happens on the way out of the outermost trap when the
 * interrupted context had IF set.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/trap.h"
#include "guests/kernel/vm.h"

struct idt_gate {
	uint16_t off0;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off1;
	uint32_t off2;
	uint32_t zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes");

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_t irq_handlers[16];

volatile unsigned long int3_count;
volatile unsigned long int3_last_depth;
volatile unsigned long demand_faults;
volatile unsigned long extable_fixups;
volatile int timer_nested_hook;
volatile unsigned trap_depth;
volatile uint64_t exec_probe_addr;
volatile unsigned long exec_probe_faults;
volatile uint64_t exec_probe_error;

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE",  "#CP",
    "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

static void idt_set(unsigned vec, uint64_t handler, uint8_t ist, uint8_t dpl)
{
	idt[vec].off0 = (uint16_t)handler;
	idt[vec].sel = KERNEL_CS;
	idt[vec].ist = ist;
	idt[vec].type = (uint8_t)(0x8e | (dpl << 5)); /* present, interrupt gate */
	idt[vec].off1 = (uint16_t)(handler >> 16);
	idt[vec].off2 = (uint32_t)(handler >> 32);
	idt[vec].zero = 0;
}

void idt_init(void)
{
	for (unsigned v = 0; v < NISR; v++)
		idt_set(v, isr_table[v], 0, 0);
	idt_set(EXC_DF, isr_table[EXC_DF], 1, 0);
	idt_set(EXC_NMI, isr_table[EXC_NMI], 2, 0);
	idt_set(EXC_BP, isr_table[EXC_BP], 0, 3); /* int3 from ring 3 is #BP, as in Linux */
	idt_set(SPURIOUS_VEC, (uint64_t)isr255, 0, 0);
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} d = {sizeof(idt) - 1, (uint64_t)idt};
	__asm__ volatile("lidt %0" : : "m"(d));
}

void irq_register(unsigned irq, irq_handler_t h)
{
	if (irq < 16)
		irq_handlers[irq] = h;
}

const struct extable_entry *extable_find(uint64_t rip)
{
	const struct extable_entry *e = (const struct extable_entry *)__ex_table_start;
	const struct extable_entry *end = (const struct extable_entry *)__ex_table_end;
	for (; e < end; e++)
		if (extable_insn(e) == rip)
			return e;
	return NULL;
}

static bool fixup(struct trap_frame *f)
{
	const struct extable_entry *e = extable_find(f->rip);
	if (!e)
		return false;
	f->rip = extable_fixup(e);
	extable_fixups++;
	return true;
}

static void dump_and_panic(struct trap_frame *f, uint64_t cr2)
{
	const char *n = f->vector < 32 ? exc_names[f->vector] : "?";
	panic("%s in kernel at rip 0x%lx err 0x%lx cr2 0x%lx rsp 0x%lx (task %s)", n,
	      (unsigned long)f->rip, (unsigned long)f->error, (unsigned long)cr2,
	      (unsigned long)f->rsp, current_task() ? current_task()->name : "-");
}

/* The nested_exception self-test hook: int3 and a fixable #PF inside IRQ0. */
static void timer_hook(void)
{
	/* armed only by the test (1); its results (2, 3) must not re-arm it,
	 * or the next tick runs the hook again before the test reads them */
	if (timer_nested_hook != 1)
		return;
	timer_nested_hook = 0;
	__asm__ volatile("int3");
	volatile uint64_t *p = (volatile uint64_t *)(DEMAND_BASE + 0x100000);
	*p = 0x5a5a;
	timer_nested_hook = *p == 0x5a5a ? 2 : 3;
}

static void handle_irq(struct trap_frame *f)
{
	unsigned irq = (unsigned)f->vector - IRQ_BASE;
	if ((irq == 7 || irq == 15) && pic_spurious(irq))
		return;
	if (irq == 0)
		timer_hook();
	if (irq_handlers[irq])
		irq_handlers[irq]();
	pic_eoi(irq);
}

static int exc_signal(unsigned vec)
{
	switch (vec) {
	case EXC_DE:
	case EXC_MF:
	case EXC_XM:
		return 8; /* SIGFPE */
	case EXC_UD:
		return 4; /* SIGILL */
	case EXC_BP:
	case EXC_DB:
		return 5; /* SIGTRAP */
	case 11:	  /* #NP */
	case 12:	  /* #SS */
	case 17:	  /* #AC */
		return 7; /* SIGBUS, as Linux */
	default:
		return 11; /* SIGSEGV */
	}
}

/* Returns 0 when resolved, else the signal that kills the process. */
static int handle_user_exception(struct trap_frame *f)
{
	struct task *t = current_task();
	if (f->vector == EXC_PF) {
		uint64_t addr = read_cr2();
		sti();
		if (addr >= VSYSCALL_ADDR && addr < VSYSCALL_ADDR + PAGE_SIZE) {
			if (vsyscall_emulate(f, addr, f->error))
				return 0;
		} else if (t->mm && vm_user_fault(t->mm, addr, f->error) == 0) {
			return 0;
		}
		printk("[kernel] pid %d killed: #PF at rip 0x%lx addr 0x%lx\n", t->pid,
		       (unsigned long)f->rip, (unsigned long)addr);
		return 11;
	}
	printk("[kernel] pid %d killed: %s at rip 0x%lx\n", t->pid,
	       f->vector < 32 ? exc_names[f->vector] : "?", (unsigned long)f->rip);
	return exc_signal((unsigned)f->vector);
}

static void handle_kernel_exception(struct trap_frame *f)
{
	uint64_t cr2 = 0;
	switch (f->vector) {
	case EXC_BP:
		int3_count++;
		int3_last_depth = trap_depth;
		return;
	case EXC_NMI:
		printk("# NMI received\n");
		return;
	case EXC_DF:
		cr2 = read_cr2();
		if (cr2 >= KSTACK_AREA &&
		    cr2 < KSTACK_AREA + MAX_TASKS * (KSTACK_SIZE + PAGE_SIZE) &&
		    (cr2 - KSTACK_AREA) % (KSTACK_SIZE + PAGE_SIZE) < PAGE_SIZE)
			panic("kernel stack overflow in task %s (guard page 0x%lx hit)",
			      current_task()->name, (unsigned long)cr2);
		dump_and_panic(f, cr2);
		return;
	case EXC_PF:
		cr2 = read_cr2();
		if (exec_probe_addr && f->rip == exec_probe_addr && cr2 == f->rip) {
			exec_probe_faults++;
			exec_probe_error = f->error;
			f->rip = *(uint64_t *)f->rsp; /* emulate the probed code's ret */
			f->rsp += 8;
			return;
		}
		if (cr2 >= DEMAND_BASE && cr2 < DEMAND_BASE + DEMAND_SIZE && !(f->error & 1)) {
			if (vm_demand_fault(cr2)) {
				demand_faults++;
				return;
			}
		}
		if (cr2 < USER_TOP && current_task() && current_task()->mm &&
		    extable_find(f->rip)) {
			uint64_t fl = f->rflags & RFLAGS_IF;
			if (fl)
				sti();
			int r = vm_user_fault(current_task()->mm, cr2, f->error);
			cli();
			if (r == 0)
				return;
		}
		break;
	default:
		break;
	}
	if (fixup(f))
		return;
	dump_and_panic(f, cr2);
}

void trap_dispatch(struct trap_frame *f)
{
	int sig = 0;
	trap_depth++;
	if (f->vector >= IRQ_BASE && f->vector < IRQ_BASE + 16)
		handle_irq(f);
	else if (f->vector == LAPIC_VEC_IPI || f->vector == LAPIC_VEC_TIMER)
		lapic_vector((unsigned)f->vector);
	else if (f->vector == SPURIOUS_VEC)
		;
	else if (f->cs & 3)
		sig = handle_user_exception(f);
	else
		handle_kernel_exception(f);
	cli();
	trap_depth--;
	if (!sig && (f->cs & 3) && task_killed())
		sig = current_task()->kill_sig;
	if (sig) {
		sti();
		proc_exit(sig);
	}
	if (percpu.need_resched && trap_depth == 0 && (f->rflags & RFLAGS_IF))
		schedule();
}
