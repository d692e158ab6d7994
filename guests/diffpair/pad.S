/* Layout-shift padding for the "shift" variant: moves every function,
 * string and datum of the diff test "kernel" without adding a symbol. */
	.section .text.pad, "ax"
	.fill 0x130, 1, 0xcc
	.section .rodata.pad, "a"
	.fill 0x28, 1, 0
	.section .data.pad, "aw"
	.fill 0x18, 1, 0
	.section .note.GNU-stack, "", @progbits
