"""Composition root: builds every part from a validated AgentConfig and runs them.

Agent(config) loads the models once, builds the publisher, and on start() one capture thread and
one gate loop per enabled camera plus pipeline.workers worker threads around one bounded job
queue. Parts can be passed in instead (publisher=, stages=), which is how tests and embedders
swap them. run.py runs it as `edge-agent run --config FILE`.

Relative paths in the config (models.dir, publish.local.dir, state_dir, a camera's source.file)
are taken relative to the working directory of the process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from edge_agent.builders import StartupError, build_publisher, build_stages  # noqa: F401  (re-exported)
from edge_agent.config.commands import command_values
from edge_agent.config.live import restart_keys  # noqa: F401  (re-exported)
from edge_agent.config.loader import ConfigError
from edge_agent.config.schema import AgentConfig, CameraConfig
from edge_agent.health.agent_alerts import AgentAlerts
from edge_agent.health.monitor import HealthMonitor
from edge_agent.inference.base import ModelError
from edge_agent.malloc_tuning import release_free_memory
from edge_agent.pipeline.camera import CameraLoop, LatestSnapshots
from edge_agent.pipeline.jobs import JobQueue
from edge_agent.pipeline.restart import RunState
from edge_agent.pipeline.stats import CameraStats
from edge_agent.pipeline.worker import Stages, Worker
from edge_agent.publish.base import Publisher
from edge_agent.publish.commands import CommandOutcome

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- the agent


class _CameraParts:
    def __init__(self, stats: CameraStats, slot: Any, capture: Any, gate: Any, loop: CameraLoop,
                 stop: threading.Event):
        self.stats, self.slot, self.capture, self.gate, self.loop = stats, slot, capture, gate, loop
        self.stop = stop  # this camera's own stop (a camera switched off live); the agent's stop sets it too

    def start(self) -> None:
        self.loop.start()
        self.capture.start()

    def halt(self, timeout: float = 10.0) -> None:
        """Stop capture and the loop (which closes its open event on the way out) and wait for both."""
        self.stop.set()
        self.slot.close()
        if self.capture.is_alive():
            self.capture.join(timeout)
        if self.loop.is_alive():
            self.loop.join(timeout)


class Agent:
    """The running agent. Attributes used by the API: config, stats, latest_snapshots,
    apply_config(new) and enhance_image(bgr)."""

    def __init__(
        self, config: AgentConfig, *, publisher: Publisher | None = None, stages: Stages | None = None,
        store: Any = None,
    ):
        self.config = config
        self.store = store  # ConfigStore: live settings from MQTT commands are saved through it
        self._running_config = config  # what the parts were built from (restart-only keys)
        self.stages = stages if stages is not None else build_stages(config)
        self.publisher: Publisher = publisher if publisher is not None else build_publisher(config, self._on_command)
        cameras = [c for c in config.cameras if c.enabled]
        self.stats: dict[str, CameraStats] = {c.name: CameraStats(c.name) for c in config.cameras}
        self.latest_snapshots = LatestSnapshots([c.name for c in config.cameras], self._jpeg_quality)
        self.jobs = JobQueue(config.pipeline.queue_size, self.stats)
        self.run_state = RunState(config.state_dir)  # marker + open events (pipeline/restart.py)
        self.worker = Worker(self.jobs, self.stages, self.publisher, self.stats, lambda: self.config,
                             self._on_event, self.run_state.open_events)
        self.agent_alerts = AgentAlerts(self.publisher.publish_alert)  # site level: models, spool
        self._stop_capture = threading.Event()
        self._stop_workers = threading.Event()
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._started = False
        self._cameras: dict[str, _CameraParts] = {}
        self._cameras_lock = threading.RLock()  # a camera switched on or off live vs stop()
        self._worker_threads: list[threading.Thread] = []
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        for cam in cameras:
            self._cameras[cam.name] = self._build_camera(cam)

    def _build_camera(self, cam: CameraConfig) -> _CameraParts:
        from edge_agent.capture.reader import CaptureThread
        from edge_agent.capture.slot import LatestFrameSlot
        from edge_agent.motion.gate import MotionGate

        stats = self.stats[cam.name]
        slot = LatestFrameSlot(stats)
        stop = threading.Event()
        capture = CaptureThread(cam, slot, stats, stop)
        gate = MotionGate(cam.motion)
        health = HealthMonitor(
            cam.name, lambda name=cam.name: self._camera_cfg(name).health, self.publisher.publish_alert, stats
        )
        loop = CameraLoop(
            cam.name,
            lambda name=cam.name: self._camera_cfg(name),
            capture,
            slot,
            gate,
            self.jobs,
            self.publisher,
            stats,
            self.latest_snapshots,
            stop,
            health=health,
        )
        return _CameraParts(stats, slot, capture, gate, loop, stop)

    # ------------------------------------------------------------------ config access
    def _camera_cfg(self, name: str) -> CameraConfig:
        try:
            return self.config.camera(name)
        except KeyError:
            return self._running_config.camera(name)

    def _jpeg_quality(self, camera: str) -> int:
        try:
            return self._camera_cfg(camera).snapshots.jpeg_quality
        except KeyError:
            return 90

    def _on_command(self, camera: str, key: str, value: Any) -> CommandOutcome:
        from edge_agent.live_settings import apply_setting

        return apply_setting(self, self.store, camera, key, value)

    def _on_event(self, event) -> None:
        self.agent_alerts.observe_event(event)
        if event.phase != "end":
            self.latest_snapshots.set(event.camera, "enhanced", event.enhanced)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._started:
            raise RuntimeError("agent already started")
        unclean = self.run_state.begin()  # StateDirError before anything started
        self._started = True
        self.publisher.start()
        for stage, error in self.stages.unavailable.items():
            self.agent_alerts.model_unavailable(stage, error)
        closed = self.run_state.close_leftovers(self.worker.publish_event)  # before new events flow
        if unclean is not None:
            self.agent_alerts.agent_restarted(closed, unclean)
        for i in range(self.config.pipeline.workers):
            t = threading.Thread(target=self.worker.run, args=(self._stop_workers,), name=f"worker-{i}", daemon=True)
            t.start()
            self._worker_threads.append(t)
        for parts in self._cameras.values():
            parts.start()
        self._supervisor.start()
        self._publish_settings()
        log.info(
            "agent started: site %s, %d camera(s), %d worker(s), sink %s",
            self.config.site,
            len(self._cameras),
            len(self._worker_threads),
            self.config.publish.sink,
        )

    def finished(self) -> bool:
        """Every camera is a finished (non-looping) file and every job was processed."""
        with self._cameras_lock:
            loops = [p.loop for p in self._cameras.values()]
        # no running camera (all switched off) is not the end of the clips: it waits to be switched on
        return bool(loops) and all(lp.finished and not lp.is_alive() for lp in loops) and self.jobs.idle()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished() or stop(); True if so, False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._stopped.is_set() or self.finished()):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._stopped.wait(0.1 if left is None else min(0.1, left))
        return True

    def stop(self) -> None:
        """Stop capture, close open events, drain the queue, flush and close the publisher."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._stop_capture.set()
            with self._cameras_lock:
                cameras = list(self._cameras.values())
            for parts in cameras:
                parts.stop.set()
                parts.slot.close()
            for parts in cameras:
                parts.halt()
            if self._started and not self.jobs.wait_idle(DRAIN_TIMEOUT_S):
                log.warning("stopping with jobs still queued after %.0f s", DRAIN_TIMEOUT_S)
            self._stop_workers.set()
            self.jobs.close()
            for t in self._worker_threads:
                t.join(DRAIN_TIMEOUT_S)
            if self._started:
                if self._supervisor.is_alive():  # its stats must not land after the final ones
                    self._supervisor.join(10.0)
                self._publish_stats()
                try:
                    self.publisher.close()
                except Exception:
                    log.exception("closing the publisher failed")
                self.run_state.end()  # a clean stop: no 'running' marker left
            self._stopped.set()
            log.info("agent stopped")

    # ------------------------------------------------------------------ periodic work
    def _publish_stats(self) -> None:
        for name, st in self.stats.items():
            try:
                self.publisher.publish_stats(name, st.snapshot())
            except Exception:
                log.exception("publishing stats of camera %s failed", name)

    def _supervise(self) -> None:
        """Stats every pipeline.stats_interval_s; health ticks (stream lost/back, drops, spool)."""
        last_stats = time.monotonic()
        while not self._stop_capture.wait(0.5):
            try:
                with self._cameras_lock:
                    cameras = list(self._cameras.values())
                for parts in cameras:
                    if getattr(parts.capture, "finished", False):
                        continue  # a clip that reached its end is finished, not lost
                    parts.loop.health.tick(time.time(), bool(parts.stats.state.get("connected")))
                self.agent_alerts.check_spool_status(self.publisher.spool_status())
            except Exception:
                log.exception("health checks failed")
            release_free_memory()  # the holes the cameras' freed frames left (edge_agent/malloc_tuning.py)
            if time.monotonic() - last_stats >= self.config.pipeline.stats_interval_s:
                last_stats = time.monotonic()
                self._publish_stats()

    # ------------------------------------------------------------------ for the API
    def apply_config(self, new: AgentConfig) -> list[str]:
        """Apply what config/live.py's table calls live (motion, low light, faces, snapshots,
        health, cameras switched on or off, log level) and return the changed keys that only take
        effect after a restart (cameras by name). Raises ConfigError (nothing applied) if a live part
        cannot be built from the new config."""
        problems = []
        if self.stages.face_detector is not None:
            for cam in new.cameras:
                if cam.enabled and cam.faces.enabled:
                    try:
                        self.stages.face_detector(cam.faces)
                    except (ModelError, OSError, ValueError) as exc:
                        problems.append(f"cameras.{cam.name}.faces: {exc}")
        if problems:
            raise ConfigError("live config", problems)
        pending = restart_keys(self._running_config, new)
        self.config = new
        self._switch_cameras(new)
        with self._cameras_lock:
            for name, parts in self._cameras.items():
                try:
                    parts.gate.reconfigure(new.camera(name).motion)
                except KeyError:
                    continue
        logging.getLogger().setLevel(new.logging.level)
        self._publish_settings()
        if pending:
            log.info("config applied; these keys take effect after a restart: %s", ", ".join(pending))
        return pending

    def _switch_cameras(self, new: AgentConfig) -> None:
        """Stop the cameras new switches off and start those it switches on (cameras of the running
        config only: adding one needs a restart; a restarted camera keeps the source it started with)."""
        with self._cameras_lock:
            for running in self._running_config.cameras:
                try:
                    cam = new.camera(running.name)
                except KeyError:
                    continue
                parts = self._cameras.get(cam.name)
                if parts is not None and not cam.enabled:
                    del self._cameras[cam.name]
                    if self._started:
                        parts.halt()
                    log.info("camera %s switched off", cam.name)
                elif parts is None and cam.enabled and not self._stop_capture.is_set():
                    parts = self._build_camera(cam.model_copy(update={"source": running.source}))
                    self._cameras[cam.name] = parts
                    if self._started:
                        parts.start()
                    log.info("camera %s switched on", cam.name)

    def camera_running(self, name: str) -> bool:
        """The camera's capture and loop are running (not switched off, not stopped)."""
        with self._cameras_lock:
            parts = self._cameras.get(name)
        return parts is not None and parts.loop.is_alive()

    def _publish_settings(self) -> None:
        """The current value of every live command setting, per camera (MQTT retained state topics)."""
        for cam in self.config.cameras:
            try:
                self.publisher.publish_settings(cam.name, command_values(cam))
            except Exception:
                log.exception("publishing the settings of camera %s failed", cam.name)

    def site_alerts(self) -> list[dict[str, Any]]:
        """Open site-level alerts (model failed, spool nearly full or dropping)."""
        return self.agent_alerts.active()

    def model_info(self) -> list:
        """ModelInfo of every loaded model (name, version, backend, precision)."""
        return list(self.stages.models.values())

    def enhance_image(self, bgr: np.ndarray, ratio: float | None = None) -> np.ndarray:
        """Low-light enhance one image (the web page's 'try enhancement' upload), with the first
        camera's low-light settings."""
        if self.stages.low_light is None:
            raise StartupError("no low-light model is loaded")
        cam = self.config.cameras[0]
        with self.stages.low_light_lock:
            return self.stages.low_light.enhance(bgr, cam.low_light.ratio if ratio is None else ratio,
                                                 max_pixels=cam.low_light.max_pixels,
                                                 model_pixels=cam.low_light.model_pixels,
                                                 gray_saturation=cam.health.ir_gray_saturation)
