# pretrans/xlat: the translator core (Zydis decode/encode); the LLVM MC
# cross-check is pretrans/xcheck, which the core reaches through a hook.
$(eval $(call add_lib,xlat,$(wildcard pretrans/xlat/*.c),zydis))
