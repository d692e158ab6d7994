/*
 * utest: the checks used by the guest's user test programs.  A failed
 * check prints a "# " diagnostic (the TAP runner in the kernel reports the
 * program's exit status) and marks the program failed; UT_DONE() returns
 * the exit code.
 */
#ifndef BT_GUESTS_USER_UTEST_H
#define BT_GUESTS_USER_UTEST_H

#include "guests/user/ulib/ulib.h"

static int ut_failed;

#define UT_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
			ut_failed = 1;                                                             \
		}                                                                                  \
	} while (0)

/* Check with a formatted explanation. */
#define UT_CHECKF(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("# %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);          \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
			ut_failed = 1;                                                             \
		}                                                                                  \
	} while (0)

#define UT_DONE() (ut_failed ? 1 : 0)

/* Fork a child that runs fn(); return the raw wait status (or -1). */
static inline int ut_run_child(void (*fn)(void))
{
	pid_t pid = fork();
	int status = -1;

	if (pid == 0) {
		fn();
		_exit(100); /* fn should not return */
	}
	if (pid < 0) {
		printf("# fork failed\n");
		return -1;
	}
	if (waitpid(pid, &status, 0) != pid) {
		printf("# wait4 did not return the child\n");
		return -1;
	}
	return status;
}

static inline uint64_t ut_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
