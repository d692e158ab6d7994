/*
 * The one host clock helper of the tree (style rule 16): monotonic
 * nanoseconds for durations, progress and timeouts.  The translator never
 * calls it (its output must not depend on time, rule 10).  Guest-visible
 * wall-clock time (the RTC) reads CLOCK_REALTIME on purpose and is not
 * this helper's business.
 */
#ifndef BT_BASE_CLOCK_H
#define BT_BASE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bt_now_ns(void);

#endif
