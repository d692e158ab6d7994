/*
 * Spare stubs started ahead of need: a guest address space that needs a new
 * stub takes one instead of waiting for fork + exec + set-up
 * (docs/user-direct.md, "A pool of stubs").  Spares are started only while
 * the vCPU would otherwise sleep (hlt), one per sleep long enough, so they
 * cost no guest time.
 *
 * Invariants
 *  1. A spare is a stub stopped at its ready int3 (ustub_spawn): it never
 *     ran guest code and maps nothing of the guest.
 *  2. u->n_spare <= cfg.pool, and live stubs (address spaces + spares)
 *     never exceed cfg.max_stubs.
 *  3. user_pool_fini kills every spare by its pid and reaps it: no stub
 *     outlives the VM (PTRACE_O_EXITKILL also kills them if btvm dies).
 *
 *   (none) --user_idle--> SPARE --user_pool_take--> an address space's stub
 *   SPARE --user_pool_fini--> DEAD
 */
#include <string.h>

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "runtime/user/user_int.h"

bool user_idle(struct user_mode *u, uint64_t ns)
{
	if (!u || u->n_spare >= (unsigned)BT_MAX(u->cfg.pool, 0) || ns < USER_POOL_IDLE_NS ||
	    u->n_as + u->n_spare >= u->cfg.max_stubs)
		return false;
	uint64_t t0 = bt_now_ns();
	if (ustub_spawn(u->image_fd, guestmem_fd(u->cfg.gm), &u->sst, &u->spare[u->n_spare]) !=
	    BT_OK) {
		bt_warn(LOG_USER, "cannot start a spare user stub: no pool from now on");
		u->cfg.pool = 0;
		return false;
	}
	u->n_spare++;
	u->st.pool_spawned++;
	u->st.ns_pool += bt_now_ns() - t0;
	return true;
}

bool user_pool_take(struct user_mode *u, struct ustub *out)
{
	while (u->n_spare) {
		struct ustub *s = &u->spare[--u->n_spare];
		if (s->pid <= 0)
			continue; /* died while waiting (killed from outside) */
		*out = *s;
		memset(s, 0, sizeof(*s));
		u->st.pool_taken++;
		return true;
	}
	return false;
}

void user_pool_fini(struct user_mode *u)
{
	while (u->n_spare)
		ustub_kill(&u->spare[--u->n_spare]);
}

unsigned user_pool_pids(const struct user_mode *u, pid_t *pids, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < u->n_spare && n < max; i++)
		pids[n++] = u->spare[i].pid;
	return n;
}
