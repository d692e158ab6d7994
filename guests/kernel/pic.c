/*
 * 8259A pair (master 0x20/0x21, slave 0xa0/0xa1), remapped to vectors
 * 0x20-0x2f, edge triggered, cascade on IRQ2.  Non-specific EOI to the
 * slave and the master for IRQ 8-15; spurious IRQ7/15 detected via the ISR.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xa0
#define PIC2_DATA 0xa1

static uint16_t pic_masks = 0xffff;

static void pic_write_masks(void)
{
	outb(PIC1_DATA, (uint8_t)pic_masks);
	outb(PIC2_DATA, (uint8_t)(pic_masks >> 8));
}

void pic_init(void)
{
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
	outb(PIC1_CMD, 0x11); /* ICW1: init, ICW4 needed */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, 0x20); /* ICW2: vector base */
	outb(PIC2_DATA, 0x28);
	outb(PIC1_DATA, 0x04); /* ICW3: slave on IRQ2 */
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01); /* ICW4: 8086 mode */
	outb(PIC2_DATA, 0x01);
	pic_masks = 0xffff & ~(1u << 2); /* cascade open */
	pic_write_masks();
}

void pic_unmask(unsigned irq)
{
	uint64_t f = irq_save();
	pic_masks &= (uint16_t) ~(1u << irq);
	pic_write_masks();
	irq_restore(f);
}

void pic_mask(unsigned irq)
{
	uint64_t f = irq_save();
	pic_masks |= (uint16_t)(1u << irq);
	pic_write_masks();
	irq_restore(f);
}

void pic_eoi(unsigned irq)
{
	if (irq >= 8)
		outb(PIC2_CMD, 0x20);
	outb(PIC1_CMD, 0x20);
}

/* IRQ7/15 with the ISR bit clear is spurious: no EOI (master EOI for 15). */
bool pic_spurious(unsigned irq)
{
	if (irq == 7) {
		outb(PIC1_CMD, 0x0b);
		return !(inb(PIC1_CMD) & 0x80);
	}
	if (irq == 15) {
		outb(PIC2_CMD, 0x0b);
		if (!(inb(PIC2_CMD) & 0x80)) {
			outb(PIC1_CMD, 0x20);
			return true;
		}
	}
	return false;
}
