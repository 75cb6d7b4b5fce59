#!/usr/bin/env python3
"""Runs `ssogate demo` and completes a login against its development IdP by following the
HTML forms, as a browser without JavaScript would: banner link, redirect to the IdP, the
user's button, the auto-POST form back to the ACS, the session cookie, the protected page.
Checks that the identity and role of each demo user reach the demo app.

    python3 Tests/Demo/demo_login.py [path to ssogate]
"""
import html
import http.client
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/ssogate"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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


def forms(page):
    """Each <form>: (action, method, {hidden input name: value}, button ids)."""
    out = []
    for m in re.finditer(r'<form([^>]*)>(.*?)</form>', page, re.S):
        attrs, inner = m.group(1), m.group(2)
        action = html.unescape(re.search(r'action="([^"]*)"', attrs).group(1))
        fields = {html.unescape(n): html.unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', inner)}
        ids = re.findall(r'<button[^>]*id="([^"]*)"', inner)
        out.append((action, fields, ids))
    return out


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def login(gw, user, expected_email, expected_role):
    b = Browser()
    status, _, page = b.request("GET", gw + "/acme/private-model")
    check(status == 403 and "Login with SSO" in page, f"anonymous page shows the banner (status {status})")
    link = html.unescape(re.search(r'href="([^"]*/organizations/acme/sso[^"]*)"', page).group(1))
    status, headers, _ = b.request("GET", urllib.parse.urljoin(gw, link))
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
    check(status == 303, f"ACS accepts the response (got {status}): {page[:300]}")
    status, _, page = b.request("GET", urllib.parse.urljoin(gw, headers["location"]))
    check(status == 200 and 'id="repo"' in page, f"the protected repository is shown (got {status})")
    email = re.search(r'<b id="user">([^<]*)</b>', page).group(1)
    role = re.search(r'<b id="role">([^<]*)</b>', page).group(1)
    check(email == expected_email and role == expected_role, f"{user}: got {email} / {role}")
    check("Login with SSO" not in page, "no banner once signed in")
    return b


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


def main():
    port = free_port()
    proc = subprocess.Popen([BIN, "demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    passed = failed = 0
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        gw = re.search(r"open (http://\S+?)/acme/private-model", first).group(1)
        idp_base = re.search(r"development IdP: (http://\S+?)/ ", second).group(1)
        # Keep reading its output so the demo never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        # Wait until the gateway listens.
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        cases = [
            ("alice (hf-admins) signs in as admin", lambda: login(gw, "alice", "alice@example.test", "admin")),
            ("bob (viewers) signs in read-only", lambda: login(gw, "bob", "bob@example.test", "read")),
            ("carol signs in from the IdP tile", lambda: idp_initiated(gw, idp_base)),
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
    print(f"demo: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
