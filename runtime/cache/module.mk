# runtime/cache: the code cache (blocks, chaining, page index, invalidation).
$(eval $(call add_lib,tcache,$(wildcard runtime/cache/*.c)))
