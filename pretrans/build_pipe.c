/*
 * The build's threads: a pool of workers walking units of regions, and the
 * writer (the calling thread) writing their results into the database in
 * region order.
 *
 * Concurrency
 *  - Units of consecutive regions are handed out through pp->next under
 *    pp->mu; each worker owns one xlat context and one discovery walker,
 *    fills the result slots of the unit it took and packs the unit's chunk.
 *  - The writer consumes slots strictly in region order, waiting on pp->cv;
 *    a worker does not start region i while i >= written + PBUILD_WINDOW,
 *    which bounds memory.
 * Invariant: the sequence of tcdb_add_* calls depends only on the image,
 * the plan and the translator options, never on the thread count or timing.
 */
#include "pretrans/build_int.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_NS 100000000ull /* redraw the progress bar at most every 0.1 s */

static void *worker(void *arg)
{
	struct pbuild_pipe *pp = arg;
	struct xlat_ctx *ctx = NULL;
	struct discover_walker *w = NULL;
	struct reuse_worker *rw = NULL;
	enum bt_status s = xlat_create(&pp->xo, &ctx);
	if (s == BT_OK)
		s = discover_walker_create(&w);
	if (s == BT_OK)
		s = reuse_worker_create(pp->reuse, &rw);
	if (s == BT_OK) /* translate, record templates, and with --reuse copy */
		discover_walker_set_translate(w, reuse_translate, rw);
	if (s != BT_OK) {
		pthread_mutex_lock(&pp->mu);
		pp->err = s;
		pp->stop = true;
		pthread_cond_broadcast(&pp->cv);
		pthread_mutex_unlock(&pp->mu);
		goto out_destroy;
	}
	pthread_mutex_lock(&pp->mu);
	for (;;) {
		while (!pp->stop && pp->next < pp->to && pp->next >= pp->written + PBUILD_WINDOW)
			pthread_cond_wait(&pp->cv, &pp->mu);
		if (pp->stop || pp->next >= pp->to)
			break;
		size_t i = pp->next, end = pp->slots[i].unit_end;
		pp->next = end;
		pthread_mutex_unlock(&pp->mu);
		s = BT_OK;
		for (size_t k = i; k < end && s == BT_OK; k++) {
			s = discover_walk(w, ctx, pp->img, pp->plan, &pp->plan->f[pp->order[k]],
					  &pp->slots[k].res);
			if (s == BT_OK)
				s = reuse_worker_take(rw, &pp->slots[k].tmpls);
		}
		if (s == BT_OK)
			s = pbuild_pack_unit(pp, &pp->slots[i], end - i);
		for (size_t k = i; k < end; k++)
			pp->slots[k].res.status = s;
		pthread_mutex_lock(&pp->mu);
		for (size_t k = i; k < end; k++)
			pp->slots[k].state = SLOT_DONE;
		pthread_cond_broadcast(&pp->cv);
	}
	pthread_mutex_unlock(&pp->mu);
out_destroy:
	reuse_worker_destroy(rw);
	discover_walker_destroy(w);
	xlat_destroy(ctx);
	return NULL;
}

/* Group the round's regions into units (sets slots[].unit_end of leaders). */
static void plan_units(struct pbuild_pipe *pp)
{
	for (size_t i = 0; i < pp->to;) {
		size_t end = i;
		uint64_t bytes = 0;
		while (end < pp->to && end - i < PBUILD_UNIT_REGIONS && bytes < PBUILD_UNIT_BYTES) {
			const struct discover_func *f = &pp->plan->f[pp->order[end]];
			bytes +=
			    f->kind == DISCOVER_SEED ? PBUILD_UNIT_BYTES / 4 : f->end - f->start;
			end++;
		}
		pp->slots[i].unit_end = end;
		i = end;
	}
}

/* Writer: store slot i (its unit's chunk first when it leads a unit) and
 * keep its call targets for the next round's seeds. */
static enum bt_status write_slot(struct pbuild_pipe *pp, size_t i, struct tcdb *db,
				 struct pbuild_stats *st)
{
	struct pbuild_slot *sl = &pp->slots[i];
	enum bt_status s = sl->res.status;
	if (s == BT_OK && sl->unit_end) {
		pp->chunk_id = 0;
		if (sl->chunk.raw_len) {
			s = pbuild_chunk_dict(pp, db, &sl->chunk);
			if (s == BT_OK)
				s = tcdb_add_chunk(db, &sl->chunk, &pp->chunk_id);
			st->chunk_bytes += sl->chunk.z_len;
			st->chunk_raw_bytes += sl->chunk.raw_len;
		}
	}
	if (s == BT_OK)
		s = pbuild_write_region(db, &pp->plan->f[pp->order[i]], &sl->res, pp->chunk_id, st);
	if (s == BT_OK)
		pbuild_predict_note(pp, &sl->res);
	if (s == BT_OK)
		s = reuse_tmpls_move(&pp->tmpls, &sl->tmpls);
	if (s == BT_OK && sl->res.n_calls) {
		if (BT_VEC_RESERVE(pp->calls, pp->cap_calls, pp->n_calls + sl->res.n_calls, 1024)) {
			memcpy(pp->calls + pp->n_calls, sl->res.calls,
			       sl->res.n_calls * sizeof(*pp->calls));
			pp->n_calls += sl->res.n_calls;
		} else {
			s = BT_ERR_NOMEM;
		}
	}
	discover_result_fini(&sl->res);
	tcdb_chunk_fini(&sl->chunk);
	reuse_tmpls_fini(&sl->tmpls);
	return s;
}

enum bt_status pbuild_run_round(struct pbuild_pipe *pp, int jobs, struct tcdb *db,
				struct pbuild_stats *st, bool show, size_t round)
{
	pthread_t *th = calloc((size_t)jobs, sizeof(*th));
	if (!th)
		return BT_ERR_NOMEM;
	pp->next = pp->written = 0;
	pp->stop = false;
	plan_units(pp);
	int started = 0;
	for (; started < jobs; started++)
		if (pthread_create(&th[started], NULL, worker, pp) != 0)
			break;
	enum bt_status s = started ? BT_OK : BT_ERR_INTERNAL;
	uint64_t last = 0;
	for (size_t i = 0; i < pp->to && s == BT_OK; i++) {
		pthread_mutex_lock(&pp->mu);
		while (pp->slots[i].state != SLOT_DONE && !pp->stop)
			pthread_cond_wait(&pp->cv, &pp->mu);
		if (pp->slots[i].state != SLOT_DONE) {
			s = pp->err ? pp->err : BT_ERR_INTERNAL;
			pthread_mutex_unlock(&pp->mu);
			break;
		}
		pthread_mutex_unlock(&pp->mu);
		s = write_slot(pp, i, db, st);
		if (s == BT_OK && pp->watch_signals &&
		    (st->signal = pbuild_pending_signal()) != 0) {
			bt_err(LOG_CORE, "interrupted by signal %d (%s): the output is not written",
			       st->signal, strsignal(st->signal));
			s = BT_ERR_IO;
		}
		pthread_mutex_lock(&pp->mu);
		pp->written = i + 1;
		if (s != BT_OK)
			pp->stop = true;
		pthread_cond_broadcast(&pp->cv);
		pthread_mutex_unlock(&pp->mu);
		if (show) {
			uint64_t t = bt_now_ns();
			if (t - last > PROGRESS_NS || i + 1 == pp->to) {
				pbuild_progress(i + 1, pp->to, round);
				last = t;
			}
		}
	}
	if (s != BT_OK) {
		pthread_mutex_lock(&pp->mu);
		pp->stop = true;
		pthread_cond_broadcast(&pp->cv);
		pthread_mutex_unlock(&pp->mu);
	}
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	free(th);
	if (show)
		fputc('\n', stderr);
	return s;
}
