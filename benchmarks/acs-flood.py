#!/usr/bin/env python3
"""Hostile SAML input: CPU per ACS validation per shape, and proxied latency during a flood.

    python3 benchmarks/acs-flood.py [--rounds N] [--duration S] [--flooders C]

1. `ssogate-bench hostile ROUNDS`: each shape of FuzzTargets.HostileShapes validated
   ROUNDS times in one thread (base64 decoding included), median and max CPU ms.
2. A release `ssogate serve` (CPU 0, `logins.per_client`/`total` off so every POST reaches
   validation: the worst case, an attacker with many addresses) in front of an nginx
   upstream serving /1k (CPU 1). `wrk -t1 -c32` measures `GET /1k` through the gateway for
   DURATION seconds idle, then again while C threads (CPU 1) POST the refused hostile
   shapes to the ACS in a loop on keep-alive connections, and `healthz` is polled.

Prints a Markdown report (also under benchmarks/out/, gitignored). Only a release build's
figures mean anything.
"""
import argparse
import base64
import datetime
import glob
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
sys.path.insert(0, HERE)
from bench_support import gateway_yaml, publish, run, start_static_nginx, stop_all, wrk  # noqa: E402
from ssogate_support import free_port, placeholder_certificate, wait_for_port  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--flooders", type=int, default=32)
    a = p.parse_args()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", tool], check=True)
    run(["swift", "build", "-c", "release", "--product", "ssogate-bench"], cwd=ROOT)
    run(["swift", "build", "-c", "release", "--product", "ssogate"], cwd=ROOT)
    bin_dir = run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT).strip()
    report = [f"# Hostile SAML input, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", ""]

    # 1. CPU per shape.
    out = run(["taskset", "-c", "0", f"{bin_dir}/ssogate-bench", "hostile", str(a.rounds)])
    report += [f"## CPU per ACS validation (`ssogate-bench hostile {a.rounds}`, one thread on CPU 0)", "",
               "| shape | outcome | bytes | median ms | max ms |", "|---|---|---:|---:|---:|"]
    worst = 0.0
    for line in out.strip().splitlines():
        name, outcome, size, median, most = line.split()
        worst = max(worst, float(most))
        report.append(f"| {name} | {outcome} | {int(size):,} | {median} | {most} |")
    report += ["", f"Highest: **{worst:.2f} ms**.", ""]

    # 2. Proxied latency, idle and during a flood of refused hostile shapes.
    work = tempfile.mkdtemp(prefix="ssogate-flood.")
    os.chmod(work, 0o755)  # nginx workers (www-data) read the files under it
    procs = []
    try:
        shapes_dir = os.path.join(work, "shapes")
        run([f"{bin_dir}/ssogate-bench", "hostile", "0", shapes_dir])
        bodies = []
        for path in sorted(glob.glob(os.path.join(shapes_dir, "*.xml"))):
            # Only what an attacker without the IdP's key can send: the refused shapes.
            if any(k in path for k in ("flood", "on-root", "in-scope", "deep-nesting.", "trailing", "value-200k")):
                data = open(path, "rb").read()
                bodies.append(urllib.parse.urlencode({"SAMLResponse": base64.b64encode(data).decode()}).encode())
        www = os.path.join(work, "www")
        os.makedirs(www)
        open(os.path.join(www, "1k"), "wb").write(b"x" * 1024)
        up_port, gw_port = free_port(), free_port()
        start_static_nginx(work, www, up_port, procs)
        wait_for_port(up_port)
        cert = os.path.join(work, "idp.crt")
        open(cert, "w").write(placeholder_certificate())
        open(os.path.join(work, "gateway.yaml"), "w").write(gateway_yaml(
            gw_port, up_port, "flood-bench-secret-0123456789abcdef0123456789", cert,
            extra='logins: {workers: 2, queue: 64, per_client: "off", total: "off"}\n'))
        procs.append(subprocess.Popen(["taskset", "-c", "0", f"{bin_dir}/ssogate", "serve", "--config", f"{work}/gateway.yaml"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for_port(gw_port)
        url = f"http://127.0.0.1:{gw_port}/1k"
        wrk(url, 2)  # warm-up
        idle = wrk(url, a.duration)

        stop = threading.Event()
        counts = {}
        health = []
        lock = threading.Lock()

        def flood(index):
            conn = None
            i = index
            while not stop.is_set():
                body = bodies[i % len(bodies)]
                i += 1
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", gw_port, timeout=30)
                    conn.request("POST", "/organizations/acme/saml/consume", body,
                                 {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    status = r.status
                except (OSError, http.client.HTTPException):
                    conn, status = None, "error"
                with lock:
                    counts[status] = counts.get(status, 0) + 1

        def poll_health():
            while not stop.is_set():
                start = time.monotonic()
                try:
                    c = http.client.HTTPConnection("127.0.0.1", gw_port, timeout=30)
                    c.request("GET", "/_ssogate/healthz")
                    ok = c.getresponse().status == 200
                    c.close()
                except OSError:
                    ok = False
                health.append((time.monotonic() - start) * 1000 if ok else float("inf"))
                time.sleep(0.05)

        os.sched_setaffinity(0, {1})
        threads = [threading.Thread(target=flood, args=(i,)) for i in range(a.flooders)] + [threading.Thread(target=poll_health)]
        for t in threads:
            t.start()
        time.sleep(1)
        before = dict(counts)
        flooded = wrk(url, a.duration)
        after = dict(counts)
        stop.set()
        for t in threads:
            t.join()
        posts = sum(after.values()) - sum(before.values())
        health.sort()
        report += [f"## `GET /1k` through the gateway while {a.flooders} clients POST refused hostile shapes",
                   "", f"ssogate on CPU 0 (`workers: 1`, `logins.workers: 2`, rate limits off); nginx upstream, wrk -t1 -c32 "
                   f"and the flooders on CPU 1; {a.duration} s each.", "",
                   "| | req/s | p50 ms | p99 ms |", "|---|---:|---:|---:|",
                   f"| idle | {idle[0]:,.0f} | {idle[1]:.2f} | {idle[2]:.2f} |",
                   f"| during the flood | {flooded[0]:,.0f} | {flooded[1]:.2f} | {flooded[2]:.2f} |", "",
                   f"p99 ratio flood/idle: **{flooded[2] / idle[2]:.2f}**. ACS POSTs answered during the measurement: "
                   f"{posts:,} ({posts / a.duration:,.0f}/s); statuses over the whole flood: "
                   + ", ".join(f"{k}: {v:,}" for k, v in sorted(after.items(), key=lambda kv: str(kv[0]))) + ".",
                   f"`healthz` polled {len(health)} times: median {statistics.median(health):.1f} ms, max {health[-1]:.1f} ms.", ""]
    finally:
        stop_all(procs)
        shutil.rmtree(work, ignore_errors=True)
    publish("acs-flood", report)


if __name__ == "__main__":
    main()
