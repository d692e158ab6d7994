/*
 * The host terminal behind the serial console (COM1), as QEMU's
 * -nographic: while the VM runs, a console that is a terminal is raw (no
 * local echo, no line editing, Ctrl-C and Ctrl-Z go to the guest, Enter
 * sends \r as a serial terminal does), and Ctrl-A is an escape: Ctrl-A x
 * stops btvm as SIGINT does (a clean stop; --learn still commits), Ctrl-A
 * Ctrl-A sends one Ctrl-A to the guest, any other key after Ctrl-A is
 * dropped.  The escape itself is the UART's (uart_set_escape); this module
 * only switches the terminal and restores it.  A console that is not a
 * terminal (a pipe, a file, /dev/null) is left alone: scripts see bytes.
 *
 * Contract: conterm_raw before the sandbox (runtime/sandbox) is entered;
 * conterm_restore after the VM stopped, which the sandbox allows for this
 * descriptor only (sandbox_config.tty_fd).
 */
#ifndef BT_RUNTIME_DEV_CONTERM_H
#define BT_RUNTIME_DEV_CONTERM_H

#include <stdbool.h>
#include <termios.h>

struct conterm {
	int fd;	     /* the terminal, -1 when the console is not one */
	bool active; /* saved holds the settings to restore */
	struct termios saved;
};

/* Make fd raw if it is a terminal; t->fd = fd then, -1 otherwise.  Returns
 * false (with errno) only if fd is a terminal that refused the change. */
bool conterm_raw(struct conterm *t, int fd);
/* Put the saved settings back (no-op when nothing was changed). */
void conterm_restore(struct conterm *t);

#endif
