"""The login throttle keys on the real peer: X-Forwarded-For is ignored unless the peer is one of
api.trusted_proxies (a real uvicorn server, as the agent runs it)."""

from __future__ import annotations

import logging

import httpx
import pytest
import yaml
from agent_impl import LabAgent

from edge_agent.api.server import start_api_server
from edge_agent.config.store import ConfigStore


def _wrong_logins(url: str, n: int) -> list[int]:
    codes = []
    for i in range(n):
        r = httpx.post(
            f"{url}/api/auth/login",
            json={"password": "not-the-password"},
            headers={"X-Forwarded-For": f"203.0.113.{i + 1}", "X-Real-IP": f"198.51.100.{i + 1}"},
            timeout=10,
        )
        codes.append(r.status_code)
    return codes


def test_forged_forwarded_for_does_not_bypass_the_throttle(store, caplog):
    server = start_api_server(LabAgent(store.config), store)
    try:
        with caplog.at_level(logging.WARNING, logger="edge_agent.api.routes.auth"):
            codes = _wrong_logins(server.url, 8)
    finally:
        server.stop()
    assert 429 in codes, codes
    assert codes[:3] == [401, 401, 401]
    failed = [r.getMessage() for r in caplog.records if "failed API login" in r.getMessage()]
    assert failed and all("from 127.0.0.1 " in m for m in failed), failed
    assert not any("203.0.113." in r.getMessage() for r in caplog.records)


def test_trusted_proxy_forwards_the_client_address(config_path, caplog):
    data = yaml.safe_load(config_path.read_text())
    data["api"]["trusted_proxies"] = ["127.0.0.1"]
    config_path.write_text(yaml.safe_dump(data))
    store = ConfigStore(config_path)
    assert store.config.api.trusted_proxies == ["127.0.0.1"]
    server = start_api_server(LabAgent(store.config), store)
    try:
        with caplog.at_level(logging.WARNING, logger="edge_agent.api.routes.auth"):
            codes = _wrong_logins(server.url, 8)  # 8 different clients behind the proxy
    finally:
        server.stop()
    assert codes == [401] * 8
    failed = [r.getMessage() for r in caplog.records if "failed API login" in r.getMessage()]
    assert any("from 203.0.113.8 " in m for m in failed), failed


@pytest.mark.parametrize("bad", ["not-an-ip", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses(bad):
    from pydantic import ValidationError

    from edge_agent.config.schema import ApiConfig

    with pytest.raises(ValidationError, match="trusted_proxies"):
        ApiConfig(trusted_proxies=[bad])
