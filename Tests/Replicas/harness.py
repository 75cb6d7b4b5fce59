"""What Tests/Replicas/check_replicas.py and benchmarks/acs-bench.py share: the throwaway
PostgreSQL (postgres.sh), gateway configurations, `ssogate dev-idp` fed with the SP
metadata (`ssogate metadata`), a tiny upstream, and logins done as a browser without
JavaScript would (SSO start -> IdP login page -> the user's button -> the auto-POST form),
stopped just before the ACS POST so the caller decides where, when and how often the
signed response is posted. Forms and the dev-idp set-up as in Tests/Demo/demo_login.py and
Tests/HTTP2/check_http2.py; ports, processes and forms from Tests/support. Standard library only.
"""
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
POSTGRES_SH = os.path.join(HERE, "postgres.sh")
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
from ssogate_support import Proc, check, forms, free_port, placeholder_certificate, wait_for_port  # noqa: E402,F401


class Postgres:
    """Tests/Replicas/postgres.sh on a fresh mktemp folder."""

    def __init__(self):
        self.dir = subprocess.run(["mktemp", "-d", "/tmp/ssogate-pg.XXXXXX"], capture_output=True, text=True, check=True).stdout.strip()
        self.url = None
        self.paused = False

    def _run(self, cmd):
        out = subprocess.run(["bash", POSTGRES_SH, cmd, self.dir], capture_output=True, text=True, timeout=120)
        check(out.returncode == 0, f"postgres.sh {cmd} failed ({out.returncode}): {out.stderr.strip()} {self.server_log()}")
        return out.stdout.strip()

    def start(self):
        self.url = self._run("start")
        check(self.url.startswith("postgres://"), f"postgres.sh start printed {self.url!r}")
        return self.url

    def pause(self):
        self._run("pause")
        self.paused = True

    def resume(self):
        self._run("resume")
        self.paused = False

    def stop(self):
        self._run("stop")

    def postmaster_pid(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())

    def server_log(self, n=5):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return "\n    ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""


# MARK: - Configuration and the dev IdP

def gateway_yaml(port, public_url, app_port, idp, secret, cert_file, store=None, extra="", idp_initiated=False):
    store_line = f'store: "{store}"\n' if store else ""
    tiles = ", allow_idp_initiated: true" if idp_initiated else ""
    return f"""listen: "127.0.0.1:{port}"
public_url: "{public_url}"
upstream: "http://127.0.0.1:{app_port}"
{store_line}{extra}session: {{secrets: ["{secret}"]}}
protected_paths: ["/{{org}}/"]
organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "{idp}/sso", idp_entity_id: "{idp}/metadata", certificate_file: "{cert_file}"{tiles}}}
    role_mapping: {{attribute: groups, rules: [{{value: hf-admins, role: admin}}, {{value: engineering, role: write}}]}}
"""


def sp_metadata(binary, config, out_file):
    out = subprocess.run([binary, "metadata", "--config", config, "--org", "acme"], capture_output=True, text=True, cwd=ROOT)
    check(out.returncode == 0 and "AssertionConsumerService" in out.stdout, f"ssogate metadata: {out.stderr}")
    with open(out_file, "w") as f:
        f.write(out.stdout)


def start_dev_idp(binary, port, metadata_files, cert_file, cpu=None):
    """`ssogate dev-idp` on 127.0.0.1:port, reached as http://localhost:port; writes the
    certificate it prints to cert_file (the gateways must be started after this)."""
    base = f"http://localhost:{port}"
    args = [binary, "dev-idp", "--listen", f"127.0.0.1:{port}", "--base-url", base]
    for m in metadata_files:
        args += ["--sp-metadata", m]
    proc = Proc("dev-idp", args, cwd=ROOT, cpu=cpu)
    printed = []

    def read_block():
        for line in proc.popen.stdout:
            printed.append(line)
            if "END CERTIFICATE" in line:
                break
    reader = threading.Thread(target=read_block, daemon=True)
    reader.start()
    reader.join(timeout=20)
    text = "".join(printed)
    proc._lines.extend(text.splitlines())
    if reader.is_alive():
        proc.stop()
        raise AssertionError(f"dev-idp printed no certificate within 20 s: {text[:500]}")
    proc.drain()
    check(f'sign_on_url: "{base}/sso"' in text and f'idp_entity_id: "{base}/metadata"' in text,
          f"dev-idp's saml block matches the configs: {text[:600]}")
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S).group(0)
    with open(cert_file, "w") as f:
        f.write("\n".join(line.strip() for line in pem.splitlines()) + "\n")
    wait_for_port(port, proc)
    return proc, base


# MARK: - The upstream


class Upstream:
    """A threaded HTTP/1.1 server: every path answers 200 with JSON of the request as
    received ({"path", "headers": [[name, value]]}), and remembers the X-Forwarded-User of
    every request."""

    def __init__(self, port):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                seen.append((self.path, self.headers.get("X-Forwarded-User")))
                body = json.dumps({"path": self.path, "headers": [[k, v] for k, v in self.headers.items()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# MARK: - HTTP and logins


def request(url, method="GET", headers=None, body=None, timeout=20):
    """One request on a fresh connection: (status, [(name, value)], body text)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, u.path + (("?" + u.query) if u.query else ""), body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def header(headers, name):
    return next((v for k, v in headers if k.lower() == name.lower()), None)


def set_cookies(headers):
    """{name: value} of the Set-Cookie headers; a deleted cookie maps to None."""
    out = {}
    for k, v in headers:
        if k.lower() == "set-cookie":
            pair = v.split(";", 1)[0]
            name, _, value = pair.partition("=")
            out[name.strip()] = None if (value == "" or "max-age=0" in v.lower()) else value
    return out


class SignedResponse:
    """A login stopped before its ACS POST: the IdP's form fields (SAMLResponse, RelayState),
    the login-state cookie the SSO start set, and the ACS path the IdP posts to."""

    def __init__(self, fields, login_cookie, acs_path, started_on):
        self.fields, self.login_cookie, self.acs_path, self.started_on = fields, login_cookie, acs_path, started_on

    def body(self):
        return urllib.parse.urlencode(self.fields)

    def raw_request(self, host_port, accept="application/json", keep_alive=False):
        """The ACS POST as bytes, to send on any socket."""
        body = self.body().encode()
        head = (f"POST {self.acs_path} HTTP/1.1\r\nHost: {host_port}\r\nAccept: {accept}\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                f"{f'Cookie: ssogate_session_login={self.login_cookie}' + chr(13) + chr(10) if self.login_cookie else ''}"
                f"{'' if keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n")
        return head.encode() + body


def obtain_response(gw_base, user="alice", return_to="/acme/x"):
    """SSO start on gw_base -> the IdP's login page -> the user's button -> the IdP's
    auto-POST form. Returns a SignedResponse, not yet posted."""
    status, headers, body = request(f"{gw_base}/organizations/acme/sso?return_to={urllib.parse.quote(return_to)}",
                                    headers={"Accept": "text/html"})
    check(status == 302, f"SSO start on {gw_base} redirects (got {status}: {body[:200]})")
    idp_url = header(headers, "location")
    check(idp_url and "SAMLRequest=" in idp_url, f"the redirect carries a SAMLRequest: {idp_url}")
    login_cookie = set_cookies(headers).get("ssogate_session_login")
    check(login_cookie, f"SSO start sets the login-state cookie: {headers}")
    status, _, page = request(idp_url, headers={"Accept": "text/html"})
    check(status == 200, f"IdP login page (got {status}): {page[:200]}")
    chosen = [f for f in forms(page) if f"login-{user}" in f[2]]
    check(chosen, f"IdP login page has a button for {user}: {page[:300]}")
    action, fields, _ = chosen[0]
    idp = urllib.parse.urlsplit(idp_url)
    status, _, page = request(f"{idp.scheme}://{idp.netloc}{action}", "POST", {
        "Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, urllib.parse.urlencode(fields))
    check(status == 200 and "SAMLResponse" in page, f"IdP answers with the POST form (got {status}: {page[:200]})")
    acs, fields, _ = forms(page)[0]
    check("SAMLResponse" in fields, f"the IdP's form carries a SAMLResponse: {list(fields)}")
    return SignedResponse(fields, login_cookie, urllib.parse.urlsplit(acs).path, gw_base)


def obtain_unsolicited(idp_base, user="carol"):
    """An IdP-initiated (tile) login: the IdP's tile for the user -> the auto-POST form.
    A SignedResponse without InResponseTo and without a login-state cookie."""
    status, _, page = request(idp_base + "/", headers={"Accept": "text/html"})
    check(status == 200, f"IdP tile page (got {status}): {page[:200]}")
    chosen = [f for f in forms(page) if f"tile-{user}" in f[2]]
    check(chosen, f"IdP tile page has a tile for {user}: {page[:300]}")
    action, fields, _ = chosen[0]
    status, _, page = request(idp_base + action, "POST", {
        "Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, urllib.parse.urlencode(fields))
    check(status == 200 and "SAMLResponse" in page, f"IdP answers the tile with the POST form (got {status}: {page[:200]})")
    acs, fields, _ = forms(page)[0]
    return SignedResponse(fields, None, urllib.parse.urlsplit(acs).path, idp_base)


def post_acs(gw_base, signed, accept="application/json", timeout=20):
    """Posts a SignedResponse to gw_base's ACS: (status, headers, body, seconds)."""
    t0 = time.monotonic()
    headers = {"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}
    if signed.login_cookie:
        headers["Cookie"] = f"ssogate_session_login={signed.login_cookie}"
    status, headers, body = request(gw_base + signed.acs_path, "POST", headers, signed.body(), timeout=timeout)
    return status, headers, body, time.monotonic() - t0


def reason(status, body):
    """The reason code of a refusal: the JSON body's `error`, else the HTTP status."""
    try:
        return json.loads(body).get("error") or str(status)
    except ValueError:
        m = re.search(r"\b([a-z]+(?:_[a-z]+)+)\b", body)
        return m.group(1) if m else str(status)


def gateway_problems(proc):
    """The gateway's warning/error/critical records (access lines and info left out)."""
    out = []
    for line in list(proc.lines):
        parts = line.split(" ", 2)  # text log format: time, level, "logger: message ..."
        if len(parts) == 3 and parts[1] in ("warning", "error", "critical") and not parts[2].startswith("ssogate.access:"):
            out.append(line)
    return out
