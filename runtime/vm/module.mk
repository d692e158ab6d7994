# runtime/vm: one virtual machine and its execution loop.
$(eval $(call add_lib,btvm,$(wildcard runtime/vm/*.c)))

# vm_fast.c serves the memory call-out's fast path (runtime/tc/module.mk)
FASTPATH_OBJS += $(BUILD)/runtime/vm/vm_fast.o
$(BUILD)/runtime/vm/vm_fast.o: CFLAGS += -mgeneral-regs-only
