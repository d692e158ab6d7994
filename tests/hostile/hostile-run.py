#!/usr/bin/env python3
"""Run hostile guest kernels (tests/guests/hostile-gen.py) under btvm.

    tests/hostile/hostile-run.py --build BUILD [--seeds N | --duration S]
                                 [--start SEED] [--seed SEED] [--jobs J]
                                 [--timeout T] [--mem SIZE] [--slots N]
                                 [--keep DIR]

Each seed gives one guest image (the same seed always the same image),
run as `btvm run --kernel IMG --mem SIZE --timeout T`.  Allowed outcomes
(btvm's exit statuses, docs/runtime.md): an odd status (the guest's exit
port), 0 (the guest powered off through ACPI), 4 (a documented limit such
as a store to device memory), 8 (the guest reset the machine: a triple
fault, 0xcf9, 0x64, 0x92), 10 (hlt with IF=0), 124 (--timeout).  Every
other outcome is a finding: death by a
signal (SIGSEGV, SIGABRT, SIGSYS from the sandbox), any other status, a
message with "bug", "internal", "assert" or "touched host memory", or a
run longer than T + 1 s (killed by its PID: a hang).  A finding prints
its seed, the command that reproduces it and the last stderr lines, and
the script exits 1.  The last line is the summary, e.g.

    hostile: 200 guests, 0 findings (outcomes: 10=2 124=16 4=38 8=94 odd=2; ...) ...
"""
import argparse
import concurrent.futures
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(REPO, "tests", "guests", "hostile-gen.py")
LDS = os.path.join(REPO, "tests", "guests", "hostile.ld")
BAD_WORDS = re.compile(r"bug|internal|assert|touched host memory", re.I)
# Status 4 with one of these is a documented limit, not a finding: stores
# to MMIO or split across non-adjacent pages (docs/runtime.md "Known limits"), instructions the translator
# refuses as UNSUPPORTED (docs/xlat.md: enter, xlat, 16-bit push/pop ...),
# a guest kernel %rsp that is not canonical (translated code runs on the
# guest's stack; docs/security.md, finding 1).
KNOWN_LIMITS = [("rsp-not-canonical", re.compile(r"stack pointer .* is not canonical")),
                ("device-store", re.compile(r"which is device memory: not supported yet")),
                ("split-store", re.compile(r"which is split: not supported yet")),
                ("untranslatable", re.compile(r"cannot translate the guest code"))]


def load_gen():
    spec = importlib.util.spec_from_file_location("hostile_gen", GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s)
    if not m:
        raise argparse.ArgumentTypeError(f"{s}: not a size (e.g. 32M)")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def classify(rc, err, wall, limit):
    """-> (outcome, finding or None)"""
    if wall is None:
        return "hang", f"still running after {limit:.1f} s: killed (a hang)"
    if rc < 0:
        return f"signal{-rc}", f"died by signal {-rc} ({signal.Signals(-rc).name})"
    bad = BAD_WORDS.search(err)
    if rc == 124:
        out = "124"
    elif rc > 0 and rc & 1:
        out = "odd"
    elif rc == 0:
        out = "0:poweroff"
    elif rc == 8:
        out = "8:triple" if "triple fault" in err else "8:reset"
    elif rc == 10:
        out = "10:halt"
    elif rc == 4:
        out = "4:error"
        for name, pat in KNOWN_LIMITS:
            if pat.search(err):
                out = f"4:{name}"
                break
    else:
        return f"status{rc}", f"exit status {rc} (allowed: odd, 0, 4, 8, 10, 124)"
    if bad:
        return out, f"status {rc} with a message saying '{bad.group(0)}'"
    if out == "4:error":
        return out, "status 4 from a runtime error that is no documented limit"
    if wall > limit:
        return out, f"ran {wall:.2f} s, more than {limit:.1f} s"
    return out, None


def run_one(gen, a, seed, work):
    d = os.path.join(work, str(seed))
    os.makedirs(d, exist_ok=True)
    src, elf, errf = (os.path.join(d, f) for f in ("guest.S", "guest.elf", "stderr"))
    with open(src, "w") as f:
        f.write(gen.Gen(seed, a.slots, a.mem, a.exclude).generate())
    cc = subprocess.run([a.cc, "-nostdlib", "-static", "-no-pie", f"-Wl,-T,{LDS}",
                         "-Wl,--build-id=none", "-o", elf, src], capture_output=True, text=True)
    if cc.returncode != 0:  # a generator bug: a finding of this tool, not of btvm
        return seed, "gen-error", "the guest does not assemble: " + cc.stderr[-400:], 0.0, d
    cmd = [a.btvm, "run", "--kernel", elf, "--mem", a.mem_arg, "--timeout", str(a.timeout)]
    limit = a.timeout + a.slack
    t0 = time.monotonic()
    with open(errf, "wb") as ef:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef)
        try:
            p.wait(timeout=limit)
            wall = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)  # only the btvm this call started
            p.wait()
            wall = None
    with open(errf, "rb") as ef:
        err = ef.read().decode("utf-8", "replace")
    out, finding = classify(p.returncode, err, wall, limit)
    if finding:
        finding += guest_insn(err, elf)
    elif a.verbose and out == "4:untranslatable":
        out += guest_insn(err, elf)
    return seed, out, finding, (wall if wall is not None else limit), d


def guest_insn(err, elf):
    """': <the guest instruction at the address a message names>', or ''."""
    m = re.search(r"(?:guest|rip) (0x[0-9a-f]+)", err)
    if not m:
        return ""
    at = int(m.group(1), 16)
    try:
        dis = subprocess.run(["objdump", "-d", f"--start-address={at:#x}",
                              f"--stop-address={at + 16:#x}", elf],
                             capture_output=True, text=True).stdout
    except OSError:
        return ""
    for line in dis.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].strip().rstrip(":") == f"{at:x}":
            return f" (guest {at:#x}: {' '.join(parts[2].split())})"
    return f" (guest {at:#x})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--seeds", type=int, default=None, help="run this many seeds")
    ap.add_argument("--duration", type=float, default=None,
                    help="start new seeds for this many seconds")
    ap.add_argument("--start", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--seed", type=int, action="append", default=[],
                    help="run exactly this seed (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1.0, help="btvm --timeout (default 1)")
    ap.add_argument("--slack", type=float, default=1.0,
                    help="a run longer than timeout + slack is a hang (default 1)")
    ap.add_argument("--mem", dest="mem_arg", default="32M")
    ap.add_argument("--slots", type=int, default=300)
    ap.add_argument("--exclude", default="",
                    help="comma-separated classes of open findings to leave out "
                    "(hostile-gen.py EXCLUDABLE)")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--keep", help="copy the guest, its source and stderr of findings here")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per guest")
    a = ap.parse_args()
    a.mem = size(a.mem_arg)
    excl = a.exclude
    a.btvm = os.path.join(a.build, "bin", "btvm")
    if not os.access(a.btvm, os.X_OK):
        sys.exit(f"hostile: {a.btvm} is missing: make -j2 all")
    if a.seed:
        seeds = iter(a.seed)
    elif a.seeds is not None:
        seeds = iter(range(a.start, a.start + a.seeds))
    else:
        seeds = iter(range(a.start, 1 << 62))
    deadline = time.monotonic() + a.duration if a.duration else None
    gen = load_gen()
    a.exclude = [c for c in excl.split(",") if c]
    try:
        gen.Gen(0, 1, a.mem, a.exclude)
    except ValueError as e:
        sys.exit(f"hostile: --exclude: {e}")
    work = tempfile.mkdtemp(prefix="hostile.")
    outcomes, findings, walls, kinds = {}, [], [], {}
    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
            running = set()
            while True:
                while len(running) < a.jobs and (deadline is None or time.monotonic() < deadline):
                    seed = next(seeds, None)
                    if seed is None:
                        break
                    running.add(pool.submit(run_one, gen, a, seed, work))
                if not running:
                    break
                done, running = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in done:
                    seed, out, finding, wall, d = fut.result()
                    if a.verbose:
                        print(f"hostile: seed {seed}: {out} in {wall:.2f} s" +
                              (f": FINDING: {finding}" if finding else ""), flush=True)
                    out = out.split(" (")[0]
                    outcomes[out] = outcomes.get(out, 0) + 1
                    walls.append(wall)
                    if finding:
                        findings.append(seed)
                        kind = re.sub(r"\(guest 0x[0-9a-f]+: (\S+).*\)$", r"(\1)", finding)
                        kind = re.sub(r" \(guest 0x[0-9a-f]+\)", "", kind)
                        kind = re.sub(r"ran [0-9.]+ s", "ran too long", kind)
                        kinds[kind] = kinds.get(kind, 0) + 1
                        tail = ""
                        if os.path.exists(os.path.join(d, "stderr")):
                            with open(os.path.join(d, "stderr"), errors="replace") as f:
                                lines = [ln for ln in f.read().splitlines() if ln.strip()]
                            tail = "\n".join("    " + ln for ln in lines[-4:])
                        print(f"hostile: FINDING seed {seed}: {finding}\n"
                              f"  reproduce: tests/hostile/hostile-run.py --build {a.build} "
                              f"--seed {seed} --timeout {a.timeout:g} --mem {a.mem_arg} "
                              f"--slots {a.slots}{' --exclude ' + excl if excl else ''} --keep DIR\n"
                              f"  (or: tests/guests/hostile-gen.py {seed} -n {a.slots} "
                              f"--mem {a.mem:#x}{' --exclude ' + excl if excl else ''} -o g.S; cc -nostdlib -static -no-pie "
                              f"-Wl,-T,tests/guests/hostile.ld -Wl,--build-id=none -o g.elf g.S; "
                              f"btvm run --kernel g.elf --mem {a.mem_arg} --timeout {a.timeout:g})\n"
                              f"  last stderr lines:\n{tail}", flush=True)
                        if a.keep:
                            dst = os.path.join(a.keep, f"seed-{seed}")
                            shutil.rmtree(dst, ignore_errors=True)
                            shutil.copytree(d, dst)
                    shutil.rmtree(d, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = sum(outcomes.values())
    top = {}
    for k, v in outcomes.items():
        top[k.split(":")[0]] = top.get(k.split(":")[0], 0) + v
    mix = " ".join(f"{k}={v}" for k, v in sorted(top.items()))
    fours = " ".join(f"{k[2:]} {v}" for k, v in sorted(outcomes.items()) if k.startswith("4:"))
    eights = " ".join(f"{k[2:]} {v}" for k, v in sorted(outcomes.items()) if k.startswith("8:"))
    elapsed = time.monotonic() - t0
    print(f"hostile: {n} guests, {len(findings)} findings (outcomes: {mix}; 4 = {fours or '-'}; "
          f"8 = {eights or '-'}); "
          f"{elapsed:.0f} s, longest run {max(walls, default=0):.2f} s, --timeout {a.timeout:g} "
          f"--mem {a.mem_arg} --slots {a.slots}{' --exclude ' + excl if excl else ''}" +
          (f"; finding seeds: {' '.join(map(str, sorted(findings)[:30]))}"
           f"{' ...' if len(findings) > 30 else ''}" if findings else ""))
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"hostile:   {count:5d} x {kind}")
    return 1 if findings or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
