"""The records the parts hand each other across module boundaries: a frame (capture -> gate),
a motion result (gate -> camera loop), a job (camera loop -> workers), face results, model info
(inference -> events) and the enhanced event (workers -> publishers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edge_agent.media import time_id


@dataclass(slots=True)
class Frame:
    """One decoded frame. image is BGR uint8 HxWx3 (OpenCV order)."""

    camera: str
    seq: int
    ts: float  # wall-clock seconds (time.time())
    image: np.ndarray


@dataclass(slots=True)
class MotionResult:
    """What the motion gate says about one frame."""

    active: bool  # debounced motion state after this frame
    started: bool  # this frame switched the state OFF -> ON
    ended: bool  # this frame switched the state ON -> OFF
    boxes: list[tuple[float, float, float, float]]  # normalized x, y, w, h of moving regions
    changed_fraction: float  # fraction of the (unmasked) frame that changed
    relit: bool = False  # a global lighting change re-baselined the gate (no motion fired)


@dataclass(slots=True)
class RecentRegion:
    """The moving part of one of a camera's earlier frames (camera loop -> face fusion)."""

    ts: float  # the frame's wall-clock seconds
    x: int  # the region's top-left corner in frame pixels
    y: int
    image: np.ndarray  # BGR uint8, a copy of that part of the frame


@dataclass(slots=True)
class Job:
    """A motion frame waiting for enhancement."""

    event_id: str
    camera: str
    frame: Frame
    motion: MotionResult
    phase: Literal["new", "update"]
    recent: tuple[RecentRegion, ...] = ()  # moving parts of the frames just before (face fusion)


@dataclass(slots=True)
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of the full frame (after margin)
    score: float
    crop: np.ndarray  # BGR uint8, as cut from the (enhanced) frame
    sr: np.ndarray | None  # BGR uint8 super-resolved crop, None when SR is off or failed
    frame: str = "original"  # the frame the face was found in: "original" or "enhanced"
    fused: int = 1  # frames averaged into the crop (face fusion; 1: the job's frame alone)


@dataclass(slots=True)
class ModelInfo:
    name: str
    version: str
    backend: str
    precision: str


@dataclass(slots=True)
class EnhancedEvent:
    """One published event message: a motion event start/update/end and its images."""

    event_id: str
    camera: str
    site: str
    phase: Literal["new", "update", "end"]
    ts: float
    started_at: float
    frame_seq: int = 0
    original: np.ndarray | None = None  # BGR uint8
    enhanced: np.ndarray | None = None  # BGR uint8, None when not enhanced
    faces: list[FaceResult] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)  # e.g. ["low_light", "face_detect", "face_sr"]
    stage_ms: dict[str, float] = field(default_factory=dict)
    luma: float = 0.0
    motion_boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    models: list[ModelInfo] = field(default_factory=list)
    ended_at: float | None = None
    errors: list[str] = field(default_factory=list)  # e.g. a model failure: originals published
    end_reason: str | None = None  # an 'end' not seen by the gate: "agent_restarted" (closed at the next start)


def new_event_id(camera: str, ts: float | None = None) -> str:
    """Stable, sortable, unique: <utc time>-<camera>-<random>."""
    return time_id(camera, ts=ts)


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """A publisher's offline spool (publisher -> health checks, stats)."""

    records: int
    total_bytes: int
    max_bytes: int
    dropped: int  # records dropped to make room (evidence lost)
    quarantined: int  # torn or corrupt records moved aside
