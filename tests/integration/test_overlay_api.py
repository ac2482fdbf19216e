"""GET / DELETE /api/config/overlay: see and reset the box's on-box changes (real app, real files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from agent_impl import PASSWORD, LabAgent, write_config  # noqa: E402

from edge_agent.api.app import create_app  # noqa: E402
from edge_agent.api.auth import hash_password  # noqa: E402
from edge_agent.config.loader import ConfigError, load_config  # noqa: E402
from edge_agent.config.store import ConfigStore  # noqa: E402

MASK = "**********"
ZONE = {"name": "porch", "points": [[0.1, 0.1], [0.6, 0.1], [0.6, 0.7]]}
POLY = {"points": [[0.0, 0.0], [0.3, 0.0], [0.3, 0.3]]}


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def box(tmp_path, password_hash):
    path = tmp_path / "agent.yaml"
    write_config(path, password_hash)
    store = ConfigStore(path)
    agent = LabAgent(store.config)
    with TestClient(create_app(store, agent), base_url="http://127.0.0.1") as client:
        token = client.post("/api/auth/login", json={"password": PASSWORD}).json()["access_token"]
        yield client, {"Authorization": f"Bearer {token}"}, store, agent


def test_overlay_routes_need_a_login(box, tmp_path):
    client, _, _, _ = box
    assert client.get("/api/config/overlay").status_code == 401
    assert client.delete("/api/config/overlay").status_code == 401
    assert client.delete("/api/config/overlay", headers={"Authorization": "Bearer nope"}).status_code == 401
    path = tmp_path / "ro" / "agent.yaml"
    path.parent.mkdir()
    write_config(path, None)  # no password: read-only, nothing to see either
    store = ConfigStore(path)
    with TestClient(create_app(store, LabAgent(store.config)), base_url="http://127.0.0.1") as c:
        assert c.get("/api/config/overlay").status_code == 403
        assert c.delete("/api/config/overlay").status_code == 403


def test_get_shows_the_on_box_changes_with_secrets_masked(box):
    client, auth, store, _ = box
    base_before = store.path.read_bytes()
    empty = client.get("/api/config/overlay", headers=auth).json()
    assert empty["exists"] is False and empty["keys"] == 0 and empty["overlay"] == {}
    assert empty["path"] == str(store.overlay_path) and empty["base_path"] == str(store.path)

    r = client.patch("/api/cameras/door", json={"motion": {"masks": [POLY], "zones": [ZONE]}}, headers=auth)
    assert r.status_code == 200, r.text
    r = client.patch("/api/cameras/yard", json={"source": {"url": "rtsp://viewer:new-pass-1@10.0.0.6/s"}},
                     headers=auth)
    assert r.status_code == 200, r.text

    r = client.get("/api/config/overlay", headers=auth)
    assert r.status_code == 200
    view = r.json()
    assert view["exists"] is True and view["keys"] == 3
    assert view["changed_keys"] == ["cameras.door.motion.masks", "cameras.door.motion.zones", "cameras.yard.source.url"]
    assert view["overlay"]["cameras"][0] == {"name": "door", "motion": {"masks": [POLY], "zones": [ZONE]}}
    assert view["overlay"]["cameras"][1]["source"]["url"] == f"rtsp://viewer:{MASK}@10.0.0.6/s"
    assert "new-pass-1" not in r.text
    assert store.path.read_bytes() == base_before  # the installer's file was never written
    assert "new-pass-1" in store.overlay_path.read_text()  # the box's file holds the real value


def test_delete_resets_to_the_base_and_the_agent_applies_it(box):
    client, auth, store, agent = box
    r = client.patch("/api/cameras/door", json={"motion": {"sensitivity": 0.9, "zones": [ZONE]}}, headers=auth)
    assert r.status_code == 200, r.text
    assert [z.name for z in agent.gates["door"].cfg.zones] == ["porch"]

    r = client.delete("/api/config/overlay", headers=auth)
    assert r.status_code == 200, r.text
    out = r.json()
    assert sorted(out["changed"]) == ["cameras.door.motion.sensitivity", "cameras.door.motion.zones"]
    assert out["restart_required"] == []
    assert out["config"]["publish"]["mqtt"]["password"] == MASK
    # applied live, and the next start runs on the base alone
    assert agent.gates["door"].cfg.zones == [] and agent.gates["door"].cfg.sensitivity == 0.5
    assert not store.overlay_path.exists() and store.backup_path.exists()
    assert load_config(store.path) == store.base == store.config
    assert client.get("/api/cameras/door", headers=auth).json()["motion"]["zones"] == []
    assert client.get("/api/config/overlay", headers=auth).json()["keys"] == 0
    # resetting nothing is fine
    r = client.delete("/api/config/overlay", headers=auth)
    assert r.status_code == 200 and r.json()["changed"] == []


def test_delete_refused_by_the_running_agent_keeps_the_overlay(box):
    client, auth, store, agent = box
    assert client.patch("/api/cameras/door", json={"motion": {"zones": [ZONE]}}, headers=auth).status_code == 200
    text = store.overlay_path.read_text()

    def refuse(new_cfg):
        raise ConfigError("live config", ["cameras.0.faces.yunet_model: the model cannot be loaded"])

    agent.apply_config = refuse
    r = client.delete("/api/config/overlay", headers=auth)
    assert r.status_code == 422
    assert r.json()["detail"][0]["key"] == "cameras.0.faces.yunet_model"
    assert store.overlay_path.read_text() == text
    assert [z.name for z in store.config.camera("door").motion.zones] == ["porch"]


def test_a_reset_back_to_the_base_password_ends_the_sessions(box):
    client, auth, store, _ = box
    data = client.get("/api/config", headers=auth).json()
    data["api"]["auth"]["password_hash"] = hash_password("box-side-pass-2")
    assert client.put("/api/config", json=data, headers=auth).status_code == 200
    assert "password_hash" in yaml.safe_load(store.overlay_path.read_text())["api"]["auth"]
    token = client.post("/api/auth/login", json={"password": "box-side-pass-2"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = client.delete("/api/config/overlay", headers=auth)
    assert r.status_code == 200 and "api.auth.password_hash" in r.json()["changed"]
    assert client.get("/api/config/overlay", headers=auth).status_code == 401  # sessions ended
    assert client.post("/api/auth/login", json={"password": PASSWORD}).status_code == 200


def test_the_camera_list_cannot_change_on_the_box(box):
    client, auth, store, _ = box
    data = client.get("/api/config", headers=auth).json()
    data["cameras"].append({"name": "garage", "source": {"url": "rtsp://10.0.0.7/s"}})
    r = client.put("/api/config", json=data, headers=auth)
    assert r.status_code == 422
    assert r.json()["detail"][0]["key"] == "cameras"
    assert "belongs to the base config" in r.json()["detail"][0]["msg"]
    assert not store.overlay_path.exists()
