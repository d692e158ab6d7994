/*
 * 16550A UART (8250 family), e.g. COM1 at 0x3f8 on IRQ4.
 *
 * Transmission is instantaneous: a byte written to THR goes straight to the
 * TX backend (a file descriptor, stdout for the console) and THR/TSR are
 * empty again at once, so LSR.THRE and LSR.TEMT always read 1 and the
 * divisor latch (kept and readable) does not pace anything.  Received bytes
 * come from the RX backend fd, read by uart_poll() on the vCPU thread only
 * as far as the 16-byte FIFO has room (the host holds the rest: no overrun
 * from the backend), or are injected with uart_rx_push().
 *
 * The interrupt output (uart_irq) is the OR of the enabled pending sources,
 * as QEMU does: MCR.OUT2 is not used as a gate (real PC boards gate IRQ with
 * OUT2; Linux sets OUT2 anyway, and guests validated under QEMU may not).
 */
#ifndef BT_RUNTIME_DEV_UART_H
#define BT_RUNTIME_DEV_UART_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/dev/irq.h"

#include <stddef.h>
#include <stdint.h>

#define UART_COM1_PORT 0x3f8
#define UART_COM1_IRQ  4
#define UART_FIFO_SIZE 16

struct uart;

/* tx_fd < 0 discards output; rx_fd < 0 means no input backend.  The fds
 * stay owned by the caller.  Registers 8 ports at base on bus. */
enum bt_status uart_create(struct iobus *bus, uint16_t base, int tx_fd, int rx_fd,
			   struct uart **out);
void uart_destroy(struct uart *uart);

/* The interrupt output, to wire with e.g. pic_connect(pic, 4, uart_irq(u)). */
struct irq_line *uart_irq(struct uart *uart);

/* Move available RX backend bytes into the FIFO without blocking.
 * Returns the number of bytes taken. */
size_t uart_poll(struct uart *uart);

/* The console escape (runtime/dev/conterm.h), for an RX backend that is a
 * terminal: in the backend's bytes, Ctrl-A x calls quit(opaque), Ctrl-A
 * Ctrl-A is one Ctrl-A, Ctrl-A and any other byte are dropped.  quit NULL
 * turns it off (the default: every byte reaches the guest). */
void uart_set_escape(struct uart *uart, void (*quit)(void *opaque), void *opaque);
/* Inject received bytes; returns how many fitted in the FIFO. */
size_t uart_rx_push(struct uart *uart, const uint8_t *buf, size_t len);
/* Free space in the RX FIFO (1 when FIFOs are disabled and RBR is empty). */
size_t uart_rx_room(const struct uart *uart);
/* The fd a sleeping loop should wake up for: the RX backend while it is
 * open (not yet at end of file) and the FIFO has room, else -1 (then
 * waiting on it would return at once, forever: /dev/null is always
 * readable). */
int uart_rx_wait_fd(const struct uart *uart);

/* Bytes sent to the TX backend so far (statistics, tests). */
uint64_t uart_tx_count(const struct uart *uart);

#endif
