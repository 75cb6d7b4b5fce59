"""The Chromium both E2E scripts drive: headless, Debian's chromium and chromedriver, and
HOME pointed at run-e2e.sh's folder, whose NSS database trusts the run's test CA (Chromium on
Linux reads trust anchors from $HOME/.pki/nssdb), so https to the gateway is verified, not
exempted."""
import os

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def chromium(window, performance_log=False):
    """A driver with a `window` ("1100,700") window; `performance_log` records DevTools
    network events (the redirect carrying the AuthnRequest, the POST carrying the response)."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={window}"]:
        options.add_argument(argument)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service("/usr/bin/chromedriver", env={**os.environ, "HOME": os.environ["E2E_HOME"]})
    return webdriver.Chrome(service=service, options=options)
