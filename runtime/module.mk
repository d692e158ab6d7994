# runtime: the btvm program (the libraries are in runtime/*/module.mk).
$(eval $(call add_prog,btvm,runtime/main.c))
