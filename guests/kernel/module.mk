# guests/kernel: the bare-metal x86-64 test guest kernel, $(BUILD)/guests/kernel.elf.
# Freestanding, host gcc; guests/lib/*.c is compiled in with the same flags
# into $(BUILD)/guests/lib-k/.  Linked by guests/kernel/kernel.ld.

GK_CFLAGS := -std=gnu11 $(WARN) -I. -O2 -g -ffreestanding -fno-pic -fno-pie \
	-mcmodel=kernel -mno-red-zone -mgeneral-regs-only -fno-stack-protector \
	-fcf-protection=none -nostdlib -fno-asynchronous-unwind-tables \
	-fno-tree-loop-distribute-patterns -MMD -MP
GK_ASFLAGS := -D__ASSEMBLY__ -I. -g -MMD -MP

GK_C_SRCS   := $(wildcard guests/kernel/*.c)
GK_S_SRCS   := $(wildcard guests/kernel/*.S)
GK_LIB_SRCS := $(wildcard guests/lib/*.c)
GK_OBJS := $(patsubst guests/kernel/%.S,$(BUILD)/guests/kernel/%.o,$(GK_S_SRCS)) \
	$(patsubst guests/kernel/%.c,$(BUILD)/guests/kernel/%.o,$(GK_C_SRCS)) \
	$(patsubst guests/lib/%.c,$(BUILD)/guests/lib-k/%.o,$(GK_LIB_SRCS))

# The code-shape self-tests need a real jump table and sibling calls.
$(BUILD)/guests/kernel/tests_cpu.o: GK_EXTRA := -fjump-tables -foptimize-sibling-calls

$(BUILD)/guests/kernel/%.o: guests/kernel/%.c
	@mkdir -p $(@D)
	@echo "  KCC     $<"
	$(Q)$(CC) $(GK_CFLAGS) $(GK_EXTRA) -c -o $@ $<

$(BUILD)/guests/kernel/%.o: guests/kernel/%.S
	@mkdir -p $(@D)
	@echo "  KAS     $<"
	$(Q)$(CC) $(GK_ASFLAGS) -c -o $@ $<

$(BUILD)/guests/lib-k/%.o: guests/lib/%.c
	@mkdir -p $(@D)
	@echo "  KCC     $<"
	$(Q)$(CC) $(GK_CFLAGS) -c -o $@ $<

$(BUILD)/guests/kernel.elf: $(GK_OBJS) guests/kernel/kernel.ld
	@mkdir -p $(@D)
	@echo "  KLD     $@"
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack \
		-T guests/kernel/kernel.ld -o $@ $(GK_OBJS)

EXTRA_ALL += $(BUILD)/guests/kernel.elf

# The same kernel with a build-id note in its loaded .notes, as Linux has:
# tests/integration/btvm-boot.sh wraps it in a synthetic bzImage
# (tests/tools/mk-test-bzimage.py) to boot it warm from its database.
# It has Linux's linux_banner too (guests/kernel/bid/banner.c).
$(BUILD)/guests/kernel-bid.elf: $(GK_OBJS) $(BUILD)/guests/kernel/bid/banner.o \
		guests/kernel/kernel.ld
	@mkdir -p $(@D)
	@echo "  KLD     $@"
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack --build-id=sha1 \
		-T guests/kernel/kernel.ld -o $@ $(GK_OBJS) $(BUILD)/guests/kernel/bid/banner.o

EXTRA_ALL += $(BUILD)/guests/kernel-bid.elf

# gcc must have compiled the jumptable self-test's switch to an indirect jump.
CHECK_STEPS += check-guest-kernel-jumptable
.PHONY: check-guest-kernel-jumptable
check-guest-kernel-jumptable: $(BUILD)/guests/kernel.elf
	$(Q)objdump -d --no-show-raw-insn $< | \
		awk '/<kt_jt_dispatch>:/{f=1;next} f&&/^$$/{exit} f' | \
		grep -Eq 'jmp +\*' || \
		{ echo "kt_jt_dispatch has no indirect jump: no jump table" >&2; exit 1; }
	@echo "  OK      kt_jt_dispatch dispatches through a jump table"

# A multiboot stub that boots kernel.elf through the Linux 64-bit boot
# protocol under QEMU (the entry btvm uses; QEMU's own ELF path is PVH):
#   qemu-system-x86_64 ... -kernel kernel-bootstub.bin -initrd "kernel.elf,initrd.cpio"
GK_STUB_CFLAGS := -std=gnu11 $(WARN) -O2 -ffreestanding -fno-pic -fno-pie -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns
$(BUILD)/guests/kernel-bootstub.bin: guests/kernel/bootstub/stub.S guests/kernel/bootstub/stub.c \
		guests/kernel/bootstub/stub.ld
	@mkdir -p $(BUILD)/guests/kernel/bootstub
	@echo "  KSTUB   $@"
	$(Q)$(CC) -c -o $(BUILD)/guests/kernel/bootstub/stub_s.o guests/kernel/bootstub/stub.S
	$(Q)$(CC) $(GK_STUB_CFLAGS) -c -o $(BUILD)/guests/kernel/bootstub/stub_c.o \
		guests/kernel/bootstub/stub.c
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 -z noexecstack \
		-T guests/kernel/bootstub/stub.ld -o $(BUILD)/guests/kernel/bootstub/stub.elf \
		$(BUILD)/guests/kernel/bootstub/stub_s.o $(BUILD)/guests/kernel/bootstub/stub_c.o
	$(Q)objcopy -O binary $(BUILD)/guests/kernel/bootstub/stub.elf $@

EXTRA_ALL += $(BUILD)/guests/kernel-bootstub.bin

# Boot through both entries (PVH and 64-bit boot protocol) under QEMU.
CHECK_STEPS += check-guest-kernel-boot
.PHONY: check-guest-kernel-boot
check-guest-kernel-boot: $(BUILD)/guests/kernel.elf $(BUILD)/guests/kernel-bootstub.bin \
		$(BUILD)/guests/initrd.cpio
	$(Q)guests/kernel/boot-check.sh $(BUILD)
