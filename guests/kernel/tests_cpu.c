/*
 * Kernel self-tests of code-shape and CPU behaviour that a binary translator
 * must get right: self-modifying code through a text_poke alias, jump tables,
 * function-pointer dispatch, computed goto, deep mutual tail calls, the
 * exception table (#PF and #DE recovery), demand-faulted kernel memory,
 * int3, CPUID and the TSC.  This file is built with -fjump-tables and
 * -foptimize-sibling-calls (see module.mk); check-guest-kernel-jumptable
 * verifies with objdump that kt_jt_dispatch really is an indirect jump.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/ktest.h"
#include "guests/kernel/trap.h"
#include "guests/kernel/vm.h"

/* ---- smc ---- */
extern int smc_target(void);
extern uint8_t smc_target_imm[];
extern int jl_site(void);
extern uint8_t jl_target[];

int ktest_smc(void)
{
	int (*volatile fn)(void) = smc_target;
	int before = fn();
	uint32_t imm = 0x1234;
	text_poke(smc_target_imm, &imm, sizeof(imm));
	int after = fn();
	imm = 1;
	text_poke(smc_target_imm, &imm, sizeof(imm));
	int restored = fn();
	KT_CHECK(before == 1 && after == 0x1234 && restored == 1, "smc_target %d -> %d -> %d",
		 before, after, restored);

	/* Jump label: NOP5 at jl_site <-> jmp rel32 to jl_target. */
	int (*volatile jl)(void) = jl_site;
	int off = jl();
	uint8_t jmp[5] = {0xe9};
	int32_t rel = (int32_t)((uint64_t)jl_target - ((uint64_t)jl_site + 5));
	memcpy(jmp + 1, &rel, 4);
	uint8_t nop5[5];
	memcpy(nop5, (const void *)jl_site, 5);
	text_poke((void *)jl_site, jmp, 5);
	int on = jl();
	text_poke((void *)jl_site, nop5, 5);
	int off2 = jl();
	KT_CHECK(off == 1 && on == 7 && off2 == 1, "jump label %d -> %d -> %d", off, on, off2);
	/* The text itself must still be read-only through its own mapping. */
	uint64_t cr0 = read_cr0();
	KT_CHECK(cr0 & CR0_WP, "CR0.WP clear");
	return 0;
}

/* ---- jumptable ---- */
static volatile uint64_t jt_acc;

__attribute__((noinline)) uint64_t kt_jt_dispatch(unsigned op, uint64_t x);
__attribute__((noinline)) uint64_t kt_jt_dispatch(unsigned op, uint64_t x)
{
	switch (op) {
	case 0:
		jt_acc += 1;
		return x + 3;
	case 1:
		jt_acc ^= x;
		return x * 7;
	case 2:
		jt_acc -= 5;
		return x << 3;
	case 3:
		jt_acc += x * x;
		return x ^ 0x55;
	case 4:
		jt_acc |= 0x100;
		return x - 11;
	case 5:
		jt_acc *= 3;
		return x / 3;
	case 6:
		jt_acc += 17;
		return x % 13;
	case 7:
		jt_acc &= ~1ul;
		return ~x;
	case 8:
		jt_acc += x >> 2;
		return x * x;
	case 9:
		jt_acc -= x;
		return x + 1000;
	case 10:
		jt_acc ^= 0xdead;
		return x >> 1;
	case 11:
		jt_acc += 42;
		return x | 0xf0;
	default:
		return 0;
	}
}

int ktest_jumptable(void)
{
	static const uint64_t expect[12] = {13,	   70,	80,   0x5f, (uint64_t)-1, 3, 10,
					    ~10ul, 100, 1010, 5,    0xfa};
	for (unsigned op = 0; op < 12; op++) {
		uint64_t r = kt_jt_dispatch(op, 10);
		KT_CHECK(r == expect[op], "op %u gave 0x%lx, want 0x%lx", op, (unsigned long)r,
			 (unsigned long)expect[op]);
	}
	KT_CHECK(kt_jt_dispatch(99, 10) == 0, "default case");
	return 0;
}

/* ---- fnptr ---- */
static int f_add(int a, int b)
{
	return a + b;
}
static int f_sub(int a, int b)
{
	return a - b;
}
static int f_mul(int a, int b)
{
	return a * b;
}
static int f_max(int a, int b)
{
	return a > b ? a : b;
}
static int (*const fn_table[])(int, int) = {f_add, f_sub, f_mul, f_max};

int ktest_fnptr(void)
{
	int acc = 1;
	for (volatile unsigned i = 0; i < 40; i++)
		acc = fn_table[i % 4](acc, (int)i + 1) % 100003;
	int ref = 1;
	for (unsigned i = 0; i < 40; i++) {
		int b = (int)i + 1;
		switch (i % 4) {
		case 0:
			ref = ref + b;
			break;
		case 1:
			ref = ref - b;
			break;
		case 2:
			ref = ref * b;
			break;
		default:
			ref = ref > b ? ref : b;
		}
		ref %= 100003;
	}
	KT_CHECK(acc == ref, "table dispatch %d, direct %d", acc, ref);
	return 0;
}

/* ---- computed_goto: a tiny register-machine interpreter ---- */
enum { OP_LOADI, OP_ADD, OP_MUL, OP_DEC, OP_JNZ, OP_HALT };

/* Instructions are 3 ints: op, a, b.  Registers r0-r3. */
static long interp(const int *code, unsigned *steps)
{
	static void *const labels[] = {&&op_loadi, &&op_add, &&op_mul,
				       &&op_dec,   &&op_jnz, &&op_halt};
	long r[4] = {0, 0, 0, 0};
	const int *pc = code;
	unsigned n = 0;
#define NEXT                                                                                       \
	do {                                                                                       \
		n++;                                                                               \
		goto *labels[pc[0]];                                                               \
	} while (0)
	NEXT;
op_loadi:
	r[pc[1]] = pc[2];
	pc += 3;
	NEXT;
op_add:
	r[pc[1]] += r[pc[2]];
	pc += 3;
	NEXT;
op_mul:
	r[pc[1]] *= r[pc[2]];
	pc += 3;
	NEXT;
op_dec:
	r[pc[1]]--;
	pc += 3;
	NEXT;
op_jnz:
	pc = r[pc[1]] ? code + 3 * pc[2] : pc + 3;
	NEXT;
op_halt:
	*steps = n;
	return r[pc[1]];
#undef NEXT
}

int ktest_computed_goto(void)
{
	/* r0 = sum, r1 = n: do { r0 += r1; r1--; } while (r1) */
	static const int sum[] = {
	    OP_LOADI, 0, 0, OP_LOADI, 1, 100, /* 0, 1 */
	    OP_ADD,   0, 1, OP_DEC,   1, 0,   /* 2, 3 */
	    OP_JNZ,   1, 2, OP_HALT,  0, 0,   /* 4, 5 */
	};
	/* r0 = acc, r1 = n: do { r0 *= r1; r1--; } while (r1) */
	static const int fact[] = {
	    OP_LOADI, 0, 1, OP_LOADI, 1, 10, /* 0, 1 */
	    OP_MUL,   0, 1, OP_DEC,   1, 0,  /* 2, 3 */
	    OP_JNZ,   1, 2, OP_HALT,  0, 0,  /* 4, 5 */
	};
	unsigned steps = 0;
	long r = interp(sum, &steps);
	KT_CHECK(r == 5050 && steps == 2 + 3 * 100 + 1, "sum 1..100 = %ld in %u steps", r, steps);
	r = interp(fact, &steps);
	KT_CHECK(r == 3628800 && steps == 2 + 3 * 10 + 1, "10! = %ld in %u steps", r, steps);
	return 0;
}

/* ---- tailcall ---- */
__attribute__((noinline)) int kt_is_odd(uint64_t n);
__attribute__((noinline)) int kt_is_even(uint64_t n);
__attribute__((noinline)) int kt_is_even(uint64_t n)
{
	if (n == 0)
		return 1;
	return kt_is_odd(n - 1);
}
__attribute__((noinline)) int kt_is_odd(uint64_t n)
{
	if (n == 0)
		return 0;
	return kt_is_even(n - 1);
}

int ktest_tailcall(void)
{
	/* 4M calls deep: 64+ MiB of stack without sibling-call optimisation. */
	int (*volatile even)(uint64_t) = kt_is_even;
	KT_CHECK(even(4000000) == 1, "is_even(4000000)");
	KT_CHECK(even(4000001) == 0, "is_even(4000001)");
	return 0;
}

/* ---- extable ---- */
int ktest_extable(void)
{
	uint64_t buf = 0x1111;
	unsigned long before = extable_fixups;
	/* Unmapped user address: the kernel thread has no user mappings. */
	long r = copy_from_user(&buf, 0x10000, sizeof(buf));
	KT_CHECK(r == -EFAULT, "copy_from_user(0x10000) returned %ld", r);
	KT_CHECK(extable_fixups == before + 1, "fixups %lu -> %lu", before,
		 (unsigned long)extable_fixups);
	KT_CHECK(buf == 0x1111, "destination was modified");
	/* A kernel address is refused by the range check, without a fault. */
	r = copy_from_user(&buf, (uint64_t)&before, sizeof(buf));
	KT_CHECK(r == -EFAULT && extable_fixups == before + 1, "kernel address accepted (%ld)", r);
	/* A non-canonical kernel read through probe_read_u64 also recovers (#GP). */
	uint64_t v = 0;
	r = probe_read_u64((const void *)0x8000000000000000ul, &v);
	KT_CHECK(r == -EFAULT && extable_fixups == before + 2, "non-canonical probe: %ld", r);
	return 0;
}

/* ---- demand_fault ---- */
int ktest_demand_fault(void)
{
	unsigned long before = demand_faults;
	volatile uint64_t *base = (volatile uint64_t *)(DEMAND_BASE + 0x200000);
	for (unsigned i = 0; i < 8; i++)
		KT_CHECK(base[i * 512] == 0, "fresh demand page %u not zero", i);
	for (unsigned i = 0; i < 8; i++)
		base[i * 512 + 1] = 0xabc0 + i;
	for (unsigned i = 0; i < 8; i++)
		KT_CHECK(base[i * 512 + 1] == 0xabc0 + i, "page %u lost its data", i);
	KT_CHECK(demand_faults == before + 8, "demand faults %lu -> %lu", before,
		 (unsigned long)demand_faults);
	return 0;
}

/* ---- divide_error ---- */
int ktest_divide_error(void)
{
	uint64_t q = 0;
	unsigned long before = extable_fixups;
	long r = safe_div(100, 7, &q);
	KT_CHECK(r == 0 && q == 14, "100/7: r %ld q %lu", r, (unsigned long)q);
	volatile uint64_t zero = 0;
	r = safe_div(100, zero, &q);
	KT_CHECK(r == -1, "divide by zero returned %ld", r);
	KT_CHECK(extable_fixups == before + 1, "no fixup recorded");
	return 0;
}

/* ---- int3 ---- */
int ktest_int3(void)
{
	unsigned long before = int3_count;
	volatile int after_marker = 0;
	__asm__ volatile("int3");
	after_marker = 1;
	__asm__ volatile("int3");
	KT_CHECK(int3_count == before + 2, "int3 count %lu -> %lu", before,
		 (unsigned long)int3_count);
	KT_CHECK(after_marker == 1, "execution did not resume after int3");
	return 0;
}

/* ---- cpuid ---- */
int ktest_cpuid(void)
{
	uint32_t a, b, c, d;
	char vendor[13];
	cpuid(0, 0, &a, &b, &c, &d);
	uint32_t max = a;
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	vendor[12] = 0;
	printk("# cpuid: vendor '%s' max leaf 0x%x\n", vendor, max);
	for (int i = 0; i < 12; i++)
		KT_CHECK(vendor[i] >= 0x20 && vendor[i] < 0x7f, "vendor byte %d = 0x%x", i,
			 vendor[i]);
	KT_CHECK(max >= 1 && max < 0x100, "max basic leaf 0x%x", max);
	cpuid(1, 0, &a, &b, &c, &d);
	/* x86-64 implies FPU, TSC, MSR, PAE, CX8, CMOV, FXSR, SSE, SSE2. */
	const uint32_t need = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) |
			      (1u << 15) | (1u << 24) | (1u << 25) | (1u << 26);
	KT_CHECK((d & need) == need, "leaf 1 edx 0x%x lacks 0x%x", d, need & ~d);
	cpuid(0x80000000, 0, &a, &b, &c, &d);
	KT_CHECK(a >= 0x80000001 && a < 0x80000100, "max extended leaf 0x%x", a);
	cpuid(0x80000001, 0, &a, &b, &c, &d);
	KT_CHECK(d & (1u << 29), "long mode bit clear");
	KT_CHECK(((d >> 20) & 1) == cpu_has_nx, "NX bit changed");
	KT_CHECK((rdmsr(MSR_EFER) & EFER_NXE ? 1 : 0) == cpu_has_nx, "EFER.NXE vs NX");
	if (max >= 7) {
		cpuid(7, 0, &a, &b, &c, &d);
		KT_CHECK(((b >> 7) & 1) == cpu_has_smep, "SMEP bit changed");
		KT_CHECK(!!(read_cr4() & CR4_SMEP) == cpu_has_smep, "CR4.SMEP vs CPUID");
		KT_CHECK(!!(read_cr4() & CR4_SMAP) == cpu_has_smap, "CR4.SMAP vs CPUID");
	}
	return 0;
}

/* ---- rdtsc ---- */
int ktest_rdtsc(void)
{
	uint64_t first = rdtsc(), prev = first;
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t t = rdtsc();
		KT_CHECK(t >= prev, "TSC went backwards at %u", i);
		prev = t;
	}
	KT_CHECK(prev > first, "TSC did not advance");
	return 0;
}

/* ---- wp: kernel text and rodata are read-only even for ring 0 ---- */
static const uint64_t wp_rodata = 0x5eed;

int ktest_wp(void)
{
	unsigned long before = extable_fixups;
	uint64_t orig;
	KT_CHECK(probe_read_u64((const void *)smc_target, &orig) == 0, "cannot read text");
	long r = probe_write_u64((void *)smc_target, orig);
	KT_CHECK(r == -EFAULT, "write to kernel text returned %ld", r);
	r = probe_write_u64((void *)&wp_rodata, 1);
	KT_CHECK(r == -EFAULT, "write to rodata returned %ld", r);
	KT_CHECK(extable_fixups == before + 2, "fixups %lu -> %lu", before,
		 (unsigned long)extable_fixups);
	KT_CHECK(wp_rodata == 0x5eed, "rodata changed");
	return 0;
}

/* ---- nx: data and rodata are not executable ---- */
static uint8_t nx_data[16] = {0xc3}; /* ret */
static const uint8_t nx_rodata[16] = {0xc3};

static int nx_probe(const void *code, uint64_t *err)
{
	unsigned long before = exec_probe_faults;
	exec_probe_addr = (uint64_t)code;
	((void (*)(void))code)();
	exec_probe_addr = 0;
	*err = exec_probe_error;
	return exec_probe_faults != before;
}

int ktest_nx(void)
{
	uint64_t err = 0;
	if (!cpu_has_nx) {
		KT_CHECK(!nx_probe(nx_data, &err), "fault without NX support");
		printk("# nx: CPU has no NX; data executed as expected\n");
		return 0;
	}
	KT_CHECK(nx_probe(nx_data, &err), "executed .data");
	KT_CHECK((err & 0x11) == 0x11, "#PF error 0x%lx lacks P|I", (unsigned long)err);
	KT_CHECK(nx_probe(nx_rodata, &err), "executed .rodata");
	KT_CHECK(nx_probe((const void *)pa_to_va(va_to_pa((uint64_t)smc_target)), &err),
		 "executed the direct-map alias of kernel text");
	return 0;
}
