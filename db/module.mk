# db/: the sqlite translation-cache schema and access layer (tcdb_).
$(eval $(call add_lib,tcdb,db/tcdb.c db/tcdb_prov.c))
# Chunks of host code are zlib-compressed (zlib comes with libelf-dev); the
# top-level EXT_LIBS does not name it, so add it here.
EXT_LIBS += -lz
