/*
 * `pretrans build`: the predicted boot-time patching (pretrans/kpatch,
 * docs/pretrans.md "Boot-time patching").  The writer notes every
 * translated block whose guest bytes the predicted patching changes
 * (pbuild_predict_note); after the last round each is translated again
 * (by the build's worker threads, noted in start order) from the patched
 * bytes, at the same start (and once more from the text
 * Linux runs between ftrace_init and the alternatives, when that differs
 * from both), and stored as an extra version in the predicted-patching pack
 * (tcdb_predicted_note/_write), tagged with the CPU profile it was predicted for.  btvm validates
 * such a version by its guest-bytes hash exactly as every database block.
 */
#include "pretrans/build_int.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <stdlib.h>
#include <string.h>

enum bt_status pbuild_predict_open(struct pbuild_pipe *pp)
{
	struct cpuid_host h;
	cpuid_host_read(&h);
	cpuid_profile_make(&pp->cpu, &h, 0);
	struct kp_config cfg = {
	    .cpu = &pp->cpu, .ncpus = 1, .mitigations_off = true, .preempt = KP_PREEMPT_VOLUNTARY};
	enum bt_status s = kp_predict(pp->img, &cfg, &pp->kp);
	if (s == BT_ERR_NOTFOUND)
		return BT_OK; /* not a Linux image: nothing patches itself */
	if (s == BT_OK) {
		const struct kp_stats *ks = kp_get_stats(pp->kp);
		for (int k = 1; k < KP_NKINDS; k++)
			bt_info(LOG_CORE,
				"predicted patching: %-12s %6zu sites, %6zu patched, %zu skipped",
				kp_kind_name((enum kp_kind)k), ks->sites[k], ks->patched[k],
				ks->skipped[k]);
	}
	return s;
}

void pbuild_predict_note(struct pbuild_pipe *pp, const struct discover_result *r)
{
	if (!pp->kp || pp->pred_err)
		return;
	for (size_t i = 0; i < r->n; i++) {
		const struct discover_block *b = &r->b[i];
		if (b->blk.refusal || !kp_changed(pp->kp, b->blk.guest_start, b->blk.guest_len))
			continue;
		if (!BT_VEC_RESERVE(pp->pred, pp->cap_pred, pp->n_pred + 1, 4096)) {
			pp->pred_err = BT_ERR_NOMEM;
			return;
		}
		pp->pred[pp->n_pred++] = b->blk.guest_start;
	}
}

static size_t kp_src_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	return kp_read(opaque, va, buf, len);
}

static size_t kp_src_read_early(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	return kp_read_early(opaque, va, buf, len);
}

/* The guest bytes of xb are the image's own (no version to add). */
static bool unpatched(const struct pbuild_pipe *pp, const struct bt_block *xb)
{
	uint8_t b[4096];
	return xb->guest_len <= sizeof(b) &&
	       elfimg_read(pp->img, xb->guest_start, b, xb->guest_len) == BT_OK &&
	       xlat_hash_bytes(b, xb->guest_len) == xb->guest_hash;
}

static int gva_cmp(const void *a, const void *b)
{
	gva_t x = *(const gva_t *)a, y = *(const gva_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * The versions are translated by `jobs` threads and noted by the calling
 * thread (the writer) in start order, as the build's rounds are
 * (build_pipe.c): batches of at most PRED_BATCH consecutive starts (at
 * least eight per thread, so that a small image is split too) are handed out
 * under pr->mu, each worker owns one xlat context and one reuse worker and
 * copies what it translated into its batch; the writer notes batch k's
 * versions and appends its templates only after batch k-1's, so the
 * predicted pack and its templates are the same for every thread count.  A
 * worker does not start batch k while k >= written + PRED_WINDOW (bounds
 * the copies held in memory).
 */
#define PRED_BATCH  256 /* at most; fewer when there are few starts */
#define PRED_WINDOW 128

/* A version to note: xb's code and pc map are at code_at / pcmap_at in the
 * batch's buf until the writer points xb at them. */
struct pred_out {
	struct bt_block xb;
	size_t code_at, pcmap_at;
	bool early; /* the text before the alternatives */
};

struct pred_batch {
	size_t lo, hi; /* pp->pred[lo, hi) */
	struct pred_out *out;
	size_t n_out, cap_out;
	uint8_t *buf;
	size_t len, cap;
	struct reuse_tmpls tmpls; /* recorded while translating the batch */
	size_t refused;
	enum bt_status status;
	int state; /* enum pbuild_slot_state, under pred_run.mu */
};

struct pred_run {
	struct pbuild_pipe *pp;
	struct pred_batch *b;
	size_t nb;
	/* under mu */
	size_t next, written;
	bool stop;
	enum bt_status err;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* Copy xb (its storage is the context's until the next translation). */
static enum bt_status keep(struct pred_batch *b, const struct bt_block *xb, bool early)
{
	if (!BT_VEC_RESERVE(b->out, b->cap_out, b->n_out + 1, 64) ||
	    !BT_VEC_RESERVE(b->buf, b->cap, b->len + xb->code_len + xb->pcmap_len, 1u << 16))
		return BT_ERR_NOMEM;
	struct pred_out *o = &b->out[b->n_out++];
	o->xb = *xb;
	o->xb.code = o->xb.pcmap = NULL;
	o->early = early;
	o->code_at = b->len;
	memcpy(b->buf + b->len, xb->code, xb->code_len);
	b->len += xb->code_len;
	o->pcmap_at = b->len;
	memcpy(b->buf + b->len, xb->pcmap, xb->pcmap_len);
	b->len += xb->pcmap_len;
	return BT_OK;
}

/* Translate the versions of the starts of batch b. */
static enum bt_status translate_batch(struct pbuild_pipe *pp, struct xlat_ctx *x,
				      struct reuse_worker *rw, struct pred_batch *b)
{
	struct xlat_source src = {kp_src_read, pp->kp}, early = {kp_src_read_early, pp->kp};
	enum bt_status s = BT_OK;
	for (size_t i = b->lo; i < b->hi && s == BT_OK; i++) {
		gva_t va = pp->pred[i];
		struct bt_block xb;
		if ((s = reuse_translate_predicted(rw, x, &src, va, &xb)) != BT_OK)
			break;
		if (xb.refusal != XLAT_OK || xb.code_len == 0) {
			b->refused++;
			continue;
		}
		uint64_t final_hash = xb.guest_hash;
		uint32_t final_len = xb.guest_len;
		if ((s = keep(b, &xb, false)) != BT_OK)
			break;
		/* the same start as Linux runs it between ftrace_init and the
		 * alternatives, when that is yet another version (a cheap look
		 * first: the early bytes over the final block's range) */
		uint8_t e[4096], f[4096], o[4096];
		if (final_len > sizeof(e) || kp_read_early(pp->kp, va, e, final_len) != final_len ||
		    kp_read(pp->kp, va, f, final_len) != final_len ||
		    elfimg_read(pp->img, va, o, final_len) != BT_OK || !memcmp(e, f, final_len) ||
		    !memcmp(e, o, final_len))
			continue;
		if ((s = reuse_translate_predicted(rw, x, &early, va, &xb)) != BT_OK)
			break;
		if (xb.refusal != XLAT_OK || xb.code_len == 0 || xb.guest_hash == final_hash ||
		    unpatched(pp, &xb))
			continue;
		s = keep(b, &xb, true);
	}
	return s == BT_OK ? reuse_worker_take(rw, &b->tmpls) : s;
}

static void run_fail(struct pred_run *pr, enum bt_status s)
{
	pthread_mutex_lock(&pr->mu);
	if (!pr->err)
		pr->err = s;
	pr->stop = true;
	pthread_cond_broadcast(&pr->cv);
	pthread_mutex_unlock(&pr->mu);
}

static void *pred_worker(void *arg)
{
	struct pred_run *pr = arg;
	struct xlat_ctx *x = NULL;
	struct reuse_worker *rw = NULL;
	enum bt_status s = xlat_create(&pr->pp->xo, &x);
	if (s == BT_OK)
		s = reuse_worker_create(pr->pp->reuse, &rw);
	if (s != BT_OK) {
		run_fail(pr, s);
		goto out;
	}
	pthread_mutex_lock(&pr->mu);
	for (;;) {
		while (!pr->stop && pr->next < pr->nb && pr->next >= pr->written + PRED_WINDOW)
			pthread_cond_wait(&pr->cv, &pr->mu);
		if (pr->stop || pr->next >= pr->nb)
			break;
		struct pred_batch *b = &pr->b[pr->next++];
		pthread_mutex_unlock(&pr->mu);
		b->status = translate_batch(pr->pp, x, rw, b);
		pthread_mutex_lock(&pr->mu);
		b->state = SLOT_DONE;
		pthread_cond_broadcast(&pr->cv);
	}
	pthread_mutex_unlock(&pr->mu);
out:
	reuse_worker_destroy(rw);
	xlat_destroy(x);
	return NULL;
}

static void batch_fini(struct pred_batch *b)
{
	free(b->out);
	free(b->buf);
	reuse_tmpls_fini(&b->tmpls);
	memset(b, 0, sizeof(*b));
}

/* Writer: note batch b's versions and append its templates to t. */
static enum bt_status write_batch(struct tcdb *db, struct pred_batch *b, struct reuse_tmpls *t,
				  size_t *n, size_t *n_early)
{
	enum bt_status s = b->status;
	for (size_t i = 0; i < b->n_out && s == BT_OK; i++) {
		struct pred_out *o = &b->out[i];
		o->xb.code = b->buf + o->code_at;
		o->xb.pcmap = b->buf + o->pcmap_at;
		if ((s = tcdb_predicted_note(db, &o->xb)) == BT_OK)
			(*(o->early ? n_early : n))++;
	}
	if (s == BT_OK)
		s = reuse_tmpls_move(t, &b->tmpls);
	return s;
}

/* Translate every noted start's versions with `jobs` workers, note them
 * in start order and collect their templates into t. */
static enum bt_status run_batches(struct pbuild_pipe *pp, struct tcdb *db, int jobs,
				  struct reuse_tmpls *t, struct pbuild_stats *st, size_t *n,
				  size_t *n_early, size_t *refused)
{
	size_t per = pp->n_pred / (8 * (size_t)(jobs > 0 ? jobs : 1));
	per = per < 1 ? 1 : per > PRED_BATCH ? PRED_BATCH : per;
	struct pred_run pr = {.pp = pp, .nb = (pp->n_pred + per - 1) / per};
	pr.b = calloc(pr.nb ? pr.nb : 1, sizeof(*pr.b));
	pthread_t *th = calloc((size_t)(jobs > 0 ? jobs : 1), sizeof(*th));
	if (!pr.b || !th) {
		free(pr.b);
		free(th);
		return BT_ERR_NOMEM;
	}
	for (size_t k = 0; k < pr.nb; k++) {
		pr.b[k].lo = k * per;
		pr.b[k].hi = pr.b[k].lo + per < pp->n_pred ? pr.b[k].lo + per : pp->n_pred;
	}
	pthread_mutex_init(&pr.mu, NULL);
	pthread_cond_init(&pr.cv, NULL);
	int started = 0;
	for (; started < jobs; started++)
		if (pthread_create(&th[started], NULL, pred_worker, &pr) != 0)
			break;
	enum bt_status s = started ? BT_OK : BT_ERR_INTERNAL;
	/* the rounds' templates while the workers start on the batches */
	if (s == BT_OK)
		s = reuse_tmpls_write(&pp->tmpls, db, false, &st->template_bytes);
	for (size_t k = 0; k < pr.nb && s == BT_OK; k++) {
		pthread_mutex_lock(&pr.mu);
		while (pr.b[k].state != SLOT_DONE && !pr.stop)
			pthread_cond_wait(&pr.cv, &pr.mu);
		if (pr.b[k].state != SLOT_DONE)
			s = pr.err ? pr.err : BT_ERR_INTERNAL;
		pthread_mutex_unlock(&pr.mu);
		if (s != BT_OK)
			break;
		s = write_batch(db, &pr.b[k], t, n, n_early);
		*refused += pr.b[k].refused;
		batch_fini(&pr.b[k]);
		if (s == BT_OK && pp->watch_signals &&
		    (st->signal = pbuild_pending_signal()) != 0) {
			bt_err(LOG_CORE, "interrupted by signal %d (%s): the output is not written",
			       st->signal, strsignal(st->signal));
			s = BT_ERR_IO;
		}
		pthread_mutex_lock(&pr.mu);
		pr.written = k + 1;
		pr.stop |= s != BT_OK;
		pthread_cond_broadcast(&pr.cv);
		pthread_mutex_unlock(&pr.mu);
	}
	if (s != BT_OK)
		run_fail(&pr, s);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t k = 0; k < pr.nb; k++)
		batch_fini(&pr.b[k]);
	pthread_mutex_destroy(&pr.mu);
	pthread_cond_destroy(&pr.cv);
	free(pr.b);
	free(th);
	return s;
}

enum bt_status pbuild_predict_write(struct pbuild_pipe *pp, struct tcdb *db, int jobs,
				    struct pbuild_stats *st)
{
	if (!pp->kp)
		return reuse_tmpls_write(&pp->tmpls, db, false, &st->template_bytes);
	if (pp->pred_err)
		return pp->pred_err;
	uint64_t t0 = bt_now_ns();
	qsort(pp->pred, pp->n_pred, sizeof(*pp->pred), gva_cmp);
	size_t u = 0; /* each start once */
	for (size_t i = 0; i < pp->n_pred; i++)
		if (!u || pp->pred[i] != pp->pred[u - 1])
			pp->pred[u++] = pp->pred[i];
	size_t noted = pp->n_pred;
	pp->n_pred = u;
	/* translations and their templates (pretrans/reuse.h), with --reuse
	 * OLD's predicted versions instantiated where a function moved */
	struct reuse_tmpls t = {0};
	size_t n = 0, n_early = 0, refused = 0;
	enum bt_status s = run_batches(pp, db, jobs, &t, st, &n, &n_early, &refused);
	if (s == BT_OK)
		s = tcdb_predicted_write(db, cpuid_profile_hash(&pp->cpu));
	if (s == BT_OK)
		s = reuse_tmpls_write(&t, db, true, &st->pred_template_bytes);
	reuse_tmpls_fini(&t);
	st->n_predicted = n + n_early;
	bt_info(LOG_CORE,
		"predicted patching: %zu blocks changed, %zu translated from the patched bytes "
		"(%zu refused), %zu more from the text before the alternatives, in %.2f s (%d "
		"jobs), CPU profile %s v%d %016llx",
		noted, n, refused, n_early, (double)(bt_now_ns() - t0) * 1e-9, jobs,
		CPUID_PROFILE_NAME, CPUID_PROFILE_VERSION,
		(unsigned long long)cpuid_profile_hash(&pp->cpu));
	return s;
}

void pbuild_predict_close(struct pbuild_pipe *pp)
{
	kp_free(pp->kp);
	pp->kp = NULL;
	free(pp->pred);
	pp->pred = NULL;
}
