"""A small agent for API and browser tests: real CameraStats, a real MotionGate per camera (reconfigured
through apply_config like the real agent does), synthetic JPEG snapshots and a gamma "enhancement"."""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.config.live import restart_keys
from edge_agent.config.loader import dump_config
from edge_agent.config.schema import AgentConfig
from edge_agent.motion.gate import MotionGate
from edge_agent.pipeline.stats import CameraStats
from edge_agent.records import ModelInfo

PASSWORD = "night-owl-42"


def night_frame(width: int = 320, height: int = 180, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(10, 60, width, dtype=np.float32)
    img = np.repeat(np.repeat(x[None, :, None], height, 0), 3, 2)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    cv2.rectangle(img, (width // 3, height // 3), (width // 2, height - 10), (40, 50, 70), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def brighten(bgr: np.ndarray, gamma: float = 0.5) -> np.ndarray:
    lut = (np.linspace(0, 1, 256) ** gamma * 255).astype(np.uint8)
    return cv2.LUT(bgr, lut)


class LabAgent:
    def __init__(self, cfg: AgentConfig):
        self.config = cfg
        self.stats = {c.name: CameraStats(c.name) for c in cfg.cameras}
        self.gates = {c.name: MotionGate(c.motion) for c in cfg.cameras}
        frame = night_frame()
        self.latest_snapshots = {
            c.name: {"original": jpeg(frame), "enhanced": jpeg(brighten(frame))} for c in cfg.cameras
        }
        self.applied: list[AgentConfig] = []

    def model_info(self) -> list[ModelInfo]:
        return [ModelInfo("lowlight", "1.0.0", "onnxruntime", "int8")]

    def apply_config(self, new_cfg: AgentConfig) -> list[str]:
        """What needs a restart is the real agent's answer (config/live.py), never one of its own."""
        restart = restart_keys(self.config, new_cfg)
        for cam in new_cfg.cameras:
            if cam.name in self.gates:
                self.gates[cam.name].reconfigure(cam.motion)
        self.config = new_cfg
        self.applied.append(new_cfg)
        return restart

    def enhance_image(self, bgr: np.ndarray) -> np.ndarray:
        return brighten(bgr)


class RealAgent:
    """The real Agent, built and never started (no threads, no connection), with the two views
    the API tests inspect: `gates` (each running camera's MotionGate) and `applied`."""

    def __new__(cls, cfg: AgentConfig, stages, store=None):
        from edge_agent.app import Agent

        class _Real(Agent):
            def __init__(self) -> None:
                super().__init__(cfg, stages=stages, store=store)
                self.applied: list[AgentConfig] = []

            @property
            def gates(self) -> dict[str, MotionGate]:
                return {name: parts.gate for name, parts in self._cameras.items()}

            def apply_config(self, new_cfg: AgentConfig) -> list[str]:
                pending = super().apply_config(new_cfg)
                self.applied.append(new_cfg)
                return pending

        return _Real()


def write_config(
    path, password_hash: str | None, *, mqtt_password: str = "mqtt-pass-123", url_password: str = "cam-pass-9"
):
    """A two-camera config file with secrets in it (MQTT password, RTSP URL password, API hash)."""
    from edge_agent.config.loader import parse_config

    auth = f"\n  auth:\n    password_hash: '{password_hash}'" if password_hash else ""
    text = f"""
site: lab
cameras:
  - name: door
    source: {{file: door.mp4, loop: true}}
    motion: {{threshold: 25, sensitivity: 0.5}}
  - name: yard
    source: {{url: 'rtsp://viewer:{url_password}@10.0.0.5:554/stream1'}}
publish:
  sink: mqtt
  mqtt: {{host: 127.0.0.1, username: box, password: '{mqtt_password}'}}
api:
  port: 0
  max_body_mb: 1{auth}
"""
    cfg = parse_config(text)
    path.write_text(dump_config(cfg))
    return cfg
