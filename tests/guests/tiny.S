/*
 * Tiny misbehaving "kernels" for btvm's bad-guest tests, entered through
 * the 64-bit boot protocol at e_entry (physical, identity mapped).
 *   TINY_TRIPLE: executes ud2 with no IDT loaded -> #UD, #DF, triple fault
 *   TINY_SPIN:   spins forever with interrupts off -> only --timeout ends it
 *   TINY_GARBAGE: jumps into a page of undecodable bytes
 *   TINY_ONES:   jumps to 0xffffffffffffffff (the indirect-branch lookup's
 *                old empty marker) -> #PF, #DF, triple fault, never a jump
 *                to host address 0
 * The lifecycle (docs/runtime.md "Exit statuses"), each as a kernel does it:
 *   TINY_POWEROFF: finds the FADT through the RSDP at 0xe0000 and writes
 *                SLP_TYP 5 | SLP_EN to its PM1a control port -> status 0
 *   TINY_CF9:    writes 6 to port 0xcf9 (the FADT's reset value) -> 8
 *   TINY_KBD:    writes 0xfe to the i8042 command port 0x64 -> 8
 *   TINY_HALT:   cli; hlt -> 10
 *   TINY_MMIO:   stores (plain and read-modify-write) and a load to device
 *                memory at 128 MiB (no device there: all ones), then
 *                powers off -> 0 (with a 32 MiB guest)
 */
	.section .text
	.globl	_start
_start:
#if defined(TINY_TRIPLE)
	lidt	idt_null(%rip)
	ud2
#elif defined(TINY_SPIN)
1:	jmp	1b
#elif defined(TINY_GARBAGE)
	jmp	garbage
#elif defined(TINY_ONES)
	lidt	idt_null(%rip)
	movabs	$-1, %rax
	jmp	*%rax
#elif defined(TINY_POWEROFF) || defined(TINY_MMIO)
#if defined(TINY_MMIO)
	/* device memory (not RAM, no device: writes are dropped, reads all
	 * ones): a plain store, a read-modify-write, then a load */
	movl	$0x12345678, %eax
	movl	%eax, 0x8000000
	orl	$1, 0x8000004
	movl	0x8000000, %ebx
	cmpl	$0xffffffff, %ebx
	jne	fail
#endif
	/* RSDP (revision 2) -> XSDT -> first entry, the FADT -> PM1a_CNT_BLK */
	cmpl	$0x20445352, 0xe0000	/* "RSD " */
	jne	fail
	movl	0xe0018, %esi		/* XsdtAddress (low half: below 4 GiB) */
	cmpl	$0x54445358, (%rsi)	/* "XSDT" */
	jne	fail
	movl	36(%rsi), %edi		/* Entry[0] */
	cmpl	$0x50434146, (%rdi)	/* "FACP" */
	jne	fail
	movl	64(%rdi), %edx		/* PM1a_CNT_BLK */
	movw	$(5 << 10) | (1 << 13), %ax
	outw	%ax, %dx
fail:
	cli
1:	hlt
	jmp	1b
#elif defined(TINY_CF9)
	movb	$6, %al
	movw	$0xcf9, %dx
	outb	%al, %dx
1:	jmp	1b
#elif defined(TINY_KBD)
	movb	$0xfe, %al
	outb	%al, $0x64
1:	jmp	1b
#elif defined(TINY_HALT)
	cli
	hlt
#else
#error pick a variant
#endif

	.section .rodata
idt_null:
	.word	0
	.quad	0

	.section .text
	.balign	16
garbage:
	.fill	64, 1, 0x0f	/* 0f 0f 0f ...: never a valid instruction */
	.byte	0xff, 0xff
