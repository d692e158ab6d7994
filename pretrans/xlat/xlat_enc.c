/*
 * The emitter's encoder (see xlat_int.h): every host instruction the
 * translator builds, but the guest instructions it copies, is a Zydis
 * encoder request encoded here, through the encoder's memo.
 *
 * Invariants
 *  1. What xe_req and xe_ins append is exactly what Zydis' encoder makes of
 *     the request: the memo returns bytes only for a request equal byte for
 *     byte (its key) to one it encoded, and only successful encodings.
 *  2. An encoder failure sets e->failed (the block is refused); a full
 *     section sets e->overflow; nothing is appended then.
 */
#include "pretrans/xlat/xlat_int.h"

#include "pretrans/base/log.h"

#include <stddef.h>
#include <string.h>

/*
 * The encoder's memo.  Zydis' encoder searches its tables for every
 * request (41% of `pretrans build`'s CPU time before this memo, docs/
 * pretrans.md), and a translation asks for the same few hundred host
 * instructions over and over (the same %gs stores, probes and spills).
 * ZydisEncoderEncodeInstruction is a pure function of the request (no
 * address: relative operands are in the request), so a request equal
 * byte for byte to one encoded before gets the same bytes.  A slot holds
 * the request's key whole and only requests whose bytes after the key are
 * all zero are looked up or kept, so a hit is a request equal byte for
 * byte to the one remembered (a hash collision, or unused bytes that
 * differ, is only a miss).  Only successful encodings are kept.
 */

/* The memo's key length for req: its fields before the operands and the
 * operands in use (at most three: xe never asks for more), 0 when req is
 * not kept (more operands, or a non-zero byte after the key). */
static size_t enc_key_len(const ZydisEncoderRequest *req)
{
	if (req->operand_count > 3)
		return 0;
	size_t n =
	    offsetof(ZydisEncoderRequest, operands) + req->operand_count * sizeof(req->operands[0]);
	const uint8_t *p = (const uint8_t *)req;
	uint64_t any = 0;
	size_t i = n;
	for (; i + 8 <= sizeof(*req); i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		any |= w;
	}
	for (; i < sizeof(*req); i++)
		any |= p[i];
	return any ? 0 : n;
}

/* A hash of the key's n bytes, four lanes at a time; never 0 (empty). */
static uint64_t enc_hash(const uint8_t *p, size_t n)
{
	uint64_t h[4] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull,
			 0x27d4eb2f165667c5ull};
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
		for (int k = 0; k < 4; k++) {
			uint64_t w;
			memcpy(&w, p + i + 8 * k, 8);
			h[k] = (h[k] ^ w) * 0xbf58476d1ce4e5b9ull;
		}
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h[0] = (h[0] ^ w) * 0x94d049bb133111ebull;
	}
	for (; i < n; i++)
		h[1] = (h[1] ^ p[i]) * 0x94d049bb133111ebull;
	uint64_t x = h[0] ^ (h[1] >> 17) ^ (h[2] << 13) ^ (h[3] >> 29) ^ n;
	x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
	return x | 1;
}

/* req with key_len (0: not looked up nor kept; else its bytes after
 * key_len are zero) */
static void emit_req(struct xe *e, const ZydisEncoderRequest *req, size_t key_len)
{
	if (e->failed || e->overflow || !xe_room(e, ZYDIS_MAX_INSTRUCTION_LENGTH))
		return;
	uint8_t *out = e->sec[e->cur] + e->len[e->cur];
	if (!e->enc)
		key_len = 0;
	uint64_t h = 0;
	uint32_t idx = 0;
	if (key_len) {
		h = enc_hash((const uint8_t *)req, key_len);
		idx = (uint32_t)(h >> (64 - XE_ENC_BITS));
		const struct xe_enc_slot *m = &e->enc->slot[idx];
		if (e->enc->tag[idx] == h && m->key_len == key_len &&
		    memcmp(m->key, req, key_len) == 0) {
			memcpy(out, m->bytes, m->len);
			e->enc_hits++;
			e->len[e->cur] += m->len;
			e->cat_bytes[e->cat] += m->len;
			return;
		}
	}
	ZyanUSize n = ZYDIS_MAX_INSTRUCTION_LENGTH;
	if (ZYAN_FAILED(ZydisEncoderEncodeInstruction(req, out, &n))) {
		bt_debug(LOG_XLAT, "xlat: encoder rejected %s (%u operands: %d/%d/%d %d/%d/%d)",
			 ZydisMnemonicGetString(req->mnemonic), req->operand_count,
			 req->operands[0].type, req->operands[0].reg.value,
			 req->operands[0].mem.size, req->operands[1].type,
			 req->operands[1].reg.value, req->operands[1].mem.size);
		e->failed = true;
		return;
	}
	if (key_len) {
		struct xe_enc_slot *m = &e->enc->slot[idx];
		e->enc_misses++;
		e->enc->tag[idx] = h;
		m->key_len = (uint16_t)key_len;
		memcpy(m->key, req, key_len);
		m->len = (uint8_t)n;
		memcpy(m->bytes, out, n);
	}
	e->len[e->cur] += (uint32_t)n;
	e->cat_bytes[e->cat] += (uint32_t)n;
}

void xe_req(struct xe *e, const ZydisEncoderRequest *req)
{
	emit_req(e, req, e->enc ? enc_key_len(req) : 0);
}

void xe_ins(struct xe *e, ZydisMnemonic m, bool gs, int n, const ZydisEncoderOperand *a,
	    const ZydisEncoderOperand *b, const ZydisEncoderOperand *c)
{
	ZydisEncoderRequest req;
	memset(&req, 0, sizeof(req));
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.mnemonic = m;
	req.operand_count = (ZyanU8)n;
	if (gs)
		req.prefixes = ZYDIS_ATTRIB_HAS_SEGMENT_GS;
	if (n > 0)
		req.operands[0] = *a;
	if (n > 1)
		req.operands[1] = *b;
	if (n > 2)
		req.operands[2] = *c;
	/* zero past the operands in use (memset): no need to look */
	emit_req(e, &req,
		 n >= 0 && n <= 3
		     ? offsetof(ZydisEncoderRequest, operands) + (size_t)n * sizeof(req.operands[0])
		     : 0);
}
