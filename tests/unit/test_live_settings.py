from __future__ import annotations

import pytest
import yaml

from edge_agent.config.loader import ConfigError, parse_config
from edge_agent.config.store import ConfigStore
from edge_agent.live_settings import apply_setting, with_setting

TEXT = """
site: lab
cameras:
  - name: door
    source: {file: clip.avi}
publish:
  sink: mqtt
  mqtt: {host: broker, password: s3cret}
"""


class RecordingAgent:
    def __init__(self, cfg, fail: bool = False):
        self.config = cfg
        self.applied = []
        self.fail = fail

    def apply_config(self, new):
        if self.fail:
            raise ConfigError("live config", ["cameras.0.faces: detector cannot be built"])
        self.applied.append(new)
        self.config = new
        return []


def test_with_setting_changes_only_that_key():
    cfg = parse_config(TEXT)
    new = with_setting(cfg, "door", "low_light_ratio", 8.0)
    assert new.camera("door").low_light.ratio == 8.0
    assert new.publish.mqtt.password.get_secret_value() == "s3cret"
    assert with_setting(cfg, "door", "face_sr", False).camera("door").faces.super_resolve is False


def test_with_setting_refuses_unknown_camera_and_out_of_range():
    cfg = parse_config(TEXT)
    with pytest.raises(ConfigError, match="no camera"):
        with_setting(cfg, "yard", "low_light_ratio", 3.0)
    with pytest.raises(ConfigError, match="ratio"):
        with_setting(cfg, "door", "low_light_ratio", 99.0)


def test_apply_setting_applies_live_and_saves(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(TEXT)
    store = ConfigStore(path)
    agent = RecordingAgent(store.config)
    assert apply_setting(agent, store, "door", "motion_sensitivity", 0.8).error is None
    assert agent.config.camera("door").motion.sensitivity == 0.8
    assert path.read_text() == TEXT  # saved to the box's overlay, not the base
    on_disk = yaml.safe_load(store.overlay_path.read_text())
    assert on_disk == {"cameras": [{"name": "door", "motion": {"sensitivity": 0.8}}]}
    assert ConfigStore(path).config.publish.mqtt.password.get_secret_value() == "s3cret"


def test_apply_setting_refused_by_agent_leaves_file_untouched(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(TEXT)
    before = path.read_bytes()
    store = ConfigStore(path)
    error = apply_setting(RecordingAgent(store.config, fail=True), store, "door", "face_sr", True).error
    assert error and "faces" in error
    assert path.read_bytes() == before
