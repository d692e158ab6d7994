/*
 * bench: the guest benchmark (/bin/bench in the initrd, run by the kernel
 * with bench=1) and, built natively, $(BUILD)/guests/bench-native.
 * Prints one `RESULT <name> <value> <unit>` line per measurement (values
 * as fixed-point decimals: no floating point in the formatter) and `# `
 * diagnostics; exits non-zero if a correctness check failed.
 */
#include "guests/user/bench_core.h"

#include "guests/user/bench_plat.h"

#define CRC_LEN (1u << 20)

static uint8_t crc_buf[CRC_LEN];

/* value = num / den printed with 3 decimals */
static void result(const char *name, uint64_t num, uint64_t den, const char *unit)
{
	uint64_t milli = den ? num * 1000 / den : 0;

	printf("RESULT %s %llu.%03llu %s\n", name, (unsigned long long)(milli / 1000),
	       (unsigned long long)(milli % 1000), unit);
}

int main(void)
{
	struct bench_time t;
	int bad = 0;

#ifdef BENCH_GUEST
	printf("# bench: guest\n");
#else
	printf("# bench: native\n");
#endif
	if (bench_getpid(20000, &t) != 0) {
		printf("# getpid returned inconsistent values\n");
		bad = 1;
	}
	result("getpid_roundtrip", t.ns, t.iters, "ns");
	result("getpid_roundtrip_cycles", t.cycles, t.iters, "cycles");

	uint64_t x;
	bench_dep_loop(20000000, &t, &x);
	result("dep_loop", t.ns, t.iters, "ns/iter");
	printf("# dep_loop value %#llx\n", (unsigned long long)x);

	for (uint32_t i = 0; i < CRC_LEN; i++)
		crc_buf[i] = (uint8_t)(i * 2654435761u >> 13);
	uint32_t crc = 0;
	if (bench_crc32(crc_buf, CRC_LEN, 4, &t, &crc) != 0)
		bad = 1;
	/* MB/s = bytes / (ns / 1e9) / 1e6 = bytes * 1000 / ns */
	result("crc32", t.iters * 1000, t.ns ? t.ns : 1, "MB/s");
	uint32_t ref = bench_crc32_bitwise(crc_buf, CRC_LEN);
	printf("# crc32 0x%08x, bitwise reference 0x%08x: %s\n", crc, ref,
	       crc == ref ? "match" : "MISMATCH");
	bad |= crc != ref;

	if (bench_fork_wait(100, &t) != 0) {
		printf("# fork/wait failed\n");
		bad = 1;
	}
	result("fork_wait", t.ns, t.iters * 1000, "us");

	if (bench_page_fault(4096, &t) != 0) {
		printf("# page fault pattern lost\n");
		bad = 1;
	}
	result("page_fault", t.ns, t.iters * 1000, "us");
	return bad;
}
