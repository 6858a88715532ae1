"""Headless Chromium from Debian (``chromium``, ``chromium-driver``: scripts/test-system-packages.txt)
driven by Selenium with the system chromedriver named explicitly, so Selenium Manager never runs
and nothing is downloaded."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = os.environ.get("CHROMIUM_BINARY") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser_missing() -> str | None:
    """Why no browser test can run here (None when chromium and chromedriver are installed)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: install the Debian packages in scripts/test-system-packages.txt"
    return None


@contextmanager
def chromium(download_dir: str | None = None, width: int = 1100, height: int = 1400) -> Iterator:
    """A headless Chromium whose console messages are kept (``driver.get_log("browser")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--mute-audio",  # plays (currentTime advances) without a sound device
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if download_dir:
        options.add_experimental_option(
            "prefs", {"download.default_directory": download_dir, "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
