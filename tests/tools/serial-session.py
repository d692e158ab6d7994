#!/usr/bin/env python3
"""Drive a VM's serial console like a user at a terminal, and time it.

    serial-session.py --out DIR [--deadline S] -- VMM ARGS...

Starts the VMM with its console on a pipe (stdin/stdout), and then:
  1. waits for the getty's "login:" prompt (the boot),
  2. types "root", answers "Password:" with "btkern", waits for a shell,
  3. runs a few commands (uname -r, systemctl is-system-running --wait,
     mount | grep ' / ', cat /etc/motd) between two marker lines,
  4. types "poweroff" and waits for the VMM to exit by itself.

Every step has its own deadline (the whole run at most --deadline seconds);
when one passes, the VMM is stopped by its PID (SIGTERM, then SIGKILL).
Leaves DIR/console.txt (everything the console printed, \\r stripped) and
prints one JSON object on stdout:
  {"login_prompt_s": ..., "shell_s": ..., "commands_s": ..., "exit_s": ...,
   "exit_status": N, "failed_step": null | "NAME", "outputs": {...}}
Times are host wall seconds from the VMM's start.  Exit status 0 when every
step passed and the VMM exited 0, else 1.
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

COMMANDS = [
    ("uname", "uname -r"),
    ("state", "systemctl is-system-running --wait"),
    ("root", "mount | grep ' on / '"),
    ("motd", "cat /etc/motd"),
]


class Session:
    def __init__(self, argv, out, deadline):
        self.t0 = time.monotonic()
        self.deadline = self.t0 + deadline
        self.log = open(os.path.join(out, "console.txt"), "wb")
        self.buf = b""
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )

    def now(self):
        return time.monotonic() - self.t0

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return True
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            return False
        self.log.write(data.replace(b"\r", b""))
        self.log.flush()
        self.buf += data
        return True

    def expect(self, pattern, seconds):
        """Wait for a regex (bytes) in the output since the last match."""
        rx = re.compile(pattern)
        until = min(self.deadline, time.monotonic() + seconds)
        while True:
            m = rx.search(self.buf)
            if m:
                before = self.buf[: m.start()]
                self.buf = self.buf[m.end() :]
                return before
            left = until - time.monotonic()
            if left <= 0:
                return None
            if not self._read(min(left, 0.2)):
                return None  # the VMM closed its console: it exited

    def send(self, text):
        """Type a line as a user would: after a pause (the program that
        printed the prompt may not be reading yet), one key at a time at
        100 keys a second, \r for Enter (what a terminal sends)."""
        self._read(0.5)
        try:
            for c in text.encode() + b"\r":
                self.proc.stdin.write(bytes([c]))
                self.proc.stdin.flush()
                self._read(0.01)
        except BrokenPipeError:
            pass

    def wait_exit(self, seconds):
        until = min(self.deadline, time.monotonic() + seconds)
        while self.proc.poll() is None and time.monotonic() < until:
            self._read(0.1)
        while self._read(0):  # drain what is left
            if self.proc.poll() is not None and not select.select(
                [self.proc.stdout], [], [], 0
            )[0]:
                break
        return self.proc.poll()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def main():
    args = sys.argv[1:]
    out, deadline = None, 900.0
    while args and args[0] != "--":
        if args[0] == "--out":
            out = args[1]
            args = args[2:]
        elif args[0] == "--deadline":
            deadline = float(args[1])
            args = args[2:]
        else:
            sys.exit("serial-session: unknown option %r" % args[0])
    if not out or len(args) < 2:
        sys.exit("usage: serial-session.py --out DIR [--deadline S] -- VMM ARGS...")
    os.makedirs(out, exist_ok=True)
    s = Session(args[1:], out, deadline)
    res = {"failed_step": None, "outputs": {}}

    def fail(step):
        res["failed_step"] = step
        res["exit_status"] = s.stop()
        s.log.close()
        print(json.dumps(res))
        sys.exit(1)

    if s.expect(rb"login: ", deadline) is None:
        fail("login_prompt")
    res["login_prompt_s"] = round(s.now(), 3)
    s.send("root")
    if s.expect(rb"Password: ", 60) is None:
        fail("password_prompt")
    s.send("btkern")
    if s.expect(rb"root@[^:]*:[^#]*# ", 120) is None:
        fail("shell")
    res["shell_s"] = round(s.now(), 3)
    for name, cmd in COMMANDS:
        s.send("echo @@BEGIN-%s; %s; echo @@END-%s" % (name, cmd, name))
        # the echoed command line holds "@@BEGIN-name;": only the output
        # has the marker at the end of a line
        if s.expect(rb"@@BEGIN-" + name.encode() + rb"\r?\n", 60) is None:
            fail("command_" + name)
        got = s.expect(rb"@@END-" + name.encode() + rb"\r?\n", 300)
        if got is None:
            fail("command_" + name)
        res["outputs"][name] = got.decode(errors="replace").replace("\r", "").strip()
    res["commands_s"] = round(s.now(), 3)
    s.send("poweroff")
    status = s.wait_exit(300)
    if status is None:
        fail("poweroff")
    res["exit_s"] = round(s.now(), 3)
    res["exit_status"] = status
    s.log.close()
    print(json.dumps(res))
    sys.exit(0 if status == 0 else 1)


if __name__ == "__main__":
    main()
