/*
 * btvm's sandbox: no_new_privs, no capabilities, a seccomp-BPF allowlist
 * (sandbox.h; the list and a reason for each call are in docs/security.md).
 *
 * The filter is a straight sequence of rules, each a few instructions that
 * either return or fall through to the next with the system call number
 * in the accumulator:
 *   arch != x86-64 -> kill; ip in the vsyscall page -> trap (see below);
 *   nr >= x32 bit -> kill; then per call: allow, or check its arguments
 *   (allow or kill, never fall through); at the end kill.
 * The hottest calls (ptrace, wait4, kill) come first.
 *
 * The vsyscall rule keeps the user stubs' behaviour: guest code calling
 * the vsyscall page gets SIGSYS from the stub's own filter (SECCOMP_RET_TRAP,
 * runtime/user turns it into a guest fault); this filter, which the stub
 * inherits, answers the same there instead of killing the stub.
 */
#include "runtime/sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/ptrace.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pretrans/base/log.h"

#define SANDBOX_MAX_INSNS 512
#define X32_SYSCALL_BIT	  0x40000000u
/* glibc's fork(): clone(CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | SIGCHLD) */
#define FORK_CLONE_FLAGS (CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | SIGCHLD)

#define ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#define ARG_HI(n) (offsetof(struct seccomp_data, args) + 8 * (n) + 4)

struct prog {
	struct sock_filter f[SANDBOX_MAX_INSNS];
	unsigned n;
	bool overflow;
};

static void emit(struct prog *p, struct sock_filter i)
{
	if (p->n == SANDBOX_MAX_INSNS) {
		p->overflow = true;
		return;
	}
	p->f[p->n++] = i;
}

static void ld(struct prog *p, uint32_t off)
{
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off));
}

static void ret(struct prog *p, uint32_t action)
{
	emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action));
}

/* Allow nr outright (A = nr before and after). */
static void allow(struct prog *p, int nr)
{
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1));
	ret(p, SECCOMP_RET_ALLOW);
}

/*
 * A check of one call's arguments: every condition must hold, then allow;
 * otherwise kill.  Conditions: argument `arg` (64-bit) is one of vals[]
 * (hi word 0, or any when any_hi).
 */
struct cond {
	int arg;
	unsigned nvals;
	uint32_t vals[12];
	bool any_hi;
};

static void allow_if(struct prog *p, int nr, const struct cond *c, unsigned nc)
{
	/* size of the block after the JEQ on nr */
	unsigned len = 2; /* final RET ALLOW + RET KILL */
	for (unsigned i = 0; i < nc; i++)
		len += (c[i].any_hi ? 0 : 2) + 1 + c[i].nvals;
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, len));
	unsigned left = len; /* instructions from here to the end of the block */
	for (unsigned i = 0; i < nc; i++) {
		if (!c[i].any_hi) {
			ld(p, ARG_HI(c[i].arg));
			left -= 2;
			/* jf: to RET KILL, the block's last instruction */
			emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0,
							     (uint8_t)(left - 1)));
		}
		ld(p, ARG_LO(c[i].arg));
		left--;
		for (unsigned v = 0; v < c[i].nvals; v++) {
			left--;
			bool last = v + 1 == c[i].nvals;
			/* jt: past this condition's other values (to the next
			 * condition, or RET ALLOW); jf: the next value, or KILL */
			uint8_t jt = (uint8_t)(c[i].nvals - 1 - v);
			uint8_t jf = last ? (uint8_t)(left - 1) : 0;
			emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							     c[i].vals[v], jt, jf));
		}
	}
	ret(p, SECCOMP_RET_ALLOW);
	ret(p, SECCOMP_RET_KILL_PROCESS);
}

/* kill(pid, sig): pid > 0 (one process, never a group or -1), sig the
 * stub kick or SIGKILL. */
static void allow_kill(struct prog *p)
{
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kill, 0, 8));
	ld(p, ARG_LO(0));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x80000000u, 4, 0));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0));
	ld(p, ARG_LO(1));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIGKILL, 2, 0));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIGUSR1, 1, 0));
	ret(p, SECCOMP_RET_KILL_PROCESS);
	ret(p, SECCOMP_RET_ALLOW);
}

static void build(struct prog *p, const struct sandbox_config *cfg)
{
	p->n = 0;
	p->overflow = false;
	/* the architecture: anything but x86-64 (i386 int $0x80 numbers) dies */
	ld(p, offsetof(struct seccomp_data, arch));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
	ret(p, SECCOMP_RET_KILL_PROCESS);
	/* the vsyscall page (0xffffffffff600000): SIGSYS, as the stubs' filter */
	ld(p, offsetof(struct seccomp_data, instruction_pointer) + 4);
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 4));
	ld(p, offsetof(struct seccomp_data, instruction_pointer));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xfffff000u));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xff600000u, 0, 1));
	ret(p, SECCOMP_RET_TRAP);
	/* the number; x32 numbers (bit 30) die */
	ld(p, offsetof(struct seccomp_data, nr));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1));
	ret(p, SECCOMP_RET_KILL_PROCESS);

	/* the user stubs: ptrace with the controller's requests only */
	static const struct cond pt_req = {
	    .arg = 0,
	    .nvals = 11,
	    .vals = {PTRACE_SYSEMU, PTRACE_CONT, PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_GETFPREGS,
		     PTRACE_SETFPREGS, PTRACE_GETSIGINFO, PTRACE_GETREGSET, PTRACE_SETREGSET,
		     PTRACE_SETOPTIONS, PTRACE_TRACEME},
	};
	allow_if(p, SYS_ptrace, &pt_req, 1);
	allow(p, SYS_wait4);
	allow_kill(p);
	/* console, disk, database reads, logs */
	allow(p, SYS_write);
	allow(p, SYS_read);
	allow(p, SYS_poll);
	allow(p, SYS_ppoll); /* hlt: a nanosecond timeout, docs/runtime.md */
	allow(p, SYS_pread64);
	allow(p, SYS_pwrite64);
	allow(p, SYS_preadv); /* virtio-blk: a request's buffers at once */
	allow(p, SYS_pwritev);
	allow(p, SYS_lseek);
	allow(p, SYS_fdatasync);
	allow(p, SYS_fsync);
	allow(p, SYS_newfstatat);
	allow(p, SYS_fstat);
	allow(p, SYS_close);
	/* fcntl: sqlite's record locks, and the stub child's F_DUPFD/F_SETFD */
	static const struct cond fc_cmd = {
	    .arg = 1,
	    .nvals = 7,
	    .any_hi = true,
	    .vals = {F_SETLK, F_GETLK, F_SETLKW, F_DUPFD, F_GETFD, F_SETFD, F_GETFL},
	};
	allow_if(p, SYS_fcntl, &fc_cmd, 1);
	/* signals: the host timer, the stop signals, faults of translated code */
	allow(p, SYS_rt_sigreturn);
	allow(p, SYS_rt_sigaction);
	allow(p, SYS_rt_sigprocmask);
	allow(p, SYS_sigaltstack);
	allow(p, SYS_timer_settime);
	allow(p, SYS_timer_gettime);
	allow(p, SYS_timer_delete);
	/* raise() of a fault in btvm's own code: tgkill of itself only */
	struct cond self = {.arg = 0, .nvals = 1, .any_hi = true, .vals = {(uint32_t)getpid()}};
	allow_if(p, SYS_tgkill, &self, 1);
	allow(p, SYS_getpid);
	allow(p, SYS_gettid);
	/* memory: malloc, the code cache, and the stubs' guest mappings */
	allow(p, SYS_mmap);
	allow(p, SYS_munmap);
	allow(p, SYS_mprotect);
	allow(p, SYS_mremap);
	allow(p, SYS_madvise);
	allow(p, SYS_brk);
	/* time and the libc */
	allow(p, SYS_clock_gettime);
	allow(p, SYS_gettimeofday);
	allow(p, SYS_clock_nanosleep);
	allow(p, SYS_nanosleep);
	allow(p, SYS_futex);
	allow(p, SYS_getrandom);
	/* glibc's qsort asks sysinfo for the machine's memory before sorting
	 * more than 1 KiB (runtime/user merges unmappings with it): without
	 * it, a guest that unmaps enough pages at once killed btvm */
	allow(p, SYS_sysinfo);
	allow(p, SYS_exit);
	allow(p, SYS_exit_group);
	if (cfg->stub_exec_fd >= 0) {
		/* spawning a stub: fork (no thread, no namespace flags) */
		static const struct cond fork_flags = {
		    .arg = 0, .nvals = 1, .vals = {FORK_CLONE_FLAGS}};
		allow_if(p, SYS_clone, &fork_flags, 1);
		/* clone3's flags are behind a pointer: ENOSYS, glibc falls back */
		emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1));
		ret(p, SECCOMP_RET_ERRNO | ENOSYS);
		allow(p, SYS_set_robust_list);
		allow(p, SYS_dup2);
		allow(p, SYS_close_range);
		/* the stub image only: execveat(stub_exec_fd, "", ..., AT_EMPTY_PATH) */
		struct cond ex[2] = {
		    {.arg = 0, .nvals = 1, .any_hi = true, .vals = {(uint32_t)cfg->stub_exec_fd}},
		    {.arg = 4, .nvals = 1, .any_hi = true, .vals = {AT_EMPTY_PATH}},
		};
		allow_if(p, SYS_execveat, ex, 2);
		/* the stub's own set-up (runtime/user/ustub.S) */
		static const struct cond nnp = {
		    .arg = 0, .nvals = 1, .vals = {PR_SET_NO_NEW_PRIVS}};
		allow_if(p, SYS_prctl, &nnp, 1);
		static const struct cond filt = {
		    .arg = 0, .nvals = 1, .vals = {SECCOMP_SET_MODE_FILTER}};
		allow_if(p, SYS_seccomp, &filt, 1);
	}
	if (cfg->tty_fd >= 0) {
		/* tcsetattr(tty_fd, TCSANOW) at the end (conterm_restore); glibc
		 * reads the settings (TCGETS) before it writes them */
		struct cond tc[2] = {
		    {.arg = 0, .nvals = 1, .vals = {(uint32_t)cfg->tty_fd}},
		    {.arg = 1, .nvals = 2, .vals = {TCGETS, TCSETS}},
		};
		allow_if(p, SYS_ioctl, tc, 2);
	}
	if (cfg->db_write) {
		/* --learn's write-back: sqlite opens its rollback journal
		 * (O_RDWR|O_CREAT|O_NOFOLLOW), the directory to fsync it and
		 * /dev/urandom (read-only), sets the database's size, then unlinks
		 * the journal */
		static const struct cond oflags = {
		    .arg = 2,
		    .nvals = 3,
		    .any_hi = true,
		    .vals = {O_RDONLY | O_CLOEXEC, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			     O_RDONLY | O_CLOEXEC | O_DIRECTORY},
		};
		allow_if(p, SYS_openat, &oflags, 1);
		allow(p, SYS_unlink);
		allow(p, SYS_ftruncate);
		allow(p, SYS_fchown);
		allow(p, SYS_geteuid);
		allow(p, SYS_access);
		allow(p, SYS_faccessat);
	}
	ret(p, SECCOMP_RET_KILL_PROCESS);
}

/* Drop every capability: bounding set (when allowed: CAP_SETPCAP), ambient,
 * then effective, permitted and inheritable. */
static enum bt_status drop_caps(void)
{
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
			break; /* past the kernel's last capability */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EPERM) {
			bt_err(LOG_CORE, "sandbox: cannot drop capability %d: %s", cap,
			       strerror(errno));
			return BT_ERR_IO;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		bt_err(LOG_CORE, "sandbox: cannot clear the ambient capabilities: %s",
		       strerror(errno));
		return BT_ERR_IO;
	}
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) != 0) {
		bt_err(LOG_CORE, "sandbox: cannot drop the capabilities: %s", strerror(errno));
		return BT_ERR_IO;
	}
	return BT_OK;
}

enum bt_status sandbox_enter(const struct sandbox_config *cfg)
{
	static struct prog p; /* 4 KiB: not on the stack */
	build(&p, cfg);
	if (p.overflow) {
		bt_err(LOG_CORE, "sandbox: the filter does not fit in %d instructions",
		       SANDBOX_MAX_INSNS);
		return BT_ERR_INTERNAL;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		bt_err(LOG_CORE, "sandbox: prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return BT_ERR_IO;
	}
	BT_TRY(drop_caps());
	struct sock_fprog fp = {.len = (unsigned short)p.n, .filter = p.f};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0) {
		bt_err(LOG_CORE, "sandbox: cannot install the seccomp filter: %s", strerror(errno));
		return BT_ERR_IO;
	}
	bt_info(LOG_CORE, "sandbox: on (%u filter instructions, no capabilities)", p.n);
	return BT_OK;
}

int sandbox_selftest(void)
{
	struct sandbox_config cfg = {.db_write = false, .stub_exec_fd = -1, .tty_fd = -1};
	if (sandbox_enter(&cfg) != BT_OK)
		return 1;
	fprintf(stderr, "btvm: sandbox self-test: in the sandbox, calling socket()\n");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	fprintf(stderr, "btvm: sandbox self-test FAILED: socket() returned %d (%s)\n", fd,
		fd < 0 ? strerror(errno) : "a descriptor");
	return 1;
}
