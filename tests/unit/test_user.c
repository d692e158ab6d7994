/*
 * runtime/user unit tests: real stub processes running real guest user
 * code (machine code written into memfd-backed guest RAM), guest page
 * tables built by the test.  Stub lifecycle (spawn, events, kill, death),
 * and mapping coherence: a page the guest never granted is never
 * reachable (not even one that is valid runtime memory), a page the guest
 * revoked (invlpg, CR3 reload) is no longer reachable, permissions and
 * A/D bits follow the guest PTEs, FPU state follows the guest image.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/user/user.h"
#include "runtime/user/user_scan.h"
#include "runtime/user/ustub.h"
#include "runtime/user/ustub_ctl.h"
#include "tests/unit/user_fixture.h"

#define PML4_B	0x5000ull /* a second address space sharing the lower tables */
#define DATA_PA 0x101000ull
#define SUP_PA	0x103000ull
#define RO_PA	0x104000ull
#define NEW_PA	0x105000ull
#define DATA_VA 0x401000ull
#define HOLE_VA 0x402000ull /* never present */
#define SUP_VA	0x403000ull /* present, supervisor only */
#define RO_VA	0x404000ull /* present, user, read-only */
#define ADDR(e) ((e)&MMU_PTE_ADDR_MASK)

/* entry points in the code page */
#define E_SPIN	  0x20 /* jmp . */
#define E_UD2	  0x30
#define E_CLI	  0x40
#define E_XMM_IN  0x50 /* xmm0 = rdi; syscall */
#define E_XMM_OUT 0x60 /* rax = xmm0; syscall */
#define E_GETPID  0x70 /* mov $39, %eax; syscall */

/* A guest kernel store to a page-table entry (the soft-MMU's slow path
 * calls the code-write hook for watched pages, as guestmem_write does). */
static void kset(struct fx *f, gpa_t table, unsigned idx, uint64_t val)
{
	assert_int_equal(guestmem_write(f->gm, table + idx * 8, &val, 8), BT_OK);
}

static int setup(void **state)
{
	struct fx *f = fx_new();
	*pte(f, PML4_B, 0) = PDPT | P | RW | US;
	*pte(f, PT, 1) = DATA_PA | P | RW | US;
	*pte(f, PT, 3) = SUP_PA | P | RW;
	*pte(f, PT, 4) = RO_PA | P | US;

	static const uint8_t spin[] = {0xeb, 0xfe};
	static const uint8_t ud2[] = {0x0f, 0x0b};
	static const uint8_t cli[] = {0xfa};
	static const uint8_t xin[] = {0x66, 0x48, 0x0f, 0x6e, 0xc7, 0x0f, 0x05};
	static const uint8_t xout[] = {0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x0f, 0x05};
	static const uint8_t gp[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05};
	put(f, E_SPIN, spin, sizeof(spin));
	put(f, E_UD2, ud2, sizeof(ud2));
	put(f, E_CLI, cli, sizeof(cli));
	put(f, E_XMM_IN, xin, sizeof(xin));
	put(f, E_XMM_OUT, xout, sizeof(xout));
	put(f, E_GETPID, gp, sizeof(gp));
	uint64_t v = 0x1122334455667788ull;
	assert_int_equal(guestmem_write(f->gm, DATA_PA, &v, 8), BT_OK);
	v = 0x5ec5ec5ec5ec5ecull;
	assert_int_equal(guestmem_write(f->gm, SUP_PA, &v, 8), BT_OK);

	struct user_config uc = {.gm = f->gm, .mmu = &f->mmu, .abi = f->abi};
	assert_int_equal(user_create(&uc, &f->u), BT_OK);
	fx_hooks(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

static void expect_pf(struct user_event ev, gva_t addr, uint32_t err)
{
	assert_int_equal(ev.kind, USER_EV_EXCEPTION);
	assert_int_equal(ev.vector, 14);
	assert_int_equal(ev.addr, addr);
	assert_int_equal(ev.error & ~MMU_PF_I, err);
}

/* Spawn, a syscall event with the registers, no host syscall, kill. */
static void test_lifecycle(void **state)
{
	struct fx *f = *state;
	f->abi->gpr[VCPU_RBX] = 0xb0b0;
	f->abi->gpr[VCPU_R15] = 0xf15;
	struct user_event ev = run(f, E_GETPID, 0, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(ev.next_rip, CODE_VA + E_GETPID + 7);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 39); /* the number, not a host pid */
	assert_int_equal(f->abi->gpr[VCPU_RBX], 0xb0b0);
	assert_int_equal(f->abi->gpr[VCPU_R15], 0xf15);
	pid_t pid = user_stub_pid(f->u, PML4);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0);
	/* the same address space reuses its stub */
	ev = run(f, E_READ, DATA_VA, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(user_stub_pid(f->u, PML4), pid);
	struct user_stats st;
	user_get_stats(f->u, &st);
	assert_int_equal(st.stubs_spawned, 1);
	user_destroy(f->u);
	f->u = NULL;
	assert_int_equal(kill(pid, 0), -1); /* killed and reaped */
	struct user_config uc = {.gm = f->gm, .mmu = &f->mmu, .abi = f->abi};
	assert_int_equal(user_create(&uc, &f->u), BT_OK);
	mmu_set_flush_hook(&f->mmu, flush_hook, f->u);
	guestmem_set_code_write_hook(f->gm, write_hook, f->u);
}

/* Faults become guest exceptions at the right RIP. */
static void test_exceptions(void **state)
{
	struct fx *f = *state;
	struct user_event ev = run(f, E_UD2, 0, 0);
	assert_int_equal(ev.kind, USER_EV_EXCEPTION);
	assert_int_equal(ev.vector, 6);
	assert_int_equal(f->abi->rip, CODE_VA + E_UD2);
	ev = run(f, E_CLI, 0, 0);
	assert_int_equal(ev.kind, USER_EV_EXCEPTION);
	assert_int_equal(ev.vector, 13);
	assert_int_equal(f->abi->rip, CODE_VA + E_CLI);
}

/* Reads map the page; the value comes from guest RAM; A set, D not. */
static void test_read_maps_page(void **state)
{
	struct fx *f = *state;
	struct user_event ev = run(f, E_READ, DATA_VA, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x1122334455667788ull);
	assert_true(*pte(f, PT, 1) & MMU_PTE_A);
	assert_false(*pte(f, PT, 1) & MMU_PTE_D);
	/* a write through the read-only mapping sets D and lands in guest RAM */
	ev = run(f, E_WRITE, DATA_VA + 8, 0xabcdef);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_true(*pte(f, PT, 1) & MMU_PTE_D);
	uint64_t v = 0;
	assert_int_equal(guestmem_read(f->gm, DATA_PA + 8, &v, 8), BT_OK);
	assert_int_equal(v, 0xabcdef);
	/* and the runtime's view of RAM is the stub's */
	v = 77;
	assert_int_equal(guestmem_write(f->gm, DATA_PA, &v, 8), BT_OK);
	ev = run(f, E_READ, DATA_VA, 0);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 77);
}

/* Pages never granted are never reachable, with the right error code. */
static void test_never_granted(void **state)
{
	struct fx *f = *state;
	expect_pf(run(f, E_READ, HOLE_VA + 16, 0), HOLE_VA + 16, MMU_PF_U);
	expect_pf(run(f, E_WRITE, HOLE_VA, 1), HOLE_VA, MMU_PF_U | MMU_PF_W);
	expect_pf(run(f, E_READ, SUP_VA, 0), SUP_VA, MMU_PF_U | MMU_PF_P);
	expect_pf(run(f, E_WRITE, RO_VA, 1), RO_VA, MMU_PF_U | MMU_PF_P | MMU_PF_W);
	expect_pf(run(f, E_WRITE, CODE_VA + 0x800, 1), CODE_VA + 0x800,
		  MMU_PF_U | MMU_PF_P | MMU_PF_W);
	/* read-only after a read, still refused to a write */
	assert_int_equal(run(f, E_READ, RO_VA, 0).kind, USER_EV_SYSCALL);
	expect_pf(run(f, E_WRITE, RO_VA, 1), RO_VA, MMU_PF_U | MMU_PF_P | MMU_PF_W);
	/* memory that is valid in the runtime (this very variable) but not
	 * mapped by the guest: the stub does not have it */
	static volatile uint64_t runtime_secret = 0x5ec7e7;
	gva_t va = (gva_t)(uintptr_t)&runtime_secret;
	struct user_event ev = run(f, E_READ, va, 0);
	assert_int_equal(ev.kind, USER_EV_EXCEPTION);
	assert_int_equal(ev.vector, 14);
	assert_int_equal(ev.addr, va);
	/* a kernel-half address: the guest's walk, not the host's */
	ev = run(f, E_READ, 0xffffffff80000000ull, 0);
	assert_int_equal(ev.vector, 14);
	assert_int_equal(ev.addr, 0xffffffff80000000ull);
	/* non-canonical: #GP */
	ev = run(f, E_READ, 0x8000000000000000ull, 0);
	assert_int_equal(ev.kind, USER_EV_EXCEPTION);
	assert_int_equal(ev.vector, 13);
	uint64_t v = 0;
	assert_int_equal(guestmem_read(f->gm, RO_PA, &v, 8), BT_OK);
	assert_int_equal(v, 0); /* no refused write landed */
}

/* A page the guest revoked is gone: invlpg, page-table writes, CR3 loads. */
static void test_revoked(void **state)
{
	struct fx *f = *state;
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);
	/* revoked behind the watch's back (a raw store), then invlpg */
	*pte(f, PT, 1) &= ~P;
	mmu_invlpg(&f->mmu, DATA_VA);
	expect_pf(run(f, E_READ, DATA_VA, 0), DATA_VA, MMU_PF_U);
	/* re-grant to another frame: the new frame is seen */
	uint64_t v = 0x4e4e4e;
	assert_int_equal(guestmem_write(f->gm, NEW_PA, &v, 8), BT_OK);
	kset(f, PT, 1, NEW_PA | P | RW | US);
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x4e4e4e);
	/* write-protect (copy-on-write style) by a kernel store, no invlpg at
	 * all: the page-table watch drops the writable mapping */
	assert_int_equal(run(f, E_WRITE, DATA_VA, 5).kind, USER_EV_SYSCALL);
	kset(f, PT, 1, (NEW_PA | P | US | MMU_PTE_A | MMU_PTE_D));
	expect_pf(run(f, E_WRITE, DATA_VA, 6), DATA_VA, MMU_PF_U | MMU_PF_P | MMU_PF_W);
	assert_int_equal(guestmem_read(f->gm, NEW_PA, &v, 8), BT_OK);
	assert_int_equal(v, 5);
	/* a CR3 load keeps valid mappings (no refault) */
	kset(f, PT, 1, NEW_PA | P | RW | US);
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);
	struct user_stats st0, st1;
	user_get_stats(f->u, &st0);
	mmu_write_cr3(&f->mmu, PML4);
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);
	user_get_stats(f->u, &st1);
	assert_int_equal(st1.maps, st0.maps);
	/* a whole page-table page revoked at the PDE level */
	kset(f, PD, 2, PT | RW | US);
	struct user_event ev = run(f, E_READ, DATA_VA, 0);
	/* the code page went too: the fetch faults first */
	expect_pf(ev, CODE_VA + E_READ, MMU_PF_U);
	assert_true(ev.error & MMU_PF_I);
	/* a paging-mode change empties the stub as well */
	kset(f, PD, 2, PT | P | RW | US);
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);
	*pte(f, PT, 1) &= ~P; /* raw store: only the full flush can see it */
	mmu_flush_all(&f->mmu);
	expect_pf(run(f, E_READ, DATA_VA, 0), DATA_VA, MMU_PF_U);
}

/* Copy-on-write protection (RW or D cleared, nothing else) makes the stub's
 * page read-only in place: reads go on without a host fault, a write still
 * reaches the guest (#PF) or sets D again; clearing A drops the page. */
static void test_cow_downgrade(void **state)
{
	struct fx *f = *state;
	struct user_stats st0, st1;
	assert_int_equal(run(f, E_WRITE, DATA_VA, 7).kind, USER_EV_SYSCALL);
	uint64_t pte_w = *pte(f, PT, 1);
	assert_true((pte_w & (MMU_PTE_A | MMU_PTE_D)) == (MMU_PTE_A | MMU_PTE_D));
	/* RW cleared, a software bit (the guest kernel's COW mark) set */
	kset(f, PT, 1, (pte_w & ~RW) | (1ull << 9));
	user_get_stats(f->u, &st0);
	struct user_event ev = run(f, E_READ, DATA_VA, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 7);
	user_get_stats(f->u, &st1);
	assert_int_equal(st1.downgrades, st0.downgrades + 1);
	assert_int_equal(st1.faults, st0.faults); /* still mapped: no host fault */
	expect_pf(run(f, E_WRITE, DATA_VA, 8), DATA_VA, MMU_PF_U | MMU_PF_P | MMU_PF_W);
	uint64_t v;
	assert_int_equal(guestmem_read(f->gm, DATA_PA, &v, 8), BT_OK);
	assert_int_equal(v, 7);
	/* writable again, then only D cleared: read in place, the write sets D */
	kset(f, PT, 1, DATA_PA | P | RW | US);
	assert_int_equal(run(f, E_WRITE, DATA_VA, 9).kind, USER_EV_SYSCALL);
	kset(f, PT, 1, *pte(f, PT, 1) & ~MMU_PTE_D);
	user_get_stats(f->u, &st0);
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 9);
	assert_int_equal(run(f, E_WRITE, DATA_VA, 10).kind, USER_EV_SYSCALL);
	user_get_stats(f->u, &st1);
	assert_int_equal(st1.downgrades, st0.downgrades + 1);
	assert_int_equal(st1.upgrades, st0.upgrades + 1);
	assert_true(*pte(f, PT, 1) & MMU_PTE_D);
	/* A cleared as well: the next access must set A, so the page goes */
	kset(f, PT, 1, *pte(f, PT, 1) & ~(MMU_PTE_A | MMU_PTE_D | RW));
	user_get_stats(f->u, &st0);
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);
	user_get_stats(f->u, &st1);
	assert_int_equal(st1.downgrades, st0.downgrades);
	assert_int_equal(st1.maps, st0.maps + 1);
	assert_true(*pte(f, PT, 1) & MMU_PTE_A);
}

/* invlpg anywhere in a 2 MiB guest page drops every 4 KiB piece of it. */
static void test_large_page_invlpg(void **state)
{
	struct fx *f = *state;
	const gva_t big = 0x600000; /* PD entry 3 */
	uint64_t v = 0x1a26e;
	assert_int_equal(guestmem_write(f->gm, 0x200000 + 0x1000, &v, 8), BT_OK);
	*pte(f, PD, 3) = 0x200000 | P | RW | US | MMU_PTE_PS;
	assert_int_equal(run(f, E_READ, big + 0x1000, 0).kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x1a26e);
	/* revoked behind the watch's back, invalidated at another 4 KiB */
	*pte(f, PD, 3) = 0;
	mmu_invlpg(&f->mmu, big + 0x5000);
	expect_pf(run(f, E_READ, big + 0x1000, 0), big + 0x1000, MMU_PF_U);
}

/* A page-table frame freed and reused as user data: the stale watch goes. */
static void test_reused_table_frame(void **state)
{
	struct fx *f = *state;
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL); /* PT watched */
	/* move the 4 KiB page table to another frame and map the old one as a
	 * user data page at RO_VA's slot */
	memcpy(guestmem_gpa_to_host(f->gm, NEW_PA, 4096), guestmem_gpa_to_host(f->gm, PT, 4096),
	       4096);
	uint64_t *newpt = guestmem_gpa_to_host(f->gm, NEW_PA, 4096);
	newpt[4] = PT | P | RW | US;
	kset(f, PD, 2, NEW_PA | P | RW | US);
	struct user_event ev = run(f, E_WRITE, RO_VA, 0x77);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	uint64_t v = 0;
	assert_int_equal(guestmem_read(f->gm, PT, &v, 8), BT_OK);
	assert_int_equal(v, 0x77);
	/* a page table the guest maps writable to user code is refused */
	newpt[5] = NEW_PA | P | RW | US; /* 0x405000 -> the live PT itself */
	f->abi->rip = CODE_VA + E_WRITE;
	f->abi->gpr[VCPU_RDI] = 0x405000;
	assert_int_equal(user_enter(f->u, PML4, 0x33, 0x202, &ev), BT_ERR_UNSUPPORTED);
}

/* Another address space does not see this one's mappings or FPU state. */
static void test_two_address_spaces(void **state)
{
	struct fx *f = *state;
	/* A: xmm0 = 0x1111, touch the data page */
	struct user_event ev = run(f, E_XMM_IN, 0x1111, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	/* the state is still in the stub until the kernel reads its image */
	assert_true(user_fpu_pending(f->u));
	uint64_t x;
	memcpy(&x, f->abi->fxsave + 160, 8);
	assert_int_equal(x, 0);
	assert_int_equal(user_fpu_sync(f->u), BT_OK);
	assert_false(user_fpu_pending(f->u));
	uint8_t fx_a[512];
	memcpy(fx_a, f->abi->fxsave, 512);
	memcpy(&x, fx_a + 160, 8);
	assert_int_equal(x, 0x1111);
	assert_int_equal(run(f, E_READ, DATA_VA, 0).kind, USER_EV_SYSCALL);

	/* B: same lower tables except no data page; its own FPU image */
	uint64_t data_pte = *pte(f, PT, 1);
	kset(f, PT, 1, data_pte & ~P);
	mmu_write_cr3(&f->mmu, PML4_B);
	/* the kernel's context switch: fxsave (reads A's state), fxrstor B's */
	assert_int_equal(user_fpu_sync(f->u), BT_OK);
	memset(f->abi->fxsave + 160, 0, 16);
	ev = run(f, E_XMM_OUT, 0, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0);
	expect_pf(run(f, E_READ, DATA_VA, 0), DATA_VA, MMU_PF_U);
	assert_true(user_stub_pid(f->u, PML4_B) != user_stub_pid(f->u, PML4));

	/* back to A, which the kernel gives its image back */
	kset(f, PT, 1, data_pte);
	mmu_write_cr3(&f->mmu, PML4);
	assert_int_equal(user_fpu_sync(f->u), BT_OK);
	memcpy(f->abi->fxsave, fx_a, 512);
	ev = run(f, E_XMM_OUT, 0, 0);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x1111);
}

static void *kicker(void *arg)
{
	usleep(50000);
	user_kick(arg);
	return NULL;
}

/* The host timer stops guest code that never makes a syscall. */
static void test_kick(void **state)
{
	struct fx *f = *state;
	pthread_t t;
	run(f, E_GETPID, 0, 0); /* the stub exists */
	assert_int_equal(pthread_create(&t, NULL, kicker, f->u), 0);
	struct user_event ev = run(f, E_SPIN, 0, 0);
	pthread_join(t, NULL);
	assert_int_equal(ev.kind, USER_EV_KICK);
	assert_int_equal(f->abi->rip, CODE_VA + E_SPIN);
}

/* A stub killed from outside: a clean error, then a fresh stub. */
static void test_stub_death(void **state)
{
	struct fx *f = *state;
	run(f, E_GETPID, 0, 0);
	pid_t pid = user_stub_pid(f->u, PML4);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	struct user_event ev;
	f->abi->rip = CODE_VA + E_SPIN;
	assert_int_not_equal(user_enter(f->u, PML4, 0x33, 0x202, &ev), BT_OK);
	ev = run(f, E_GETPID, 0, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_true(user_stub_pid(f->u, PML4) != pid);
}

/* The stub process itself: one page of code, nothing else mapped. */
static void test_stub_alone(void **state)
{
	struct fx *f = *state;
	int img;
	struct ustub s;
	assert_int_equal(ustub_image_create(&img), BT_OK);
	assert_int_equal(ustub_spawn(img, guestmem_fd(f->gm), NULL, &s), BT_OK);
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)s.pid);
	FILE *m = fopen(path, "r");
	assert_non_null(m);
	int n = 0;
	while (fgets(line, sizeof(line), m)) {
		unsigned long lo, hi;
		assert_int_equal(sscanf(line, "%lx-%lx", &lo, &hi), 2);
		if (lo >= 0xffff800000000000ul)
			continue; /* [vsyscall]: the kernel's, see the seccomp filter */
		assert_int_equal(lo, USTUB_BASE);
		assert_int_equal(hi, USTUB_PAGE_END);
		n++;
	}
	fclose(m);
	assert_int_equal(n, 1);
	/* a host call through the gadget works and keeps the registers */
	s.regs.rbx = 42;
	s.regs_dirty = false;
	assert_int_equal(ustub_mmap(&s, 0x200000, 4096, 1, 0), BT_OK);
	assert_int_equal(s.regs.rbx, 42);
	/* defence in depth: guest code resumed WITHOUT PTRACE_SYSEMU cannot
	 * make a host system call either: the seccomp filter raises SIGSYS */
	assert_int_equal(ustub_mmap(&s, 0x400000, 4096, PROT_READ | PROT_EXEC, CODE_PA), BT_OK);
	struct user_regs_struct r = s.regs;
	r.rip = CODE_VA + E_GETPID;
	assert_int_equal(ptrace(PTRACE_SETREGS, s.pid, NULL, &r), 0);
	assert_int_equal(ptrace(PTRACE_CONT, s.pid, NULL, NULL), 0);
	int st;
	assert_int_equal(waitpid(s.pid, &st, __WALL), s.pid);
	assert_true(WIFSTOPPED(st));
	assert_int_equal(WSTOPSIG(st), SIGSYS);
	pid_t pid = s.pid;
	ustub_kill(&s);
	assert_int_equal(kill(pid, 0), -1);
	close(img);
}

/* The stub's code page [lo, hi) in /proc/PID/maps (the only mapping not of
 * guest RAM, i.e. not of the memfd). */
static gva_t stub_page_of(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *m = fopen(path, "r");
	assert_non_null(m);
	gva_t found = 0;
	while (fgets(line, sizeof(line), m)) {
		unsigned long lo, hi;
		assert_int_equal(sscanf(line, "%lx-%lx", &lo, &hi), 2);
		if (strstr(line, "btvm-ustub"))
			found = lo;
	}
	fclose(m);
	return found;
}

/* The guest maps the stub's code page (USTUB_BASE, then where it moved):
 * the page moves out of the way before guest code runs, and the guest sees
 * its own bytes there, reading first or writing first; host calls keep
 * working from the moved gadget (the seccomp filter's RET_TRACE path). */
static void test_stub_moves(void **state)
{
	struct fx *f = *state;
	const gva_t va1 = USTUB_BASE, va2 = USTUB_BASE - USTUB_MOVE_STEP;
	const gpa_t pdpt_hi = 0x106000, pd1 = 0x107000, pt1 = 0x108000, data1 = 0x109000,
		    pd2 = 0x10a000, pt2 = 0x10b000, data2 = 0x10c000;
	uint64_t v = 0x600dbeefull;
	assert_int_equal(guestmem_write(f->gm, data2, &v, 8), BT_OK);
	assert_int_equal((va1 >> 39) & 511, (va2 >> 39) & 511);
	struct user_event ev = run(f, E_GETPID, 0, 0);
	pid_t pid = user_stub_pid(f->u, PML4);
	assert_int_equal(stub_page_of(pid), USTUB_BASE);
	/* va1 -> data1, user, writable, dirty: the guest writes first */
	*pte(f, pt1, (va1 >> 12) & 511) = data1 | P | RW | US | MMU_PTE_D;
	*pte(f, pd1, (va1 >> 21) & 511) = pt1 | P | RW | US;
	*pte(f, pdpt_hi, (va1 >> 30) & 511) = pd1 | P | RW | US;
	kset(f, PML4, (va1 >> 39) & 511, pdpt_hi | P | RW | US);
	ev = run(f, E_WRITE, va1 + 8, 0x5a5a);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	ev = run(f, E_READ, va1 + 8, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x5a5a);
	assert_int_equal(stub_page_of(pid), va2);
	/* then the guest maps where it went, and reads first */
	*pte(f, pt2, (va2 >> 12) & 511) = data2 | P | RW | US | MMU_PTE_D;
	*pte(f, pd2, (va2 >> 21) & 511) = pt2 | P | RW | US;
	kset(f, pdpt_hi, (va2 >> 30) & 511, pd2 | P | RW | US);
	ev = run(f, E_READ, va2, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x600dbeefull);
	assert_int_equal(stub_page_of(pid), va2 - USTUB_MOVE_STEP);
	ev = run(f, E_READ, va1 + 8, 0);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x5a5a);
	struct user_stats st;
	user_get_stats(f->u, &st);
	assert_int_equal(st.stub_moves, 2);
}

/* A host call made while the guest's TF and AC are set runs from a clean
 * state: the lazy mapping works and the guest sees its single-step trap
 * after the instruction, as on hardware. */
static void test_hostcall_clean_state(void **state)
{
	struct fx *f = *state;
	struct user_event ev;
	f->abi->rip = CODE_VA + E_READ;
	f->abi->gpr[VCPU_RDI] = DATA_VA;
	assert_int_equal(user_enter(f->u, f->mmu.cr3, 0x33, 0x40302, &ev), BT_OK);
	assert_int_equal(ev.kind, USER_EV_EXCEPTION);
	assert_int_equal(ev.vector, 1);
	assert_true(ev.trap);
	assert_int_equal(f->abi->rip, CODE_VA + E_READ + 3);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x1122334455667788ull);
	assert_true(ev.rflags & 0x40000); /* the guest's AC survives */
	/* at the controller: whatever registers the guest left (32-bit CS,
	 * TF, AC), the gadget makes a 64-bit call (in compat mode `syscall`
	 * would reach the i386 table, which the filter refuses) and the
	 * guest's registers come back */
	int img;
	struct ustub st;
	assert_int_equal(ustub_image_create(&img), BT_OK);
	assert_int_equal(ustub_spawn(img, guestmem_fd(f->gm), NULL, &st), BT_OK);
	st.regs.cs = 0x23;
	st.regs.eflags |= 0x40100;
	st.regs_dirty = true;
	assert_int_equal(ustub_mmap(&st, 0x200000, 4096, PROT_READ, 0), BT_OK);
	assert_int_equal(st.regs.cs, 0x23);
	assert_true(st.regs_dirty);
	ustub_kill(&st);
	close(img);
}

static struct user_event run_at(struct fx *f, gva_t rip)
{
	struct user_event ev;
	f->abi->rip = rip;
	assert_int_equal(user_enter(f->u, f->mmu.cr3, 0x33, 0x202, &ev), BT_OK);
	return ev;
}

/* Rebuild the user-mode side with cfg.scan_mask = mask. */
static void recreate(struct fx *f, uint32_t mask)
{
	user_destroy(f->u);
	struct user_config uc = {.gm = f->gm, .mmu = &f->mmu, .abi = f->abi, .scan_mask = mask};
	assert_int_equal(user_create(&uc, &f->u), BT_OK);
	mmu_set_flush_hook(&f->mmu, flush_hook, f->u);
	guestmem_set_code_write_hook(f->gm, write_hook, f->u);
}

/* With the scan on (adaptive and translated user modes), code the host
 * would answer differently never runs on the host: a page holding rdtscp
 * (the host's CPU number) and a page user code may both write and execute
 * are never executable in the stub, a fetch from them is
 * USER_EV_SENSITIVE at the fetching instruction with nothing run; reading
 * them as data still works; clean code runs directly.  Without the scan
 * (--user=direct) the same rdtscp runs on the host. */
static void test_sensitive_pages(void **state)
{
	struct fx *f = *state;
	/* RO_VA: user, read-only, executable: rdtscp; syscall */
	static const uint8_t rdtscp[] = {0x0f, 0x01, 0xf9, 0x0f, 0x05};
	assert_int_equal(guestmem_write(f->gm, RO_PA + 0x100, rdtscp, sizeof(rdtscp)), BT_OK);
	/* DATA_VA: user, writable, executable: mov $39, %eax; syscall */
	static const uint8_t gp[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05};
	assert_int_equal(guestmem_write(f->gm, DATA_PA + 0x100, gp, sizeof(gp)), BT_OK);

	recreate(f, USER_SCAN_TRIGGER);
	struct user_event ev = run(f, E_GETPID, 0, 0); /* clean code runs on the host */
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	f->abi->gpr[VCPU_RCX] = 0x5555;
	ev = run_at(f, RO_VA + 0x100);
	assert_int_equal(ev.kind, USER_EV_SENSITIVE);
	assert_int_equal(ev.error, USER_SCAN_TSCAUX);
	assert_int_equal(ev.addr, RO_VA);
	assert_int_equal(f->abi->rip, RO_VA + 0x100); /* not run */
	assert_int_equal(f->abi->gpr[VCPU_RCX], 0x5555);
	/* read as data: mapped, still not executable */
	ev = run(f, E_READ, RO_VA + 0x100, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX] & 0xffffff, 0xf9010f);
	f->abi->gpr[VCPU_RCX] = 0x5555;
	ev = run_at(f, RO_VA + 0x100);
	assert_int_equal(ev.kind, USER_EV_SENSITIVE);
	assert_int_equal(f->abi->gpr[VCPU_RCX], 0x5555);
	/* writable code: its bytes may change after any scan */
	ev = run_at(f, DATA_VA + 0x100);
	assert_int_equal(ev.kind, USER_EV_SENSITIVE);
	assert_int_equal(ev.error, USER_SCAN_WX);
	assert_int_equal(f->abi->rip, DATA_VA + 0x100);
	struct user_stats st;
	user_get_stats(f->u, &st);
	assert_int_equal(st.sensitive, 3);
	assert_true(st.scan_hits >= 3);
	assert_true(st.scans > st.scan_hits);

	/* --user=direct: no scan, the host answers */
	recreate(f, 0);
	f->abi->gpr[VCPU_RCX] = 0x5555;
	ev = run_at(f, RO_VA + 0x100);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	user_get_stats(f->u, &st);
	assert_int_equal(st.scans, 0);
	assert_int_equal(st.sensitive, 0);
}

/* Data selectors a user program may hold but PTRACE_SETREGS refuses (a
 * null selector with RPL 1 or 2, an RPL below 3): handed to the host as
 * null or with RPL 3, so a stub whose program loaded one goes on running
 * (it stopped the VM: Linux's fsgsbase selftest in direct mode). */
static void test_host_selectors(void **state)
{
	(void)state;
	assert_int_equal(ustub_host_sel(0), 0);
	assert_int_equal(ustub_host_sel(1), 0);
	assert_int_equal(ustub_host_sel(2), 0);
	assert_int_equal(ustub_host_sel(3), 0);
	assert_int_equal(ustub_host_sel(0x2b), 0x2b);
	assert_int_equal(ustub_host_sel(0x28), 0x2b);
	assert_int_equal(ustub_host_sel(0x7), 0x7); /* LDT entry 0, RPL 3 */
	assert_int_equal(ustub_host_sel(0x5), 0x7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host_selectors),
	    cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exceptions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_maps_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_never_granted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cow_downgrade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_page_invlpg, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reused_table_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_address_spaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kick, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stub_death, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stub_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stub_moves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostcall_clean_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sensitive_pages, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
