/*
 * cpio: newc archive reader.
 *
 * Owns: parsing of the newc header (6-byte magic + 13 eight-digit hex
 * fields), name and data placement with 4-byte padding, path lookup.
 * Invariants:
 *  1. Every offset is computed with overflow-checked additions and compared
 *     with the buffer length BEFORE the bytes are read.
 *  2. A member name must be NUL-terminated exactly at namesize - 1.
 *  3. Freestanding: no libc; the buffer is never written.
 *  4. Once an iterator has failed or seen the trailer it keeps returning
 *     the same result.
 */
#include "guests/lib/cpio.h"

enum { CPIO_ST_OK, CPIO_ST_END, CPIO_ST_BAD };

static bool cpio_hex8(const uint8_t *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		uint8_t c = p[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = (v << 4) | d;
	}
	*out = v;
	return true;
}

/* a + b, rounded up to a multiple of 4, into *out; false on overflow. */
static bool cpio_add_pad(size_t a, size_t b, size_t *out)
{
	size_t s = a + b;

	if (s < a || s > (size_t)-1 - 3)
		return false;
	*out = (s + 3) & ~(size_t)3;
	return true;
}

static bool cpio_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

const char *cpio_path_norm(const char *path)
{
	for (;;) {
		if (path[0] == '/')
			path++;
		else if (path[0] == '.' && path[1] == '/')
			path += 2;
		else
			return path;
	}
}

void cpio_iter_init(struct cpio_iter *it, const void *buf, size_t len)
{
	it->buf = buf;
	it->len = buf ? len : 0;
	it->off = 0;
	it->done = false;
}

enum bt_status cpio_iter_next(struct cpio_iter *it, struct cpio_entry *out)
{
	static const char magic[6] = {'0', '7', '0', '7', '0', '1'};
	uint32_t f[13];
	const uint8_t *h;
	size_t name_off, data_off, next;

	if (it->done)
		return it->off == (size_t)-1 ? BT_ERR_FORMAT : BT_ERR_NOTFOUND;
	if (it->off > it->len || it->len - it->off < CPIO_HDR_SIZE)
		goto bad;
	h = it->buf + it->off;
	for (int i = 0; i < 6; i++)
		if (h[i] != (uint8_t)magic[i])
			goto bad;
	for (int i = 0; i < 13; i++)
		if (!cpio_hex8(h + 6 + 8 * i, &f[i]))
			goto bad;
	/* f: ino mode uid gid nlink mtime filesize devmajor devminor
	 *    rdevmajor rdevminor namesize check */
	uint32_t namesize = f[11];
	uint32_t filesize = f[6];
	if (namesize == 0)
		goto bad;
	name_off = it->off + CPIO_HDR_SIZE;
	if (!cpio_add_pad(name_off, namesize, &data_off))
		goto bad;
	/* The name itself must lie inside the buffer (padding may not, but the
	 * data offset check below requires it anyway). */
	if (data_off > it->len)
		goto bad;
	const char *name = (const char *)it->buf + name_off;
	if (name[namesize - 1] != '\0')
		goto bad;
	size_t name_len = 0;
	while (name[name_len] != '\0')
		name_len++;
	if (name_len != namesize - 1)
		goto bad;
	if (cpio_streq(name, CPIO_TRAILER)) {
		it->done = true;
		return BT_ERR_NOTFOUND;
	}
	if (!cpio_add_pad(data_off, filesize, &next))
		goto bad;
	/* The data must be in the buffer; the final padding may be absent only
	 * if nothing follows, which the next header check then rejects. */
	if (data_off + filesize > it->len || data_off + filesize < data_off)
		goto bad;
	out->name = name;
	out->name_len = name_len;
	out->data = it->buf + data_off;
	out->size = filesize;
	out->ino = f[0];
	out->mode = f[1];
	out->nlink = f[4];
	out->mtime = f[5];
	it->off = next;
	return BT_OK;
bad:
	it->done = true;
	it->off = (size_t)-1;
	return BT_ERR_FORMAT;
}

enum bt_status cpio_find(const void *buf, size_t len, const char *path, struct cpio_entry *out)
{
	struct cpio_iter it;
	struct cpio_entry e;
	enum bt_status st;

	if (!path || !out)
		return BT_ERR_INVALID;
	path = cpio_path_norm(path);
	cpio_iter_init(&it, buf, len);
	while ((st = cpio_iter_next(&it, &e)) == BT_OK) {
		if (cpio_streq(cpio_path_norm(e.name), path)) {
			*out = e;
			return BT_OK;
		}
	}
	return st;
}

enum bt_status cpio_validate(const void *buf, size_t len, size_t *count)
{
	struct cpio_iter it;
	struct cpio_entry e;
	enum bt_status st;
	size_t n = 0;

	cpio_iter_init(&it, buf, len);
	while ((st = cpio_iter_next(&it, &e)) == BT_OK)
		n++;
	if (st != BT_ERR_NOTFOUND)
		return st;
	if (count)
		*count = n;
	return BT_OK;
}
