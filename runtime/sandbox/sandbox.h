/*
 * btvm's own sandbox (docs/security.md): once the VM is set up and before
 * the guest runs, the process gets no_new_privs, loses every capability
 * (effective, permitted, inheritable, ambient and, when it may drop them,
 * the bounding set) and installs a seccomp-BPF allowlist of the system
 * calls the running VM makes; any other call kills the whole process
 * (SECCOMP_RET_KILL_PROCESS, seen by the parent as SIGSYS).
 *
 * The filter is inherited by everything btvm forks: the user stubs
 * (runtime/user) are spawned on demand after the sandbox is on, so they run
 * under this filter and their own, without capabilities.
 *
 * Contract: sandbox_enter is called once, from the thread that runs the VM,
 * while btvm is single-threaded; it cannot be undone.
 */
#ifndef BT_RUNTIME_SANDBOX_SANDBOX_H
#define BT_RUNTIME_SANDBOX_SANDBOX_H

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

struct sandbox_config {
	/* --learn: the database write-back runs inside the sandbox, so allow
	 * what sqlite needs for it (open of the journal and the directory,
	 * unlink of the journal, fchown, fsync).  Without it, no open at all. */
	bool db_write;
	/* The descriptor the user stub is exec'd from (execveat(fd, "",
	 * AT_EMPTY_PATH)), or -1: no fork/exec is allowed. */
	int stub_exec_fd;
	/* The console terminal btvm made raw (runtime/dev/conterm.h), or -1:
	 * ioctl(tty_fd, TCGETS or TCSETS) is allowed so that its settings can
	 * be put back when the VM stops; no other ioctl, on no other
	 * descriptor. */
	int tty_fd;
};

/* Enter the sandbox.  BT_OK: the filter is installed; an error leaves the
 * process as it was only if nothing was changed yet (the message says). */
enum bt_status sandbox_enter(const struct sandbox_config *cfg);

/*
 * Self-test (btvm --sandbox-selftest): enter the sandbox as btvm does,
 * then make a forbidden call (socket).  Does not return when the sandbox
 * works (the process dies by SIGSYS); returns non-zero with a message
 * otherwise.
 */
int sandbox_selftest(void);

#endif
