#!/usr/bin/env python3
"""The access policy in Chromium against SimpleSAMLphp (docs/CONTRACT.md "Access policy"), with
umbrella (allowed_email_domains: [example.test], redirect mode) on the http gateway:

1. mallory (mallory@elsewhere.test) opens umbrella's content, signs in at the IdP, and the
   gateway refuses her login with a page that says whom she is signed in as, what umbrella
   requires and whom to ask; no session cookie is set and the content stays closed;
2. alice (alice@example.test), in a fresh browser, gets in.

Started by run-e2e.sh (E2E_IDP, E2E_GW, E2E_HOME, E2E_OUT)."""
import os
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import chromium

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ssogate_support import Tally  # noqa: E402

IDP, GW, OUT = (os.environ[k] for k in ("E2E_IDP", "E2E_GW", "E2E_OUT"))
tally = Tally("policy")
check = tally.check


def sign_in(driver, user):
    """Opens umbrella's content as a browser and signs in at the IdP as `user`."""
    wait = WebDriverWait(driver, 20)
    driver.get(GW + "/umbrella/models")
    wait.until(lambda d: d.find_elements(By.NAME, "password"))
    driver.find_element(By.NAME, "username").send_keys(user)
    password = driver.find_element(By.NAME, "password")
    password.send_keys(user + "-password")
    password.submit()
    wait.until(lambda d: d.find_elements(By.ID, "ssogate-refused") or d.current_url.startswith(GW + "/umbrella/models"))


def session_cookie(driver):
    return next((c["value"] for c in driver.get_cookies() if c["name"] == "ssogate_session"), None)


for user in ("mallory", "alice"):
    driver = chromium("1000,700")
    try:
        sign_in(driver, user)
        if user == "mallory":
            driver.save_screenshot(os.path.join(OUT, "40-policy-refused.png"))
            page = driver.find_element(By.TAG_NAME, "body").text
            reason = driver.find_elements(By.ID, "ssogate-reason")
            check("mallory's login is refused with email_domain_not_allowed", bool(reason) and reason[0].text == "email_domain_not_allowed",
                  page[:300])
            check("the page says whom she is signed in as, what umbrella requires and whom to ask",
                  "mallory@elsewhere.test" in page and "example.test" in page and "it-help@example.test" in page, page[:400])
            check("no session began", session_cookie(driver) is None)
            driver.get(GW + "/umbrella/models")
            WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.NAME, "password") or d.find_elements(By.ID, "ssogate-refused")
                                            or not d.current_url.startswith(GW))
            check("umbrella's content still sends her to log in", not driver.current_url.startswith(GW + "/umbrella/models"),
                  driver.current_url)
        else:
            check("alice (example.test) gets in", driver.current_url == GW + "/umbrella/models" and session_cookie(driver) is not None,
                  driver.current_url)
    except Exception as error:
        driver.save_screenshot(os.path.join(OUT, f"failure-policy-{user}.png"))
        tally.fail(f"{user}: {type(error).__name__}: {error} at {driver.current_url}")
    finally:
        driver.quit()

tally.finish()
