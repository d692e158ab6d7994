/*
 * ulib formatted output on top of guests/lib/fmt.c.  Each call formats into
 * a small stack buffer, flushing with write(2) when it fills, and writes the
 * rest before returning: nothing is buffered between calls.
 */
#include "guests/lib/fmt.h"
#include "guests/user/ulib/ulib.h"

struct ulib_out {
	int fd;
	unsigned len;
	char buf[256];
};

static void ulib_flush(struct ulib_out *o)
{
	unsigned off = 0;

	while (off < o->len) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);
		if (n <= 0)
			break;
		off += (unsigned)n;
	}
	o->len = 0;
}

static void ulib_putc(void *ctx, char c)
{
	struct ulib_out *o = ctx;

	if (o->len == sizeof(o->buf))
		ulib_flush(o);
	o->buf[o->len++] = c;
}

static int ulib_vdprintf(int fd, const char *fmt, va_list ap)
{
	struct ulib_out o = {.fd = fd, .len = 0};
	int n = fmt_vcbprintf(ulib_putc, &o, fmt, ap);

	ulib_flush(&o);
	return n;
}

int vprintf(const char *fmt, va_list ap)
{
	return ulib_vdprintf(1, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = ulib_vdprintf(1, fmt, ap);
	va_end(ap);
	return n;
}

int dprintf(int fd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = ulib_vdprintf(fd, fmt, ap);
	va_end(ap);
	return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = fmt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int puts(const char *s)
{
	return printf("%s\n", s);
}

int putchar(int c)
{
	char ch = (char)c;

	return write(1, &ch, 1) == 1 ? c : -1;
}

int fflush(void *stream)
{
	return 0;
}
