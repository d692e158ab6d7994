# pretrans/xcheck: the LLVM MC cross-check (the second decoder).  A library
# of its own so that only the pretrans programs link LLVM.
$(eval $(call add_lib,xcheck,pretrans/xcheck/xcheck.c,zydis llvm))
