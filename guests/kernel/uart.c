/*
 * 16550 UART at 0x3f8 (COM1, IRQ4): 115200 8N1, FIFOs on, polled transmit
 * with a bounded wait on LSR.THRE, interrupt-driven receive into a ring
 * buffer drained by read(0).  Loopback mode (MCR bit 4) is used by the
 * uart_loopback self-test.  Invariant: the ring is touched only with
 * interrupts off (the IRQ handler runs with IF clear).
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/trap.h"

#define COM1	 0x3f8
#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_DLL 0
#define UART_DLM 1

#define LSR_DR	 0x01
#define LSR_THRE 0x20
#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define RX_RING 1024

static char rx_ring[RX_RING];
static unsigned rx_head, rx_tail; /* head: next write; tail: next read */
static int rx_chan;		  /* wait channel of readers */

void uart_putc_raw(char c)
{
	for (unsigned i = 0; i < 100000; i++) {
		if (inb(COM1 + UART_LSR) & LSR_THRE)
			break;
		cpu_relax();
	}
	outb(COM1 + UART_THR, (uint8_t)c);
}

void uart_irq(void)
{
	unsigned n = 0;
	while ((inb(COM1 + UART_LSR) & LSR_DR) && n++ < 256) {
		char c = (char)inb(COM1 + UART_RBR);
		unsigned next = (rx_head + 1) % RX_RING;
		if (next != rx_tail) {
			rx_ring[rx_head] = c;
			rx_head = next;
		}
	}
	sched_wakeup(&rx_chan);
}

void uart_init(void)
{
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x80); /* DLAB */
	outb(COM1 + UART_DLL, 0x01); /* 115200 */
	outb(COM1 + UART_DLM, 0x00);
	outb(COM1 + UART_LCR, 0x03); /* 8N1 */
	outb(COM1 + UART_FCR, 0xc7); /* FIFO on, clear, 14-byte trigger */
	outb(COM1 + UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	(void)inb(COM1 + UART_LSR);
	(void)inb(COM1 + UART_RBR);
	(void)inb(COM1 + UART_IIR);
	outb(COM1 + UART_IER, 0x01); /* received data available */
}

int uart_getc_nonblock(void)
{
	uint64_t f = irq_save();
	int c = -1;
	if (rx_tail != rx_head) {
		c = (unsigned char)rx_ring[rx_tail];
		rx_tail = (rx_tail + 1) % RX_RING;
	}
	irq_restore(f);
	return c;
}

/* Blocks until at least one byte is available; returns the count read. */
int uart_read_blocking(char *buf, size_t n)
{
	size_t got = 0;
	uint64_t f = irq_save();
	while (rx_tail == rx_head) {
		if (task_killed()) {
			irq_restore(f);
			return -EINTR;
		}
		sched_sleep(&rx_chan, 0);
	}
	while (got < n && rx_tail != rx_head) {
		buf[got++] = rx_ring[rx_tail];
		rx_tail = (rx_tail + 1) % RX_RING;
	}
	irq_restore(f);
	return (int)got;
}

void uart_drain_rx(void)
{
	uint64_t f = irq_save();
	while (inb(COM1 + UART_LSR) & LSR_DR)
		(void)inb(COM1 + UART_RBR);
	rx_tail = rx_head;
	irq_restore(f);
}

void uart_set_loopback(bool on)
{
	/* Wait until the transmitter is empty so no console byte is looped. */
	for (unsigned i = 0; i < 100000; i++) {
		if (inb(COM1 + UART_LSR) & 0x40)
			break;
		cpu_relax();
	}
	outb(COM1 + UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2 | (on ? MCR_LOOP : 0));
}
