#!/usr/bin/env python3
"""HTTP/2, TLS and WebSocket checks of `ssogate serve`, end to end.

Three gateways in front of one upstream (Tests/HTTP2/upstream.py): one terminating TLS with
a CA made here (ALPN h2 + http/1.1, HSTS), one plain (h2c with prior knowledge, or
HTTP/1.1), and one plain with a 3 s session lifetime for the WebSocket grant expiry. One
`ssogate dev-idp` serves all three from their SP metadata files (`ssogate metadata`).
Logins follow the HTML forms like a browser without JavaScript; every request to a gateway
in a login goes over HTTP/2. The flood cases speak HTTP/2 by hand on a raw socket.

    python3 Tests/HTTP2/check_http2.py [path to ssogate]

Needs: h2/httpx[http2], websockets, cryptography; the nghttp and h2load commands.
"""
import asyncio
import collections
import datetime
import hashlib
import http.cookiejar
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
from upstream import BLOCK  # noqa: E402  (the /acme/big byte pattern)
from ssogate_support import Proc, check, cpu_seconds, forms, free_port, proc_status_kb, wait_for_port  # noqa: E402

SECRET = "http2-test-secret-0123456789abcdef0123456789"
TTL_SECRET = "http2-ttl-test-secret-0123456789abcdef01234"
BIG = 256 << 20
UPLOAD = 32 << 20
FLOOD_FRAMES = 20_000
MAX_RSS_GROWTH_KB = 64 << 10      # 256 MiB download: peak RSS may grow at most this much
MAX_FLOOD_CPU = 2.0               # seconds of gateway CPU per flood
MAX_FLOOD_RSS_KB = 32 << 10
NO_COOKIES = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


# MARK: - Processes


class Gateway(Proc):
    def __init__(self, name, config, port, base):
        super().__init__(name, [BIN, "serve", "--config", config], cwd=ROOT)
        self.port, self.base = port, base
        self.drain()


# MARK: - Certificates and configuration


def make_certificates(work):
    """A test CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssogate http2 test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {name: os.path.join(work, name) for name in ("ca.crt", "server.crt", "server.key")}
    with open(paths["ca.crt"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.crt"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(paths["server.key"], 0o600)
    return paths["ca.crt"]


def client_tls(ca):
    """A fresh context per client: httpx sets its own ALPN list on the one it is given."""
    return ssl.create_default_context(cafile=ca)


def gateway_yaml(port, public_url, app_port, sign_on_url, entity_id, secret, extra=""):
    # Relative file names: resolved against the config file's folder (the gateway runs in ROOT).
    return f"""listen: "127.0.0.1:{port}"
public_url: "{public_url}"
upstream: "http://127.0.0.1:{app_port}"
{extra}session: {{secrets: ["{secret}"]}}
protected_paths: ["/{{org}}/"]
organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "{sign_on_url}", idp_entity_id: "{entity_id}", certificate_file: "idp.crt"}}
    role_mapping: {{attribute: groups, rules: [{{value: hf-admins, role: admin}}, {{value: engineering, role: write}}]}}
"""


# MARK: - A browser over HTTP/2


class Browser:
    """Follows no redirect, keeps a cookie jar per origin, and speaks HTTP/2 to the origins
    in `h2` (ALPN for https, prior knowledge for http); HTTP/1.1 elsewhere (the IdP).
    Records the protocol of every answer."""

    def __init__(self, ca=None, h2=()):
        self.ca, self.h2 = ca, set(h2)
        self.jar, self.clients, self.versions = {}, {}, []

    def client(self, origin, scheme):
        if origin not in self.clients:
            kw = dict(timeout=20, cookies=NO_COOKIES, follow_redirects=False)
            if scheme == "https":
                kw["verify"] = client_tls(self.ca)
            if origin in self.h2:
                kw.update(http1=(scheme == "https"), http2=True)
            self.clients[origin] = httpx.Client(**kw)
        return self.clients[origin]

    def cookie(self, origin, name):
        return self.jar.get(origin, {}).get(name)

    def request(self, method, url, form=None, accept="text/html", headers=None):
        u = urllib.parse.urlsplit(url)
        origin = f"{u.scheme}://{u.netloc}"
        h = {"Accept": accept, **(headers or {})}
        cookies = self.jar.get(origin, {})
        if cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        resp = self.client(origin, u.scheme).request(method, url, headers=h, data=form)
        self.versions.append((origin, method, u.path, resp.http_version))
        for value in resp.headers.get_list("set-cookie"):
            k, _, v = value.split(";", 1)[0].partition("=")
            if "max-age=0" in value.lower() or v == "":
                self.jar.setdefault(origin, {}).pop(k.strip(), None)
            else:
                self.jar.setdefault(origin, {})[k.strip()] = v
        return resp

    def close(self):
        for c in self.clients.values():
            c.close()


def sign_in(browser, gw_base, user, return_to="/acme/whoami"):
    """SSO start on the gateway -> IdP login page -> the user's button -> POST back to the
    gateway's ACS. Returns the ACS response (303 with the session cookie on success)."""
    start = browser.request("GET", f"{gw_base}/organizations/acme/sso?return_to={urllib.parse.quote(return_to)}")
    check(start.status_code == 302, f"SSO start redirects (got {start.status_code}: {start.text[:200]})")
    idp_url = start.headers["location"]
    check("SAMLRequest=" in idp_url, f"redirect carries a SAMLRequest: {idp_url[:120]}")
    login_page = browser.request("GET", idp_url)
    check(login_page.status_code == 200, f"IdP login page (got {login_page.status_code}): {login_page.text[:200]}")
    action, fields, _ = next(f for f in forms(login_page.text) if f"login-{user}" in f[2])
    idp = urllib.parse.urlsplit(idp_url)
    posted = browser.request("POST", f"{idp.scheme}://{idp.netloc}{action}", fields)
    check(posted.status_code == 200 and "SAMLResponse" in posted.text, f"IdP answers with the POST form (got {posted.status_code})")
    acs, fields, _ = forms(posted.text)[0]
    check(acs.startswith(gw_base + "/"), f"the IdP posts back to this gateway: {acs}")
    return browser.request("POST", acs, fields)


def login(browser, gw_base, user):
    resp = sign_in(browser, gw_base, user)
    check(resp.status_code == 303, f"ACS accepts the response (got {resp.status_code}: {resp.text[:300]})")
    check(resp.headers.get("location") == "/acme/whoami", f"ACS sends back to return_to: {resp.headers.get('location')}")
    origin = urllib.parse.urlsplit(gw_base)
    cookie = browser.cookie(f"{origin.scheme}://{origin.netloc}", "ssogate_session")
    check(cookie, f"ACS set the session cookie: {resp.headers.get_list('set-cookie')}")
    return cookie


def received_headers(resp):
    """The upstream's /whoami answer: [(name, value)] as it received them."""
    check(resp.status_code == 200, f"whoami answers 200 (got {resp.status_code}: {resp.text[:200]})")
    return [(k.lower(), v) for k, v in resp.json()["headers"]]


def values(headers, name):
    return [v for k, v in headers if k == name.lower()]


def check_identity(client, base, cookie, email, role):
    """/acme/whoami with the session and forged identity headers: only the gateway's arrive."""
    resp = client.get(f"{base}/acme/whoami", headers={
        "Accept": "application/json", "Cookie": f"ssogate_session={cookie}",
        "X-Forwarded-User": "mallory", "X-Forwarded-Email": "mallory@evil.test",
        "X-SSO-Role": "admin" if role != "admin" else "read", "X-SSO-Organization": "evil"})
    check(resp.http_version == "HTTP/2", f"whoami over {resp.http_version}")
    got = received_headers(resp)
    want = {"x-forwarded-user": email, "x-forwarded-email": email, "x-sso-organization": "acme", "x-sso-role": role}
    for name, value in want.items():
        check(values(got, name) == [value], f"{name}: upstream received {values(got, name)}, expected [{value!r}]")
    check(not any("mallory" in v or v == "evil" for _, v in got), f"a forged identity header reached the upstream: {got}")
    check(values(got, "x-forwarded-groups"), f"X-Forwarded-Groups present: {got}")
    check(not any("ssogate_session" in v for k, v in got if k == "cookie"), "the session cookie is not forwarded")


def check_banner_and_401(client, base):
    page = client.get(f"{base}/acme/page", headers={"Accept": "text/html"})
    check(page.http_version == "HTTP/2", f"banner page over {page.http_version}")
    check(page.status_code == 403, f"/acme/page keeps the app's 403 (got {page.status_code})")
    check("Login with SSO" in page.text, f"banner injected: {page.text[:300]}")
    check(re.search(r'href="[^"]*/organizations/acme/sso\?return_to=', page.text), f"banner links to the SSO start: {page.text[:400]}")
    check(page.text.index("Login with SSO") > page.text.index("<body>"), "banner after <body>")
    check(page.text.count("Login with SSO") >= 1 and "<h1>Restricted</h1>" in page.text, "the app's page is still there")
    api = client.get(f"{base}/acme/whoami", headers={"Accept": "application/json"})
    check(api.http_version == "HTTP/2", f"401 over {api.http_version}")
    check(api.status_code == 401, f"API request without a session gets 401 (got {api.status_code}: {api.text[:200]})")
    body = api.json()
    check(body.get("error") == "sso_required" and body.get("organization") == "acme", f"401 JSON: {body}")
    star = client.get(f"{base}/acme/whoami", headers={"Accept": "*/*"})
    check(star.status_code == 401, f"Accept: */* gets 401 too (got {star.status_code})")


# MARK: - Raw HTTP/2


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, END_HEADERS = 0x1, 0x4
ERROR_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 4: "SETTINGS_TIMEOUT",
               5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR",
               10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}


def frame(kind, flags, stream, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream & 0x7FFFFFFF) + payload


def hpack_string(text):
    raw = text.encode()
    check(len(raw) < 127, "short strings only")
    return bytes([len(raw)]) + raw


def request_block(method, path, authority, extra=()):
    """A header block in static HPACK (indexed or literal without indexing): no dynamic
    table state, so the same bytes can open any number of streams."""
    out = bytearray({"GET": b"\x82", "POST": b"\x83"}[method] + b"\x86")  # :method, :scheme http
    out += b"\x84" if path == "/" else b"\x04" + hpack_string(path)     # :path (static index 4)
    out += b"\x01" + hpack_string(authority)                             # :authority (index 1)
    for name, value in extra:
        out += b"\x00" + hpack_string(name) + hpack_string(value)
    return bytes(out)


def parse_frames(data):
    frames, i = [], 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        if i + 9 + length > len(data):
            break
        frames.append((data[i + 3], data[i + 4], int.from_bytes(data[i + 5:i + 9], "big") & 0x7FFFFFFF, data[i + 9:i + 9 + length]))
        i += 9 + length
    return frames


# MARK: - The test


class Test:
    def __init__(self, work):
        self.work = work
        self.procs = []
        self.session = {}  # gateway name -> session cookie value
        self.figures = []  # lines for the summary
        self.flood_goaways = {}  # flood name -> whether the client saw a GOAWAY

    def spawn(self, proc):
        self.procs.append(proc)
        return proc

    def setup(self):
        w = self.work
        self.ca = make_certificates(w)
        self.app_port, idp_port = free_port(), free_port()
        tls_port, h2c_port, ttl_port = free_port(), free_port(), free_port()
        idp = f"http://localhost:{idp_port}"
        placeholder = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                                open(os.path.join(ROOT, "Config/minimal.yaml")).read(), re.S).group(0)
        with open(os.path.join(w, "idp.crt"), "w") as f:  # until the dev IdP has printed its own
            f.write("\n".join(line.strip() for line in placeholder.splitlines()) + "\n")
        tls_extra = ("tls: {certificate_file: server.crt, private_key_file: server.key}\n"
                     "hsts: {max_age: 1d}\nhttp2: {enabled: true, max_concurrent_streams: 100}\n")
        specs = [("tls", tls_port, f"https://127.0.0.1:{tls_port}", SECRET, tls_extra),
                 ("h2c", h2c_port, f"http://127.0.0.1:{h2c_port}", SECRET, ""),
                 ("ttl", ttl_port, f"http://127.0.0.1:{ttl_port}", TTL_SECRET, "")]
        configs = {}
        for name, port, public, secret, extra in specs:
            configs[name] = os.path.join(w, f"{name}.yaml")
            with open(configs[name], "w") as f:
                f.write(gateway_yaml(port, public, self.app_port, f"{idp}/sso", f"{idp}/metadata", secret, extra))
        with open(configs["ttl"], "a") as f:
            f.write("    session_ttl: 3s\n")
        metadata = []
        for name, *_ in specs:
            out = subprocess.run([BIN, "metadata", "--config", configs[name], "--org", "acme"], capture_output=True, text=True, cwd=ROOT)
            check(out.returncode == 0 and "AssertionConsumerService" in out.stdout, f"ssogate metadata ({name}): {out.stderr}")
            metadata.append(os.path.join(w, f"sp-{name}.xml"))
            with open(metadata[-1], "w") as f:
                f.write(out.stdout)

        self.upstream = self.spawn(Proc("upstream", [sys.executable, os.path.join(HERE, "upstream.py"), str(self.app_port)]))
        self.upstream.drain()
        args = [BIN, "dev-idp", "--listen", f"127.0.0.1:{idp_port}", "--base-url", idp]
        for m in metadata:
            args += ["--sp-metadata", m]
        dev_idp = self.spawn(Proc("dev-idp", args))
        printed = []

        def read_block():
            for line in dev_idp.popen.stdout:
                printed.append(line)
                if "END CERTIFICATE" in line:
                    break
        reader = threading.Thread(target=read_block, daemon=True)
        reader.start()
        reader.join(timeout=20)
        check(not reader.is_alive(), f"dev-idp printed no certificate within 20 s: {''.join(printed)[:500]}")
        printed = "".join(printed)
        dev_idp.drain()
        serving = re.search(r"serving: ([^\n]*)", printed)
        serving = serving.group(1).split(", ") if serving else []
        for name, port, public, *_ in specs:
            check(f"{public}/organizations/acme/saml/metadata" in serving, f"dev-idp serves {name}: {printed[:500]}")
        check(f'sign_on_url: "{idp}/sso"' in printed and f'idp_entity_id: "{idp}/metadata"' in printed,
              f"dev-idp's saml block matches the configs: {printed[:600]}")
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", printed, re.S).group(0)
        with open(os.path.join(w, "idp.crt"), "w") as f:
            f.write("\n".join(line.strip() for line in pem.splitlines()) + "\n")

        self.gw = {name: self.spawn(Gateway(name, configs[name], port, public)) for name, port, public, *_ in specs}
        for g in self.gw.values():
            wait_for_port(g.port, g)
        wait_for_port(self.app_port, self.upstream)
        wait_for_port(idp_port, dev_idp)
        self.tls, self.h2c, self.ttl = self.gw["tls"], self.gw["h2c"], self.gw["ttl"]

    def cleanup(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                print(f"could not stop {p.name}: {e!r}")

    def h2(self, base=None, **kw):
        """An HTTP/2 client: ALPN h2 for the TLS gateway, prior knowledge for plain ones."""
        if base is None or base.startswith("https:"):
            return httpx.Client(http2=True, verify=client_tls(self.ca), cookies=NO_COOKIES, timeout=60, **kw)
        return httpx.Client(http1=False, http2=True, cookies=NO_COOKIES, timeout=60, **kw)

    def needs_session(self, name):
        check(name in self.session, f"needs the session of the {name} login case, which failed")
        return self.session[name]

    # 1
    def tls_alpn(self):
        base = self.tls.base
        for offer, expected in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
            ctx = client_tls(self.ca)
            ctx.set_alpn_protocols(offer)
            with socket.create_connection(("127.0.0.1", self.tls.port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    check(s.selected_alpn_protocol() == expected, f"ALPN {offer} -> {s.selected_alpn_protocol()}, expected {expected}")
        with self.h2(base) as c:
            r = c.get(f"{base}/", headers={"Accept": "text/html"})
            check(r.http_version == "HTTP/2", f"httpx http2=True negotiated {r.http_version}")
            check(r.status_code == 200 and "<h1>Public</h1>" in r.text, f"public page over h2: {r.status_code}")
            check(r.headers.get("strict-transport-security") == "max-age=86400", f"HSTS over h2: {r.headers.get('strict-transport-security')}")
        with httpx.Client(http2=False, verify=client_tls(self.ca), timeout=20) as c:
            r = c.get(f"{base}/", headers={"Accept": "text/html"})
            check(r.http_version == "HTTP/1.1", f"HTTP/1.1-only client got {r.http_version}")
            check(r.status_code == 200 and "<h1>Public</h1>" in r.text, f"public page over HTTP/1.1: {r.status_code}")
            check(r.headers.get("strict-transport-security") == "max-age=86400", f"HSTS over HTTP/1.1: {r.headers.get('strict-transport-security')}")
        with httpx.Client(http2=True, verify=client_tls(self.ca), timeout=20) as c:
            r = c.get(f"https://localhost:{self.tls.port}/_ssogate/healthz")
            check(r.status_code == 200 and r.http_version == "HTTP/2", f"the certificate also covers localhost: {r.status_code} {r.http_version}")

    # 2, 3
    def tls_banner(self):
        with self.h2(self.tls.base) as c:
            check_banner_and_401(c, self.tls.base)

    # 4
    def tls_login(self):
        b = Browser(ca=self.ca, h2=[self.tls.base])
        try:
            cookie = login(b, self.tls.base, "alice")
            to_gateway = [v for v in b.versions if v[0] == self.tls.base]
            check(len(to_gateway) == 2 and all(v[3] == "HTTP/2" for v in to_gateway),
                  f"SSO start and ACS POST over HTTP/2: {to_gateway}")
            acs = [v for v in b.versions if v[2].endswith("/saml/consume")]
            check(acs and acs[0][1] == "POST", f"the ACS POST went to the gateway: {b.versions}")
        finally:
            b.close()
        with self.h2(self.tls.base) as c:
            check_identity(c, self.tls.base, cookie, "alice@example.test", "admin")
        self.session["tls"] = cookie

    # 5
    def tls_download(self):
        cookie = self.needs_session("tls")
        expected = hashlib.sha256()
        full, rest = divmod(BIG, len(BLOCK))
        for _ in range(full):
            expected.update(BLOCK)
        expected.update(BLOCK[:rest])
        pid = self.tls.pid
        hwm0, rss0 = proc_status_kb(pid, "VmHWM"), proc_status_kb(pid, "VmRSS")
        peak = [rss0]
        done = threading.Event()

        def sample():
            while not done.wait(0.05):
                try:
                    peak[0] = max(peak[0], proc_status_kb(pid, "VmRSS"))
                except (OSError, AssertionError):
                    return
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        got, digest, t0 = 0, hashlib.sha256(), time.monotonic()
        try:
            with self.h2(self.tls.base) as c:
                with c.stream("GET", f"{self.tls.base}/acme/big?n={BIG}",
                              headers={"Accept": "*/*", "Cookie": f"ssogate_session={cookie}"}) as r:
                    check(r.status_code == 200, f"download status {r.status_code}")
                    check(r.http_version == "HTTP/2", f"download over {r.http_version}")
                    for chunk in r.iter_raw():
                        digest.update(chunk)
                        got += len(chunk)
        finally:
            done.set()
            sampler.join()
        seconds = time.monotonic() - t0
        hwm1 = proc_status_kb(pid, "VmHWM")
        self.figures.append(f"256 MiB over h2+TLS: {seconds:.1f} s ({BIG / seconds / 1e6:.0f} MB/s); gateway VmRSS {rss0 // 1024} -> "
                            f"peak {peak[0] // 1024} MiB, VmHWM {hwm0 // 1024} -> {hwm1 // 1024} MiB")
        check(got == BIG, f"received {got} bytes, expected {BIG}")
        check(digest.hexdigest() == expected.hexdigest(), "the body differs from the upstream's pattern (sha256)")
        check(hwm1 - hwm0 < MAX_RSS_GROWTH_KB, f"gateway peak RSS grew by {(hwm1 - hwm0) // 1024} MiB (VmHWM {hwm0} -> {hwm1} kB)")

    # 6
    def tls_upload(self):
        cookie = self.needs_session("tls")
        body = os.urandom(UPLOAD)
        with self.h2(self.tls.base) as c:
            t0 = time.monotonic()
            r = c.post(f"{self.tls.base}/acme/upload", content=body,
                       headers={"Accept": "application/json", "Content-Type": "application/octet-stream",
                                "Cookie": f"ssogate_session={cookie}"})
            self.figures.append(f"32 MiB upload over h2+TLS: {time.monotonic() - t0:.1f} s")
        check(r.http_version == "HTTP/2", f"upload over {r.http_version}")
        check(r.status_code == 200, f"upload status {r.status_code}: {r.text[:200]}")
        check(r.json() == {"length": UPLOAD, "sha256": hashlib.sha256(body).hexdigest()}, f"upstream received {r.json()}")

    # 7
    def tls_streams(self):
        cookie = self.needs_session("tls")
        n, delay = 50, 0.3

        async def run():
            async with httpx.AsyncClient(http2=True, verify=client_tls(self.ca), cookies=NO_COOKIES, timeout=30,
                                         limits=httpx.Limits(max_connections=1)) as c:
                headers = {"Accept": "application/json", "Cookie": f"ssogate_session={cookie}"}
                warm = await c.get(f"{self.tls.base}/acme/whoami", headers=headers)
                check(warm.http_version == "HTTP/2", f"warm-up over {warm.http_version}")
                t0 = time.monotonic()
                answers = await asyncio.gather(*[c.get(f"{self.tls.base}/acme/whoami?delay={delay}&i={i}", headers=headers)
                                                 for i in range(n)])
                return answers, time.monotonic() - t0
        answers, seconds = asyncio.run(run())
        bad = [(i, a.status_code, a.http_version) for i, a in enumerate(answers) if a.status_code != 200 or a.http_version != "HTTP/2"]
        check(not bad, f"{len(bad)} of {n} streams failed: {bad[:5]}")
        for i, a in enumerate(answers):
            check(a.json()["path"].endswith(f"&i={i}"), f"stream {i} got the answer of {a.json()['path']}")
            check(values(received_headers(a), "x-forwarded-user") == ["alice@example.test"], f"stream {i}: identity")
        self.figures.append(f"{n} streams x {delay}s upstream delay on one connection: {seconds:.2f} s")
        check(seconds < n * delay / 3, f"{n} streams took {seconds:.1f} s: not concurrent")

    # 8
    def h2c_checks(self):
        base = self.h2c.base
        with self.h2(base) as c:
            r = c.get(f"{base}/", headers={"Accept": "text/html"})
            check(r.http_version == "HTTP/2" and r.status_code == 200, f"h2c prior knowledge: {r.http_version} {r.status_code}")
            check("strict-transport-security" not in r.headers, "no HSTS on plain http")
            check_banner_and_401(c, base)
        with httpx.Client(http2=False, timeout=20) as c:
            r = c.get(f"{base}/acme/whoami", headers={"Accept": "application/json"})
            check(r.http_version == "HTTP/1.1" and r.status_code == 401, f"HTTP/1.1 on the same port: {r.http_version} {r.status_code}")
        b = Browser(h2=[base])
        try:
            cookie = login(b, base, "bob")
            to_gateway = [v for v in b.versions if v[0] == base]
            check(len(to_gateway) == 2 and all(v[3] == "HTTP/2" for v in to_gateway), f"login over h2c: {to_gateway}")
        finally:
            b.close()
        self.session["h2c"] = cookie
        with self.h2(base) as c:
            check_identity(c, base, cookie, "bob@example.test", "read")

    def h2c_tools(self):
        base = self.h2c.base
        out = subprocess.run(["nghttp", "-v", "-H", "accept: text/html", f"{base}/acme/page"], capture_output=True, text=True, timeout=30)
        check(out.returncode == 0, f"nghttp exit {out.returncode}: {out.stderr[-300:]}")
        check(re.search(r"recv \(stream_id=\d+\) :status: 403", out.stdout), f"nghttp saw 403: {out.stdout[-500:]}")
        check("Login with SSO" in out.stdout, "nghttp got the banner")
        out = subprocess.run(["nghttp", "-v", "-H", "accept: application/json", f"{base}/acme/whoami"], capture_output=True, text=True, timeout=30)
        check(out.returncode == 0 and re.search(r":status: 401", out.stdout) and "sso_required" in out.stdout,
              f"nghttp 401 JSON: {out.stdout[-500:]}")
        out = subprocess.run(["h2load", "-n", "200", "-c", "4", "-m", "4", f"{base}/"], capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, f"h2load exit {out.returncode}: {out.stdout[-500:]} {out.stderr[-300:]}")
        check("Application protocol: h2c" in out.stdout, f"h2load used h2c: {out.stdout[-600:]}")
        check(re.search(r"requests: 200 total, 200 started, 200 done, 200 succeeded, 0 failed, 0 errored", out.stdout)
              and re.search(r"status codes: 200 2xx, 0 3xx, 0 4xx, 0 5xx", out.stdout), f"h2load: {out.stdout[-700:]}")
        self.figures.append("h2load -n 200 -c 4 -m 4 /: " + (re.search(r"finished in [^\n]*", out.stdout) or [""])[0])

    # 9 - 13
    def flood(self, name, payload):
        g = self.h2c
        authority = f"127.0.0.1:{g.port}"
        cpu0, rss0 = cpu_seconds(g.pid), proc_status_kb(g.pid, "VmRSS")
        warnings0 = len(g.grep("closed HTTP/2 connection"))
        s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        t0 = time.monotonic()
        send_error = None
        try:  # the whole flood first, reading nothing
            s.sendall(PREFACE + frame(SETTINGS, 0, 0) + payload(authority))
        except OSError as e:
            send_error = e
        sent = time.monotonic() - t0
        data, ending = bytearray(), "timeout"
        s.settimeout(1.0)
        while time.monotonic() - t0 < 15:
            try:
                chunk = s.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                ending = "reset"
                break
            if not chunk:
                ending = "eof"
                break
            data += chunk
        closed_after = time.monotonic() - t0
        s.close()
        time.sleep(0.3)
        cpu = cpu_seconds(g.pid) - cpu0
        rss1 = proc_status_kb(g.pid, "VmRSS")
        frames = parse_frames(bytes(data))
        goaways = [(int.from_bytes(p[0:4], "big") & 0x7FFFFFFF, int.from_bytes(p[4:8], "big"), p[8:]) for t, _, _, p in frames if t == GOAWAY]
        kinds = collections.Counter(t for t, *_ in frames)
        logged = g.grep("closed HTTP/2 connection")[warnings0:]
        self.flood_goaways[name] = len(goaways) > 0
        self.figures.append(
            f"{name}: GOAWAY " + (", ".join(f"{ERROR_NAMES.get(c, c)} (last_stream_id {last}{', ' + repr(bytes(debug)) if debug else ''})"
                                            for last, c, debug in goaways) or "none") + f"; closed ({ending}) after {closed_after:.2f} s"
            f" (sending took {sent:.2f} s{', send error ' + type(send_error).__name__ if send_error else ''});"
            f" gateway CPU +{cpu:.2f} s, VmRSS {rss0 // 1024} -> {rss1 // 1024} MiB; frames received {dict(sorted(kinds.items()))};"
            f" log: {logged[0].split('closed HTTP/2 connection', 1)[1].strip() if logged else '-'}")
        check(goaways, f"the gateway closed the connection without a GOAWAY ({ending} after {closed_after:.2f} s; received {len(data)} bytes,"
                       f" frame types {dict(kinds)}); gateway log: {logged}")
        lasts = [last for last, _, _ in goaways]
        check(lasts == sorted(lasts, reverse=True), f"GOAWAY last_stream_id increased {lasts} (RFC 9113 section 6.8: MUST NOT increase);"
                                                    f" codes {[ERROR_NAMES.get(c, c) for _, c, _ in goaways]}")
        check(ending in ("eof", "reset") and closed_after < 5, f"the gateway did not close the connection within 5 s ({ending}, {closed_after:.1f} s)")
        check(cpu < MAX_FLOOD_CPU, f"gateway spent {cpu:.2f} s CPU on the flood")
        check(rss1 - rss0 < MAX_FLOOD_RSS_KB, f"gateway RSS grew {(rss1 - rss0) // 1024} MiB")
        check(self.h2c.popen.poll() is None, f"gateway exited: {self.h2c.tail()}")
        with self.h2(g.base) as c:
            r = c.get(f"{g.base}/", headers={"Accept": "text/html"})
            check(r.status_code == 200 and r.http_version == "HTTP/2", f"after the flood a request gets {r.status_code} {r.http_version}")

    def ping_flood(self):
        self.flood("PING flood", lambda a: frame(PING, 0, 0, b"12345678") * FLOOD_FRAMES)

    def settings_flood(self):
        self.flood("SETTINGS flood", lambda a: frame(SETTINGS, 0, 0) * FLOOD_FRAMES)

    def rapid_reset(self):
        def payload(authority):
            block = request_block("GET", "/", authority)
            return b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, block) + frame(RST_STREAM, 0, 1 + 2 * i, struct.pack("!I", 8))
                            for i in range(FLOOD_FRAMES))
        before = len(self.h2c.grep("method=GET path=/ "))
        try:
            self.flood("rapid reset", payload)
        finally:
            self.figures[-1] += f"; access log lines for its streams: {len(self.h2c.grep('method=GET path=/ ')) - before}"

    def empty_data(self):
        def payload(authority):
            block = request_block("POST", "/whoami", authority, [("content-type", "application/octet-stream")])
            return frame(HEADERS, END_HEADERS, 1, block) + frame(DATA, 0, 1) * FLOOD_FRAMES
        self.flood("empty DATA flood", payload)

    def continuation_flood(self):
        def payload(authority):
            block = request_block("GET", "/", authority)
            return frame(HEADERS, END_STREAM, 1, block) + b"".join(
                frame(CONTINUATION, 0, 1, b"\x00" + hpack_string(f"x-c{i % 10}") + hpack_string("a")) for i in range(FLOOD_FRAMES))
        self.flood("CONTINUATION flood", payload)

    def metrics(self):
        with self.h2(self.h2c.base) as c:
            r = c.get(f"{self.h2c.base}/_ssogate/metrics")
        check(r.status_code == 200, f"metrics status {r.status_code}")
        lines = [line for line in r.text.splitlines() if line.startswith("ssogate_http2_goaways_total")]
        self.figures.append("metrics: " + "; ".join(lines) + f" (the flood connections that did end with a GOAWAY frame:"
                            f" {sum(self.flood_goaways.values())} of {len(self.flood_goaways)})")
        check(lines, f"no ssogate_http2_goaways_total in /_ssogate/metrics: {r.text[:500]}")
        flood = [line for line in lines if 'reason="flood"' in line]
        check(flood and float(flood[0].split()[-1]) >= 4, f"flood GOAWAYs counted: {lines}")

    # 14
    def websockets(self):
        base = self.h2c.base.replace("http://", "ws://")
        with ws_connect(f"{base}/ws", open_timeout=10) as ws:
            check(ws.recv(timeout=5) == "hello anonymous", "greeting on /ws")
            ws.send("echo me")
            check(ws.recv(timeout=5) == "echo me", "echo on /ws")
        try:
            with ws_connect(f"{base}/acme/ws", open_timeout=10):
                raise AssertionError("/acme/ws without a session was upgraded")
        except InvalidStatus as e:
            status, body = e.response.status_code, e.response.body or b""
            check(status == 401 and b"sso_required" in body, f"/acme/ws without a session: {status} {body[:200]!r}")
        cookie = self.needs_session("h2c")
        with ws_connect(f"{base}/acme/ws", additional_headers={"Cookie": f"ssogate_session={cookie}", "X-Forwarded-User": "mallory"},
                        open_timeout=10) as ws:
            check(ws.recv(timeout=5) == "hello bob@example.test", "greeting names bob")
            for i in range(3):
                ws.send(f"m{i}" * 1000)
                check(ws.recv(timeout=5) == f"m{i}" * 1000, f"echo {i} on /acme/ws")
            ws.send(b"\x00\x01binary")
            check(ws.recv(timeout=5) == b"\x00\x01binary", "binary echo")
        cookie = self.needs_session("tls")
        wss = self.tls.base.replace("https://", "wss://")
        with ws_connect(f"{wss}/acme/ws", ssl=client_tls(self.ca), additional_headers={"Cookie": f"ssogate_session={cookie}"},
                        open_timeout=10) as ws:
            check(ws.recv(timeout=5) == "hello alice@example.test", "greeting names alice over wss")
            ws.send("over tls")
            check(ws.recv(timeout=5) == "over tls", "echo over wss")
        try:
            with ws_connect(f"{wss}/acme/ws", ssl=client_tls(self.ca), open_timeout=10):
                raise AssertionError("wss /acme/ws without a session was upgraded")
        except InvalidStatus as e:
            check(e.response.status_code == 401, f"wss /acme/ws without a session: {e.response.status_code}")

    # 15
    def websocket_expiry(self):
        g = self.ttl
        b = Browser(h2=[g.base])
        try:
            cookie = login(b, g.base, "carol")
            logged_in = time.monotonic()
        finally:
            b.close()
        base = g.base.replace("http://", "ws://")
        headers = {"Cookie": f"ssogate_session={cookie}"}
        with ws_connect(f"{base}/acme/ws", additional_headers=headers, open_timeout=10) as protected, \
                ws_connect(f"{base}/ws", open_timeout=10) as public:
            check(protected.recv(timeout=5) == "hello carol@example.test", "greeting names carol")
            protected.send("before expiry")
            check(protected.recv(timeout=5) == "before expiry", "echo before expiry")
            check(public.recv(timeout=5) == "hello anonymous", "greeting on /ws")
            closed_at = None
            while time.monotonic() - logged_in < 7:
                try:
                    message = protected.recv(timeout=0.1)
                    raise AssertionError(f"unexpected message {message!r}")
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    closed_at = time.monotonic() - logged_in
                    break
            expired = g.grep("session grant expired")
            self.figures.append(f"WebSocket with a 3 s grant closed {f'{closed_at:.2f} s' if closed_at else 'never (7 s)'} after login;"
                                f" log: {expired[-1] if expired else '-'}")
            check(closed_at is not None and 1.5 <= closed_at <= 6, f"/acme/ws closed at {closed_at} s after a 3 s login")
            while time.monotonic() - logged_in < 6:
                time.sleep(0.1)
            public.send("still open")
            check(public.recv(timeout=5) == "still open", "the unprotected socket outlives the grant")
        try:
            with ws_connect(f"{base}/acme/ws", additional_headers=headers, open_timeout=10):
                raise AssertionError("an expired grant opened /acme/ws")
        except InvalidStatus as e:
            check(e.response.status_code == 401, f"after expiry /acme/ws gets {e.response.status_code}")

    def drain(self):
        """SIGTERM: the stream in flight finishes, GOAWAY NO_ERROR names it, the process exits 0."""
        port = free_port()
        old = self.h2c.port
        config = os.path.join(self.work, "drain.yaml")
        with open(os.path.join(self.work, "h2c.yaml")) as f, open(config, "w") as out:
            out.write(f.read().replace(str(old), str(port)))
        g = self.spawn(Gateway("drain", config, port, f"http://127.0.0.1:{port}"))
        wait_for_port(port, g)
        authority = f"127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(PREFACE + frame(4, 0, 0) + frame(1, 0x5, 1, request_block("GET", "/whoami?delay=1.5", authority)))
            time.sleep(0.4)
            g.popen.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            # A stream opened after the GOAWAY is not served.
            s.sendall(frame(1, 0x5, 3, request_block("GET", "/", authority)))
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                data += chunk
        frames = parse_frames(data)
        goaways = [f for f in frames if f[0] == 7]
        check(len(goaways) == 1, f"one GOAWAY, got {len(goaways)}: {[(f[0], f[2]) for f in frames]}")
        last, code = struct.unpack("!II", goaways[0][3][:8])
        check(code == 0 and last == 1, f"GOAWAY NO_ERROR naming stream 1, got code {code} last {last}")
        heads = [f for f in frames if f[0] == 1 and f[2] == 1]
        check(heads and heads[0][3][:1] == b"\x88", f"stream 1 answered 200 (indexed :status 200): {heads}")
        check(any(f[0] == 0 and f[2] == 1 and f[1] & 1 for f in frames), "stream 1's body ended")
        check(not [f for f in frames if f[2] == 3 and f[0] in (0, 1)], "stream 3, opened after the GOAWAY, was served")
        code = g.popen.wait(timeout=10)
        check(code == 0, f"exit code {code} after SIGTERM")

    def cases(self):
        return [
            ("tls: ALPN h2 and http/1.1, HSTS", self.tls_alpn),
            ("tls h2: banner on HTML, 401 JSON for API clients", self.tls_banner),
            ("tls h2: SAML login over HTTP/2, identity headers, forged ones dropped", self.tls_login),
            ("tls h2: 256 MiB download, bounded gateway memory", self.tls_download),
            ("tls h2: 32 MiB upload arrives intact", self.tls_upload),
            ("tls h2: 50 concurrent streams on one connection", self.tls_streams),
            ("h2c: banner, 401, login and identity with prior knowledge", self.h2c_checks),
            ("h2c: nghttp and h2load", self.h2c_tools),
            ("flood: PING", self.ping_flood),
            ("flood: SETTINGS", self.settings_flood),
            ("flood: rapid reset", self.rapid_reset),
            ("flood: empty DATA", self.empty_data),
            ("flood: CONTINUATION", self.continuation_flood),
            ("metrics count the GOAWAYs", self.metrics),
            ("WebSocket: ws and wss, 401 without a session, identity", self.websockets),
            ("WebSocket: closed when the grant expires", self.websocket_expiry),
            ("drain: SIGTERM finishes the stream in flight, one GOAWAY NO_ERROR, exit 0", self.drain),
        ]


def main():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="ssogate-http2-test.")
    test = Test(work)
    passed = failed = 0
    try:
        try:
            test.setup()
        except Exception as e:
            print(f"FAIL setup: {e!r}")
            for p in test.procs:
                print(f"  {p.name}: {p.tail()}")
            failed += 1
        else:
            for name, case in test.cases():
                try:
                    case()
                    print(f"ok   {name}", flush=True)
                    passed += 1
                except Exception as e:  # report every case, then fail
                    print(f"FAIL {name}: {e!r}", flush=True)
                    failed += 1
            for g in test.gw.values():
                if g.popen.poll() is not None:
                    print(f"FAIL gateway {g.name} exited with {g.popen.returncode}: {g.tail()}")
                    failed += 1
            for line in test.figures:
                print(f"  {line}")
    finally:
        test.cleanup()
        shutil.rmtree(work, ignore_errors=True) if not os.environ.get("KEEPW") else print("kept", work)
    print(f"http2: {passed} passed, {failed} failed ({time.monotonic() - started:.0f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
