/*
 * relocmix: a second real ET_REL object for the loader's unit test
 * (tests/unit/test_kmodld.c), built like testmod.ko with -mcmodel=kernel
 * but also -fcommon -ffunction-sections -fdata-sections and unwind tables,
 * so it has many small sections, SHN_COMMON symbols, a switch jump table,
 * function pointers in data (R_X86_64_64), calls between sections
 * (R_X86_64_PLT32) and .eh_frame relocations.  The unit test runs
 * relocmix_run() from the loaded object and compares it with the same
 * source compiled into the test itself.
 */
extern long kmod_test_counter;

int kmod_init(void);
long relocmix_run(int seed);

int relocmix_common_a;	    /* SHN_COMMON with -fcommon */
long relocmix_common_b[16]; /* SHN_COMMON, 8-byte aligned */
static long relocmix_data[4] = {5, 7, 11, 13};
static const char relocmix_str[] = "relocmix";

static int relocmix_add(int x)
{
	return x + 3;
}

static int relocmix_mul(int x)
{
	return x * 5;
}

static int relocmix_xor(int x)
{
	return x ^ 0x55;
}

static int relocmix_neg(int x)
{
	return -x;
}

/* function pointers in data: R_X86_64_64 against .text.* sections */
int (*const relocmix_ops[4])(int) = {relocmix_add, relocmix_mul, relocmix_xor, relocmix_neg};

__attribute__((noinline)) static long relocmix_switch(int k, long x)
{
	switch (k & 7) {
	case 0:
		return x + 1;
	case 1:
		return x * 3;
	case 2:
		return x - 7;
	case 3:
		return x ^ 0x1234;
	case 4:
		return x << 2;
	case 5:
		return x >> 1;
	case 6:
		return ~x;
	default:
		return x * x;
	}
}

long relocmix_run(int seed)
{
	long acc = seed;

	for (int i = 0; i < 32; i++) {
		acc = relocmix_switch(i + seed, acc);
		acc += relocmix_ops[(i + seed) & 3]((int)acc);
		relocmix_common_b[i & 15] += acc;
		relocmix_common_a += (int)(acc & 0xff);
		acc += relocmix_data[i & 3] + relocmix_str[i & 7];
	}
	for (int i = 0; i < 16; i++)
		acc ^= relocmix_common_b[i];
	return acc + relocmix_common_a + kmod_test_counter;
}

int kmod_init(void)
{
	return (int)(relocmix_run(1) & 0x7f);
}
