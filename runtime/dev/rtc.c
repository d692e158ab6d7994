/*
 * CMOS RTC (see rtc.h).  Owns CMOS RAM, the guest-time offset, the event
 * flags of register C and the IRQ8 timer.
 *
 * Modes:  RUNNING --B.SET=1--> SET (time frozen in ram[], writable)
 *         SET --B.SET=0--> RUNNING (ram[] time decoded into offset)
 *         [rtc_write_reg]
 *
 * Invariants
 *  1. RUNNING: the shown time is (vclock_now + offset_ns) as Unix ns; the
 *     time bytes of ram[] are only a scratch copy.  SET: ram[] holds it.
 *  2. last_sec / last_period are the update / periodic event indices up to
 *     which register C's flags are accounted (rtc_catch_up()).
 *  3. irq level == IRQF == (C & B & 0x70) != 0, after every access and
 *     timer run; the timer is armed iff some interrupt is enabled.
 */
#include "runtime/dev/rtc.h"

#include "pretrans/base/log.h"

#include <stdlib.h>
#include <time.h>

#define REG_SEC	      0x00
#define REG_SEC_ALARM 0x01
#define REG_MIN	      0x02
#define REG_MIN_ALARM 0x03
#define REG_HOUR      0x04
#define REG_HR_ALARM  0x05
#define REG_WDAY      0x06
#define REG_MDAY      0x07
#define REG_MONTH     0x08
#define REG_YEAR      0x09
#define REG_A	      0x0a
#define REG_B	      0x0b
#define REG_C	      0x0c
#define REG_D	      0x0d
#define REG_CENTURY   0x32

#define A_UIP  0x80
#define B_SET  0x80
#define B_PIE  0x40
#define B_AIE  0x20
#define B_UIE  0x10
#define B_DM   0x04 /* binary */
#define B_24H  0x02
#define C_IRQF 0x80
#define C_PF   0x40
#define C_AF   0x20
#define C_UF   0x10

#define UIP_NS 244000ull /* update-in-progress window before each update */

struct rtc {
	struct iobus *bus;
	struct vclock *clock;
	struct irq_line irq;
	struct vclock_timer timer;
	uint8_t ram[128];
	uint8_t index;
	bool nmi_masked;
	int64_t offset_ns;
	int64_t last_sec;
	uint64_t last_period;
	uint8_t flags; /* register C */
};

static int64_t guest_ns(struct rtc *r, uint64_t now)
{
	return (int64_t)now + r->offset_ns;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

static uint64_t periodic_hz(uint8_t a)
{
	unsigned rate = a & 0x0f;
	if (!rate)
		return 0;
	if (rate <= 2)
		rate += 7; /* 256 and 128 Hz, as rates 8 and 9 */
	return 32768u >> (rate - 1);
}

static uint8_t rtc_enc(const struct rtc *r, unsigned v)
{
	if (r->ram[REG_B] & B_DM)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

static unsigned rtc_dec(const struct rtc *r, uint8_t v)
{
	if (r->ram[REG_B] & B_DM)
		return v;
	return (v >> 4) * 10u + (v & 0x0f);
}

/* Write the shown time into the time bytes of ram[]. */
static void rtc_fields_from(struct rtc *r, int64_t sec)
{
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	r->ram[REG_SEC] = rtc_enc(r, (unsigned)tm.tm_sec);
	r->ram[REG_MIN] = rtc_enc(r, (unsigned)tm.tm_min);
	unsigned h = (unsigned)tm.tm_hour;
	if (r->ram[REG_B] & B_24H) {
		r->ram[REG_HOUR] = rtc_enc(r, h);
	} else {
		unsigned h12 = h % 12 ? h % 12 : 12;
		r->ram[REG_HOUR] = (uint8_t)(rtc_enc(r, h12) | (h >= 12 ? 0x80 : 0));
	}
	r->ram[REG_WDAY] = rtc_enc(r, (unsigned)tm.tm_wday + 1);
	r->ram[REG_MDAY] = rtc_enc(r, (unsigned)tm.tm_mday);
	r->ram[REG_MONTH] = rtc_enc(r, (unsigned)tm.tm_mon + 1);
	unsigned year = (unsigned)tm.tm_year + 1900;
	r->ram[REG_YEAR] = rtc_enc(r, year % 100);
	r->ram[REG_CENTURY] = rtc_enc(r, year / 100);
}

/* Decode the time bytes of ram[] (as the guest wrote them). */
static int64_t rtc_fields_to(const struct rtc *r)
{
	struct tm tm = {0};
	tm.tm_sec = (int)rtc_dec(r, r->ram[REG_SEC]);
	tm.tm_min = (int)rtc_dec(r, r->ram[REG_MIN]);
	uint8_t h = r->ram[REG_HOUR];
	if (r->ram[REG_B] & B_24H) {
		tm.tm_hour = (int)rtc_dec(r, h);
	} else {
		unsigned h12 = rtc_dec(r, h & 0x7f) % 12;
		tm.tm_hour = (int)(h12 + ((h & 0x80) ? 12 : 0));
	}
	tm.tm_mday = (int)rtc_dec(r, r->ram[REG_MDAY]);
	tm.tm_mon = (int)rtc_dec(r, r->ram[REG_MONTH]) - 1;
	unsigned year = rtc_dec(r, r->ram[REG_YEAR]);
	unsigned century = rtc_dec(r, r->ram[REG_CENTURY]);
	if (century)
		year += century * 100;
	else
		year += year < 70 ? 2000 : 1900;
	tm.tm_year = (int)year - 1900;
	return (int64_t)timegm(&tm);
}

static bool rtc_alarm_matches(struct rtc *r, int64_t sec)
{
	rtc_fields_from(r, sec);
	static const uint8_t pairs[3][2] = {
	    {REG_SEC_ALARM, REG_SEC}, {REG_MIN_ALARM, REG_MIN}, {REG_HR_ALARM, REG_HOUR}};
	for (unsigned i = 0; i < 3; i++) {
		uint8_t alarm = r->ram[pairs[i][0]];
		if ((alarm & 0xc0) == 0xc0) /* don't care */
			continue;
		if (alarm != r->ram[pairs[i][1]])
			return false;
	}
	return true;
}

/* Account update/alarm/periodic events up to now (invariant 2). */
static void rtc_catch_up(struct rtc *r, uint64_t now)
{
	if (!(r->ram[REG_B] & B_SET)) {
		int64_t sec = floor_div(guest_ns(r, now), (int64_t)VCLOCK_NS_PER_SEC);
		if (sec > r->last_sec) {
			r->flags |= C_UF;
			if (rtc_alarm_matches(r, sec))
				r->flags |= C_AF;
		}
		r->last_sec = sec;
	}
	uint64_t hz = periodic_hz(r->ram[REG_A]);
	if (hz) {
		uint64_t p = (uint64_t)(((unsigned __int128)now * hz) / VCLOCK_NS_PER_SEC);
		if (p > r->last_period)
			r->flags |= C_PF;
		r->last_period = p;
	}
	if (r->flags & r->ram[REG_B] & (C_PF | C_AF | C_UF))
		r->flags |= C_IRQF;
	irq_line_set(&r->irq, r->flags & C_IRQF);
}

static void rtc_rearm(struct rtc *r, uint64_t now)
{
	uint8_t b = r->ram[REG_B];
	uint64_t next = VCLOCK_NEVER;
	if ((b & (B_UIE | B_AIE)) && !(b & B_SET)) {
		int64_t sec = floor_div(guest_ns(r, now), (int64_t)VCLOCK_NS_PER_SEC);
		int64_t at = (sec + 1) * (int64_t)VCLOCK_NS_PER_SEC - r->offset_ns;
		if (at > 0)
			next = (uint64_t)at;
	}
	uint64_t hz = periodic_hz(r->ram[REG_A]);
	if ((b & B_PIE) && hz) {
		uint64_t p = (uint64_t)(((unsigned __int128)now * hz) / VCLOCK_NS_PER_SEC) + 1;
		unsigned __int128 n = (unsigned __int128)p * VCLOCK_NS_PER_SEC;
		uint64_t at = (uint64_t)((n + hz - 1) / hz);
		if (at < next)
			next = at;
	}
	if (next == VCLOCK_NEVER)
		vclock_timer_cancel(&r->timer);
	else
		vclock_timer_arm(&r->timer, next);
}

static void rtc_timer_fire(void *opaque, uint64_t deadline)
{
	struct rtc *r = opaque;
	uint64_t now = vclock_now_ns(r->clock);
	rtc_catch_up(r, now);
	rtc_rearm(r, now);
}

static bool is_time_reg(uint8_t idx)
{
	return idx <= REG_YEAR || idx == REG_CENTURY;
}

static uint8_t rtc_read_reg(struct rtc *r, uint64_t now)
{
	uint8_t idx = r->index;
	uint8_t b = r->ram[REG_B];
	if (is_time_reg(idx) && !(b & B_SET)) {
		bool alarm = idx == REG_SEC_ALARM || idx == REG_MIN_ALARM || idx == REG_HR_ALARM;
		if (!alarm)
			rtc_fields_from(r, floor_div(guest_ns(r, now), (int64_t)VCLOCK_NS_PER_SEC));
		return r->ram[idx];
	}
	switch (idx) {
	case REG_A: {
		uint8_t v = r->ram[REG_A] & 0x7f;
		int64_t frac = guest_ns(r, now) % (int64_t)VCLOCK_NS_PER_SEC;
		if (frac < 0)
			frac += (int64_t)VCLOCK_NS_PER_SEC;
		if (!(b & B_SET) && (uint64_t)frac >= VCLOCK_NS_PER_SEC - UIP_NS)
			v |= A_UIP;
		return v;
	}
	case REG_C: {
		rtc_catch_up(r, now);
		uint8_t v = r->flags;
		r->flags = 0;
		irq_line_lower(&r->irq);
		rtc_rearm(r, now);
		return v;
	}
	case REG_D:
		return 0x80; /* VRT: RAM and time valid */
	default:
		return r->ram[idx];
	}
}

static void rtc_write_reg(struct rtc *r, uint8_t v, uint64_t now)
{
	uint8_t idx = r->index;
	uint8_t b = r->ram[REG_B];
	if (is_time_reg(idx)) {
		bool alarm = idx == REG_SEC_ALARM || idx == REG_MIN_ALARM || idx == REG_HR_ALARM;
		if (alarm || (b & B_SET)) {
			r->ram[idx] = v;
			return;
		}
		/* A write while running: change that field, keep the fraction. */
		int64_t g = guest_ns(r, now);
		int64_t sec = floor_div(g, (int64_t)VCLOCK_NS_PER_SEC);
		int64_t frac = g - sec * (int64_t)VCLOCK_NS_PER_SEC;
		rtc_fields_from(r, sec);
		r->ram[idx] = v;
		sec = rtc_fields_to(r);
		r->offset_ns = sec * (int64_t)VCLOCK_NS_PER_SEC + frac - (int64_t)now;
		r->last_sec = sec;
		return;
	}
	switch (idx) {
	case REG_A:
		rtc_catch_up(r, now);
		r->ram[REG_A] = v & 0x7f;
		r->last_period =
		    (uint64_t)(((unsigned __int128)now * periodic_hz(v)) / VCLOCK_NS_PER_SEC);
		break;
	case REG_B:
		rtc_catch_up(r, now);
		if ((v & B_SET) && !(b & B_SET)) {
			/* freeze: the time bytes become the registers */
			rtc_fields_from(r, floor_div(guest_ns(r, now), (int64_t)VCLOCK_NS_PER_SEC));
		}
		if ((v ^ b) & (B_DM | B_24H) && (v & B_SET))
			bt_debug(LOG_DEV, "rtc: format changed while SET; guest rewrites the time");
		if (v & B_SET)
			v &= (uint8_t)~B_UIE; /* SET clears UIE */
		r->ram[REG_B] = v;
		if (!(v & B_SET) && (b & B_SET)) {
			int64_t sec = rtc_fields_to(r);
			r->offset_ns = sec * (int64_t)VCLOCK_NS_PER_SEC - (int64_t)now;
			r->last_sec = sec;
		}
		/* IRQF follows the new enables */
		r->flags &= (uint8_t)~C_IRQF;
		rtc_catch_up(r, now);
		break;
	case REG_C: /* read-only */
	case REG_D:
		return;
	default:
		r->ram[idx] = v;
		return;
	}
	rtc_rearm(r, now);
}

static void rtc_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct rtc *r = opaque;
	if (off == 0)
		*value = 0xff; /* the index register is write-only */
	else
		*value = rtc_read_reg(r, vclock_now_ns(r->clock));
}

static void rtc_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	if (off == 0) {
		r->index = value & 0x7f;
		r->nmi_masked = value & 0x80;
	} else {
		rtc_write_reg(r, (uint8_t)value, vclock_now_ns(r->clock));
	}
}

static const struct iobus_ops rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
    .flags = IOBUS_SPLIT_BYTES,
    .name = "cmos-rtc",
};

enum bt_status rtc_create(struct iobus *bus, struct vclock *clock, int64_t base_epoch,
			  struct rtc **out)
{
	if (!bus || !clock || !out)
		return BT_ERR_INVALID;
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return BT_ERR_NOMEM;
	r->bus = bus;
	r->clock = clock;
	uint64_t now = vclock_now_ns(clock);
	int64_t wall_ns;
	if (base_epoch == RTC_HOST_TIME) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		wall_ns = (int64_t)ts.tv_sec * (int64_t)VCLOCK_NS_PER_SEC + ts.tv_nsec;
	} else {
		wall_ns = base_epoch * (int64_t)VCLOCK_NS_PER_SEC;
	}
	r->offset_ns = wall_ns - (int64_t)now;
	r->ram[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate */
	r->ram[REG_B] = B_24H;
	r->last_sec = floor_div(guest_ns(r, now), (int64_t)VCLOCK_NS_PER_SEC);
	r->last_period =
	    (uint64_t)(((unsigned __int128)now * periodic_hz(0x26)) / VCLOCK_NS_PER_SEC);
	irq_line_init(&r->irq, NULL, NULL, RTC_IRQ);
	vclock_timer_init(&r->timer, clock, rtc_timer_fire, r);
	enum bt_status s = iobus_register_pio(bus, RTC_PORT, 2, &rtc_ops, r);
	if (s != BT_OK) {
		free(r);
		return s;
	}
	*out = r;
	return BT_OK;
}

void rtc_destroy(struct rtc *rtc)
{
	if (!rtc)
		return;
	vclock_timer_cancel(&rtc->timer);
	iobus_unregister_pio(rtc->bus, RTC_PORT);
	free(rtc);
}

struct irq_line *rtc_irq(struct rtc *rtc)
{
	return &rtc->irq;
}

bool rtc_nmi_masked(const struct rtc *rtc)
{
	return rtc->nmi_masked;
}

enum bt_status rtc_cmos_set(struct rtc *rtc, uint8_t index, uint8_t value)
{
	if (!rtc || index >= 128 || index <= REG_D || index == REG_CENTURY)
		return BT_ERR_RANGE;
	rtc->ram[index] = value;
	return BT_OK;
}

int64_t rtc_time(struct rtc *rtc)
{
	uint64_t now = vclock_now_ns(rtc->clock);
	if (rtc->ram[REG_B] & B_SET)
		return rtc_fields_to(rtc);
	return floor_div(guest_ns(rtc, now), (int64_t)VCLOCK_NS_PER_SEC);
}
