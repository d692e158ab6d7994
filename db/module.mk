# db/: the sqlite translation-cache schema and access layer (tcdb_).
# Chunks of host code are zlib-compressed.
$(eval $(call add_lib,tcdb,db/tcdb.c,sqlite z))
