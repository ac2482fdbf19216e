"""The enhancement worker: takes jobs from the JobQueue (jobs.py) and publishes events.

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
from edge_agent.enhance.crop_denoise import denoise_crop
from edge_agent.enhance.face_fusion import fuse_crop
from edge_agent.enhance.faces import brighten_to_mid, detect_faces
from edge_agent.enhance.tensors import luma
from edge_agent.malloc_tuning import release_free_memory
from edge_agent.pipeline.jobs import EndJob, JobQueue
from edge_agent.pipeline.stats import CameraStats
from edge_agent.publish.base import Publisher
from edge_agent.records import EnhancedEvent, FaceResult, Job, ModelInfo

log = logging.getLogger(__name__)


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
                del job
                release_free_memory()

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

    def _face_crop(self, job: Job, original, enhanced, b, fc: FacesConfig):
        """The face crop, its box and the number of frames fused into it, from the frame
        faces.crop_from names. A crop of the dark original (when the frame was enhanced) is first
        averaged with the same face in the frames just before (fuse_crop, faces.fuse_frames), then
        lifted to mid-grey (brighten_to_mid); then, with faces.denoise on, its remaining noise is
        removed (denoise_crop) before it is published and upscaled."""
        box4 = tuple(int(v) for v in b[:4])
        fused = 1
        if enhanced is not None and fc.crop_from == "enhanced":
            crop, box = self.stages.crop(enhanced, box4, fc.margin)
        else:
            crop, box = self.stages.crop(original, box4, fc.margin)
            if enhanced is not None:
                if fc.fuse_frames > 1 and job.recent:
                    crop, fused = fuse_crop(original, box, box4, job.frame.ts, job.recent,
                                            max_frames=fc.fuse_frames, max_gap_s=fc.fuse_max_gap_s,
                                            min_match=fc.fuse_min_match)
                crop = brighten_to_mid(crop)
        return (denoise_crop(crop) if fc.denoise else crop), box, fused

    # ------------------------------------------------------------------ the stages
    def process(self, job: Job, started_at: float | None = None) -> EnhancedEvent:
        """Run the stages on one motion frame; never raises for a stage failure."""
        site, cam = self._camera_cfg(job.camera)
        st = self._stat(job.camera)
        t_all = time.perf_counter()
        event = EnhancedEvent(
            event_id=job.event_id,
            camera=job.camera,
            site=site,
            phase=job.phase,
            ts=job.frame.ts,
            started_at=job.frame.ts if started_at is None else started_at,
            frame_seq=job.frame.seq,
            original=job.frame.image,
            motion_boxes=list(job.motion.boxes),
        )
        event.luma = luma(event.original)
        event.enhanced = self._enhance(job, cam, event, st)
        fc = cam.faces
        if fc.enabled and fc.max_faces > 0 and self.stages.face_detector is not None and self.stages.crop is not None:
            found = self._detect(job, fc, event, st)
            self._faces(job, fc, found, event, st)
        _timed(event, st, "total", (time.perf_counter() - t_all) * 1000.0)
        return event

    def _enhance(self, job: Job, cam, event: EnhancedEvent, st: CameraStats):
        """The low-light stage: the enhanced frame, or None (bright enough, off, or failed)."""
        stages, ll = self.stages, cam.low_light
        dark = ll.enabled and event.luma < ll.luma_threshold
        if dark and "low_light" in stages.unavailable:
            event.errors.append("low_light: model unavailable; original published")
        if not dark or stages.low_light is None:
            return None
        t = time.perf_counter()
        enhanced = None
        try:
            with stages.low_light_lock:
                enhanced = stages.low_light.enhance(event.original, ll.ratio, max_pixels=ll.max_pixels,
                                                    model_pixels=ll.model_pixels,
                                                    gray_saturation=cam.health.ir_gray_saturation)
            event.stages.append("low_light")
            st.inc("enhanced")
            if "low_light" in stages.models:
                event.models.append(stages.models["low_light"])
        except Exception as exc:
            log.exception("low-light enhancement failed on camera %s", job.camera)
            st.inc("errors")
            event.errors.append(f"low_light: {type(exc).__name__}: {exc}")
        _timed(event, st, "low_light", (time.perf_counter() - t) * 1000.0)
        return enhanced

    def _detect(self, job: Job, fc: FacesConfig, event: EnhancedEvent, st: CameraStats) -> list[tuple[tuple, str]]:
        """Face boxes (with the frame each was found in), searched only where things moved."""
        t = time.perf_counter()
        found: list[tuple[tuple, str]] = []
        try:
            detector = self._detector(job.camera, fc)
            regions = list(job.motion.boxes) or None
            found = detect_faces(detector, fc, event.original, event.enhanced, regions)
            event.stages.append("face_detect")
            info = self.stages.models.get("face_detect")
            if info is not None and getattr(detector, "kind", None) == "cnn":
                event.models.append(info)
        except Exception as exc:
            log.exception("face detection failed on camera %s", job.camera)
            st.inc("errors")
            event.errors.append(f"face_detect: {type(exc).__name__}: {exc}")
        _timed(event, st, "face_detect", (time.perf_counter() - t) * 1000.0)
        return found[: fc.max_faces]

    def _faces(self, job: Job, fc: FacesConfig, found, event: EnhancedEvent, st: CameraStats) -> None:
        """A crop per face box and, where on, its super-resolved version."""
        stages = self.stages
        sr_ms = 0.0
        for b, found_in in found:
            score = float(b[4]) if len(b) > 4 else 1.0
            try:
                crop, box, fused = self._face_crop(job, event.original, event.enhanced, b, fc)
            except Exception as exc:
                st.inc("errors")
                event.errors.append(f"face_crop: {type(exc).__name__}: {exc}")
                continue
            if fc.super_resolve and "face_sr" in stages.unavailable and "face_sr: model unavailable" not in event.errors:
                event.errors.append("face_sr: model unavailable")
            sr = None
            if fc.super_resolve and stages.face_sr is not None:
                t = time.perf_counter()
                sr = self._super_resolve(job, crop, fc, event, st)
                sr_ms += (time.perf_counter() - t) * 1000.0
            event.faces.append(FaceResult(box=tuple(int(v) for v in box), score=score, crop=crop, sr=sr,
                                          frame=found_in, fused=fused))
        st.inc("faces", len(event.faces))
        if any(f.sr is not None for f in event.faces):
            event.stages.append("face_sr")
            if "face_sr" in stages.models:
                event.models.append(stages.models["face_sr"])
        if sr_ms:
            _timed(event, st, "face_sr", sr_ms)

    def _super_resolve(self, job: Job, crop, fc: FacesConfig, event: EnhancedEvent, st: CameraStats):
        try:
            with self.stages.face_sr_lock:
                sr = self.stages.face_sr.upscale(_bounded(crop, fc.sr_max_input))
            st.inc("faces_sr")
            return sr
        except Exception as exc:
            log.exception("face super-resolution failed on camera %s", job.camera)
            st.inc("errors")
            event.errors.append(f"face_sr: {type(exc).__name__}: {exc}")
            return None


def _timed(event: EnhancedEvent, st: CameraStats, stage: str, ms: float) -> None:
    event.stage_ms[stage] = ms
    st.observe_ms(stage, ms)
