/*
 * Kernel entry and exit paths: exception/IRQ stubs (vectors 0-49 and the
 * spurious vector), the SYSCALL entry with SYSRET exit, the context switch,
 * task start trampolines and the exception-table-protected user copy.
 *
 * Frame layout (struct trap_frame in trap.h, checked there by static asserts):
 *   r15 r14 r13 r12 r11 r10 r9 r8 rbp rdi rsi rdx rcx rbx rax vector error
 *   rip cs rflags rsp ss
 * GS: swapgs on every entry from and exit to ring 3, never for ring 0.
 * Per-CPU offsets (struct percpu in sched.h): 8 = kernel stack top,
 * 16 = scratch for the user rsp at syscall entry.
 */
#define PCPU_KSTACK  8
#define PCPU_USERRSP 16
#define FRAME_CS_AT_ENTRY 24	/* cs offset from rsp after vector+error pushed */
#define SYSCALL_VECTOR 0x100

	.text

/*
 * Exception-table entry in Linux's layout (12 bytes: s32 insn - ., s32
 * fixup - ., s32 data), so tools that read a Linux __ex_table read ours.
 */
.macro EXTABLE insn, fixup
	.balign 4
	.long \insn - .
	.long \fixup - .
	.long 0
.endm

.macro PUSH_REGS
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
.endm

.macro POP_REGS
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
.endm

.macro ISR_NOERR n
	.globl isr\n
isr\n:
	pushq $0
	pushq $\n
	jmp trap_common
.endm

.macro ISR_ERR n
	.globl isr\n
isr\n:
	pushq $\n
	jmp trap_common
.endm

ISR_NOERR 0
ISR_NOERR 1
ISR_NOERR 2
ISR_NOERR 3
ISR_NOERR 4
ISR_NOERR 5
ISR_NOERR 6
ISR_NOERR 7
ISR_ERR 8
ISR_NOERR 9
ISR_ERR 10
ISR_ERR 11
ISR_ERR 12
ISR_ERR 13
ISR_ERR 14
ISR_NOERR 15
ISR_NOERR 16
ISR_ERR 17
ISR_NOERR 18
ISR_NOERR 19
ISR_NOERR 20
ISR_ERR 21
ISR_NOERR 22
ISR_NOERR 23
ISR_NOERR 24
ISR_NOERR 25
ISR_NOERR 26
ISR_NOERR 27
ISR_NOERR 28
ISR_ERR 29
ISR_ERR 30
ISR_NOERR 31
.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,255
ISR_NOERR \n
.endr

	.section .rodata
	.balign 8
	.globl isr_table
isr_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr\n
.endr
.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49
	.quad isr\n
.endr
	.text

trap_common:
	testb $3, FRAME_CS_AT_ENTRY(%rsp)
	jz 1f
	swapgs
1:	PUSH_REGS
	cld
	movq %rsp, %rdi
	call trap_dispatch
	.globl trap_return
trap_return:
	cli
	POP_REGS
	addq $16, %rsp		/* vector, error */
	testb $3, 8(%rsp)
	jz 2f
	swapgs
2:	iretq

/*
 * SYSCALL: rcx = user rip, r11 = user rflags, IF already cleared by SFMASK.
 * Builds the same trap frame (vector SYSCALL_VECTOR) on the task's kernel
 * stack, runs syscall_dispatch with interrupts on, and returns with SYSRETQ
 * unless syscall_dispatch asks for IRETQ (non-canonical rip, fresh exec).
 */
	.globl syscall_entry
syscall_entry:
	swapgs
	movq %rsp, %gs:PCPU_USERRSP
	movq %gs:PCPU_KSTACK, %rsp
	pushq $0x2b			/* ss */
	pushq %gs:PCPU_USERRSP		/* rsp */
	pushq %r11			/* rflags */
	pushq $0x33			/* cs */
	pushq %rcx			/* rip */
	pushq $0			/* error */
	pushq $SYSCALL_VECTOR		/* vector */
	PUSH_REGS
	cld
	movq %rsp, %rdi
	sti
	call syscall_dispatch
	cli
	testl %eax, %eax
	jnz trap_return
	POP_REGS
	addq $16, %rsp		/* vector, error */
	popq %rcx		/* rip */
	addq $8, %rsp		/* cs */
	popq %r11		/* rflags */
	popq %rsp		/* user rsp; IF is off, NMI/#DF use IST */
	swapgs
	sysretq

/* void switch_stack(uint64_t *save_rsp, uint64_t new_rsp) */
	.globl switch_stack
switch_stack:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

/* First run of a kernel thread: r12 = fn, r13 = arg. */
	.globl kthread_trampoline
kthread_trampoline:
	call sched_first_run
	movq %r13, %rdi
	call *%r12
	call task_exit_kthread
3:	hlt
	jmp 3b

/* First run of a user task: r12 = its trap frame on the kernel stack. */
	.globl user_trampoline
user_trampoline:
	call sched_first_run
	cli
	movq %r12, %rsp
	jmp trap_return

/*
 * long raw_copy_user(void *dst, const void *src, size_t n)
 * Returns 0, or -EFAULT (-14) when a fault hits the copy (exception table).
 * The caller has checked the user range and opened SMAP with stac.
 */
	.globl raw_copy_user
raw_copy_user:
	movq %rdx, %rcx
4:	rep movsb
	xorl %eax, %eax
	ret
5:	movq $-14, %rax
	ret
	.section __ex_table, "a"
	EXTABLE 4b, 5b
	.text

/*
 * long safe_div(uint64_t a, uint64_t b, uint64_t *q)
 * Divides with a real DIV; a #DE is recovered by the exception table and
 * returns -1.  Used by the divide_error self-test.
 */
	.globl safe_div
safe_div:
	movq %rdx, %rcx
	movq %rdi, %rax
	xorl %edx, %edx
6:	divq %rsi
	movq %rax, (%rcx)
	xorl %eax, %eax
	ret
7:	movq $-1, %rax
	ret
	.section __ex_table, "a"
	EXTABLE 6b, 7b
	.text

/*
 * long probe_read_u64(const void *p, uint64_t *out): a kernel read that may
 * fault; returns 0 or -EFAULT via the exception table.
 */
	.globl probe_read_u64
probe_read_u64:
8:	movq (%rdi), %rax
	movq %rax, (%rsi)
	xorl %eax, %eax
	ret
9:	movq $-14, %rax
	ret
	.section __ex_table, "a"
	EXTABLE 8b, 9b
	.text

/*
 * long probe_write_u64(void *p, uint64_t v): a kernel write that may fault;
 * returns 0 or -EFAULT via the exception table.
 */
	.globl probe_write_u64
probe_write_u64:
10:	movq %rsi, (%rdi)
	xorl %eax, %eax
	ret
11:	movq $-14, %rax
	ret
	.section __ex_table, "a"
	EXTABLE 10b, 11b
	.text

/*
 * Self-modifying-code targets, in their own page of .text.smc.
 * smc_target: "mov $1, %eax; ret" whose immediate the smc test rewrites.
 * jl_site: a 5-byte NOP that the test turns into "jmp jl_target" (jump label).
 */
	.section .text.smc, "ax"
	.globl smc_target, smc_target_imm, jl_site, jl_target
	.balign 16
smc_target:
	.byte 0xb8
smc_target_imm:
	.long 1
	ret
	.balign 16
jl_site:
	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00
	movl $1, %eax
	ret
	.balign 16
jl_target:
	movl $7, %eax
	ret
	.text
