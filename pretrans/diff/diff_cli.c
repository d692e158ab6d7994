/*
 * `pretrans diff OLD NEW [-- FUNCTION...]`: the command line of the diff
 * (also the ptdiff program).  Parses options, loads both sides in
 * parallel, prepares and compares them, writes the chosen reports.
 * Exit statuses, as diff(1) and `git diff --exit-code`: 0 the builds have
 * the same code (every function identical or only moved), 1 they differ
 * (some function changed, renamed, added or removed), 2 usage error or bad
 * input, 3 internal error, 4 I/O error.
 */
#include "pretrans/diff/diff.h"
#include "pretrans/diff/diff_int.h"

#include "pretrans/asmfmt/asmfmt.h"
#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: pretrans diff OLD NEW [OPTIONS] [-- FUNCTION...]\n"
    "\n"
    "Compares two kernel builds function by function, ignoring address shifts.\n"
    "OLD and NEW are x86-64 ELF images (kernels, .ko modules, .ko.xz, .ko.zst) or\n"
    "translation databases (the image a database was built from is read and\n"
    "must be unchanged), or two module trees (directories, e.g. lib/modules/\n"
    "RELEASE, or its kernel/ subtree): then each module is added, removed,\n"
    "identical, same code (moved functions only) or changed, with its really\n"
    "changed functions listed (--all: every function).  Each function is\n"
    "identical, moved (equal once addresses are normalised to symbol+offset),\n"
    "changed, renamed (same body, new name), added or removed.  The text report\n"
    "ends with unified diffs (git's format) of each changed function's code and\n"
    "of its translation, offsets as symbol+0x...; it goes through a pager\n"
    "($PAGER, else less -FRX) when stdout is a terminal.\n"
    "  -- FUNCTION...    only these functions (a name, or a key as the report\n"
    "                    prints it: NAME@FILE, NAME@FILE#K)\n"
    "  --json[=FILE]     JSON report (schema btkern-diff/1) on stdout or into FILE\n"
    "  --html FILE       self-contained HTML report (chart, sortable table, diffs)\n"
    "  --text            the text report on stdout too when the others go to files\n"
    "                    (without it, nothing is written on stdout then)\n"
    "  --all             text: list moved and identical functions too\n"
    "  --no-listings     no instruction-level diffs of changed functions\n"
    "  --no-xlat         diffs of guest code only, not of its translations\n"
    "  -M intel|att      instruction syntax of the listings (default intel)\n"
    "  --color[=WHEN]    colour the text report: auto (default: when stdout is a\n"
    "                    terminal and NO_COLOR is unset), always, never\n"
    "  --no-pager        never start a pager\n"
    "  -j, --jobs N      threads (1 or 2; default 2)\n"
    "Exit status: 0 same code (identical or moved functions only), 1 the builds\n"
    "differ (a function changed, renamed, added or removed), 2 usage error or bad\n"
    "input, 3 internal error, 4 I/O error.\n";

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

/* The text report's colours: --color=WHEN against the terminal. */
static int want_color(const char *when)
{
	if (!strcmp(when, "always"))
		return 1;
	if (!strcmp(when, "never"))
		return 0;
	const char *term = getenv("TERM");
	return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && !(term && !strcmp(term, "dumb"));
}

static enum bt_status write_file(const char *path, const struct diff_result *r,
				 const struct diff_write_opts *wo, int html)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		bt_cli_error("diff: cannot write %s: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	enum bt_status st = html ? diff_write_html(f, r, wo) : diff_write_json(f, r, wo);
	if (fclose(f) != 0 && st == BT_OK)
		st = BT_ERR_IO;
	if (st != BT_OK)
		bt_cli_error("diff: writing %s failed: %s", path, bt_status_str(st));
	return st;
}

int diff_main(int argc, char **argv)
{
	enum { O_COLOR = 256, O_NOCOLOR, O_NOPAGER, O_TEXT };
	static const struct option lopts[] = {
	    {"json", optional_argument, 0, 'J'},
	    {"html", required_argument, 0, 'H'},
	    {"all", no_argument, 0, 'a'},
	    {"no-listings", no_argument, 0, 'L'},
	    {"jobs", required_argument, 0, 'j'},
	    {"no-xlat", no_argument, 0, 'X'},
	    {"help", no_argument, 0, 'h'},
	    {"color", optional_argument, 0, O_COLOR},
	    {"no-color", no_argument, 0, O_NOCOLOR},
	    {"no-pager", no_argument, 0, O_NOPAGER},
	    {"text", no_argument, 0, O_TEXT},
	    {0, 0, 0, 0},
	};
	int json = 0, jobs = 2, pager = 1, text = 0;
	const char *html = NULL, *json_file = NULL, *color = "auto";
	enum asmfmt_syntax syn = ASMFMT_INTEL;
	struct diff_write_opts wo;
	diff_write_opts_default(&wo);
	optind = 1;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":j:hM:", lopts, NULL)) != -1) {
		switch (c) {
		case 'J':
			json = 1;
			json_file = optarg;
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
		case 'M':
			if (!asmfmt_parse_syntax(optarg, &syn))
				return bt_cli_usage("diff: -M wants intel or att, not '%s'",
						    optarg);
			break;
		case O_COLOR:
			color = optarg ? optarg : "always";
			if (strcmp(color, "auto") && strcmp(color, "always") &&
			    strcmp(color, "never"))
				return bt_cli_usage(
				    "diff: --color wants auto, always or never, not "
				    "'%s'",
				    color);
			break;
		case O_NOCOLOR:
			color = "never";
			break;
		case O_NOPAGER:
			pager = 0;
			break;
		case O_TEXT:
			text = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return bt_cli_bad_option(c, argc, argv, optind, optopt);
		}
	}
	int dashdash = 0;
	for (int i = 1; i < argc; i++)
		dashdash |= !strcmp(argv[i], "--");
	if (argc - optind < 2)
		return bt_cli_usage("diff: need OLD and NEW");
	if (argc - optind > 2 && !dashdash)
		return bt_cli_usage("diff: argument '%s' after OLD and NEW: restrict to functions "
				    "with -- FUNCTION...",
				    argv[optind + 2]);
	if (json && !json_file && text)
		return bt_cli_usage("diff: --text and --json both want stdout: give --json=FILE");
	/* stdout: JSON, or text unless every chosen report goes to a file */
	int text_out = !(json && !json_file) && (text || (!json_file && !html));
	wo.color = text_out && want_color(color);
	char *const *funcs = argv + optind + 2;
	size_t nfuncs = (size_t)(argc - optind - 2);

	if (diff_is_tree(argv[optind]) || diff_is_tree(argv[optind + 1])) {
		if (!diff_is_tree(argv[optind]) || !diff_is_tree(argv[optind + 1]))
			return bt_cli_usage(
			    "diff: %s is a directory and %s is not: give two "
			    "module trees or two files",
			    diff_is_tree(argv[optind]) ? argv[optind] : argv[optind + 1],
			    diff_is_tree(argv[optind]) ? argv[optind + 1] : argv[optind]);
		if (nfuncs)
			return bt_cli_usage("diff: -- FUNCTION... with module trees: compare two "
					    ".ko files for the diffs of named functions");
		struct diff_tree_opts to = {.json = json,
					    .json_file = json_file,
					    .html = html,
					    .all = wo.all,
					    .text = text,
					    .jobs = jobs};
		return diff_trees(argv[optind], argv[optind + 1], &to);
	}
	int differs = 0;
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
	if (st == BT_OK)
		st = diff_sides_check_kind(jo.side, jn.side);
	if (st != BT_OK) /* the loader or the check said which file and why */
		goto err_free_sides;
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

	jo.side->att = jn.side->att = syn == ASMFMT_ATT;
	if (nfuncs) {
		const char *missing;
		if (diff_result_restrict(&r, funcs, nfuncs, &missing) != BT_OK) {
			bt_cli_error("diff: no function '%s' in %s or %s", missing, jo.path,
				     jn.path);
			st = BT_ERR_NOTFOUND;
			diff_result_fini(&r);
			goto err_free_sides;
		}
	}
	if (json_file)
		st = write_file(json_file, &r, &wo, 0);
	if (st == BT_OK && html)
		st = write_file(html, &r, &wo, 1);
	int paged = 0;
	if (st == BT_OK && json && !json_file) {
		st = diff_write_json(stdout, &r, &wo);
	} else if (st == BT_OK && text_out) {
		paged = pager && diff_pager_start();
		st = diff_write_text(stdout, &r, &wo);
	}
	if (st == BT_OK && fflush(stdout) != 0)
		st = BT_ERR_IO;
	if (paged) {
		if (st == BT_ERR_IO && errno == EPIPE)
			st = BT_OK; /* the pager was quit before the end */
		diff_pager_end();
	}
	differs = st == BT_OK && diff_result_differs(&r);
	diff_result_fini(&r);
err_free_sides:
	diff_side_free(jo.side);
	diff_side_free(jn.side);
	if (st == BT_OK)
		return differs ? 1 : 0;
	return st == BT_ERR_NOTFOUND ? BT_EXIT_USAGE : bt_status_exit(st);
}
