/*
 * exec_fault: instruction fetches the page tables forbid fault.  A `ret`
 * written to a read/write (non-executable) anonymous page faults when
 * called (#PF, SIGSEGV).  The vsyscall page at 0xffffffffff600000 is
 * execute-only, as in Linux's default xonly mode: calling its entries at
 * 0, 0x400 and 0x800 runs gettimeofday, time and getcpu (the kernel
 * emulates them on the fetch fault), reading it or calling another offset
 * kills the process.
 */
#include "guests/user/tests/sens.h"

static void *page;

static void call_data_page(void)
{
	((void (*)(void))page)();
}

static void read_vsyscall(void)
{
	volatile uint64_t v = *(volatile uint64_t *)VSYSCALL_ADDR;
	(void)v;
}

static void call_vsyscall_misaligned(void)
{
	((long (*)(void))(VSYSCALL_ADDR + 0x100))();
}

int main(void)
{
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(page != MAP_FAILED);
	*(volatile uint8_t *)page = 0xc3; /* ret */
	SENS_EXPECT_KILL(call_data_page, SIGSEGV);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long (*vtime)(long *) = (long (*)(long *))(VSYSCALL_ADDR + 0x400);
	long t2 = 0, t = vtime(&t2);
	UT_CHECKF(t == t2 && t >= ts.tv_sec && t <= ts.tv_sec + 2, "vsyscall time %ld, clock %ld",
		  t, (long)ts.tv_sec);
	long tv[2] = {0, -1};
	long (*vgtod)(long *, void *) = (long (*)(long *, void *))VSYSCALL_ADDR;
	UT_CHECK(vgtod(tv, NULL) == 0);
	UT_CHECKF(tv[0] >= ts.tv_sec && tv[0] <= ts.tv_sec + 2 && tv[1] >= 0 && tv[1] < 1000000,
		  "vsyscall gettimeofday %ld.%06ld", tv[0], tv[1]);
	unsigned cpu = 99, node = 99, cpu2 = 98, node2 = 98;
	long (*vgetcpu)(unsigned *, unsigned *, void *) =
	    (long (*)(unsigned *, unsigned *, void *))(VSYSCALL_ADDR + 0x800);
	UT_CHECK(vgetcpu(&cpu, &node, NULL) == 0);
	UT_CHECK(sens_syscall3(SYS_getcpu, (long)&cpu2, (long)&node2, 0) == 0);
	UT_CHECKF(cpu == cpu2 && node == node2, "vsyscall getcpu %u/%u, getcpu %u/%u", cpu, node,
		  cpu2, node2);
	SENS_EXPECT_KILL(read_vsyscall, SIGSEGV);
	SENS_EXPECT_KILL(call_vsyscall_misaligned, SIGSEGV);
	return UT_DONE();
}
