/*
 * Local APIC, xAPIC mode (see lapic.h).  Owns the register file, the
 * timer (one vclock timer for one-shot, periodic and TSC-deadline modes)
 * and the IRR/ISR/TMR bitmaps.
 *
 * Invariants
 *  1. An interrupt is requested from the vCPU iff the APIC is globally and
 *     software enabled and the highest IRR vector's priority class is
 *     above PPR's (lapic_has_interrupt); notify() runs after every change
 *     of IRR, ISR, TPR, SVR, LINT0 or the global enable.
 *  2. PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV & 0xf0 (SDM 10.8.3.1).
 *  3. The timer is armed iff an interrupt edge is due: one-shot or
 *     periodic with a nonzero initial count (until a one-shot fires), or
 *     TSC-deadline mode with a nonzero deadline.  In one-shot and periodic
 *     modes the count is computed from timer_load_ns (nothing ticks); a
 *     periodic timer runs late on its original grid (one edge, no storm);
 *     an edge the clock passed before the arming fires late, never lost.
 *  4. A timer-mode change through the LVT disarms the timer and clears the
 *     initial count and the deadline (SDM 10.5.4.1).
 *  5. While software-disabled (SVR bit 8 = 0) every LVT reads masked and
 *     cannot be unmasked.
 *
 * Lifecycle of a vector:  IRR --lapic_ack--> ISR --EOI write--> (free);
 * a level-triggered one (TMR bit) also reports its EOI to cfg.eoi.
 */
#include "runtime/dev/lapic.h"

#include "pretrans/base/log.h"

#include <stdlib.h>

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_N };

struct lapic {
	struct iobus *bus;
	struct vclock *clock;
	uint32_t tsc_khz;
	lapic_notify_fn *notify;
	lapic_eoi_fn *eoi;
	void *opaque;

	uint64_t base_msr;
	uint32_t id, tpr, ldr, dfr, svr;
	uint32_t irr[8], isr[8], tmr[8];
	uint32_t esr, esr_pending;
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[LVT_N];
	uint32_t timer_icr, dcr;
	uint64_t timer_load_ns;
	uint64_t tsc_deadline;
	struct vclock_timer timer;
	bool lint0;
	bool mmio;
	bool logged_mode, logged_access;
};

/* Writable bits of each LVT (timer mode: 2 bits, TSC-deadline included). */
static const uint32_t lvt_wmask[LVT_N] = {
    [LVT_TIMER] = 0x000700ffu, /* vector, mask, mode (17-18) */
    [LVT_THERMAL] = 0x000107ffu, [LVT_PERF] = 0x000107ffu,  [LVT_LINT0] = 0x0001a7ffu,
    [LVT_LINT1] = 0x0001a7ffu,	 [LVT_ERROR] = 0x000100ffu,
};

static int highest(const uint32_t r[8])
{
	for (int i = 7; i >= 0; i--)
		if (r[i])
			return i * 32 + 31 - __builtin_clz(r[i]);
	return -1;
}

static bool bit(const uint32_t r[8], unsigned v)
{
	return (r[v / 32] >> (v % 32)) & 1;
}

static void bit_set(uint32_t r[8], unsigned v, bool on)
{
	if (on)
		r[v / 32] |= 1u << (v % 32);
	else
		r[v / 32] &= ~(1u << (v % 32));
}

static bool hw_enabled(const struct lapic *a)
{
	return a->base_msr & LAPIC_MSR_BASE_EN;
}

static bool sw_enabled(const struct lapic *a)
{
	return a->svr & LAPIC_SVR_ENABLE;
}

static void changed(struct lapic *a)
{
	if (a->notify)
		a->notify(a->opaque);
}

static uint32_t ppr(const struct lapic *a)
{
	int isrv = highest(a->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (a->tpr & 0xf0) >= isr_class ? a->tpr & 0xff : isr_class;
}

static void set_irr(struct lapic *a, unsigned vector, bool level);

static void error(struct lapic *a, uint32_t bits)
{
	a->esr_pending |= bits;
	uint32_t lvt = a->lvt[LVT_ERROR];
	if (!(lvt & LAPIC_LVT_MASKED) && (lvt & 0xff) >= 16)
		set_irr(a, lvt & 0xff, false);
}

static void set_irr(struct lapic *a, unsigned vector, bool level)
{
	if (!hw_enabled(a))
		return;
	if (vector < 16) {
		error(a, LAPIC_ESR_RECV_ILLEGAL);
		return;
	}
	bit_set(a->irr, vector, true);
	bit_set(a->tmr, vector, level);
	changed(a);
}

/* ------------------------------------------------------------------ timer */

static uint32_t timer_mode(const struct lapic *a)
{
	return a->lvt[LVT_TIMER] & LAPIC_TIMER_MODE;
}

/* Virtual ns per count: the divide configuration over the 1 MHz clock. */
static uint64_t tick_ns(const struct lapic *a)
{
	unsigned v = (a->dcr & 3) | ((a->dcr >> 1) & 4);
	uint64_t div = v == 7 ? 1 : 2ull << v;
	return div * (VCLOCK_NS_PER_SEC / LAPIC_BUS_HZ);
}

static uint32_t timer_ccr(const struct lapic *a)
{
	if (timer_mode(a) == LAPIC_TIMER_DEADLINE || a->timer_icr == 0)
		return 0;
	uint64_t ticks = (vclock_now_ns(a->clock) - a->timer_load_ns) / tick_ns(a);
	if (timer_mode(a) == LAPIC_TIMER_PERIODIC)
		return a->timer_icr - (uint32_t)(ticks % a->timer_icr);
	return ticks >= a->timer_icr ? 0 : a->timer_icr - (uint32_t)ticks;
}

static void timer_fire(struct lapic *a)
{
	uint32_t lvt = a->lvt[LVT_TIMER];
	if (!(lvt & LAPIC_LVT_MASKED))
		set_irr(a, lvt & 0xff, false);
}

static void timer_expired(void *opaque, uint64_t deadline)
{
	struct lapic *a = opaque;
	switch (timer_mode(a)) {
	case LAPIC_TIMER_DEADLINE:
		a->tsc_deadline = 0;
		break;
	case LAPIC_TIMER_PERIODIC: {
		/* next edge on the grid of the load time, after now */
		uint64_t period = (uint64_t)a->timer_icr * tick_ns(a);
		uint64_t now = vclock_now_ns(a->clock);
		uint64_t k = (now - a->timer_load_ns) / period + 1;
		vclock_timer_arm(&a->timer, a->timer_load_ns + k * period);
		break;
	}
	default:
		break;
	}
	timer_fire(a);
}

/* (Re)arm a one-shot or periodic count loaded at timer_load_ns. */
static void timer_start(struct lapic *a)
{
	if (a->timer_icr == 0 || timer_mode(a) == LAPIC_TIMER_DEADLINE) {
		vclock_timer_cancel(&a->timer);
		return;
	}
	/* the first edge even if the clock has passed it (the host may have
	 * descheduled btvm between the count's load and this arming): an
	 * expired timer runs at the next vclock_run_expired, late, never lost;
	 * a periodic one then continues on its grid (timer_expired) */
	uint64_t period = (uint64_t)a->timer_icr * tick_ns(a);
	vclock_timer_arm(&a->timer, a->timer_load_ns + period);
}

static void timer_stop(struct lapic *a)
{
	vclock_timer_cancel(&a->timer);
	a->timer_icr = 0;
	a->tsc_deadline = 0;
}

static void write_dcr(struct lapic *a, uint32_t val)
{
	/* keep the current count across a divider change */
	uint32_t cur = timer_ccr(a);
	bool running = cur != 0;
	a->dcr = val & 0xb;
	if (!running)
		return;
	uint64_t now = vclock_now_ns(a->clock);
	uint64_t done = (uint64_t)(a->timer_icr - cur) * tick_ns(a);
	a->timer_load_ns = now >= done ? now - done : 0;
	timer_start(a);
}

void lapic_set_tsc_deadline(struct lapic *a, uint64_t deadline, uint64_t tsc_now)
{
	if (timer_mode(a) != LAPIC_TIMER_DEADLINE)
		return; /* ignored in the other modes (SDM 10.5.4.1) */
	a->tsc_deadline = deadline;
	if (!deadline) {
		vclock_timer_cancel(&a->timer);
		return;
	}
	uint64_t now = vclock_now_ns(a->clock);
	uint64_t at = now;
	if (deadline > tsc_now) {
		/* never early: round the distance up */
		unsigned __int128 d = (unsigned __int128)(deadline - tsc_now) * 1000000u;
		unsigned __int128 ns = (d + a->tsc_khz - 1) / a->tsc_khz;
		at = ns > VCLOCK_NEVER - 1 - now ? VCLOCK_NEVER - 1 : now + (uint64_t)ns;
	}
	vclock_timer_arm(&a->timer, at);
}

uint64_t lapic_tsc_deadline(const struct lapic *a)
{
	return timer_mode(a) == LAPIC_TIMER_DEADLINE ? a->tsc_deadline : 0;
}

/* ------------------------------------------------------------- delivery */

static bool dest_match(const struct lapic *a, uint8_t dest, bool logical)
{
	if (dest == 0xff)
		return true;
	if (!logical)
		return dest == (a->id >> 24);
	uint8_t ld = (uint8_t)(a->ldr >> 24);
	if ((a->dfr >> 28) == 0xf) /* flat model */
		return (ld & dest) != 0;
	/* cluster model: cluster in the high nibble, a bit per member below */
	return ((dest >> 4) == (ld >> 4) || (dest >> 4) == 0xf) && (dest & ld & 0xf);
}

static void deliver(struct lapic *a, uint8_t mode, uint8_t vector, bool level)
{
	switch (mode) {
	case LAPIC_DM_FIXED:
	case LAPIC_DM_LOWEST:
		set_irr(a, vector, level);
		return;
	default:
		/* SMI, NMI, INIT, SIPI, ExtINT messages: one CPU, none used by
		 * the guests we run */
		if (!a->logged_mode) {
			a->logged_mode = true;
			bt_info(LOG_DEV,
				"lapic: delivery mode %u (vector %#x) not supported, dropped", mode,
				vector);
		}
		return;
	}
}

void lapic_accept(struct lapic *a, const struct lapic_msg *m)
{
	if (dest_match(a, m->dest, m->logical))
		deliver(a, m->mode, m->vector, m->level);
}

static void send_ipi(struct lapic *a)
{
	uint32_t lo = a->icr_lo;
	uint8_t mode = (lo >> LAPIC_DM_SHIFT) & 7, vector = lo & 0xff;
	bool self;
	switch ((lo >> 18) & 3) {
	case 0: /* destination field */
		self = dest_match(a, (uint8_t)(a->icr_hi >> 24), (lo >> 11) & 1);
		break;
	case 1: /* self */
	case 2: /* all including self */
		self = true;
		break;
	default: /* all excluding self: nobody else */
		self = false;
		break;
	}
	if ((mode == LAPIC_DM_FIXED || mode == LAPIC_DM_LOWEST) && vector < 16) {
		error(a, LAPIC_ESR_SEND_ILLEGAL);
		return;
	}
	if (self)
		deliver(a, mode, vector, false);
}

void lapic_set_lint0(struct lapic *a, bool level)
{
	bool rising = level && !a->lint0;
	a->lint0 = level;
	uint32_t lvt = a->lvt[LVT_LINT0];
	unsigned mode = (lvt >> LAPIC_DM_SHIFT) & 7;
	if (mode == LAPIC_DM_FIXED && !(lvt & LAPIC_LVT_MASKED) && hw_enabled(a) &&
	    (rising || (level && (lvt & LAPIC_LVT_LEVEL))))
		set_irr(a, lvt & 0xff, (lvt & LAPIC_LVT_LEVEL) != 0);
	changed(a);
}

bool lapic_extint_open(const struct lapic *a)
{
	if (!hw_enabled(a))
		return true;
	uint32_t lvt = a->lvt[LVT_LINT0];
	return !(lvt & LAPIC_LVT_MASKED) && ((lvt >> LAPIC_DM_SHIFT) & 7) == LAPIC_DM_EXTINT;
}

bool lapic_has_interrupt(const struct lapic *a)
{
	if (!hw_enabled(a) || !sw_enabled(a))
		return false;
	int irrv = highest(a->irr);
	return irrv >= 0 && ((uint32_t)irrv & 0xf0) > (ppr(a) & 0xf0);
}

uint8_t lapic_ack(struct lapic *a)
{
	int irrv = highest(a->irr);
	if (irrv < 0 || !lapic_has_interrupt(a))
		return (uint8_t)(a->svr & 0xff); /* spurious */
	bit_set(a->irr, (unsigned)irrv, false);
	bit_set(a->isr, (unsigned)irrv, true);
	changed(a);
	return (uint8_t)irrv;
}

static void eoi(struct lapic *a)
{
	int isrv = highest(a->isr);
	if (isrv < 0)
		return;
	bit_set(a->isr, (unsigned)isrv, false);
	if (bit(a->tmr, (unsigned)isrv) && a->eoi)
		a->eoi(a->opaque, (uint8_t)isrv);
	changed(a);
}

/* -------------------------------------------------------------- registers */

static void reset(struct lapic *a)
{
	vclock_timer_cancel(&a->timer);
	a->id = 0;
	a->tpr = a->ldr = 0;
	a->dfr = 0xffffffffu;
	a->svr = 0xff;
	for (unsigned i = 0; i < 8; i++)
		a->irr[i] = a->isr[i] = a->tmr[i] = 0;
	a->esr = a->esr_pending = 0;
	a->icr_lo = a->icr_hi = 0;
	for (unsigned i = 0; i < LVT_N; i++)
		a->lvt[i] = LAPIC_LVT_MASKED;
	a->timer_icr = a->dcr = 0;
	a->tsc_deadline = 0;
}

/* Firmware's virtual-wire mode: the 8259 reaches the CPU through LINT0. */
static void reset_firmware(struct lapic *a)
{
	reset(a);
	a->base_msr = LAPIC_BASE_MSR_RESET;
	a->lvt[LVT_LINT0] = LAPIC_DM_EXTINT << LAPIC_DM_SHIFT;
	a->lvt[LVT_LINT1] = LAPIC_DM_NMI << LAPIC_DM_SHIFT;
}

static void write_lvt(struct lapic *a, unsigned i, uint32_t val)
{
	val &= lvt_wmask[i];
	if (!sw_enabled(a))
		val |= LAPIC_LVT_MASKED;
	if (i == LVT_TIMER) {
		if ((val & LAPIC_TIMER_MODE) == LAPIC_TIMER_MODE)
			val &= ~LAPIC_TIMER_MODE; /* reserved mode 3: one-shot */
		uint32_t old = a->lvt[i];
		a->lvt[i] = val;
		if ((old ^ val) & LAPIC_TIMER_MODE)
			timer_stop(a);
		return;
	}
	a->lvt[i] = (a->lvt[i] & ~lvt_wmask[i]) | val;
	if (i == LVT_LINT0)
		changed(a); /* the ExtINT path may have opened or closed */
}

uint32_t lapic_read(struct lapic *a, uint32_t reg)
{
	switch (reg) {
	case LAPIC_ID:
		return a->id;
	case LAPIC_VER:
		return LAPIC_VERSION;
	case LAPIC_TPR:
		return a->tpr;
	case LAPIC_APR:
		return 0;
	case LAPIC_PPR:
		return ppr(a);
	case LAPIC_LDR:
		return a->ldr;
	case LAPIC_DFR:
		return a->dfr;
	case LAPIC_SVR:
		return a->svr;
	case LAPIC_ESR:
		return a->esr;
	case LAPIC_ICR_LO:
		return a->icr_lo; /* delivery status: always idle */
	case LAPIC_ICR_HI:
		return a->icr_hi;
	case LAPIC_TIMER_ICR:
		return a->timer_icr;
	case LAPIC_TIMER_CCR:
		return timer_ccr(a);
	case LAPIC_TIMER_DCR:
		return a->dcr;
	default:
		break;
	}
	if (reg >= LAPIC_LVT_TIMER && reg <= LAPIC_LVT_ERROR)
		return a->lvt[(reg - LAPIC_LVT_TIMER) >> 4];
	if (reg >= LAPIC_ISR && reg < LAPIC_ISR + 0x80)
		return a->isr[(reg - LAPIC_ISR) >> 4];
	if (reg >= LAPIC_TMR && reg < LAPIC_TMR + 0x80)
		return a->tmr[(reg - LAPIC_TMR) >> 4];
	if (reg >= LAPIC_IRR && reg < LAPIC_IRR + 0x80)
		return a->irr[(reg - LAPIC_IRR) >> 4];
	return 0;
}

void lapic_write(struct lapic *a, uint32_t reg, uint32_t val)
{
	switch (reg) {
	case LAPIC_ID:
		a->id = val & 0xff000000u;
		return;
	case LAPIC_TPR:
		a->tpr = val & 0xff;
		changed(a);
		return;
	case LAPIC_EOI:
		eoi(a);
		return;
	case LAPIC_LDR:
		a->ldr = val & 0xff000000u;
		return;
	case LAPIC_DFR:
		a->dfr = val | 0x0fffffffu;
		return;
	case LAPIC_SVR:
		a->svr = val & 0x3ff; /* no EOI-broadcast suppression (version bit 24) */
		if (!sw_enabled(a))
			for (unsigned i = 0; i < LVT_N; i++)
				a->lvt[i] |= LAPIC_LVT_MASKED;
		changed(a);
		return;
	case LAPIC_ESR:
		a->esr = a->esr_pending;
		a->esr_pending = 0;
		return;
	case LAPIC_ICR_LO:
		a->icr_lo = val & 0x000cdfffu;
		send_ipi(a);
		return;
	case LAPIC_ICR_HI:
		a->icr_hi = val & 0xff000000u;
		return;
	case LAPIC_TIMER_ICR:
		if (timer_mode(a) == LAPIC_TIMER_DEADLINE)
			return; /* ignored in TSC-deadline mode */
		a->timer_icr = val;
		a->timer_load_ns = vclock_now_ns(a->clock);
		timer_start(a);
		return;
	case LAPIC_TIMER_DCR:
		write_dcr(a, val);
		return;
	default:
		break;
	}
	if (reg >= LAPIC_LVT_TIMER && reg <= LAPIC_LVT_ERROR) {
		write_lvt(a, (reg - LAPIC_LVT_TIMER) >> 4, val);
		return;
	}
	/* read-only or reserved */
	bt_debug(LOG_DEV, "lapic: write %#x to read-only or reserved register %#x", val, reg);
}

/* ------------------------------------------------------------------- MSRs */

uint64_t lapic_base_msr(const struct lapic *a)
{
	return a->base_msr;
}

bool lapic_set_base_msr(struct lapic *a, uint64_t val)
{
	if ((val & ~(uint64_t)0xfff) != LAPIC_BASE) {
		bt_warn(LOG_DEV, "lapic: relocating the APIC to %#llx is not supported (#GP)",
			(unsigned long long)(val & ~(uint64_t)0xfff));
		return false;
	}
	bool was = hw_enabled(a);
	a->base_msr = (val & ~(uint64_t)LAPIC_MSR_BASE_BSP) | (a->base_msr & LAPIC_MSR_BASE_BSP);
	if (was && !hw_enabled(a)) {
		/* globally disabled: the power-up state (SDM 10.4.3) */
		reset(a);
		changed(a);
	} else if (!was && hw_enabled(a)) {
		changed(a);
	}
	return true;
}

/* -------------------------------------------------------------------- bus */

static void mmio_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct lapic *a = opaque;
	unsigned sub = off & 0xf;
	uint64_t v = sub < 4 ? lapic_read(a, (uint32_t)off & 0xff0) >> (8 * sub) : 0;
	*value = size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct lapic *a = opaque;
	if ((off & 0xf) || size < 4) {
		if (!a->logged_access) {
			a->logged_access = true;
			bt_info(LOG_DEV,
				"lapic: %u-byte write at offset %#llx ignored (registers "
				"take aligned 32-bit writes)",
				size, (unsigned long long)off);
		}
		return;
	}
	lapic_write(a, (uint32_t)off, (uint32_t)value);
}

static const struct iobus_ops lapic_ops = {
    .read = mmio_read, .write = mmio_write, .flags = IOBUS_WHOLE, .name = "lapic"};

enum bt_status lapic_create(const struct lapic_config *cfg, struct lapic **out)
{
	if (!cfg || !cfg->bus || !cfg->clock || !out || !cfg->tsc_khz)
		return BT_ERR_INVALID;
	struct lapic *a = calloc(1, sizeof(*a));
	if (!a)
		return BT_ERR_NOMEM;
	a->bus = cfg->bus;
	a->clock = cfg->clock;
	a->tsc_khz = cfg->tsc_khz;
	a->notify = cfg->notify;
	a->eoi = cfg->eoi;
	a->opaque = cfg->opaque;
	vclock_timer_init(&a->timer, a->clock, timer_expired, a);
	reset_firmware(a);
	enum bt_status s = iobus_register_mmio(a->bus, LAPIC_BASE, LAPIC_SIZE, &lapic_ops, a);
	if (s != BT_OK) {
		free(a);
		return s;
	}
	a->mmio = true;
	*out = a;
	return BT_OK;
}

void lapic_destroy(struct lapic *a)
{
	if (!a)
		return;
	vclock_timer_cancel(&a->timer);
	if (a->mmio)
		iobus_unregister_mmio(a->bus, LAPIC_BASE);
	free(a);
}
