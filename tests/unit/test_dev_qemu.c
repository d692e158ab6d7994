/*
 * Differential test of the device models against QEMU's (the oracle our
 * guests are validated on).  One script of port accesses runs twice:
 *
 *  - in real QEMU (qemu-system-x86_64 -machine pc, TCG), executed by a
 *    122-byte real-mode interpreter used as the BIOS image: it walks the
 *    script, performs each in/out, writes every value read to the debugcon
 *    port 0xe9 and ends by writing 0x2a to isa-debug-exit (exit status 85);
 *  - against btvm's platform (platform_create) through iobus_pio_in/out.
 *
 * Every read carries a mask of the bits that must agree.  A bit is masked
 * out only where the value depends on timing (QEMU runs on a real clock,
 * the platform on a manual one) or where btvm deliberately differs; each
 * such mask says why.  No device is mocked on either side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/dev/platform.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* interp.S, assembled with `as --32` (.code16) and objcopy -O binary:
 *	cli; mov %cs,%ax; mov %ax,%ds; cld; mov $0x100,%si
 * next: lodsb; mov %al,%bl; lodsw; mov %ax,%dx; lodsl
 *	cmp $1..7,%bl -> outb/inb/outw/inw/outl/inl (reads echo to port 0xe9,
 *	low byte first) / wait (mov %eax,%ecx; 1: inb %dx,%al; and %cl,%al;
 *	cmp %ch,%al; jne 1b); anything else: outl $0x2a to 0xf4; hlt */
static const uint8_t interp[] = {
    0xfa, 0x8c, 0xc8, 0x8e, 0xd8, 0xfc, 0xbe, 0x00, 0x01, 0xac, 0x88, 0xc3, 0xad, 0x89, 0xc2, 0x66,
    0xad, 0x80, 0xfb, 0x01, 0x74, 0x2c, 0x80, 0xfb, 0x02, 0x74, 0x31, 0x80, 0xfb, 0x03, 0x74, 0x25,
    0x80, 0xfb, 0x04, 0x74, 0x2e, 0x80, 0xfb, 0x05, 0x74, 0x1e, 0x80, 0xfb, 0x06, 0x74, 0x2e, 0x80,
    0xfb, 0x07, 0x74, 0x3a, 0xba, 0xf4, 0x00, 0x66, 0xb8, 0x2a, 0x00, 0x00, 0x00, 0x66, 0xef, 0xf4,
    0xeb, 0xfd, 0xee, 0xeb, 0xc4, 0xef, 0xeb, 0xc1, 0x66, 0xef, 0xeb, 0xbd, 0xec, 0xba, 0xe9, 0x00,
    0xee, 0xeb, 0xb6, 0xed, 0xba, 0xe9, 0x00, 0xee, 0x88, 0xe0, 0xee, 0xeb, 0xac, 0x66, 0xed, 0xba,
    0xe9, 0x00, 0xb9, 0x04, 0x00, 0xee, 0x66, 0xc1, 0xe8, 0x08, 0xe2, 0xf9, 0xeb, 0x9b, 0x66, 0x89,
    0xc1, 0xec, 0x20, 0xc8, 0x38, 0xe8, 0x75, 0xf9, 0xeb, 0x8f,
};

#define BIOS_SIZE    65536
#define SCRIPT_AT    0x100
#define RESET_VECTOR 0xfff0
#define OP_SIZE	     7
#define DISK_SECTORS 2048
#define RTC_BASE     1709214310 /* 2024-02-29T13:45:10Z: 50 s before a minute rolls */
#define RTC_BASE_STR "2024-02-29T13:45:10"

enum { OP_END, OP_OUTB, OP_INB, OP_OUTW, OP_INW, OP_OUTL, OP_INL, OP_WAIT };

struct op {
	uint8_t kind;
	uint16_t port;
	uint32_t value;
	uint32_t mask;	  /* reads: bits that must agree */
	const char *what; /* reads: what is checked */
};

struct script {
	struct op ops[2400];
	unsigned n;
};

static void emit(struct script *s, uint8_t kind, uint16_t port, uint32_t value, uint32_t mask,
		 const char *what)
{
	assert_true(s->n < sizeof(s->ops) / sizeof(s->ops[0]));
	s->ops[s->n++] = (struct op){kind, port, value, mask, what};
}

static void outb(struct script *s, uint16_t port, uint8_t v)
{
	emit(s, OP_OUTB, port, v, 0, NULL);
}

static void inb(struct script *s, uint16_t port, uint8_t mask, const char *what)
{
	emit(s, OP_INB, port, 0, mask, what);
}

static void cmos(struct script *s, uint8_t idx, uint8_t mask, const char *what)
{
	outb(s, 0x70, idx);
	inb(s, 0x71, mask, what);
}

/* Spin until (inb(port) & mask) == want; reads are not compared. */
static void wait_for(struct script *s, uint16_t port, uint8_t mask, uint8_t want)
{
	emit(s, OP_WAIT, port, (uint32_t)mask | (uint32_t)want << 8, 0, NULL);
}

/* QEMU runs disk commands asynchronously: wait for BSY to clear (through
 * the alternate status, which leaves INTRQ alone) as a real driver does. */
static void ata_wait(struct script *s)
{
	wait_for(s, 0x3f6, 0x80, 0x00);
}

static unsigned op_read_size(uint8_t kind)
{
	return kind == OP_INB ? 1 : kind == OP_INW ? 2 : kind == OP_INL ? 4 : 0;
}

/* ---- the script ---------------------------------------------------------- */

static void script_uart(struct script *s)
{
	const uint16_t b = 0x3f8;
	inb(s, b + 1, 0xff, "uart IER at reset");
	inb(s, b + 2, 0xff, "uart IIR at reset");
	inb(s, b + 3, 0xff, "uart LCR at reset");
	inb(s, b + 4, 0xff, "uart MCR at reset");
	inb(s, b + 5, 0xff, "uart LSR at reset");
	inb(s, b + 6, 0xff, "uart MSR at reset");
	/* Linux autoconfig */
	outb(s, b + 1, 0x00);
	inb(s, b + 1, 0xff, "uart IER=0 readback");
	outb(s, b + 1, 0x0f);
	inb(s, b + 1, 0xff, "uart IER=0x0f readback");
	outb(s, b + 1, 0xff);
	inb(s, b + 1, 0xff, "uart IER=0xff readback");
	outb(s, b + 1, 0x00);
	outb(s, b + 7, 0xa5);
	inb(s, b + 7, 0xff, "uart scratch");
	outb(s, b + 4, 0x1a);
	/* QEMU never reports MSR deltas in loopback; a real 16550 (and btvm) do */
	inb(s, b + 6, 0xf0, "uart MSR lines in loopback (Linux wants 0x90)");
	outb(s, b + 4, 0x00);
	outb(s, b + 3, 0xbf);
	outb(s, b + 2, 0x00);
	outb(s, b + 3, 0x00);
	outb(s, b + 2, 0x01);
	inb(s, b + 2, 0xff, "uart IIR with FIFO enabled");
	/* divisor latch */
	outb(s, b + 3, 0x83);
	outb(s, b + 0, 0x0c);
	outb(s, b + 1, 0x00);
	inb(s, b + 0, 0xff, "uart DLL");
	inb(s, b + 1, 0xff, "uart DLM");
	inb(s, b + 3, 0xff, "uart LCR with DLAB");
	outb(s, b + 3, 0x03);
	inb(s, b + 1, 0xff, "uart IER after DLAB");
	/* loopback receive with an RX interrupt */
	outb(s, b + 2, 0x07);
	outb(s, b + 4, 0x1b);
	outb(s, b + 1, 0x01);
	inb(s, b + 2, 0xff, "uart IIR before loopback byte");
	outb(s, b + 0, 'A');
	inb(s, b + 2, 0xff, "uart IIR after loopback byte");
	inb(s, b + 5, 0xff, "uart LSR with data");
	inb(s, b + 0, 0xff, "uart RBR");
	inb(s, b + 5, 0xff, "uart LSR drained");
	inb(s, b + 2, 0xff, "uart IIR drained");
	/* loopback overrun without FIFO */
	outb(s, b + 2, 0x00);
	outb(s, b + 1, 0x04);
	outb(s, b + 0, '1');
	outb(s, b + 0, '2');
	inb(s, b + 2, 0xff, "uart IIR after overrun");
	inb(s, b + 5, 0xff, "uart LSR after overrun");
	inb(s, b + 5, 0xff, "uart LSR read twice");
	inb(s, b + 0, 0xff, "uart RBR after overrun");
	outb(s, b + 4, 0x0b);
	/* Linux startup's THRE re-assert test, then a THR write */
	outb(s, b + 1, 0x02);
	inb(s, b + 2, 0xff, "uart IIR THRE");
	inb(s, b + 2, 0xff, "uart IIR after THRE read");
	outb(s, b + 1, 0x00);
	outb(s, b + 1, 0x02);
	inb(s, b + 2, 0xff, "uart IIR THRE re-asserted");
	outb(s, b + 1, 0x03);
	inb(s, b + 2, 0xff, "uart IIR after IER rewrite");
	outb(s, b + 0, 'z');
	inb(s, b + 2, 0xff, "uart IIR after THR write");
	inb(s, b + 5, 0xff, "uart LSR after THR write");
	outb(s, b + 1, 0x00);
}

static void script_pic_init(struct script *s)
{
	static const uint8_t seq[][2] = {{0x21, 0xff}, {0xa1, 0xff}, {0x20, 0x11}, {0x21, 0x30},
					 {0x21, 0x04}, {0x21, 0x01}, {0xa0, 0x11}, {0xa1, 0x38},
					 {0xa1, 0x02}, {0xa1, 0x01}};
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		outb(s, seq[i][0], seq[i][1]);
}

static void script_pic(struct script *s)
{
	outb(s, 0x21, 0xfb);
	inb(s, 0x21, 0xff, "pic probe_8259A mask readback");
	script_pic_init(s);
	/* IRQ0 edges from QEMU's free-running PIT land at any time: mask bit 0 */
	outb(s, 0x21, 0x01);
	outb(s, 0xa1, 0x00);
	inb(s, 0x21, 0xff, "pic master IMR");
	inb(s, 0xa1, 0xff, "pic slave IMR");
	outb(s, 0x20, 0x0a);
	inb(s, 0x20, 0xfe, "pic master IRR");
	outb(s, 0x20, 0x0b);
	inb(s, 0x20, 0xff, "pic master ISR");
	inb(s, 0x4d0, 0xff, "pic ELCR master");
	inb(s, 0x4d1, 0xff, "pic ELCR slave");
	outb(s, 0x4d1, 0xff);
	inb(s, 0x4d1, 0xff, "pic ELCR slave mask");
	outb(s, 0x4d1, 0x00);
}

static void script_ata_identify(struct script *s, unsigned *identify_at)
{
	outb(s, 0x1f6, 0xa0);
	outb(s, 0x1f7, 0xec);
	ata_wait(s);
	inb(s, 0x3f6, 0xff, "ata altstatus after IDENTIFY");
	*identify_at = s->n;
	for (unsigned w = 0; w < 256; w++)
		emit(s, OP_INW, 0x1f0, 0, 0, "ata IDENTIFY word");
	inb(s, 0x3f6, 0xff, "ata altstatus after IDENTIFY data");
}

/* Words of IDENTIFY that must agree with QEMU's; everything else differs by
 * design (DMA/multiple support, timing words, integrity word). */
static uint16_t identify_mask(unsigned w)
{
	switch (w) {
	case 0:	 /* general configuration */
	case 1:	 /* cylinders */
	case 3:	 /* heads */
	case 6:	 /* sectors per track */
	case 60: /* LBA28 capacity */
	case 61:
	case 100: /* LBA48 capacity */
	case 101:
	case 102:
	case 103:
		return 0xffff;
	case 10 ... 19: /* serial number */
	case 23 ... 26: /* firmware revision */
	case 27 ... 46: /* model */
		return 0xffff;
	case 49: /* LBA supported (QEMU also claims DMA and IORDY) */
		return 0x0200;
	case 83: /* LBA48, FLUSH CACHE, FLUSH CACHE EXT */
		return 0x3400;
	default:
		return 0;
	}
}

static void script_ata_and_cascade(struct script *s)
{
	const uint16_t b = 0x1f0;
	inb(s, b + 7, 0xff, "ata status at reset");
	inb(s, b + 2, 0xff, "ata nsect signature");
	inb(s, b + 3, 0xff, "ata lbal signature");
	inb(s, b + 4, 0xff, "ata lbam signature");
	inb(s, b + 5, 0xff, "ata lbah signature");
	inb(s, b + 6, 0xff, "ata device register");
	/* IRQ14 through the cascade: master IRR bit 2, slave IRR bit 6 */
	outb(s, 0x20, 0x0a);
	outb(s, 0xa0, 0x0a);
	inb(s, 0xa0, 0xff, "pic slave IRR after IDENTIFY (IRQ14)");
	inb(s, 0x20, 0xfe, "pic master IRR after IDENTIFY (cascade)");
	inb(s, b + 7, 0xff, "ata status acknowledges INTRQ");
	inb(s, 0xa0, 0xff, "pic slave IRR after status read (edge stays latched)");
	/* poll mode acknowledges master (IRQ2) then slave (IRQ14) */
	outb(s, 0x20, 0x0c);
	inb(s, 0x20, 0xff, "pic master poll");
	outb(s, 0xa0, 0x0c);
	inb(s, 0xa0, 0xff, "pic slave poll");
	outb(s, 0xa0, 0x0b);
	inb(s, 0xa0, 0xff, "pic slave ISR after poll");
	outb(s, 0x20, 0x0b);
	inb(s, 0x20, 0xff, "pic master ISR after poll");
	outb(s, 0xa0, 0x20);
	outb(s, 0x20, 0x20);
	inb(s, 0xa0, 0xff, "pic slave ISR after EOI");
	inb(s, 0x20, 0xff, "pic master ISR after EOI");

	/* READ SECTORS: LBA 5, two sectors */
	outb(s, b + 6, 0xe0);
	outb(s, b + 2, 2);
	outb(s, b + 3, 5);
	outb(s, b + 4, 0);
	outb(s, b + 5, 0);
	outb(s, b + 7, 0x20);
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status, read sector 1");
	for (unsigned w = 0; w < 256; w++)
		emit(s, OP_INW, b, 0, 0xffff, "ata read data (sector 5)");
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status, read sector 2");
	for (unsigned w = 0; w < 128; w++)
		emit(s, OP_INL, b, 0, 0xffffffffu, "ata read data (sector 6, inl)");
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status after read");
	/* WRITE SECTORS: LBA 9, one sector; then read it back */
	outb(s, b + 2, 1);
	outb(s, b + 3, 9);
	outb(s, b + 7, 0x30);
	ata_wait(s);
	inb(s, 0x3f6, 0xff, "ata altstatus, write DRQ");
	for (unsigned w = 0; w < 256; w++)
		emit(s, OP_OUTW, b, 0x1000u + w * 3, 0, NULL);
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status after write");
	outb(s, b + 2, 1);
	outb(s, b + 3, 9);
	outb(s, b + 7, 0x20);
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status, read back");
	for (unsigned w = 0; w < 256; w++)
		emit(s, OP_INW, b, 0, 0xffff, "ata read back written sector");
	ata_wait(s);
	outb(s, b + 7, 0xe7);
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status after FLUSH CACHE");
	/* LBA48 READ SECTORS EXT of the last sector */
	outb(s, b + 6, 0x40);
	outb(s, b + 2, 0);
	outb(s, b + 3, 0);
	outb(s, b + 4, 0);
	outb(s, b + 5, 0);
	outb(s, b + 2, 1);
	outb(s, b + 3, (DISK_SECTORS - 1) & 0xff);
	outb(s, b + 4, (DISK_SECTORS - 1) >> 8);
	outb(s, b + 5, 0);
	outb(s, b + 7, 0x24);
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status, READ SECTORS EXT");
	for (unsigned w = 0; w < 256; w++)
		emit(s, OP_INW, b, 0, 0xffff, "ata read data (last sector, LBA48)");
	ata_wait(s);
	/* running off the end: the last sector transfers, then the command
	 * fails; QEMU reports ABRT, btvm IDNF as drives do */
	outb(s, b + 6, 0xe0);
	outb(s, b + 2, 2);
	outb(s, b + 3, (DISK_SECTORS - 1) & 0xff);
	outb(s, b + 4, (DISK_SECTORS - 1) >> 8);
	outb(s, b + 7, 0x20);
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status, read running off the end");
	for (unsigned w = 0; w < 256; w++)
		emit(s, OP_INW, b, 0, 0xffff, "ata read data (last sector, LBA28)");
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status after the missing sector");
	inb(s, b + 1, 0x00, "ata error, out of range (IDNF vs ABRT)");
	/* a command written during DRQ is ignored */
	outb(s, b + 2, 1);
	outb(s, b + 3, 0);
	outb(s, b + 4, 0);
	outb(s, b + 7, 0x20);
	ata_wait(s);
	outb(s, b + 6, 0xb0); /* ignored: DRQ is set (device 0 stays selected) */
	inb(s, b + 6, 0xff, "ata device register written during DRQ");
	/* QEMU counts nsect down as sectors move, btvm leaves it: not compared */
	inb(s, b + 2, 0x00, "ata nsect during DRQ");
	outb(s, b + 7, 0xec); /* ignored too */
	for (unsigned w = 0; w < 256; w++)
		emit(s, OP_INW, b, 0, 0xffff, "ata read data (sector 0, not IDENTIFY)");
	ata_wait(s);
	outb(s, b + 7, 0xc6); /* SET MULTIPLE MODE with count 2: not supported by btvm */
	ata_wait(s);
	inb(s, b + 7, 0x00, "ata SET MULTIPLE status");
	outb(s, b + 7, 0xa1); /* IDENTIFY PACKET DEVICE on an ATA disk */
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status, IDENTIFY PACKET aborted");
	inb(s, b + 1, 0xff, "ata error, IDENTIFY PACKET aborted");
	/* absent device 1 */
	outb(s, b + 6, 0xb0);
	inb(s, b + 7, 0xff, "ata status with device 1 selected");
	inb(s, 0x3f6, 0xff, "ata altstatus with device 1 selected");
	inb(s, b + 6, 0xff, "ata device register, device 1");
	outb(s, b + 2, 0x55);
	outb(s, b + 3, 0xaa);
	inb(s, b + 2, 0xff, "ata devchk nsect, device 1");
	inb(s, b + 3, 0xff, "ata devchk lbal, device 1");
	outb(s, b + 6, 0xa0);
	/* software reset */
	outb(s, 0x3f6, 0x06);
	/* QEMU completes SRST asynchronously (BSY may already be clear); btvm
	 * keeps BSY while SRST is 1, as the ATA spec says: not compared */
	inb(s, 0x3f6, 0x00, "ata status during SRST");
	outb(s, 0x3f6, 0x02);
	ata_wait(s);
	inb(s, b + 7, 0xff, "ata status after SRST");
	inb(s, b + 1, 0xff, "ata error (diagnostic code) after SRST");
	inb(s, b + 2, 0xff, "ata nsect after SRST");
	inb(s, b + 3, 0xff, "ata lbal after SRST");
	/* nIEN: no IRQ14 edge reaches the slave PIC */
	outb(s, b + 7, 0xe7);
	ata_wait(s);
	outb(s, 0xa0, 0x0a);
	inb(s, 0xa0, 0xff, "pic slave IRR after command with nIEN");
	inb(s, b + 7, 0xff, "ata status after FLUSH with nIEN");
	outb(s, 0x3f6, 0x00);
}

static void script_rtc(struct script *s)
{
	cmos(s, 0x0a, 0x7f, "rtc A (UIP is timing)");
	cmos(s, 0x0b, 0xff, "rtc B");
	cmos(s, 0x0d, 0xff, "rtc D");
	cmos(s, 0x02, 0xff, "rtc minutes BCD");
	cmos(s, 0x04, 0xff, "rtc hours BCD");
	cmos(s, 0x06, 0xff, "rtc weekday");
	cmos(s, 0x07, 0xff, "rtc day BCD");
	cmos(s, 0x08, 0xff, "rtc month BCD");
	cmos(s, 0x09, 0xff, "rtc year BCD");
	cmos(s, 0x32, 0xff, "rtc century BCD");
	outb(s, 0x70, 0x0b);
	outb(s, 0x71, 0x06);
	cmos(s, 0x02, 0xff, "rtc minutes binary");
	cmos(s, 0x04, 0xff, "rtc hours binary");
	cmos(s, 0x09, 0xff, "rtc year binary");
	outb(s, 0x70, 0x0b);
	outb(s, 0x71, 0x00);
	cmos(s, 0x04, 0xff, "rtc hours BCD 12h");
	outb(s, 0x70, 0x0b);
	outb(s, 0x71, 0x02);
	/* SET, write a time, clear SET */
	outb(s, 0x70, 0x0b);
	outb(s, 0x71, 0x82);
	static const uint8_t t[][2] = {{0x00, 0x30}, {0x02, 0x59}, {0x04, 0x23}, {0x07, 0x31},
				       {0x08, 0x12}, {0x09, 0x99}, {0x32, 0x20}};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		outb(s, 0x70, t[i][0]);
		outb(s, 0x71, t[i][1]);
	}
	cmos(s, 0x02, 0xff, "rtc minutes while SET");
	outb(s, 0x70, 0x0b);
	outb(s, 0x71, 0x02);
	cmos(s, 0x04, 0xff, "rtc hours after set");
	cmos(s, 0x07, 0xff, "rtc day after set");
	cmos(s, 0x09, 0xff, "rtc year after set");
	/* CMOS RAM, NMI-mask bit, memory size bytes for -m 16 */
	outb(s, 0x70, 0x40);
	outb(s, 0x71, 0x5a);
	outb(s, 0x70, 0xc0);
	inb(s, 0x71, 0xff, "cmos RAM through NMI-masked index");
	static const uint8_t mem[] = {0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x5b, 0x5c};
	for (size_t i = 0; i < sizeof(mem); i++)
		cmos(s, mem[i], 0xff, "cmos memory size byte");
}

static void script_pit(struct script *s)
{
	/* status read-back only: counts run on different clocks.  QEMU never
	 * sets the null-count bit and OUT depends on time: compare bits 5-0. */
	outb(s, 0x43, 0xb0);
	outb(s, 0x42, 0x34);
	outb(s, 0x42, 0x12);
	outb(s, 0x43, 0xe8);
	inb(s, 0x42, 0x3f, "pit ch2 status (lohi, mode 0)");
	outb(s, 0x43, 0x96); /* ch2, LSB, mode 3 */
	outb(s, 0x42, 0x80);
	outb(s, 0x43, 0xe8);
	inb(s, 0x42, 0x3f, "pit ch2 status (lsb, mode 3)");
	outb(s, 0x43, 0x7b); /* ch1, lohi, mode 5, BCD */
	outb(s, 0x41, 0x00);
	outb(s, 0x41, 0x10);
	outb(s, 0x43, 0xe4);
	inb(s, 0x41, 0x3f, "pit ch1 status (lohi, mode 5, BCD)");
	outb(s, 0x43, 0x74); /* ch1 back to binary mode 2 */
	/* port 0x61: gate and speaker bits read back; refresh/OUT2 are timing */
	outb(s, 0x61, 0x03);
	inb(s, 0x61, 0x0f, "port 0x61 gate+speaker");
	outb(s, 0x61, 0x00);
	inb(s, 0x61, 0x0f, "port 0x61 cleared");
	inb(s, 0x43, 0x00, "pit control register read (undefined)");
	/* Linux pit_calibrate_tsc: gate on, mode 0 on channel 2, spin until OUT2
	 * (port 0x61 bit 5) rises; both sides must get out of the loop */
	outb(s, 0x61, 0x01);
	outb(s, 0x43, 0xb0);
	outb(s, 0x42, 0xff);
	outb(s, 0x42, 0xff); /* 65535 ticks, 55 ms */
	inb(s, 0x61, 0x23, "port 0x61 right after programming (OUT2 low)");
	wait_for(s, 0x61, 0x20, 0x20);
	inb(s, 0x61, 0x23, "port 0x61 after terminal count (OUT2 high)");
	outb(s, 0x61, 0x00);
}

/* Priority, rotation, poll and ELCR level mode with two real sources:
 * COM1's THRE on IRQ4 and the disk's INTRQ on IRQ14 (through IRQ2). */
static void script_pic_priority(struct script *s)
{
	script_pic_init(s);
	outb(s, 0x21, 0x01);
	outb(s, 0xa1, 0x00);
	outb(s, 0x3f9, 0x02); /* THRE -> IRQ4 */
	outb(s, 0x1f6, 0xa0);
	outb(s, 0x1f7, 0xec); /* IDENTIFY -> IRQ14 */
	ata_wait(s);
	outb(s, 0x20, 0x0a);
	outb(s, 0xa0, 0x0a);
	inb(s, 0x20, 0xfe, "pic prio: master IRR with IRQ2 and IRQ4");
	inb(s, 0xa0, 0xff, "pic prio: slave IRR with IRQ14");
	outb(s, 0x20, 0xc1); /* set priority: IRQ1 lowest, IRQ2 highest */
	outb(s, 0x20, 0x0c);
	inb(s, 0x20, 0xff, "pic prio: poll master (IRQ2 first)");
	outb(s, 0xa0, 0x0c);
	inb(s, 0xa0, 0xff, "pic prio: poll slave (IRQ14)");
	outb(s, 0xa0, 0x20);
	outb(s, 0x20, 0x20);
	outb(s, 0x20, 0xc2); /* IRQ2 lowest, IRQ3 highest */
	outb(s, 0x20, 0x0c);
	inb(s, 0x20, 0xff, "pic prio: poll master (IRQ4)");
	outb(s, 0x20, 0x0c);
	inb(s, 0x20, 0xff, "pic prio: poll master with nothing deliverable");
	outb(s, 0x20, 0x0b);
	inb(s, 0x20, 0xff, "pic prio: master ISR (IRQ4 in service)");
	outb(s, 0x20, 0xa0); /* rotate on non-specific EOI */
	inb(s, 0x20, 0xff, "pic prio: master ISR after rotating EOI");
	outb(s, 0x20, 0x0a);
	inb(s, 0x20, 0xfe, "pic prio: IRR after INTA of an edge IRQ4 that stays high");
	outb(s, 0x3f9, 0x00);
	outb(s, 0x3f9, 0x02); /* new THRE edge */
	inb(s, 0x20, 0xfe, "pic prio: IRR after a new IRQ4 edge");
	/* level mode through ELCR: IRR follows the line */
	outb(s, 0x4d0, 0x10);
	outb(s, 0x3f9, 0x00);
	inb(s, 0x20, 0xfe, "pic level: IRR with IRQ4 low");
	outb(s, 0x3f9, 0x02);
	inb(s, 0x20, 0xfe, "pic level: IRR with IRQ4 high");
	outb(s, 0x20, 0x0c);
	inb(s, 0x20, 0xff, "pic level: poll IRQ4");
	outb(s, 0x20, 0x0a);
	inb(s, 0x20, 0xfe, "pic level: IRR stays after INTA");
	outb(s, 0x20, 0x64); /* specific EOI for IRQ4 */
	outb(s, 0x20, 0x0b);
	inb(s, 0x20, 0xff, "pic level: ISR after specific EOI");
	outb(s, 0x3f9, 0x00);
	outb(s, 0x4d0, 0x00);
}

static void build_script(struct script *s, unsigned *identify_at)
{
	s->n = 0;
	script_uart(s);
	script_pic(s);
	script_rtc(s);
	script_pit(s);
	script_ata_identify(s, identify_at);
	for (unsigned w = 0; w < 256; w++)
		s->ops[*identify_at + w].mask = identify_mask(w);
	script_ata_and_cascade(s);
	script_pic_priority(s);
	emit(s, OP_END, 0, 0, 0, NULL);
}

/* ---- running it ---------------------------------------------------------- */

static size_t expected_bytes(const struct script *s)
{
	size_t n = 0;
	for (unsigned i = 0; i < s->n; i++)
		n += op_read_size(s->ops[i].kind);
	return n;
}

static void write_bios(const struct script *s, const char *path)
{
	static uint8_t blob[BIOS_SIZE];
	memset(blob, 0xf4, sizeof(blob)); /* hlt everywhere else */
	memcpy(blob, interp, sizeof(interp));
	assert_true(SCRIPT_AT + (size_t)s->n * OP_SIZE <= RESET_VECTOR);
	for (unsigned i = 0; i < s->n; i++) {
		uint8_t *p = blob + SCRIPT_AT + i * OP_SIZE;
		p[0] = s->ops[i].kind;
		p[1] = (uint8_t)s->ops[i].port;
		p[2] = (uint8_t)(s->ops[i].port >> 8);
		for (unsigned k = 0; k < 4; k++)
			p[3 + k] = (uint8_t)(s->ops[i].value >> (8 * k));
	}
	static const uint8_t reset[] = {0xea, 0x00, 0x00, 0x00, 0xf0}; /* ljmp $0xf000,$0 */
	memcpy(blob + RESET_VECTOR, reset, sizeof(reset));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, blob, sizeof(blob)), (ssize_t)sizeof(blob));
	close(fd);
}

static void make_disk(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	uint8_t sector[512];
	for (unsigned lba = 0; lba < DISK_SECTORS; lba++) {
		for (unsigned i = 0; i < 512; i++)
			sector[i] = (uint8_t)(lba * 13 + i * 7);
		assert_int_equal(write(fd, sector, 512), 512);
	}
	close(fd);
}

/* Run QEMU on the script; fill out[] with what the guest read. */
static void run_qemu(const char *dir, size_t want, uint8_t *out)
{
	char bios[256], disk[256], con[256], drive[300], debugcon[300];
	snprintf(bios, sizeof(bios), "%s/bios.bin", dir);
	snprintf(disk, sizeof(disk), "%s/qemu.img", dir);
	snprintf(con, sizeof(con), "%s/debugcon.out", dir);
	snprintf(drive, sizeof(drive), "file=%s,format=raw,if=ide,index=0,cache=unsafe", disk);
	snprintf(debugcon, sizeof(debugcon), "file:%s", con);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 1);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m",
		       "16", "-nodefaults", "-display", "none", "-no-reboot", "-bios", bios,
		       "-drive", drive, "-serial", "null", "-rtc", "base=" RTC_BASE_STR ",clock=vm",
		       "-debugcon", debugcon, "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
		       (char *)NULL);
		fprintf(stderr, "test_dev_qemu: cannot run qemu-system-x86_64 (install it with "
				"tests/tools/deps.sh)\n");
		_exit(127);
	}
	int status = 0;
	for (unsigned waited = 0;; waited++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		assert_true(r >= 0);
		if (r == pid)
			break;
		if (waited == 600) { /* 60 s */
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("qemu did not finish the script within 60 s");
		}
		struct timespec ts = {.tv_nsec = 100000000};
		nanosleep(&ts, NULL);
	}
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != ((0x2a << 1) | 1))
		fail_msg(
		    "qemu exited with %d, expected 85 from isa-debug-exit (127: not installed)",
		    WEXITSTATUS(status));
	int fd = open(con, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, out, want + 1);
	close(fd);
	if (n != (ssize_t)want)
		fail_msg("qemu's interpreter echoed %zd bytes, expected %zu", n, want);
}

/* Run the script against btvm's platform; fill out[] with what was read. */
static void run_btvm(const struct script *s, const char *dir, uint8_t *out)
{
	char disk[256];
	snprintf(disk, sizeof(disk), "%s/btvm.img", dir);
	struct vclock *clock;
	struct platform_config cfg;
	struct platform *p;
	assert_int_equal(vclock_create_manual(0, &clock), BT_OK);
	platform_config_init(&cfg);
	cfg.clock = clock;
	cfg.disk_path = disk;
	cfg.rtc_epoch = RTC_BASE;
	cfg.ram_bytes = 16u << 20;
	assert_int_equal(platform_create(&cfg, &p), BT_OK);
	size_t at = 0;
	for (unsigned i = 0; i < s->n && s->ops[i].kind != OP_END; i++) {
		const struct op *o = &s->ops[i];
		unsigned size = o->kind <= OP_INB ? 1 : o->kind <= OP_INW ? 2 : 4;
		if (o->kind == OP_WAIT) {
			uint8_t mask = (uint8_t)o->value, want = (uint8_t)(o->value >> 8);
			uint32_t v = 0;
			for (unsigned tries = 0;; tries++) {
				assert_int_equal(iobus_pio_in(p->bus, o->port, 1, &v), BT_OK);
				if ((v & mask) == want)
					break;
				if (tries == 100000)
					fail_msg("op %u: port %#x never reached %#x under mask %#x",
						 i, o->port, want, mask);
				assert_int_equal(vclock_advance(clock, 1000), BT_OK);
			}
		} else if (op_read_size(o->kind)) {
			uint32_t v;
			assert_int_equal(iobus_pio_in(p->bus, o->port, size, &v), BT_OK);
			for (unsigned k = 0; k < size; k++)
				out[at++] = (uint8_t)(v >> (8 * k));
		} else {
			assert_int_equal(iobus_pio_out(p->bus, o->port, size, o->value), BT_OK);
		}
		/* about 1 us per guest instruction pair, as a rough pace */
		assert_int_equal(vclock_advance(clock, 1000), BT_OK);
	}
	platform_destroy(p);
	vclock_destroy(clock);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static void test_devices_match_qemu(void **state)
{
	static struct script s;
	unsigned identify_at;
	build_script(&s, &identify_at);
	size_t want = expected_bytes(&s);

	char dir[] = "/tmp/test_dev_qemu.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], path2[256];
	snprintf(path, sizeof(path), "%s/bios.bin", dir);
	write_bios(&s, path);
	snprintf(path, sizeof(path), "%s/qemu.img", dir);
	make_disk(path);
	snprintf(path2, sizeof(path2), "%s/btvm.img", dir);
	copy_file(path, path2);

	uint8_t *q = calloc(1, want + 1), *b = calloc(1, want + 1);
	assert_non_null(q);
	assert_non_null(b);
	run_qemu(dir, want, q);
	run_btvm(&s, dir, b);

	unsigned checked = 0, mismatches = 0;
	bool verbose = getenv("TEST_DEV_QEMU_VERBOSE") != NULL; /* print every byte read */
	size_t at = 0;
	for (unsigned i = 0; i < s.n; i++) {
		unsigned size = op_read_size(s.ops[i].kind);
		if (!size)
			continue;
		uint32_t qv = 0, bv = 0;
		for (unsigned k = 0; k < size; k++) {
			qv |= (uint32_t)q[at + k] << (8 * k);
			bv |= (uint32_t)b[at + k] << (8 * k);
		}
		at += size;
		if (!s.ops[i].mask)
			continue;
		checked++;
		if (verbose && s.ops[i].kind == OP_INB)
			fprintf(stderr, "op %4u port %#05x %-60s qemu %#04x btvm %#04x\n", i,
				s.ops[i].port, s.ops[i].what, qv, bv);
		if ((qv ^ bv) & s.ops[i].mask) {
			mismatches++;
			fprintf(stderr,
				"MISMATCH op %u port %#x %s: qemu %#x btvm %#x (mask %#x)\n", i,
				s.ops[i].port, s.ops[i].what, qv, bv, s.ops[i].mask);
		}
	}
	fprintf(stderr, "test_dev_qemu: %u reads compared, %u mismatches\n", checked, mismatches);

	/* the disk images must end identical too (the written sector) */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s/qemu.img' '%s/btvm.img'", dir, dir);
	int same = system(cmd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(q);
	free(b);
	assert_true(checked > 500);
	assert_int_equal(mismatches, 0);
	assert_int_equal(same, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_devices_match_qemu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
