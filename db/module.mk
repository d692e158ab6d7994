# db/: the sqlite translation-cache schema and access layer (tcdb_).
# Chunks of host code are zstd-compressed (docs/db.md "Codec").
EXT_zstd = -lzstd
# The boot profile pack is an LZ4 frame.
EXT_lz4 = -llz4
# Each thread that seals chunks keeps one zstd context (db/tcdb_chunk.c).
$(eval $(call add_lib,tcdb,db/tcdb.c db/tcdb_file.c db/tcdb_chunk.c db/tcdb_block.c db/tcdb_dir.c db/tcdb_zdict.c db/tcdb_run.c db/tcdb_auth.c db/tcdb_pack.c db/tcdb_profile.c db/tcdb_kmod.c db/tcdb_user.c,sqlite zstd lz4 pthread))
