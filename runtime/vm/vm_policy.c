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
	/* docs/user-mode.md, "the policy": a trial every 8 windows costs at
	 * most 1/9 of the time in the worse mode */
	p->exploit_stays = 256;
	p->exploit_max = 16384;
	p->trial_stays = 32;
	p->fidelity_stays = 4096;
	p->sensitive_stays = 16;
	/* the direct crossing measured by tests/bench/linux-user-bench.sh:
	 * a getppid round trip 29.6-32.0 us direct, 1.2-1.5 us translated */
	p->trial_min_user_ns = 30000;
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
	if (p->params.trial_stays == 0)
		p->params.trial_stays = 1;
	if (p->params.exploit_stays < p->params.trial_stays)
		p->params.exploit_stays = p->params.trial_stays;
	if (p->params.exploit_max < p->params.exploit_stays)
		p->params.exploit_max = p->params.exploit_stays;
}

/* The slot of address space cr3, or NULL; no use recorded. */
static struct vm_policy_as *find(struct vm_policy *p, uint64_t cr3)
{
	if (cr3 == 0)
		return NULL;
	if (p->last && p->last->cr3 == cr3)
		return p->last;
	for (unsigned i = 0; i < VM_POLICY_SLOTS; i++)
		if (p->as[i].cr3 == cr3)
			return p->last = &p->as[i];
	return NULL;
}

static struct vm_policy_as *slot(struct vm_policy *p, uint64_t cr3)
{
	p->clock++;
	struct vm_policy_as *a = find(p, cr3);
	if (a) {
		a->last_use = p->clock;
		return a;
	}
	struct vm_policy_as *victim = &p->as[0];
	for (unsigned i = 1; i < VM_POLICY_SLOTS; i++)
		if (p->as[i].last_use < victim->last_use)
			victim = &p->as[i];
	memset(victim, 0, sizeof(*victim));
	victim->cr3 = cr3 ? cr3 : 1; /* 0 marks a free slot */
	victim->last_use = p->clock;
	victim->mode = victim->chosen = VM_UMODE_TRANSLATED;
	victim->exploit = victim->left = p->params.exploit_stays;
	return p->last = victim;
}

static void set_mode(struct vm_policy *p, struct vm_policy_as *a, enum vm_umode m)
{
	if (a->mode != m)
		p->st.switches[m]++;
	a->mode = (uint8_t)m;
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
	return (enum vm_umode)slot(p, cr3)->mode;
}

static bool compute(const struct vm_policy_window *w)
{
	return w->stays && w->irq * 2 >= w->stays;
}

/* The end of a trial: which mode runs next. */
static enum vm_umode decide(const struct vm_policy_as *a)
{
	enum vm_umode cur = (enum vm_umode)a->chosen;
	enum vm_umode other = cur == VM_UMODE_DIRECT ? VM_UMODE_TRANSLATED : VM_UMODE_DIRECT;
	const struct vm_policy_window *wc = &a->done[cur], *wo = &a->done[other];
	if (!wc->stays || !wo->stays)
		return cur;
	if (compute(wc) || compute(wo))
		return VM_UMODE_DIRECT;
	/* mean costs, compared by cross-multiplying; the current mode keeps
	 * its place unless the other is more than 1/8 cheaper */
	uint64_t cc = wc->ns / wc->stays, co = wo->ns / wo->stays;
	return co + co / 8 < cc ? other : cur;
}

/* Can a trial of direct mode pay after this translated window? */
static bool direct_may_pay(const struct vm_policy *p, const struct vm_policy_as *a)
{
	const struct vm_policy_window *w = a->done[VM_UMODE_TRANSLATED].stays
					       ? &a->done[VM_UMODE_TRANSLATED]
					       : &a->cur[VM_UMODE_TRANSLATED];
	if (!p->params.trial_min_user_ns || !w->stays || compute(w) ||
	    a->irq_run >= VM_POLICY_IRQ_RUN)
		return true;
	uint64_t crossing = p->st.crossing_ns ? p->st.crossing_ns : p->params.trial_min_user_ns;
	/* half: translated user code does not run the kernel's share of a
	 * stay as fast as direct mode leaves it (its soft-TLB and code cache
	 * entries compete with the kernel's); in the Linux benchmark's pipes
	 * translated stays ran 13-19 us of user code against a measured
	 * crossing of 9-18 us, and direct mode was still 1.3-1.6x cheaper a
	 * stay (docs/user-mode.md) */
	return 2 * (w->user_ns / w->stays) >= crossing;
}

/* A direct stay's user time: at least one host crossing (a ptrace stop and
 * resume), so the least of many is the crossing on this host (docs/
 * user-mode.md: 7 us on one host, 30 on another). */
static void measure_crossing(struct vm_policy *p, uint64_t user_ns)
{
	if (!p->params.trial_min_user_ns || !user_ns)
		return;
	if (!p->xing_n || user_ns < p->xing_min)
		p->xing_min = user_ns;
	if (++p->xing_n >= VM_POLICY_XING_STAYS) {
		p->st.crossing_ns = p->xing_min;
		p->xing_n = 0;
	}
}

/* A full window of the chosen mode during EXPLOIT: the first one after a
 * decision is the reference; one whose mean cost a stay is more than
 * VM_POLICY_SHIFT times it, or less than 1/VM_POLICY_SHIFT of it, means the
 * workload moved (a phase change, or a new program: Linux hands a freed
 * page-table page, and so the CR3, to the next process it starts), so the
 * trial comes at the next stay and E starts over. */
static void check_shift(struct vm_policy *p, struct vm_policy_as *a,
			const struct vm_policy_window *w)
{
	uint64_t mean = w->ns / w->stays;
	if (!a->ref_ns) {
		a->ref_ns = mean ? mean : 1;
		return;
	}
	if (mean <= VM_POLICY_SHIFT * a->ref_ns && mean * VM_POLICY_SHIFT >= a->ref_ns)
		return;
	p->st.shifts++;
	a->ref_ns = 0;
	a->exploit = p->params.exploit_stays;
	if (a->left > 1)
		a->left = 1;
}

void vm_policy_stay(struct vm_policy *p, uint64_t cr3, enum vm_umode m, uint64_t ns,
		    uint64_t user_ns, unsigned flags)
{
	bool by_irq = (flags & VM_POLICY_BY_IRQ) != 0;
	bool warmup = (flags & VM_POLICY_WARMUP) && m == VM_UMODE_DIRECT;
	if ((unsigned)m >= VM_NUMODES)
		return;
	p->st.stays[m]++;
	p->st.ns[m] += ns;
	if (p->cfg != VM_USER_ADAPTIVE)
		return;
	if (m == VM_UMODE_DIRECT)
		measure_crossing(p, user_ns);
	struct vm_policy_as *a = slot(p, cr3);
	if (a->mode != m)
		return; /* a fallback stay: says nothing about the chosen mode */
	struct vm_policy_window *w = &a->cur[m];
	uint32_t n = p->params.trial_stays;
	if (warmup) {
		p->st.warmups++;
		/* a trial waits for stays that measure the mode */
		if (a->trial && a->warm < VM_POLICY_WARMUP_MAX * n) {
			a->warm++;
			return;
		}
	} else {
		w->ns += ns;
		w->user_ns += user_ns;
		w->stays++;
		if (by_irq)
			w->irq++;
		if (w->stays >= n) {
			a->done[m] = *w;
			*w = (struct vm_policy_window){0};
			if (!a->trial && m == a->chosen)
				check_shift(p, a, &a->done[m]);
		}
	}
	a->irq_run = by_irq ? a->irq_run + 1 : 0;
	if (a->fidelity) {
		a->fidelity--;
		return;
	}
	if (!a->trial && m == VM_UMODE_TRANSLATED && a->irq_run >= VM_POLICY_IRQ_RUN && a->left > 1)
		a->left = 1; /* a compute phase: try direct now */
	if (a->left && --a->left)
		return;
	if (!a->trial && a->chosen == VM_UMODE_TRANSLATED && !direct_may_pay(p, a)) {
		p->st.trials_skipped++; /* as a trial that kept the mode */
		a->exploit =
		    a->exploit * 2 < p->params.exploit_max ? a->exploit * 2 : p->params.exploit_max;
		a->left = a->exploit;
		return;
	}
	if (!a->trial) { /* EXPLOIT over: try the other mode */
		a->trial = true;
		a->left = n;
		a->warm = 0;
		a->cur[!a->chosen] = (struct vm_policy_window){0};
		a->done[!a->chosen] = (struct vm_policy_window){0};
		p->st.trials++;
		set_mode(p, a,
			 a->chosen == VM_UMODE_DIRECT ? VM_UMODE_TRANSLATED : VM_UMODE_DIRECT);
		return;
	}
	/* a trial cut short by warm-up decides on the stays it measured */
	enum vm_umode tried = a->chosen == VM_UMODE_DIRECT ? VM_UMODE_TRANSLATED : VM_UMODE_DIRECT;
	if (!a->done[tried].stays && a->cur[tried].stays)
		a->done[tried] = a->cur[tried];
	enum vm_umode next = decide(a);
	if (next != (enum vm_umode)a->chosen) {
		p->st.trials_won++;
		a->exploit = p->params.exploit_stays;
	} else if (a->exploit < p->params.exploit_max) {
		a->exploit =
		    a->exploit * 2 < p->params.exploit_max ? a->exploit * 2 : p->params.exploit_max;
	}
	a->chosen = (uint8_t)next;
	a->trial = false;
	a->ref_ns = 0;
	a->left = a->exploit;
	set_mode(p, a, next);
}

uint32_t vm_policy_budget(struct vm_policy *p, uint64_t cr3)
{
	if (p->cfg == VM_USER_TRANSLATED)
		return UINT32_MAX;
	if (p->cfg != VM_USER_ADAPTIVE)
		return 0;
	/* a query: an address space the policy has not seen yet gets its
	 * first stay through vm_policy_mode, which makes its slot */
	struct vm_policy_as *a = find(p, cr3);
	if (!a || a->mode != VM_UMODE_TRANSLATED || a->trial)
		return 0;
	if (a->fidelity)
		return a->fidelity > 2 ? a->fidelity - 2 : 0;
	/* the stay reported before the first of them counts too */
	return a->left > 2 ? a->left - 2 : 0;
}

bool vm_policy_fidelity(struct vm_policy *p, uint64_t cr3)
{
	return p->cfg != VM_USER_DIRECT && slot(p, cr3)->fidelity != 0;
}

void vm_policy_need_translated(struct vm_policy *p, uint64_t cr3, uint32_t stays)
{
	if (p->cfg == VM_USER_DIRECT)
		return;
	p->st.fidelity_triggers++;
	struct vm_policy_as *a = slot(p, cr3);
	if (!stays)
		stays = p->params.fidelity_stays;
	if (a->fidelity < stays)
		a->fidelity = stays;
	a->chosen = VM_UMODE_TRANSLATED;
	a->trial = false;
	a->exploit = a->left = p->params.exploit_stays;
	set_mode(p, a, VM_UMODE_TRANSLATED);
}
