/*
 * ldt: modify_ldt(2) installs LDT descriptors; LAR, LSL, VERR and VERW
 * report them as the descriptor says, segment loads take them (a data
 * segment's base is the FS base, a not-present one raises #NP (SIGBUS, as
 * in Linux), a selector
 * past the LDT's end #GP), read_ldt returns them, fork copies the LDT.
 * Sensitive unprivileged instructions: direct execution on the host would
 * see the host's (empty) LDT.
 */
#include "guests/user/tests/sens.h"

static uint32_t data[4] = {0x11223344, 0x55667788, 0x99aabbcc, 0xddeeff00};

#define SEL(n) ((uint16_t)(((n) << 3) | 7)) /* LDT, RPL 3 */

/* modify_ldt returns an unsigned int in Linux: -EINVAL is 0xffffffea */
static int write_ldt(const struct user_desc *d)
{
	return (int)sens_syscall3(SYS_modify_ldt, 0x11, (long)d, sizeof(*d));
}

static int lar(uint16_t sel, uint32_t *ar)
{
	uint8_t zf;
	/* "+r": the destination is unchanged when ZF = 0 */
	__asm__ volatile("lar %2, %0; setz %1" : "+r"(*ar), "=q"(zf) : "r"((uint32_t)sel) : "cc");
	return zf;
}

static int lsl(uint16_t sel, uint32_t *limit)
{
	uint8_t zf;
	__asm__ volatile("lsl %2, %0; setz %1"
			 : "+r"(*limit), "=q"(zf)
			 : "r"((uint32_t)sel)
			 : "cc");
	return zf;
}

static int verr(uint16_t sel)
{
	uint8_t zf;
	__asm__ volatile("verr %w1; setz %0" : "=q"(zf) : "r"(sel) : "cc");
	return zf;
}

static int verw(uint16_t sel)
{
	uint8_t zf;
	__asm__ volatile("verw %w1; setz %0" : "=q"(zf) : "r"(sel) : "cc");
	return zf;
}

static void load_gs_not_present(void)
{
	__asm__ volatile("movl %0, %%gs" : : "r"((uint32_t)SEL(3)));
}

static void load_ds_past_end(void)
{
	__asm__ volatile("movl %0, %%ds" : : "r"((uint32_t)SEL(40)));
}

static void child_sees_ldt(void)
{
	SENS_CHILD_START();
	uint32_t ar = 0;
	UT_CHECK(lar(SEL(0), &ar) && ar == 0x0040f300);
	_exit(UT_DONE());
}

int main(void)
{
	struct user_desc d = {0};
	/* 0: 32-bit read/write data at data[], byte-granular limit 0xfff */
	d.entry_number = 0;
	d.base_addr = (uint32_t)(uintptr_t)data;
	d.limit = 0xfff;
	d.seg_32bit = 1;
	UT_CHECK((uintptr_t)data < 0x100000000ul);
	UT_CHECK(write_ldt(&d) == 0);
	/* 1: read-only data; 2: execute-only 32-bit code; 3: not present */
	d.entry_number = 1;
	d.read_exec_only = 1;
	UT_CHECK(write_ldt(&d) == 0);
	d.entry_number = 2;
	d.contents = 2;
	UT_CHECK(write_ldt(&d) == 0);
	d.entry_number = 3;
	d.contents = 0;
	d.read_exec_only = 0;
	d.seg_not_present = 1;
	UT_CHECK(write_ldt(&d) == 0);
	/* 4: the "empty" descriptor clears the entry */
	struct user_desc empty = {.entry_number = 4, .read_exec_only = 1, .seg_not_present = 1};
	UT_CHECK(write_ldt(&empty) == 0);
	/* refused: a present conforming code segment, an entry past 8191 */
	struct user_desc bad = d;
	bad.entry_number = 5;
	bad.contents = 3;
	bad.seg_not_present = 0;
	UT_CHECK(write_ldt(&bad) == -EINVAL);
	bad.contents = 0;
	bad.entry_number = 9000;
	UT_CHECK(write_ldt(&bad) == -EINVAL);

	/* LAR: access rights bits 8-23 (0x00f0ff00 of the high dword) */
	uint32_t ar = 0, lim = 0;
	UT_CHECKF(lar(SEL(0), &ar) && ar == 0x0040f300, "lar 0: %#x", ar);
	UT_CHECKF(lar(SEL(1), &ar) && ar == 0x0040f100, "lar 1: %#x", ar);
	UT_CHECKF(lar(SEL(2), &ar) && ar == 0x0040f900, "lar 2: %#x", ar);
	UT_CHECKF(lar(SEL(3), &ar) && ar == 0x00407300, "lar 3: %#x", ar);
	ar = 0x1234;
	UT_CHECK(!lar(SEL(4), &ar) && ar == 0x1234); /* empty: ZF=0, unchanged */
	UT_CHECK(!lar(SEL(40), &ar));		     /* past the LDT's end */
	UT_CHECK(!lar(0x10, &ar));		     /* the kernel's CS: DPL 0 */
	UT_CHECKF(lsl(SEL(0), &lim) && lim == 0xfff, "lsl 0: %#x", lim);
	UT_CHECKF(lsl(0x2b, &lim) && lim == 0xffffffffu, "lsl 0x2b: %#x", lim);
	/* VERR/VERW: data is readable, writable unless read-only; execute-only
	 * code is neither */
	UT_CHECK(verr(SEL(0)) && verw(SEL(0)));
	UT_CHECK(verr(SEL(1)) && !verw(SEL(1)));
	UT_CHECK(!verr(SEL(2)) && !verw(SEL(2)));
	UT_CHECK(!verr(SEL(4)) && !verw(SEL(4)));

	/* read_ldt gives the descriptors back */
	uint64_t raw[2] = {0, 0};
	UT_CHECK((int)sens_syscall3(SYS_modify_ldt, 0, (long)raw, sizeof(raw)) == sizeof(raw));
	uint64_t want0 = 0xfff | ((uint64_t)((uintptr_t)data & 0xffffff) << 16) | (0xf3ul << 40) |
			 (0x4ul << 52) | ((uint64_t)((uintptr_t)data >> 24) << 56);
	UT_CHECKF(raw[0] == want0, "ldt[0] %#lx, expected %#lx", (unsigned long)raw[0],
		  (unsigned long)want0);

	/* loads: %fs = entry 0 makes data[] the FS base */
	uint32_t v = 0, sel = 0;
	__asm__ volatile("movl %2, %%fs\n\t"
			 "movl %%fs:4, %0\n\t"
			 "movl %%fs, %1\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "movl %%eax, %%fs"
			 : "=&r"(v), "=&r"(sel)
			 : "r"((uint32_t)SEL(0))
			 : "rax", "memory");
	UT_CHECKF(v == data[1], "%%fs:4 = %#x", v);
	UT_CHECKF(sel == SEL(0), "%%fs = %#x", sel);
	/* %ds = entry 1 (read-only data is fine for ds), then back to 0 */
	__asm__ volatile("movl %1, %%ds\n\t"
			 "movl %%ds, %0\n\t"
			 "pushq $0\n\t"
			 "popq %%rax\n\t"
			 "movl %%eax, %%ds"
			 : "=&r"(sel)
			 : "r"((uint32_t)SEL(1))
			 : "rax", "memory");
	UT_CHECKF(sel == SEL(1), "%%ds = %#x", sel);
	SENS_EXPECT_KILL(load_gs_not_present, SIGBUS);
	SENS_EXPECT_KILL(load_ds_past_end, SIGSEGV);
	/* fork copies the LDT */
	SENS_EXPECT_EXIT0(child_sees_ldt);
	return UT_DONE();
}
