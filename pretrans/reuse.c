/*
 * The --reuse index (see reuse.h): OLD's translated block rows sorted by
 * start, OLD's chunks sorted by id and inflated on first use, and the rare
 * blocks stored inline in their row, copied at load time.
 *
 * Invariants
 *  1. b[] is sorted by start and unique; c[] is sorted by id and unique;
 *     every b[i].chunk is an index into c[] or SIZE_MAX (inline, see inl).
 *  2. After reuse_open() only the counters (atomics) and the chunks' raw/z
 *     buffers change, the latter once each under mu.
 *  3. reuse_serve() answers only what xlat_translate() would return for the
 *     same start, bytes and options (the cut rule below).
 */
#include "pretrans/reuse_int.h"

#include "pretrans/base/log.h"
#include "pretrans/base/vec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void reuse_missed(struct reuse *r)
{
	__atomic_fetch_add(&r->missed, 1, __ATOMIC_RELAXED);
}

const struct reuse_blk *reuse_find(const struct reuse *r, gva_t va)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->b[mid].start < va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n && r->b[lo].start == va ? &r->b[lo] : NULL;
}

/* Chunk i inflated, or NULL when it cannot be read (logged once). */
static const struct reuse_chunk *reuse_chunk(struct reuse *r, size_t i)
{
	struct reuse_chunk *c = &r->c[i];
	pthread_mutex_lock(&r->mu);
	if (!c->raw && !c->failed) {
		if (tcdb_read_chunk(r->db, c->id, &c->raw, &c->raw_len, &c->z, &c->z_len) ==
		    BT_OK) {
			__atomic_fetch_add(&r->chunks_loaded, 1, __ATOMIC_RELAXED);
		} else {
			c->failed = true;
			bt_warn(LOG_CORE,
				"--reuse: chunk %lld unreadable: its blocks are translated",
				(long long)c->id);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return c->raw ? c : NULL;
}

bool reuse_payload(struct reuse *r, const struct reuse_blk *b, struct bt_block *p)
{
	if (b->chunk == SIZE_MAX) {
		*p = r->inl[b->inl].blk;
		return true;
	}
	*p = (struct bt_block){.guest_start = b->start, /* exit targets are relative to it */
			       .guest_len = b->len,
			       .n_insns = b->n_insns,
			       .guest_hash = b->hash,
			       .flags = b->flags};
	const struct reuse_chunk *c = reuse_chunk(r, b->chunk);
	return c && tcdb_payload_parse(r->db, c->raw, c->raw_len, b->payload_off, p) == BT_OK;
}

bool reuse_serve(struct reuse *r, const struct xlat_source *src, gva_t va, struct bt_block *out)
{
	const struct reuse_blk *b = reuse_find(r, va);
	uint8_t buf[4096];
	if (!b || b->len > sizeof(buf) || src->read(src->opaque, va, buf, b->len) != b->len ||
	    xlat_hash_bytes(buf, b->len) != b->hash)
		return false;
	struct bt_block p;
	if (!reuse_payload(r, b, &p))
		return false;
	/* A FALL exit means the block was cut, not ended by its last
	 * instruction.  Cuts at a page boundary or at the instruction limit read
	 * nothing after the block; any other cut (the next instruction does not
	 * decode, is refused, or is an sti at the limit) depends on bytes the
	 * hash does not cover: translate those again. */
	bool cut = false;
	for (uint32_t i = 0; i < p.n_exits; i++)
		cut |= p.exits[i].kind == XLAT_EXIT_FALL;
	bool page_cut = ((va + b->len) & GUEST_PAGE_MASK) != (va & GUEST_PAGE_MASK);
	if (cut && !page_cut && b->n_insns < r->max_insns)
		return false;
	*out = p;
	__atomic_fetch_add(&r->served, 1, __ATOMIC_RELAXED);
	return true;
}

/* OLD sealed its dictionary chunks with d (its stored dictionary is d's
 * bytes; a dictionary id alone could collide); decided once per d, under
 * r->mu.  Without d, only OLD's chunks without a dictionary qualify (their
 * frames name none). */
static bool reuse_same_dict(struct reuse *r, const struct tcdb_zdict *d)
{
	if (!d)
		return true;
	if (r->dict_for != d) {
		struct tcdb_zdict *od = NULL;
		r->dict_same = tcdb_get_zdict(r->db, &od) == BT_OK && tcdb_zdict_equal(od, d);
		tcdb_zdict_free(od);
		r->dict_for = d;
	}
	return r->dict_same;
}

enum bt_status reuse_seal(struct reuse *r, struct tcdb_chunk *c, gva_t first,
			  const struct tcdb_zdict *d)
{
	const struct reuse_blk *b = r ? reuse_find(r, first) : NULL;
	BT_TRY(tcdb_chunk_close(c)); /* c->raw with its directory, as stored */
	if (b && b->chunk != SIZE_MAX) {
		pthread_mutex_lock(&r->mu);
		const struct reuse_chunk *o = &r->c[b->chunk];
		bool same = o->raw && o->raw_len == c->raw_len &&
			    tcdb_frame_dict_id(o->z, o->z_len) == tcdb_zdict_id(d) &&
			    reuse_same_dict(r, d) && !memcmp(o->raw, c->raw, c->raw_len);
		pthread_mutex_unlock(&r->mu);
		if (same) {
			__atomic_fetch_add(&r->chunks_copied, 1, __ATOMIC_RELAXED);
			return tcdb_chunk_seal_copy(c, o->z, o->z_len);
		}
	}
	return tcdb_chunk_seal_with(c, d);
}

struct reuse_load {
	struct reuse *r;
	enum bt_status s;
};

/* The chunk index for id (added when new; rows come in guest_start order,
 * chunks in nearly the same order, so the last ones are tried first). */
static bool reuse_chunk_index(struct reuse *r, int64_t id, size_t *out)
{
	for (size_t k = r->n_c; k-- > 0 && r->n_c - k <= 4;)
		if (r->c[k].id == id) {
			*out = k;
			return true;
		}
	if (!BT_VEC_RESERVE(r->c, r->cap_c, r->n_c + 1, 4096))
		return false;
	r->c[r->n_c] = (struct reuse_chunk){.id = id};
	*out = r->n_c++;
	return true;
}

/* Keep every translated block the static build made (refused regions are
 * translated again: their extent is decided by discovery, and learned
 * blocks may come from other runtime options). */
static int reuse_load_block(void *opaque, const struct tcdb_block *tb)
{
	struct reuse_load *l = opaque;
	struct reuse *r = l->r;
	if (tb->blk.refusal != XLAT_OK || tb->origin != TCDB_ORIGIN_STATIC ||
	    tb->blk.guest_len == 0)
		return 0;
	if (r->n && r->b[r->n - 1].start >= tb->blk.guest_start) {
		bt_err(LOG_DB, "--reuse: blocks not in address order at %#llx",
		       (unsigned long long)tb->blk.guest_start);
		l->s = BT_ERR_FORMAT;
		return 1;
	}
	if (!BT_VEC_RESERVE(r->b, r->cap, r->n + 1, 4096)) {
		l->s = BT_ERR_NOMEM;
		return 1;
	}
	struct reuse_blk *b = &r->b[r->n];
	*b = (struct reuse_blk){.start = tb->blk.guest_start,
				.hash = tb->blk.guest_hash,
				.len = tb->blk.guest_len,
				.n_insns = tb->blk.n_insns,
				.flags = tb->blk.flags,
				.payload_off = tb->payload_off,
				.chunk = SIZE_MAX};
	if (tb->chunk_id) {
		if (!reuse_chunk_index(r, tb->chunk_id, &b->chunk)) {
			l->s = BT_ERR_NOMEM;
			return 1;
		}
	} else {
		if (tb->blk.n_exits > BT_MAX_EXITS ||
		    !BT_VEC_RESERVE(r->inl, r->cap_inl, r->n_inl + 1, 4096)) {
			l->s = tb->blk.n_exits > BT_MAX_EXITS ? BT_ERR_FORMAT : BT_ERR_NOMEM;
			return 1;
		}
		struct reuse_inline *in = &r->inl[r->n_inl];
		*in = (struct reuse_inline){.blk = tb->blk,
					    .code = malloc(tb->blk.code_len ? tb->blk.code_len : 1),
					    .pcmap =
						malloc(tb->blk.pcmap_len ? tb->blk.pcmap_len : 1)};
		r->n_inl++;
		if (!in->code || !in->pcmap) {
			l->s = BT_ERR_NOMEM;
			return 1;
		}
		memcpy(in->code, tb->blk.code, tb->blk.code_len);
		if (tb->blk.pcmap_len)
			memcpy(in->pcmap, tb->blk.pcmap, tb->blk.pcmap_len);
		in->blk.code = in->code;
		in->blk.pcmap = in->pcmap;
		b->inl = r->n_inl - 1;
	}
	r->n++;
	return 0;
}

static int reuse_chunk_id_cmp(const void *a, const void *b)
{
	const struct reuse_chunk *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

void reuse_close(struct reuse *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_c; i++) {
		free(r->c[i].raw);
		free(r->c[i].z);
	}
	for (size_t i = 0; i < r->n_inl; i++) {
		free(r->inl[i].code);
		free(r->inl[i].pcmap);
	}
	free(r->b);
	free(r->c);
	free(r->inl);
	reuse_tmpl_free(r);
	pthread_mutex_destroy(&r->mu);
	if (r->db)
		tcdb_close(r->db);
	free(r);
}

/* tcdb_open checks the translator and ABI versions, the options hash is
 * checked here. */
enum bt_status reuse_open(const char *path, const struct xlat_options *xo,
			  uint64_t cpu_profile_hash, struct reuse **out)
{
	struct reuse *r = calloc(1, sizeof(*r));
	if (!r)
		return BT_ERR_NOMEM;
	pthread_mutex_init(&r->mu, NULL);
	static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
					      .abi_version = VCPU_ABI_VERSION,
					      .n_exit_kinds = XLAT_NEXIT_KINDS,
					      .n_refusals = XLAT_NREFUSALS};
	/* the CPU profile: OLD's predicted versions are read only when they
	 * were predicted for the same one (a template would serve others too,
	 * but then the blocks come from tcdb_lookup_match, which serves them
	 * for their profile only) */
	const struct tcdb_expect ex = {.cpu_profile_hash = cpu_profile_hash};
	enum bt_status s = tcdb_open(path, TCDB_RDONLY, &want, &ex, &r->db);
	if (s != BT_OK) {
		r->db = NULL;
		bt_err(LOG_CORE,
		       "--reuse %s: cannot use this database (see above); build without --reuse",
		       path);
		goto err_close_reuse;
	}
	struct tcdb_provenance p;
	if ((s = tcdb_get_provenance(r->db, &p)) != BT_OK)
		goto err_close_reuse;
	if (p.options_hash != xlat_options_hash(xo)) {
		bt_err(LOG_CORE,
		       "--reuse %s: built with translator options %#x (hash %016llx), this build "
		       "uses %#x (hash %016llx): its blocks are not what this build would "
		       "produce; use the same options or build without --reuse",
		       path, p.options_flags, (unsigned long long)p.options_hash, xo->flags,
		       (unsigned long long)xlat_options_hash(xo));
		s = BT_ERR_VERSION;
		goto err_close_reuse;
	}
	r->max_insns = xlat_max_insns(xo);
	if ((s = reuse_tmpl_load(r, path)) != BT_OK)
		goto err_close_reuse;
	struct reuse_load l = {.r = r};
	s = tcdb_foreach_block_meta(r->db, reuse_load_block, &l);
	if (s == BT_OK)
		s = l.s;
	if (s != BT_OK)
		goto err_close_reuse;
	/* chunk ids were numbered in first-seen order: sort them and renumber */
	size_t *map = malloc((r->n_c ? r->n_c : 1) * sizeof(*map));
	struct reuse_chunk *sorted = malloc((r->n_c ? r->n_c : 1) * sizeof(*sorted));
	if (!map || !sorted) {
		free(map);
		free(sorted);
		s = BT_ERR_NOMEM;
		goto err_close_reuse;
	}
	memcpy(sorted, r->c, r->n_c * sizeof(*sorted));
	qsort(sorted, r->n_c, sizeof(*sorted), reuse_chunk_id_cmp);
	size_t n = 0;
	for (size_t i = 0; i < r->n_c; i++)
		if (!n || sorted[n - 1].id != sorted[i].id)
			sorted[n++] = sorted[i];
	for (size_t i = 0; i < r->n_c; i++) {
		struct reuse_chunk key = {.id = r->c[i].id};
		const struct reuse_chunk *f =
		    bsearch(&key, sorted, n, sizeof(*sorted), reuse_chunk_id_cmp);
		map[i] = (size_t)(f - sorted);
	}
	for (size_t i = 0; i < r->n; i++)
		if (r->b[i].chunk != SIZE_MAX)
			r->b[i].chunk = map[r->b[i].chunk];
	free(map);
	free(r->c);
	r->c = sorted;
	r->n_c = n;
	r->cap_c = n;
	*out = r;
	return BT_OK;

err_close_reuse:
	reuse_close(r);
	return s;
}

void reuse_get_stats(const struct reuse *r, struct reuse_stats *out)
{
	out->n_old = r->n;
	out->n_old_tmpls = r->n_t;
	out->n_mapped = r->n_fm;
	out->served = __atomic_load_n(&r->served, __ATOMIC_RELAXED);
	out->served_moved = __atomic_load_n(&r->served_moved, __ATOMIC_RELAXED);
	out->pred_served = __atomic_load_n(&r->pred_served, __ATOMIC_RELAXED);
	out->pred_missed = __atomic_load_n(&r->pred_missed, __ATOMIC_RELAXED);
	out->moved_refused = __atomic_load_n(&r->moved_refused, __ATOMIC_RELAXED);
	out->missed = __atomic_load_n(&r->missed, __ATOMIC_RELAXED);
	out->chunks_loaded = __atomic_load_n(&r->chunks_loaded, __ATOMIC_RELAXED);
	out->chunks_copied = __atomic_load_n(&r->chunks_copied, __ATOMIC_RELAXED);
}
