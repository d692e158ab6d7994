#!/usr/bin/env python3
"""Screenshot of a `pretrans diff --html` report in headless Chromium (the
pictures in docs/diff.md).

    diff-html-screenshot.py REPORT.html OUT.png [FUNCTION]

Without FUNCTION: the top of the page (chart, tables, function table).
With FUNCTION (a key such as __acpi_power_off): the table filtered to it and
its side-by-side diff, scrolled into view.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser  # noqa: E402


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    report, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    with Browser(width=1400, height=1000) as b:
        b.load("file://" + report)
        if len(sys.argv) == 4:
            key = json.dumps(sys.argv[3])
            found = b.eval(f"""(async () => {{
                const q = document.getElementById('q'); q.value = {key}; q.dispatchEvent(new Event('input'));
                await new Promise(r => setTimeout(r, 300));
                const a = [...document.querySelectorAll('#funcs tbody a')].find(a => a.textContent === {key});
                if (!a) return false;
                a.click();
                await new Promise(r => setTimeout(r, 100));
                document.getElementById('controls').scrollIntoView();
                return true; }})()""", True)
            if not found:
                sys.exit(f"diff-html-screenshot: {sys.argv[3]} has no diff in {report}")
        b.screenshot(out)


if __name__ == "__main__":
    main()
