/*
 * Platform assembly: owns the bus, the clock (unless borrowed) and every
 * device, and the one creation table that fixes their order and wiring.
 *
 * Invariants
 *  1. Steps are created in table order and destroyed in reverse order;
 *     p->created counts the steps that exist, so a failed create tears
 *     down exactly what it built.
 *  2. A step only uses what earlier steps built (the bus and clock first,
 *     the PIC, LAPIC and IOAPIC before any device that raises an IRQ).
 *  3. Every device unregisters its ranges and cancels its timers when
 *     destroyed, before the bus and clock go.
 *  4. Every device interrupt line reaches the 8259 input irq and the IOAPIC
 *     pin platform_irq_gsi(irq) (irq_fanout); the vCPU's request is
 *     platform_intr_pending(), re-announced through config.on_intr after
 *     every change of the PIC's INTR or the LAPIC's state.
 */
#include "runtime/dev/platform.h"

#include "pretrans/base/log.h"

#include <signal.h>
#include <stdlib.h>

struct platform_step {
	const char *name;
	enum bt_status (*create)(struct platform *p, const struct platform_config *cfg);
	void (*destroy)(struct platform *p);
};

static enum bt_status step_clock(struct platform *p, const struct platform_config *cfg)
{
	if (cfg->clock) {
		p->clock = cfg->clock;
		return BT_OK;
	}
	p->owns_clock = true;
	return vclock_create(&p->clock);
}

static void step_clock_fini(struct platform *p)
{
	if (p->owns_clock)
		vclock_destroy(p->clock);
	p->clock = NULL;
}

static enum bt_status step_bus(struct platform *p, const struct platform_config *cfg)
{
	return iobus_create(&p->bus);
}

static void step_bus_fini(struct platform *p)
{
	iobus_destroy(p->bus);
	p->bus = NULL;
}

/* ---------------------------------------------------- interrupt routing */

/* The vCPU's interrupt request may have changed: tell the runtime. */
static void intr_changed(struct platform *p)
{
	if (p->on_intr)
		p->on_intr(p->intr_opaque, platform_intr_pending(p));
}

/* The 8259's INTR goes to LINT0 (which decides whether it reaches the CPU). */
static void on_pic_intr(void *opaque, bool intr)
{
	struct platform *p = opaque;
	if (p->lapic)
		lapic_set_lint0(p->lapic, intr); /* notifies through on_lapic */
	else
		intr_changed(p);
}

static void on_lapic(void *opaque)
{
	intr_changed(opaque);
}

static void on_lapic_eoi(void *opaque, uint8_t vector)
{
	struct platform *p = opaque;
	if (p->ioapic)
		ioapic_eoi(p->ioapic, vector);
}

static void on_ioapic(void *opaque, const struct lapic_msg *m)
{
	struct platform *p = opaque;
	if (p->lapic)
		lapic_accept(p->lapic, m);
}

/* Each ISA/PCI interrupt line reaches both controllers, as on a PC: 8259
 * input irq, IOAPIC pin platform_irq_gsi(irq). */
static void irq_fanout(void *opaque, unsigned irq, bool level)
{
	struct platform *p = opaque;
	pic_set_irq(p->pic, irq, level);
	if (p->ioapic)
		ioapic_set_irq(p->ioapic, platform_irq_gsi(irq), level);
}

static void connect(struct platform *p, unsigned irq, struct irq_line *line)
{
	irq_line_init(line, irq_fanout, p, irq);
}

unsigned platform_irq_gsi(unsigned irq)
{
	return irq == 0 ? 2 : irq; /* the MADT's one interrupt source override */
}

bool platform_intr_pending(const struct platform *p)
{
	if (p->lapic && lapic_has_interrupt(p->lapic))
		return true;
	return (!p->lapic || lapic_extint_open(p->lapic)) && pic_has_interrupt(p->pic);
}

uint8_t platform_intr_ack(struct platform *p)
{
	/* the LAPIC's vectors first, then the 8259's INTA, as QEMU's
	 * cpu_get_pic_interrupt */
	if (p->lapic && lapic_has_interrupt(p->lapic))
		return lapic_ack(p->lapic);
	if (!p->lapic || lapic_extint_open(p->lapic))
		return pic_ack(p->pic);
	return lapic_ack(p->lapic); /* nothing left: the spurious vector */
}

/* ---------------------------------------------------------------- steps */

static enum bt_status step_pic(struct platform *p, const struct platform_config *cfg)
{
	BT_TRY(pic_create(p->bus, &p->pic));
	p->on_intr = cfg->on_intr;
	p->intr_opaque = cfg->intr_opaque;
	pic_set_notify(p->pic, on_pic_intr, p);
	return BT_OK;
}

static void step_pic_fini(struct platform *p)
{
	pic_destroy(p->pic);
	p->pic = NULL;
}

static enum bt_status step_lapic(struct platform *p, const struct platform_config *cfg)
{
	struct lapic_config lc = {
	    .bus = p->bus,
	    .clock = p->clock,
	    .tsc_khz = cfg->tsc_khz ? cfg->tsc_khz : PLATFORM_DEFAULT_TSC_KHZ,
	    .notify = on_lapic,
	    .eoi = on_lapic_eoi,
	    .opaque = p,
	};
	return lapic_create(&lc, &p->lapic);
}

static void step_lapic_fini(struct platform *p)
{
	lapic_destroy(p->lapic);
	p->lapic = NULL;
}

static enum bt_status step_ioapic(struct platform *p, const struct platform_config *cfg)
{
	return ioapic_create(p->bus, on_ioapic, p, &p->ioapic);
}

static void step_ioapic_fini(struct platform *p)
{
	ioapic_destroy(p->ioapic);
	p->ioapic = NULL;
}

static enum bt_status step_pit(struct platform *p, const struct platform_config *cfg)
{
	BT_TRY(pit_create(p->bus, p->clock, &p->pit));
	connect(p, PIT_IRQ, pit_irq(p->pit));
	return BT_OK;
}

static void step_pit_fini(struct platform *p)
{
	pit_destroy(p->pit);
	p->pit = NULL;
}

/* Ctrl-A x on the console: the same clean stop as a Ctrl-C at a terminal
 * that is not raw (the VM's SIGINT handler, runtime/vm/vm_signal.c). */
static void console_quit(void *opaque)
{
	(void)opaque;
	raise(SIGINT);
}

static enum bt_status step_com1(struct platform *p, const struct platform_config *cfg)
{
	BT_TRY(
	    uart_create(p->bus, UART_COM1_PORT, cfg->console_out_fd, cfg->console_in_fd, &p->com1));
	connect(p, UART_COM1_IRQ, uart_irq(p->com1));
	if (cfg->console_escape)
		uart_set_escape(p->com1, console_quit, NULL);
	return BT_OK;
}

static void step_com1_fini(struct platform *p)
{
	uart_destroy(p->com1);
	p->com1 = NULL;
}

/* CMOS memory-size bytes as a PC BIOS (SeaBIOS) leaves them. */
static void cmos_memory_size(struct rtc *rtc, uint64_t ram)
{
	uint64_t ext_kb = ram > (1u << 20) ? (ram - (1u << 20)) / 1024 : 0;
	if (ext_kb > 0xffff)
		ext_kb = 0xffff;
	uint64_t below4g = ram < (4ull << 30) ? ram : (4ull << 30);
	uint64_t above16m_64k = below4g > (16u << 20) ? (below4g - (16u << 20)) >> 16 : 0;
	if (above16m_64k > 0xffff)
		above16m_64k = 0xffff;
	uint64_t above4g_64k = ram > (4ull << 30) ? (ram - (4ull << 30)) >> 16 : 0;
	const struct {
		uint8_t idx;
		uint8_t val;
	} bytes[] = {
	    {0x15, 640 & 0xff},
	    {0x16, 640 >> 8},
	    {0x17, (uint8_t)ext_kb},
	    {0x18, (uint8_t)(ext_kb >> 8)},
	    {0x30, (uint8_t)ext_kb},
	    {0x31, (uint8_t)(ext_kb >> 8)},
	    {0x34, (uint8_t)above16m_64k},
	    {0x35, (uint8_t)(above16m_64k >> 8)},
	    {0x5b, (uint8_t)above4g_64k},
	    {0x5c, (uint8_t)(above4g_64k >> 8)},
	    {0x5d, (uint8_t)(above4g_64k >> 16)},
	};
	for (size_t i = 0; i < BT_ARRAY_SIZE(bytes); i++)
		rtc_cmos_set(rtc, bytes[i].idx, bytes[i].val);
}

static enum bt_status step_rtc(struct platform *p, const struct platform_config *cfg)
{
	BT_TRY(rtc_create(p->bus, p->clock, cfg->rtc_epoch, &p->rtc));
	connect(p, RTC_IRQ, rtc_irq(p->rtc));
	if (cfg->ram_bytes)
		cmos_memory_size(p->rtc, cfg->ram_bytes);
	return BT_OK;
}

static void step_rtc_fini(struct platform *p)
{
	rtc_destroy(p->rtc);
	p->rtc = NULL;
}

static enum bt_status step_ata(struct platform *p, const struct platform_config *cfg)
{
	if (!cfg->disk_path)
		return BT_OK; /* no disk: the ports stay unclaimed (all ones) */
	BT_TRY(ata_create(p->bus, cfg->disk_path, cfg->disk_read_only, &p->ata));
	ata_set_identity(p->ata, cfg->disk_model, cfg->disk_serial, NULL);
	connect(p, ATA_PRIMARY_IRQ, ata_irq(p->ata));
	return BT_OK;
}

static void step_ata_fini(struct platform *p)
{
	ata_destroy(p->ata);
	p->ata = NULL;
}

static enum bt_status step_debug_exit(struct platform *p, const struct platform_config *cfg)
{
	return debug_exit_create(p->bus, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, cfg->on_exit,
				 cfg->exit_opaque, &p->debug_exit);
}

static void step_debug_exit_fini(struct platform *p)
{
	debug_exit_destroy(p->debug_exit);
	p->debug_exit = NULL;
}

static enum bt_status step_pvpanic(struct platform *p, const struct platform_config *cfg)
{
	return pvpanic_create(p->bus, cfg->on_panic, cfg->reset_opaque, &p->pvpanic);
}

static void step_pvpanic_fini(struct platform *p)
{
	pvpanic_destroy(p->pvpanic);
	p->pvpanic = NULL;
}

static enum bt_status step_sysport(struct platform *p, const struct platform_config *cfg)
{
	return sysport_create(p->bus, cfg->on_reset, cfg->reset_opaque, &p->sysport);
}

static void step_sysport_fini(struct platform *p)
{
	sysport_destroy(p->sysport);
	p->sysport = NULL;
}

static enum bt_status step_acpi(struct platform *p, const struct platform_config *cfg)
{
	return acpi_pm_create(p->bus, cfg->on_poweroff, cfg->on_reset, cfg->reset_opaque, &p->acpi);
}

static void step_acpi_fini(struct platform *p)
{
	acpi_pm_destroy(p->acpi);
	p->acpi = NULL;
}

static enum bt_status step_pci(struct platform *p, const struct platform_config *cfg)
{
	BT_TRY(pci_host_create(p->bus, &p->pci));
	connect(p, PCI_IRQ_A, pci_host_irq(p->pci, 0));
	connect(p, PCI_IRQ_B, pci_host_irq(p->pci, 1));
	/* the ELCR stays as the hardware resets it (all edge, as QEMU's):
	 * the guest makes the IRQs level when it routes them (Linux: the
	 * DSDT's _PRT, acpi_register_gsi -> elcr_set_level_irq) */
	return BT_OK;
}

static void step_pci_fini(struct platform *p)
{
	pci_host_destroy(p->pci);
	p->pci = NULL;
}

static enum bt_status step_virtio_blk(struct platform *p, const struct platform_config *cfg)
{
	if (!cfg->virtio_disk_path)
		return BT_OK;
	if (!cfg->dma.map) {
		bt_err(LOG_DEV, "platform: a virtio disk needs config.dma (guest RAM)");
		return BT_ERR_INVALID;
	}
	p->dma = cfg->dma;
	return virtio_blk_create(p->pci, p->bus, VIRTIO_BLK_SLOT, &p->dma, cfg->virtio_disk_path,
				 cfg->virtio_disk_read_only, &p->vblk);
}

static void step_virtio_blk_fini(struct platform *p)
{
	virtio_blk_destroy(p->vblk);
	p->vblk = NULL;
}

/* THE creation order.  Add a device here, nowhere else. */
static const struct platform_step platform_steps[] = {
    {"clock", step_clock, step_clock_fini},
    {"bus", step_bus, step_bus_fini},
    {"pic", step_pic, step_pic_fini},
    {"lapic", step_lapic, step_lapic_fini},
    {"ioapic", step_ioapic, step_ioapic_fini},
    {"pit", step_pit, step_pit_fini},
    {"com1", step_com1, step_com1_fini},
    {"rtc", step_rtc, step_rtc_fini},
    {"ata", step_ata, step_ata_fini},
    {"debug-exit", step_debug_exit, step_debug_exit_fini},
    {"pvpanic", step_pvpanic, step_pvpanic_fini},
    {"sysport", step_sysport, step_sysport_fini},
    {"acpi", step_acpi, step_acpi_fini},
    {"pci", step_pci, step_pci_fini},
    {"virtio-blk", step_virtio_blk, step_virtio_blk_fini},
};

void platform_config_init(struct platform_config *cfg)
{
	*cfg = (struct platform_config){
	    .console_in_fd = -1,
	    .console_out_fd = -1,
	    .rtc_epoch = RTC_HOST_TIME,
	};
}

enum bt_status platform_create(const struct platform_config *cfg, struct platform **out)
{
	if (!cfg || !out)
		return BT_ERR_INVALID;
	struct platform *p = calloc(1, sizeof(*p));
	if (!p)
		return BT_ERR_NOMEM;
	for (size_t i = 0; i < BT_ARRAY_SIZE(platform_steps); i++) {
		enum bt_status s = platform_steps[i].create(p, cfg);
		if (s != BT_OK) {
			bt_err(LOG_DEV, "platform: creating %s failed: %s", platform_steps[i].name,
			       bt_status_str(s));
			platform_destroy(p);
			return s;
		}
		p->created = (unsigned)i + 1;
	}
	*out = p;
	return BT_OK;
}

void platform_destroy(struct platform *p)
{
	if (!p)
		return;
	while (p->created > 0) {
		p->created--;
		platform_steps[p->created].destroy(p);
	}
	free(p);
}

void platform_poll(struct platform *p)
{
	uart_poll(p->com1);
	vclock_run_expired(p->clock);
}

uint64_t platform_next_deadline(const struct platform *p)
{
	return vclock_next_deadline(p->clock);
}

bool platform_exit_requested(const struct platform *p, int *status)
{
	return debug_exit_requested(p->debug_exit, status);
}
