/*
 * 8254 PIT: channel 0 as the periodic scheduler tick (mode 2, HZ per second,
 * IRQ0) and channel 2 gated through port 0x61 as the reference for TSC
 * calibration (Linux's pit_calibrate_tsc).  Calibration is bounded: when the
 * channel 2 output never rises, tsc_hz stays 0 and time comes from jiffies.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/trap.h"

#define PIT_FREQ 1193182u
#define PIT_CH0	 0x40
#define PIT_CH2	 0x42
#define PIT_CMD	 0x43

volatile uint64_t jiffies;
uint64_t tsc_hz;
static uint64_t tsc_boot;

static void pit_tick(void)
{
	jiffies++;
	sched_tick();
}

void pit_init(void)
{
	unsigned div = (PIT_FREQ + HZ / 2) / HZ;
	outb(PIT_CMD, 0x34); /* channel 0, lobyte/hibyte, mode 2, binary */
	outb(PIT_CH0, (uint8_t)div);
	outb(PIT_CH0, (uint8_t)(div >> 8));
	irq_register(0, pit_tick);
	pic_unmask(0);
}

void tsc_calibrate(void)
{
	const unsigned ms = 20;
	unsigned latch = PIT_FREQ / (1000 / ms);
	uint64_t loops = 0, t1, t2;

	outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01)); /* gate on, speaker off */
	outb(PIT_CMD, 0xb0);				   /* channel 2, lobyte/hibyte, mode 0 */
	outb(PIT_CH2, (uint8_t)latch);
	outb(PIT_CH2, (uint8_t)(latch >> 8));
	t1 = rdtsc();
	while (!(inb(0x61) & 0x20)) {
		if (++loops > 20000000)
			break;
	}
	t2 = rdtsc();
	tsc_boot = t2;
	if (loops > 20000000 || loops < 16 || t2 <= t1) {
		printk("# tsc: calibration against PIT channel 2 failed (%lu loops), using ticks\n",
		       (unsigned long)loops);
		tsc_hz = 0;
		return;
	}
	tsc_hz = (t2 - t1) * (1000 / ms);
	printk("# tsc: %lu kHz\n", (unsigned long)(tsc_hz / 1000));
}

uint64_t monotonic_ns(void)
{
	if (!tsc_hz)
		return jiffies * (1000000000ul / HZ);
	uint64_t d = rdtsc() - tsc_boot;
	return (d / tsc_hz) * 1000000000ul + (d % tsc_hz) * 1000000000ul / tsc_hz;
}
