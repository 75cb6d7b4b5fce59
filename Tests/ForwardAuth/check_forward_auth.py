#!/usr/bin/env python3
"""Forward-auth behind real ingresses (docs/CONTRACT.md "Forward-auth"): Debian's nginx
(`auth_request`) and Caddy (`forward_auth`), each running the README's snippet as written
(only its two addresses and its listen port replaced), in front of `ssogate serve` and the
upstream of Tests/HTTP2 (`/acme/whoami` answers with the headers it received).

For each ingress:
- a browser without a session is sent to log in, and the whole login runs through the
  ingress (`ssogate dev-idp` is the IdP); API clients get the 401 JSON;
- a member's request reaches the upstream with the identity, and the identity headers the
  client forged do not;
- anonymous requests carry none of the identity headers, forged or not;
- a request the access policy refuses gets its 403 (enforce_roles: bob's read role may not POST).

    python3 Tests/ForwardAuth/check_forward_auth.py [path to ssogate]

Needs: nginx, caddy, httpx.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

import http.cookiejar

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Replicas"))
from harness import start_dev_idp  # noqa: E402
from ssogate_support import Proc, Tally, forms, free_port, placeholder_certificate, wait_for_port  # noqa: E402

SECRET = "forward-auth-test-secret-0123456789abcdef0123"
IDENTITY = ["x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-sso-organization", "x-sso-role",
            "x-sso-identity-organization", "x-sso-organizations"]
FORGED = {"X-Forwarded-User": "mallory", "X-Forwarded-Email": "mallory@evil.test", "X-SSO-Role": "admin",
          "X-SSO-Organization": "evil", "X-Forwarded-Groups": "hf-admins"}
NO_COOKIES = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
tally = Tally("forward-auth")
check = tally.check


def readme_snippet(language):
    """The README's snippet in a ```language block of the forward-auth section."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme[readme.index("## Forward-auth"):]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def rendered(text, listen, gateway, app):
    return text.replace("ssogate.internal:8080", f"127.0.0.1:{gateway}").replace("app.internal:9000", f"127.0.0.1:{app}") \
        .replace("listen 80;", f"listen 127.0.0.1:{listen};").replace(":80 {", f"http://127.0.0.1:{listen} {{")


def gateway_yaml(port, public_url, app_port, idp):
    return f"""listen: "127.0.0.1:{port}"
public_url: "{public_url}"
upstream: "http://127.0.0.1:{app_port}"
session: {{secrets: ["{SECRET}"]}}
store: memory
trusted_proxies: ["127.0.0.1/32"]
protected_paths: ["/{{org}}/"]
organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "{idp}/sso", idp_entity_id: "{idp}/metadata", certificate_file: "idp.crt"}}
    role_mapping: {{attribute: groups, rules: [{{value: hf-admins, role: admin}}, {{value: engineering, role: write}}]}}
    access: {{enforce_roles: true}}
"""


class Browser:
    """No redirects followed; a cookie jar per origin."""

    def __init__(self):
        # Its own jar only: httpx's would send cookies to every port of 127.0.0.1.
        self.client = httpx.Client(timeout=20, follow_redirects=False, cookies=NO_COOKIES)
        self.jar = {}

    def request(self, method, url, form=None, accept="text/html", headers=None):
        u = urllib.parse.urlsplit(url)
        origin = f"{u.scheme}://{u.netloc}"
        h = {"Accept": accept, **(headers or {})}
        if self.jar.get(origin):
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar[origin].items())
        resp = self.client.request(method, url, headers=h, data=form)
        for value in resp.headers.get_list("set-cookie"):
            k, _, v = value.split(";", 1)[0].partition("=")
            if "max-age=0" in value.lower() or not v:
                self.jar.setdefault(origin, {}).pop(k.strip(), None)
            else:
                self.jar.setdefault(origin, {})[k.strip()] = v
        return resp


def received(resp):
    return {k.lower(): v for k, v in resp.json()["headers"]}


def run_ingress(name, base, user, expected_role):
    """The login and the member's and anonymous requests through one ingress."""
    b = Browser()
    page = b.request("GET", base + "/acme/whoami?x=1")
    location = page.headers.get("location", "")
    check(f"{name}: a browser without a session is sent to log in",
          page.status_code == 302 and location.endswith("/organizations/acme/sso?return_to=/acme/whoami%3Fx%3D1"), f"{page.status_code} {location}")
    api = b.request("GET", base + "/acme/whoami", accept="application/json")
    body = api.json() if api.headers.get("content-type", "").startswith("application/json") else {}
    check(f"{name}: an API client gets the 401 JSON", api.status_code == 401 and body.get("error") == "sso_required"
          and api.headers.get("www-authenticate") == 'Basic realm="ssogate acme"', f"{api.status_code} {api.text[:200]} {dict(api.headers)}")
    # The login, every step through the ingress but the IdP's own pages.
    start = b.request("GET", urllib.parse.urljoin(base, location))
    idp_url = start.headers.get("location", "")
    login_page = b.request("GET", idp_url)
    action, fields, _ = next(f for f in forms(login_page.text) if f"login-{user}" in f[2])
    idp = urllib.parse.urlsplit(idp_url)
    posted = b.request("POST", f"{idp.scheme}://{idp.netloc}{action}", fields)
    acs, fields, _ = forms(posted.text)[0]
    done = b.request("POST", acs, fields)
    check(f"{name}: the login through the ingress ends at the page asked for",
          acs.startswith(base + "/") and done.status_code == 303 and done.headers.get("location") == "/acme/whoami?x=1",
          f"acs {acs}: {done.status_code} {done.headers.get('location')} {done.text[:200]}")
    member = b.request("GET", base + "/acme/whoami", accept="application/json", headers=FORGED)
    got = received(member) if member.status_code == 200 else {}
    check(f"{name}: the member's request reaches the upstream with the gateway's identity, not the forged one",
          got.get("x-forwarded-user") == f"{user}@example.test" and got.get("x-sso-role") == expected_role
          and got.get("x-sso-organization") == "acme", f"{member.status_code} {got}")
    with httpx.Client(timeout=20) as fresh:
        anonymous = fresh.get(base + "/whoami", headers={"Accept": "application/json", **FORGED})
    got = received(anonymous) if anonymous.status_code == 200 else {"status": anonymous.status_code}
    check(f"{name}: an anonymous request carries no identity (no header, or an empty one), forged or not",
          anonymous.status_code == 200 and not any(got.get(h) for h in IDENTITY), f"{got}")
    return b


def main():
    work = tempfile.mkdtemp(prefix="ssogate-forward-auth.")
    procs = []

    def spawn(p):
        procs.append(p)
        return p
    try:
        app_port, idp_port = free_port(), free_port()
        ports = {"nginx": (free_port(), free_port()), "caddy": (free_port(), free_port())}   # (ingress, gateway)
        idp = f"http://localhost:{idp_port}"
        with open(os.path.join(work, "idp.crt"), "w") as f:
            f.write(placeholder_certificate())
        configs, metadata = {}, []
        for name, (ingress, gateway) in ports.items():
            configs[name] = os.path.join(work, f"{name}.yaml")
            with open(configs[name], "w") as f:
                f.write(gateway_yaml(gateway, f"http://127.0.0.1:{ingress}", app_port, idp))
            out = subprocess.run([BIN, "metadata", "--config", configs[name], "--org", "acme"], capture_output=True, text=True, check=True)
            metadata.append(os.path.join(work, f"sp-{name}.xml"))
            with open(metadata[-1], "w") as f:
                f.write(out.stdout)
        upstream = spawn(Proc("upstream", [sys.executable, os.path.join(ROOT, "Tests", "HTTP2", "upstream.py"), str(app_port)]))
        upstream.drain()
        dev_idp, _ = start_dev_idp(BIN, idp_port, metadata, os.path.join(work, "idp.crt"))
        spawn(dev_idp)
        for name, (ingress, gateway) in ports.items():
            spawn(Proc(f"ssogate-{name}", [BIN, "serve", "--config", configs[name]], cwd=work)).drain()
        # nginx: the snippet inside a minimal main configuration of its own.
        ingress, gateway = ports["nginx"]
        with open(os.path.join(work, "nginx.conf"), "w") as f:
            f.write(f"daemon off;\npid {work}/nginx.pid;\nerror_log {work}/nginx-error.log;\nevents {{}}\n"
                    f"http {{\n access_log off;\n client_body_temp_path {work};\n proxy_temp_path {work};\n"
                    + rendered(readme_snippet("nginx"), ingress, gateway, app_port) + "}\n")
        spawn(Proc("nginx", ["nginx", "-c", os.path.join(work, "nginx.conf")])).drain()
        ingress, gateway = ports["caddy"]
        with open(os.path.join(work, "Caddyfile"), "w") as f:
            f.write("{\n admin off\n auto_https off\n storage file_system " + work + "/caddy\n}\n"
                    + rendered(readme_snippet("caddyfile"), ingress, gateway, app_port))
        spawn(Proc("caddy", ["caddy", "run", "--config", os.path.join(work, "Caddyfile"), "--adapter", "caddyfile"],
                   env={**os.environ, "HOME": work, "XDG_DATA_HOME": work, "XDG_CONFIG_HOME": work})).drain()
        for p in procs:
            if p.name.startswith("ssogate-") or p.name in ("nginx", "caddy"):
                port = {"nginx": ports["nginx"][0], "caddy": ports["caddy"][0], "ssogate-nginx": ports["nginx"][1],
                        "ssogate-caddy": ports["caddy"][1]}[p.name]
                wait_for_port(port, p)
        wait_for_port(app_port, upstream)

        for name, (ingress, _) in ports.items():
            base = f"http://127.0.0.1:{ingress}"
            run_ingress(name, base, "alice", "admin")
            bob = run_ingress(name, base, "bob", "read")
            post = bob.request("POST", base + "/acme/upload", accept="application/json", form={"x": "1"})
            body = post.json() if post.headers.get("content-type", "").startswith("application/json") else {}
            check(f"{name}: the access policy's refusal reaches the client (a read member's POST)",
                  post.status_code == 403 and body.get("error") == "role_read_only", f"{post.status_code} {post.text[:200]}")
    except Exception as error:
        tally.fail(f"{type(error).__name__}: {error}")
        for p in procs:
            print(f"  --- {p.name}: {p.tail()}")
        for log in ("nginx-error.log",):
            path = os.path.join(work, log)
            if os.path.exists(path):
                print(f"  --- {log}: {open(path).read()[-1500:]}")
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)
    tally.finish()


if __name__ == "__main__":
    main()
