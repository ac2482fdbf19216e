"""A live-tuning command over a real Mosquitto reaches live_settings and is saved to the box's
overlay (agent.local.yaml); the installer's base file is never rewritten."""

from __future__ import annotations

import json

import pytest
import yaml
from mosquitto import Mosquitto, Sniffer, require_mosquitto, wait_for

from edge_agent.config.loader import load_config
from edge_agent.config.schema import MqttConfig
from edge_agent.config.store import ConfigStore
from edge_agent.live_settings import apply_setting
from edge_agent.motion.gate import MotionGate
from edge_agent.publish.commands import CommandRouter
from edge_agent.publish.mqtt import MqttPublisher
from edge_agent.publish.topics import Topics

TOPICS = "nightwatch/site1"
BASE = """\
site: site1
cameras:
  - name: cam1
    source: {file: cam1.avi}
  - name: cam2
    source: {file: cam2.avi}
"""


class GateAgent:
    def __init__(self, cfg):
        self.config = cfg
        self.gates = {c.name: MotionGate(c.motion) for c in cfg.cameras}

    def apply_config(self, new):
        for cam in new.cameras:
            self.gates[cam.name].reconfigure(cam.motion)
        self.config = new
        return []


@pytest.mark.slow
def test_mqtt_set_command_is_saved_to_the_overlay_not_the_base(tmp_path):
    require_mosquitto()
    base = tmp_path / "agent.yaml"
    base.write_text(BASE)
    store = ConfigStore(base)
    agent = GateAgent(store.config)
    with Mosquitto(tmp_path) as broker:
        sniffer = Sniffer(broker.port, "#")
        cfg = MqttConfig(port=broker.port, spool_dir=tmp_path / "spool", home_assistant_discovery=False)
        router = CommandRouter(Topics(cfg.prefix, "site1"), ["cam1", "cam2"],
                               lambda camera, key, value: apply_setting(agent, store, camera, key, value))
        pub = MqttPublisher(cfg, "site1", ["cam1", "cam2"], router)
        pub.start()
        try:
            wait_for(lambda: pub.commands_ready, 10, what="subscribed to the command topics")
            sniffer.publish(f"{TOPICS}/cam2/set/motion_sensitivity", "0.8")
            sniffer.publish(f"{TOPICS}/cam1/set/motion_sensitivity", "3")  # out of range: refused
            for cam in ("cam2", "cam1"):
                wait_for(lambda cam=cam: sniffer.payloads(f"{TOPICS}/{cam}/set/motion_sensitivity/result"), 10,
                         what=f"the {cam} result")
            ok = json.loads(sniffer.payloads(f"{TOPICS}/cam2/set/motion_sensitivity/result")[0])
            refused = json.loads(sniffer.payloads(f"{TOPICS}/cam1/set/motion_sensitivity/result")[0])
        finally:
            pub.close()
            sniffer.close()
    assert ok["ok"] is True, ok
    assert refused["ok"] is False and "less than or equal to 1" in refused["error"]
    assert base.read_text() == BASE  # the installer's file, byte for byte
    assert yaml.safe_load(store.overlay_path.read_text()) == {
        "cameras": [{"name": "cam2", "motion": {"sensitivity": 0.8}}]
    }
    assert agent.gates["cam2"].cfg.sensitivity == 0.8
    assert load_config(base).camera("cam2").motion.sensitivity == 0.8  # what the next start runs on
