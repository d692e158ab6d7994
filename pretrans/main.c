/*
 * pretrans: the offline pre-translation tool.  Owns the command line: parses
 * it, runs one command, maps the status to a documented exit code.
 * Commands and exit codes: docs/pretrans.md (and `pretrans --help`).
 */
#include "pretrans/build.h"
#include "pretrans/cmds.h"
#include "pretrans/diff/diff.h"
#include "pretrans/xlat/xlat_facts.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/base/text.h"

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
    "        [--modules DIR|FILE.ko ...]\n"
    "                          translate IMAGE's code (and its modules') into a new database\n"
    "  stats DB [--json]       coverage, block and exit counts, refusals\n"
    "  show DB FUNCTION|ADDR [--guest] [-M intel|att] [--image IMAGE]\n"
    "                          a function's guest code and its translation\n"
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
    "                        [--modules DIR|FILE.ko ...]\n"
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
    "                     guest bytes are unchanged, and instantiate OLD's template\n"
    "                     of a block of a function that moved when its bytes are\n"
    "                     equal outside the address fields, instead of translating\n"
    "                     it; the output is identical to a full build.  OLD must\n"
    "                     come from the same translator, vCPU ABI and options and\n"
    "                     hold block templates (else exit 2)\n"
    "  --modules DIR|FILE also store the loadable modules of IMAGE as relocatable\n"
    "                     templates (docs/kmod.md): DIR is a lib/modules/RELEASE tree\n"
    "                     (every .ko, .ko.xz, .ko.zst under it), FILE one module;\n"
    "                     repeatable.  A module of another release is reported and\n"
    "                     skipped; a file that is not a module fails the build\n"
    "SOURCE_DATE_EPOCH, when set, is the creation time stored in provenance.\n";

static const char usage_stats[] = "usage: pretrans stats DB [--json]\n"
				  "\n"
				  "Function-byte coverage per section, blocks and exits by kind,\n"
				  "untranslated bytes by refusal reason.\n";

static const char usage_show[] =
    "usage: pretrans show DB FUNCTION|0xADDR [--guest] [-M intel|att] [--image IMAGE]\n"
    "\n"
    "One function of DB as objdump lists it, each guest instruction followed by\n"
    "its translation, block by block, with the exits.  Branch targets are named\n"
    "<symbol+0x12> from the image's symbol table; translated code reaches the\n"
    "vCPU through %gs, printed as its fields (%gs:vcpu.irq).\n"
    "FUNCTION: a symbol, an alias of one (memcpy for __memcpy), NAME@FILE for a\n"
    "static function (NAME@FILE#K for the K-th of equal ones, as `pretrans diff`\n"
    "prints keys); an ambiguous name lists the candidates (exit 2).\n"
    "  -g, --guest        the guest instructions only, as `objdump -d` prints them\n"
    "  -M intel|att       instruction syntax (default intel, as pretrans diff)\n"
    "  --image IMAGE      the image DB was built from (default: the path DB\n"
    "                     records); identified by its build-id, else SHA-256\n";

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
	/* the undefined-flags rule when this CPU holds it (btvm refuses the
	 * database on a CPU that does not: docs/xlat.md "Flag liveness") */
	if (xlat_host_undef_flags_ok())
		o.xlat_flags |= XLAT_OPT_UNDEF_FLAGS;
	static const struct option lo[] = {
	    {"output", required_argument, NULL, 'o'},  {"jobs", required_argument, NULL, 'j'},
	    {"no-crosscheck", no_argument, NULL, 'X'}, {"reuse", required_argument, NULL, 'R'},
	    {"modules", required_argument, NULL, 'M'}, {NULL, 0, NULL, 0}};
	const char **mods = calloc((size_t)argc + 1, sizeof(*mods));
	if (!mods)
		return 3;
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
		case 'M':
			mods[o.n_modules++] = optarg;
			break;
		default:
			free(mods);
			return bt_cli_bad_option(c, argc, argv, optind, optopt);
		}
	}
	o.modules = mods;
	if (optind != argc - 1 || !o.out_path) {
		free(mods);
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
	free(mods);
	if (s != BT_OK)
		return st.signal ? 128 + st.signal : pretrans_exit_code(s);
	double secs = (double)(t1 - t0) * 1e-9;
	/* a share of nothing is not 100% */
	char share[16] = "none found";
	if (st.func_bytes)
		snprintf(share, sizeof(share), "%.2f%%",
			 100.0 * (double)st.covered_bytes / (double)st.func_bytes);
	fprintf(stderr,
		"pretrans: %s -> %s: %s functions, %s seed regions, %s blocks (%s refused regions) "
		"in %.2f s (%zu rounds, %d jobs); function bytes %s, translated %s (%s), "
		"refused %s\n",
		o.image_path, o.out_path, BT_N(st.n_funcs), BT_N(st.n_seeds), BT_N(st.n_blocks),
		BT_N(st.n_refused), secs, st.n_rounds, o.jobs, BT_N(st.func_bytes),
		BT_N(st.covered_bytes), share, BT_N(st.refused_bytes));
	if (o.n_modules) {
		size_t tried = st.n_mod_templates + st.n_mod_not_reloc;
		char rel[32] = "no blocks";
		if (tried)
			snprintf(rel, sizeof(rel), "%.2f%% relocatable",
				 100.0 * (double)st.n_mod_templates / (double)tried);
		fprintf(
		    stderr,
		    "pretrans: modules: %s stored, %s of another release skipped, in %.2f s; %s "
		    "templates (%s; %s not relocatable, %s refused starts), guest %s bytes, "
		    "host %s bytes, packs %s bytes before compression, fingerprint index %s "
		    "bytes; %s patch sites predicted\n",
		    BT_N(st.n_modules), BT_N(st.n_mod_skipped), st.mod_secs,
		    BT_N(st.n_mod_templates), rel, BT_N(st.n_mod_not_reloc), BT_N(st.n_mod_refused),
		    BT_N(st.mod_guest_bytes), BT_N(st.mod_host_bytes), BT_N(st.mod_pack_bytes),
		    BT_N(st.mod_index_bytes), BT_N(st.n_mod_patched));
	}
	if (o.reuse_path)
		fprintf(
		    stderr,
		    "pretrans: reuse %s: %s old blocks (indexed in %.2f s), %s blocks reused (%s "
		    "of them moved: %s functions paired at a new address or size, %s templates "
		    "refused), %s "
		    "translated (%.1f%% reused), %s chunks inflated, %s copied\n",
		    o.reuse_path, BT_N(st.n_reuse_old), st.reuse_load_secs, BT_N(st.n_reused),
		    BT_N(st.n_reused_moved), BT_N(st.n_reuse_mapped), BT_N(st.n_moved_refused),
		    BT_N(st.n_translated),
		    st.n_reused + st.n_translated
			? 100.0 * (double)st.n_reused / (double)(st.n_reused + st.n_translated)
			: 0.0,
		    BT_N(st.n_chunks_loaded), BT_N(st.n_chunks_copied));
	if (o.reuse_path && st.n_pred_reused + st.n_pred_translated)
		fprintf(stderr,
			"pretrans: reuse %s: predicted-patching versions: %s from OLD's templates, "
			"%s translated\n",
			o.reuse_path, BT_N(st.n_pred_reused), BT_N(st.n_pred_translated));
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
