/*
 * Loadable modules from the database (docs/kmod.md, "Binding"): the
 * modules' fingerprint index, loaded at start, and the per-block binding a
 * kernel-mode miss tries before translating (kmod/kmod_bind.c): a template
 * whose fingerprint matches the guest bytes at the missed address has its
 * module's pack fetched from the database (tag checked) on that first
 * match, within VM_KMOD_BUDGET bytes of resident packs, and is
 * instantiated there if its guest bytes equal guest memory outside its
 * relocated fields.
 *
 * Why that needs no guest cooperation and runs nothing stale: a template is
 * matched by the bytes the guest executes, not by where a module list says
 * a module is; xlat_tmpl_instantiate() refuses unless the bytes at the
 * address equal the template's outside the fields it records and every
 * recorded value keeps its instruction form, and its result is then, by the
 * template's construction (pretrans/xlat/xlat_tmpl.h, tested on every block
 * of the test guest and on samples of Debian's kernel and modules), exactly
 * the block xlat_translate() would make of those bytes at that address.
 * The installed block is hashed over the bytes it was made from and
 * write-watched like any other, so a later change of them invalidates it.
 * Host code comes only from module rows whose tag matched (tcdb_module_get);
 * the index, tagged too, only chooses which row to read.
 *
 * Invariants
 *  1. The index is loaded once at start; an index or pack that fails its
 *     tag leaves the database untrusted (nothing more is served, binding
 *     stops) and the VM runs on.
 *  2. Resident packs stay within VM_KMOD_BUDGET (kmod_bind.c's measure).
 *  3. A database with modules but no index (built before it existed) binds
 *     nothing and says so once.
 */
#include "kmod/kmod.h"
#include "pretrans/base/log.h"
#include "runtime/vm/vm_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Resident module packs (inflated bytes and their parse arrays): Debian's
 * 1,121 modules hold 916 MB, a boot uses a few of them (docs/kmod.md). */
#define VM_KMOD_BUDGET (128ull << 20)

struct vm_kmod {
	struct kmod_binder *b;
};

static int count_module(void *opaque, const struct tcdb_module *m)
{
	(void)m;
	++*(size_t *)opaque;
	return 0;
}

static enum bt_status fetch(void *opaque, uint32_t mod, uint8_t **raw, size_t *len)
{
	struct vm *vm = opaque;
	return tcdb_module_get(vm->db, (int64_t)mod + 1, raw, len);
}

void vm_kmod_free(struct vm *vm)
{
	struct vm_kmod *k = vm->kmod;
	if (!k)
		return;
	const struct kmod_bind_stats *st = kmod_binder_stats(k->b);
	bt_info(LOG_KMOD,
		"%llu templates bound (%llu where a placement said), %llu misses matching several "
		"modules (%llu told apart by their neighbours); inside placements not served: %llu "
		"bytes differ, %llu form, "
		"%llu page, %llu no template at the offset",
		(unsigned long long)st->bound, (unsigned long long)st->placement_hits,
		(unsigned long long)(st->ambiguous + st->disambiguated),
		(unsigned long long)st->disambiguated,
		(unsigned long long)st->placement_misses[XLAT_TMPL_BYTES],
		(unsigned long long)st->placement_misses[XLAT_TMPL_FORM],
		(unsigned long long)st->placement_misses[XLAT_TMPL_PAGE],
		(unsigned long long)st->placement_misses[XLAT_NTMPL_RESULTS]);
	kmod_binder_destroy(k->b);
	free(k);
	vm->kmod = NULL;
}

enum bt_status vm_kmod_load(struct vm *vm)
{
	uint8_t *raw;
	size_t len;
	uint64_t nmods;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	enum bt_status s = tcdb_module_index_get(vm->db, &raw, &len, &nmods);
	if (s == BT_ERR_AUTH) /* the database serves nothing now */
		return BT_OK;
	if (s == BT_ERR_NOTFOUND) {
		size_t rows = 0;
		BT_TRY(tcdb_foreach_module(vm->db, count_module, &rows));
		if (rows)
			bt_warn(LOG_KMOD,
				"the database holds %zu modules but no fingerprint index (built "
				"by an older pretrans): module code is translated at run time; "
				"rebuild it with `pretrans build --modules`",
				rows);
		return BT_OK;
	}
	if (s != BT_OK)
		return s;
	struct vm_kmod *k = calloc(1, sizeof(*k));
	if (!k) {
		tcdb_module_index_free(raw, len);
		return BT_ERR_NOMEM;
	}
	size_t n = 0;
	s = nmods > UINT32_MAX
		? BT_ERR_FORMAT
		: kmod_binder_open(raw, len, (uint32_t)nmods, fetch, vm, VM_KMOD_BUDGET, &k->b, &n);
	tcdb_module_index_free(raw, len);
	if (s != BT_OK) {
		free(k);
		if (s != BT_ERR_FORMAT)
			return s;
		bt_warn(LOG_KMOD,
			"the database's module fingerprint index is malformed: module "
			"code is translated at run time; rebuild it with `pretrans build`");
		return BT_OK;
	}
	vm->kmod = k;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	bt_info(LOG_KMOD,
		"%llu modules, %zu template fingerprints (%zu bytes) from the database, read, "
		"checked and parsed in %.1f ms",
		(unsigned long long)nmods, n, len,
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return BT_OK;
}

bool vm_kmod_find(struct vm *vm, const struct xlat_source *src, gva_t rip, const uint8_t *bytes,
		  size_t got, struct bt_block *xb)
{
	struct vm_kmod *k = vm->kmod;
	bool found = false;
	if (!k)
		return false;
	enum bt_status s = kmod_binder_find(k->b, src, rip, bytes, got, xb, &found);
	if (s != BT_OK && s != BT_ERR_AUTH) /* AUTH: tcdb said it, binding stopped */
		bt_err(LOG_KMOD, "binding module templates at %#llx: %s", (unsigned long long)rip,
		       bt_status_str(s));
	return s == BT_OK && found;
}

const struct kmod_bind_stats *vm_kmod_stats(const struct vm *vm)
{
	return vm->kmod ? kmod_binder_stats(vm->kmod->b) : NULL;
}
