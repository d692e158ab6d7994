/*
 * `pretrans kpatch IMAGE [--check DB]`: the predicted boot-time patching of
 * a Linux image (pretrans/kpatch), site counts per kind; with --check, every
 * block version a --learn boot recorded in DB's boot profile compared with
 * the image's bytes and the predicted bytes (docs/pretrans.md "Boot-time
 * patching"): unchanged, predicted exactly, or patched but not predicted
 * (by the kind of patch site it covers).
 */
#include "pretrans/cmds.h"

#include "pretrans/base/log.h"
#include "pretrans/cpuid/cpuid.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/kpatch/kpatch.h"
#include "pretrans/xlat/xlat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct check {
	const struct elfimg *img;
	const struct kp_text *kp;
	size_t n, unchanged, unchanged_mispredicted, predicted, early, not_predicted, unreadable;
	size_t by_kind[KP_NKINDS], no_site, shown;
	bool verbose;
};

static int check_one(void *opaque, gva_t va, uint32_t len, uint64_t hash)
{
	struct check *c = opaque;
	uint8_t orig[4096], pred[4096];
	c->n++;
	if (len > sizeof(orig) || elfimg_read(c->img, va, orig, len) != BT_OK ||
	    kp_read(c->kp, va, pred, len) != len) {
		c->unreadable++; /* not in the image's code (modules, vsyscall...) */
		return 0;
	}
	bool changed = memcmp(orig, pred, len) != 0;
	if (xlat_hash_bytes(orig, len) == hash) {
		c->unchanged++;
		c->unchanged_mispredicted += changed;
		return 0;
	}
	if (changed && xlat_hash_bytes(pred, len) == hash) {
		c->predicted++;
		return 0;
	}
	if (kp_read_early(c->kp, va, pred, len) == len && xlat_hash_bytes(pred, len) == hash) {
		c->early++;
		return 0;
	}
	c->not_predicted++;
	unsigned m = kp_kinds(c->kp, va, len, false);
	if (!m)
		c->no_site++;
	for (int k = 1; k < KP_NKINDS; k++)
		if (m & (1u << k))
			c->by_kind[k]++;
	if (c->verbose && c->shown++ < 40)
		printf("  not predicted: %#llx +%u sites 0x%x\n", (unsigned long long)va, len, m);
	return 0;
}

int cmd_kpatch(int argc, char **argv)
{
	const char *image = NULL, *dbp = NULL;
	bool verbose = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--check") && i + 1 < argc)
			dbp = argv[++i];
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (argv[i][0] != '-' && !image)
			image = argv[i];
		else
			return bt_cli_usage("usage: pretrans kpatch IMAGE [--check DB] [-v]");
	}
	if (!image)
		return bt_cli_usage("usage: pretrans kpatch IMAGE [--check DB] [-v]");
	struct elfimg *img;
	enum bt_status s = elfimg_open_nohash(image, &img);
	if (s != BT_OK)
		return pretrans_exit_code(s);
	struct cpuid_host h;
	struct cpuid_profile cpu;
	cpuid_host_read(&h);
	cpuid_profile_make(&cpu, &h, 0);
	struct kp_config cfg = {
	    .cpu = &cpu, .ncpus = 1, .mitigations_off = true, .preempt = KP_PREEMPT_VOLUNTARY};
	struct kp_text *kp;
	s = kp_predict(img, &cfg, &kp);
	if (s == BT_ERR_NOTFOUND) {
		bt_err(LOG_CORE, "%s: no Linux patch tables (.altinstructions, __mcount_loc)",
		       image);
		elfimg_close(img);
		return PRETRANS_EXIT_INPUT;
	}
	if (s != BT_OK) {
		elfimg_close(img);
		return pretrans_exit_code(s);
	}
	const struct kp_stats *ks = kp_get_stats(kp);
	printf("predicted boot-time patching of %s (CPU profile %s v%d %016llx, 1 CPU):\n", image,
	       CPUID_PROFILE_NAME, CPUID_PROFILE_VERSION,
	       (unsigned long long)cpuid_profile_hash(&cpu));
	printf("  %-12s %8s %8s %8s\n", "kind", "sites", "patched", "skipped");
	for (int k = 1; k < KP_NKINDS; k++)
		printf("  %-12s %8zu %8zu %8zu\n", kp_kind_name((enum kp_kind)k), ks->sites[k],
		       ks->patched[k], ks->skipped[k]);
	printf("  bytes changed: %zu\n", ks->bytes_changed);
	int rc = PRETRANS_EXIT_OK;
	if (dbp) {
		static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
						      .abi_version = VCPU_ABI_VERSION,
						      .n_exit_kinds = XLAT_NEXIT_KINDS,
						      .n_refusals = XLAT_NREFUSALS};
		struct tcdb *db;
		size_t n;
		struct check c = {.img = img, .kp = kp, .verbose = verbose};
		if ((s = tcdb_open(dbp, TCDB_RDONLY, &want, NULL, &db)) == BT_OK) {
			if ((s = tcdb_load_index(db, &n)) == BT_OK)
				s = tcdb_profile_foreach(db, false, check_one, &c);
			tcdb_close(db);
		}
		if (s != BT_OK) {
			rc = pretrans_exit_code(s);
		} else if (c.n == 0) {
			bt_err(LOG_CORE, "%s: no boot profile: boot once with btvm --learn", dbp);
			rc = PRETRANS_EXIT_INPUT;
		} else {
			printf("boot profile of %s: %zu block versions the boot ran\n", dbp, c.n);
			printf("  unchanged (the image's bytes)     %8zu (of which the prediction "
			       "changes %zu)\n",
			       c.unchanged, c.unchanged_mispredicted);
			printf("  patched, predicted exactly        %8zu\n", c.predicted);
			printf("  patched, the predicted text between ftrace_init and the "
			       "alternatives %zu\n",
			       c.early);
			printf("  patched, not predicted            %8zu\n", c.not_predicted);
			for (int k = 1; k < KP_NKINDS; k++)
				if (c.by_kind[k])
					printf("    covering a %-12s site      %8zu\n",
					       kp_kind_name((enum kp_kind)k), c.by_kind[k]);
			printf("    covering no known site          %8zu\n", c.no_site);
			printf("  outside the image's code          %8zu\n", c.unreadable);
		}
	}
	kp_free(kp);
	elfimg_close(img);
	return rc;
}
