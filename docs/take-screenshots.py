#!/usr/bin/env python3
"""Takes the README's screenshots of `ssogate demo` with headless Chromium: the restricted
page with its "Login with SSO" banner, the development IdP's login page, the
repository once logged in, the SSO console (opened with the demo's one-time link), a
refused paste, a test's result, the audit log, and the page a browser gets past the login
rate limit. Writes docs/screenshots/*.png (small: a 900-pixel-wide window, then quantized
to 64 colours when Pillow is present).

    make screenshots        (or: python3 docs/take-screenshots.py [path to ssogate])
"""
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/ssogate"))
OUT = os.path.join(ROOT, "docs/screenshots")
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
from ssogate_support import free_port, wait_for_port  # noqa: E402


def base_url(url):
    return re.match(r"(https?://[^/]+)", url).group(1)


def shrink(path):
    try:
        from PIL import Image
    except ImportError:
        return
    Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    port = free_port()
    demo = subprocess.Popen([BIN, "demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,420"]:
        options.add_argument(argument)
    driver = None
    try:
        start = re.search(r"open (\S+)", demo.stdout.readline()).group(1)
        demo.stdout.readline()
        console_link = re.search(r"one-time link, 15 minutes\): (\S+)", demo.stdout.readline()).group(1)
        wait_for_port(port, seconds=10)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        wait = WebDriverWait(driver, 20)

        def shot(name):
            path = os.path.join(OUT, name + ".png")
            driver.save_screenshot(path)
            shrink(path)
            print("wrote", os.path.relpath(path, ROOT))

        driver.get(start)
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-banner")))
        shot("1-banner")
        driver.find_element(By.CSS_SELECTOR, "#ssogate-banner a").click()
        wait.until(EC.presence_of_element_located((By.ID, "login-alice")))
        shot("2-idp-login")
        driver.find_element(By.ID, "login-alice").click()
        wait.until(EC.presence_of_element_located((By.ID, "role")))
        shot("3-logged-in")
        # alice's access tokens: one made, shown once with its git line.
        driver.set_window_size(900, 1100)
        driver.get(base_url(start) + "/organizations/acme/settings/tokens")
        wait.until(EC.presence_of_element_located((By.ID, "name"))).send_keys("laptop git")
        driver.find_element(By.ID, "ssogate-create-token").click()
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-token")))
        shot("15-tokens")
        # The org admin's console, through the demo's one-time link.
        driver.set_window_size(900, 1500)
        driver.get(console_link)
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-update-and-test")))
        shot("5-console")
        url = driver.find_element(By.ID, "sign_on_url")
        url.clear()
        url.send_keys("acme.okta.com/app/hf/sso")
        certificate = driver.find_element(By.ID, "certificate")
        certificate.clear()
        certificate.send_keys("-----BEGIN CERTIFICATE-----\nMIIDCzCCAfOgAwIBAgIUBjPHvxyEYQfiw1OVe8g (cut short)\n-----END CERTIFICATE-----")
        driver.find_element(By.ID, "ssogate-update-and-test").click()
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-problems")))
        shot("6-console-refused")
        # Update and Test with the settings as they were: the test login, then its result.
        driver.get(console_link.split("/settings/")[0] + "/settings/sso")
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-update-and-test"))).click()
        wait.until(EC.presence_of_element_located((By.ID, "login-alice"))).click()
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-test-result")))
        shot("7-test-result")
        driver.find_element(By.ID, "ssogate-back").click()
        wait.until(EC.presence_of_element_located((By.PARTIAL_LINK_TEXT, "Audit log"))).click()
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-audit")))
        shot("8-audit")
        driver.get(console_link.split("/settings/")[0] + "/settings/sso")
        driver.execute_script("document.getElementById('ssogate-roles').scrollIntoView()")
        shot("9-console-roles")
        driver.execute_script("document.getElementById('ssogate-sessions').scrollIntoView()")
        shot("18-console-sessions")
        driver.execute_script("document.getElementById('ssogate-policy').scrollIntoView()")
        shot("20-console-policy")
        # "Fill in from IdP metadata" with the demo IdP's own metadata URL (its entity ID).
        metadata_url = driver.find_element(By.ID, "idp_entity_id").get_attribute("value")
        driver.find_element(By.ID, "metadata_url").send_keys(metadata_url)
        driver.find_element(By.ID, "ssogate-read-metadata").click()
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-notice")))
        shot("13-metadata-read")
        # The pages that turn people away: a link used twice, nobody signed in, a member
        # who is not an admin (bob's viewers group maps to read).
        driver.set_window_size(900, 520)
        driver.get(console_link)
        wait.until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
        shot("10-link-used")
        driver.delete_all_cookies()
        driver.get(console_link.split("/settings/")[0] + "/settings/sso")
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-console-login")))
        shot("11-console-sign-in")
        # mallory's email is outside acme's allowed domains: the refusal says so, and whom to
        # ask; no session begins (bob logs in next on a clean slate).
        driver.set_window_size(900, 560)
        driver.get(base_url(start) + "/organizations/acme/sso?return_to=/acme/models")
        wait.until(EC.presence_of_element_located((By.ID, "login-mallory"))).click()
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-refused")))
        shot("19-policy-refused")
        driver.set_window_size(900, 520)
        driver.get(base_url(start) + "/organizations/acme/sso?return_to=/organizations/acme/settings/sso")
        wait.until(EC.presence_of_element_located((By.ID, "login-bob"))).click()
        wait.until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
        shot("12-console-forbidden")
        driver.set_window_size(900, 420)
        # Login starts from one address past `logins.per_client` (300/m): the 429 page.
        base = re.match(r"(https?://[^/]+)", start).group(1)
        opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,), {
            "redirect_request": lambda *args: None})())
        for _ in range(400):
            try:
                opener.open(base + "/organizations/acme/sso", timeout=5)
            except urllib.error.HTTPError as error:
                if error.code == 429:
                    break
        driver.get(base + "/organizations/acme/sso")
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-reason")))
        shot("4-try-again")
        # The logout page (bob is still logged in from 12): a GET logs no one out.
        driver.set_window_size(900, 480)
        driver.get(base + "/_ssogate/logout")
        wait.until(EC.presence_of_element_located((By.ID, "ssogate-logout")))
        shot("14-logout")
        # Pages a browser reaches only when something is wrong, fetched as a script would and
        # shown from a file: a logout another site sent, a logout request that is not signed.
        for name, url, method in (("16-logout-refused", base + "/_ssogate/logout", "POST"),
                                  ("17-slo-refused", base + "/organizations/acme/saml/slo?SAMLRequest=bm90IGEgcmVxdWVzdA%3D%3D", "GET")):
            request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                             headers={"Origin": "https://elsewhere.example"})
            try:
                page = urllib.request.urlopen(request, timeout=10).read()
            except urllib.error.HTTPError as error:
                page = error.read()
            path = os.path.join(OUT, name + ".html")
            with open(path, "wb") as f:
                f.write(page)
            driver.get("file://" + path)
            wait.until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
            shot(name)
            os.remove(path)
    finally:
        if driver:
            driver.quit()
        demo.terminate()
        demo.wait(timeout=10)


if __name__ == "__main__":
    main()
