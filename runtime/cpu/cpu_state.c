/*
 * vCPU architectural state: initialisation, RFLAGS composition, control
 * registers, the soft-MMU link, guest-memory helpers, the register dump.
 *
 * Invariants
 *  1. The virtual IF is byte 0 of abi->irq and the virtual AC is abi->ac;
 *     abi->rflags mirrors both after every cpu_set_rflags(), but translated
 *     code may change the bytes inline, so readers use cpu_rflags().  TF,
 *     IOPL, NT, RF, ID, VIF and VIP live in v->rflags_sys only: tc_run
 *     rewrites abi->rflags from the host's flags (arithmetic bits and DF),
 *     so a copy there would not survive one block of translated code.
 *  2. The soft-MMU always holds this vCPU's CR0/CR3/CR4/EFER, CPL and AC:
 *     every writer of those calls cpu_sync_mmu() or mmu_write_cr3().
 *  3. Long mode is always active (EFER.LMA=1, CR0.PG=1, CR4.PAE=1): the
 *     64-bit boot protocol starts there and nothing may leave it; writes that
 *     would leave it raise #GP(0) as on hardware in 64-bit mode.
 *  4. Reserved bits: CR0[63:32], CR3 above MAXPHYADDR, CR4 bits of features
 *     not in the CPUID profile and CR8[63:4] raise #GP(0) on write.
 */
#include "runtime/cpu/cpu_internal.h"

#include "pretrans/xlat/xlat_facts.h"
#include "pretrans/base/log.h"

#include <string.h>
#include <x86intrin.h>

const char *cpu_stop_reason_str(enum cpu_stop_reason r)
{
	switch (r) {
	case CPU_STOP_NONE:
		return "running";
	case CPU_STOP_TRIPLE_FAULT:
		return "triple fault";
	case CPU_STOP_HALT_IF0:
		return "hlt with interrupts disabled";
	}
	return "?";
}

bool cpu_raise_err(struct vcpu *v, uint8_t vector, uint32_t error)
{
	v->exc.pending = true;
	v->exc.vector = vector;
	v->exc.has_error = true;
	v->exc.error = error;
	return false;
}

bool cpu_raise(struct vcpu *v, uint8_t vector)
{
	v->exc.pending = true;
	v->exc.vector = vector;
	v->exc.has_error = false;
	v->exc.error = 0;
	return false;
}

void cpu_seg_set_flat(struct cpu_seg *s, uint16_t sel, bool code, unsigned dpl)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffffu;
	s->ar = CPU_AR_S | CPU_AR_P | CPU_AR_G | ((dpl & 3) << CPU_AR_DPL_SHIFT);
	if (code)
		s->ar |= 0xb | CPU_AR_L; /* execute/read, accessed, 64-bit */
	else
		s->ar |= 0x3 | CPU_AR_DB; /* read/write, accessed */
}

/* FXSAVE image of a freshly initialised FPU (FNINIT + default MXCSR). */
static void cpu_fpu_reset(struct vcpu *v)
{
	uint8_t *img = v->abi->fxsave;
	memset(img, 0, sizeof(v->abi->fxsave));
	img[0] = 0x7f; /* FCW = 0x037f */
	img[1] = 0x03;
	uint32_t mxcsr = 0x1f80, mask = 0xffff;
	memcpy(img + 24, &mxcsr, 4);
	memcpy(img + 28, &mask, 4);
}

enum bt_status vcpu_init(struct vcpu *v, struct vcpu_abi *abi, struct mmu *mmu,
			 const struct cpu_platform *plat, const struct cpu_config *cfg)
{
	if (!v || !abi || !mmu || !plat)
		return BT_ERR_INVALID;
	struct cpu_config defcfg = {0};
	if (!cfg)
		cfg = &defcfg;
	memset(v, 0, sizeof(*v));
	v->abi = abi;
	v->mmu = mmu;
	v->plat = *plat;
	/* decoded as the translator decodes: the vCPU's features (no BMI1,
	 * MPX, CET: pretrans/xlat/xlat_facts.h) */
	if (!xlat_decoder_init(&v->dec, ZYDIS_MACHINE_MODE_LONG_64) ||
	    !xlat_decoder_init(&v->dec32, ZYDIS_MACHINE_MODE_LONG_COMPAT_32) ||
	    !xlat_decoder_init(&v->dec16, ZYDIS_MACHINE_MODE_LONG_COMPAT_16))
		return BT_ERR_INTERNAL;
	cpu_cpuid_init(&v->cpuid, cfg);
	BT_TRY(mmu_set_phys_bits(mmu, v->cpuid.phys_bits));

	memset(abi->gpr, 0, sizeof(abi->gpr));
	abi->rip = 0;
	abi->irq = 0;
	abi->ac = 0;
	abi->fs_base = abi->gs_base = abi->kernel_gs_base = 0;
	v->cr0 = CPU_CR0_PE | CPU_CR0_ET | CPU_CR0_NE | CPU_CR0_PG;
	v->cr4 = CPU_CR4_PAE;
	v->efer = CPU_EFER_LME | CPU_EFER_LMA;
	v->cpl = 0;
	cpu_seg_set_flat(&v->seg[CPU_CS], 0x10, true, 0);
	for (unsigned r = 0; r < CPU_NSREG; r++)
		if (r != CPU_CS)
			cpu_seg_set_flat(&v->seg[r], 0x18, false, 0);
	v->ldtr.ar = CPU_AR_UNUSABLE;
	v->tr.ar = CPU_AR_P | 0xb; /* busy 64-bit TSS, base 0 */
	v->tr.limit = 0x67;
	v->gdtr.limit = 0xffff;
	v->idtr.limit = 0xffff;
	v->dr[6] = 0xffff0ff0;
	v->dr[7] = 0x400;
	v->msr.pat = 0x0007040600070406ull;
	v->msr.misc_enable = 1; /* FAST_STRING */
	v->msr.mtrr_def_type = 0;
	v->msr.apic_base = 0xfee00900ull; /* BSP | EN; without plat.apic_msr only */
	v->msr.ucode_rev = 1ull << 32;
	v->xcr0 = 1;
	cpu_fpu_reset(v);
	cpu_set_rflags(v, CPU_RFLAGS_FIXED);
	cpu_sync_mmu(v);
	return BT_OK;
}

void vcpu_fini(struct vcpu *v)
{
	if (v)
		v->abi = NULL;
}

bool cpu_if(const struct vcpu *v)
{
	return (v->abi->irq & VCPU_IRQ_IF) != 0;
}

/* The RFLAGS bits translated code keeps in abi->rflags: CF PF AF ZF SF DF OF. */
#define CPU_RFLAGS_ARITH 0xcd5ull

uint64_t cpu_rflags(const struct vcpu *v)
{
	uint64_t f = (v->abi->rflags & CPU_RFLAGS_ARITH) | v->rflags_sys;
	if (cpu_if(v))
		f |= CPU_RFLAGS_IF;
	if (v->abi->ac)
		f |= CPU_RFLAGS_AC;
	return f | CPU_RFLAGS_FIXED;
}

unsigned cpu_iopl(const struct vcpu *v)
{
	return (unsigned)((v->rflags_sys & CPU_RFLAGS_IOPL) >> 12);
}

void cpu_set_rflags(struct vcpu *v, uint64_t f)
{
	/* bits 63:22, 15, 5, 3 read as zero, bit 1 as one */
	f &= 0x3f7fd5ull;
	f |= CPU_RFLAGS_FIXED;
	v->abi->rflags = f;
	v->rflags_sys = f & CPU_RFLAGS_SYS;
	/* atomic: the host timer's handler may set VCPU_IRQ_FORCE meanwhile */
	if (f & CPU_RFLAGS_IF)
		__atomic_or_fetch(&v->abi->irq, (uint16_t)VCPU_IRQ_IF, __ATOMIC_RELAXED);
	else
		__atomic_and_fetch(&v->abi->irq, (uint16_t)~VCPU_IRQ_IF, __ATOMIC_RELAXED);
	bool ac = (f & CPU_RFLAGS_AC) != 0;
	if ((v->abi->ac != 0) != ac) {
		v->abi->ac = ac;
		mmu_set_cpl_ac(v->mmu, v->cpl, ac);
	}
}

void cpu_set_cpl(struct vcpu *v, unsigned cpl)
{
	v->cpl = cpl & 3;
	mmu_set_cpl_ac(v->mmu, v->cpl, v->abi->ac != 0);
}

void cpu_sync_mmu(struct vcpu *v)
{
	enum bt_status s = mmu_set_mode(v->mmu, v->cr0, v->cr3, v->cr4, v->efer);
	if (s != BT_OK)
		bt_err(LOG_CPU, "cpu: soft-MMU refused the paging mode cr0=%#llx cr4=%#llx: %s",
		       (unsigned long long)v->cr0, (unsigned long long)v->cr4, bt_status_str(s));
	mmu_set_cpl_ac(v->mmu, v->cpl, v->abi->ac != 0);
}

uint64_t cpu_read_cr(const struct vcpu *v, unsigned n)
{
	switch (n) {
	case 0:
		return v->cr0;
	case 2:
		return v->cr2;
	case 3:
		return v->cr3;
	case 4:
		return v->cr4;
	case 8:
		if (v->plat.apic_cr8) {
			uint64_t tpr = 0;
			v->plat.apic_cr8(v->plat.opaque, false, &tpr);
			return tpr;
		}
		return v->cr8;
	}
	return 0;
}

/* CR4 bits this vCPU implements (the CPUID profile decides SMEP/SMAP). */
static uint64_t cpu_cr4_allowed(const struct vcpu *v)
{
	uint64_t ok = CPU_CR4_TSD | CPU_CR4_DE | CPU_CR4_PSE | CPU_CR4_PAE | CPU_CR4_MCE |
		      CPU_CR4_PGE | CPU_CR4_PCE | CPU_CR4_OSFXSR | CPU_CR4_OSXMMEXCPT;
	if (v->cpuid.f7_ebx & (1u << 7))
		ok |= CPU_CR4_SMEP;
	if (v->cpuid.f7_ebx & (1u << 20))
		ok |= CPU_CR4_SMAP;
	if (v->cpuid.f7_ebx & (1u << 0))
		ok |= CPU_CR4_FSGSBASE;
	if (v->cpuid.f7_ecx & (1u << 2))
		ok |= CPU_CR4_UMIP;
	if (v->cpuid.f1_ecx & (1u << 17))
		ok |= CPU_CR4_PCIDE;
	return ok;
}

bool cpu_write_cr(struct vcpu *v, unsigned n, uint64_t val)
{
	if (v->cpl != 0)
		return cpu_raise_gp0(v);
	switch (n) {
	case 0: {
		if (val >> 32)
			return cpu_raise_gp0(v);
		/* writes to CR0[31:0] reserved bits are ignored; ET is fixed */
		val &= CPU_CR0_PE | CPU_CR0_MP | CPU_CR0_EM | CPU_CR0_TS | CPU_CR0_NE | CPU_CR0_WP |
		       CPU_CR0_AM | CPU_CR0_NW | CPU_CR0_CD | CPU_CR0_PG;
		val |= CPU_CR0_ET;
		if ((val & CPU_CR0_NW) && !(val & CPU_CR0_CD))
			return cpu_raise_gp0(v);
		if ((val & CPU_CR0_PG) && !(val & CPU_CR0_PE))
			return cpu_raise_gp0(v);
		/* leaving paging or protected mode from 64-bit code */
		if (!(val & CPU_CR0_PG))
			return cpu_raise_gp0(v);
		v->cr0 = val;
		cpu_sync_mmu(v);
		return true;
	}
	case 2:
		v->cr2 = val;
		return true;
	case 3: {
		uint64_t rsvd = ~0ull << v->cpuid.phys_bits;
		uint64_t keep = val & ~(1ull << 63);
		if (!(v->cr4 & CPU_CR4_PCIDE) && (val >> 63))
			return cpu_raise_gp0(v);
		if (keep & rsvd)
			return cpu_raise_gp0(v);
		v->cr3 = keep;
		mmu_write_cr3(v->mmu, val);
		return true;
	}
	case 4:
		if (val & ~cpu_cr4_allowed(v))
			return cpu_raise_gp0(v);
		if (!(val & CPU_CR4_PAE)) /* long mode needs PAE */
			return cpu_raise_gp0(v);
		/* setting PCIDE: only in IA-32e mode, with PCID 000H current */
		if ((val & ~v->cr4 & CPU_CR4_PCIDE) &&
		    (!(v->efer & CPU_EFER_LMA) || (v->cr3 & 0xfff)))
			return cpu_raise_gp0(v);
		v->cr4 = val;
		cpu_sync_mmu(v);
		return true;
	case 8:
		if (val >> 4)
			return cpu_raise_gp0(v);
		v->cr8 = val;
		if (v->plat.apic_cr8)
			v->plat.apic_cr8(v->plat.opaque, true, &val);
		return true;
	}
	return cpu_raise(v, CPU_EXC_UD);
}

/* Turn an mmu_fault into v->exc; `stack` makes non-canonical a #SS(0). */
static bool cpu_mem_fault(struct vcpu *v, const struct mmu_fault *f, bool stack)
{
	if (f->vector == MMU_VEC_PF) {
		v->exc.pending = true;
		v->exc.vector = CPU_EXC_PF;
		v->exc.has_error = true;
		v->exc.error = f->error_code;
		v->exc.cr2 = f->addr;
		return false;
	}
	return cpu_raise_err(v, stack ? CPU_EXC_SS : CPU_EXC_GP, 0);
}

static bool cpu_mem_access(struct vcpu *v, gva_t va, void *buf, size_t len, unsigned acc,
			   bool write, bool stack)
{
	struct mmu_fault f = {0};
	enum bt_status s = write ? mmu_write(v->mmu, va, buf, len, acc, &f)
				 : mmu_read(v->mmu, va, buf, len, acc, &f);
	if (s != BT_OK) {
		/* the soft-MMU or an MMIO handler broke: the guest sees #GP(0) */
		bt_err(LOG_CPU, "cpu: soft-MMU %s of %zu bytes at %#llx failed: %s",
		       write ? "write" : "read", len, (unsigned long long)va, bt_status_str(s));
		return cpu_raise_gp0(v);
	}
	if (f.pending)
		return cpu_mem_fault(v, &f, stack);
	return true;
}

bool cpu_mem_read(struct vcpu *v, gva_t va, void *buf, size_t len, unsigned acc)
{
	return cpu_mem_access(v, va, buf, len, acc, false, false);
}

bool cpu_mem_write(struct vcpu *v, gva_t va, const void *buf, size_t len, unsigned acc)
{
	return cpu_mem_access(v, va, (void *)buf, len, acc, true, false);
}

bool cpu_stack_read(struct vcpu *v, gva_t va, void *buf, size_t len)
{
	return cpu_mem_access(v, va, buf, len, 0, false, true);
}

bool cpu_stack_write(struct vcpu *v, gva_t va, const void *buf, size_t len)
{
	return cpu_mem_access(v, va, (void *)buf, len, 0, true, true);
}

uint64_t cpu_host_tsc(const struct vcpu *v)
{
	if (v->plat.read_tsc)
		return v->plat.read_tsc(v->plat.opaque);
	return __rdtsc();
}

static void cpu_dump_seg(FILE *f, const char *name, const struct cpu_seg *s)
{
	fprintf(f, "%-4s sel=%04x base=%016llx limit=%08x ar=%05x\n", name, s->sel,
		(unsigned long long)s->base, s->limit, s->ar);
}

void cpu_dump(const struct vcpu *v, FILE *f)
{
	static const char *const gpr_names[VCPU_NGPR] = {
	    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15",
	};
	static const char *const seg_names[CPU_NSREG] = {"es", "cs", "ss", "ds", "fs", "gs"};
	const struct vcpu_abi *a = v->abi;
	fprintf(f, "vCPU state (%s), CPL %u\n", cpu_stop_reason_str(v->stop), v->cpl);
	for (unsigned i = 0; i < VCPU_NGPR; i++)
		fprintf(f, "%-3s=%016llx%s", gpr_names[i], (unsigned long long)a->gpr[i],
			(i % 4 == 3) ? "\n" : "  ");
	fprintf(f, "rip=%016llx  rflags=%016llx  irq=%04x\n", (unsigned long long)a->rip,
		(unsigned long long)cpu_rflags(v), a->irq);
	fprintf(f, "cr0=%016llx  cr2=%016llx  cr3=%016llx  cr4=%016llx  cr8=%llx\n",
		(unsigned long long)v->cr0, (unsigned long long)v->cr2, (unsigned long long)v->cr3,
		(unsigned long long)v->cr4, (unsigned long long)v->cr8);
	fprintf(f, "efer=%llx  fs_base=%016llx  gs_base=%016llx  kernel_gs_base=%016llx\n",
		(unsigned long long)v->efer, (unsigned long long)a->fs_base,
		(unsigned long long)a->gs_base, (unsigned long long)a->kernel_gs_base);
	for (unsigned r = 0; r < CPU_NSREG; r++)
		cpu_dump_seg(f, seg_names[r], &v->seg[r]);
	cpu_dump_seg(f, "ldtr", &v->ldtr);
	cpu_dump_seg(f, "tr", &v->tr);
	fprintf(f, "gdtr=%016llx/%04x  idtr=%016llx/%04x\n", (unsigned long long)v->gdtr.base,
		v->gdtr.limit, (unsigned long long)v->idtr.base, v->idtr.limit);
}
