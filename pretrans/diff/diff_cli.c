/*
 * `pretrans diff OLD NEW`: the command line of the diff (also the ptdiff
 * program).  Parses options, loads both sides in parallel, prepares and
 * compares them, writes the chosen reports.  Exit codes follow pretrans:
 * 0 ok (differences are not an error), 1 usage, 2 bad input, 3 internal
 * error, 4 I/O error.
 */
#include "pretrans/diff/diff.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: pretrans diff OLD NEW [--json] [--html FILE] [--all] [--no-listings]\n"
    "                             [--no-xlat] [--jobs N]\n"
    "\n"
    "Compares two kernel builds function by function, ignoring address shifts.\n"
    "OLD and NEW are x86-64 ELF images or translation databases (the image a\n"
    "database was built from is read and must be unchanged).  Each function is\n"
    "identical, moved (equal once addresses are normalised to symbol+offset),\n"
    "changed, renamed (same body, new name), added or removed.\n"
    "  --json         JSON report on stdout (schema btkern-diff/1, docs/diff.md)\n"
    "  --html FILE    self-contained HTML report (chart, sortable table, diffs)\n"
    "  --all          text: list moved and identical functions too\n"
    "  --no-listings  no instruction-level diffs of changed functions\n"
    "  --no-xlat      diffs of guest code only, not of its translations\n"
    "  -j, --jobs N   threads (1 or 2; default 2)\n"
    "Exit codes: 0 ok, 1 usage, 2 bad input, 3 internal error, 4 I/O error.\n";

struct load_job {
	const char *path;
	struct diff_side *side;
	enum bt_status st;
};

static void *load_thread(void *arg)
{
	struct load_job *j = arg;
	j->st = diff_side_load(j->path, &j->side);
	return NULL;
}

int diff_main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"json", no_argument, 0, 'J'},	 {"html", required_argument, 0, 'H'},
	    {"all", no_argument, 0, 'a'},	 {"no-listings", no_argument, 0, 'L'},
	    {"jobs", required_argument, 0, 'j'}, {"no-xlat", no_argument, 0, 'X'},
	    {"help", no_argument, 0, 'h'},	 {0, 0, 0, 0},
	};
	int json = 0, jobs = 2;
	const char *html = NULL;
	struct diff_write_opts wo;
	diff_write_opts_default(&wo);
	optind = 1;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":j:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'J':
			json = 1;
			break;
		case 'H':
			html = optarg;
			break;
		case 'a':
			wo.all = 1;
			break;
		case 'L':
			wo.listings = 0;
			break;
		case 'X':
			wo.xlat = 0;
			break;
		case 'j':
			jobs = atoi(optarg);
			if (jobs < 1) {
				return bt_cli_usage("diff: --jobs wants a positive number");
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return bt_cli_bad_option(c, argc, argv, optind, optopt);
		}
	}
	if (argc - optind != 2) {
		return bt_cli_usage("diff: need OLD and NEW");
	}
	double t0 = (double)bt_now_ns() * 1e-9;
	struct load_job jo = {.path = argv[optind]}, jn = {.path = argv[optind + 1]};
	pthread_t th;
	int threaded = jobs > 1 && pthread_create(&th, NULL, load_thread, &jo) == 0;
	load_thread(&jn);
	if (threaded)
		pthread_join(th, NULL);
	else
		load_thread(&jo);
	enum bt_status st = jo.st != BT_OK ? jo.st : jn.st;
	if (st != BT_OK) {
		bt_cli_error("diff: cannot load %s: %s", jo.st != BT_OK ? jo.path : jn.path,
			     bt_status_str(st));
		goto err_free_sides;
	}
	if (jo.side->img->nsyms == 0 || jn.side->img->nsyms == 0)
		fprintf(stderr,
			"pretrans diff: warning: %s has no symbols; all its code is compared as "
			"no functions at all (every function of the other side is %s)\n",
			jo.side->img->nsyms == 0 ? jo.path : jn.path,
			jo.side->img->nsyms == 0 ? "added" : "removed");
	double t1 = (double)bt_now_ns() * 1e-9;
	st = diff_sides_prepare(jo.side, jn.side, jobs);
	if (st != BT_OK) {
		bt_cli_error("diff: preparing the functions failed: %s", bt_status_str(st));
		goto err_free_sides;
	}
	double t2 = (double)bt_now_ns() * 1e-9;
	struct diff_result r;
	st = diff_compare(jo.side, jn.side, &r);
	if (st != BT_OK) {
		bt_cli_error("diff: compare failed: %s", bt_status_str(st));
		goto err_free_sides;
	}
	double t3 = (double)bt_now_ns() * 1e-9;
	r.seconds = t3 - t0;
	fprintf(stderr,
		"pretrans diff: %zu + %zu functions, load %.2f s, normalise %.2f s, match %.2f "
		"s, total %.2f s\n",
		jo.side->n, jn.side->n, t1 - t0, t2 - t1, t3 - t2, t3 - t0);
	if (!memcmp(jo.side->img->sha256, jn.side->img->sha256, SHA256_LEN))
		bt_cli_warn("diff: the two images are the same file content");

	st = json ? diff_write_json(stdout, &r, &wo) : diff_write_text(stdout, &r, &wo);
	if (st == BT_OK && fflush(stdout) != 0)
		st = BT_ERR_IO;
	if (st == BT_OK && html) {
		FILE *f = fopen(html, "w");
		if (!f) {
			bt_cli_error("diff: cannot write %s: %s", html, strerror(errno));
			st = BT_ERR_IO;
		} else {
			st = diff_write_html(f, &r, &wo);
			if (fclose(f) != 0 && st == BT_OK)
				st = BT_ERR_IO;
			if (st != BT_OK)
				bt_cli_error("diff: writing %s failed: %s", html,
					     bt_status_str(st));
		}
	}
	diff_result_fini(&r);
err_free_sides:
	diff_side_free(jo.side);
	diff_side_free(jn.side);
	return bt_status_exit(st);
}
