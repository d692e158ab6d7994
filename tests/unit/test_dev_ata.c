/*
 * Unit tests for the ATA PIO disk against real temporary image files,
 * driven through the I/O bus as a PIO driver (Linux ata_piix in PIO mode,
 * our guest) does: IDENTIFY, LBA28/LBA48/CHS reads and writes, FLUSH,
 * errors (range, short image, read-only), reset, nIEN, absent slave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/dev_io.h"

#include "runtime/bus/iobus.h"
#include "runtime/dev/ata.h"
#include "pretrans/base/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSECT 2048

struct fixture {
	char path[64];
	struct iobus *bus;
	struct ata *ata;
	bool irq;
	unsigned irq_edges;
};

static void irq_sink(void *opaque, unsigned pin, bool level)
{
	struct fixture *f = opaque;
	if (level && !f->irq)
		f->irq_edges++;
	f->irq = level;
}

static void fill_sector(uint8_t *buf, uint64_t lba, uint8_t salt)
{
	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)(lba * 7 + i + salt);
}

static void make_image(const char *path, uint64_t sectors)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	uint8_t buf[512];
	for (uint64_t s = 0; s < sectors; s++) {
		fill_sector(buf, s, 0);
		assert_int_equal(pwrite(fd, buf, 512, (off_t)(s * 512)), 512);
	}
	close(fd);
}

static int setup_common(void **state, bool read_only)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->path, "/tmp/test_dev_ata.XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	make_image(f->path, NSECT);
	assert_int_equal(iobus_create(&f->bus), BT_OK);
	assert_int_equal(ata_create(f->bus, f->path, read_only, &f->ata), BT_OK);
	irq_line_init(ata_irq(f->ata), irq_sink, f, 14);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, false);
}

static int setup_ro(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ata_destroy(f->ata);
	iobus_destroy(f->bus);
	unlink(f->path);
	free(f);
	return 0;
}

static void lba28(struct fixture *f, uint32_t lba, uint8_t count, uint8_t cmd)
{
	outb(f, 0x1f6, (uint8_t)(0xe0 | ((lba >> 24) & 0x0f)));
	outb(f, 0x1f2, count);
	outb(f, 0x1f3, (uint8_t)lba);
	outb(f, 0x1f4, (uint8_t)(lba >> 8));
	outb(f, 0x1f5, (uint8_t)(lba >> 16));
	outb(f, 0x1f7, cmd);
}

static void lba48(struct fixture *f, uint64_t lba, uint16_t count, uint8_t cmd)
{
	outb(f, 0x1f6, 0x40);
	outb(f, 0x1f2, (uint8_t)(count >> 8));
	outb(f, 0x1f3, (uint8_t)(lba >> 24));
	outb(f, 0x1f4, (uint8_t)(lba >> 32));
	outb(f, 0x1f5, (uint8_t)(lba >> 40));
	outb(f, 0x1f2, (uint8_t)count);
	outb(f, 0x1f3, (uint8_t)lba);
	outb(f, 0x1f4, (uint8_t)(lba >> 8));
	outb(f, 0x1f5, (uint8_t)(lba >> 16));
	outb(f, 0x1f7, cmd);
}

/* Wait for DRQ (the device is synchronous: no BSY phase), then read. */
static void read_sector_pio(struct fixture *f, uint8_t *buf)
{
	assert_int_equal(inb(f, 0x3f6) & 0x89, 0x08);
	for (unsigned i = 0; i < 256; i++) {
		uint16_t w = inw(f, 0x1f0);
		buf[2 * i] = (uint8_t)w;
		buf[2 * i + 1] = (uint8_t)(w >> 8);
	}
}

static void write_sector_pio(struct fixture *f, const uint8_t *buf)
{
	assert_int_equal(inb(f, 0x3f6) & 0x89, 0x08);
	for (unsigned i = 0; i < 256; i++)
		assert_int_equal(
		    iobus_pio_out(f->bus, 0x1f0, 2, (uint32_t)(buf[2 * i] | buf[2 * i + 1] << 8)),
		    BT_OK);
}

static void test_identify(void **state)
{
	struct fixture *f = *state;
	uint8_t id8[512];
	assert_int_equal(ata_sectors(f->ata), NSECT);
	outb(f, 0x1f6, 0xa0);
	assert_int_equal(inb(f, 0x1f7), 0x50); /* DRDY | DSC */
	outb(f, 0x1f7, 0xec);
	assert_true(f->irq);
	assert_int_equal(inb(f, 0x1f7) & 0x08, 0x08);
	assert_false(f->irq); /* status read acknowledged INTRQ */
	read_sector_pio(f, id8);
	assert_int_equal(inb(f, 0x1f7) & 0x89, 0x00);
	uint16_t id[256];
	for (unsigned i = 0; i < 256; i++)
		id[i] = (uint16_t)(id8[2 * i] | id8[2 * i + 1] << 8);
	assert_int_equal(id[0], 0x0040);
	assert_int_equal(id[49] & 0x0200, 0x0200);
	assert_int_equal(id[60] | id[61] << 16, NSECT);
	assert_int_equal(id[83] & 0x0400, 0x0400);
	assert_int_equal(id[100], NSECT);
	assert_int_equal(id[101] | id[102] | id[103], 0);
	char model[41];
	for (unsigned i = 0; i < 20; i++) {
		model[2 * i] = (char)(id[27 + i] >> 8);
		model[2 * i + 1] = (char)id[27 + i];
	}
	model[40] = 0;
	assert_memory_equal(model, "QEMU HARDDISK   ", 16);
	assert_true(id[10] >> 8 == 'Q' && (id[10] & 0xff) == 'M');
	/* integrity word: signature and checksum over all 512 bytes */
	assert_int_equal(id[255] & 0xff, 0xa5);
	uint8_t sum = 0;
	for (unsigned i = 0; i < 512; i++)
		sum = (uint8_t)(sum + id8[i]);
	assert_int_equal(sum, 0);
	/* other identity strings; bytes are swapped in each word as ATA wants */
	ata_set_identity(f->ata, "Vendor Disk \x01", "SN123", NULL);
	outb(f, 0x1f7, 0xec);
	read_sector_pio(f, id8);
	assert_int_equal(id8[27 * 2 + 1], 'V');
	assert_int_equal(id8[27 * 2], 'e');
	assert_int_equal(id8[(27 + 6) * 2 + 1], '?'); /* control character replaced */
	assert_int_equal(id8[10 * 2 + 1], 'S');
	assert_int_equal(id8[(10 + 4) * 2 + 1], ' ');
	/* CHS geometry is consistent with the size */
	assert_int_equal(id[3], 16);
	assert_int_equal(id[6], 63);
	assert_int_equal(id[1], NSECT / (16 * 63));
}

static void test_write_then_read_back(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[512], got[512];
	unsigned edges = f->irq_edges;
	lba28(f, 100, 3, 0x30);
	assert_int_equal(f->irq_edges, edges); /* no INTRQ before the first block */
	for (unsigned s = 0; s < 3; s++) {
		fill_sector(buf, 100 + s, 0x5a);
		write_sector_pio(f, buf);
		assert_int_equal(f->irq_edges, edges + s + 1);
		inb(f, 0x1f7);
	}
	assert_int_equal(inb(f, 0x1f7) & 0x89, 0x00);
	assert_int_equal(inb(f, 0x1f1), 0);
	/* the data reached the file */
	int fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, 512, 101 * 512), 512);
	fill_sector(buf, 101, 0x5a);
	assert_memory_equal(got, buf, 512);
	assert_int_equal(pread(fd, got, 512, 103 * 512), 512);
	fill_sector(buf, 103, 0);
	assert_memory_equal(got, buf, 512); /* the neighbour is untouched */
	close(fd);
	/* and reads back through the device, one INTRQ per sector */
	edges = f->irq_edges;
	lba28(f, 99, 3, 0x20);
	for (unsigned s = 0; s < 3; s++) {
		assert_int_equal(f->irq_edges, edges + s + 1);
		inb(f, 0x1f7);
		read_sector_pio(f, got);
		fill_sector(buf, 99 + s, s == 0 ? 0 : 0x5a);
		assert_memory_equal(got, buf, 512);
	}
	assert_int_equal(inb(f, 0x1f7) & 0x89, 0x00);
	/* FLUSH CACHE and FLUSH CACHE EXT complete with an interrupt */
	edges = f->irq_edges;
	outb(f, 0x1f7, 0xe7);
	assert_int_equal(inb(f, 0x1f7), 0x50);
	outb(f, 0x1f7, 0xea);
	assert_int_equal(inb(f, 0x1f7), 0x50);
	assert_int_equal(f->irq_edges, edges + 2);
}

static void test_lba48_and_32bit_and_chs(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[512], got[512];
	/* WRITE SECTORS EXT on the last sector, READ SECTORS EXT with inl */
	lba48(f, NSECT - 1, 1, 0x34);
	fill_sector(buf, NSECT - 1, 0x33);
	write_sector_pio(f, buf);
	assert_int_equal(inb(f, 0x1f7) & 0x89, 0x00);
	lba48(f, NSECT - 1, 1, 0x24);
	inb(f, 0x1f7);
	for (unsigned i = 0; i < 128; i++) {
		uint32_t v;
		assert_int_equal(iobus_pio_in(f->bus, 0x1f0, 4, &v), BT_OK);
		memcpy(got + 4 * i, &v, 4);
	}
	assert_memory_equal(got, buf, 512);
	/* HOB readback of the high-order bytes */
	lba48(f, 0x01000003ull, 1, 0x42); /* READ VERIFY EXT: beyond the disk */
	assert_int_equal(inb(f, 0x1f7) & 0x01, 0x01);
	outb(f, 0x3f6, 0x80);
	assert_int_equal(inb(f, 0x1f3), 0x01);
	outb(f, 0x3f6, 0x00);
	assert_int_equal(inb(f, 0x1f3), 0x03);
	/* CHS: cylinder 1, head 2, sector 3 = ((1*16)+2)*63 + 2 = 1136 */
	outb(f, 0x1f6, 0xa2);
	outb(f, 0x1f2, 1);
	outb(f, 0x1f3, 3);
	outb(f, 0x1f4, 1);
	outb(f, 0x1f5, 0);
	outb(f, 0x1f7, 0x20);
	read_sector_pio(f, got);
	fill_sector(buf, 1136, 0);
	assert_memory_equal(got, buf, 512);
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	uint8_t got[512], buf[512];
	/* out of range from the start: fails at once */
	lba28(f, NSECT, 1, 0x20);
	assert_true(f->irq);
	assert_int_equal(inb(f, 0x1f7), 0x41); /* DRDY | ERR, no DRQ */
	assert_int_equal(inb(f, 0x1f1), 0x10); /* IDNF */
	/* running off the end: the last sector transfers, then IDNF (as QEMU) */
	lba28(f, NSECT - 1, 2, 0x20);
	read_sector_pio(f, got);
	fill_sector(buf, NSECT - 1, 0);
	assert_memory_equal(got, buf, 512);
	assert_int_equal(inb(f, 0x1f7), 0x41);
	assert_int_equal(inb(f, 0x1f1), 0x10);
	assert_int_equal(inb(f, 0x1f3), NSECT & 0xff); /* the failing sector */
	assert_int_equal(inb(f, 0x1f4), NSECT >> 8);
	/* the same for a write: the sector beyond the end is refused */
	lba28(f, NSECT - 1, 2, 0x30);
	fill_sector(buf, NSECT - 1, 0x77);
	write_sector_pio(f, buf);
	assert_int_equal(inb(f, 0x1f7) & 0x09, 0x01);
	assert_int_equal(inb(f, 0x1f1), 0x10);
	/* taskfile writes during DRQ are ignored */
	lba28(f, 0, 1, 0x20);
	outb(f, 0x1f2, 0x77);
	outb(f, 0x1f7, 0xec);
	assert_int_equal(inb(f, 0x1f2), 1);
	read_sector_pio(f, got);
	fill_sector(buf, 0, 0);
	assert_memory_equal(got, buf, 512);
	lba28(f, 0x0fffffff, 1, 0x30);
	assert_int_equal(inb(f, 0x1f7) & 0x09, 0x01);
	/* unknown command and DMA transfer mode are aborted */
	outb(f, 0x1f7, 0xc8); /* READ DMA */
	assert_int_equal(inb(f, 0x1f7) & 0x01, 0x01);
	assert_int_equal(inb(f, 0x1f1), 0x04);
	outb(f, 0x1f1, 0x03);
	outb(f, 0x1f2, 0x45); /* UDMA5 */
	outb(f, 0x1f7, 0xef);
	assert_int_equal(inb(f, 0x1f1), 0x04);
	outb(f, 0x1f1, 0x03);
	outb(f, 0x1f2, 0x0c); /* PIO4 */
	outb(f, 0x1f7, 0xef);
	assert_int_equal(inb(f, 0x1f7), 0x50);

	/* host I/O error: the image shrinks under the device */
	assert_int_equal(truncate(f->path, 1000 * 512), 0);
	lba28(f, 1500, 1, 0x20);
	assert_int_equal(inb(f, 0x1f7) & 0x09, 0x01);
	assert_int_equal(inb(f, 0x1f1), 0x40); /* UNC */
	assert_int_equal(inb(f, 0x1f3), 1500 & 0xff);
	assert_int_equal(inb(f, 0x1f4), 1500 >> 8);
	/* a multi-sector read failing midway delivers the good sectors first */
	lba28(f, 999, 2, 0x20);
	read_sector_pio(f, got);
	fill_sector(buf, 999, 0);
	assert_memory_equal(got, buf, 512);
	assert_int_equal(inb(f, 0x1f7) & 0x09, 0x01);
	/* the device keeps working below the new end */
	lba28(f, 10, 1, 0x20);
	read_sector_pio(f, got);
	fill_sector(buf, 10, 0);
	assert_memory_equal(got, buf, 512);
}

static void test_reset_nien_and_absent_slave(void **state)
{
	struct fixture *f = *state;
	/* software reset: BSY while SRST, then the ATA signature */
	outb(f, 0x3f6, 0x04);
	assert_int_equal(inb(f, 0x3f6), 0x80);
	outb(f, 0x3f6, 0x00);
	assert_int_equal(inb(f, 0x1f7), 0x50);
	assert_int_equal(inb(f, 0x1f2), 1);
	assert_int_equal(inb(f, 0x1f3), 1);
	assert_int_equal(inb(f, 0x1f4), 0);
	assert_int_equal(inb(f, 0x1f5), 0);
	assert_int_equal(inb(f, 0x1f1), 0x01);
	/* nIEN masks INTRQ; clearing it lets a pending INTRQ through */
	outb(f, 0x3f6, 0x02);
	outb(f, 0x1f6, 0xa0);
	outb(f, 0x1f7, 0xe7);
	assert_false(f->irq);
	outb(f, 0x3f6, 0x00);
	assert_true(f->irq);
	assert_int_equal(inb(f, 0x1f7), 0x50);
	assert_false(f->irq);
	/* device 1: status 0, commands ignored */
	outb(f, 0x1f6, 0xb0);
	assert_int_equal(inb(f, 0x1f7), 0x00);
	assert_int_equal(inb(f, 0x3f6), 0x00);
	outb(f, 0x1f7, 0xec);
	assert_false(f->irq);
	assert_int_equal(inb(f, 0x3f6), 0x00);
	outb(f, 0x1f6, 0xa0);
	assert_int_equal(inb(f, 0x1f7) & 0x08, 0x00); /* no IDENTIFY was started */
}

static void test_read_only_image(void **state)
{
	struct fixture *f = *state;
	uint8_t got[512], buf[512];
	lba28(f, 5, 1, 0x30);
	assert_int_equal(inb(f, 0x1f7) & 0x09, 0x01);
	assert_int_equal(inb(f, 0x1f1), 0x04);
	lba28(f, 5, 1, 0x20);
	read_sector_pio(f, got);
	fill_sector(buf, 5, 0);
	assert_memory_equal(got, buf, 512);
	outb(f, 0x1f7, 0xe7);
	assert_int_equal(inb(f, 0x1f7), 0x50);
}

static void test_create_errors(void **state)
{
	struct iobus *bus;
	struct ata *a = NULL;
	assert_int_equal(iobus_create(&bus), BT_OK);
	assert_int_equal(ata_create(bus, "/nonexistent/disk.img", false, &a), BT_ERR_IO);
	assert_null(a);
	char path[] = "/tmp/test_dev_ata_small.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "tiny", 4), 4);
	close(fd);
	assert_int_equal(ata_create(bus, path, true, &a), BT_ERR_FORMAT);
	unlink(path);
	assert_int_equal(ata_create(bus, "/dev/null", true, &a), BT_ERR_IO);
	/* nothing was left registered */
	uint32_t v;
	assert_int_equal(iobus_pio_in(bus, 0x1f7, 1, &v), BT_OK);
	assert_int_equal(v, 0xff);
	iobus_destroy(bus);
}

/* In a second process (a second VM): ata_create of f's image read-write
 * and read-only; bit 0/1 of the result set when each succeeded. */
static int try_from_other_process(struct fixture *f)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct iobus *bus;
		struct ata *a;
		int r = 0;
		if (iobus_create(&bus) != BT_OK)
			_exit(100);
		if (ata_create(bus, f->path, false, &a) == BT_OK) {
			r |= 1;
			ata_destroy(a);
		}
		if (ata_create(bus, f->path, true, &a) == BT_OK) {
			r |= 2;
			ata_destroy(a);
		}
		iobus_destroy(bus);
		_exit(r);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* A read-write disk is exclusive; read-only disks share the image. */
static void test_image_lock_rw(void **state)
{
	assert_int_equal(try_from_other_process(*state), 0);
}

static void test_image_lock_ro(void **state)
{
	assert_int_equal(try_from_other_process(*state), 2);
}

static void test_image_lock_released(void **state)
{
	struct fixture *f = *state;
	ata_destroy(f->ata);
	f->ata = NULL;
	assert_int_equal(try_from_other_process(f), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_then_read_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lba48_and_32bit_and_chs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_nien_and_absent_slave, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_only_image, setup_ro, teardown),
	    cmocka_unit_test(test_create_errors),
	    cmocka_unit_test_setup_teardown(test_image_lock_rw, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_image_lock_ro, setup_ro, teardown),
	    cmocka_unit_test_setup_teardown(test_image_lock_released, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
