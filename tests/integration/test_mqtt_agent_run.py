"""`edge-agent run` with publish.sink: mqtt on a generated night clip, a real Mosquitto and the
control-room receiver: signed events with every image arrive; SIGKILL -> the last will says
'offline'; the end of the clip (a clean exit) -> 'stopped'."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mosquitto import Mosquitto, Sniffer, start_receiver, wait_for

from edge_agent.config.overlay import overlay_path_for
from edge_agent.demo import generate_night_clip

pytestmark = pytest.mark.slow
KEY = "agent-run-site-key-0123456789"
AVAILABILITY = "nightwatch/lab/availability"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Dark room, a person walking through from 1 s to 4 s, 6 s long."""
    return generate_night_clip(tmp_path_factory.mktemp("clip") / "person.avi", 640, 360, 10.0, 6.0, person=(1.0, 4.0))


@pytest.fixture
def rig(tmp_path, monkeypatch):
    monkeypatch.setenv("NW_SITE_KEY", KEY)
    with Mosquitto(tmp_path) as broker:
        rx = start_receiver(tmp_path / "received", broker.port, keys={"lab": KEY.encode()})
        sniffer = Sniffer(broker.port, AVAILABILITY)
        yield broker, rx, sniffer
        sniffer.close()
        rx.stop()


def write_config(tmp_path: Path, models_dir: Path, clip_path: Path, port: int, loop: bool) -> Path:
    data = {
        "site": "lab",
        "cameras": [
            {
                "name": "cam1",
                "source": {"file": str(clip_path), "loop": loop, "fps_limit": 10},
                "motion": {"threshold": 12, "off_delay_s": 1.0},
                "snapshots": {"interval_s": 0.5},
            }
        ],
        "models": {"dir": str(models_dir)},
        "pipeline": {"stats_interval_s": 1},
        "publish": {
            "sink": "mqtt",
            "mqtt": {
                "port": port,
                "hmac_key_env": "NW_SITE_KEY",
                "spool_dir": str(tmp_path / "spool"),
                "keepalive_s": 5,
            },
        },
        "api": {"enabled": False},
        "state_dir": str(tmp_path / "state"),
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def agent(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_clip_events_arrive_signed_with_every_image_and_clean_exit_says_stopped(tmp_path, models_dir, clip, rig):
    broker, rx, sniffer = rig
    proc = agent(write_config(tmp_path, models_dir, clip.path, broker.port, loop=False))
    try:
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert KEY not in err
    wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"stopped"], 10, what="'stopped'")
    assert b"online" in sniffer.payloads(AVAILABILITY)
    store = rx.store
    # 'stopped' is the agent's last message: once the receiver has it, it has everything before it
    # (one connection, QoS 1, in order), however many events the clip made
    wait_for(
        lambda: store.query("SELECT id FROM availability WHERE site='lab' AND state='stopped'"), 20, what="'stopped'"
    )
    assert store.query("SELECT id FROM events WHERE phase='end'")
    assert not store.query("SELECT id FROM images WHERE status='pending'")
    events = store.query("SELECT * FROM events ORDER BY id")
    assert events[0]["phase"] == "new" and events[0]["camera"] == "cam1"
    assert all(e["signature"] == "valid" and e["flag"] is None for e in events), events
    doc = store.event_doc(events[0])
    assert doc["enhanced"] is True and "low_light" in doc["stages"]
    assert {m["name"] for m in doc["models"]} >= {"lowlight"}
    images = store.query("SELECT * FROM images WHERE event_id=? AND seq=0", (doc["event_id"],))
    assert {i["name"] for i in images} == set(doc["images"]) >= {"original.jpg", "enhanced.jpg"}
    assert all(i["status"] == "ok" and i["flag"] is None for i in store.query("SELECT * FROM images"))
    assert not list((tmp_path / "spool").glob("*.rec"))


def test_sigkill_of_the_agent_leaves_offline(tmp_path, models_dir, clip, rig):
    broker, rx, sniffer = rig
    proc = agent(write_config(tmp_path, models_dir, clip.path, broker.port, loop=True))
    try:
        wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"online"], 60, what="'online'")
        wait_for(lambda: rx.store.query("SELECT id FROM events"), 60, what="a first event")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"offline"], 20, what="the last will")
    finally:
        proc.kill()
        proc.communicate()
    assert b"stopped" not in sniffer.payloads(AVAILABILITY)


def test_set_command_is_applied_live_and_saved_to_the_on_box_overlay(tmp_path, models_dir, clip, rig):
    broker, _rx, sniffer = rig
    config = write_config(tmp_path, models_dir, clip.path, broker.port, loop=True)
    results = Sniffer(broker.port, "nightwatch/lab/cam1/set/#")
    proc = agent(config)
    try:
        wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"online"], 60, what="'online'")
        topic = "nightwatch/lab/cam1/set/low_light_ratio/result"

        def answered() -> bool:  # the agent subscribes right after it says 'online': resend until heard
            if not results.payloads(topic):
                results.publish("nightwatch/lab/cam1/set/low_light_ratio", "7.5")
                time.sleep(0.5)
            return bool(results.payloads(topic))

        wait_for(answered, 30, what="the command result")
        assert json.loads(results.payloads(topic)[-1])["ok"] is True
        base_text = config.read_text()
        overlay = overlay_path_for(config)  # the box's own file; the installer's base is not touched
        saved = yaml.safe_load(overlay.read_text())
        assert saved["cameras"][0] == {"name": "cam1", "low_light": {"ratio": 7.5}}
        # an out-of-range value is refused and changes nothing; a late answer to a resent copy of
        # the first command may still come in between, so look for the refusal among the answers
        before = len(results.payloads(topic))
        results.publish("nightwatch/lab/cam1/set/low_light_ratio", "99")

        def refusals() -> list[dict]:
            return [d for d in map(json.loads, results.payloads(topic)[before:]) if d["value"] != 7.5]

        refusal = wait_for(refusals, 20, what="the refusal")[0]
        assert refusal["ok"] is False and "low_light_ratio" in refusal["error"]
        assert yaml.safe_load(overlay.read_text())["cameras"][0]["low_light"]["ratio"] == 7.5
        assert config.read_text() == base_text
    finally:
        results.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()
