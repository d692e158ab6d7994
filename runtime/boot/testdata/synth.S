/*
 * A synthetic "kernel" for the boot-loader unit test (tests/unit/test_boot.c):
 * laid out like a Linux vmlinux (higher-half virtual addresses, physical
 * load addresses at 16 MiB, a physical e_entry, a 2 MiB-aligned data
 * segment with a large bss).  Never executed by the tests.
 */
	.section .text, "ax"
	.globl start
start:
	mov	$0xf4, %dx
	xor	%eax, %eax
	outb	%al, %dx
1:	hlt
	jmp	1b

	.section .data, "aw"
	.globl synth_magic
synth_magic:
	.quad	0x1122334455667788
	.ascii	"btvm-boot-synth"

	.section .bss, "aw", @nobits
	.globl synth_bss
synth_bss:
	.space	0x180000
