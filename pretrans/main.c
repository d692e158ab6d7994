/*
 * pretrans: the offline pre-translation tool.  Owns the command line: parses
 * it, runs one command, maps the status to a documented exit code.
 * Commands and exit codes: docs/pretrans.md (and `pretrans --help`).
 */
#include "pretrans/build.h"
#include "pretrans/cmds.h"
#include "pretrans/diff/diff.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_main[] =
    "usage: pretrans COMMAND [ARGS]\n"
    "\n"
    "  build IMAGE -o OUT.tcdb [--jobs N] [--no-crosscheck] [--reuse OLD.tcdb]\n"
    "                          translate IMAGE's code into a new database\n"
    "  stats DB [--json]       coverage, block and exit counts, refusals\n"
    "  show DB SYMBOL|ADDR [--image IMAGE]\n"
    "                          guest and translated listings of a function\n"
    "  verify DB IMAGE [--sample N | --sign]\n"
    "                          check stored blocks against IMAGE and re-translate\n"
    "                          (--sign: then sign DB with your key)\n"
    "  xcheck IMAGE            cross-check the Zydis and LLVM decoders on all code\n"
    "  kpatch IMAGE [--check DB]\n"
    "                          predict a Linux image's boot-time patching (--check:\n"
    "                          against the boot profile of a --learn boot in DB)\n"
    "  diff OLD NEW [...]      compare two kernel builds function by function\n"
    "                          (docs/diff.md; `pretrans diff --help`)\n"
    "\n"
    "  pretrans COMMAND --help   help on one command\n"
    "  pretrans --version\n"
    "\n"
    "Logging: BT_LOG=sub[,sub]:level (e.g. BT_LOG=all:debug), messages on stderr.\n"
    "Errors are one line `pretrans: error: ...` on stderr (docs/cli.md).\n"
    "Exit codes: 0 ok, 2 bad usage (the option is named) or bad input (malformed,\n"
    "unsupported or mismatched image or database), 3 internal error, 4 I/O error,\n"
    "5 verify found mismatches, 128+N build interrupted by signal N (the previous output is left "
    "unchanged).\n";

static const char usage_build[] =
    "usage: pretrans build IMAGE -o OUT.tcdb [--jobs N] [--no-crosscheck] [--reuse OLD.tcdb]\n"
    "\n"
    "Finds the code of the x86-64 ELF IMAGE (function symbols, entry point, call\n"
    "targets, exception-table fixups) and translates it into OUT.tcdb.  The file\n"
    "is written as OUT.tcdb.tmp-XXXXXX and renamed at the end: a failed build\n"
    "leaves an existing OUT.tcdb untouched.\n"
    "  -o, --output OUT   the database to write\n"
    "  -j, --jobs N       translation threads (default: number of CPUs); the\n"
    "                     output is byte-identical for every N\n"
    "  --no-crosscheck    do not refuse blocks the LLVM decoder disagrees on\n"
    "  --reuse OLD.tcdb   copy OLD's translation of every block whose address and\n"
    "                     guest bytes are unchanged instead of translating it; the\n"
    "                     output is identical to a full build.  OLD must come from\n"
    "                     the same translator, vCPU ABI and options (else exit 2)\n"
    "SOURCE_DATE_EPOCH, when set, is the creation time stored in provenance.\n";

static const char usage_stats[] = "usage: pretrans stats DB [--json]\n"
				  "\n"
				  "Function-byte coverage per section, blocks and exits by kind,\n"
				  "untranslated bytes by refusal reason.\n";

static const char usage_show[] =
    "usage: pretrans show DB SYMBOL|ADDR [--image IMAGE]\n"
    "\n"
    "The guest listing and the translated listing of every block of a function\n"
    "(by name or hex address), side by side, with the exits.  IMAGE defaults to\n"
    "the path recorded in DB; it must be the image DB was built from.\n";

static const char usage_verify[] =
    "usage: pretrans verify DB IMAGE [--sample N | --sign]\n"
    "\n"
    "Checks that every stored block's guest-bytes hash matches IMAGE and that\n"
    "re-translating it reproduces identical host code, exits and pc map (all\n"
    "blocks, or about N evenly spaced ones).  Exit 5 on any mismatch.\n"
    "--sign: for a database written with another key (another user or machine):\n"
    "check every block, and only if all are identical sign DB with your key\n"
    "($XDG_CONFIG_HOME/btkern/db.key) so that btvm and pretrans accept it.\n";

static const char usage_kpatch[] =
    "usage: pretrans kpatch IMAGE [--check DB] [-v]\n"
    "\n"
    "Predicts how the Linux image patches its own text at boot for btvm's vCPU\n"
    "(alternatives, retpolines, return thunks, paravirt, static calls, ftrace\n"
    "NOPs, uniprocessor lock prefixes) and prints the sites per kind.  --check DB:\n"
    "compares every block version DB's boot profile (written by `btvm --learn`)\n"
    "holds with the image's bytes and the predicted bytes (docs/pretrans.md\n"
    "\"Boot-time patching\").\n";

static const char usage_xcheck[] =
    "usage: pretrans xcheck IMAGE\n"
    "\n"
    "Decodes every instruction the discovery reaches with both Zydis and LLVM\n"
    "MC, and counts and explains where they disagree.\n";

static int cmd_build(int argc, char **argv)
{
	if (pretrans_want_help(argc, argv))
		return pretrans_usage(usage_build, false);
	struct pbuild_options o = {.jobs = (int)sysconf(_SC_NPROCESSORS_ONLN),
				   .xlat_flags = XLAT_OPT_CROSSCHECK | XLAT_OPT_EXACT_FAULTS};
	static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
					   {"jobs", required_argument, NULL, 'j'},
					   {"no-crosscheck", no_argument, NULL, 'X'},
					   {"reuse", required_argument, NULL, 'R'},
					   {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:j:", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			o.out_path = optarg;
			break;
		case 'j': {
			char *end;
			long j = strtol(optarg, &end, 10);
			if (*end || j < 1 || j > 256) {
				return bt_cli_usage("build: --jobs wants a number 1..256, got '%s'",
						    optarg);
			}
			o.jobs = (int)j;
			break;
		}
		case 'X':
			o.xlat_flags &= ~(uint32_t)XLAT_OPT_CROSSCHECK;
			break;
		case 'R':
			o.reuse_path = optarg;
			break;
		default:
			return bt_cli_bad_option(c, argc, argv, optind, optopt);
		}
	}
	if (optind != argc - 1 || !o.out_path) {
		return bt_cli_usage("build: need one IMAGE and -o OUT.tcdb");
	}
	if (o.jobs < 1)
		o.jobs = 1;
	o.image_path = argv[optind];
	o.progress = isatty(2);
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	o.created = sde ? strtoll(sde, NULL, 10) : (int64_t)time(NULL);
	/* Ctrl-C and friends: the build notices them between regions and drops
	 * its temporary file, leaving any previous OUT as it was. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	o.watch_signals = true;
	struct pbuild_stats st;
	uint64_t t0 = bt_now_ns();
	enum bt_status s = pbuild_run(&o, &st);
	uint64_t t1 = bt_now_ns();
	if (s != BT_OK)
		return st.signal ? 128 + st.signal : pretrans_exit_code(s);
	double secs = (double)(t1 - t0) * 1e-9;
	fprintf(stderr,
		"pretrans: %s -> %s: %zu functions, %zu seed regions, %zu blocks (%zu refused "
		"regions) in %.2f s (%zu rounds, %d jobs); function bytes %llu, translated %llu "
		"(%.2f%%), refused %llu\n",
		o.image_path, o.out_path, st.n_funcs, st.n_seeds, st.n_blocks, st.n_refused, secs,
		st.n_rounds, o.jobs, (unsigned long long)st.func_bytes,
		(unsigned long long)st.covered_bytes,
		st.func_bytes ? 100.0 * (double)st.covered_bytes / (double)st.func_bytes : 100.0,
		(unsigned long long)st.refused_bytes);
	if (o.reuse_path)
		fprintf(
		    stderr,
		    "pretrans: reuse %s: %zu old blocks (indexed in %.2f s), %zu blocks reused, "
		    "%zu translated (%.1f%% reused), %zu chunks inflated, %zu copied\n",
		    o.reuse_path, st.n_reuse_old, st.reuse_load_secs, st.n_reused, st.n_translated,
		    st.n_reused + st.n_translated
			? 100.0 * (double)st.n_reused / (double)(st.n_reused + st.n_translated)
			: 0.0,
		    st.n_chunks_loaded, st.n_chunks_copied);
	return 0;
}

int main(int argc, char **argv)
{
	bt_log_progname("pretrans");
	const char *spec = getenv("BT_LOG");
	if (spec && bt_log_configure(spec) != 0)
		bt_cli_warn("ignoring bad BT_LOG '%s'", spec);
	if (argc < 2)
		return pretrans_usage(usage_main, true);
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
		return pretrans_usage(usage_main, false);
	if (!strcmp(cmd, "--version")) {
		printf("%s (translator v%d, vCPU ABI v%d, database schema v%d)\n",
		       PRETRANS_TOOL_VERSION, XLAT_VERSION, VCPU_ABI_VERSION, TCDB_SCHEMA_VERSION);
		return 0;
	}
	argc--;
	argv++;
	if (!strcmp(cmd, "build"))
		return cmd_build(argc, argv);
	if (!strcmp(cmd, "stats"))
		return pretrans_want_help(argc, argv) ? pretrans_usage(usage_stats, false)
						      : cmd_stats(argc, argv);
	if (!strcmp(cmd, "show"))
		return pretrans_want_help(argc, argv) ? pretrans_usage(usage_show, false)
						      : cmd_show(argc, argv);
	if (!strcmp(cmd, "verify"))
		return pretrans_want_help(argc, argv) ? pretrans_usage(usage_verify, false)
						      : cmd_verify(argc, argv);
	if (!strcmp(cmd, "xcheck"))
		return pretrans_want_help(argc, argv) ? pretrans_usage(usage_xcheck, false)
						      : cmd_xcheck(argc, argv);
	if (!strcmp(cmd, "kpatch"))
		return pretrans_want_help(argc, argv) ? pretrans_usage(usage_kpatch, false)
						      : cmd_kpatch(argc, argv);
	if (!strcmp(cmd, "diff")) /* owned by pretrans/diff (diff_main) */
		return diff_main(argc, argv);
	return bt_cli_usage("unknown command '%s'", cmd);
}
