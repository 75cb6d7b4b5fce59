#!/usr/bin/env python3
"""Single Logout against SimpleSAMLphp in Chromium (docs/CONTRACT.md "Sessions, logout and
Single Logout"), with initech (an SP key pair, redirect mode) on the http gateway:

1. alice logs in through the gateway;
2. she logs out at the IdP (SimpleSAMLphp's initSLO.php, IdP-initiated): the IdP sends the
   gateway a signed LogoutRequest, the gateway ends her session (a copy of the cookie is
   refused too) and answers with a signed LogoutResponse;
3. she logs in again (the IdP asks for her password: its session ended too);
4. she logs out at the gateway: the gateway sends the IdP a signed LogoutRequest (SP-
   initiated), the IdP ends its session and answers; the gateway's page says so, and the
   next login asks for her password again.

Started by run-e2e.sh (E2E_IDP, E2E_GW, E2E_HOME, E2E_OUT)."""
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import chromium

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ssogate_support import Tally  # noqa: E402

IDP, GW, OUT = (os.environ[k] for k in ("E2E_IDP", "E2E_GW", "E2E_OUT"))
tally = Tally("slo")
check = tally.check


driver = chromium("1000,800")
wait = WebDriverWait(driver, 20)


def shot(name):
    driver.save_screenshot(os.path.join(OUT, name + ".png"))


def login_through_idp():
    """Starts at initech's content; returns whether the IdP asked for the password."""
    driver.get(GW + "/initech/models")
    wait.until(lambda d: d.find_elements(By.NAME, "password") or d.current_url.startswith(GW + "/initech/models"))
    asked = bool(driver.find_elements(By.NAME, "password"))
    if asked:
        driver.find_element(By.NAME, "username").send_keys("alice")
        password = driver.find_element(By.NAME, "password")
        password.send_keys("alice-password")
        password.submit()
    wait.until(lambda d: d.current_url.startswith(GW + "/initech/models"))
    return asked


def session_cookie():
    return next((c["value"] for c in driver.get_cookies() if c["name"] == "ssogate_session"), None)


def gateway_status(cookie):
    """What the gateway answers an API client holding `cookie` (a copy of the browser's)."""
    request = urllib.request.Request(GW + "/initech/models", headers={"Cookie": f"ssogate_session={cookie}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


try:
    check("alice logs in to initech through SimpleSAMLphp", login_through_idp() and session_cookie() is not None)
    cookie = session_cookie()
    check("her cookie works for an API client too", gateway_status(cookie) == 200)

    # IdP-initiated: SimpleSAMLphp logs her out of every SP, the gateway among them.
    driver.get(IDP + "/saml2/idp/initSLO.php?RelayState=" + urllib.parse.quote(GW + "/_ssogate/healthz", safe=""))
    wait.until(lambda d: d.current_url.startswith(GW + "/_ssogate/healthz"))
    check("IdP-initiated logout: the gateway's session is gone (a copy of the cookie gets 401)", gateway_status(cookie) == 401,
          f"status {gateway_status(cookie)}")
    check("IdP-initiated logout: the browser's cookie is cleared", session_cookie() is None)

    check("logging in again, the IdP asks for the password (its session ended)", login_through_idp())
    cookie = session_cookie()

    # SP-initiated: the logout page's button; the IdP is told and answers.
    driver.get(GW + "/_ssogate/logout")
    wait.until(lambda d: d.find_elements(By.ID, "ssogate-logout")).pop().click()
    wait.until(lambda d: d.find_elements(By.ID, "ssogate-slo"))
    shot("30-logged-out-slo")
    result = driver.find_element(By.ID, "ssogate-slo").get_attribute("data-result")
    check("SP-initiated logout: SimpleSAMLphp confirms with a signed LogoutResponse", result == "success", f"data-result={result}")
    check("SP-initiated logout: the gateway's session is gone", gateway_status(cookie) == 401)
    check("after it, the IdP asks for the password again (its session ended)", login_through_idp())
except Exception as error:
    shot("failure-slo-exception")
    tally.fail(f"{type(error).__name__}: {error} at {driver.current_url}")
finally:
    driver.quit()

tally.finish()
