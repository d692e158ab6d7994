/*
 * fmt: freestanding printf formatter.
 *
 * Owns: the conversion of a format string plus va_list into characters.
 * Invariants:
 *  1. No libc call, no floating point, no recursion, a small fixed stack
 *     frame (the guest kernel compiles it with -mgeneral-regs-only and a
 *     small kernel stack).
 *  2. Output goes through one sink; the buffer sink never writes past
 *     size - 1 and always NUL-terminates when size > 0.
 *  3. The return value counts every character produced, written or not.
 */
#include "guests/lib/fmt.h"

#include <stdint.h>

struct fmt_sink {
	void (*putc)(void *ctx, char c);
	void *ctx;
	int count;
};

struct fmt_buf {
	char *buf;
	size_t size;
	size_t pos;
};

enum {
	FMT_LEFT = 1 << 0,
	FMT_ZERO = 1 << 1,
	FMT_PLUS = 1 << 2,
	FMT_SPACE = 1 << 3,
	FMT_ALT = 1 << 4,
	FMT_UPPER = 1 << 5,
};

static void fmt_put(struct fmt_sink *s, char c)
{
	s->putc(s->ctx, c);
	s->count++;
}

static void fmt_pad(struct fmt_sink *s, char c, int n)
{
	while (n-- > 0)
		fmt_put(s, c);
}

/* Emit a string of known length inside a field of width w. */
static void fmt_str(struct fmt_sink *s, const char *str, int len, int width, int flags)
{
	if (!(flags & FMT_LEFT))
		fmt_pad(s, ' ', width - len);
	for (int i = 0; i < len; i++)
		fmt_put(s, str[i]);
	if (flags & FMT_LEFT)
		fmt_pad(s, ' ', width - len);
}

/*
 * Emit an unsigned magnitude v in base with an optional sign / prefix,
 * honouring width, precision (minimum digits) and the flags.
 */
static void fmt_num(struct fmt_sink *s, uint64_t v, unsigned base, int neg, int width, int prec,
		    int flags)
{
	char digits[24]; /* 2^64 in octal is 22 digits */
	const char *set = (flags & FMT_UPPER) ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0;
	char sign = 0;
	const char *prefix = "";
	int plen = 0;

	if (v == 0 && prec == 0) {
		n = 0; /* "%.0d" of 0 prints no digits */
	} else {
		do {
			digits[n++] = set[v % base];
			v /= base;
		} while (v != 0);
	}
	if (neg)
		sign = '-';
	else if (flags & FMT_PLUS)
		sign = '+';
	else if (flags & FMT_SPACE)
		sign = ' ';
	if ((flags & FMT_ALT) && base == 16 && n > 0) {
		prefix = (flags & FMT_UPPER) ? "0X" : "0x";
		plen = 2;
	} else if ((flags & FMT_ALT) && base == 8 && (n == 0 || digits[n - 1] != '0')) {
		prefix = "0";
		plen = 1;
	}

	int zeros = prec > n ? prec - n : 0;
	int total = n + zeros + plen + (sign ? 1 : 0);

	if ((flags & FMT_ZERO) && !(flags & FMT_LEFT) && prec < 0 && width > total) {
		zeros += width - total;
		total = width;
	}
	if (!(flags & FMT_LEFT))
		fmt_pad(s, ' ', width - total);
	if (sign)
		fmt_put(s, sign);
	for (int i = 0; i < plen; i++)
		fmt_put(s, prefix[i]);
	fmt_pad(s, '0', zeros);
	while (n > 0)
		fmt_put(s, digits[--n]);
	if (flags & FMT_LEFT)
		fmt_pad(s, ' ', width - total);
}

enum fmt_len { LEN_INT, LEN_CHAR, LEN_SHORT, LEN_LONG, LEN_LLONG, LEN_SIZE, LEN_MAX, LEN_PTRDIFF };

static int fmt_core(struct fmt_sink *s, const char *fmt, va_list ap)
{
	while (*fmt) {
		if (*fmt != '%') {
			fmt_put(s, *fmt++);
			continue;
		}
		const char *start = fmt++;
		int flags = 0;
		int width = 0;
		int prec = -1;
		enum fmt_len len = LEN_INT;

		for (;; fmt++) {
			if (*fmt == '-')
				flags |= FMT_LEFT;
			else if (*fmt == '0')
				flags |= FMT_ZERO;
			else if (*fmt == '+')
				flags |= FMT_PLUS;
			else if (*fmt == ' ')
				flags |= FMT_SPACE;
			else if (*fmt == '#')
				flags |= FMT_ALT;
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0) {
				flags |= FMT_LEFT;
				width = width == INT32_MIN ? 0 : -width;
			}
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9') {
				if (width < 100000)
					width = width * 10 + (*fmt - '0');
				fmt++;
			}
		}
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				if (prec < 0)
					prec = -1;
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9') {
					if (prec < 100000)
						prec = prec * 10 + (*fmt - '0');
					fmt++;
				}
			}
		}
		switch (*fmt) {
		case 'h':
			len = LEN_SHORT;
			if (*++fmt == 'h') {
				len = LEN_CHAR;
				fmt++;
			}
			break;
		case 'l':
			len = LEN_LONG;
			if (*++fmt == 'l') {
				len = LEN_LLONG;
				fmt++;
			}
			break;
		case 'z':
			len = LEN_SIZE;
			fmt++;
			break;
		case 'j':
			len = LEN_MAX;
			fmt++;
			break;
		case 't':
			len = LEN_PTRDIFF;
			fmt++;
			break;
		default:
			break;
		}

		char conv = *fmt;
		if (conv == '\0') {
			/* Truncated directive: copy it through and stop. */
			while (start < fmt)
				fmt_put(s, *start++);
			break;
		}
		fmt++;
		switch (conv) {
		case 'd':
		case 'i': {
			int64_t v;
			switch (len) {
			case LEN_LONG:
				v = va_arg(ap, long);
				break;
			case LEN_LLONG:
				v = va_arg(ap, long long);
				break;
			case LEN_SIZE:
			case LEN_PTRDIFF:
				v = va_arg(ap, ptrdiff_t);
				break;
			case LEN_MAX:
				v = va_arg(ap, intmax_t);
				break;
			case LEN_CHAR:
				v = (signed char)va_arg(ap, int);
				break;
			case LEN_SHORT:
				v = (short)va_arg(ap, int);
				break;
			default:
				v = va_arg(ap, int);
				break;
			}
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			fmt_num(s, mag, 10, v < 0, width, prec, flags);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uint64_t v;
			switch (len) {
			case LEN_LONG:
				v = va_arg(ap, unsigned long);
				break;
			case LEN_LLONG:
				v = va_arg(ap, unsigned long long);
				break;
			case LEN_SIZE:
			case LEN_PTRDIFF:
				v = va_arg(ap, size_t);
				break;
			case LEN_MAX:
				v = va_arg(ap, uintmax_t);
				break;
			case LEN_CHAR:
				v = (unsigned char)va_arg(ap, unsigned);
				break;
			case LEN_SHORT:
				v = (unsigned short)va_arg(ap, unsigned);
				break;
			default:
				v = va_arg(ap, unsigned);
				break;
			}
			unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
			if (conv == 'X')
				flags |= FMT_UPPER;
			fmt_num(s, v, base, 0, width, prec, flags & ~(FMT_PLUS | FMT_SPACE));
			break;
		}
		case 'p': {
			uintptr_t v = (uintptr_t)va_arg(ap, void *);
			fmt_num(s, v, 16, 0, width, prec, (flags & FMT_LEFT) | FMT_ALT);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			int n = 0;
			if (!str)
				str = "(null)";
			while (str[n] && (prec < 0 || n < prec))
				n++;
			fmt_str(s, str, n, width, flags);
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			fmt_str(s, &c, 1, width, flags);
			break;
		}
		case '%':
			fmt_put(s, '%');
			break;
		default:
			/* Unknown conversion: copy the directive through. */
			while (start < fmt)
				fmt_put(s, *start++);
			break;
		}
	}
	return s->count;
}

static void fmt_buf_putc(void *ctx, char c)
{
	struct fmt_buf *b = ctx;

	if (b->size > 0 && b->pos < b->size - 1)
		b->buf[b->pos++] = c;
}

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct fmt_buf b = {.buf = buf, .size = buf ? size : 0, .pos = 0};
	struct fmt_sink s = {.putc = fmt_buf_putc, .ctx = &b, .count = 0};
	va_list aq;

	va_copy(aq, ap);
	int n = fmt_core(&s, fmt, aq);
	va_end(aq);
	if (b.size > 0)
		b.buf[b.pos] = '\0';
	return n;
}

int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = fmt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int fmt_vcbprintf(void (*putc)(void *ctx, char c), void *ctx, const char *fmt, va_list ap)
{
	struct fmt_sink s = {.putc = putc, .ctx = ctx, .count = 0};
	va_list aq;

	va_copy(aq, ap);
	int n = fmt_core(&s, fmt, aq);
	va_end(aq);
	return n;
}
