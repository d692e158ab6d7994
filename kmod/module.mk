# kmod/: guest loadable modules (.ko): identity, relocation at a nominal
# address, templates for the database (docs/kmod.md).
$(BUILD)/tests/unit/test_xlat_tmpl.o: CFLAGS += -DGU_TESTMOD_PATH='"$(BUILD)/guests/testmod.ko"' \
	-DGU_KERNEL_PATH='"$(BUILD)/guests/kernel.elf"'
$(BUILD)/tests/test_xlat_tmpl: $(BUILD)/guests/testmod.ko $(BUILD)/guests/kernel.elf
