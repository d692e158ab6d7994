#!/usr/bin/env python3
"""Times one `pretrans diff --html` report in headless Chromium (helper of
tests/bench/diff-html-bench.sh; works on this version's report and on the
earlier one with every row in the page).

    diff_html_measure.py REPORT.html RUNS

Each run starts a fresh browser and measures:
  load    Page.navigate until the load event has fired and the page's main
          thread answers (interactive); with the CPU time (user + system)
          all of Chromium's processes spent meanwhile, which depends less
          on the machine's other work
  sort    click on the "old size" header until layout is done
  class   click on the "moved" check box (an immediate refilter) until
          layout is done
  type    one keystroke in the text filter until the table is redrawn
          (this version waits for a 120 ms pause in typing first)
Prints one line per run and the medians; a failed run is counted and
printed as such.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from cdp import Browser, CDPError  # noqa: E402

SORT = """(() => { const t = performance.now(); document.querySelectorAll('#funcs th')[4].click();
  document.body.offsetHeight; return performance.now() - t; })()"""
CLASS = """(() => { const c = [...document.querySelectorAll('#controls input[type=checkbox]')][1];
  const t = performance.now(); c.click(); document.body.offsetHeight; return performance.now() - t; })()"""
TYPE = """(async () => {
  const q = document.getElementById('q'), tb = document.querySelector('#funcs tbody');
  const virtual = !!document.getElementById('data');
  let done = false; const mo = new MutationObserver(() => { done = true; });
  mo.observe(tb, {childList: true});
  const t = performance.now();
  q.value = 'sched'; q.dispatchEvent(new Event('input'));
  if (virtual) while (!done) await new Promise(r => setTimeout(r, 2));
  document.body.offsetHeight; mo.disconnect();
  return performance.now() - t; })()"""


def cpu_seconds(root):
    """User + system CPU time of process root and its descendants."""
    kids, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(st[1]), []).append(int(d))
        cpu[int(d)] = int(st[11]) + int(st[12])
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0)
        todo += kids.get(p, [])
    return total / os.sysconf("SC_CLK_TCK")


def one(url):
    with Browser(timeout=600) as b:
        c0 = cpu_seconds(b.proc.pid)
        load = b.load(url)
        c1 = cpu_seconds(b.proc.pid)
        return load, b.eval(SORT) / 1e3, b.eval(CLASS) / 1e3, b.eval(TYPE, True) / 1e3, c1 - c0


def main():
    report, runs = sys.argv[1], int(sys.argv[2])
    res, failed = [], 0
    for k in range(runs):
        try:
            r = one("file://" + os.path.abspath(report))
            res.append(r)
            print(f"  run {k + 1}: load {r[0]:.2f} s (CPU {r[4]:.2f} s), sort {r[1]:.3f} s, "
                  f"class filter {r[2]:.3f} s, typed filter {r[3]:.3f} s")
        except CDPError as e:
            failed += 1
            print(f"  run {k + 1}: FAILED: {e}")
    if res:
        med = [statistics.median(x[j] for x in res) for j in range(5)]
        print(f"  median of {len(res)} ({failed} failed): interactive {med[0]:.2f} s (CPU {med[4]:.2f} s), "
              f"sort {med[1]:.3f} s, class filter {med[2]:.3f} s, typed filter {med[3]:.3f} s")
    return 1 if failed == runs else 0


if __name__ == "__main__":
    sys.exit(main())
