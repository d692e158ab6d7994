# guests/: the test guest's shared freestanding library (guests/lib), its
# user space (guests/user), the test module (guests/kmod-test), the initrd
# builder (guests/tools), the QEMU boot test and `make demo`.
# The kernel itself is built by guests/kernel/module.mk.

# --- host builds of the shared library (tools and unit tests) -------------
$(eval $(call add_lib,guestcpio,guests/lib/cpio.c guests/tools/cpiow.c))
$(eval $(call add_lib,guestlib,guests/lib/fmt.c guests/lib/kmodld.c))
$(eval $(call add_prog,mkinitrd,guests/tools/mkinitrd.c))

# --- guest target flags ---------------------------------------------------
GU_OUT := $(BUILD)/guests
# Freestanding objects for the guest (kernel module, user programs) are kept
# under $(GU_OUT)/obj so they never collide with the host objects above.
GU_OBJ := $(GU_OUT)/obj

GU_KMOD_CFLAGS := -std=gnu11 $(WARN) -I. -O2 -ffreestanding -fno-pic -fno-pie \
	-mcmodel=kernel -mno-red-zone -mgeneral-regs-only -fno-stack-protector \
	-fcf-protection=none -fno-asynchronous-unwind-tables -c

# --- the test module ------------------------------------------------------
# Built as an ET_REL object; the rule checks that it carries every
# relocation type the guest contract promises to the kernel's loader.
$(GU_OUT)/testmod.ko: guests/kmod-test/testmod.c
	@mkdir -p $(@D)
	@echo "  KMOD    $@"
	$(Q)$(CC) $(GU_KMOD_CFLAGS) -o $@.tmp $<
	$(Q)for r in R_X86_64_32S R_X86_64_64 R_X86_64_PC32 R_X86_64_PLT32; do \
		readelf -rW $@.tmp | grep -q " $$r " || \
		{ echo "testmod.ko: no $$r relocation" >&2; rm -f $@.tmp; exit 1; }; done
	$(Q)mv $@.tmp $@

EXTRA_ALL += $(GU_OUT)/testmod.ko

# --- unit tests that read build products -----------------------------------
$(BUILD)/tests/unit/test_kmodld.o: CFLAGS += -DGU_TESTMOD_PATH='"$(GU_OUT)/testmod.ko"'
$(BUILD)/tests/test_kmodld: $(GU_OUT)/testmod.ko
