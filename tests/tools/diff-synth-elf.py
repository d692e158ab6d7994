#!/usr/bin/env python3
"""Write a synthetic pair of x86-64 kernel-like ELF images (old, new) with
N functions each, for the HTML report's browser test and benchmark: a
Debian-sized `pretrans diff` without downloading Debian's kernels.

    diff-synth-elf.py OLD.elf NEW.elf [--functions N] [--seed S]

Each function is real, decodable x86-64 (push/mov/call/lea/cmp/jcc/ret)
with calls to other functions, RIP-relative references to strings in
.rodata and to objects in .data.  Functions are grouped by source file
(STT_FILE symbols such as drivers/net/d07/f0123.c, locals before globals as
a linker writes them; some static names repeat across files).  NEW differs
from OLD as a kernel update does:
  - padding after the first 1 % of the functions: everything after moves
    (calls and RIP-relative fields change bytes, "moved");
  - about 6 % of the functions change: an immediate, a string's text, or an
    extra instruction ("changed");
  - 3 renamed, 13 added, 11 removed.
The classes are printed as JSON on stdout ({"changed": ..., ...}) so the
caller can check the diff against what was generated.
"""
import json
import random
import struct
import sys

BASE = 0xFFFFFFFF81000000


def parse_args(argv):
    args = {"functions": 50000, "seed": 1}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--functions", "--seed"):
            if i + 1 >= len(argv):
                sys.exit(f"diff-synth-elf.py: {a} needs a number")
            args[a[2:]] = int(argv[i + 1])
            i += 2
        else:
            pos.append(a)
            i += 1
    if len(pos) != 2:
        sys.exit("usage: diff-synth-elf.py OLD.elf NEW.elf [--functions N] [--seed S]")
    return pos, args


class Func:
    __slots__ = ("name", "file", "glob", "ops", "kind")


def plan(n, seed):
    """The functions of OLD and the edits that make NEW."""
    rnd = random.Random(seed)
    r = rnd.random
    funcs = []
    nfiles = max(1, n // 50)
    for i in range(n):
        f = Func()
        fi = i * nfiles // n
        f.file = f"{['drivers', 'fs', 'net', 'mm', 'kernel', 'sound'][fi % 6]}/d{fi % 97:02d}/f{fi:04d}.c"
        f.glob = r() < 0.6
        # repeated static names make name@file keys, as in a real vmlinux
        f.name = f"helper_{i % 7}" if (not f.glob and r() < 0.05) else f"fn_{i:05d}"
        ops = f.ops = []
        for _ in range(6 + int(r() * 25)):
            k = r()
            if k < 0.25:
                ops.append(("call", int(r() * n)))
            elif k < 0.4:
                ops.append(("str", int(r() * n)))
            elif k < 0.55:
                ops.append(("data", int(r() * 256)))
            elif k < 0.8:
                ops.append(("imm", int(r() * 65536)))
            else:
                ops.append(("cmpjz", 1 + int(r() * 99)))
        f.kind = "same"
        funcs.append(f)
    # no two statics of one name in one file
    seen = set()
    for i, f in enumerate(funcs):
        if (f.name, f.file) in seen:
            f.name = f"fn_{i:05d}"
        seen.add((f.name, f.file))
    return funcs, rnd


def edit(funcs, rnd):
    """NEW's function list and the expected classes."""
    n = len(funcs)
    new = []
    cls = {"changed": 0, "renamed": 0, "added": 0, "removed": 0}
    idx = list(range(n))
    rnd.shuffle(idx)
    removed = set(idx[:11])
    renamed = set(idx[11:14])
    changed = set(idx[14 : 14 + n * 6 // 100])
    # calls reach only global functions that stay (a call to a removed or
    # renamed function would change its callers too)
    ok = [i for i, f in enumerate(funcs) if f.glob and f.name.startswith("fn_") and i not in removed | renamed]
    for f in funcs:
        f.ops = [("call", ok[o[1] % len(ok)]) if o[0] == "call" else o for o in f.ops]
    for i, f in enumerate(funcs):
        if i in removed:
            cls["removed"] += 1
            continue
        g = Func()
        g.name, g.file, g.glob, g.kind = f.name, f.file, f.glob, "same"
        g.ops = list(f.ops)
        if i in renamed:
            g.name = f.name + "_renamed"
            g.glob = True
            cls["renamed"] += 1
        elif i in changed:
            j = rnd.randrange(len(g.ops))
            op = g.ops[j]
            r = rnd.random()
            if op[0] == "imm":
                g.ops[j] = ("imm", op[1] ^ 0x40)
            elif op[0] == "str" and r < 0.7:
                g.ops[j] = ("str2", op[1])
            else:
                g.ops.insert(j, ("imm", 0x1234))
            cls["changed"] += 1
        new.append(g)
        if i == n // 100:
            pad = Func()
            pad.name, pad.file, pad.glob, pad.ops, pad.kind = None, f.file, False, [], "pad"
            new.append(pad)
        if i in idx[14 + n * 6 // 100 : 14 + n * 6 // 100 + 13]:
            a = Func()
            a.name, a.file, a.glob = f"added_{i:05d}", f.file, True
            a.ops, a.kind = [("imm", 7), ("call", ok[0])], "same"
            new.append(a)
            cls["added"] += 1
    return new, cls


def layout(funcs, n_targets, old_names):
    """Encode every function; returns text bytes, rodata, symbols."""
    # strings: one per target index, text depends on the op ("str2" changes it)
    # first pass: sizes (instruction lengths do not depend on addresses)
    lens = {"call": 5, "str": 7, "str2": 7, "data": 7, "imm": 5, "cmpjz": 5}
    addrs, sizes = [], []
    pc = BASE
    for f in funcs:
        if f.kind == "pad":
            addrs.append(pc)
            sizes.append(0)
            pc += 48
            continue
        size = 4 + sum(lens[o[0]] for o in f.ops) + 2
        addrs.append(pc)
        sizes.append(size)
        pc = (pc + size + 15) & ~15
    text_end = pc
    rodata_base = (text_end + 0xFFF) & ~0xFFF
    # strings, deduplicated by content
    str_off, ro = {}, bytearray()
    for f in funcs:
        for o in f.ops:
            if (o[0] == "str" or o[0] == "str2") and o not in str_off:
                s = f"message {o[1]} from %s: %d\n" if o[0] == "str" else f"message {o[1]} (v2) from %s: %d\n"
                str_off[o] = len(ro)
                ro += s.encode() + b"\0"
    data_base = (rodata_base + len(ro) + 0xFFF) & ~0xFFF
    by_name = {}
    for f, a in zip(funcs, addrs):
        if f.name:
            by_name.setdefault(f.name, a)
    text = bytearray()
    for f, a, size in zip(funcs, addrs, sizes):
        text += b"\xcc" * (a - BASE - len(text))
        if f.kind == "pad":
            text += b"\x90" * 48
            continue
        b = bytearray(b"\x55\x48\x89\xe5")  # push rbp; mov rbp, rsp
        for o in f.ops:
            here = a + len(b)
            if o[0] == "call":
                tgt = by_name[old_names[o[1]]]
                b += b"\xe8" + struct.pack("<i", tgt - (here + 5))
            elif o[0] in ("str", "str2"):
                tgt = rodata_base + str_off[o]
                b += b"\x48\x8d\x3d" + struct.pack("<i", tgt - (here + 7))  # lea rdi, [rip+x]
            elif o[0] == "data":
                tgt = data_base + 16 * o[1]
                b += b"\x48\x8b\x05" + struct.pack("<i", tgt - (here + 7))  # mov rax, [rip+x]
            elif o[0] == "imm":
                b += b"\xb8" + struct.pack("<I", o[1])  # mov eax, imm32
            elif o[0] == "cmpjz":
                b += b"\x83\xfe" + bytes([o[1]]) + b"\x74\x00"  # cmp esi, imm8; jz +0
        b += b"\x5d\xc3"  # pop rbp; ret
        assert len(b) == size
        text += b
    return text, ro, addrs, sizes, rodata_base, data_base


def write_elf(path, funcs, text, ro, addrs, sizes, rodata_base, data_base):
    data = bytes(16 * 256)
    shstr = bytearray(b"\0")

    def sname(s):
        off = len(shstr)
        shstr.extend(s.encode() + b"\0")
        return off

    strtab = bytearray(b"\0")
    stroff = {}

    def name(s):
        if s not in stroff:
            stroff[s] = len(strtab)
            strtab.extend(s.encode() + b"\0")
        return stroff[s]

    # symbols: locals (STT_FILE then its statics), then globals
    STT_FUNC, STT_OBJECT, STT_FILE = 2, 1, 4
    syms = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]
    glob = []
    cur = None
    for f, a, size in zip(funcs, addrs, sizes):
        if f.kind == "pad":
            continue
        if f.file != cur:
            syms.append(struct.pack("<IBBHQQ", name(f.file), STT_FILE, 0, 0xFFF1, 0, 0))
            cur = f.file
        if f.glob:
            glob.append(struct.pack("<IBBHQQ", name(f.name), (1 << 4) | STT_FUNC, 0, 1, a, size))
        else:
            syms.append(struct.pack("<IBBHQQ", name(f.name), STT_FUNC, 0, 1, a, size))
    for k in range(256):
        glob.append(struct.pack("<IBBHQQ", name(f"obj_{k}"), (1 << 4) | STT_OBJECT, 0, 3, data_base + 16 * k, 16))
    first_global = len(syms)
    symtab = b"".join(syms + glob)

    # file layout: ehdr, phdrs, then sections page-aligned by address offset
    ehsize, phsize, shsize = 64, 56, 64
    nph = 3
    off = 0x1000
    t_off = off
    r_off = t_off + ((len(text) + 0xFFF) & ~0xFFF)
    d_off = r_off + ((len(ro) + 0xFFF) & ~0xFFF)
    s_off = d_off + len(data)
    st_off = s_off + len(symtab)
    sh_names = [sname(n) for n in ("", ".text", ".rodata", ".data", ".symtab", ".strtab", ".shstrtab")]
    shs_off = st_off + len(strtab)
    shdr_off = (shs_off + len(shstr) + 7) & ~7
    out = bytearray()
    e_ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    out += e_ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, BASE, ehsize, shdr_off, 0, ehsize, phsize, nph, shsize, 7, 6)
    out += struct.pack("<IIQQQQQQ", 1, 5, t_off, BASE, BASE - 0xFFFFFFFF80000000, len(text), len(text), 0x1000)
    out += struct.pack("<IIQQQQQQ", 1, 4, r_off, rodata_base, rodata_base - 0xFFFFFFFF80000000, len(ro), len(ro), 0x1000)
    out += struct.pack("<IIQQQQQQ", 1, 6, d_off, data_base, data_base - 0xFFFFFFFF80000000, len(data), len(data), 0x1000)
    out += bytes(t_off - len(out))
    out += text + bytes(r_off - t_off - len(text))
    out += ro + bytes(d_off - r_off - len(ro))
    out += data + symtab + strtab + shstr
    out += bytes(shdr_off - len(out))

    def sh(nm, typ, flags, addr, offset, size, link=0, info=0, align=1, entsize=0):
        return struct.pack("<IIQQQQIIQQ", nm, typ, flags, addr, offset, size, link, info, align, entsize)

    out += sh(0, 0, 0, 0, 0, 0)
    out += sh(sh_names[1], 1, 6, BASE, t_off, len(text), align=16)
    out += sh(sh_names[2], 1, 2, rodata_base, r_off, len(ro), align=16)
    out += sh(sh_names[3], 1, 3, data_base, d_off, len(data), align=16)
    out += sh(sh_names[4], 2, 0, 0, s_off, len(symtab), link=5, info=first_global, align=8, entsize=24)
    out += sh(sh_names[5], 3, 0, 0, st_off, len(strtab))
    out += sh(sh_names[6], 3, 0, 0, shs_off, len(shstr))
    with open(path, "wb") as fh:
        fh.write(out)


def main():
    (old_path, new_path), args = parse_args(sys.argv[1:])
    funcs, rnd = plan(args["functions"], args["seed"])
    new, cls = edit(funcs, rnd)
    old_names = [f.name for f in funcs]
    for path, fl in ((old_path, funcs), (new_path, new)):
        text, ro, addrs, sizes, rb, db = layout(fl, len(funcs), old_names)
        write_elf(path, fl, text, ro, addrs, sizes, rb, db)
    cls["functions_old"] = len(funcs)
    cls["functions_new"] = sum(1 for f in new if f.kind != "pad")
    print(json.dumps(cls))


if __name__ == "__main__":
    main()
