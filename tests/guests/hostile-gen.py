#!/usr/bin/env python3
"""Hostile guest kernels for btvm: one seed -> one reproducible guest.

    tests/guests/hostile-gen.py SEED [-n N] [--mem BYTES] -o OUT.S

writes the assembly of a tiny ring-0 kernel (linked with hostile.ld at
0x200000 like tiny.S, entered through the 64-bit boot protocol at e_entry:
identity mapped, CPL 0) that attacks the VMM from inside:

  prologue  a valid IDT of one handler (or, in some variants, garbage or
            half-broken gates), then maybe garbage GDT/IDT/CR3/CR4/EFER
            values, PIC+PIT programmed for an interrupt storm, sti;
  body      N slots, each "remember the next slot; one random instruction",
            drawn mostly from system and privileged classes (0f 00 / 0f 01
            groups, mov CRn/DRn, rdmsr/wrmsr, port I/O and string I/O, int n,
            iretq/sysret/swapgs, far jmp/call/ret, segment loads, popf,
            xsave/xrstor, cpuid/rdtsc/rdtscp/rdpid, ud2, raw random bytes)
            interleaved with random GPR loads, stores (self-modifying code,
            page-table entries) and jumps to MMIO / non-RAM / unmapped /
            non-canonical addresses;
  handler   every vector: reset the stack, maybe EOI, and continue at the
            remembered slot (by jmp or by a fresh iretq frame), so that one
            fault does not end the run;
  epilogue  write the seed's status to the exit port (0xf4).

The same seed and arguments always give the same text (random.Random(seed)
only).  tests/hostile/hostile-run.py builds and runs the guests.
"""
import argparse
import random
import sys

GPRS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15"]
R32 = {"rax": "eax", "rbx": "ebx", "rcx": "ecx", "rdx": "edx", "rsi": "esi", "rdi": "edi",
       "rbp": "ebp"}
R16 = {"rax": "ax", "rbx": "bx", "rcx": "cx", "rdx": "dx", "rsi": "si", "rdi": "di",
       "rbp": "bp"}
for _i in range(8, 16):
    R32[f"r{_i}"] = f"r{_i}d"
    R16[f"r{_i}"] = f"r{_i}w"

MSRS = [0x10, 0x1b, 0x3a, 0x48, 0x49, 0x8b, 0xfe, 0x174, 0x175, 0x176, 0x179, 0x17a, 0x1a0,
        0x1d9, 0x200, 0x277, 0x2ff, 0x6e0, 0x800, 0x802, 0x80b, 0x830, 0x838, 0xc0000080,
        0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102,
        0xc0000103, 0x4b564d00, 0x4b564d01, 0x4b564d02, 0x40000000, 0xc0010114]
# Ports: the platform's devices (docs/devices.md) and some nobody decodes.
PORTS = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71,
         0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x1f0, 0x1f1, 0x1f2, 0x1f3,
         0x1f4, 0x1f5, 0x1f6, 0x1f7, 0x3f6, 0x80, 0x92, 0xcf8, 0xcfc, 0x2f8, 0x60, 0x64,
         0x510, 0x511, 0xffff, 0x0, 0x3c0, 0x402]
CODE_BASE = 0x200000
# Classes --exclude can leave out, each named after an open finding
# (docs/security.md "Hostile guest kernels"):
EXCLUDABLE = {
    # A host #GP in translated code is reported as "touched host memory
    # (bug)" instead of becoming the guest's #GP: misaligned SSE m128,
    # fxsave/xsave/cmpxchg16b operands, reserved MXCSR bits; and a
    # non-canonical guest %rsp (the host's %rsp in translated code) makes
    # the next host interrupt's IRET fault.
    "host-gp": "aligned SSE/fx/xsave operands, valid MXCSR images, only canonical values",
    # An indirect branch (jmp/call *reg, ret, jmp/call *mem) to guest
    # address 0xffffffffffffffff makes btvm jump to host address 0: death
    # by SIGSEGV; device memory and non-RAM read as all ones, so a ret or
    # jmp *mem through them is one.
    "branch-ones": "no all-ones values; ret and jmp/call *mem only through RAM",
    # Random bytes run as code (raw-byte slots, jumps into data, page
    # tables, the middle of our instructions, code overwritten by random
    # stores) can do anything, including what the two classes above leave
    # out (e.g. bswap %rsp; a ret through memory that reads all ones).
    "random-code": "no random bytes executed: jumps only to non-RAM or slot starts",
}


def sse_opcode(op):
    """0f OP is an SSE/SSE2/SSSE3/SSE4 (or MMX) opcode with a memory form
    that may require 16-byte alignment."""
    return (0x10 <= op <= 0x17 or 0x28 <= op <= 0x2f or op in (0x38, 0x3a, 0xc2, 0xc3, 0xc6, 0xc7)
            or 0x50 <= op <= 0x7f or op >= 0xd0 or op == 0xae)  # 0f ae: ldmxcsr, fxrstor, xrstor


class Gen:
    def __init__(self, seed, n, mem, exclude=()):
        unknown = set(exclude) - set(EXCLUDABLE)
        if unknown:
            raise ValueError(f"unknown class to exclude: {', '.join(sorted(unknown))}")
        self.no_host_gp = "host-gp" in exclude
        self.no_branch_ones = "branch-ones" in exclude
        self.no_random_code = "random-code" in exclude
        self.r = random.Random(seed)
        self.seed = seed
        self.n = n
        self.mem = mem
        self.out = []
        self.slot = 0

    def emit(self, *lines):
        self.out.extend(lines)

    # --- values ---------------------------------------------------------
    def addr(self):
        return self.filtered(self.addr_())

    def addr_(self):
        r = self.r
        k = r.randrange(100)
        if k < 35:
            return f"scratch+{r.randrange(0, 8192 - 64)}"
        if k < 40:
            if self.no_random_code:
                return f"scratch+{r.randrange(0, 8192 - 64)}"
            return f"{CODE_BASE + r.randrange(0, 0x4000):#x}"  # our own code
        if k < 48:  # GDT/IDT/TSS, zero page, stack, page tables
            return f"{r.choice([0x500, 0x530, 0x540, 0x7000, 0x8f00, 0x9000, 0xa000, 0xb000, 0xc000, 0xe000]) + r.randrange(0, 0x100):#x}"
        if k < 55:
            return f"{r.randrange(0, 0x100000):#x}"  # low memory, BIOS holes
        if k < 60:
            return f"{self.mem - r.randrange(1, 0x2000):#x}"  # the top of RAM
        if k < 68:
            return f"{r.randrange(self.mem, 0xfec00000):#x}"  # above RAM, below 4 GiB
        if k < 78:  # LAPIC, IOAPIC, HPET, flash: MMIO holes on a PC
            return f"{r.choice([0xfee00000, 0xfec00000, 0xfed00000, 0xffff0000, 0xfffff000, 0xe0000000]) + r.randrange(0, 0x1000):#x}"
        if k < 86:
            return f"{r.randrange(1 << 32, 1 << 47):#x}"  # canonical, unmapped
        if k < 92:
            a = r.choice([0xffff800000000000, 0xffffffff80000000, 0xfffffffffff00000])
            return f"{a + r.randrange(0, 1 << 20):#x}"
        return f"{r.getrandbits(64):#x}"  # anything, non-canonical too

    def jump_addr(self):
        """A branch target.  With random-code excluded: a slot or no RAM."""
        if not self.no_random_code:
            return self.addr()
        r = self.r
        if r.randrange(4) == 0:
            return f"slot_{r.randrange(self.n)}"
        while True:
            a = self.addr()
            if a.startswith("scratch") or int(a, 0) < self.mem:
                continue
            return a

    def table_addr(self):
        """A garbage descriptor table's base; with random-code excluded an
        unmapped one (gates or call gates read from data are random code)."""
        if self.no_random_code:
            return f"{self.r.randrange(1 << 32, 1 << 47):#x}"
        return self.addr()

    def stack_addr(self):
        """An address for %rsp.  With no_host_gp (open finding 'host #GP':
        a non-canonical guest %rsp is the host's %rsp in translated code,
        and the next host interrupt's IRET faults), a canonical one."""
        a = self.addr()
        if self.no_branch_ones:  # a ret pops its target from RAM that random stores spare
            return f"retpad+{8 * self.r.randrange(1, 64)}"
        if self.no_host_gp and not a.startswith("scratch"):
            v = int(a, 0)
            if not (v < 1 << 47 or v >= 0xffff800000000000):
                a = hex(v & ((1 << 47) - 1))
        return a

    def ram_addr(self):
        r = self.r
        return r.choice([f"scratch+{r.randrange(64, 8192 - 64)}", f"{r.randrange(0x1000, self.mem - 0x1000):#x}"])

    def filtered(self, text):
        """A value with the excluded classes' values left out."""
        if text.startswith("scratch") or not (self.no_host_gp or self.no_branch_ones):
            return text
        v = int(text, 0)
        if self.no_host_gp and not (v < 1 << 47 or v >= 0xffff800000000000):
            v = v & ((1 << 47) - 1) | (0xffff800000000000 if v >> 63 else 0)
        if self.no_branch_ones and v == (1 << 64) - 1:
            v = 0xfffffffffffffffe
        return hex(v)

    def value(self):
        return self.filtered(self.value_())

    def value_(self):
        r = self.r
        k = r.randrange(100)
        if k < 15:
            return hex(r.choice([0, 1, 2, 0xffffffffffffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffff]))
        if k < 30:
            return hex(1 << r.randrange(64))
        if k < 45:
            return hex(r.randrange(0, 0x10000))
        if k < 70:
            return self.addr()
        return hex(r.getrandbits(64))

    def gpr(self):
        return self.r.choice(GPRS)

    def load(self, reg, val=None):
        self.emit(f"\tmovabs ${val if val is not None else self.value()}, %{reg}")

    def mem_operand(self, align=1):
        reg = self.r.choice([g for g in GPRS if g not in ("rax", "rcx", "rdx")])
        a = self.addr()
        if align > 1 and self.no_host_gp:
            if a.startswith("scratch+"):
                a = f"scratch+{int(a[8:]) & ~(align - 1)}"
            else:
                a = hex(int(a, 0) & ~(align - 1))
        self.load(reg, a)
        return f"(%{reg})"

    def raw(self, nbytes):
        """nbytes random bytes.  With no_host_gp (the open finding 'host #GP',
        docs/security.md "Hostile guest kernels"), no SSE/AVX or 0f ae opcode
        and no obvious %rsp writer: a 0f escape before such an opcode byte,
        every VEX/EVEX/XOP prefix and the first byte of an %rsp writer
        become nop."""
        b = [self.r.randrange(256) for _ in range(nbytes)]
        for i, x in enumerate(b):
            nxt = b[i + 1] if i + 1 < len(b) else 0xc7  # the next slot's movl
            if self.no_host_gp and (x in (0xc4, 0xc5, 0x62, 0x8f) or (x == 0x0f and sse_opcode(nxt))):
                b[i] = 0x90
            if self.no_branch_ones and x == 0xff and (nxt >> 6) != 3 and (nxt >> 3) & 7 in (2, 3, 4, 5):
                b[i] = 0x90  # jmp/call *mem, near or far
            if self.no_host_gp:
                # writers of %rsp: pop %rsp, xchg %rax,%rsp, leave, mov/lea/xchg to %rsp
                if x in (0x5c, 0x94, 0xc9) or (x in (0x8b, 0x8d, 0x87) and (nxt >> 3) & 7 == 4) \
                        or (x == 0x89 and nxt >> 6 == 3 and nxt & 7 == 4):
                    b[i] = 0x90
        return b

    # --- instruction classes ------------------------------------------------
    def i_group6_7(self):
        r = self.r
        m = self.mem_operand()
        reg = self.gpr()
        # lgdt/lidt mostly of a usable table (a random one ends the run with
        # a triple fault at the next fault or interrupt), sometimes random.
        tbl = r.choice(["idtr", "idtr", "gdtr_alt", "gdtr_boot", m, m])
        if r.randrange(3):
            tbl = r.choice(["idtr", "gdtr_alt", "gdtr_boot"])
        ops = [f"sgdt {m}", f"sidt {m}", f"sldt {m}", f"str {m}",
               f"lgdt {tbl if tbl != 'idtr' else 'gdtr_boot'}", f"lidt {tbl if tbl != 'gdtr_alt' else 'idtr'}",
               f"lldt %{R16[reg]}", f"ltr %{R16[reg]}", f"verr %{R16[reg]}", f"verw %{R16[reg]}",
               f"smsw %{reg}", f"lmsw %{R16[reg]}", f"invlpg {m}", "swapgs", "rdtscp", "clac",
               "stac", "xgetbv", "monitor", "mwait", "vmcall", "vmmcall", "rdpkru", "wrpkru",
               f"lar %{R16[reg]}, %{R16[reg]}", f"lsl %{R32[reg]}, %{R32[reg]}", "lfence"]
        if r.randrange(3) == 0:  # a plausible descriptor selector
            self.load(reg, hex(r.choice([0, 8, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x13, 0x1b, 0xfff8])))
        if r.randrange(2) == 0:
            self.load("rcx", hex(r.choice([0, 1, 2, r.getrandbits(32)])))
        self.emit("\t" + r.choice(ops))

    def i_crdr(self):
        r = self.r
        reg = self.gpr()
        cr = r.choice([0, 0, 2, 3, 3, 4, 4, 8])
        k = r.randrange(10)
        if k < 4:
            self.emit(f"\tmov %cr{cr}, %{reg}")
            if r.randrange(2):  # read-modify-write: flip one bit
                self.emit(f"\tbtc ${r.randrange(64)}, %{reg}", f"\tmov %{reg}, %cr{cr}")
        elif k < 7:
            if cr == 3 and r.randrange(2):  # one of our page tables, or the boot one
                self.load(reg, r.choice(["pml4_alt", "0x9000", "0x9000|0x18",
                                         "0x9000" if self.no_random_code else self.addr()]))
            else:
                self.load(reg)
            self.emit(f"\tmov %{reg}, %cr{cr}")
        elif k < 9:
            dr = r.choice([0, 1, 2, 3, 6, 7])
            if r.randrange(2):
                self.load(reg, r.choice([self.addr(), self.value(), "0x4ff", "0xffffffff"]))
                self.emit(f"\tmov %{reg}, %db{dr}")
            else:
                self.emit(f"\tmov %db{dr}, %{reg}")
        else:  # reserved control/debug registers: raw 0f 20/21/22/23, modrm 11 reg rm
            op = r.choice([0x20, 0x21, 0x22, 0x23])
            self.emit(f"\t.byte 0x0f, {op:#x}, {0xc0 | (r.choice([1, 5, 6, 7]) << 3) | r.randrange(8):#x}")

    def i_msr(self):
        r = self.r
        msr = r.choice(MSRS) if r.randrange(5) else r.getrandbits(32)
        self.load("rcx", hex(msr))
        if r.randrange(2):
            self.emit("\trdmsr")
            if r.randrange(2):  # read-modify-write
                self.emit(f"\tbtc ${r.randrange(32)}, %eax", "\twrmsr")
        else:
            self.load("rax", self.value())
            self.load("rdx", hex(r.choice([0, 0, r.getrandbits(32), 0xffffffff])))
            self.emit("\twrmsr")

    def port(self):
        r = self.r
        return r.choice(PORTS) if r.randrange(8) else r.randrange(0x10000)

    def i_io(self):
        r = self.r
        p = self.port()
        sz = r.choice(["b", "w", "l"])
        acc = {"b": "al", "w": "ax", "l": "eax"}[sz]
        self.load("rdx", hex(p))
        self.load("rax", self.value())
        k = r.randrange(10)
        if k < 4:
            self.emit(f"\tout{sz} %{acc}, %dx")
        elif k < 7:
            self.emit(f"\tin{sz} %dx, %{acc}")
        elif k < 8 and p < 0x100:
            self.emit(f"\tout{sz} %{acc}, ${p:#x}" if r.randrange(2) else f"\tin{sz} ${p:#x}, %{acc}")
        else:  # string I/O at a random address, maybe repeated
            self.load("rcx", hex(r.choice([0, 1, 2, 7, 16, 255, 4096, r.getrandbits(16)])))
            self.load("rsi" if r.randrange(2) else "rdi", self.addr())
            rep = "rep " if r.randrange(2) else ""
            if r.randrange(6) == 0:
                self.emit("\tstd")
            self.emit(f"\t{rep}{r.choice(['ins', 'outs'])}{sz}", "\tcld")

    def i_flow(self):
        r = self.r
        k = r.randrange(16)
        if k == 0:
            self.emit("\tcli")
        elif k == 1:
            self.emit("\tsti")
        elif k == 2:
            self.emit("\tsti", "\thlt")  # a wakeup needs an interrupt
        elif k == 3:
            self.emit(f"\tint ${r.randrange(256):#x}")
        elif k == 4:
            self.emit("\tint3")
        elif k == 5:
            self.emit("\t.byte 0xce")  # into: #UD in 64-bit mode
        elif k == 6:  # iretq through a random or half-valid frame
            self.load("rax", r.choice(["0x18", "0x0", "0x2b", self.value()]))
            self.emit("\tpush %rax")
            self.load("rax", r.choice(["stack_top", self.stack_addr()]))
            self.emit("\tpush %rax")
            self.load("rax", r.choice(["0x2", "0x202", "0x3202", "0x40102", self.value()]))
            self.emit("\tpush %rax")
            self.load("rax", r.choice(["0x10", "0x8", "0x33", "0x23", self.value()]))
            self.emit("\tpush %rax")
            self.load("rax", r.choice([f"slot_{self.slot + 1}", self.jump_addr()]))
            self.emit("\tpush %rax", "\tiretq")
        elif k == 7:
            self.load("rcx", self.jump_addr())
            self.load("r11", self.value())
            self.emit(r.choice(["\tsysretq", "\tsysretl", "\tsyscall", "\tsysenter", "\tsysexitl", "\tsysexitq"]))
        elif k == 8:
            self.emit("\tswapgs")
        elif k == 9:  # far jmp/call through a random m16:64 / m16:32
            self.load("rbx", r.choice(["farptrs", "farptrs+10", "farptrs+20",
                                       "farptrs" if self.no_random_code else
                                       self.ram_addr() if self.no_branch_ones else self.addr()]))
            self.emit(r.choice(["\tljmpl *(%rbx)", "\tlcalll *(%rbx)",
                                "\t.byte 0x48, 0xff, 0x2b  /* rex.w ljmp *(%rbx): m16:64 */",
                                "\t.byte 0x48, 0xff, 0x1b  /* rex.w lcall *(%rbx) */"]))
        elif k == 10:  # far return to a random selector
            self.load("rax", r.choice(["0x10", "0x8", "0x20", "0x28", "0x33", self.value()]))
            self.emit("\tpush %rax")
            self.load("rax", r.choice([f"slot_{self.slot + 1}", self.jump_addr()]))
            self.emit("\tpush %rax", r.choice(["\tlretq", "\tlretl", "\tlretq $8"]))
        elif k == 11:
            self.emit("\tud2")
        elif k == 12:
            self.emit("\tint1" if r.randrange(2) else "\t.byte 0x0f, 0xb9, 0xc0")  # icebp, ud1
        else:  # jump or call somewhere hostile: MMIO, above RAM, unmapped, tables
            reg = self.gpr()
            self.load(reg, self.jump_addr())
            self.emit(f"\t{r.choice(['jmp', 'call'])} *%{reg}")

    def i_segment(self):
        r = self.r
        reg = self.gpr()
        self.load(reg, hex(r.choice([0, 3, 8, 0x10, 0x18, 0x1b, 0x20, 0x28, 0x30, 0x38, 0x40, 0xfff8, r.getrandbits(16)])))
        seg = r.choice(["ds", "es", "fs", "gs", "ss", "ss"])
        if r.randrange(3):
            self.emit(f"\tmov %{R16[reg]}, %{seg}")
        else:
            self.emit(f"\tpush %{reg}", f"\tpop %{r.choice(['fs', 'gs'])}")
        if r.randrange(3) == 0:  # use it
            m = self.mem_operand()
            self.emit(f"\tmov %{seg}:{m}, %rax" if seg in ("fs", "gs") else f"\tmov {m}, %rax")

    def i_flags(self):
        r = self.r
        self.load("rax", r.choice([hex(r.getrandbits(32)), "0x100", "0x302", "0x40002", "0x4002",
                                   "0x3002", "0x200002", "0x2", self.value()]))
        self.emit("\tpush %rax", "\tpopfq")
        if r.randrange(3) == 0:
            self.emit("\tpushfq", "\tpop %rbx")

    def i_misc(self):
        r = self.r
        k = r.randrange(14)
        if k == 0:
            self.load("rax", hex(r.choice([0, 1, 4, 7, 0xb, 0xd, 0x14, 0x40000000, 0x40000001, 0x80000000, 0x80000001, 0x80000008, r.getrandbits(32)])))
            self.load("rcx", hex(r.randrange(4)))
            self.emit("\tcpuid")
        elif k == 1:
            self.emit(r.choice(["\trdtsc", "\trdtscp", "\trdpid %rax", "\trdpmc", "\trdrand %rax", "\trdseed %rax"]))
        elif k == 2:
            self.emit(r.choice(["\twbinvd", "\tinvd", "\tclts", "\tpause", "\tmfence", "\tsfence"]))
        elif k == 3:
            m = self.mem_operand()
            self.load("rax", hex(r.randrange(4)))
            self.emit(f"\tinvpcid {m}, %rax")
        elif k == 4:
            self.load("rcx", hex(r.choice([0, 0, 1, r.getrandbits(32)])))
            self.load("rax", hex(r.choice([1, 3, 7, 0xe7, r.getrandbits(32)])))
            self.load("rdx", hex(r.choice([0, 0, r.getrandbits(32)])))
            self.emit("\txsetbv")
        elif k == 5:
            m = self.mem_operand(64)
            self.load("rax", hex(r.choice([0xffffffff, 3, 7, r.getrandbits(32)])))
            self.load("rdx", hex(r.choice([0, 0xffffffff])))
            op = r.choice(["xsave", "xrstor", "xsaveopt", "xsavec", "xsaves", "xrstors", "fxsave",
                           "fxrstor", "xsave64", "xrstor64", "fxrstor64"])
            if self.no_host_gp and "rstor" in op:  # a valid image: MXCSR 0x1f80, empty header
                self.load("rbx", "fxarea")
                m = "(%rbx)"
            self.emit(f"\t{op} {m}")
        elif k == 6:
            m = self.mem_operand(16)
            mx = "mxcsr_ok" if self.no_host_gp else m  # reserved MXCSR bits: 'host #GP'
            self.emit("\t" + r.choice([f"ldmxcsr {mx}", f"stmxcsr {m}", f"fldcw {m}", f"fldenv {m}",
                                       f"frstor {m}", f"movaps {m}, %xmm1", f"movdqa %xmm2, {m}",
                                       "fninit", "pxor %xmm0, %xmm0", "fld1", "emms",
                                       f"vmovdqu {m}, %ymm3", f"cmpxchg16b {m}", f"lock incq {m}"]))
        elif k == 7:  # a store: self-modifying code, descriptor tables, page tables
            m = self.mem_operand()
            self.load("rax")
            self.emit(f"\tmov %{r.choice(['rax', 'eax', 'ax', 'al'])}, {m}")
        elif k == 8:  # a page-table entry of the boot map or ours, then maybe invlpg
            # mostly entries that do not map this guest (PDE 0: GDT/IDT/TSS and
            # page tables, PDE 1: our code, data and stack), sometimes those
            self.load("rbx", hex(r.choice([0xb010, 0xb018, 0xb100, 0xb7f8, 0xb800, 0xbff8, 0xa008,
                                           0xa018, 0x9008, 0x9ff8,
                                           0xb020 if self.no_random_code else r.choice([0xb000, 0xb008, 0x9000, 0xa000])])))
            self.load("rax", r.choice(["0x83", "0x183", "0x200083", "0x80000000000000e3", "0", "0x3", hex(r.getrandbits(64))]))
            self.emit("\tmov %rax, (%rbx)")
            if r.randrange(2):
                self.load("rbx", self.addr())
                self.emit("\tinvlpg (%rbx)")
        elif k == 9:  # a load (MMIO reads)
            m = self.mem_operand()
            self.emit(f"\tmov {m}, %{r.choice(['rax', 'eax', 'ax', 'al'])}")
        elif k == 10:  # string moves through random memory
            self.load("rsi", self.addr())
            self.load("rdi", self.addr())
            self.load("rcx", hex(r.choice([1, 8, 64, 4096, r.getrandbits(20)])))
            self.emit("\trep " + r.choice(["movsb", "movsq", "stosq", "lodsb", "cmpsb", "scasq"]))
        elif k == 11:  # the stack somewhere hostile
            self.load("rsp", self.stack_addr())
            self.emit(r.choice(["\tpush %rax", "\tpop %rax", "\tcall 1f\n1:", "\tret", "\tenter $16, $3"]))
        elif k == 12:
            if self.no_host_gp:  # leave: %rsp = %rbp, maybe non-canonical
                self.load("rbp", self.stack_addr())
            self.emit("\t" + r.choice(["hlt", "cli\n\tsti", "nop", "leave", "xlat", "sahf", "lahf"]))
        else:
            if r.randrange(4) == 0 or self.no_random_code:
                self.emit("\t" + r.choice(["ud0 %eax, %eax", "ud2", ".byte 0xf0, 0x90", "int1"]))
            else:
                self.emit("\t.byte " + ", ".join(hex(x) for x in self.raw(r.randrange(1, 12))))

    def i_raw(self):
        r = self.r
        if self.no_random_code:
            self.emit("\tud2")
            return
        pre = r.choice([[], [0x0f], [0x0f, 0x01], [0x0f, 0x00], [0xf0], [0x66, 0x0f], [0x48, 0x0f]])
        b = self.raw(len(pre) + r.randrange(1, 8))
        b[:len(pre)] = pre
        if self.no_host_gp and pre and pre[-1] == 0x0f and sse_opcode(b[len(pre)]):
            b[len(pre) - 1] = 0x90
        self.emit("\t.byte " + ", ".join(hex(x) for x in b))

    def i_gprs(self):
        for _ in range(self.r.randrange(1, 4)):
            self.load(self.gpr())

    # --- the guest ---------------------------------------------------------------
    def prologue(self):
        r = self.r
        # Gates: interrupt or trap, DPL 0 or 3, mostly on IST 1 (the handler's
        # stack even when a random instruction smashed %rsp).
        gate_type = r.choice(["0x8e01", "0x8e01", "0x8f01", "0x8e01", "0x8e00", "0x8f00", "0xee01"])
        self.emit(f"/* hostile guest, seed {self.seed}, {self.n} slots */",
                  "\t.section .text", "\t.globl _start", "_start:", "\tcli",
                  "\tmov $stack_top, %rsp",
                  "\tmov $stack_top, %eax",
                  f"\tmov %rax, {0x540 + 0x24:#x}" if r.randrange(8) else "\tnop  /* IST 1 stays 0 */",
                  "\tmov %rax, 0x544  /* RSP0 */",
                  "\tlea idt(%rip), %rdi", "\tlea handler(%rip), %rax", "\tmov $256, %ecx",
                  "1:\tmov %ax, (%rdi)", "\tmovw $0x10, 2(%rdi)", f"\tmovw ${gate_type}, 4(%rdi)",
                  "\tmov %rax, %rdx", "\tshr $16, %rdx", "\tmov %rdx, 6(%rdi)", "\tmovl $0, 12(%rdi)",
                  "\tadd $16, %rdi", "\tloop 1b")
        for _ in range(r.choice([0, 0, 0, 1, 3, 20])):  # a few broken gates
            if self.no_random_code:  # selector, IST, type: not the handler's address
                self.emit(f"\tmovl ${r.getrandbits(32):#x}, idt+{16 * r.randrange(256) + 2}")
            else:
                self.emit(f"\tmovabs ${r.getrandbits(64):#x}, %rax", f"\tmov %rax, idt+{r.randrange(0, 4096 - 8)}")
        k = r.randrange(10)
        if k < 7:
            self.emit("\tlidt idtr")
        elif k < 9:
            self.emit("\tlidt idtr_garbage")
        # else: keep the boot IDT (empty, limit 7): the first fault is a triple fault
        if r.randrange(4) == 0:
            self.emit("\tlgdt gdtr_alt")
        if r.randrange(6) == 0:
            self.emit("\tlgdt gdtr_garbage")
        if r.randrange(5) == 0:
            self.emit("\tmov $pml4_alt, %rax", "\tmov %rax, %cr3")
        for reg, val in (("cr4", self.value), ("cr0", self.value)):
            if r.randrange(8) == 0:
                self.emit(f"\tmov %{reg}, %rax", f"\tbtc ${r.randrange(32)}, %rax", f"\tmov %rax, %{reg}")
        if r.randrange(8) == 0:
            self.emit("\tmov $0xc0000080, %ecx", "\trdmsr", f"\tbtc ${r.choice([0, 8, 10, 11, 14, 15, r.randrange(32)])}, %eax", "\twrmsr")
        if r.randrange(3):  # an interrupt storm: PIC at a random base, PIT fast
            base = r.choice([0x20, 0x20, 0x08, 0x00, 0xf8, r.randrange(0, 256, 8)])
            div = r.choice([1, 2, 3, 10, 100, 1193, r.randrange(1, 65536)])
            mode = r.choice([0x34, 0x36, 0x30, 0x32, 0x38, 0x3a])
            self.emit("\tmov $0x11, %al", "\tout %al, $0x20", "\tout %al, $0xa0",
                      f"\tmov ${base:#x}, %al", "\tout %al, $0x21",
                      f"\tmov ${(base + 8) & 0xff:#x}, %al", "\tout %al, $0xa1",
                      "\tmov $4, %al", "\tout %al, $0x21", "\tmov $2, %al", "\tout %al, $0xa1",
                      f"\tmov ${r.choice([1, 3, 0x11])}, %al", "\tout %al, $0x21", "\tout %al, $0xa1",
                      f"\tmov ${r.choice([0, 0, 0xfe, r.randrange(256)])}, %al", "\tout %al, $0x21",
                      f"\tmov ${r.choice([0, 0xff, r.randrange(256)])}, %al", "\tout %al, $0xa1",
                      f"\tmov ${mode:#x}, %al", "\tout %al, $0x43",
                      f"\tmov ${div & 0xff:#x}, %al", "\tout %al, $0x40",
                      f"\tmov ${div >> 8:#x}, %al", "\tout %al, $0x40")
            if r.randrange(3) == 0:  # the RTC's periodic interrupt at its fastest
                self.emit("\tmov $0x0a, %al", "\tout %al, $0x70", "\tmov $0x23, %al", "\tout %al, $0x71",
                          "\tmov $0x0b, %al", "\tout %al, $0x70", "\tmov $0x42, %al", "\tout %al, $0x71")
            if r.randrange(4):
                self.emit("\tsti")

    def handler(self):
        r = self.r
        k = r.randrange(10)
        self.emit("\t.balign 16", "handler:", "\tmov $stack_top, %rsp", "\tincq hits")
        self.emit(f"\tcmpq ${r.choice([1000, 100000, 0x7fffffff])}, hits", "\tja done")
        if r.randrange(3):
            self.emit("\tmov $0x20, %al", "\tout %al, $0xa0", "\tout %al, $0x20")
        if k < 6:
            self.emit("\tjmp *resume")
        else:  # a fresh iretq frame (maybe with TF: a #DB storm)
            flags = r.choice(["0x2", "0x202", "0x202", "0x302", "0x40202"])
            self.emit("\tpushq $0x18", "\tpushq $stack_top", f"\tpushq ${flags}", "\tpushq $0x10",
                      "\tpushq resume", "\tiretq")

    def body(self):
        r = self.r
        classes = [(self.i_group6_7, 12), (self.i_crdr, 10), (self.i_msr, 10), (self.i_io, 14),
                   (self.i_flow, 14), (self.i_segment, 7), (self.i_flags, 5), (self.i_misc, 18),
                   (self.i_raw, 4), (self.i_gprs, 6)]
        fns = [f for f, _ in classes]
        weights = [w for _, w in classes]
        for i in range(self.n):
            self.slot = i
            self.emit(f"slot_{i}:", f"\tmovl $slot_{i + 1}, resume")
            r.choices(fns, weights)[0]()
        self.emit(f"slot_{self.n}:", "done:", f"\tmov ${self.seed & 0x7f:#x}, %al", "\tout %al, $0xf4",
                  "\tcli", "\thlt")

    def data(self):
        r = self.r
        # A plausible GDT, each descriptor maybe mutated: null, code32, code64,
        # data, TSS (16 bytes), LDT (16 bytes), a call gate (16 bytes), user code/data.
        gdt = [0, 0x00cf9a000000ffff, 0x00af9a000000ffff, 0x00cf92000000ffff, None, None, None,
               0x00affa000000ffff, 0x00cff2000000ffff]
        self.emit("\t.data", "\t.balign 4096", "idt:", "\t.fill 4096, 1, 0",
                  "idtr:", "\t.word 4095", "\t.quad idt",
                  "idtr_garbage:", f"\t.word {r.randrange(0x10000)}", f"\t.quad {self.table_addr()}",
                  "gdtr_boot:", "\t.word 0x2f", "\t.quad 0x500",
                  "gdtr_alt:", f"\t.word {r.choice([0x5f, 0x5f, 0x27, 0xffff, r.randrange(0x10000)])}", "\t.quad gdt_alt",
                  "gdtr_garbage:", f"\t.word {r.randrange(0x10000)}", f"\t.quad {self.table_addr()}",
                  "resume:", "\t.quad slot_0", "hits:", "\t.quad 0",
                  "mxcsr_ok:", f"\t.long {r.choice([0x1f80, 0x1f80, 0x0, 0xffbf, 0x7f80])}",
                  "\t.balign 64", "fxarea:", "\t.fill 24, 1, 0", "\t.long 0x1f80, 0xffff",
                  "\t.fill 1024 - 32, 1, 0",
                  "\t.balign 16", "gdt_alt:")
        for d in gdt:
            if d is None:  # a 16-byte system descriptor: TSS, LDT or call gate
                kind = r.choice([0x89, 0x82, 0x8c, 0x8b])
                self.emit("\t.word 0x67, 0",
                          f"\t.byte 0x21, {kind:#x}, 0, 0", "\t.quad 0")
            else:
                if r.randrange(4) == 0:
                    d ^= 1 << r.randrange(64)
                self.emit(f"\t.quad {d:#x}")
        # Return targets for a ret with a random %rsp (--exclude branch-ones)
        self.emit("\t.balign 16", "retpad:")
        for _ in range(64):
            self.emit(f"\t.quad {r.choice(['slot_0', f'slot_{r.randrange(self.n)}', self.jump_addr()])}")
        # far pointers into our code with assorted selectors
        self.emit("farptrs:")
        for _ in range(4):
            self.emit("\t.quad slot_0", f"\t.word {r.choice([0x8, 0x10, 0x20, 0x28, 0x30, 0x33, 0])}")
        # An alternative PML4: entry 0 maps the boot PDPT (so code keeps
        # running), the others random; its PDPT copy has random flags.
        self.emit("\t.balign 4096", "pml4_alt:", f"\t.quad 0xa000 | {r.choice(['0x3', '0x7', '0x23', '0x8000000000000003', '0x3'])}")
        for _ in range(511):
            self.emit(f"\t.quad {r.choice(['0', '0', hex(r.getrandbits(64)), '0xa003', 'pml4_alt + 3'])}")
        # Scratch: random bytes, the target of most memory operands.
        self.emit("\t.balign 4096", "scratch:")
        for _ in range(8192 // 16):
            self.emit("\t.byte " + ", ".join(hex(r.randrange(256)) for _ in range(16)))
        self.emit("\t.balign 4096", "\t.fill 4096, 1, 0", "stack_top:", "\t.fill 64, 1, 0")

    def generate(self):
        self.prologue()
        self.body()
        self.handler()
        self.data()
        return "\n".join(self.out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("seed", type=int)
    ap.add_argument("-n", type=int, default=300, help="random slots (default 300)")
    ap.add_argument("--mem", type=lambda s: int(s, 0), default=32 << 20,
                    help="the guest RAM size btvm gets (for 'above RAM' addresses)")
    ap.add_argument("--exclude", default="",
                    help="comma-separated classes to leave out: " +
                    "; ".join(f"{k}: {v}" for k, v in EXCLUDABLE.items()))
    ap.add_argument("-o", default="-")
    a = ap.parse_args()
    text = Gen(a.seed, a.n, a.mem, [c for c in a.exclude.split(",") if c]).generate()
    if a.o == "-":
        sys.stdout.write(text)
    else:
        with open(a.o, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
