/*
 * Host-side trampolines of translated code.  Owns the host stack frame of
 * tc_enter_asm; every offset comes from pretrans/xlat/vcpu_abi.h.
 *
 * Invariants
 *  1. vcpu.host_rsp is 16-byte aligned and everything at or above it is
 *     tc_enter_asm's frame; translated code and call-outs use the stack
 *     below it only.
 *  2. On every path out of translated code (exit stub, call-out) all 16
 *     guest GPRs and the host RFLAGS are stored in the vCPU area before
 *     anything else changes them.
 *  3. C code runs with DF clear and an aligned stack.
 *  4. The guest x87/SSE state is in vcpu.fxsave whenever C code runs (exits
 *     and call-outs save it, enter and call-out returns restore it), and C
 *     code runs with the host's default x87/SSE environment (HOST_FPENV:
 *     fninit, MXCSR 0x1f80): a guest that unmasks floating-point exceptions
 *     (ldmxcsr, fldcw) cannot make btvm's own floating point fault (a
 *     hostile guest got btvm killed by SIGFPE in its statistics code).
 *     The exceptions are the fast paths of the memory and string
 *     call-outs (tc_mem_fast, tc_string_fast and the handlers they call),
 *     which run before the save and are built with -mgeneral-regs-only:
 *     they cannot touch that state at all.
 */
#include "pretrans/xlat/vcpu_abi.h"

#define GPR(n) %gs:(VCPU_OFF_GPR + 8 * (n))

/* The host's x87/SSE environment for C code (invariant 4). */
.macro HOST_FPENV
	fninit
	ldmxcsr	host_mxcsr(%rip)
.endm

	.section .rodata
	.balign	4
host_mxcsr:
	.long	0x1f80
	.text
#define TC_EXIT_BLOCK 1
#define TC_EXIT_FAULT 2

/* All guest GPRs but RSP to / from the vCPU area (RSP is special each time). */
.macro SAVE_GPRS
	mov	%rax, GPR(0)
	mov	%rcx, GPR(1)
	mov	%rdx, GPR(2)
	mov	%rbx, GPR(3)
	mov	%rbp, GPR(5)
	mov	%rsi, GPR(6)
	mov	%rdi, GPR(7)
	mov	%r8, GPR(8)
	mov	%r9, GPR(9)
	mov	%r10, GPR(10)
	mov	%r11, GPR(11)
	mov	%r12, GPR(12)
	mov	%r13, GPR(13)
	mov	%r14, GPR(14)
	mov	%r15, GPR(15)
.endm

.macro LEAVE_GUEST	/* guest GPRs, RSP and flags into the vCPU area; host stack */
	SAVE_GPRS
	mov	%rsp, GPR(4)
	mov	%gs:VCPU_OFF_HOST_RSP, %rsp
	pushfq
	popq	%gs:VCPU_OFF_RFLAGS
.endm

.macro TSC_RAX		/* rax = the TSC (rdx clobbered) */
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
.endm

.macro LOAD_GPRS
	mov	GPR(0), %rax
	mov	GPR(1), %rcx
	mov	GPR(2), %rdx
	mov	GPR(3), %rbx
	mov	GPR(5), %rbp
	mov	GPR(6), %rsi
	mov	GPR(7), %rdi
	mov	GPR(8), %r8
	mov	GPR(9), %r9
	mov	GPR(10), %r10
	mov	GPR(11), %r11
	mov	GPR(12), %r12
	mov	GPR(13), %r13
	mov	GPR(14), %r14
	mov	GPR(15), %r15
.endm

	.text

/* uint64_t tc_enter_asm(void): run vcpu.enter_target with the guest state. */
	.globl	tc_enter_asm
	.type	tc_enter_asm, @function
tc_enter_asm:
	.cfi_startproc
	push	%rbp
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	sub	$8, %rsp
	mov	%rsp, %gs:VCPU_OFF_HOST_RSP
	movb	$VCPU_EXIT_INFO_PRESET, %gs:VCPU_OFF_EXIT_INFO	/* IRQ exits store none */
	fxrstor64 %gs:VCPU_OFF_FXSAVE
	pushq	%gs:VCPU_OFF_RFLAGS
	andq	$0xcd5, (%rsp)		/* arithmetic flags and DF only */
	orq	$2, (%rsp)
	popfq
	LOAD_GPRS
	mov	GPR(4), %rsp
	jmp	*%gs:VCPU_OFF_ENTER_TGT
	.cfi_endproc
	.size	tc_enter_asm, .-tc_enter_asm

/* Common return to tc_enter_asm's caller; eax holds the exit code. */
tc_return:
	add	$8, %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	ret

/* VCPU_CO_EXIT: reached by `jmp *%gs:callout[0]` from an exit stub. */
	.globl	tc_exit_asm
	.type	tc_exit_asm, @function
tc_exit_asm:
	LEAVE_GUEST
	cmpb	$0, %gs:VCPU_OFF_FX_ARM
	jne	tc_fx_try
tc_exit_slow:
	fxsave64 %gs:VCPU_OFF_FXSAVE
	HOST_FPENV
	cld
	mov	$TC_EXIT_BLOCK, %eax
	jmp	tc_return
	.size	tc_exit_asm, .-tc_exit_asm

/*
 * Fast system calls (docs/runtime.md "Fast system calls").  Reached from
 * tc_exit_asm with every guest GPR in the vCPU area, the guest's host-form
 * flags in vcpu.rflags and RSP = vcpu.host_rsp, when the runtime armed
 * fx_arm.  The two transitions below do what cpu_syscall_enter and
 * emu_sysret do, for the cases the runtime armed them for (64-bit code,
 * flat STAR segments, no TF/IOPL/NT/AC/ID/VIF/VIP), and go on in the
 * target block found in the IBL table of the new privilege level without
 * returning to C: no FXSAVE/FXRSTOR, no dispatcher.  Anything else (not
 * armed, not found, a sysretq the fast path does not cover) continues in
 * tc_exit_slow, which leaves exactly as before.  Invariants:
 *  1. Nothing is written before the target is known: a refusal leaves the
 *     vCPU area as tc_exit_asm found it.
 *  2. The runtime learns what happened from fx_cpl, the counts and the
 *     stamps before it reads any vCPU state (vm_stay.c vm_fx_sync), at the
 *     return of tc_run and at every call-out.
 */
tc_fx_try:
	testb	$VCPU_EXIT_SYSCALL, %gs:VCPU_OFF_EXIT_INFO
	jnz	tc_fx_syscall
	testb	$VCPU_EXIT_SYSRET, %gs:VCPU_OFF_EXIT_INFO
	jnz	tc_fx_sysret
	jmp	tc_exit_slow

/* user `syscall` -> the kernel block at LSTAR */
tc_fx_syscall:
	testb	$VCPU_FX_SYSCALL, %gs:VCPU_OFF_FX_ARM
	jz	tc_exit_slow
	mov	%gs:VCPU_OFF_FX_LSTAR, %rax
	mov	%eax, %ecx
	and	$(VCPU_IBL_ENTRIES - 1), %ecx
	shl	$4, %rcx
	cmp	%rax, %gs:VCPU_OFF_IBL(%rcx)
	jne	tc_exit_slow
	mov	%gs:VCPU_OFF_IBL + 8(%rcx), %rdx
	mov	%rdx, %gs:VCPU_OFF_ENTER_TGT
	/* RCX = the next instruction, R11 = RFLAGS (arithmetic and DF from the
	 * host form, IF and AC from their bytes; nothing else is set when
	 * armed) */
	mov	%gs:VCPU_OFF_EXIT_TARGET, %rax
	add	$2, %rax
	mov	%rax, GPR(1)
	mov	%gs:VCPU_OFF_RFLAGS, %rax
	and	$0xcd5, %eax
	or	$2, %eax
	movzbl	%gs:VCPU_OFF_IRQ, %ecx
	and	$1, %ecx
	shl	$9, %ecx
	or	%ecx, %eax
	cmpb	$0, %gs:VCPU_OFF_AC
	je	1f
	or	$0x40000, %eax
1:	mov	%rax, GPR(11)
	/* RFLAGS &= ~(SFMASK | RF | VM) */
	mov	%gs:VCPU_OFF_FX_SFMASK, %rcx
	or	$0x30000, %rcx
	not	%rcx
	and	%rcx, %rax
	bt	$9, %rax
	setc	%cl
	movb	%cl, %gs:VCPU_OFF_IRQ	/* byte 0, the virtual IF */
	bt	$18, %rax
	setc	%cl
	movb	%cl, %gs:VCPU_OFF_AC
	and	$0xcd5, %eax
	or	$2, %eax
	mov	%rax, %gs:VCPU_OFF_RFLAGS
	/* CS = STAR[47:32] & ~3, SS = CS + 8 */
	mov	%gs:VCPU_OFF_FX_STAR, %rax
	shr	$32, %rax
	and	$0xfffc, %eax
	mov	%ax, %gs:VCPU_OFF_SEL + 2
	add	$8, %eax
	mov	%ax, %gs:VCPU_OFF_SEL + 4
	movb	$0, %gs:VCPU_OFF_FX_CPL
	incl	%gs:VCPU_OFF_FX_N_SYS
	TSC_RAX
	mov	%rax, %gs:VCPU_OFF_FX_T_SYS
	cmpq	$0, %gs:VCPU_OFF_FX_T_FSYS
	jne	2f
	mov	%rax, %gs:VCPU_OFF_FX_T_FSYS
2:	mov	%gs:VCPU_OFF_FX_T_RET, %rdx
	test	%rdx, %rdx
	jz	tc_fx_go		/* the stay did not start fast */
	sub	%rdx, %rax
	add	%rax, %gs:VCPU_OFF_FX_USER
	jmp	tc_fx_go

/* kernel `sysretq` -> the user block at RCX */
tc_fx_sysret:
	testb	$VCPU_FX_SYSRET, %gs:VCPU_OFF_FX_ARM
	jz	tc_exit_slow
	cmpl	$0, %gs:VCPU_OFF_FX_BUDGET
	je	tc_exit_slow
	mov	GPR(1), %rax		/* RCX: where user code resumes */
	mov	%rax, %rdx
	shr	$47, %rdx		/* a user address (and so canonical) */
	jnz	tc_exit_slow
	testl	$0x3c7100, GPR(11)	/* R11: TF IOPL NT AC VIF VIP ID */
	jnz	tc_exit_slow
	mov	%eax, %ecx
	and	$(VCPU_UIBL_ENTRIES - 1), %ecx
	shl	$4, %rcx
	mov	%rax, %rdx
	or	%gs:VCPU_OFF_UIBL_TAG, %rdx
	cmp	%rdx, %gs:VCPU_OFF_UIBL(%rcx)
	jne	tc_exit_slow
	mov	%gs:VCPU_OFF_UIBL + 8(%rcx), %rdx
	mov	%rdx, %gs:VCPU_OFF_ENTER_TGT
	/* RFLAGS = R11 (as checked: arithmetic, DF, IF) */
	mov	GPR(11), %rax
	bt	$9, %rax
	setc	%cl
	movb	%cl, %gs:VCPU_OFF_IRQ
	movb	$0, %gs:VCPU_OFF_AC
	and	$0xcd5, %eax
	or	$2, %eax
	mov	%rax, %gs:VCPU_OFF_RFLAGS
	/* CS = STAR[63:48] + 16 | 3, SS = STAR[63:48] + 8 | 3 */
	mov	%gs:VCPU_OFF_FX_STAR, %rax
	shr	$48, %rax
	lea	16(%rax), %ecx
	or	$3, %ecx
	mov	%cx, %gs:VCPU_OFF_SEL + 2
	lea	8(%rax), %ecx
	or	$3, %ecx
	mov	%cx, %gs:VCPU_OFF_SEL + 4
	movb	$3, %gs:VCPU_OFF_FX_CPL
	incl	%gs:VCPU_OFF_FX_N_RET
	decl	%gs:VCPU_OFF_FX_BUDGET
	TSC_RAX
	mov	%rax, %gs:VCPU_OFF_FX_T_RET
	cmpq	$0, %gs:VCPU_OFF_FX_T_FRET
	jne	tc_fx_go
	mov	%rax, %gs:VCPU_OFF_FX_T_FRET

/* resume guest code at enter_target, as tc_enter_asm does (the FPU state
 * never left the registers) */
tc_fx_go:
	movb	$VCPU_EXIT_INFO_PRESET, %gs:VCPU_OFF_EXIT_INFO	/* as tc_enter_asm */
	pushq	%gs:VCPU_OFF_RFLAGS
	popfq
	LOAD_GPRS
	mov	GPR(4), %rsp
	jmp	*%gs:VCPU_OFF_ENTER_TGT

/*
 * VCPU_CO_MEM, the soft-MMU slow path: reached by `jmp *%gs:callout[1]` on
 * the guest stack, guest address and resume address in the GPRs mem_info
 * names (vcpu_abi.h).  tc_callout_c sets exit_host_pc and the address GPR;
 * success resumes at exit_host_pc with the guest stack and all registers.
 *
 * First the fast path (tc_fast.c tc_mem_fast, general registers only):
 * before any FPU save, since the guest's x87/SSE state never leaves the
 * registers on it; it returns 1 having done what tc_callout_c does for a
 * served access, 0 having changed nothing.  Invariant 4 does not apply to
 * it (it is not C code that may touch the FPU).
 */
	.globl	tc_co_mem
tc_co_mem:
	LEAVE_GUEST
	cld
	mov	%gs:VCPU_OFF_HOST_CTX, %rdi
	call	tc_mem_fast		/* rsp = host_rsp: aligned */
	test	%eax, %eax
	jz	tc_co_mem_full
	pushq	%gs:VCPU_OFF_RFLAGS	/* sanitized by tc_mem_fast */
	popfq
	LOAD_GPRS
	mov	GPR(4), %rsp
	jmp	*%gs:VCPU_OFF_EXIT_HOSTPC
tc_co_mem_full:
	fxsave64 %gs:VCPU_OFF_FXSAVE
	HOST_FPENV
	mov	%gs:VCPU_OFF_HOST_CTX, %rdi
	mov	$VCPU_CO_MEM_IDX, %esi
	call	tc_callout_c		/* rsp = host_rsp: aligned */
	test	%eax, %eax
	jnz	1f
	fxrstor64 %gs:VCPU_OFF_FXSAVE
	pushq	%gs:VCPU_OFF_RFLAGS	/* sanitized by tc_callout_c */
	popfq
	LOAD_GPRS
	mov	GPR(4), %rsp
	jmp	*%gs:VCPU_OFF_EXIT_HOSTPC
1:	/* guest fault: unwind to tc_enter_asm's caller */
	mov	%gs:VCPU_OFF_HOST_RSP, %rsp
	mov	$TC_EXIT_FAULT, %eax
	jmp	tc_return

/*
 * Other call-outs: reached by `call *%gs:callout[k]` from translated code
 * that has already switched to the host stack (guest RSP in
 * vcpu.guest_rsp_save).  Stack on entry: return address at (%rsp) =
 * vcpu.host_rsp - 8.
 */
/*
 * VCPU_CO_STRING: first the fast path (tc_strfast.c tc_string_fast,
 * general registers only), before any FPU save, as tc_co_mem's: it
 * returns 1 having completed the instruction in the vCPU area, 0 to go on
 * with the full path from the registers in the vCPU area (some elements
 * may be done: the stored RSI/RDI/RCX say which), so the full path,
 * tc_callout_common, starts after the saves.
 */
	.globl	tc_co_string
tc_co_string:
	SAVE_GPRS
	pushfq
	popq	%gs:VCPU_OFF_RFLAGS
	mov	%gs:VCPU_OFF_GUEST_RSP, %rax
	mov	%rax, GPR(4)
	mov	(%rsp), %rax
	mov	%rax, %gs:VCPU_OFF_EXIT_HOSTPC
	cld
	pushq	$VCPU_CO_STRING_IDX	/* tc_callout_common's frame */
	mov	%gs:VCPU_OFF_HOST_CTX, %rdi
	call	tc_string_fast		/* rsp = host_rsp - 16: aligned */
	test	%eax, %eax
	jz	tc_callout_common
	add	$8, %rsp
	pushq	%gs:VCPU_OFF_RFLAGS	/* sanitized by tc_string_fast */
	popfq
	LOAD_GPRS
	ret

/* The full path of the `call`ed call-outs: the guest's GPRs, flags, RSP
 * and exit_host_pc are in the vCPU area; the call-out's index at (%rsp),
 * the return address into translated code at 8(%rsp). */
tc_callout_common:
	fxsave64 %gs:VCPU_OFF_FXSAVE
	HOST_FPENV
	cld
	mov	%gs:VCPU_OFF_HOST_CTX, %rdi
	mov	(%rsp), %rsi
	call	tc_callout_c		/* rsp = host_rsp - 16: aligned */
	test	%eax, %eax
	jnz	1f
	add	$8, %rsp
	fxrstor64 %gs:VCPU_OFF_FXSAVE
	pushq	%gs:VCPU_OFF_RFLAGS	/* sanitized by tc_callout_c */
	popfq
	LOAD_GPRS
	ret
1:	/* guest fault: unwind to tc_enter_asm's caller */
	mov	%gs:VCPU_OFF_HOST_RSP, %rsp
	mov	$TC_EXIT_FAULT, %eax
	jmp	tc_return

/*
 * A host signal raised by translated code itself (a guest #DE is a host
 * SIGFPE): the runtime's handler saved the guest state from the signal
 * frame into the vCPU area (gpr, rflags, fxsave, exit_host_pc) and resumes
 * here with RSP = vcpu.host_rsp; unwind exactly like a call-out fault.
 */
	.globl	tc_signal_return
	.type	tc_signal_return, @function
tc_signal_return:
	mov	%gs:VCPU_OFF_HOST_RSP, %rsp
	cld
	HOST_FPENV
	mov	$TC_EXIT_FAULT, %eax
	jmp	tc_return
	.size	tc_signal_return, .-tc_signal_return

	.section .note.GNU-stack,"",@progbits
