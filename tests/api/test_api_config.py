"""Config and camera endpoints: masking, validation, atomic save, live apply, restart keys."""

from __future__ import annotations

import pytest
import yaml
from agent_impl import LabAgent, write_config

from edge_agent.api.deps import get_agent
from edge_agent.config.loader import ConfigError, load_config
from edge_agent.config.schema import MotionConfig

AGENT_KINDS = ("lab", "real")  # every test here runs against the stand-in and the real Agent

MASK = "**********"


def test_get_config_masks_every_secret(client, auth_headers, config_path):
    r = client.get("/api/config", headers=auth_headers)
    assert r.status_code == 200
    body = r.text
    assert "mqtt-pass-123" not in body and "cam-pass-9" not in body and "scrypt$" not in body
    data = r.json()
    assert data["publish"]["mqtt"]["password"] == MASK
    assert data["api"]["auth"]["password_hash"] == MASK
    assert data["cameras"][1]["source"]["url"] == f"rtsp://viewer:{MASK}@10.0.0.5:554/stream1"
    assert client.get("/api/cameras/yard", headers=auth_headers).json()["source"]["url"].count(MASK) == 1


def test_put_with_masks_keeps_stored_secrets(client, auth_headers, config_path, password_hash):
    data = client.get("/api/config", headers=auth_headers).json()
    data["site"] = "warehouse"
    r = client.put("/api/config", json=data, headers=auth_headers)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == ["site"]
    assert "mqtt-pass-123" not in r.text
    on_disk = load_config(config_path)
    assert on_disk.site == "warehouse"
    assert on_disk.publish.mqtt.password.get_secret_value() == "mqtt-pass-123"
    assert on_disk.camera("yard").source.url == "rtsp://viewer:cam-pass-9@10.0.0.5:554/stream1"
    assert on_disk.api.auth.password_hash.get_secret_value() == password_hash
    # saved to the box's overlay; the installer's base file is untouched
    assert yaml.safe_load(config_path.read_text())["site"] == "lab"
    assert yaml.safe_load(config_path.with_name("agent.local.yaml").read_text()) == {"site": "warehouse"}


def test_put_can_replace_a_secret_and_refuses_a_dangling_mask(client, auth_headers, config_path):
    data = client.get("/api/config", headers=auth_headers).json()
    data["publish"]["mqtt"]["password"] = "new-mqtt-secret"
    r = client.put("/api/config", json=data, headers=auth_headers)
    assert r.status_code == 200, r.text
    assert "new-mqtt-secret" not in r.text
    assert load_config(config_path).publish.mqtt.password.get_secret_value() == "new-mqtt-secret"

    data = client.get("/api/config", headers=auth_headers).json()
    data["cameras"][0]["source"] = {"url": f"rtsp://admin:{MASK}@10.0.0.9/s"}  # no stored secret here
    before = config_path.read_bytes()
    r = client.put("/api/config", json=data, headers=auth_headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["key"] == "cameras.0.source.url"
    assert config_path.read_bytes() == before


def test_put_invalid_config_is_refused_whole_naming_the_keys(client, auth_headers, config_path, agent):
    before = config_path.read_bytes()
    data = client.get("/api/config", headers=auth_headers).json()
    data["site"] = "new-site"
    data["cameras"][0]["motion"]["threshold"] = 999
    data["cameras"][1]["motion"] = {"treshold": 3}
    r = client.put("/api/config", json=data, headers=auth_headers)
    assert r.status_code == 422
    keys = {e["key"]: e["msg"] for e in r.json()["detail"]}
    assert "cameras.0.motion.threshold" in keys
    assert keys["cameras.1.motion.treshold"] == "unknown key"
    assert "999" not in r.text  # submitted values are never echoed
    assert config_path.read_bytes() == before
    assert agent.applied == []


def test_patch_camera_saves_applies_live_and_names_restart_keys(client, auth_headers, config_path, agent):
    zone = {"name": "porch", "points": [[0.1, 0.1], [0.6, 0.1], [0.6, 0.7]]}
    r = client.patch(
        "/api/cameras/door",
        json={
            "motion": {"sensitivity": 0.8, "zones": [zone]},
            "low_light": {"ratio": 7},
            "faces": {"super_resolve": False},
        },
        headers=auth_headers,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out["changed"]) == {
        "cameras.door.motion.sensitivity",
        "cameras.door.motion.zones",
        "cameras.door.low_light.ratio",
        "cameras.door.faces.super_resolve",
    }
    assert out["restart_required"] == []
    assert out["camera"]["motion"]["zones"][0]["name"] == "porch"
    disk = load_config(config_path).camera("door")
    assert disk.motion.sensitivity == 0.8 and disk.motion.zones[0].name == "porch"
    assert disk.motion.threshold == 25  # untouched keys stay
    assert disk.low_light.ratio == 7 and disk.faces.super_resolve is False
    gate = agent.gates["door"]
    assert gate.cfg.sensitivity == 0.8 and [z.name for z in gate.cfg.zones] == ["porch"]

    # (a path such as source.file may change through the API only inside api.path_roots: test_api_exposure)
    r = client.patch("/api/cameras/door", json={"source": {"file": None, "url": "rtsp://cam.local/1"}},
                     headers=auth_headers)
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] == ["cameras.door.source.file", "cameras.door.source.url"]

    # null resets a key to its default (JSON merge patch)
    r = client.patch("/api/cameras/door", json={"motion": {"sensitivity": None}}, headers=auth_headers)
    assert r.status_code == 200
    assert load_config(config_path).camera("door").motion.sensitivity == MotionConfig().sensitivity


def test_patch_invalid_value_changes_nothing(client, auth_headers, config_path, agent):
    before = config_path.read_bytes()
    r = client.patch(
        "/api/cameras/door", json={"motion": {"sensitivity": 2.5, "min_area": -1}}, headers=auth_headers
    )
    assert r.status_code == 422
    keys = [e["key"] for e in r.json()["detail"]]
    assert sorted(keys) == ["motion.min_area", "motion.sensitivity"]
    assert config_path.read_bytes() == before
    assert agent.gates["door"].cfg.sensitivity == 0.5
    r = client.patch(
        "/api/cameras/door",
        json={"motion": {"zones": [{"name": "x", "points": [[0, 0], [1, 1]]}]}},
        headers=auth_headers,
    )
    assert r.status_code == 422 and r.json()["detail"][0]["key"] == "motion.zones.0.points"
    assert client.patch("/api/cameras/nope", json={}, headers=auth_headers).status_code == 404
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    assert client.patch("/api/cameras/door", json=deep, headers=auth_headers).status_code == 422
    assert config_path.read_bytes() == before


def test_unchanged_patch_does_not_rewrite_the_file(client, auth_headers, config_path):
    mtime = config_path.stat().st_mtime_ns
    r = client.patch("/api/cameras/door", json={"motion": {"threshold": 25}}, headers=auth_headers)
    assert r.status_code == 200 and r.json()["changed"] == []
    assert config_path.stat().st_mtime_ns == mtime


def test_api_keys_that_need_a_restart_are_named(client, auth_headers):
    data = client.get("/api/config", headers=auth_headers).json()
    data["api"]["port"] = 9090
    data["api"]["max_body_mb"] = 2
    r = client.put("/api/config", json=data, headers=auth_headers)
    assert r.status_code == 200
    assert r.json()["restart_required"] == ["api.port"]  # max_body_mb is read per request


def test_agent_that_cannot_apply_refuses_the_change_and_saves_nothing(
    app, client, auth_headers, config_path, store
):
    class PickyAgent(LabAgent):
        def apply_config(self, new_cfg):
            if new_cfg.camera("door").motion.threshold == 40:
                raise ConfigError("live config", ["cameras.0.faces: yunet model file not found"])
            if new_cfg.camera("door").motion.threshold == 41:
                raise RuntimeError("boom")
            return super().apply_config(new_cfg)

    picky = PickyAgent(store.config)
    app.dependency_overrides[get_agent] = lambda: picky
    before = config_path.read_bytes()
    r = client.patch("/api/cameras/door", json={"motion": {"threshold": 40}}, headers=auth_headers)
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "loc": ["cameras", 0, "faces"],
            "key": "faces",
            "msg": "yunet model file not found",
            "type": "config_error",
        }
    ]
    r = client.patch("/api/cameras/door", json={"motion": {"threshold": 41}}, headers=auth_headers)
    assert r.status_code == 503 and "nothing was saved" in r.json()["detail"]
    assert config_path.read_bytes() == before and store.config.camera("door").motion.threshold == 25
    assert picky.gates["door"].cfg.threshold == 25


def test_failed_save_rolls_the_agent_back(client, auth_headers, config_path, store, agent, monkeypatch):
    def disk_full(text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_write_atomic", disk_full)
    before = config_path.read_bytes()
    r = client.patch("/api/cameras/door", json={"motion": {"sensitivity": 0.9}}, headers=auth_headers)
    assert r.status_code == 503 and "undone" in r.json()["detail"]
    assert config_path.read_bytes() == before
    assert agent.gates["door"].cfg.sensitivity == 0.5  # re-applied the previous config
    assert store.config.camera("door").motion.sensitivity == 0.5


def test_changing_the_password_ends_sessions(client, auth_headers):
    from edge_agent.api.auth import hash_password

    data = client.get("/api/config", headers=auth_headers).json()
    data["api"]["auth"]["password_hash"] = hash_password("another-pass-1")
    r = client.put("/api/config", json=data, headers=auth_headers)
    assert r.status_code == 200
    assert client.patch("/api/cameras/door", json={}, headers=auth_headers).status_code == 401
    assert client.post("/api/auth/login", json={"password": "another-pass-1"}).status_code == 200


def test_read_only_without_password_hash(tmp_path):
    from fastapi.testclient import TestClient

    from edge_agent.api.app import create_app
    from edge_agent.config.store import ConfigStore

    path = tmp_path / "a.yaml"
    write_config(path, None)
    store = ConfigStore(path)
    with TestClient(create_app(store, LabAgent(store.config)), base_url="http://127.0.0.1") as c:
        assert c.get("/api/config").status_code == 403  # nothing to read without a login
        r = c.post("/api/auth/login", json={"password": "whatever"})
        assert r.status_code == 403 and "edge-agent hash-password" in r.json()["detail"]
        r = c.patch("/api/cameras/door", json={"motion": {"threshold": 30}})
        assert r.status_code == 403 and "api.auth.password_hash" in r.json()["detail"]
        assert c.get("/api/auth").json()["password_set"] is False
        assert c.get("/api/health").json()["read_only"] is True


@pytest.mark.parametrize(
    "method,path,kw",
    [
        ("put", "/api/config", {"json": {"site": "x"}}),
        ("patch", "/api/cameras/door", {"json": {"motion": {"threshold": 30}}}),
        ("post", "/api/enhance", {"files": {"image": ("a.png", b"x", "image/png")}}),
        ("post", "/api/auth/logout", {}),
    ],
)
def test_unauthenticated_changes_get_401(client, config_path, method, path, kw):
    before = config_path.read_bytes()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        r = client.request(method, path, headers=headers, **kw)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    assert config_path.read_bytes() == before
