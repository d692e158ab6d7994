/*
 * runtime/cpu: emulation of privileged/sensitive instructions, one class
 * per test.  Instruction bytes are placed in real guest RAM and go through
 * the soft-MMU fetch, the Zydis decode and cpu_emulate (cpu_step_priv).
 */
#include "tests/unit/test_cpu_env.h"

#define GPR(e, r) ((e)->abi->gpr[VCPU_##r])

/* A fault was delivered: handler reached, error code and faulting RIP. */
static void expect_fault(struct cpu_env *e, unsigned vector, bool has_err, uint64_t err,
			 uint64_t rip)
{
	assert_int_equal(e->abi->rip, ENV_HANDLER(vector));
	uint64_t sp = GPR(e, RSP);
	if (has_err) {
		assert_int_equal(env_r64(e, sp), err);
		sp += 8;
	}
	assert_int_equal(env_r64(e, sp), rip);
}

static void test_mov_cr(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* mov %cr0,%rax */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x20, 0xc0), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), v->cr0);
	assert_int_equal(e->abi->rip, ENV_CODE + 3);
	/* mov %rax,%cr3 */
	GPR(e, RAX) = ENV_PML4;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x22, 0xd8), CPU_OUT_CONTINUE);
	assert_int_equal(v->cr3, ENV_PML4);
	/* mov %rax,%cr4 with OSXSAVE (not advertised): #GP(0) at the insn */
	GPR(e, RAX) = v->cr4 | CPU_CR4_OSXSAVE;
	uint64_t cr4 = v->cr4;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x22, 0xe0), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	assert_int_equal(v->cr4, cr4);
	/* PCIDE while CR3[11:0] is not 0: #GP(0) (SDM, MOV to CR4) */
	GPR(e, RAX) = ENV_PML4 | 0x18;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x22, 0xd8), CPU_OUT_CONTINUE);
	GPR(e, RAX) = v->cr4 | CPU_CR4_PCIDE;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x22, 0xe0), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	assert_int_equal(v->cr4, cr4);
}

/* cpu_step_priv_cached: the first call fetches and decodes into the
 * caller's cache; a later one with the cache valid emulates the cached
 * instruction without reading guest memory (its bytes here changed to a
 * ud2 on purpose, which would raise #UD if fetched). */
static void test_priv_decode_cache(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	struct cpu_insn insn;
	bool valid = false;
	enum cpu_outcome out;
	static const uint8_t mov_cr0_rax[] = {0x0f, 0x20, 0xc0};
	memcpy(e->ram + ENV_CODE, mov_cr0_rax, sizeof(mov_cr0_rax));
	e->abi->rip = ENV_CODE;
	GPR(e, RAX) = 0;
	assert_int_equal(cpu_step_priv_cached(v, &insn, &valid, &out), BT_OK);
	assert_true(valid);
	assert_int_equal(GPR(e, RAX), v->cr0);
	assert_int_equal(e->abi->rip, ENV_CODE + 3);
	static const uint8_t ud2[] = {0x0f, 0x0b, 0x90};
	memcpy(e->ram + ENV_CODE, ud2, sizeof(ud2));
	e->abi->rip = ENV_CODE;
	GPR(e, RAX) = 0;
	assert_int_equal(cpu_step_priv_cached(v, &insn, &valid, &out), BT_OK);
	assert_false(v->exc.pending);
	assert_int_equal(GPR(e, RAX), v->cr0);
	assert_int_equal(e->abi->rip, ENV_CODE + 3);
	/* not valid: fetched again, and the ud2 raises #UD */
	valid = false;
	e->abi->rip = ENV_CODE;
	assert_int_equal(cpu_step_priv_cached(v, &insn, &valid, &out), BT_OK);
	expect_fault(e, CPU_EXC_UD, false, 0, ENV_CODE);
}

static void test_mov_cr0_reserved_and_cr2_cr8(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	GPR(e, RBX) = v->cr0 | (1ull << 40);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x22, 0xc3), CPU_OUT_CONTINUE); /* mov %rbx,%cr0 */
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	/* cr2 read */
	v->cr2 = 0xabcdef;
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x20, 0xd1), CPU_OUT_CONTINUE); /* mov %cr2,%rcx */
	assert_int_equal(GPR(e, RCX), 0xabcdef);
	/* mov %rax,%cr8 (REX.R) */
	GPR(e, RAX) = 5;
	assert_int_equal(ENV_RUN(e, 0x44, 0x0f, 0x22, 0xc0), CPU_OUT_CONTINUE);
	assert_int_equal(v->cr8, 5);
	/* mov %rax,%dr7 / mov %dr7,%rdx */
	GPR(e, RAX) = 0x1;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x23, 0xf8), CPU_OUT_CONTINUE);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x21, 0xfa), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RDX), 0x401);
}

static void test_rdmsr_wrmsr(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	GPR(e, RCX) = 0xc0000080;
	GPR(e, RAX) = ~0ull;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x32), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), (uint32_t)v->efer);
	assert_int_equal(GPR(e, RDX), 0);
	assert_int_equal(e->abi->rip, ENV_CODE + 2);
	/* wrmsr GS_BASE = 0xffff8880_00001000 */
	GPR(e, RCX) = 0xc0000101;
	GPR(e, RDX) = 0xffff8880;
	GPR(e, RAX) = 0x1000;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x30), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->gs_base, 0xffff888000001000ull);
	/* unknown MSR: #GP(0) */
	GPR(e, RCX) = 0x48; /* SPEC_CTRL, not advertised */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x32), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
}

static void test_cpuid_rdtsc(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	GPR(e, RAX) = 0;
	GPR(e, RCX) = 0;
	GPR(e, RBX) = ~0ull;
	assert_int_equal(ENV_RUN(e, 0x0f, 0xa2), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), 0x16);
	assert_int_equal(GPR(e, RBX), 0x756e6547); /* "Genu", upper half cleared */
	assert_int_equal(GPR(e, RDX), 0x49656e69); /* "ineI" */
	assert_int_equal(GPR(e, RCX), 0x6c65746e); /* "ntel" */
	e->tsc = 0x123456789abcull;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x31), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), 0x56789abc);
	assert_int_equal(GPR(e, RDX), 0x1234);
	v->msr.tsc_aux = 3;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xf9), CPU_OUT_CONTINUE); /* rdtscp */
	assert_int_equal(GPR(e, RCX), 3);
	assert_int_equal(GPR(e, RAX), 0x56789abc);
	/* rdpid is not advertised: #UD */
	assert_int_equal(ENV_RUN(e, 0xf3, 0x0f, 0xc7, 0xf8), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_UD, false, 0, ENV_CODE);
	/* SERIALIZE is (CPUID.7.0:EDX[14]) and runs as a no-op: RIP after it */
	GPR(e, RAX) = 7;
	GPR(e, RCX) = 0;
	assert_int_equal(ENV_RUN(e, 0x0f, 0xa2), CPU_OUT_CONTINUE);
	assert_true(GPR(e, RDX) & (1u << 14));
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xe8), CPU_OUT_CONTINUE);
	assert_int_equal(v->abi->rip, ENV_CODE + 3);
	assert_false(v->exc.pending);
}

static void test_port_io(void **state)
{
	struct cpu_env *e = *state;
	/* out %al,$0x80 */
	GPR(e, RAX) = 0x1122334455667788ull;
	assert_int_equal(ENV_RUN(e, 0xe6, 0x80), CPU_OUT_CONTINUE);
	assert_int_equal(e->n_out, 1);
	assert_int_equal(e->out_port[0], 0x80);
	assert_int_equal(e->out_val[0], 0x88);
	assert_int_equal(e->out_size[0], 1);
	/* out %eax,%dx */
	GPR(e, RDX) = 0x3f8;
	assert_int_equal(ENV_RUN(e, 0xef), CPU_OUT_CONTINUE);
	assert_int_equal(e->out_port[1], 0x3f8);
	assert_int_equal(e->out_val[1], 0x55667788);
	assert_int_equal(e->out_size[1], 4);
	/* out %ax,%dx */
	assert_int_equal(ENV_RUN(e, 0x66, 0xef), CPU_OUT_CONTINUE);
	assert_int_equal(e->out_val[2], 0x7788);
	assert_int_equal(e->out_size[2], 2);
	/* in %dx,%al merges the low byte */
	GPR(e, RDX) = 0x3fd;
	assert_int_equal(ENV_RUN(e, 0xec), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), 0x11223344556677fdull);
	/* in $0x71,%eax zero-extends */
	assert_int_equal(ENV_RUN(e, 0xe5, 0x71), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), 0xab000271ull);
	assert_int_equal(e->abi->rip, ENV_CODE + 2);
}

static void test_string_io(void **state)
{
	struct cpu_env *e = *state;
	/* rep insw: 4 words from port 0x1f0 to 0x8000 */
	GPR(e, RDX) = 0x1f0;
	GPR(e, RDI) = 0x8000;
	GPR(e, RCX) = 4;
	assert_int_equal(ENV_RUN(e, 0x66, 0xf3, 0x6d), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RCX), 0);
	assert_int_equal(GPR(e, RDI), 0x8008);
	for (unsigned i = 0; i < 4; i++) {
		uint16_t w;
		memcpy(&w, e->ram + 0x8000 + 2 * i, 2);
		assert_int_equal(w, (uint16_t)(0xf0 | ((i + 1) << 8)));
	}
	/* rep outsb: 3 bytes from 0x9000 */
	memcpy(e->ram + 0x9000, "abcd", 4);
	GPR(e, RSI) = 0x9000;
	GPR(e, RCX) = 3;
	GPR(e, RDX) = 0x3f8;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x6e), CPU_OUT_CONTINUE);
	assert_int_equal(e->n_out, 3);
	assert_int_equal(e->out_val[0], 'a');
	assert_int_equal(e->out_val[2], 'c');
	assert_int_equal(GPR(e, RSI), 0x9003);
	/* a long rep insb runs in interruptible chunks: RIP stays on it */
	GPR(e, RDI) = 0x10000;
	GPR(e, RCX) = 10000;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x6c), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_CODE);
	assert_true(GPR(e, RCX) > 0 && GPR(e, RCX) < 10000);
	assert_int_equal(GPR(e, RDI), 0x10000 + 10000 - GPR(e, RCX));
	enum cpu_outcome out;
	while (GPR(e, RCX) != 0)
		assert_int_equal(cpu_step_priv(&e->v, &out), BT_OK);
	assert_int_equal(GPR(e, RDI), 0x10000 + 10000);
	assert_int_equal(e->abi->rip, ENV_CODE + 2);
	/* outsb without rep, DF=1: one byte, RSI decrements */
	cpu_set_rflags(&e->v, CPU_RFLAGS_DF);
	GPR(e, RCX) = 77;
	assert_int_equal(ENV_RUN(e, 0x6e), CPU_OUT_CONTINUE);
	assert_int_equal(e->out_val[3], 'd');
	assert_int_equal(GPR(e, RSI), 0x9002);
	assert_int_equal(GPR(e, RCX), 77);
}

static void test_string_io_fault_midway(void **state)
{
	struct cpu_env *e = *state;
	/* unmap [4 MiB, 6 MiB): rep insb from 4 MiB - 2 faults after 2 bytes */
	env_w64(e, ENV_PD + 8 * 2, 0);
	GPR(e, RDX) = 0x60;
	GPR(e, RDI) = 0x400000 - 2;
	GPR(e, RCX) = 4;
	assert_int_equal(ENV_RUN(e, 0xf3, 0x6c), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_PF, true, MMU_PF_W, ENV_CODE);
	assert_int_equal(e->v.cr2, 0x400000);
	assert_int_equal(GPR(e, RCX), 2);
	assert_int_equal(GPR(e, RDI), 0x400000);
	assert_int_equal(e->n_in, 2); /* the faulting iteration read no port */
}

static void test_descriptor_tables(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* lgdt (%rax): limit 0x4f, base ENV_GDT */
	uint16_t lim = 0x4f;
	uint64_t base = ENV_GDT;
	memcpy(e->ram + 0x8000, &lim, 2);
	memcpy(e->ram + 0x8002, &base, 8);
	v->gdtr.base = 0;
	v->gdtr.limit = 0;
	GPR(e, RAX) = 0x8000;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0x10), CPU_OUT_CONTINUE);
	assert_int_equal(v->gdtr.base, ENV_GDT);
	assert_int_equal(v->gdtr.limit, 0x4f);
	/* lidt (%rax) with a non-canonical base: #GP(0) */
	base = 0x0000900000000000ull;
	memcpy(e->ram + 0x8002, &base, 8);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0x18), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	assert_int_equal(v->idtr.base, ENV_IDT);
	/* sidt (%rax) */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RAX) = 0x8100;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0x08), CPU_OUT_CONTINUE);
	uint16_t got_lim;
	memcpy(&got_lim, e->ram + 0x8100, 2);
	assert_int_equal(got_lim, 0xfff);
	assert_int_equal(env_r64(e, 0x8102), ENV_IDT);
	/* sgdt */
	GPR(e, RAX) = 0x8200;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0x00), CPU_OUT_CONTINUE);
	assert_int_equal(env_r64(e, 0x8202), ENV_GDT);
}

static void test_ltr_str_lldt(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	v->tr = (struct cpu_seg){0};
	GPR(e, RAX) = ENV_TR;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xd8), CPU_OUT_CONTINUE); /* ltr %ax */
	assert_int_equal(v->tr.sel, ENV_TR);
	assert_int_equal(v->tr.base, ENV_TSS);
	assert_int_equal(v->tr.limit, 0x67);
	assert_int_equal(v->tr.ar & 0xf, 0xb);
	assert_int_equal(e->ram[ENV_GDT + ENV_TR + 5], 0x8b); /* busy in the GDT */
	/* a busy TSS cannot be loaded again */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xd8), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, ENV_TR, ENV_CODE);
	/* str %ecx */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RCX) = ~0ull;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xc9), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RCX), ENV_TR);
	/* ltr of a data segment: #GP(sel) */
	GPR(e, RAX) = ENV_KDS;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xd8), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, ENV_KDS, ENV_CODE);
	/* lldt with a null selector: LDTR unusable */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RAX) = 0;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0xd0), CPU_OUT_CONTINUE);
	assert_true(v->ldtr.ar & CPU_AR_UNUSABLE);
}

static void test_swapgs(void **state)
{
	struct cpu_env *e = *state;
	e->abi->gs_base = 0x1111;
	e->abi->kernel_gs_base = 0xffff888000002222ull;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xf8), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->gs_base, 0xffff888000002222ull);
	assert_int_equal(e->abi->kernel_gs_base, 0x1111);
	assert_int_equal(e->abi->rip, ENV_CODE + 3);
}

static void test_sysret_and_syscall(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	v->msr.star = ((uint64_t)0x23 << 48) | ((uint64_t)ENV_KCS << 32);
	v->msr.lstar = 0xffffffff81a00000ull;
	v->msr.sfmask = CPU_RFLAGS_IF | CPU_RFLAGS_TF | CPU_RFLAGS_DF | CPU_RFLAGS_AC;
	GPR(e, RCX) = 0x401234;
	GPR(e, R11) = 0x246 | CPU_RFLAGS_RF | CPU_RFLAGS_VM;
	/* sysretq */
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0x07), CPU_OUT_USER);
	assert_int_equal(v->cpl, 3);
	assert_int_equal(e->mmu.cpl, 3);
	assert_int_equal(e->abi->rip, 0x401234);
	assert_int_equal(v->seg[CPU_CS].sel, 0x33);
	assert_true(v->seg[CPU_CS].ar & CPU_AR_L);
	assert_int_equal((v->seg[CPU_CS].ar & CPU_AR_DPL_MASK) >> CPU_AR_DPL_SHIFT, 3);
	assert_int_equal(v->seg[CPU_SS].sel, 0x2b);
	assert_int_equal(cpu_rflags(v), 0x246); /* R11 & 0x3c7fd7: RF and VM dropped */
	assert_true(cpu_if(v));
	/* guest user code runs `syscall` at 0x401300 */
	GPR(e, RAX) = 60;
	enum cpu_outcome out;
	assert_int_equal(cpu_syscall_from_user(v, 0x401302, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(v->cpl, 0);
	assert_int_equal(e->abi->rip, 0xffffffff81a00000ull);
	assert_int_equal(GPR(e, RCX), 0x401302);
	assert_int_equal(GPR(e, R11), 0x246);
	assert_false(cpu_if(v));
	assert_int_equal(v->seg[CPU_CS].sel, ENV_KCS);
	assert_int_equal(v->seg[CPU_SS].sel, ENV_KDS);
	/* sysretq to a non-canonical RCX: #GP(0) in the kernel */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RCX) = 0x0000800000000000ull;
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0x07), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	assert_int_equal(v->cpl, 0);
	/* sysretl: 32-bit compat code segment 0x23 */
	GPR(e, RCX) = 0xffffffff00001000ull;
	GPR(e, R11) = 0x202;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x07), CPU_OUT_USER);
	assert_int_equal(e->abi->rip, 0x1000);
	assert_int_equal(v->seg[CPU_CS].sel, 0x23);
	assert_false(v->seg[CPU_CS].ar & CPU_AR_L);
}

static void test_software_interrupts_and_ud(void **state)
{
	struct cpu_env *e = *state;
	/* int3: trap, RIP after */
	assert_int_equal(ENV_RUN(e, 0xcc), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_BP, false, 0, ENV_CODE + 1);
	/* int $0x80 */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	assert_int_equal(ENV_RUN(e, 0xcd, 0x80), CPU_OUT_CONTINUE);
	expect_fault(e, 0x80, false, 0, ENV_CODE + 2);
	/* ud2, ud1, ud0: #UD at the instruction */
	static const uint8_t ud[][3] = {{0x0f, 0x0b, 0x90}, {0x0f, 0xb9, 0xc0}, {0x0f, 0xff, 0xc0}};
	for (unsigned i = 0; i < 3; i++) {
		e->abi->gpr[VCPU_RSP] = ENV_RSP;
		assert_int_equal(env_run(e, ud[i], 3), CPU_OUT_CONTINUE);
		expect_fault(e, CPU_EXC_UD, false, 0, ENV_CODE);
	}
	/* not advertised: invpcid, monitor, xsetbv, and rdfsbase with CR4.FSGSBASE
	 * clear (syscall at CPL 0 is a real transition: test_cpu_user.c); xsave,
	 * rdpkru, rdrand and a VEX.256 vpxor from the translator core's fact
	 * table (pretrans/xlat/xlat_facts.c) */
	static const uint8_t nope[][5] = {{0x66, 0x0f, 0x38, 0x82, 0x00},
					  {0x0f, 0x01, 0xc8},
					  {0x0f, 0x01, 0xd1},
					  {0xf3, 0x48, 0x0f, 0xae, 0xc0},
					  {0x0f, 0xae, 0x20},
					  {0x0f, 0x01, 0xee},
					  {0x0f, 0xc7, 0xf0},
					  {0xc5, 0xfd, 0xef, 0xc0}};
	static const size_t nope_len[] = {5, 3, 3, 5, 3, 3, 3, 4};
	for (unsigned i = 0; i < BT_ARRAY_SIZE(nope_len); i++) {
		e->abi->gpr[VCPU_RSP] = ENV_RSP;
		assert_int_equal(env_run(e, nope[i], nope_len[i]), CPU_OUT_CONTINUE);
		expect_fault(e, CPU_EXC_UD, false, 0, ENV_CODE);
	}
	/* an undecodable byte sequence (into is invalid in 64-bit mode) */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	assert_int_equal(ENV_RUN(e, 0xce), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_UD, false, 0, ENV_CODE);
}

static void test_segment_loads(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* mov %ax,%ds with the kernel data selector */
	GPR(e, RAX) = ENV_KDS;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xd8), CPU_OUT_CONTINUE);
	assert_int_equal(v->seg[CPU_DS].sel, ENV_KDS);
	assert_int_equal(v->seg[CPU_DS].ar & 0xf, 0x3);
	/* a selector beyond the GDT limit: #GP(sel) */
	GPR(e, RAX) = 0x60;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xd8), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0x60, ENV_CODE);
	/* the TSS descriptor is not a data segment: #GP(sel) */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RAX) = ENV_TR;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xd8), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, ENV_TR, ENV_CODE);
	/* mov %ax,%ss with a user data segment at CPL0: #GP(sel) */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RAX) = ENV_UDS;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xd0), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, ENV_UDS & ~3, ENV_CODE);
	/* null SS at CPL0 is fine, and opens the interrupt shadow */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RAX) = 0;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xd0), CPU_OUT_CONTINUE);
	assert_true(v->seg[CPU_SS].ar & CPU_AR_UNUSABLE);
	assert_true(v->shadow);
	/* null FS clears the FS base (Intel) */
	e->abi->fs_base = 0x12345000;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xe0), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->fs_base, 0);
	/* a not-present data descriptor: #NP(sel) */
	env_w64(e, ENV_GDT + 0x38, 0x00cf13000000ffffull);
	v->gdtr.limit = 0x4f;
	GPR(e, RAX) = 0x38;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xe8), CPU_OUT_CONTINUE); /* mov %ax,%gs */
	expect_fault(e, CPU_EXC_NP, true, 0x38, ENV_CODE);
	/* the accessed bit is written back only when clear */
	env_w64(e, ENV_GDT + 0x38, 0x00cf92000000ffffull);
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	assert_int_equal(ENV_RUN(e, 0x8e, 0xe8), CPU_OUT_CONTINUE);
	assert_int_equal(e->ram[ENV_GDT + 0x38 + 5], 0x93);
	/* lss (%rax),%rcx: m16:64 */
	env_w64(e, 0x8000, 0x1234);
	e->ram[0x8008] = ENV_KDS;
	e->ram[0x8009] = 0;
	GPR(e, RAX) = 0x8000;
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0xb2, 0x08), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RCX), 0x1234);
	assert_int_equal(v->seg[CPU_SS].sel, ENV_KDS);
	/* mov %ss,%eax */
	GPR(e, RAX) = ~0ull;
	assert_int_equal(ENV_RUN(e, 0x8c, 0xd0), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), ENV_KDS);
}

static void test_lretq_and_far_jmp(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* startup_64: push $0x10; push $target; lretq */
	env_w64(e, ENV_RSP - 16, 0x123456);
	env_w64(e, ENV_RSP - 8, ENV_KCS);
	e->abi->gpr[VCPU_RSP] = ENV_RSP - 16;
	assert_int_equal(ENV_RUN(e, 0x48, 0xcb), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, 0x123456);
	assert_int_equal(e->abi->gpr[VCPU_RSP], ENV_RSP);
	assert_int_equal(v->seg[CPU_CS].sel, ENV_KCS);
	/* lretq to a data selector: #GP(sel) and nothing changed */
	env_w64(e, ENV_RSP - 16, 0x123456);
	env_w64(e, ENV_RSP - 8, ENV_KDS);
	e->abi->gpr[VCPU_RSP] = ENV_RSP - 16;
	assert_int_equal(ENV_RUN(e, 0x48, 0xcb), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, ENV_KDS, ENV_CODE);
	/* ljmpq *(%rax) */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	env_w64(e, 0x8000, 0xabcdef);
	e->ram[0x8008] = ENV_KCS;
	e->ram[0x8009] = 0;
	GPR(e, RAX) = 0x8000;
	assert_int_equal(ENV_RUN(e, 0x48, 0xff, 0x28), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, 0xabcdef);
	/* lcallq *(%rax): pushes CS and the return RIP */
	assert_int_equal(ENV_RUN(e, 0x48, 0xff, 0x18), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, 0xabcdef);
	assert_int_equal(GPR(e, RSP), ENV_RSP - 16);
	assert_int_equal(env_r64(e, ENV_RSP - 16), ENV_CODE + 3);
	assert_int_equal(env_r64(e, ENV_RSP - 8), ENV_KCS);
}

static void test_pushf_popf_cli_sti_stac(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	cpu_set_rflags(v, CPU_RFLAGS_IF | CPU_RFLAGS_ZF);
	assert_int_equal(ENV_RUN(e, 0x9c), CPU_OUT_CONTINUE); /* pushfq */
	assert_int_equal(env_r64(e, ENV_RSP - 8), CPU_RFLAGS_FIXED | CPU_RFLAGS_IF | CPU_RFLAGS_ZF);
	/* popfq at CPL 0 of a value with IOPL 3, AC and RF: IOPL is written,
	 * AC is virtual, RF is cleared */
	env_w64(e, ENV_RSP - 8, 0x3002 | CPU_RFLAGS_AC | CPU_RFLAGS_CF | CPU_RFLAGS_RF);
	assert_int_equal(ENV_RUN(e, 0x9d), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RSP), ENV_RSP);
	assert_int_equal(cpu_rflags(v),
			 CPU_RFLAGS_FIXED | CPU_RFLAGS_AC | CPU_RFLAGS_CF | CPU_RFLAGS_IOPL);
	assert_int_equal(e->abi->ac, 1);
	assert_false(cpu_if(v));
	/* clac / stac */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xca), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->ac, 0);
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xcb), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->ac, 1);
	/* sti / cli are byte stores to the IRQ word */
	assert_int_equal(ENV_RUN(e, 0xfb), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->irq & VCPU_IRQ_IF, 1);
	assert_int_equal(ENV_RUN(e, 0xfa), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->irq & VCPU_IRQ_IF, 0);
}

static void test_fxsave_fxrstor(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	e->abi->fxsave[32] = 0x5a; /* ST0 byte */
	GPR(e, RAX) = 0x8000;
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0xae, 0x00), CPU_OUT_CONTINUE); /* fxsave64 */
	assert_int_equal(e->ram[0x8000], 0x7f);					/* FCW */
	assert_int_equal(e->ram[0x8000 + 32], 0x5a);
	uint32_t mx;
	memcpy(&mx, e->ram + 0x8000 + 24, 4);
	assert_int_equal(mx, 0x1f80);
	/* fxrstor64 of a modified image */
	e->ram[0x8000 + 32] = 0xa5;
	mx = 0x1fc0;
	memcpy(e->ram + 0x8000 + 24, &mx, 4);
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0xae, 0x08), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->fxsave[32], 0xa5);
	assert_int_equal(e->abi->fxsave[24], 0xc0);
	/* reserved MXCSR bits: #GP(0), image unchanged */
	mx = 0x10000;
	memcpy(e->ram + 0x8000 + 24, &mx, 4);
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0xae, 0x08), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	assert_int_equal(e->abi->fxsave[24], 0xc0);
	/* misaligned: #GP(0) */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	GPR(e, RAX) = 0x8008;
	assert_int_equal(ENV_RUN(e, 0x0f, 0xae, 0x00), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_GP, true, 0, ENV_CODE);
	/* CR0.TS: #NM */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	v->cr0 |= CPU_CR0_TS;
	GPR(e, RAX) = 0x8000;
	assert_int_equal(ENV_RUN(e, 0x0f, 0xae, 0x00), CPU_OUT_CONTINUE);
	expect_fault(e, CPU_EXC_NM, false, 0, ENV_CODE);
	/* clts */
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x06), CPU_OUT_CONTINUE);
	assert_int_equal(v->cr0 & CPU_CR0_TS, 0);
}

static void test_invlpg_and_misc(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	bool filled = false;
	struct mmu_fault f = {0};
	assert_int_equal(mmu_tlb_fill(&e->mmu, 0x8000, MMU_ACC_READ, &filled, &f), BT_OK);
	assert_true(filled);
	unsigned idx = (0x8000 >> 12) & (VCPU_TLB_ENTRIES - 1);
	assert_int_equal(e->abi->tlb[idx].tag_read, 0x8000);
	GPR(e, RAX) = 0x8123;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0x38), CPU_OUT_CONTINUE); /* invlpg (%rax) */
	assert_int_equal(e->abi->tlb[idx].tag_read, ~0ull);
	/* wbinvd: nothing but RIP moves */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x09), CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_CODE + 2);
	/* smsw %eax / lmsw %ax */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xe0), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), (uint32_t)v->cr0);
	GPR(e, RAX) = CPU_CR0_MP | CPU_CR0_TS; /* PE bit clear: cannot clear PE */
	assert_int_equal(ENV_RUN(e, 0x0f, 0x01, 0xf0), CPU_OUT_CONTINUE);
	assert_true(v->cr0 & CPU_CR0_PE);
	assert_true(v->cr0 & CPU_CR0_TS);
	assert_true(v->cr0 & CPU_CR0_MP);
}

static void test_lsl_lar_verw(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	GPR(e, RCX) = ENV_UDS;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc1), CPU_OUT_CONTINUE); /* lsl %ecx,%eax */
	assert_int_equal(GPR(e, RAX), 0xffffffffull);
	assert_true(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(ENV_RUN(e, 0x48, 0x0f, 0x02, 0xc1), CPU_OUT_CONTINUE); /* lar */
	assert_int_equal(GPR(e, RAX), 0x00c0f300); /* limit[19:16] masked out */
	/* outside the GDT: ZF = 0, destination unchanged, no fault */
	GPR(e, RCX) = 0x68;
	GPR(e, RAX) = 7;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc1), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), 7);
	assert_false(cpu_rflags(v) & CPU_RFLAGS_ZF);
	assert_int_equal(e->abi->rip, ENV_CODE + 3);
	/* lsl of the TSS gives its limit */
	GPR(e, RCX) = ENV_TR;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x03, 0xc1), CPU_OUT_CONTINUE);
	assert_int_equal(GPR(e, RAX), 0x67);
	/* verw (%rax) on the kernel data selector: ZF = 1; on CS: ZF = 0 */
	e->ram[0x8000] = ENV_KDS;
	e->ram[0x8001] = 0;
	GPR(e, RAX) = 0x8000;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0x28), CPU_OUT_CONTINUE);
	assert_true(cpu_rflags(v) & CPU_RFLAGS_ZF);
	e->ram[0x8000] = ENV_KCS;
	assert_int_equal(ENV_RUN(e, 0x0f, 0x00, 0x28), CPU_OUT_CONTINUE);
	assert_false(cpu_rflags(v) & CPU_RFLAGS_ZF);
}

static void test_fetch_fault(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	/* an instruction whose bytes cross into an unmapped page: #PF(I) */
	env_w64(e, ENV_PD + 8 * 2, 0);
	e->ram[0x400000 - 1] = 0x0f; /* 0f | 22 d8 (unmapped) */
	e->abi->rip = 0x400000 - 1;
	enum cpu_outcome out;
	assert_int_equal(cpu_step_priv(v, &out), BT_OK);
	assert_int_equal(out, CPU_OUT_CONTINUE);
	assert_int_equal(e->abi->rip, ENV_HANDLER(CPU_EXC_PF));
	assert_int_equal(v->cr2, 0x400000);
	assert_int_equal(env_r64(e, GPR(e, RSP)) & MMU_PF_I, MMU_PF_I);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mov_cr, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_priv_decode_cache, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_mov_cr0_reserved_and_cr2_cr8, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_rdmsr_wrmsr, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_cpuid_rdtsc, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_port_io, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_string_io, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_string_io_fault_midway, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_descriptor_tables, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_ltr_str_lldt, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_swapgs, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_sysret_and_syscall, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_software_interrupts_and_ud, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_segment_loads, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_lretq_and_far_jmp, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_pushf_popf_cli_sti_stac, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_fxsave_fxrstor, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_invlpg_and_misc, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_lsl_lar_verw, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_fault, env_setup, env_teardown),
	};
	return cmocka_run_group_tests_name("cpu_emul", tests, NULL, NULL);
}
