"""The web config page in a real headless Chromium against a real uvicorn server.

Log in, draw a zone on the snapshot with the mouse, change sensitivity, save: the YAML on disk and the
running MotionGate both reflect it. An invalid value shows an inline error and changes nothing on disk.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from agent_impl import PASSWORD, LabAgent, write_config  # noqa: E402

from edge_agent.api.auth import hash_password  # noqa: E402
from edge_agent.api.server import start_api_server  # noqa: E402
from edge_agent.config.loader import load_config  # noqa: E402
from edge_agent.config.store import ConfigStore  # noqa: E402

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver (Debian packages)"
    ),
]


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "agent.yaml"
    write_config(path, hash_password(PASSWORD))
    store = ConfigStore(path)
    agent = LabAgent(store.config)
    server = start_api_server(agent, store)
    yield server, agent, path
    server.stop()


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def _click_at(driver, element, fx: float, fy: float, double: bool = False) -> None:
    """Click at a fraction (fx, fy) of the element (Selenium offsets are from its centre)."""
    w, h = element.size["width"], element.size["height"]
    chain = ActionChains(driver).move_to_element_with_offset(
        element, int((fx - 0.5) * w), int((fy - 0.5) * h)
    )
    (chain.double_click() if double else chain.click()).perform()


def _set(driver, element_id: str, value: str) -> None:
    el = driver.find_element(By.ID, element_id)
    el.clear()
    el.send_keys(value)


def test_draw_zone_change_sensitivity_save_and_inline_error(served, browser):
    server, agent, path = served
    wait = WebDriverWait(browser, 15)
    browser.get(server.url + "/")

    # log in
    wait.until(EC.visibility_of_element_located((By.ID, "password"))).send_keys(PASSWORD)
    browser.find_element(By.ID, "login-btn").click()
    wait.until(EC.visibility_of_element_located((By.ID, "session")))
    wait.until(EC.text_to_be_present_in_element((By.ID, "cam-name"), "door"))
    wait.until(lambda d: d.execute_script("return document.getElementById('snapshot').naturalWidth") == 320)
    canvas = browser.find_element(By.ID, "overlay")
    assert canvas.size["width"] > 300

    # draw a zone with the mouse: three clicks, then a double-click closes it
    browser.find_element(By.ID, "tool-zone").click()
    _set(browser, "zone-name", "porch")
    corners = [(0.2, 0.2), (0.7, 0.25), (0.65, 0.8), (0.25, 0.75)]
    for fx, fy in corners[:-1]:
        _click_at(browser, canvas, fx, fy)
    _click_at(browser, canvas, *corners[-1], double=True)
    wait.until(EC.text_to_be_present_in_element((By.ID, "poly-list"), "zone porch (4 points)"))

    # change sensitivity and save
    _set(browser, "f-sensitivity", "0.8")
    browser.find_element(By.ID, "save-btn").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "save-status"), "Saved."))

    disk = load_config(path).camera("door").motion
    assert disk.sensitivity == 0.8
    assert [z.name for z in disk.zones] == ["porch"]
    for (x, y), (fx, fy) in zip(disk.zones[0].points, corners, strict=True):
        assert abs(x - fx) < 0.02 and abs(y - fy) < 0.02
    gate = agent.gates["door"]  # the running motion gate was reconfigured live
    assert gate.cfg.sensitivity == 0.8 and gate.cfg.zones == disk.zones

    # an invalid value: inline error under the field, nothing changes on disk or in the gate
    before = path.read_bytes()
    _set(browser, "f-threshold", "999")
    browser.find_element(By.ID, "save-btn").click()
    err = wait.until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, '[data-error-for="motion.threshold"]'))
    )
    wait.until(lambda d: "less than or equal to 255" in err.text)
    assert "invalid" in browser.find_element(By.ID, "f-threshold").get_attribute("class")
    assert browser.find_element(By.ID, "save-status").text == ""
    assert path.read_bytes() == before
    assert gate.cfg.threshold == 25

    assert browser.execute_script("return document.getElementById('counter-frames').textContent") == "0"
    assert browser.find_element(By.ID, "counter-alerts").text == "none"
    # an open camera health alert shows up in the live status on the next poll
    agent.stats["door"].set_state(alerts=[{"type": "covered", "severity": "major", "message": "lens covered"}])
    wait.until(EC.text_to_be_present_in_element((By.ID, "counter-alerts"), "covered (major)"))

    # select the zone and delete it with the button; logged out, the save is refused (401)
    browser.find_element(By.ID, "tool-select").click()
    _click_at(browser, canvas, 0.45, 0.5)
    wait.until(EC.element_to_be_clickable((By.ID, "delete-poly"))).click()
    wait.until(lambda d: "porch" not in d.find_element(By.ID, "poly-list").text)
    browser.find_element(By.ID, "logout-btn").click()
    wait.until(EC.visibility_of_element_located((By.ID, "login-form")))
    _set(browser, "f-threshold", "25")
    browser.find_element(By.ID, "save-btn").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "form-error"), "Log in to save"))
    assert path.read_bytes() == before
