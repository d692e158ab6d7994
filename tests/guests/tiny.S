/*
 * Tiny misbehaving "kernels" for btvm's bad-guest tests, entered through
 * the 64-bit boot protocol at e_entry (physical, identity mapped).
 *   TINY_TRIPLE: executes ud2 with no IDT loaded -> #UD, #DF, triple fault
 *   TINY_SPIN:   spins forever with interrupts off -> only --timeout ends it
 *   TINY_GARBAGE: jumps into a page of undecodable bytes
 *   TINY_ONES:   jumps to 0xffffffffffffffff (the indirect-branch lookup's
 *                old empty marker) -> #PF, #DF, triple fault, never a jump
 *                to host address 0
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
