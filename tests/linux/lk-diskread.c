/*
 * lk-diskread: sequential read speed of a block device inside a Linux
 * guest, for tests/bench/virtio-disk-bench.sh.  Built static (lk_cc_static).
 *
 *   lk-diskread DEV MIB [direct [KIB]]   read the first MIB MiB of DEV in
 *                                  reads of KIB KiB (default 1024; O_DIRECT
 *                                  with "direct", else through the page
 *                                  cache: drop it first),
 *                                  print "MBPS NS FNV" -- MB/s (10^6 bytes
 *                                  per second, CLOCK_MONOTONIC), the time
 *                                  in ns and an FNV-1a hash of the bytes
 *                                  (a check that what was read is right).
 *
 * Exit status 0, or 1 with a one-line reason on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHUNK (1u << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: lk-diskread DEV MIB [direct [KIB]]\n");
		return 1;
	}
	long mib = strtol(argv[2], NULL, 10);
	int direct = argc > 3 && !strcmp(argv[3], "direct");
	long kib = argc > 4 ? strtol(argv[4], NULL, 10) : 1024;
	if (kib < 4 || kib > 1024 || kib % 4) {
		fprintf(stderr, "lk-diskread: KIB must be a multiple of 4 in [4, 1024]\n");
		return 1;
	}
	size_t chunk = (size_t)kib << 10;
	long reads = mib * (1024 / kib);
	int fd = open(argv[1], O_RDONLY | (direct ? O_DIRECT : 0));
	if (fd < 0) {
		fprintf(stderr, "lk-diskread: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint8_t *buf;
	if (posix_memalign((void **)&buf, 4096, MAX_CHUNK)) {
		fprintf(stderr, "lk-diskread: out of memory\n");
		return 1;
	}
	uint64_t h = 0xcbf29ce484222325ull;
	uint64_t t0 = now_ns(), hash_ns = 0;
	for (long i = 0; i < reads; i++) {
		ssize_t n = read(fd, buf, chunk);
		if (n != (ssize_t)chunk) {
			fprintf(stderr, "lk-diskread: %s: read %ld: %s\n", argv[1], i,
				n < 0 ? strerror(errno) : "short");
			return 1;
		}
		uint64_t h0 = now_ns();
		for (size_t k = 0; k < chunk; k += 8) { /* FNV-1a over 64-bit words */
			uint64_t w;
			memcpy(&w, buf + k, 8);
			h = (h ^ w) * 0x100000001b3ull;
		}
		hash_ns += now_ns() - h0;
	}
	uint64_t ns = now_ns() - t0 - hash_ns; /* the hash is not the disk's time */
	printf("%.1f %llu %016llx\n", (double)mib * (1 << 20) / ((double)ns / 1e9) / 1e6,
	       (unsigned long long)ns, (unsigned long long)h);
	return 0;
}
