"""The login flow in a real browser (headless Chromium via chromium-driver) against a real
IdP (SimpleSAMLphp), first through the plain-http gateway, then through the https + HTTP/2
one. Started by run-e2e.sh, which sets E2E_IDP, E2E_GW (http), E2E_GWS (https), E2E_CA (the
test CA), E2E_HOME (a HOME whose .pki/nssdb trusts that CA) and E2E_OUT."""
import os
import re
import ssl
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

IDP, GW, GWS, OUT = os.environ["E2E_IDP"], os.environ["E2E_GW"], os.environ["E2E_GWS"], os.environ["E2E_OUT"]
TLS_CONTEXT = ssl.create_default_context(cafile=os.environ["E2E_CA"])
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


# The IdP knows each SP by the entity ID and ACS written in saml20-sp-remote.php: they must
# be the ones the running gateways publish.
for gateway in (GW, GWS):
    try:
        wanted = [f'entityID="{gateway}/organizations/{org}/saml/metadata"' for org in ("acme", "globex")]
        wanted += [f'Location="{gateway}/organizations/{org}/saml/consume"' for org in ("acme", "globex")]
        published = "".join(fetch(f"{gateway}/organizations/{org}/saml/metadata")[2] for org in ("acme", "globex"))
        missing = [w for w in wanted if w not in published]
        check(f"SP metadata of {gateway} is what the IdP knows", not missing, f"missing {missing}")
    except Exception as error:
        check(f"SP metadata of {gateway} is what the IdP knows", False, f"{type(error).__name__}: {error}")

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,700"]:
    options.add_argument(argument)
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


def failure(error, screenshot):
    global failed
    failed += 1
    message = (getattr(error, "msg", None) or str(error)).strip()  # without Selenium's stack trace
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
finally:
    driver.quit()

print(f"e2e: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
