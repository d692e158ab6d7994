# tests/reuse: `pretrans build --reuse` (docs/diff.md, "reuse").

# The test guest kernel relinked with its last two objects swapped: every
# function before them keeps its address and bytes, the rest move.
GK_REUSE_N := $(words $(GK_OBJS))
$(BUILD)/guests/kernel-relinked.elf: $(GK_OBJS) guests/kernel/kernel.ld
	@mkdir -p $(@D)
	@echo "  KLD     $@"
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack \
		-T guests/kernel/kernel.ld -o $@ \
		$(wordlist 1,$(shell echo $$(($(GK_REUSE_N) - 2))),$(GK_OBJS)) \
		$(word $(GK_REUSE_N),$(GK_OBJS)) $(word $(shell echo $$(($(GK_REUSE_N) - 1))),$(GK_OBJS))

# The test guest kernel with its first object (alt_sites.o, the patch
# sites of .altinstructions) linked last: every function moves, the
# predicted-patching versions with them.
$(BUILD)/guests/kernel-rotated.elf: $(GK_OBJS) guests/kernel/kernel.ld
	@mkdir -p $(@D)
	@echo "  KLD     $@"
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack \
		-T guests/kernel/kernel.ld -o $@ $(wordlist 2,$(GK_REUSE_N),$(GK_OBJS)) $(firstword $(GK_OBJS))

CHECK_STEPS += check-reuse
.PHONY: check-reuse
check-reuse: $(BUILD)/bin/pretrans $(DP_ELFS) $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/kernel-relinked.elf $(BUILD)/guests/kernel-rotated.elf
	$(Q)tests/integration/reuse-build.sh $(BUILD)/bin/pretrans $(BUILD)/guests/diffpair \
		$(BUILD)/guests/kernel.elf $(BUILD)/guests/kernel-relinked.elf \
		$(BUILD)/guests/kernel-rotated.elf
