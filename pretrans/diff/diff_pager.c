/*
 * The pager of `pretrans diff`'s text report, as git runs one: only when
 * stdout is a terminal; $PAGER, else `less`, run through /bin/sh with
 * LESS=FRX (quit if one screen, raw colours, no init) and LV=-c unless the
 * user set them; an empty PAGER or "cat" means none.  The report is
 * written to stdout, which is redirected into the pager's stdin;
 * diff_pager_end() closes it and waits, so the shell prompt comes back
 * after the pager has quit.  A pager that quits early makes writes fail
 * with EPIPE (SIGPIPE is ignored while it runs), which the caller treats
 * as the end of the report.
 */
#include "pretrans/diff/diff_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t pager_pid;

int diff_pager_start(void)
{
	if (!isatty(STDOUT_FILENO))
		return 0;
	const char *pager = getenv("PAGER");
	if (!pager)
		pager = "less";
	if (!pager[0] || !strcmp(pager, "cat"))
		return 0;
	int fd[2];
	if (pipe(fd) != 0)
		return 0;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return 0;
	}
	if (pid == 0) {
		dup2(fd[0], STDIN_FILENO);
		close(fd[0]);
		close(fd[1]);
		setenv("LESS", getenv("LESS") ? getenv("LESS") : "FRX", 1);
		setenv("LV", getenv("LV") ? getenv("LV") : "-c", 1);
		execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
		_exit(127);
	}
	dup2(fd[1], STDOUT_FILENO);
	close(fd[0]);
	close(fd[1]);
	signal(SIGPIPE, SIG_IGN);
	pager_pid = pid;
	return 1;
}

void diff_pager_end(void)
{
	if (!pager_pid)
		return;
	fflush(stdout);
	fclose(stdout);
	close(STDOUT_FILENO);
	int st;
	while (waitpid(pager_pid, &st, 0) < 0 && errno == EINTR)
		;
	pager_pid = 0;
}
