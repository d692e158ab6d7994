# db/: the sqlite translation-cache schema and access layer (tcdb_).
$(eval $(call add_lib,tcdb,db/tcdb.c db/tcdb_prov.c))
