/*
 * runtime/cpu at CPL 3: every privileged or sensitive instruction that guest
 * user code may hand to cpu_step_priv, as the SDM defines it for a user
 * (and how Linux 6.1 relies on it): #GP/#UD of the privileged ones, IOPL
 * and the TSS I/O permission bitmap, LAR/LSL/VERR/VERW and segment loads
 * against a guest LDT, UMIP, TSC_AUX, FS/GS base instructions, gate DPL of
 * int n, RFLAGS across syscall/sysret/iret/exceptions and the single-step
 * #DB.  Real instruction bytes in guest RAM, decoded by Zydis, descriptor
 * tables and TSS built in guest memory (test_cpu_env.h).
 */
#include "tests/unit/test_cpu_env.h"

#define GPR(e, r) ((e)->abi->gpr[VCPU_##r])

#define ENV_LDT	    0x9000ull  /* 4 LDT entries */
#define ENV_LDT_SEL 0x50       /* its GDT descriptor (16 bytes) */
#define ENV_TSS2    0x10000ull /* a TSS with an I/O bitmap at +0x68 */
#define ENV_IOMAP   0x68u
#define ENV_DATA    0xc000ull /* scratch memory operands */

/* The fault handler was reached from CPL 3: error code, RIP, CS, RFLAGS. */
static uint64_t expect_user_fault(struct cpu_env *e, unsigned vector, bool has_err, uint64_t err,
				  uint64_t rip)
{
	assert_int_equal(e->abi->rip, ENV_HANDLER(vector));
	assert_int_equal(e->v.cpl, 0);
	uint64_t sp = GPR(e, RSP);
	if (has_err) {
		assert_int_equal(env_r64(e, sp), err);
		sp += 8;
	}
	assert_int_equal(env_r64(e, sp), rip);
	assert_int_equal(env_r64(e, sp + 8), ENV_UCS);
	return env_r64(e, sp + 16); /* the RFLAGS pushed */
}

/* Back to 64-bit CPL 3 with flat user segments and the given RFLAGS. */
static void to_user(struct cpu_env *e, uint64_t rflags)
{
	struct vcpu *v = &e->v;
	cpu_seg_set_flat(&v->seg[CPU_CS], ENV_UCS, true, 3);
	cpu_seg_set_flat(&v->seg[CPU_SS], ENV_UDS, false, 3);
	cpu_seg_set_flat(&v->seg[CPU_DS], ENV_UDS, false, 3);
	cpu_seg_set_flat(&v->seg[CPU_ES], ENV_UDS, false, 3);
	v->cpl = 3;
	cpu_sync_mmu(v);
	cpu_set_rflags(v, rflags);
	GPR(e, RSP) = ENV_RSP;
}

static void to_kernel(struct cpu_env *e)
{
	struct vcpu *v = &e->v;
	cpu_seg_set_flat(&v->seg[CPU_CS], ENV_KCS, true, 0);
	cpu_seg_set_flat(&v->seg[CPU_SS], ENV_KDS, false, 0);
	v->cpl = 0;
	cpu_sync_mmu(v);
	GPR(e, RSP) = ENV_RSP;
}

/* Run bytes at CPL 3; expect a fault of `vector` (error code err) at them. */
static void user_faults(struct cpu_env *e, const uint8_t *b, size_t n, unsigned vector,
			bool has_err, uint32_t err)
{
	to_user(e, CPU_RFLAGS_IF);
	assert_int_equal(env_run(e, b, n), CPU_OUT_CONTINUE);
	expect_user_fault(e, vector, has_err, err, ENV_CODE);
}

static void test_privileged_gp_and_ud(void **state)
{
	struct cpu_env *e = *state;
	static const struct {
		uint8_t b[6];
		uint8_t n;
		uint8_t vector;
	} cases[] = {
	    {{0xf4}, 1, CPU_EXC_GP},		 /* hlt */
	    {{0xfa}, 1, CPU_EXC_GP},		 /* cli, IOPL 0 */
	    {{0xfb}, 1, CPU_EXC_GP},		 /* sti, IOPL 0 */
	    {{0x0f, 0x32}, 2, CPU_EXC_GP},	 /* rdmsr */
	    {{0x0f, 0x30}, 2, CPU_EXC_GP},	 /* wrmsr */
	    {{0x0f, 0x20, 0xc0}, 3, CPU_EXC_GP}, /* mov %cr0,%rax */
	    {{0x0f, 0x22, 0xd8}, 3, CPU_EXC_GP}, /* mov %rax,%cr3 */
	    {{0x0f, 0x21, 0xf8}, 3, CPU_EXC_GP}, /* mov %db7,%rax */
	    {{0x0f, 0x01, 0x10}, 3, CPU_EXC_GP}, /* lgdt (%rax) */
	    {{0x0f, 0x01, 0x18}, 3, CPU_EXC_GP}, /* lidt (%rax) */
	    {{0x0f, 0x00, 0xd8}, 3, CPU_EXC_GP}, /* ltr %ax */
	    {{0x0f, 0x00, 0xd0}, 3, CPU_EXC_GP}, /* lldt %ax */
	    {{0x0f, 0x01, 0xf0}, 3, CPU_EXC_GP}, /* lmsw %ax */
	    {{0x0f, 0x06}, 2, CPU_EXC_GP},	 /* clts */
	    {{0x0f, 0x01, 0x38}, 3, CPU_EXC_GP}, /* invlpg (%rax) */
	    {{0x0f, 0x09}, 2, CPU_EXC_GP},	 /* wbinvd */
	    {{0x0f, 0x01, 0xf8}, 3, CPU_EXC_GP}, /* swapgs */
	    {{0x48, 0x0f, 0x07}, 3, CPU_EXC_GP}, /* sysretq */
	    {{0x48, 0x0f, 0x35}, 3, CPU_EXC_GP}, /* sysexitq */
	    {{0x0f, 0x33}, 2, CPU_EXC_GP},	 /* rdpmc */
	    {{0x0f, 0x20, 0xc8}, 3, CPU_EXC_UD}, /* mov %cr1: #UD before the CPL check */
	    {{0x0f, 0x01, 0xcb}, 3, CPU_EXC_UD}, /* stac: #UD at CPL > 0 */
	    {{0x0f, 0x01, 0xca}, 3, CPU_EXC_UD}, /* clac */
	    {{0x0f, 0x0b}, 2, CPU_EXC_UD},	 /* ud2 */
	    {{0xf3, 0x48, 0x0f, 0xae, 0xc0}, 5, CPU_EXC_UD}, /* rdfsbase: CR4.FSGSBASE = 0 */
	    {{0xf3, 0x0f, 0xc7, 0xf8}, 4, CPU_EXC_UD},	     /* rdpid: not advertised */
	    {{0x0f, 0x01, 0xee}, 3, CPU_EXC_UD},	     /* rdpkru: CR4.PKE = 0 */
	    {{0x0f, 0x01, 0xc8}, 3, CPU_EXC_UD},	     /* monitor: not advertised */
	    {{0x0f, 0xae, 0x20}, 3, CPU_EXC_UD},	     /* xsave (%rax): CR4.OSXSAVE = 0 */
	};
	struct vcpu *v = &e->v;
	uint64_t cr0 = v->cr0, cr3 = v->cr3, gs = 0x1234;
	e->abi->gs_base = gs;
	GPR(e, RAX) = ENV_DATA;
	for (size_t i = 0; i < BT_ARRAY_SIZE(cases); i++) {
		bool err = cases[i].vector == CPU_EXC_GP;
		user_faults(e, cases[i].b, cases[i].n, cases[i].vector, err, 0);
		/* nothing privileged changed */
		assert_int_equal(v->cr0, cr0);
		assert_int_equal(v->cr3, cr3);
		assert_int_equal(v->gdtr.base, ENV_GDT);
		assert_int_equal(v->idtr.base, ENV_IDT);
		assert_int_equal(v->tr.sel, ENV_TR);
		assert_int_equal(e->abi->gs_base, gs);
	}
}

static void test_int_gate_dpl(void **state)
{
	struct cpu_env *e = *state;
	/* int $0x21 through a DPL-0 gate: #GP(0x21*8+2), RIP at the int */
	to_user(e, CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0xcd, 0x21), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_GP, true, 0x21 * 8 + 2, ENV_CODE);
	/* int $0x80 through a DPL-3 gate: a CPL change onto rsp0 */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_NT | CPU_RFLAGS_AC);
	assert_int_equal(ENV_RUN(e, 0xcd, 0x80), CPU_OUT_CONTINUE);
	uint64_t f = expect_user_fault(e, 0x80, false, 0, ENV_CODE + 2);
	assert_int_equal(f, CPU_RFLAGS_FIXED | CPU_RFLAGS_IF | CPU_RFLAGS_NT | CPU_RFLAGS_AC);
	assert_int_equal(GPR(e, RSP), ENV_RSP0 - 40);
	assert_int_equal(env_r64(e, ENV_RSP0 - 16), ENV_RSP);
	assert_int_equal(env_r64(e, ENV_RSP0 - 8), ENV_UDS);
	/* delivery clears NT and IF (interrupt gate), keeps AC */
	assert_false(cpu_rflags(&e->v) & (CPU_RFLAGS_NT | CPU_RFLAGS_IF));
	assert_true(cpu_rflags(&e->v) & CPU_RFLAGS_AC);
	/* int3 (DPL-3 gate): #BP trap after the instruction */
	to_user(e, CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0xcc), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_BP, false, 0, ENV_CODE + 1);
	/* int1 (icebp): #DB through the DPL-0 gate, no DPL check */
	to_user(e, CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0xf1), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_DB, false, 0, ENV_CODE + 1);
	/* int $3 (cd 03) is checked like int n: the gate is DPL 3 here */
	to_user(e, CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0xcd, 0x03), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_BP, false, 0, ENV_CODE + 2);
	/* into does not exist in 64-bit mode */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_OF);
	assert_int_equal(ENV_RUN(e, 0xce), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_UD, false, 0, ENV_CODE);
}

static void test_iopl_popf_cli_sti(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* IOPL 0, CPL 3: popfq can write AC, NT, DF, TF... but not IF or IOPL */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RSP) = ENV_RSP - 8;
	env_w64(e, ENV_RSP - 8,
		CPU_RFLAGS_FIXED | CPU_RFLAGS_IOPL | CPU_RFLAGS_AC | CPU_RFLAGS_NT | CPU_RFLAGS_DF |
		    CPU_RFLAGS_CF | CPU_RFLAGS_ID);
	assert_int_equal(ENV_RUN(e, 0x9d), CPU_OUT_USER);
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_IF | CPU_RFLAGS_AC |
					    CPU_RFLAGS_NT | CPU_RFLAGS_DF | CPU_RFLAGS_CF |
					    CPU_RFLAGS_ID);
	assert_int_equal(GPR(e, RSP), ENV_RSP);
	/* pushfq shows them (and IOPL 0) */
	assert_int_equal(ENV_RUN(e, 0x9c), CPU_OUT_USER);
	assert_int_equal(env_r64(e, ENV_RSP - 8), cpu_rflags(v));
	/* popfq clearing IF at IOPL 0: silently kept */
	GPR(e, RSP) = ENV_RSP - 8;
	env_w64(e, ENV_RSP - 8, CPU_RFLAGS_FIXED);
	assert_int_equal(ENV_RUN(e, 0x9d), CPU_OUT_USER);
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_IF);
	/* IOPL 3 (set by the kernel): cli/sti work at CPL 3, popf writes IF
	 * but still not IOPL */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_IOPL);
	assert_int_equal(ENV_RUN(e, 0xfa), CPU_OUT_USER);
	assert_false(cpu_if(v));
	assert_int_equal(ENV_RUN(e, 0xfb), CPU_OUT_USER);
	assert_true(cpu_if(v));
	GPR(e, RSP) = ENV_RSP - 8;
	env_w64(e, ENV_RSP - 8, CPU_RFLAGS_FIXED);
	assert_int_equal(ENV_RUN(e, 0x9d), CPU_OUT_USER);
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_IOPL);
	/* IOPL 2 < CPL 3: cli faults again */
	to_user(e, CPU_RFLAGS_IF | (2ull << 12));
	assert_int_equal(ENV_RUN(e, 0xfa), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	/* iretq at CPL 3 to CPL 3 (IOPL 0): IF and IOPL come from the old flags */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RSP) = ENV_RSP - 40;
	env_w64(e, ENV_RSP - 40, 0x401000);
	env_w64(e, ENV_RSP - 32, ENV_UCS);
	env_w64(e, ENV_RSP - 24, CPU_RFLAGS_FIXED | CPU_RFLAGS_IOPL | CPU_RFLAGS_AC);
	env_w64(e, ENV_RSP - 16, 0x7000);
	env_w64(e, ENV_RSP - 8, ENV_UDS);
	assert_int_equal(ENV_RUN(e, 0x48, 0xcf), CPU_OUT_USER);
	assert_int_equal(e->abi->rip, 0x401000);
	assert_int_equal(GPR(e, RSP), 0x7000);
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_IF | CPU_RFLAGS_AC);
	/* iretq with NT set: #GP(0) (no task switch in long mode) */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_NT);
	assert_int_equal(ENV_RUN(e, 0x48, 0xcf), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
}

/* A TSS at ENV_TSS2 with an I/O bitmap: all ports denied except those
 * cleared; limit = the map's end + 1 (Linux's layout: a final 0xff byte). */
static void io_tss(struct cpu_env *e, uint16_t map_base, uint32_t limit)
{
	memset(e->ram + ENV_TSS2, 0, 0x68);
	memset(e->ram + ENV_TSS2 + ENV_IOMAP, 0xff, 8192 + 1);
	memcpy(e->ram + ENV_TSS2 + 0x66, &map_base, 2);
	env_w64(e, ENV_TSS2 + 4, ENV_RSP0);
	uint64_t lo = (limit & 0xffff) | ((ENV_TSS2 & 0xffffff) << 16) | (0x89ull << 40) |
		      ((uint64_t)(limit >> 16) << 48);
	env_w64(e, ENV_GDT + ENV_TR, lo);
	env_w64(e, ENV_GDT + ENV_TR + 8, 0);
	/* ltr %ax at CPL 0 */
	to_kernel(e);
	GPR(e, RAX) = ENV_TR;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xd8), CPU_OUT_CONTINUE);
	assert_int_equal(e->v.tr.base, ENV_TSS2);
	assert_int_equal(e->v.tr.limit, limit);
}

static void io_allow(struct cpu_env *e, unsigned port)
{
	e->ram[ENV_TSS2 + ENV_IOMAP + port / 8] &= (uint8_t) ~(1u << (port % 8));
}

static void test_io_bitmap(void **state)
{
	struct cpu_env *e = *state;
	io_tss(e, ENV_IOMAP, ENV_IOMAP + 8192);
	io_allow(e, 0x80);
	for (unsigned p = 0x3f8; p < 0x3fc; p++)
		io_allow(e, p);
	/* outb %al,$0x80: allowed by the bitmap */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RAX) = 0x5a;
	assert_int_equal(ENV_RUN(e, 0xe6, 0x80), CPU_OUT_USER);
	assert_int_equal(e->n_out, 1);
	assert_int_equal(e->out_port[0], 0x80);
	assert_int_equal(e->out_val[0], 0x5a);
	/* inb $0x81,%al: denied */
	user_faults(e, (const uint8_t[]){0xe4, 0x81}, 2, CPU_EXC_GP, true, 0);
	assert_int_equal(e->n_in, 0);
	/* outw %ax,(%dx) at 0x7f covers 0x7f (denied) and 0x80 */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RDX) = 0x7f;
	assert_int_equal(ENV_RUN(e, 0x66, 0xef), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	/* outl %eax,(%dx) at 0x3f8: four clear bits */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RDX) = 0x3f8;
	assert_int_equal(ENV_RUN(e, 0xef), CPU_OUT_USER);
	assert_int_equal(e->n_out, 2);
	/* inl (%dx) at 0x3f9 reaches 0x3fc: denied */
	GPR(e, RDX) = 0x3f9;
	user_faults(e, (const uint8_t[]){0xed}, 1, CPU_EXC_GP, true, 0);
	/* rep outsb to 0x80: allowed, three bytes */
	to_user(e, CPU_RFLAGS_IF);
	memcpy(e->ram + ENV_DATA, "abc", 3);
	GPR(e, RDX) = 0x80;
	GPR(e, RSI) = ENV_DATA;
	GPR(e, RCX) = 3;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x6e), CPU_OUT_USER);
	assert_int_equal(e->n_out, 5);
	assert_int_equal(e->out_val[4], 'c');
	/* insb from 0x81: denied before any port access or store */
	GPR(e, RDX) = 0x81;
	GPR(e, RDI) = ENV_DATA;
	user_faults(e, (const uint8_t[]){0x6c}, 1, CPU_EXC_GP, true, 0);
	assert_int_equal(e->n_in, 0);
	/* IOPL 3 (the kernel's choice): every port without the bitmap */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_IOPL);
	assert_int_equal(ENV_RUN(e, 0xe4, 0x81), CPU_OUT_USER);
	assert_int_equal(e->n_in, 1);
	/* the bitmap's two bytes past the TSS limit: #GP(0).  Port 0xfff8
	 * needs map bytes 0x1fff and 0x2000: with the limit at the map's last
	 * byte 0x1fff (no trailing 0xff byte) the read leaves the TSS */
	io_tss(e, ENV_IOMAP, ENV_IOMAP + 8191);
	for (unsigned p = 0; p < 0x10000; p++)
		io_allow(e, p);
	GPR(e, RDX) = 0xfff8;
	user_faults(e, (const uint8_t[]){0xec}, 1, CPU_EXC_GP, true, 0);
	GPR(e, RDX) = 0xfff0; /* bytes 0x1ffe-0x1fff: inside */
	to_user(e, CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0xec), CPU_OUT_USER);
	/* Linux without ioperm(): the map offset points past the limit */
	io_tss(e, 0x8000, ENV_IOMAP + 8192);
	GPR(e, RDX) = 0x80;
	user_faults(e, (const uint8_t[]){0xee}, 1, CPU_EXC_GP, true, 0);
}

/* GDT descriptor of the LDT at ENV_LDT_SEL and four LDT entries:
 *   0x07  data RW DPL3, base 0x12345000, limit 0xfff (byte granular)
 *   0x0f  data RW DPL0
 *   0x17  data RW DPL3, not present
 *   0x1f  code execute-only DPL3 (32-bit) */
static void build_ldt(struct cpu_env *e)
{
	env_w64(e, ENV_LDT + 0, 0x1240f23450000fffull);
	env_w64(e, ENV_LDT + 8, 0x00cf92000000ffffull);
	env_w64(e, ENV_LDT + 16, 0x00cf72000000ffffull);
	env_w64(e, ENV_LDT + 24, 0x00cff8000000ffffull);
	uint64_t lo = 31 | ((ENV_LDT & 0xffffff) << 16) | (0x82ull << 40);
	env_w64(e, ENV_GDT + ENV_LDT_SEL, lo);
	env_w64(e, ENV_GDT + ENV_LDT_SEL + 8, 0);
	e->v.gdtr.limit = ENV_LDT_SEL + 15;
	/* lldt %ax at CPL 0 */
	to_kernel(e);
	GPR(e, RAX) = ENV_LDT_SEL;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xd0), CPU_OUT_CONTINUE);
	assert_int_equal(e->v.ldtr.base, ENV_LDT);
}

static void test_ldt_lar_lsl_verr(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* no LDT yet: lar of an LDT selector is ZF=0, a load #GP(sel) */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RBX) = 0x7;
	GPR(e, RAX) = 0x55;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x02, 0xc3), CPU_OUT_USER); /* lar %bx,%eax */
	assert_false(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(GPR(e, RAX), 0x55);
	user_faults(e, (const uint8_t[]){0x8e, 0xdb}, 2, CPU_EXC_GP, true, 0x4); /* mov %bx,%ds */

	build_ldt(e);
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RBX) = 0x7;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x02, 0xc3), CPU_OUT_USER); /* lar */
	assert_true(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(GPR(e, RAX), 0x0040f200);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc3), CPU_OUT_USER); /* lsl %bx,%eax */
	assert_int_equal(GPR(e, RAX), 0xfff);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xe3), CPU_OUT_USER); /* verr %bx */
	assert_true(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xeb), CPU_OUT_USER); /* verw %bx */
	assert_true(cpu_rflags(v) & CPU_RFLAGS_ZF);
	/* a DPL-0 entry is invisible from CPL 3 */
	GPR(e, RBX) = 0xf;
	GPR(e, RAX) = 0x55;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc3), CPU_OUT_USER);
	assert_false(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(GPR(e, RAX), 0x55);
	/* a not-present entry: lar still reports it (P=0 in the result) */
	GPR(e, RBX) = 0x17;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x02, 0xc3), CPU_OUT_USER);
	assert_true(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(GPR(e, RAX), 0x00c07200);
	/* execute-only code: verr and verw both ZF=0, lar ZF=1 */
	GPR(e, RBX) = 0x1f;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xe3), CPU_OUT_USER);
	assert_false(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xeb), CPU_OUT_USER);
	assert_false(cpu_rflags(v) & CPU_RFLAGS_ZF);
	/* the TSS (DPL 0) and the LDT descriptor itself: ZF=0 at CPL 3 */
	GPR(e, RBX) = ENV_TR | 3;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc3), CPU_OUT_USER);
	assert_false(cpu_rflags(v) & CPU_RFLAGS_ZF);
	/* user GDT data: lsl of 0x2b is its 4 GiB limit */
	GPR(e, RBX) = ENV_UDS;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc3), CPU_OUT_USER);
	assert_int_equal(GPR(e, RAX), 0xffffffffull);

	/* segment loads from the LDT */
	GPR(e, RBX) = 0x7;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xdb), CPU_OUT_USER); /* mov %bx,%ds */
	assert_int_equal(v->seg[CPU_DS].sel, 0x7);
	assert_int_equal(v->seg[CPU_DS].base, 0x12345000);
	assert_int_equal(v->seg[CPU_DS].limit, 0xfff);
	assert_true(e->ram[ENV_LDT + 5] & 1);			/* accessed bit written back */
	assert_int_equal(ENV_RUN(e, 0x8e, 0xe3), CPU_OUT_USER); /* mov %bx,%fs */
	assert_int_equal(e->abi->fs_base, 0x12345000);
	assert_int_equal(ENV_RUN(e, 0x8e, 0xd3), CPU_OUT_USER); /* mov %bx,%ss */
	assert_int_equal(v->seg[CPU_SS].sel, 0x7);
	assert_int_equal(ENV_RUN(e, 0x8c, 0xd8), CPU_OUT_USER); /* mov %ds,%eax */
	assert_int_equal(GPR(e, RAX), 0x7);
	/* RPL 0 of a DPL-3 entry is fine for data (RPL <= DPL) */
	GPR(e, RBX) = 0x4;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xc3), CPU_OUT_USER); /* mov %bx,%es */
	/* ...but not for SS (RPL must equal CPL) */
	user_faults(e, (const uint8_t[]){0x8e, 0xd3}, 2, CPU_EXC_GP, true, 0x4);
	/* DPL 0 from CPL 3: #GP(sel); not present: #NP(sel), #SS(sel) for ss */
	GPR(e, RBX) = 0xf;
	user_faults(e, (const uint8_t[]){0x8e, 0xdb}, 2, CPU_EXC_GP, true, 0xc);
	GPR(e, RBX) = 0x17;
	user_faults(e, (const uint8_t[]){0x8e, 0xdb}, 2, CPU_EXC_NP, true, 0x14);
	user_faults(e, (const uint8_t[]){0x8e, 0xd3}, 2, CPU_EXC_SS, true, 0x14);
	/* execute-only code into ds: #GP(sel); beyond the LDT limit: #GP(sel) */
	GPR(e, RBX) = 0x1f;
	user_faults(e, (const uint8_t[]){0x8e, 0xdb}, 2, CPU_EXC_GP, true, 0x1c);
	GPR(e, RBX) = 0x27;
	user_faults(e, (const uint8_t[]){0x8e, 0xdb}, 2, CPU_EXC_GP, true, 0x24);
	/* the kernel's data segment from CPL 3 */
	GPR(e, RBX) = ENV_KDS;
	user_faults(e, (const uint8_t[]){0x8e, 0xdb}, 2, CPU_EXC_GP, true, ENV_KDS);
	/* null selectors: fine for ds (unusable), #GP(0) for ss at CPL 3 */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RBX) = 3;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xdb), CPU_OUT_USER);
	assert_true(v->seg[CPU_DS].ar & CPU_AR_UNUSABLE);
	user_faults(e, (const uint8_t[]){0x8e, 0xd3}, 2, CPU_EXC_GP, true, 0);
	/* lgs (%rax),%ebx with m16:32 = 0x7:0x1234; pop %fs of 0x7 */
	to_user(e, CPU_RFLAGS_IF);
	uint32_t off = 0x1234;
	uint16_t sel = 0x7;
	memcpy(e->ram + ENV_DATA, &off, 4);
	memcpy(e->ram + ENV_DATA + 4, &sel, 2);
	GPR(e, RAX) = ENV_DATA;
	assert_int_equal(ENV_RUN(e, 0x0f, 0xb5, 0x18), CPU_OUT_USER);
	assert_int_equal(GPR(e, RBX), 0x1234);
	assert_int_equal(v->seg[CPU_GS].sel, 0x7);
	assert_int_equal(e->abi->gs_base, 0x12345000);
	GPR(e, RSP) = ENV_RSP - 8;
	env_w64(e, ENV_RSP - 8, 0x7);
	e->abi->fs_base = 0;
	assert_int_equal(ENV_RUN(e, 0x0f, 0xa1), CPU_OUT_USER);
	assert_int_equal(GPR(e, RSP), ENV_RSP);
	assert_int_equal(e->abi->fs_base, 0x12345000);
	/* push %gs pushes the selector */
	assert_int_equal(ENV_RUN(e, 0x0f, 0xa8), CPU_OUT_USER);
	assert_int_equal(env_r64(e, ENV_RSP - 8), 0x7);
}

static void test_umip(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* UMIP clear: the values, also at CPL 3 */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RAX) = ENV_DATA;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0x00), CPU_OUT_USER); /* sgdt (%rax) */
	uint16_t lim;
	uint64_t base;
	memcpy(&lim, e->ram + ENV_DATA, 2);
	memcpy(&base, e->ram + ENV_DATA + 2, 8);
	assert_int_equal(lim, v->gdtr.limit);
	assert_int_equal(base, ENV_GDT);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xcb), CPU_OUT_USER); /* str %ebx */
	assert_int_equal(GPR(e, RBX), ENV_TR);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xe3), CPU_OUT_USER); /* smsw %ebx */
	assert_int_equal(GPR(e, RBX), (uint32_t)v->cr0);
	/* CR4.UMIP is refused unless CPUID advertises it */
	to_kernel(e);
	assert_false(cpu_write_cr(v, 4, v->cr4 | CPU_CR4_UMIP));
	v->cpuid.f7_ecx |= 1u << 2;
	assert_true(cpu_write_cr(v, 4, v->cr4 | CPU_CR4_UMIP));
	static const uint8_t umip[][3] = {
	    {0x0f, 0x01, 0x00}, /* sgdt (%rax) */
	    {0x0f, 0x01, 0x08}, /* sidt (%rax) */
	    {0x0f, 0x00, 0xc3}, /* sldt %ebx */
	    {0x0f, 0x00, 0xcb}, /* str %ebx */
	    {0x0f, 0x01, 0xe3}, /* smsw %ebx */
	};
	for (size_t i = 0; i < BT_ARRAY_SIZE(umip); i++)
		user_faults(e, umip[i], 3, CPU_EXC_GP, true, 0);
	/* CPL 0 is not affected */
	to_kernel(e);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xcb), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RBX), ENV_TR);
}

static void test_tsc_aux_rdtscp_rdpid(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	to_kernel(e);
	assert_true(cpu_wrmsr(v, 0xc0000103, 0x1005));
	/* user TSC_AUX writes are #GP (wrmsr at CPL 3: test above) */
	e->tsc = 0x123456789aull;
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RCX) = ~0ull;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xf9), CPU_OUT_USER); /* rdtscp */
	assert_int_equal(GPR(e, RCX), 0x1005);
	assert_int_equal(GPR(e, RAX), 0x3456789a);
	assert_int_equal(GPR(e, RDX), 0x12);
	/* rdpid is #UD until advertised, then TSC_AUX zero-extended */
	user_faults(e, (const uint8_t[]){0xf3, 0x0f, 0xc7, 0xf8}, 4, CPU_EXC_UD, false, 0);
	v->cpuid.f7_ecx |= 1u << 22;
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RAX) = ~0ull;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x0f, 0xc7, 0xf8), CPU_OUT_USER);
	assert_int_equal(GPR(e, RAX), 0x1005);
	/* CR4.TSD: rdtscp faults at CPL 3, rdpid does not */
	to_kernel(e);
	assert_true(cpu_write_cr(v, 4, v->cr4 | CPU_CR4_TSD));
	user_faults(e, (const uint8_t[]){0x0f, 0x01, 0xf9}, 3, CPU_EXC_GP, true, 0);
	user_faults(e, (const uint8_t[]){0x0f, 0x31}, 2, CPU_EXC_GP, true, 0);
	to_user(e, CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0xf3, 0x0f, 0xc7, 0xf8), CPU_OUT_USER);
}

static void test_fsgsbase(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	to_kernel(e);
	/* CR4.FSGSBASE only when CPUID advertises it */
	assert_false(cpu_write_cr(v, 4, v->cr4 | CPU_CR4_FSGSBASE));
	v->cpuid.f7_ebx |= 1u << 0;
	assert_true(cpu_write_cr(v, 4, v->cr4 | CPU_CR4_FSGSBASE));
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RAX) = 0x7fff12345678ull;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x48, 0x0f, 0xae, 0xd0), CPU_OUT_USER); /* wrfsbase */
	assert_int_equal(e->abi->fs_base, 0x7fff12345678ull);
	assert_int_equal(ENV_RUN(e, 0xf3, 0x48, 0x0f, 0xae, 0xc3), CPU_OUT_USER); /* rdfsbase rbx */
	assert_int_equal(GPR(e, RBX), 0x7fff12345678ull);
	assert_int_equal(ENV_RUN(e, 0xf3, 0x0f, 0xae, 0xc3), CPU_OUT_USER); /* rdfsbase ebx */
	assert_int_equal(GPR(e, RBX), 0x12345678);
	GPR(e, RCX) = 0xffffffff99999999ull;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x0f, 0xae, 0xd9), CPU_OUT_USER); /* wrgsbase ecx */
	assert_int_equal(e->abi->gs_base, 0x99999999ull);
	assert_int_equal(ENV_RUN(e, 0xf3, 0x48, 0x0f, 0xae, 0xca), CPU_OUT_USER); /* rdgsbase */
	assert_int_equal(GPR(e, RDX), 0x99999999ull);
	/* a non-canonical base: #GP(0), nothing written */
	GPR(e, RAX) = 0x0000800000000000ull;
	user_faults(e, (const uint8_t[]){0xf3, 0x48, 0x0f, 0xae, 0xd0}, 5, CPU_EXC_GP, true, 0);
	assert_int_equal(e->abi->fs_base, 0x7fff12345678ull);
}

static void syscall_msrs(struct vcpu *v, uint64_t sfmask)
{
	v->msr.star = ((uint64_t)0x23 << 48) | ((uint64_t)ENV_KCS << 32);
	v->msr.lstar = 0xffffffff81a00000ull;
	v->msr.sfmask = sfmask;
}

static void test_syscall_flags(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* Linux's SFMASK: TF IF DF IOPL NT AC */
	syscall_msrs(v, 0x47700);
	uint64_t uf = CPU_RFLAGS_FIXED | CPU_RFLAGS_IF | CPU_RFLAGS_NT | CPU_RFLAGS_AC |
		      CPU_RFLAGS_TF | CPU_RFLAGS_CF;
	to_user(e, uf);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x05), CPU_OUT_CONTINUE); /* syscall */
	assert_int_equal(v->cpl, 0);
	assert_int_equal(e->abi->rip, 0xffffffff81a00000ull); /* no #DB: TF masked */
	assert_int_equal(GPR(e, RCX), ENV_CODE + 2);
	assert_int_equal(GPR(e, R11), uf);
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_CF);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_KCS);
	/* sysretq restores NT, AC, TF from R11; no #DB after it (TF was 0) */
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0x07), CPU_OUT_USER);
	assert_int_equal(e->abi->rip, ENV_CODE + 2);
	assert_int_equal(cpu_rflags(v), uf);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_UCS);
	/* an SFMASK without TF: syscall completes, then #DB in the kernel */
	syscall_msrs(v, CPU_RFLAGS_IF);
	to_user(e, uf);
	v->dr[6] = 0xffff0ff0;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x05), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_DB));
	assert_int_equal(env_r64(e, GPR(e, RSP)), 0xffffffff81a00000ull);
	assert_true(v->dr[6] & CPU_DR6_BS);
	/* without EFER.SCE: #UD at the syscall */
	v->efer &= ~CPU_EFER_SCE;
	user_faults(e, (const uint8_t[]){0x0f, 0x05}, 2, CPU_EXC_UD, false, 0);
	v->efer |= CPU_EFER_SCE;
	/* the direct-mode entry point is the same transition */
	syscall_msrs(v, 0x47700);
	to_user(e, uf);
	enum cpu_outcome out;
	assert_int_equal(cpu_syscall_from_user(v, 0x401002, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, R11), uf);
	assert_int_equal(e->abi->rip, 0xffffffff81a00000ull);
	/* a fault at CPL 3 with TF NT AC: the frame has them, the handler runs
	 * with TF and NT clear and AC kept */
	to_user(e, uf);
	assert_int_equal(ENV_RUN(e, 0xf4), CPU_OUT_CONTINUE); /* hlt: #GP */
	assert_int_equal(expect_user_fault(e, CPU_EXC_GP, true, 0, ENV_CODE), uf);
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_AC | CPU_RFLAGS_CF);
	/* sysretq with a non-canonical RCX: #GP(0) at CPL 0 (Intel) */
	GPR(e, RSP) = ENV_RSP;
	GPR(e, RCX) = 0x0000800000000000ull;
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0x07), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
	assert_int_equal(v->cpl, 0);
}

static void test_single_step(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* cpuid with TF: completes, then #DB with RIP after it */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_TF);
	GPR(e, RAX) = 0;
	assert_int_equal(ENV_RUN(e, 0x0f, 0xa2), CPU_OUT_CONTINUE);
	uint64_t f = expect_user_fault(e, CPU_EXC_DB, false, 0, ENV_CODE + 2);
	assert_true(f & CPU_RFLAGS_TF);
	assert_int_equal(GPR(e, RBX), 0x756e6547); /* "Genu": cpuid did run */
	assert_false(cpu_rflags(v) & CPU_RFLAGS_TF);
	/* popfq clearing TF: the #DB still follows it */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_TF);
	GPR(e, RSP) = ENV_RSP - 8;
	env_w64(e, ENV_RSP - 8, CPU_RFLAGS_FIXED | CPU_RFLAGS_IF);
	assert_int_equal(ENV_RUN(e, 0x9d), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_DB, false, 0, ENV_CODE + 1);
	/* popfq setting TF: no #DB after it */
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RSP) = ENV_RSP - 8;
	env_w64(e, ENV_RSP - 8, CPU_RFLAGS_FIXED | CPU_RFLAGS_IF | CPU_RFLAGS_TF);
	assert_int_equal(ENV_RUN(e, 0x9d), CPU_OUT_USER);
	assert_int_equal(e->abi->rip, ENV_CODE + 1);
	assert_true(cpu_rflags(v) & CPU_RFLAGS_TF);
	/* int $0x80 with TF: the handler runs, no #DB */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_TF);
	assert_int_equal(ENV_RUN(e, 0xcd, 0x80), CPU_OUT_CONTINUE);
	expect_user_fault(e, 0x80, false, 0, ENV_CODE + 2);
	/* mov %bx,%ss with TF: the #DB waits (shadow) */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_TF);
	GPR(e, RBX) = ENV_UDS;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xd3), CPU_OUT_USER);
	assert_int_equal(e->abi->rip, ENV_CODE + 2);
	/* rep outsb with TF: one iteration per #DB, RIP stays on the insn */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_TF | CPU_RFLAGS_IOPL);
	memcpy(e->ram + ENV_DATA, "xy", 2);
	GPR(e, RDX) = 0x80;
	GPR(e, RSI) = ENV_DATA;
	GPR(e, RCX) = 2;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x6e), CPU_OUT_CONTINUE);
	expect_user_fault(e, CPU_EXC_DB, false, 0, ENV_CODE);
	assert_int_equal(e->n_out, 1);
	assert_int_equal(GPR(e, RCX), 1);
}

/* 32-bit compatibility-mode user code: its own decoding, sysenter, and
 * syscall/sysret being #UD there (Intel). */
static void test_compat_mode(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	v->msr.sysenter_cs = ENV_KCS;
	v->msr.sysenter_esp = ENV_RSP0;
	v->msr.sysenter_eip = 0xffffffff81a01000ull;
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_TF);
	cpu_seg_set_flat(&v->seg[CPU_CS], ENV_UCS32, true, 3);
	v->seg[CPU_CS].ar = (v->seg[CPU_CS].ar & ~CPU_AR_L) | CPU_AR_DB;
	/* sysenter keeps TF: the #DB hits the first kernel instruction */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x34), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_DB));
	assert_int_equal(env_r64(e, GPR(e, RSP)), 0xffffffff81a01000ull);
	assert_int_equal(env_r64(e, GPR(e, RSP) + 8), ENV_KCS);
	assert_int_equal(v->cpl, 0);
	/* back in compat mode: syscall is #UD on Intel */
	to_user(e, CPU_RFLAGS_IF);
	cpu_seg_set_flat(&v->seg[CPU_CS], ENV_UCS32, true, 3);
	v->seg[CPU_CS].ar = (v->seg[CPU_CS].ar & ~CPU_AR_L) | CPU_AR_DB;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x05), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_UD));
	/* into with OF: #OF (a trap through the DPL-3 gate), and 32-bit
	 * decoding of `push %ds; pop %es` would be undecodable in 64-bit */
	to_user(e, CPU_RFLAGS_IF | CPU_RFLAGS_OF);
	cpu_seg_set_flat(&v->seg[CPU_CS], ENV_UCS32, true, 3);
	v->seg[CPU_CS].ar = (v->seg[CPU_CS].ar & ~CPU_AR_L) | CPU_AR_DB;
	assert_int_equal(ENV_RUN(e, 0xce), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_OF));
	assert_int_equal(env_r64(e, GPR(e, RSP)), ENV_CODE + 1);
	assert_int_equal(env_r64(e, GPR(e, RSP) + 8), ENV_UCS32);
	to_user(e, CPU_RFLAGS_IF);
	cpu_seg_set_flat(&v->seg[CPU_CS], ENV_UCS32, true, 3);
	v->seg[CPU_CS].ar = (v->seg[CPU_CS].ar & ~CPU_AR_L) | CPU_AR_DB;
	GPR(e, RSP) = ENV_RSP - 4;
	uint32_t uds = ENV_UDS;
	memcpy(e->ram + ENV_RSP - 4, &uds, 4);
	assert_int_equal(ENV_RUN(e, 0x07), CPU_OUT_USER); /* pop %es */
	assert_int_equal(v->seg[CPU_ES].sel, ENV_UDS);
	assert_int_equal(GPR(e, RSP), ENV_RSP);
}

/* Linux's vDSO getcpu without RDPID: lsl of the per-CPU GDT entry 0x7b,
 * whose limit is (node << 12) | cpu (read-only expand-down data, DPL 3). */
static void test_linux_getcpu_lsl(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	uint32_t cpunode = (3u << 12) | 0;
	env_w64(e, ENV_GDT + 0x78,
		(cpunode & 0xffff) | (0xf5ull << 40) | (1ull << 54) |
		    ((uint64_t)(cpunode >> 16) << 48));
	v->gdtr.limit = 0x7f;
	to_user(e, CPU_RFLAGS_IF);
	GPR(e, RBX) = 0x7b;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc3), CPU_OUT_USER); /* lsl %bx,%eax */
	assert_true(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(GPR(e, RAX), 0x3000);
}

/* Far transfers at CPL 3: ljmp through memory into the 32-bit code segment
 * (compat mode), lret back to 64-bit code; sysexit from the kernel. */
static void test_compat_switch_and_sysexit(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	to_user(e, CPU_RFLAGS_IF);
	uint32_t off = 0x2000;
	uint16_t cs = ENV_UCS32;
	memcpy(e->ram + ENV_DATA, &off, 4);
	memcpy(e->ram + ENV_DATA + 4, &cs, 2);
	GPR(e, RAX) = ENV_DATA;
	assert_int_equal(ENV_RUN(e, 0xff, 0x28), CPU_OUT_USER); /* ljmp *(%rax) */
	assert_int_equal(e->abi->rip, 0x2000);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_UCS32);
	assert_false(v->seg[CPU_CS].ar & CPU_AR_L);
	/* lret in compat mode pops EIP and CS (4 bytes each) */
	uint32_t frame[2] = {0x401000, ENV_UCS};
	memcpy(e->ram + ENV_RSP - 8, frame, 8);
	GPR(e, RSP) = ENV_RSP - 8;
	assert_int_equal(ENV_RUN(e, 0xcb), CPU_OUT_USER);
	assert_int_equal(e->abi->rip, 0x401000);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_UCS);
	assert_true(v->seg[CPU_CS].ar & CPU_AR_L);
	assert_int_equal(GPR(e, RSP), ENV_RSP);
	/* a far jump to the kernel's code segment: #GP(sel) */
	cs = ENV_KCS;
	memcpy(e->ram + ENV_DATA + 4, &cs, 2);
	user_faults(e, (const uint8_t[]){0xff, 0x28}, 2, CPU_EXC_GP, true, ENV_KCS);
	/* sysexitq / sysexitl from CPL 0 (SYSENTER_CS = 0x10: CS 0x33 / 0x23) */
	to_kernel(e);
	v->msr.sysenter_cs = ENV_KCS;
	GPR(e, RDX) = 0x401234;
	GPR(e, RCX) = 0x7ff000;
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0x35), CPU_OUT_USER);
	assert_int_equal(v->cpl, 3);
	assert_int_equal(e->abi->rip, 0x401234);
	assert_int_equal(GPR(e, RSP), 0x7ff000);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_UCS);
	assert_int_equal(v->seg[CPU_SS].sel, 0x3b); /* SYSENTER_CS + 40 (not Linux's layout) */
	to_kernel(e);
	GPR(e, RDX) = 0xffffffff00005678ull;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x35), CPU_OUT_USER);
	assert_int_equal(e->abi->rip, 0x5678);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_UCS32);
	assert_int_equal(v->seg[CPU_SS].sel, ENV_UDS); /* SYSENTER_CS + 24 */
	assert_false(v->seg[CPU_CS].ar & CPU_AR_L);
	/* sysexit at CPL 3: #GP(0) (test_privileged_gp_and_ud), and with a null
	 * SYSENTER_CS at CPL 0 */
	to_kernel(e);
	v->msr.sysenter_cs = 0;
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0x35), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_GP));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_privileged_gp_and_ud, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_int_gate_dpl, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_iopl_popf_cli_sti, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_io_bitmap, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_ldt_lar_lsl_verr, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_umip, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_tsc_aux_rdtscp_rdpid, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_fsgsbase, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_syscall_flags, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_single_step, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_compat_mode, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_linux_getcpu_lsl, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_compat_switch_and_sysexit, env_setup,
					    env_teardown),
	};
	return cmocka_run_group_tests_name("cpu_user", tests, NULL, NULL);
}
