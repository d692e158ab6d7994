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
 *   USTUB_BATCH                    the batch gadget: mmap of up to
 *                                  USTUB_BATCH_MAX runs of guest RAM pages
 *                                  (`syscall` at USTUB_BATCH_SYS, stops on
 *                                  the int3 at USTUB_BATCH_TRAP)
 *
 * USTUB_BASE is where exec puts the page: a page in the middle of the
 * user address space, away from where Linux puts programs, heaps, mmap areas
 * and stacks (low addresses, 0x55..., 0x7f...), and from the low pages
 * programs map on purpose (0x10000, the lowest a Linux process may map by
 * default).  A guest may map any address, this one too: the page then
 * moves (ustub_relocate, mremap through the gadget) to the first page of
 * USTUB_BASE - k * USTUB_MOVE_STEP the guest neither maps nor has mapped,
 * at the same offsets.  The gadget's address is thus s->gadget
 * (ustub_ctl.h); the seccomp filter accepts its system calls at
 * USTUB_GADGET outright and at the same page offset elsewhere only through
 * the controller (SECCOMP_RET_TRACE).
 */
#ifndef BT_RUNTIME_USER_USTUB_H
#define BT_RUNTIME_USER_USTUB_H

#define USTUB_BASE	     0x3ff000000000 /* ustub.ld links the text at USTUB_BASE + 0x80 */
#define USTUB_PAGE_END	     (USTUB_BASE + 0x1000)
#define USTUB_TASK_END	     0x7ffffffff000 /* x86-64 Linux TASK_SIZE (4-level paging) */
#define USTUB_TEXT_OFF	     0x80	    /* after the ELF and program headers (ustub.ld) */
#define USTUB_READY_OFF	     0x80	    /* offsets from the start of the text */
#define USTUB_GADGET_OFF     0x90
#define USTUB_BATCH_OFF	     0xa0
#define USTUB_BATCH_SYS_OFF  0xb0
#define USTUB_BATCH_TRAP_OFF 0x120
#define USTUB_MEMFD	     3

#define USTUB_GADGET	     (USTUB_BASE + USTUB_TEXT_OFF + USTUB_GADGET_OFF)
#define USTUB_GADGET_RET_OFF 3 /* rip at the int3 stop after the gadget, from it */
#define USTUB_READY	     (USTUB_BASE + USTUB_TEXT_OFF + USTUB_READY_OFF)
#define USTUB_MOVE_STEP	     0x200000 /* between the places the page can move to */
#define USTUB_BATCH	     (USTUB_BASE + USTUB_TEXT_OFF + USTUB_BATCH_OFF)
#define USTUB_BATCH_SYS	     (USTUB_BASE + USTUB_TEXT_OFF + USTUB_BATCH_SYS_OFF)
#define USTUB_BATCH_TRAP     (USTUB_BASE + USTUB_TEXT_OFF + USTUB_BATCH_TRAP_OFF)

/*
 * One run of the batch gadget's request table (a register): bits 0-2
 * PROT_*, 3-8 the first page's index in the window (%rbp), 9-15 the number
 * of pages - 1, 16-63 the memfd offset in pages.  0 ends the table.
 */
#define USTUB_BATCH_MAX	      6	 /* %rbx, %rsp, %r12-%r15 */
#define USTUB_BATCH_WINDOW    64 /* pages a window spans at most */
#define USTUB_BATCH_PROT_MASK 7
#define USTUB_BATCH_IDX_SHIFT 3
#define USTUB_BATCH_IDX_MASK  63
#define USTUB_BATCH_CNT_SHIFT 9
#define USTUB_BATCH_CNT_MASK  127
#define USTUB_BATCH_OFF_SHIFT 16

#endif
