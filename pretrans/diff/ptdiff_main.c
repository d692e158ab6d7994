/*
 * ptdiff: the `pretrans diff` subcommand as a program of its own, so the
 * diff can be built and tested independently of the pretrans front end.
 */
#include "pretrans/diff/diff.h"
#include "pretrans/xlat/xlat.h"
#include "pretrans/base/log.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	bt_log_progname("ptdiff");
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("ptdiff 0.1 (translator v%d, vCPU ABI v%d, JSON schema %s)\n", XLAT_VERSION,
		       VCPU_ABI_VERSION, DIFF_JSON_SCHEMA);
		return 0;
	}
	return diff_main(argc, argv);
}
