/*
 * Pre-execution scan of a guest user code page for instructions that
 * direct execution on the host cannot run faithfully: sensitive but
 * unprivileged instructions that read or write machine state the host CPU
 * has and the guest's differs from (descriptor tables, segment registers,
 * TSC_AUX, FS/GS bases, CPUID features, the IOPL...).  A page with a hit is
 * one to run translated (VMware's answer for code it ran directly).
 *
 * Pure: no host effects, no state.  Conservative: a byte pattern is
 * matched at every offset of the page, so an instruction is found whatever
 * the instruction boundaries are; false positives (pattern bytes inside
 * other instructions or data) cost speed only.  The patterns are those of
 * 64-bit code; a page of 32- or 16-bit code (a compat code segment) must
 * run translated without a scan.  docs/user-direct.md "Sensitive
 * instructions" has the list, why each class is there, why the rest are
 * faithful on the host, and the measured speed and false-positive rate.
 */
#ifndef BT_RUNTIME_USER_USER_SCAN_H
#define BT_RUNTIME_USER_USER_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define USER_SCAN_PAGE 4096u
#define USER_SCAN_TAIL 15u /* bytes of the next page an instruction may reach */

/* Classes of sensitive instructions (bit mask). */
enum user_scan_class {
	/* lar lsl (0f 02, 0f 03: the host's per-CPU segment 0x7b is Linux's
	 * getcpu); sgdt sidt smsw and the rest of the 0f 01 group (serialize,
	 * xtest, clui...) */
	USER_SCAN_DESC = 1u << 0,
	/* mov to/from a segment register, push/pop fs/gs, lfs/lgs/lss, and the
	 * 0f 00 group (sldt str verr verw; lldt/ltr fault anyway): exact on the
	 * host while the process uses Linux's default selectors (no LDT, no
	 * TLS descriptors in the GDT), whose descriptors the host's GDT has
	 * identically */
	USER_SCAN_SEG = 1u << 1,
	/* rdtscp, rdpid: the host's TSC_AUX (CPU number) */
	USER_SCAN_TSCAUX = 1u << 2,
	/* rdfsbase wrfsbase rdgsbase wrgsbase */
	USER_SCAN_FSGS = 1u << 3,
	/* the host's features: cpuid, xgetbv, rdpkru/wrpkru, xsave family,
	 * rdrand/rdseed, umonitor/umwait/tpause */
	USER_SCAN_FEAT = 1u << 4,
	/* sysenter: a host system call, not the guest's SYSENTER_EIP */
	USER_SCAN_SYSENTER = 1u << 5,
	/* in out ins outs cli sti pushf popf: exact on the host while the
	 * guest gives the process IOPL 0 and no I/O bitmap (the host then
	 * faults them, or shows IF=1 IOPL=0, exactly as the guest would) */
	USER_SCAN_IO = 1u << 6,
	/* rdtsc: exact on the host while the guest's TSC offset is 0 and
	 * CR4.TSD is clear */
	USER_SCAN_TSC = 1u << 7,
	/* not a byte pattern: a page the guest lets user code write and execute
	 * (runtime/user/user_fault.c); user_scan_page never returns it */
	USER_SCAN_WX = 1u << 8,
};

/* The classes that are never exact on the host; SEG, IO and TSC are exact
 * under conditions the caller checks per process (see each class). */
#define USER_SCAN_ALWAYS                                                                           \
	(USER_SCAN_DESC | USER_SCAN_TSCAUX | USER_SCAN_FSGS | USER_SCAN_FEAT | USER_SCAN_SYSENTER)
#define USER_SCAN_ALL (USER_SCAN_ALWAYS | USER_SCAN_SEG | USER_SCAN_IO | USER_SCAN_TSC)

/* What the adaptive and translated user modes keep from running on the
 * host (docs/user-mode.md, "Fidelity"): the classes whose direct answer
 * differs silently or corrupts guest memory (the host's TSC_AUX, FS/GS
 * base instructions, CPUID and XSAVE layouts, sysenter) plus writable
 * code.  DESC is left out: its byte patterns (0f 01 xx, 0f 02, 0f 03) sit
 * in 15-26% of real code pages as immediates, and trapping on those
 * measured twice the fork+exec time; LAR/LSL and SGDT/SIDT/SMSW stay
 * exact through the LDT and selector triggers and the host's UMIP only. */
#define USER_SCAN_TRIGGER                                                                          \
	(USER_SCAN_TSCAUX | USER_SCAN_FSGS | USER_SCAN_FEAT | USER_SCAN_SYSENTER | USER_SCAN_WX)

struct user_scan_hit {
	uint32_t cls;	 /* the class of the first match (one bit), 0 = none */
	uint32_t offset; /* its offset in the page */
};

/*
 * Scan page[0..4095] for the classes in `mask`; `next` (may be NULL) holds
 * next_len (<= 15 used) bytes of the following page, for an instruction
 * that crosses the end.  Without them, an opcode whose remaining bytes
 * would lie beyond the page counts as a match (conservative).  Stops at the
 * first match: returns its class (one bit) and fills *hit if not NULL;
 * 0 = nothing sensitive in the page.
 */
uint32_t user_scan_page(const uint8_t *page, const uint8_t *next, size_t next_len, uint32_t mask,
			struct user_scan_hit *hit);

/* Name of one class bit ("desc", "seg", ...), "?" otherwise. */
const char *user_scan_class_name(uint32_t cls);

#endif
