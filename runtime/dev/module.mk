# runtime/dev: device models (one per file) and the platform creation table.
$(eval $(call add_lib,btdev,$(wildcard runtime/dev/*.c)))
