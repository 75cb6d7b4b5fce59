#!/usr/bin/env python3
"""Debian's git against a repository behind the gateway, with an access token (docs/CONTRACT.md
"Access tokens for CLIs and git").

`git http-backend` serves bare repositories under /acme/ and /beta/ (a small CGI upstream);
`ssogate serve` protects both organizations (the same `ssogate dev-idp`); alice logs in
through the IdP's forms, makes a token with the API (her session cookie and an Origin),
then:

  a. git clones /acme/models.git with the token as the password, commits and pushes;
  b. without a token, or with a wrong one, git gets 401 and clones nothing;
  c. the acme token does not open /beta/;
  d. a read-only token clones but cannot push;
  e. revoked, the token stops working;
  f. the upstream never saw a token.

    python3 Tests/Git/check_git.py [path to ssogate]
"""
import base64
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Replicas"))
from harness import (ROOT, Proc, check, free_port, obtain_response, placeholder_certificate, post_acs, request,  # noqa: E402
                     set_cookies, sp_metadata, start_dev_idp, wait_for_port)
from ssogate_support import Tally  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
SEEN_AUTHORIZATION = []
tally = Tally("git")
ok = tally.check


class GitBackend(http.server.BaseHTTPRequestHandler):
    """git http-backend as CGI, for every path (the gateway sends only what it allows)."""
    root = None

    def do_GET(self):
        self.cgi()

    def do_POST(self):
        self.cgi()

    def cgi(self):
        SEEN_AUTHORIZATION.append(self.headers.get("Authorization") or "")
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        env = {"GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": self.headers.get("X-Forwarded-User", ""),
               "REMOTE_ADDR": "127.0.0.1", "PATH": os.environ["PATH"]}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = out.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def read_chunked(self):
        data = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def log_message(self, *args):
        pass


def git(*args, cwd=None):
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "HOME": cwd or tempfile.gettempdir()}
    return subprocess.run(["git", "-c", "credential.helper=", "-c", "user.name=Alice", "-c", "user.email=alice@example.test", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def main():
    work = tempfile.mkdtemp(prefix="ssogate-git-")
    procs = []
    server = None
    try:
        repos = os.path.join(work, "repos")
        for org in ("acme", "beta"):
            bare = os.path.join(repos, org, "models.git")
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", bare], check=True)
            subprocess.run(["git", "-C", bare, "config", "http.receivepack", "true"], check=True)
            seed = os.path.join(work, f"seed-{org}")
            subprocess.run(["git", "init", "-q", "-b", "main", seed], check=True)
            with open(os.path.join(seed, "README.md"), "w") as f:
                f.write(f"# {org} models\n")
            git("add", "README.md", cwd=seed)
            git("commit", "-q", "-m", "first", cwd=seed)
            git("push", "-q", bare, "main", cwd=seed)
        GitBackend.root = repos
        app_port, gw_port, idp_port = free_port(), free_port(), free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", app_port), GitBackend)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        gw = f"http://127.0.0.1:{gw_port}"
        idp = f"http://localhost:{idp_port}"
        cert = os.path.join(work, "idp.crt")
        with open(cert, "w") as f:
            f.write(placeholder_certificate())
        config = os.path.join(work, "ssogate.yaml")
        with open(config, "w") as f:
            f.write(f"""listen: "127.0.0.1:{gw_port}"
public_url: "{gw}"
upstream: "http://127.0.0.1:{app_port}"
store: "sqlite:{work}/state.db"
session: {{secrets: ["git-test-secret-0123456789abcdef0123456789"]}}
protected_paths: ["/{{org}}/"]
logins: {{per_client: "300/m"}}
organizations:
  - name: acme
    saml: {{enabled: true, sign_on_url: "{idp}/sso", idp_entity_id: "{idp}/metadata", certificate_file: "{cert}"}}
  - name: beta
    saml: {{enabled: true, sign_on_url: "{idp}/sso", idp_entity_id: "{idp}/metadata", certificate_file: "{cert}"}}
""")
        sp_metadata(BIN, config, os.path.join(work, "sp.xml"))
        dev_idp, _ = start_dev_idp(BIN, idp_port, [os.path.join(work, "sp.xml")], cert)
        procs.append(dev_idp)
        gateway = Proc("ssogate", [BIN, "serve", "--config", config], cwd=ROOT)
        gateway.drain()
        procs.append(gateway)
        wait_for_port(gw_port, gateway)

        status, headers, body, _ = post_acs(gw, obtain_response(gw, user="alice", return_to="/acme/x"))
        session = set_cookies(headers).get("ssogate_session")
        check(status == 303 and session, f"alice logs in: {status} {body[:200]}")

        def make_token(name, read_only=False):
            status, _, body = request(gw + "/api/organizations/acme/tokens", method="POST",
                                      body=json.dumps({"name": name, "read_only": read_only}),
                                      headers={"Cookie": f"ssogate_session={session}", "Origin": gw, "Content-Type": "application/json"})
            check(status == 201, f"token made: {status} {body[:200]}")
            made = json.loads(body)
            return made["token"], made["id"]

        token, token_id = make_token("git on the laptop")
        ok("the API makes a token for a member with a session (201, ssg_...)", token.startswith("ssg_"))

        def url(org, secret=None):
            return f"http://{'alice:' + secret + '@' if secret else ''}127.0.0.1:{gw_port}/{org}/models.git"

        # a. clone, commit, push with the token as the password.
        clone = os.path.join(work, "clone")
        out = git("clone", "-q", url("acme", token), clone)
        ok("a. git clones acme/models.git with the token", out.returncode == 0 and os.path.exists(os.path.join(clone, "README.md")), out.stderr)
        with open(os.path.join(clone, "PUSHED.txt"), "w") as f:
            f.write("pushed through ssogate\n")
        git("add", "PUSHED.txt", cwd=clone)
        git("commit", "-q", "-m", "through the gateway", cwd=clone)
        out = git("push", "-q", "origin", "HEAD:main", cwd=clone)
        log = subprocess.run(["git", "-C", os.path.join(repos, "acme", "models.git"), "log", "--format=%s", "main"], capture_output=True, text=True)
        ok("a. git pushes a commit with the token", out.returncode == 0 and "through the gateway" in log.stdout, out.stderr + log.stdout)

        # b. no token, a wrong one.
        out = git("clone", "-q", url("acme"), os.path.join(work, "anonymous"))
        ok("b. without a token git gets 401 and clones nothing", out.returncode != 0 and not os.path.exists(os.path.join(work, "anonymous", "README.md")),
           out.stderr)
        status, headers, body = request(gw + "/acme/models.git/info/refs?service=git-upload-pack")
        ok("b. the 401 asks for Basic and says where to get a token",
           status == 401 and "Basic" in (dict((k.lower(), v) for k, v in headers).get("www-authenticate", ""))
           and "/organizations/acme/settings/tokens" in body, f"{status} {headers} {body[:200]}")
        out = git("clone", "-q", url("acme", "ssg_" + "x" * 43), os.path.join(work, "wrong"))
        ok("b. a wrong token gets 401", out.returncode != 0, out.stderr)

        # c. another organization.
        out = git("clone", "-q", url("beta", token), os.path.join(work, "beta"))
        ok("c. the acme token does not open beta", out.returncode != 0 and not os.path.exists(os.path.join(work, "beta", "README.md")), out.stderr)

        # d. read-only.
        reader, _ = make_token("ci, read only", read_only=True)
        ro = os.path.join(work, "ro")
        out = git("clone", "-q", url("acme", reader), ro)
        ok("d. a read-only token clones", out.returncode == 0, out.stderr)
        with open(os.path.join(ro, "RO.md"), "w") as f:
            f.write("no\n")
        git("add", "RO.md", cwd=ro)
        git("commit", "-q", "-m", "should not land", cwd=ro)
        out = git("push", "-q", "origin", "HEAD:main", cwd=ro)
        ok("d. a read-only token cannot push", out.returncode != 0, out.stderr)

        # e. revoked.
        status, _, body = request(gw + f"/api/organizations/acme/tokens/{token_id}", method="DELETE",
                                  headers={"Cookie": f"ssogate_session={session}", "Origin": gw})
        ok("e. the member revokes the token", status == 200, f"{status} {body[:200]}")
        out = git("clone", "-q", url("acme", token), os.path.join(work, "revoked"))
        ok("e. a revoked token gets 401", out.returncode != 0, out.stderr)

        # f. the upstream saw no token.
        leaked = [a for a in SEEN_AUTHORIZATION if "ssg_" in a or (a.lower().startswith("basic ") and "ssg_" in base64.b64decode(a[6:]).decode("latin-1"))]
        ok(f"f. the upstream never saw a token ({len(SEEN_AUTHORIZATION)} requests)", SEEN_AUTHORIZATION and not leaked, f"{leaked[:2]}")
    except Exception as error:
        ok(f"unexpected {type(error).__name__}: {error}", False)
    finally:
        for p in reversed(procs):
            try:
                p.stop()
            except Exception:
                pass
        if server:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    tally.finish()


if __name__ == "__main__":
    main()
