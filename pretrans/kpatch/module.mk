# pretrans/kpatch: prediction of a Linux image's boot-time self-patching
# (prefix kp_), for `pretrans build`.  Depends on pretrans/base,
# pretrans/elf, pretrans/cpuid and Zydis.
$(eval $(call add_lib,btkpatch,pretrans/kpatch/kpatch.c,zydis))
