# runtime/bus: port-I/O and MMIO dispatch (struct iobus).
$(eval $(call add_lib,btbus,$(wildcard runtime/bus/*.c)))
