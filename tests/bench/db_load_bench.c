/*
 * What getting code from a translation database costs, without the VM
 * (benchmark, not a test; tests/bench/db-load-bench.sh builds and runs it):
 * opens DB as btvm does, times tcdb_load_index (start index and boot
 * profile), then looks up every start of a list (the boot profile's, or
 * the first N rows') with tcdb_lookup_match and an always-true matcher,
 * so the figure is the database's share only: no guest-memory read, hash
 * or code-cache install.
 *
 *   db_load_bench DB [N_ROWS]
 */
#include "db/tcdb.h"
#include "pretrans/base/log.h"
#include "pretrans/xlat/xlat.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static bool yes(void *o, gva_t va, uint32_t len, uint64_t hash)
{
	(void)o, (void)va, (void)len, (void)hash;
	return true;
}

struct starts {
	gva_t *va;
	size_t n, cap;
};

static int add_start(void *o, const struct tcdb_block *b)
{
	struct starts *s = o;
	if (b->blk.refusal)
		return 0;
	s->va[s->n++] = b->blk.guest_start;
	return s->n >= s->cap; /* stop at N */
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: db_load_bench DB [N_ROWS]\n");
		return 2;
	}
	static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
					      .abi_version = VCPU_ABI_VERSION,
					      .n_exit_kinds = XLAT_NEXIT_KINDS,
					      .n_refusals = XLAT_NREFUSALS};
	bt_log_configure("db:info"); /* the profile's load line */
	struct tcdb *db;
	double t0 = now_ms();
	if (tcdb_open(argv[1], TCDB_RDONLY, &want, NULL, &db) != BT_OK)
		return 1;
	double t1 = now_ms();
	size_t n;
	if (tcdb_load_index(db, &n) != BT_OK)
		return 1;
	double t2 = now_ms();
	printf("open %.1f ms, load_index %.1f ms (%zu starts, %zu profile entries)\n", t1 - t0,
	       t2 - t1, n, tcdb_profile_entries(db));
	/* the starts to look up: every row's start (in address order), or the
	 * first N_ROWS of them */
	struct starts s = {0};
	size_t lim = argc > 2 ? (size_t)atol(argv[2]) : 60000;
	s.cap = lim ? lim : 1;
	s.va = malloc(s.cap * sizeof(*s.va));
	tcdb_foreach_block_meta(db, add_start, &s);
	struct tcdb_block b;
	unsigned tried;
	size_t ok = 0;
	double t3 = now_ms();
	for (size_t i = 0; i < s.n; i++)
		ok += tcdb_lookup_match(db, s.va[i], yes, NULL, &b, &tried) == BT_OK;
	double t4 = now_ms();
	printf("%zu look-ups (%zu found) in %.1f ms: %.2f us each\n", s.n, ok, t4 - t3,
	       s.n ? (t4 - t3) * 1e3 / (double)s.n : 0.0);
	tcdb_close(db);
	return 0;
}
