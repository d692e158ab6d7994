/*
 * The build pipeline (see build.h).  Owns the worker threads, the result
 * slots and the writer loop.
 *
 * Concurrency
 *  - Regions are handed out by an atomic-free counter under `mu`; each
 *    worker owns one xlat context and one walker, and fills the result slot
 *    of the region it took.
 *  - The writer (the calling thread) consumes slots strictly in region
 *    order, waiting on `cv`; a worker does not start region i while
 *    i >= written + WINDOW, which bounds memory.
 *  - Stripped images are walked in rounds: the targets of direct calls that
 *    start no known region become seed regions of the next round, sorted by
 *    address.  Rounds are sequential, so the order stays deterministic.
 * Invariant: the sequence of tcdb_add_* calls depends only on the image, the
 * plan and the translator options, never on the thread count or timing.
 *
 * Reuse (--reuse OLD.tcdb): the walk runs exactly as in a full build; only
 * the translation of one block start is replaced by a copy of OLD's block
 * when pbuild_reuse_serve() proves it equal (same start, same guest bytes by
 * hash, same translator/ABI/options, a cut that did not depend on the bytes
 * after the block).  xlat_translate() is a pure function of exactly those
 * inputs, so the database is the one a full build writes.  The index is
 * loaded before the workers start and only its counters change afterwards;
 * each worker's discovery walker asks it first through its translate hook
 * (reuse_translate).
 */
#include "pretrans/build.h"

#include "db/tcdb.h"
#include "pretrans/base/log.h"
#include "pretrans/discover.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xlat/xlat_int.h"
#include "pretrans/xcheck/xcheck.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define WINDOW	   4096
#define MAX_ROUNDS 64
/* Regions are packed into one compressed chunk until their guest bytes
 * reach UNIT_BYTES (~64 KiB of host code): zlib then sees enough context
 * (ratio 4.8x per function, ~6x per 64 KiB) and a look-up inflates ~64 KiB. */
#define UNIT_BYTES   512
#define UNIT_REGIONS 64

/* ------------------------------------------------------------ reuse */

/* An old translated block: its row only; the payload (code, pc map, exits)
 * stays in OLD's chunk until a block whose bytes match asks for it. */
struct reuse_blk {
	gva_t start;
	uint64_t hash;
	uint32_t len, n_insns, flags;
	uint32_t payload_off;
	size_t chunk; /* index into pbuild_reuse.c, or SIZE_MAX: inline, see inl */
	size_t inl;   /* inline rows: index into pbuild_reuse.inl */
};

struct reuse_inline { /* a block stored in its row, not in a chunk (rare) */
	uint8_t *code, *pcmap;
	uint32_t code_len, pcmap_len, n_exits;
	struct xlat_exit exits[XLAT_MAX_EXITS];
};

/* An old chunk, inflated on first use (under pbuild_reuse.mu).  When a new
 * unit's raw payload is byte for byte a loaded chunk's, its compressed bytes
 * are what compressing would give (deflate is a pure function of its input
 * and level), so they are copied, not recomputed. */
struct reuse_chunk {
	int64_t id;
	uint8_t *raw, *z; /* NULL until loaded */
	size_t raw_len, z_len;
	bool failed; /* could not be read: its blocks are translated */
};

struct pbuild_reuse {
	struct tcdb *db;     /* OLD, open for the whole build; used under mu */
	struct reuse_blk *b; /* sorted by start, unique */
	size_t n, cap;
	struct reuse_chunk *c; /* sorted by id, unique */
	size_t n_c, cap_c;
	struct reuse_inline *inl;
	size_t n_inl, cap_inl;
	uint32_t max_insns; /* the limit the translator applies */
	pthread_mutex_t mu;
	uint64_t served, missed, chunks_copied, chunks_loaded; /* atomics */
};

static void reuse_missed(struct pbuild_reuse *r)
{
	__atomic_fetch_add(&r->missed, 1, __ATOMIC_RELAXED);
}

static const struct reuse_blk *reuse_find(const struct pbuild_reuse *r, gva_t va)
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
static const struct reuse_chunk *reuse_chunk(struct pbuild_reuse *r, size_t i)
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

bool pbuild_reuse_serve(struct pbuild_reuse *r, const struct xlat_source *src, gva_t va,
			struct xlat_block *out)
{
	const struct reuse_blk *b = reuse_find(r, va);
	uint8_t buf[4096];
	if (!b || b->len > sizeof(buf) || src->read(src->opaque, va, buf, b->len) != b->len ||
	    xlat_hash_bytes(buf, b->len) != b->hash)
		return false;
	struct tcdb_block p = {0};
	if (b->chunk == SIZE_MAX) {
		const struct reuse_inline *in = &r->inl[b->inl];
		p.code = in->code;
		p.code_len = in->code_len;
		p.pcmap = in->pcmap;
		p.pcmap_len = in->pcmap_len;
		p.n_exits = in->n_exits;
		memcpy(p.exits, in->exits, sizeof(p.exits));
	} else {
		const struct reuse_chunk *c = reuse_chunk(r, b->chunk);
		if (!c || tcdb_payload_parse(c->raw, c->raw_len, b->payload_off, &p) != BT_OK)
			return false;
	}
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
	memset(out, 0, sizeof(*out));
	out->guest_start = va;
	out->guest_len = b->len;
	out->n_insns = b->n_insns;
	out->guest_hash = b->hash;
	out->flags = b->flags;
	out->refusal = XLAT_OK;
	out->code = p.code;
	out->code_len = p.code_len;
	memcpy(out->exits, p.exits, sizeof(out->exits));
	out->n_exits = p.n_exits;
	out->pcmap = p.pcmap;
	out->pcmap_len = p.pcmap_len;
	__atomic_fetch_add(&r->served, 1, __ATOMIC_RELAXED);
	return true;
}

/* The discovery walker's translate hook in a --reuse build. */
static enum bt_status reuse_translate(void *opaque, struct xlat_ctx *ctx,
				      const struct xlat_source *src, gva_t va,
				      struct xlat_block *out)
{
	struct pbuild_reuse *r = opaque;
	if (pbuild_reuse_serve(r, src, va, out))
		return BT_OK;
	reuse_missed(r);
	return xlat_translate(ctx, src, va, out);
}

/* Seal a unit's chunk.  first: the unit's first block; when OLD's chunk
 * holding that block is loaded and its raw bytes are the unit's, copy its
 * compressed bytes, else compress. */
static enum bt_status reuse_seal(struct pbuild_reuse *r, struct tcdb_chunk *c, gva_t first)
{
	const struct reuse_blk *b = r ? reuse_find(r, first) : NULL;
	if (b && b->chunk != SIZE_MAX) {
		pthread_mutex_lock(&r->mu);
		const struct reuse_chunk *o = &r->c[b->chunk];
		bool same =
		    o->raw && o->raw_len == c->raw_len && !memcmp(o->raw, c->raw, c->raw_len);
		pthread_mutex_unlock(&r->mu);
		if (same) {
			__atomic_fetch_add(&r->chunks_copied, 1, __ATOMIC_RELAXED);
			return tcdb_chunk_seal_copy(c, o->z, o->z_len);
		}
	}
	return tcdb_chunk_seal(c);
}

struct reuse_load {
	struct pbuild_reuse *r;
	enum bt_status s;
};

static bool reuse_grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 4096;
	void *np = realloc(*p, nc * size);
	if (!np)
		return false;
	*p = np;
	*cap = nc;
	return true;
}

/* The chunk index for id (added when new; rows come in guest_start order,
 * chunks in nearly the same order, so the last ones are tried first). */
static bool reuse_chunk_index(struct pbuild_reuse *r, int64_t id, size_t *out)
{
	for (size_t k = r->n_c; k-- > 0 && r->n_c - k <= 4;)
		if (r->c[k].id == id) {
			*out = k;
			return true;
		}
	if (!reuse_grow((void **)&r->c, &r->cap_c, r->n_c, sizeof(*r->c)))
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
	struct pbuild_reuse *r = l->r;
	if (tb->refusal != XLAT_OK || tb->origin != TCDB_ORIGIN_STATIC || tb->guest_len == 0)
		return 0;
	if (r->n && r->b[r->n - 1].start >= tb->guest_start) {
		bt_err(LOG_DB, "--reuse: blocks not in address order at %#llx",
		       (unsigned long long)tb->guest_start);
		l->s = BT_ERR_FORMAT;
		return 1;
	}
	if (!reuse_grow((void **)&r->b, &r->cap, r->n, sizeof(*r->b))) {
		l->s = BT_ERR_NOMEM;
		return 1;
	}
	struct reuse_blk *b = &r->b[r->n];
	*b = (struct reuse_blk){.start = tb->guest_start,
				.hash = tb->guest_hash,
				.len = tb->guest_len,
				.n_insns = tb->n_insns,
				.flags = tb->flags,
				.payload_off = tb->payload_off,
				.chunk = SIZE_MAX};
	if (tb->chunk_id) {
		if (!reuse_chunk_index(r, tb->chunk_id, &b->chunk)) {
			l->s = BT_ERR_NOMEM;
			return 1;
		}
	} else {
		if (tb->n_exits > XLAT_MAX_EXITS ||
		    !reuse_grow((void **)&r->inl, &r->cap_inl, r->n_inl, sizeof(*r->inl))) {
			l->s = tb->n_exits > XLAT_MAX_EXITS ? BT_ERR_FORMAT : BT_ERR_NOMEM;
			return 1;
		}
		struct reuse_inline *in = &r->inl[r->n_inl];
		*in = (struct reuse_inline){.code = malloc(tb->code_len ? tb->code_len : 1),
					    .pcmap = malloc(tb->pcmap_len ? tb->pcmap_len : 1),
					    .code_len = tb->code_len,
					    .pcmap_len = tb->pcmap_len,
					    .n_exits = tb->n_exits};
		r->n_inl++;
		if (!in->code || !in->pcmap) {
			l->s = BT_ERR_NOMEM;
			return 1;
		}
		memcpy(in->code, tb->code, tb->code_len);
		if (tb->pcmap_len)
			memcpy(in->pcmap, tb->pcmap, tb->pcmap_len);
		memcpy(in->exits, tb->exits, sizeof(in->exits));
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

static void reuse_free(struct pbuild_reuse *r)
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
	pthread_mutex_destroy(&r->mu);
	if (r->db)
		tcdb_close(r->db);
	free(r);
}

/* Open OLD and index its translated blocks (rows only); refuse a database
 * whose translations this translator would not reproduce (tcdb_open checks
 * the translator and ABI versions, the options hash is checked here). */
static enum bt_status reuse_load(const char *path, const struct xlat_options *xo,
				 struct pbuild_reuse **out)
{
	struct pbuild_reuse *r = calloc(1, sizeof(*r));
	if (!r)
		return BT_ERR_NOMEM;
	pthread_mutex_init(&r->mu, NULL);
	enum bt_status s = tcdb_open(path, TCDB_RDONLY, NULL, &r->db);
	if (s != BT_OK) {
		r->db = NULL;
		bt_err(LOG_CORE,
		       "--reuse %s: cannot use this database (see above); build without --reuse",
		       path);
		goto err_free_reuse;
	}
	struct tcdb_provenance p;
	if ((s = tcdb_get_provenance(r->db, &p)) != BT_OK)
		goto err_free_reuse;
	if (p.options_hash != xlat_options_hash(xo)) {
		bt_err(LOG_CORE,
		       "--reuse %s: built with translator options %#x (hash %016llx), this build "
		       "uses %#x (hash %016llx): its blocks are not what this build would "
		       "produce; use the same options or build without --reuse",
		       path, p.options_flags, (unsigned long long)p.options_hash, xo->flags,
		       (unsigned long long)xlat_options_hash(xo));
		s = BT_ERR_VERSION;
		goto err_free_reuse;
	}
	r->max_insns = xo->max_insns ? BT_MIN(xo->max_insns, (uint32_t)XLAT_HARD_MAX_INSNS)
				     : XLAT_DEFAULT_MAX_INSNS;
	struct reuse_load l = {.r = r};
	s = tcdb_foreach_block_meta(r->db, reuse_load_block, &l);
	if (s == BT_OK)
		s = l.s;
	if (s != BT_OK)
		goto err_free_reuse;
	/* chunk ids were numbered in first-seen order: sort them and renumber */
	size_t *map = malloc((r->n_c ? r->n_c : 1) * sizeof(*map));
	struct reuse_chunk *sorted = malloc((r->n_c ? r->n_c : 1) * sizeof(*sorted));
	if (!map || !sorted) {
		free(map);
		free(sorted);
		s = BT_ERR_NOMEM;
		goto err_free_reuse;
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

err_free_reuse:
	reuse_free(r);
	return s;
}

/* ------------------------------------------------------------ pipeline */

enum slot_state { SLOT_EMPTY = 0, SLOT_BUSY, SLOT_DONE };

struct slot {
	struct discover_result res;
	struct tcdb_chunk chunk; /* unit leaders: the unit's code, compressed */
	size_t unit_end;	 /* unit leaders: one past the unit's last slot */
	int state;
};

struct pipe {
	const struct elfimg *img;
	struct discover_plan *plan;
	struct xlat_options xo;
	struct pbuild_reuse *reuse; /* --reuse index or NULL */
	struct slot *slots;	    /* one per entry of order[] */
	size_t *order;		    /* this round's plan indices, in plan order */
	size_t from, to;	    /* positions in order[] (from = 0) */
	gva_t *calls;		    /* call targets seen by the writer this round */
	size_t n_calls, cap_calls;
	int64_t chunk_id; /* writer: chunk of the unit being written */
	bool watch_signals;
	size_t next;	/* next region to hand out */
	size_t written; /* regions consumed by the writer */
	bool stop;
	enum bt_status err;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int block_cmp(const void *a, const void *b)
{
	const struct discover_block *x = a, *y = b;
	return x->guest_start < y->guest_start ? -1 : x->guest_start > y->guest_start;
}

/* Sort each region's blocks by address (nearly-sorted rowids make sqlite
 * append, not seek) and pack the code of a unit of regions into the
 * leader's compressed chunk. */
static enum bt_status pack_unit(struct pbuild_reuse *reuse, struct slot *sl, size_t n)
{
	struct tcdb_chunk *c = &sl[0].chunk;
	gva_t first = 0;
	bool have_first = false;
	tcdb_chunk_reset(c);
	for (size_t k = 0; k < n; k++) {
		struct discover_result *r = &sl[k].res;
		qsort(r->b, r->n, sizeof(r->b[0]), block_cmp);
		for (size_t i = 0; i < r->n; i++) {
			struct discover_block *b = &r->b[i];
			if (b->refusal)
				continue;
			struct tcdb_block tb = {
			    .code = r->data + b->code_off,
			    .code_len = b->code_len,
			    .pcmap = r->data + b->pcmap_off,
			    .pcmap_len = b->pcmap_len,
			    .n_exits = b->n_exits,
			};
			memcpy(tb.exits, b->exits, sizeof(tb.exits));
			BT_TRY(tcdb_chunk_add(c, &tb));
			if (!have_first) {
				first = b->guest_start;
				have_first = true;
			}
			b->payload_off = tb.payload_off;
		}
	}
	return c->raw_len ? reuse_seal(reuse, c, first) : BT_OK;
}

static void *worker(void *arg)
{
	struct pipe *pp = arg;
	struct xlat_ctx *ctx = NULL;
	struct discover_walker *w = NULL;
	enum bt_status s = xlat_create(&pp->xo, &ctx);
	if (s == BT_OK)
		s = discover_walker_create(&w);
	if (s == BT_OK && pp->reuse)
		discover_walker_set_translate(w, reuse_translate, pp->reuse);
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
		while (!pp->stop && pp->next < pp->to && pp->next >= pp->written + WINDOW)
			pthread_cond_wait(&pp->cv, &pp->mu);
		if (pp->stop || pp->next >= pp->to)
			break;
		size_t i = pp->next, end = pp->slots[i].unit_end;
		pp->next = end;
		pthread_mutex_unlock(&pp->mu);
		s = BT_OK;
		for (size_t k = i; k < end && s == BT_OK; k++)
			s = discover_walk(w, ctx, pp->img, pp->plan, &pp->plan->f[pp->order[k]],
					  &pp->slots[k].res);
		if (s == BT_OK)
			s = pack_unit(pp->reuse, &pp->slots[i], end - i);
		for (size_t k = i; k < end; k++)
			pp->slots[k].res.status = s;
		pthread_mutex_lock(&pp->mu);
		for (size_t k = i; k < end; k++)
			pp->slots[k].state = SLOT_DONE;
		pthread_cond_broadcast(&pp->cv);
	}
	pthread_mutex_unlock(&pp->mu);
out_destroy:
	discover_walker_destroy(w);
	xlat_destroy(ctx);
	return NULL;
}

static void progress(const struct pipe *pp, size_t done, size_t total, size_t round)
{
	static const char bar[] = "########################################";
	int width = 40;
	int fill = total ? (int)((double)done / (double)total * width) : width;
	fprintf(stderr, "\r  round %zu [%-40.*s] %3d%% %zu/%zu regions", round + 1, fill, bar,
		total ? (int)(100.0 * (double)done / (double)total) : 100, done, total);
	(void)pp;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Write one region's result and its chunk. */
static enum bt_status write_region(struct tcdb *db, const struct elfimg *img,
				   const struct discover_func *f, struct discover_result *r,
				   int64_t chunk_id, struct pbuild_stats *st)
{
	(void)img;
	struct tcdb_function tf = {
	    .name = f->name,
	    .address = f->start,
	    .size = f->kind == DISCOVER_SEED ? 0 : f->end - f->start,
	    .bytes_hash = r->bytes_hash,
	    .section = f->sec->name,
	    .covered_bytes = r->covered_bytes,
	    .refused_bytes = r->refused_bytes,
	    .kind = f->kind,
	};
	BT_TRY(tcdb_add_function(db, &tf));
	if (f->kind == DISCOVER_FUNC) {
		st->n_funcs++;
		st->func_bytes += f->end - f->start;
		st->covered_bytes += r->covered_bytes;
		st->refused_bytes += r->refused_bytes;
	} else if (f->kind == DISCOVER_SEED) {
		st->n_seeds++;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct discover_block *b = &r->b[i];
		struct tcdb_block tb = {
		    .guest_start = b->guest_start,
		    .guest_len = b->guest_len,
		    .n_insns = b->n_insns,
		    .guest_hash = b->guest_hash,
		    .flags = b->flags,
		    .refusal = b->refusal,
		    .refusal_addr = b->refusal_addr,
		    .code = r->data + b->code_off,
		    .code_len = b->code_len,
		    .n_exits = b->n_exits,
		    .pcmap = r->data + b->pcmap_off,
		    .pcmap_len = b->pcmap_len,
		    .function_id = tf.id,
		    .origin = TCDB_ORIGIN_STATIC,
		    .chunk_id = chunk_id,
		    .payload_off = b->payload_off,
		};
		memcpy(tb.exits, b->exits, sizeof(tb.exits));
		size_t before = tcdb_blocks_added(db);
		BT_TRY(tcdb_add_block(db, &tb));
		if (tcdb_blocks_added(db) != before) {
			if (b->refusal) {
				st->n_refused++;
			} else {
				st->n_blocks++;
				st->guest_code_bytes += b->guest_len;
				st->host_code_bytes += b->code_len;
			}
		}
	}
	return BT_OK;
}

/* A pending SIGINT, SIGTERM or SIGHUP (blocked by the caller), or 0. */
static int pending_signal(void)
{
	sigset_t set;
	if (sigpending(&set) != 0)
		return 0;
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < BT_ARRAY_SIZE(sigs); i++)
		if (sigismember(&set, sigs[i]))
			return sigs[i];
	return 0;
}

static int gva_cmp(const void *a, const void *b)
{
	gva_t x = *(const gva_t *)a, y = *(const gva_t *)b;
	return x < y ? -1 : x > y;
}

/* Run regions [pp->from, pp->to) with n workers, writing in order. */
static enum bt_status run_round(struct pipe *pp, int jobs, struct tcdb *db, struct pbuild_stats *st,
				bool show, size_t round)
{
	pthread_t *th = calloc((size_t)jobs, sizeof(*th));
	if (!th)
		return BT_ERR_NOMEM;
	pp->next = pp->written = pp->from;
	pp->stop = false;
	for (size_t i = pp->from; i < pp->to;) { /* units of consecutive regions */
		size_t end = i;
		uint64_t bytes = 0;
		while (end < pp->to && end - i < UNIT_REGIONS && bytes < UNIT_BYTES) {
			const struct discover_func *f = &pp->plan->f[pp->order[end]];
			bytes += f->kind == DISCOVER_SEED ? UNIT_BYTES / 4 : f->end - f->start;
			end++;
		}
		pp->slots[i].unit_end = end;
		i = end;
	}
	int started = 0;
	for (; started < jobs; started++)
		if (pthread_create(&th[started], NULL, worker, pp) != 0)
			break;
	enum bt_status s = started ? BT_OK : BT_ERR_INTERNAL;
	double last = 0;
	for (size_t i = pp->from; i < pp->to && s == BT_OK; i++) {
		pthread_mutex_lock(&pp->mu);
		while (pp->slots[i].state != SLOT_DONE && !pp->stop)
			pthread_cond_wait(&pp->cv, &pp->mu);
		if (pp->slots[i].state != SLOT_DONE) {
			s = pp->err ? pp->err : BT_ERR_INTERNAL;
			pthread_mutex_unlock(&pp->mu);
			break;
		}
		pthread_mutex_unlock(&pp->mu);
		struct slot *sl = &pp->slots[i];
		s = sl->res.status;
		if (s == BT_OK && sl->unit_end) { /* a unit leader: its chunk first */
			pp->chunk_id = 0;
			if (sl->chunk.raw_len) {
				s = tcdb_add_chunk(db, &sl->chunk, &pp->chunk_id);
				st->chunk_bytes += sl->chunk.z_len;
				st->chunk_raw_bytes += sl->chunk.raw_len;
			}
		}
		if (s == BT_OK)
			s = write_region(db, pp->img, &pp->plan->f[pp->order[i]], &sl->res,
					 pp->chunk_id, st);
		for (size_t c = 0; s == BT_OK && c < sl->res.n_calls; c++) {
			if (pp->n_calls == pp->cap_calls) {
				size_t cap = pp->cap_calls ? pp->cap_calls * 2 : 1024;
				gva_t *nc = realloc(pp->calls, cap * sizeof(*nc));
				if (!nc) {
					s = BT_ERR_NOMEM;
					break;
				}
				pp->calls = nc;
				pp->cap_calls = cap;
			}
			pp->calls[pp->n_calls++] = sl->res.calls[c];
		}
		discover_result_fini(&sl->res);
		tcdb_chunk_fini(&sl->chunk);
		if (s == BT_OK && pp->watch_signals && (st->signal = pending_signal()) != 0) {
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
			double t = now();
			if (t - last > 0.1 || i + 1 == pp->to) {
				progress(pp, i + 1 - pp->from, pp->to - pp->from, round);
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

enum bt_status pbuild_run(const struct pbuild_options *o, struct pbuild_stats *st)
{
	enum bt_status s;
	memset(st, 0, sizeof(*st));
	struct elfimg *img;
	BT_TRY(elfimg_open(o->image_path, &img));
	struct discover_plan *plan;
	if ((s = discover_plan(img, &plan)) != BT_OK)
		goto err_close_img;
	st->n_ex_table_leaders = plan->n_leaders;

	struct tcdb_image ti = {.entry = img->entry};
	snprintf(ti.path, sizeof(ti.path), "%s", o->image_path);
	elfimg_build_id_hex(img, ti.build_id);
	sha256_hex(img->sha256, ti.sha256);
	strcpy(ti.arch, "x86_64");
	struct pipe pp = {.img = img,
			  .plan = plan,
			  .xo = {.flags = o->xlat_flags, .checker = &xcheck_checker_ops},
			  .watch_signals = o->watch_signals};
	if (o->reuse_path) {
		double t0 = now();
		if ((s = reuse_load(o->reuse_path, &pp.xo, &pp.reuse)) != BT_OK)
			goto err_free_plan;
		st->n_reuse_old = pp.reuse->n;
		st->reuse_load_secs = now() - t0;
	}
	struct tcdb_provenance prov;
	tcdb_provenance_current(&pp.xo, &prov);
	snprintf(prov.tool_version, sizeof(prov.tool_version), "%s", PRETRANS_TOOL_VERSION);
	prov.created = o->created;
	struct tcdb *db;
	if ((s = tcdb_create(o->out_path, &ti, &prov, &db)) != BT_OK)
		goto err_free_plan;
	pthread_mutex_init(&pp.mu, NULL);
	pthread_cond_init(&pp.cv, NULL);

	pp.order = calloc(plan->n ? plan->n : 1, sizeof(*pp.order));
	if (!pp.order) {
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
		pp.from = 0;
		pp.to = n;
		pp.n_calls = 0;
		if ((s = run_round(&pp, o->jobs, db, st, o->progress, round)) != BT_OK)
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
		size_t *no = realloc(pp.order, (plan->n ? plan->n : 1) * sizeof(*no));
		if (!no) {
			s = BT_ERR_NOMEM;
			goto err_abort_db;
		}
		pp.order = no;
	}
	st->n_regions = plan->n;
	if (pp.reuse) {
		st->n_reused = pp.reuse->served;
		st->n_translated = pp.reuse->missed;
		st->n_chunks_copied = pp.reuse->chunks_copied;
		st->n_chunks_loaded = pp.reuse->chunks_loaded;
	}
	if ((s = tcdb_commit(db)) != BT_OK)
		goto err_free_slots;
	free(pp.slots);
	free(pp.order);
	free(pp.calls);
	pthread_mutex_destroy(&pp.mu);
	pthread_cond_destroy(&pp.cv);
	reuse_free(pp.reuse);
	discover_plan_free(plan);
	elfimg_close(img);
	return BT_OK;

err_abort_db:
	tcdb_abort(db);
err_free_slots:
	for (size_t i = 0; pp.slots && i < pp.to; i++) { /* results not written */
		discover_result_fini(&pp.slots[i].res);
		tcdb_chunk_fini(&pp.slots[i].chunk);
	}
	free(pp.slots);
	free(pp.order);
	free(pp.calls);
	pthread_mutex_destroy(&pp.mu);
	pthread_cond_destroy(&pp.cv);
err_free_plan:
	reuse_free(pp.reuse);
	discover_plan_free(plan);
err_close_img:
	elfimg_close(img);
	return s;
}
