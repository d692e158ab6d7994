/*
 * Helpers of the sensitive-instruction tests (16-ldt ... 22-tsc_aux): the
 * Linux system calls they exercise (raw, through ulib_syscall), the auxv,
 * RFLAGS, and ut_child_status(): a child runs a snippet and the parent gets
 * its wait status.  Each program passes on QEMU with the test kernel, and
 * on a Linux host that provides the mechanism (tests/integration/
 * user-native.sh lists the ones this host does not).
 */
#ifndef BT_GUESTS_USER_TESTS_SENS_H
#define BT_GUESTS_USER_TESTS_SENS_H

#include "guests/user/ulib/utest.h"

#define EPERM  1
#define SIGBUS 7

#define RFLAGS_CF   (1ul << 0)
#define RFLAGS_TF   (1ul << 8)
#define RFLAGS_IF   (1ul << 9)
#define RFLAGS_DF   (1ul << 10)
#define RFLAGS_IOPL (3ul << 12)
#define RFLAGS_NT   (1ul << 14)
#define RFLAGS_AC   (1ul << 18)

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

/* modify_ldt(2)'s entry, as in Linux's asm/ldt.h */
struct user_desc {
	uint32_t entry_number;
	uint32_t base_addr;
	uint32_t limit;
	uint32_t seg_32bit : 1, contents : 2, read_exec_only : 1, limit_in_pages : 1,
	    seg_not_present : 1, useable : 1, lm : 1;
};

#define AT_HWCAP2	26
#define HWCAP2_FSGSBASE (1ul << 1)
#define VSYSCALL_ADDR	0xffffffffff600000ul

static inline long sens_syscall3(long nr, long a, long b, long c)
{
	return ulib_syscall(nr, a, b, c, 0, 0, 0);
}

/* Set the RFLAGS bits `set`, make system call *nr (its result back in
 * *nr), read RFLAGS, clear `set` again: all in one asm block, since no C
 * code may run with DF (or TF, NT) set.  Returns RFLAGS after the call. */
static inline uint64_t sens_syscall_with_flags(uint64_t *nr, uint64_t set)
{
	uint64_t after;
	__asm__ volatile("pushfq\n\t"
			 "orq %2, (%%rsp)\n\t"
			 "popfq\n\t"
			 "syscall\n\t"
			 "pushfq\n\t"
			 "popq %0\n\t"
			 "pushfq\n\t"
			 "andq %3, (%%rsp)\n\t"
			 "popfq"
			 : "=r"(after), "+a"(*nr)
			 : "r"(set), "r"(~set)
			 : "rcx", "r11", "memory", "cc");
	return after;
}

static inline uint64_t read_flags(void)
{
	uint64_t f;
	__asm__ volatile("pushfq; popq %0" : "=r"(f) : : "memory");
	return f;
}

/* The value of an auxv entry, 0 if absent. */
static inline uint64_t sens_getauxval(uint64_t type)
{
	uint64_t *p = (uint64_t *)ulib_entry_rsp;
	p += p[0] + 2; /* argc, argv[], NULL */
	while (*p)
		p++; /* envp[] */
	for (p++; p[0]; p += 2)
		if (p[0] == type)
			return p[1];
	return 0;
}

static inline void sens_cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(0));
}

/* Run fn in a child; its raw wait status (fn is expected to be killed). */
#define SENS_EXPECT_KILL(fn, sig)                                                                  \
	do {                                                                                       \
		int st_ = ut_run_child(fn);                                                        \
		UT_CHECKF(st_ != -1 && WTERMSIG(st_) == (sig),                                     \
			  "%s: wait status %#x, expected "                                         \
			  "signal %d",                                                             \
			  #fn, st_, sig);                                                          \
	} while (0)

/* Run fn in a child that must exit 0 (fn starts with SENS_CHILD_START and
 * ends with _exit(UT_DONE())). */
#define SENS_CHILD_START() (ut_failed = 0)
#define SENS_EXPECT_EXIT0(fn)                                                                      \
	do {                                                                                       \
		int st_ = ut_run_child(fn);                                                        \
		UT_CHECKF(st_ == 0, "%s: wait status %#x, expected exit 0", #fn, st_);             \
	} while (0)

#endif
