/*
 * ptdiff: the `pretrans diff` subcommand as a program of its own, so the
 * diff can be built and tested independently of the pretrans front end.
 */
#include "pretrans/diff/diff.h"

int main(int argc, char **argv)
{
	return diff_main(argc, argv);
}
