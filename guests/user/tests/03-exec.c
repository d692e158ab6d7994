/*
 * exec: fork + execve of a program from the initrd with argv and envp.
 * The program execs itself ("/tests/03-exec", or $BT_EXEC_SELF when the test
 * runs natively on the host) with argv[1] == "exec-child";
 * in that role it checks the argument and environment vectors and the
 * fresh address space, and exits 42.  Also: execve of a missing file fails
 * and returns to the caller.
 */
#include "guests/user/ulib/utest.h"

#define SELF "/tests/03-exec"

static volatile long marker = 5;
static const char *self = SELF;

static int child_role(int argc, char **argv, char **envp)
{
	int bad = 0;

	bad |= argc != 4;
	bad |= strcmp(argv[0], self) != 0;
	bad |= strcmp(argv[1], "exec-child") != 0;
	bad |= strcmp(argv[2], "alpha") != 0;
	bad |= strcmp(argv[3], "beta gamma") != 0;
	bad |= argv[4] != NULL;
	bad |= envp[0] == NULL || strcmp(envp[0], "BT_A=1") != 0;
	bad |= envp[1] == NULL || strcmp(envp[1], "BT_B=two") != 0;
	bad |= envp[2] == NULL || strncmp(envp[2], "BT_EXEC_SELF=", 13) != 0;
	bad |= envp[3] != NULL;
	bad |= marker != 5; /* fresh .data, not the parent's */
	bad |= ulib_entry_rsp % 16 != 0;
	if (bad)
		printf("# exec child: bad argv/envp/state\n");
	return bad ? 1 : 42;
}

int main(int argc, char **argv, char **envp)
{
	if (getenv("BT_EXEC_SELF"))
		self = getenv("BT_EXEC_SELF");
	if (argc >= 2 && strcmp(argv[1], "exec-child") == 0)
		return child_role(argc, argv, envp);

	char self_env[256];
	snprintf(self_env, sizeof(self_env), "BT_EXEC_SELF=%s", self);
	char *cargv[] = {(char *)self, "exec-child", "alpha", "beta gamma", NULL};
	char *cenv[] = {"BT_A=1", "BT_B=two", self_env, NULL};

	marker = 6;
	pid_t pid = fork();
	if (pid == 0) {
		execve(self, cargv, cenv);
		_exit(99);
	}
	int status = -1;
	UT_CHECK(pid > 0);
	UT_CHECK(waitpid(pid, &status, 0) == pid);
	UT_CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 42, "exec child status %#x", status);

	/* a failing execve returns to the caller */
	char *nargv[] = {"/tests/does-not-exist", NULL};
	int r = execve("/tests/does-not-exist", nargv, cenv);
	UT_CHECK(r == -1);
	UT_CHECK(marker == 6);

	/* exec from a child that has touched lots of memory */
	pid = fork();
	if (pid == 0) {
		char *p =
		    mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(98);
		for (int i = 0; i < (1 << 20); i += 4096)
			p[i] = 1;
		execve(self, cargv, cenv);
		_exit(99);
	}
	status = -1;
	UT_CHECK(waitpid(pid, &status, 0) == pid);
	UT_CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 42, "second exec status %#x", status);
	return UT_DONE();
}
