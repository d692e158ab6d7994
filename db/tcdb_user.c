/*
 * Guest user code's templates in the translation-cache database (tcdb.h,
 * docs/db.md "Packs", docs/user-mode.md): two packs a --learn boot writes,
 * kmod/'s template pack of the user blocks the boot translated and its
 * fingerprint index (this file stores bytes; btvm's runtime/vm/vm_udb.c
 * makes and reads them).
 *
 * Invariants
 *  1. Written only inside the learn transaction, both or neither: the
 *     index always describes the template pack stored with it.
 *  2. Read only through tcdb_pack_get_heap (tcdb_pack.c): the tag is
 *     checked before a byte is inflated or handed out, a failure leaves db
 *     untrusted.  Into malloc'd memory, the caller's to free(): the
 *     binder takes the template pack as it is (kmod_fetch_fn), no copy.
 */
#include "db/tcdb_int.h"

enum bt_status tcdb_user_tmpl_put(struct tcdb *db, const uint8_t *pack, size_t pack_len,
				  const uint8_t *index, size_t index_len, uint64_t n_templates)
{
	if (!db->learning || db->untrusted)
		return BT_ERR_INVALID;
	BT_TRY(
	    tcdb_pack_put(db, TCDB_PACK_USER_TMPL, TCDB_CODEC_ZSTD, pack, pack_len, n_templates));
	return tcdb_pack_put(db, TCDB_PACK_USER_INDEX, TCDB_CODEC_ZSTD, index, index_len,
			     n_templates);
}

enum bt_status tcdb_user_tmpl_get(struct tcdb *db, bool index, uint8_t **raw, size_t *raw_len,
				  uint64_t *n_templates)
{
	return tcdb_pack_get_heap(db, index ? TCDB_PACK_USER_INDEX : TCDB_PACK_USER_TMPL, raw,
				  raw_len, n_templates);
}
