/*
 * Layout contract between the user stub program (ustub.S, a tiny static
 * binary exec'd for every guest address space) and its controller
 * (ustub_ctl.c).  Included by assembly: constants only.
 *
 * The stub occupies exactly one page of code at USTUB_BASE and nothing
 * else: it unmaps the rest of its address space (stack, vDSO, vvar) before
 * handing itself over.  Guest user pages are mapped around it from the
 * guest RAM memfd, which the stub inherits as USTUB_MEMFD.
 *
 *   USTUB_BASE + 0                 ELF header and program header
 *   USTUB_READY                    `int3`: the stub is set up (first stop)
 *   USTUB_GADGET                   `syscall; int3`: the controller's only way
 *                                  to make a host system call in the stub
 *
 * USTUB_BASE is the lowest address Linux lets an unprivileged process map
 * by default (vm.mmap_min_addr = 65536), and the lowest a Linux guest maps
 * by default for the same reason; a guest mapping that collides with the
 * stub page stops the VM with a message (docs/user-direct.md).
 */
#ifndef BT_RUNTIME_USER_USTUB_H
#define BT_RUNTIME_USER_USTUB_H

#define USTUB_BASE	 0x10000
#define USTUB_PAGE_END	 0x11000
#define USTUB_TASK_END	 0x7ffffffff000 /* x86-64 Linux TASK_SIZE (4-level paging) */
#define USTUB_TEXT_OFF	 0x80		/* after the ELF and program headers (ustub.ld) */
#define USTUB_READY_OFF	 0x80		/* offsets from the start of the text */
#define USTUB_GADGET_OFF 0x90
#define USTUB_MEMFD	 3

#define USTUB_GADGET	 (USTUB_BASE + USTUB_TEXT_OFF + USTUB_GADGET_OFF)
#define USTUB_GADGET_RET (USTUB_GADGET + 3) /* rip at the int3 stop after it */
#define USTUB_READY	 (USTUB_BASE + USTUB_TEXT_OFF + USTUB_READY_OFF)

#endif
