/*
 * Native reference runner for the differential tests: loads a full
 * register/flags state, jumps to test code, and captures the state when the
 * code jumps to xh_native_ret (GPRs, RFLAGS and the fxsave64 image: the
 * layout of struct xh_state, tests/xlat/harness.h).  %fs/%gs bases are switched with raw
 * arch_prctl system calls inside, so no C code runs with a foreign FS.
 */
	.data
	.align 16
native_out:	.zero 136
	.align 16
native_fx:	.zero 512
native_host_rsp:	.quad 0
native_target:	.quad 0
native_fs_orig:	.quad 0
native_gs_restore:	.quad 0

	.text
/* void xh_native_asm(struct xh_state *st, const void *code, uint64_t fs,
 *                    uint64_t gs, uint64_t fs_orig, uint64_t gs_restore) */
	.globl	xh_native_asm
xh_native_asm:
	push	%rbp
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	push	%rdi			/* st, for the copy-out */
	sub	$8, %rsp
	mov	%rsp, native_host_rsp(%rip)
	mov	%rsi, native_target(%rip)
	mov	%r8, native_fs_orig(%rip)
	mov	%r9, native_gs_restore(%rip)
	mov	%rdi, %rbx
	mov	%rcx, %r12
	/* fs */
	mov	$158, %eax
	mov	$0x1002, %edi
	mov	%rdx, %rsi
	syscall
	/* gs */
	mov	$158, %eax
	mov	$0x1001, %edi
	mov	%r12, %rsi
	syscall
	mov	%rbx, %rdi
	fxrstor64 144(%rdi)		/* st->fx */
	pushq	128(%rdi)
	popfq
	mov	0(%rdi), %rax
	mov	8(%rdi), %rcx
	mov	16(%rdi), %rdx
	mov	24(%rdi), %rbx
	mov	40(%rdi), %rbp
	mov	48(%rdi), %rsi
	mov	64(%rdi), %r8
	mov	72(%rdi), %r9
	mov	80(%rdi), %r10
	mov	88(%rdi), %r11
	mov	96(%rdi), %r12
	mov	104(%rdi), %r13
	mov	112(%rdi), %r14
	mov	120(%rdi), %r15
	mov	32(%rdi), %rsp
	mov	56(%rdi), %rdi
	jmp	*native_target(%rip)

	.globl	xh_native_ret
xh_native_ret:
	mov	%rax, native_out+0(%rip)
	mov	%rcx, native_out+8(%rip)
	mov	%rdx, native_out+16(%rip)
	mov	%rbx, native_out+24(%rip)
	mov	%rsp, native_out+32(%rip)
	mov	%rbp, native_out+40(%rip)
	mov	%rsi, native_out+48(%rip)
	mov	%rdi, native_out+56(%rip)
	mov	%r8, native_out+64(%rip)
	mov	%r9, native_out+72(%rip)
	mov	%r10, native_out+80(%rip)
	mov	%r11, native_out+88(%rip)
	mov	%r12, native_out+96(%rip)
	mov	%r13, native_out+104(%rip)
	mov	%r14, native_out+112(%rip)
	mov	%r15, native_out+120(%rip)
	mov	native_host_rsp(%rip), %rsp
	pushfq
	popq	native_out+128(%rip)
	fxsave64 native_fx(%rip)
	cld
	mov	$158, %eax
	mov	$0x1002, %edi
	mov	native_fs_orig(%rip), %rsi
	syscall
	mov	$158, %eax
	mov	$0x1001, %edi
	mov	native_gs_restore(%rip), %rsi
	syscall
	add	$8, %rsp
	pop	%rdi
	lea	native_out(%rip), %rsi
	mov	$17, %ecx
	rep movsq
	add	$8, %rdi		/* st->fx */
	lea	native_fx(%rip), %rsi
	mov	$64, %ecx
	rep movsq
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	ret

	.section .note.GNU-stack,"",@progbits
