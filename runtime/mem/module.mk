# runtime/mem: guest physical RAM (one memfd), regions, page flags.
$(eval $(call add_lib,btguestmem,runtime/mem/guestmem.c))
