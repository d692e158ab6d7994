# runtime/vm: one virtual machine and its execution loop.
$(eval $(call add_lib,btvm,$(wildcard runtime/vm/*.c)))
