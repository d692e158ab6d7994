/*
 * runtime/cpu: architectural state, CPUID profile, MSR table, control
 * register writes.  Real memfd RAM and the real soft-MMU (test_cpu_env.h).
 */
#include "tests/unit/test_cpu_env.h"

#include "runtime/boot/boot.h"

static void cpuid(struct cpu_env *e, uint32_t leaf, uint32_t sub, uint32_t o[4])
{
	cpu_cpuid(&e->v, leaf, sub, o);
}

static void test_cpuid_vendor_and_max(void **state)
{
	struct cpu_env *e = *state;
	uint32_t o[4];
	cpuid(e, 0, 0, o);
	assert_int_equal(o[0], 0x16);
	char vendor[13] = {0};
	memcpy(vendor, &o[1], 4);
	memcpy(vendor + 4, &o[3], 4);
	memcpy(vendor + 8, &o[2], 4);
	assert_string_equal(vendor, "GenuineIntel");
	cpuid(e, 0x80000000u, 0, o);
	assert_int_equal(o[0], 0x80000008u);
	/* hypervisor leaf */
	cpuid(e, 0x40000000u, 0, o);
	assert_int_equal(o[0], 0x40000000u);
	assert_memory_equal(&o[1], "btvmbtvmbtvm", 12);
	cpuid(e, 0x40000100u, 0, o);
	assert_int_equal(o[0] | o[1] | o[2] | o[3], 0);
	/* out-of-range leaves alias the highest basic leaf (0x16) */
	uint32_t top[4];
	cpuid(e, 0x16, 0, top);
	assert_int_equal(top[0], 2400);
	cpuid(e, 0x17, 0, o);
	assert_memory_equal(o, top, 16);
	cpuid(e, 0x80000009u, 0, o);
	assert_memory_equal(o, top, 16);
}

static void test_cpuid_features(void **state)
{
	struct cpu_env *e = *state;
	uint32_t o[4];
	cpuid(e, 1, 0, o);
	assert_int_equal((o[0] >> 8) & 0xf, 6); /* family 6 */
	assert_true(((o[0] >> 4) & 0xf) >= 0xe);
	uint32_t need = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) |
			(1u << 9) | (1u << 13) | (1u << 15) | (1u << 24) | (1u << 25) | (1u << 26);
	/* FPU PSE TSC MSR PAE CX8 APIC PGE CMOV FXSR SSE SSE2 */
	assert_int_equal(o[3] & need, need);
	assert_int_equal(o[3] & (1u << 12), 0); /* no MTRR */
	assert_int_equal(o[3] & (1u << 16), 0); /* no PAT */
	assert_int_equal(o[3] & (1u << 7), 0);	/* no MCE */
	assert_true(o[2] & (1u << 31));		/* hypervisor */
	assert_int_equal(o[2] & ((1u << 3) | (1u << 5) | (1u << 21) | (1u << 26) | (1u << 27) |
				 (1u << 28) | (1u << 30)),
			 0);		/* MONITOR VMX x2APIC XSAVE OSXSAVE AVX RDRAND */
	assert_true(o[2] & (1u << 24)); /* TSC_DEADLINE (runtime/dev/lapic.c) */
	assert_true(o[2] & (1u << 17)); /* PCID (runtime/mmu/mmu_pcid.c) */
	cpuid(e, 7, 0, o);
	assert_true(o[1] & (1u << 7));			      /* SMEP */
	assert_true(o[1] & (1u << 20));			      /* SMAP */
	assert_int_equal(o[1] & ((1u << 0) | (1u << 10)), 0); /* FSGSBASE INVPCID */
	assert_true(o[1] & (1u << 1));			      /* TSC_ADJUST */
	cpuid(e, 0x80000007u, 0, o);
	assert_int_equal(o[3], 1u << 8); /* invariant TSC */
	cpuid(e, 0x80000001u, 0, o);
	assert_int_equal(o[3] & ((1u << 11) | (1u << 20) | (1u << 29)),
			 (1u << 11) | (1u << 20) | (1u << 29));
	assert_int_equal(o[3] & (1u << 26), 0); /* no 1 GiB pages */
	cpuid(e, 0x80000008u, 0, o);
	assert_int_equal(o[0], (48u << 8) | 39);
	cpuid(e, 6, 0, o);
	assert_int_equal(o[0], 1u << 2); /* ARAT */
	/* 0x15: TSC = crystal * ebx / eax = 2.4 GHz, and Linux's 32-bit
	 * product crystal_khz * ebx must not overflow */
	cpuid(e, 0x15, 0, o);
	assert_int_equal((uint64_t)o[2] * o[1] / o[0], 2400000000ull);
	assert_true((uint64_t)(o[2] / 1000) * o[1] <= 0xffffffffull);
	assert_int_equal((uint32_t)((o[2] / 1000) * o[1]) / o[0], 2400000);
	/* an odd frequency stays exact to the kHz */
	e->v.cpuid.tsc_khz = 2597784;
	cpuid(e, 0x15, 0, o);
	assert_int_equal((uint32_t)((o[2] / 1000) * o[1]) / o[0], 2597784);
	e->v.cpuid.tsc_khz = 2400000;
	/* brand string */
	char brand[49] = {0};
	for (uint32_t l = 0; l < 3; l++)
		cpuid(e, 0x80000002u + l, 0, (uint32_t *)(brand + 16 * l));
	assert_string_equal(brand, "btvm virtual CPU");
	/* one thread at the SMT level */
	cpuid(e, 0xb, 0, o);
	assert_int_equal(o[1], 1);
	assert_int_equal((o[2] >> 8) & 0xff, 1);
}

static void test_msr_unknown_gp(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	uint64_t val;
	/* 0x6e0 (TSC_DEADLINE) too: this vCPU has no LAPIC (plat.apic_msr) */
	static const uint32_t absent[] = {0x48,	 0x49,	0x10b,	    0x6e0,     0x179,
					  0xda0, 0x140, 0xc0010015, 0x12345678};
	for (size_t i = 0; i < BT_ARRAY_SIZE(absent); i++) {
		v->exc.pending = false;
		assert_false(cpu_rdmsr(v, absent[i], &val));
		assert_true(v->exc.pending);
		assert_int_equal(v->exc.vector, CPU_EXC_GP);
		assert_int_equal(v->exc.error, 0);
		v->exc.pending = false;
		assert_false(cpu_wrmsr(v, absent[i], 0));
		assert_int_equal(v->exc.vector, CPU_EXC_GP);
	}
}

static void test_msr_known(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	uint64_t val;
	/* EFER: SCE/NXE writable, reserved bit -> #GP, LME toggle -> #GP */
	assert_true(cpu_rdmsr(v, 0xc0000080, &val));
	assert_int_equal(val, CPU_EFER_LME | CPU_EFER_LMA | CPU_EFER_NXE | CPU_EFER_SCE);
	assert_false(cpu_wrmsr(v, 0xc0000080, val | (1ull << 1)));
	assert_false(cpu_wrmsr(v, 0xc0000080, val & ~CPU_EFER_LME));
	assert_true(cpu_wrmsr(v, 0xc0000080, CPU_EFER_LME | CPU_EFER_SCE));
	assert_int_equal(v->efer, CPU_EFER_LME | CPU_EFER_LMA | CPU_EFER_SCE);
	assert_int_equal(e->mmu.efer & CPU_EFER_NXE, 0); /* the soft-MMU follows */
	/* segment bases: canonical only, stored in the ABI area */
	assert_true(cpu_wrmsr(v, 0xc0000101, 0xffff888000001000ull));
	assert_int_equal(e->abi->gs_base, 0xffff888000001000ull);
	assert_false(cpu_wrmsr(v, 0xc0000101, 0x0000800000000000ull));
	assert_int_equal(e->abi->gs_base, 0xffff888000001000ull);
	assert_true(cpu_wrmsr(v, 0xc0000102, 0x1234));
	assert_true(cpu_rdmsr(v, 0xc0000102, &val));
	assert_int_equal(val, 0x1234);
	assert_int_equal(e->abi->kernel_gs_base, 0x1234);
	assert_true(cpu_wrmsr(v, 0xc0000100, 0x7fff0000));
	assert_int_equal(e->abi->fs_base, 0x7fff0000);
	/* syscall MSRs */
	assert_true(cpu_wrmsr(v, 0xc0000081, 0x0023001000000000ull));
	assert_false(cpu_wrmsr(v, 0xc0000082, 0x8000000000000000ull));
	assert_true(cpu_wrmsr(v, 0xc0000082, 0xffffffff81a00000ull));
	assert_int_equal(v->msr.lstar, 0xffffffff81a00000ull);
	assert_false(cpu_wrmsr(v, 0xc0000084, 1ull << 32)); /* SFMASK[63:32] reserved */
	assert_true(cpu_wrmsr(v, 0xc0000084, 0x47700));
	/* PAT: reset value, invalid type -> #GP */
	assert_true(cpu_rdmsr(v, 0x277, &val));
	assert_int_equal(val, 0x0007040600070406ull);
	assert_false(cpu_wrmsr(v, 0x277, 0x0007040600070402ull));
	assert_true(cpu_wrmsr(v, 0x277, 0x0407050600070106ull));
	/* TSC: host TSC + offset, writes move the offset */
	e->tsc = 1000;
	assert_true(cpu_rdmsr(v, 0x10, &val));
	assert_int_equal(val, 1000);
	assert_true(cpu_wrmsr(v, 0x10, 5000));
	e->tsc = 1100;
	assert_true(cpu_rdmsr(v, 0x10, &val));
	assert_int_equal(val, 5100);
	/* TSC_ADJUST: the TSC write moved it by 4000; writing it moves the TSC */
	assert_true(cpu_rdmsr(v, 0x3b, &val));
	assert_int_equal(val, 4000);
	assert_true(cpu_wrmsr(v, 0x3b, 0));
	assert_true(cpu_rdmsr(v, 0x10, &val));
	assert_int_equal(val, 1100);
	assert_true(cpu_wrmsr(v, 0x3b, (uint64_t)-100));
	assert_true(cpu_rdmsr(v, 0x10, &val));
	assert_int_equal(val, 1000);
	assert_true(cpu_wrmsr(v, 0x3b, 0));
	/* APIC_BASE without a LAPIC model: storage, x2APIC enable #GPs */
	assert_true(cpu_rdmsr(v, 0x1b, &val));
	assert_int_equal(val, 0xfee00900u);
	assert_false(cpu_wrmsr(v, 0x1b, 0xfee00d00u));
	/* MISC_ENABLE: fast strings set; LIMIT_CPUID caps leaf 0 */
	assert_true(cpu_rdmsr(v, 0x1a0, &val));
	assert_int_equal(val & 1, 1);
	uint32_t o[4];
	assert_true(cpu_wrmsr(v, 0x1a0, val | (1ull << 22)));
	cpu_cpuid(v, 0, 0, o);
	assert_int_equal(o[0], 2);
	assert_true(cpu_wrmsr(v, 0x1a0, val));
	cpu_cpuid(v, 0, 0, o);
	assert_int_equal(o[0], 0x16);
	/* read-only rows */
	assert_true(cpu_rdmsr(v, 0x3a, &val));
	assert_int_equal(val, 1); /* FEAT_CTL locked, VMX off */
	assert_false(cpu_wrmsr(v, 0x3a, 5));
	assert_true(cpu_rdmsr(v, 0xce, &val));
	assert_int_equal((val >> 8) & 0xff, 24); /* 2.4 GHz / 100 MHz */
	assert_int_equal(val & (1ull << 31), 0); /* no CPUID faulting */
	/* ARCH_CAPABILITIES: advertised in CPUID 7, RDCL_NO, read-only */
	cpu_cpuid(v, 7, 0, o);
	assert_true(o[3] & (1u << 29));
	assert_true(cpu_rdmsr(v, 0x10a, &val));
	assert_int_equal(val, 1);
	assert_false(cpu_wrmsr(v, 0x10a, 1));
	/* microcode revision: write 0 accepted, read gives the revision */
	assert_true(cpu_wrmsr(v, 0x8b, 0));
	assert_true(cpu_rdmsr(v, 0x8b, &val));
	assert_int_equal(val >> 32, 1);
	/* TSC_AUX: 32 bits */
	assert_true(cpu_wrmsr(v, 0xc0000103, 7));
	assert_false(cpu_wrmsr(v, 0xc0000103, 1ull << 32));
	/* DEBUGCTL: accepts 0 only */
	assert_true(cpu_wrmsr(v, 0x1d9, 0));
	assert_false(cpu_wrmsr(v, 0x1d9, 1));
	/* CPL 3: every MSR access is #GP */
	v->cpl = 3;
	assert_false(cpu_rdmsr(v, 0xc0000080, &val));
	v->cpl = 0;
}

static void test_cr_writes(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	uint64_t cr0 = v->cr0;
	/* CR0 */
	assert_false(cpu_write_cr(v, 0, cr0 | (1ull << 32)));
	assert_int_equal(v->exc.vector, CPU_EXC_GP);
	assert_false(cpu_write_cr(v, 0, cr0 & ~CPU_CR0_PG)); /* leave paging in 64-bit mode */
	assert_false(cpu_write_cr(v, 0, (cr0 | CPU_CR0_NW) & ~CPU_CR0_CD));
	assert_true(cpu_write_cr(v, 0, cr0 | CPU_CR0_TS | CPU_CR0_AM | CPU_CR0_MP));
	assert_int_equal(v->cr0, cr0 | CPU_CR0_TS | CPU_CR0_AM | CPU_CR0_MP);
	assert_true(cpu_write_cr(v, 0, cr0 & ~CPU_CR0_WP));
	assert_int_equal(e->mmu.cr0 & CPU_CR0_WP, 0); /* the soft-MMU follows */
	/* CR4: features not advertised -> #GP */
	uint64_t cr4 = v->cr4;
	static const uint64_t bad4[] = {CPU_CR4_FSGSBASE, CPU_CR4_OSXSAVE, CPU_CR4_LA57,
					CPU_CR4_PKE,	  CPU_CR4_UMIP,	   CPU_CR4_VME,
					1ull << 32};
	for (size_t i = 0; i < BT_ARRAY_SIZE(bad4); i++) {
		v->exc.pending = false;
		assert_false(cpu_write_cr(v, 4, cr4 | bad4[i]));
		assert_int_equal(v->exc.vector, CPU_EXC_GP);
		assert_int_equal(v->cr4, cr4);
	}
	assert_false(cpu_write_cr(v, 4, cr4 & ~CPU_CR4_PAE));
	assert_true(cpu_write_cr(v, 4,
				 cr4 | CPU_CR4_PGE | CPU_CR4_SMEP | CPU_CR4_SMAP | CPU_CR4_OSFXSR |
				     CPU_CR4_OSXMMEXCPT));
	assert_true(e->mmu.cr4 & CPU_CR4_SMAP);
	/* CR3: bits above MAXPHYADDR (39) and bit 63 without PCIDE -> #GP */
	assert_false(cpu_write_cr(v, 3, 1ull << 39));
	assert_false(cpu_write_cr(v, 3, ENV_PML4 | (1ull << 63)));
	assert_true(cpu_write_cr(v, 3, ENV_PML4 | 0x18));
	assert_int_equal(cpu_read_cr(v, 3), ENV_PML4 | 0x18);
	assert_int_equal(e->mmu.cr3 & ~0xfffull, ENV_PML4);
	/* CR4.PCIDE: #GP while CR3[11:0] != 0, then PCIDs in CR3 and bit 63 */
	v->exc.pending = false;
	assert_false(cpu_write_cr(v, 4, v->cr4 | CPU_CR4_PCIDE));
	assert_int_equal(v->exc.vector, CPU_EXC_GP);
	assert_true(cpu_write_cr(v, 3, ENV_PML4));
	assert_true(cpu_write_cr(v, 4, v->cr4 | CPU_CR4_PCIDE));
	assert_true(e->mmu.cr4 & CPU_CR4_PCIDE);
	assert_true(cpu_write_cr(v, 3, ENV_PML4 | 5 | (1ull << 63)));
	assert_int_equal(cpu_read_cr(v, 3), ENV_PML4 | 5); /* bit 63 is not stored */
	assert_int_equal(e->mmu.cr3, ENV_PML4 | 5);
	assert_true(cpu_write_cr(v, 3, ENV_PML4));
	assert_true(cpu_write_cr(v, 4, v->cr4 & ~CPU_CR4_PCIDE));
	/* CR8: 4 bits */
	assert_false(cpu_write_cr(v, 8, 16));
	assert_true(cpu_write_cr(v, 8, 15));
	assert_int_equal(cpu_read_cr(v, 8), 15);
	/* CR2 any value; CR1/CR5 -> #UD */
	assert_true(cpu_write_cr(v, 2, 0xdeadbeefcafeull));
	assert_int_equal(v->cr2, 0xdeadbeefcafeull);
	assert_false(cpu_write_cr(v, 5, 0));
	assert_int_equal(v->exc.vector, CPU_EXC_UD);
	/* CPL 3 -> #GP */
	v->cpl = 3;
	assert_false(cpu_write_cr(v, 8, 0));
	assert_int_equal(v->exc.vector, CPU_EXC_GP);
	v->cpl = 0;
}

static void test_rflags_virtual_if_ac(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	cpu_set_rflags(v, CPU_RFLAGS_IF | CPU_RFLAGS_CF | CPU_RFLAGS_IOPL | (1ull << 40));
	assert_int_equal(e->abi->irq & VCPU_IRQ_IF, 1);
	/* IOPL is kept, reserved bits read as 0 */
	assert_int_equal(cpu_rflags(v),
			 CPU_RFLAGS_IF | CPU_RFLAGS_CF | CPU_RFLAGS_IOPL | CPU_RFLAGS_FIXED);
	assert_int_equal(cpu_iopl(v), 3);
	/* translated code flips the bytes inline: cpu_rflags sees them */
	e->abi->irq &= (uint16_t)~VCPU_IRQ_IF;
	e->abi->ac = 1;
	assert_int_equal(cpu_rflags(v),
			 CPU_RFLAGS_AC | CPU_RFLAGS_CF | CPU_RFLAGS_IOPL | CPU_RFLAGS_FIXED);
	assert_false(cpu_if(v));
	/* tc_run rewrites abi->rflags from the host's flags (arithmetic bits
	 * and DF only): TF, NT, IOPL, ID survive it in the vCPU */
	cpu_set_rflags(v, CPU_RFLAGS_TF | CPU_RFLAGS_NT | CPU_RFLAGS_ID | (1ull << 12));
	e->abi->rflags = CPU_RFLAGS_FIXED | CPU_RFLAGS_ZF | CPU_RFLAGS_IF;
	assert_int_equal(cpu_rflags(v), CPU_RFLAGS_FIXED | CPU_RFLAGS_ZF | CPU_RFLAGS_TF |
					    CPU_RFLAGS_NT | CPU_RFLAGS_ID | (1ull << 12));
	assert_int_equal(cpu_iopl(v), 1);
}

static void test_boot_state_import(void **state)
{
	struct cpu_env *e = *state;
	struct vcpu *v = &e->v;
	struct boot_state bs = {
	    .rip = 0x1000000,
	    .rsi = 0x7000,
	    .rsp = 0x8ff0,
	    .rflags = 0x2,
	    .cr0 = CPU_CR0_PE | CPU_CR0_ET | CPU_CR0_NE | CPU_CR0_PG,
	    .cr3 = ENV_PML4,
	    .cr4 = CPU_CR4_PAE,
	    .efer = CPU_EFER_LME | CPU_EFER_LMA,
	    .gdt_base = 0x500,
	    .gdt_limit = 0x2f,
	    .idt_base = 0x520,
	    .idt_limit = 7,
	    .cs = {0x10, 0, 0xffffffff, 0xa09b},
	    .ds = {0x18, 0, 0xffffffff, 0xc093},
	    .es = {0x18, 0, 0xffffffff, 0xc093},
	    .ss = {0x18, 0, 0xffffffff, 0xc093},
	    .tr = {0x20, 0, 0x67, 0x008b},
	};
	e->abi->gpr[VCPU_RAX] = 99;
	assert_int_equal(cpu_load_boot_state(v, &bs), BT_OK);
	assert_int_equal(e->abi->rip, 0x1000000);
	assert_int_equal(e->abi->gpr[VCPU_RSI], 0x7000);
	assert_int_equal(e->abi->gpr[VCPU_RSP], 0x8ff0);
	assert_int_equal(e->abi->gpr[VCPU_RAX], 0);
	assert_false(cpu_if(v));
	assert_int_equal(v->cpl, 0);
	assert_int_equal(v->seg[CPU_CS].sel, 0x10);
	assert_true(v->seg[CPU_CS].ar & CPU_AR_L);
	assert_int_equal(v->seg[CPU_SS].sel, 0x18);
	assert_true(v->seg[CPU_FS].ar & CPU_AR_UNUSABLE);
	assert_int_equal(v->gdtr.base, 0x500);
	assert_int_equal(v->idtr.limit, 7);
	assert_int_equal(v->tr.sel, 0x20);
	assert_int_equal(e->mmu.cr3, ENV_PML4);
	/* not long mode: refused */
	bs.efer = 0;
	assert_int_equal(cpu_load_boot_state(v, &bs), BT_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cpuid_vendor_and_max, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_cpuid_features, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_msr_unknown_gp, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_msr_known, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_cr_writes, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_rflags_virtual_if_ac, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_boot_state_import, env_setup, env_teardown),
	};
	return cmocka_run_group_tests_name("cpu_state", tests, NULL, NULL);
}
