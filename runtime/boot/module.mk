# runtime/boot: the kernel loader (the ELF is read through pretrans/elf) and
# the Linux 64-bit boot protocol.
$(eval $(call add_lib,btboot,runtime/boot/boot.c runtime/boot/boot_bzimage.c))

# The boot unit test loads a synthetic gcc-built kernel and the real test
# guest kernel (built by guests/kernel/module.mk, when that module exists).
BOOT_SYNTH_ELF := $(BUILD)/tests/boot-synth.elf
$(BOOT_SYNTH_ELF): runtime/boot/testdata/synth.S runtime/boot/testdata/synth.ld
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,runtime/boot/testdata/synth.ld \
		-o $@ runtime/boot/testdata/synth.S

$(BUILD)/tests/test_boot: $(BOOT_SYNTH_ELF)
$(BUILD)/tests/unit/test_boot.o: CFLAGS += -DBOOT_TEST_SYNTH_ELF='"$(abspath $(BOOT_SYNTH_ELF))"' \
	-DBOOT_TEST_KERNEL_ELF='"$(abspath $(BUILD))/guests/kernel.elf"'
ifneq ($(wildcard guests/kernel/module.mk),)
$(BUILD)/tests/test_boot: $(BUILD)/guests/kernel.elf
endif
