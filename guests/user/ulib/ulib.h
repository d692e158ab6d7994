/*
 * ulib: the test guest's tiny static C library.  Function names and
 * prototypes follow Linux/glibc so that code shared with native host builds
 * (guests/user/bench_core.c) compiles unchanged against either library.
 *
 * System calls follow the guest contract (Linux x86-64 numbers and ABI);
 * like libc, wrappers return -1 and set errno on failure, except
 * ulib_syscall() which returns the raw kernel result (negative errno).
 * printf is unbuffered across calls (one write per call), so fork never
 * duplicates pending output.
 */
#ifndef BT_GUESTS_USER_ULIB_H
#define BT_GUESTS_USER_ULIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef long ssize_t;
typedef int pid_t;
typedef long off_t;
typedef long time_t;
typedef int clockid_t;

struct timespec {
	time_t tv_sec;
	long tv_nsec;
};

/* syscall numbers (Linux x86-64) */
#include "guests/lib/sysnr.h"

#define ENOENT 2
#define ECHILD 10
#define ENOMEM 12
#define EFAULT 14
#define EINVAL 22
#define ENOSYS 38

#define PROT_NONE      0
#define PROT_READ      1
#define PROT_WRITE     2
#define PROT_EXEC      4
#define MAP_PRIVATE    0x02
#define MAP_FIXED      0x10
#define MAP_ANONYMOUS  0x20
#define MAP_FAILED     ((void *)-1)
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED   2

#define CLOCK_REALTIME	0
#define CLOCK_MONOTONIC 1

#define SIGTRAP 5
#define SIGILL	4
#define SIGFPE	8
#define SIGSEGV 11
#define SIGKILL 9

#define WTERMSIG(s)    ((s)&0x7f)
#define WIFEXITED(s)   (WTERMSIG(s) == 0)
#define WEXITSTATUS(s) (((s) >> 8) & 0xff)
#define WIFSIGNALED(s) (((signed char)(((s)&0x7f) + 1) >> 1) > 0)

extern int errno;
extern char **environ;
/* %rsp at _start, before any adjustment (tests check its alignment). */
extern uint64_t ulib_entry_rsp;

long ulib_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

ssize_t read(int fd, void *buf, size_t n);
ssize_t write(int fd, const void *buf, size_t n);
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int munmap(void *addr, size_t len);
/* Linux's mremap; the test kernel moves one whole mapping to a fixed place
 * (MREMAP_MAYMOVE | MREMAP_FIXED, the same size) and nothing else. */
void *mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr);
int sched_yield(void);
int nanosleep(const struct timespec *req, struct timespec *rem);
pid_t getpid(void);
pid_t getppid(void);
pid_t fork(void);
int execve(const char *path, char *const argv[], char *const envp[]);
pid_t wait4(pid_t pid, int *status, int options, void *rusage);
pid_t waitpid(pid_t pid, int *status, int options);
int kill(pid_t pid, int sig);
int clock_gettime(clockid_t clk, struct timespec *ts);
void _exit(int code) __attribute__((noreturn));
void exit(int code) __attribute__((noreturn));

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *getenv(const char *name);

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int dprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int puts(const char *s);
int putchar(int c);
int fflush(void *stream);
#define stdout ((void *)1)

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

#endif
