#!/usr/bin/env python3
"""How a database's chunks would compress otherwise (docs/db.md "Codec").

    python3 tests/bench/db-chunk-analyze.py DB [MAX_CHUNKS]

Reads the chunks of a schema-7 database as commit 512e54b wrote them
(payloads with 20-byte exit records, the directory after them, zstd level 1
without a dictionary) and prints the stored size of the first MAX_CHUNKS
chunks as stored, at level 3, by columns, merged 4 and 16 to a chunk, the
streams apart, exits as varints, and with a trained dictionary (64 and 256
KiB, levels 1 and 3).  libzstd through ctypes; one thread.  Later databases
(compact exits, dictionary-sealed chunks) are not read by it.
"""
import ctypes
import sqlite3
import struct
import sys
import time

Z = ctypes.CDLL("libzstd.so.1")
Z.ZSTD_compressBound.restype = ctypes.c_size_t
Z.ZSTD_compress.restype = ctypes.c_size_t
Z.ZSTD_decompress.restype = ctypes.c_size_t
Z.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
def comp(b, lvl=1):
    cap = Z.ZSTD_compressBound(ctypes.c_size_t(len(b)))
    out = ctypes.create_string_buffer(cap)
    n = Z.ZSTD_compress(out, ctypes.c_size_t(cap), b, ctypes.c_size_t(len(b)), lvl)
    return n
def decomp(z):
    n = Z.ZSTD_getFrameContentSize(z, ctypes.c_size_t(len(z)))
    out = ctypes.create_string_buffer(n)
    m = Z.ZSTD_decompress(out, ctypes.c_size_t(n), z, ctypes.c_size_t(len(z)))
    return out.raw[:m]
def varint(v):
    o = bytearray()
    while v >= 0x80:
        o.append((v & 0x7f) | 0x80); v >>= 7
    o.append(v); return bytes(o)
def zig(v): return ((v << 1) ^ (v >> 63)) & 0xffffffffffffffff
db = sqlite3.connect(sys.argv[1])
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 30
rows = db.execute("SELECT id, data FROM chunks ORDER BY id LIMIT ?", (limit,)).fetchall()
tot = dict()
def add(k, v): tot[k] = tot.get(k, 0) + v
chunks = []
for cid, z in rows:
    raw = decomp(z)
    add("stored", len(z)); add("raw", len(raw))
    dlen, = struct.unpack_from("<I", raw, len(raw) - 4)
    ds = len(raw) - 8 - dlen
    codes, pcs, exs, exc = [], [], [], []
    off = 0
    # need block start for exits: parse dir
    while off + 9 <= ds:
        cl, pl = struct.unpack_from("<II", raw, off); ne = raw[off + 8]
        codes.append(raw[off+9:off+9+cl]); pcs.append(raw[off+9+cl:off+9+cl+pl])
        e = raw[off+9+cl+pl: off+9+cl+pl+20*ne]
        exs.append(e)
        # compact: kind, patch_off+1 varint, stub_off varint delta from code_len?, target delta vs next exit
        c = bytearray([ne])
        for i in range(ne):
            k = e[i*20]; po, so, tg = struct.unpack_from("<IIQ", e, i*20+4)
            c.append(k); c += varint((po + 1) & 0xffffffff); c += varint(so); c += struct.pack("<Q", tg)
        exc.append((bytes(c), e))
        off += 9 + cl + pl + 20 * ne
    d = raw[ds:]
    chunks.append((codes, pcs, exs, d, raw, exc))
print("chunks", len(rows))
# measure variants
def measure(name, f, lvl=1):
    t = time.time(); n = 0
    for ch in chunks:
        n += comp(f(ch), lvl)
    print("%-40s %8.2f MB  (%.1f s)" % (name, n / 1e6, time.time() - t))
measure("as stored (lvl1)", lambda c: c[4])
measure("columnar code|pc|exits|dir lvl1", lambda c: b"".join(c[0]) + b"".join(c[1]) + b"".join(c[2]) + c[3])
measure("code only lvl1", lambda c: b"".join(c[0]))
measure("pcmaps only lvl1", lambda c: b"".join(c[1]))
measure("exits only lvl1", lambda c: b"".join(c[2]))
measure("dir only lvl1", lambda c: c[3])
measure("as stored lvl3", lambda c: c[4], 3)
measure("columnar lvl3", lambda c: b"".join(c[0]) + b"".join(c[1]) + b"".join(c[2]) + c[3], 3)
# larger units: merge 4 chunks
for k in (4, 16):
    t = time.time(); n = 0
    for i in range(0, len(chunks), k):
        n += comp(b"".join(c[4] for c in chunks[i:i+k]), 1)
    print("%-40s %8.2f MB  (%.1f s)" % ("stored raw, %d chunks merged lvl1" % k, n / 1e6, time.time() - t))
    t = time.time(); n = 0
    for i in range(0, len(chunks), k):
        g = chunks[i:i+k]
        n += comp(b"".join(b"".join(c[0]) for c in g) + b"".join(b"".join(c[1]) for c in g) + b"".join(b"".join(c[2]) for c in g) + b"".join(c[3] for c in g), 1)
    print("%-40s %8.2f MB  (%.1f s)" % ("columnar, %d chunks merged lvl1" % k, n / 1e6, time.time() - t))
# ---- exits compact, dictionary
def getv(b, o):
    v = sh = 0
    while True:
        c = b[o]; o += 1; v |= (c & 0x7f) << sh; sh += 7
        if not c & 0x80: return v, o
def dirents(raw):
    n, dl = struct.unpack_from("<II", raw, len(raw) - 8)
    o = len(raw) - 8 - dl; key = 0; out = {}
    for i in range(n):
        d, o = getv(raw, o); key = ((d >> 1) ^ -(d & 1)) if i == 0 else key + d
        gl, o = getv(raw, o); ni, o = getv(raw, o); o += 8
        fl, o = getv(raw, o); rf, o = getv(raw, o); x, o = getv(raw, o); rg, o = getv(raw, o)
        if rf == 0: out[x] = (key ^ 0xffffffff80000000) & 0xffffffffffffffff
    return out
XOR = 0xffffffff80000000
def exits_compact(c):
    raw = c[4]; starts = dirents(raw)
    dlen, = struct.unpack_from("<I", raw, len(raw) - 4); ds = len(raw) - 8 - dlen
    off = 0; out = bytearray()
    while off + 9 <= ds:
        cl, pl = struct.unpack_from("<II", raw, off); ne = raw[off + 8]
        st = starts.get(off, 0)
        e = raw[off+9+cl+pl: off+9+cl+pl+20*ne]
        for i in range(ne):
            k = e[i*20]; po, so, tg = struct.unpack_from("<IIQ", e, i*20+4)
            out.append(k); out += varint((po + 1) & 0xffffffff); out += varint(cl - so if so <= cl else so)
            out += varint(zig((tg - st) if st else tg))
        off += 9 + cl + pl + 20 * ne
    return bytes(out)
measure("exits compact lvl1", exits_compact)
Z.ZDICT_trainFromBuffer.restype = ctypes.c_size_t
Z.ZSTD_createCCtx.restype = ctypes.c_void_p
Z.ZSTD_compress_usingDict.restype = ctypes.c_size_t
Z.ZDICT_isError.restype = ctypes.c_uint
samples = [c[4] for c in chunks[::10]]
buf = b"".join(samples)
sizes = (ctypes.c_size_t * len(samples))(*[len(s) for s in samples])
for dsz in (65536, 262144):
    dic = ctypes.create_string_buffer(dsz)
    t = time.time()
    n = Z.ZDICT_trainFromBuffer(dic, ctypes.c_size_t(dsz), buf, sizes, len(samples))
    if Z.ZDICT_isError(ctypes.c_size_t(n)): print("dict err"); continue
    print("dict %d trained in %.1f s from %d samples %.1f MB" % (n, time.time()-t, len(samples), len(buf)/1e6))
    cctx = ctypes.c_void_p(Z.ZSTD_createCCtx())
    t = time.time(); tot_ = 0
    for c in chunks:
        r = c[4]; cap = Z.ZSTD_compressBound(ctypes.c_size_t(len(r))); out = ctypes.create_string_buffer(cap)
        tot_ += Z.ZSTD_compress_usingDict(cctx, out, ctypes.c_size_t(cap), r, ctypes.c_size_t(len(r)), dic, ctypes.c_size_t(n), 1)
    print("%-40s %8.2f MB  (%.1f s)" % ("as stored + dict %d lvl1" % n, tot_ / 1e6, time.time() - t))
    t = time.time(); tot_ = 0
    for c in chunks:
        r = c[4]; cap = Z.ZSTD_compressBound(ctypes.c_size_t(len(r))); out = ctypes.create_string_buffer(cap)
        tot_ += Z.ZSTD_compress_usingDict(cctx, out, ctypes.c_size_t(cap), r, ctypes.c_size_t(len(r)), dic, ctypes.c_size_t(n), 3)
    print("%-40s %8.2f MB  (%.1f s)" % ("as stored + dict %d lvl3" % n, tot_ / 1e6, time.time() - t))
