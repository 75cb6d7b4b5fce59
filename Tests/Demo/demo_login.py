#!/usr/bin/env python3
"""Runs `ssogate demo` and completes a login against its development IdP by following the
HTML forms, as a browser without JavaScript would: banner link, redirect to the IdP, the
user's button, the auto-POST form back to the ACS, the session cookie, the protected page.
Checks that the identity and role of each demo user reach the demo app. Then runs
`ssogate dev-idp` in front of a real `ssogate serve`, wired the way an integrator would.

    python3 Tests/Demo/demo_login.py [path to ssogate]
"""
import html
import os
import shutil
import signal
import tempfile
import http.client
import re
import subprocess
import sys
import threading
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
from ssogate_support import check, forms, free_port, wait_for_port  # noqa: E402


class Browser:
    """Just enough of a browser: a cookie jar per host (no Secure filtering: the gateway's
    cookies are Secure and browsers count http://127.0.0.1 as secure), no automatic redirects."""

    def __init__(self):
        self.jar = {}

    def request(self, method, url, form=None, accept="text/html"):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        headers = {"Accept": accept}
        cookies = self.jar.get(u.hostname, {})
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, u.path + (("?" + u.query) if u.query else ""), body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                if "max-age=0" in value.lower() or v == "":
                    self.jar.setdefault(u.hostname, {}).pop(k.strip(), None)
                else:
                    self.jar.setdefault(u.hostname, {})[k.strip()] = v
        conn.close()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), text


def sign_in(start_url, user, browser=None):
    """Banner link on start_url -> IdP login page -> user's button -> POST back -> landing page.
    Returns (ACS status, landing page text or ACS body)."""
    b = browser or Browser()
    status, _, page = b.request("GET", start_url)
    check("Login with SSO" in page, f"anonymous page shows the banner (status {status})")
    link = html.unescape(re.search(r'href="([^"]*/organizations/acme/sso[^"]*)"', page).group(1))
    status, headers, _ = b.request("GET", urllib.parse.urljoin(start_url, link))
    check(status == 302, f"SSO start redirects (got {status})")
    idp_url = headers["location"]
    status, _, page = b.request("GET", idp_url)
    check(status == 200, f"IdP login page (got {status}): {page[:200]}")
    action, fields, _ = next(f for f in forms(page) if f"login-{user}" in f[2])
    idp = urllib.parse.urlsplit(idp_url)
    status, _, page = b.request("POST", f"{idp.scheme}://{idp.netloc}{action}", fields)
    check(status == 200 and "SAMLResponse" in page, f"IdP answers with the POST form (got {status})")
    acs, fields, _ = forms(page)[0]
    status, headers, page = b.request("POST", acs, fields)
    if status != 303:
        return status, page
    _, _, page = b.request("GET", urllib.parse.urljoin(start_url, headers["location"]))
    return status, page


def login(gw, user, expected_email, expected_role):
    status, page = sign_in(gw + "/acme/private-model", user)
    check(status == 303, f"ACS accepts the response (got {status}): {page[:300]}")
    check('id="repo"' in page, "the protected repository is shown")
    email = re.search(r'<b id="user">([^<]*)</b>', page).group(1)
    role = re.search(r'<b id="role">([^<]*)</b>', page).group(1)
    check(email == expected_email and role == expected_role, f"{user}: got {email} / {role}")
    check("Login with SSO" not in page, "no banner once signed in")


def clone_with_a_token(gw, work):
    """The repository page's advice, followed: alice makes an access token and git clones the
    demo repository through the gateway with it."""
    browser = Browser()
    sign_in(gw + "/acme/private-model", "alice", browser)
    status, _, page = browser.request("GET", gw + "/acme/private-model")
    check(status == 200 and 'href="/organizations/acme/settings/tokens"' in page and "private-model.git" in page,
          f"the repository page says how to use git: {status}")
    u = urllib.parse.urlsplit(gw)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    cookie = "; ".join(f"{k}={v}" for k, v in browser.jar.get(u.hostname, {}).items())
    conn.request("POST", "/api/organizations/acme/tokens", body='{"name": "demo git"}',
                 headers={"Cookie": cookie, "Origin": gw, "Content-Type": "application/json"})
    resp = conn.getresponse()
    body = resp.read().decode()
    check(resp.status == 201, f"token made: {resp.status} {body[:200]}")
    token = re.search(r'"token":"(ssg_[^"]+)"', body).group(1)
    target = os.path.join(work, "clone")
    out = subprocess.run(["git", "-c", "credential.helper=", "clone", "-q", f"http://alice:{token}@{u.netloc}/acme/private-model.git", target],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    check(out.returncode == 0 and os.path.exists(os.path.join(target, "README.md")), f"git clone with the token: {out.stderr}")


def idp_initiated(gw, idp_base):
    b = Browser()
    _, _, page = b.request("GET", idp_base + "/")
    action, fields, _ = next(f for f in forms(page) if "tile-carol" in f[2])
    _, _, page = b.request("POST", idp_base + action, fields)
    acs, fields, _ = forms(page)[0]
    status, headers, _ = b.request("POST", acs, fields)
    check(status == 303 and headers["location"] == "/acme/private-model", f"tile login lands on the repo (got {status})")
    _, _, page = b.request("GET", gw + headers["location"])
    check('<b id="role">write</b>' in page, "carol (engineering) gets write")


def dev_idp_in_front_of_a_gateway(work):
    """`ssogate dev-idp` reads the SP metadata from a running gateway's URL; the certificate
    block it prints, loaded by the gateway on SIGHUP, makes logins work."""
    refused = subprocess.run([BIN, "dev-idp", "--listen", "0.0.0.0:0", "--sp-metadata", "x"], capture_output=True, text=True)
    check(refused.returncode != 0 and "refusing to listen on 0.0.0.0" in refused.stderr, f"public bind refused: {refused.stderr}")
    gw_port, idp_port, app_port = free_port(), free_port(), free_port()
    gw, idp = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{idp_port}"
    # Until the dev IdP runs, the organization trusts some other certificate.
    placeholder = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                            open(os.path.join(ROOT, "Config/minimal.yaml")).read(), re.S).group(0)
    cert = os.path.join(work, "idp.crt")
    with open(cert, "w") as f:
        f.write("\n".join(line.strip() for line in placeholder.splitlines()) + "\n")
    config = os.path.join(work, "ssogate.yaml")
    with open(config, "w") as f:
        f.write(f"""listen: "127.0.0.1:{gw_port}"
public_url: "{gw}"
upstream: "http://127.0.0.1:{app_port}"
session: {{secrets: ["dev-idp-test-0123456789abcdef0123456789"]}}
protected_paths: ["/{{org}}/"]
organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "{idp}/sso", idp_entity_id: "{idp}/metadata", certificate_file: "{cert}"}}
    role_mapping: {{attribute: groups, rules: [{{value: hf-admins, role: admin}}]}}
""")
    procs = [subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/E2E/upstream.py"), str(app_port)]),
             subprocess.Popen([BIN, "serve", "--config", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    try:
        wait_for_port(gw_port)
        wait_for_port(app_port)
        idp_proc = subprocess.Popen([BIN, "dev-idp", "--listen", f"127.0.0.1:{idp_port}",
                                     "--sp-metadata", f"{gw}/organizations/acme/saml/metadata"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(idp_proc)
        printed = ""
        for line in idp_proc.stdout:
            printed += line
            if "END CERTIFICATE" in line:
                break
        check(f"serving: {gw}/organizations/acme/saml/metadata" in printed, f"dev-idp read the SP metadata: {printed[:300]}")
        status, page = sign_in(gw + "/acme/model", "alice")
        check(status == 403 and "signature" in page, f"an untrusted IdP is refused (got {status}: {page[:200]})")
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", printed, re.S).group(0)
        with open(cert, "w") as f:
            f.write("\n".join(line.strip() for line in pem.splitlines()) + "\n")
        procs[1].send_signal(signal.SIGHUP)
        for line in procs[1].stdout:  # the gateway logs to stdout
            if "configuration reload" in line:
                check("reloaded" in line, f"reload: {line}")
                break
        threading.Thread(target=lambda: [None for _ in procs[1].stdout], daemon=True).start()
        status, page = sign_in(gw + "/acme/model", "alice")
        check(status == 303, f"with the printed certificate the login works (got {status}: {page[:200]})")
        check('<p id="user">alice@example.test</p>' in page and '<p id="role">admin</p>' in page, f"identity reached the app: {page}")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


def console_link(link):
    """The demo's one-time link opens acme's SSO console, once."""
    b = Browser()
    status, headers, _ = b.request("GET", link)
    check(status == 303 and headers.get("location") == "/organizations/acme/settings/sso", f"the link signs in to the console: {status}")
    base = link.split("/organizations/")[0]
    status, _, page = b.request("GET", base + headers["location"])
    check(status == 200 and "Single sign-on with SAML" in page and "64f0c2acme" in page, f"the console page: {status} {page[:300]}")
    check("Update and Test SAML Configuration" in page, "acme is managed in the console")
    status, _, _ = Browser().request("GET", link)
    check(status == 401, f"a second use of the link is refused (got {status})")


def main():
    port = free_port()
    proc = subprocess.Popen([BIN, "demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    passed = failed = 0
    work = tempfile.mkdtemp(prefix="ssogate-demo-test.")
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        third = proc.stdout.readline()
        gw = re.search(r"open (http://\S+?)/acme/private-model", first).group(1)
        idp_base = re.search(r"development IdP: (http://\S+?)/ ", second).group(1)
        link = re.search(r"SSO console \(one-time link, 15 minutes\): (http://\S+)", third).group(1)
        # Keep reading its output so the demo never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        wait_for_port(port)
        cases = [
            ("alice (hf-admins) signs in as admin", lambda: login(gw, "alice", "alice@example.test", "admin")),
            ("bob (viewers) signs in read-only", lambda: login(gw, "bob", "bob@example.test", "read")),
            ("carol signs in from the IdP tile", lambda: idp_initiated(gw, idp_base)),
            ("dev-idp serves a running gateway from its metadata URL", lambda: dev_idp_in_front_of_a_gateway(work)),
            ("the printed one-time link opens acme's SSO console", lambda: console_link(link)),
            ("alice makes an access token and git clones the demo repository with it", lambda: clone_with_a_token(gw, work)),
        ]
        for name, case in cases:
            try:
                case()
                print(f"ok   {name}")
                passed += 1
            except Exception as e:  # report every case, then fail
                print(f"FAIL {name}: {e!r}")
                failed += 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"demo: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
