/*
 * Shared fixture of the runtime/cpu unit tests: real memfd guest RAM
 * (runtime/mem), the real soft-MMU (runtime/mmu) and a vCPU in long mode
 * with Linux-like descriptor tables built in guest memory by the test:
 *
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD: identity map of 1 GiB, 2 MiB
 *          pages, P|RW|US (user-accessible so CPL3 tests can use them)
 *   0x5000 GDT: 0x10 kernel CS (64-bit), 0x18 kernel DS, 0x23 user CS32,
 *          0x2b user DS, 0x33 user CS (64-bit), 0x40 TSS (16 bytes)
 *   0x6000 TSS: rsp0 = ENV_RSP0, ist1 = ENV_IST1, ist2 = ENV_IST2
 *   0x7000 IDT: 256 gates, vector n -> ENV_HANDLER(n), interrupt gates,
 *          DPL0 except 3, 4 and 0x80 (DPL3); #DF uses IST2
 *   0x70000 initial kernel RSP, 0x100000 test code
 *
 * The platform is fake but deterministic: a PIC with one pending vector, a
 * port bus that records writes and answers reads with a pattern, and a TSC
 * that the test sets.
 */
#ifndef BT_TESTS_UNIT_TEST_CPU_ENV_H
#define BT_TESTS_UNIT_TEST_CPU_ENV_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/cpu/cpu.h"
#include "runtime/mem/guestmem.h"
#include "runtime/mmu/mmu.h"

#define ENV_RAM	       (32ull << 20)
#define ENV_PML4       0x1000ull
#define ENV_PDPT       0x2000ull
#define ENV_PD	       0x3000ull
#define ENV_GDT	       0x5000ull
#define ENV_TSS	       0x6000ull
#define ENV_IDT	       0x7000ull
#define ENV_RSP	       0x70000ull
#define ENV_RSP0       0x80000ull
#define ENV_IST1       0x90000ull
#define ENV_IST2       0xa0000ull
#define ENV_CODE       0x100000ull
#define ENV_HANDLER(n) (0x200000ull + 16 * (n))
#define ENV_KCS	       0x10
#define ENV_KDS	       0x18
#define ENV_UCS32      0x23
#define ENV_UDS	       0x2b
#define ENV_UCS	       0x33
#define ENV_TR	       0x40

struct cpu_env {
	struct guestmem *gm;
	uint8_t *ram;
	struct mmu mmu;
	struct vcpu_abi *abi;
	struct vcpu v;
	/* fake platform */
	bool irq_pending;
	uint8_t irq_vector;
	unsigned irq_acks;
	uint64_t tsc;
	unsigned n_out;
	uint16_t out_port[64];
	uint32_t out_val[64];
	unsigned out_size[64];
	unsigned n_in;
};

static enum bt_status env_pio_in(void *o, uint16_t port, unsigned size, uint32_t *val)
{
	struct cpu_env *e = o;
	e->n_in++;
	/* pattern: low byte = port low byte, then counting up */
	uint32_t x = (uint32_t)(port & 0xff) | ((uint32_t)e->n_in << 8) | 0xab000000u;
	*val = size == 1 ? (x & 0xff) : size == 2 ? (x & 0xffff) : x;
	return BT_OK;
}

static enum bt_status env_pio_out(void *o, uint16_t port, unsigned size, uint32_t val)
{
	struct cpu_env *e = o;
	if (e->n_out < 64) {
		e->out_port[e->n_out] = port;
		e->out_val[e->n_out] = val;
		e->out_size[e->n_out] = size;
	}
	e->n_out++;
	return BT_OK;
}

static bool env_intr_pending(void *o)
{
	return ((struct cpu_env *)o)->irq_pending;
}

static uint8_t env_intr_ack(void *o)
{
	struct cpu_env *e = o;
	e->irq_acks++;
	e->irq_pending = false;
	return e->irq_vector;
}

static uint64_t env_read_tsc(void *o)
{
	return ((struct cpu_env *)o)->tsc;
}

static inline void env_w64(struct cpu_env *e, uint64_t gpa, uint64_t val)
{
	memcpy(e->ram + gpa, &val, 8);
}

static inline uint64_t env_r64(struct cpu_env *e, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, e->ram + gpa, 8);
	return v;
}

static inline void env_set_gate(struct cpu_env *e, unsigned vec, uint64_t target, uint16_t sel,
				unsigned type, unsigned dpl, unsigned ist, bool present)
{
	uint64_t lo = (target & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)ist << 32) |
		      ((uint64_t)type << 40) | ((uint64_t)dpl << 45) |
		      ((uint64_t)(present ? 1 : 0) << 47) | ((target & 0xffff0000ull) << 32);
	env_w64(e, ENV_IDT + 16 * vec, lo);
	env_w64(e, ENV_IDT + 16 * vec + 8, target >> 32);
}

static struct cpu_env *env_create(void)
{
	struct cpu_env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	assert_int_equal(guestmem_create(ENV_RAM, &e->gm), BT_OK);
	e->ram = guestmem_host_base(e->gm);
	e->abi = aligned_alloc(4096, (sizeof(struct vcpu_abi) + 4095) & ~4095ul);
	assert_non_null(e->abi);
	memset(e->abi, 0, sizeof(*e->abi));
	assert_int_equal(mmu_init(&e->mmu, e->gm, e->abi), BT_OK);

	/* identity map of the first GiB */
	env_w64(e, ENV_PML4, ENV_PDPT | 7);
	env_w64(e, ENV_PDPT, ENV_PD | 7);
	for (uint64_t i = 0; i < 512; i++)
		env_w64(e, ENV_PD + 8 * i, (i << 21) | 0x87);
	/* GDT */
	env_w64(e, ENV_GDT + 0x10, 0x00af9b000000ffffull);
	env_w64(e, ENV_GDT + 0x18, 0x00cf93000000ffffull);
	env_w64(e, ENV_GDT + 0x20, 0x00cffb000000ffffull);
	env_w64(e, ENV_GDT + 0x28, 0x00cff3000000ffffull);
	env_w64(e, ENV_GDT + 0x30, 0x00affb000000ffffull);
	uint64_t tss_lo =
	    0x67 | ((ENV_TSS & 0xffffff) << 16) | (0x89ull << 40) | ((ENV_TSS >> 24) << 56);
	env_w64(e, ENV_GDT + 0x40, tss_lo);
	env_w64(e, ENV_GDT + 0x48, ENV_TSS >> 32);
	/* TSS */
	env_w64(e, ENV_TSS + 4, ENV_RSP0);
	env_w64(e, ENV_TSS + 0x24, ENV_IST1);
	env_w64(e, ENV_TSS + 0x2c, ENV_IST2);
	/* IDT */
	for (unsigned n = 0; n < 256; n++) {
		unsigned dpl = (n == 3 || n == 4 || n == 0x80) ? 3 : 0;
		env_set_gate(e, n, ENV_HANDLER(n), ENV_KCS, 0xe, dpl, n == 8 ? 2 : 0, true);
	}

	struct cpu_platform plat = {
	    .opaque = e,
	    .pio_in = env_pio_in,
	    .pio_out = env_pio_out,
	    .intr_pending = env_intr_pending,
	    .intr_ack = env_intr_ack,
	    .read_tsc = env_read_tsc,
	};
	struct cpu_config cfg = {.tsc_khz = 2400000, .phys_bits = 39};
	assert_int_equal(vcpu_init(&e->v, e->abi, &e->mmu, &plat, &cfg), BT_OK);
	struct vcpu *v = &e->v;
	v->cr3 = ENV_PML4;
	v->cr0 |= CPU_CR0_WP;
	v->efer |= CPU_EFER_NXE | CPU_EFER_SCE;
	v->gdtr.base = ENV_GDT;
	v->gdtr.limit = 0x4f;
	v->idtr.base = ENV_IDT;
	v->idtr.limit = 0xfff;
	v->tr.sel = ENV_TR;
	v->tr.base = ENV_TSS;
	v->tr.limit = 0x67;
	v->tr.ar = CPU_AR_P | 0xb;
	cpu_sync_mmu(v);
	e->abi->gpr[VCPU_RSP] = ENV_RSP;
	e->abi->rip = ENV_CODE;
	return e;
}

static void env_destroy(struct cpu_env *e)
{
	vcpu_fini(&e->v);
	mmu_fini(&e->mmu);
	guestmem_destroy(e->gm);
	free(e->abi);
	free(e);
}

/* CMocka fixtures: a fresh environment per test. */
static inline int env_setup(void **state)
{
	*state = env_create();
	return 0;
}

static inline int env_teardown(void **state)
{
	env_destroy(*state);
	return 0;
}

/* Put instruction bytes at ENV_CODE, rip there, and emulate them. */
static inline enum cpu_outcome env_run(struct cpu_env *e, const uint8_t *bytes, size_t len)
{
	memcpy(e->ram + ENV_CODE, bytes, len);
	e->abi->rip = ENV_CODE;
	enum cpu_outcome out = CPU_OUT_STOP;
	assert_int_equal(cpu_step_priv(&e->v, &out), BT_OK);
	return out;
}

#define ENV_RUN(e, ...)                                                                            \
	({                                                                                         \
		static const uint8_t b_[] = {__VA_ARGS__};                                         \
		env_run(e, b_, sizeof(b_));                                                        \
	})

#endif
