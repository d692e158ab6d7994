/*
 * Authentication of the translation-cache database (see tcdb.h, docs/db.md
 * "Trust"): the user's key file, the per-database nonce, and the HMAC-SHA256
 * tags that make host code in a database runnable only if this user's key
 * wrote it.
 *
 * Invariants
 *  1. The key is 32 bytes from getrandom(2) in $XDG_CONFIG_HOME/btkern/db.key
 *     (default ~/.config/btkern/db.key), never inside a database.  It is
 *     created once: written to a fresh O_EXCL temporary file (mode 0600) in
 *     a 0700 directory, then link(2)ed to its name, so two processes racing
 *     to create it both end up with the one that won the link.
 *  2. A key file not owned by the effective user, accessible to group or
 *     other, or not exactly 32 bytes is refused (BT_ERR_AUTH) with a message.
 *  3. Every tag starts with a domain string and the database's nonce, so a
 *     tag of one kind, or of another database, never verifies as another.
 *     The nonce is HMAC(key, "btkern-tcdb-nonce" image provenance) cut to
 *     16 bytes: unpredictable without the key and distinct per image,
 *     options and build time, yet the same calls with the same key still
 *     give a byte-identical file (tcdb.c invariant 4).
 *     Tags:  identity  = HMAC(key, "btkern-tcdb-identity" nonce schema image
 *                             provenance)                 meta 'mac'
 *            chunk     = HMAC(key, "btkern-tcdb-chunk" nonce id raw_len
 *                             SHA256(stored zstd bytes))  chunks.mac
 *            row       = HMAC(key, "btkern-tcdb-row" nonce 11 integer
 *                             columns, code, exits, pcmap) blocks.mac
 *            pack      = HMAC(key, "btkern-tcdb-pack" nonce kind codec
 *                             raw_len n_items SHA256(stored bytes))
 *                                                         packs.mac
 *     each cut to its first TCDB_MAC_LEN (16) bytes, as RFC 4868 does: a
 *     forgery still needs 2^128 tries, and the tags of a distribution
 *     kernel's ~760,000 rows take 12 MB instead of 24 MB.
 *  4. tcdb_auth_fail() logs one line per database and marks it untrusted;
 *     an untrusted database serves no more blocks.
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- key file */

static enum bt_status random_bytes(uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			bt_err(LOG_DB, "getrandom: %s", strerror(errno));
			return BT_ERR_IO;
		}
		p += r;
		n -= (size_t)r;
	}
	return BT_OK;
}

/* $XDG_CONFIG_HOME/btkern (or ~/.config/btkern) into dir. */
static enum bt_status key_dir(char *dir, size_t cap, char *base, size_t base_cap)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && x[0] == '/') {
		snprintf(base, base_cap, "%s", x);
	} else {
		const char *home = getenv("HOME");
		if (!home || home[0] != '/') {
			struct passwd *pw = getpwuid(geteuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home) {
			bt_err(LOG_DB, "cannot find the home directory for the database key: set "
				       "HOME or XDG_CONFIG_HOME");
			return BT_ERR_IO;
		}
		snprintf(base, base_cap, "%s/.config", home);
	}
	if ((size_t)snprintf(dir, cap, "%s/btkern", base) >= cap) {
		bt_err(LOG_DB, "%s: path too long for the database key", base);
		return BT_ERR_IO;
	}
	return BT_OK;
}

static enum bt_status make_dir(const char *d)
{
	if (mkdir(d, 0700) == 0 || errno == EEXIST)
		return BT_OK;
	bt_err(LOG_DB, "%s: cannot create the directory of the database key: %s", d,
	       strerror(errno));
	return BT_ERR_IO;
}

/* Create the key at path (see invariant 1); an existing one is kept. */
static enum bt_status key_create(const char *dir, const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/db.key.tmp-XXXXXX", dir);
	int fd = mkstemp(tmp); /* O_EXCL, mode 0600 */
	if (fd < 0) {
		bt_err(LOG_DB, "%s: cannot create the database key: %s", dir, strerror(errno));
		return BT_ERR_IO;
	}
	uint8_t key[TCDB_KEY_LEN];
	enum bt_status s = random_bytes(key, sizeof(key));
	if (s == BT_OK && (fchmod(fd, 0600) != 0 || write(fd, key, sizeof(key)) != sizeof(key) ||
			   fsync(fd) != 0)) {
		bt_err(LOG_DB, "%s: cannot write the database key: %s", tmp, strerror(errno));
		s = BT_ERR_IO;
	}
	memset(key, 0, sizeof(key));
	close(fd);
	if (s == BT_OK && link(tmp, path) != 0 && errno != EEXIST) {
		bt_err(LOG_DB, "%s: cannot create the database key: %s", path, strerror(errno));
		s = BT_ERR_IO;
	}
	unlink(tmp);
	if (s == BT_OK)
		bt_info(LOG_DB, "%s: created your database key", path);
	return s;
}

enum bt_status tcdb_key_load(struct hmac_sha256_ctx *keyed)
{
	char base[PATH_MAX - 64], dir[PATH_MAX - 32], path[PATH_MAX];
	BT_TRY(key_dir(dir, sizeof(dir), base, sizeof(base)));
	snprintf(path, sizeof(path), "%s/db.key", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT) {
		BT_TRY(make_dir(base));
		BT_TRY(make_dir(dir));
		BT_TRY(key_create(dir, path));
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	}
	if (fd < 0) {
		bt_err(LOG_DB, "%s: cannot open the database key: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		bt_err(LOG_DB, "%s: the database key is not a regular file: remove it", path);
		return BT_ERR_AUTH;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		bt_err(LOG_DB,
		       "%s: the database key must be yours and private (owner %u, mode %03o): "
		       "anyone who can read it can make databases that run code here; if it "
		       "leaked, remove it (a new one is made, and your databases must be "
		       "rebuilt); else `chmod 600 %s` as its owner",
		       path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777), path);
		return BT_ERR_AUTH;
	}
	uint8_t key[TCDB_KEY_LEN + 1];
	ssize_t n = read(fd, key, sizeof(key));
	close(fd);
	if (n != TCDB_KEY_LEN) {
		memset(key, 0, sizeof(key));
		bt_err(LOG_DB,
		       "%s: the database key is not %d bytes: remove it (a new one is made, and "
		       "your databases must be rebuilt or re-signed with `pretrans verify DB "
		       "IMAGE --sign`)",
		       path, TCDB_KEY_LEN);
		return BT_ERR_AUTH;
	}
	hmac_sha256_init(keyed, key, TCDB_KEY_LEN);
	memset(key, 0, sizeof(key));
	return BT_OK;
}

/* ---------------------------------------------------------------- tags */

static void mac_start(const struct tcdb *db, struct hmac_sha256_ctx *c, const char *domain)
{
	*c = db->key;
	hmac_sha256_update(c, domain, strlen(domain) + 1);
	hmac_sha256_update(c, db->nonce, TCDB_NONCE_LEN);
}

static void mac_u64(struct hmac_sha256_ctx *c, uint64_t v)
{
	uint8_t b[8];
	bt_put64(b, v);
	hmac_sha256_update(c, b, sizeof(b));
}

static void mac_bytes(struct hmac_sha256_ctx *c, const void *p, size_t n)
{
	mac_u64(c, n);
	if (n)
		hmac_sha256_update(c, p, n);
}

static void mac_text(struct hmac_sha256_ctx *c, const char *s)
{
	mac_bytes(c, s, strlen(s));
}

static void mac_end(struct hmac_sha256_ctx *c, uint8_t out[TCDB_MAC_LEN])
{
	uint8_t full[SHA256_LEN];
	hmac_sha256_final(c, full);
	memcpy(out, full, TCDB_MAC_LEN);
}

static void identity_fields(struct hmac_sha256_ctx *c, const struct tcdb_image *im,
			    const struct tcdb_provenance *p)
{
	mac_u64(c, TCDB_SCHEMA_VERSION);
	mac_text(c, im->path);
	mac_text(c, im->build_id);
	mac_text(c, im->sha256);
	mac_u64(c, im->entry);
	mac_text(c, im->arch);
	mac_u64(c, im->build_id_va);
	mac_text(c, im->banner);
	mac_u64(c, p->xlat_version);
	mac_u64(c, p->abi_version);
	mac_u64(c, p->options_hash);
	mac_u64(c, p->options_flags);
	mac_text(c, p->tool_version);
	mac_u64(c, (uint64_t)p->created);
}

void tcdb_derive_nonce(struct tcdb *db, const struct tcdb_image *im,
		       const struct tcdb_provenance *p)
{
	struct hmac_sha256_ctx c = db->key;
	static const char domain[] = "btkern-tcdb-nonce";
	hmac_sha256_update(&c, domain, sizeof(domain));
	identity_fields(&c, im, p);
	uint8_t out[SHA256_LEN];
	hmac_sha256_final(&c, out);
	memcpy(db->nonce, out, TCDB_NONCE_LEN);
}

void tcdb_mac_identity(const struct tcdb *db, const struct tcdb_image *im,
		       const struct tcdb_provenance *p, uint8_t out[TCDB_MAC_LEN])
{
	struct hmac_sha256_ctx c;
	mac_start(db, &c, "btkern-tcdb-identity");
	identity_fields(&c, im, p);
	mac_end(&c, out);
}

void tcdb_mac_chunk(const struct tcdb *db, int64_t id, uint64_t raw_len, int64_t func0,
		    const uint8_t digest[SHA256_LEN], uint8_t out[TCDB_MAC_LEN])
{
	struct hmac_sha256_ctx c;
	mac_start(db, &c, "btkern-tcdb-chunk");
	mac_u64(&c, (uint64_t)id);
	mac_u64(&c, raw_len);
	mac_u64(&c, (uint64_t)func0);
	hmac_sha256_update(&c, digest, SHA256_LEN);
	mac_end(&c, out);
}

void tcdb_mac_row(const struct tcdb *db, const int64_t cols[TCDB_ROW_INTS], const void *code,
		  size_t code_len, const void *exits, size_t exits_len, const void *pcmap,
		  size_t pcmap_len, uint8_t out[TCDB_MAC_LEN])
{
	/* the fixed part in one update: this runs for every row read */
	static const char domain[] = "btkern-tcdb-row";
	uint8_t head[sizeof(domain) + TCDB_NONCE_LEN + 8 * TCDB_ROW_INTS], *h = head;
	memcpy(h, domain, sizeof(domain));
	h += sizeof(domain);
	memcpy(h, db->nonce, TCDB_NONCE_LEN);
	h += TCDB_NONCE_LEN;
	for (int i = 0; i < TCDB_ROW_INTS; i++, h += 8)
		bt_put64(h, (uint64_t)cols[i]);
	struct hmac_sha256_ctx c = db->key;
	hmac_sha256_update(&c, head, sizeof(head));
	mac_bytes(&c, code, code_len);
	mac_bytes(&c, exits, exits_len);
	mac_bytes(&c, pcmap, pcmap_len);
	mac_end(&c, out);
}

void tcdb_mac_module(const struct tcdb *db, const struct tcdb_module *m,
		     const uint8_t digest[SHA256_LEN], uint8_t out[TCDB_MAC_LEN])
{
	struct hmac_sha256_ctx c;
	mac_start(db, &c, "btkern-tcdb-module");
	mac_u64(&c, (uint64_t)m->id);
	mac_text(&c, m->name);
	mac_text(&c, m->vermagic);
	mac_text(&c, m->srcversion);
	mac_text(&c, m->sections_hash);
	mac_u64(&c, m->n_templates);
	mac_u64(&c, m->raw_len);
	hmac_sha256_update(&c, digest, SHA256_LEN);
	mac_end(&c, out);
}

void tcdb_mac_pack(const struct tcdb *db, int kind, int codec, uint64_t raw_len, uint64_t n_items,
		   const uint8_t digest[SHA256_LEN], uint8_t out[TCDB_MAC_LEN])
{
	struct hmac_sha256_ctx c;
	mac_start(db, &c, "btkern-tcdb-pack");
	mac_u64(&c, (uint64_t)kind);
	mac_u64(&c, (uint64_t)codec);
	mac_u64(&c, raw_len);
	mac_u64(&c, n_items);
	hmac_sha256_update(&c, digest, SHA256_LEN);
	mac_end(&c, out);
}

bool tcdb_mac_ok(const uint8_t want[TCDB_MAC_LEN], const void *stored, size_t stored_len)
{
	return stored && stored_len == TCDB_MAC_LEN && bt_memeq_ct(want, stored, TCDB_MAC_LEN);
}

enum bt_status tcdb_auth_fail(struct tcdb *db, gva_t va, int64_t chunk)
{
	if (!db->untrusted) {
		char where[64] = "";
		if (chunk)
			snprintf(where, sizeof(where), " (chunk %lld)", (long long)chunk);
		bt_err(LOG_DB,
		       "%s: block at %#llx%s fails its authentication: changed after it was "
		       "written, or written with another key: none of its blocks is used from "
		       "now on (they are translated at run time); rebuild it with `pretrans "
		       "build`, or check and re-sign it with `pretrans verify %s IMAGE --sign`",
		       db->path, (unsigned long long)va, where, db->path);
	}
	db->untrusted = true;
	return BT_ERR_AUTH;
}

enum bt_status tcdb_auth_fail_pack(struct tcdb *db, int kind)
{
	if (!db->untrusted)
		bt_err(LOG_DB,
		       "%s: the %s pack fails its authentication: changed after it was written, "
		       "or written with another key: none of its blocks is used from now on (they "
		       "are translated at run time); rebuild it with `pretrans build`, or check "
		       "and re-sign it with `pretrans verify %s IMAGE --sign`",
		       db->path,
		       kind == TCDB_PACK_INDEX		  ? "start-index"
		       : kind == TCDB_PACK_PROFILE	  ? "boot-profile"
		       : kind == TCDB_PACK_PREDICTED	  ? "predicted-patching"
		       : kind == TCDB_PACK_TEMPLATES	  ? "block-template"
		       : kind == TCDB_PACK_PRED_TEMPLATES ? "predicted-template"
		       : kind == TCDB_PACK_USER_TMPL	  ? "user-template"
		       : kind == TCDB_PACK_USER_INDEX	  ? "user fingerprint-index"
		       : kind == TCDB_PACK_CHUNK_MAP	  ? "chunk-map"
		       : kind == TCDB_PACK_ZDICT	  ? "chunk-dictionary"
							  : "module fingerprint-index",
		       db->path);
	db->untrusted = true;
	return BT_ERR_AUTH;
}

bool tcdb_untrusted(const struct tcdb *db)
{
	return db->untrusted;
}
