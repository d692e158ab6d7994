/*
 * Tiny well-behaved "kernels" for tests/unit/test_vm.c, entered through the
 * 64-bit boot protocol at e_entry (physical, identity mapped, CPL 0).  Each
 * ends by writing a result to isa-debug-exit (port 0xf4), so the test sees
 * the guest's verdict as vm_result.exit_status = (value << 1) | 1.
 *   VMTEST_EXIT:  calls report, which writes 0x21 (status 0x43)
 *   VMTEST_STALE: patches report's immediate to 0x2a before calling it, so
 *                 a database built from the file holds a stale block there
 *                 (status 0x55 only if the patched bytes ran)
 *   VMTEST_IRQ:   programs the PIC and PIT, sti, spins; the IRQ 0 handler
 *                 writes 0x33 (status 0x67) if the interrupted RIP is the
 *                 spin loop's start, a block boundary, and 0x44 otherwise
 *   VMTEST_PF:    loads from an unmapped address (a soft-MMU call-out
 *                 fault); the #PF handler writes 0x55 (status 0xab) if CR2,
 *                 the error code and the saved RIP are right, 0x66 otherwise
 *   VMTEST_UD:    runs vzeroupper (VEX: AVX, which the vCPU's CPUID does not
 *                 advertise); the #UD handler writes 0x5d (status 0xbb) if
 *                 the saved RIP is that instruction, 0x6d otherwise
 *   VMTEST_GP:    ldmxcsr of an image with reserved bits set (a #GP the
 *                 host CPU raises in translated code); the #GP handler
 *                 writes 0x4d (status 0x9b) if the error code is 0 and the
 *                 saved RIP is that instruction, 0x5e otherwise
 *   VMTEST_SPLIT: maps, at 8 GiB, a RAM page next to test_vm's device page,
 *                 two RAM pages that are not adjacent in guest-physical
 *                 memory, and a RAM page next to a page that is not
 *                 present; an 8-byte store across the first pair must put
 *                 4 bytes in RAM and 4 in the device, a store and a load
 *                 across the second must reach both RAM pages, and a store
 *                 across the third must fault on its second page (#PF, CR2
 *                 there, W) having written nothing: the #PF handler writes
 *                 0x4b (status 0x97), anything else another value
 *   VMTEST_EPOCH: maps its own 2 MiB of code a second and a third time
 *                 with large pages at 8 GiB (A) and 8 GiB + 2 MiB (B),
 *                 calls epoch_f and epoch_g (two pages apart) through B and
 *                 epoch_f through A, all from one `call *%rax` (the IBL
 *                 path), then copies those pages to another 2 MiB frame
 *                 with other return values, points B's large page there and
 *                 flushes globally (CR4.PGE, no invlpg): the same calls must
 *                 return the copy's values through B and the original's
 *                 through A; 0x3e (status 0x7d) if all six are right.  A's
 *                 pages come first in the code cache's page order, so a
 *                 revalidation that answered B's pages with A's walk would
 *                 keep B's stale blocks
 *   VMTEST_SMC:   a loop whose block smc_b, reached chained from the block
 *                 the dispatcher enters (smc_a, after a PRIV exit), writes
 *                 one of its own bytes on the last iteration: the code
 *                 cache kills it while it runs, and its exit must still
 *                 find its exit record (the stub stores no target since
 *                 XLAT_VERSION 10): 0x3c (status 0x79)
 *   VMTEST_HLT:   the PIT at 8 ms, IRQ 0 counted by its handler; hlt until
 *                 10 have come, then 0x2d (status 0x5b): test_vm counts
 *                 how often the vCPU's sleep woke on the way
 *   VMTEST_L2:    stores alternately to two pages that share a first-level
 *                 TLB slot (L2_A, L2_B: 16 MiB apart), 64 times each, with
 *                 every GPR, CF/SF/AF/OF/DF, xmm0-15 and MXCSR set to known
 *                 values: all but the first few misses are served by the
 *                 memory call-out's fast path (the second-level TLB), which
 *                 must leave all of them as they were: 0x2e (status 0x5d)
 *                 if every one is, 0x3f if a GPR or the flags changed,
 *                 0x4f if an XMM register or MXCSR did, 0x5f if a store
 *                 did not land
 *   VMTEST_STR:   string instructions the string call-out's fast path
 *                 serves (test_string_fast_path): (a) rep movsb across
 *                 three pages, twice, every GPR and CF/SF/AF/OF checked
 *                 after it; (b) rep stosq, then rep movsw with DF = 1
 *                 across pages, aligned and with elements straddling
 *                 them; (c) overlapping rep movsq/movsb (DF = 0) and
 *                 movsl (DF = 1) against the same moves done with plain
 *                 loads and stores; (e) repe cmpsb and repne scasq
 *                 stopping on their second page, twice; xmm0-15 and
 *                 MXCSR checked after them; (d) rep movsb over a function that ran (its page
 *                 in the TLB for reads): the new code must run; (f) rep
 *                 movsb of 32 bytes from 16 below the end of a mapped
 *                 page into a page that is not: #PF with RSI, RDI, RCX,
 *                 CR2 and the first 16 bytes as the architecture says:
 *                 0x2f (status 0x5f) if all hold, 0x31-0x39 says which
 *                 did not
 *   VMTEST_STRMMIO: rep stosl of two dwords into test_vm's device and rep
 *                 movsl of them back into RAM, twice: 0x3a (status 0x75) if
 *                 the copy read what the fill wrote, 0x2a otherwise;
 *                 test_vm checks the device's log
 * Fixed addresses the test relies on: report at 0x201000 (vmtest.ld puts
 * .text at 0x200000).
 */
#define DEBUG_EXIT 0xf4
#define UNMAPPED   0x200000000 /* 8 GiB: above the boot identity map */
#define MMIO       0x4000000   /* 64 MiB: test_vm's device (VMTEST_MMIO) */
#define SPLIT_VA   0x200000000 /* 8 GiB: VMTEST_SPLIT's own 4 KiB pages */
#define SPLIT_RAM  0x300000    /* its RAM pages (identity mapped too) */
#define EPOCH_A    0x200000000 /* 8 GiB: VMTEST_EPOCH's aliases of the code */
#define EPOCH_B    0x200200000
#define EPOCH_COPY 0x600000    /* the 2 MiB frame A is moved to */
#define L2_A	   0x400000    /* VMTEST_L2's two pages, one first-level slot */
#define L2_B	   0x1400000
#define STR_SRC	   0x800000 /* VMTEST_STR's three-page source, */
#define STR_DST	   0x810000 /* destination, */
#define STR_REF	   0x820000 /* reference copy, */
#define STR_FPG	   0x830000 /* and the RAM page at SPLIT_VA */
#define STR_LEN	   0x2ffa

/* VMTEST_L2 and VMTEST_STR: RBP and R8-R15 set to known values; every GPR
 * but RSP and then the flags pushed; the 15 pushed GPRs compared with the
 * table at `expect` (RSI, RDI, RCX and RAX clobbered), `fail` if one
 * differs, RDI then pointing at the pushed flags. */
.macro SET_HIGH_GPRS
	movabs	$0x7777777777777777, %rbp
	movabs	$0x8888888888888888, %r8
	movabs	$0x9999999999999999, %r9
	movabs	$0xaaaaaaaaaaaaaaaa, %r10
	movabs	$0xbbbbbbbbbbbbbbbb, %r11
	movabs	$0xcccccccccccccccc, %r12
	movabs	$0xdddddddddddddddd, %r13
	movabs	$0xeeeeeeeeeeeeeeee, %r14
	movabs	$0xffffffffffffffff, %r15
.endm
.macro PUSH_GPRS_FLAGS
	pushfq
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
.endm
.macro CHECK_PUSHED_GPRS expect, fail
	lea	\expect(%rip), %rsi
	mov	%rsp, %rdi
	mov	$15, %ecx
1:	mov	(%rdi), %rax
	cmp	(%rsi), %rax
	jne	\fail
	add	$8, %rsi
	add	$8, %rdi
	dec	%ecx
	jnz	1b
.endm

	.section .text
	.globl	_start
	.type	_start, @function
_start:
#if defined(VMTEST_EXIT)
	call	report
#elif defined(VMTEST_STALE)
	movb	$0x2a, report + 1(%rip)
	call	report
#elif defined(VMTEST_IRQ)
	mov	$0x20, %edi
	lea	irq_handler(%rip), %rsi
	call	set_gate
	lidt	idtr(%rip)
	call	pic_irq0_only
	/* PIT channel 0, rate generator, 1193 (1 ms) */
	mov	$0x34, %al
	out	%al, $0x43
	mov	$0xa9, %al
	out	%al, $0x40
	mov	$0x04, %al
	out	%al, $0x40
	sti
spin:
	jmp	spin
#elif defined(VMTEST_HLT)
	mov	$0x20, %edi
	lea	tick_handler(%rip), %rsi
	call	set_gate
	lidt	idtr(%rip)
	call	pic_irq0_only
	/* PIT channel 0, rate generator, 9546 (8 ms) */
	mov	$0x34, %al
	out	%al, $0x43
	mov	$0x4a, %al
	out	%al, $0x40
	mov	$0x25, %al
	out	%al, $0x40
1:	sti
	hlt
	cmpl	$10, ticks(%rip)
	jb	1b
	mov	$0x2d, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_SMC)
	mov	$4, %ecx
	lea	smc_scratch(%rip), %rdx
	lea	smc_patch(%rip), %rsi
smc_loop:
	mov	%cr0, %rax	/* a PRIV exit: the dispatcher enters smc_a */
smc_a:
	inc	%ebx
	jmp	smc_b
smc_b:
	mov	%rdx, %rdi
	cmp	$1, %ecx
	cmove	%rsi, %rdi
	movb	$0x90, (%rdi)	/* the last time: this block's own nop */
smc_patch:
	nop
	dec	%ecx
	jnz	smc_loop
	mov	$0x3c, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_PF)
	mov	$14, %edi
	lea	pf_handler(%rip), %rsi
	call	set_gate
	lidt	idtr(%rip)
	movabs	$UNMAPPED, %rax
fault_insn:
	mov	(%rax), %rbx
	mov	$0x77, %al /* the load did not fault */
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_UD)
	mov	$6, %edi
	lea	ud_handler(%rip), %rsi
	call	set_gate
	lidt	idtr(%rip)
ud_insn:
	vzeroupper
	mov	$0x7d, %al /* it ran */
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_GP)
	mov	$13, %edi
	lea	gp_handler(%rip), %rsi
	call	set_gate
	lidt	idtr(%rip)
gp_insn:
	ldmxcsr	bad_mxcsr(%rip)
	mov	$0x6e, %al /* it ran */
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_MMIO)
	/* test_vm registers a device at MMIO (64 MiB, past this guest's RAM):
	 * a plain store, a read-modify-write, a load of what it wrote, then a
	 * 2-byte and an 8-byte store (each must reach the device whole) */
	movl	$0x11223344, %eax
	movl	%eax, MMIO
	orl	$0x100, MMIO + 4
	movl	MMIO + 4, %ebx
	cmpl	$0x1a0, %ebx
	jne	1f
	movw	$0x5566, MMIO + 2
	movabs	$0x0102030405060708, %rcx
	movq	%rcx, MMIO
	mov	$0x3c, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
1:	mov	$0x2c, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_STRMMIO)
	/* string instructions on test_vm's device (never served by the
	 * string call-out's fast path: no TLB entry maps device memory),
	 * twice, the second time with every RAM page in the TLB: rep stosl of
	 * two dwords into it, rep movsl of them back into RAM; the device
	 * sees one 4-byte access per element, as on hardware (test_vm) */
	mov	$0xa1b2c3d4, %r9d
1:	mov	$MMIO, %edi
	mov	%r9d, %eax
	mov	$2, %ecx
	rep stosl
	mov	$MMIO, %esi
	lea	strmmio_buf(%rip), %rdi
	mov	$2, %ecx
	rep movsl
	cmpl	%r9d, strmmio_buf(%rip)
	jne	2f
	cmpl	%r9d, strmmio_buf + 4(%rip)
	jne	2f
	add	$0x01010101, %r9d
	cmp	$0xa2b3c4d5, %r9d
	jbe	1b
	mov	$0x3a, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
2:	mov	$0x2a, %al		/* the copy did not read the device */
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_SPLIT)
	mov	$14, %edi
	lea	split_pf(%rip), %rsi
	call	set_gate
	lidt	idtr(%rip)
	/* boot PDPT[8] -> split_pd, PD[0] -> split_pt: SPLIT_VA + 0 RAM,
	 * + 0x1000 the device, + 0x2000 RAM, + 0x3000 not present */
	mov	%cr3, %rax
	and	$~0xfff, %rax
	mov	(%rax), %rax		/* PML4[0]: the boot PDPT */
	and	$~0xfff, %rax
	lea	split_pd(%rip), %rdx
	or	$3, %rdx
	mov	%rdx, 8 * 8(%rax)
	lea	split_pt(%rip), %rdx
	or	$3, %rdx
	mov	%rdx, split_pd(%rip)
	lea	split_pt(%rip), %rax
	movq	$SPLIT_RAM | 3, 0(%rax)
	movq	$MMIO | 3, 8(%rax)
	movq	$(SPLIT_RAM + 0x2000) | 3, 16(%rax)
	movq	$(SPLIT_RAM + 0x5000) | 3, 32(%rax)	/* +0x4000 */
	movq	$(SPLIT_RAM + 0x4000) | 3, 40(%rax)	/* +0x5000: not adjacent */
	mov	%cr3, %rax
	mov	%rax, %cr3
	movl	$0xdeadbeef, SPLIT_RAM + 0x2ffc
	movabs	$0x1122334455667788, %rcx
	movabs	$SPLIT_VA + 0xffc, %rax
	mov	%rcx, (%rax)		/* RAM | device */
	cmpl	$0x55667788, SPLIT_RAM + 0xffc
	jne	2f
	movabs	$SPLIT_VA + 0x4ffc, %rax
	mov	%rcx, (%rax)		/* RAM | RAM elsewhere */
	cmpl	$0x55667788, SPLIT_RAM + 0x5ffc
	jne	2f
	cmpl	$0x11223344, SPLIT_RAM + 0x4000
	jne	2f
	movl	$0xa1b2c3d4, SPLIT_RAM + 0x4000
	mov	(%rax), %rdx		/* and a load across them */
	movabs	$0xa1b2c3d455667788, %rsi
	cmp	%rsi, %rdx
	jne	2f
	movabs	$SPLIT_VA + 0x2ffc, %rax
split_fault_insn:
	mov	%rcx, (%rax)		/* RAM | not present: #PF, nothing written */
	mov	$0x6b, %al		/* it did not fault */
	out	%al, $DEBUG_EXIT
	jmp	stop
2:	mov	$0x7b, %al		/* the RAM half is wrong */
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_EPOCH)
	/* boot PDPT[8] -> epoch_pd: A and B both map this 2 MiB frame */
	mov	%cr3, %rax
	and	$~0xfff, %rax
	mov	(%rax), %rax		/* PML4[0]: the boot PDPT */
	and	$~0xfff, %rax
	lea	epoch_pd(%rip), %rdx
	or	$3, %rdx
	mov	%rdx, 8 * 8(%rax)
	lea	epoch_pd(%rip), %rax
	movq	$0x200000 | 0x83, 0(%rax)	/* A: P, RW, PS */
	movq	$0x200000 | 0x83, 8(%rax)	/* B */
	mov	%cr3, %rax
	mov	%rax, %cr3
	movabs	$EPOCH_B, %rbx
	movabs	$EPOCH_A, %r12
	call	epoch_calls		/* translated at B and A */
	cmp	$0x112211, %eax
	jne	2f
	/* the copy: the same code, other return values */
	mov	$0x200000, %rsi
	mov	$EPOCH_COPY, %rdi
	mov	$0x200000 / 8, %ecx
	rep movsq
	movl	$0x33, EPOCH_COPY + (epoch_f - _start) + 1
	movl	$0x44, EPOCH_COPY + (epoch_g - _start) + 1
	lea	epoch_pd(%rip), %rax
	movq	$EPOCH_COPY | 0x83, 8(%rax)	/* B moves, A stays */
	mov	%cr4, %rax
	xor	$0x80, %rax			/* PGE: a global flush, twice */
	mov	%rax, %cr4
	xor	$0x80, %rax
	mov	%rax, %cr4
	call	epoch_calls
	cmp	$0x334411, %eax
	jne	3f
	mov	$0x3e, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
2:	mov	$0x4e, %al		/* wrong before the move */
	out	%al, $DEBUG_EXIT
	jmp	stop
3:	mov	$0x5f, %al		/* wrong after it */
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_L2)
	mov	%cr4, %rax
	or	$0x600, %rax		/* OSFXSR, OSXMMEXCPT: SSE */
	mov	%rax, %cr4
	ldmxcsr	l2_mxcsr(%rip)
	/* xmm0-15 = 0x100 + n */
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	mov	$0x100 + \n, %eax
	movq	%rax, %xmm\n
	.endr
	/* CF SF AF OF, then DF */
	mov	$0x7f, %al
	add	$1, %al
	stc
	std
	/* every GPR but RSP: l2_expect; RDI and RSI the two pages */
	movabs	$0x1111111111111111, %rax
	movabs	$0x2222222222222222, %rbx
	movabs	$0x3333333333333333, %rcx
	movabs	$0x4444444444444444, %rdx
	mov	$L2_B, %esi
	mov	$L2_A, %edi
	SET_HIGH_GPRS
	.rept	64
	mov	%r8, (%rdi)
	mov	%r9, 8(%rsi)
	.endr
	PUSH_GPRS_FLAGS
	cld
	CHECK_PUSHED_GPRS l2_expect, 2f
	mov	(%rdi), %rax		/* the flags */
	and	$0xcd5, %eax
	cmp	$0xc91, %eax		/* OF DF SF AF CF */
	jne	2f
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movq	%xmm\n, %rax
	cmp	$0x100 + \n, %rax
	jne	3f
	.endr
	stmxcsr	l2_mxcsr_out(%rip)
	mov	l2_mxcsr_out(%rip), %eax
	cmp	l2_mxcsr(%rip), %eax
	jne	3f
	movabs	$0x8888888888888888, %rax
	cmp	%rax, L2_A
	jne	4f
	movabs	$0x9999999999999999, %rax
	cmp	%rax, L2_B + 8
	jne	4f
	mov	$0x2e, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
2:	mov	$0x3f, %al		/* a GPR or the flags */
	out	%al, $DEBUG_EXIT
	jmp	stop
3:	mov	$0x4f, %al		/* an XMM register or MXCSR */
	out	%al, $DEBUG_EXIT
	jmp	stop
4:	mov	$0x5f, %al		/* a store */
	out	%al, $DEBUG_EXIT
	jmp	stop
#elif defined(VMTEST_STR)
	mov	$14, %edi
	lea	str_pf(%rip), %rsi
	call	set_gate
	lidt	idtr(%rip)
	mov	%cr4, %rax
	or	$0x600, %rax		/* OSFXSR, OSXMMEXCPT: SSE */
	mov	%rax, %cr4
	ldmxcsr	str_mxcsr(%rip)
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	mov	$0x100 + \n, %eax
	movq	%rax, %xmm\n
	.endr
	/* the source: three pages of bytes 7 * i + 1 */
	mov	$STR_SRC, %edi
	xor	%ecx, %ecx
1:	imul	$7, %ecx, %eax
	inc	%eax
	mov	%al, (%rdi,%rcx)
	inc	%ecx
	cmp	$0x3000, %ecx
	jb	1b
	call	str_a			/* the pages' first use: the full path */
	call	str_a			/* then in the TLB: the fast path */
	mov	$0x2ff0, %r8d		/* DF = 1, every element in one page */
	call	str_b
	call	str_b
	mov	$0x2ff1, %r8d		/* DF = 1, two elements straddle pages */
	call	str_b
	call	str_c
	call	str_e
	call	str_e
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movq	%xmm\n, %rax
	cmp	$0x100 + \n, %rax
	jne	str_fail_xmm
	.endr
	stmxcsr	str_mxcsr_out(%rip)
	mov	str_mxcsr_out(%rip), %eax
	cmp	str_mxcsr(%rip), %eax
	jne	str_fail_xmm
	/* (d) a copy into translated code (its page in the TLB for reads) */
	call	str_fn
	cmp	$1, %eax
	jne	str_fail_smc
	mov	str_fn(%rip), %al
	lea	str_fn2(%rip), %rsi
	lea	str_fn(%rip), %rdi
	mov	$6, %ecx
	rep movsb
	call	str_fn
	cmp	$2, %eax
	jne	str_fail_smc
	mov	str_fn(%rip), %al
	lea	str_fn3(%rip), %rsi
	lea	str_fn(%rip), %rdi
	mov	$6, %ecx
	rep movsb
	call	str_fn
	cmp	$3, %eax
	jne	str_fail_smc
	/* (f) boot PDPT[8] -> split_pd, PD[0] -> split_pt: SPLIT_VA RAM
	 * (STR_FPG), SPLIT_VA + 0x1000 not present; a copy across them */
	mov	%cr3, %rax
	and	$~0xfff, %rax
	mov	(%rax), %rax		/* PML4[0]: the boot PDPT */
	and	$~0xfff, %rax
	lea	split_pd(%rip), %rdx
	or	$3, %rdx
	mov	%rdx, 8 * 8(%rax)
	lea	split_pt(%rip), %rdx
	or	$3, %rdx
	mov	%rdx, split_pd(%rip)
	lea	split_pt(%rip), %rax
	movq	$STR_FPG | 3, 0(%rax)
	mov	%cr3, %rax
	mov	%rax, %cr3
	movabs	$SPLIT_VA, %rdi
	movb	$0, (%rdi)		/* the page in the TLB, writable */
	mov	$STR_SRC, %esi
	add	$0xff0, %rdi
	mov	$0x20, %ecx
str_fault_insn:
	rep movsb
	mov	$0x38, %al		/* it did not fault */
	out	%al, $DEBUG_EXIT
	jmp	stop
str_fail_regs:
	mov	$0x31, %al		/* a GPR or the flags after (a) */
	out	%al, $DEBUG_EXIT
	jmp	stop
str_fail_a:
	mov	$0x32, %al		/* (a)'s bytes */
	out	%al, $DEBUG_EXIT
	jmp	stop
str_fail_xmm:
	mov	$0x33, %al		/* an XMM register or MXCSR */
	out	%al, $DEBUG_EXIT
	jmp	stop
str_fail_b:
	mov	$0x34, %al		/* (b), DF = 1: registers or bytes */
	out	%al, $DEBUG_EXIT
	jmp	stop
str_fail_c:
	mov	$0x36, %al		/* (c), overlapping copies */
	out	%al, $DEBUG_EXIT
	jmp	stop
str_fail_e:
	mov	$0x35, %al		/* (e), repe cmps / repne scas */
	out	%al, $DEBUG_EXIT
	jmp	stop
str_fail_smc:
	mov	$0x37, %al		/* the copy into code was not seen */
	out	%al, $DEBUG_EXIT
	jmp	stop

/* (a) rep movsb of 3 pages less 6 bytes, both sides unaligned, with every
 * GPR, CF/SF/AF/OF set to known values */
str_a:
	mov	$0x7f, %al
	add	$1, %al			/* OF SF AF */
	stc
	movabs	$0x1111111111111111, %rax
	movabs	$0x2222222222222222, %rbx
	movabs	$0x4444444444444444, %rdx
	mov	$STR_SRC + 3, %esi
	mov	$STR_DST + 1, %edi
	mov	$STR_LEN, %ecx
	SET_HIGH_GPRS
	rep movsb
	PUSH_GPRS_FLAGS
	CHECK_PUSHED_GPRS str_expect, str_fail_regs
	mov	(%rdi), %rax		/* the flags */
	and	$0xcd5, %eax
	cmp	$0x891, %eax		/* OF SF AF CF, DF clear */
	jne	str_fail_regs
	add	$16 * 8, %rsp
	mov	$STR_SRC + 3, %esi
	mov	$STR_DST + 1, %edi
	mov	$STR_LEN, %ecx
1:	mov	(%rsi), %al
	cmp	%al, (%rdi)
	jne	str_fail_a
	inc	%rsi
	inc	%rdi
	dec	%ecx
	jnz	1b
	ret

/* (b) DST cleared by rep stosq, then rep movsw with DF = 1 of 0x1000
 * words, the first (highest) at offset %r8 of SRC and DST: the bytes
 * [r8 - 0x1ffe, r8 + 2) copied, the ones either side still 0 */
str_b:
	mov	$STR_DST, %edi
	xor	%eax, %eax
	mov	$0x3000 / 8, %ecx
	rep stosq
	cmp	$STR_DST + 0x3000, %rdi
	jne	str_fail_b
	std
	lea	STR_SRC(%r8), %rsi
	lea	STR_DST(%r8), %rdi
	mov	$0x1000, %ecx
	rep movsw
	cld
	test	%rcx, %rcx
	jne	str_fail_b
	lea	STR_SRC - 0x2000(%r8), %rax
	cmp	%rax, %rsi
	jne	str_fail_b
	lea	STR_DST - 0x2000(%r8), %rax
	cmp	%rax, %rdi
	jne	str_fail_b
	lea	-0x1ffe(%r8), %rcx
	lea	2(%r8), %rdx
1:	mov	STR_SRC(%rcx), %al
	cmp	%al, STR_DST(%rcx)
	jne	str_fail_b
	inc	%rcx
	cmp	%rdx, %rcx
	jb	1b
	cmpb	$0, STR_DST(%rdx)
	jne	str_fail_b
	cmpb	$0, STR_DST - 0x1fff(%r8)
	jne	str_fail_b
	ret

/* (c) overlapping copies in DST, the same moves one element at a time
 * with plain loads and stores in REF, then DST == REF */
str_c:
	mov	$STR_SRC, %esi
	mov	$STR_DST, %edi
	mov	$0x3000, %ecx
	rep movsb
	mov	$STR_SRC, %esi
	mov	$STR_REF, %edi
	mov	$0x3000, %ecx
	rep movsb
	/* rep movsq, the destination 3 bytes above the source, across a page */
	mov	$STR_DST + 0xa00, %esi
	mov	$STR_DST + 0xa03, %edi
	mov	$400, %ecx
	rep movsq
	mov	$STR_REF + 0xa00, %esi
	mov	$STR_REF + 0xa03, %edi
	mov	$400, %ecx
1:	mov	(%rsi), %rax
	mov	%rax, (%rdi)
	add	$8, %rsi
	add	$8, %rdi
	dec	%ecx
	jnz	1b
	/* rep movsb, the destination 1 byte above: the first byte repeated */
	mov	$STR_DST + 0x1800, %esi
	mov	$STR_DST + 0x1801, %edi
	mov	$0x900, %ecx
	rep movsb
	mov	$STR_REF + 0x1800, %esi
	mov	$STR_REF + 0x1801, %edi
	mov	$0x900, %ecx
1:	mov	(%rsi), %al
	mov	%al, (%rdi)
	inc	%rsi
	inc	%rdi
	dec	%ecx
	jnz	1b
	/* rep movsl with DF = 1, the destination 2 bytes below */
	std
	mov	$STR_DST + 0x2800, %esi
	mov	$STR_DST + 0x27fe, %edi
	mov	$0x300, %ecx
	rep movsl
	cld
	mov	$STR_REF + 0x2800, %esi
	mov	$STR_REF + 0x27fe, %edi
	mov	$0x300, %ecx
1:	mov	(%rsi), %eax
	mov	%eax, (%rdi)
	sub	$4, %rsi
	sub	$4, %rdi
	dec	%ecx
	jnz	1b
	xor	%ecx, %ecx
1:	mov	STR_DST(%rcx), %rax
	cmp	%rax, STR_REF(%rcx)
	jne	str_fail_c
	add	$8, %ecx
	cmp	$0x3000, %ecx
	jb	1b
	ret

/* (e) repe cmpsb of DST against REF (equal after (c)) but for one byte
 * on their second page, and repne scasq for a quadword planted on DST's
 * second page: both stop there, with RCX, RSI/RDI and the flags of the
 * last compare as the architecture says */
str_e:
	movb	$0x10, STR_DST + 0x1803
	movb	$0x20, STR_REF + 0x1803
	mov	$STR_DST + 0x10, %esi
	mov	$STR_REF + 0x10, %edi
	mov	$0x2000, %ecx
	repe cmpsb
	pushfq
	pop	%rax
	and	$0x8d5, %eax
	cmp	$0x85, %eax		/* 0x10 - 0x20: SF PF CF */
	jne	str_fail_e
	cmp	$0x2000 - (0x1803 - 0x10 + 1), %rcx
	jne	str_fail_e
	cmp	$STR_DST + 0x1804, %rsi
	jne	str_fail_e
	cmp	$STR_REF + 0x1804, %rdi
	jne	str_fail_e
	movabs	$0x1122334455667788, %rax
	mov	%rax, STR_DST + 0x1808
	mov	$STR_DST + 8, %edi
	mov	$0x400, %ecx
	repne scasq
	jne	str_fail_e		/* ZF: found */
	cmp	$0x400 - (0x1800 / 8 + 1), %rcx
	jne	str_fail_e
	cmp	$STR_DST + 0x1810, %rdi
	jne	str_fail_e
	ret
#else
#error pick a variant
#endif
	.size	_start, . - _start

#if defined(VMTEST_EPOCH)
/* epoch_f and epoch_g through B (%rbx) and epoch_f through A (%r12), from
 * one call site: %eax = f(B) << 16 | g(B) << 8 | f(A) */
	.type	epoch_calls, @function
epoch_calls:
	xor	%ebp, %ebp
	lea	(epoch_f - _start)(%rbx), %rax
	call	epoch_one
	lea	(epoch_g - _start)(%rbx), %rax
	call	epoch_one
	lea	(epoch_f - _start)(%r12), %rax
	call	epoch_one
	mov	%ebp, %eax
	ret
	.size	epoch_calls, . - epoch_calls

	.type	epoch_one, @function
epoch_one:
	call	*%rax
	shl	$8, %ebp
	or	%eax, %ebp
	ret
	.size	epoch_one, . - epoch_one
#endif

#if defined(VMTEST_SPLIT)
	.type	split_pf, @function
split_pf:
	mov	%cr2, %rax
	movabs	$SPLIT_VA + 0x3000, %rdx
	cmp	%rdx, %rax
	jne	1f
	cmpq	$2, (%rsp)		/* error code: write, not present, supervisor */
	jne	1f
	lea	split_fault_insn(%rip), %rax
	cmp	%rax, 8(%rsp)
	jne	1f
	cmpl	$0xdeadbeef, SPLIT_RAM + 0x2ffc	/* the first half was not written */
	jne	1f
	mov	$0x4b, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
1:	mov	$0x5b, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
	.size	split_pf, . - split_pf
#endif

#if defined(VMTEST_STR)
/* (f): the copy faulted on its destination's second page having done
 * the first page's 16 bytes: RSI, RDI, RCX and those bytes say so */
	.type	str_pf, @function
str_pf:
	cmp	$0x10, %rcx
	jne	1f
	cmp	$STR_SRC + 0x10, %rsi
	jne	1f
	movabs	$SPLIT_VA + 0x1000, %rax
	cmp	%rax, %rdi
	jne	1f
	mov	%cr2, %rdx
	cmp	%rax, %rdx
	jne	1f
	cmpq	$2, (%rsp)		/* error code: write, not present, supervisor */
	jne	1f
	lea	str_fault_insn(%rip), %rax
	cmp	%rax, 8(%rsp)
	jne	1f
	mov	STR_SRC, %rax
	cmp	%rax, STR_FPG + 0xff0
	jne	1f
	mov	STR_SRC + 8, %rax
	cmp	%rax, STR_FPG + 0xff8
	jne	1f
	mov	$0x2f, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
1:	mov	$0x39, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
	.size	str_pf, . - str_pf
#endif

#if defined(VMTEST_IRQ) || defined(VMTEST_PF) || defined(VMTEST_UD) || defined(VMTEST_GP) || \
    defined(VMTEST_SPLIT) || defined(VMTEST_HLT) || defined(VMTEST_STR)
/* IDT gate %edi -> handler %rsi: 64-bit interrupt gate, current CS. */
	.type	set_gate, @function
set_gate:
	lea	idt(%rip), %rax
	shl	$4, %rdi
	add	%rdi, %rax
	mov	%si, (%rax)
	mov	%cs, %edx
	mov	%dx, 2(%rax)
	movw	$0x8e00, 4(%rax)
	mov	%rsi, %rdx
	shr	$16, %rdx
	mov	%dx, 6(%rax)
	shr	$32, %rsi
	mov	%esi, 8(%rax)
	movl	$0, 12(%rax)
	ret
	.size	set_gate, . - set_gate
#endif

#if defined(VMTEST_IRQ) || defined(VMTEST_HLT)
/* PIC: ICW1..4, vectors 0x20/0x28, only IRQ 0 unmasked. */
	.type	pic_irq0_only, @function
pic_irq0_only:
	mov	$0x11, %al
	out	%al, $0x20
	out	%al, $0xa0
	mov	$0x20, %al
	out	%al, $0x21
	mov	$0x28, %al
	out	%al, $0xa1
	mov	$4, %al
	out	%al, $0x21
	mov	$2, %al
	out	%al, $0xa1
	mov	$1, %al
	out	%al, $0x21
	out	%al, $0xa1
	mov	$0xfe, %al
	out	%al, $0x21
	mov	$0xff, %al
	out	%al, $0xa1
	ret
	.size	pic_irq0_only, . - pic_irq0_only
#endif

#if defined(VMTEST_IRQ)
	.type	irq_handler, @function
irq_handler:
	lea	spin(%rip), %rax
	cmp	%rax, (%rsp)
	jne	1f
	mov	$0x33, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
1:	mov	$0x44, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
	.size	irq_handler, . - irq_handler
#endif

#if defined(VMTEST_HLT)
	.type	tick_handler, @function
tick_handler:
	push	%rax
	incl	ticks(%rip)
	mov	$0x20, %al		/* EOI */
	out	%al, $0x20
	pop	%rax
	iretq
	.size	tick_handler, . - tick_handler
#endif

#if defined(VMTEST_PF)
	.type	pf_handler, @function
pf_handler:
	mov	%cr2, %rax
	movabs	$UNMAPPED, %rdx
	cmp	%rdx, %rax
	jne	1f
	cmpq	$0, (%rsp)	/* error code: not present, read, supervisor */
	jne	1f
	lea	fault_insn(%rip), %rax
	cmp	%rax, 8(%rsp)	/* the saved RIP is the faulting load */
	jne	1f
	mov	$0x55, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
1:	mov	$0x66, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
	.size	pf_handler, . - pf_handler
#endif

#if defined(VMTEST_UD)
	.type	ud_handler, @function
ud_handler:
	lea	ud_insn(%rip), %rax
	cmp	%rax, (%rsp)	/* #UD pushes no error code: the saved RIP */
	jne	1f
	mov	$0x5d, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
1:	mov	$0x6d, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
	.size	ud_handler, . - ud_handler
#endif

#if defined(VMTEST_GP)
	.type	gp_handler, @function
gp_handler:
	cmpq	$0, (%rsp)	/* error code 0 */
	jne	1f
	lea	gp_insn(%rip), %rax
	cmp	%rax, 8(%rsp)	/* the saved RIP is the ldmxcsr */
	jne	1f
	mov	$0x4d, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
1:	mov	$0x5e, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
	.size	gp_handler, . - gp_handler
#endif

	.type	stop, @function
stop:
	cli
	hlt
	jmp	stop
	.size	stop, . - stop

/* report: its own page, so that patching it touches no translated code */
	.org	0x1000
	.globl	report
	.type	report, @function
report:
	mov	$0x21, %al
	out	%al, $DEBUG_EXIT
	jmp	stop
	.size	report, . - report

#if defined(VMTEST_EPOCH)
/* two pages of their own, two pages apart */
	.org	0x2000
	.type	epoch_f, @function
epoch_f:
	mov	$0x11, %eax
	ret
	.size	epoch_f, . - epoch_f
	.org	0x4000
	.type	epoch_g, @function
epoch_g:
	mov	$0x22, %eax
	ret
	.size	epoch_g, . - epoch_g
#endif

#if defined(VMTEST_STR)
	.org	0x2000
	.type	str_fn, @function
str_fn:
	mov	$1, %eax
	ret
	.size	str_fn, . - str_fn
#endif

	.section .rodata
bad_mxcsr:
	.long	0xffffffff	/* reserved bits 16..31 set */
idtr:
	.word	256 * 16 - 1
	.quad	idt

#if defined(VMTEST_L2)
	.balign	8
/* the GPRs as pushed, from R15 down to RAX */
l2_expect:
	.quad	0xffffffffffffffff, 0xeeeeeeeeeeeeeeee, 0xdddddddddddddddd
	.quad	0xcccccccccccccccc, 0xbbbbbbbbbbbbbbbb, 0xaaaaaaaaaaaaaaaa
	.quad	0x9999999999999999, 0x8888888888888888, 0x7777777777777777
	.quad	L2_A, L2_B, 0x4444444444444444, 0x3333333333333333
	.quad	0x2222222222222222, 0x1111111111111111
l2_mxcsr:
	.long	0x7f80		/* round toward zero, every exception masked */
#endif
#if defined(VMTEST_STR)
	.balign	8
/* the GPRs after str_a's copy as pushed, from R15 down to RAX */
str_expect:
	.quad	0xffffffffffffffff, 0xeeeeeeeeeeeeeeee, 0xdddddddddddddddd
	.quad	0xcccccccccccccccc, 0xbbbbbbbbbbbbbbbb, 0xaaaaaaaaaaaaaaaa
	.quad	0x9999999999999999, 0x8888888888888888, 0x7777777777777777
	.quad	STR_DST + 1 + STR_LEN, STR_SRC + 3 + STR_LEN, 0x4444444444444444, 0
	.quad	0x2222222222222222, 0x1111111111111111
str_mxcsr:
	.long	0x7f80		/* round toward zero, every exception masked */
/* what the copies put at str_fn: mov $2 (then $3), %eax; ret */
str_fn2:
	.byte	0xb8, 2, 0, 0, 0, 0xc3
str_fn3:
	.byte	0xb8, 3, 0, 0, 0, 0xc3
#endif

	.section .bss
	.balign	4096
idt:
	.skip	256 * 16
#if defined(VMTEST_HLT)
ticks:
	.skip	4
#endif
#if defined(VMTEST_L2)
l2_mxcsr_out:
	.skip	4
#endif
#if defined(VMTEST_STR)
str_mxcsr_out:
	.skip	4
#endif
#if defined(VMTEST_STRMMIO)
strmmio_buf:
	.skip	8
#endif
#if defined(VMTEST_SMC)
smc_scratch:
	.skip	8
#endif
#if defined(VMTEST_EPOCH)
	.balign	4096
epoch_pd:
	.skip	4096
#endif
#if defined(VMTEST_SPLIT) || defined(VMTEST_STR)
	.balign	4096
split_pd:
	.skip	4096
split_pt:
	.skip	4096
#endif
