"""The per-camera loop: latest-frame slot -> motion gate -> jobs for the worker.

Runs in its own thread and never waits for inference: a motion frame becomes a Job put into the
shared bounded JobQueue (which coalesces or drops when the worker is behind). Motion OFF->ON opens
an event (phase 'new'); while motion lasts an 'update' (of a frame where something moved) goes out
at most every snapshots.interval_s (and at most snapshots.max_events_per_minute); motion ON->OFF queues the
event's end. The parts (capture thread, slot, gate, queue, publisher) are passed in.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edge_agent.config.schema import CameraConfig
from edge_agent.enhance.face_fusion import recent_regions
from edge_agent.media import encode_jpeg
from edge_agent.pipeline.jobs import EndJob, JobQueue
from edge_agent.pipeline.stats import CameraStats
from edge_agent.publish.base import Publisher
from edge_agent.records import Frame, Job, MotionResult, new_event_id

log = logging.getLogger(__name__)


class LatestSnapshots(Mapping):
    """camera -> {"original": jpeg | None, "enhanced": jpeg | None}, for the API.

    Keeps references to the latest arrays and encodes a JPEG only when asked (and only once per
    new image), so the capture path pays nothing for it.
    """

    def __init__(self, cameras: list[str], quality: Callable[[str], int] | int = 90):
        self._quality = quality
        self._lock = threading.Lock()
        self._arrays: dict[str, dict[str, np.ndarray | None]] = {
            c: {"original": None, "enhanced": None} for c in cameras
        }
        self._cache: dict[tuple[str, str], tuple[int, bytes]] = {}

    def set(self, camera: str, kind: str, image: np.ndarray | None) -> None:
        with self._lock:
            self._arrays.setdefault(camera, {"original": None, "enhanced": None})[kind] = image

    def _encode(self, camera: str, kind: str, image: np.ndarray | None) -> bytes | None:
        if image is None:
            return None
        key = (camera, kind)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == id(image):
            return cached[1]
        q = self._quality(camera) if callable(self._quality) else self._quality
        data = encode_jpeg(image, q)
        self._cache[key] = (id(image), data)
        return data

    def __getitem__(self, camera: str) -> dict[str, bytes | None]:
        with self._lock:
            arrays = dict(self._arrays[camera])
        return {kind: self._encode(camera, kind, img) for kind, img in arrays.items()}

    def __iter__(self):
        return iter(list(self._arrays))

    def __len__(self) -> int:
        return len(self._arrays)


class CameraLoop:
    """One camera's gate loop. `capture` is the running capture thread (for `finished`)."""

    def __init__(
        self,
        name: str,
        get_camera_cfg: Callable[[], CameraConfig],
        capture: Any,
        slot: Any,
        gate: Any,
        jobs: JobQueue,
        publisher: Publisher,
        stats: CameraStats,
        snapshots: LatestSnapshots | None,
        stop: threading.Event,
        health: Any = None,
    ):
        self.name = name
        self.health = health  # HealthMonitor (edge_agent/health): day/night switch, tamper, frozen
        self.get_camera_cfg = get_camera_cfg
        self.capture = capture
        self.slot = slot
        self.gate = gate
        self.jobs = jobs
        self.publisher = publisher
        self.stats = stats
        self.snapshots = snapshots
        self.stop = stop
        self.finished = False  # the source ended (a non-looping file) and every frame was gated
        self._thread = threading.Thread(target=self.run, name=f"camera-{name}", daemon=True)
        self._event_id: str | None = None
        self._event_started = 0.0
        self._last_job_ts = 0.0
        self._last_frame_ts = 0.0
        self._last_seq = 0
        self._recent_jobs: collections.deque[float] = collections.deque()
        # per earlier frame, its moving parts, for the face fusion of the next job (faces.fuse_frames)
        self._recent_regions: collections.deque[tuple] = collections.deque()

    # ------------------------------------------------------------------ thread
    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _source_done(self) -> bool:
        return bool(getattr(self.capture, "finished", False)) or not self.capture.is_alive()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                frame = self.slot.get(timeout=0.2)
                if frame is None:
                    if self._source_done():
                        # a last frame may have landed between get() and the check
                        frame = self.slot.get(timeout=0.05)
                        if frame is None:
                            self.finished = bool(getattr(self.capture, "finished", False))
                            break
                    else:
                        continue
                self.handle(frame)
        except Exception:
            log.exception("camera %s: gate loop crashed", self.name)
            self.stats.inc("errors")
        finally:
            # the source ended or the agent stops: close an open event
            self._close_event(self._last_frame_ts or time.time())

    # ------------------------------------------------------------------ one frame
    def handle(self, frame: Frame) -> MotionResult:
        self._last_frame_ts = frame.ts
        self._last_seq = frame.seq
        if self.snapshots is not None:
            self.snapshots.set(self.name, "original", frame.image)
        t = time.perf_counter()
        if self.health is not None and self._safe(self.health.before_gate, frame.image, frame.ts):
            self.gate.rebaseline()  # a day/night (IR cut) switch: never motion
        m: MotionResult = self.gate.update(frame.image, frame.ts)
        self.stats.observe_ms("motion", (time.perf_counter() - t) * 1000.0)
        if self.health is not None:
            self._safe(self.health.observe, frame.image, self.gate.small, frame.ts)
        if m.relit:
            self.stats.inc("relights")
        if m.started:
            self._close_event(frame.ts)  # defensive: a gate never starts twice without an end
            self._event_id = new_event_id(self.name, frame.ts)
            self._event_started = frame.ts
            self.stats.inc("motion_events")
            self.stats.set_state(motion=True)
            self._safe(self.publisher.publish_motion, self.name, True)
            self._enqueue(frame, m, "new")
        elif m.active and m.boxes and self._event_id is not None and not m.ended:
            # an update shows something that moves: a still frame inside the event (the gate holds
            # the event through short pauses) has no region to search for faces
            snaps = self.get_camera_cfg().snapshots
            if frame.ts - self._last_job_ts >= snaps.interval_s and self._allowed(frame.ts, snaps):
                self._enqueue(frame, m, "update")
        self._remember(frame, m)  # after the job: what it fuses are the frames before this one
        if m.ended:
            self._close_event(frame.ts)
        return m

    def _allowed(self, now: float, snaps) -> bool:
        while self._recent_jobs and now - self._recent_jobs[0] > 60.0:
            self._recent_jobs.popleft()
        if len(self._recent_jobs) >= snaps.max_events_per_minute:
            self.stats.inc("snapshots_limited")
            return False
        return True

    def _remember(self, frame: Frame, m: MotionResult) -> None:
        """Keep copies of this frame's moving parts (where faces are searched) for the face fusion of
        a later job: the last faces.fuse_frames - 1 frames where something moved (none when off)."""
        cam = self.get_camera_cfg()
        faces = cam.faces
        keep = faces.fuse_frames - 1 if faces.enabled and faces.max_faces > 0 else 0
        if keep <= 0:
            self._recent_regions.clear()
            return
        # what no job can fuse any more is let go (after motion stops nothing stays behind)
        while self._recent_regions and frame.ts - self._recent_regions[0][0].ts > faces.fuse_max_gap_s:
            self._recent_regions.popleft()
        if self._event_id is not None and frame.ts < self._last_job_ts + cam.snapshots.interval_s - faces.fuse_max_gap_s:
            self._recent_regions.clear()  # inside an event the next update comes interval_s after the
            return  # last one: these frames are too early to be fused into it
        regions = recent_regions(frame.image, m.boxes, frame.ts, faces)
        if regions:
            self._recent_regions.append(regions)
            while len(self._recent_regions) > keep:
                self._recent_regions.popleft()

    def _enqueue(self, frame: Frame, m: MotionResult, phase: str) -> None:
        self._last_job_ts = frame.ts
        self._recent_jobs.append(frame.ts)
        recent = tuple(r for regions in self._recent_regions for r in regions)
        self.jobs.put(Job(event_id=self._event_id, camera=self.name, frame=frame, motion=m, phase=phase,
                          recent=recent))

    def _close_event(self, ts: float) -> None:
        if self._event_id is None:
            return
        self.jobs.put(EndJob(self._event_id, self.name, self._event_started, ts, self._last_seq))
        self._event_id = None
        self.stats.set_state(motion=False)
        self._safe(self.publisher.publish_motion, self.name, False)

    def _safe(self, fn, *args) -> Any:
        try:
            return fn(*args)
        except Exception:
            log.exception("camera %s: call %s failed", self.name, getattr(fn, "__name__", fn))
            self.stats.inc("errors")
