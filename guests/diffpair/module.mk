# guests/diffpair: the synthetic kernel pair of the pretrans diff tests,
# one source built three ways (see diffpair_a.c): base, change, shift.
DP_OUT := $(BUILD)/guests/diffpair
DP_CFLAGS := -std=gnu11 $(WARN) -I. -O2 -g -ffreestanding -fno-pic -fno-pie -mcmodel=kernel \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-ipa-icf -fjump-tables -fno-inline-small-functions
DP_SRCS := guests/diffpair/diffpair_a.c guests/diffpair/diffpair_b.c
DP_DEPS := $(DP_SRCS) guests/diffpair/diffpair.h guests/diffpair/pad.S guests/diffpair/diffpair.ld \
	guests/diffpair/module.mk
DP_ELFS := $(DP_OUT)/base.elf $(DP_OUT)/change.elf $(DP_OUT)/shift.elf

# $(call dp_build,VARIANT,EXTRA_CFLAGS,EXTRA_OBJS)
define dp_build
$(DP_OUT)/$(1).elf: $(DP_DEPS)
	@mkdir -p $(DP_OUT)/$(1)
	@echo "  DIFFPAIR $$@"
	$(Q)$(CC) $(DP_CFLAGS) $(2) -c -o $(DP_OUT)/$(1)/a.o guests/diffpair/diffpair_a.c
	$(Q)$(CC) $(DP_CFLAGS) $(2) -c -o $(DP_OUT)/$(1)/b.o guests/diffpair/diffpair_b.c
	$(Q)$(if $(3),$(CC) -c -o $(DP_OUT)/$(1)/pad.o guests/diffpair/pad.S)
	$(Q)$(LD) -nostdlib -static -z noexecstack -T guests/diffpair/diffpair.ld -o $$@ \
		$(if $(3),$(DP_OUT)/$(1)/pad.o) $(DP_OUT)/$(1)/a.o $(DP_OUT)/$(1)/b.o
endef
$(eval $(call dp_build,base,,))
$(eval $(call dp_build,change,-DDP_CHANGE,))
$(eval $(call dp_build,shift,,pad))

# The same objects as relocatable modules (ld -r): ET_REL inputs with
# relocations.  The shift variant's padding is renamed into .text, .rodata
# and .data so that ld -r merges it in front of the code and data.
DP_KOS := $(DP_OUT)/base.ko $(DP_OUT)/change.ko $(DP_OUT)/shift.ko
$(DP_OUT)/%.ko: $(DP_OUT)/%.elf
	@echo "  DIFFPAIR $@"
	$(Q)$(if $(filter shift,$*),objcopy --rename-section .text.pad=.text \
		--rename-section .rodata.pad=.rodata --rename-section .data.pad=.data \
		$(DP_OUT)/$*/pad.o $(DP_OUT)/$*/pad-ko.o &&) \
		$(LD) -r -o $@ $(if $(filter shift,$*),$(DP_OUT)/$*/pad-ko.o) \
		$(DP_OUT)/$*/a.o $(DP_OUT)/$*/b.o

.PHONY: diffpair
diffpair: $(DP_ELFS) $(DP_KOS)
