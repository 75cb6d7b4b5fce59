"""The login flow in a real browser (headless Chromium via chromium-driver) against a real
IdP (SimpleSAMLphp), first through the plain-http gateway, then through the https + HTTP/2
one, then for initech, the organization with an SP key pair (signed AuthnRequests, encrypted
assertions). Along the way the upstream verifies the X-SSO-Assertion each gateway adds (joserfc,
against the gateway's JWKS); at the end, genuine tokens it received are presented to it again
directly: as they are, re-signed by another key, expired, and one naming a foreign issuer.
Started by run-e2e.sh, which sets E2E_IDP, E2E_GW (http), E2E_GWS (https), E2E_CA (the test
CA), E2E_HOME (a HOME whose .pki/nssdb trusts that CA), E2E_SP_CERT (initech's SP
certificate), E2E_IDP_LOG (SimpleSAMLphp's log file), E2E_APP (the upstream's URL, the
assertion's audience), E2E_JWT_KEYS (the gateways' upstream_assertion keys, the signing one
first), E2E_UPSTREAM_TOKENS (the assertions the upstream received, JSON lines),
E2E_UPSTREAM_LOG and E2E_OUT."""
import base64
import html
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jws
from joserfc.jwk import ECKey
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from browser import chromium

IDP, GW, GWS, OUT = os.environ["E2E_IDP"], os.environ["E2E_GW"], os.environ["E2E_GWS"], os.environ["E2E_OUT"]
TLS_CONTEXT = ssl.create_default_context(cafile=os.environ["E2E_CA"])
IDP_LOG = os.environ["E2E_IDP_LOG"]
APP = os.environ["E2E_APP"]
UPSTREAM_TOKENS, UPSTREAM_LOG = os.environ["E2E_UPSTREAM_TOKENS"], os.environ["E2E_UPSTREAM_LOG"]
# The kid of each upstream_assertion key, its RFC 7638 thumbprint, computed here by joserfc.
KIDS = []
for path in os.environ["E2E_JWT_KEYS"].split():
    with open(path) as pem:
        KIDS.append(ECKey.import_key(pem.read()).thumbprint())
ALICE = "alice@example.test"
with open(os.environ["E2E_SP_CERT"]) as pem:  # initech's SP certificate, base64 DER as in metadata
    SP_CERT = "".join(line.strip() for line in pem if line.strip() and not line.startswith("-----"))
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "xenc": "http://www.w3.org/2001/04/xmlenc#", "ds": "http://www.w3.org/2000/09/xmldsig#",
      "md": "urn:oasis:names:tc:SAML:2.0:metadata"}
RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def fetch(url):
    """(status, headers, body) of a GET outside the browser; https checked against the test CA."""
    with urllib.request.urlopen(url, context=TLS_CONTEXT, timeout=10) as response:
        return response.status, response.headers, response.read().decode()


def status_of(url):
    """The final status and body of a GET outside the browser, redirects followed with a
    cookie jar of its own (SimpleSAMLphp wants its session cookie back)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(), urllib.request.HTTPSHandler(context=TLS_CONTEXT))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def idp_log():
    try:
        with open(IDP_LOG, errors="replace") as log:
            return log.read()
    except FileNotFoundError:
        return ""


def b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def forged(key, claims, kid=None):
    """A JWT signed by `key` (not a gateway's) under `kid`."""
    header = {"typ": "JWT", "alg": "ES256", "kid": kid or key.thumbprint()}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key, algorithms=["ES256"])


def present(token):
    """(status, verdict line) of the upstream for `token` sent to it directly, as anyone on
    the network between gateway and app could."""
    request = urllib.request.Request(APP + "/direct", headers={"X-SSO-Assertion": token, "Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read().decode()
    found = re.search(r'<p id="assertion">(.*?)</p>', body)
    return status, html.unescape(found.group(1)) if found else None


def received_assertions():
    """The assertions the upstream received through the gateways, in order: dicts with the
    token, its header and claims (decoded, not verified here) and the upstream's verdict."""
    received = []
    try:
        with open(UPSTREAM_TOKENS) as log:
            for line in log:
                entry = json.loads(line)
                parts = entry["token"].split(".")
                entry["header"], entry["claims"] = b64json(parts[0]), b64json(parts[1])
                received.append(entry)
    except FileNotFoundError:
        pass
    return received


def verified_line(org, gateway, role):
    return f"assertion: verified sub={ALICE} role={role} org={org} iss={gateway}"


def send_header(token):
    """Make the browser send its own X-SSO-Assertion with every request (None: stop)."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-SSO-Assertion": token} if token else {}})


# The IdP knows each SP by the entity ID and ACS written in saml20-sp-remote.php: they must
# be the ones the running gateways publish. initech's metadata also publishes the SP
# certificate the IdP has (sp-initech.crt), for signing and for encryption.
ORGS = ("acme", "globex", "initech")
for gateway in (GW, GWS):
    try:
        wanted = [f'entityID="{gateway}/organizations/{org}/saml/metadata"' for org in ORGS]
        wanted += [f'Location="{gateway}/organizations/{org}/saml/consume"' for org in ORGS]
        wanted += [f'Location="{gateway}/organizations/{org}/saml/slo"' for org in ORGS]
        published = "".join(fetch(f"{gateway}/organizations/{org}/saml/metadata")[2] for org in ORGS)
        missing = [w for w in wanted if w not in published]
        check(f"SP metadata of {gateway} is what the IdP knows", not missing, f"missing {missing}")
        sp = ET.fromstring(fetch(f"{gateway}/organizations/initech/saml/metadata")[2].encode()).find("md:SPSSODescriptor", NS)
        uses = {d.get("use"): "".join(d.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", "", NS).split())
                for d in sp.findall("md:KeyDescriptor", NS)}
        methods = [m.get("Algorithm") for m in sp.findall("md:KeyDescriptor[@use='encryption']/md:EncryptionMethod", NS)]
        check(f"initech SP metadata of {gateway}: SP certificate for signing and encryption, AuthnRequestsSigned",
              uses == {"signing": SP_CERT, "encryption": SP_CERT} and sp.get("AuthnRequestsSigned") == "true" and RSA_OAEP in methods,
              f"uses {sorted(uses)}, certificate {'matches' if SP_CERT in uses.values() else 'differs'}, "
              f"AuthnRequestsSigned={sp.get('AuthnRequestsSigned')}, methods {methods}")
    except Exception as error:
        check(f"SP metadata of {gateway} is what the IdP knows", False, f"{type(error).__name__}: {error}")

# Each gateway publishes both upstream_assertion public keys, each under its RFC 7638
# thumbprint (recomputed here from the JWK's own x and y), and nothing private.
for gateway in (GW, GWS):
    label = f"JWKS of {gateway}: both public keys (EC P-256), kid = RFC 7638 thumbprint, application/jwk-set+json"
    try:
        status, headers, body = fetch(gateway + "/_ssogate/jwks.json")
        keys = json.loads(body)["keys"]
        kids = [k.get("kid") for k in keys]
        recomputed = [ECKey.import_key({n: k[n] for n in ("kty", "crv", "x", "y")}).thumbprint() for k in keys]
        check(label, status == 200 and headers.get_content_type() == "application/jwk-set+json" and sorted(kids) == sorted(KIDS)
              and kids == recomputed and all(k.get("kty") == "EC" and k.get("crv") == "P-256" and "d" not in k for k in keys),
              f"status {status}, {headers.get('Content-Type')}, kids {kids}, recomputed {recomputed}, keys files {KIDS}, "
              f"members {[sorted(k) for k in keys]}")
    except Exception as error:
        check(label, False, f"{type(error).__name__}: {error}")

# A client's own X-SSO-Assertion under other spellings (lower case; `_` for `-`, which WSGI
# and CGI apps read as the same field) does not reach the upstream either.
for_spelling = []
for gateway in (GW, GWS):
    for name in ("x-sso-assertion", "X_SSO_Assertion"):
        request = urllib.request.Request(gateway + "/acme/repo", headers={name: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.",
                                                                          "Accept": "text/html"})
        try:
            with urllib.request.urlopen(request, context=TLS_CONTEXT, timeout=10) as response:
                found = re.search(r'<p id="assertion">(.*?)</p>', response.read().decode())
                for_spelling.append((gateway, name, response.status, html.unescape(found.group(1)) if found else None))
        except Exception as error:
            for_spelling.append((gateway, name, type(error).__name__, str(error)))
check("a client-sent x-sso-assertion or X_SSO_Assertion does not reach the upstream (anonymous, both gateways)",
      all(result[2:] == (200, "assertion: none") for result in for_spelling), for_spelling)

# What the browser sends as its own X-SSO-Assertion: signed by a key of its own under the
# gateways' signing kid. The gateway must drop it (the upstream would say "bad signature",
# or "2 X-SSO-Assertion fields" next to the gateway's own).
MALLORY = ECKey.generate_key("P-256")
now = int(time.time())
BROWSER_ASSERTION = {gateway: forged(MALLORY, {"sub": "mallory@example.test", "email": "mallory@example.test", "role": "admin",
                                               "org": "acme", "iss": gateway, "aud": APP, "iat": now, "exp": now + 300}, KIDS[0])
                     for gateway in (GW, GWS)}

# The performance log carries the DevTools network events: the URL of the redirect to the
# IdP (the AuthnRequest) and the body of the POST back to the gateway (the SAMLResponse).
driver = chromium("1100,700", performance_log=True)
wait = WebDriverWait(driver, 20)


def shot(name):
    driver.save_screenshot(os.path.join(OUT, name + ".png"))


def text(element_id):
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else None


def protocol():
    """The protocol the browser used for the current page's main document (h2, http/1.1)."""
    return driver.execute_script("const n = performance.getEntriesByType('navigation')[0]; return n ? n.nextHopProtocol : null")


def sign_in_at_idp(screenshot="02-idp-login", label=""):
    wait.until(EC.presence_of_element_located((By.NAME, "password")))
    check(f"{label}the IdP's login form is on localhost", driver.current_url.startswith(IDP), driver.current_url)
    shot(screenshot)
    driver.find_element(By.NAME, "username").send_keys("alice")
    password = driver.find_element(By.NAME, "password")
    password.send_keys("alice-password")
    password.submit()


def logout(gateway=GW):
    """The logout page's button (a GET alone logs no one out)."""
    driver.get(gateway + "/_ssogate/logout")
    wait.until(lambda d: d.find_elements(By.ID, "ssogate-logout") or d.find_elements(By.ID, "ssogate-logged-out"))
    if driver.find_elements(By.ID, "ssogate-logout"):
        driver.find_element(By.ID, "ssogate-logout").click()
    # Home, or (initech has Single Logout) the page after the IdP's answer.
    wait.until(lambda d: d.current_url.rstrip("/") == gateway or d.find_elements(By.ID, "ssogate-slo"))


def sent_requests():
    """(method, url, body) of the requests the browser sent since the last call, from the
    performance log (which this call empties)."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        request = message["params"]["request"]
        body = request.get("postData")
        if body is None and request.get("postDataEntries"):
            body = "".join(base64.b64decode(e.get("bytes", "")).decode() for e in request["postDataEntries"])
        sent.append((request["method"], request["url"], body))
    return sent


def saml_exchange(sent, gateway, org):
    """The AuthnRequest redirect URL the browser followed to the IdP and the SAMLResponse
    XML it posted to the gateway's ACS, for one login."""
    authn = [url for method, url, _ in sent if method == "GET" and url.startswith(IDP + "/saml2/idp/SSOService.php?")]
    posts = [body for method, url, body in sent if method == "POST" and url == f"{gateway}/organizations/{org}/saml/consume"]
    response = None
    if posts and posts[-1]:
        response = base64.b64decode(urllib.parse.parse_qs(posts[-1])["SAMLResponse"][0]).decode()
    return (authn[-1] if authn else None), response


def check_signed_request(label, url):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url or "").query)
    order = [p.split("=", 1)[0] for p in urllib.parse.urlsplit(url or "").query.split("&")]
    check(f"{label}the AuthnRequest the browser carried to the IdP is signed (SigAlg rsa-sha256, Signature, in §3.4.4.1 order)",
          query.get("SigAlg") == [RSA_SHA256] and len(query.get("Signature", [""])[0]) > 300
          and order in (["SAMLRequest", "RelayState", "SigAlg", "Signature"], ["SAMLRequest", "SigAlg", "Signature"]),
          f"{order} SigAlg={query.get('SigAlg')} url={url}")


def check_encrypted_response(label, xml):
    """The SAMLResponse carries one EncryptedAssertion, no Assertion in the clear, its key
    transported with RSA-OAEP."""
    try:
        root = ET.fromstring(xml)
    except Exception as error:
        check(f"{label}the SAMLResponse posted to the gateway holds an EncryptedAssertion (RSA-OAEP)", False, f"{type(error).__name__}: {error}")
        return
    plain = root.findall(".//saml:Assertion", NS)
    encrypted = root.findall("saml:EncryptedAssertion", NS)
    transport = [m.get("Algorithm") for m in root.findall("saml:EncryptedAssertion//xenc:EncryptedKey/xenc:EncryptionMethod", NS)]
    content = [m.get("Algorithm") for m in root.findall("saml:EncryptedAssertion/xenc:EncryptedData/xenc:EncryptionMethod", NS)]
    check(f"{label}the SAMLResponse posted to the gateway holds an EncryptedAssertion (RSA-OAEP), no Assertion in the clear",
          len(encrypted) == 1 and not plain and transport == [RSA_OAEP] and len(content) == 1,
          f"{len(encrypted)} EncryptedAssertion, {len(plain)} Assertion, key transport {transport}, content {content}")
    return content


def failure(error, screenshot):
    global failed
    failed += 1
    message = (getattr(error, "msg", None) or str(error)).split("\nStacktrace:")[0].strip()  # without Selenium's stack trace
    print(f"FAIL {type(error).__name__}: {message} at {driver.current_url} (title {driver.title!r})")
    shot(screenshot)
    print(driver.page_source[:2000])


try:
    try:
        # 1. A protected page shows the banner to an anonymous browser. The browser sends an
        # X-SSO-Assertion of its own, up to the end of step 2.
        send_header(BROWSER_ASSERTION[GW])
        driver.get(GW + "/acme/repo")
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-banner")))
        check("banner on the protected page", "Login with SSO" in text("ssogate-banner"))
        check("anonymous: no identity upstream", text("user") == "")
        check("anonymous: no X-SSO-Assertion upstream (the browser's own removed)", text("assertion") == "assertion: none",
              text("assertion"))
        shot("01-banner")

        # 2. Login with SSO, credentials at the IdP, back on the page with the identity. The
        # upstream verified the gateway's assertion (joserfc, the http gateway's JWKS).
        driver.find_element(By.LINK_TEXT, "Login with SSO").click()
        sign_in_at_idp()
        wait.until(lambda d: d.current_url == GW + "/acme/repo" and text("user"))
        check("back on the page as alice", text("user") == "alice@example.test", text("user"))
        check("role from the groups", text("role") == "admin", text("role"))
        check("no banner once logged in", not driver.find_elements(By.ID, "ssogate-banner"))
        check("the upstream verified X-SSO-Assertion: alice, admin, acme, iss the http gateway (the browser's own replaced)",
              text("assertion") == verified_line("acme", GW, "admin"), text("assertion"))
        send_header(None)
        shot("03-logged-in")

        # 3. A reload needs no new login.
        driver.refresh()
        check("still logged in after reload", text("user") == "alice@example.test")

        # 4. Logout brings the banner back.
        logout()
        driver.get(GW + "/acme/repo")
        check("banner again after logout", bool(driver.find_elements(By.ID, "ssogate-banner")))
        shot("04-logged-out")

        # 5. A redirect-mode organization goes straight to the IdP (which still knows alice).
        driver.get(GW + "/globex/models")
        wait.until(lambda d: d.current_url == GW + "/globex/models" and text("user"))
        check("redirect mode logs in through the IdP", text("user") == "alice@example.test")
        shot("05-redirect-mode")
        logout()

        # 6. IdP-initiated login (the Okta tile), with a RelayState path.
        driver.get(f"{IDP}/saml2/idp/SSOService.php?spentityid={GW}/organizations/acme/saml/metadata&RelayState=/acme/from-tile")
        wait.until(lambda d: d.current_url.startswith(GW + "/acme") and text("user"))
        check("IdP-initiated login lands on the relay path", driver.current_url == GW + "/acme/from-tile", driver.current_url)
        check("IdP-initiated login carries the identity", text("user") == "alice@example.test")
        shot("06-idp-initiated")
        logout()

        # 7. Test mode shows the assertion and sets no session.
        driver.get(GW + "/organizations/acme/sso?test=1")
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-test-result")))
        check("test mode succeeds", text("ssogate-test-result") == "success", text("ssogate-test-result"))
        check("test mode shows the attributes", "hf-admins" in driver.page_source)
        check("test mode sets no session cookie", all(c["name"] != "ssogate_session" for c in driver.get_cookies()))
        shot("07-test-mode")
    except Exception as error:  # a step timed out or an element was missing
        failure(error, "failure")

    # The https + HTTP/2 gateway. Every cookie goes first (cookies ignore ports, so the http
    # gateway's and the IdP's would otherwise be sent along): the login below is a full one,
    # credentials typed at the IdP, and any session cookie comes from the https gateway.
    try:
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})

        # 8. The protected page over https, through the test CA, over h2, with the banner. The
        # browser sends an X-SSO-Assertion of its own again, up to the end of step 9.
        send_header(BROWSER_ASSERTION[GWS])
        driver.get(GWS + "/acme/repo")
        wait.until(lambda d: d.find_elements(By.ID, "ssogate-banner") or d.title == "Privacy error")
        if driver.title == "Privacy error":  # Chromium's certificate interstitial
            shot("08-https-banner")
            raise RuntimeError("Chromium does not trust the gateway's certificate (test CA not in its NSS database?)")
        check("https: banner on the protected page", "Login with SSO" in text("ssogate-banner"), driver.current_url)
        check("https: the page came over h2", protocol() == "h2", protocol())
        check("https: anonymous, no identity upstream", text("user") == "")
        check("https: anonymous, no X-SSO-Assertion upstream (the browser's own removed, h2)",
              text("assertion") == "assertion: none", text("assertion"))
        shot("08-https-banner")

        # 9. A full login through the IdP, back on the https page with the identity.
        driver.find_element(By.LINK_TEXT, "Login with SSO").click()
        sign_in_at_idp("09-https-idp-login", "https: ")
        wait.until(lambda d: d.current_url == GWS + "/acme/repo" and text("user"))
        check("https: back on the page as alice", text("user") == "alice@example.test", text("user"))
        check("https: role from the groups", text("role") == "admin", text("role"))
        check("https: the logged-in page came over h2", protocol() == "h2", protocol())
        check("https: the upstream verified X-SSO-Assertion: alice, admin, acme, iss the https gateway (the browser's own replaced, h2)",
              text("assertion") == verified_line("acme", GWS, "admin"), text("assertion"))
        send_header(None)
        session = [c for c in driver.get_cookies() if c["name"] == "ssogate_session"]
        attributes = [{k: v for k, v in c.items() if k != "value"} for c in session]
        check("https: the session cookie is Secure", len(session) == 1 and session[0].get("secure") is True, attributes)
        shot("10-https-logged-in")

        # 10. HSTS on the https answers (checked outside the browser, which ignores HSTS
        # for IP addresses).
        hsts = fetch(GWS + "/_ssogate/healthz")[1].get("Strict-Transport-Security")
        check("https: Strict-Transport-Security max-age=86400", hsts is not None and re.fullmatch(r"max-age=86400\s*", hsts), hsts)

        # 11. Redirect mode over https (the IdP still knows alice), then logout.
        driver.get(GWS + "/globex/models")
        wait.until(lambda d: d.current_url == GWS + "/globex/models" and text("user"))
        check("https: redirect mode logs in through the IdP", text("user") == "alice@example.test")
        logout(GWS)
        driver.get(GWS + "/acme/repo")
        check("https: banner again after logout", bool(driver.find_elements(By.ID, "ssogate-banner")))
        shot("11-https-logged-out")
    except Exception as error:
        failure(error, "failure-https")

    # initech, the organization with an SP key pair and require_encrypted_assertions: the
    # gateway signs the AuthnRequest, SimpleSAMLphp validates it (validate.authnrequest) and
    # encrypts the assertion to the SP certificate (assertion.encryption). The browser's own
    # network log shows both: the signed redirect URL and the EncryptedAssertion it posted.
    try:
        send_header(None)  # in case a step above failed before it stopped
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # a full login, credentials at the IdP
        sent_requests()  # forget the earlier requests
        validated_before = idp_log().count("Validation with key #0 succeeded.")

        # 12. Redirect mode to the IdP, credentials there, back on the page with the identity.
        driver.get(GW + "/initech/reports")
        sign_in_at_idp("12-initech-idp-login", "initech: ")
        wait.until(lambda d: d.current_url.startswith(GW + "/initech/") and text("user") is not None)
        check("initech: back on the page as alice (assertion decrypted)", driver.current_url == GW + "/initech/reports"
              and text("user") == "alice@example.test", f"{driver.current_url} user={text('user')!r}")
        check("initech: the upstream verified X-SSO-Assertion: alice, no role, initech, iss the http gateway",
              text("assertion") == verified_line("initech", GW, None), text("assertion"))
        shot("13-initech-logged-in")
        authn_url, response = saml_exchange(sent_requests(), GW, "initech")
        check_signed_request("initech: ", authn_url)
        content = check_encrypted_response("initech: ", response)
        print(f"     (SimpleSAMLphp's EncryptedData method: {content})")

        # 13. SimpleSAMLphp verified that signature (its log, saml\Message::checkSign; no other SP
        # here has validate.authnrequest), and refuses the same request with the signature
        # altered or removed, while the untouched one, replayed, still reaches its login form.
        check("initech: SimpleSAMLphp validated the AuthnRequest signature (its log)",
              idp_log().count("Validation with key #0 succeeded.") > validated_before)
        if authn_url:
            base, signature = authn_url.rsplit("&Signature=", 1)
            raw = bytearray(base64.b64decode(urllib.parse.unquote(signature)))
            raw[len(raw) // 2] ^= 0x01
            tampered = base + "&Signature=" + urllib.parse.quote(base64.b64encode(bytes(raw)).decode(), safe="")
            unsigned = base.rsplit("&SigAlg=", 1)[0]
            for label, url, logged_line in (
                    ("the browser's AuthnRequest, replayed, reaches the IdP's login form", authn_url,
                     "Validation with key #0 succeeded."),
                    ("SimpleSAMLphp refuses it with the signature altered", tampered,
                     "Caused by: Exception: Unable to validate signature on query string."),
                    ("SimpleSAMLphp refuses it unsigned", unsigned,
                     "Validation of received messages enabled, but no signature found on message.")):
                before = idp_log().count(logged_line)
                status, body = status_of(url)
                logged = idp_log().count(logged_line) > before
                form = 'name="password"' in body
                accepted = url == authn_url
                check(f"initech: {label}", logged and (form if accepted else not form and "Unhandled exception" in body),
                      f"status {status}, login form {form}, logged {logged}")

        # 14. The same organization over https + h2. The http gateway's session cookie goes
        # first: cookies ignore ports, and both gateways share the session secret, so it would
        # log the browser in without any SAML exchange. That logout tells SimpleSAMLphp too
        # (initech has Single Logout), so the IdP asks for the password again.
        logout(GW)
        check("initech: the logout at the gateway ended the IdP's session too (Single Logout)",
              (driver.find_elements(By.ID, "ssogate-slo") or [None])[0] is not None
              and driver.find_element(By.ID, "ssogate-slo").get_attribute("data-result") == "success")
        sent_requests()
        validated_before = idp_log().count("Validation with key #0 succeeded.")
        driver.get(GWS + "/initech/reports")
        sign_in_at_idp("14-https-initech-idp-login", "https: initech: ")
        wait.until(lambda d: d.current_url.startswith(GWS + "/initech/") and text("user") is not None)
        check("https: initech logs in through the IdP (assertion decrypted)", driver.current_url == GWS + "/initech/reports"
              and text("user") == "alice@example.test", f"{driver.current_url} user={text('user')!r}")
        check("https: initech: the upstream verified X-SSO-Assertion: alice, no role, initech, iss the https gateway",
              text("assertion") == verified_line("initech", GWS, None), text("assertion"))
        authn_url, response = saml_exchange(sent_requests(), GWS, "initech")
        check_signed_request("https: initech: ", authn_url)
        check("https: initech: SimpleSAMLphp validated the AuthnRequest signature (its log)",
              idp_log().count("Validation with key #0 succeeded.") > validated_before)
        check_encrypted_response("https: initech: ", response)
        shot("14-https-initech-logged-in")
        logout(GWS)
    except Exception as error:
        failure(error, "failure-initech")
finally:
    driver.quit()

# The X-SSO-Assertion tokens the upstream received through the gateways (its token log), then
# genuine ones presented to it again directly, as anyone on the network between gateway and
# app could: the upstream's verifier (joserfc against the issuer's JWKS) must accept a
# genuine token and refuse it re-signed, expired or naming an issuer not in its allow-list.
try:
    received = received_assertions()
    by_issuer = {gateway: [r for r in received if r["claims"].get("iss") == gateway] for gateway in (GW, GWS)}
    check("the upstream got X-SSO-Assertion from both gateways, each verified on arrival, ES256 under the first key's kid",
          all(by_issuer.values()) and all(r["verdict"].startswith("assertion: verified ") and r["header"].get("alg") == "ES256"
                                          and r["header"].get("kid") == KIDS[0] for r in received),
          f"{ {g: len(r) for g, r in by_issuer.items()} }, " + "; ".join(
              f"{r['path']} {r['header']} {r['verdict']}" for r in received
              if not r["verdict"].startswith("assertion: verified ") or r["header"].get("kid") != KIDS[0])[:1500])
    ttl = {GW: 10, GWS: 300}

    # org and role: those of the organization whose path it is (role_mapping: acme only).
    # Outside organization paths (/favicon.ico) no subject of its own: only `grants`, each
    # with the organization that vouched for it (an identity never travels without it).
    org_role = {"acme": ("acme", "admin"), "globex": ("globex", None), "initech": ("initech", None)}

    def claims_ok(entry, gateway):
        claims = entry["claims"]
        if entry["path"].split("/")[1] not in org_role:
            return (claims.get("sub") is None and claims.get("org") is None and claims.get("grants")
                    and all(g.get("sub") == ALICE and g.get("org") in org_role for g in claims["grants"])
                    and claims.get("aud") in (APP, [APP]) and abs(claims.get("exp", 0) - claims.get("iat", 0) - ttl[gateway]) < 0.01)
        return (claims.get("sub") == ALICE and claims.get("email") == ALICE and "hf-admins" in claims.get("groups", [])
                and claims.get("aud") in (APP, [APP]) and abs(claims.get("exp", 0) - claims.get("iat", 0) - ttl[gateway]) < 0.01
                and (claims.get("org"), claims.get("role")) == org_role.get(entry["path"].split("/")[1], (None, None)))
    wrong = [(g, r["path"], r["claims"]) for g, rs in by_issuer.items() for r in rs if not claims_ok(r, g)]
    check("their claims: sub and email alice, groups, org and role of the path (elsewhere only grants), aud the upstream URL, exp - iat = ttl (10s http, 5m https)",
          received and not wrong, f"{len(wrong)} of {len(received)} unlike that, first {wrong[:1]}")
    if received:
        print(f"     (a token's header {received[0]['header']}, claims {received[0]['claims']})")

    # (a) The latest https token (5m ttl, still valid) as it is, and its payload re-signed by
    # another P-256 key under the same kid.
    with_subject = [r for r in by_issuer[GWS] if r["claims"].get("sub")]
    genuine = with_subject[-1]["token"] if with_subject else None
    if genuine:
        status, line = present(genuine)
        check("a genuine token presented directly: the upstream verifies it", status == 200
              and line == verified_line(with_subject[-1]["claims"].get("org"), GWS, with_subject[-1]["claims"].get("role")),
              f"status {status}, {line!r}")
        # The gateway's header and payload segments byte for byte, a valid ES256 signature
        # over them by a key the gateway never had.
        signing_input = genuine.rsplit(".", 1)[0]
        signature = jws.JWSRegistry().get_alg("ES256").sign(signing_input.encode(), ECKey.generate_key("P-256"))
        resigned = signing_input + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
        status, line = present(resigned)
        check("its header and payload re-signed by another P-256 key (same kid): the upstream refuses it (bad signature)",
              status == 401 and (line or "").startswith(f"assertion: rejected (bad signature (kid {KIDS[0]})"),
              f"status {status}, {line!r}")
    else:
        check("a genuine token presented directly: the upstream verifies it", False, "no token from the https gateway")

    # (b) The http gateway's first token: genuine, verified when the gateway sent it, but its
    # 10s are over by now (a wait only if this run was that fast). Nothing in it is changed:
    # only the clock moved.
    if by_issuer[GW]:
        first = by_issuer[GW][0]
        time.sleep(max(0.0, min(11.0, first["claims"]["exp"] + 0.5 - time.time())))
        status, line = present(first["token"])
        check("a genuine http-gateway token past its exp (10s ttl): the upstream refuses it (expired)",
              first["verdict"].startswith("assertion: verified ") and status == 401
              and (line or "").startswith("assertion: rejected (expired: "),
              f"verdict on arrival {first['verdict']!r}, now: status {status}, {line!r}")
    else:
        check("a genuine http-gateway token past its exp (10s ttl): the upstream refuses it (expired)", False,
              "no token from the http gateway")

    # (c) A token that names its own issuer, whose JWKS (served here) holds the key that
    # signed it: the upstream must refuse it by its allow-list, without fetching anything.
    fetched = []
    foreign_key = ECKey.generate_key("P-256")
    foreign_jwks = json.dumps({"keys": [{**foreign_key.as_dict(private=False), "kid": foreign_key.thumbprint()}]}).encode()

    class ForeignIssuer(BaseHTTPRequestHandler):
        def do_GET(self):
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/jwk-set+json")
            self.end_headers()
            self.wfile.write(foreign_jwks)

        def log_message(self, *args):
            pass
    foreign = ThreadingHTTPServer(("127.0.0.1", 0), ForeignIssuer)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{foreign.server_port}"
    now = int(time.time())
    status, line = present(forged(foreign_key, {"sub": ALICE, "email": ALICE, "role": "admin", "org": "acme", "iss": issuer,
                                                "aud": APP, "iat": now, "exp": now + 60}))
    foreign.shutdown()
    check("a token from an issuer outside the allow-list, its JWKS one URL away: refused, that JWKS never fetched",
          status == 401 and line == f"assertion: rejected (issuer not allowed: {issuer!r})" and not fetched,
          f"status {status}, {line!r}, fetched {fetched}")
    with open(UPSTREAM_LOG) as log:
        print("     (upstream: " + "; ".join(line.strip() for line in log if line.startswith("jwks:")) + ")")
except Exception as error:
    failed += 1
    print(f"FAIL X-SSO-Assertion checks: {type(error).__name__}: {error}")

print(f"e2e: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
