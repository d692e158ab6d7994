/*
 * fmt: a freestanding printf formatter (no libc, no floating point), shared
 * by the guest kernel, the guest user-space libc and host-side tests.
 *
 * Conversions: %d %i %u %x %X %o %p %s %c %%, length modifiers hh h l ll z j t,
 * flags '-' '0' '+' ' ' '#', field width and precision (both may be '*').
 * An unknown conversion is copied through literally.
 */
#ifndef BT_GUESTS_LIB_FMT_H
#define BT_GUESTS_LIB_FMT_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Format into buf (size bytes, always NUL-terminated when size > 0).
 * Returns the length the full output would have had, like C99 vsnprintf.
 */
int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Streaming variant: each output character is handed to putc(ctx, c).
 * Returns the number of characters produced.  Used by consoles that do not
 * want an intermediate buffer.
 */
int fmt_vcbprintf(void (*putc)(void *ctx, char c), void *ctx, const char *fmt, va_list ap);

#endif
