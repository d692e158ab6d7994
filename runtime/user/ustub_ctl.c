/*
 * The stub controller (see ustub_ctl.h for the state diagram): fork + exec
 * of the embedded stub program under PTRACE_TRACEME, guest code run with
 * PTRACE_SYSEMU, host system calls made through the stub's gadget.
 *
 * Invariants
 *  1. A stub is never resumed with PTRACE_CONT while its registers point at
 *     guest code: guest code only runs under PTRACE_SYSEMU, so no guest
 *     `syscall` reaches the host kernel (and the stub's seccomp filter
 *     refuses any that would, see ustub.S).
 *  2. A stub never receives a signal: every signal stop is reported to the
 *     caller and suppressed at the next resume.
 *  3. A host call starts from a clean register state (ustub_hostcall): the
 *     guest's RFLAGS (TF, AC), segments and bases never reach the gadget.
 *     Its system calls pass the seccomp filter only at the gadget's page
 *     offset, and away from USTUB_GADGET only through a PTRACE_EVENT_SECCOMP
 *     stop at s->gadget during a host call (anything else kills the stub).
 *  4. The stub inherits exactly one descriptor besides its own image: the
 *     guest RAM memfd as USTUB_MEMFD.  Nothing of the runtime's memory is
 *     mapped in it (exec), and PTRACE_O_EXITKILL kills it with btvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <elf.h>

#include "pretrans/base/log.h"
#include "runtime/user/ustub.h"
#include "runtime/user/ustub_ctl.h"

static long pt(struct ustub *s, enum __ptrace_request req, void *addr, void *data)
{
	if (s->stats)
		s->stats->ptrace_calls++;
	return ptrace(req, s->pid, addr, data);
}

enum bt_status ustub_image_create(int *fd)
{
	size_t len = (size_t)(ustub_elf_end - ustub_elf_start);
	int f = memfd_create("btvm-ustub", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f < 0)
		return BT_ERR_IO;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(f, ustub_elf_start + off, len - off);
		if (n <= 0) {
			close(f);
			return BT_ERR_IO;
		}
		off += (size_t)n;
	}
	if (fcntl(f, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		close(f);
		return BT_ERR_IO;
	}
	*fd = f;
	return BT_OK;
}

static void describe_death(const struct ustub *s, int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "stopped unexpectedly (status %#x)", (unsigned)status);
	(void)s;
}

/* Wait for the next stop of the stub; false if it is gone. */
static bool wait_stop(struct ustub *s, int *status)
{
	for (;;) {
		pid_t r = waitpid(s->pid, status, __WALL);
		if (r == s->pid)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		*status = 0;
		s->pid = 0;
		return false;
	}
	if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
		s->status = *status;
		s->pid = 0;
		return false;
	}
	return true;
}

static __attribute__((noreturn)) void child(int image_fd, int memfd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	int m = fcntl(memfd, F_DUPFD, 16), i = fcntl(image_fd, F_DUPFD, 16);
	if (m < 0 || i < 0 || dup2(m, USTUB_MEMFD) != USTUB_MEMFD ||
	    dup2(i, USTUB_MEMFD + 1) != USTUB_MEMFD + 1)
		_exit(126);
	fcntl(USTUB_MEMFD + 1, F_SETFD, FD_CLOEXEC);
	syscall(SYS_close_range, USTUB_MEMFD + 2, ~0u, 0);
	for (int fd = 0; fd < USTUB_MEMFD; fd++)
		close(fd);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
		_exit(125);
	char *argv[] = {"btvm-ustub", NULL}, *envp[] = {NULL};
	syscall(SYS_execveat, USTUB_MEMFD + 1, "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

enum bt_status ustub_spawn(int image_fd, int memfd, struct ustub_stats *stats, struct ustub *s)
{
	int st;
	char why[96];
	memset(s, 0, sizeof(*s));
	s->stats = stats;
	pid_t pid = fork();
	if (pid < 0) {
		bt_err(LOG_USER, "cannot fork a user stub: %s", strerror(errno));
		return BT_ERR_IO;
	}
	if (pid == 0)
		child(image_fd, memfd);
	s->pid = pid;
	/* the exec stop */
	if (!wait_stop(s, &st) || WSTOPSIG(st) != SIGTRAP)
		goto dead;
	s->base = USTUB_BASE;
	s->gadget = USTUB_GADGET;
	if (pt(s, PTRACE_SETOPTIONS, NULL,
	       (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACESECCOMP)) !=
	    0)
		goto kill;
	/* run the stub's set-up up to its ready int3 */
	if (pt(s, PTRACE_CONT, NULL, NULL) != 0 || !wait_stop(s, &st))
		goto dead;
	if (WSTOPSIG(st) != SIGTRAP || pt(s, PTRACE_GETREGS, NULL, &s->regs) != 0 ||
	    s->regs.rip != USTUB_READY + 1) {
		bt_err(LOG_USER, "user stub %d stopped with signal %d at %#llx during set-up",
		       (int)pid, WSTOPSIG(st), (unsigned long long)s->regs.rip);
		goto kill;
	}
	if (stats)
		stats->spawned++;
	return BT_OK;
dead:
	describe_death(s, s->status, why, sizeof(why));
	bt_err(LOG_USER,
	       "the user stub %s during set-up (seccomp, ptrace or exec refused? an exit "
	       "status below 126 is the errno of the failing set-up call)",
	       why);
	s->pid = 0;
	return BT_ERR_IO;
kill:
	ustub_kill(s);
	return BT_ERR_IO;
}

void ustub_kill(struct ustub *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	int st;
	while (waitpid(s->pid, &st, __WALL) < 0 && errno == EINTR)
		;
	s->pid = 0;
}

void ustub_kick(pid_t pid)
{
	if (pid > 0)
		kill(pid, USTUB_KICK_SIG);
}

static enum bt_status gone(struct ustub *s)
{
	char why[96];
	describe_death(s, s->status, why, sizeof(why));
	bt_err(LOG_USER, "a user stub %s: stopping the VM", why);
	return BT_ERR_IO;
}

/* A ptrace call on a stopped stub failed: it died under us (killed from
 * outside).  Reap it and say how. */
static enum bt_status lost(struct ustub *s)
{
	if (errno != ESRCH || s->pid <= 0)
		return BT_ERR_IO;
	int st;
	pid_t pid = s->pid;
	/* whatever it was doing, it must not run on */
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, __WALL) == pid || errno == EINTR)
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			s->status = st;
			break;
		}
	s->pid = 0;
	return gone(s);
}

/* A data selector as the host's ptrace takes it back: guest code may load
 * a null selector with RPL 1 or 2, or a selector with an RPL below 3 (at
 * CPL 3 a data load checks DPL >= RPL, not RPL = 3), and a later
 * PTRACE_SETREGS refuses both with EIO, which stopped the VM (Linux's
 * fsgsbase selftest in direct mode).  The nearest value it takes: null, or
 * the same descriptor with RPL 3; guest code then reads that back
 * (docs/user-direct.md "Limits"). */
uint64_t ustub_host_sel(uint64_t sel)
{
	return (sel & 0xfffc) ? (sel & 0xffff) | 3 : 0;
}

static enum bt_status store_regs(struct ustub *s)
{
	if (!s->regs_dirty)
		return BT_OK;
	s->regs.ds = ustub_host_sel(s->regs.ds);
	s->regs.es = ustub_host_sel(s->regs.es);
	s->regs.fs = ustub_host_sel(s->regs.fs);
	s->regs.gs = ustub_host_sel(s->regs.gs);
	if (pt(s, PTRACE_SETREGS, NULL, &s->regs) != 0) {
		if (errno == ESRCH)
			return lost(s);
		bt_err(LOG_USER, "cannot set the registers of user stub %d: %s", (int)s->pid,
		       strerror(errno));
		return BT_ERR_IO;
	}
	s->regs_dirty = false;
	return BT_OK;
}

enum bt_status ustub_run(struct ustub *s, volatile pid_t *pid_slot, enum ustub_stop *stop,
			 siginfo_t *si)
{
	int st;
	if (s->pid <= 0)
		return BT_ERR_INVALID;
	BT_TRY(store_regs(s));
	for (;;) {
		if (pid_slot)
			*pid_slot = s->pid;
		long r = pt(s, PTRACE_SYSEMU, NULL, NULL);
		if (r != 0) {
			if (pid_slot)
				*pid_slot = 0;
			*stop = USTUB_STOP_DEAD;
			return lost(s);
		}
		bool alive = wait_stop(s, &st);
		if (pid_slot)
			*pid_slot = 0;
		if (!alive) {
			*stop = USTUB_STOP_DEAD;
			return gone(s);
		}
		if (s->stats)
			s->stats->stops++;
		if ((st >> 16) == PTRACE_EVENT_SECCOMP) {
			/* guest code under PTRACE_SYSEMU never reaches the filter:
			 * a system call from guest code at the gadget's offset
			 * resumed some other way.  It must not run. */
			bt_err(LOG_USER,
			       "user stub %d: a system call from guest code reached the seccomp "
			       "filter: killing the stub",
			       (int)s->pid);
			ustub_kill(s);
			*stop = USTUB_STOP_DEAD;
			return BT_ERR_INTERNAL;
		}
		if (st >> 16) /* another ptrace event: not ours */
			continue;
		int sig = WSTOPSIG(st);
		if (pt(s, PTRACE_GETREGS, NULL, &s->regs) != 0)
			return lost(s);
		if (sig == (SIGTRAP | 0x80)) {
			*stop = USTUB_STOP_SYSCALL;
			return BT_OK;
		}
		memset(si, 0, sizeof(*si));
		if (pt(s, PTRACE_GETSIGINFO, NULL, si) != 0)
			return BT_ERR_IO;
		*stop = USTUB_STOP_SIGNAL;
		return BT_OK;
	}
}

/* A clean register state for a host call starting at rip: nothing of the
 * guest's (no TF: a single-step trap in the gadget, no AC, no 32-bit CS,
 * no segment bases). */
static void clean_regs(struct user_regs_struct *r, gva_t rip)
{
	memset(r, 0, sizeof(*r));
	r->cs = 0x33;
	r->ss = 0x2b;
	r->eflags = 0x202;
	r->rip = rip;
	r->orig_rax = ~0ull;
}

/* Run a gadget from r (clean_regs + its arguments) until its int3 stops
 * at stop_rip; system calls the filter hands over (a moved page) may run
 * only at sys_rip.  moving: the call moves the stub's page away (mremap),
 * so it ends with a SIGSEGV fetching the byte after the `syscall` at
 * sys_rip instead.  *out: the registers at the stop. */
static enum bt_status gadget_run(struct ustub *s, struct user_regs_struct *r, gva_t sys_rip,
				 gva_t stop_rip, bool moving, const char *what,
				 struct user_regs_struct *out)
{
	int st;
	if (s->pid <= 0)
		return BT_ERR_INVALID;
	if (s->stats)
		s->stats->hostcalls++;
	if (pt(s, PTRACE_SETREGS, NULL, r) != 0)
		return lost(s);
	s->regs_dirty = true; /* the guest's registers go back before the next run */
	for (;;) {
		if (pt(s, PTRACE_CONT, NULL, NULL) != 0)
			return lost(s);
		if (!wait_stop(s, &st))
			return gone(s);
		if ((st >> 16) == PTRACE_EVENT_SECCOMP) {
			/* the filter asks about a call away from USTUB_GADGET:
			 * only the current gadget's may run */
			if (pt(s, PTRACE_GETREGS, NULL, out) != 0)
				return lost(s);
			if (out->rip != sys_rip + 2) {
				bt_err(LOG_USER,
				       "user stub %d: a system call at %#llx during a host call: "
				       "killing the stub",
				       (int)s->pid, (unsigned long long)out->rip);
				ustub_kill(s);
				return BT_ERR_INTERNAL;
			}
			continue;
		}
		int sig = WSTOPSIG(st);
		if (sig != SIGTRAP && !(moving && sig == SIGSEGV))
			continue; /* a kick or a stray signal: suppressed */
		if (pt(s, PTRACE_GETREGS, NULL, out) != 0)
			return BT_ERR_IO;
		gva_t want = sig == SIGSEGV ? sys_rip + 2 : stop_rip;
		if (out->rip != want) {
			bt_err(LOG_USER,
			       "user stub %d: host call %s stopped with signal %d at %#llx",
			       (int)s->pid, what, sig, (unsigned long long)out->rip);
			return BT_ERR_INTERNAL;
		}
		return BT_OK;
	}
}

/* Run the gadget with nr and args from a clean state. */
static enum bt_status gadget_call(struct ustub *s, long nr, const long args[6], bool moving,
				  long *ret)
{
	struct user_regs_struct r, out;
	char what[24];
	clean_regs(&r, s->gadget);
	r.rax = (unsigned long long)nr;
	r.rdi = (unsigned long long)args[0];
	r.rsi = (unsigned long long)args[1];
	r.rdx = (unsigned long long)args[2];
	r.r10 = (unsigned long long)args[3];
	r.r8 = (unsigned long long)args[4];
	r.r9 = (unsigned long long)args[5];
	snprintf(what, sizeof(what), "%ld", nr);
	BT_TRY(gadget_run(s, &r, s->gadget, s->gadget + USTUB_GADGET_RET_OFF, moving, what, &out));
	*ret = (long)out.rax;
	return BT_OK;
}

enum bt_status ustub_batch_check(const struct ustub *s, gva_t base, const uint64_t *runs,
				 unsigned n)
{
	if (n == 0 || n > USTUB_BATCH_MAX || (base & (GUEST_PAGE_SIZE - 1)) ||
	    base >= USTUB_TASK_END)
		return BT_ERR_INVALID;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = runs[i];
		uint64_t idx = (e >> USTUB_BATCH_IDX_SHIFT) & USTUB_BATCH_IDX_MASK;
		uint64_t cnt = ((e >> USTUB_BATCH_CNT_SHIFT) & USTUB_BATCH_CNT_MASK) + 1;
		gva_t va = base + idx * GUEST_PAGE_SIZE, end = va + cnt * GUEST_PAGE_SIZE;
		if (!e || !(e & PROT_READ) || idx + cnt > USTUB_BATCH_WINDOW ||
		    end > USTUB_TASK_END || end < va ||
		    (va < s->base + GUEST_PAGE_SIZE && end > s->base))
			return BT_ERR_INVALID;
	}
	return BT_OK;
}

enum bt_status ustub_mmap_batch(struct ustub *s, gva_t base, const uint64_t *runs, unsigned n)
{
	struct user_regs_struct r, out;
	if (ustub_batch_check(s, base, runs, n) != BT_OK) {
		bt_err(LOG_USER, "user stub %d: refused a batch of %u mappings at %#llx",
		       (int)s->pid, n, (unsigned long long)base);
		return BT_ERR_INVALID;
	}
	clean_regs(&r, s->base + (USTUB_BATCH - USTUB_BASE));
	uint64_t e[USTUB_BATCH_MAX] = {0};
	memcpy(e, runs, n * sizeof(*runs));
	r.rbp = base;
	r.rbx = e[0];
	r.rsp = e[1];
	r.r12 = e[2];
	r.r13 = e[3];
	r.r14 = e[4];
	r.r15 = e[5];
	gva_t sys = s->base + (USTUB_BATCH_SYS - USTUB_BASE);
	BT_TRY(gadget_run(s, &r, sys, s->base + (USTUB_BATCH_TRAP - USTUB_BASE) + 1, false, "batch",
			  &out));
	if (out.rax != 0) {
		long ret = (long)out.rax;
		bt_err(LOG_USER,
		       "user stub %d: batched mmap of guest RAM (run %#llx at %#llx) failed: %s",
		       (int)s->pid, (unsigned long long)out.rbx, (unsigned long long)base,
		       ret < 0 ? strerror((int)-ret) : "moved");
		return BT_ERR_IO;
	}
	return BT_OK;
}

enum bt_status ustub_hostcall(struct ustub *s, long nr, const long args[6], long *ret)
{
	return gadget_call(s, nr, args, false, ret);
}

enum bt_status ustub_relocate(struct ustub *s, gva_t new_base)
{
	long args[6] = {(long)s->base,	 GUEST_PAGE_SIZE,
			GUEST_PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED,
			(long)new_base,	 0};
	long ret;
	if ((new_base & (GUEST_PAGE_SIZE - 1)) || new_base >= USTUB_TASK_END || new_base == s->base)
		return BT_ERR_INVALID;
	BT_TRY(gadget_call(s, 25, args, true, &ret));
	if (ret != (long)new_base) {
		/* the page did not move: the gadget's int3 stopped it */
		bt_err(LOG_USER, "user stub %d: moving its page from %#llx to %#llx failed: %s",
		       (int)s->pid, (unsigned long long)s->base, (unsigned long long)new_base,
		       ret < 0 ? strerror((int)-ret) : "moved elsewhere");
		return BT_ERR_IO;
	}
	s->gadget = new_base + (s->gadget - s->base);
	s->base = new_base;
	return BT_OK;
}

enum bt_status ustub_mmap(struct ustub *s, gva_t va, uint64_t len, int prot, uint64_t off)
{
	long args[6] = {(long)va, (long)len, prot, MAP_SHARED | MAP_FIXED, USTUB_MEMFD, (long)off};
	long ret;
	BT_TRY(ustub_hostcall(s, 9, args, &ret));
	if (ret != (long)va) {
		bt_err(LOG_USER, "user stub %d: mmap(%#llx, %llu, %d) of guest RAM failed: %s",
		       (int)s->pid, (unsigned long long)va, (unsigned long long)len, prot,
		       ret < 0 ? strerror((int)-ret) : "moved");
		return BT_ERR_IO;
	}
	return BT_OK;
}

enum bt_status ustub_munmap(struct ustub *s, gva_t va, uint64_t len)
{
	long args[6] = {(long)va, (long)len, 0, 0, 0, 0};
	long ret;
	BT_TRY(ustub_hostcall(s, 11, args, &ret));
	if (ret != 0) {
		bt_err(LOG_USER, "user stub %d: munmap(%#llx, %llu) failed: %s", (int)s->pid,
		       (unsigned long long)va, (unsigned long long)len, strerror((int)-ret));
		return BT_ERR_IO;
	}
	return BT_OK;
}

enum bt_status ustub_mprotect(struct ustub *s, gva_t va, uint64_t len, int prot)
{
	long args[6] = {(long)va, (long)len, prot, 0, 0, 0};
	long ret;
	BT_TRY(ustub_hostcall(s, 10, args, &ret));
	if (ret != 0) {
		bt_err(LOG_USER, "user stub %d: mprotect(%#llx, %llu, %d) failed: %s", (int)s->pid,
		       (unsigned long long)va, (unsigned long long)len, prot, strerror((int)-ret));
		return BT_ERR_IO;
	}
	return BT_OK;
}

enum bt_status ustub_get_fpu(struct ustub *s, void *fxsave512)
{
	if (pt(s, PTRACE_GETFPREGS, NULL, fxsave512) != 0)
		return lost(s);
	return BT_OK;
}

enum bt_status ustub_set_fpu(struct ustub *s, const void *fxsave512)
{
	uint8_t img[512];
	memcpy(img, fxsave512, sizeof(img));
	/* MXCSR bits the host refuses (reserved) would fail the call: the
	 * guest's fxrstor already raised #GP for those */
	uint32_t mxcsr;
	memcpy(&mxcsr, img + 24, 4);
	mxcsr &= 0xffff;
	memcpy(img + 24, &mxcsr, 4);
	if (pt(s, PTRACE_SETFPREGS, NULL, img) != 0) {
		bt_err(LOG_USER, "user stub %d: cannot load the guest FPU state: %s", (int)s->pid,
		       strerror(errno));
		return BT_ERR_IO;
	}
	return BT_OK;
}

enum bt_status ustub_reset_fpu(struct ustub *s, const void *fxsave512)
{
	static __thread uint8_t buf[16384] __attribute__((aligned(64)));
	struct iovec iov = {buf, sizeof(buf)};
	if (pt(s, PTRACE_GETREGSET, (void *)(long)NT_X86_XSTATE, &iov) != 0 || iov.iov_len < 576)
		return ustub_set_fpu(s, fxsave512); /* no XSAVE on the host */
	memcpy(buf, fxsave512, 512);
	uint32_t mxcsr;
	memcpy(&mxcsr, buf + 24, 4);
	mxcsr &= 0xffff;
	memcpy(buf + 24, &mxcsr, 4);
	uint64_t bv = 3; /* x87 and SSE; every other component in its init state */
	memcpy(buf + 512, &bv, 8);
	memset(buf + 520, 0, 56); /* xcomp_bv and the rest of the header */
	if (pt(s, PTRACE_SETREGSET, (void *)(long)NT_X86_XSTATE, &iov) != 0) {
		bt_err(LOG_USER, "user stub %d: cannot reset the FPU state: %s", (int)s->pid,
		       strerror(errno));
		return BT_ERR_IO;
	}
	return BT_OK;
}
