"""The operators' console API over a store filled by the real ingest: login and roles, sessions
that expire, CSRF, filters and pages, one event with its integrity checked again from disk, the
evidence zip and `edge-agent verify-evidence`, alerts and sites."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest
from fastapi.testclient import TestClient
from fixtures.control_room import KEY, OPERATOR, VIEWER, console_config, fill, tamper

from edge_agent.control_room.console.app import create_console
from edge_agent.control_room.console.sessions import Sessions
from edge_agent.control_room.store import open_store


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def console(tmp_path, storage):
    """The same suite on the embedded store and on PostgreSQL + S3 (conftest.storage)."""
    ids = fill(tmp_path / "received", storage=storage)
    cfg = console_config(tmp_path / "received", storage=storage)
    clock = Clock()
    store = open_store(cfg)
    app = create_console(store, cfg.console, sessions=Sessions(cfg.console, clock))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c, ids, clock, store
    store.close()


def login(client, who) -> dict:
    r = client.post("/api/login", json={"name": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return r.json()


def test_login_sessions_expire_and_wrong_passwords_are_refused(console):
    client, _ids, clock, _root = console
    assert client.get("/api/events").status_code == 401
    assert client.post("/api/login", json={"name": "olga", "password": "nope"}).status_code == 401
    assert client.post("/api/login", json={"name": "nobody", "password": "x"}).status_code == 401
    me = login(client, OPERATOR)
    assert me["role"] == "operator"
    cookie = client.cookies.get("nw_console")
    assert cookie and "httponly" in client.post("/api/login", json={"name": OPERATOR[0], "password": OPERATOR[1]}) \
        .headers["set-cookie"].lower()
    assert client.get("/api/events").status_code == 200
    clock.now += 9 * 3600  # past session_ttl_s (8 h)
    assert client.get("/api/events").status_code == 401
    r = client.get("/api/events", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in {k.lower() for k in r.headers}


def test_events_filter_page_newest_first_and_the_detail_checks_integrity(console):
    client, ids, _clock, root = console
    login(client, OPERATOR)
    out = client.get("/api/events").json()
    assert out["total"] == 6
    started = [e["started_at"] for e in out["events"]]
    assert started == sorted(started, reverse=True)
    door = client.get("/api/events", params={"camera": "door"}).json()
    assert door["total"] == 3 and {e["camera"] for e in door["events"]} == {"door"}
    faces = client.get("/api/events", params={"has_faces": "true"}).json()
    assert {e["event_id"] for e in faces["events"]} == {ids["door"][0], ids["yard"][0], ids["door"][2], ids["yard"][2]}
    page2 = client.get("/api/events", params={"per_page": 4, "page": 2}).json()
    assert len(page2["events"]) == 2 and page2["total"] == 6
    since = client.get("/api/events", params={"since": 1_700_000_000.0 + 60 * 4}).json()
    assert since["total"] == 3

    ev = client.get(f"/api/events/site1/{ids['door'][0]}").json()
    assert ev["integrity"]["signature"] == "valid" and ev["integrity"]["images_failed"] == []
    names = {i["name"] for i in ev["images"]}
    assert {"original.jpg", "enhanced.jpg", "face_0.png", "face_0_sr.png"} <= names
    assert ev["stages"] == ["low_light", "face_detect", "face_sr"] and ev["stage_ms"]["low_light"] == 12.5
    img = next(i for i in ev["images"] if i["name"] == "original.jpg")
    r = client.get(f"/api/images/{img['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"

    tamper(root, ids["door"][0])
    ev = client.get(f"/api/events/site1/{ids['door'][0]}").json()
    assert ev["integrity"]["images_failed"] == ["enhanced.jpg"]
    assert next(i for i in ev["images"] if i["name"] == "enhanced.jpg")["check"] == "FAILED"
    assert client.get("/api/events/site1/20231114T999999000Z-door-x").status_code == 404
    assert client.get("/api/events/site1/..%2F..").status_code in (404, 422)


def test_hold_needs_the_operator_role_and_the_csrf_token(console):
    client, ids, _clock, _root = console
    eid = ids["yard"][1]
    me = login(client, VIEWER)
    r = client.post(f"/api/events/site1/{eid}/hold", json={"hold": True}, headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    me = login(client, OPERATOR)
    assert client.post(f"/api/events/site1/{eid}/hold", json={"hold": True}).status_code == 403  # no CSRF token
    r = client.post(f"/api/events/site1/{eid}/hold", json={"hold": True}, headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 200
    held = client.get("/api/events", params={"held": "true"}).json()
    assert [e["event_id"] for e in held["events"]] == [eid] and held["events"][0]["held_by"] == "olga"
    assert client.get(f"/api/events/site1/{eid}").json()["held"] is True


def test_evidence_zip_verifies_with_the_documented_command_and_fails_when_tampered(console, tmp_path):
    client, ids, _clock, root = console
    login(client, VIEWER)  # exporting is reading: viewers may
    eid = ids["door"][0]
    r = client.get(f"/api/events/site1/{eid}/evidence.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = set(z.namelist())
        assert {"SHA256SUMS", "verification.json", "README.txt"} <= names
        assert any(n.startswith("event/") for n in names) and "images/000-face_0_sr.png" in names
    good = tmp_path / "good.zip"
    good.write_bytes(r.content)
    keyfile = tmp_path / "site1.key"
    keyfile.write_bytes(KEY)
    cmd = [sys.executable, "-m", "edge_agent", "verify-evidence", str(good), "--key-file", str(keyfile)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VALID" in run.stdout and "signature valid" in run.stdout
    # the same check with nothing of ours: sha256sum over the unzipped folder
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(good).extractall(folder)
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True).returncode == 0

    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"another-key-0123456789abcdefghij")
    run = subprocess.run(cmd[:-1] + [str(wrong)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "invalid" in run.stdout

    tamper(root, eid)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(client.get(f"/api/events/site1/{eid}/evidence.zip").content)
    run = subprocess.run(cmd[:4] + [str(bad), "--key-file", str(keyfile)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "images/000-enhanced.jpg: FAILED" in run.stdout


def test_alerts_and_sites(console):
    client, _ids, _clock, _root = console
    login(client, VIEWER)
    alerts = client.get("/api/alerts", params={"state": "open"}).json()
    assert [(a["type"], a["camera"], a["open"]) for a in alerts] == [("covered", "door", True)]
    assert client.get("/api/alerts", params={"state": "closed"}).json() == []
    sites = client.get("/api/sites").json()
    assert sites == [{"site": "site1", "state": "online", "last_seen": sites[0]["last_seen"],
                      "cameras": ["door", "yard"]}]
