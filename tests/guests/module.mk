# tests/guests: tiny misbehaving kernels for btvm's bad-input tests.
TINY_VARIANTS := triple spin garbage
TINY_ELFS := $(patsubst %,$(BUILD)/tests/guests/tiny-%.elf,$(TINY_VARIANTS))

$(BUILD)/tests/guests/tiny-%.elf: tests/guests/tiny.S tests/guests/tiny.ld
	@mkdir -p $(@D)
	@echo "  TINY    $@"
	$(Q)$(CC) -nostdlib -static -no-pie -Wl,-T,tests/guests/tiny.ld -Wl,--build-id=none \
		-DTINY_$(shell echo $* | tr a-z A-Z) -o $@ $<

EXTRA_ALL += $(TINY_ELFS)
