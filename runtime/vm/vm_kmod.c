/*
 * Loadable modules from the database (docs/kmod.md, "Binding"): the
 * templates of every module the database holds, indexed by the page offset
 * of their block start, and the per-block binding a kernel-mode miss tries
 * before translating: a template whose guest bytes equal guest memory at
 * the missed address outside its relocated fields is instantiated there.
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
 * Host code comes only from module rows whose tag matched (tcdb_module_get).
 *
 * Invariants
 *  1. Templates are loaded once at start; a pack that fails its tag leaves
 *     the database untrusted (nothing is served) and the VM runs on.
 *  2. At most VM_KMOD_MAX_RAW inflated bytes of packs are loaded (all or
 *     none).
 *  3. Candidates are those whose nominal start has the page offset of the
 *     address (the kernel loads module text on a page boundary; other
 *     offsets would be refused as XLAT_TMPL_PAGE near page ends anyway).
 */
#include "kmod/kmod.h"
#include "pretrans/base/log.h"
#include "runtime/vm/vm_int.h"

#include <stdlib.h>
#include <string.h>

struct vm_kmod {
	uint8_t **raw;
	struct kmod_pack *packs;
	size_t n;
	uint32_t start[4097]; /* refs of page offset o: [start[o], start[o + 1]) */
	uint32_t (*refs)[2];  /* (pack, template) */
	size_t nrefs;
	uint8_t *code; /* instantiation buffer, max code_len */
	uint32_t code_cap;
	struct xlat_exit exits[XLAT_MAX_EXITS];
};

/* Packs are loaded whole at start: above this many inflated bytes they are
 * not loaded at all (Debian's 1,121 modules: 916 MB; docs/kmod.md, "Limits"). */
#define VM_KMOD_MAX_RAW (256ull << 20)

struct collect {
	int64_t *ids;
	size_t n, cap;
	uint64_t raw;
};

static int collect_id(void *opaque, const struct tcdb_module *m)
{
	struct collect *c = opaque;
	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 64;
		int64_t *p = realloc(c->ids, nc * sizeof(*p));
		if (!p)
			return 1;
		c->ids = p;
		c->cap = nc;
	}
	c->ids[c->n++] = m->id;
	c->raw += m->raw_len;
	return 0;
}

void vm_kmod_free(struct vm *vm)
{
	struct vm_kmod *k = vm->kmod;
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++) {
		kmod_pack_fini(&k->packs[i]);
		free(k->raw[i]);
	}
	free(k->raw);
	free(k->packs);
	free(k->refs);
	free(k->code);
	free(k);
	vm->kmod = NULL;
}

enum bt_status vm_kmod_load(struct vm *vm)
{
	struct collect c = {0};
	BT_TRY(tcdb_foreach_module(vm->db, collect_id, &c));
	if (c.n == 0) {
		free(c.ids);
		return BT_OK;
	}
	if (c.raw > VM_KMOD_MAX_RAW) {
		bt_warn(
		    LOG_KMOD,
		    "the database's %zu modules hold %llu MB of templates, more than the %llu MB "
		    "btvm loads at start: module code is translated at run time",
		    c.n, (unsigned long long)(c.raw >> 20),
		    (unsigned long long)(VM_KMOD_MAX_RAW >> 20));
		free(c.ids);
		return BT_OK;
	}
	struct vm_kmod *k = calloc(1, sizeof(*k));
	enum bt_status s = BT_ERR_NOMEM;
	if (!k)
		goto out;
	vm->kmod = k;
	k->raw = calloc(c.n, sizeof(*k->raw));
	k->packs = calloc(c.n, sizeof(*k->packs));
	if (!k->raw || !k->packs)
		goto out;
	for (size_t i = 0; i < c.n; i++) {
		size_t len;
		s = tcdb_module_get(vm->db, c.ids[i], &k->raw[k->n], &len);
		if (s == BT_ERR_AUTH) { /* the database serves nothing now */
			s = BT_OK;
			goto out;
		}
		if (s != BT_OK)
			goto out;
		if (kmod_pack_parse(k->raw[k->n], len, &k->packs[k->n]) != BT_OK) {
			bt_warn(LOG_KMOD, "module %lld of the database is malformed: not used",
				(long long)c.ids[i]);
			free(k->raw[k->n]);
			continue;
		}
		k->n++;
	}
	/* index by page offset (counting sort) */
	size_t total = 0;
	for (size_t i = 0; i < k->n; i++)
		total += k->packs[i].n;
	k->refs = calloc(total ? total : 1, sizeof(*k->refs));
	if (!k->refs) {
		s = BT_ERR_NOMEM;
		goto out;
	}
	memset(k->start, 0, sizeof(k->start));
	for (size_t i = 0; i < k->n; i++)
		for (size_t j = 0; j < k->packs[i].n; j++) {
			const struct xlat_tmpl *t = &k->packs[i].tmpls[j].t;
			k->start[(t->guest_start & 0xfff) + 1]++;
			if (t->code_len > k->code_cap)
				k->code_cap = t->code_len;
		}
	for (int o = 0; o < 4096; o++)
		k->start[o + 1] += k->start[o];
	uint32_t fill[4096];
	memcpy(fill, k->start, sizeof(fill));
	for (size_t i = 0; i < k->n; i++)
		for (size_t j = 0; j < k->packs[i].n; j++) {
			uint32_t o = k->packs[i].tmpls[j].t.guest_start & 0xfff;
			k->refs[fill[o]][0] = (uint32_t)i;
			k->refs[fill[o]][1] = (uint32_t)j;
			fill[o]++;
		}
	k->nrefs = total;
	k->code = malloc(k->code_cap ? k->code_cap : 1);
	s = k->code ? BT_OK : BT_ERR_NOMEM;
	bt_info(LOG_KMOD, "%zu modules, %zu templates from the database", k->n, total);
out:
	free(c.ids);
	if (s != BT_OK)
		vm_kmod_free(vm);
	return s;
}

bool vm_kmod_find(struct vm *vm, gva_t rip, const uint8_t *bytes, size_t got, struct xlat_block *xb)
{
	struct vm_kmod *k = vm->kmod;
	if (!k)
		return false;
	uint32_t o = rip & 0xfff;
	for (uint32_t r = k->start[o]; r < k->start[o + 1]; r++) {
		const struct kmod_tmpl *kt = &k->packs[k->refs[r][0]].tmpls[k->refs[r][1]];
		const struct xlat_tmpl *t = &kt->t;
		if (t->guest_len > got || bytes[0] != t->guest[0])
			continue;
		if (xlat_tmpl_instantiate(t, rip, bytes, k->code, k->exits) != XLAT_TMPL_OK)
			continue;
		memset(xb, 0, sizeof(*xb));
		xb->guest_start = rip;
		xb->guest_len = t->guest_len;
		xb->n_insns = kt->n_insns;
		xb->guest_hash = xlat_hash_bytes(bytes, t->guest_len);
		xb->flags = t->flags;
		xb->code = k->code;
		xb->code_len = t->code_len;
		memcpy(xb->exits, k->exits, t->n_exits * sizeof(*k->exits));
		xb->n_exits = t->n_exits;
		xb->pcmap = kt->pcmap;
		xb->pcmap_len = kt->pcmap_len;
		return true;
	}
	return false;
}
