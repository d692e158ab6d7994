# runtime/tc: enter/exit/call-out trampolines and the code cache for
# translated code (see docs/xlat.md, "Running translated code").
$(eval $(call add_lib,tc,runtime/tc/tc.c runtime/tc/tc_arena.c runtime/tc/tc_string.c runtime/tc/tc_fast.c runtime/tc/tc_strfast.c runtime/tc/tc_entry.S))

# The fast paths of the memory and string call-outs run with the guest's
# FPU state live (tc_entry.S tc_co_mem, tc_co_string): their C files never
# use an x87/SSE/AVX register.
# `make check-fastpath` checks the objects (FASTPATH_OBJS, Makefile).
FASTPATH_OBJS += $(BUILD)/runtime/tc/tc_fast.o $(BUILD)/runtime/tc/tc_strfast.o
$(BUILD)/runtime/tc/tc_fast.o: CFLAGS += -mgeneral-regs-only
$(BUILD)/runtime/tc/tc_strfast.o: CFLAGS += -mgeneral-regs-only
