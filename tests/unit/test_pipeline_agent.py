"""The Agent as the API sees it: live config changes, restart keys, snapshots, try-enhancement."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge_agent.app import Agent, restart_keys
from edge_agent.config.loader import ConfigError, parse_config
from edge_agent.demo import generate_night_clip


@pytest.fixture(scope="module")
def models_dir(repo_root, tmp_path_factory):
    if (repo_root / "models" / "manifest.yaml").is_file():
        return repo_root / "models"
    from fixtures.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


def config(models_dir, out, clip="clip.avi", **motion):
    data = {
        "site": "lab",
        "cameras": [{"name": "cam", "source": {"file": str(clip)}, "motion": {"threshold": 12, **motion}}],
        "models": {"dir": str(models_dir)},
        "publish": {"local": {"dir": str(out)}},
        "api": {"enabled": False},
        "state_dir": str(Path(out).parent / "state"),
    }
    return parse_config(yaml.safe_dump(data))


def test_apply_config_live_parts_and_restart_keys(tmp_path, models_dir):
    cfg = config(models_dir, tmp_path / "out")
    agent = Agent(cfg)  # not started: no threads, nothing written
    gate = agent._cameras["cam"].gate
    live = config(models_dir, tmp_path / "out", threshold=40, off_delay_s=3.0)
    assert agent.apply_config(live) == []
    assert gate.cfg.threshold == 40 and agent.config is live

    moved = config(models_dir, tmp_path / "elsewhere", clip="other.avi", threshold=40, off_delay_s=3.0)
    keys = agent.apply_config(moved)
    assert keys == ["cameras.cam.source.file", "publish.local.dir"]  # cameras by name, sorted
    assert restart_keys(cfg, cfg) == []

    bad = moved.model_copy(deep=True)
    bad.cameras[0].faces = bad.cameras[0].faces.model_validate({"detector": "yunet", "yunet_model": str(tmp_path / "x.onnx")})
    with pytest.raises(ConfigError, match=r"cameras\.cam\.faces"):
        agent.apply_config(bad)
    assert agent.config is moved  # refused whole: nothing applied
    assert not (tmp_path / "out").exists()


def test_enhance_image_brightens_a_dark_upload(tmp_path, models_dir):
    agent = Agent(config(models_dir, tmp_path / "out"))
    dark = np.full((90, 160, 3), 20, np.uint8)
    out = agent.enhance_image(dark)
    assert out.shape == dark.shape and out.mean() > dark.mean() * 1.3
    assert {m.name for m in agent.model_info()} == {"lowlight", "face_sr", "face_detector"}


def test_running_agent_keeps_latest_snapshots_and_finishes_by_itself(tmp_path, models_dir):
    clip = generate_night_clip(tmp_path / "c.avi", 640, 360, 10.0, 4.0, person=(0.8, 3.0))
    agent = Agent(config(models_dir, tmp_path / "out", clip=clip.path, off_delay_s=0.5))
    assert agent.latest_snapshots["cam"] == {"original": None, "enhanced": None}
    t = time.monotonic()
    agent.start()
    try:
        assert agent.wait(30), "the agent did not finish the clip"
    finally:
        agent.stop()
    assert time.monotonic() - t < 30
    snap = agent.latest_snapshots["cam"]
    original = cv2.imdecode(np.frombuffer(snap["original"], np.uint8), cv2.IMREAD_COLOR)
    enhanced = cv2.imdecode(np.frombuffer(snap["enhanced"], np.uint8), cv2.IMREAD_COLOR)
    assert original.shape == enhanced.shape == (360, 640, 3)
    assert enhanced.mean() > original.mean()
    st = agent.stats["cam"].snapshot()
    assert st["frames"] == clip.frames and st["motion_events"] >= 1 and st["events_published"] >= 2
    assert list((tmp_path / "out").rglob("event-end.json"))
