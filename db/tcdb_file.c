/*
 * The files of the translation-cache database, below sqlite (see tcdb.h,
 * docs/db.md): the structural check of a file before sqlite reads it
 * (tcdb_open), and for a build the temporary file next to the output and
 * the atomic replace of the output by it (tcdb_create, tcdb_commit).
 *
 * Invariants
 *  1. A build writes only OUT.tmp-XXXXXX, created with O_EXCL next to OUT;
 *     OUT is replaced by rename(2) only after the temporary file was
 *     fsynced, and the directory is fsynced after.
 *  2. A file sqlite is asked to open has the sqlite header, a sane page
 *     size and is not shorter than its header says, and is not writable by
 *     group or other (BT_ERR_AUTH: anyone who can write it could put code
 *     in it; builds create it 0644 & ~umask).
 *  3. OUT is only ever created as, or replaced when it is, a regular file
 *     (or a symlink to one, or a dangling symlink: rename(2) replaces the
 *     link).  A device node, FIFO, socket or directory, or a symlink to
 *     one, is refused before the temporary file is created and checked
 *     again right before the rename, so a host file is never replaced by
 *     a database (as root, `-o /dev/full` would replace the device node).
 */
#include "db/tcdb_int.h"

#include "pretrans/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- open */

/* Cheap structural checks on the raw file before sqlite reads it. */
enum bt_status tcdb_file_check(const char *path)
{
	/* O_NONBLOCK: a FIFO given as a database must be refused, not waited on */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		bt_err(LOG_DB, "%s: cannot open: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	uint8_t h[100];
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		bt_err(LOG_DB, "%s: not a regular file: give the path of a translation database",
		       path);
		return BT_ERR_IO;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		close(fd);
		bt_err(LOG_DB,
		       "%s is writable by other users (mode %03o), and a database is code that "
		       "runs in the VMM: `chmod go-w %s`, then check it with `pretrans verify %s "
		       "IMAGE --sign`",
		       path, (unsigned)(st.st_mode & 0777), path, path);
		return BT_ERR_AUTH;
	}
	ssize_t n = read(fd, h, sizeof(h));
	int ok = fstat(fd, &st) == 0;
	close(fd);
	if (!ok || n < 0) {
		bt_err(LOG_DB, "%s: cannot read: %s", path, strerror(errno));
		return BT_ERR_IO;
	}
	if (n < 16 || memcmp(h, "SQLite format 3", 16) != 0) {
		bt_err(LOG_DB,
		       "%s: not a translation database (not an sqlite file): rebuild it with "
		       "`pretrans build`",
		       path);
		return BT_ERR_FORMAT;
	}
	if (n < 100) {
		bt_err(LOG_DB,
		       "%s: truncated database (%zd bytes): rebuild it with `pretrans build`", path,
		       n);
		return BT_ERR_FORMAT;
	}
	uint32_t psz = (uint32_t)h[16] << 8 | h[17];
	if (psz == 1)
		psz = 65536;
	uint32_t npages =
	    (uint32_t)h[28] << 24 | (uint32_t)h[29] << 16 | (uint32_t)h[30] << 8 | h[31];
	uint32_t change =
	    (uint32_t)h[24] << 24 | (uint32_t)h[25] << 16 | (uint32_t)h[26] << 8 | h[27];
	uint32_t valid =
	    (uint32_t)h[92] << 24 | (uint32_t)h[93] << 16 | (uint32_t)h[94] << 8 | h[95];
	if (psz < 512 || (psz & (psz - 1)) || st.st_size % psz ||
	    (change == valid && npages && (uint64_t)st.st_size < (uint64_t)npages * psz)) {
		bt_err(LOG_DB,
		       "%s: truncated or corrupt database (%lld bytes, page size %u, %u pages "
		       "expected): rebuild it with `pretrans build`",
		       path, (long long)st.st_size, psz, npages);
		return BT_ERR_FORMAT;
	}
	return BT_OK;
}

/* ---------------------------------------------------------------- replace */

static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISLNK(m))
		return "a symlink";
	return "not a regular file";
}

/* Invariant 3: OUT is absent, a regular file, or a symlink that is dangling
 * or resolves to a regular file; anything else is BT_ERR_IO and one line. */
static enum bt_status check_out_path(const char *out_path)
{
	struct stat st;
	if (lstat(out_path, &st) != 0) {
		if (errno == ENOENT)
			return BT_OK;
		bt_err(LOG_DB, "%s: cannot check the output path: %s: give -o a regular file",
		       out_path, strerror(errno));
		return BT_ERR_IO;
	}
	if (S_ISREG(st.st_mode))
		return BT_OK;
	if (!S_ISLNK(st.st_mode)) {
		bt_err(LOG_DB,
		       "%s: is %s, not a regular file: refusing to replace it; give -o a regular "
		       "file or a new path",
		       out_path, file_kind(st.st_mode));
		return BT_ERR_IO;
	}
	if (stat(out_path, &st) != 0) {
		if (errno == ENOENT)
			return BT_OK; /* dangling: the link itself is replaced */
		bt_err(LOG_DB, "%s: cannot check the output path: %s: give -o a regular file",
		       out_path, strerror(errno));
		return BT_ERR_IO;
	}
	if (S_ISREG(st.st_mode))
		return BT_OK;
	bt_err(LOG_DB,
	       "%s: is a symlink to %s, not to a regular file: refusing to replace it; give -o "
	       "a regular file or a new path",
	       out_path, file_kind(st.st_mode));
	return BT_ERR_IO;
}

enum bt_status tcdb_file_create_tmp(const char *out_path, char *tmp_path)
{
	BT_TRY(check_out_path(out_path));
	/* like mkstemp, but mode 0644 & ~umask so the result is readable as usual
	 * yet never writable by group or other, which tcdb_open() refuses: a
	 * database is code (docs/db.md "Trust") */
	int fd = -1;
	for (unsigned i = 0; fd < 0 && i < 100; i++) {
		unsigned r = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL) ^ i * 40503u;
		sprintf(tmp_path, "%s.tmp-%06x", out_path, r & 0xffffff);
		fd = open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		bt_err(LOG_DB, "%s: cannot create the temporary output %s: %s", out_path, tmp_path,
		       strerror(errno));
		return BT_ERR_IO;
	}
	close(fd);
	return BT_OK;
}

/* The I/O fault a test asked for (tcdb_io_fault), 0 = none: the next such
 * call fails with fault_errno instead of running. */
static enum tcdb_io_op fault_op;
static int fault_errno;

void tcdb_io_fault(enum tcdb_io_op op, int err)
{
	fault_op = op;
	fault_errno = err;
}

/* A fault is injected for op: take it (once) and set errno. */
static bool faulted(enum tcdb_io_op op)
{
	if (fault_op != op)
		return false;
	fault_op = TCDB_IO_NONE;
	errno = fault_errno;
	return true;
}

static enum bt_status fsync_path(const char *path, int flags, enum tcdb_io_op op)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return BT_ERR_IO;
	int rc = faulted(op) ? -1 : fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc == 0 ? BT_OK : BT_ERR_IO;
}

enum bt_status tcdb_file_replace(const char *tmp_path, const char *out_path)
{
	enum bt_status s;
	if ((s = fsync_path(tmp_path, O_RDONLY, TCDB_IO_FSYNC_FILE)) != BT_OK) {
		bt_err(LOG_DB, "%s: fsync failed: %s", tmp_path, strerror(errno));
		return s;
	}
	/* invariant 3 again: OUT may have changed since tcdb_create */
	BT_TRY(check_out_path(out_path));
	if (faulted(TCDB_IO_RENAME) || rename(tmp_path, out_path) != 0) {
		bt_err(LOG_DB, "%s: cannot rename %s over it: %s", out_path, tmp_path,
		       strerror(errno));
		return BT_ERR_IO;
	}
	/* OUT is replaced now: a directory that cannot be synced leaves the
	 * new file in place (the build succeeded) but says the rename may not
	 * survive a crash */
	char *dir = strdup(out_path);
	if (dir && fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY, TCDB_IO_FSYNC_DIR) != BT_OK)
		bt_warn(LOG_DB,
			"%s: replaced, but its directory could not be synced (%s): after a "
			"crash the previous file may come back",
			out_path, strerror(errno));
	free(dir);
	return BT_OK;
}
