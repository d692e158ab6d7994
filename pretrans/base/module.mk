# pretrans/base: status strings, logging, hashing shared by every module.
$(eval $(call add_lib,btbase,$(wildcard pretrans/base/*.c),pthread))
