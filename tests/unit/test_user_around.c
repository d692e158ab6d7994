/*
 * runtime/user unit tests of the cheaper direct mode: fault-around (the
 * neighbours of a granted fault mapped in one host call, only if the guest
 * has them present, user and accessed, writable only if dirty), the batch
 * gadget (its request table refused outside the window or over the stub's
 * page; guest code jumping into it makes only a guest system call), and the
 * pool of spare stubs (taken by a new address space, every one reaped when
 * the VM stops).  Real stub processes, guest page tables built here.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/user/user.h"
#include "runtime/user/user_scan.h"
#include "runtime/user/ustub.h"
#include "runtime/user/ustub_ctl.h"
#include "tests/unit/user_fixture.h"

#define A     MMU_PTE_A
#define D     MMU_PTE_D
#define PG(i) (CODE_VA + (i)*0x1000ull)

/* the code page: entry points */
#define E_JMP	 0x20 /* jmp *%rdi */
#define E_GETPID 0x30 /* mov $39, %eax; syscall */

/* The neighbours of the code page in its 16-page window (PT entries). */
enum {
	N_DIRTY = 1,  /* present, user, writable, A and D: mapped ahead writable */
	N_CLEAN = 2,  /* present, user, writable, A only: mapped ahead read-only */
	N_OLD = 3,    /* present, user, A clear: not mapped ahead */
	N_SUPER = 4,  /* present, A, supervisor: not mapped ahead */
	N_NX = 5,     /* present, user, A, NX: mapped ahead, not executable */
	N_ABSENT = 6, /* not present */
	N_RO = 7,     /* present, user, A, read-only: mapped ahead, not writable */
	N_FAR = 16,   /* present, user, A, D, but in the next window */
};

static gpa_t page_pa(unsigned i)
{
	return CODE_PA + i * 0x1000ull;
}

static void make_user_scan(struct fx *f, unsigned around, int pool, uint32_t scan)
{
	struct user_config uc = {.gm = f->gm,
				 .mmu = &f->mmu,
				 .abi = f->abi,
				 .around_pages = around,
				 .pool = pool,
				 .scan_mask = scan};
	assert_int_equal(user_create(&uc, &f->u), BT_OK);
	fx_hooks(f);
}

static void make_user(struct fx *f, unsigned around, int pool)
{
	make_user_scan(f, around, pool, 0);
}

static int setup(void **state)
{
	struct fx *f = fx_new();
	*pte(f, PT, N_DIRTY) = page_pa(N_DIRTY) | P | RW | US | A | D;
	*pte(f, PT, N_CLEAN) = page_pa(N_CLEAN) | P | RW | US | A;
	*pte(f, PT, N_OLD) = page_pa(N_OLD) | P | RW | US | D;
	*pte(f, PT, N_SUPER) = page_pa(N_SUPER) | P | RW | A | D;
	*pte(f, PT, N_NX) = page_pa(N_NX) | P | US | A | MMU_PTE_NX;
	*pte(f, PT, N_RO) = page_pa(N_RO) | P | US | A;
	*pte(f, PT, N_FAR) = page_pa(N_FAR) | P | RW | US | A | D;
	for (unsigned i = 1; i <= N_FAR; i++) {
		uint64_t v = 0x1000 + i;
		assert_int_equal(guestmem_write(f->gm, page_pa(i), &v, 8), BT_OK);
	}

	static const uint8_t jmp[] = {0xff, 0xe7};
	static const uint8_t gp[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05};
	put(f, E_JMP, jmp, sizeof(jmp));
	put(f, E_GETPID, gp, sizeof(gp));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

/* The permissions of the stub's mapping of va ("rwxs"), or "" if none. */
static void prot_of(pid_t pid, gva_t va, char out[5])
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *m = fopen(path, "r");
	assert_non_null(m);
	out[0] = 0;
	while (fgets(line, sizeof(line), m)) {
		unsigned long lo, hi;
		char perm[5];
		assert_int_equal(sscanf(line, "%lx-%lx %4s", &lo, &hi, perm), 3);
		if (va >= lo && va < hi)
			memcpy(out, perm, 5);
	}
	fclose(m);
}

static void expect_prot(pid_t pid, gva_t va, const char *want)
{
	char got[5];
	prot_of(pid, va, got);
	if (strcmp(got, want) != 0)
		fail_msg("stub mapping of %#llx: \"%s\", want \"%s\"", (unsigned long long)va, got,
			 want);
}

/* The first fetch maps the code page and, in the same host call, the
 * neighbours the guest has present, user and accessed; writable only if
 * dirty; nothing outside the window, nothing with A clear (and A stays
 * clear), nothing supervisor. */
static void test_around_ad_rule(void **state)
{
	struct fx *f = *state;
	make_user(f, 16, 0);
	struct user_event ev = run(f, E_GETPID, 0, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	pid_t pid = user_stub_pid(f->u, PML4);
	expect_prot(pid, CODE_VA, "r-xs");
	expect_prot(pid, PG(N_DIRTY), "rwxs");
	expect_prot(pid, PG(N_CLEAN), "r-xs");
	expect_prot(pid, PG(N_OLD), "");
	expect_prot(pid, PG(N_SUPER), "");
	expect_prot(pid, PG(N_NX), "r--s");
	expect_prot(pid, PG(N_ABSENT), "");
	expect_prot(pid, PG(N_RO), "r-xs");
	expect_prot(pid, PG(N_FAR), "");
	assert_false(*pte(f, PT, N_OLD) & A); /* no walk set it */
	assert_false(*pte(f, PT, N_CLEAN) & D);
	struct user_stats st0, st1;
	user_get_stats(f->u, &st0);
	assert_int_equal(st0.around, 4);
	assert_int_equal(st0.batches, 1);
	assert_int_equal(st0.calls_saved, 4);
	assert_int_equal(st0.hostcalls, 1);
	/* mapped ahead: reads without a host fault */
	assert_int_equal(run(f, E_READ, PG(N_DIRTY), 0).kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x1000 + N_DIRTY);
	assert_int_equal(run(f, E_READ, PG(N_NX), 0).kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x1000 + N_NX);
	user_get_stats(f->u, &st1);
	assert_int_equal(st1.faults, st0.faults);
	/* the clean page's first write faults and sets D, as without it */
	assert_int_equal(run(f, E_WRITE, PG(N_CLEAN), 77).kind, USER_EV_SYSCALL);
	user_get_stats(f->u, &st1);
	assert_int_equal(st1.faults, st0.faults + 1);
	assert_int_equal(st1.upgrades, st0.upgrades + 1);
	assert_true(*pte(f, PT, N_CLEAN) & D);
	uint64_t v;
	assert_int_equal(guestmem_read(f->gm, page_pa(N_CLEAN), &v, 8), BT_OK);
	assert_int_equal(v, 77);
	/* the old page's first access faults and sets A */
	assert_int_equal(run(f, E_READ, PG(N_OLD), 0).kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 0x1000 + N_OLD);
	assert_true(*pte(f, PT, N_OLD) & A);
	user_get_stats(f->u, &st1);
	assert_int_equal(st1.faults, st0.faults + 2);
}

/* With the code scan (adaptive mode), a page mapped ahead is not scanned
 * and not executable: its first fetch faults, scans it, and runs it. */
static void test_around_scan_lazy(void **state)
{
	struct fx *f = *state;
	static const uint8_t gp[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05};
	assert_int_equal(guestmem_write(f->gm, page_pa(N_RO) + 0x100, gp, sizeof(gp)), BT_OK);
	make_user_scan(f, 16, 0, USER_SCAN_TRIGGER);
	assert_int_equal(run(f, E_GETPID, 0, 0).kind, USER_EV_SYSCALL);
	pid_t pid = user_stub_pid(f->u, PML4);
	expect_prot(pid, CODE_VA, "r-xs");
	expect_prot(pid, PG(N_DIRTY), "rw-s");
	expect_prot(pid, PG(N_CLEAN), "r--s");
	expect_prot(pid, PG(N_RO), "r--s");
	struct user_stats st;
	user_get_stats(f->u, &st);
	assert_int_equal(st.scans, 1); /* the code page only */
	assert_int_equal(st.around, 4);
	struct user_event ev = run(f, (unsigned)(PG(N_RO) - CODE_VA) + 0x100, 0, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 39);
	expect_prot(pid, PG(N_RO), "r-xs");
	user_get_stats(f->u, &st);
	assert_int_equal(st.scans, 2);
}

/* --fault-around 1: one page per fault, as before. */
static void test_around_off(void **state)
{
	struct fx *f = *state;
	make_user(f, 1, 0);
	assert_int_equal(run(f, E_GETPID, 0, 0).kind, USER_EV_SYSCALL);
	pid_t pid = user_stub_pid(f->u, PML4);
	expect_prot(pid, CODE_VA, "r-xs");
	expect_prot(pid, PG(N_DIRTY), "");
	struct user_stats st;
	user_get_stats(f->u, &st);
	assert_int_equal(st.around, 0);
	assert_int_equal(st.batches, 0);
}

static uint64_t batch_run(unsigned idx, unsigned count, uint64_t off, int prot)
{
	return (uint64_t)prot | (uint64_t)idx << USTUB_BATCH_IDX_SHIFT |
	       (uint64_t)(count - 1) << USTUB_BATCH_CNT_SHIFT |
	       (off >> 12) << USTUB_BATCH_OFF_SHIFT;
}

/* The controller refuses a request table reaching outside its window, over
 * the stub's own page, beyond the host's user addresses, or malformed, and
 * then maps nothing; a valid one maps exactly its runs. */
static void test_batch_refused(void **state)
{
	struct fx *f = *state;
	int img;
	struct ustub s;
	assert_int_equal(ustub_image_create(&img), BT_OK);
	assert_int_equal(ustub_spawn(img, guestmem_fd(f->gm), NULL, &s), BT_OK);
	const gva_t base = 0x800000;
	uint64_t ok = batch_run(2, 3, CODE_PA, PROT_READ);
	uint64_t bad[][2] = {
	    {ok, batch_run(62, 3, CODE_PA, PROT_READ)}, /* past the window */
	    {ok, 0},					/* an empty run */
	    {ok, batch_run(5, 1, CODE_PA, PROT_WRITE)}, /* no PROT_READ */
	};
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(ustub_batch_check(&s, base, bad[i], 2), BT_ERR_INVALID);
	assert_int_equal(ustub_mmap_batch(&s, base, bad[0], 2), BT_ERR_INVALID);
	/* over the stub's own page, from below and at it */
	uint64_t over = batch_run(0, 2, CODE_PA, PROT_READ);
	assert_int_equal(ustub_mmap_batch(&s, USTUB_BASE - 0x1000, &over, 1), BT_ERR_INVALID);
	assert_int_equal(ustub_batch_check(&s, USTUB_BASE, &over, 1), BT_ERR_INVALID);
	/* beyond the host's user addresses; unaligned; too many runs */
	assert_int_equal(ustub_batch_check(&s, USTUB_TASK_END - 0x1000, &over, 1), BT_ERR_INVALID);
	assert_int_equal(ustub_batch_check(&s, base + 8, &ok, 1), BT_ERR_INVALID);
	uint64_t seven[7] = {ok, ok, ok, ok, ok, ok, ok};
	assert_int_equal(ustub_batch_check(&s, base, seven, 7), BT_ERR_INVALID);
	char p[5];
	for (unsigned i = 0; i < 64; i++) {
		prot_of(s.pid, base + i * 0x1000ull, p);
		assert_string_equal(p, "");
	}
	prot_of(s.pid, USTUB_BASE - 0x1000, p);
	assert_string_equal(p, "");
	/* two valid runs in one host call, the guest registers kept */
	uint64_t two[2] = {ok, batch_run(7, 1, CODE_PA + 0x5000, PROT_READ | PROT_WRITE)};
	s.regs.rbx = 42;
	s.regs_dirty = false;
	assert_int_equal(ustub_mmap_batch(&s, base, two, 2), BT_OK);
	assert_int_equal(s.regs.rbx, 42);
	for (unsigned i = 0; i < 10; i++) {
		prot_of(s.pid, base + i * 0x1000ull, p);
		assert_string_equal(p, i >= 2 && i < 5 ? "r--s" : i == 7 ? "rw-s" : "");
	}
	ustub_kill(&s);
	close(img);
}

/* Guest code jumping into the batch gadget with a table of its own (guest
 * RAM page 0, its page tables, at 0x900000) makes a guest system call
 * (mmap, number 9) at the gadget's `syscall`: nothing is mapped. */
static void test_batch_from_guest(void **state)
{
	struct fx *f = *state;
	make_user(f, 16, 0);
	f->abi->gpr[VCPU_RBP] = 0x900000;
	f->abi->gpr[VCPU_RBX] = batch_run(0, 16, 0, PROT_READ | PROT_WRITE);
	struct user_event ev = run(f, E_JMP, USTUB_BATCH, 0);
	assert_int_equal(ev.kind, USER_EV_SYSCALL);
	assert_int_equal(ev.next_rip, USTUB_BATCH_SYS + 2);
	assert_int_equal(f->abi->gpr[VCPU_RAX], 9);
	assert_int_equal(f->abi->gpr[VCPU_RDI], 0x900000);
	pid_t pid = user_stub_pid(f->u, PML4);
	for (unsigned i = 0; i < 16; i++)
		expect_prot(pid, 0x900000 + i * 0x1000ull, "");
	/* and the guest still sees a #PF there */
	ev = run(f, E_READ, 0x900000, 0);
	assert_int_equal(ev.kind, USER_EV_EXCEPTION);
	assert_int_equal(ev.vector, 14);
}

static bool reaped(pid_t pid)
{
	return kill(pid, 0) == -1 && errno == ESRCH;
}

/* Spares start only while idle long enough and up to the pool's size; a
 * new address space takes one; every stub, spare or taken, is killed and
 * reaped when the VM stops. */
static void test_pool_reaped(void **state)
{
	struct fx *f = *state;
	make_user(f, 16, 2);
	assert_false(user_idle(f->u, USER_POOL_IDLE_NS - 1));
	assert_true(user_idle(f->u, USER_POOL_IDLE_NS));
	assert_true(user_idle(f->u, USER_POOL_IDLE_NS));
	assert_false(user_idle(f->u, USER_POOL_IDLE_NS)); /* full */
	pid_t sp[4];
	assert_int_equal(user_pool_pids(f->u, sp, 4), 2);
	assert_int_equal(kill(sp[0], 0), 0);
	assert_int_equal(kill(sp[1], 0), 0);
	assert_int_equal(user_warmups(f->u), 0); /* spares are not a stay's work */
	assert_int_equal(run(f, E_GETPID, 0, 0).kind, USER_EV_SYSCALL);
	pid_t used = user_stub_pid(f->u, PML4);
	assert_int_equal(used, sp[1]); /* the last one started */
	struct user_stats st;
	user_get_stats(f->u, &st);
	assert_int_equal(st.stubs_spawned, 0);
	assert_int_equal(st.pool_taken, 1);
	assert_int_equal(st.pool_spawned, 2);
	/* a stay that took a spare did a new address space's one-time work,
	 * as one that spawned a stub (the adaptive policy leaves it out) */
	assert_int_equal(user_warmups(f->u), 1 + st.faults - st.guest_pf);
	assert_int_equal(user_pool_pids(f->u, sp + 2, 2), 1);
	assert_int_equal(sp[2], sp[0]);
	user_destroy(f->u);
	f->u = NULL;
	assert_true(reaped(sp[0]));
	assert_true(reaped(sp[1]));
	/* no child of ours is left, not even a zombie */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_around_ad_rule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_around_scan_lazy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_around_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_from_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_reaped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
