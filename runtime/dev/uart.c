/*
 * 16550A UART (see uart.h).  Owns the register file, the 16-byte RX FIFO and
 * the TX/RX backend descriptors' use (not the descriptors themselves).
 *
 * Invariants
 *  1. rx_count <= rx_cap(): 16 with FIFOs enabled, 1 (the RBR) without.
 *  2. TX is instantaneous: THR and the shift register are always empty, so
 *     LSR reads THRE|TEMT; thre_pending is the 16550's THRE interrupt latch,
 *     set when THR empties or when IER.ETBEI goes from 0 to 1, cleared by a
 *     THR write, by clearing ETBEI, or by reading IIR while THRE is the
 *     reported source.  (Re-writing IER with ETBEI already set does not
 *     re-arm it: QEMU and Bochs behave so, and Linux only sets ETBEI when
 *     it was clear.)
 *  3. The IRQ line level == (uart_iir_id() != no interrupt), recomputed by
 *     uart_update() after every state change.
 *  4. In loopback (MCR.LOOP) TX bytes go to RX, the backends are cut off and
 *     MSR mirrors MCR (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2); otherwise the
 *     modem lines read as a connected terminal (CTS, DSR, DCD asserted).
 */
#include "runtime/dev/uart.h"

#include "pretrans/base/log.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#define UART_IER_RDI  0x01
#define UART_IER_THRI 0x02
#define UART_IER_RLSI 0x04
#define UART_IER_MSI  0x08

#define UART_IIR_NONE 0x01
#define UART_IIR_MSI  0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI  0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_CTI  0x0c
#define UART_IIR_FIFO 0xc0

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLR_RX 0x02

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR   0x01
#define UART_LSR_OE   0x02
#define UART_LSR_ERRS 0x1e
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

struct uart {
	struct iobus *bus;
	uint16_t base;
	int tx_fd, rx_fd;
	struct irq_line irq;

	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint8_t ier, lcr, mcr, lsr_err, msr_delta, msr_lines, scr, dll, dlm;
	bool fifo_enabled;
	unsigned rx_trigger;
	bool thre_pending;

	uint64_t tx_count;
	bool tx_error_logged;

	void (*esc_quit)(void *opaque); /* the console escape, NULL: off */
	void *esc_opaque;
	bool esc_pending; /* Ctrl-A seen, the next byte says what to do */
};

#define UART_ESC_KEY 0x01 /* Ctrl-A */

static unsigned uart_rx_cap(const struct uart *u)
{
	return u->fifo_enabled ? UART_FIFO_SIZE : 1;
}

static uint8_t uart_iir_id(const struct uart *u)
{
	if ((u->ier & UART_IER_RLSI) && (u->lsr_err & UART_LSR_ERRS))
		return UART_IIR_RLSI;
	if ((u->ier & UART_IER_RDI) && u->rx_count) {
		/* Below the trigger level the 16550 reports a character timeout
		 * after 4 character times; instantaneous here (no line timing). */
		if (!u->fifo_enabled || u->rx_count >= u->rx_trigger)
			return UART_IIR_RDI;
		return UART_IIR_CTI;
	}
	if ((u->ier & UART_IER_THRI) && u->thre_pending)
		return UART_IIR_THRI;
	if ((u->ier & UART_IER_MSI) && (u->msr_delta & 0x0f))
		return UART_IIR_MSI;
	return UART_IIR_NONE;
}

static void uart_update(struct uart *u)
{
	irq_line_set(&u->irq, uart_iir_id(u) != UART_IIR_NONE);
}

/* Modem status lines (MSR bits 7..4) implied by the current MCR. */
static uint8_t uart_lines(const struct uart *u)
{
	if (!(u->mcr & UART_MCR_LOOP))
		return 0xb0; /* DCD, DSR, CTS: a terminal is attached */
	uint8_t l = 0;
	if (u->mcr & UART_MCR_RTS)
		l |= 0x10;
	if (u->mcr & UART_MCR_DTR)
		l |= 0x20;
	if (u->mcr & UART_MCR_OUT1)
		l |= 0x40;
	if (u->mcr & UART_MCR_OUT2)
		l |= 0x80;
	return l;
}

static void uart_set_lines(struct uart *u, uint8_t lines)
{
	uint8_t changed = lines ^ u->msr_lines;
	if (changed & 0x10)
		u->msr_delta |= 0x01; /* DCTS */
	if (changed & 0x20)
		u->msr_delta |= 0x02; /* DDSR */
	if ((changed & 0x40) && !(lines & 0x40))
		u->msr_delta |= 0x04; /* TERI: trailing edge of RI */
	if (changed & 0x80)
		u->msr_delta |= 0x08; /* DDCD */
	u->msr_lines = lines;
}

static void uart_rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
}

/* A byte arrives at the receiver (backend or loopback). */
static bool uart_receive(struct uart *u, uint8_t b)
{
	if (u->rx_count >= uart_rx_cap(u)) {
		u->lsr_err |= UART_LSR_OE;
		/* Without FIFOs the new byte overwrites RBR (8250 behaviour);
		 * with FIFOs the byte in the shift register is lost. */
		if (!u->fifo_enabled)
			u->rx[u->rx_head] = b;
		return false;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = b;
	u->rx_count++;
	return true;
}

static void uart_transmit(struct uart *u, uint8_t b)
{
	if (u->mcr & UART_MCR_LOOP) {
		uart_receive(u, b);
		return;
	}
	u->tx_count++;
	if (u->tx_fd < 0)
		return;
	for (;;) {
		ssize_t n = write(u->tx_fd, &b, 1);
		if (n == 1)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (!u->tx_error_logged) {
			bt_warn(LOG_DEV, "uart %#x: TX backend write failed (%s); dropping output",
				u->base, n < 0 ? "error" : "short write");
			u->tx_error_logged = true;
		}
		return;
	}
}

static void uart_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct uart *u = opaque;
	uint8_t v = 0;
	switch (off) {
	case 0:
		if (u->lcr & UART_LCR_DLAB) {
			v = u->dll;
		} else if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
		}
		break;
	case 1:
		v = (u->lcr & UART_LCR_DLAB) ? u->dlm : u->ier;
		break;
	case 2:
		v = uart_iir_id(u);
		if (v == UART_IIR_THRI)
			u->thre_pending = false;
		if (u->fifo_enabled)
			v |= UART_IIR_FIFO;
		break;
	case 3:
		v = u->lcr;
		break;
	case 4:
		v = u->mcr;
		break;
	case 5:
		v = u->lsr_err | UART_LSR_THRE | UART_LSR_TEMT;
		if (u->rx_count)
			v |= UART_LSR_DR;
		u->lsr_err = 0;
		break;
	case 6:
		v = u->msr_lines | u->msr_delta;
		u->msr_delta = 0;
		break;
	default:
		v = u->scr;
		break;
	}
	*value = v;
	uart_update(u);
}

static void uart_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct uart *u = opaque;
	uint8_t v = (uint8_t)value;
	static const unsigned triggers[4] = {1, 4, 8, 14};
	switch (off) {
	case 0:
		if (u->lcr & UART_LCR_DLAB) {
			u->dll = v;
			break;
		}
		u->thre_pending = false;
		uart_transmit(u, v);
		u->thre_pending = true; /* THR emptied at once (invariant 2) */
		break;
	case 1:
		if (u->lcr & UART_LCR_DLAB) {
			u->dlm = v;
			break;
		}
		if ((v & ~u->ier) & UART_IER_THRI)
			u->thre_pending = true; /* ETBEI rising with THR empty: re-armed */
		else if (!(v & UART_IER_THRI))
			u->thre_pending = false;
		u->ier = v & 0x0f;
		break;
	case 2:
		if ((bool)(v & UART_FCR_ENABLE) != u->fifo_enabled)
			uart_rx_clear(u);
		u->fifo_enabled = v & UART_FCR_ENABLE;
		if (v & UART_FCR_CLR_RX)
			uart_rx_clear(u);
		u->rx_trigger = triggers[v >> 6];
		break;
	case 3:
		u->lcr = v;
		break;
	case 4:
		u->mcr = v & 0x1f;
		uart_set_lines(u, uart_lines(u));
		break;
	case 5: /* LSR and MSR writes are factory-test only: ignored */
	case 6:
		break;
	default:
		u->scr = v;
		break;
	}
	uart_update(u);
}

static const struct iobus_ops uart_ops = {
    .read = uart_read,
    .write = uart_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "uart-16550a",
};

enum bt_status uart_create(struct iobus *bus, uint16_t base, int tx_fd, int rx_fd,
			   struct uart **out)
{
	if (!bus || !out)
		return BT_ERR_INVALID;
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return BT_ERR_NOMEM;
	u->bus = bus;
	u->base = base;
	u->tx_fd = tx_fd;
	u->rx_fd = rx_fd;
	u->rx_trigger = 1;
	u->mcr = UART_MCR_OUT2; /* as QEMU resets it (a 16550 resets to 0) */
	u->msr_lines = uart_lines(u);
	irq_line_init(&u->irq, NULL, NULL, 0);
	enum bt_status s = iobus_register_pio(bus, base, 8, &uart_ops, u);
	if (s != BT_OK) {
		free(u);
		return s;
	}
	*out = u;
	return BT_OK;
}

void uart_destroy(struct uart *uart)
{
	if (!uart)
		return;
	iobus_unregister_pio(uart->bus, uart->base);
	free(uart);
}

struct irq_line *uart_irq(struct uart *uart)
{
	return &uart->irq;
}

size_t uart_rx_room(const struct uart *uart)
{
	if (uart->mcr & UART_MCR_LOOP)
		return 0;
	return uart_rx_cap(uart) - uart->rx_count;
}

size_t uart_rx_push(struct uart *uart, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	while (n < len && uart_rx_room(uart) > 0)
		uart_receive(uart, buf[n++]);
	if (n)
		uart_update(uart);
	return n;
}

int uart_rx_wait_fd(const struct uart *uart)
{
	return uart->rx_fd >= 0 && uart_rx_room(uart) > 0 ? uart->rx_fd : -1;
}

/* Apply the console escape to n backend bytes in place; returns how many
 * are left for the guest. */
static size_t uart_unescape(struct uart *u, uint8_t *buf, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = buf[i];
		if (u->esc_pending) {
			u->esc_pending = false;
			if (b == 'x' || b == 'X')
				u->esc_quit(u->esc_opaque);
			else if (b == UART_ESC_KEY)
				buf[m++] = b;
			continue;
		}
		if (b == UART_ESC_KEY) {
			u->esc_pending = true;
			continue;
		}
		buf[m++] = b;
	}
	return m;
}

size_t uart_poll(struct uart *uart)
{
	size_t room = uart_rx_room(uart);
	if (uart->rx_fd < 0 || room == 0)
		return 0;
	struct pollfd pfd = {.fd = uart->rx_fd, .events = POLLIN};
	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	uint8_t buf[UART_FIFO_SIZE];
	ssize_t n = read(uart->rx_fd, buf, room);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			bt_info(LOG_DEV, "uart %#x: RX backend closed; no more input", uart->base);
			uart->rx_fd = -1;
		}
		return 0;
	}
	if (uart->esc_quit)
		n = (ssize_t)uart_unescape(uart, buf, (size_t)n);
	return uart_rx_push(uart, buf, (size_t)n);
}

void uart_set_escape(struct uart *uart, void (*quit)(void *opaque), void *opaque)
{
	uart->esc_quit = quit;
	uart->esc_opaque = opaque;
	uart->esc_pending = false;
}

uint64_t uart_tx_count(const struct uart *uart)
{
	return uart->tx_count;
}
