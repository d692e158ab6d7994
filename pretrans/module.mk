# pretrans/: the offline tool.  Library btpretrans holds the ELF loader,
# code discovery and the build pipeline; the program adds only main.c.
$(eval $(call add_lib,btpretrans,pretrans/elfimg.c))
