#!/usr/bin/env python3
"""check-diff-html: the `pretrans diff --html` report of a Debian-sized pair
in headless Chromium (Debian's package, driven over CDP by tests/tools/cdp.py).

    tests/integration/diff-html-browser.py BUILD

A synthetic pair of 50 000-function images (tests/tools/diff-synth-elf.py,
classes known in advance) is diffed by BUILD/bin/ptdiff into a report that
is loaded in the browser; then, asserting on the DOM after each action:
  - interactive: the script ran without error, the table shows the
    really-changed functions and holds only the rows of the visible window;
  - every changed and renamed function has its diff in the data;
  - sort by old size, both directions, against the data sorted here;
  - scroll to the middle: the rows there are the expected ones;
  - filter by text (debounced) and by class, against the data filtered here;
  - open the diff of the last changed function (past the old cap of 2 000)
    by its link: side-by-side rows with token-level highlights that keep
    the line's text.
Times are printed (the benchmark is tests/bench/diff-html-bench.sh).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from cdp import Browser, CDPError, chromium_path  # noqa: E402

failures = 0


def ok(msg):
    print(f"ok   - {msg}")


def bad(msg):
    global failures
    failures += 1
    print(f"FAIL - {msg}")


def check(cond, msg):
    (ok if cond else bad)(msg)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: diff-html-browser.py BUILD")
    build = sys.argv[1]
    ptdiff = os.path.join(build, "bin", "ptdiff")
    if not chromium_path():
        sys.exit("diff-html-browser: chromium is not installed: run tests/tools/deps.sh (apt-get install chromium)")
    tmp = tempfile.mkdtemp(prefix="diff-html-")
    old, new, html = (os.path.join(tmp, n) for n in ("old.elf", "new.elf", "report.html"))
    t0 = time.monotonic()
    want = json.loads(subprocess.check_output(
        [sys.executable, os.path.join(HERE, "..", "tools", "diff-synth-elf.py"), old, new, "--functions", "50000"]))
    t1 = time.monotonic()
    subprocess.run([ptdiff, "--html", html, old, new], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t2 = time.monotonic()
    if not os.path.exists(html):
        sys.exit(f"diff-html-browser: {ptdiff} wrote no report")
    text = open(html, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    if not m:
        sys.exit(f"diff-html-browser: {html} has no <script id=data> (not a report of this version)")
    data = json.loads(m.group(1))
    print(f"# pair generated in {t1 - t0:.1f} s, report ({len(text) / 1e6:.1f} MB) in {t2 - t1:.1f} s")

    cls = [data["cls"][c] for c in data["c"]]
    n = len(cls)
    counts = {c: cls.count(c) for c in data["cls"]}
    check(all(counts[c] == want[c] for c in ("changed", "renamed", "added", "removed"))
          and n == want["functions_old"] + want["added"],
          f"report classes as generated ({counts['changed']} changed, {n} functions)")
    with_diff = [d[0] for d in data["d"]]
    changed_i = [i for i, c in enumerate(cls) if c in ("changed", "renamed")]
    check(with_diff == changed_i and len(with_diff) > 2000,
          f"every changed/renamed function has a diff ({len(with_diff)})")

    real = [i for i, c in enumerate(cls) if c not in ("identical", "moved")]
    name = {i: k for i, k in enumerate(data["k"])}
    for i, k in data["ren"]:
        name[i] = f"{k} \u2192 {data['k'][i]}"

    rows_js = """[...document.querySelectorAll('#funcs tbody tr:not(.pad)')].map(r => r.dataset.key)"""
    with Browser() as b:
        t = b.load("file://" + html)
        print(f"# interactive after {t:.2f} s")
        check(b.eval("document.documentElement.dataset.ready") == "1", "page script ran to the end")
        shown = b.eval("document.getElementById('shown').textContent")
        check(shown == f"{len(real)} of {n} functions", f"counter: '{shown}'")
        rows = b.eval(rows_js)
        check(0 < len(rows) < 120 and rows == [data["k"][i] for i in real[: len(rows)]],
              f"only the visible window is in the DOM ({len(rows)} rows), in key order")
        height = b.eval("document.getElementById('tablewrap').scrollHeight")
        check(height >= len(real) * 21, f"the scroll area spans every row ({height} px)")

        # sort by old size (column 4), ascending then descending
        def sort_click():
            return b.eval("(() => { const t = performance.now(); document.querySelectorAll('#funcs th')[4].click();"
                          " document.body.offsetHeight; return performance.now() - t; })()")
        os_ = data["os"]
        t_sort = sort_click()
        rows = b.eval(rows_js)
        asc = sorted(real, key=lambda i: (os_[i], i))
        check(len(rows) > 20 and rows == [data["k"][i] for i in asc[: len(rows)]], f"sort by old size ascending ({t_sort:.0f} ms)")
        t_sort2 = sort_click()
        rows = b.eval(rows_js)
        desc = asc[::-1]
        check(len(rows) > 20 and rows == [data["k"][i] for i in desc[: len(rows)]], f"sort by old size descending ({t_sort2:.0f} ms)")

        # scroll to the middle
        mid = len(desc) // 2
        b.eval(f"(() => {{ const w = document.getElementById('tablewrap'); w.scrollTop = {mid} * 21;"
               " w.dispatchEvent(new Event('scroll')); })()")
        b.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", True)
        rows = b.eval(rows_js)
        seen = b.eval("""(() => {
            const w = document.getElementById('tablewrap').getBoundingClientRect();
            return [...document.querySelectorAll('#funcs tbody tr:not(.pad)')].filter(r => {
                const b = r.getBoundingClientRect(); return b.top >= w.top + 20 && b.bottom <= w.bottom; })
              .map(r => r.dataset.key); })()""")
        check(len(rows) < 120 and seen[:10] == [data["k"][i] for i in desc[mid:mid + 10]],
              f"scrolled to row {mid}: it is the first row on screen ({len(rows)} rows in the DOM)")

        # filter by text: six keystrokes, no redraw on any, one after the pause
        q = "fn_012"
        r = b.eval("""(async () => {
            const q = document.getElementById('q'), tb = document.querySelector('#funcs tbody');
            let muts = 0;
            const mo = new MutationObserver(() => muts++);
            mo.observe(tb, {childList: true});
            const t = performance.now();
            for (const s of ['f', 'fn', 'fn_', 'fn_0', 'fn_01', '%s']) {
                q.value = s; q.dispatchEvent(new Event('input'));
            }
            await new Promise(r => setTimeout(r, 0));
            const before = muts;
            while (muts === before && performance.now() - t < 10000) await new Promise(r => setTimeout(r, 5));
            await new Promise(r => setTimeout(r, 300));
            mo.disconnect();
            return [before, muts, performance.now() - t, document.getElementById('shown').textContent];
        })()""" % q, True)
        exp = [i for i in desc if q in name[i].lower() or q in data["files"][data["f"][i]].lower()]
        rows = b.eval(rows_js)
        check(r[0] == 0 and r[1] == 1, f"typing is debounced: no redraw on 6 keystrokes, then {r[1]}")
        check(r[3] == f"{len(exp)} of {n} functions" and rows == [data["k"][i] for i in exp[:40]],
              f"filter '{q}': {r[3]}")
        # and by class: tick 'moved' (checkbox value 1)
        b.eval("(() => { const c = document.querySelector('#controls input[value=\"1\"]'); c.click(); })()")
        exp2 = [i for i in sorted(range(n), key=lambda i: (os_[i], i), reverse=True)
                if cls[i] != "identical" and (q in name[i].lower() or q in data["files"][data["f"][i]].lower())]
        shown = b.eval("document.getElementById('shown').textContent")
        check(shown == f"{len(exp2)} of {n} functions", f"class filter 'moved' on: {shown}")

        # open the diff of the last changed function through its link
        last = [i for i in changed_i if cls[i] == "changed"][-1]
        b.eval("(() => { const q = document.getElementById('q'); q.value = %s; q.dispatchEvent(new Event('input')); })()"
               % json.dumps(data["k"][last]))
        b.eval("new Promise(r => setTimeout(r, 400))", True)
        t_open = b.eval("""(() => {
            const a = [...document.querySelectorAll('#funcs tbody a')].find(a => a.textContent === %s);
            if (!a) return -1;
            const t = performance.now(); a.click(); document.body.offsetHeight;
            return performance.now() - t; })()""" % json.dumps(data["k"][last]))
        b.eval("new Promise(r => setTimeout(r, 50))", True)
        v = b.eval("""(() => {
            const box = document.getElementById('diffview');
            const chg = [...box.querySelectorAll('table.sbs tr.chg')].map(r => {
                const o = r.querySelector('td.o'), n = r.querySelector('td.nw');
                return [o.textContent, [...o.querySelectorAll('span.x')].map(s => s.textContent).join(''),
                        n.textContent, [...n.querySelectorAll('span.x')].map(s => s.textContent).join('')];
            });
            return {hash: location.hash, head: box.querySelector('.head') ? box.querySelector('.head').textContent : '',
                    rows: box.querySelectorAll('table.sbs tr').length,
                    changes: box.querySelectorAll('tr.chg, tr.del, tr.ins').length, chg: chg};
        })()""")
        check(t_open >= 0 and v["hash"] == f"#d{last}" and data["k"][last] in v["head"],
              f"link opens the diff of {data['k'][last]} (entry {last}, {t_open:.0f} ms)")
        check(v["changes"] >= 1 and v["rows"] >= 2, f"side-by-side: {v['rows']} rows, {v['changes']} changed")
        dlist = data["d"][with_diff.index(last)][1]
        L = data["L"]
        pairs = [(L[x], L[y]) for s in dlist.get("h", []) if isinstance(s, list) for x, y in zip(s[0], s[1])]
        check([c[0] for c in v["chg"]] == [p[0] for p in pairs] and [c[2] for c in v["chg"]] == [p[1] for p in pairs],
              f"changed rows show the data's lines ({len(pairs)} paired)")
        token = [c for c in v["chg"] if c[1] and len(c[1]) < len(c[0])]
        check(not pairs or token, f"token-level highlights inside changed lines ({token[:1]})")
        b.screenshot(os.path.join(tmp, "diff.png"))
    subprocess.run(["rm", "-rf", tmp])
    print(f"diff-html-browser: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CDPError as e:
        sys.exit(f"diff-html-browser: {e}")
