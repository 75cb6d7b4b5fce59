"""The login flow in a real browser (headless Chromium via chromium-driver) against a real
IdP (SimpleSAMLphp). Started by run-e2e.sh, which sets E2E_IDP, E2E_GW and E2E_OUT."""
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

IDP, GW, OUT = os.environ["E2E_IDP"], os.environ["E2E_GW"], os.environ["E2E_OUT"]
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,700"]:
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20)


def shot(name):
    driver.save_screenshot(os.path.join(OUT, name + ".png"))


def text(element_id):
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else None


def sign_in_at_idp():
    wait.until(EC.presence_of_element_located((By.NAME, "password")))
    check("the IdP's login form is on localhost", driver.current_url.startswith(IDP), driver.current_url)
    shot("02-idp-login")
    driver.find_element(By.NAME, "username").send_keys("alice")
    password = driver.find_element(By.NAME, "password")
    password.send_keys("alice-password")
    password.submit()


def logout():
    driver.get(GW + "/_ssogate/logout")
    wait.until(lambda d: d.current_url.rstrip("/") == GW)


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
    failed += 1
    print(f"FAIL {type(error).__name__}: {error} at {driver.current_url}")
    shot("failure")
    print(driver.page_source[:2000])
finally:
    driver.quit()

print(f"e2e: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
