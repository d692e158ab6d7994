# pretrans/: the offline tool.  Library btpretrans holds the ELF loader,
# code discovery and the build pipeline; the program adds the command line.
$(eval $(call add_lib,btpretrans,pretrans/elfimg.c pretrans/discover.c pretrans/build.c))
$(eval $(call add_prog,pretrans,pretrans/main.c pretrans/cmd_inspect.c pretrans/cmd_xcheck.c))
