# db/: the sqlite translation-cache schema and access layer (tcdb_).
$(eval $(call add_lib,tcdb,db/tcdb.c))
# Chunks of host code are zlib-compressed (-lz is in the top-level EXT_LIBS).
