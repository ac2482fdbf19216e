"""Every entry of the live-settings table (config/live.py), changed on a running Agent through the
API and, for the command settings, through MQTT on a real Mosquitto: applied live (observed in the
running agent) or reported as needing a restart, the same answer from both; `enabled` over MQTT
stops and restarts the camera's capture; Home Assistant's state topics follow an API change."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from fastapi.testclient import TestClient
from fixtures.health_clips import write_clip
from mosquitto import Mosquitto, Sniffer, require_mosquitto, wait_for

from edge_agent.api.app import create_app
from edge_agent.api.auth import hash_password
from edge_agent.app import Agent
from edge_agent.config import commands, live
from edge_agent.config.loader import config_to_data
from edge_agent.config.schema import AgentConfig
from edge_agent.config.store import ConfigStore
from edge_agent.pipeline.worker import Stages

PASSWORD = "live-table-pass-1"
BASE = "nightwatch/lab"

# one change per entry of the table: (a PATCH of camera "door" or a PUT change of the whole
# document, how to see it applied in the running agent)
CAMERA_CHANGES = {
    "cameras.*.enabled": ({"enabled": False}, lambda a: not a.camera_running("door")),
    "cameras.*.source": ({"source": {"file": None, "url": "rtsp://cam.local/1"}}, None),
    "cameras.*.motion": ({"motion": {"sensitivity": 0.9}}, lambda a: a._cameras["door"].gate.cfg.sensitivity == 0.9),
    "cameras.*.low_light": ({"low_light": {"luma_threshold": 50.0}},
                            lambda a: a._camera_cfg("door").low_light.luma_threshold == 50.0),
    "cameras.*.faces": ({"faces": {"super_resolve": False}}, lambda a: a._camera_cfg("door").faces.super_resolve is False),
    "cameras.*.snapshots": ({"snapshots": {"jpeg_quality": 70}}, lambda a: a._jpeg_quality("door") == 70),
    "cameras.*.health": ({"health": {"start_after_s": 9.0}}, lambda a: a._camera_cfg("door").health.start_after_s == 9.0),
}
DOC_CHANGES = {
    "site": lambda d: d.update(site="other"),
    "cameras": lambda d: d["cameras"].append({"name": "gate", "source": {"file": d["cameras"][0]["source"]["file"]}}),
    "cameras.*.name": lambda d: d["cameras"][1].update(name="yard2"),
    "models": lambda d: d["models"].update(dir=str(d["_tmp"]) + "/models2"),
    "inference": lambda d: d["inference"].update(threads=3),
    "pipeline": lambda d: d["pipeline"].update(workers=2),
    "publish": lambda d: d["publish"]["mqtt"].update(qos=0),
    "state_dir": lambda d: d.update(state_dir=str(d["_tmp"]) + "/state2"),
    "logging": lambda d: d["logging"].update(level="DEBUG"),
    "api": lambda d: d["api"].update(max_body_mb=3),
    "api.enabled": lambda d: d["api"].update(enabled=False),
    "api.bind": lambda d: d["api"].update(bind="0.0.0.0"),
    "api.port": lambda d: d["api"].update(port=8123),
    "api.trusted_proxies": lambda d: d["api"].update(trusted_proxies=["10.0.0.1"]),
}
BASE_ONLY = {"cameras", "cameras.*.name"}  # the API refuses these (docs/config-ownership.md)
DOC_OBSERVED = {"logging": lambda a: logging.getLogger().level == logging.DEBUG,
                "api": lambda a: a.config.api.max_body_mb == 3}


def test_the_table_names_every_section_of_the_schema():
    from edge_agent.config.schema import CameraConfig

    keys = [f"{name}" for name in AgentConfig.model_fields] + [f"cameras.*.{n}" for n in CameraConfig.model_fields]
    assert [k for k in keys if k not in live.TABLE] == []
    assert set(CAMERA_CHANGES) | set(DOC_CHANGES) == set(live.TABLE)  # this test covers every entry


@pytest.fixture
def running(tmp_path):
    require_mosquitto()
    clip = write_clip(tmp_path / "door.avi", [(4.0, {})])
    with Mosquitto(tmp_path) as broker:
        cfg = {
            "site": "lab",
            "cameras": [{"name": "door", "source": {"file": str(clip), "loop": True}},
                        {"name": "yard", "source": {"file": str(clip), "loop": True}}],
            "publish": {"sink": "mqtt", "mqtt": {"port": broker.port, "spool_dir": str(tmp_path / "spool")}},
            "api": {"port": 0, "auth": {"password_hash": hash_password(PASSWORD)}, "path_roots": [str(tmp_path)]},
            "state_dir": str(tmp_path / "state"),
            "models": {"dir": str(tmp_path / "models")},
            "logging": {"level": "INFO"},
        }
        path = tmp_path / "agent.yaml"
        path.write_text(yaml.safe_dump(cfg))
        store = ConfigStore(path)
        agent = Agent(store.config, stages=Stages(), store=store)
        sniffer = Sniffer(broker.port, f"{BASE}/#")
        agent.start()
        try:
            wait_for(lambda: agent.publisher.commands_ready, 15, what="the agent subscribed to its commands")
            with TestClient(create_app(store, agent), base_url="http://127.0.0.1") as client:
                token = client.post("/api/auth/login", json={"password": PASSWORD}).json()["access_token"]
                client.headers["Authorization"] = f"Bearer {token}"
                yield agent, client, sniffer, store, tmp_path
        finally:
            agent.stop()
            sniffer.close()
            logging.getLogger().setLevel(logging.INFO)


def _result(sniffer, key, n):
    topic = f"{BASE}/door/set/{key}/result"
    wait_for(lambda: len(sniffer.payloads(topic)) >= n, 10, what=f"result {n} of {key}")
    return json.loads(sniffer.payloads(topic)[n - 1])


@pytest.mark.slow
def test_every_key_is_live_or_named_for_restart_the_same_through_api_and_mqtt(running):
    agent, client, sniffer, store, tmp_path = running
    api_answer: dict[str, bool] = {}
    for entry, (patch, observed) in CAMERA_CHANGES.items():
        before = client.get("/api/config").json()
        r = client.patch("/api/cameras/door", json=patch)
        assert r.status_code == 200, (entry, r.text)
        restart = r.json()["restart_required"]
        expect_live = live.TABLE[entry] == live.LIVE
        assert (restart == []) is expect_live, (entry, restart)
        assert all(k.startswith("cameras.door.") for k in restart)
        if observed is not None:
            assert wait_for(lambda o=observed: o(agent), 10, what=f"{entry} applied live")
        api_answer[entry] = expect_live
        assert client.put("/api/config", json=before).status_code == 200  # back, for the next entry
    assert agent.camera_running("door")  # switched on again by the reset above

    for entry, change in DOC_CHANGES.items():
        before = client.get("/api/config").json()
        doc = json.loads(json.dumps(before))
        _with_tmp(doc, tmp_path, change)
        r = client.put("/api/config", json=doc)
        if entry in BASE_ONLY:  # the installer's inventory: refused on the box, a restart after a deploy
            assert r.status_code == 422 and "belongs to the base config" in r.text, (entry, r.text)
            data = config_to_data(store.config, reveal_secrets=True)
            _with_tmp(data, tmp_path, change)
            restart = agent.apply_config(AgentConfig.model_validate(data))
            agent.apply_config(store.config)
            assert restart and live.TABLE[entry] == live.RESTART, (entry, restart)
            continue
        assert r.status_code == 200, (entry, r.text)
        restart = r.json()["restart_required"]
        assert (restart == []) is (live.TABLE[entry] == live.LIVE), (entry, restart)
        if entry in DOC_OBSERVED:
            assert DOC_OBSERVED[entry](agent), entry
        assert client.put("/api/config", json=before).status_code == 200

    # the command settings through MQTT: the same answer as the API gave for their config key
    values = {"enabled": ("OFF", False), "motion_sensitivity": ("0.35", 0.35), "low_light_ratio": ("6", 6.0),
              "face_sr": ("OFF", False)}
    assert set(values) == set(commands.KEYS)
    for cmd in commands.COMMANDS:
        payload, value = values[cmd.key]
        sniffer.publish(f"{BASE}/door/set/{cmd.key}", payload)
        result = _result(sniffer, cmd.key, 1)
        assert result["ok"] is True, result
        entry = "cameras.*." + cmd.path[0]
        assert (result["restart_required"] == []) is api_answer[entry], (cmd.key, result)
        assert commands.value_of(agent.config.camera("door"), cmd.key) == value
    assert agent._cameras.get("door") is None and not agent.camera_running("door")
    assert agent._cameras["yard"].loop.is_alive()  # the other camera runs on


def _with_tmp(doc, tmp_path, change):
    """Apply a DOC_CHANGES entry (paths go under the test's folder, inside api.path_roots)."""
    doc["_tmp"] = tmp_path
    change(doc)
    del doc["_tmp"]


@pytest.mark.slow
def test_enabled_over_mqtt_stops_and_restarts_the_capture(running):
    agent, client, sniffer, store, tmp_path = running
    wait_for(lambda: agent.stats["door"].snapshot()["frames"] > 5, 15, what="door frames")
    capture = agent._cameras["door"].capture
    sniffer.publish(f"{BASE}/door/set/enabled", "OFF")
    assert _result(sniffer, "enabled", 1)["ok"] is True
    assert not capture.is_alive() and not agent.camera_running("door")
    frames = agent.stats["door"].snapshot()["frames"]
    wait_for(lambda: agent.stats["yard"].snapshot()["frames"] > 20, 15, what="yard frames go on")
    assert agent.stats["door"].snapshot()["frames"] == frames  # nothing read while off
    assert store.overlay_path.is_file() and "enabled: false" in store.overlay_path.read_text()

    sniffer.publish(f"{BASE}/door/set/enabled", "ON")
    assert _result(sniffer, "enabled", 2)["ok"] is True
    assert agent.camera_running("door") and agent._cameras["door"].capture is not capture
    wait_for(lambda: agent.stats["door"].snapshot()["frames"] > frames + 5, 15, what="door reads again")


@pytest.mark.slow
def test_home_assistant_state_topics_follow_an_api_change(running):
    agent, client, sniffer, store, tmp_path = running
    disc = "homeassistant/device/nightwatch_lab_door/config"
    ha = Sniffer(agent.publisher.cfg.port, "homeassistant/#")
    try:
        wait_for(lambda: ha.payloads(disc), 10, what="discovery config")
        components = json.loads(ha.payloads(disc)[-1])["components"]
    finally:
        ha.close()
    topics = {c["command_topic"].rsplit("/", 1)[1]: c["state_topic"] for c in components.values() if "command_topic" in c}
    assert set(topics) == set(commands.KEYS)
    assert all(not c.get("optimistic") for c in components.values())
    state = topics["motion_sensitivity"]
    wait_for(lambda: sniffer.payloads(state), 10, what="the state published on connect")
    assert sniffer.payloads(state)[-1] == b"0.5"

    assert client.patch("/api/cameras/door", json={"motion": {"sensitivity": 0.8}}).status_code == 200
    wait_for(lambda: sniffer.payloads(state)[-1] == b"0.8", 10, what="the new state")
    late = Sniffer(agent.publisher.cfg.port, state)  # a Home Assistant that connects later
    try:
        wait_for(lambda: late.payloads(state), 10, what="the retained state")
        assert late.messages[-1][1:] == (b"0.8", True)  # retained, the current value
    finally:
        late.close()
