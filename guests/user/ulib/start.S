/*
 * _start for guest user programs: the kernel enters with the Linux initial
 * stack (argc, argv[], NULL, envp[], NULL, auxv) and %rsp 16-byte aligned.
 * Records the entry %rsp, builds main(argc, argv, envp) and exits with its
 * return value.  The alignment is enforced again before the call so a
 * kernel bug shows up in a test (ulib_entry_rsp), not as a stray #GP.
 */
	.text
	.globl _start
	.type _start, @function
_start:
	xor %ebp, %ebp
	mov %rsp, ulib_entry_rsp(%rip)
	mov (%rsp), %rdi               /* argc */
	lea 8(%rsp), %rsi              /* argv */
	lea 16(%rsp,%rdi,8), %rdx      /* envp = argv + argc + 1 */
	mov %rdx, environ(%rip)
	and $-16, %rsp
	call main
	mov %eax, %edi
	call exit
	ud2
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
