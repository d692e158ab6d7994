/*
 * Trap frames, the IDT and the interrupt/exception dispatcher.  The frame
 * layout is shared with entry.S (PUSH_REGS order); static asserts pin it.
 */
#ifndef GK_TRAP_H
#define GK_TRAP_H

#include <stddef.h>
#include <stdint.h>

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
_Static_assert(offsetof(struct trap_frame, vector) == 15 * 8, "frame: vector after 15 GPRs");
_Static_assert(offsetof(struct trap_frame, rip) == 17 * 8, "frame: hardware part");
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "frame size");

#define SYSCALL_VECTOR	0x100
#define IRQ_BASE	0x20
#define SPURIOUS_VEC	0xff
#define LAPIC_VEC_IPI	0x30 /* the local APIC self-test's vectors (lapic.c) */
#define LAPIC_VEC_TIMER 0x31
#define NISR		50 /* stubs for vectors 0..NISR-1 (entry.S) */

#define EXC_DE	0
#define EXC_DB	1
#define EXC_NMI 2
#define EXC_BP	3
#define EXC_UD	6
#define EXC_NM	7
#define EXC_DF	8
#define EXC_GP	13
#define EXC_PF	14
#define EXC_MF	16
#define EXC_XM	19

typedef void (*irq_handler_t)(void);

void idt_init(void);
void irq_register(unsigned irq, irq_handler_t h);
void trap_dispatch(struct trap_frame *f);
/* lapic.c: a local APIC vector arrived (counts it, EOI) */
void lapic_vector(unsigned vec);
const struct extable_entry *extable_find(uint64_t rip);

/* Counters and hooks used by the self-tests. */
extern volatile unsigned long int3_count;
extern volatile unsigned long int3_last_depth;
extern volatile unsigned long demand_faults;
extern volatile int timer_nested_hook; /* 1: next timer IRQ runs int3 + a demand fault */
extern volatile unsigned trap_depth;

/* entry.S */
extern const uint64_t isr_table[NISR];
extern void isr255(void);
extern void trap_return(void);
extern void syscall_entry(void);
long safe_div(uint64_t a, uint64_t b, uint64_t *q);
long probe_read_u64(const void *p, uint64_t *out);
long probe_write_u64(void *p, uint64_t v);
/*
 * Instruction-fetch probe: a kernel #PF whose rip equals exec_probe_addr is
 * recovered by returning to the caller (the probed code is called), and
 * counted in exec_probe_faults with the error code in exec_probe_error.
 */
extern volatile uint64_t exec_probe_addr;
extern volatile unsigned long exec_probe_faults;
extern volatile uint64_t exec_probe_error;

#endif
