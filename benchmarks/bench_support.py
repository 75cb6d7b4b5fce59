"""What the Python benchmarks share: running a command, and one wrk measurement."""
import datetime
import os
import re
import subprocess


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def wrk(url, duration, connections=32):
    """`wrk -t1 -cN` pinned to CPU 1: (req/s, p50 ms, p99 ms, non-2xx/3xx responses)."""
    out = run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return rps, ms("50"), ms("99"), int(errors.group(1)) if errors else 0


def stop_all(procs):
    """Stops processes in reverse start order: TERM, up to 10 s, then KILL."""
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def publish(name, lines):
    """Prints a Markdown report and keeps a copy under benchmarks/out/ (gitignored)."""
    text = "\n".join(lines)
    print(text)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}.md"), "w") as f:
        f.write(text)
