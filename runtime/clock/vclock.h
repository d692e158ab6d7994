/*
 * Virtual time and timers for the device models.
 *
 * vclock_now_ns() is the guest's notion of elapsed time in nanoseconds since
 * the clock was created.  It comes from a source: CLOCK_MONOTONIC by default,
 * or a manual source that only moves when vclock_advance()/vclock_set() is
 * called (deterministic unit tests, replay).
 *
 * Timers are caller-owned (embedded in the device), armed with an absolute
 * virtual deadline.  The clock never calls back on its own: the runtime's
 * main loop asks vclock_next_deadline() to arm its host timer (timerfd) and
 * calls vclock_run_expired() on the vCPU thread when it fires or whenever
 * it regains control.  Everything here runs on the vCPU thread.
 *
 * Timer states: IDLE -> ARMED [vclock_timer_arm] -> IDLE [vclock_timer_cancel,
 * or vclock_run_expired just before it calls the callback, which may re-arm].
 */
#ifndef BT_RUNTIME_CLOCK_VCLOCK_H
#define BT_RUNTIME_CLOCK_VCLOCK_H

#include "pretrans/base/status.h"

#include <stdbool.h>
#include <stdint.h>

#define VCLOCK_NS_PER_SEC 1000000000ull
#define VCLOCK_NEVER	  UINT64_MAX

struct vclock;

/* deadline is the time the timer was armed for (<= now); periodic devices
 * compute their next deadline from it so that they do not drift. */
typedef void vclock_timer_fn(void *opaque, uint64_t deadline);

struct vclock_timer {
	/* private: managed by vclock_timer_* */
	struct vclock *clock;
	vclock_timer_fn *fn;
	void *opaque;
	uint64_t deadline;
	bool armed;
	struct vclock_timer *next;
};

/* A clock reading CLOCK_MONOTONIC; virtual time 0 is now. */
enum bt_status vclock_create(struct vclock **out);
/* A clock that starts at start_ns and moves only by vclock_advance/set. */
enum bt_status vclock_create_manual(uint64_t start_ns, struct vclock **out);
/* Timers still armed are disarmed (their owners must not use them after). */
void vclock_destroy(struct vclock *clock);

uint64_t vclock_now_ns(struct vclock *clock);
bool vclock_is_manual(const struct vclock *clock);
/* Manual clocks only: every read returns the time, then moves it on by
 * step_ns (0, the default: only vclock_advance/set move it).  A clock that
 * moves between two reads inside one device access, as a loaded host's does
 * when it deschedules the VMM there (unit tests of such races). */
enum bt_status vclock_set_read_step(struct vclock *clock, uint64_t step_ns);
/* Manual clocks only (BT_ERR_INVALID otherwise; set cannot go backwards). */
enum bt_status vclock_advance(struct vclock *clock, uint64_t delta_ns);
enum bt_status vclock_set(struct vclock *clock, uint64_t now_ns);

void vclock_timer_init(struct vclock_timer *t, struct vclock *clock, vclock_timer_fn *fn,
		       void *opaque);
/* Arm (or re-arm) for absolute virtual time deadline_ns. */
void vclock_timer_arm(struct vclock_timer *t, uint64_t deadline_ns);
void vclock_timer_cancel(struct vclock_timer *t);
bool vclock_timer_armed(const struct vclock_timer *t);

/* Earliest armed deadline, VCLOCK_NEVER when no timer is armed. */
uint64_t vclock_next_deadline(const struct vclock *clock);
/* Run every timer whose deadline is <= now, earliest first, including ones
 * re-armed by callbacks for a time that is already past.  Returns the number
 * of callbacks run (at most 4096 per call, so a misbehaving device cannot
 * hang the loop; the rest run on the next call). */
unsigned vclock_run_expired(struct vclock *clock);

/* Convenience for manual clocks: advance to target_ns, stopping at each
 * deadline on the way so that callbacks see time pass in order. */
enum bt_status vclock_run_until(struct vclock *clock, uint64_t target_ns);

#endif
