# runtime/sandbox: btvm's seccomp/capability sandbox (docs/security.md).
$(eval $(call add_lib,btsandbox,runtime/sandbox/sandbox.c))

# The sandbox is on in a running btvm and its stubs, a forbidden call dies
# by SIGSYS, --no-sandbox turns it off, the code cache's views are apart.
CHECK_STEPS += check-btvm-sandbox
.PHONY: check-btvm-sandbox
check-btvm-sandbox: $(BUILD)/bin/btvm $(BUILD)/guests/kernel.elf $(BUILD)/guests/initrd.cpio \
		$(BUILD)/tests/guests/tiny-spin.elf
	$(Q)tests/integration/btvm-sandbox.sh $(BUILD)
