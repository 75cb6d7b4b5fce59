"""The login flow in a real browser (headless Chromium via chromium-driver) against a real
IdP (SimpleSAMLphp), first through the plain-http gateway, then through the https + HTTP/2
one, then for initech, the organization with an SP key pair (signed AuthnRequests, encrypted
assertions). Started by run-e2e.sh, which sets E2E_IDP, E2E_GW (http), E2E_GWS (https), E2E_CA
(the test CA), E2E_HOME (a HOME whose .pki/nssdb trusts that CA), E2E_SP_CERT (initech's SP
certificate), E2E_IDP_LOG (SimpleSAMLphp's log file) and E2E_OUT."""
import base64
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

IDP, GW, GWS, OUT = os.environ["E2E_IDP"], os.environ["E2E_GW"], os.environ["E2E_GWS"], os.environ["E2E_OUT"]
TLS_CONTEXT = ssl.create_default_context(cafile=os.environ["E2E_CA"])
IDP_LOG = os.environ["E2E_IDP_LOG"]
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


# The IdP knows each SP by the entity ID and ACS written in saml20-sp-remote.php: they must
# be the ones the running gateways publish. initech's metadata also publishes the SP
# certificate the IdP has (sp-initech.crt), for signing and for encryption.
ORGS = ("acme", "globex", "initech")
for gateway in (GW, GWS):
    try:
        wanted = [f'entityID="{gateway}/organizations/{org}/saml/metadata"' for org in ORGS]
        wanted += [f'Location="{gateway}/organizations/{org}/saml/consume"' for org in ORGS]
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

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,700"]:
    options.add_argument(argument)
# Chromium's performance log carries the DevTools network events: the URL of the redirect to
# the IdP (the AuthnRequest) and the body of the POST back to the gateway (the SAMLResponse).
options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
# Chromium on Linux reads trust anchors from $HOME/.pki/nssdb: run-e2e.sh put the test CA in
# the one under E2E_HOME, so https to the gateway is verified, not exempted.
service = Service("/usr/bin/chromedriver", env={**os.environ, "HOME": os.environ["E2E_HOME"]})
driver = webdriver.Chrome(service=service, options=options)
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
    driver.get(gateway + "/_ssogate/logout")
    wait.until(lambda d: d.current_url.rstrip("/") == gateway)


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
        # 1. A protected page shows the banner to an anonymous browser.
        driver.get(GW + "/acme/repo")
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-banner")))
        check("banner on the protected page", "Login with SSO" in text("ssogate-banner"))
        check("anonymous: no identity upstream", text("user") == "")
        shot("01-banner")

        # 2. Login with SSO, credentials at the IdP, back on the page with the identity.
        driver.find_element(By.LINK_TEXT, "Login with SSO").click()
        sign_in_at_idp()
        wait.until(lambda d: d.current_url == GW + "/acme/repo" and text("user"))
        check("back on the page as alice", text("user") == "alice@example.test", text("user"))
        check("role from the groups", text("role") == "admin", text("role"))
        check("no banner once logged in", not driver.find_elements(By.ID, "ssogate-banner"))
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

        # 8. The protected page over https, through the test CA, over h2, with the banner.
        driver.get(GWS + "/acme/repo")
        wait.until(lambda d: d.find_elements(By.ID, "ssogate-banner") or d.title == "Privacy error")
        if driver.title == "Privacy error":  # Chromium's certificate interstitial
            shot("08-https-banner")
            raise RuntimeError("Chromium does not trust the gateway's certificate (test CA not in its NSS database?)")
        check("https: banner on the protected page", "Login with SSO" in text("ssogate-banner"), driver.current_url)
        check("https: the page came over h2", protocol() == "h2", protocol())
        check("https: anonymous, no identity upstream", text("user") == "")
        shot("08-https-banner")

        # 9. A full login through the IdP, back on the https page with the identity.
        driver.find_element(By.LINK_TEXT, "Login with SSO").click()
        sign_in_at_idp("09-https-idp-login", "https: ")
        wait.until(lambda d: d.current_url == GWS + "/acme/repo" and text("user"))
        check("https: back on the page as alice", text("user") == "alice@example.test", text("user"))
        check("https: role from the groups", text("role") == "admin", text("role"))
        check("https: the logged-in page came over h2", protocol() == "h2", protocol())
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
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # a full login, credentials at the IdP
        sent_requests()  # forget the earlier requests
        validated_before = idp_log().count("Validation with key #0 succeeded.")

        # 12. Redirect mode to the IdP, credentials there, back on the page with the identity.
        driver.get(GW + "/initech/reports")
        sign_in_at_idp("12-initech-idp-login", "initech: ")
        wait.until(lambda d: d.current_url.startswith(GW + "/initech/") and text("user") is not None)
        check("initech: back on the page as alice (assertion decrypted)", driver.current_url == GW + "/initech/reports"
              and text("user") == "alice@example.test", f"{driver.current_url} user={text('user')!r}")
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

        # 14. The same organization over https + h2 (the IdP still knows alice). The http
        # gateway's session cookie goes first: cookies ignore ports, and both gateways share
        # the session secret, so it would log the browser in without any SAML exchange.
        logout(GW)
        sent_requests()
        validated_before = idp_log().count("Validation with key #0 succeeded.")
        driver.get(GWS + "/initech/reports")
        wait.until(lambda d: d.current_url.startswith(GWS + "/initech/") and text("user") is not None)
        check("https: initech logs in through the IdP (assertion decrypted)", driver.current_url == GWS + "/initech/reports"
              and text("user") == "alice@example.test", f"{driver.current_url} user={text('user')!r}")
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

print(f"e2e: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
