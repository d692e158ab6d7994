# pretrans/asmfmt: the instruction formatter `pretrans show` and `pretrans
# diff` share (syntax, symbols, vCPU field names).
$(eval $(call add_lib,asmfmt,pretrans/asmfmt/asmfmt.c,zydis))
