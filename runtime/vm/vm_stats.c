/* --stats: what ran from where, what it cost, as text or JSON. */
#include <inttypes.h>

#include "kmod/kmod.h"
#include "pretrans/base/text.h"
#include "runtime/vm/vm_int.h"

static const char *const phase_names[VM_NPHASES] = {"translate", "database", "run", "emulate",
						    "devices",	 "idle",     "user"};

/* enum vm_miss, for --stats (docs/xlat.md "The inline probes' hit rate") */
static const char *const miss_names[VM_NMISS] = {"cross", "user",     "perm",
						 "empty", "conflict", "mmio"};

void vm_print_stats(struct vm *vm, FILE *f, bool json, int exit_status)
{
	struct tcache_stats tc;
	struct mmu_stats mm;
	tcache_get_stats(vm->tc, &tc);
	mmu_get_stats(&vm->mmu, &mm);
	const struct vm_stats *s = &vm->st;
	uint64_t tlb_total = mm.tlb_hits + mm.tlb_misses;
	double hit = tlb_total ? 100.0 * (double)mm.tlb_hits / (double)tlb_total : 0.0;
	/* inline probes: every one run is counted with --count-probes only;
	 * those that missed are the VCPU_CO_MEM call-outs (always counted) */
	uint64_t probes = vm->tcv.abi->probes, slow = vm->tcv.mem_slow;
	double inline_hit =
	    probes ? 100.0 * (double)(probes > slow ? probes - slow : 0) / (double)probes : 0.0;
	double ns[VM_NPHASES];
	for (unsigned p = 0; p < VM_NPHASES; p++)
		ns[p] = vm_ticks_to_ns(vm, s->ticks[p]);
	double rate =
	    ns[VM_PH_TRANSLATE] > 0 ? (double)s->translated * 1e9 / ns[VM_PH_TRANSLATE] : 0.0;

	const struct ureloc_stats *us = ureloc_stats(vm->ureloc);
	struct kmod_bind_stats ks = {0};
	if (vm_kmod_stats(vm))
		ks = *vm_kmod_stats(vm);
	struct kmod_bind_stats uds = {0};
	if (vm_udb_stats(vm))
		uds = *vm_udb_stats(vm);
	if (json) {
		fprintf(
		    f, "{\"schema\":\"%s\",\"stop\":\"%s\",\"exit_status\":%d,\"vm_status\":%d,",
		    VM_STATS_SCHEMA, vm_stop_str(vm->res.stop), exit_status, vm->res.exit_status);
		fprintf(f,
			"\"blocks\":{\"from_db\":%" PRIu64 ",\"db_predicted\":%" PRIu64
			",\"db_stale\":%" PRIu64 ",\"db_verified\":%" PRIu64
			",\"translated\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"learned\":%" PRIu64
			",\"chains\":%" PRIu64 ",\"code_bytes\":%" PRIu64
			",\"kmod_blocks_from_db\":%" PRIu64 ",\"kmod_blocks_translated\":%" PRIu64
			",\"kmod_fp_matches\":%" PRIu64 ",\"kmod_placement_hits\":%" PRIu64
			",\"kmod_packs_inflated\":%" PRIu64 ",\"kmod_packs_evicted\":%" PRIu64
			",\"kmod_pack_bytes_peak\":%" PRIu64 "},",
			s->db_used, s->db_predicted, s->db_stale, s->db_verified, s->translated,
			s->refused, s->learned, tc.chains, tc.code_bytes, s->kmod_from_db,
			s->kmod_translated, ks.fp_matches, ks.placement_hits, ks.packs_inflated,
			ks.packs_evicted, ks.peak_bytes);
		fprintf(f, "\"exits\":{");
		for (unsigned k = 1; k < XLAT_NEXIT_KINDS; k++)
			fprintf(f, "%s\"%s\":%" PRIu64, k > 1 ? "," : "",
				xlat_exit_kind_str((enum xlat_exit_kind)k), s->exits[k]);
		fprintf(f,
			"},\"fast_syscalls\":%" PRIu64 ",\"fast_sysrets\":%" PRIu64
			",\"faults\":%" PRIu64 ",\"host_signals\":%" PRIu64 ",\"irqs\":%" PRIu64
			",\"halts\":%" PRIu64 ",\"idle_late\":{\"waits\":%" PRIu64
			",\"ns\":%" PRIu64 "},\"host_timer\":{\"early\":%" PRIu64
			",\"moved\":%" PRIu64 "},",
			s->fx_syscalls, s->fx_sysrets, s->faults, s->host_signals, s->irqs,
			s->halts, s->idle_waits, s->idle_late_ns, s->timer_early, s->timer_moved);
		fprintf(f,
			"\"smc\":{\"pages\":%" PRIu64 ",\"blocks\":%" PRIu64
			"},\"mapping_invalidations\":%" PRIu64
			",\"mapping_epochs\":{\"epochs\":%" PRIu64 ",\"pages\":%" PRIu64
			",\"walks\":%" PRIu64 "},",
			s->smc_pages, s->smc_blocks, s->mapping_flushes, s->epochs, s->epoch_pages,
			s->epoch_walks);
		fprintf(f,
			"\"tlb\":{\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"fills\":%" PRIu64
			",\"flushes\":%" PRIu64 ",\"hit_rate\":%.2f,\"pcid_switches\":%" PRIu64
			",\"pcid_kept\":%" PRIu64 ",\"pcid_restored\":%" PRIu64
			",\"uibl_kept\":%" PRIu64 "},",
			mm.tlb_hits, mm.tlb_misses, mm.tlb_fills,
			mm.flush_all + mm.flush_nonglobal + mm.invlpg, hit, mm.pcid_switches,
			mm.pcid_kept, mm.pcid_restored, tc.uibl_kept);
		fprintf(f, "\"probes\":{\"slow_paths\":%" PRIu64, slow);
		for (unsigned k = 0; k < VM_NMISS; k++)
			fprintf(f, ",\"miss_%s\":%" PRIu64, miss_names[k], s->probe_miss[k]);
		/* of the misses, those the call-out's fast path served (no FPU
		 * save, no walk: docs/mmu.md "The second-level TLB") */
		for (unsigned k = 0; k < VM_NMISS; k++)
			fprintf(f, ",\"fast_%s\":%" PRIu64, miss_names[k], s->l2_served[k]);
		fprintf(f,
			",\"fast_l2_hits\":%" PRIu64 ",\"fast_smap_hits\":%" PRIu64
			",\"fast_large_hits\":%" PRIu64,
			mm.l2_hits, mm.l2_smap_hits, mm.l2_large_hits);
		if (vm->cfg.count_probes)
			fprintf(f, ",\"counted\":%" PRIu64 ",\"inline_hit_rate\":%.2f", probes,
				inline_hit);
		fprintf(f, "},");
		/* string call-outs, and those their fast path completed */
		fprintf(f,
			"\"strings\":{\"callouts\":%" PRIu64 ",\"fast\":%" PRIu64
			",\"fast_l2_pages\":%" PRIu64 "},",
			vm->tcv.str_calls, vm->tcv.str_fast, s->str_l2_pages);
		fprintf(f, "\"ns\":{");
		for (unsigned p = 0; p < VM_NPHASES; p++)
			fprintf(f, "%s\"%s\":%.0f", p ? "," : "", phase_names[p], ns[p]);
		fprintf(f, "},\"translate_blocks_per_s\":%.0f", rate);
		if (vm->user) {
			struct user_stats u;
			user_get_stats(vm->user, &u);
			fprintf(f,
				",\"user\":{\"entries\":%" PRIu64 ",\"syscalls\":%" PRIu64
				",\"exceptions\":%" PRIu64 ",\"kicks\":%" PRIu64
				",\"host_faults\":%" PRIu64 ",\"maps\":%" PRIu64
				",\"guest_pf\":%" PRIu64 ",\"prefaults\":%" PRIu64
				",\"drops\":%" PRIu64 ",\"pt_writes\":%" PRIu64
				",\"flushes\":%" PRIu64 ",\"stubs_spawned\":%" PRIu64
				",\"stops\":%" PRIu64 ",\"hostcalls\":%" PRIu64
				",\"ptrace_calls\":%" PRIu64 ",\"mapped_ahead\":%" PRIu64
				",\"batches\":%" PRIu64 ",\"calls_saved\":%" PRIu64
				",\"pool_spawned\":%" PRIu64 ",\"pool_taken\":%" PRIu64 "}",
				u.enters, u.syscalls, u.exceptions, u.kicks, u.faults, u.maps,
				u.guest_pf, u.prefaults, u.invlpg, u.pt_writes, u.flushes,
				u.stubs_spawned, u.stops, u.hostcalls, u.ptrace_calls, u.around,
				u.batches, u.calls_saved, u.pool_spawned, u.pool_taken);
		}
		const struct vm_policy_stats *ps = &vm->policy.st;
		fprintf(f,
			",\"user_mode\":{\"config\":\"%s\",\"switches_to_direct\":%" PRIu64
			",\"switches_to_translated\":%" PRIu64 ",\"stays_direct\":%" PRIu64
			",\"stays_translated\":%" PRIu64 ",\"ns_direct\":%" PRIu64
			",\"ns_translated\":%" PRIu64 ",\"trials\":%" PRIu64
			",\"trials_won\":%" PRIu64 ",\"trials_skipped\":%" PRIu64
			",\"warmup_stays\":%" PRIu64 ",\"shifts\":%" PRIu64
			",\"fidelity_triggers\":%" PRIu64 ",\"fallbacks\":%" PRIu64
			",\"host_feature_fallbacks\":%" PRIu64 ",\"retries\":%" PRIu64
			",\"sensitive_pages_run_translated\":%" PRIu64
			",\"host_crossing_ns\":%" PRIu64 ",\"blocks_translated\":%" PRIu64
			",\"blocks_relocated\":%" PRIu64 ",\"blocks_reloc_verified\":%" PRIu64
			",\"blocks_reloc_differ\":%" PRIu64 ",\"chains_refused\":%" PRIu64
			",\"steps\":%" PRIu64 "}",
			vm_user_cfg_str(vm->policy.cfg), ps->switches[VM_UMODE_DIRECT],
			ps->switches[VM_UMODE_TRANSLATED], ps->stays[VM_UMODE_DIRECT],
			ps->stays[VM_UMODE_TRANSLATED], ps->ns[VM_UMODE_DIRECT],
			ps->ns[VM_UMODE_TRANSLATED], ps->trials, ps->trials_won, ps->trials_skipped,
			ps->warmups, ps->shifts, ps->fidelity_triggers, ps->fallbacks,
			s->user_host_features, s->user_retries, s->user_sensitive, ps->crossing_ns,
			s->user_translated, s->user_relocated, s->user_reloc_verified,
			s->user_reloc_differ, tc.user_chain_refused, s->steps);
		fprintf(f,
			",\"user_reloc\":{\"templates_kept\":%" PRIu64 ",\"replaced\":%" PRIu64
			",\"evicted\":%" PRIu64 ",\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64
			",\"hits\":%" PRIu64 ",\"no_template\":%" PRIu64 ",\"stale\":%" PRIu64
			",\"unreadable\":%" PRIu64 ",\"refused_bytes\":%" PRIu64
			",\"refused_form\":%" PRIu64 ",\"refused_page\":%" PRIu64 ",\"ns\":%.0f}",
			us->added, us->replaced, us->evicted, us->entries, us->bytes, us->hits,
			us->none, us->stale, us->unread, us->refused[XLAT_TMPL_BYTES],
			us->refused[XLAT_TMPL_FORM], us->refused[XLAT_TMPL_PAGE],
			vm_ticks_to_ns(vm, s->user_reloc_ticks));
		fprintf(f,
			",\"user_db\":{\"blocks_from_db\":%" PRIu64 ",\"blocks_verified\":%" PRIu64
			",\"blocks_differ\":%" PRIu64
			",\"templates_indexed\":%zu,\"fp_matches\":%" PRIu64
			",\"placement_hits\":%" PRIu64 ",\"packs_inflated\":%" PRIu64
			",\"pack_bytes\":%" PRIu64 ",\"templates_stored\":%" PRIu64 ",\"ns\":%.0f}",
			s->user_from_db, s->user_db_verified, s->user_db_differ, vm_udb_indexed(vm),
			uds.fp_matches, uds.placement_hits, uds.packs_inflated, uds.inflated_bytes,
			s->user_stored, vm_ticks_to_ns(vm, s->user_db_ticks));
		fprintf(f, "}\n");
		return;
	}
	fprintf(f, "btvm: stopped: %s (exit status %d)\n", vm_stop_str(vm->res.stop), exit_status);
	fprintf(f,
		"btvm: blocks: %s from the database (%s predicted, %s stale, %s re-verified), %s "
		"translated at run time (%s refused), %s learned\n",
		BT_N(s->db_used), BT_N(s->db_predicted), BT_N(s->db_stale), BT_N(s->db_verified),
		BT_N(s->translated), BT_N(s->refused), BT_N(s->learned));
	if (vm->kmod || s->kmod_translated)
		fprintf(
		    f,
		    "btvm: module blocks: %s from the database's templates, %s translated at run "
		    "time; %s packs inflated (%s bytes, peak %s resident, %s evicted)\n",
		    BT_N(s->kmod_from_db), BT_N(s->kmod_translated), BT_N(ks.packs_inflated),
		    BT_N(ks.inflated_bytes), BT_N(ks.peak_bytes), BT_N(ks.packs_evicted));
	fprintf(f, "btvm: code cache: %s bytes, %s chains, %s flushes\n", BT_N(tc.code_bytes),
		BT_N(tc.chains), BT_N(tc.flushes));
	fprintf(f, "btvm: exits:");
	for (unsigned k = 1; k < XLAT_NEXIT_KINDS; k++)
		fprintf(f, " %s=%s", xlat_exit_kind_str((enum xlat_exit_kind)k), BT_N(s->exits[k]));
	fprintf(f, "; fast system calls %s, returns %s (not exits)\n", BT_N(s->fx_syscalls),
		BT_N(s->fx_sysrets));
	fprintf(f,
		"btvm: guest faults from translated code %s (host signals %s), interrupts %s, hlt "
		"waits %s (%s woke after a device deadline, %.1f us late on average)\n",
		BT_N(s->faults), BT_N(s->host_signals), BT_N(s->irqs), BT_N(s->halts),
		BT_N(s->idle_waits),
		s->idle_waits ? (double)s->idle_late_ns / (double)s->idle_waits / 1e3 : 0.0);
	fprintf(f,
		"btvm: host timer: %s signals found a stub before its deadline, %s direct stays "
		"timed to their deadline\n",
		BT_N(s->timer_early), BT_N(s->timer_moved));
	fprintf(f,
		"btvm: self-modifying code: %s page writes killed %s blocks; mapping changes "
		"killed %s\n",
		BT_N(s->smc_pages), BT_N(s->smc_blocks), BT_N(s->mapping_flushes));
	fprintf(f, "btvm: mapping epochs %s: %s code pages checked, %s with a page walk\n",
		BT_N(s->epochs), BT_N(s->epoch_pages), BT_N(s->epoch_walks));
	fprintf(f, "btvm: soft-TLB (slow path): %s hits, %s misses (%.1f%% hit), %s fills\n",
		BT_N(mm.tlb_hits), BT_N(mm.tlb_misses), hit, BT_N(mm.tlb_fills));
	if (vm->cfg.count_probes)
		fprintf(
		    f,
		    "btvm: inline soft-MMU probes: %s run, %s missed to the slow path (%.2f%% hit "
		    "inline)\n",
		    BT_N(probes), BT_N(slow), inline_hit);
	else
		fprintf(f,
			"btvm: inline soft-MMU probes that missed to the slow path: %s "
			"(--count-probes: how many ran)\n",
			BT_N(slow));
	fprintf(f, "btvm: inline probe misses by what their TLB slot held:");
	for (unsigned k = 0; k < VM_NMISS; k++)
		fprintf(f, " %s=%s", miss_names[k], BT_N(s->probe_miss[k]));
	fprintf(f, "\n");
	fprintf(f, "btvm: ... of them served by the call-out's fast path (no FPU save, no walk):");
	for (unsigned k = 0; k < VM_NMISS; k++)
		fprintf(f, " %s=%s", miss_names[k], BT_N(s->l2_served[k]));
	fprintf(f, " (second-level TLB %s, its SMAP array %s, its large pages %s)\n",
		BT_N(mm.l2_hits), BT_N(mm.l2_smap_hits), BT_N(mm.l2_large_hits));
	fprintf(f,
		"btvm: string call-outs: %s, %s of them completed by their fast path (no FPU "
		"save; %s pages found behind the first-level TLB)\n",
		BT_N(vm->tcv.str_calls), BT_N(vm->tcv.str_fast), BT_N(s->str_l2_pages));
	if (mm.pcid_switches)
		fprintf(f,
			"btvm: PCIDs: %s switches, %s kept their TLB (%s entries back), %s their "
			"user IBL entries\n",
			BT_N(mm.pcid_switches), BT_N(mm.pcid_kept), BT_N(mm.pcid_restored),
			BT_N(tc.uibl_kept));
	fprintf(f, "btvm: time (ms):");
	for (unsigned p = 0; p < VM_NPHASES; p++)
		fprintf(f, " %s=%.1f", phase_names[p], ns[p] / 1e6);
	fprintf(f, "; translation rate %s blocks/s\n", BT_N((uint64_t)rate));
	if (vm->user)
		user_print_stats(vm->user, f);
	const struct vm_policy_stats *ps = &vm->policy.st;
	fprintf(f,
		"btvm: user mode %s: direct %s stays %.1f ms, translated %s stays %.1f ms; "
		"switches to direct %s, to translated %s (%s trials, %s changed the mode, %s "
		"skipped: too little user code per stay; %s direct stays of warm-up not "
		"measured, %s shifts); fidelity triggers %s, fallbacks to "
		"direct %s, faults re-run translated %s, sensitive code pages run translated "
		"%s, host crossing %.1f us (measured); %s user blocks translated, %s chains "
		"refused, %s instructions run one at a time (TF, AC, NT)\n",
		vm_user_cfg_str(vm->policy.cfg), BT_N(ps->stays[VM_UMODE_DIRECT]),
		(double)ps->ns[VM_UMODE_DIRECT] / 1e6, BT_N(ps->stays[VM_UMODE_TRANSLATED]),
		(double)ps->ns[VM_UMODE_TRANSLATED] / 1e6, BT_N(ps->switches[VM_UMODE_DIRECT]),
		BT_N(ps->switches[VM_UMODE_TRANSLATED]), BT_N(ps->trials), BT_N(ps->trials_won),
		BT_N(ps->trials_skipped), BT_N(ps->warmups), BT_N(ps->shifts),
		BT_N(ps->fidelity_triggers), BT_N(ps->fallbacks), BT_N(s->user_retries),
		BT_N(s->user_sensitive), (double)ps->crossing_ns / 1e3, BT_N(s->user_translated),
		BT_N(tc.user_chain_refused), BT_N(s->steps));
	fprintf(f,
		"btvm: user blocks relocated from templates: %s (%s re-verified, %s differed); "
		"templates %s kept, %s evicted, %s in %s bytes now; misses with no template %s, "
		"stale %s, refused %s (bytes %s, form %s, page %s); %.1f ms (of translate)\n",
		BT_N(s->user_relocated), BT_N(s->user_reloc_verified), BT_N(s->user_reloc_differ),
		BT_N(us->added), BT_N(us->evicted), BT_N(us->entries), BT_N(us->bytes),
		BT_N(us->none), BT_N(us->stale),
		BT_N(us->refused[XLAT_TMPL_BYTES] + us->refused[XLAT_TMPL_FORM] +
		     us->refused[XLAT_TMPL_PAGE]),
		BT_N(us->refused[XLAT_TMPL_BYTES]), BT_N(us->refused[XLAT_TMPL_FORM]),
		BT_N(us->refused[XLAT_TMPL_PAGE]), vm_ticks_to_ns(vm, s->user_reloc_ticks) / 1e6);
	if (vm->udb || s->user_stored)
		fprintf(f,
			"btvm: user blocks from the database's templates: %s (%s re-verified, %s "
			"differed) of %s indexed (%s fingerprint matches, %s where a placement "
			"said; %s bytes inflated; %.1f ms, of database); %s templates stored by "
			"--learn\n",
			BT_N(s->user_from_db), BT_N(s->user_db_verified), BT_N(s->user_db_differ),
			BT_N(vm_udb_indexed(vm)), BT_N(uds.fp_matches), BT_N(uds.placement_hits),
			BT_N(uds.inflated_bytes), vm_ticks_to_ns(vm, s->user_db_ticks) / 1e6,
			BT_N(s->user_stored));
}
