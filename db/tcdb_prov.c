/*
 * The provenance of translations made by this build of the translator.
 * Kept apart from tcdb.c so that readers of a database do not pull in the
 * translator library.
 */
#include "db/tcdb.h"

#include <string.h>

void tcdb_provenance_current(const struct xlat_options *opts, struct tcdb_provenance *out)
{
	memset(out, 0, sizeof(*out));
	out->xlat_version = XLAT_VERSION;
	out->abi_version = VCPU_ABI_VERSION;
	out->options_hash = xlat_options_hash(opts);
	out->options_flags = opts->flags;
}
