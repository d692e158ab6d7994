/*
 * User-visible x86 state of a task and the Linux system calls that change
 * it: the LDT (modify_ldt), port access (iopl, ioperm), the FS/GS bases
 * (arch_prctl, and rd/wr{fs,gs}base when CR4.FSGSBASE is on), getcpu, and
 * the emulated vsyscall page.  Semantics follow Linux 6.1 (arch/x86/kernel
 * ldt.c, ioport.c, process_64.c, entry/vsyscall/vsyscall_64.c):
 *  - modify_ldt: func 0 reads, 1 (old mode) and 0x11 write one 16-byte
 *    struct user_desc; descriptors are DPL 3 with the accessed bit set and
 *    L = 0; at most LDT_ENTRIES (here one page: 512) entries.  The LDT
 *    belongs to the address space: copied by fork, dropped by execve.
 *  - iopl(3) is emulated with an all-clear I/O bitmap (RFLAGS.IOPL stays 0,
 *    so cli/sti still fault); ioperm sets bits of the task's bitmap.  Both
 *    are inherited by fork and kept across execve.
 *  - FS/GS bases and selectors are saved and restored on every switch of a
 *    user task; execve resets them to 0.
 *  - The vsyscall page at VSYSCALL_ADDR is execute-only (xonly): a read
 *    faults, a call to offset 0, 0x400 or 0x800 runs gettimeofday, time or
 *    getcpu and returns to the caller; any other offset is SIGSEGV.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/mm.h"
#include "guests/kernel/sched.h"

#define LDT_ENTRIES 512 /* one page */
#define IO_PORTS    65536

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

struct user_desc {
	uint32_t entry_number;
	uint32_t base_addr;
	uint32_t limit;
	uint32_t seg_32bit : 1, contents : 2, read_exec_only : 1, limit_in_pages : 1,
	    seg_not_present : 1, useable : 1, lm : 1;
};
_Static_assert(sizeof(struct user_desc) == 16, "struct user_desc is 16 bytes");

/* ---- selectors and bases ------------------------------------------------ */

/* Load a selector into a data segment register; a selector the current
 * tables reject loads the null selector instead (exception table fixup). */
#define LOAD_SEG_SAFE(seg, value)                                                                  \
	do {                                                                                       \
		uint32_t v_ = (value);                                                             \
		__asm__ volatile("1:	movl %k0, %%" seg "\n"                                     \
				 "2:\n"                                                            \
				 ".pushsection .text.fixup, \"ax\"\n"                              \
				 "3:	xorl %k0, %k0\n"                                              \
				 "	movl %k0, %%" seg "\n"                                     \
				 "	jmp 2b\n"                                                       \
				 ".popsection\n"                                                   \
				 ".pushsection __ex_table, \"a\"\n"                                \
				 ".balign 4\n"                                                     \
				 ".long 1b - .\n"                                                  \
				 ".long 3b - .\n"                                                  \
				 ".long 0\n"                                                       \
				 ".popsection\n"                                                   \
				 : "+r"(v_)                                                        \
				 :                                                                 \
				 : "memory");                                                      \
	} while (0)

static void save_user_segs(struct task *t)
{
	uint16_t s[4];
	__asm__ volatile("movw %%ds, %0" : "=m"(s[0]));
	__asm__ volatile("movw %%es, %0" : "=m"(s[1]));
	__asm__ volatile("movw %%fs, %0" : "=m"(s[2]));
	__asm__ volatile("movw %%gs, %0" : "=m"(s[3]));
	memcpy(t->sel, s, sizeof(s));
	t->fsbase = rdmsr(MSR_FS_BASE);
	t->gsbase = rdmsr(MSR_KERNEL_GS_BASE); /* the user's while in the kernel */
}

/* Selectors first (a load sets the hidden base), then the bases.  Loading
 * %gs replaces the kernel's GS base: put it back.  Interrupts are off. */
static void load_user_segs(const struct task *t)
{
	LOAD_SEG_SAFE("ds", t->sel[0]);
	LOAD_SEG_SAFE("es", t->sel[1]);
	LOAD_SEG_SAFE("fs", t->sel[2]);
	LOAD_SEG_SAFE("gs", t->sel[3]);
	wrmsr(MSR_GS_BASE, (uint64_t)&percpu);
	wrmsr(MSR_FS_BASE, t->fsbase);
	wrmsr(MSR_KERNEL_GS_BASE, t->gsbase);
}

/* ---- I/O permission ----------------------------------------------------- */

static struct task *io_owner; /* whose bitmap the TSS holds */

static void io_load(struct task *t)
{
	if (t && t->iopl_emul == 3)
		tss_io_load(NULL, NULL);
	else if (t && t->io_pa[0])
		tss_io_load((const uint8_t *)pa_to_va(t->io_pa[0]),
			    (const uint8_t *)pa_to_va(t->io_pa[1]));
	else
		tss_io_none();
	io_owner = t;
}

static int io_alloc(struct task *t)
{
	for (unsigned i = 0; i < 2; i++) {
		t->io_pa[i] = page_alloc();
		if (!t->io_pa[i]) {
			if (i)
				page_put(t->io_pa[0]);
			t->io_pa[0] = 0;
			return -ENOMEM;
		}
		memset((void *)pa_to_va(t->io_pa[i]), 0xff, PAGE_SIZE);
	}
	return 0;
}

long sys_iopl(unsigned level)
{
	if (level > 3)
		return -EINVAL;
	struct task *t = current_task();
	uint64_t f = irq_save();
	t->iopl_emul = level == 3 ? 3 : 0;
	io_load(t);
	irq_restore(f);
	return 0;
}

long sys_ioperm(uint64_t from, uint64_t num, int on)
{
	struct task *t = current_task();
	if (from + num <= from || from + num > IO_PORTS)
		return -EINVAL;
	if (!t->io_pa[0]) {
		if (!on)
			return 0;
		if (io_alloc(t))
			return -ENOMEM;
	}
	uint8_t *map[2] = {(uint8_t *)pa_to_va(t->io_pa[0]), (uint8_t *)pa_to_va(t->io_pa[1])};
	for (uint64_t p = from; p < from + num; p++) {
		uint8_t *b = &map[p / 32768][(p % 32768) / 8];
		if (on)
			*b &= (uint8_t) ~(1u << (p % 8));
		else
			*b |= (uint8_t)(1u << (p % 8));
	}
	uint64_t f = irq_save();
	io_load(t);
	irq_restore(f);
	return 0;
}

/* ---- LDT ---------------------------------------------------------------- */

static uint64_t *ldt_table(const struct mm *mm)
{
	return (uint64_t *)pa_to_va(mm->ldt_pa);
}

static void ldt_load(const struct mm *mm)
{
	if (mm && mm->ldt_pa)
		gdt_load_ldt(pa_to_va(mm->ldt_pa), mm->ldt_entries);
	else
		gdt_load_ldt(0, 0);
}

int ldt_fork(struct mm *child, struct mm *parent)
{
	if (!parent->ldt_pa)
		return 0;
	child->ldt_pa = page_alloc();
	if (!child->ldt_pa)
		return -ENOMEM;
	memcpy(ldt_table(child), ldt_table(parent), PAGE_SIZE);
	child->ldt_entries = parent->ldt_entries;
	return 0;
}

void ldt_free(struct mm *mm)
{
	if (mm->ldt_pa)
		page_put(mm->ldt_pa);
	mm->ldt_pa = 0;
	mm->ldt_entries = 0;
}

static bool ldt_empty(const struct user_desc *d)
{
	return !d->base_addr && !d->limit && !d->contents && d->read_exec_only && !d->seg_32bit &&
	       !d->limit_in_pages && d->seg_not_present && !d->useable && !d->lm;
}

/* Linux's fill_ldt: DPL 3, S = 1, accessed set (so the table could be
 * mapped read-only), L = 0. */
static uint64_t fill_ldt(const struct user_desc *d)
{
	uint64_t type = ((uint64_t)(d->read_exec_only ^ 1) << 1) | ((uint64_t)d->contents << 2) | 1;
	return (d->limit & 0xffffull) | ((uint64_t)(d->base_addr & 0xffffff) << 16) | (type << 40) |
	       (1ull << 44) | (3ull << 45) | ((uint64_t)(d->seg_not_present ^ 1) << 47) |
	       ((uint64_t)((d->limit >> 16) & 0xf) << 48) | ((uint64_t)d->useable << 52) |
	       ((uint64_t)d->seg_32bit << 54) | ((uint64_t)d->limit_in_pages << 55) |
	       ((uint64_t)(d->base_addr >> 24) << 56);
}

static long write_ldt(uint64_t uptr, uint64_t bytecount, bool oldmode)
{
	struct user_desc d;
	struct mm *mm = current_task()->mm;
	if (bytecount != sizeof(d))
		return -EINVAL;
	if (copy_from_user(&d, uptr, sizeof(d)))
		return -EFAULT;
	if (d.entry_number >= LDT_ENTRIES)
		return -EINVAL;
	if (d.contents == 3 && (oldmode || !d.seg_not_present))
		return -EINVAL;
	uint64_t desc = 0;
	if (!((oldmode && !d.base_addr && !d.limit) || ldt_empty(&d))) {
		desc = fill_ldt(&d);
		if (oldmode)
			desc &= ~(1ull << 52); /* avl */
	}
	if (!mm->ldt_pa) {
		mm->ldt_pa = page_alloc();
		if (!mm->ldt_pa)
			return -ENOMEM;
		memset(ldt_table(mm), 0, PAGE_SIZE);
	}
	uint64_t f = irq_save();
	ldt_table(mm)[d.entry_number] = desc;
	if (d.entry_number >= mm->ldt_entries)
		mm->ldt_entries = d.entry_number + 1;
	ldt_load(mm);
	irq_restore(f);
	return 0;
}

/* Linux: bytecount clamped to the table size, the entries then zeros. */
static long read_ldt(uint64_t uptr, uint64_t bytecount)
{
	struct mm *mm = current_task()->mm;
	if (!mm->ldt_pa)
		return 0;
	if (bytecount > LDT_ENTRIES * 8)
		bytecount = LDT_ENTRIES * 8;
	uint64_t have = (uint64_t)mm->ldt_entries * 8;
	uint64_t n = have < bytecount ? have : bytecount;
	if (copy_to_user(uptr, ldt_table(mm), n))
		return -EFAULT;
	static const uint8_t zeros[64];
	for (uint64_t o = n; o < bytecount; o += sizeof(zeros)) {
		uint64_t k = bytecount - o < sizeof(zeros) ? bytecount - o : sizeof(zeros);
		if (copy_to_user(uptr + o, zeros, k))
			return -EFAULT;
	}
	return (long)bytecount;
}

/* Linux returns the result as an unsigned int (-EINVAL is 0xffffffea):
 * the ABI glibc and the selftests know. */
long sys_modify_ldt(int func, uint64_t uptr, uint64_t bytecount)
{
	long r;
	switch (func) {
	case 0:
		r = read_ldt(uptr, bytecount);
		break;
	case 1:
		r = write_ldt(uptr, bytecount, true);
		break;
	case 0x11:
		r = write_ldt(uptr, bytecount, false);
		break;
	default:
		r = -ENOSYS;
		break;
	}
	return (long)(unsigned int)r;
}

/* ---- FS/GS base, getcpu ------------------------------------------------- */

long sys_arch_prctl(int code, uint64_t addr)
{
	uint64_t v;
	switch (code) {
	case ARCH_SET_FS:
	case ARCH_SET_GS: {
		if (addr >= USER_TOP - PAGE_SIZE) /* Linux: TASK_SIZE_MAX */
			return -EPERM;
		uint64_t f = irq_save();
		if (code == ARCH_SET_FS) {
			LOAD_SEG_SAFE("fs", 0);
			wrmsr(MSR_FS_BASE, addr);
		} else {
			LOAD_SEG_SAFE("gs", 0);
			wrmsr(MSR_GS_BASE, (uint64_t)&percpu);
			wrmsr(MSR_KERNEL_GS_BASE, addr);
		}
		irq_restore(f);
		return 0;
	}
	case ARCH_GET_FS:
		v = rdmsr(MSR_FS_BASE);
		return copy_to_user(addr, &v, sizeof(v)) ? -EFAULT : 0;
	case ARCH_GET_GS:
		v = rdmsr(MSR_KERNEL_GS_BASE);
		return copy_to_user(addr, &v, sizeof(v)) ? -EFAULT : 0;
	default:
		return -EINVAL;
	}
}

long sys_getcpu(uint64_t ucpu, uint64_t unode)
{
	unsigned cpu = 0, node = GK_NODE;
	if (ucpu && copy_to_user(ucpu, &cpu, sizeof(cpu)))
		return -EFAULT;
	if (unode && copy_to_user(unode, &node, sizeof(node)))
		return -EFAULT;
	return 0;
}

/* ---- task life cycle ---------------------------------------------------- */

void uarch_switch(struct task *prev, struct task *next)
{
	if (prev->mm)
		save_user_segs(prev);
	if (!next->mm)
		return; /* a kernel thread keeps whatever is loaded */
	ldt_load(next->mm);
	if (io_owner != next)
		io_load(next);
	load_user_segs(next);
}

int uarch_fork(struct task *child, struct task *parent)
{
	save_user_segs(parent); /* the live values are the parent's */
	memcpy(child->sel, parent->sel, sizeof(child->sel));
	child->fsbase = parent->fsbase;
	child->gsbase = parent->gsbase;
	child->iopl_emul = parent->iopl_emul;
	if (parent->io_pa[0]) {
		if (io_alloc(child))
			return -ENOMEM;
		for (unsigned i = 0; i < 2; i++)
			memcpy((void *)pa_to_va(child->io_pa[i]),
			       (const void *)pa_to_va(parent->io_pa[i]), PAGE_SIZE);
	}
	return 0;
}

void uarch_exit(struct task *t)
{
	uint64_t f = irq_save();
	for (unsigned i = 0; i < 2; i++)
		if (t->io_pa[i])
			page_put(t->io_pa[i]);
	t->io_pa[0] = t->io_pa[1] = 0;
	t->iopl_emul = 0;
	if (io_owner == t)
		io_load(NULL);
	irq_restore(f);
}

void uarch_exec_reset(void)
{
	struct task *t = current_task();
	uint64_t f = irq_save();
	memset(t->sel, 0, sizeof(t->sel));
	t->fsbase = t->gsbase = 0;
	load_user_segs(t);
	ldt_load(t->mm); /* the new address space has no LDT */
	irq_restore(f);
}

/* ---- vsyscall page ------------------------------------------------------ */

bool vsyscall_emulate(struct trap_frame *f, uint64_t addr, uint64_t error)
{
	/* an instruction fetch of an entry point (the I/D bit exists only with
	 * NX: without it, a fetch is a fault whose address is the RIP) */
	if (f->rip != addr || (cpu_has_nx && !(error & 0x10)))
		return false;
	uint64_t off = addr - VSYSCALL_ADDR;
	uint64_t ret;
	if (off != 0 && off != 0x400 && off != 0x800)
		return false;
	if (copy_from_user(&ret, f->rsp, sizeof(ret)))
		return false;
	uint64_t ns = monotonic_ns() + boot_epoch * 1000000000ul;
	long r = 0;
	if (off == 0) { /* gettimeofday(tv, tz) */
		int64_t tv[2] = {(int64_t)(ns / 1000000000ul), (int64_t)(ns % 1000000000ul / 1000)};
		int32_t tz[2] = {0, 0};
		if ((f->rdi && copy_to_user(f->rdi, tv, sizeof(tv))) ||
		    (f->rsi && copy_to_user(f->rsi, tz, sizeof(tz))))
			r = -EFAULT;
	} else if (off == 0x400) { /* time(tloc) */
		int64_t s = (int64_t)(ns / 1000000000ul);
		r = s;
		if (f->rdi && copy_to_user(f->rdi, &s, sizeof(s)))
			r = -EFAULT;
	} else { /* getcpu(cpu, node, cache) */
		r = sys_getcpu(f->rdi, f->rsi);
	}
	f->rax = (uint64_t)r;
	f->rip = ret;
	f->rsp += 8;
	return true;
}
