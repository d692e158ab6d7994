# pretrans/xlat: the translator core (Zydis decode/encode, LLVM MC cross-check).
$(eval $(call add_lib,xlat,$(wildcard pretrans/xlat/*.c)))
