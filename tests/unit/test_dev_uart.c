/*
 * Unit tests for the 16550A UART, driven through the I/O bus as Linux's
 * 8250 driver (autoconfig, startup THRE test, console) and our guest do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/dev_io.h"

#include "runtime/bus/iobus.h"
#include "runtime/dev/uart.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COM1 0x3f8

struct fixture {
	struct iobus *bus;
	struct uart *uart;
	int tx[2], rx[2]; /* pipes: [0] read end, [1] write end */
	bool irq;
	unsigned irq_edges;
};

static void irq_sink(void *opaque, unsigned pin, bool level)
{
	struct fixture *f = opaque;
	assert_int_equal(pin, 4);
	if (level && !f->irq)
		f->irq_edges++;
	f->irq = level;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(pipe2(f->tx, O_NONBLOCK), 0);
	assert_int_equal(pipe(f->rx), 0);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(uart_create(f->bus, COM1, f->tx[1], f->rx[0], &f->uart), BT_OK);
	irq_line_init(uart_irq(f->uart), irq_sink, f, 4);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	uart_destroy(f->uart);
	iobus_destroy(f->bus);
	close(f->tx[0]);
	close(f->tx[1]);
	close(f->rx[0]);
	close(f->rx[1]);
	free(f);
	return 0;
}

/* The register tests of Linux 8250 autoconfig(), in its order. */
static void test_linux_autoconfig_probe(void **state)
{
	struct fixture *f = *state;
	/* IER: write 0 / 0x0f and read back the low nibble */
	outb(f, COM1 + 1, 0x00);
	assert_int_equal(inb(f, COM1 + 1) & 0x0f, 0x00);
	outb(f, COM1 + 1, 0x0f);
	assert_int_equal(inb(f, COM1 + 1) & 0x0f, 0x0f);
	outb(f, COM1 + 1, 0x00);
	/* scratch register */
	outb(f, COM1 + 7, 0x55);
	assert_int_equal(inb(f, COM1 + 7), 0x55);
	outb(f, COM1 + 7, 0xaa);
	assert_int_equal(inb(f, COM1 + 7), 0xaa);
	/* loopback: MCR = LOOP | OUT2 | RTS must read MSR & 0xf0 == 0x90 */
	uint8_t save_mcr = inb(f, COM1 + 4);
	outb(f, COM1 + 4, 0x10 | 0x0a);
	assert_int_equal(inb(f, COM1 + 6) & 0xf0, 0x90);
	outb(f, COM1 + 4, save_mcr);
	/* EFR probe under LCR 0xbf writes FCR = 0 on a 16550A */
	outb(f, COM1 + 3, 0xbf);
	outb(f, COM1 + 2, 0x00);
	outb(f, COM1 + 3, 0x00);
	/* FIFO detection: IIR bits 7:6 == 3 means 16550A */
	outb(f, COM1 + 2, 0x01);
	assert_int_equal(inb(f, COM1 + 2) >> 6, 3);
	/* ST16C650V1 EFR test: reg 2 with DLAB set reads IIR, not 0 */
	outb(f, COM1 + 3, 0x80);
	assert_int_not_equal(inb(f, COM1 + 2), 0);
	/* divisor-ID read: DLL/DLM write 0 and read back 0 (no XR16C850) */
	outb(f, COM1 + 0, 0x00);
	outb(f, COM1 + 1, 0x00);
	assert_int_equal(inb(f, COM1 + 0), 0);
	assert_int_equal(inb(f, COM1 + 1), 0);
	outb(f, COM1 + 3, 0x00);
	/* IER bits 6/4 (UUE/RTOIE of XScale) do not stick */
	outb(f, COM1 + 1, 0x50);
	assert_int_equal(inb(f, COM1 + 1) & 0x50, 0);
	outb(f, COM1 + 1, 0x00);
	/* startup: LSR must not read 0xff */
	assert_int_not_equal(inb(f, COM1 + 5), 0xff);
	assert_int_equal(inb(f, COM1 + 5) & 0x60, 0x60);
}

static void test_divisor_latch(void **state)
{
	struct fixture *f = *state;
	outb(f, COM1 + 1, 0x05);
	outb(f, COM1 + 3, 0x83); /* DLAB | 8N1 */
	outb(f, COM1 + 0, 0x01); /* 115200 baud */
	outb(f, COM1 + 1, 0x00);
	assert_int_equal(inb(f, COM1 + 0), 0x01);
	assert_int_equal(inb(f, COM1 + 1), 0x00);
	assert_int_equal(inb(f, COM1 + 3), 0x83);
	outb(f, COM1 + 3, 0x03);
	/* with DLAB clear the same ports are IER and RBR again */
	assert_int_equal(inb(f, COM1 + 1), 0x05);
	assert_int_equal(inb(f, COM1 + 3), 0x03);
	/* nothing was transmitted by the DLL write */
	assert_int_equal(uart_tx_count(f->uart), 0);
}

static void test_tx_to_backend(void **state)
{
	struct fixture *f = *state;
	const char *msg = "hello, console\n";
	for (const char *p = msg; *p; p++) {
		while (!(inb(f, COM1 + 5) & 0x20))
			;
		outb(f, COM1, (uint8_t)*p);
	}
	char buf[64] = {0};
	ssize_t n = read(f->tx[0], buf, sizeof(buf) - 1);
	assert_int_equal(n, (ssize_t)strlen(msg));
	assert_string_equal(buf, msg);
	assert_int_equal(uart_tx_count(f->uart), strlen(msg));
	assert_int_equal(inb(f, COM1 + 5) & 0x60, 0x60); /* THRE | TEMT */
}

static void test_rx_interrupt_via_loopback(void **state)
{
	struct fixture *f = *state;
	outb(f, COM1 + 2, 0x07);	/* FIFO on, cleared, trigger 1 */
	outb(f, COM1 + 4, 0x10 | 0x0b); /* loop, OUT2, RTS, DTR */
	outb(f, COM1 + 1, 0x01);	/* ERBFI */
	assert_false(f->irq);
	assert_int_equal(inb(f, COM1 + 2), 0xc1);
	outb(f, COM1, 'A');
	assert_true(f->irq);
	assert_int_equal(inb(f, COM1 + 2), 0xc4);
	assert_int_equal(inb(f, COM1 + 5) & 0x01, 0x01);
	assert_int_equal(inb(f, COM1), 'A');
	assert_false(f->irq);
	assert_int_equal(inb(f, COM1 + 5) & 0x01, 0x00);
	assert_int_equal(inb(f, COM1 + 2), 0xc1);
	/* loopback output never reaches the backend */
	char c;
	assert_int_equal(read(f->tx[0], &c, 1), -1);

	/* trigger level 4: below it the source is the character timeout */
	outb(f, COM1 + 2, 0x47);
	outb(f, COM1, 'x');
	outb(f, COM1, 'y');
	assert_int_equal(inb(f, COM1 + 2), 0xcc);
	outb(f, COM1, 'z');
	outb(f, COM1, 'w');
	assert_int_equal(inb(f, COM1 + 2), 0xc4);
	assert_int_equal(inb(f, COM1), 'x');
	assert_int_equal(inb(f, COM1), 'y');
	assert_int_equal(inb(f, COM1), 'z');
	assert_int_equal(inb(f, COM1), 'w');
	assert_false(f->irq);
}

static void test_overrun_and_line_status_interrupt(void **state)
{
	struct fixture *f = *state;
	outb(f, COM1 + 2, 0x00); /* no FIFO: one-byte RBR */
	outb(f, COM1 + 4, 0x10);
	outb(f, COM1 + 1, 0x04); /* ELSI only */
	outb(f, COM1, '1');
	assert_false(f->irq);
	outb(f, COM1, '2'); /* overrun */
	assert_true(f->irq);
	assert_int_equal(inb(f, COM1 + 2), 0x06);
	assert_int_equal(inb(f, COM1 + 5) & 0x03, 0x03); /* OE | DR */
	assert_false(f->irq);				 /* LSR read cleared OE */
	assert_int_equal(inb(f, COM1 + 5) & 0x02, 0x00);
	assert_int_equal(inb(f, COM1), '2'); /* without FIFO the new byte overwrites RBR */
	/* with the FIFO on, the 17th byte is the one lost */
	outb(f, COM1 + 2, 0x07);
	for (unsigned i = 0; i < 17; i++)
		outb(f, COM1, (uint8_t)('a' + i));
	assert_int_equal(inb(f, COM1 + 5) & 0x03, 0x03);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(inb(f, COM1), 'a' + i);
	assert_int_equal(inb(f, COM1 + 5) & 0x01, 0x00);
}

/* serial8250_do_startup's check that THRE is re-asserted (UART_BUG_THRE). */
static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;
	outb(f, COM1 + 4, 0x0b);
	outb(f, COM1 + 1, 0x02);
	assert_true(f->irq);
	uint8_t iir1 = inb(f, COM1 + 2);
	assert_int_equal(iir1 & 0x0f, 0x02);
	assert_false(f->irq); /* reading IIR with THRE as the source clears it */
	assert_int_equal(inb(f, COM1 + 2) & 0x01, 0x01);
	outb(f, COM1 + 1, 0x00);
	outb(f, COM1 + 1, 0x02);
	uint8_t iir = inb(f, COM1 + 2);
	assert_int_equal(iir & 0x01, 0x00); /* re-asserted: no UART_BUG_THRE */
	/* each transmitted byte re-arms THRE: one edge per byte */
	unsigned edges = f->irq_edges;
	outb(f, COM1, 'a');
	assert_true(f->irq);
	assert_int_equal(inb(f, COM1 + 2) & 0x0f, 0x02);
	outb(f, COM1, 'b');
	assert_int_equal(f->irq_edges, edges + 2);
	/* re-writing IER with ETBEI already set does not re-arm (QEMU, Bochs) */
	assert_int_equal(inb(f, COM1 + 2) & 0x0f, 0x02);
	outb(f, COM1 + 1, 0x03);
	assert_int_equal(inb(f, COM1 + 2) & 0x0f, 0x01);
	outb(f, COM1 + 1, 0x00);
	assert_false(f->irq);
}

static void test_rx_backend_and_fifo_limit(void **state)
{
	struct fixture *f = *state;
	const char *in = "0123456789abcdefXYZW";
	assert_int_equal(write(f->rx[1], in, 20), 20);
	outb(f, COM1 + 2, 0xc7); /* FIFO, trigger 14 */
	outb(f, COM1 + 1, 0x01);
	assert_int_equal(uart_rx_wait_fd(f->uart), f->rx[0]);
	assert_int_equal(uart_poll(f->uart), 16);
	assert_int_equal(uart_rx_room(f->uart), 0);
	assert_int_equal(uart_rx_wait_fd(f->uart), -1); /* full: nothing to wait for */
	assert_int_equal(uart_poll(f->uart), 0);	/* no room, no overrun */
	assert_true(f->irq);
	assert_int_equal(inb(f, COM1 + 2), 0xc4);
	char got[21] = {0};
	unsigned n = 0;
	while (inb(f, COM1 + 5) & 0x01)
		got[n++] = (char)inb(f, COM1);
	assert_int_equal(n, 16);
	assert_int_equal(uart_poll(f->uart), 4);
	while (inb(f, COM1 + 5) & 0x01)
		got[n++] = (char)inb(f, COM1);
	assert_string_equal(got, in);
	assert_int_equal(inb(f, COM1 + 5) & 0x1e, 0); /* no overrun ever */
	/* backend closed: poll stops reading */
	close(f->rx[1]);
	f->rx[1] = open("/dev/null", O_WRONLY);
	assert_int_equal(uart_rx_wait_fd(f->uart), f->rx[0]);
	assert_int_equal(uart_poll(f->uart), 0);
	assert_int_equal(uart_rx_wait_fd(f->uart), -1); /* end of file: never again */
}

static void count_quit(void *opaque)
{
	(*(unsigned *)opaque)++;
}

/* The console escape (conterm.h): Ctrl-A x quits, Ctrl-A Ctrl-A is one
 * Ctrl-A, Ctrl-A and another key are dropped, an escape split across two
 * reads still works; off, every byte reaches the guest. */
static void test_console_escape(void **state)
{
	struct fixture *f = *state;
	unsigned quits = 0;
	outb(f, COM1 + 2, 0xc7); /* FIFO */
	uart_set_escape(f->uart, count_quit, &quits);
	assert_int_equal(write(f->rx[1], "a\001xb\001\001c\001qd\001", 11), 11);
	assert_int_equal(uart_poll(f->uart), 5);
	assert_int_equal(quits, 1);
	assert_int_equal(write(f->rx[1], "Xe", 2), 2); /* the escape's second half */
	assert_int_equal(uart_poll(f->uart), 1);
	assert_int_equal(quits, 2);
	char got[8] = {0};
	unsigned n = 0;
	while ((inb(f, COM1 + 5) & 0x01) && n < 7)
		got[n++] = (char)inb(f, COM1);
	assert_int_equal(n, 6);
	assert_memory_equal(got, "ab\001cde", 6);
	uart_set_escape(f->uart, NULL, NULL);
	assert_int_equal(write(f->rx[1], "\001x", 2), 2);
	assert_int_equal(uart_poll(f->uart), 2);
	assert_int_equal(quits, 2);
}

static void test_modem_status_deltas(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(inb(f, COM1 + 6), 0xb0); /* terminal attached */
	outb(f, COM1 + 1, 0x08);		  /* EDSSI */
	outb(f, COM1 + 4, 0x10);		  /* loop: all lines drop */
	assert_true(f->irq);
	assert_int_equal(inb(f, COM1 + 2) & 0x0f, 0x00);
	uint8_t msr = inb(f, COM1 + 6);
	assert_int_equal(msr & 0xf0, 0x00);
	assert_int_equal(msr & 0x0b, 0x0b); /* DCTS, DDSR, DDCD */
	assert_false(f->irq);
	outb(f, COM1 + 4, 0x14); /* OUT1 -> RI */
	assert_int_equal(inb(f, COM1 + 6), 0x40);
	outb(f, COM1 + 4, 0x10); /* RI trailing edge */
	assert_int_equal(inb(f, COM1 + 6), 0x04);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_linux_autoconfig_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_divisor_latch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tx_to_backend, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_interrupt_via_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overrun_and_line_status_interrupt, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_backend_and_fifo_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modem_status_deltas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_console_escape, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
