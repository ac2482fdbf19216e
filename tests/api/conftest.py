from __future__ import annotations

import pytest
from agent_impl import PASSWORD, LabAgent, RealAgent, write_config
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


def pytest_generate_tests(metafunc):
    """A module that sets AGENT_KINDS runs its tests with each: the stand-in (lab) and the real
    Agent (built, never started), so the API's contract is the real agent's."""
    if "agent_kind" in metafunc.fixturenames:
        metafunc.parametrize("agent_kind", getattr(metafunc.module, "AGENT_KINDS", ("lab",)))


@pytest.fixture(scope="session")
def real_stages(repo_root):
    from edge_agent.builders import build_stages
    from edge_agent.config.loader import parse_config

    models = repo_root / "models"
    if not (models / "manifest.yaml").is_file():
        pytest.skip("the real agent needs the shipped models/")
    cfg = parse_config(f"cameras: [{{name: c, source: {{file: x.mp4}}}}]\nmodels: {{dir: '{models}'}}\n")
    return build_stages(cfg)


@pytest.fixture
def agent(request, store, agent_kind, tmp_path, monkeypatch):
    if agent_kind == "lab":
        return LabAgent(store.config)
    monkeypatch.chdir(tmp_path)  # the spool and state folders of the config are relative
    return RealAgent(store.config, request.getfixturevalue("real_stages"), store)


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
