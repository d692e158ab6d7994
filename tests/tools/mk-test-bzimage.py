#!/usr/bin/env python3
"""A synthetic bzImage around a kernel ELF, for btvm's tests.

    tests/tools/mk-test-bzimage.py KERNEL.elf OUT [--patch-build-id]
                                   [--kernel-version=STR] [--move-build-id=OFF]

The image has a boot sector and a setup header of boot protocol 2.15
(64-bit entry, relocatable, preferred address 16 MiB) and a protected-mode
part whose 64-bit entry (load address + 0x200, startup_64 in Linux's
arch/x86/boot/compressed/head_64.S) is a stand-in decompressor: it copies
each PT_LOAD segment of the embedded ELF to its physical address, clears
its bss and jumps to e_entry with %rsi (the zero page) as it came -- what
Linux's extract_kernel/parse_elf do, without the compression.  So the
kernel a database was built from reaches guest memory only when the
decompressor has run, as with a real bzImage.

--patch-build-id flips a bit of the ELF's NT_GNU_BUILD_ID descriptor first
(the same code, another build-id: a kernel the database is not for).
--move-build-id=OFF does the same and has the decompressor also copy the
original note OFF bytes above its physical address: what a kernel moved by
KASLR shows at its link address + OFF, when (as the test guest does) the
kernel maps its whole 1 GiB window at __START_KERNEL_map.
--kernel-version=STR sets the setup header's kernel_version string (Linux:
"RELEASE (BY@HOST) VERSION", arch/x86/boot/version.c); without it there is
none.
"""
import struct
import sys


def segments(elf):
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        sys.exit("mk-test-bzimage: not an ELF64 file")
    entry, phoff = struct.unpack_from("<QQ", elf, 0x18)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    segs = []
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", elf, phoff + i * phentsize)
        if p_type == 1 and memsz:
            segs.append((paddr, elf[off:off + filesz], memsz))
    return entry, segs


NOTE = b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00"


def patch_build_id(elf):
    """Flip a bit of the build-id; return the file offset and bytes of the
    note as it was."""
    pos = elf.find(NOTE)
    if pos < 0:
        sys.exit("mk-test-bzimage: no 20-byte NT_GNU_BUILD_ID note to patch")
    note = bytes(elf[pos:pos + len(NOTE) + 20])
    elf[pos + 16] ^= 1
    return pos, note


def file_to_paddr(elf, pos):
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", elf, phoff + i * phentsize)
        if p_type == 1 and off <= pos < off + filesz:
            return paddr + pos - off
    sys.exit("mk-test-bzimage: the build-id note is in no PT_LOAD segment")


def decompressor(entry, segs, payload_at):
    code = bytearray(b"\xfc\x49\x89\xf7")  # cld; mov %rsi,%r15
    fixups = []
    for paddr, data, memsz in segs:
        fixups.append(len(code) + 3)  # lea disp32(%rip),%rsi
        code += b"\x48\x8d\x35\0\0\0\0"
        code += b"\xbf" + struct.pack("<I", paddr)  # mov $paddr,%edi
        code += b"\xb9" + struct.pack("<I", len(data))  # mov $filesz,%ecx
        code += b"\xf3\xa4"  # rep movsb
        if memsz > len(data):
            code += b"\xb9" + struct.pack("<I", memsz - len(data))
            code += b"\x31\xc0\xf3\xaa"  # xor %eax,%eax; rep stosb
    code += b"\x4c\x89\xfe"  # mov %r15,%rsi
    code += b"\xb8" + struct.pack("<I", entry)  # mov $entry,%eax
    code += b"\xff\xe0"  # jmp *%rax
    pos = payload_at
    for fix, (_, data, _) in zip(fixups, segs):
        # relative to the end of the lea (fix + 4), both from code start
        struct.pack_into("<i", code, fix, pos - (fix + 4))
        pos += len(data)
    return code


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    elf = bytearray(open(args[0], "rb").read())
    move = [int(a.split("=", 1)[1], 0) for a in sys.argv if a.startswith("--move-build-id=")]
    if "--patch-build-id" in sys.argv or move:
        pos, note = patch_build_id(elf)
    entry, segs = segments(elf)
    if move:
        segs.append((file_to_paddr(elf, pos) + move[0], note, len(note)))
    if not segs or max(p + m for p, _, m in segs) >= 1 << 32 or entry >= 1 << 32:
        sys.exit("mk-test-bzimage: the kernel must load and start below 4 GiB")
    # the code's length does not depend on the fixups: size it first
    probe = decompressor(entry, segs, 0)
    code = decompressor(entry, segs, len(probe))
    pm = bytearray(0x200) + code + b"".join(d for _, d, _ in segs)
    hdr = bytearray(2 * 512)
    hdr[0x1f1] = 1  # setup_sects
    kver = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--kernel-version=")]
    if kver:
        v = kver[0].encode() + b"\0"
        if 0x270 + len(v) > len(hdr):
            sys.exit("mk-test-bzimage: --kernel-version: too long for the setup sector")
        hdr[0x270:0x270 + len(v)] = v  # after the header
        struct.pack_into("<H", hdr, 0x20e, 0x270 - 0x200)
    hdr[0x1fe:0x200] = b"\x55\xaa"
    hdr[0x200:0x202] = b"\xeb\x66"  # the header ends at 0x268
    hdr[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", hdr, 0x206, 0x020f)  # protocol 2.15
    struct.pack_into("<I", hdr, 0x230, 0x200000)  # kernel_alignment
    hdr[0x234] = 1  # relocatable_kernel
    struct.pack_into("<H", hdr, 0x236, 1)  # XLF_KERNEL_64
    struct.pack_into("<Q", hdr, 0x258, 0x1000000)  # pref_address
    struct.pack_into("<I", hdr, 0x260, (len(pm) + 0xfff) & ~0xfff)  # init_size
    open(args[1], "wb").write(hdr + pm)


main()
