#!/usr/bin/env python3
"""check-layers: every #include of the tree against the matrix in docs/layers.md.

A module is a directory.  A file may include headers of its own directory,
of the modules its row lists under "may include", and, of the controlled
external headers (every header named in any row's "external" column), only
those its own row lists.  A directory with no row is an error too, so a new
module has to be placed in the matrix before it builds into the tree.

usage: check-layers.py [--root DIR] [--matrix FILE] [--inject FILE:HEADER]...
  --inject pretends FILE also includes HEADER ("x/y.h" or "<x.h>"): the
  check step uses it to prove that a new arrow fails.
Exit 0 when every include is allowed, 1 on a violation, 2 on a bad matrix.
"""
import os
import re
import subprocess
import sys

ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|(.*)\|\s*$")
TICKS = re.compile(r"`([^`]+)`")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def die(msg):
    print(f"check-layers: {msg}", file=sys.stderr)
    sys.exit(2)


def read_matrix(path):
    rows = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        die(f"cannot read the matrix {path}: {e.strerror}")
    for n, line in enumerate(lines, 1):
        m = ROW.match(line)
        if not m:
            continue
        mod = m.group(1)
        if mod in rows:
            die(f"{path}:{n}: module {mod} has two rows")
        rows[mod] = (set(TICKS.findall(m.group(2))), set(TICKS.findall(m.group(3))))
    if not rows:
        die(f"{path}: no matrix rows (| `module` | `dep`, ... | `header`, ... |)")
    for mod, (deps, _) in rows.items():
        for d in deps:
            if d not in rows and not d.endswith("/**"):
                die(f"{path}: {mod} may include {d}, which has no row")
    return rows


def row_for(rows, mod):
    if mod in rows:
        return rows[mod]
    for key, val in rows.items():  # subtree rows: tests/**
        if key.endswith("/**") and (mod == key[:-3] or mod.startswith(key[:-2])):
            return val
    return None


def controlled(rows):
    hdrs = set()
    for _, ext in rows.values():
        hdrs |= ext
    return hdrs


def ext_match(header, patterns):
    """A pattern ending in / names a directory of headers (Zydis/)."""
    for p in patterns:
        if header == p or (p.endswith("/") and header.startswith(p)):
            return p
    return None


def sources(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "*.c", "*.h", "*.S"],
                             capture_output=True, text=True, check=True).stdout
        return [f for f in out.splitlines() if f]
    except (OSError, subprocess.CalledProcessError):
        die(f"{root}: not a git checkout (the check reads `git ls-files`)")


def main(argv):
    root, matrix, inject = ".", None, []
    it = iter(argv)
    for a in it:
        if a == "--root":
            root = next(it, None) or die("--root needs a directory")
        elif a == "--matrix":
            matrix = next(it, None) or die("--matrix needs a file")
        elif a == "--inject":
            v = next(it, None) or die("--inject needs FILE:HEADER")
            f, _, h = v.partition(":")
            inject.append((f, h))
        else:
            die(f"unknown argument {a} (see the header of this script)")
    matrix = matrix or os.path.join(root, "docs/layers.md")
    rows = read_matrix(matrix)
    ext_all = controlled(rows)
    files = sources(root)
    bad = 0
    arrows = set()
    for f in files:
        mod = os.path.dirname(f)
        row = row_for(rows, mod)
        if row is None:
            print(f"{f}: module {mod} has no row in {matrix}: add one")
            bad += 1
            continue
        deps, ext = row
        try:
            lines = open(os.path.join(root, f), encoding="utf-8", errors="replace").read().splitlines()
        except OSError as e:
            die(f"cannot read {f}: {e.strerror}")
        incs = [(n, m.group(1), m.group(2)) for n, l in enumerate(lines, 1) if (m := INCLUDE.match(l))]
        incs += [(0, "<" if h.startswith("<") else '"', h.strip("<>\"")) for g, h in inject if g == f]
        for n, kind, h in incs:
            where = f"{f}:{n}" if n else f"{f} (injected)"
            if kind == '"':
                tmod = os.path.dirname(h)
                if tmod == mod or tmod in deps or any(d.endswith("/**") and (tmod == d[:-3] or tmod.startswith(d[:-2])) for d in deps):
                    arrows.add((mod, tmod))
                    continue
                print(f"{where}: {mod} includes {h}: {mod} -> {tmod} is not allowed by {matrix}")
                bad += 1
            else:
                p = ext_match(h, ext_all)
                if p and not ext_match(h, ext):
                    print(f"{where}: {mod} includes <{h}>: only the modules whose row lists `{p}` may")
                    bad += 1
    nmods = len({os.path.dirname(f) for f in files})
    print(f"check-layers: {len(files)} files in {nmods} directories, "
          f"{len({a for a in arrows if a[0] != a[1]})} distinct arrows, {bad} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
