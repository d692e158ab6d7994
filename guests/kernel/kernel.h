/*
 * Kernel-wide declarations of the bare-metal test guest: memory layout,
 * console and panic, boot information, and the small helpers every file uses.
 * The kernel is freestanding (no libc); errors are negative Linux errno values.
 */
#ifndef GK_KERNEL_H
#define GK_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GK_VERSION "0.1"

/* Virtual memory layout (4-level paging). */
#define KERNEL_VMA    0xffffffff80000000ul /* kernel image: phys + KERNEL_VMA */
#define DIRECT_MAP    0xffff888000000000ul /* all RAM: phys + DIRECT_MAP */
#define DEMAND_BASE   0xffffc90000000000ul /* kernel region populated on #PF */
#define DEMAND_SIZE   0x0000000040000000ul
#define KSTACK_AREA   0xffffc90040000000ul /* task kernel stacks with guard pages */
#define MODULE_BASE   0xffffffffa0000000ul /* loadable modules (within -2 GiB) */
#define MODULE_SIZE   0x0000000010000000ul
#define POKE_VA	      0xffffffffbff00000ul /* text_poke temporary alias page */
#define USER_TOP      0x0000800000000000ul /* first non-user address */
#define USER_STACK    0x00007ffffffff000ul /* top of the initial user stack */
#define USER_STACK_SZ (8ul << 20)
#define USER_MMAP     0x0000100000000000ul /* first address for mmap without hint */

#define PAGE_SIZE  4096ul
#define PAGE_MASK  (~(PAGE_SIZE - 1))
#define PAGE_UP(x) (((x) + PAGE_SIZE - 1) & PAGE_MASK)

#define MAX_MEM	       (1ul << 30)  /* the page allocator uses RAM below 1 GiB */
#define MAX_DIRECT_MAP (64ul << 30) /* the direct map covers RAM up to 64 GiB */

/* GDT selectors (Linux's layout, so SYSCALL/SYSRET use STAR like Linux). */
#define KERNEL_CS 0x10
#define KERNEL_DS 0x18
#define USER32_CS 0x23
#define USER_DS	  0x2b
#define USER_CS	  0x33
#define TSS_SEL	  0x40

/* Linux errno values. */
#define EPERM	  1
#define ENOENT	  2
#define ESRCH	  3
#define EINTR	  4
#define EIO	  5
#define E2BIG	  7
#define ENOEXEC	  8
#define ECHILD	  10
#define EAGAIN	  11
#define ENOMEM	  12
#define EFAULT	  14
#define EINVAL	  22
#define ENOSYS	  38
#define ETIMEDOUT 110

static inline uint64_t pa_to_va(uint64_t pa)
{
	return pa + DIRECT_MAP;
}

static inline uint64_t va_to_pa(uint64_t va)
{
	return va >= KERNEL_VMA ? va - KERNEL_VMA : va - DIRECT_MAP;
}

/* Boot information, parsed from Linux boot_params or the PVH start_info. */
#define BOOT_MAX_MEM 64
struct boot_mem {
	uint64_t addr, size;
	uint32_t type; /* 1 = usable RAM */
};
struct boot_info {
	const char *protocol; /* "linux64" or "pvh" */
	struct boot_mem mem[BOOT_MAX_MEM];
	unsigned nmem;
	char cmdline[512];
	uint64_t initrd_pa, initrd_size;
	uint64_t info_pa, info_size; /* the boot structure itself */
};
extern struct boot_info boot_info;

/* Linker-script symbols. */
extern char _kernel_start[], _text_end[], _rodata_start[], _rodata_end[], _data_start[],
    _kernel_end[], __ex_table_start[], __ex_table_end[];

/* console.c */
void console_putc(char c);
void console_write(const char *s, size_t n);
int printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintk(const char *fmt, va_list ap);
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void debug_exit(int code) __attribute__((noreturn));

/* string helpers (lib.c) */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strncpy_z(char *d, const char *s, size_t n); /* always NUL-terminates */

/* uaccess (entry.S): return 0 or -EFAULT; the range check is done in C. */
long copy_from_user(void *dst, uint64_t usrc, size_t n);
long copy_to_user(uint64_t udst, const void *src, size_t n);
long strncpy_from_user(char *dst, uint64_t usrc, size_t n);
long raw_copy_user(void *dst, const void *src, size_t n); /* asm, extable-protected */

/* Exception table (entry.S helpers + trap.c). */
struct extable_entry { /* Linux layout: offsets relative to each field */
	int32_t insn, fixup, data;
};
static inline uint64_t extable_insn(const struct extable_entry *e)
{
	return (uint64_t)&e->insn + (uint64_t)(int64_t)e->insn;
}
static inline uint64_t extable_fixup(const struct extable_entry *e)
{
	return (uint64_t)&e->fixup + (uint64_t)(int64_t)e->fixup;
}
extern volatile unsigned long extable_fixups;

/* CPU feature flags discovered at boot (cpu.c). */
extern bool cpu_has_smap, cpu_has_smep, cpu_has_nx, cpu_has_fsgsbase;
void cpu_init_features(void);
/* alt.c: apply the .altinstructions patch table (as Linux does), report it */
void alt_apply(void);
void alt_report(void);
static inline void stac(void)
{
	if (cpu_has_smap)
		__asm__ volatile("stac" : : : "memory");
}
static inline void clac(void)
{
	if (cpu_has_smap)
		__asm__ volatile("clac" : : : "memory");
}

/* Time (pit.c, rtc.c) */
#define HZ 1000
extern volatile uint64_t jiffies;
extern uint64_t tsc_hz;	    /* 0 when calibration failed */
extern uint64_t boot_epoch; /* seconds since 1970 at boot, from the RTC */
void pit_init(void);
void tsc_calibrate(void);
uint64_t monotonic_ns(void);
struct rtc_time {
	int year, mon, day, hour, min, sec;
};
int rtc_read(struct rtc_time *t);
uint64_t rtc_to_epoch(const struct rtc_time *t);

/* PIC (pic.c) */
void pic_init(void);
void pic_unmask(unsigned irq);
void pic_mask(unsigned irq);
void pic_eoi(unsigned irq);
bool pic_spurious(unsigned irq);

/* UART (uart.c) */
void uart_init(void);
void uart_putc_raw(char c);
void uart_irq(void);
int uart_getc_nonblock(void);
int uart_read_blocking(char *buf, size_t n);
void uart_set_loopback(bool on);
void uart_drain_rx(void);

/* ATA (ata.c) */
int ata_identify(char *model, size_t model_len, uint32_t *sectors);
int ata_read(uint32_t lba, void *buf);
int ata_write(uint32_t lba, const void *buf);
int ata_flush(void);

/* Initrd (main.c) */
int initrd_find(const char *path, const void **data, size_t *size);
bool initrd_present(void);

/* Self-test runner (runner.c) */
void runner_main(void *arg);

/* kmod glue (kmod.c) */
extern long kmod_test_counter;
int kmod_printf(const char *fmt, ...);
int kmod_load_from_initrd(const char *path, int *ret);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

#endif
