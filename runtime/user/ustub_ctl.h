/*
 * The stub controller: one host process per guest address space, driven
 * with ptrace.  This is the narrow interface a faster hand-off (shared
 * memory instead of a ptrace stop per event, batched mappings) replaces:
 * spawn/kill, run guest code until the next event, and make the stub call
 * mmap/munmap/mprotect.  It knows nothing about the guest kernel.
 *
 * Stub states (function for each transition):
 *
 *   (none) --ustub_spawn--> READY (stopped at the ready int3)
 *   READY/STOPPED --ustub_run--> RUNNING --event--> STOPPED
 *   STOPPED --ustub_hostcall--> STOPPED (the gadget ran; regs preserved)
 *   STOPPED --ustub_mmap_batch--> STOPPED (the batch gadget ran; regs preserved)
 *   STOPPED --ustub_relocate--> STOPPED (its page moved; regs preserved)
 *   any --ustub_kill / the stub died--> DEAD
 */
#ifndef BT_RUNTIME_USER_USTUB_CTL_H
#define BT_RUNTIME_USER_USTUB_CTL_H

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

/* The signal that interrupts a running stub (host timer kick). */
#define USTUB_KICK_SIG SIGUSR1

enum ustub_stop {
	USTUB_STOP_SYSCALL, /* the guest executed syscall (or int $0x80): regs.rip after it */
	USTUB_STOP_SIGNAL,  /* a host signal: si says which (suppressed, never delivered) */
	USTUB_STOP_DEAD,    /* the stub exited or was killed: status says how */
};

struct ustub_stats {
	uint64_t stops;	    /* ptrace stops of guest code */
	uint64_t hostcalls; /* gadget system calls (each one more stop) */
	uint64_t ptrace_calls;
	uint64_t spawned;
};

struct ustub {
	pid_t pid; /* 0 when dead */
	int status;
	/* the guest registers of the stub: loaded at every stop, stored
	 * before the next run when dirty */
	struct user_regs_struct regs;
	bool regs_dirty;
	gva_t base;		   /* its own page of code: USTUB_BASE until ustub_relocate */
	gva_t gadget;		   /* the gadget's address in it */
	struct ustub_stats *stats; /* shared counters (may be NULL) */
};

/* The stub program's ELF image (embedded in btvm by ustub_blob.S). */
extern const unsigned char ustub_elf_start[], ustub_elf_end[];

/* A sealed memfd holding the stub program (one per VM, shared by stubs). */
enum bt_status ustub_image_create(int *fd);

/* Start a stub: fork, trace, exec the image with memfd as USTUB_MEMFD;
 * returns once the stub stopped at its ready point. */
enum bt_status ustub_spawn(int image_fd, int memfd, struct ustub_stats *stats, struct ustub *s);
void ustub_kill(struct ustub *s);

/* Store s->regs (if dirty), run guest code under PTRACE_SYSEMU until the
 * next stop, load s->regs.  *pid_slot (may be NULL) holds the pid while the
 * stub runs, for ustub_kick from a signal handler. */
enum bt_status ustub_run(struct ustub *s, volatile pid_t *pid_slot, enum ustub_stop *stop,
			 siginfo_t *si);
/* Async-signal-safe: make the running stub stop soon (USTUB_KICK_SIG). */
void ustub_kick(pid_t pid);
/* A data selector (ds, es, fs, gs) the way PTRACE_SETREGS takes it: null
 * for a null selector of any RPL, RPL 3 otherwise (ustub_ctl.c). */
uint64_t ustub_host_sel(uint64_t sel);

/* Make the stopped stub execute one system call through its gadget,
 * starting from a clean register state (64-bit CS, RFLAGS = IF only: no
 * TF/AC of the guest's), whatever the guest's registers; s->regs are
 * preserved.  *ret is the raw result (-errno on failure). */
enum bt_status ustub_hostcall(struct ustub *s, long nr, const long args[6], long *ret);
enum bt_status ustub_mmap(struct ustub *s, gva_t va, uint64_t len, int prot, uint64_t off);
enum bt_status ustub_munmap(struct ustub *s, gva_t va, uint64_t len);
enum bt_status ustub_mprotect(struct ustub *s, gva_t va, uint64_t len, int prot);
/* Map up to USTUB_BATCH_MAX runs of guest RAM (layout: "One run" in
 * ustub.h: prot, page index from base, page count, memfd offset) in one
 * host call through the batch gadget.  ustub_batch_check refuses (and
 * ustub_mmap_batch does not run) a table with an empty run, a run without
 * PROT_READ, outside the USTUB_BATCH_WINDOW pages from base, beyond
 * USTUB_TASK_END or over the stub's own page.  Which pages the guest
 * grants is the caller's to decide (user_fault.c). */
enum bt_status ustub_batch_check(const struct ustub *s, gva_t base, const uint64_t *runs,
				 unsigned n);
enum bt_status ustub_mmap_batch(struct ustub *s, gva_t base, const uint64_t *runs, unsigned n);
/* Move the stub's own page to new_base (page aligned, below USTUB_TASK_END,
 * nothing of the guest mapped there): the guest can then map s->base's old
 * address.  Whatever was at new_base is replaced. */
enum bt_status ustub_relocate(struct ustub *s, gva_t new_base);

/* FXSAVE image of the stopped stub. */
enum bt_status ustub_get_fpu(struct ustub *s, void *fxsave512);
enum bt_status ustub_set_fpu(struct ustub *s, const void *fxsave512);
/* Set x87/SSE from fxsave512 and put every other XSAVE component (AVX,
 * AVX-512, ...) in its initial state: nothing of another guest process. */
enum bt_status ustub_reset_fpu(struct ustub *s, const void *fxsave512);

#endif
