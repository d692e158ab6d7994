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

# The same with one replacement of the patch table changed (alt_sse2's
# `movl $1, %eax` patched in as `movl $1, %edx`): that predicted-patching
# version moved and changed, so OLD's must not serve it.
$(BUILD)/guests/kernel/alt_sites_v.S: guests/kernel/alt_sites.S
	@mkdir -p $(@D)
	$(Q)sed 's/^11:	movl $$1, %eax$$/11:	movl $$1, %edx/' $< >$@.tmp
	$(Q)! cmp -s $< $@.tmp || { echo "$@: the sed found nothing to change" >&2; exit 1; }
	$(Q)mv $@.tmp $@
$(BUILD)/guests/kernel/alt_sites_v.o: $(BUILD)/guests/kernel/alt_sites_v.S
	$(Q)$(CC) $(GK_ASFLAGS) -Iguests/kernel -c -o $@ $<
$(BUILD)/guests/kernel-rotated-alt.elf: $(GK_OBJS) $(BUILD)/guests/kernel/alt_sites_v.o \
		guests/kernel/kernel.ld
	@mkdir -p $(@D)
	@echo "  KLD     $@"
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack \
		-T guests/kernel/kernel.ld -o $@ $(wordlist 2,$(GK_REUSE_N),$(GK_OBJS)) \
		$(BUILD)/guests/kernel/alt_sites_v.o

CHECK_STEPS += check-reuse
.PHONY: check-reuse
check-reuse: $(BUILD)/bin/pretrans $(DP_ELFS) $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/kernel-relinked.elf $(BUILD)/guests/kernel-rotated.elf \
		$(BUILD)/guests/kernel-rotated-alt.elf
	$(Q)tests/integration/reuse-build.sh $(BUILD)/bin/pretrans $(BUILD)/guests/diffpair \
		$(BUILD)/guests/kernel.elf $(BUILD)/guests/kernel-relinked.elf \
		$(BUILD)/guests/kernel-rotated.elf $(BUILD)/guests/kernel-rotated-alt.elf
