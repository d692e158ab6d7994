# guests/: the test guest's shared freestanding library (guests/lib), its
# user space (guests/user), the test module (guests/kmod-test), the initrd
# builder (guests/tools), the QEMU boot test and `make demo` (pretrans + btvm).
# The kernel itself is built by guests/kernel/module.mk.

# --- host builds of the shared library (tools and unit tests) -------------
$(eval $(call add_lib,guestcpio,guests/lib/cpio.c guests/tools/cpiow.c guests/tools/cpiotree.c))
$(eval $(call add_lib,guestlib,guests/lib/fmt.c guests/lib/kmodld.c))
$(eval $(call add_prog,mkinitrd,guests/tools/mkinitrd.c,guestcpio btbase))

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

# A second real object for the loader's unit test: many sections, COMMON
# symbols, a jump table, function pointers in data, .eh_frame.
$(GU_OUT)/relocmix.o: guests/kmod-test/relocmix.c
	@mkdir -p $(@D)
	@echo "  KMOD    $@"
	$(Q)$(CC) $(GU_KMOD_CFLAGS) -fcommon -ffunction-sections -fdata-sections \
		-fasynchronous-unwind-tables -fjump-tables -o $@.tmp $<
	$(Q)readelf -sW $@.tmp | grep -q ' COM ' || \
		{ echo "relocmix.o: no SHN_COMMON symbol" >&2; rm -f $@.tmp; exit 1; }
	$(Q)mv $@.tmp $@

# --- guest user space --------------------------------------------------------
# ulib (guests/user/ulib) + guests/lib/fmt.c compiled for the guest, static
# ELF programs linked at 0x400000.  Objects live under $(GU_OBJ).
GU_UCFLAGS := -std=gnu11 $(WARN) -I. -O2 -ffreestanding -fno-pic -fno-pie \
	-fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables \
	-DBENCH_GUEST -MMD -MP
GU_ULDFLAGS := -nostdlib -static -fno-pie -no-pie -O2 -Wl,--build-id=none \
	-Wl,-Ttext-segment=0x400000 -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack

$(GU_OBJ)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  GUEST   $<"
	$(Q)$(CC) $(GU_UCFLAGS) -c -o $@ $<

$(GU_OBJ)/%.o: %.S
	@mkdir -p $(@D)
	@echo "  GUEST   $<"
	$(Q)$(CC) $(GU_UCFLAGS) -c -o $@ $<

GU_ULIB_SRCS := guests/user/ulib/start.S guests/user/ulib/sys.c guests/user/ulib/string.c guests/lib/gstr.c \
	guests/user/ulib/stdio.c guests/lib/fmt.c
GU_ULIB := $(GU_OBJ)/libulib.a
$(GU_ULIB): $(patsubst %,$(GU_OBJ)/%.o,$(basename $(GU_ULIB_SRCS)))
	$(Q)rm -f $@ && ar rcs $@ $^

# $(call gu_link,OUT,OBJS)
define gu_link
	@mkdir -p $(dir $(1))
	@echo "  GLD     $(1)"
	$(Q)$(CC) $(GU_ULDFLAGS) -o $(1) $(2) $(GU_ULIB) -lgcc
endef

GU_UTEST_NAMES := $(sort $(basename $(notdir $(wildcard guests/user/tests/*.c))))
GU_UTESTS := $(patsubst %,$(GU_OUT)/user/tests/%,$(GU_UTEST_NAMES))
.SECONDARY: $(patsubst %,$(GU_OBJ)/guests/user/tests/%.o,$(GU_UTEST_NAMES))
$(GU_OUT)/user/tests/%: $(GU_OBJ)/guests/user/tests/%.o $(GU_ULIB)
	$(call gu_link,$@,$<)

GU_BENCH := $(GU_OUT)/user/bin/bench
$(GU_BENCH): $(GU_OBJ)/guests/user/bench.o $(GU_OBJ)/guests/user/bench_core.o $(GU_ULIB)
	$(call gu_link,$@,$(filter %.o,$^))

# The same benchmark as a native host program, for native-vs-guest ratios.
GU_NATIVE_CFLAGS := -std=gnu11 $(WARN) -I. -O2 -MMD -MP
$(GU_OUT)/native/%.o: %.c
	@mkdir -p $(@D)
	@echo "  NATIVE  $<"
	$(Q)$(CC) $(GU_NATIVE_CFLAGS) -c -o $@ $<
$(GU_OUT)/bench-native: $(GU_OUT)/native/guests/user/bench.o \
		$(GU_OUT)/native/guests/user/bench_core.o
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $^

# --- the initrd -------------------------------------------------------------
# Built with a private copy of mkinitrd linked only with what it uses, so the
# initrd does not depend on every other module's library compiling.
GU_MKINITRD := $(GU_OUT)/tools/mkinitrd
$(GU_MKINITRD): $(BUILD)/guests/tools/mkinitrd.o $(BUILD)/libguestcpio.a $(BUILD)/libbtbase.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $^

GU_INITRD := $(GU_OUT)/initrd.cpio
$(GU_INITRD): $(GU_MKINITRD) $(GU_UTESTS) $(GU_BENCH) $(GU_OUT)/testmod.ko
	@echo "  INITRD  $@"
	$(Q)$(GU_MKINITRD) -o $@ bin/bench=$(GU_BENCH) \
		lib/modules/testmod.ko=$(GU_OUT)/testmod.ko \
		$(foreach t,$(GU_UTEST_NAMES),tests/$(t)=$(GU_OUT)/user/tests/$(t))

EXTRA_ALL += $(GU_INITRD) $(GU_OUT)/bench-native
.PHONY: guests-user
guests-user: $(GU_INITRD) $(GU_OUT)/bench-native

# --- unit tests that read build products -----------------------------------
$(BUILD)/tests/unit/test_kmodld.o: CFLAGS += -DGU_TESTMOD_PATH='"$(GU_OUT)/testmod.ko"' \
	-DGU_RELOCMIX_PATH='"$(GU_OUT)/relocmix.o"'
$(BUILD)/tests/test_kmodld: $(GU_OUT)/testmod.ko $(GU_OUT)/relocmix.o

# The guest kernel image is built by guests/kernel/module.mk.
GU_KERNEL := $(GU_OUT)/kernel.elf
$(BUILD)/tests/unit/test_elfnote.o: CFLAGS += -DGU_KERNEL_PATH='"$(GU_KERNEL)"'
ifneq ($(wildcard guests/kernel/module.mk),)
$(BUILD)/tests/test_elfnote: $(GU_KERNEL)
endif

# --- QEMU boot test, expect-file rebase, demo ----------------------------------
CHECK_STEPS += check-guest-user-native check-guest-qemu
.PHONY: check-guest-user-native check-guest-qemu rebase-expect demo
# The user test programs on the host kernel: proves the tests themselves.
check-guest-user-native: $(GU_UTESTS)
	$(Q)tests/integration/user-native.sh $(BUILD)

check-guest-qemu: $(GU_KERNEL) $(GU_INITRD)
	$(Q)tests/integration/qemu-boot.sh $(BUILD)

# Rewrite guests/qemu-all.expect and guests/qemu-kernel.expect from a run
# (refused for a run with failures); review the diff before committing.
rebase-expect: $(GU_KERNEL) $(GU_INITRD)
	$(Q)tests/integration/qemu-boot.sh --rebase $(BUILD)

# First command on a fresh machine: install dependencies, build the tools
# and the guest, pre-translate the guest kernel and boot it under btvm from
# that warm cache with every test and the benchmark.
demo:
	$(Q)tests/tools/deps.sh
	$(Q)$(MAKE) --no-print-directory $(BUILD)/bin/pretrans $(BUILD)/bin/btvm $(GU_KERNEL) \
		$(GU_INITRD)
	$(Q)tests/integration/demo.sh $(BUILD)

# test_xlat_tmpl sweeps the user programs too (translated as user code).
$(BUILD)/tests/unit/test_xlat_tmpl.o: CFLAGS += -DGU_USER_DIR='"$(GU_OUT)/user/tests"'
$(BUILD)/tests/test_xlat_tmpl: $(GU_UTESTS)
