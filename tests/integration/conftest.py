"""Fixtures shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def models_dir(repo_root, tmp_path_factory) -> Path:
    """The shipped models/ when its manifest exists, else tiny real ONNX/OpenVINO models built once."""
    shipped = repo_root / "models"
    if (shipped / "manifest.yaml").is_file():
        return shipped
    from fixtures.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny"))
