/*
 * Multiboot (v1, a.out kludge) boot stub that boots kernel.elf through the
 * Linux 64-bit boot protocol under QEMU, the path btvm uses:
 *   qemu -kernel kernel-bootstub.bin -initrd "kernel.elf,initrd.cpio"
 * 32-bit entry: identity-map 1 GiB, enter long mode, call stub_main (C),
 * which loads the ELF and builds boot_params, then jump to e_entry with
 * %rsi = boot_params, interrupts off, CS 0x10 / DS 0x18 (boot.rst).
 */
#define STUB_BASE 0x1000000
#define BOOT_PARAMS 0x7000

	.section .text.head, "ax"
	.code32
	.globl _start
mb_header:
	.long 0x1badb002
	.long 0x00010003		/* page-align modules, memory info, a.out kludge */
	.long -(0x1badb002 + 0x00010003)
	.long mb_header			/* header_addr */
	.long mb_header			/* load_addr */
	.long _load_end			/* load_end_addr */
	.long _bss_end			/* bss_end_addr */
	.long _start			/* entry_addr */
_start:
	cli
	cld
	movl $stack_top, %esp
	movl %eax, mb_magic
	movl %ebx, mb_info
	lgdt gdt_desc
	movl %cr4, %eax
	orl $(1 << 5), %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	orl $(1 << 8), %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax
	movl %eax, %cr0
	ljmp $0x10, $long_entry

	.code64
long_entry:
	movl $0x18, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq $stack_top, %rsp
	movl mb_info, %edi
	movl mb_magic, %esi
	call stub_main
	movq $BOOT_PARAMS, %rsi
	xorl %ebp, %ebp
	xorl %ebx, %ebx
	xorl %edi, %edi
	pushq $2
	popfq
	jmp *%rax

	.data
	.balign 4096
pml4:
	.quad pdpt + 3
	.fill 511, 8, 0
pdpt:
	.quad pd + 3
	.fill 511, 8, 0
pd:
	.set i, 0
	.rept 512
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr
	.balign 16
gdt:
	.quad 0
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x10 __BOOT_CS */
	.quad 0x00cf92000000ffff	/* 0x18 __BOOT_DS */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
mb_magic:
	.long 0
mb_info:
	.long 0

	.bss
	.balign 16
	.skip 16384
stack_top:
