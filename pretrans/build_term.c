/*
 * The build's two contacts with the terminal: the progress bar on stderr
 * and the poll for a signal the user sent (SIGINT, SIGTERM, SIGHUP, which
 * the caller blocked so the writer can abandon the build cleanly).
 */
#include "pretrans/build_int.h"

#include <signal.h>
#include <stdio.h>

void pbuild_progress(size_t done, size_t total, size_t round)
{
	static const char bar[] = "########################################";
	int width = 40;
	int fill = total ? (int)((double)done / (double)total * width) : width;
	fprintf(stderr, "\r  round %zu [%-40.*s] %3d%% %zu/%zu regions", round + 1, fill, bar,
		total ? (int)(100.0 * (double)done / (double)total) : 100, done, total);
}

int pbuild_pending_signal(void)
{
	sigset_t set;
	if (sigpending(&set) != 0)
		return 0;
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < BT_ARRAY_SIZE(sigs); i++)
		if (sigismember(&set, sigs[i]))
			return sigs[i];
	return 0;
}
