/* The user stub program's ELF image, embedded in btvm (ustub_ctl.c execs it
 * from a sealed memfd, so btvm needs no file next to it). */
	.section .rodata.ustub, "a"
	.globl	ustub_elf_start, ustub_elf_end
	.balign	16
ustub_elf_start:
	.incbin	USTUB_ELF_PATH
ustub_elf_end:
	.section .note.GNU-stack, "", @progbits
