#!/usr/bin/env python3
"""The org admin's story (issue 15) in Chromium against SimpleSAMLphp, on the http gateway of
run-e2e.sh: `hooli` is managed in the console and has no IdP settings in the file.

The one-time link of `ssogate admin-link` (the CLI writes to the SQLite store the running
gateway reads) → the console → the IdP's Sign-On URL, entity ID and certificate pasted →
Update and Test → SimpleSAMLphp's login → success shown → Enable → a member logs in with
the new settings → a second draft with a wrong certificate → its test fails with
signature_invalid and its advice, the draft stays a draft, SSO stays enabled, members keep
logging in with the active settings → the audit page lists each step.

Run by run-e2e.sh after e2e.py; screenshots go to E2E_OUT (20-*.png).
"""
import os
import subprocess
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from browser import chromium

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ssogate_support import Tally  # noqa: E402

IDP, GW, BIN, CONFIG, OUT = (os.environ[k] for k in ("E2E_IDP", "E2E_GW", "E2E_BIN", "E2E_CONFIG", "E2E_OUT"))
IDP_CERT = open(os.environ["E2E_IDP_CERT"]).read()
WRONG_CERT = open(os.environ["E2E_WRONG_CERT"]).read()     # a valid certificate, not the IdP's
CONSOLE = GW + "/organizations/hooli/settings/sso"
tally = Tally("admin", on_failure=lambda n: shot(f"failure-admin-{n}"))
check = tally.check


driver = chromium("1000,1400")
wait = WebDriverWait(driver, 20)


def shot(name):
    driver.save_screenshot(os.path.join(OUT, name + ".png"))


def text(element_id):
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else None


def through_idp():
    """SimpleSAMLphp's form when it shows one (its session may already know alice)."""
    wait.until(lambda d: d.find_elements(By.NAME, "password") or not d.current_url.startswith(IDP))
    if driver.find_elements(By.NAME, "password"):
        driver.find_element(By.NAME, "username").send_keys("alice")
        password = driver.find_element(By.NAME, "password")
        password.send_keys("alice-password")
        password.submit()


def paste(url, entity, certificate):
    for field, value in (("sign_on_url", url), ("idp_entity_id", entity), ("certificate", certificate)):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.ID, "ssogate-update-and-test").click()


def member_login(label):
    driver.get(GW + "/organizations/hooli/sso?return_to=/hooli/models")
    through_idp()
    wait.until(lambda d: d.current_url.startswith(GW + "/hooli/models") or d.find_elements(By.ID, "ssogate-reason"))
    check(f"{label}: a member logs in through the active settings and reaches hooli's content",
          driver.current_url == GW + "/hooli/models" and text("user") == "alice@example.test",
          f"{driver.current_url} user={text('user')} reason={text('ssogate-reason')}")


try:
    link = subprocess.run([BIN, "admin-link", "--config", CONFIG, "--org", "hooli"], capture_output=True, text=True, check=True).stdout.strip()
    check("ssogate admin-link prints a one-time console link", link.startswith(CONSOLE + "/login?token=ssgl_"), link)

    driver.get(link)
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-update-and-test")))
    shot("20-console")
    check("the console shows the ACS URL and entity ID to paste into the IdP",
          text("ssogate-acs-url") == GW + "/organizations/hooli/saml/consume"
          and text("ssogate-sp-entity-id") == GW + "/organizations/hooli/saml/metadata",
          f"{text('ssogate-acs-url')} {text('ssogate-sp-entity-id')}")
    check("SSO is off and Enable is greyed out until a test passed",
          "disabled" in (text("ssogate-enabled") or "") and not driver.find_element(By.ID, "ssogate-enable").is_enabled())

    # Update and Test with SimpleSAMLphp's values.
    paste(f"{IDP}/saml2/idp/SSOService.php", f"{IDP}/saml2/idp/metadata.php", IDP_CERT)
    through_idp()
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-test-result")))
    shot("21-test-success")
    check("Update and Test: the test login through SimpleSAMLphp succeeds and shows what it asserted",
          text("ssogate-test-result") == "success" and "alice@example.test" in driver.page_source, text("ssogate-test-result"))

    driver.find_element(By.ID, "ssogate-back").click()
    wait.until(EC.element_to_be_clickable((By.ID, "ssogate-enable"))).click()
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-notice")))
    check("Enable: SAML SSO is enabled", "enabled" in (text("ssogate-enabled") or ""), text("ssogate-enabled"))
    member_login("after Enable")

    # A second draft with a wrong certificate.
    driver.get(CONSOLE)
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-update-and-test")))
    paste(f"{IDP}/saml2/idp/SSOService.php", f"{IDP}/saml2/idp/metadata.php", WRONG_CERT)
    through_idp()
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-test-result")))
    shot("22-test-failed")
    check("a draft with the wrong certificate: the test fails with signature_invalid and says what to try",
          text("ssogate-test-result") == "signature_invalid" and "current X.509 certificate" in driver.page_source,
          text("ssogate-test-result"))
    driver.find_element(By.ID, "ssogate-back").click()
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-draft")))
    shot("23-console-draft-failed")
    check("the failed draft stays a draft with its reason, and SSO stays enabled",
          text("ssogate-draft-reason") == "signature_invalid" and "enabled" in (text("ssogate-enabled") or ""),
          f"{text('ssogate-draft-reason')} {text('ssogate-enabled')}")
    member_login("with a failed draft saved")

    # A third draft read from SimpleSAMLphp's own metadata URL, then tested.
    driver.get(CONSOLE)
    wait.until(EC.presence_of_element_located((By.ID, "metadata_url"))).send_keys(f"{IDP}/saml2/idp/metadata.php")
    driver.find_element(By.ID, "ssogate-read-metadata").click()
    wait.until(lambda d: d.find_elements(By.ID, "ssogate-notice") or d.find_elements(By.CSS_SELECTOR, "#ssogate-import .problem"))
    shot("25-metadata-read")
    filled_url = driver.find_element(By.ID, "sign_on_url").get_attribute("value")
    filled_cert = driver.find_element(By.ID, "certificate").get_attribute("value")
    check("Read metadata: SimpleSAMLphp's metadata URL fills in its Sign-On URL, entity ID and certificate",
          filled_url == f"{IDP}/saml2/idp/SSOService.php"
          and driver.find_element(By.ID, "idp_entity_id").get_attribute("value") == f"{IDP}/saml2/idp/metadata.php"
          and "".join(IDP_CERT.split()[2:-2])[:60] in "".join(filled_cert.split()),
          f"{filled_url} {text('ssogate-notice')} {[p.text for p in driver.find_elements(By.CSS_SELECTOR, '.problem')]}")
    driver.find_element(By.ID, "ssogate-update-and-test").click()
    through_idp()
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-test-result")))
    check("the settings read from metadata pass their test login", text("ssogate-test-result") == "success", text("ssogate-test-result"))

    driver.get(GW + "/organizations/hooli/settings/audit")
    wait.until(EC.presence_of_element_located((By.ID, "ssogate-audit")))
    shot("24-audit")
    rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#ssogate-audit tr")]
    wanted = ["admin.link success", "sso.settings.update success", "sso.test success", "sso.enable success",
              "sso.login success", "sso.test failure signature_invalid"]
    missing = [w for w in wanted if not any(all(part in row for part in w.split()) for row in rows)]
    check("the audit page lists each step", not missing, f"missing {missing} in {rows}")
except Exception as error:
    shot("failure-admin-exception")
    tally.fail(f"admin story: {type(error).__name__}: {error}")
finally:
    driver.quit()

tally.finish()
