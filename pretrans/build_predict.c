/*
 * `pretrans build`: the predicted boot-time patching (pretrans/kpatch,
 * docs/pretrans.md "Boot-time patching").  The writer notes every
 * translated block whose guest bytes the predicted patching changes
 * (pbuild_predict_note); after the last round each is translated again
 * from the patched bytes, at the same start (and once more from the text
 * Linux runs between ftrace_init and the alternatives, when that differs
 * from both), and stored as an extra version in the predicted-patching pack
 * (tcdb_predicted_note/_write), tagged with the CPU profile it was predicted for.  btvm validates
 * such a version by its guest-bytes hash exactly as every database block.
 */
#include "pretrans/build_int.h"

#include "pretrans/base/clock.h"
#include "pretrans/xdb/xdb.h"
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
		if (b->refusal || !kp_changed(pp->kp, b->guest_start, b->guest_len))
			continue;
		if (!BT_VEC_RESERVE(pp->pred, pp->cap_pred, pp->n_pred + 1, 4096)) {
			pp->pred_err = BT_ERR_NOMEM;
			return;
		}
		pp->pred[pp->n_pred++] = b->guest_start;
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

/* xb as a database block of the predicted pack, noted in db. */
static enum bt_status note(struct tcdb *db, const struct xlat_block *xb)
{
	struct tcdb_block tb;
	xdb_to_row(xb, TCDB_ORIGIN_PREDICTED, &tb);
	return tcdb_predicted_note(db, &tb);
}

/* The guest bytes of xb are the image's own (no version to add). */
static bool unpatched(const struct pbuild_pipe *pp, const struct xlat_block *xb)
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

enum bt_status pbuild_predict_write(struct pbuild_pipe *pp, struct tcdb *db,
				    struct pbuild_stats *st)
{
	if (!pp->kp)
		return BT_OK;
	if (pp->pred_err)
		return pp->pred_err;
	uint64_t t0 = bt_now_ns();
	qsort(pp->pred, pp->n_pred, sizeof(*pp->pred), gva_cmp);
	struct xlat_ctx *x;
	BT_TRY(xlat_create(&pp->xo, &x));
	/* translations and their templates (pretrans/reuse.h), with --reuse
	 * OLD's predicted versions instantiated where a function moved */
	struct reuse_worker *rw;
	enum bt_status s = reuse_worker_create(pp->reuse, &rw);
	if (s != BT_OK) {
		xlat_destroy(x);
		return s;
	}
	struct xlat_source src = {kp_src_read, pp->kp}, early = {kp_src_read_early, pp->kp};
	size_t n = 0, n_early = 0, refused = 0;
	for (size_t i = 0; i < pp->n_pred && s == BT_OK; i++) {
		if (i && pp->pred[i] == pp->pred[i - 1])
			continue;
		struct xlat_block xb;
		if ((s = reuse_translate_predicted(rw, x, &src, pp->pred[i], &xb)) != BT_OK)
			break;
		if (xb.refusal != XLAT_OK || xb.code_len == 0) {
			refused++;
			continue;
		}
		uint64_t final_hash = xb.guest_hash;
		uint32_t final_len = xb.guest_len;
		if ((s = note(db, &xb)) != BT_OK)
			break;
		n++;
		/* the same start as Linux runs it between ftrace_init and the
		 * alternatives, when that is yet another version (a cheap look
		 * first: the early bytes over the final block's range) */
		uint8_t e[4096], f[4096], o[4096];
		if (final_len > sizeof(e) ||
		    kp_read_early(pp->kp, pp->pred[i], e, final_len) != final_len ||
		    kp_read(pp->kp, pp->pred[i], f, final_len) != final_len ||
		    elfimg_read(pp->img, pp->pred[i], o, final_len) != BT_OK ||
		    !memcmp(e, f, final_len) || !memcmp(e, o, final_len))
			continue;
		if ((s = reuse_translate_predicted(rw, x, &early, pp->pred[i], &xb)) != BT_OK)
			break;
		if (xb.refusal != XLAT_OK || xb.code_len == 0 || xb.guest_hash == final_hash ||
		    unpatched(pp, &xb))
			continue;
		if ((s = note(db, &xb)) != BT_OK)
			break;
		n_early++;
	}
	xlat_destroy(x);
	if (s == BT_OK)
		s = tcdb_predicted_write(db, cpuid_profile_hash(&pp->cpu));
	struct reuse_tmpls t = {0};
	if (s == BT_OK)
		s = reuse_worker_take(rw, &t);
	if (s == BT_OK)
		s = reuse_tmpls_write(&t, db, true, &st->pred_template_bytes);
	reuse_tmpls_fini(&t);
	reuse_worker_destroy(rw);
	st->n_predicted = n + n_early;
	bt_info(LOG_CORE,
		"predicted patching: %zu blocks changed, %zu translated from the patched bytes "
		"(%zu refused), %zu more from the text before the alternatives, in %.2f s, CPU "
		"profile %s v%d %016llx",
		pp->n_pred, n, refused, n_early, (double)(bt_now_ns() - t0) * 1e-9,
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
