# Unit tests: every tests/unit/test_*.c (see the top-level Makefile).
CHECK_STEPS += check-unit
.PHONY: check-unit
check-unit: $(UNIT_BINS)
	$(Q)tests/tools/run-unit.sh $(UNIT_BINS)

# btvm boots the test guest cold, warm and learning; bad input.
CHECK_STEPS += check-btvm-boot
.PHONY: check-btvm-boot
check-btvm-boot: $(BUILD)/bin/btvm $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/initrd.cpio $(TINY_ELFS)
	$(Q)tests/integration/btvm-boot.sh $(BUILD)
