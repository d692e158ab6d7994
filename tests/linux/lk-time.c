/*
 * lk-time: timing inside a Linux guest (and natively, for comparison), for
 * tests/linux/lib.sh users.  Built static (lk_cc_static) so it runs in a
 * busybox initramfs.  Times come from CLOCK_MONOTONIC, which is what the
 * guest kernel believes; the host stamps the console lines too, so a caller
 * can check the guest's clock against the host's (linux-user-bench.sh does).
 *
 *   lk-time run NAME CMD [ARG...]   run CMD, print "@@LK phase NAME NS STATUS"
 *                                   (STATUS: CMD's exit status, 128+signal)
 *   lk-time getppid N               N getppid calls:
 *                                   "@@LK micro getppid_us US" per call
 *   lk-time touch PAGES             mmap PAGES anonymous 4 KiB pages, write
 *                                   one byte in each (a first-touch fault
 *                                   each), munmap: "@@LK micro touch_us US"
 *                                   per page
 *   lk-time forkexec N PROG         N times fork, execv PROG, wait:
 *                                   "@@LK micro forkexec_ms MS" per round
 *
 * Exit status 0, or 1 with a one-line reason on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: lk-time run NAME CMD [ARG...] | getppid N | touch PAGES | forkexec N PROG\n");
	return 1;
}

static long count(const char *s)
{
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || *end || n <= 0) {
		fprintf(stderr, "lk-time: '%s' is not a positive count\n", s);
		return -1;
	}
	return n;
}

static int wait_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 255;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int cmd_run(const char *name, char **argv)
{
	long long t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		perror("lk-time: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "lk-time: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int st = wait_status(pid);
	long long t1 = now_ns();
	printf("@@LK phase %s %lld %d\n", name, t1 - t0, st);
	return 0;
}

static int cmd_getppid(long n)
{
	long long t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	long long t1 = now_ns();
	printf("@@LK micro getppid_us %.3f\n", (t1 - t0) / 1e3 / n);
	return 0;
}

static int cmd_touch(long pages)
{
	size_t len = (size_t)pages * 4096;
	long long t0 = now_ns();
	volatile char *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("lk-time: mmap");
		return 1;
	}
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
	munmap((void *)p, len);
	long long t1 = now_ns();
	printf("@@LK micro touch_us %.3f\n", (t1 - t0) / 1e3 / pages);
	return 0;
}

static int cmd_forkexec(long n, char *prog)
{
	char *argv[] = {prog, NULL};
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("lk-time: fork");
			return 1;
		}
		if (pid == 0) {
			execv(prog, argv);
			_exit(127);
		}
		int st = wait_status(pid);
		if (st) {
			fprintf(stderr, "lk-time: %s exited with status %d\n", prog, st);
			return 1;
		}
	}
	long long t1 = now_ns();
	printf("@@LK micro forkexec_ms %.3f\n", (t1 - t0) / 1e6 / n);
	return 0;
}

int main(int argc, char **argv)
{
	/* one write per marker line, so lines from several programs never mix */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "run"))
		return cmd_run(argv[2], argv + 3);
	if (argc == 3 && !strcmp(argv[1], "getppid")) {
		long n = count(argv[2]);
		return n < 0 ? 1 : cmd_getppid(n);
	}
	if (argc == 3 && !strcmp(argv[1], "touch")) {
		long n = count(argv[2]);
		return n < 0 ? 1 : cmd_touch(n);
	}
	if (argc == 4 && !strcmp(argv[1], "forkexec")) {
		long n = count(argv[2]);
		return n < 0 ? 1 : cmd_forkexec(n, argv[3]);
	}
	return usage();
}
