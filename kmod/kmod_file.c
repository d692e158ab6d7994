/*
 * kmod/ (kmod.h): reading a module file — the whole file, decompressed for
 * .ko.xz (liblzma) and .ko.zst (libzstd) — checking it with the project's
 * ELF reader, its identity from .modinfo and the hash of its unrelocated
 * allocated sections (kmod.h invariants 1 and 2).
 */
#include "kmod/kmod.h"

#include "pretrans/base/log.h"
#include "pretrans/base/sha256.h"
#include "pretrans/elf/elfimg.h"

#include <elf.h>
#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static enum bt_status read_all(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		bt_err(LOG_KMOD, "%s: cannot open: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *b = malloc(cap);
	while (b) {
		n += fread(b + n, 1, cap - n, f);
		if (n < cap)
			break;
		if (cap >= KMOD_MAX_SIZE) {
			fclose(f);
			free(b);
			bt_err(LOG_KMOD, "%s: larger than %u MiB, not a module", path,
			       KMOD_MAX_SIZE >> 20);
			return BT_ERR_FORMAT;
		}
		cap *= 2;
		uint8_t *nb = realloc(b, cap);
		if (!nb)
			free(b);
		b = nb;
	}
	bool err = ferror(f);
	fclose(f);
	if (!b)
		return BT_ERR_NOMEM;
	if (err) {
		free(b);
		bt_err(LOG_KMOD, "%s: read error", path);
		return BT_ERR_IO;
	}
	*out = b;
	*len = n;
	return BT_OK;
}

static enum bt_status unxz(const char *path, const uint8_t *z, size_t zl, uint8_t **out,
			   size_t *len)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&s, 1ull << 30, 0) != LZMA_OK)
		return BT_ERR_NOMEM;
	size_t cap = zl * 4 + 4096;
	uint8_t *b = malloc(cap);
	s.next_in = z;
	s.avail_in = zl;
	lzma_ret r = LZMA_OK;
	while (b) {
		s.next_out = b + s.total_out;
		s.avail_out = cap - s.total_out;
		r = lzma_code(&s, LZMA_FINISH);
		if (r != LZMA_OK || s.avail_out != 0)
			break;
		if (cap >= KMOD_MAX_SIZE) {
			r = LZMA_MEMLIMIT_ERROR;
			break;
		}
		cap *= 2;
		uint8_t *nb = realloc(b, cap);
		if (!nb)
			free(b);
		b = nb;
	}
	size_t n = s.total_out;
	lzma_end(&s);
	if (!b)
		return BT_ERR_NOMEM;
	if (r != LZMA_STREAM_END) {
		free(b);
		bt_err(LOG_KMOD, "%s: not a valid xz stream (truncated or damaged, liblzma %d)",
		       path, (int)r);
		return BT_ERR_FORMAT;
	}
	*out = b;
	*len = n;
	return BT_OK;
}

static enum bt_status unzstd(const char *path, const uint8_t *z, size_t zl, uint8_t **out,
			     size_t *len)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	if (!ds)
		return BT_ERR_NOMEM;
	ZSTD_initDStream(ds);
	size_t cap = zl * 4 + 4096;
	uint8_t *b = malloc(cap);
	ZSTD_inBuffer in = {z, zl, 0};
	ZSTD_outBuffer o = {b, cap, 0};
	size_t r = 1;
	while (b) {
		o.dst = b;
		o.size = cap;
		r = ZSTD_decompressStream(ds, &o, &in);
		if (ZSTD_isError(r) || r == 0)
			break;
		if (o.pos < o.size && in.pos == in.size)
			break; /* input ended inside a frame: truncated */
		if (cap >= KMOD_MAX_SIZE) {
			r = (size_t)-1;
			break;
		}
		cap *= 2;
		uint8_t *nb = realloc(b, cap);
		if (!nb)
			free(b);
		b = nb;
	}
	ZSTD_freeDStream(ds);
	if (!b)
		return BT_ERR_NOMEM;
	if (r != 0) {
		free(b);
		bt_err(LOG_KMOD, "%s: not a valid zstd frame (truncated or damaged)", path);
		return BT_ERR_FORMAT;
	}
	*out = b;
	*len = o.pos;
	return BT_OK;
}

/* Copy the value of `key=` from .modinfo (NUL-separated key=value). */
static void modinfo(const uint8_t *p, uint64_t n, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	for (uint64_t i = 0; i < n;) {
		uint64_t e = i;
		while (e < n && p[e])
			e++;
		if (e - i > kl && memcmp(p + i, key, kl) == 0 && p[i + kl] == '=') {
			size_t vl = (size_t)(e - i - kl - 1);
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, p + i + kl + 1, vl);
			out[vl] = 0;
			return;
		}
		i = e + 1;
	}
}

static void file_name(const char *path, char *out, size_t cap)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	snprintf(out, cap, "%s", b);
	char *dot = strstr(out, ".ko");
	if (dot)
		*dot = 0;
}

enum bt_status kmod_read_file(const char *path, uint8_t **buf, size_t *len)
{
	uint8_t *raw;
	size_t rl;
	enum bt_status s = read_all(path, &raw, &rl);
	if (s != BT_OK)
		return s;
	if (ends_with(path, ".xz")) {
		s = unxz(path, raw, rl, buf, len);
		free(raw);
	} else if (ends_with(path, ".zst")) {
		s = unzstd(path, raw, rl, buf, len);
		free(raw);
	} else {
		*buf = raw;
		*len = rl;
	}
	return s;
}

enum bt_status kmod_open(const char *path, struct kmod **out)
{
	struct kmod *m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return BT_ERR_NOMEM;
	}
	enum bt_status s = kmod_read_file(path, &m->buf, &m->len);
	if (s != BT_OK)
		goto err_free;
	if (m->len < 4 || memcmp(m->buf, ELFMAG, SELFMAG) != 0) {
		bt_err(LOG_KMOD, "%s: not an ELF file (a .ko, .ko.xz or .ko.zst module is wanted)",
		       path);
		s = BT_ERR_FORMAT;
		goto err_free;
	}
	if ((s = elfimg_open_mem_nohash(path, m->buf, m->len, &m->img)) != BT_OK)
		goto err_free; /* the reader logged what is wrong with it */
	if (m->img->type != ET_REL) {
		bt_err(LOG_KMOD, "%s: ELF type %u is not a relocatable module (ET_REL)", path,
		       m->img->type);
		s = BT_ERR_FORMAT;
		goto err_free;
	}
	file_name(path, m->name, sizeof(m->name));
	const struct elfimg_section *mi = elfimg_section_by_name(m->img, ".modinfo");
	const uint8_t *mp = mi ? elfimg_section_bytes(m->img, mi) : NULL;
	if (mp) {
		modinfo(mp, mi->size, "name", m->name, sizeof(m->name));
		modinfo(mp, mi->size, "vermagic", m->vermagic, sizeof(m->vermagic));
		modinfo(mp, mi->size, "srcversion", m->srcversion, sizeof(m->srcversion));
	}
	size_t rl_ = strcspn(m->vermagic, " ");
	if (rl_ >= sizeof(m->release))
		rl_ = sizeof(m->release) - 1;
	memcpy(m->release, m->vermagic, rl_);
	m->release[rl_] = 0;

	/* allocated sections, and their hash (invariant 2) */
	m->secs = calloc(m->img->nsecs ? m->img->nsecs : 1, sizeof(*m->secs));
	if (!m->secs) {
		s = BT_ERR_NOMEM;
		goto err_free;
	}
	struct sha256_ctx h;
	sha256_init(&h);
	for (size_t i = 0; i < m->img->nsecs; i++) {
		const struct elfimg_section *e = &m->img->secs[i];
		if (!(e->flags & SHF_ALLOC))
			continue;
		const uint8_t *b = elfimg_section_bytes(m->img, e);
		struct kmod_section *k = &m->secs[m->nsecs++];
		k->name = e->name;
		k->index = e->index;
		k->size = e->size;
		k->code = (e->flags & SHF_EXECINSTR) && b && e->size > 0;
		uint8_t hdr[16];
		memcpy(hdr, &e->type, 4);
		memcpy(hdr + 4, &e->flags, 4);
		memcpy(hdr + 8, &e->size, 8);
		sha256_update(&h, e->name, strlen(e->name) + 1);
		sha256_update(&h, hdr, sizeof(hdr));
		if (b)
			sha256_update(&h, b, e->size);
	}
	uint8_t d[SHA256_LEN];
	sha256_final(&h, d);
	sha256_hex(d, m->sections_hash);
	*out = m;
	return BT_OK;

err_free:
	kmod_close(m);
	return s;
}

void kmod_close(struct kmod *m)
{
	if (!m)
		return;
	if (m->secs)
		for (size_t i = 0; i < m->nsecs; i++)
			free(m->secs[i].bytes);
	free(m->secs);
	elfimg_close(m->img);
	free(m->buf);
	free(m->path);
	free(m);
}
