"""The application behind the gateways in the end-to-end test: an HTML page per path that
shows which identity headers reached it, and whether the `X-SSO-Assertion` it got verifies.

    python3 upstream.py PORT [--gateway URL]... [--ca FILE] [--token-log FILE]

The assertion (an ES256 JWT) is verified with joserfc, as an app behind the gateway would:
the signature against the JWKS of the gateway that issued it, `iss` in the allow-list
(`--gateway`, the gateways' public URLs), `aud` equal to this app's own URL
(`http://127.0.0.1:PORT`, the gateways' default audience), `exp` and `iat`. The `iss` of a
token not yet verified only selects an entry of that allow-list: keys are never fetched
from a URL the token names. Each gateway's JWKS is fetched on first use and kept for its
`Cache-Control: max-age` (at most five minutes); a `kid` not in it fetches it again, at
most once per JWKS_REFETCH_SECONDS, for a key rotated in meanwhile. https gateways are
checked against `--ca`.

The page carries `<p id="assertion">`: `assertion: none`, `assertion: verified sub=... role=...`
or `assertion: rejected (<reason>)` (then the status is 401). Header names are compared as
WSGI and CGI apps see them (case and `_`/`-` alike); more than one such field is rejected. Each assertion received, with
its verdict, is appended to `--token-log` (one JSON object per line), where e2e.py takes
genuine tokens to tamper with; the file is outside the app's URL space, so nothing of it
can be read through the gateway."""
import argparse
import base64
import html
import json
import re
import ssl
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

HEADER = "X-SSO-Assertion"
ALGORITHMS = ["ES256"]
MAX_LIFETIME = 300  # the gateway's ttl is at most 5m: a longer-lived token is not one of its
JWKS_MAX_AGE = 300
JWKS_REFETCH_SECONDS = 10


class Rejected(Exception):
    """An assertion that does not verify; the message is the reason shown on the page."""


def _b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class AssertionVerifier:
    """Verifies `X-SSO-Assertion` tokens for one app (its audience) and a fixed list of
    gateways (the issuers it accepts)."""

    def __init__(self, audience, issuers, cafile=None, now=time.time):
        self.audience = audience
        self.issuers = list(issuers)
        self.context = ssl.create_default_context(cafile=cafile)
        self.now = now
        self._lock = threading.Lock()
        self._jwks = {}  # issuer -> (KeySet, fetched at, max-age seconds)

    def _fetch(self, issuer):
        url = issuer + "/_ssogate/jwks.json"
        with urllib.request.urlopen(url, context=self.context, timeout=5) as response:
            body = response.read()
            match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        keys = KeySet.import_key_set(json.loads(body))
        max_age = min(int(match.group(1)), JWKS_MAX_AGE) if match else JWKS_MAX_AGE
        self._jwks[issuer] = (keys, self.now(), max_age)
        print(f"jwks: fetched {url}: kids {[key.kid for key in keys]}, kept {max_age}s", flush=True)
        return keys

    def keys(self, issuer, kid):
        """The issuer's key set holding `kid`: the cached JWKS while fresh, else fetched
        again; a kid it does not know fetches it again unless it was fetched moments ago."""
        with self._lock:
            cached = self._jwks.get(issuer)
            try:
                if cached is None or self.now() - cached[1] >= cached[2]:
                    keys = self._fetch(issuer)
                else:
                    keys = cached[0]
                if not any(key.kid == kid for key in keys) and self.now() - self._jwks[issuer][1] >= JWKS_REFETCH_SECONDS:
                    keys = self._fetch(issuer)
            except (OSError, ValueError, JoseError) as error:
                raise Rejected(f"JWKS of {issuer} unavailable: {type(error).__name__}: {error}")
        if not any(key.kid == kid for key in keys):
            raise Rejected(f"unknown kid {kid!r} (not in the JWKS of {issuer})")
        return keys

    def verify(self, token):
        """The verified claims of `token`, or Rejected with the reason."""
        parts = token.split(".")
        if len(parts) != 3:
            raise Rejected("not a compact JWS")
        try:
            header, unverified = _b64json(parts[0]), _b64json(parts[1])
        except ValueError as error:
            raise Rejected(f"undecodable: {error}")
        if not isinstance(header, dict) or not isinstance(unverified, dict):
            raise Rejected("undecodable: header and payload must be JSON objects")
        if header.get("alg") not in ALGORITHMS:
            raise Rejected(f"algorithm {header.get('alg')!r} not allowed")
        # The issuer is not verified yet: it only picks one of the configured gateways.
        issuer = unverified.get("iss")
        if issuer not in self.issuers:
            raise Rejected(f"issuer not allowed: {issuer!r}")
        keys = self.keys(issuer, header.get("kid"))
        try:
            claims = jwt.decode(token, keys, algorithms=ALGORITHMS).claims
        except BadSignatureError:
            raise Rejected(f"bad signature (kid {header.get('kid')})")
        except JoseError as error:
            raise Rejected(f"{type(error).__name__}: {error}")
        now = self.now()
        registry = jwt.JWTClaimsRegistry(
            now=lambda: now, leeway=0,
            iss={"essential": True, "value": issuer}, aud={"essential": True, "value": self.audience},
            exp={"essential": True}, iat={"essential": True})
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Rejected(f"expired: exp {claims['exp']} is {now - claims['exp']:.1f}s in the past")
        except MissingClaimError as error:
            raise Rejected(f"missing claim {error.claim}")
        except InvalidClaimError as error:
            raise Rejected(f"invalid claim {error.claim}: {claims.get(error.claim)!r} ({error.description})")
        # On an organization's path the token names its subject; elsewhere it has none of
        # its own, only `grants`, each with the organization that vouched for its subject.
        if claims.get("org") is not None and not claims.get("sub"):
            raise Rejected("missing claim sub")
        if claims.get("org") is None and (claims.get("sub") is not None or not claims.get("grants")
                                          or not all(g.get("org") and g.get("sub") for g in claims["grants"])):
            raise Rejected("outside an organization's path: no sub, and grants each with org and sub")
        if claims["exp"] <= now:  # RFC 7519: not accepted on or after exp
            raise Rejected(f"expired: exp {claims['exp']} is not after now {now:.0f}")
        if claims["exp"] - claims["iat"] > MAX_LIFETIME:
            raise Rejected(f"lifetime {claims['exp'] - claims['iat']}s over {MAX_LIFETIME}s")
        return claims


def verdict(verifier, values):
    """The line shown on the page for the X-SSO-Assertion field values of one request."""
    if not values:
        return "assertion: none", None
    if len(values) > 1:
        return f"assertion: rejected ({len(values)} {HEADER} fields)", None
    try:
        claims = verifier.verify(values[0].strip())
    except Rejected as error:
        return f"assertion: rejected ({error})", None
    return (f"assertion: verified sub={claims.get('sub')} role={claims.get('role')} org={claims.get('org')} "
            f"iss={claims.get('iss')}"), claims


def serve(port, issuers, cafile, token_log):
    verifier = AssertionVerifier(f"http://127.0.0.1:{port}", issuers, cafile)
    log_lock = threading.Lock()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            # Every spelling that names the field for some app: WSGI and CGI read
            # X_SSO_Assertion as X-SSO-Assertion (HTTP_X_SSO_ASSERTION).
            values = [value for name, value in self.headers.items() if name.lower().replace("_", "-") == HEADER.lower()]
            line, _ = verdict(verifier, values)
            if values and token_log:
                with log_lock, open(token_log, "a") as log:
                    for value in values:
                        log.write(json.dumps({"time": time.time(), "path": self.path, "token": value.strip(),
                                              "verdict": line}) + "\n")
            user = self.headers.get("X-Forwarded-User", "")
            role = self.headers.get("X-SSO-Role", "")
            body = (f"<!doctype html><html><head><title>app {html.escape(self.path)}</title></head>"
                    f"<body><h1>App page {html.escape(self.path)}</h1>"
                    f"<p id=\"user\">{html.escape(user)}</p><p id=\"role\">{html.escape(role)}</p>"
                    f"<p id=\"groups\">{html.escape(self.headers.get('X-Forwarded-Groups', ''))}</p>"
                    f"<p id=\"assertion\">{html.escape(line)}</p></body></html>").encode()
            self.send_response(401 if line.startswith("assertion: rejected") else 200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Page).serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--gateway", action="append", default=[], help="a gateway's public_url, an accepted iss")
    parser.add_argument("--ca", help="CA file for https gateways")
    parser.add_argument("--token-log", help="append each assertion received and its verdict here (JSON lines)")
    arguments = parser.parse_args()
    serve(arguments.port, arguments.gateway, arguments.ca, arguments.token_log)
