"""Live-tuning /set commands and Home Assistant discovery against a real Mosquitto."""

from __future__ import annotations

import json

import pytest
from mosquitto import Mosquitto, Sniffer, wait_for

from edge_agent.config.schema import MqttConfig
from edge_agent.publish.commands import CommandOutcome, CommandRouter
from edge_agent.publish.mqtt import MqttPublisher
from edge_agent.publish.topics import Topics

BASE = "nightwatch/site1"
DISCOVERY = "homeassistant/device/nightwatch_site1_cam1/config"


@pytest.fixture
def setup(tmp_path):
    with Mosquitto(tmp_path) as broker:
        sniffer = Sniffer(broker.port, "#")
        calls = []

        def on_command(camera, key, value):
            calls.append((camera, key, value))
            if key == "low_light_ratio" and value > 10:
                return CommandOutcome(error="ratio above 10 is not allowed on this camera")
            return CommandOutcome()

        cfg = MqttConfig(port=broker.port, spool_dir=tmp_path / "spool")
        router = CommandRouter(Topics(cfg.prefix, "site1"), ["cam1", "cam2"], on_command)
        pub = MqttPublisher(cfg, "site1", ["cam1", "cam2"], router)
        pub.start()
        wait_for(lambda: sniffer.payloads(DISCOVERY), 15, what="discovery config")
        wait_for(lambda: pub.commands_ready, 10, what="subscribed to the command topics")
        yield pub, sniffer, calls
        pub.close()
        sniffer.close()


def results(sniffer, camera, key):
    return [json.loads(p) for p in sniffer.payloads(f"{BASE}/{camera}/set/{key}/result")]


def test_valid_commands_are_applied_and_answered(setup):
    pub, sniffer, calls = setup
    sniffer.publish(f"{BASE}/cam1/set/enabled", "OFF")
    sniffer.publish(f"{BASE}/cam2/set/motion_sensitivity", "0.25")
    sniffer.publish(f"{BASE}/cam1/set/face_sr", "true")
    wait_for(lambda: len(calls) == 3, 10, what="three commands applied")
    assert calls == [("cam1", "enabled", False), ("cam2", "motion_sensitivity", 0.25), ("cam1", "face_sr", True)]
    answered = (("cam1", "enabled"), ("cam2", "motion_sensitivity"), ("cam1", "face_sr"))
    wait_for(lambda: all(results(sniffer, c, k) for c, k in answered), 10, what="the three results")
    r = results(sniffer, "cam2", "motion_sensitivity")[0]
    assert r["ok"] is True and r["error"] is None and r["value"] == 0.25


def test_invalid_commands_are_refused_with_a_reason(setup):
    pub, sniffer, calls = setup
    sniffer.publish(f"{BASE}/cam1/set/motion_sensitivity", "1.5")  # out of range
    sniffer.publish(f"{BASE}/cam1/set/enabled", "maybe")
    sniffer.publish(f"{BASE}/cam9/set/enabled", "ON")  # no such camera
    sniffer.publish(f"{BASE}/cam1/set/low_light_ratio", "12")  # valid, but the agent says no
    answered = (("cam1", "motion_sensitivity"), ("cam1", "enabled"), ("cam9", "enabled"), ("cam1", "low_light_ratio"))
    wait_for(lambda: all(results(sniffer, c, k) for c, k in answered), 10, what="the four results")
    assert calls == [("cam1", "low_light_ratio", 12.0)]
    assert "less than or equal to 1" in results(sniffer, "cam1", "motion_sensitivity")[0]["error"]
    assert "valid boolean" in results(sniffer, "cam1", "enabled")[0]["error"]
    assert "unknown camera" in results(sniffer, "cam9", "enabled")[0]["error"]
    r = results(sniffer, "cam1", "low_light_ratio")[0]
    assert r["ok"] is False and "above 10" in r["error"]


def test_a_stale_retained_command_is_not_applied_on_connect(tmp_path, setup):
    pub, sniffer, calls = setup
    sniffer.publish(f"{BASE}/cam1/set/face_sr", "OFF", retain=True)  # someone retained a command
    wait_for(lambda: calls, 10, what="the live delivery")  # delivered live once: applied once
    later: list = []
    cfg = MqttConfig(port=pub.cfg.port, spool_dir=tmp_path / "spool2", client_id="second-agent")
    pub2 = MqttPublisher(cfg, "site1", ["cam1"],
                         CommandRouter(Topics(cfg.prefix, "site1"), ["cam1"], lambda *a: later.append(a) or CommandOutcome()))
    pub2.start()
    try:
        wait_for(lambda: pub2.commands_ready, 10, what="second agent subscribed to its commands")
        sniffer.publish(f"{BASE}/cam1/set/enabled", "ON")  # a live command after the retained one
        wait_for(lambda: later, 10, what="live command")
        assert later == [("cam1", "enabled", True)]  # the retained face_sr OFF was not re-applied
    finally:
        pub2.close()
        sniffer.publish(f"{BASE}/cam1/set/face_sr", "", retain=True)  # clear it


def test_home_assistant_discovery_is_retained_and_republished_when_ha_comes_online(setup):
    pub, sniffer, calls = setup
    # the fixture waited for cam1's config; cam2's is published right after it
    wait_for(lambda: sniffer.payloads("homeassistant/device/nightwatch_site1_cam2/config"), 10, what="cam2 discovery")
    configs = sniffer.payloads(DISCOVERY)
    assert len(configs) == 1
    doc = json.loads(configs[0])
    comps = doc["components"]
    assert comps["nightwatch_site1_cam1_motion"]["state_topic"] == f"{BASE}/cam1/motion"
    assert comps["nightwatch_site1_cam1_enabled"]["command_topic"] == f"{BASE}/cam1/set/enabled"
    assert doc["availability"][0]["topic"] == f"{BASE}/availability"
    late = Sniffer(pub.cfg.port, DISCOVERY)  # retained: a Home Assistant that subscribes later gets it
    try:
        wait_for(lambda: late.messages, 5, what="retained discovery")
        assert late.messages == [(DISCOVERY, configs[0], True)]
    finally:
        late.close()
    sniffer.publish("homeassistant/status", "online")
    wait_for(lambda: len(sniffer.payloads(DISCOVERY)) == 2, 10, what="republished discovery")
    assert json.loads(sniffer.payloads(DISCOVERY)[1]) == doc


def test_stats_and_motion_are_retained_state(setup):
    pub, sniffer, calls = setup
    pub.publish_motion("cam1", True)
    pub.publish_stats("cam1", {"frames": 10, "events_published": 2})
    pub.publish_stats("cam1", {"frames": 25, "events_published": 3})
    # the sender may have published the first stats on their own; wait for the latest
    wait_for(
        lambda: any(json.loads(p)["frames"] == 25 for p in sniffer.payloads(f"{BASE}/cam1/stats")), 10, what="stats"
    )
    late = Sniffer(pub.cfg.port, f"{BASE}/cam1/#")
    try:
        retained = (f"{BASE}/cam1/motion", f"{BASE}/cam1/stats")
        wait_for(lambda: {t for t, _p, r in list(late.messages) if r} >= set(retained), 5, what="retained state")
        got = {t: p for t, p, r in late.messages if r}
        assert got[f"{BASE}/cam1/motion"] == b"ON"
        stats = json.loads(got[f"{BASE}/cam1/stats"])
        assert stats["frames"] == 25 and stats["mqtt"]["connected"] is True and stats["mqtt"]["spool_dropped"] == 0
    finally:
        late.close()
