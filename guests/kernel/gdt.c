/*
 * GDT (Linux selector layout), the 64-bit TSS with rsp0 for the current task,
 * IST stacks for #DF (IST1) and NMI (IST2) and an I/O permission bitmap
 * (Linux's layout: 8 KiB of bits then a 0xff byte; the map offset points
 * past the TSS limit while the task has no port access), the LDT
 * descriptor of the current address space (0x50), the per-CPU area behind
 * GS_BASE (KERNEL_GS_BASE holds the user GS while in the kernel, swapped by
 * swapgs), and the SYSCALL MSRs.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/sched.h"

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
	uint8_t io_bitmap[8192 + 1]; /* 1 = denied; the last byte stays 0xff */
} __attribute__((packed));
#define TSS_IOMAP_OFF 104
_Static_assert(__builtin_offsetof(struct tss, io_bitmap) == TSS_IOMAP_OFF,
	       "64-bit TSS is 104 bytes before the I/O bitmap");

#define LDT_SEL 0x50

static uint64_t gdt[12] __attribute__((aligned(16))) = {
    0,
    0x00cf9a000000ffff, /* 0x08 kernel 32-bit code (unused) */
    0x00af9a000000ffff, /* 0x10 kernel code */
    0x00cf92000000ffff, /* 0x18 kernel data */
    0x00cffa000000ffff, /* 0x23 user 32-bit code */
    0x00cff2000000ffff, /* 0x2b user data */
    0x00affa000000ffff, /* 0x33 user code */
    0,
    0, /* 0x40 TSS (two slots) */
    0,
    0, /* 0x50 LDT (two slots) */
    0,
};

static struct tss tss __attribute__((aligned(16)));
static uint8_t df_stack[8192] __attribute__((aligned(16)));
static uint8_t nmi_stack[8192] __attribute__((aligned(16)));

struct percpu percpu;

struct __attribute__((packed)) dtr {
	uint16_t limit;
	uint64_t base;
};

void gdt_init(void)
{
	uint64_t base = (uint64_t)&tss;
	uint64_t limit = sizeof(tss) - 1;

	tss.ist[0] = (uint64_t)(df_stack + sizeof(df_stack));
	tss.ist[1] = (uint64_t)(nmi_stack + sizeof(nmi_stack));
	memset(tss.io_bitmap, 0xff, sizeof(tss.io_bitmap));
	tss_io_none();
	gdt[8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ul << 40) |
		 (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[9] = base >> 32;

	struct dtr d = {sizeof(gdt) - 1, (uint64_t)gdt};
	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movl %2, %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "movl %%eax, %%ss\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "movl %%eax, %%fs\n\t"
			 "movl %%eax, %%gs\n\t"
			 :
			 : "m"(d), "i"(KERNEL_CS), "i"(KERNEL_DS)
			 : "rax", "memory");
	__asm__ volatile("ltr %w0" : : "r"(TSS_SEL));

	percpu.self = &percpu;
	wrmsr(MSR_GS_BASE, (uint64_t)&percpu);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
}

void tss_io_none(void)
{
	tss.iomap_base = sizeof(tss); /* past the limit: ring 3 has no port access */
}

void tss_io_load(const uint8_t *lo, const uint8_t *hi)
{
	if (lo) {
		memcpy(tss.io_bitmap, lo, 4096);
		memcpy(tss.io_bitmap + 4096, hi, 4096);
	} else {
		memset(tss.io_bitmap, 0, 8192);
	}
	tss.iomap_base = TSS_IOMAP_OFF;
}

void gdt_load_ldt(uint64_t base, unsigned entries)
{
	if (!entries) {
		__asm__ volatile("lldt %w0" : : "r"(0));
		return;
	}
	uint64_t limit = (uint64_t)entries * 8 - 1;
	gdt[10] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x82ul << 40) |
		  (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[11] = base >> 32;
	__asm__ volatile("lldt %w0" : : "r"(LDT_SEL) : "memory");
}

void tss_set_rsp0(uint64_t rsp0)
{
	tss.rsp[0] = rsp0;
	percpu.kstack_top = rsp0;
}

void syscall_init(void)
{
	wrmsr(MSR_STAR, ((uint64_t)(USER32_CS & ~3) << 48) | ((uint64_t)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_CSTAR, 0);
	/* Clear TF, DF, IF, IOPL, AC, NT on entry, as Linux does. */
	wrmsr(MSR_SFMASK, 0x47700);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
}
