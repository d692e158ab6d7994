#!/usr/bin/env python3
"""Attribute perf samples inside btvm's code cache to guest code.

perf does not read a JIT map for btvm's code cache (a memfd, not anonymous
memory), so this reads the raw sample addresses instead:

  btvm --perf-map ...                      # writes /tmp/perf-PID.map
  perf record -o P.data -- btvm ...        # or around a benchmark
  perf script -i P.data --comm btvm -F ip > ips.txt
  tests/tools/perf-guest.py /tmp/perf-PID.map ips.txt [VMLINUX] [--top N]

prints the share of all samples in translated code, then the guest
functions (from VMLINUX's symbols; user code as u:VA) with the most
samples.  A code cache flush reuses host addresses: the latest block
installed at an address wins.
"""
import bisect
import subprocess
import sys


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    top = 40
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
        args = [a for a in args if a != str(top)]
    if len(args) < 2:
        sys.exit("usage: perf-guest.py PERF_MAP IPS [VMLINUX] [--top N]")
    blocks = {}
    with open(args[0]) as f:
        for line in f:
            host, size, name = line.split()
            blocks[int(host, 16)] = (int(size, 16), name)
    starts = sorted(blocks)
    syms = []
    if len(args) > 2:
        out = subprocess.run(["nm", "-n", args[2]], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in "tTwW":
                syms.append((int(p[0], 16), p[2]))
    sym_addrs = [a for a, _ in syms]
    total = in_code = 0
    per = {}
    with open(args[1]) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            total += 1
            ip = int(line, 16)
            i = bisect.bisect_right(starts, ip) - 1
            if i < 0:
                continue
            size, name = blocks[starts[i]]
            if ip >= starts[i] + size:
                continue
            in_code += 1
            _, mode, va = name.split(":")
            va = int(va, 16)
            key = "u:%x" % va
            if mode == "k" and syms:
                j = bisect.bisect_right(sym_addrs, va) - 1
                key = syms[j][1] if j >= 0 else "k:%x" % va
            per[key] = per.get(key, 0) + 1
    if not total:
        sys.exit("perf-guest.py: no samples in " + args[1])
    print("%d samples, %d (%.1f%%) in translated code" % (total, in_code,
                                                         100.0 * in_code / total))
    for key, n in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
        print("%6.2f%%  %s" % (100.0 * n / total, key))


if __name__ == "__main__":
    main()
