/*
 * compat: 32-bit user code in an LDT code segment with a non-zero base.
 * A far jump enters it; it runs near push/pop/call/ret with a 32-bit
 * stack and a jump far back to 64-bit code (0x33).  The LDT code segment
 * is the guest's: direct execution on the host would not find it, and
 * btvm interprets compatibility-mode code (docs/user-mode.md).
 */
#include "guests/user/tests/sens.h"

#define CODE32_SEL ((2 << 3) | 7) /* LDT entry 2, RPL 3 */

/* Offset 0 of the LDT segment is compat_code.  push/pop/call/ret are
 * base-independent; the far jump back names a flat 64-bit address. */
__asm__(".pushsection .text\n"
	".balign 4096\n"
	"compat_code:\n"
	".code32\n"
	"pushl $0x1234\n"
	"popl %eax\n"
	"call 1f\n"
	"ljmpl $0x33, $compat_back\n"
	"1: pushl $0x5678\n"
	"popl %edx\n"
	"ret\n"
	".code64\n"
	"compat_run:\n" /* rdi: a stack top below 4 GiB; returns rax, rdx */
	"pushq %rbx\n"
	"pushq %rbp\n"
	"movq %rsp, compat_saved_rsp(%rip)\n"
	"movq %rdi, %rsp\n"
	"ljmpl *compat_entry(%rip)\n" /* m16:32: offset 0, CODE32_SEL */
	"compat_back:\n"
	"movq %rsp, compat_esp(%rip)\n"
	"movq compat_saved_rsp(%rip), %rsp\n"
	"movl %eax, %eax\n"
	"movl %edx, %edx\n"
	"popq %rbp\n"
	"popq %rbx\n"
	"ret\n"
	".popsection\n");

extern char compat_code[];
uint64_t compat_saved_rsp, compat_esp;
/* A far jump, not a far return, enters: QEMU 7.2 pops a far return's
 * stack with supervisor accesses, which SMAP refuses at CPL 3. */
struct __attribute__((packed)) {
	uint32_t off;
	uint16_t sel;
} compat_entry = {0, CODE32_SEL};
static uint8_t stack32[4096] __attribute__((aligned(16)));

static uint64_t compat_run_c(uint64_t top, uint64_t *esp)
{
	uint64_t rax, rdx;
	__asm__ volatile("call compat_run"
			 : "=a"(rax), "=d"(rdx), "+D"(top)
			 :
			 : "rcx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
	*esp = compat_esp;
	return rax | rdx << 32;
}

int main(void)
{
	UT_CHECK((uintptr_t)compat_code < 0x100000000ul);
	UT_CHECK((uintptr_t)(stack32 + sizeof(stack32)) < 0x100000000ul);
	struct user_desc d = {0};
	d.entry_number = 2;
	d.base_addr = (uint32_t)(uintptr_t)compat_code;
	d.limit = 0xfff;
	d.seg_32bit = 1;
	d.contents = 2; /* code, readable */
	UT_CHECK((int)sens_syscall3(SYS_modify_ldt, 0x11, (long)&d, sizeof(d)) == 0);
	uint64_t top = (uint64_t)(uintptr_t)(stack32 + sizeof(stack32));
	uint64_t esp = 0;
	uint64_t r = compat_run_c(top, &esp);
	UT_CHECKF(r == 0x0000567800001234ul, "edx:eax %#lx", (unsigned long)r);
	/* push/pop and call/ret balance: ESP back at the top */
	UT_CHECKF(esp == top, "esp %#lx, top %#lx", (unsigned long)esp, (unsigned long)top);
	return UT_DONE();
}
