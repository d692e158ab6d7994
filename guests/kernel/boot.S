/*
 * Boot entries of the test guest kernel.
 *
 *  startup_64  ELF e_entry (phys_startup_64): Linux 64-bit boot protocol.
 *              Long mode, paging on with low memory identity-mapped, running
 *              at the PHYSICAL address; %rsi = physical boot_params.
 *  pvh_start   XEN_ELFNOTE_PHYS32_ENTRY: 32-bit protected mode, paging off,
 *              %ebx = physical hvm_start_info.  Builds long mode itself.
 *
 * Both load boot_pml4 (identity 0-1 GiB + the same 1 GiB at KERNEL_VMA),
 * jump to the higher half, zero .bss and call kmain(kind, boot_struct_pa).
 * Code before the jump runs at physical addresses, so it uses only
 * RIP-relative references (64-bit) or _pa() absolutes (32-bit).
 */
#define KERNEL_VMA 0xffffffff80000000
#define _pa(x) ((x) - KERNEL_VMA)

#define BOOT_LINUX64 1
#define BOOT_PVH     2

	.section .note.Xen, "a"
	.balign 4
	.long 4			/* namesz: "Xen\0" */
	.long 8			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.quad _pa(pvh_start)
	.balign 4

	.section .text.boot, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	cld
	/* Flat 64-bit capable GDT at its physical address. */
	lgdt _pa(boot_gdt_desc32)
	movl $0x18, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $_pa(boot_stack_top), %esp
	movl %ebx, %esi		/* hvm_start_info */
	movl $BOOT_PVH, %edi

	movl %cr4, %eax
	orl $(1 << 5), %eax	/* PAE */
	movl %eax, %cr4
	movl $_pa(boot_pml4), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	orl $(1 << 8), %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax	/* PG | PE */
	movl %eax, %cr0
	ljmp $0x10, $_pa(pvh_long)

	.code64
pvh_long:
	movq $high_entry, %rax
	jmp *%rax

	.globl startup_64
startup_64:
	cli
	cld
	movl $BOOT_LINUX64, %edi
	/* %rsi = boot_params (physical). Switch to our own tables. */
	leaq boot_pml4(%rip), %rax
	movq %rax, %cr3
	movq $high_entry, %rax
	jmp *%rax

high_entry:
	/* Running at KERNEL_VMA now. Own GDT, reload segments, far return. */
	lgdt boot_gdt_desc64(%rip)
	movl $0x18, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	leaq boot_stack_top(%rip), %rsp
	pushq $0x10
	leaq 1f(%rip), %rax
	pushq %rax
	lretq
1:
	movq %rdi, %r12
	movq %rsi, %r13
	leaq _bss_start(%rip), %rdi
	leaq _bss_end(%rip), %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq
	leaq boot_stack_top(%rip), %rsp
	pushq $0
	popfq
	movq %r12, %rdi
	movq %r13, %rsi
	xorl %ebp, %ebp
	call kmain
2:	cli
	hlt
	jmp 2b

	.section .data.pagetables, "aw"
	.balign 4096
	.globl boot_pml4
boot_pml4:
	.quad _pa(boot_pdpt_low) + 3
	.fill 510, 8, 0
	.quad _pa(boot_pdpt_high) + 3
boot_pdpt_low:
	.quad _pa(boot_pd) + 3
	.fill 511, 8, 0
boot_pdpt_high:
	.fill 510, 8, 0
	.quad _pa(boot_pd) + 3
	.quad 0
boot_pd:
	.set i, 0
	.rept 512
	.quad (i << 21) | 0x83	/* present, writable, 2 MiB */
	.set i, i + 1
	.endr

	.balign 16
boot_gdt:
	.quad 0
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x10: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x18: data */
boot_gdt_end:
boot_gdt_desc32:
	.word boot_gdt_end - boot_gdt - 1
	.long _pa(boot_gdt)
	.balign 8
boot_gdt_desc64:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt

	.section .bss
	.balign 4096
boot_stack:
	.skip 16384
	.globl boot_stack_top
boot_stack_top:
