/*
 * Console output on the 16550 (polled transmit), printk through the shared
 * guests/lib formatter, panic and the isa-debug-exit port.  Output is
 * serialised with interrupts off so lines from different tasks never mix.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/lib/fmt.h"

void console_putc(char c)
{
	if (c == '\n')
		uart_putc_raw('\r');
	uart_putc_raw(c);
}

void console_write(const char *s, size_t n)
{
	uint64_t f = irq_save();
	for (size_t i = 0; i < n; i++)
		console_putc(s[i]);
	irq_restore(f);
}

int vprintk(const char *fmt, va_list ap)
{
	char buf[512];
	int n = fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return n;
	console_write(buf, MIN((size_t)n, sizeof(buf) - 1));
	return n;
}

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}

/*
 * isa-debug-exit: QEMU exits with (code << 1) | 1.  Without the device the
 * write is ignored and we halt with interrupts off forever.
 */
void debug_exit(int code)
{
	cli();
	outl(0xf4, (uint32_t)code);
	for (;;)
		hlt();
}

void panic(const char *fmt, ...)
{
	va_list ap;
	cli();
	printk("[kernel] PANIC: ");
	va_start(ap, fmt);
	vprintk(fmt, ap);
	va_end(ap);
	printk("\n");
	debug_exit(1);
}
