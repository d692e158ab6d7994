/*
 * `pretrans build` (see build.h): open and check the image
 * (elfimg_check_kernel, the boot loader's image rules), plan its regions, and
 * walk them in rounds, each round run by the pipeline (build_pipe.c) into
 * one database that is committed only when every round succeeded.
 *
 * Rounds: stripped images are walked in rounds; the targets of direct
 * calls that start no known region become seed regions of the next round,
 * sorted by address.  Rounds are sequential, so the order stays
 * deterministic.
 *
 * Reuse (--reuse OLD.tcdb, pretrans/reuse.h): the walk runs exactly as in a
 * full build; each worker's discovery walker asks the reuse index first
 * through its translate hook, so the database is the one a full build
 * writes.
 */
#include "pretrans/build_int.h"

#include "pretrans/base/clock.h"
#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"
#include "pretrans/xcheck/xcheck.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 64

static int gva_cmp(const void *a, const void *b)
{
	gva_t x = *(const gva_t *)a, y = *(const gva_t *)b;
	return x < y ? -1 : x > y;
}

/* The image's linux_banner (init/version-timestamp.c), "" when it has none
 * or it is not a string: recorded so that btvm can tell at open whether a
 * bzImage (its setup header's kernel_version) is this kernel's. */
static void image_banner(const struct elfimg *img, char *out, size_t cap)
{
	out[0] = 0;
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *s = &img->syms[i];
		if (strcmp(s->name, "linux_banner") != 0 || s->type != STT_OBJECT || s->size < 2)
			continue;
		size_t n = s->size < cap ? s->size : cap - 1;
		if (elfimg_read(img, s->addr, out, n) != BT_OK || memchr(out, 0, n) == NULL) {
			out[0] = 0; /* unreadable, or longer than cap: not recorded */
			continue;
		}
		return;
	}
}

enum bt_status pbuild_run(const struct pbuild_options *o, struct pbuild_stats *st)
{
	enum bt_status s;
	memset(st, 0, sizeof(*st));
	struct elfimg *img;
	BT_TRY(elfimg_open(o->image_path, &img));
	struct discover_plan *plan;
	/* the rules the boot loader applies too, so that a database is never
	 * built for an image btvm would refuse to boot */
	if ((s = elfimg_check_kernel(img)) != BT_OK || (s = discover_plan(img, &plan)) != BT_OK)
		goto err_close_img;
	if (img->type != ET_EXEC) /* btvm's loader refuses it (runtime/boot/boot.c) */
		bt_warn(LOG_ELF,
			"%s: ELF type %u (%s) does not look like a kernel: btvm boots only an "
			"ET_EXEC vmlinux; building anyway",
			o->image_path, img->type,
			img->type == ET_DYN ? "ET_DYN, a PIE or shared object" : "not ET_EXEC");
	st->n_ex_table_leaders = plan->n_leaders;

	struct tcdb_image ti = {.entry = img->entry, .build_id_va = img->build_id_va};
	/* recorded absolute, so that show, diff and btvm find it from any
	 * directory (databases written before kept the path as given:
	 * tcdb_image_locate) */
	char *abs = realpath(o->image_path, NULL);
	snprintf(ti.path, sizeof(ti.path), "%s", abs ? abs : o->image_path);
	free(abs);
	elfimg_build_id_hex(img, ti.build_id);
	image_banner(img, ti.banner, sizeof(ti.banner));
	sha256_hex(img->sha256, ti.sha256);
	strcpy(ti.arch, "x86_64");
	struct pbuild_pipe pp = {.img = img,
				 .plan = plan,
				 .xo = {.flags = o->xlat_flags, .checker = &xcheck_checker_ops},
				 .watch_signals = o->watch_signals};
	if ((s = pbuild_predict_open(&pp)) != BT_OK)
		goto err_free_plan;
	if (o->reuse_path) {
		uint64_t t0 = bt_now_ns();
		if ((s = reuse_open(o->reuse_path, &pp.xo, pp.kp ? cpuid_profile_hash(&pp.cpu) : 0,
				    &pp.reuse)) != BT_OK ||
		    (s = reuse_map_functions(pp.reuse, plan)) != BT_OK)
			goto err_free_plan;
		struct reuse_stats rs;
		reuse_get_stats(pp.reuse, &rs);
		st->n_reuse_old = rs.n_old;
		st->reuse_load_secs = (double)(bt_now_ns() - t0) * 1e-9;
	}
	struct tcdb_provenance prov = {.xlat_version = XLAT_VERSION,
				       .abi_version = VCPU_ABI_VERSION,
				       .options_hash = xlat_options_hash(&pp.xo),
				       .options_flags = pp.xo.flags};
	snprintf(prov.tool_version, sizeof(prov.tool_version), "%s", PRETRANS_TOOL_VERSION);
	prov.created = o->created;
	struct tcdb *db;
	if ((s = tcdb_create(o->out_path, &ti, &prov, &db)) != BT_OK)
		goto err_free_plan;
	pthread_mutex_init(&pp.mu, NULL);
	pthread_cond_init(&pp.cv, NULL);

	if (!BT_VEC_RESERVE(pp.order, pp.cap_order, plan->n, 256)) {
		s = BT_ERR_NOMEM;
		goto err_abort_db;
	}
	for (size_t round = 0; round < MAX_ROUNDS; round++) {
		size_t n = 0;
		for (size_t i = 0; i < plan->n; i++)
			if (!plan->f[i].done)
				pp.order[n++] = i;
		if (n == 0)
			break;
		free(pp.slots);
		pp.slots = calloc(n, sizeof(*pp.slots));
		if (!pp.slots) {
			s = BT_ERR_NOMEM;
			goto err_abort_db;
		}
		pp.to = n;
		pp.n_calls = 0;
		if ((s = pbuild_run_round(&pp, o->jobs, db, st, o->progress, round)) != BT_OK)
			goto err_abort_db;
		for (size_t i = 0; i < n; i++)
			plan->f[pp.order[i]].done = true;
		st->n_rounds = round + 1;
		/* call targets that start no region become the next round's seeds */
		qsort(pp.calls, pp.n_calls, sizeof(gva_t), gva_cmp);
		for (size_t i = 0; i < pp.n_calls; i++) {
			if (i && pp.calls[i] == pp.calls[i - 1])
				continue;
			enum bt_status a = discover_add_seed(plan, img, pp.calls[i]);
			if (a == BT_ERR_NOMEM) {
				s = a;
				goto err_abort_db;
			}
		}
		discover_plan_sort(plan);
		if (!BT_VEC_RESERVE(pp.order, pp.cap_order, plan->n, 256)) {
			s = BT_ERR_NOMEM;
			goto err_abort_db;
		}
	}
	st->n_regions = plan->n;
	st->n_templates = pp.tmpls.n;
	/* the block templates are written while the predicted versions are
	 * translated */
	if ((s = pbuild_predict_write(&pp, db, o->jobs, st)) != BT_OK)
		goto err_abort_db;
	reuse_tmpls_fini(&pp.tmpls);
	if (pp.reuse) {
		struct reuse_stats rs;
		reuse_get_stats(pp.reuse, &rs);
		st->n_reused = rs.served;
		st->n_reused_moved = rs.served_moved;
		st->n_moved_refused = rs.moved_refused;
		st->n_reuse_mapped = rs.n_mapped;
		st->n_translated = rs.missed;
		st->n_chunks_copied = rs.chunks_copied;
		st->n_chunks_loaded = rs.chunks_loaded;
	}
	if (pp.reuse) {
		struct reuse_stats rs;
		reuse_get_stats(pp.reuse, &rs);
		st->n_pred_reused = rs.pred_served;
		st->n_pred_translated = rs.pred_missed;
	}
	if (o->n_modules) {
		uint64_t t0 = bt_now_ns();
		if ((s = pbuild_modules(o, img, pp.kp, db, st)) != BT_OK)
			goto err_abort_db;
		st->mod_secs = (double)(bt_now_ns() - t0) * 1e-9;
	}
	if ((s = tcdb_commit(db)) != BT_OK)
		goto err_free_slots;
	free(pp.slots);
	free(pp.order);
	free(pp.calls);
	pthread_mutex_destroy(&pp.mu);
	pthread_cond_destroy(&pp.cv);
	reuse_close(pp.reuse);
	pbuild_predict_close(&pp);
	discover_plan_free(plan);
	elfimg_close(img);
	tcdb_zdict_free(pp.zdict);
	free(pp.samples);
	free(pp.sample_sizes);
	return BT_OK;

err_abort_db:
	tcdb_abort(db);
err_free_slots:
	for (size_t i = 0; pp.slots && i < pp.to; i++) { /* results not written */
		discover_result_fini(&pp.slots[i].res);
		tcdb_chunk_fini(&pp.slots[i].chunk);
		reuse_tmpls_fini(&pp.slots[i].tmpls);
	}
	reuse_tmpls_fini(&pp.tmpls);
	free(pp.slots);
	free(pp.order);
	free(pp.calls);
	pthread_mutex_destroy(&pp.mu);
	pthread_cond_destroy(&pp.cv);
err_free_plan:
	tcdb_zdict_free(pp.zdict);
	free(pp.samples);
	free(pp.sample_sizes);
	reuse_close(pp.reuse);
	pbuild_predict_close(&pp);
	discover_plan_free(plan);
err_close_img:
	elfimg_close(img);
	return s;
}
