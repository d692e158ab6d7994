/*
 * isa-debug-exit (QEMU semantics): a write of value V to its port (0xf4,
 * 4 bytes wide, by default) asks the VMM to exit with status (V << 1) | 1,
 * so a test guest can report success or failure.  The request is recorded
 * (debug_exit_requested) and reported through an optional callback; the
 * runtime's loop stops the guest and exits with that status.  Reads return 0.
 */
#ifndef BT_RUNTIME_DEV_DEBUG_EXIT_H
#define BT_RUNTIME_DEV_DEBUG_EXIT_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"

#include <stdbool.h>
#include <stdint.h>

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_SIZE 4

struct debug_exit;

typedef void debug_exit_fn(void *opaque, int status);

/* fn may be NULL (poll debug_exit_requested instead). */
enum bt_status debug_exit_create(struct iobus *bus, uint16_t port, unsigned size, debug_exit_fn *fn,
				 void *opaque, struct debug_exit **out);
void debug_exit_destroy(struct debug_exit *dexit);

/* True once the guest wrote the port; *status gets (V << 1) | 1 of the first
 * write (later writes are ignored). */
bool debug_exit_requested(const struct debug_exit *dexit, int *status);

#endif
