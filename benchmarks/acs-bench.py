#!/usr/bin/env python3
"""ACS logins per second: `store: memory`, `store: sqlite:...` and `store: postgres://...`, in one run.

    python3 benchmarks/acs-bench.py [--binary PATH] [-n N] [-c C] [--chunk K] [--warmup W]

Starts, on 127.0.0.1, a throwaway PostgreSQL (Tests/Replicas/postgres.sh), one
`ssogate dev-idp`, and three gateways that differ only in `listen` and `store`: `memory`,
an SQLite file in the work folder, and the PostgreSQL URL (same `public_url`, same
`session.secrets`, `workers: 1`). The
gateways, the dev IdP and PostgreSQL run on CPU 0 (taskset); this client runs on CPU 1.

Each gateway gets the same N distinct signed responses, each with its login-state cookie,
obtained from the dev IdP in advance (SSO start -> IdP form -> the user's button, as
Tests/Replicas/harness.py does it), then POSTed to its ACS by C keep-alive connections.
Every answer must be a 303 with a session cookie. The dev IdP's assertions live 5 minutes,
so the N responses are obtained and posted in chunks of K (untimed: obtaining; timed:
posting), the gateways taking turns first. W more responses warm each gateway up first
(and fill the PostgreSQL pool); they are not counted.

Prints a Markdown report, also saved under benchmarks/out/ (gitignored). Runs as root
(postgres.sh runs the server as the `postgres` user). Only a release build's figures mean
anything; compare the two stores within one run (benchmarks/README.md).
"""
import argparse
import asyncio
import datetime
import hashlib
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "Replicas"))
from harness import (Postgres, Proc, check, free_port, gateway_problems, gateway_yaml, obtain_response,  # noqa: E402
                     placeholder_certificate, sp_metadata, start_dev_idp, wait_for_port)

SECRET = "acs-bench-secret-0123456789abcdef0123456789abcdef"
SERVER_CPU, CLIENT_CPU = 0, 1
USERS = ("alice", "bob", "carol")


def parse_args():
    p = argparse.ArgumentParser(description="ACS logins/s with store: memory vs. store: postgres")
    p.add_argument("--binary", default=".build/release/ssogate", help="ssogate binary (default .build/release/ssogate)")
    p.add_argument("-n", type=int, default=1000, help="signed responses per gateway (default 1000)")
    p.add_argument("-c", type=int, default=8, help="concurrent connections posting (default 8)")
    p.add_argument("--chunk", type=int, default=500, help="responses obtained, then posted, per round (default 500)")
    p.add_argument("--warmup", type=int, default=40, help="uncounted responses per gateway first (default 40)")
    a = p.parse_args()
    if not 1 <= a.n <= 100_000:
        p.error("-n must be 1..100000")
    if not 1 <= a.c <= 256:
        p.error("-c must be 1..256")
    if not 1 <= a.chunk <= 5000:
        p.error("--chunk must be 1..5000 (the IdP's assertions live 5 minutes)")
    if not 0 <= a.warmup <= 1000:
        p.error("--warmup must be 0..1000")
    binary = a.binary
    if not os.path.isfile(binary) and not os.path.isabs(binary) and os.path.isfile(os.path.join(ROOT, binary)):
        binary = os.path.join(ROOT, binary)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        p.error(f"binary not found or not executable: {a.binary} (build it with: swift build -c release)")
    a.binary = os.path.realpath(binary)
    return a


# MARK: - Measuring


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except OSError:
        return 0


def postgres_pids(postmaster):
    """The postmaster and its children (the backends the gateway's pool holds among them)."""
    out = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True)
    return [postmaster] + [int(p) for p in out.stdout.split()]


def cpu_of(pids):
    return {pid: cpu_ticks(pid) for pid in pids}


def percentile(values, q):
    """Nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


async def post_all(port, requests, concurrency):
    """POSTs every prepared request (bytes) over `concurrency` keep-alive connections.
    Returns ([(status, has_session_cookie, seconds)], wall seconds)."""
    queue = list(reversed(requests))
    results = []

    async def worker():
        reader = writer = None
        while queue:
            raw = queue.pop()
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length, close, cookie = 0, False, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.lower() == "close":
                    close = True
                elif name == "set-cookie" and value.startswith("ssogate_session=") and not value.startswith("ssogate_session=;"):
                    cookie = True
            body = await reader.readexactly(length) if length else b""
            results.append((status, cookie, time.perf_counter() - t0, body[:200]))
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - t0


# MARK: - The run


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.procs, self.pg = [], None
        self.out = []

    def log(self, text=""):
        print(text, flush=True)
        self.out.append(text)

    def setup(self):
        a, w = self.args, self.work
        self.pg = Postgres()
        self.store = self.pg.start()
        # PostgreSQL is a server under test too: the postmaster and every process it has or
        # forks later (backends inherit the mask) on CPU 0.
        for pid in postgres_pids(self.pg.postmaster_pid()):
            subprocess.run(["taskset", "-a", "-p", "-c", str(SERVER_CPU), str(pid)], capture_output=True, check=True)
        self.port = {"memory": free_port(), "sqlite": free_port(), "postgres": free_port()}
        stores = {"memory": "memory", "sqlite": f"sqlite:{w}/state.db", "postgres": self.store}
        app_port, idp_port = free_port(), free_port()  # nothing listens on app_port: the ACS never proxies
        idp = f"http://localhost:{idp_port}"
        public = f"http://127.0.0.1:{self.port['memory']}"
        cert = os.path.join(w, "idp.crt")
        with open(cert, "w") as f:
            f.write(placeholder_certificate())
        configs = {}
        for store, port in self.port.items():
            configs[store] = os.path.join(w, f"{store}.yaml")
            with open(configs[store], "w") as f:
                f.write(gateway_yaml(port, public, app_port, idp, SECRET, cert,
                                     store=stores[store],
                                     # One client address posts every login: the rates are off.
                                     extra='workers: 1\nlogins: {per_client: "off", total: "off"}\n'))
            check(subprocess.run([a.binary, "check", "--config", configs[store]], capture_output=True).returncode == 0,
                  f"ssogate check refused {configs[store]}")
        sp_metadata(a.binary, configs["memory"], os.path.join(w, "sp.xml"))
        dev_idp, _ = start_dev_idp(a.binary, idp_port, [os.path.join(w, "sp.xml")], cert, cpu=SERVER_CPU)
        self.procs.append(dev_idp)
        self.gw = {}
        for store in self.port:
            g = Proc(store, [a.binary, "serve", "--config", configs[store]], cwd=ROOT, cpu=SERVER_CPU,
                     log_path=os.path.join(w, f"{store}.log"))
            self.procs.append(g)
            self.gw[store] = g
        for store, g in self.gw.items():
            wait_for_port(self.port[store], g)
        self.gw["postgres"].wait_for_line("replay store ready", 20)
        self.gw["sqlite"].wait_for_line("state store ready", 20)
        self.public = public

    def cleanup(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:
                print(f"could not stop {p.name}: {e!r}")
        if self.pg:
            try:
                self.pg.stop()
            except Exception as e:
                print(f"could not stop PostgreSQL in {self.pg.dir}: {e!r}")

    def obtain(self, count, first):
        """count signed responses (logins started on the memory gateway; any replica with the
        same secrets opens the login-state cookie)."""
        def one(i):
            return obtain_response(self.public, user=USERS[(first + i) % 3], return_to=f"/acme/bench/{first + i}")
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, range(count)))

    def phase(self, store, signed):
        port = self.port[store]
        raw = [s.raw_request(f"127.0.0.1:{port}", keep_alive=True) for s in signed]
        gw_before = cpu_ticks(self.gw[store].pid)
        pg_before = cpu_of(postgres_pids(self.pg.postmaster_pid()))
        client_before = time.process_time()
        results, wall = asyncio.run(post_all(port, raw, self.args.c))
        client = time.process_time() - client_before
        gw_ticks = cpu_ticks(self.gw[store].pid) - gw_before
        pg_after = cpu_of(postgres_pids(self.pg.postmaster_pid()))
        pg_ticks = sum(t - pg_before.get(pid, 0) for pid, t in pg_after.items())
        return results, wall, gw_ticks, pg_ticks, client

    def run(self):
        a = self.args
        hz = os.sysconf("SC_CLK_TCK")
        stats = {s: {"results": [], "wall": 0.0, "gw": 0, "pg": 0, "client": 0.0} for s in self.gw}
        if a.warmup:
            warm = self.obtain(a.warmup, 10_000_000)
            for store in self.gw:
                results = self.phase(store, warm)[0]
                bad = [r for r in results if r[0] != 303]
                if bad:
                    raise AssertionError(f"warm-up on {store}: {len(bad)} of {len(results)} not 303, first: {bad[0][0]} {bad[0][3]!r}")
        done, k = 0, 0
        obtain_seconds = 0.0
        while done < a.n:
            count = min(a.chunk, a.n - done)
            t0 = time.monotonic()
            signed = self.obtain(count, done)
            obtain_seconds += time.monotonic() - t0
            names = list(self.gw)
            order = names[k % len(names):] + names[:k % len(names)]     # each goes first in turn
            for store in order:
                results, wall, gw, pg, client = self.phase(store, signed)
                st = stats[store]
                st["results"] += results
                st["wall"] += wall
                st["gw"] += gw
                st["pg"] += pg
                st["client"] += client
                self.log(f"- round {k + 1}: {store}: {len(results)} POSTs in {wall:.2f} s")
            done += count
            k += 1
        self.log(f"- obtaining the {a.n} signed responses from the dev IdP (untimed): {obtain_seconds:.1f} s")
        self.log("")
        self.log(f"| store | logins | 303 + session | failed | logins/s | p50 ms | p99 ms | max ms "
                 f"| gateway CPU ms/login | PostgreSQL CPU ms/login | CPU {SERVER_CPU} busy | client CPU |")
        self.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rates, failures = {}, []
        for store in self.gw:
            st = stats[store]
            res = st["results"]
            ok = [r for r in res if r[0] == 303 and r[1]]
            bad = [r for r in res if not (r[0] == 303 and r[1])]
            lat = [r[2] * 1000 for r in res]
            rates[store] = len(res) / st["wall"]
            pg_cpu = f"{st['pg'] / hz * 1000 / len(res):.2f}" if store == "postgres" else "-"
            busy = (st["gw"] + st["pg"]) / hz / st["wall"] * 100
            self.log(f"| {store} | {len(res)} | {len(ok)} | {len(bad)} | {rates[store]:.1f} | {statistics.median(lat):.1f} "
                     f"| {percentile(lat, 99):.1f} | {max(lat):.1f} | {st['gw'] / hz * 1000 / len(res):.2f} | {pg_cpu} "
                     f"| {busy:.0f}% | {st['client'] / st['wall'] * 100:.0f}% |")
            if bad:
                kinds = {}
                for r in bad:
                    key = f"{r[0]} {r[3][:80]!r}" if r[0] != 303 else "303 without a session cookie"
                    kinds[key] = kinds.get(key, 0) + 1
                failures.append(f"{store}: {len(bad)} of {len(res)} failed: " + "; ".join(f"{n}x {k}" for k, n in kinds.items()))
            check(len(res) == a.n, f"{store}: {len(res)} answers for {a.n} POSTs")
        self.log("")
        self.log(f"sqlite / memory, logins/s: {rates['sqlite'] / rates['memory']:.2f}; "
                 f"postgres / memory: {rates['postgres'] / rates['memory']:.2f}")
        self.log("")
        self.log("Latency: client-side, from writing the POST to the last byte of the answer, with "
                 f"{a.c} requests in flight. CPU: user+sys ticks ({hz}/s) of the gateway process, and of "
                 "all PostgreSQL processes, during the timed POSTs, per login; "
                 f"CPU {SERVER_CPU} busy = (gateway + PostgreSQL CPU) / wall time of the POSTs (near 100%: the "
                 "server core is the limit); client CPU = this process's CPU / wall time (near 100%: the client is).")
        self.log("")
        for store, g in self.gw.items():
            # The login line, not its audit record (which says action=sso.login).
            ok_lines = len([line for line in g.lines if "result=success" in line and "action=" not in line])
            self.log(f"- {store} gateway log: {ok_lines} `result=success` login lines "
                     f"(expected {a.n + a.warmup})")
            problems = [line for line in gateway_problems(g) if "certificate expiring" not in line]
            for line in problems[:10]:
                self.log(f"    - {line[:300]}")
            if problems:
                failures.append(f"{store}: {len(problems)} warning/error log lines")
        return failures


def main():
    args = parse_args()
    pinned = (os.cpu_count() or 1) >= 2
    if pinned:
        os.sched_setaffinity(0, {CLIENT_CPU})
    os.chdir(ROOT)
    work = tempfile.mkdtemp(prefix="ssogate-acs-bench.")
    b = Bench(args, work)
    status = 1
    try:
        with open(args.binary, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
        b.log("# ACS benchmark: store memory vs. postgres")
        b.log("")
        b.log(f"- command: python3 benchmarks/acs-bench.py --binary {args.binary} -n {args.n} -c {args.c} "
              f"--chunk {args.chunk} --warmup {args.warmup}")
        b.log(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC; machine: {os.cpu_count()} CPUs, {cpu}")
        b.log(f"- binary: {args.binary} (sha256 {digest}, {os.path.getsize(args.binary) >> 20} MiB); "
              f"repo at {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() or 'unknown'}")
        b.setup()
        b.log(f"- PostgreSQL {b.store.rsplit('@', 1)[1]} ({subprocess.run(['psql', '--version'], capture_output=True, text=True).stdout.strip()})")
        b.log("- pinning: " + (f"gateways, dev IdP and PostgreSQL on CPU {SERVER_CPU}, this client on CPU {CLIENT_CPU}"
                              if pinned else "none (fewer than 2 CPUs)") + "; gateways with `workers: 1`")
        b.log("")
        failures = b.run()
        b.log("")
        if failures:
            b.log("## Problems")
            for f in failures:
                b.log(f"- {f}")
        else:
            b.log(f"Every one of the {args.n} logins per store was a 303 with a session cookie; no warnings in the gateway logs.")
        status = 1 if failures else 0
    except Exception as e:
        b.log(f"ERROR: {e}")
        traceback.print_exc()
    finally:
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(os.path.join(ROOT, "benchmarks", "out"), exist_ok=True)
        path = os.path.join(ROOT, "benchmarks", "out", f"acs-bench-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.md")
        with open(path, "w") as f:
            f.write("\n".join(b.out) + "\n")
        print(f"\nSaved to {os.path.relpath(path, ROOT)}")
    sys.exit(status)


if __name__ == "__main__":
    main()
