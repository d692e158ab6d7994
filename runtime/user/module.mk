# runtime/user: guest user code runs natively in ptrace-controlled stub
# processes (docs/user-direct.md).  The stub program is a standalone static
# binary; ustub_blob.S embeds it in the library.
USTUB_ELF := $(BUILD)/runtime/user/ustub.elf

$(USTUB_ELF): runtime/user/ustub.S runtime/user/ustub.h runtime/user/ustub.ld
	@mkdir -p $(@D)
	@echo "  STUB    $@"
	$(Q)$(CC) -I. -nostdlib -static -no-pie -Wl,-T,runtime/user/ustub.ld \
		-Wl,--build-id=none -Wl,-z,noexecstack -o $@ runtime/user/ustub.S

$(BUILD)/runtime/user/ustub_blob.o: $(USTUB_ELF)
$(BUILD)/runtime/user/ustub_blob.o: CFLAGS += -DUSTUB_ELF_PATH='"$(USTUB_ELF)"'

$(eval $(call add_lib,btuser,runtime/user/ustub_ctl.c runtime/user/ustub_blob.S \
	runtime/user/user.c runtime/user/user_fault.c runtime/user/user_pool.c \
	runtime/user/user_scan.c,zydis))

# The guest's whole suite under btvm, cold and warm, against QEMU's output.
CHECK_STEPS += check-btvm-user
.PHONY: check-btvm-user
check-btvm-user: $(BUILD)/bin/btvm $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/initrd.cpio
	$(Q)tests/integration/btvm-user.sh $(BUILD)
