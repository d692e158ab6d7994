/*
 * Does an attached tracer or a seccomp filter slow a process's own user
 * code? (benchmark, not a test; docs/user-direct.md "Where a compute
 * phase's time goes".)  Runs PROGRAM R rounds in four ways, interleaved:
 * plain; traced (PTRACE_TRACEME, resumed with PTRACE_CONT); traced and
 * stopped at every system call (PTRACE_SYSCALL); under an allow-all seccomp
 * filter.  Prints each child's CPU time (user + system, wait4's rusage),
 * not the wall clock, so other load on the host matters less.
 *
 *   cc -O2 -o /tmp/trace-cpu tests/bench/trace_cpu_bench.c
 *   taskset -c 1 /tmp/trace-cpu R PROGRAM [ARG...]
 */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum way { PLAIN, TRACED, TRACED_SYSCALL, SECCOMP, NWAYS };
static const char *const way_name[NWAYS] = {"plain", "traced", "traced-syscall", "seccomp"};

static void child(enum way w, char **argv)
{
	int fd = open("/dev/null", O_WRONLY);
	if (fd < 0 || dup2(fd, 1) < 0)
		_exit(126);
	if ((w == TRACED || w == TRACED_SYSCALL) && ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
		_exit(126);
	if (w == SECCOMP) {
		struct sock_filter f[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
		struct sock_fprog prog = {.len = 1, .filter = f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(126);
	}
	execv(argv[0], argv);
	_exit(127);
}

/* The child's CPU time in ms, or -1 if it did not exit with status 0. */
static double run(enum way w, char **argv)
{
	pid_t p = fork();
	if (p < 0)
		return -1;
	if (p == 0)
		child(w, argv);
	int st;
	struct rusage ru;
	for (;;) {
		if (wait4(p, &st, 0, &ru) != p)
			return -1;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			break;
		/* a tracer's stop: the exec's SIGTRAP or a system call (none
		 * passed on); any other signal goes back to the child */
		int sig =
		    WSTOPSIG(st) == SIGTRAP || WSTOPSIG(st) == (SIGTRAP | 0x80) ? 0 : WSTOPSIG(st);
		ptrace(w == TRACED_SYSCALL ? PTRACE_SYSCALL : PTRACE_CONT, p, 0, (void *)(long)sig);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3 +
	       (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
}

int main(int argc, char **argv)
{
	int rounds = argc >= 3 ? atoi(argv[1]) : 0;
	if (rounds <= 0) {
		fprintf(stderr, "usage: trace-cpu ROUNDS PROGRAM [ARG...]\n");
		return 2;
	}
	for (int r = 0; r < rounds; r++) {
		for (enum way w = PLAIN; w < NWAYS; w++) {
			double ms = run(w, argv + 2);
			if (ms < 0) {
				fprintf(stderr, "trace-cpu: %s failed (%s)\n", argv[2],
					way_name[w]);
				return 1;
			}
			printf("%s %.1f\n", way_name[w], ms);
		}
	}
	return 0;
}
