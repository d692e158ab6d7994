/*
 * Raw disk images (see diskimg.h).  Owns nothing: the caller closes the fd,
 * which drops the lock.
 */
#include "runtime/dev/diskimg.h"

#include "pretrans/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum bt_status diskimg_lock(const char *who, int fd, const char *path, bool read_only)
{
	struct flock fl = {.l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) == 0)
		return BT_OK;
	int e = errno;
	if (e != EACCES && e != EAGAIN) {
		bt_err(LOG_DEV, "%s: cannot lock disk image %s: %s", who, path, strerror(e));
		return BT_ERR_IO;
	}
	struct flock holder = {.l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
	char name[48] = "another process";
	if (fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK && holder.l_pid > 0)
		snprintf(name, sizeof(name), "process %ld", (long)holder.l_pid);
	bt_err(LOG_DEV,
	       "%s: disk image %s is in use: %s holds a %s lock on it (stop that VM, or give "
	       "this one a copy)",
	       who, path, name, holder.l_type == F_WRLCK ? "write" : "read");
	return BT_ERR_IO;
}

enum bt_status diskimg_open(const char *who, const char *path, bool read_only, uint64_t min_bytes,
			    int *fd_out, uint64_t *bytes)
{
	int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		bt_err(LOG_DEV, "%s: cannot open disk image %s: %s%s", who, path, strerror(e),
		       (!read_only && (e == EACCES || e == EROFS)) ? " (use a read-only disk)"
								   : "");
		return BT_ERR_IO;
	}
	if (diskimg_lock(who, fd, path, read_only) != BT_OK) {
		close(fd);
		return BT_ERR_IO;
	}
	struct stat st;
	off_t size = -1;
	if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		size = S_ISREG(st.st_mode) ? st.st_size : lseek(fd, 0, SEEK_END);
	if (size < 0 || (uint64_t)size < min_bytes) {
		bt_err(LOG_DEV, "%s: disk image %s is %s", who, path,
		       size < 0 ? "not a regular file or block device"
				: "smaller than one 512-byte sector");
		close(fd);
		return size < 0 ? BT_ERR_IO : BT_ERR_FORMAT;
	}
	*fd_out = fd;
	*bytes = (uint64_t)size;
	return BT_OK;
}
