"""Builders of the agent's parts from a validated AgentConfig: the enhancement stages (models loaded
once) and the publisher. Used by the composition root (app.py)."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from edge_agent.config.schema import AgentConfig
from edge_agent.inference.base import ModelError
from edge_agent.pipeline.worker import Stages
from edge_agent.publish.base import Publisher

if TYPE_CHECKING:
    from edge_agent.publish.commands import CommandHandler

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The agent cannot start with this config (a part it names is unavailable)."""



# inference.backend "auto", per stage: ONNX Runtime (no memory arena) for every model. OpenVINO
# runs the low-light model about 3x faster (720p: 57 vs 214 ms here) but keeps ~75 MB of buffers
# per input shape and ~40 MB of its own; face crops come in a new size every time (250 crop sizes
# grew an OpenVINO process by 870 MB). With 8 cameras the box's memory budget (500 MB) holds only
# on ONNX Runtime, so OpenVINO is the operator's choice (inference.backend: openvino) for boxes with
# memory to spare; benchmarks/capacity.py measures both.
AUTO_BACKEND = {"low_light": "onnxruntime", "face_sr": "onnxruntime", "face_detect": "onnxruntime"}


def stage_backend(stage: str, configured: str) -> str:
    """The runtime a stage's model loads with: the configured one, or AUTO_BACKEND's choice."""
    return AUTO_BACKEND[stage] if configured == "auto" else configured


def build_stages(cfg: AgentConfig) -> Stages:
    """Load the models once (sha256-verified) and wire the enhancement stages.

    A model that cannot be loaded (missing, corrupt, unloadable) turns its stage off instead of
    stopping the box: events then carry the original images and the agent raises a model_failed
    alert; Stages.unavailable says which and why.
    """
    from edge_agent.enhance.face_cnn import load_face_net
    from edge_agent.enhance.face_sr import FaceSuperResolver
    from edge_agent.enhance.faces import FaceDetector, crop_with_margin
    from edge_agent.enhance.low_light import LowLightEnhancer
    from edge_agent.inference.loader import load_model

    m, inf = cfg.models, cfg.inference
    failed: dict[str, str] = {}
    loaded = {}
    loaded_info = {}
    for stage, name in (("low_light", m.low_light), ("face_sr", m.face_sr)):
        try:
            loaded[stage] = load_model(m.dir, name, stage_backend(stage, inf.backend), m.precision, inf.threads)
        except ModelError as exc:
            log.error("%s model unavailable, stage off (originals are published): %s", stage, exc)
            failed[stage] = str(exc)
    # the CNN face detector is loaded once and shared; if it cannot be (missing/corrupt file) the
    # LBP cascade takes over and model_failed:face_detect is raised
    net, face_backend = None, stage_backend("face_detect", inf.backend)
    if any(c.enabled and c.faces.enabled and c.faces.detector == "cnn" for c in cfg.cameras):
        try:
            net = load_face_net(m.dir, backend=face_backend, threads=inf.threads)
            loaded_info["face_detect"] = net.info
        except ModelError as exc:
            log.error("face detector model unavailable, the LBP cascade takes over: %s", exc)
            failed["face_detect"] = str(exc)
    make_detector = functools.partial(FaceDetector, models_dir=m.dir, net=net, load_error=failed.get("face_detect"),
                                      backend=face_backend, threads=inf.threads)
    # a face detector that cannot be built (e.g. a missing YuNet file) refuses the start
    for cam in cfg.cameras:
        if cam.enabled and cam.faces.enabled:
            make_detector(cam.faces)
    low, sr = loaded.get("low_light"), loaded.get("face_sr")
    return Stages(
        low_light=LowLightEnhancer(low) if low else None,
        face_detector=make_detector,
        crop=crop_with_margin,
        face_sr=FaceSuperResolver(sr) if sr else None,
        models={**{stage: lm.info for stage, lm in loaded.items()}, **loaded_info},
        unavailable=failed,
    )


def build_publisher(cfg: AgentConfig, on_command: CommandHandler | None = None) -> Publisher:
    """The configured sink; for MQTT with a CommandRouter around on_command (the agent's handler
    of the /set commands), so the publisher only carries them."""
    def quality(camera: str) -> int:
        try:
            return cfg.camera(camera).snapshots.jpeg_quality
        except KeyError:
            return 90

    if cfg.publish.sink == "local":
        from edge_agent.publish.local import LocalDirectoryPublisher

        return LocalDirectoryPublisher(cfg.publish.local.dir, jpeg_quality=quality)
    try:
        from edge_agent.publish.commands import CommandRouter
        from edge_agent.publish.mqtt import MqttPublisher
        from edge_agent.publish.topics import Topics
    except ImportError as exc:
        raise StartupError(
            f"publish.sink is 'mqtt' but the MQTT publisher is not available ({exc}); "
            "use publish.sink: local"
        ) from exc
    cameras = [c.name for c in cfg.cameras]
    router = CommandRouter(Topics(cfg.publish.mqtt.prefix, cfg.site), cameras, on_command)
    return MqttPublisher(cfg.publish.mqtt, cfg.site, cameras, router, jpeg_quality=quality)
