#!/usr/bin/env python3
"""Hostile clients on the wire, all at once, while normal traffic is measured.

    python3 benchmarks/wire-soak.py [--duration S] [--non-readers N] [--holders N]

A release `ssogate serve` (CPU 0, `workers: 1`, default timeouts: body and write 60 s) in
front of nginx (CPU 1) serving /1k and a 64 MiB /big. `wrk -t1 -c32` measures `GET /1k`
through the gateway for DURATION seconds without attackers, then again while, all on CPU 1:

- N clients fetch /big and never read (a closed one comes back at once);
- N clients send a head announcing a 1 MiB body and never send it;
- one client pipelines `GET /acme/x` (401s) without reading, reconnecting when closed;
- one HTTP/2 client opens streams to /big and gets each reset by an overflowing
  WINDOW_UPDATE ("MadeYouReset"), reconnecting after each GOAWAY.

The gateway's RSS is sampled every 50 ms. Prints a Markdown report (also under
benchmarks/out/, gitignored). Only a release build's figures mean anything.
"""
import argparse
import datetime
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
sys.path.insert(0, HERE)
from bench_support import gateway_yaml, publish, run, start_static_nginx, stop_all, wrk  # noqa: E402
from ssogate_support import PeakRSS, free_port, placeholder_certificate, wait_for_port  # noqa: E402

import hpack  # noqa: E402


class Attack:
    def __init__(self, port, non_readers, holders, kinds):
        self.port, self.non_readers, self.holders, self.kinds = port, non_readers, holders, kinds
        self.stop = threading.Event()
        self.counts = {"non_reader_connects": 0, "holder_connects": 0, "pipeline_connects": 0, "pipelined_bytes": 0,
                       "h2_connections": 0, "h2_resets_sent": 0}
        self.lock = threading.Lock()

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def connect(self, data, small_buffer=False):
        s = socket.socket()
        if small_buffer:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.port))
        s.sendall(data)
        return s

    @staticmethod
    def is_closed(s):
        """The gateway closed it (TCP_INFO state CLOSE or CLOSE_WAIT), read nothing."""
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] in (7, 8)

    def hold(self, key, data, count, small_buffer):
        """Keeps `count` connections that sent `data` and do nothing more; replaces closed ones."""
        conns = []
        while not self.stop.is_set():
            kept = []
            for s in conns:
                if self.is_closed(s):
                    s.close()
                else:
                    kept.append(s)
            conns = kept
            while len(conns) < count and not self.stop.is_set():
                try:
                    conns.append(self.connect(data, small_buffer))
                    self.count(key)
                except OSError:
                    time.sleep(0.05)
                    break
            time.sleep(0.2)
        for s in conns:
            s.close()

    def pipeline(self):
        one = b"GET /acme/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n" * 1000
        while not self.stop.is_set():
            s = None
            try:
                s = self.connect(b"", small_buffer=True)
                self.count("pipeline_connects")
                s.settimeout(1)
                while not self.stop.is_set():
                    self.count("pipelined_bytes", s.send(one))
            except OSError:
                pass
            finally:
                if s is not None:
                    s.close()

    def made_you_reset(self):
        frame = lambda kind, flags, stream, payload: (struct.pack(">I", len(payload))[1:] + bytes([kind, flags])
                                                       + struct.pack(">I", stream) + payload)
        while not self.stop.is_set():
            s = None
            try:
                s = socket.create_connection(("127.0.0.1", self.port))
                self.count("h2_connections")
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
                encoder, stream = hpack.Encoder(), 1
                s.settimeout(0.05)
                while not self.stop.is_set():
                    block = encoder.encode([(":method", "GET"), (":scheme", "http"), (":path", "/big"), (":authority", "h")])
                    s.sendall(frame(1, 5, stream, block) + frame(8, 0, stream, struct.pack(">I", 0x7FFFFFFF)))
                    self.count("h2_resets_sent")
                    stream += 2
                    try:
                        if not s.recv(1 << 16):
                            break  # the GOAWAY came and the gateway closed: come back
                    except socket.timeout:
                        pass
            except OSError:
                pass
            finally:
                if s is not None:
                    s.close()

    def start(self):
        # Answered at once (401), the announced body then waited for until body_timeout.
        body_holder = b"POST /acme/x HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nContent-Length: 1048576\r\n\r\n"
        every = {
            "non-readers": threading.Thread(target=self.hold, args=("non_reader_connects", b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n",
                                                                    self.non_readers, True)),
            "holders": threading.Thread(target=self.hold, args=("holder_connects", body_holder, self.holders, False)),
            "pipeline": threading.Thread(target=self.pipeline),
            "reset": threading.Thread(target=self.made_you_reset),
        }
        self.threads = [thread for kind, thread in every.items() if kind in self.kinds]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=int, default=60)
    p.add_argument("--non-readers", type=int, default=1000)
    p.add_argument("--holders", type=int, default=1000)
    p.add_argument("--attackers", default="non-readers,holders,pipeline,reset",
                   help="which attackers run (comma-separated), to see what each costs")
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", tool], check=True)
    run(["swift", "build", "-c", "release", "--product", "ssogate"], cwd=ROOT)
    bin_dir = run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT).strip()
    work = tempfile.mkdtemp(prefix="ssogate-soak.")
    os.chmod(work, 0o755)  # nginx workers (www-data) read the files under it
    procs = []
    report = [f"# Hostile clients on the wire, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", ""]
    try:
        www = os.path.join(work, "www")
        os.makedirs(www)
        open(os.path.join(www, "1k"), "wb").write(b"x" * 1024)
        with open(os.path.join(www, "big"), "wb") as f:
            f.truncate(64 << 20)
        up_port, gw_port = free_port(), free_port()
        start_static_nginx(work, www, up_port, procs, connections=8192)
        wait_for_port(up_port)
        cert = os.path.join(work, "idp.crt")
        open(cert, "w").write(placeholder_certificate())
        open(os.path.join(work, "gateway.yaml"), "w").write(
            gateway_yaml(gw_port, up_port, "soak-bench-secret-0123456789abcdef0123456789", cert))
        gateway = subprocess.Popen(["taskset", "-c", "0", f"{bin_dir}/ssogate", "serve", "--config", f"{work}/gateway.yaml"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(gateway)
        wait_for_port(gw_port)
        url = f"http://127.0.0.1:{gw_port}/1k"
        probe = socket.create_connection(("127.0.0.1", gw_port))
        probe.sendall(b"GET /1k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        answer = probe.recv(4096)
        probe.close()
        if not answer.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"GET /1k through the gateway: {answer[:300]!r}")
        wrk(url, 2)
        with PeakRSS(gateway.pid) as quiet_rss:
            quiet = wrk(url, a.duration)
        os.sched_setaffinity(0, {1})
        attack = Attack(gw_port, a.non_readers, a.holders, a.attackers.split(","))
        with PeakRSS(gateway.pid) as rss:
            attack.start()
            time.sleep(5)  # the attackers in place
            attacked = wrk(url, a.duration)
            attack.finish()
        time.sleep(1)
        after_kb = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{gateway.pid}/status").read()).group(1))
        c = attack.counts
        report += [
            f"ssogate (release, `workers: 1`, default timeouts) on CPU 0; nginx, wrk -t1 -c32 and the attackers on CPU 1; "
            f"{a.duration} s each. Attackers: {a.non_readers:,} clients fetching a 64 MiB file and never reading, "
            f"{a.holders:,} announcing a 1 MiB body and never sending it, one pipelining `GET /acme/x` without reading, "
            "one HTTP/2 client getting its streams reset by overflowing WINDOW_UPDATEs (MadeYouReset); each comes back when closed.", "",
            "| | req/s | p50 ms | p99 ms | non-2xx | gateway peak RSS |", "|---|---:|---:|---:|---:|---:|",
            f"| no attack | {quiet[0]:,.0f} | {quiet[1]:.2f} | {quiet[2]:.2f} | {quiet[3]} | {quiet_rss.peak_kb / 1024:.0f} MiB |",
            f"| under attack | {attacked[0]:,.0f} | {attacked[1]:.2f} | {attacked[2]:.2f} | {attacked[3]} | {rss.peak_kb / 1024:.0f} MiB |", "",
            f"p99 ratio attack/quiet: **{attacked[2] / quiet[2]:.2f}**; peak RSS under attack **{rss.peak_kb / 1024:.0f} MiB** "
            f"(from {rss.start_kb / 1024:.0f} MiB; {after_kb / 1024:.0f} MiB one second after the attackers left).",
            f"Attack volume: {c['non_reader_connects']:,} non-reading connections made, {c['holder_connects']:,} body holders, "
            f"{c['pipeline_connects']:,} pipelining connections ({c['pipelined_bytes'] >> 20:,} MiB sent), "
            f"{c['h2_connections']:,} HTTP/2 connections with {c['h2_resets_sent']:,} streams reset.", ""]
    finally:
        stop_all(procs)
        shutil.rmtree(work, ignore_errors=True)
    publish("wire-soak", report)


if __name__ == "__main__":
    main()
