/*
 * System calls (Linux x86-64 numbers and ABI): rax = number, args in rdi,
 * rsi, rdx, r10, r8, r9; result in rax, negative errno on error.  All user
 * pointers go through copy_{from,to}_user (range check, stac/clac,
 * exception table).  syscall_dispatch returns 1 when the return must use
 * IRETQ instead of SYSRETQ (after execve, or a non-canonical rip).
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/mm.h"
#include "guests/kernel/sched.h"

#include "guests/lib/sysnr.h"

#define EBADF	     9
#define ENAMETOOLONG 36

#define MAP_SHARED     0x01
#define MAP_PRIVATE    0x02
#define MAP_FIXED      0x10
#define MAP_ANONYMOUS  0x20
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED   2

struct timespec64 {
	int64_t tv_sec, tv_nsec;
};

static bool user_range_ok(uint64_t a, size_t n)
{
	return a < USER_TOP && n <= USER_TOP - a;
}

long copy_from_user(void *dst, uint64_t usrc, size_t n)
{
	if (!user_range_ok(usrc, n))
		return -EFAULT;
	stac();
	long r = raw_copy_user(dst, (const void *)usrc, n);
	clac();
	return r;
}

long copy_to_user(uint64_t udst, const void *src, size_t n)
{
	if (!user_range_ok(udst, n))
		return -EFAULT;
	stac();
	long r = raw_copy_user((void *)udst, src, n);
	clac();
	return r;
}

/* Length of the copied string, -EFAULT, or -ENAMETOOLONG. */
long strncpy_from_user(char *dst, uint64_t usrc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		long r = copy_from_user(&dst[i], usrc + i, 1);
		if (r)
			return r;
		if (!dst[i])
			return (long)i;
	}
	return -ENAMETOOLONG;
}

static long sys_read(int fd, uint64_t buf, size_t n)
{
	char kbuf[256];
	if (fd != 0)
		return -EBADF;
	if (n == 0)
		return 0;
	int got = uart_read_blocking(kbuf, MIN(n, sizeof(kbuf)));
	if (got < 0)
		return got;
	if (copy_to_user(buf, kbuf, (size_t)got))
		return -EFAULT;
	return got;
}

static long sys_write(int fd, uint64_t buf, size_t n)
{
	char kbuf[256];
	size_t done = 0;
	if (fd != 1 && fd != 2)
		return -EBADF;
	while (done < n) {
		size_t chunk = MIN(n - done, sizeof(kbuf));
		if (copy_from_user(kbuf, buf + done, chunk))
			return done ? (long)done : -EFAULT;
		console_write(kbuf, chunk);
		done += chunk;
	}
	return (long)done;
}

static long sys_mmap(uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags)
{
	struct mm *mm = current_task()->mm;
	if (!(flags & MAP_ANONYMOUS) || !(flags & MAP_PRIVATE) || (flags & MAP_SHARED))
		return -EINVAL;
	if (prot & ~7ul)
		return -EINVAL;
	uint32_t p =
	    (prot & 1 ? VMA_READ : 0) | (prot & 2 ? VMA_WRITE : 0) | (prot & 4 ? VMA_EXEC : 0);
	return (long)mm_mmap(mm, addr, len, p, flags & MAP_FIXED);
}

static long sys_nanosleep(uint64_t ureq, uint64_t urem)
{
	struct timespec64 ts;
	if (copy_from_user(&ts, ureq, sizeof(ts)))
		return -EFAULT;
	if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
		return -EINVAL;
	/* Sleep at least the requested time: tick sleeps, then check the clock. */
	const uint64_t ns_per_tick = 1000000000ul / HZ;
	uint64_t req = (uint64_t)ts.tv_sec * 1000000000ul + (uint64_t)ts.tv_nsec;
	uint64_t target = monotonic_ns() + req;
	for (;;) {
		uint64_t now = monotonic_ns();
		if (now >= target || task_killed())
			break;
		sleep_ticks((target - now + ns_per_tick - 1) / ns_per_tick);
	}
	if (urem) {
		struct timespec64 z = {0, 0};
		if (copy_to_user(urem, &z, sizeof(z)))
			return -EFAULT;
	}
	return 0;
}

static long sys_clock_gettime(int clk, uint64_t uts)
{
	uint64_t ns = monotonic_ns();
	if (clk == 0)
		ns += boot_epoch * 1000000000ul;
	else if (clk != 1)
		return -EINVAL;
	struct timespec64 ts = {(int64_t)(ns / 1000000000ul), (int64_t)(ns % 1000000000ul)};
	return copy_to_user(uts, &ts, sizeof(ts));
}

static long sys_wait4(int pid, uint64_t ustatus, int options, uint64_t rusage)
{
	int status = 0;
	if (options != 0 || rusage != 0)
		return -EINVAL;
	if (pid != -1 && pid <= 0)
		return -EINVAL;
	int r = proc_wait(pid, &status, current_task(), 0);
	if (r > 0 && ustatus && copy_to_user(ustatus, &status, sizeof(status)))
		return -EFAULT;
	return r;
}

#define EXEC_STRMAX 256
struct exec_args {
	char path[EXEC_STRMAX];
	char strs[2][32][EXEC_STRMAX];
	const char *vec[2][33];
};

static long copy_strv(struct exec_args *a, int which, uint64_t uvec)
{
	unsigned n = 0;
	if (uvec) {
		for (;; n++) {
			uint64_t p;
			if (copy_from_user(&p, uvec + n * 8, 8))
				return -EFAULT;
			if (!p)
				break;
			if (n >= 32)
				return -E2BIG;
			long r = strncpy_from_user(a->strs[which][n], p, EXEC_STRMAX);
			if (r < 0)
				return r == -ENAMETOOLONG ? -E2BIG : r;
			a->vec[which][n] = a->strs[which][n];
		}
	}
	a->vec[which][n] = NULL;
	return 0;
}

static long sys_execve(struct trap_frame *f, uint64_t upath, uint64_t uargv, uint64_t uenvp)
{
	struct task *cur = current_task();
	/* ~17 KiB of argument copies: too big for the kernel stack. */
	uint64_t pages_pa[5];
	unsigned npages = (sizeof(struct exec_args) + PAGE_SIZE - 1) / PAGE_SIZE;
	_Static_assert((sizeof(struct exec_args) + PAGE_SIZE - 1) / PAGE_SIZE <= 5, "exec args");
	/* Page allocations are not contiguous; use one region per page via the
	 * direct map only when contiguous: allocate until we get a run. */
	uint64_t base = 0;
	for (unsigned tries = 0; tries < 4 && !base; tries++) {
		for (unsigned i = 0; i < npages; i++)
			pages_pa[i] = page_alloc();
		bool ok = true;
		for (unsigned i = 0; i < npages; i++)
			if (!pages_pa[i] || pages_pa[i] != pages_pa[0] + i * PAGE_SIZE)
				ok = false;
		if (ok)
			base = pages_pa[0];
		else
			for (unsigned i = 0; i < npages; i++)
				if (pages_pa[i])
					page_put(pages_pa[i]);
	}
	if (!base)
		return -ENOMEM;
	struct exec_args *a = (struct exec_args *)pa_to_va(base);
	long r = strncpy_from_user(a->path, upath, sizeof(a->path));
	if (r >= 0)
		r = copy_strv(a, 0, uargv);
	if (r >= 0)
		r = copy_strv(a, 1, uenvp);
	struct mm *mm = NULL;
	uint64_t entry = 0, rsp = 0;
	if (r >= 0) {
		mm = mm_create();
		r = mm ? exec_load(mm, a->path, a->vec[0], a->vec[1], &entry, &rsp) : -ENOMEM;
	}
	if (r >= 0) {
		struct mm *old = cur->mm;
		const char *b = a->path;
		for (const char *p = a->path; *p; p++)
			if (*p == '/')
				b = p + 1;
		strncpy_z(cur->name, b, sizeof(cur->name));
		cur->mm = mm;
		mm_activate(mm);
		mm_destroy(old);
	} else if (mm) {
		mm_destroy(mm);
	}
	for (unsigned i = 0; i < npages; i++)
		page_put(base + i * PAGE_SIZE);
	if (r < 0)
		return r;
	memset(f, 0, sizeof(*f));
	f->rip = entry;
	f->rsp = rsp;
	f->cs = USER_CS;
	f->ss = USER_DS;
	f->rflags = 0x202;
	fpu_reset_current();
	uarch_exec_reset();
	return 0;
}

int syscall_dispatch(struct trap_frame *f)
{
	uint64_t nr = f->rax, a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8;
	long r;
	int use_iret = 0;
	switch (nr) {
	case SYS_read:
		r = sys_read((int)a0, a1, a2);
		break;
	case SYS_write:
		r = sys_write((int)a0, a1, a2);
		break;
	case SYS_mmap:
		r = sys_mmap(a0, a1, a2, a3);
		break;
	case SYS_munmap:
		r = mm_munmap(current_task()->mm, a0, a1);
		break;
	case SYS_mremap: /* one whole mapping to a fixed place, the same size */
		r = a1 != a2 || a3 != (MREMAP_MAYMOVE | MREMAP_FIXED)
			? -EINVAL
			: (long)mm_mremap(current_task()->mm, a0, a1, a4);
		break;
	case SYS_sched_yield:
		schedule();
		r = 0;
		break;
	case SYS_nanosleep:
		r = sys_nanosleep(a0, a1);
		break;
	case SYS_getpid:
		r = current_task()->pid;
		break;
	case SYS_getppid:
		r = current_task()->parent ? current_task()->parent->pid : 0;
		break;
	case SYS_fork:
		r = proc_fork(f);
		break;
	case SYS_execve:
		r = sys_execve(f, a0, a1, a2);
		if (r == 0)
			use_iret = 1;
		break;
	case SYS_exit:
	case SYS_exit_group:
		proc_exit(((int)a0 & 0xff) << 8);
	case SYS_wait4:
		r = sys_wait4((int)a0, a1, (int)a2, a3);
		break;
	case SYS_kill:
		r = proc_kill((int)a0, (int)a1, current_task());
		break;
	case SYS_clock_gettime:
		r = sys_clock_gettime((int)a0, a1);
		break;
	case SYS_modify_ldt:
		r = sys_modify_ldt((int)a0, a1, a2);
		break;
	case SYS_arch_prctl:
		r = sys_arch_prctl((int)a0, a1);
		break;
	case SYS_iopl:
		r = sys_iopl((unsigned)a0);
		break;
	case SYS_ioperm:
		r = sys_ioperm(a0, a1, (int)a2);
		break;
	case SYS_getcpu:
		r = sys_getcpu(a0, a1);
		break;
	default:
		r = -ENOSYS;
		break;
	}
	f->rax = (uint64_t)r;
	if (task_killed()) {
		sti();
		proc_exit(current_task()->kill_sig);
	}
	if (f->rip >= USER_TOP - PAGE_SIZE)
		use_iret = 1; /* SYSRET to a non-canonical rip would #GP in ring 0 */
	return use_iret;
}
