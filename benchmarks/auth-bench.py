#!/usr/bin/env python3
"""The request ssogate exists for, side by side: a logged-in member's GET of protected
content (a valid session cookie, a protected path), in one run, against

    upstream   nginx serving the files itself (what any proxy adds is measured against it)
    nginx      nginx proxying the same path, no authentication (the speed reference)
    mellon     Apache 2.4 (event MPM) + mod_auth_mellon, its own session cookie, the same path
    ssogate    `ssogate serve` (--binary), with its session cookie
    baseline   a second ssogate binary (--baseline), e.g. the build before a change
    ssogate token  the same `ssogate` with a member's access token (`Authorization: Bearer
               ssg_...`) instead of the session cookie

    python3 benchmarks/auth-bench.py [--binary PATH] [--baseline PATH] [--rounds N] [--duration S]
                                     [--instructions N] [--policy] [--tracing [RATIO]]

`--policy` gives the `--binary` gateway's acme an access policy with every per-request rule
in force (allowed email domains, default role none, enforce_roles, and a resource group
holding the measured path, in which alice's engineering group gives her write); the
baseline keeps none, so an older binary that knows no `access` key can run beside it.

`--tracing [RATIO]` turns on the `--binary` gateway's OpenTelemetry spans, RATIO of new traces
sampled (default 1: every request), exported over OTLP/HTTP to Tests/Tracing/otlp_receiver.py
(on the clients' CPU): the whole cost of a traced request, spans made, batched, encoded and
sent; with a small RATIO, what an unsampled request still pays.

Each ssogate keeps its own SQLite store (the default store), so a baseline of an older
schema version runs beside the binary under test. Both sessions come from real logins: `ssogate dev-idp` is the IdP of the gateways and of
mod_auth_mellon (SP-initiated, HTTP-Redirect then HTTP-POST). Every measured answer must be
the upstream's 200; a redirect to the IdP would be a failed measurement, not a fast one.

The servers under test run on CPU 0, the upstream nginx and the clients on CPU 1. Each
round measures every target in turn (interleaved, so drift hits all alike), `wrk -t1 -c64`
on `/acme/secret` (1 KiB, protected) and on `/public/1k` (unprotected), and `h2load -c8 -m8`
over h2c where the server speaks it. CPU µs per request come from /proc (all of the
server's processes), split into user space and kernel. Medians of the rounds are reported, with each target's ratio to nginx.

`--instructions N` (default 2000, 0 skips it) then runs each ssogate under callgrind and
counts the instructions of N protected requests on one keep-alive connection, after a
warm-up (callgrind_control zeroes the counters before, dumps them after), and nginx's the
same way: the repeatable figure beside the timings. valgrind 3.19 needs a shim on this
toolchain (see benchmarks/valgrind-shim.c).

Prints a Markdown report, also saved under benchmarks/out/. Runs as root (Apache switches
to www-data). Installs nginx, wrk, nghttp2-client, apache2, libapache2-mod-auth-mellon and
valgrind when missing.
"""
import argparse
import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "Replicas"))
sys.path.insert(0, HERE)
from bench_support import publish, run  # noqa: E402
from harness import (Proc, check, forms, free_port, header, obtain_response, placeholder_certificate,  # noqa: E402
                     post_acs, request, set_cookies, sp_metadata, start_dev_idp, wait_for_port)

SECRET = "auth-bench-secret-0123456789abcdef0123456789abcdef"
SERVER_CPU, CLIENT_CPU = "0", "1"
PROTECTED, PUBLIC = "/acme/secret", "/public/1k"
PACKAGES = {"nginx": "nginx-light", "wrk": "wrk", "h2load": "nghttp2-client", "apache2": "apache2",
            "valgrind": "valgrind", "gcc": "gcc"}
MELLON_MODULE = "/usr/lib/apache2/modules/mod_auth_mellon.so"


def parse_args():
    p = argparse.ArgumentParser(description="authenticated GET: ssogate vs nginx vs Apache + mod_auth_mellon")
    p.add_argument("--binary", default=".build/release/ssogate")
    p.add_argument("--baseline", help="a second ssogate binary measured in the same run")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk/h2load measurement")
    p.add_argument("--instructions", type=int, default=2000, help="requests counted under callgrind (0: skip)")
    p.add_argument("--policy", action="store_true", help="an access policy for --binary's acme (see above)")
    p.add_argument("--tracing", type=float, nargs="?", const=1.0, default=None, metavar="RATIO",
                   help="OpenTelemetry spans for --binary, RATIO of new traces sampled (default 1; see above)")
    a = p.parse_args()
    if not 1 <= a.rounds <= 50 or not 1 <= a.duration <= 300:
        p.error("--rounds 1..50, --duration 1..300")
    for name in ("binary", "baseline"):
        path = getattr(a, name)
        if path and not os.access(os.path.abspath(path), os.X_OK):
            p.error(f"--{name}: not an executable: {path}")
        if path:
            setattr(a, name, os.path.abspath(path))
    return a


def install_missing():
    missing = [pkg for cmd, pkg in PACKAGES.items() if shutil.which(cmd) is None]
    if not os.path.exists(MELLON_MODULE):
        missing.append("libapache2-mod-auth-mellon")
    if not missing:
        return
    print(f"installing: {' '.join(missing)}")
    # Installing nginx or Apache must not start their system services.
    created = not os.path.exists("/usr/sbin/policy-rc.d")
    if created:
        with open("/usr/sbin/policy-rc.d", "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod("/usr/sbin/policy-rc.d", 0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, check=True, env=env,
                       stdout=subprocess.DEVNULL)
    finally:
        if created:
            os.remove("/usr/sbin/policy-rc.d")


# MARK: - The servers


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def start_nginx(work, name, port, body, procs, cpu):
    conf = os.path.join(work, f"{name}.conf")
    write(conf, f"""
daemon off; worker_processes 1; pid {work}/{name}.pid; error_log {work}/{name}-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000;
{body} }}
""")
    proc = Proc(name, ["nginx", "-c", conf], cpu=cpu)
    proc.drain()
    procs.append(proc)
    wait_for_port(port, proc)
    return proc


def start_upstream(work, port, procs):
    www = os.path.join(work, "www")
    for d in ("acme", "public"):
        os.makedirs(os.path.join(www, d), exist_ok=True)
    write(os.path.join(www, "acme", "secret"), "s" * 1024)
    write(os.path.join(www, "public", "1k"), "p" * 1024)
    return start_nginx(work, "upstream", port, f"server {{ listen 127.0.0.1:{port}; root {www}; }}", procs, CLIENT_CPU)


def start_proxy_nginx(work, port, h2_port, upstream_port, procs):
    location = f"proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off;"
    return start_nginx(work, "nginx", port, f"""
  upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port}; listen 127.0.0.1:{h2_port} http2; location / {{ {location} }} }}
""", procs, SERVER_CPU)


def mellon_sp_metadata(base):
    return f"""<?xml version="1.0"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{base}/mellon/metadata">
  <SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{base}/mellon/postResponse" index="0"/>
  </SPSSODescriptor>
</EntityDescriptor>
"""


def start_mellon(work, port, upstream_port, procs):
    """Apache's event MPM, one child of 64 threads, on SERVER_CPU; mod_auth_mellon guards
    /acme/ and mod_proxy forwards to the upstream on reused connections."""
    # mellon signs its AuthnRequests (lasso will not make one without a key).
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mellon-bench",
                    "-keyout", f"{work}/mellon-sp.key", "-out", f"{work}/mellon-sp.crt"], check=True, capture_output=True)
    os.chmod(f"{work}/mellon-sp.key", 0o644)
    modules = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so"
                        for m in ("mpm_event", "authn_core", "authz_core", "authz_user", "proxy", "proxy_http", "auth_mellon"))
    conf = os.path.join(work, "apache.conf")
    write(conf, f"""
ServerRoot {work}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {work}/apache.pid
ErrorLog {work}/apache-error.log
LogLevel warn
User www-data
Group www-data
{modules}
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
<Location />
    MellonEnable info
    MellonEndpointPath /mellon
    MellonSPMetadataFile {work}/mellon-sp.xml
    MellonIdPMetadataFile {work}/mellon-idp.xml
    MellonSPPrivateKeyFile {work}/mellon-sp.key
    MellonSPCertFile {work}/mellon-sp.crt
    MellonSecureCookie Off
</Location>
<Location /acme/>
    AuthType Mellon
    MellonEnable auth
    Require valid-user
</Location>
ProxyPass /acme/ http://127.0.0.1:{upstream_port}/acme/
ProxyPass /public/ http://127.0.0.1:{upstream_port}/public/
""")
    proc = Proc("apache", ["apache2", "-f", conf, "-DFOREGROUND"], cpu=SERVER_CPU)
    proc.drain()
    procs.append(proc)
    wait_for_port(port, proc)
    return proc


POLICY = """
    access:
      default_role: none
      allowed_email_domains: [example.test]
      enforce_roles: true
      resource_groups: [{name: private, paths: ["/acme/secret*"]}]
"""


def start_otlp_receiver(work, procs):
    """The tracing tests' OTLP receiver; its port."""
    receiver = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Tracing", "otlp_receiver.py")
    proc = Proc("otlp-receiver", [sys.executable, receiver, "--out", os.path.join(work, "spans.jsonl")], cpu=CLIENT_CPU)
    proc.drain()
    procs.append(proc)
    line = proc.wait_for_line("listening ", 10)
    return int(line.split()[1])


def gateway_config(work, name, port, idp, cert, policy=False, tracing=None, ratio=1.0):
    path = os.path.join(work, f"{name}.yaml")
    write(path, f"""listen: "127.0.0.1:{port}"
workers: 1
public_url: "http://127.0.0.1:{port}"
upstream: "http://127.0.0.1:{{upstream}}"
access_log: false
http2: {{enabled: true}}
session: {{secrets: ["{SECRET}"]}}
store: "sqlite:{work}/{name}.db"
protected_paths: ["/{{org}}/"]
organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "{idp}/sso", idp_entity_id: "{idp}/metadata", certificate_file: "{cert}"}}
    role_mapping: {{attribute: groups, rules: [{{value: hf-admins, role: admin}}{{policy_rule}}]}}
""".replace("{policy_rule}", ", {value: engineering, role: write, resource_group: private}" if policy else "") + (POLICY if policy else "")
        + (f'tracing: {{otlp_endpoint: "http://127.0.0.1:{tracing}/v1/traces", sample_ratio: {ratio}}}\n' if tracing else ""))
    return path


# MARK: - Logins


def ssogate_login(base):
    signed = obtain_response(base, user="alice", return_to=PROTECTED)
    status, headers, body, _ = post_acs(base, signed, accept="text/html")
    cookie = set_cookies(headers).get("ssogate_session")
    check(status in (302, 303) and cookie, f"ssogate login at {base}: {status} {body[:200]}")
    return f"ssogate_session={cookie}"


def mellon_login(base):
    """GET the protected path -> mellon's redirect to the IdP -> alice's button -> the
    auto-POST form to mellon's postResponse -> mellon's session cookie."""
    url = base + PROTECTED
    jar = {}                    # mellon checks at postResponse the test cookie it set at /mellon/login
    for _ in range(3):          # the path -> mellon's /mellon/login -> the IdP
        status, headers, body = request(url, headers={"Accept": "text/html"})
        jar.update({k: v for k, v in set_cookies(headers).items() if v})
        idp_url = url = urllib.parse.urljoin(url, header(headers, "location") or "")
        if "SAMLRequest=" in url:
            break
    check(status in (302, 303) and idp_url and "SAMLRequest=" in idp_url, f"mellon redirects to the IdP: {status} {body[:300]}")
    status, _, page = request(idp_url, headers={"Accept": "text/html"})
    check(status == 200, f"IdP login page for mellon: {status} {page[:300]}")
    action, fields, _ = [f for f in forms(page) if "login-alice" in f[2]][0]
    idp = urllib.parse.urlsplit(idp_url)
    status, _, page = request(f"{idp.scheme}://{idp.netloc}{action}", "POST", {
        "Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, urllib.parse.urlencode(fields))
    check(status == 200 and "SAMLResponse" in page, f"IdP's POST form for mellon: {status} {page[:300]}")
    acs, fields, _ = forms(page)[0]
    status, headers, body = request(base + urllib.parse.urlsplit(acs).path, "POST", {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())},
        urllib.parse.urlencode(fields))
    cookie = set_cookies(headers).get("mellon-cookie")
    check(status in (302, 303) and cookie, f"mellon accepts the response: {status} {headers} {body[:300]}")
    return f"mellon-cookie={cookie}"


def fetch_ok(base, path, cookie):
    name, _, value = credential_header(cookie).partition(": ") if cookie else ("", "", "")
    status, _, body = request(base + path, headers={name: value} if cookie else {})
    check(status == 200 and len(body) == 1024, f"{base}{path} gives the upstream's 1 KiB (got {status}: {body[:200]})")


# MARK: - Measuring


def server_pids(proc):
    pids = [proc.pid]
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
    return pids + [int(p) for p in out.split()]


def cpu_ticks(pids):
    """(user, system) clock ticks of the processes."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user, system


def measured(proc, fn):
    """fn() -> (requests/s, ..., requests); adds CPU µs per request of proc's processes,
    then the user-space and kernel parts of it."""
    pids = server_pids(proc)
    before = cpu_ticks(pids)
    result = fn()
    after = cpu_ticks(pids)
    per_request = [(after[i] - before[i]) / os.sysconf("SC_CLK_TCK") * 1e6 / max(1, result[-1]) for i in (0, 1)]
    return result + (sum(per_request), per_request[0], per_request[1])


def credential_header(cookie):
    """A session cookie pair, or a whole `Authorization: ...` field (an access token)."""
    return cookie if cookie.startswith("Authorization:") else f"Cookie: {cookie}"


def wrk_run(url, duration, cookie):
    args = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c64", f"-d{duration}s", "--latency"]
    if cookie:
        args += ["-H", credential_header(cookie)]
    out = run(args + [url])
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    check(not bad, f"wrk {url}: {bad.group(0) if bad else ''}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))

    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return rps, ms("99"), total


def h2load_run(url, duration, cookie):
    args = ["taskset", "-c", CLIENT_CPU, "h2load", "-c8", "-m8", "-D", str(duration)]
    if cookie:
        args += ["-H", credential_header(cookie)]
    out = run(args + [url])
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    check(m and m.group(2) == m.group(3) == m.group(4) == "0", f"h2load {url}: {m.group(0) if m else out[-400:]}")
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    return rps, int(m.group(1))


# MARK: - Instructions


SHIM = os.path.join(HERE, "valgrind-shim.c")


def count_instructions(work, name, args, port, path, cookie, n, cpu=SERVER_CPU):
    """Instructions of n keep-alive GETs of `path` under callgrind, after 200 uncounted."""
    shim = os.path.join(work, "valgrind-shim.so")
    if not os.path.exists(shim):
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", SHIM, "-o", shim], check=True)
    if args[0] != "nginx":
        # valgrind 3.19 cannot read this toolchain's DWARF ("possibly corrupted debuginfo"):
        # a copy without it keeps the symbol table, which is all the count needs.
        stripped = os.path.join(work, f"{name}-nodebug")
        shutil.copy(args[0], stripped)
        subprocess.run(["strip", "--strip-debug", stripped], check=True)
        args = [stripped] + args[1:]
    out = os.path.join(work, f"callgrind.{name}")
    env = dict(os.environ, LD_PRELOAD=shim)
    proc = Proc(f"{name} (callgrind)", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + args,
                cwd=ROOT, cpu=cpu, log_path=os.path.join(work, f"callgrind-{name}.log"), env=env)
    try:
        wait_for_port(port, proc, seconds=180)
        conn = socket.create_connection(("127.0.0.1", port))
        raw = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + (f"{credential_header(cookie)}\r\n" if cookie else "") + "\r\n").encode()

        def fetch(count):
            for _ in range(count):
                conn.sendall(raw)
                got = b""
                while not (b"\r\n\r\n" in got and len(got.split(b"\r\n\r\n", 1)[1]) >= 1024):
                    chunk = conn.recv(65536)
                    check(chunk, f"{name} closed the connection under callgrind")
                    got += chunk
                check(got.startswith(b"HTTP/1.1 200"), f"{name} under callgrind: {got[:200]}")
        fetch(200)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        fetch(n)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        conn.close()
        dumps = sorted(glob.glob(out + "*"), key=os.path.getmtime)
        check(dumps, f"callgrind wrote no dump for {name}")
        with open(dumps[-1]) as f:
            totals = re.search(r"^(?:totals|summary): (\d+)", f.read(), re.M)
        check(totals, f"no totals in {dumps[-1]}")
        return int(totals.group(1)) / n
    finally:
        proc.stop()


# MARK: - Main


def main():
    a = parse_args()
    if os.geteuid() != 0:
        sys.exit("auth-bench runs as root (Apache's workers switch to www-data)")
    install_missing()
    work = tempfile.mkdtemp(prefix="auth-bench-")
    os.chmod(work, 0o755)          # Apache's and nginx's workers read configs and files here
    procs = []
    try:
        ports = {k: free_port() for k in ("upstream", "nginx", "nginx_h2", "mellon", "ssogate", "baseline", "idp")}
        start_upstream(work, ports["upstream"], procs)
        mellon_base = f"http://127.0.0.1:{ports['mellon']}"
        write(os.path.join(work, "mellon-sp.xml"), mellon_sp_metadata(mellon_base))
        cert = os.path.join(work, "idp.pem")
        write(cert, placeholder_certificate())
        idp_base = f"http://localhost:{ports['idp']}"
        gateways = {"ssogate": a.binary}
        if a.baseline:
            gateways["baseline"] = a.baseline
        configs = {}
        receiver = start_otlp_receiver(work, procs) if a.tracing is not None else None
        for name in gateways:
            configs[name] = gateway_config(work, name, ports[name], idp_base, cert, policy=a.policy and name == "ssogate",
                                           tracing=receiver if name == "ssogate" else None, ratio=a.tracing)
            text = open(configs[name]).read().replace("{upstream}", str(ports["upstream"]))
            write(configs[name], text)
        sp_metadata(a.binary, configs["ssogate"], os.path.join(work, "ssogate-sp.xml"))
        metadata = [os.path.join(work, "ssogate-sp.xml"), os.path.join(work, "mellon-sp.xml")]
        if a.baseline:
            sp_metadata(a.baseline, configs["baseline"], os.path.join(work, "baseline-sp.xml"))
            metadata.append(os.path.join(work, "baseline-sp.xml"))
        idp, _ = start_dev_idp(a.binary, ports["idp"], metadata, cert, cpu=CLIENT_CPU)
        procs.append(idp)
        status, _, idp_md = request(idp_base + "/metadata")
        check(status == 200, f"dev-idp metadata: {status}")
        write(os.path.join(work, "mellon-idp.xml"), idp_md)

        servers = {"upstream": (procs[0], f"http://127.0.0.1:{ports['upstream']}", None, None)}
        nginx = start_proxy_nginx(work, ports["nginx"], ports["nginx_h2"], ports["upstream"], procs)
        servers["nginx"] = (nginx, f"http://127.0.0.1:{ports['nginx']}", None, f"http://127.0.0.1:{ports['nginx_h2']}")
        apache = start_mellon(work, ports["mellon"], ports["upstream"], procs)
        servers["mellon"] = (apache, mellon_base, mellon_login(mellon_base), None)
        for name, binary in gateways.items():
            proc = Proc(name, [binary, "serve", "--config", configs[name]], cwd=ROOT, cpu=SERVER_CPU)
            proc.drain()
            procs.append(proc)
            wait_for_port(ports[name], proc)
            base = f"http://127.0.0.1:{ports[name]}"
            servers[name] = (proc, base, ssogate_login(base), base)
        # The same gateway with an access token instead of the cookie (issue 17's bar: a
        # token request costs at most 5% more than a cookie request).
        if "ssogate" in gateways:
            proc, base, cookie, _ = servers["ssogate"]
            status, _, body = request(base + "/api/organizations/acme/tokens", "POST", {
                "Cookie": cookie, "Origin": base, "Content-Type": "application/json"}, '{"name": "bench"}')
            check(status == 201, f"token for the bench: {status} {body[:200]}")
            servers["ssogate token"] = (proc, base, "Authorization: Bearer " + json.loads(body)["token"], None)
        for name, (proc, base, cookie, _) in servers.items():
            fetch_ok(base, PROTECTED, cookie)
            fetch_ok(base, PUBLIC, None)

        results = {name: {"auth": [], "public": [], "h2": []} for name in servers}
        for name, (proc, base, cookie, h2) in servers.items():      # warm-up, not counted
            wrk_run(base + PROTECTED, 2, cookie)
        for round_no in range(a.rounds):
            order = list(servers) if round_no % 2 == 0 else list(reversed(servers))
            for name in order:
                proc, base, cookie, h2 = servers[name]
                results[name]["auth"].append(measured(proc, lambda: wrk_run(base + PROTECTED, a.duration, cookie)))
                if not name.endswith(" token"):
                    results[name]["public"].append(measured(proc, lambda: wrk_run(base + PUBLIC, a.duration, None)))
                if h2:
                    results[name]["h2"].append(measured(proc, lambda: h2load_run(h2 + PROTECTED, a.duration, cookie)))
            print(f"round {round_no + 1}/{a.rounds} done", flush=True)

        instructions = {}
        stop_all_gateways = [servers[n][0] for n in gateways] + [nginx]
        for proc in stop_all_gateways:
            proc.stop()
        if a.instructions:
            for name, binary in gateways.items():
                instructions[name] = count_instructions(work, name, [binary, "serve", "--config", configs[name]],
                                                        ports[name], PROTECTED, servers[name][2], a.instructions)
                if name == "ssogate" and "ssogate token" in servers:
                    instructions["ssogate token"] = count_instructions(work, "ssogate-token", [binary, "serve", "--config", configs[name]],
                                                                       ports[name], PROTECTED, servers["ssogate token"][2], a.instructions)
            # One process (no master): the one callgrind_control zeroes and dumps.
            single = os.path.join(work, "nginx-single.conf")
            write(single, open(os.path.join(work, "nginx.conf")).read().replace("daemon off;", "daemon off; master_process off;"))
            instructions["nginx"] = count_instructions(work, "nginx", ["nginx", "-c", single], ports["nginx"],
                                                       PROTECTED, None, a.instructions)
        report(a, servers, results, instructions)
    except Exception:
        for log in glob.glob(os.path.join(work, "*error.log")):       # what the servers said
            with open(log) as f:
                print(f"--- {os.path.basename(log)}\n" + "".join(f.readlines()[-8:]), file=sys.stderr)
        raise
    finally:
        for p in reversed(procs):
            p.stop()
        if os.environ.get("AUTH_BENCH_KEEP") == "1":     # configs, logs and callgrind profiles
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(a, servers, results, instructions):
    def med(rows, i):
        return statistics.median(r[i] for r in rows) if rows else None
    ref = {k: med(results["nginx"][k], 0) for k in ("auth", "public", "h2")}
    ref_p99 = {k: med(results["nginx"][k], 1) for k in ("auth", "public")}
    lines = [f"# auth-bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"`python3 benchmarks/auth-bench.py --rounds {a.rounds} --duration {a.duration}"
             f"{' --baseline ' + os.path.basename(a.baseline) if a.baseline else ''}` ({os.path.basename(a.binary)}); "
             f"servers on CPU {SERVER_CPU}, upstream and clients on CPU {CLIENT_CPU}; medians of {a.rounds} interleaved rounds.", "",
             "| | protected req/s | vs nginx | p99 ms | vs nginx | CPU µs/req (user + kernel) | public req/s | vs nginx | h2c req/s | vs nginx |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in servers:
        r = results[name]
        auth, p99, cpu, user, kernel = (med(r["auth"], i) for i in (0, 1, 3, 4, 5))
        pub = med(r["public"], 0)
        h2 = med(r["h2"], 0)
        lines.append(f"| {name} | {auth:,.0f} | {auth / ref['auth']:.2f} | {p99:.2f} | {p99 / ref_p99['auth']:.2f} "
                     f"| {cpu:.1f} ({user:.1f} + {kernel:.1f}) "
                     + (f"| {pub:,.0f} | {pub / ref['public']:.2f} | " if pub else "| – | – | ")
                     + (f"{h2:,.0f} | {h2 / ref['h2']:.2f} |" if h2 else "– | – |"))
    if "ssogate token" in results:
        token, cookie = med(results["ssogate token"]["auth"], 0), med(results["ssogate"]["auth"], 0)
        lines += ["", f"Access token vs session cookie, same gateway: {token:,.0f} vs {cookie:,.0f} req/s ({token / cookie:.3f})."]
    if instructions:
        lines += ["", f"Instructions per protected GET (callgrind, {a.instructions} keep-alive requests after 200 uncounted):", ""]
        lines += [f"- {name}: {count:,.0f}" + (f" ({count / instructions['nginx']:.1f}x nginx)" if name != "nginx" else "")
                  for name, count in instructions.items()]
    publish("auth-bench", lines)


if __name__ == "__main__":
    main()
