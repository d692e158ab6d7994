/*
 * reloc_code: the same code pages run at three virtual addresses.  A
 * position-independent routine spanning three pages (a loop calling into
 * the next page, a conditional branch into the one after, returns,
 * RIP-relative table reads and address arithmetic) is copied into an
 * anonymous RWX mapping, run, then moved twice with mremap (the same
 * physical pages at another address, as a shared library sits elsewhere in
 * each process under ASLR) and run again: every run returns what the C
 * model computes.  Under btvm's translated user modes the moved code is
 * found by its guest-physical pages and relocated from the first run's
 * templates instead of translated (docs/user-mode.md; tests/integration/
 * btvm-user.sh checks the counts).
 */
#include "guests/user/ulib/utest.h"

#define BLOB_PAGES 3
#define ROUNDS	   1000

/* uint64_t blob(uint64_t n): offsets below are from the blob's start */
__asm__(".pushsection .rodata.reloc_blob, \"a\"\n"
	".globl reloc_blob, reloc_blob_tbl, reloc_blob_end\n"
	"reloc_blob:\n"
	"	push %rbx\n"
	"	xor %eax, %eax\n"
	"	mov %rdi, %rcx\n"
	"	lea reloc_blob_tbl(%rip), %rbx\n"
	"1:	call 2f\n" /* into page 1 */
	"	dec %rcx\n"
	"	jnz 1b\n"
	"	lea reloc_blob(%rip), %rdx\n"	  /* where it runs: only the */
	"	lea reloc_blob_tbl(%rip), %rsi\n" /* difference is constant */
	"	sub %rdx, %rsi\n"
	"	add %rsi, %rax\n"
	"	pop %rbx\n"
	"	ret\n"
	"	.org reloc_blob + 0x1040\n"
	"2:	imul $31, %rax, %rax\n"
	"	add %rcx, %rax\n"
	"	mov %ecx, %edx\n"
	"	and $3, %edx\n"
	"	add (%rbx,%rdx,8), %rax\n" /* the table on page 2 */
	"	test $1, %cl\n"
	"	jnz 3f\n" /* into page 2 */
	"	ret\n"
	"	.org reloc_blob + 0x2080\n"
	"3:	xor $0x5a5a, %rax\n"
	"	add reloc_blob_tbl+24(%rip), %rax\n"
	"	ret\n"
	"	.p2align 3\n"
	"reloc_blob_tbl:\n"
	"	.quad 0x1234, 0x9876543, 0x5555, 0x77\n"
	"reloc_blob_end:\n"
	".popsection\n");

extern const unsigned char reloc_blob[], reloc_blob_tbl[], reloc_blob_end[];

static uint64_t model(uint64_t n)
{
	static const uint64_t tbl[4] = {0x1234, 0x9876543, 0x5555, 0x77};
	uint64_t a = 0;
	for (uint64_t c = n; c; c--) {
		a = a * 31 + c + tbl[c & 3];
		if (c & 1)
			a = (a ^ 0x5a5a) + tbl[3];
	}
	return a + (uint64_t)(reloc_blob_tbl - reloc_blob);
}

static void run_at(unsigned char *p, const char *where)
{
	uint64_t (*fn)(uint64_t) = (uint64_t(*)(uint64_t))(void *)p;
	uint64_t got = fn(ROUNDS), want = model(ROUNDS);
	UT_CHECKF(got == want, "%s: %#lx, want %#lx", where, (unsigned long)got,
		  (unsigned long)want);
}

/* Move the mapping at p to a fresh place the kernel chose (reserved by an
 * mmap first, so MREMAP_FIXED replaces nothing else). */
static unsigned char *move(unsigned char *p, size_t len)
{
	void *to = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(to != MAP_FAILED);
	if (to == MAP_FAILED)
		return NULL;
	void *r = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	UT_CHECKF(r == to, "mremap: %p, want %p (errno %d)", r, to, errno);
	return r == to ? r : NULL;
}

int main(void)
{
	size_t len = BLOB_PAGES * 4096;
	size_t n = (size_t)(reloc_blob_end - reloc_blob);
	UT_CHECK(n > 2 * 4096 && n <= len);
	unsigned char *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_CHECK(p != MAP_FAILED);
	if (p == MAP_FAILED)
		return 1;
	memcpy(p, reloc_blob, n);
	run_at(p, "first place");
	unsigned char *q = move(p, len);
	if (q) {
		run_at(q, "moved once");
		UT_CHECK(q[0] == reloc_blob[0]); /* the same pages came along */
		unsigned char *r = move(q, len);
		if (r)
			run_at(r, "moved twice");
	}
	return UT_DONE();
}
