"""The web page's "on-box changes: N keys - reset" control, in a real headless Chromium against a
real uvicorn server: a save counts as an on-box change, reset brings the installer's config back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "api"))
sys.path.insert(0, str(TESTS / "browser"))

from agent_impl import PASSWORD, LabAgent, write_config  # noqa: E402

from edge_agent.api.auth import hash_password  # noqa: E402
from edge_agent.api.server import start_api_server  # noqa: E402
from edge_agent.config.store import ConfigStore  # noqa: E402

pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_config_page import _set, browser, pytestmark  # noqa: E402,F401  (the page tests' Chromium)


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "agent.yaml"
    write_config(path, hash_password(PASSWORD))
    store = ConfigStore(path)
    agent = LabAgent(store.config)
    server = start_api_server(agent, store)
    yield server, agent, store
    server.stop()


def test_on_box_changes_are_counted_and_reset_from_the_page(served, browser):  # noqa: F811
    server, agent, store = served
    base_before = store.path.read_bytes()
    wait = WebDriverWait(browser, 15)
    browser.get(server.url + "/")
    assert not browser.find_element(By.ID, "onbox-bar").is_displayed()  # behind the login

    wait.until(EC.visibility_of_element_located((By.ID, "password"))).send_keys(PASSWORD)
    browser.find_element(By.ID, "login-btn").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "cam-name"), "door"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "onbox-count"), "On-box changes: 0 keys"))
    assert not browser.find_element(By.ID, "onbox-reset").is_enabled()

    _set(browser, "f-sensitivity", "0.8")
    browser.find_element(By.ID, "save-btn").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "save-status"), "Saved."))
    wait.until(EC.text_to_be_present_in_element((By.ID, "onbox-count"), "On-box changes: 1 key"))
    count = browser.find_element(By.ID, "onbox-count")
    assert count.get_attribute("title") == "cameras.door.motion.sensitivity"
    assert store.overlay_path.exists() and store.path.read_bytes() == base_before

    browser.find_element(By.ID, "onbox-reset").click()
    wait.until(EC.alert_is_present()).accept()  # "Drop every on-box change ...?"
    wait.until(EC.text_to_be_present_in_element((By.ID, "onbox-status"), "Reset: 1 key(s) back"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "onbox-count"), "On-box changes: 0 keys"))
    assert browser.find_element(By.ID, "f-sensitivity").get_attribute("value") == "0.5"
    assert agent.gates["door"].cfg.sensitivity == 0.5
    assert not store.overlay_path.exists() and store.path.read_bytes() == base_before
