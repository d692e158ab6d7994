# kmod/: guest loadable modules (.ko): identity, relocation at a nominal
# address, templates for the database (docs/kmod.md).
$(BUILD)/tests/unit/test_xlat_tmpl.o: CFLAGS += -DGU_TESTMOD_PATH='"$(BUILD)/guests/testmod.ko"' \
	-DGU_KERNEL_PATH='"$(BUILD)/guests/kernel.elf"'
$(BUILD)/tests/test_xlat_tmpl: $(BUILD)/guests/testmod.ko $(BUILD)/guests/kernel.elf
EXT_lzma = -llzma
$(eval $(call add_lib,kmod,kmod/kmod_file.c kmod/kmod_reloc.c kmod/kmod_tmpl.c kmod/kmod_index.c kmod/kmod_bind.c,elf lzma zstd))
$(BUILD)/tests/unit/test_kmod.o: CFLAGS += -DGU_TESTMOD_PATH='"$(BUILD)/guests/testmod.ko"'
$(BUILD)/tests/test_kmod: $(BUILD)/guests/testmod.ko
# tests/bench/kmod-tmpl-bench.sh: templates on Debian's vmlinux and modules
$(eval $(call add_prog,kmod_tmpl_bench,tests/bench/kmod_tmpl_bench.c,kmod xlat btelf btbase))

# Module templates bound under btvm (tests/integration/kmod-btvm.sh).
CHECK_STEPS += check-kmod-btvm
.PHONY: check-kmod-btvm
check-kmod-btvm: $(BUILD)/bin/btvm $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/initrd.cpio $(BUILD)/guests/testmod.ko
	$(Q)tests/integration/kmod-btvm.sh $(BUILD)
