/*
 * spin_kill: a child loops forever in page faults and system calls (it
 * unmaps a page, maps it again and touches it: a demand-zero fault the
 * kernel resolves and returns from; then getpid) without ever sleeping.
 * The parent sleeps 200 ms, which only ends if the kernel's timer preempts
 * the looping child, then kills it with SIGKILL and reaps it.
 *
 * With argv[0] "spin" the program runs the loop itself, forever: nothing in
 * the guest ends it (the runner's crash=userspin; the host's --timeout or a
 * signal to btvm must).
 */
#include "guests/user/ulib/utest.h"

static void spin(void) __attribute__((noreturn));
static void spin(void)
{
	volatile unsigned char *p =
	    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(2);
	for (unsigned long n = 0;; n++) {
		p[n & 4095] = (unsigned char)n;
		munmap((void *)p, 4096);
		if (mmap((void *)p, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != (void *)p)
			_exit(3);
		(void)getpid();
	}
}

int main(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "spin"))
		spin();
	pid_t pid = fork();
	if (pid == 0)
		spin();
	UT_CHECK(pid > 0);
	if (pid <= 0)
		return 1;
	struct timespec req = {0, 200 * 1000 * 1000};
	uint64_t t0 = ut_now_ns();
	UT_CHECK(nanosleep(&req, NULL) == 0);
	UT_CHECKF(ut_now_ns() - t0 >= 190 * 1000 * 1000ull, "slept only %llu ms",
		  (unsigned long long)((ut_now_ns() - t0) / 1000000));
	UT_CHECK(kill(pid, SIGKILL) == 0);
	int st = -1;
	UT_CHECK(waitpid(pid, &st, 0) == pid);
	UT_CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child: status %#x", st);
	UT_CHECK(kill(pid, 0) == -1); /* reaped: gone */
	return UT_DONE();
}
