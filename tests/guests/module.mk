# tests/guests: tiny kernels: misbehaving ones for btvm's bad-input tests
# (tiny.S) and well-behaved ones for test_vm (vmtest.S).
TINY_VARIANTS := triple spin garbage ones poweroff cf9 kbd halt mmio
TINY_ELFS := $(patsubst %,$(BUILD)/tests/guests/tiny-%.elf,$(TINY_VARIANTS))

$(BUILD)/tests/guests/tiny-%.elf: tests/guests/tiny.S tests/guests/tiny.ld
	@mkdir -p $(@D)
	@echo "  TINY    $@"
	$(Q)$(CC) -nostdlib -static -no-pie -Wl,-T,tests/guests/tiny.ld -Wl,--build-id=none \
		-DTINY_$(shell echo $* | tr a-z A-Z) -o $@ $<

EXTRA_ALL += $(TINY_ELFS)

# Well-behaved tiny kernels for tests/unit/test_vm.c (see vmtest.S).
VMTEST_VARIANTS := exit stale irq pf ud gp mmio split epoch hlt smc l2 str strmmio
VMTEST_ELFS := $(patsubst %,$(BUILD)/tests/guests/vmtest-%.elf,$(VMTEST_VARIANTS))

$(BUILD)/tests/guests/vmtest-%.elf: tests/guests/vmtest.S tests/guests/vmtest.ld
	@mkdir -p $(@D)
	@echo "  VMTEST  $@"
	$(Q)$(CC) -nostdlib -static -no-pie -Wl,-T,tests/guests/vmtest.ld -Wl,--build-id=none \
		-DVMTEST_$(shell echo $* | tr a-z A-Z) -o $@ $<

$(BUILD)/tests/test_vm: $(VMTEST_ELFS)
$(BUILD)/tests/unit/test_vm.o: CFLAGS += -DVM_TEST_GUESTS='"$(abspath $(BUILD))/tests/guests"'
EXTRA_ALL += $(VMTEST_ELFS)
