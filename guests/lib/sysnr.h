/*
 * The guest's system-call numbers: the Linux x86-64 numbers of the calls the
 * test kernel implements (guest contract).  Shared by the kernel's
 * dispatcher and the user library so the two cannot drift apart.
 */
#ifndef GUESTS_LIB_SYSNR_H
#define GUESTS_LIB_SYSNR_H

#define SYS_read	  0
#define SYS_write	  1
#define SYS_mmap	  9
#define SYS_munmap	  11
#define SYS_sched_yield	  24
#define SYS_mremap	  25
#define SYS_nanosleep	  35
#define SYS_getpid	  39
#define SYS_fork	  57
#define SYS_execve	  59
#define SYS_exit	  60
#define SYS_wait4	  61
#define SYS_kill	  62
#define SYS_getppid	  110
#define SYS_modify_ldt	  154
#define SYS_arch_prctl	  158
#define SYS_iopl	  172
#define SYS_ioperm	  173
#define SYS_clock_gettime 228
#define SYS_exit_group	  231
#define SYS_getcpu	  309

#endif
