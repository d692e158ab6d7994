/*
 * hello: the first user program.  Checks the initial process state the
 * kernel builds (argc/argv/envp layout, 16-byte aligned entry %rsp) and the
 * simplest syscalls: write to fd 1 and 2, getpid, getppid, and -ENOSYS for
 * an unknown syscall number.
 */
#include "guests/user/ulib/utest.h"

int main(int argc, char **argv, char **envp)
{
	static const char msg[] = "# hello from user space\n";

	UT_CHECK(write(1, msg, sizeof(msg) - 1) == (ssize_t)sizeof(msg) - 1);
	UT_CHECK(write(2, "# stderr works\n", 15) == 15);
	UT_CHECK(write(1, msg, 0) == 0);
	UT_CHECKF(ulib_entry_rsp % 16 == 0, "entry rsp %#lx", (unsigned long)ulib_entry_rsp);
	UT_CHECK(argc >= 1);
	UT_CHECK(argv[0] != NULL && argv[0][0] != '\0');
	UT_CHECK(argv[argc] == NULL);
	UT_CHECK(envp == argv + argc + 1);
	int nenv = 0;
	while (envp[nenv] && nenv < 1000)
		nenv++;
	UT_CHECK(nenv < 1000);

	pid_t pid = getpid(), ppid = getppid();
	UT_CHECKF(pid > 0, "pid %d", pid);
	UT_CHECKF(ppid >= 0 && ppid != pid, "pid %d ppid %d", pid, ppid);
	UT_CHECK(getpid() == pid);

	long r = ulib_syscall(9999, 0, 0, 0, 0, 0, 0);
	UT_CHECKF(r == -ENOSYS, "unknown syscall returned %ld", r);
	r = ulib_syscall(-1, 0, 0, 0, 0, 0, 0);
	UT_CHECKF(r == -ENOSYS, "syscall -1 returned %ld", r);
	/* a bad user pointer is an error, not a crash */
	r = ulib_syscall(SYS_write, 1, 0x10, 8, 0, 0, 0);
	UT_CHECKF(r < 0, "write from address 0x10 returned %ld", r);
	r = ulib_syscall(SYS_write, 1, (long)0xffffffff80000000ul, 8, 0, 0, 0);
	UT_CHECKF(r < 0, "write from a kernel address returned %ld", r);
	return UT_DONE();
}
