"""The enhancement worker and the bounded job queue that feeds it.

Camera loops put motion frames (Job) and motion ends (EndJob) into one JobQueue; put() never
blocks. When the queue is full the newest frame of a camera replaces that camera's oldest queued
frame (coalesce), or else the oldest queued frame is dropped; both count 'jobs_dropped'. End
markers are tiny and never dropped. Jobs of one camera are handed out one at a time, in order,
so a camera's events are published in order even with several worker threads.

Worker.process(job): [low-light if dark] -> [face detect on the original, the enhanced frame or
both (faces.detect_on; each face records which) -> crop with margin -> face SR] ->
EnhancedEvent -> publisher. Every stage is passed in (Stages); the camera config is read live for
every job. A stage that fails is logged and counted and the event still goes out, with the
original image and the error in event.errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge_agent.config.schema import AgentConfig, CameraConfig, FacesConfig
from edge_agent.enhance.faces import brighten_to_mid, detect_faces
from edge_agent.enhance.tensors import luma
from edge_agent.pipeline.stats import CameraStats
from edge_agent.publish.base import Publisher
from edge_agent.records import EnhancedEvent, FaceResult, Job, ModelInfo

log = logging.getLogger(__name__)


@dataclass(slots=True)
class EndJob:
    """Motion ended: publish the event's 'end' phase (after its queued frames)."""

    event_id: str
    camera: str
    started_at: float
    ended_at: float
    frame_seq: int = 0  # the last frame the camera loop saw


# --------------------------------------------------------------------------- queue


class JobQueue:
    def __init__(self, maxsize: int, stats: Mapping[str, CameraStats] | None = None):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._stats = stats or {}
        self._items: list[Job | EndJob] = []
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._closed = False

    def _count_drop(self, camera: str) -> None:
        st = self._stats.get(camera)
        if st is not None:
            st.inc("jobs_dropped")

    def frames_queued(self) -> int:
        with self._cond:
            return sum(1 for j in self._items if isinstance(j, Job))

    def put(self, job: Job | EndJob) -> None:
        """Never blocks. Returns at once; a dropped or coalesced frame is counted."""
        with self._cond:
            if self._closed:
                self._count_drop(job.camera)
                return
            if isinstance(job, Job):
                frames = [i for i, j in enumerate(self._items) if isinstance(j, Job)]
                if len(frames) >= self.maxsize:
                    same = [i for i in frames if self._items[i].camera == job.camera]
                    if same:
                        i = same[0]
                        old = self._items[i]
                        if old.event_id == job.event_id:
                            if old.phase == "new":
                                job.phase = "new"  # keep the event's start (with the newer frame)
                            self._items[i] = job  # in place: stays ahead of the event's end
                        else:  # an older event's frame: drop it, queue the new one after its end
                            del self._items[i]
                            self._items.append(job)
                        self._count_drop(job.camera)
                        self._cond.notify_all()
                        return
                    old = self._items.pop(frames[0])
                    self._count_drop(old.camera)
            self._items.append(job)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Job | EndJob | None:
        """The oldest job of a camera no other worker is busy with; None on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                for i, job in enumerate(self._items):
                    if job.camera not in self._busy:
                        self._busy.add(job.camera)
                        return self._items.pop(i)
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def done(self, job: Job | EndJob) -> None:
        with self._cond:
            self._busy.discard(job.camera)
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._items and not self._busy

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Wake every waiting get(); queued jobs can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# --------------------------------------------------------------------------- stages


def _bounded(crop: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink a face crop whose long side exceeds max_side (SR cost grows with its area)."""
    h, w = crop.shape[:2]
    if max(h, w) <= max_side:
        return crop
    f = max_side / max(h, w)
    return cv2.resize(crop, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


@dataclass
class Stages:
    """The processing parts, built by the composition root (None = stage not available).

    low_light: has .enhance(bgr, ratio) -> bgr
    face_detector: FacesConfig -> detector with .detect(bgr, regions) -> [(x, y, w, h, score)]
        (regions: normalized motion boxes to search, or None for the whole frame)
    crop: (bgr, box, margin) -> (crop, box)
    face_sr: has .upscale(bgr) -> bgr
    models: stage name ("low_light", "face_sr") -> ModelInfo of the model behind it
    """

    low_light: Any | None = None
    face_detector: Callable[[FacesConfig], Any] | None = None
    crop: Callable[..., tuple[np.ndarray, tuple[int, int, int, int]]] | None = None
    face_sr: Any | None = None
    models: dict[str, ModelInfo] = field(default_factory=dict)
    # stage -> why its model could not be loaded (the stage is off; events say so in `errors`)
    unavailable: dict[str, str] = field(default_factory=dict)
    # one lock per model: a runtime's compiled model is not assumed to be thread-safe
    low_light_lock: threading.Lock = field(default_factory=threading.Lock)
    face_sr_lock: threading.Lock = field(default_factory=threading.Lock)


class Worker:
    """Takes jobs from the queue and publishes enhanced events. Run run() in 1..N threads."""

    def __init__(
        self,
        jobs: JobQueue,
        stages: Stages,
        publisher: Publisher,
        stats: Mapping[str, CameraStats],
        get_config: Callable[[], AgentConfig],
        on_event: Callable[[EnhancedEvent], None] | None = None,
        open_events: Any = None,
    ):
        self.jobs = jobs
        self.stages = stages
        self.publisher = publisher
        self.stats = stats
        self.get_config = get_config
        self.on_event = on_event
        self.open_events = open_events  # OpenEvents (pipeline/open_events.py): survives a crash
        self._lock = threading.Lock()
        self._open: dict[str, float] = {}  # event id -> started_at, once its 'new' phase went out
        self._detectors: dict[str, tuple[FacesConfig, Any]] = {}
        self._last_camera_cfg: dict[str, CameraConfig] = {}

    # ------------------------------------------------------------------ loop
    def run(self, stop: threading.Event) -> None:
        while True:
            job = self.jobs.get(timeout=0.2)
            if job is None:
                if stop.is_set():
                    return
                continue
            try:
                self.handle(job)
            except Exception:  # never let one job kill the worker
                log.exception("worker: job for camera %s failed", job.camera)
                self._stat(job.camera).inc("errors")
            finally:
                self.jobs.done(job)

    def handle(self, job: Job | EndJob) -> EnhancedEvent | None:
        if isinstance(job, EndJob):
            return self._end(job)
        with self._lock:
            started_at = self._open.get(job.event_id)
            if started_at is None:
                # first frame of this event to be processed ('new', or its 'new' frame was dropped
                # while the worker was behind): it opens the event
                job.phase = "new"
                started_at = self._open[job.event_id] = job.frame.ts
        event = self.process(job, started_at)
        self._publish(event)
        if self.open_events is not None:
            if event.phase == "new":
                self.open_events.opened(event.event_id, event.camera, event.site, started_at, event.ts,
                                        event.frame_seq)
            else:
                self.open_events.updated(event.event_id, event.ts, event.frame_seq)
        return event

    # ------------------------------------------------------------------ helpers
    def _stat(self, camera: str) -> CameraStats:
        st = self.stats.get(camera)
        if st is None:  # a camera the stats map does not know (should not happen): count anyway
            st = CameraStats(camera)
        return st

    def _camera_cfg(self, camera: str) -> tuple[str, CameraConfig]:
        cfg = self.get_config()
        try:
            cam = cfg.camera(camera)
            self._last_camera_cfg[camera] = cam
        except KeyError:  # renamed/removed in a live edit: keep what it ran with
            cam = self._last_camera_cfg.get(camera) or CameraConfig.model_validate(
                {"name": camera, "source": {"device": 0}}
            )
        return cfg.site, cam

    def _detector(self, camera: str, faces: FacesConfig) -> Any:
        cached = self._detectors.get(camera)
        if cached is None or cached[0] != faces:
            cached = (faces.model_copy(deep=True), self.stages.face_detector(faces))
            self._detectors[camera] = cached
        return cached[1]

    def publish_event(self, event: EnhancedEvent) -> None:
        """Publish an event made elsewhere (the ends of a previous run), counted like the others."""
        self._publish(event)

    def _publish(self, event: EnhancedEvent) -> None:
        st = self._stat(event.camera)
        try:
            self.publisher.publish_event(event)
            st.inc("events_published")
        except Exception as exc:
            log.exception("publishing event %s (%s) failed", event.event_id, event.phase)
            st.inc("errors")
            event.errors.append(f"publish: {exc}")
        if self.on_event is not None:
            self.on_event(event)

    def _end(self, job: EndJob) -> EnhancedEvent | None:
        with self._lock:
            started_at = self._open.pop(job.event_id, None)
        if started_at is None:
            log.info("event %s ended before any frame of it was processed; no end published", job.event_id)
            return None
        site, _ = self._camera_cfg(job.camera)
        event = EnhancedEvent(
            event_id=job.event_id,
            camera=job.camera,
            site=site,
            phase="end",
            ts=job.ended_at,
            started_at=started_at,
            ended_at=job.ended_at,
            frame_seq=job.frame_seq,
        )
        self._publish(event)
        if self.open_events is not None:
            self.open_events.closed(job.event_id)
        return event

    def _face_crop(self, original, enhanced, b, fc: FacesConfig):
        """The face crop (and its box) from the frame faces.crop_from names; a crop of the dark
        original is lifted to mid-grey (brighten_to_mid) when the frame was enhanced."""
        box4 = tuple(int(v) for v in b[:4])
        if enhanced is not None and fc.crop_from == "enhanced":
            return self.stages.crop(enhanced, box4, fc.margin)
        crop, box = self.stages.crop(original, box4, fc.margin)
        return (brighten_to_mid(crop) if enhanced is not None else crop), box

    # ------------------------------------------------------------------ the stages
    def process(self, job: Job, started_at: float | None = None) -> EnhancedEvent:
        """Run the stages on one motion frame; never raises for a stage failure."""
        site, cam = self._camera_cfg(job.camera)
        st = self._stat(job.camera)
        stages = self.stages
        t_all = time.perf_counter()
        original = job.frame.image
        event = EnhancedEvent(
            event_id=job.event_id,
            camera=job.camera,
            site=site,
            phase=job.phase,
            ts=job.frame.ts,
            started_at=job.frame.ts if started_at is None else started_at,
            frame_seq=job.frame.seq,
            original=original,
            motion_boxes=list(job.motion.boxes),
        )

        def timed(stage: str, ms: float) -> None:
            event.stage_ms[stage] = ms
            st.observe_ms(stage, ms)

        event.luma = luma(original)
        enhanced = None
        ll = cam.low_light
        if ll.enabled and "low_light" in stages.unavailable and event.luma < ll.luma_threshold:
            event.errors.append("low_light: model unavailable; original published")
        if ll.enabled and stages.low_light is not None and event.luma < ll.luma_threshold:
            t = time.perf_counter()
            try:
                with stages.low_light_lock:
                    enhanced = stages.low_light.enhance(original, ll.ratio, max_pixels=ll.max_pixels,
                                                        gray_saturation=cam.health.ir_gray_saturation)
                event.stages.append("low_light")
                st.inc("enhanced")
                if "low_light" in stages.models:
                    event.models.append(stages.models["low_light"])
            except Exception as exc:
                log.exception("low-light enhancement failed on camera %s", job.camera)
                st.inc("errors")
                event.errors.append(f"low_light: {type(exc).__name__}: {exc}")
            timed("low_light", (time.perf_counter() - t) * 1000.0)
        event.enhanced = enhanced

        fc = cam.faces
        if fc.enabled and fc.max_faces > 0 and stages.face_detector is not None and stages.crop is not None:
            t = time.perf_counter()
            found: list[tuple[tuple, str]] = []
            try:
                detector = self._detector(job.camera, fc)
                regions = list(job.motion.boxes) or None  # search only where things moved
                found = detect_faces(detector, fc, original, enhanced, regions)
                event.stages.append("face_detect")
                info = stages.models.get("face_detect")
                if info is not None and getattr(detector, "kind", None) == "cnn":
                    event.models.append(info)
            except Exception as exc:
                log.exception("face detection failed on camera %s", job.camera)
                st.inc("errors")
                event.errors.append(f"face_detect: {type(exc).__name__}: {exc}")
            timed("face_detect", (time.perf_counter() - t) * 1000.0)
            found = found[: fc.max_faces]
            sr_ms = 0.0
            for b, found_in in found:
                score = float(b[4]) if len(b) > 4 else 1.0
                try:
                    crop, box = self._face_crop(original, enhanced, b, fc)
                except Exception as exc:
                    st.inc("errors")
                    event.errors.append(f"face_crop: {type(exc).__name__}: {exc}")
                    continue
                sr = None
                if fc.super_resolve and "face_sr" in stages.unavailable and "face_sr: model unavailable" not in event.errors:
                    event.errors.append("face_sr: model unavailable")
                if fc.super_resolve and stages.face_sr is not None:
                    t = time.perf_counter()
                    try:
                        with stages.face_sr_lock:
                            sr = stages.face_sr.upscale(_bounded(crop, fc.sr_max_input))
                        st.inc("faces_sr")
                    except Exception as exc:
                        log.exception("face super-resolution failed on camera %s", job.camera)
                        st.inc("errors")
                        event.errors.append(f"face_sr: {type(exc).__name__}: {exc}")
                    sr_ms += (time.perf_counter() - t) * 1000.0
                event.faces.append(FaceResult(box=tuple(int(v) for v in box), score=score, crop=crop, sr=sr,
                                              frame=found_in))
            st.inc("faces", len(event.faces))
            if any(f.sr is not None for f in event.faces):
                event.stages.append("face_sr")
                if "face_sr" in stages.models:
                    event.models.append(stages.models["face_sr"])
            if sr_ms:
                timed("face_sr", sr_ms)
        timed("total", (time.perf_counter() - t_all) * 1000.0)
        return event
