/* The adaptive user-mode policy (see vm_policy.h for the rules). */
#include "runtime/vm/vm_policy.h"

#include <string.h>

static const char *const cfg_names[] = {"adaptive", "direct", "translated"};

const char *vm_user_cfg_str(enum vm_user_cfg c)
{
	return (unsigned)c < 3 ? cfg_names[c] : "?";
}

bool vm_user_cfg_parse(const char *s, enum vm_user_cfg *out)
{
	for (unsigned i = 0; i < 3; i++)
		if (s && strcmp(s, cfg_names[i]) == 0) {
			*out = (enum vm_user_cfg)i;
			return true;
		}
	return false;
}

const char *vm_umode_str(enum vm_umode m)
{
	return m == VM_UMODE_DIRECT ? "direct" : m == VM_UMODE_TRANSLATED ? "translated" : "?";
}

void vm_policy_params_default(struct vm_policy_params *p)
{
	/* Measured on this project's reference machine (docs/user-mode.md,
	 * "break-even"): see there before changing them. */
	p->direct_cost_ns = 40000;
	p->translated_cost_ns = 1000;
	p->slowdown_x16 = 18;
	p->hysteresis = 2;
	p->min_stays = 16;
	p->fidelity_stays = 4096;
}

void vm_policy_init(struct vm_policy *p, enum vm_user_cfg cfg,
		    const struct vm_policy_params *params)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	if (params)
		p->params = *params;
	else
		vm_policy_params_default(&p->params);
	if (p->params.slowdown_x16 <= 16)
		p->params.slowdown_x16 = 17;
	if (p->params.hysteresis < 1)
		p->params.hysteresis = 1;
	p->direct_cost_ns = p->params.direct_cost_ns;
}

uint64_t vm_policy_break_even_ns(const struct vm_policy *p)
{
	uint64_t cd = p->direct_cost_ns, ct = p->params.translated_cost_ns;
	if (cd <= ct)
		return 0;
	return (cd - ct) * 16 / (p->params.slowdown_x16 - 16);
}

static enum vm_umode initial_mode(const struct vm_policy *p)
{
	/* A new address space starts translated: exec'd programs begin with
	 * the dynamic loader and libc start-up, dense in system calls and
	 * page faults; a compute phase moves it to direct. */
	return p->cfg == VM_USER_DIRECT ? VM_UMODE_DIRECT : VM_UMODE_TRANSLATED;
}

static struct vm_policy_as *slot(struct vm_policy *p, uint64_t cr3)
{
	struct vm_policy_as *victim = &p->as[0];
	p->clock++;
	for (unsigned i = 0; i < VM_POLICY_SLOTS; i++) {
		struct vm_policy_as *a = &p->as[i];
		if (a->cr3 == cr3 && cr3 != 0) {
			a->last_use = p->clock;
			return a;
		}
		if (a->last_use < victim->last_use)
			victim = a;
	}
	memset(victim, 0, sizeof(*victim));
	victim->cr3 = cr3 ? cr3 : 1; /* 0 marks a free slot */
	victim->last_use = p->clock;
	victim->mode = (uint8_t)initial_mode(p);
	return victim;
}

static void set_mode(struct vm_policy *p, struct vm_policy_as *a, enum vm_umode m)
{
	if (a->mode == m)
		return;
	a->mode = (uint8_t)m;
	a->stays = 0;
	p->st.switches[m]++;
}

enum vm_umode vm_policy_mode(struct vm_policy *p, uint64_t cr3, bool cannot_translate)
{
	if (p->cfg == VM_USER_DIRECT)
		return VM_UMODE_DIRECT;
	if (cannot_translate) {
		p->st.fallbacks++;
		return VM_UMODE_DIRECT;
	}
	if (p->cfg == VM_USER_TRANSLATED)
		return VM_UMODE_TRANSLATED;
	struct vm_policy_as *a = slot(p, cr3);
	if (a->fidelity)
		set_mode(p, a, VM_UMODE_TRANSLATED);
	return (enum vm_umode)a->mode;
}

void vm_policy_stay(struct vm_policy *p, uint64_t cr3, enum vm_umode m, uint64_t ns,
		    bool kicked)
{
	if ((unsigned)m >= VM_NUMODES)
		return;
	p->st.stays[m]++;
	p->st.ns[m] += ns;
	if (m == VM_UMODE_DIRECT && !kicked && ns < p->direct_cost_ns)
		p->direct_cost_ns = ns; /* a direct stay is at least one boundary */
	if (p->cfg != VM_USER_ADAPTIVE)
		return;
	struct vm_policy_as *a = slot(p, cr3);
	if (a->mode != m)
		return; /* a fallback stay: says nothing about the chosen mode */
	const struct vm_policy_params *pp = &p->params;
	uint64_t be = vm_policy_break_even_ns(p);
	/* native-equivalent length of this stay */
	uint64_t native;
	if (m == VM_UMODE_TRANSLATED)
		native = ns * 16 / pp->slowdown_x16;
	else
		native = ns > p->direct_cost_ns ? ns - p->direct_cost_ns : 0;
	if (kicked && native < be * pp->hysteresis * 2)
		native = be * pp->hysteresis * 2;
	if (a->stays == 0)
		a->avg_ns = native;
	else
		a->avg_ns = a->avg_ns - a->avg_ns / 8 + native / 8;
	if (a->stays < UINT32_MAX)
		a->stays++;
	if (a->fidelity) {
		a->fidelity--;
		return;
	}
	if (a->stays < pp->min_stays)
		return;
	if (m == VM_UMODE_DIRECT && a->avg_ns < be / pp->hysteresis)
		set_mode(p, a, VM_UMODE_TRANSLATED);
	else if (m == VM_UMODE_TRANSLATED && a->avg_ns > be * pp->hysteresis)
		set_mode(p, a, VM_UMODE_DIRECT);
}

void vm_policy_need_translated(struct vm_policy *p, uint64_t cr3)
{
	if (p->cfg == VM_USER_DIRECT)
		return;
	p->st.fidelity_triggers++;
	struct vm_policy_as *a = slot(p, cr3);
	a->fidelity = p->params.fidelity_stays;
	set_mode(p, a, VM_UMODE_TRANSLATED);
}
