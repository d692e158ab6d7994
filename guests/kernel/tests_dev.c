/*
 * Kernel self-tests of interrupts, devices, the scheduler and module
 * loading: timer ticks during a busy loop, an exception nested inside the
 * timer interrupt, the CMOS RTC, UART loopback with RX interrupts, two
 * preempted kernel threads, ATA PIO write/flush/read, and testmod.ko.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/ktest.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/trap.h"
#include "guests/kernel/vm.h"

int ktest_timer_loop(void)
{
	uint64_t start = jiffies;
	volatile uint64_t x = 0;
	uint64_t i;
	KT_CHECK(read_rflags() & RFLAGS_IF, "interrupts are off in the runner");
	for (i = 0; i < 2000000000ul; i++) {
		x += i;
		if (jiffies >= start + 20)
			break;
	}
	KT_CHECK(jiffies >= start + 20, "only %lu ticks in %lu iterations",
		 (unsigned long)(jiffies - start), (unsigned long)i);
	printk("# timer_loop: 20 ticks in %lu iterations\n", (unsigned long)i);
	return 0;
}

int ktest_nested_exception(void)
{
	unsigned long i3 = int3_count, df = demand_faults;
	timer_nested_hook = 1;
	for (unsigned i = 0; i < 200 && timer_nested_hook == 1; i++)
		sleep_ticks(1);
	KT_CHECK(timer_nested_hook == 2, "hook state %d", timer_nested_hook);
	KT_CHECK(int3_count == i3 + 1, "int3 count %lu -> %lu", i3, (unsigned long)int3_count);
	KT_CHECK(int3_last_depth >= 2, "int3 ran at trap depth %lu, not nested",
		 (unsigned long)int3_last_depth);
	KT_CHECK(demand_faults == df + 1, "#PF inside the IRQ not taken (%lu -> %lu)", df,
		 (unsigned long)demand_faults);
	return 0;
}

int ktest_rtc(void)
{
	struct rtc_time t;
	int r = rtc_read(&t);
	KT_CHECK(r == 0, "rtc_read: %d", r);
	printk("# rtc: %04d-%02d-%02d %02d:%02d:%02d\n", t.year, t.mon, t.day, t.hour, t.min,
	       t.sec);
	KT_CHECK(t.year >= 2000 && t.year < 2100, "year %d", t.year);
	KT_CHECK(t.mon >= 1 && t.mon <= 12, "month %d", t.mon);
	KT_CHECK(t.day >= 1 && t.day <= 31, "day %d", t.day);
	KT_CHECK(t.hour >= 0 && t.hour < 24 && t.min >= 0 && t.min < 60 && t.sec >= 0 && t.sec < 60,
		 "time %d:%d:%d", t.hour, t.min, t.sec);
	KT_CHECK(rtc_to_epoch(&t) >= 946684800ul, "epoch before 2000");
	return 0;
}

int ktest_uart_loopback(void)
{
	static const char msg[] = "BTLOOP42";
	char got[sizeof(msg)] = {0};
	unsigned n = 0;
	uart_set_loopback(true);
	uart_drain_rx();
	for (unsigned i = 0; i < sizeof(msg) - 1; i++)
		uart_putc_raw(msg[i]);
	for (unsigned t = 0; t < 200 && n < sizeof(msg) - 1; t++) {
		int c;
		while (n < sizeof(msg) - 1 && (c = uart_getc_nonblock()) >= 0)
			got[n++] = (char)c;
		if (n < sizeof(msg) - 1)
			sleep_ticks(1);
	}
	uart_set_loopback(false);
	uart_drain_rx();
	KT_CHECK(n == sizeof(msg) - 1, "received %u of %u bytes", n, (unsigned)sizeof(msg) - 1);
	KT_CHECK(!memcmp(got, msg, n), "received '%s'", got);
	return 0;
}

struct spinner {
	volatile uint64_t count;
	volatile uint64_t saw_other; /* times the other counter moved under us */
	volatile const uint64_t *other;
};
static struct spinner spin[2];
static volatile int spin_stop;

static void spinner_main(void *arg)
{
	struct spinner *s = arg;
	uint64_t last = *s->other;
	while (!spin_stop) {
		s->count++;
		uint64_t o = *s->other;
		if (o != last) {
			s->saw_other++;
			last = o;
		}
	}
}

int ktest_sched(void)
{
	spin_stop = 0;
	spin[0] = (struct spinner){0, 0, &spin[1].count};
	spin[1] = (struct spinner){0, 0, &spin[0].count};
	struct task *a = task_create_kthread("spin-a", spinner_main, &spin[0]);
	struct task *b = task_create_kthread("spin-b", spinner_main, &spin[1]);
	KT_CHECK(a && b, "cannot create threads");
	int pa = a->pid, pb = b->pid;
	sleep_ticks(100);
	spin_stop = 1;
	int st;
	KT_CHECK(proc_wait(pa, &st, current_task(), 0) == pa, "spin-a not reaped");
	KT_CHECK(proc_wait(pb, &st, current_task(), 0) == pb, "spin-b not reaped");
	printk("# sched: counts %lu %lu, switches seen %lu %lu\n", (unsigned long)spin[0].count,
	       (unsigned long)spin[1].count, (unsigned long)spin[0].saw_other,
	       (unsigned long)spin[1].saw_other);
	KT_CHECK(spin[0].count > 0 && spin[1].count > 0, "a thread made no progress");
	KT_CHECK(spin[0].saw_other > 0 && spin[1].saw_other > 0, "no preemption between threads");
	return 0;
}

int ktest_disk(void)
{
	static uint8_t wbuf[2][512], rbuf[512];
	char model[41];
	uint32_t sectors = 0;
	int r = ata_identify(model, sizeof(model), &sectors);
	KT_CHECK(r == 0, "IDENTIFY on the primary master failed: %d (no disk?)", r);
	printk("# disk: '%s', %u sectors\n", model, sectors);
	KT_CHECK(sectors >= 16, "disk too small (%u sectors)", sectors);
	for (unsigned s = 0; s < 2; s++)
		for (unsigned i = 0; i < 512; i++)
			wbuf[s][i] = (uint8_t)(i * 7 + s * 91 + 3);
	for (unsigned s = 0; s < 2; s++) {
		r = ata_write(5 + s, wbuf[s]);
		KT_CHECK(r == 0, "write sector %u: %d", 5 + s, r);
	}
	r = ata_flush();
	KT_CHECK(r == 0, "FLUSH CACHE: %d", r);
	for (unsigned s = 0; s < 2; s++) {
		memset(rbuf, 0, sizeof(rbuf));
		r = ata_read(5 + s, rbuf);
		KT_CHECK(r == 0, "read sector %u: %d", 5 + s, r);
		KT_CHECK(!memcmp(rbuf, wbuf[s], 512), "sector %u read back differs", 5 + s);
	}
	return 0;
}

int ktest_kmod(void)
{
	int ret = -1;
	long before = kmod_test_counter;
	if (!initrd_present()) {
		printk("# kmod: no initrd: cannot load lib/modules/testmod.ko\n");
		return 1;
	}
	int r = kmod_load_from_initrd("lib/modules/testmod.ko", &ret);
	KT_CHECK(r == 0, "loading lib/modules/testmod.ko: %d", r);
	KT_CHECK(ret == 0, "kmod_init returned %d", ret);
	KT_CHECK(kmod_test_counter == before + 42, "counter %ld -> %ld", before, kmod_test_counter);
	return 0;
}

/*
 * smep_smap: with a user page mapped in the runner's address space, a
 * supervisor read without stac faults when SMAP is on (and works after stac),
 * and supervisor execution of the user page faults when SMEP is on.
 */
int ktest_smep_smap(void)
{
	const uint64_t ua = 0x10000000;
	struct task *me = current_task();
	struct mm *mm = mm_create();
	KT_CHECK(mm, "mm_create");
	int r = mm_add_vma(mm, ua, ua + PAGE_SIZE, VMA_READ | VMA_WRITE | VMA_EXEC);
	if (r == 0)
		r = mm_map_now(mm, ua, VMA_READ | VMA_WRITE | VMA_EXEC);
	uint8_t *k = r == 0 ? mm_user_ptr(mm, ua) : NULL;
	if (!k) {
		mm_destroy(mm);
		KT_CHECK(0, "cannot map the user page (%d)", r);
	}
	k[0] = 0xc3; /* ret */
	uint64_t magic = 0xfeedface;
	memcpy(k + 8, &magic, 8);

	uint64_t f = irq_save();
	me->mm = mm;
	mm_activate(mm);
	irq_restore(f);
	uint64_t v1 = 0, v2 = 0, err = 0;
	long r1 = probe_read_u64((const void *)(ua + 8), &v1);
	stac();
	long r2 = probe_read_u64((const void *)(ua + 8), &v2);
	clac();
	unsigned long before = exec_probe_faults;
	exec_probe_addr = ua;
	((void (*)(void))ua)();
	exec_probe_addr = 0;
	bool exec_faulted = exec_probe_faults != before;
	err = exec_probe_error;
	f = irq_save();
	me->mm = NULL;
	mm_activate(NULL);
	irq_restore(f);
	mm_destroy(mm);

	printk("# smep %d smap %d\n", cpu_has_smep, cpu_has_smap);
	if (cpu_has_smap)
		KT_CHECK(r1 == -EFAULT, "SMAP: read without stac gave %ld", r1);
	else
		KT_CHECK(r1 == 0 && v1 == magic, "read of a user page failed (%ld)", r1);
	KT_CHECK(r2 == 0 && v2 == magic, "read with stac: %ld 0x%lx", r2, (unsigned long)v2);
	KT_CHECK(exec_faulted == cpu_has_smep, "SMEP %d but execution fault %d", cpu_has_smep,
		 exec_faulted);
	if (exec_faulted)
		KT_CHECK((err & 0x15) == 0x11, "#PF error 0x%lx: want P|I, not U",
			 (unsigned long)err);
	return 0;
}
