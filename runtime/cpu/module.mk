# runtime/cpu: the virtual CPU (state, CPUID, MSRs, event delivery, emulation
# of privileged instructions).  See docs/cpu.md.
$(eval $(call add_lib,btcpu,$(wildcard runtime/cpu/*.c),zydis))
