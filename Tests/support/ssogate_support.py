"""Support shared by the Python harnesses of Tests/: ports, processes, /proc figures.

Import with `sys.path.insert(0, <repo>/Tests/support)`. Plain standard library.
"""
import collections
import os
import socket
import subprocess
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_port(port, proc=None, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Proc:
    """A child process whose combined output is kept (a gateway's log goes to stdout)."""

    def __init__(self, name, args, cwd=None, env=None):
        self.name = name
        self.popen = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                      env=env, errors="replace")
        self.lines = collections.deque(maxlen=20000)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self):
        return self.popen.pid

    def grep(self, word):
        return [line for line in list(self.lines) if word in line]

    def tail(self, n=8):
        return "\n    ".join(list(self.lines)[-n:])

    def stop(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


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
