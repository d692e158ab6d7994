"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe
(standard library only): headless Chromium reads commands from its fd 3 and
writes replies and events to its fd 4, one JSON message per NUL byte.

    with Browser() as b:
        t = b.load("file:///tmp/report.html")   # seconds to interactive
        b.eval("document.title")

Used by tests/integration/diff-html-browser.sh and
tests/bench/diff-html-bench.sh.
"""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, width=1400, height=1000, timeout=120):
        exe = chromium_path()
        if not exe:
            raise CDPError("chromium not found: install it with tests/tools/deps.sh (apt-get install chromium)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="cdp-profile-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # the child's fds 3 and 4, whatever numbers the pipes got here
        hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [
            exe, "--headless", "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
            "--disable-gpu", "--disable-extensions", "--disable-background-networking", "--disable-sync",
            "--no-sandbox", "--disable-dev-shm-usage", f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}", "about:blank",
        ]
        self.proc = subprocess.Popen(args, preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_chrome_r, from_chrome_w, hi_r, hi_w):
            os.close(fd)
        os.set_inheritable(self.to_chrome, False)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", session=False)
            except (CDPError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise CDPError("no answer from chromium within the timeout")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise CDPError(f"chromium closed its pipe (exit {self.proc.poll()})")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise CDPError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def wait_event(self, method):
        deadline = time.monotonic() + self.timeout
        for i, m in enumerate(self.events):
            if m["method"] == method:
                del self.events[: i + 1]
                return m
        self.events.clear()
        while True:
            m = self._read(deadline)
            if m.get("method") == method:
                return m
            if m.get("method") == "Runtime.exceptionThrown":
                raise CDPError("page script error: " + json.dumps(m["params"]["exceptionDetails"])[:2000])

    def eval(self, expr, await_promise=False):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            raise CDPError(f"{expr[:80]}...: {json.dumps(r['exceptionDetails'])[:2000]}")
        return r["result"].get("value")

    def load(self, url):
        """Navigate and wait until the load event has fired and the page's
        main thread answers; returns the seconds this took."""
        self.events.clear()
        t0 = time.monotonic()
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        self.eval("1")
        t = time.monotonic() - t0
        for m in self.events:
            if m.get("method") == "Runtime.exceptionThrown":
                raise CDPError("page script error: " + json.dumps(m["params"]["exceptionDetails"])[:2000])
        return t

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
