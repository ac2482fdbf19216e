"""The MQTT live commands (live_settings.apply_setting) save to the box's overlay, never the base."""

from __future__ import annotations

import yaml

from edge_agent.config.loader import load_config
from edge_agent.config.store import ConfigStore
from edge_agent.live_settings import apply_setting
from edge_agent.motion.gate import MotionGate

BASE = """\
site: lab
cameras:
  - name: door
    source: {file: door.avi}
    motion: {sensitivity: 0.3}
  - name: yard
    source: {file: yard.avi}
publish:
  sink: mqtt
  mqtt: {host: broker, password: s3cret}
"""


class GateAgent:
    """The part of the agent a live command reaches: its config and a real MotionGate per camera."""

    def __init__(self, cfg):
        self.config = cfg
        self.gates = {c.name: MotionGate(c.motion) for c in cfg.cameras}

    def apply_config(self, new):
        for cam in new.cameras:
            self.gates[cam.name].reconfigure(cam.motion)
        self.config = new
        return []


def test_live_commands_write_the_overlay_and_leave_the_base_alone(tmp_path):
    base = tmp_path / "agent.yaml"
    base.write_text(BASE)
    store = ConfigStore(base)
    agent = GateAgent(store.config)

    assert apply_setting(agent, store, "yard", "motion_sensitivity", 0.8).error is None
    assert apply_setting(agent, store, "door", "face_sr", False).error is None
    assert apply_setting(agent, store, "door", "low_light_ratio", 6.0).error is None

    assert base.read_text() == BASE  # the installer's file, byte for byte
    assert yaml.safe_load(store.overlay_path.read_text()) == {
        "cameras": [
            {"name": "door", "low_light": {"ratio": 6.0}, "faces": {"super_resolve": False}},
            {"name": "yard", "motion": {"sensitivity": 0.8}},
        ]
    }
    assert "s3cret" not in store.overlay_path.read_text()
    assert agent.gates["yard"].cfg.sensitivity == 0.8  # applied live
    restarted = load_config(base)  # what the next start runs on
    assert restarted.camera("yard").motion.sensitivity == 0.8
    assert restarted.camera("door").motion.sensitivity == 0.3  # the base's own value stays

    # setting a key back to the base's value removes it from the overlay
    assert apply_setting(agent, store, "yard", "motion_sensitivity", 0.5).error is None
    assert [c["name"] for c in yaml.safe_load(store.overlay_path.read_text())["cameras"]] == ["door"]


def test_a_refused_live_command_writes_nothing(tmp_path):
    base = tmp_path / "agent.yaml"
    base.write_text(BASE)
    store = ConfigStore(base)
    error = apply_setting(GateAgent(store.config), store, "door", "motion_sensitivity", 7).error
    assert error and "sensitivity" in error
    assert not store.overlay_path.exists() and base.read_text() == BASE
