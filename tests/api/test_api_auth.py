"""Login, tokens with TTL, per-client backoff, and no secret in any response or log."""

from __future__ import annotations

import argparse
import io
import logging

from agent_impl import PASSWORD

from edge_agent.api.auth import LoginThrottle, TokenStore, hash_password, hash_password_cli, verify_password
from edge_agent.api.deps import get_throttle, get_tokens

AGENT_KINDS = ("lab", "real")  # auth settings apply live: the real Agent must say so too


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_hash_roundtrip_and_format():
    h = hash_password("correct horse")
    assert h.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", h)
    assert not verify_password("wrong horse", h)
    assert not verify_password("x", "scrypt$bad")
    assert hash_password("correct horse") != h  # salted


def test_hash_password_cli_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert hash_password_cli(argparse.Namespace(password_stdin=True)) == 0
    out = capsys.readouterr().out.strip()
    assert verify_password("a-long-password", out) and "a-long-password" not in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert hash_password_cli(argparse.Namespace(password_stdin=True)) == 2


def test_token_expires_after_ttl(app, client):
    clock = Clock()
    tokens = TokenStore(clock=clock)
    app.dependency_overrides[get_tokens] = lambda: tokens
    r = client.post("/api/auth/login", json={"password": PASSWORD})
    assert r.status_code == 200
    assert r.json()["expires_in"] == 3600
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/auth", headers=headers).json()["authenticated"] is True
    assert client.patch("/api/cameras/door", json={}, headers=headers).status_code == 200
    clock.t += 3601
    assert client.patch("/api/cameras/door", json={}, headers=headers).status_code == 401
    assert client.get("/api/auth", headers=headers).json()["authenticated"] is False


def test_logout_revokes_the_token(client, auth_headers):
    assert client.post("/api/auth/logout", headers=auth_headers).status_code == 204
    assert client.patch("/api/cameras/door", json={}, headers=auth_headers).status_code == 401


def test_repeated_failed_logins_are_slowed_down_per_client(app, client):
    clock = Clock()
    throttle = LoginThrottle(clock=clock, free_failures=3, base_s=2.0)
    app.dependency_overrides[get_throttle] = lambda: throttle
    for _ in range(3):
        assert client.post("/api/auth/login", json={"password": "guess"}).status_code == 401
    r = client.post("/api/auth/login", json={"password": "guess"})
    assert r.status_code == 401  # the 4th failure starts the backoff
    r = client.post("/api/auth/login", json={"password": PASSWORD})
    assert r.status_code == 429 and r.headers["retry-after"] == "2"  # even the right password waits
    clock.t += 2.1
    assert client.post("/api/auth/login", json={"password": "guess"}).status_code == 401
    r = client.post("/api/auth/login", json={"password": PASSWORD})
    assert r.status_code == 429 and r.headers["retry-after"] == "4"  # doubled
    assert throttle.retry_after("another-client") == 0  # other clients are not affected
    clock.t += 4.1
    assert client.post("/api/auth/login", json={"password": PASSWORD}).status_code == 200
    assert throttle.retry_after("testclient") == 0  # success clears the record


def test_no_secret_in_responses_or_logs(client, caplog, password_hash):
    caplog.set_level(logging.DEBUG)
    bad = client.post("/api/auth/login", json={"password": "wrong-guess-77"})
    good = client.post("/api/auth/login", json={"password": PASSWORD})
    token = good.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    invalid = client.post("/api/auth/login", json={"password": PASSWORD, "extra": 1})
    data = client.get("/api/config", headers=headers).json()
    data["publish"]["mqtt"]["password"] = "fresh-secret-55"
    put = client.put("/api/config", json=data, headers=headers)
    assert put.status_code == 200
    secrets = [
        PASSWORD,
        "wrong-guess-77",
        "fresh-secret-55",
        "mqtt-pass-123",
        "cam-pass-9",
        password_hash,
        token,
    ]
    for r in (bad, invalid, put, client.get("/api/config", headers=headers), client.get("/api/cameras/yard", headers=headers)):
        for s in secrets[:-1]:
            assert s not in r.text
    assert invalid.status_code == 422 and PASSWORD not in invalid.text
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "failed API login" in logged and "config saved" in logged
    for s in secrets:
        assert s not in logged
