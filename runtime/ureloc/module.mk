# runtime/ureloc: relocatable user translations within a run (templates by guest-physical address).
$(eval $(call add_lib,ureloc,$(wildcard runtime/ureloc/*.c)))
