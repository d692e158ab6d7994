# pretrans/xdb: block records between the translator and the database
# (prefix xdb_), used by pretrans build and btvm.  Depends on the translator
# core's and db's headers only.
$(eval $(call add_lib,xdb,pretrans/xdb/xdb.c))
