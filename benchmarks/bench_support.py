"""What the Python benchmarks share: running a command, and one wrk measurement."""
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
