/*
 * Synthetic "kernel" for the pretrans diff tests, part B: a second source
 * file with a static helper() of the same name as part A's, and calls and
 * data references across the two files.
 */
#include "guests/diffpair/diffpair.h"

static unsigned long b_counter;

static NOINLINE int helper(int x)
{
	return x * 5 - 2;
}

NOINLINE int b_entry(int x)
{
	b_counter += (unsigned long)x;
	log_msg("b_entry\n");
	return helper(x) + add3(x, 1, 2) + (int)dp_table[x & 7];
}
