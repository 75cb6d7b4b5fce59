"""What the Python harnesses of Tests/ (and benchmarks/) share: free ports, waiting for a
listener, child processes with their output kept, /proc figures, the forms of an HTML page
as a browser without JavaScript follows them, and a placeholder certificate. Standard
library only.

    sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
    from ssogate_support import Proc, check, free_port, wait_for_port
"""
import collections
import html
import os
import re
import socket
import subprocess
import threading
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def wait_for_port(port, proc=None, seconds=15):
    """Until something accepts on 127.0.0.1:port; fails early when `proc` (a Proc) exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode} before listening on {port}:\n    {proc.tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


# MARK: - Processes


class Proc:
    """A child process whose combined output is kept (the gateway logs to stdout)."""

    def __init__(self, name, args, cwd=None, cpu=None, log_path=None, env=None):
        """cpu: run under `taskset -c cpu`. log_path: the output goes to that file (read back
        by `lines`) instead of a pipe this process must drain. env: the whole environment."""
        self.name = name
        self.log_path = log_path
        if cpu is not None:
            args = ["taskset", "-c", str(cpu)] + list(args)
        if log_path:
            with open(log_path, "w") as out:
                self.popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)
        else:
            self.popen = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)
        self._lines = collections.deque(maxlen=20000)
        self.exit_status = None

    @property
    def lines(self):
        if self.log_path:
            with open(self.log_path, errors="replace") as f:
                return f.read().splitlines()
        return self._lines

    @property
    def pid(self):
        return self.popen.pid

    def drain(self):
        """Keeps reading the output from now on, so the child never blocks on a full pipe."""
        if self.log_path:
            return

        def run():
            for line in self.popen.stdout:
                self._lines.append(line.rstrip("\n"))
        threading.Thread(target=run, daemon=True).start()

    def grep(self, word):
        return [line for line in list(self.lines) if word in line]

    def wait_for_line(self, word, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.grep(word)
            if found:
                return found[0]
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no line with {word!r} within {seconds} s:\n    {self.tail()}")

    def tail(self, n=8):
        return "\n    ".join(list(self.lines)[-n:])

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s. Returns the exit status."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.exit_status = self.popen.returncode
        return self.exit_status


def proc_status_kb(pid, key):
    """A /proc/PID/status figure in KiB (VmRSS, VmHWM...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class PeakRSS:
    """Samples a process's VmRSS every 50 ms while in use; `.peak_kb`, `.start_kb`."""

    def __init__(self, pid):
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.start_kb = proc_status_kb(self.pid, "VmRSS")
        self.peak_kb = self.start_kb
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, proc_status_kb(self.pid, "VmRSS"))
            except (OSError, AssertionError):
                return
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self):
        return (self.peak_kb - self.start_kb) / 1024


# MARK: - Pages and configurations


def forms(page):
    """Each <form>: (action, {hidden input name: value}, button ids)."""
    out = []
    for m in re.finditer(r'<form([^>]*)>(.*?)</form>', page, re.S):
        attrs, inner = m.group(1), m.group(2)
        action = html.unescape(re.search(r'action="([^"]*)"', attrs).group(1))
        fields = {html.unescape(n): html.unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', inner)}
        ids = re.findall(r'<button[^>]*id="([^"]*)"', inner)
        out.append((action, fields, ids))
    return out


def placeholder_certificate():
    """Config/minimal.yaml's certificate: a configuration that must load (`ssogate
    metadata`, `check`) before the real IdP's certificate is known. It verifies nothing."""
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                    open(os.path.join(ROOT, "Config/minimal.yaml")).read(), re.S).group(0)
    return "\n".join(line.strip() for line in pem.splitlines()) + "\n"


class Tally:
    """A script's checks: `ok`/`FAIL` lines under a prefix, counted; `on_failure(n)` runs
    after the n-th failure (a screenshot); `finish()` prints the sum and exits 1 on any."""

    def __init__(self, prefix, on_failure=None):
        self.prefix, self.on_failure = prefix, on_failure
        self.passed = self.failed = 0

    def check(self, name, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"ok   {self.prefix}: {name}")
        else:
            self.fail(f"{name}: {detail}")
        return condition

    def fail(self, text):
        self.failed += 1
        print(f"FAIL {self.prefix}: {text}")
        if self.on_failure:
            self.on_failure(self.failed)

    def finish(self):
        print(f"{self.prefix}: {self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)
