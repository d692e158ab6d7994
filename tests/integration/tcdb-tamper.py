#!/usr/bin/env python3
"""Change a translation database the way an attacker would (tests only).

    tcdb-tamper.py DB chunk-code     every block in every chunk: host code
                                     starts with mov eax,60; mov edi,42;
                                     syscall (exit(42) of the VMM itself)
    tcdb-tamper.py DB inline-code    the same in every learned (inline) row
    tcdb-tamper.py DB flip-chunk     one bit in the middle of the chunk that
                                     holds the image's entry block (else
                                     the first chunk)
    tcdb-tamper.py DB flip-pcmap     one bit of the pc map of every learned row
    tcdb-tamper.py DB flip-profile   one bit in the middle of the stored boot
                                     profile pack (written by --learn)
    tcdb-tamper.py DB flip-pack KIND one bit in the middle of the stored pack
                                     of that kind (e.g. 8, 9: the user
                                     templates and their index)
    tcdb-tamper.py DB stale-hash     every translated block's guest-bytes hash
                                     changed, in the rows and in the chunk
                                     directories (as if the guest's code were
                                     another build's); sign again to make it
                                     pass authentication and be merely stale
    tcdb-tamper.py DB resign-rows KEYFILE
                                     recompute every row's and every chunk's
                                     tag with KEYFILE (what only the key's
                                     owner can do; the format is
                                     db/tcdb_auth.c's)

Chunks are decompressed with the zstd command (Debian's zstd package, which
tests/tools/deps.sh installs), changed and compressed again, as a reviewer
did.  Prints the guest addresses (hex) of the blocks changed.
"""
import hashlib
import hmac
import sqlite3
import struct
import subprocess
import sys


def zstd(data, *args):
    """The zstd command's output for data (chunks are zstd frames)."""
    return subprocess.run(["zstd", "-q", "-c", *args], input=data, stdout=subprocess.PIPE,
                          check=True).stdout

XOR = 0xffffffff80000000
EXIT = bytes.fromhex("b83c000000bf2a0000000f05")  # mov eax,60; mov edi,42; syscall


def dir_start(raw):
    """Where a chunk's directory starts (schema 7: payloads, directory, u32
    entries, u32 directory bytes)."""
    return len(raw) - 8 - struct.unpack_from("<I", raw, len(raw) - 4)[0]


def varint(raw, off):
    v = sh = 0
    while True:
        c = raw[off]
        off += 1
        v |= (c & 0x7f) << sh
        sh += 7
        if not c & 0x80:
            return v, off


def put_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def directory(raw):
    """[key, guest_len, n_insns, guest_hash, flags, refusal, x, region] of
    each entry of a chunk's directory (x: payload offset, or the refusal
    address's zigzag distance from the start)."""
    n = struct.unpack_from("<I", raw, len(raw) - 8)[0]
    off, key, out = dir_start(raw), 0, []
    for i in range(n):
        d, off = varint(raw, off)
        key = ((d >> 1) ^ -(d & 1)) if i == 0 else key + d
        glen, off = varint(raw, off)
        ni, off = varint(raw, off)
        h = struct.unpack_from("<Q", raw, off)[0]
        off += 8
        flags, off = varint(raw, off)
        ref, off = varint(raw, off)
        x, off = varint(raw, off)
        region, off = varint(raw, off)
        out.append([key, glen, ni, h, flags, ref, x, region])
    return out


def encode_directory(ents):
    out, prev = bytearray(), 0
    for i, (key, glen, ni, h, flags, ref, x, region) in enumerate(ents):
        out += put_varint(((key << 1) ^ (key >> 63)) & 0xffffffffffffffff if i == 0 else key - prev)
        out += put_varint(glen) + put_varint(ni) + struct.pack("<Q", h)
        out += put_varint(flags) + put_varint(ref) + put_varint(x) + put_varint(region)
        prev = key
    return bytes(out) + struct.pack("<II", len(ents), len(out))


def payloads(raw):
    """(offset, code_off, code_len, pcmap_len) of each payload in a chunk
    (varint code length, varint pc map length, u8 exits, code, pc map, exits
    of u8 kind and three varints)."""
    off, end = 0, dir_start(raw)
    while off < end:
        code_len, o = varint(raw, off)
        pcmap_len, o = varint(raw, o)
        n_exits = raw[o]
        o += 1
        yield off, o, code_len, pcmap_len
        o += code_len + pcmap_len
        for _ in range(n_exits):
            o += 1
            for _ in range(3):
                _, o = varint(raw, o)
        off = o


def va(key):
    return (key & 0xffffffffffffffff) ^ XOR


def main():
    db, what = sys.argv[1], sys.argv[2]
    c = sqlite3.connect(db)
    changed = []
    if what in ("chunk-code", "flip-chunk"):
        if what == "flip-chunk":
            entry = c.execute("SELECT entry FROM image").fetchone()[0] & 0xffffffffffffffff
            key = entry ^ XOR
            key = key - (1 << 64) if key >= 1 << 63 else key
            ids = [cid for cid, z in c.execute("SELECT id, data FROM chunks")
                   if any(e[0] == key for e in directory(zstd(z, "-d")))][:1]
            # an entry outside translated code: the first chunk
            ids = ids or [c.execute("SELECT min(id) FROM chunks").fetchone()[0]]
        else:
            ids = [r[0] for r in c.execute("SELECT id FROM chunks")]
        for cid in ids:
            z = c.execute("SELECT data FROM chunks WHERE id = ?", (cid,)).fetchone()[0]
            raw = bytearray(zstd(z, "-d"))
            if what == "flip-chunk":
                raw[len(raw) // 2] ^= 0x10
            else:
                for _, code_off, code_len, _ in payloads(raw):
                    if code_len >= len(EXIT):
                        raw[code_off:code_off + len(EXIT)] = EXIT
            c.execute("UPDATE chunks SET data = ? WHERE id = ?", (zstd(bytes(raw), "-3"), cid))
            changed += [va(e[0]) for e in directory(raw) if e[5] == 0]
    elif what in ("inline-code", "flip-pcmap"):
        rows = c.execute("SELECT guest_start, code, pcmap FROM blocks "
                         "WHERE origin = 1 AND chunk = 0 AND refusal = 0").fetchall()
        for start, code, pcmap in rows:
            if what == "inline-code" and len(code) >= len(EXIT):
                code = EXIT + code[len(EXIT):]
                c.execute("UPDATE blocks SET code = ? WHERE guest_start = ?", (code, start))
            elif what == "flip-pcmap" and pcmap:
                pcmap = bytearray(pcmap)
                pcmap[0] ^= 0x01
                c.execute("UPDATE blocks SET pcmap = ? WHERE guest_start = ?",
                          (bytes(pcmap), start))
            else:
                continue
            changed.append(va(start))
    elif what == "flip-profile":
        data = c.execute("SELECT data FROM packs WHERE kind = 5").fetchone()
        if not data:
            sys.exit("tcdb-tamper.py: no boot profile in " + db)
        data = bytearray(data[0])
        data[len(data) // 2] ^= 0x10
        c.execute("UPDATE packs SET data = ? WHERE kind = 5", (bytes(data),))
    elif what == "flip-pack":
        kind = int(sys.argv[3])
        data = c.execute("SELECT data FROM packs WHERE kind = ?", (kind,)).fetchone()
        if not data:
            sys.exit("tcdb-tamper.py: no pack of kind %d in %s" % (kind, db))
        data = bytearray(data[0])
        data[len(data) // 2] ^= 0x10
        c.execute("UPDATE packs SET data = ? WHERE kind = ?", (bytes(data), kind))
    elif what == "stale-hash":
        for (start,) in c.execute("SELECT guest_start FROM blocks WHERE refusal = 0").fetchall():
            c.execute("UPDATE blocks SET guest_hash = (guest_hash | 1) - (guest_hash & 1) WHERE guest_start = ?",
                      (start,))
            changed.append(va(start))
        for cid, z in c.execute("SELECT id, data FROM chunks").fetchall():
            raw = zstd(z, "-d")
            ents = directory(raw)
            if not ents:
                continue
            for e in ents:
                if e[5] == 0:
                    e[3] ^= 1
                    changed.append(va(e[0]))
            raw = raw[:dir_start(raw)] + encode_directory(ents)
            c.execute("UPDATE chunks SET data = ?, raw_len = ? WHERE id = ?",
                      (zstd(raw, "-1"), len(raw), cid))
    elif what == "resign-rows":
        key = open(sys.argv[3], "rb").read()
        nonce = bytes.fromhex(c.execute("SELECT value FROM meta WHERE key = 'nonce'").fetchone()[0])
        q = ("SELECT guest_start, guest_len, n_insns, guest_hash, flags, refusal, refusal_addr, "
             "function_id, origin, chunk, payload_off, code, exits, pcmap FROM blocks")
        for r in c.execute(q).fetchall():
            m = hmac.new(key, b"btkern-tcdb-row\0" + nonce, hashlib.sha256)
            for v in r[:11]:
                m.update(struct.pack("<Q", v & 0xffffffffffffffff))
            for blob in r[11:]:
                blob = blob or b""
                m.update(struct.pack("<Q", len(blob)) + blob)
            c.execute("UPDATE blocks SET mac = ? WHERE guest_start = ?", (m.digest()[:16], r[0]))
        for cid, raw_len, func0, z in c.execute(
                "SELECT id, raw_len, func0, data FROM chunks").fetchall():
            m = hmac.new(key, b"btkern-tcdb-chunk\0" + nonce, hashlib.sha256)
            for v in (cid, raw_len, func0):
                m.update(struct.pack("<Q", v & 0xffffffffffffffff))
            m.update(hashlib.sha256(z).digest())
            c.execute("UPDATE chunks SET mac = ? WHERE id = ?", (m.digest()[:16], cid))
    else:
        sys.exit("tcdb-tamper.py: unknown change " + what)
    c.commit()
    print(" ".join("%#x" % a for a in changed))


main()
