/*
 * lk-nop: the smallest static program, for fork+exec timing in a Linux guest
 * (no libc: its exec maps a few pages and its run is one exit system call,
 * so what is timed is the kernel's fork, exec and exit).
 *
 *   gcc -static -nostdlib -O2 -o lk-nop lk-nop.c
 */
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
	__builtin_unreachable();
}
