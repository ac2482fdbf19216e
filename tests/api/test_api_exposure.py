"""What a client that reaches the port but has not logged in can see, the Host header check, the
page's framing/CSP headers, and path settings confined to api.path_roots (finding 5 of issue 13)."""

from __future__ import annotations

import httpx
import pytest
import yaml
from agent_impl import LabAgent

from edge_agent.api.server import start_api_server
from edge_agent.config.store import ConfigStore

READS = [
    "/api/config",
    "/api/cameras",
    "/api/cameras/door",
    "/api/cameras/door/stats",
    "/api/cameras/door/snapshot/original",
    "/api/cameras/door/snapshot/enhanced",
    "/metrics",
]


@pytest.mark.parametrize("path", READS)
def test_reads_need_the_login(client, auth_headers, path):
    r = client.get(path)
    assert r.status_code == 401, (path, r.status_code)
    assert b"\xff\xd8" not in r.content[:2] and b"door.mp4" not in r.content and b"10.0.0.5" not in r.content
    assert client.get(path, headers=auth_headers).status_code == 200


def test_health_without_login_is_liveness_only(client, auth_headers):
    anon = client.get("/api/health").json()
    assert set(anon) == {"status", "uptime_s", "read_only"}
    full = client.get("/api/health", headers=auth_headers).json()
    assert full["site"] == "lab" and set(full["cameras"]) == {"door", "yard"}


def test_read_only_box_shows_nothing_but_liveness(tmp_path):
    from agent_impl import write_config
    from fastapi.testclient import TestClient

    from edge_agent.api.app import create_app

    path = tmp_path / "agent.yaml"
    write_config(path, None)
    store = ConfigStore(path)
    with TestClient(create_app(store, LabAgent(store.config)), base_url="http://127.0.0.1") as c:
        for p in READS:
            assert c.get(p).status_code == 403, p
        assert c.get("/api/health").json()["read_only"] is True


def _serve(config_path, **api):
    data = yaml.safe_load(config_path.read_text())
    data["api"].update(api)
    config_path.write_text(yaml.safe_dump(data))
    store = ConfigStore(config_path)
    return start_api_server(LabAgent(store.config), store)


def test_monitoring_addresses_read_metrics_and_health_without_login(config_path):
    server = _serve(config_path, monitoring=["127.0.0.0/8"])
    try:
        r = httpx.get(f"{server.url}/metrics", timeout=10)
        assert r.status_code == 200 and "nightwatch_frames_total" in r.text
        assert httpx.get(f"{server.url}/api/health", timeout=10).json()["site"] == "lab"
        assert httpx.get(f"{server.url}/api/config", timeout=10).status_code == 401  # only those two
    finally:
        server.stop()


def test_monitoring_list_that_does_not_match_gets_401(config_path):
    server = _serve(config_path, monitoring=["192.0.2.7"])
    try:
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 401
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "attacker"])
def test_foreign_host_header_is_refused(client, auth_headers, host):
    for path in ("/", "/api/health", "/api/config"):
        r = client.get(path, headers={**auth_headers, "Host": host})
        assert r.status_code == 400, (host, path, r.status_code)
        assert "api.allowed_hosts" in r.json()["detail"]


def test_default_host_names_are_accepted(client):
    import socket

    for host in ("127.0.0.1", "localhost", "localhost:8080", "[::1]:8080", socket.gethostname()):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host


def test_configured_host_names_are_accepted(config_path):
    server = _serve(config_path, allowed_hosts=["nvr1.example"])
    try:
        ok = httpx.get(f"{server.url}/api/health", headers={"Host": f"nvr1.example:{server.port}"}, timeout=10)
        assert ok.status_code == 200
        bad = httpx.get(f"{server.url}/api/health", headers={"Host": "nvr2.example"}, timeout=10)
        assert bad.status_code == 400
        assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200  # 127.0.0.1 always
    finally:
        server.stop()


def test_page_forbids_framing_and_foreign_scripts(client):
    r = client.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "script-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in client.get("/static/app.js").headers["content-security-policy"]


# ---------------------------------------------------------------- path settings and api.path_roots


def _put(client, headers, mutate):
    data = client.get("/api/config", headers=headers).json()
    mutate(data)
    return client.put("/api/config", json=data, headers=headers)


@pytest.mark.parametrize(
    "key, mutate",
    [
        ("cameras.0.source.file", lambda d: d["cameras"][0]["source"].update(file="/etc/cron.d/job")),
        ("publish.local.dir", lambda d: d["publish"].update(local={"dir": "/etc/cron.d"})),
        ("state_dir", lambda d: d.update(state_dir="/etc/cron.d")),
        ("models.dir", lambda d: d["models"].update(dir="/tmp/../etc")),
    ],
)
def test_path_settings_cannot_leave_the_roots(client, auth_headers, config_path, key, mutate):
    before = config_path.read_bytes()
    r = _put(client, auth_headers, mutate)
    assert r.status_code == 422, r.text
    assert [e["key"] for e in r.json()["detail"]] == [key]
    assert "api.path_roots" in r.json()["detail"][0]["msg"]
    assert config_path.read_bytes() == before


def test_existing_and_missing_files_get_the_same_answer(client, auth_headers, tmp_path):
    existing = tmp_path / "real.onnx"
    existing.write_bytes(b"not a model")
    answers = []
    for target in (existing, tmp_path / "missing.onnx", "/etc/passwd", "/nonexistent/x.onnx"):
        r = client.patch(
            "/api/cameras/door",
            json={"faces": {"detector": "yunet", "yunet_model": str(target)}},
            headers=auth_headers,
        )
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert [e["key"] for e in detail] == ["faces.yunet_model"]
        answers.append(detail[0]["msg"])
    assert len(set(answers)) == 1, answers
    assert "missing" not in answers[0] and "exist" not in answers[0]


def test_paths_inside_a_root_are_accepted_and_symlinks_out_are_not(tmp_path, password_hash):
    from agent_impl import PASSWORD, write_config
    from fastapi.testclient import TestClient

    from edge_agent.api.app import create_app

    media = tmp_path / "media"
    media.mkdir()
    (media / "escape").symlink_to("/etc")
    path = tmp_path / "agent.yaml"
    write_config(path, password_hash)
    data = yaml.safe_load(path.read_text())
    data["api"]["path_roots"] = [str(media)]
    path.write_text(yaml.safe_dump(data))
    store = ConfigStore(path)
    with TestClient(create_app(store, LabAgent(store.config)), base_url="http://127.0.0.1") as c:
        token = c.post("/api/auth/login", json={"password": PASSWORD}).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        ok = c.patch("/api/cameras/door", json={"source": {"file": str(media / "new.mp4")}}, headers=h)
        assert ok.status_code == 200, ok.text
        assert ConfigStore(path).config.camera("door").source.file == media / "new.mp4"
        out = c.patch("/api/cameras/door", json={"source": {"file": str(media / "escape" / "x")}}, headers=h)
        assert out.status_code == 422 and out.json()["detail"][0]["key"] == "source.file"
        # the roots themselves are the installer's: not changeable through the API
        r = _put(c, h, lambda d: d["api"].update(path_roots=["/"]))
        assert r.status_code == 422 and r.json()["detail"][0]["key"] == "api.path_roots"
