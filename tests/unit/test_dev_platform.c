/*
 * Unit tests for the platform creation table and its wiring (every device
 * reaches the PIC on its ISA IRQ, console fds, disk, exit port), and for the
 * small devices it adds: isa-debug-exit, POST port 0x80, port 0x92.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/dev/platform.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct events {
	unsigned exits, resets, intr_changes;
	int status;
	bool intr;
};

static void on_exit_cb(void *opaque, int status)
{
	struct events *e = opaque;
	e->exits++;
	e->status = status;
}

static void on_reset_cb(void *opaque)
{
	struct events *e = opaque;
	e->resets++;
}

static void on_intr_cb(void *opaque, bool intr)
{
	struct events *e = opaque;
	e->intr_changes++;
	e->intr = intr;
}

static void outb(struct iobus *bus, uint16_t port, uint8_t v)
{
	assert_int_equal(iobus_pio_out(bus, port, 1, v), BT_OK);
}

static uint8_t inb(struct iobus *bus, uint16_t port)
{
	uint32_t v;
	assert_int_equal(iobus_pio_in(bus, port, 1, &v), BT_OK);
	return (uint8_t)v;
}

static void test_debug_exit(void **state)
{
	struct iobus *bus;
	struct debug_exit *d;
	struct events e = {0};
	int status = -1;
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(debug_exit_create(bus, DEBUG_EXIT_PORT, 4, on_exit_cb, &e, &d), BT_OK);
	assert_false(debug_exit_requested(d, &status));
	uint32_t v;
	assert_int_equal(iobus_pio_in(bus, DEBUG_EXIT_PORT, 4, &v), BT_OK);
	assert_int_equal(v, 0);
	/* the guest's "tests passed" write: outl(0x10, 0xf4) -> (0x10 << 1) | 1 */
	assert_int_equal(iobus_pio_out(bus, DEBUG_EXIT_PORT, 4, 0x10), BT_OK);
	assert_int_equal(e.exits, 1);
	assert_int_equal(e.status, 0x21);
	assert_true(debug_exit_requested(d, &status));
	assert_int_equal(status, 0x21);
	/* only the first request counts */
	assert_int_equal(iobus_pio_out(bus, DEBUG_EXIT_PORT, 1, 0), BT_OK);
	assert_int_equal(e.exits, 1);
	debug_exit_destroy(d);

	/* a byte write of 0 gives status 1 (QEMU's "failure" convention) */
	assert_int_equal(debug_exit_create(bus, 0x501, 2, NULL, NULL, &d), BT_OK);
	assert_int_equal(iobus_pio_out(bus, 0x501, 1, 0), BT_OK);
	assert_true(debug_exit_requested(d, &status));
	assert_int_equal(status, 1);
	assert_int_equal(debug_exit_create(bus, 0x600, 3, NULL, NULL, &d), BT_ERR_INVALID);
	debug_exit_destroy(d);
	iobus_destroy(bus);
}

static void test_sysport(void **state)
{
	struct iobus *bus;
	struct sysport *sp;
	struct events e = {0};
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(sysport_create(bus, on_reset_cb, &e, &sp), BT_OK);
	outb(bus, 0x80, 0x42);
	assert_int_equal(sysport_post_code(sp), 0x42);
	assert_int_equal(inb(bus, 0x80), 0xff);
	assert_int_equal(inb(bus, 0x92), 0x02); /* A20 on */
	outb(bus, 0x92, 0x00);
	assert_false(sysport_a20(sp));
	outb(bus, 0x92, 0x03);
	assert_int_equal(e.resets, 1);
	outb(bus, 0x92, 0x03); /* no new 0 -> 1 transition */
	assert_int_equal(e.resets, 1);
	outb(bus, 0x92, 0x02);
	outb(bus, 0x92, 0x03);
	assert_int_equal(e.resets, 2);
	assert_int_equal(sysport_reset_requests(sp), 2);
	assert_int_equal(iobus_unclaimed_accesses(bus), 0);
	sysport_destroy(sp);
	iobus_destroy(bus);
}

static void linux_pic_init(struct iobus *bus)
{
	static const uint8_t seq[][2] = {{0x21, 0xff}, {0xa1, 0xff}, {0x20, 0x11}, {0x21, 0x30},
					 {0x21, 0x04}, {0x21, 0x01}, {0xa0, 0x11}, {0xa1, 0x38},
					 {0xa1, 0x02}, {0xa1, 0x01}, {0x21, 0x00}, {0xa1, 0x00}};
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		outb(bus, seq[i][0], seq[i][1]);
}

/* Take one interrupt like the vCPU: INTA, then EOI as Linux does. */
static uint8_t take_interrupt(struct platform *p)
{
	assert_true(pic_has_interrupt(p->pic));
	uint8_t vec = pic_ack(p->pic);
	if (vec >= 0x38)
		outb(p->bus, 0xa0, 0x20);
	outb(p->bus, 0x20, 0x20);
	return vec;
}

static void test_platform_wiring(void **state)
{
	struct vclock *clock;
	struct platform_config cfg;
	struct platform *p;
	struct events e = {0};
	int out[2], in[2];
	char disk[] = "/tmp/test_dev_platform.XXXXXX";
	int fd = mkstemp(disk);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 * 512), 0);
	close(fd);
	assert_int_equal(pipe2(out, O_NONBLOCK), 0);
	assert_int_equal(pipe(in), 0);
	assert_int_equal(vclock_create_manual(0, &clock), BT_OK);

	platform_config_init(&cfg);
	cfg.clock = clock;
	cfg.console_in_fd = in[0];
	cfg.console_out_fd = out[1];
	cfg.disk_path = disk;
	cfg.rtc_epoch = 1709214358;
	cfg.ram_bytes = 512ull << 20;
	cfg.on_exit = on_exit_cb;
	cfg.exit_opaque = &e;
	cfg.on_reset = on_reset_cb;
	cfg.reset_opaque = &e;
	cfg.on_intr = on_intr_cb;
	cfg.intr_opaque = &e;
	assert_int_equal(platform_create(&cfg, &p), BT_OK);
	assert_ptr_equal(p->clock, clock);
	assert_non_null(p->ata);
	linux_pic_init(p->bus);
	assert_false(pic_has_interrupt(p->pic));

	/* IRQ4: COM1 THRE interrupt */
	outb(p->bus, 0x3f9, 0x02);
	assert_true(e.intr);
	assert_int_equal(take_interrupt(p), 0x34);
	assert_int_equal(inb(p->bus, 0x3fa) & 0x0f, 0x02);
	outb(p->bus, 0x3f9, 0x00);
	/* console output and input */
	outb(p->bus, 0x3f8, 'o');
	outb(p->bus, 0x3f8, 'k');
	char buf[4] = {0};
	assert_int_equal(read(out[0], buf, sizeof(buf)), 2);
	assert_string_equal(buf, "ok");
	assert_int_equal(write(in[1], "x", 1), 1);
	platform_poll(p);
	assert_int_equal(inb(p->bus, 0x3fd) & 0x01, 0x01);
	assert_int_equal(inb(p->bus, 0x3f8), 'x');

	/* IRQ0: PIT channel 0 at 1 kHz */
	outb(p->bus, 0x43, 0x34);
	outb(p->bus, 0x40, 1193 & 0xff);
	outb(p->bus, 0x40, 1193 >> 8);
	assert_true(platform_next_deadline(p) <= vclock_now_ns(clock) + 1000000);
	assert_int_equal(vclock_set(clock, platform_next_deadline(p)), BT_OK);
	platform_poll(p);
	assert_int_equal(take_interrupt(p), 0x30);
	outb(p->bus, 0x43, 0x30); /* stop: mode 0, no count */

	/* IRQ14: ATA IDENTIFY, through the slave PIC */
	outb(p->bus, 0x1f6, 0xa0);
	outb(p->bus, 0x1f7, 0xec);
	assert_int_equal(take_interrupt(p), 0x3e);
	assert_int_equal(inb(p->bus, 0x1f7) & 0x08, 0x08);

	/* IRQ8: RTC update interrupt */
	outb(p->bus, 0x70, 0x0b);
	outb(p->bus, 0x71, 0x12);
	assert_int_equal(vclock_run_until(clock, vclock_now_ns(clock) + 1000000000ull), BT_OK);
	assert_int_equal(take_interrupt(p), 0x38);
	outb(p->bus, 0x70, 0x0c);
	assert_int_equal(inb(p->bus, 0x71) & 0x90, 0x90);
	outb(p->bus, 0x70, 0x0b);
	outb(p->bus, 0x71, 0x02);

	/* CMOS memory size: (512 - 16) MiB in 64 KiB units = 0x1f00 */
	outb(p->bus, 0x70, 0x34);
	assert_int_equal(inb(p->bus, 0x71), 0x00);
	outb(p->bus, 0x70, 0x35);
	assert_int_equal(inb(p->bus, 0x71), 0x1f);

	/* POST port and port 0x92 are claimed; reset request reaches the config */
	uint64_t unclaimed = iobus_unclaimed_accesses(p->bus);
	outb(p->bus, 0x80, 0x00);
	outb(p->bus, 0x92, 0x03);
	assert_int_equal(e.resets, 1);
	assert_int_equal(iobus_unclaimed_accesses(p->bus), unclaimed);

	/* debug exit */
	int status;
	assert_false(platform_exit_requested(p, &status));
	assert_int_equal(iobus_pio_out(p->bus, 0xf4, 4, 0x31), BT_OK);
	assert_true(platform_exit_requested(p, &status));
	assert_int_equal(status, 0x63);
	assert_int_equal(e.exits, 1);

	platform_destroy(p);
	vclock_destroy(clock);
	unlink(disk);
	close(out[0]);
	close(out[1]);
	close(in[0]);
	close(in[1]);
}

static void test_platform_without_disk_and_bad_disk(void **state)
{
	struct platform_config cfg;
	struct platform *p = NULL;
	platform_config_init(&cfg);
	assert_int_equal(platform_create(&cfg, &p), BT_OK);
	assert_null(p->ata);
	assert_false(vclock_is_manual(p->clock));
	assert_int_equal(inb(p->bus, 0x1f7), 0xff);
	assert_int_equal(inb(p->bus, 0x3f6), 0xff);
	/* the PIT runs as the BIOS left it: a channel 0 timer is armed */
	assert_true(platform_next_deadline(p) != VCLOCK_NEVER);
	/* the RTC shows a plausible host time (after 2024) */
	assert_true(rtc_time(p->rtc) > 1700000000);
	platform_destroy(p);

	p = NULL;
	cfg.disk_path = "/nonexistent/dir/disk.img";
	assert_int_equal(platform_create(&cfg, &p), BT_ERR_IO);
	assert_null(p);
	assert_int_equal(platform_create(NULL, &p), BT_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_debug_exit),
	    cmocka_unit_test(test_sysport),
	    cmocka_unit_test(test_platform_wiring),
	    cmocka_unit_test(test_platform_without_disk_and_bad_disk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
