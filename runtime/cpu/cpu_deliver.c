/*
 * Event delivery through the guest's 64-bit IDT, the double/triple-fault
 * rules, and interrupt acceptance at block boundaries.
 *
 * Delivery of one event (deliver_once), per SDM vol. 3 6.12 / 6.14:
 *   IDT gate (16 bytes, implicit supervisor read) -> type/DPL/present checks
 *   -> target CS descriptor checks -> new stack (IST, or TSS.rspN on a CPL
 *   change, else the current RSP) aligned down to 16 -> one write of the
 *   frame [error code,] RIP, CS, RFLAGS, RSP, SS -> commit CS/SS/RSP/RIP,
 *   clear TF/NT/RF/VM (and IF for an interrupt gate; AC is NOT cleared:
 *   entry code does clac) -> CPL = target DPL.
 * Nothing of the vCPU state changes unless the whole frame was written.
 *
 * Nesting (SDM table 6-5): a fault while delivering event A is delivered
 * instead of A, except: A contributory and fault contributory, or A a #PF
 * and fault contributory/#PF -> #DF(0); a fault while delivering #DF ->
 * triple fault: the VM stops (v->stop, register dump on stderr).
 * Contributory = #DE #TS #NP #SS #GP; external interrupts and software
 * interrupts are benign.  Error codes of faults raised by the delivery of
 * a non-software event carry EXT (bit 0).
 *
 * Interrupt acceptance (cpu_check_interrupts): "pending" and the vector
 * come from the platform (plat.intr_pending / intr_ack; btvm: the local
 * APIC's highest vector above its PPR, else the 8259 through LINT0):
 *   RUNNING --IF=1, no shadow, pending--> deliver, RUNNING
 *   HALTED  --same--> deliver (hlt is left, RIP after the hlt), RUNNING
 *   HALTED  --IF=0--> STOPPED (CPU_STOP_HALT_IF0)
 * The shadow of sti / mov ss lasts while abi->rip == shadow_rip.
 */
#include "runtime/cpu/cpu_internal.h"

#include "pretrans/base/log.h"

#include <stdlib.h>
#include <string.h>

enum exc_class { EXC_BENIGN, EXC_CONTRIB, EXC_PAGE };

static enum exc_class exc_class(uint8_t vector, enum cpu_event_kind kind)
{
	if (kind == CPU_EV_EXTERNAL || kind == CPU_EV_SOFTWARE)
		return EXC_BENIGN;
	switch (vector) {
	case CPU_EXC_DE:
	case CPU_EXC_TS:
	case CPU_EXC_NP:
	case CPU_EXC_SS:
	case CPU_EXC_GP:
		return EXC_CONTRIB;
	case CPU_EXC_PF:
		return EXC_PAGE;
	default:
		return EXC_BENIGN;
	}
}

/* Exceptions that push an error code: #DF #TS #NP #SS #GP #PF #AC #CP. */
static bool exc_has_error(uint8_t vector)
{
	switch (vector) {
	case CPU_EXC_DF:
	case CPU_EXC_TS:
	case CPU_EXC_NP:
	case CPU_EXC_SS:
	case CPU_EXC_GP:
	case CPU_EXC_PF:
	case CPU_EXC_AC:
	case 21: /* #CP */
		return true;
	default:
		return false;
	}
}

struct cpu_event {
	uint8_t vector;
	enum cpu_event_kind kind;
	bool has_error;
	uint32_t error;
};

/* Read a stack pointer from the 64-bit TSS at byte offset off. */
static bool tss_read_rsp(struct vcpu *v, uint32_t off, uint64_t *rsp)
{
	if ((v->tr.ar & CPU_AR_UNUSABLE) || !(v->tr.ar & CPU_AR_P) ||
	    ((v->tr.ar & 0xf) != 0x9 && (v->tr.ar & 0xf) != 0xb) || off + 7 > v->tr.limit)
		return cpu_raise_err(v, CPU_EXC_TS, v->tr.sel & 0xfffc);
	return cpu_mem_read(v, v->tr.base + off, rsp, 8, MMU_ACC_IMPLICIT);
}

static bool deliver_once(struct vcpu *v, const struct cpu_event *ev)
{
	uint32_t idt_err = (uint32_t)ev->vector * 8 + 2;
	uint64_t gate[2];
	if ((uint32_t)ev->vector * 16 + 15 > v->idtr.limit)
		return cpu_raise_err(v, CPU_EXC_GP, idt_err);
	if (!cpu_mem_read(v, v->idtr.base + (uint64_t)ev->vector * 16, gate, 16, MMU_ACC_IMPLICIT))
		return false;
	uint64_t lo = gate[0], hi = gate[1];
	uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
	uint16_t sel = (uint16_t)(lo >> 16);
	unsigned ist = (unsigned)(lo >> 32) & 7;
	unsigned type = (unsigned)(lo >> 40) & 0xf;
	unsigned gate_dpl = (unsigned)(lo >> 45) & 3;
	bool present = (lo >> 47) & 1;

	/* 64-bit interrupt (0xe) or trap (0xf) gate; the upper half's type
	 * field must be zero */
	if ((type != 0xe && type != 0xf) || ((hi >> 40) & 0x1f) != 0)
		return cpu_raise_err(v, CPU_EXC_GP, idt_err);
	if (ev->kind == CPU_EV_SOFTWARE && gate_dpl < v->cpl)
		return cpu_raise_err(v, CPU_EXC_GP, idt_err);
	if (!present)
		return cpu_raise_err(v, CPU_EXC_NP, idt_err);

	if ((sel & 0xfffc) == 0)
		return cpu_raise_err(v, CPU_EXC_GP, 0);
	uint64_t cs_desc;
	if (!cpu_read_desc(v, sel, &cs_desc))
		return false;
	unsigned cs_type = (unsigned)(cs_desc >> 40) & 0xf;
	unsigned cs_dpl = (unsigned)(cs_desc >> 45) & 3;
	if (!((cs_desc >> 44) & 1) || !(cs_type & 8) || cs_dpl > v->cpl)
		return cpu_raise_err(v, CPU_EXC_GP, sel & 0xfffc);
	if (!((cs_desc >> 53) & 1) || ((cs_desc >> 54) & 1))
		return cpu_raise_err(v, CPU_EXC_GP, sel & 0xfffc); /* 64-bit code only */
	if (!((cs_desc >> 47) & 1))
		return cpu_raise_err(v, CPU_EXC_NP, sel & 0xfffc);
	unsigned new_cpl = (cs_type & 4) ? v->cpl : cs_dpl;

	uint64_t rsp = v->abi->gpr[VCPU_RSP];
	if (ist) {
		if (!tss_read_rsp(v, 0x24 + 8 * (ist - 1), &rsp))
			return false;
	} else if (new_cpl < v->cpl) {
		if (!tss_read_rsp(v, 4 + 8 * new_cpl, &rsp))
			return false;
	}
	if (!cpu_is_canonical(rsp))
		return cpu_raise_err(v, CPU_EXC_SS, 0);
	if (!cpu_is_canonical(target))
		return cpu_raise_err(v, CPU_EXC_GP, 0);
	rsp &= ~0xfull;

	uint64_t frame[6];
	unsigned n = 0;
	if (ev->has_error)
		frame[n++] = ev->error;
	frame[n++] = v->abi->rip;
	frame[n++] = v->seg[CPU_CS].sel;
	frame[n++] = cpu_rflags(v);
	frame[n++] = v->abi->gpr[VCPU_RSP];
	frame[n++] = v->seg[CPU_SS].sel;
	uint64_t new_rsp = rsp - 8 * n;

	/* the pushes are supervisor accesses at the new privilege level */
	unsigned old_cpl = v->cpl;
	cpu_set_cpl(v, new_cpl);
	if (!cpu_stack_write(v, new_rsp, frame, 8 * n)) {
		cpu_set_cpl(v, old_cpl);
		return false;
	}
	if (!cpu_set_desc_accessed(v, sel, &cs_desc)) {
		cpu_set_cpl(v, old_cpl);
		return false;
	}

	/* commit */
	cpu_desc_to_seg(cs_desc, (uint16_t)((sel & 0xfffc) | new_cpl), &v->seg[CPU_CS]);
	if (new_cpl != old_cpl) {
		struct cpu_seg *ss = &v->seg[CPU_SS];
		ss->sel = (uint16_t)new_cpl;
		ss->base = 0;
		ss->limit = 0;
		ss->ar = CPU_AR_UNUSABLE | (new_cpl << CPU_AR_DPL_SHIFT);
	}
	v->abi->gpr[VCPU_RSP] = new_rsp;
	v->abi->rip = target;
	uint64_t f =
	    cpu_rflags(v) & ~(CPU_RFLAGS_TF | CPU_RFLAGS_NT | CPU_RFLAGS_RF | CPU_RFLAGS_VM);
	if (type == 0xe)
		f &= ~CPU_RFLAGS_IF;
	cpu_set_rflags(v, f);
	if (ev->vector == CPU_EXC_NMI && ev->kind == CPU_EV_EXTERNAL)
		v->nmi_blocked = true;
	v->halted = false;
	v->shadow = false;
	return true;
}

static enum bt_status cpu_triple_fault(struct vcpu *v)
{
	v->stop = CPU_STOP_TRIPLE_FAULT;
	bt_err(LOG_CPU, "cpu: triple fault at rip %#llx: the VM stops",
	       (unsigned long long)v->abi->rip);
	/* the register dump goes where the logs go (bt_log_to) */
	char *dump = NULL;
	size_t dump_len = 0;
	FILE *m = open_memstream(&dump, &dump_len);
	if (m) {
		cpu_dump(v, m);
		fclose(m);
		bt_err(LOG_CPU, "cpu: state at the triple fault:\n%s", dump ? dump : "");
		free(dump);
	}
	cpu_update_irq_request(v);
	return BT_ERR_GUEST;
}

/* insn_rip: the instruction that raised a software interrupt (int n, int3,
 * into, int1), or NULL.  A fault while delivering it is a fault of that
 * instruction: RIP goes back to it (SDM INT n: "#GP(vector*8+2) ... the
 * saved RIP points to the INT instruction"). */
static enum bt_status deliver(struct vcpu *v, uint8_t vector, enum cpu_event_kind kind,
			      bool has_error, uint32_t error_code, const gva_t *insn_rip)
{
	if (v->stop)
		return BT_ERR_GUEST;
	/* whether an error code is pushed is the architecture's decision */
	bool push = (kind == CPU_EV_FAULT || kind == CPU_EV_TRAP) && exc_has_error(vector);
	struct cpu_event ev = {vector, kind, push, push && has_error ? error_code : 0};
	for (unsigned depth = 0; depth < 8; depth++) {
		v->exc.pending = false;
		if (deliver_once(v, &ev)) {
			v->stats.delivered[ev.vector]++;
			bt_debug(LOG_CPU, "cpu: delivered vector %u (kind %d) -> %#llx cpl %u",
				 ev.vector, ev.kind, (unsigned long long)v->abi->rip, v->cpl);
			return BT_OK;
		}
		struct cpu_exc f = v->exc;
		v->exc.pending = false;
		if (depth == 0 && insn_rip)
			v->abi->rip = *insn_rip;
		bt_debug(LOG_CPU, "cpu: vector %u raised vector %u (err %#x) while delivering",
			 ev.vector, f.vector, f.error);
		if (f.vector == CPU_EXC_PF)
			v->cr2 = f.cr2;
		else if (f.has_error && ev.kind != CPU_EV_SOFTWARE)
			f.error |= 1; /* EXT */
		bool first_exc = ev.kind == CPU_EV_FAULT || ev.kind == CPU_EV_TRAP;
		if (first_exc && ev.vector == CPU_EXC_DF)
			return cpu_triple_fault(v);
		enum exc_class c1 = exc_class(ev.vector, ev.kind);
		enum exc_class c2 = exc_class(f.vector, CPU_EV_FAULT);
		if ((c1 == EXC_CONTRIB && c2 == EXC_CONTRIB) ||
		    (c1 == EXC_PAGE && c2 != EXC_BENIGN)) {
			v->stats.double_faults++;
			ev = (struct cpu_event){CPU_EXC_DF, CPU_EV_FAULT, true, 0};
		} else {
			ev = (struct cpu_event){f.vector, CPU_EV_FAULT, f.has_error, f.error};
		}
	}
	return cpu_triple_fault(v);
}

enum bt_status cpu_deliver(struct vcpu *v, uint8_t vector, enum cpu_event_kind kind, bool has_error,
			   uint32_t error_code)
{
	if (!v)
		return BT_ERR_INVALID;
	return deliver(v, vector, kind, has_error, error_code, NULL);
}

enum bt_status cpu_deliver_insn(struct vcpu *v, uint8_t vector, enum cpu_event_kind kind,
				gva_t insn_rip)
{
	return deliver(v, vector, kind, false, 0, &insn_rip);
}

enum bt_status cpu_deliver_pf(struct vcpu *v, gva_t addr, uint32_t error_code)
{
	if (!v)
		return BT_ERR_INVALID;
	v->cr2 = addr;
	return cpu_deliver(v, CPU_EXC_PF, CPU_EV_FAULT, true, error_code);
}

enum bt_status cpu_deliver_exc(struct vcpu *v, enum cpu_outcome *out)
{
	if (v->exc.pending) {
		struct cpu_exc e = v->exc;
		v->exc.pending = false;
		if (e.vector == CPU_EXC_PF)
			v->cr2 = e.cr2;
		enum bt_status s = cpu_deliver(v, e.vector, CPU_EV_FAULT, e.has_error, e.error);
		if (s == BT_ERR_GUEST) {
			*out = CPU_OUT_STOP;
			return BT_OK;
		}
		BT_TRY(s);
	}
	*out = cpu_run_outcome(v);
	return BT_OK;
}

void cpu_update_irq_request(struct vcpu *v)
{
	bool req =
	    !v->stop && !v->shadow && v->plat.intr_pending && v->plat.intr_pending(v->plat.opaque);
	/* atomic: the host timer's handler sets VCPU_IRQ_FORCE in the same word
	 * at any moment, and a lost request would delay --timeout and the
	 * guest's timer by a tick; no locked write when the bit is already
	 * right (every emulated instruction asks) */
	bool now = (__atomic_load_n(&v->abi->irq, __ATOMIC_RELAXED) & VCPU_IRQ_REQ) != 0;
	if (req == now)
		return;
	if (req)
		__atomic_or_fetch(&v->abi->irq, (uint16_t)VCPU_IRQ_REQ, __ATOMIC_RELAXED);
	else
		__atomic_and_fetch(&v->abi->irq, (uint16_t)~VCPU_IRQ_REQ, __ATOMIC_RELAXED);
}

enum bt_status cpu_check_interrupts(struct vcpu *v, enum cpu_outcome *out)
{
	if (!v || !out)
		return BT_ERR_INVALID;
	if (v->stop) {
		*out = CPU_OUT_STOP;
		return BT_OK;
	}
	if (v->shadow && v->abi->rip != v->shadow_rip)
		v->shadow = false;
	if (cpu_if(v) && !v->shadow && v->plat.intr_pending &&
	    v->plat.intr_pending(v->plat.opaque)) {
		uint8_t vec = v->plat.intr_ack(v->plat.opaque);
		v->stats.irqs++;
		v->halted = false;
		enum bt_status s = cpu_deliver(v, vec, CPU_EV_EXTERNAL, false, 0);
		if (s == BT_ERR_GUEST) {
			*out = CPU_OUT_STOP;
			return BT_OK;
		}
		BT_TRY(s);
	}
	if (v->halted && !cpu_if(v)) {
		v->stop = CPU_STOP_HALT_IF0;
		bt_info(LOG_CPU, "cpu: hlt with interrupts disabled at rip %#llx: the VM stops",
			(unsigned long long)v->abi->rip);
	}
	cpu_update_irq_request(v);
	if (v->stop)
		*out = CPU_OUT_STOP;
	else if (v->halted)
		*out = CPU_OUT_HALT;
	else
		*out = cpu_run_outcome(v);
	return BT_OK;
}
