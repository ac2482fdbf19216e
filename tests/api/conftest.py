from __future__ import annotations

import pytest
from agent_impl import PASSWORD, LabAgent, write_config
from fastapi.testclient import TestClient

from edge_agent.api.app import create_app
from edge_agent.api.auth import hash_password
from edge_agent.config.store import ConfigStore


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def config_path(tmp_path, password_hash):
    path = tmp_path / "agent.yaml"
    write_config(path, password_hash)
    return path


@pytest.fixture
def store(config_path) -> ConfigStore:
    return ConfigStore(config_path)


@pytest.fixture
def agent(store) -> LabAgent:
    return LabAgent(store.config)


@pytest.fixture
def app(store, agent):
    return create_app(store, agent)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def auth_headers(client) -> dict[str, str]:
    r = client.post("/api/auth/login", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
