/*
 * PC motherboard glue ports that kernels touch but that hold no real
 * device: the POST diagnostic port 0x80 (written by outb_p() as an I/O
 * delay; the last code is kept, reads return 0xff) and System Control
 * Port A at 0x92 (bit 1 = A20 gate, read back; writing bit 0 = 1 requests
 * a fast reset, reported through the callback).
 */
#ifndef BT_RUNTIME_DEV_SYSPORT_H
#define BT_RUNTIME_DEV_SYSPORT_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"

#include <stdbool.h>
#include <stdint.h>

#define SYSPORT_POST_PORT 0x80
#define SYSPORT_A_PORT	  0x92

struct sysport;

typedef void sysport_reset_fn(void *opaque);

/* reset may be NULL (the request is then only logged and counted). */
enum bt_status sysport_create(struct iobus *bus, sysport_reset_fn *reset, void *opaque,
			      struct sysport **out);
void sysport_destroy(struct sysport *sp);

uint8_t sysport_post_code(const struct sysport *sp);
bool sysport_a20(const struct sysport *sp);
unsigned sysport_reset_requests(const struct sysport *sp);

#endif
