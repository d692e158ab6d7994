# runtime/tc: enter/exit/call-out trampolines and the code cache for
# translated code (see docs/xlat.md, "Running translated code").
$(eval $(call add_lib,tc,runtime/tc/tc.c runtime/tc/tc_arena.c runtime/tc/tc_string.c runtime/tc/tc_entry.S))
