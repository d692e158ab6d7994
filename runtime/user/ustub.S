/*
 * The user stub program: the host process that holds one guest address
 * space.  It runs this code once, then only guest code and the gadget:
 *
 *   exec (stopped by PTRACE_TRACEME) -> unmap everything but this page ->
 *   no_new_privs -> seccomp filter -> int3 at USTUB_READY (controller takes
 *   over: guest code under PTRACE_SYSEMU, host calls through the gadget)
 *
 * The seccomp filter is defence in depth: guest `syscall`s never reach it
 * (PTRACE_SYSEMU stops them first), but any other way into the host kernel
 * (the vsyscall page's emulation, a controller bug resuming guest code
 * without SYSEMU) gets SIGSYS unless it is mmap/munmap/mprotect/mremap/
 * exit_group made from the gadget's `syscall` instruction: allowed outright
 * at the gadget's first address (USTUB_GADGET), handed to the controller
 * (SECCOMP_RET_TRACE: it checks the address is the gadget's current one)
 * from the same offset of any other page, the places the stub's page can
 * move to when the guest maps its address (ustub_relocate).  The batch
 * gadget's `syscall` (USTUB_BATCH_SYS) is treated the same way.
 *
 * The batch gadget maps up to USTUB_BATCH_MAX runs of guest RAM pages in
 * one host call (fault-around, docs/user-direct.md): the request table is
 * the registers the controller sets, so nothing of it stays in memory guest
 * code can read.  %rbp holds the window's first address, %rbx, %rsp,
 * %r12-%r15 one run each (layout: "One run" in ustub.h), 0 ends the
 * table.  Each run is mmap(MAP_SHARED | MAP_FIXED) of USTUB_MEMFD; the fd,
 * flags and call number are fixed here.  It stops on the int3 at
 * USTUB_BATCH_TRAP with %rax 0, or with the failing mmap's result and the
 * failed run still in %rbx.  Guest code jumping here gains nothing: it
 * runs under PTRACE_SYSEMU, so its `syscall` is the guest's own.
 */
#include "runtime/user/ustub.h"

#define NR_mmap	      9
#define NR_mprotect   10
#define NR_munmap     11
#define NR_mremap     25
#define NR_prctl      157
#define NR_exit_group 231
#define NR_seccomp    317

	.section .text.ustub, "ax"
	.globl _start
_start:
	/* everything above our page: stack, vDSO, vvar */
	mov	$NR_munmap, %eax
	movabs	$USTUB_PAGE_END, %rdi
	movabs	$(USTUB_TASK_END - USTUB_PAGE_END), %rsi
	syscall
	test	%rax, %rax
	jnz	fail
	/* prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) */
	mov	$NR_prctl, %eax
	mov	$38, %edi
	mov	$1, %esi
	xor	%edx, %edx
	xor	%r10d, %r10d
	xor	%r8d, %r8d
	syscall
	test	%rax, %rax
	jnz	fail
	/* seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog) */
	mov	$NR_seccomp, %eax
	mov	$1, %edi
	xor	%esi, %esi
	lea	prog(%rip), %rdx
	syscall
	test	%rax, %rax
	jnz	fail
	jmp	ready
fail:
	mov	%eax, %edi
	neg	%edi
	mov	$NR_exit_group, %eax
	syscall
	ud2

	.org	USTUB_READY_OFF
ready:
	int3
	ud2

	.org	USTUB_GADGET_OFF
gadget:
	syscall
	int3
	ud2

	.org	USTUB_BATCH_OFF
batch:
	jmp	2f
	.org	USTUB_BATCH_SYS_OFF
batch_sys:
	syscall
	cmp	%rax, %rdi
	jne	4f
	/* next run: the table shifts down by one register */
	mov	%rsp, %rbx
	mov	%r12, %rsp
	mov	%r13, %r12
	mov	%r14, %r13
	mov	%r15, %r14
	xor	%r15d, %r15d
2:	test	%rbx, %rbx
	jz	3f
	mov	%rbx, %rdx		/* prot */
	and	$USTUB_BATCH_PROT_MASK, %edx
	mov	%rbx, %rdi		/* address: the window + index pages */
	shr	$USTUB_BATCH_IDX_SHIFT, %rdi
	and	$USTUB_BATCH_IDX_MASK, %edi
	shl	$12, %rdi
	add	%rbp, %rdi
	mov	%rbx, %rsi		/* length: (count - 1) + 1 pages */
	shr	$USTUB_BATCH_CNT_SHIFT, %rsi
	and	$USTUB_BATCH_CNT_MASK, %esi
	inc	%rsi
	shl	$12, %rsi
	mov	%rbx, %r9		/* memfd offset */
	shr	$USTUB_BATCH_OFF_SHIFT, %r9
	shl	$12, %r9
	mov	$0x11, %r10d		/* MAP_SHARED | MAP_FIXED */
	mov	$USTUB_MEMFD, %r8d
	mov	$NR_mmap, %eax
	jmp	batch_sys
3:	xor	%eax, %eax
4:	.org	USTUB_BATCH_TRAP_OFF, 0x90	/* nops to the int3 */
	int3
	ud2

	.balign	8
prog:
	.short	(filter_end - filter) / 8
	.short	0, 0, 0
	.quad	filter

#define LD_ABS(k)	 .short 0x20; .byte 0, 0; .long k
#define JEQ(k, jt, jf)	 .short 0x15; .byte jt, jf; .long k
#define AND(k)		 .short 0x54; .byte 0, 0; .long k
#define RET(k)		 .short 0x06; .byte 0, 0; .long k
#define AUDIT_ARCH_X86_64 0xc000003e
#define RET_TRAP	 0x00030000
#define RET_TRACE	 0x7ff00000
#define RET_ALLOW	 0x7fff0000
filter:
	LD_ABS(4)				/* 0: arch */
	JEQ(AUDIT_ARCH_X86_64, 0, 6)		/* 1: to 8 */
	LD_ABS(0)				/* 2: nr */
	JEQ(NR_mmap, 5, 0)			/* 3 */
	JEQ(NR_munmap, 4, 0)			/* 4 */
	JEQ(NR_mprotect, 3, 0)			/* 5 */
	JEQ(NR_mremap, 2, 0)			/* 6 */
	JEQ(NR_exit_group, 1, 0)		/* 7 */
	RET(RET_TRAP)				/* 8 */
	LD_ABS(8)				/* 9: instruction pointer, low */
	JEQ((USTUB_GADGET + 2) & 0xffffffff, 1, 0) /* 10: to 12 */
	JEQ((USTUB_BATCH_SYS + 2) & 0xffffffff, 0, 3) /* 11: else to 15 */
	LD_ABS(12)				/* 12: instruction pointer, high */
	JEQ((USTUB_GADGET + 2) >> 32, 0, 4)	/* 13: else to 18 */
	RET(RET_ALLOW)				/* 14: a gadget where exec put it */
	AND(0xfff)				/* 15: offset in its page */
	JEQ((USTUB_GADGET + 2) & 0xfff, 1, 0)	/* 16: to 18 */
	JEQ((USTUB_BATCH_SYS + 2) & 0xfff, 0, 1) /* 17: else to 19 */
	RET(RET_TRACE)				/* 18: a moved gadget? the controller says */
	RET(RET_TRAP)				/* 19 */
filter_end:

	.section .note.GNU-stack, "", @progbits
