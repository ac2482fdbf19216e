"""The operators' console in a real headless Chromium against the real console server (uvicorn)
over a store filled by the real ingest: log in, filter by camera, open an event and see
before/after and faces, a tampered image shows the integrity failure, export the evidence zip
and verify it with the documented command; a viewer cannot put an event on hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from fixtures.control_room import KEY, OPERATOR, VIEWER, console_config, fill, tamper

from edge_agent.control_room.console.server import start_console

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver (Debian packages)"),
]


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "received"
    ids = fill(root)
    tamper(root, ids["door"][0])  # the oldest door event: its enhanced image changed on disk
    server = start_console(console_config(root))
    yield server, ids
    server.stop()


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(20)
    (tmp_path / "downloads").mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path / "downloads")})
    yield driver
    driver.quit()


def _login(browser, wait, who) -> None:
    name = wait.until(EC.visibility_of_element_located((By.ID, "login-name")))
    name.clear()
    name.send_keys(who[0])
    browser.find_element(By.ID, "login-password").send_keys(who[1])
    browser.find_element(By.ID, "login-submit").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "who"), f"{who[0]} ("))


def _rows(browser) -> list:
    return browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")


def _open(browser, wait, event_id: str) -> None:
    """Click the event's row; the list reloads (after closing an event, on live events) and a row
    found just before a reload is gone by the click, so find it again until the click lands."""
    def click(d) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, f'#events tbody tr[data-event="{event_id}"]').click()
            return True
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    wait.until(click)
    wait.until(EC.text_to_be_present_in_element((By.ID, "ev-title"), event_id))


def _loaded(browser, css: str) -> int:
    return browser.execute_script(
        f"return [...document.querySelectorAll('{css}')].filter(i => i.complete && i.naturalWidth > 0).length")


def test_operator_reviews_checks_and_exports_and_a_viewer_cannot_hold(served, browser, tmp_path):
    server, ids = served
    wait = WebDriverWait(browser, 15)
    browser.get(server.url + "/")
    _login(browser, wait, OPERATOR)
    wait.until(lambda d: len(_rows(d)) == 6)

    # filter by camera
    browser.find_element(By.ID, "f-camera").send_keys("door")
    browser.find_element(By.ID, "f-apply").click()
    wait.until(lambda d: len(_rows(d)) == 3)
    assert {r.get_attribute("data-event") for r in _rows(browser)} == set(ids["door"])

    # the newest door event: before/after side by side, two faces each with its SR version
    good = ids["door"][2]
    _open(browser, wait, good)
    wait.until(lambda d: _loaded(d, "#ev-original, #ev-enhanced") == 2)
    wait.until(lambda d: _loaded(d, "#ev-faces img") == 4)
    captions = [f.text for f in browser.find_elements(By.CSS_SELECTOR, "#ev-faces figcaption")]
    assert captions == ["face_0.png / face_0_sr.png (3 frames fused)", "face_1.png / face_1_sr.png"], captions
    # the before/after slider: the original covers the enhanced image up to the slider's position
    wait.until(lambda d: _loaded(d, "#cmp-original, #cmp-enhanced") == 2)
    assert browser.find_element(By.ID, "cmp-original").get_attribute("src") \
        == browser.find_element(By.ID, "ev-original").get_attribute("src")
    slider = browser.find_element(By.ID, "cmp-pos")
    clip = "return getComputedStyle(document.getElementById('cmp-original')).clipPath"
    assert browser.execute_script(clip) == "inset(0px 50% 0px 0px)"
    for _ in range(30):
        slider.send_keys(Keys.ARROW_RIGHT)
    assert browser.execute_script(clip) == "inset(0px 20% 0px 0px)"
    assert browser.find_element(By.ID, "sig-state").text == "valid"
    assert "bad" not in browser.find_element(By.ID, "integrity").get_attribute("class")
    assert "low_light" in browser.find_element(By.ID, "ev-stages").text

    # export its evidence and verify it as a third party would
    browser.find_element(By.ID, "export").click()
    zip_path = tmp_path / "downloads" / f"{good}.zip"
    deadline = time.monotonic() + 15
    while not zip_path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert zip_path.exists(), "the evidence zip was not downloaded"
    key = tmp_path / "site1.key"
    key.write_bytes(KEY)
    run = subprocess.run([sys.executable, "-m", "edge_agent", "verify-evidence", str(zip_path), "--key-file", str(key)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "VALID" in run.stdout, run.stdout

    # put it on hold (operator)
    browser.find_element(By.ID, "hold").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "hold"), "Release hold (held by olga)"))

    # the tampered event shows the failure in red
    browser.find_element(By.ID, "close-event").click()
    _open(browser, wait, ids["door"][0])
    wait.until(lambda d: "bad" in d.find_element(By.ID, "integrity").get_attribute("class"))
    failed = browser.find_elements(By.CSS_SELECTOR, "#integrity .img-failed")
    assert [f.text for f in failed] == ["0/enhanced.jpg: FAILED"]
    assert browser.execute_script("return getComputedStyle(document.querySelector('#integrity .img-failed')).color") \
        == "rgb(255, 85, 85)"

    # a viewer: the hold button is disabled, and the server refuses the change anyway
    browser.find_element(By.ID, "logout").click()
    _login(browser, wait, VIEWER)
    wait.until(lambda d: len(_rows(d)) == 6)  # a fresh view: the operator's filter and event are gone
    _open(browser, wait, ids["yard"][1])
    assert browser.find_element(By.ID, "hold").get_attribute("disabled") is not None
    status = browser.execute_script("""
        const me = await (await fetch('/api/me')).json();
        const r = await fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json',
                              'X-CSRF-Token': me.csrf}, body: JSON.stringify({hold: true})});
        return r.status;""", f"/api/events/site1/{ids['yard'][1]}/hold")
    assert status == 403
