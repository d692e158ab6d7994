# runtime: the btvm program (the libraries are in runtime/*/module.mk).  It
# links the translator core for database misses, never the LLVM cross-check.
$(eval $(call add_prog,btvm,runtime/main.c,btvm btsandbox ureloc tcache tc btuser btcpu btcpuid btdev btbus \
	btclock btboot btmmu btguestmem tcdb kmod btelf xlat btbase))
