/*
 * MC146818-compatible CMOS real-time clock and its 128 bytes of CMOS RAM at
 * ports 0x70 (index; bit 7 = NMI disable) and 0x71 (data), IRQ8.
 *
 * Time = wall time at creation (the host's, or a fixed epoch for tests)
 * plus elapsed virtual time; a guest that sets the clock (SET bit in
 * register B, or plain writes) moves this offset.  Registers 0-9 and the
 * century byte (0x32) follow register B's format (BCD or binary, 12 or 24
 * hours).  Register A's UIP bit reads 1 during the last 244 us before each
 * second's update, as on real hardware, so mc146818_get_time()'s
 * avoid-UIP loop behaves.  Register C's UF/AF/PF flags are raised by the
 * update, alarm and periodic events, IRQF and IRQ8 follow the enables in B,
 * and reading C clears them.  Register D reads "valid RAM and time".
 * Not modelled: divider-chain reset (A bits 6-4 are stored, time runs on),
 * daylight-saving (B bit 0), square-wave output.
 */
#ifndef BT_RUNTIME_DEV_RTC_H
#define BT_RUNTIME_DEV_RTC_H

#include "pretrans/base/status.h"
#include "runtime/bus/iobus.h"
#include "runtime/clock/vclock.h"
#include "runtime/dev/irq.h"

#include <stdbool.h>
#include <stdint.h>

#define RTC_PORT      0x70
#define RTC_IRQ	      8
#define RTC_HOST_TIME INT64_MIN /* base_epoch: take the host's wall clock */

struct rtc;

/* base_epoch: Unix time the RTC shows at virtual time "now", or
 * RTC_HOST_TIME.  Registers ports 0x70-0x71 on bus. */
enum bt_status rtc_create(struct iobus *bus, struct vclock *clock, int64_t base_epoch,
			  struct rtc **out);
void rtc_destroy(struct rtc *rtc);

/* The IRQ8 output, to wire with pic_connect(pic, 8, rtc_irq(r)). */
struct irq_line *rtc_irq(struct rtc *rtc);
/* NMI disabled by the last index write (bit 7 of port 0x70). */
bool rtc_nmi_masked(const struct rtc *rtc);
/* CMOS RAM outside the clock registers (index 0x0e-0x7f), e.g. memory size
 * bytes a firmware would fill; BT_ERR_RANGE for clock registers. */
enum bt_status rtc_cmos_set(struct rtc *rtc, uint8_t index, uint8_t value);
/* The time the RTC currently shows, as Unix seconds. */
int64_t rtc_time(struct rtc *rtc);

#endif
