/*
 * fork_cow: copy-on-write after fork.  Parent and child write the same
 * pages (.data, .bss, stack, an anonymous mmap) after fork and each must see
 * only its own values; then many forks in a row, each child reporting a
 * distinct exit code through wait4, and a grandchild.  A BT-based VMM must
 * keep per-process page mappings in sync with the guest's COW page tables.
 */
#include "guests/user/ulib/utest.h"

static volatile long data_var = 1;  /* .data */
static volatile long bss_page[512]; /* .bss */

static int check_child_view(volatile long *stack_var, volatile long *anon)
{
	int bad = 0;

	/* the child starts with the parent's pre-fork values */
	bad |= data_var != 1;
	bad |= bss_page[7] != 7;
	bad |= *stack_var != 11;
	bad |= anon[100] != 13;
	data_var = 2;
	bss_page[7] = 70;
	*stack_var = 22;
	anon[100] = 26;
	for (int i = 0; i < 20; i++)
		sched_yield();
	bad |= data_var != 2 || bss_page[7] != 70 || *stack_var != 22 || anon[100] != 26;
	return bad;
}

int main(void)
{
	volatile long stack_var = 11;
	volatile long *anon =
	    mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(anon != MAP_FAILED);
	if (anon == MAP_FAILED)
		return 1;
	anon[100] = 13;
	bss_page[7] = 7;

	pid_t pid = fork();
	if (pid == 0)
		_exit(check_child_view(&stack_var, anon) ? 1 : 0);
	UT_CHECKF(pid > 0, "fork returned %d", pid);
	data_var = 3;
	bss_page[7] = 700;
	stack_var = 33;
	anon[100] = 39;
	int status = -1;
	UT_CHECK(waitpid(pid, &status, 0) == pid);
	UT_CHECKF(status == 0, "child saw wrong values: status %#x", status);
	UT_CHECK(data_var == 3 && bss_page[7] == 700 && stack_var == 33 && anon[100] == 39);

	/* many forks: child i writes i and exits with it */
	for (int i = 1; i <= 40; i++) {
		pid = fork();
		if (pid == 0) {
			data_var = i;
			bss_page[i % 512] = i;
			_exit(data_var == i && bss_page[i % 512] == i ? i : 200);
		}
		if (pid < 0) {
			UT_CHECKF(0, "fork %d failed", i);
			break;
		}
		status = -1;
		UT_CHECK(waitpid(pid, &status, 0) == pid);
		UT_CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == i, "child %d status %#x", i,
			  status);
	}
	UT_CHECK(data_var == 3);

	/* several children alive at once, reaped with wait4(-1) */
	pid_t kids[8];
	for (int i = 0; i < 8; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			for (int k = 0; k < i; k++)
				sched_yield();
			_exit(50 + i);
		}
	}
	int seen = 0;
	for (int i = 0; i < 8; i++) {
		pid_t w = waitpid(-1, &status, 0);
		int idx = -1;
		for (int k = 0; k < 8; k++)
			if (kids[k] == w)
				idx = k;
		UT_CHECKF(idx >= 0, "wait4(-1) returned unknown pid %d", w);
		if (idx >= 0) {
			UT_CHECKF(WEXITSTATUS(status) == 50 + idx, "status %#x", status);
			seen |= 1 << idx;
		}
	}
	UT_CHECK(seen == 0xff);

	/* grandchild: the child's parent pid is the child */
	pid = fork();
	if (pid == 0) {
		pid_t me = getpid();
		pid_t g = fork();
		if (g == 0)
			_exit(getppid() == me ? 0 : 1);
		int st = -1;
		if (waitpid(g, &st, 0) != g)
			_exit(2);
		_exit(st == 0 ? 0 : 3);
	}
	status = -1;
	UT_CHECK(waitpid(pid, &status, 0) == pid);
	UT_CHECKF(status == 0, "grandchild status %#x", status);
	return UT_DONE();
}
