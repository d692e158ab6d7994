/*
 * ulib system-call wrappers (guest contract: `syscall`, Linux numbers,
 * rax nr; rdi rsi rdx r10 r8 r9; result in rax; rcx/r11 clobbered).
 * Invariant: every wrapper but ulib_syscall maps a negative kernel result
 * to -1 with errno set, as libc does.
 */
#include "guests/user/ulib/ulib.h"

int errno;
char **environ;
uint64_t ulib_entry_rsp;

long ulib_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static long ulib_ret(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

#define SC0(nr)		 ulib_ret(ulib_syscall(nr, 0, 0, 0, 0, 0, 0))
#define SC3(nr, a, b, c) ulib_ret(ulib_syscall(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0))
#define SC6(nr, a, b, c, d, e, f)                                                                  \
	ulib_ret(ulib_syscall(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

ssize_t read(int fd, void *buf, size_t n)
{
	return SC3(SYS_read, fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return SC3(SYS_write, fd, buf, n);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = ulib_syscall(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	return (void *)r;
}

int munmap(void *addr, size_t len)
{
	return (int)SC3(SYS_munmap, addr, len, 0);
}

void *mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	long r = ulib_syscall(SYS_mremap, (long)old, (long)old_len, (long)new_len, flags,
			      (long)new_addr, 0);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	return (void *)r;
}

int sched_yield(void)
{
	return (int)SC0(SYS_sched_yield);
}

int nanosleep(const struct timespec *req, struct timespec *rem)
{
	return (int)SC3(SYS_nanosleep, req, rem, 0);
}

pid_t getpid(void)
{
	return (pid_t)SC0(SYS_getpid);
}

pid_t getppid(void)
{
	return (pid_t)SC0(SYS_getppid);
}

int kill(pid_t pid, int sig)
{
	return (int)SC3(SYS_kill, pid, sig, 0);
}

pid_t fork(void)
{
	return (pid_t)SC0(SYS_fork);
}

int execve(const char *path, char *const argv[], char *const envp[])
{
	return (int)SC3(SYS_execve, path, argv, envp);
}

pid_t wait4(pid_t pid, int *status, int options, void *rusage)
{
	return (pid_t)SC6(SYS_wait4, pid, status, options, rusage, 0, 0);
}

pid_t waitpid(pid_t pid, int *status, int options)
{
	return wait4(pid, status, options, NULL);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	return (int)SC3(SYS_clock_gettime, clk, ts, 0);
}

void _exit(int code)
{
	for (;;)
		ulib_syscall(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

void exit(int code)
{
	_exit(code);
}
