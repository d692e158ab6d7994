# tests/hostile: hostile guest kernels (tests/guests/hostile-gen.py: one seed,
# one reproducible ring-0 guest of random privileged instructions, garbage
# descriptor tables, interrupt storms and jumps into MMIO / unmapped memory)
# run under btvm; a signal, a status other than odd/4/124, a "bug" message
# or a hang is a finding (docs/security.md "Hostile guest kernels").
#
# Seeds 1..150 are fixed, so the step is reproducible; nothing is excluded
# (the generator's --exclude is for isolating a future finding, never an
# outcome).  The two findings of the first long run are fixed: branch-ones
# (an indirect branch to 0xffffffffffffffff killed btvm: VCPU_IBL_EMPTY,
# tests/guests/tiny.S TINY_ONES) and host-gp (a #GP the host raises in
# translated code is the guest's #GP(0): test_vm's gp guest; a guest %rsp
# that is not canonical stops the VM as a documented limit, hostile-run.py
# KNOWN_LIMITS).  The long run is tests/bench/hostile-long.sh.
CHECK_STEPS += check-hostile-guest
.PHONY: check-hostile-guest
check-hostile-guest: $(BUILD)/bin/btvm
	$(Q)python3 tests/hostile/hostile-run.py --build $(BUILD) --seeds 150 --jobs 2 \
		--timeout 1 --mem 32M
