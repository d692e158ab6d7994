# pretrans/elf: the project's one ELF reader (prefix elfimg_), used by
# pretrans and by the runtime's boot loader.  Depends on pretrans/base and
# libelf only.
$(eval $(call add_lib,btelf,pretrans/elf/elfimg.c pretrans/elf/elfimg_check.c,elf))
