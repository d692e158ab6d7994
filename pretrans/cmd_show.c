/*
 * `pretrans show DB FUNCTION`: one function as objdump would list it, with
 * the translation of each of its blocks under the guest instructions it
 * came from (or, with --guest, the guest instructions only).
 *
 * Contracts
 *  1. Start-up reads only what one function needs: the database's
 *     function rows, the rows of the blocks that start inside the function
 *     (through the primary key, tcdb_foreach_block_range), and the image
 *     mapped without hashing it.  The image is identified by its GNU
 *     build-id when the database recorded one, else by its SHA-256; every
 *     block shown is checked against the guest-bytes hash stored with it,
 *     so an image that kept its build-id but changed code is still caught
 *     (exit 2).  `pretrans verify` checks the whole file.
 *  2. Names are resolved as `pretrans diff` prints them: a symbol stored in
 *     the database, an alias of one (aliases are dropped when stored:
 *     memcpy -> __memcpy, found through the image's symbol table),
 *     NAME@FILE for a static function (FILE: the STT_FILE symbol before it,
 *     matched by basename), NAME@FILE#K for the K-th of equal ones by
 *     address.  A name that still denotes several functions is an error
 *     listing them (exit 2); never a silent pick.
 *  3. Branch targets and code addresses are named from the image's symbol
 *     table (pretrans/asmfmt), the vCPU fields of translated code from the
 *     vCPU ABI.
 */
#include "pretrans/cmds.h"

#include "pretrans/asmfmt/asmfmt.h"
#include "pretrans/base/log.h"
#include "pretrans/base/sha256.h"
#include "pretrans/base/vec.h"
#include "pretrans/discover.h"
#include "pretrans/elf/elfimg.h"
#include "pretrans/xlat/xlat.h"

#include <elf.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct tcdb_prov want = {.xlat_version = XLAT_VERSION,
				      .abi_version = VCPU_ABI_VERSION,
				      .n_exit_kinds = XLAT_NEXIT_KINDS,
				      .n_refusals = XLAT_NREFUSALS};

/* ------------------------------------------------------------ symbols */

/* Code symbols of the image, sorted by address, preferred name first. */
struct ssym {
	gva_t addr;
	uint64_t size;
	const char *name;
	uint8_t rank; /* 0 global, 1 weak, 2 local function, 3 label */
};

struct symtab {
	const struct elfimg *img;
	struct ssym *v; /* code symbols */
	size_t n;
	struct ssym *obj; /* sized data objects above address 0 (not per-CPU) */
	size_t nobj;
};

static int ssym_cmp(const void *pa, const void *pb)
{
	const struct ssym *a = pa, *b = pb;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank - b->rank;
	return strcmp(a->name, b->name);
}

static bool code_symbol(const struct elfimg *img, const struct elfimg_symbol *y)
{
	if ((y->type != STT_FUNC && y->type != STT_NOTYPE) || !y->name[0] ||
	    y->shndx == SHN_UNDEF || y->shndx >= SHN_LORESERVE)
		return false;
	if (y->name[0] == '.' && y->name[1] == 'L')
		return false; /* assembler-local label */
	return elfimg_code_at(img, y->addr) != NULL;
}

/* Section shndx is allocated above address 0 (not .data..percpu, whose
 * symbols are offsets from a per-CPU base). */
static bool section_based(const struct elfimg *img, uint16_t shndx)
{
	for (size_t i = 0; i < img->nsecs; i++)
		if (img->secs[i].index == shndx)
			return img->secs[i].addr != 0;
	return false;
}

static enum bt_status symtab_load(const struct elfimg *img, struct symtab *t)
{
	t->img = img;
	t->v = malloc((img->nsyms ? img->nsyms : 1) * sizeof(*t->v));
	if (!t->v)
		return BT_ERR_NOMEM;
	t->obj = malloc((img->nsyms ? img->nsyms : 1) * sizeof(*t->obj));
	if (!t->obj)
		return BT_ERR_NOMEM;
	t->n = t->nobj = 0;
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *y = &img->syms[i];
		if (y->type == STT_OBJECT && y->size && y->addr && y->shndx != SHN_UNDEF &&
		    y->shndx < SHN_LORESERVE && section_based(img, y->shndx))
			t->obj[t->nobj++] =
			    (struct ssym){y->addr, y->size, y->name, y->bind == STB_LOCAL};
		if (!code_symbol(img, y))
			continue;
		/* objdump's preference: global, weak, local functions, labels */
		uint8_t rank = y->type != STT_FUNC     ? 3
			       : y->bind == STB_GLOBAL ? 0
			       : y->bind == STB_WEAK   ? 1
						       : 2;
		t->v[t->n++] = (struct ssym){y->addr, y->size, y->name, rank};
	}
	qsort(t->v, t->n, sizeof(*t->v), ssym_cmp);
	qsort(t->obj, t->nobj, sizeof(*t->obj), ssym_cmp);
	return BT_OK;
}

/* The index of the first entry of v[0, n) above addr. */
static size_t ssym_upper(const struct ssym *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A data object covering addr (a rip-relative or absolute operand). */
static bool object_name(const struct symtab *t, uint64_t addr, char *buf, size_t n)
{
	size_t i = ssym_upper(t->obj, t->nobj, addr);
	for (size_t k = 0; i > 0 && k < 8; i--, k++) { /* nested objects: a few back */
		const struct ssym *y = &t->obj[i - 1];
		if (addr - y->addr < y->size) {
			if (addr == y->addr)
				snprintf(buf, n, "%s", y->name);
			else
				snprintf(buf, n, "%s+0x%llx", y->name,
					 (unsigned long long)(addr - y->addr));
			return true;
		}
	}
	return false;
}

/* asmfmt_sym_fn: the preferred symbol at or before addr in the same code
 * section, as objdump names targets ("func", "func+0x12"). */
static bool symtab_name(void *o, uint64_t addr, char *buf, size_t n)
{
	const struct symtab *t = o;
	const struct elfimg_code *c = elfimg_code_at(t->img, addr);
	if (!c)
		return object_name(t, addr, buf, n);
	size_t lo = ssym_upper(t->v, t->n, addr);
	if (lo == 0)
		return false;
	size_t i = lo - 1;
	while (i > 0 && t->v[i - 1].addr == t->v[i].addr)
		i--; /* the preferred name of that address */
	const struct ssym *y = &t->v[i];
	if (y->addr < c->start)
		return false;
	if (addr == y->addr)
		snprintf(buf, n, "%s", y->name);
	else
		snprintf(buf, n, "%s+0x%llx", y->name, (unsigned long long)(addr - y->addr));
	return true;
}

/* ------------------------------------------------------------ the function */

#define MAX_CAND 64

struct cand {
	int64_t id;
	gva_t addr;
	uint64_t size, covered, refused;
	char name[256], section[64], file[256];
};

struct find {
	const char *name; /* NULL: by address */
	gva_t addr;
	const gva_t *alias_addrs; /* by address set (aliases) */
	size_t n_alias;
	gva_t alias_buf[16];
	struct cand c[MAX_CAND];
	size_t n, total;
};

static int find_func(void *o, const struct tcdb_function *f)
{
	struct find *q = o;
	bool hit;
	if (f->kind == DISCOVER_SEED || f->kind == DISCOVER_SWEEP)
		hit = q->name == NULL && !q->alias_addrs && f->address == q->addr;
	else if (q->alias_addrs) {
		hit = false;
		for (size_t i = 0; i < q->n_alias; i++)
			hit |= f->address == q->alias_addrs[i];
	} else if (q->name)
		hit = !strcmp(f->name, q->name);
	else
		hit = q->addr - f->address < (f->size ? f->size : 1);
	if (!hit)
		return 0;
	q->total++;
	if (q->n < MAX_CAND) {
		struct cand *c = &q->c[q->n++];
		*c = (struct cand){.id = f->id,
				   .addr = f->address,
				   .size = f->size,
				   .covered = f->covered_bytes,
				   .refused = f->refused_bytes};
		snprintf(c->name, sizeof(c->name), "%s", f->name);
		snprintf(c->section, sizeof(c->section), "%s", f->section);
	}
	return 0;
}

static const char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* The source file of each candidate: the STT_FILE symbol before its local
 * symbol in the table (globals have none). */
static void cand_files(const struct elfimg *img, struct find *q)
{
	const char *file = "";
	for (size_t i = 0; i < img->nsyms; i++) {
		const struct elfimg_symbol *y = &img->syms[i];
		if (y->type == STT_FILE) {
			file = y->name;
			continue;
		}
		if (y->bind != STB_LOCAL || y->type != STT_FUNC)
			continue;
		for (size_t k = 0; k < q->n; k++)
			if (y->addr == q->c[k].addr && !strcmp(y->name, q->c[k].name) &&
			    !q->c[k].file[0])
				snprintf(q->c[k].file, sizeof(q->c[k].file), "%s", file);
	}
}

static int cand_cmp(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* Keep the candidates whose file has FILE's basename, then the K-th. */
static void cand_filter(struct find *q, const char *file, long ord)
{
	qsort(q->c, q->n, sizeof(q->c[0]), cand_cmp);
	if (file) {
		size_t k = 0;
		for (size_t i = 0; i < q->n; i++)
			if (!strcmp(basename_of(q->c[i].file), basename_of(file)) ||
			    (!strcmp(file, "?") && !q->c[i].file[0]))
				q->c[k++] = q->c[i];
		q->n = q->total = k;
	}
	if (ord > 0) {
		if ((size_t)ord <= q->n) {
			q->c[0] = q->c[ord - 1];
			q->n = q->total = 1;
		} else {
			q->n = q->total = 0;
		}
	}
}

/* Addresses of the image's code symbols called name (for aliases). */
static size_t alias_addrs(const struct elfimg *img, const char *name, gva_t *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < img->nsyms && n < max; i++)
		if (!strcmp(img->syms[i].name, name) && code_symbol(img, &img->syms[i]))
			out[n++] = img->syms[i].addr;
	return n;
}

/* ------------------------------------------------------------ image */

/* The image the database was built from: its recorded path (made absolute
 * by tcdb_image_locate for older databases) or --image; identified by
 * build-id when recorded, else by SHA-256 (contract 1). */
static enum bt_status open_image(struct tcdb *db, const char *db_path, const char *given,
				 struct elfimg **out)
{
	struct tcdb_image im;
	BT_TRY(tcdb_get_image(db, &im));
	char path[sizeof(im.path) + 8];
	if (given)
		snprintf(path, sizeof(path), "%s", given);
	else
		tcdb_image_locate(db_path, im.path, path, sizeof(path));
	struct elfimg *img;
	enum bt_status s = elfimg_open_nohash(path, &img);
	if (s != BT_OK) {
		if (!given)
			bt_cli_error("show: %s was built from %s, which cannot be opened; name the "
				     "image with --image IMAGE",
				     db_path, im.path);
		return s;
	}
	char bid[129];
	elfimg_build_id_hex(img, bid);
	const char *what = NULL;
	char got[65];
	if (im.build_id[0]) {
		if (strcmp(bid, im.build_id))
			what = "build-id";
		snprintf(got, sizeof(got), "%.40s", bid[0] ? bid : "(none)");
	} else {
		if ((s = elfimg_hash(img)) != BT_OK) {
			elfimg_close(img);
			return s;
		}
		sha256_hex(img->sha256, got);
		if (strcmp(got, im.sha256))
			what = "SHA-256";
	}
	if (what) {
		bt_cli_error("show: %s is not the image the database was built from (%s "
			     "%.16s..., %s has %.16s... for %s): give the right one with --image "
			     "or rebuild with `pretrans build`",
			     path, what, got, db_path, im.build_id[0] ? im.build_id : im.sha256,
			     im.path);
		elfimg_close(img);
		return BT_ERR_VERSION;
	}
	*out = img;
	return BT_OK;
}

/* ------------------------------------------------------------ listing */

/* Guest instructions of one block, formatted before its host code. */
#define BLOCK_INSNS 1024

struct guest_insns {
	gva_t va[BLOCK_INSNS];
	char text[BLOCK_INSNS][200];
	int n;
};

struct show {
	struct guest_insns g; /* the block being listed */
	const struct elfimg *img;
	struct xlat_source src;
	struct asmfmt fmt;
	struct symtab syms;
	bool guest_only;
	int blocks, stale;
};

/* objdump -d's line: address, up to 7 bytes, instruction (more bytes on
 * continuation lines). */
static void objdump_line(const uint8_t *p, size_t len, gva_t va, const char *text)
{
	for (size_t off = 0; off < len || off == 0; off += 7) {
		char hex[32] = "";
		for (size_t k = off; k < len && k < off + 7; k++)
			snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x ", p[k]);
		if (off == 0)
			printf("%16llx:\t%-21s\t%s\n", (unsigned long long)va, hex, text);
		else
			printf("%16llx:\t%s\n", (unsigned long long)(va + off), hex);
		if (len == 0)
			break;
	}
}

static void show_guest_only(struct show *sh, gva_t addr, uint64_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf || elfimg_read(sh->img, addr, buf, size) != BT_OK) {
		printf("(the image holds no bytes at %#llx)\n", (unsigned long long)addr);
		free(buf);
		return;
	}
	for (uint64_t off = 0; off < size;) {
		char text[256];
		size_t n = asmfmt_insn(&sh->fmt, buf + off, size - off, addr + off, false, text,
				       sizeof(text));
		objdump_line(buf + off, n ? n : 1, addr + off, text);
		off += n ? n : 1;
	}
	free(buf);
}

static void print_guest_until(const struct guest_insns *g, int *gi, gva_t upto)
{
	while (*gi < g->n && g->va[*gi] <= upto) {
		printf("%16llx:  %s\n", (unsigned long long)g->va[*gi], g->text[*gi]);
		(*gi)++;
	}
}

static int show_block(void *o, const struct tcdb_block *row)
{
	const struct bt_block *b = &row->blk;
	struct show *sh = o;
	struct guest_insns *g = &sh->g;
	sh->blocks++;
	uint8_t gbuf[4096];
	size_t glen =
	    sh->src.read(sh->src.opaque, b->guest_start, gbuf, BT_MIN(b->guest_len, sizeof(gbuf)));
	bool stale = glen != b->guest_len || xlat_hash_bytes(gbuf, glen) != b->guest_hash;
	sh->stale += stale;
	char where[256] = "?";
	symtab_name(&sh->syms, b->guest_start, where, sizeof(where));
	if (b->refusal)
		printf("\nblock %llx <%s>: %u bytes NOT TRANSLATED: %s at %#llx\n",
		       (unsigned long long)b->guest_start, where, b->guest_len,
		       xlat_refusal_str((enum xlat_refusal)b->refusal),
		       (unsigned long long)b->refusal_addr);
	else
		printf("\nblock %llx <%s>: %u guest bytes, %u insns -> %u host bytes%s\n",
		       (unsigned long long)b->guest_start, where, b->guest_len, b->n_insns,
		       b->code_len, row->origin == TCDB_ORIGIN_LEARNED ? " (learned)" : "");
	if (stale)
		printf("  (the image's bytes differ from the ones this block was translated "
		       "from)\n");
	g->n = 0;
	for (size_t off = 0; off < glen && g->n < BLOCK_INSNS;) {
		size_t n = asmfmt_insn(&sh->fmt, gbuf + off, glen - off, b->guest_start + off,
				       false, g->text[g->n], sizeof(g->text[0]));
		g->va[g->n++] = b->guest_start + off;
		off += n ? n : 1;
	}
	/* Each host instruction follows the guest instruction the pc map
	 * attributes it to (one without an entry: its predecessor's); host
	 * code before the first attributed one (the block's entry check)
	 * comes first. */
	int gi = 0;
	bool seen = false;
	gva_t cur = 0;
	for (uint32_t off = 0; !b->refusal && off < b->code_len;) {
		gva_t rip;
		uint32_t spilled;
		if (xlat_pcmap_lookup(b->pcmap, b->pcmap_len, b->guest_start, off, &rip,
				      &spilled) == BT_OK) {
			cur = rip;
			seen = true;
		}
		if (seen)
			print_guest_until(g, &gi, cur);
		char text[256];
		size_t n = asmfmt_insn(&sh->fmt, b->code + off, b->code_len - off, off, true, text,
				       sizeof(text));
		printf("%24s+%04x  %s\n", "", off, text);
		off += n ? (uint32_t)n : 1;
	}
	print_guest_until(g, &gi, ~(gva_t)0);
	if (b->refusal)
		return 0;
	for (uint32_t i = 0; i < b->n_exits; i++) {
		const struct bt_exit *e = &b->exits[i];
		char name[256] = "";
		printf("  exit %u: %-9s -> %#llx", i,
		       xlat_exit_kind_str((enum xlat_exit_kind)e->kind),
		       (unsigned long long)e->target);
		if (e->target && symtab_name(&sh->syms, e->target, name, sizeof(name)))
			printf(" <%s>", name);
		if (e->patch_off != ~0u)
			printf("  patch +%04x", e->patch_off);
		printf("  stub +%04x\n", e->stub_off);
	}
	return 0;
}

/* ------------------------------------------------------------ command */

static const char usage_line[] =
    "usage: pretrans show DB FUNCTION|0xADDR [--guest] [-M intel|att] [--image IMAGE]";

/* Resolve what (contract 2) into one function of db; exit status or -1. */
static int resolve_in(struct find *q, struct tcdb *db, const char *db_path,
		      const struct elfimg *img, const char *what, struct cand *out)
{
	char name[512];
	snprintf(name, sizeof(name), "%s", what);
	char *end;
	unsigned long long a = strtoull(what, &end, 16);
	if (!strncmp(what, "0x", 2) && what[2] && !*end) {
		q->addr = a;
	} else {
		long ord = 0;
		char *hash = strrchr(name, '#');
		if (hash && hash[1] && strspn(hash + 1, "0123456789") == strlen(hash + 1)) {
			ord = strtol(hash + 1, NULL, 10);
			*hash = 0;
		}
		char *at = strchr(name, '@');
		const char *file = NULL;
		if (at) {
			*at = 0;
			file = at + 1;
		}
		q->name = name;
		enum bt_status s = tcdb_foreach_function(db, find_func, q);
		if (s != BT_OK)
			return pretrans_exit_code(s);
		if (q->total == 0) { /* an alias the database dropped? */
			q->n_alias = alias_addrs(img, name, q->alias_buf, 16);
			q->alias_addrs = q->alias_buf;
			if (q->n_alias && (s = tcdb_foreach_function(db, find_func, q)) != BT_OK)
				return pretrans_exit_code(s);
			if (q->total == 1)
				fprintf(stderr, "pretrans: note: %s is an alias of %s\n", name,
					q->c[0].name);
		}
		cand_files(img, q);
		if (file || ord)
			cand_filter(q, file, ord);
		if (q->total == 0) {
			bt_cli_error("show: no function '%s' in %s", what, db_path);
			return PRETRANS_EXIT_INPUT;
		}
		if (q->total > 1) {
			bt_cli_error("show: '%s' names %zu functions in %s; name one of them:",
				     what, q->total, db_path);
			for (size_t i = 0; i < q->n; i++) {
				char key[600];
				int same = 0;
				for (size_t j = 0; j < q->n; j++)
					same += !strcmp(q->c[j].file, q->c[i].file);
				int ordn = 1;
				for (size_t j = 0; j < i; j++)
					ordn += !strcmp(q->c[j].file, q->c[i].file);
				if (same > 1)
					snprintf(key, sizeof(key), "%s@%s#%d", q->c[i].name,
						 q->c[i].file[0] ? basename_of(q->c[i].file) : "?",
						 ordn);
				else
					snprintf(key, sizeof(key), "%s@%s", q->c[i].name,
						 q->c[i].file[0] ? basename_of(q->c[i].file) : "?");
				fprintf(stderr, "  %-48s 0x%llx  %llu bytes  %s\n", key,
					(unsigned long long)q->c[i].addr,
					(unsigned long long)q->c[i].size, q->c[i].section);
			}
			if (q->total > q->n)
				fprintf(stderr, "  ... %zu more\n", q->total - q->n);
			return PRETRANS_EXIT_INPUT;
		}
		*out = q->c[0];
		return -1;
	}
	enum bt_status s = tcdb_foreach_function(db, find_func, q);
	if (s != BT_OK)
		return pretrans_exit_code(s);
	if (q->total == 0) {
		bt_cli_error("show: no function at %s in %s", what, db_path);
		return PRETRANS_EXIT_INPUT;
	}
	cand_files(img, q);
	*out = q->c[0]; /* the first row covering it (rows do not overlap) */
	return -1;
}

static int resolve(struct tcdb *db, const char *db_path, const struct elfimg *img, const char *what,
		   struct cand *out)
{
	struct find *q = calloc(1, sizeof(*q));
	if (!q)
		return pretrans_exit_code(BT_ERR_NOMEM);
	int rc = resolve_in(q, db, db_path, img, what, out);
	free(q);
	return rc;
}

int cmd_show(int argc, char **argv)
{
	static const struct option lo[] = {{"image", required_argument, NULL, 'i'},
					   {"guest", no_argument, NULL, 'g'},
					   {"disassembler-options", required_argument, NULL, 'M'},
					   {NULL, 0, NULL, 0}};
	const char *image = NULL;
	enum asmfmt_syntax syn = ASMFMT_INTEL;
	bool guest_only = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":gM:", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			image = optarg;
			break;
		case 'g':
			guest_only = true;
			break;
		case 'M':
			if (!asmfmt_parse_syntax(optarg, &syn))
				return bt_cli_usage("show: -M wants intel or att, not '%s'",
						    optarg);
			break;
		default:
			return bt_cli_bad_option(c, argc, argv, optind, optopt);
		}
	}
	if (argc - optind != 2)
		return bt_cli_usage("%s", usage_line);
	const char *db_path = argv[optind], *what = argv[optind + 1];
	struct tcdb *db;
	enum bt_status s = tcdb_open(db_path, TCDB_RDONLY, &want, NULL, &db);
	if (s != BT_OK)
		return pretrans_exit_code(s);
	struct elfimg *img = NULL;
	struct show *sh = calloc(1, sizeof(*sh));
	int rc = 0;
	if (!sh)
		s = BT_ERR_NOMEM;
	if (s == BT_OK)
		s = open_image(db, db_path, image, &img);
	if (s != BT_OK) {
		rc = pretrans_exit_code(s);
		goto out;
	}
	struct cand f;
	if ((rc = resolve(db, db_path, img, what, &f)) >= 0)
		goto out;
	rc = 0;
	if ((s = symtab_load(img, &sh->syms)) != BT_OK) {
		rc = pretrans_exit_code(s);
		goto out;
	}
	sh->img = img;
	sh->guest_only = guest_only;
	discover_source_from_elf(img, &sh->src);
	asmfmt_init(&sh->fmt, syn);
	asmfmt_set_symbols(&sh->fmt, symtab_name, &sh->syms);
	gva_t hi = f.addr + (f.size ? f.size : 1);
	if (guest_only) {
		char head[300];
		if (!symtab_name(&sh->syms, f.addr, head, sizeof(head)))
			snprintf(head, sizeof(head), "%s", f.name);
		printf("%016llx <%s>:\n", (unsigned long long)f.addr, head); /* objdump's name */
		show_guest_only(sh, f.addr, f.size);
		goto out;
	}
	printf("%s%s%s  %#llx..%#llx  (%llu bytes, %s), translated %llu bytes, refused %llu\n",
	       f.name, f.file[0] ? " @ " : "", f.file, (unsigned long long)f.addr,
	       (unsigned long long)hi, (unsigned long long)f.size, f.section,
	       (unsigned long long)f.covered, (unsigned long long)f.refused);
	s = tcdb_foreach_block_range(db, f.addr, hi, show_block, sh);
	if (s != BT_OK) {
		rc = pretrans_exit_code(s);
		goto out;
	}
	if (sh->blocks == 0)
		printf("(no blocks start inside it)\n");
	if (sh->stale) {
		bt_cli_error("show: %d blocks of %s do not match the bytes of %s: it is not the "
			     "file %s was built from (`pretrans verify` checks every block)",
			     sh->stale, f.name, img->path, db_path);
		rc = PRETRANS_EXIT_INPUT;
	}
out:
	if (sh) {
		free(sh->syms.v);
		free(sh->syms.obj);
	}
	free(sh);
	elfimg_close(img);
	tcdb_close(db);
	return rc;
}
