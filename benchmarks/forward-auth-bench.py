#!/usr/bin/env python3
"""Forward-auth through nginx `auth_request` (README "Forward-auth"), in one run:

    nginx          nginx proxying /acme/secret (1 KiB) to the upstream, no authentication
    nginx + ssogate  the same nginx running the README's snippet as written, asking
                   `ssogate serve` (release) about every request, with a member's cookie
    decisions      `ssogate`'s /_ssogate/auth asked directly, as nginx asks it

The servers (nginx, the gateway) run on CPU 0, the upstream nginx and wrk on CPU 1; each
round measures the targets in turn (interleaved), `wrk -t1 -c64`; medians of the rounds.
The session comes from a real login (`ssogate dev-idp`). Every measured answer must be the
upstream's 200 (or the gateway's 200 for the decisions).

    python3 benchmarks/forward-auth-bench.py [--binary PATH] [--rounds N] [--duration S]

Prints a Markdown report, also saved under benchmarks/out/. Installs nginx and wrk when missing.
"""
import argparse
import importlib.util
import os
import re
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
spec = importlib.util.spec_from_file_location("auth_bench", os.path.join(HERE, "auth-bench.py"))
ab = importlib.util.module_from_spec(spec)
sys.argv, argv = sys.argv[:1], sys.argv
spec.loader.exec_module(ab)
sys.argv = argv
sys.path.insert(0, os.path.join(ROOT, "Tests", "ForwardAuth"))
from check_forward_auth import readme_snippet, rendered  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description="forward-auth through nginx auth_request vs nginx alone")
    p.add_argument("--binary", default=".build/release/ssogate")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    return p.parse_args()


def wrk(url, duration, headers):
    args = ["taskset", "-c", ab.CLIENT_CPU, "wrk", "-t1", "-c64", f"-d{duration}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    out = ab.run(args + [url])
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    ab.check(not bad, f"wrk {url}: {bad.group(0) if bad else ''}")

    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return (float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), ms("50"), ms("99"),
            int(re.search(r"(\d+) requests in", out).group(1)))


def main():
    a = parse_args()
    ab.install_missing()
    binary = os.path.abspath(a.binary)
    work = tempfile.mkdtemp(prefix="forward-auth-bench-")
    os.chmod(work, 0o755)
    procs = []
    try:
        ports = {k: ab.free_port() for k in ("upstream", "nginx", "fa", "gateway", "idp")}
        ab.start_upstream(work, ports["upstream"], procs)
        cert = os.path.join(work, "idp.pem")
        ab.write(cert, ab.placeholder_certificate())
        idp = f"http://localhost:{ports['idp']}"
        config = os.path.join(work, "gateway.yaml")
        ab.write(config, f"""listen: "127.0.0.1:{ports['gateway']}"
workers: 1
public_url: "http://127.0.0.1:{ports['fa']}"
upstream: "http://127.0.0.1:{ports['upstream']}"
access_log: false
session: {{secrets: ["{ab.SECRET}"]}}
store: memory
trusted_proxies: ["127.0.0.1/32"]
protected_paths: ["/{{org}}/"]
organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "{idp}/sso", idp_entity_id: "{idp}/metadata", certificate_file: "{cert}"}}
    role_mapping: {{attribute: groups, rules: [{{value: hf-admins, role: admin}}]}}
""")
        ab.sp_metadata(binary, config, os.path.join(work, "sp.xml"))
        dev_idp, _ = ab.start_dev_idp(binary, ports["idp"], [os.path.join(work, "sp.xml")], cert, cpu=ab.CLIENT_CPU)
        procs.append(dev_idp)
        gateway = ab.Proc("ssogate", [binary, "serve", "--config", config], cwd=ROOT, cpu=ab.SERVER_CPU)
        gateway.drain()
        procs.append(gateway)
        ab.wait_for_port(ports["gateway"], gateway)
        cookie = ab.ssogate_login(f"http://127.0.0.1:{ports['gateway']}")

        plain = ab.start_nginx(work, "nginx", ports["nginx"], f"""
upstream up {{ server 127.0.0.1:{ports['upstream']}; keepalive 256; }}
server {{ listen 127.0.0.1:{ports['nginx']};
  location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $http_host; }} }}""",
                               procs, ab.SERVER_CPU)
        snippet = rendered(readme_snippet("nginx"), ports["fa"], ports["gateway"], ports["upstream"])
        fa = ab.start_nginx(work, "nginx-fa", ports["fa"], snippet, procs, ab.SERVER_CPU)

        targets = {
            "nginx": (plain, f"http://127.0.0.1:{ports['nginx']}/acme/secret", [f"Cookie: {cookie}"]),
            "nginx + ssogate": (fa, f"http://127.0.0.1:{ports['fa']}/acme/secret", [f"Cookie: {cookie}"]),
            "decisions": (gateway, f"http://127.0.0.1:{ports['gateway']}/_ssogate/auth",
                          [f"Cookie: {cookie}", f"X-Original-URL: http://127.0.0.1:{ports['fa']}/acme/secret", "X-Original-Method: GET"]),
        }
        for name, (_, url, headers) in targets.items():
            status, _, body = ab.request(url, headers=dict(h.split(": ", 1) for h in headers))
            ab.check(status == 200, f"{name}: {status} {body[:200]}")
            wrk(url, 2, headers)
        results = {name: [] for name in targets}
        for round_no in range(a.rounds):
            order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
            for name in order:
                proc, url, headers = targets[name]
                if name == "nginx + ssogate":    # both processes serve this one
                    pids = ab.server_pids(proc) + ab.server_pids(gateway)
                    before = ab.cpu_ticks(pids)
                    r = wrk(url, a.duration, headers)
                    after = ab.cpu_ticks(pids)
                    cpu = sum(after[i] - before[i] for i in (0, 1)) / os.sysconf("SC_CLK_TCK") * 1e6 / max(1, r[-1])
                    results[name].append(r + (cpu,))
                else:
                    r = ab.measured(proc, lambda: wrk(url, a.duration, headers))
                    results[name].append(r[:4] + (r[4],))
            print(f"round {round_no + 1}/{a.rounds} done", flush=True)

        def med(name, i):
            return statistics.median(row[i] for row in results[name])
        lines = [f"# forward-auth-bench {ab.time.strftime('%Y-%m-%d %H:%M UTC', ab.time.gmtime())}", "",
                 f"`python3 benchmarks/forward-auth-bench.py --rounds {a.rounds} --duration {a.duration}` ({os.path.basename(binary)}); "
                 f"nginx and ssogate on CPU 0, upstream and wrk on CPU 1; medians of {a.rounds} interleaved rounds.", "",
                 "| | req/s | vs nginx | p50 ms | p99 ms | server CPU µs/req |", "|---|---:|---:|---:|---:|---:|"]
        base = med("nginx", 0)
        for name in targets:
            lines.append(f"| {name} | {med(name, 0):,.0f} | {med(name, 0) / base:.2f} | {med(name, 1):.2f} | {med(name, 2):.2f} | {med(name, 4):.1f} |")
        lines += ["", f"Added by forward-auth at the median: {med('nginx + ssogate', 1) - med('nginx', 1):.2f} ms (p50), "
                  f"{med('nginx + ssogate', 2) - med('nginx', 2):.2f} ms (p99)."]
        ab.publish("forward-auth-bench", lines)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
