/*
 * CMOS real-time clock (ports 0x70/0x71): waits for Update-In-Progress to
 * clear with a bound, reads twice until two reads agree, converts BCD and
 * 12-hour formats per status register B, and the century register 0x32.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"

uint64_t boot_epoch;

static uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static int rtc_wait_uip(void)
{
	for (unsigned i = 0; i < 1000000; i++) {
		if (!(cmos_read(0x0a) & 0x80))
			return 0;
	}
	return -ETIMEDOUT;
}

static void rtc_raw(uint8_t r[7])
{
	r[0] = cmos_read(0x00);
	r[1] = cmos_read(0x02);
	r[2] = cmos_read(0x04);
	r[3] = cmos_read(0x07);
	r[4] = cmos_read(0x08);
	r[5] = cmos_read(0x09);
	r[6] = cmos_read(0x32);
}

static int bcd(int v)
{
	return (v & 0x0f) + (v >> 4) * 10;
}

int rtc_read(struct rtc_time *t)
{
	uint8_t a[7], b[7];
	int tries = 0;
	do {
		if (rtc_wait_uip())
			return -ETIMEDOUT;
		rtc_raw(a);
		if (rtc_wait_uip())
			return -ETIMEDOUT;
		rtc_raw(b);
	} while (memcmp(a, b, sizeof(a)) && ++tries < 10);
	if (tries >= 10)
		return -EIO;

	uint8_t regb = cmos_read(0x0b);
	bool pm = (b[2] & 0x80) != 0;
	int v[7];
	for (int i = 0; i < 7; i++)
		v[i] = b[i];
	v[2] &= 0x7f;
	if (!(regb & 0x04)) {
		for (int i = 0; i < 7; i++)
			v[i] = bcd(v[i]);
	}
	if (!(regb & 0x02)) { /* 12-hour clock: 12 AM = 0, 12 PM = 12 */
		v[2] %= 12;
		if (pm)
			v[2] += 12;
	}
	int century = (v[6] >= 19 && v[6] <= 30) ? v[6] : 20;
	t->sec = v[0];
	t->min = v[1];
	t->hour = v[2];
	t->day = v[3];
	t->mon = v[4];
	t->year = century * 100 + v[5];
	return 0;
}

/* Days from civil (Howard Hinnant's algorithm). */
uint64_t rtc_to_epoch(const struct rtc_time *t)
{
	int y = t->year - (t->mon <= 2);
	int era = y / 400;
	int yoe = y - era * 400;
	int mp = (t->mon + 9) % 12;
	int doy = (153 * mp + 2) / 5 + t->day - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	return (uint64_t)(days * 86400 + t->hour * 3600 + t->min * 60 + t->sec);
}
