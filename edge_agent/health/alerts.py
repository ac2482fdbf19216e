"""Alerts: what they are, how they are debounced, and the JSON message each start and end becomes.

An alert is a condition (a camera covered, the spool nearly full, ...) that held for `hold_s`
seconds. It gets one stable `id`, a 'start' message, and an 'end' message once the condition was
clear for `clear_s` seconds. `started_at` is when the condition was first seen, `ended_at` when it
was first seen clear, so `duration_s` is how long it really lasted (for a lost stream: how long it
was down), not counting the debounce.

Messages (alert_doc) use the event conventions (publish/event_json.py): ISO UTC times, a snapshot
JPEG with its sha256 (inline as base64, so one signed document carries it); the MQTT publisher
signs the document with the site key (publish/signing.py) exactly as it signs events. Each message
has its own `alert_id` (`<id>-start`, `<id>-end`) so a receiver that de-duplicates on alert_id keeps
both phases.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from edge_agent.media import encode_jpeg, iso_utc, sha256_hex, time_id

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
Severity = Literal["info", "warning", "major", "critical"]
Phase = Literal["start", "end"]


@dataclass(frozen=True, slots=True)
class AlertKind:
    severity: Severity
    category: str  # stream, tamper, image, lighting, agent
    message: str  # what the start message says
    snapshot: bool  # a snapshot helps the operator judge it


KINDS: dict[str, AlertKind] = {
    "stream_lost": AlertKind("critical", "stream", "camera stream lost", False),
    "frozen": AlertKind("major", "stream", "image frozen: identical frames while the stream runs", True),
    "covered": AlertKind(
        "critical", "tamper", "lens covered or sprayed: brightness and detail collapsed", True
    ),
    "moved": AlertKind("major", "tamper", "camera moved or re-aimed: the view no longer matches", True),
    "defocused": AlertKind("warning", "image", "image out of focus: sharpness dropped", True),
    "day_night": AlertKind("info", "lighting", "camera switched to night (IR) mode", True),
    "capture_behind": AlertKind("warning", "agent", "capture falling behind: frames dropped", False),
    "model_failed": AlertKind("major", "agent", "model failed: publishing original images only", False),
    "spool_nearly_full": AlertKind("warning", "agent", "offline spool nearly full", False),
    "spool_dropping": AlertKind("major", "agent", "offline spool full: oldest records dropped", False),
    "agent_restarted": AlertKind("warning", "agent", "agent restarted after an unclean stop", False),
}


class Debouncer:
    """raw condition samples -> 'start' / 'end' transitions, no flapping.

    start: the condition held (every sample true) for hold_s; end: it was clear for clear_s.
    A sample of None means 'unknown' (e.g. baselines still learning) and changes nothing.
    """

    def __init__(self, hold_s: float, clear_s: float):
        self.hold_s = hold_s
        self.clear_s = clear_s
        self.active = False
        self.since: float | None = None  # first true sample of the current run (inactive)
        self.clear_since: float | None = None  # first clear sample of the current run (active)
        self.started_at: float | None = None

    def update(self, raw: bool | None, ts: float) -> Phase | None:
        if raw is None:
            return None
        if not self.active:
            if not raw:
                self.since = None
                return None
            if self.since is None:
                self.since = ts
            if ts - self.since >= self.hold_s:
                self.active = True
                self.started_at = self.since
                self.since = self.clear_since = None
                return "start"
            return None
        if raw:
            self.clear_since = None
            return None
        if self.clear_since is None:
            self.clear_since = ts
        if ts - self.clear_since >= self.clear_s:
            self.active = False
            return "end"
        return None


@dataclass(slots=True)
class Alert:
    type: str
    camera: str | None  # None = site level
    id: str
    started_at: float
    severity: Severity
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    snapshot: np.ndarray | None = None  # BGR, the frame at the start (where one helps)
    ended_at: float | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)

    def summary(self) -> dict[str, Any]:
        """The short form shown in the status (web page) and /metrics."""
        return {
            "type": self.type,
            "severity": self.severity,
            "id": self.id,
            "since": round(self.started_at, 3),
            "since_iso": iso_utc(self.started_at),
            "message": self.message,
        }


def new_alert_id(scope: str, kind: str, ts: float) -> str:
    return time_id(scope, kind, ts=ts)


def snapshot_meta(image: np.ndarray, width: int, quality: int = 80) -> tuple[dict[str, Any], bytes]:
    """A JPEG of the frame at most `width` pixels wide and its metadata (sha256 of those bytes)."""
    h, w = image.shape[:2]
    if width and w > width:
        image = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    data = encode_jpeg(image, quality)
    meta = {
        "role": "snapshot",
        "content_type": "image/jpeg",
        "sha256": sha256_hex(data),
        "bytes": len(data),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "enhanced": False,
        "data_b64": base64.b64encode(data).decode("ascii"),
    }
    return meta, data


def snapshot_bytes(doc: dict[str, Any]) -> bytes | None:
    """The snapshot JPEG of an alert message, after checking it against its sha256.

    Raises ValueError when the bytes do not match the hash the message carries."""
    snap = doc.get("snapshot")
    if not snap:
        return None
    data = base64.b64decode(snap["data_b64"], validate=True)
    if sha256_hex(data) != snap.get("sha256"):
        raise ValueError(f"alert {doc.get('alert_id')}: snapshot does not match its sha256")
    return data


def alert_doc(
    alert: Alert, phase: Phase, site: str | None, now: float, snapshot_width: int = 320
) -> dict[str, Any]:
    kind = KINDS.get(alert.type)
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "kind": "alert",
        "alert_id": f"{alert.id}-{phase}",
        "id": alert.id,
        "phase": phase,
        "type": alert.type,
        "category": kind.category if kind else "other",
        "severity": alert.severity,
        "scope": "site" if alert.camera is None else "camera",
        "site": site,
        "camera": alert.camera,
        "message": alert.message if phase == "start" else f"ended: {alert.message}",
        "ts": round(now, 3),
        "ts_iso": iso_utc(now),
        "started_at": round(alert.started_at, 3),
        "started_at_iso": iso_utc(alert.started_at),
        "ended_at": None if alert.ended_at is None else round(alert.ended_at, 3),
        "ended_at_iso": iso_utc(alert.ended_at),
        "duration_s": None if alert.duration_s is None else round(alert.duration_s, 3),
        "details": dict(alert.details),
        "snapshot": None,
    }
    if alert.type == "stream_lost" and alert.duration_s is not None:
        doc["details"]["down_s"] = round(alert.duration_s, 1)
    if site is None:
        del doc["site"]  # the publisher knows its site (MQTT adds it)
    if phase == "start" and alert.snapshot is not None and snapshot_width > 0:
        doc["snapshot"], _ = snapshot_meta(alert.snapshot, snapshot_width)
    return doc


Emit = Callable[[str | None, dict[str, Any]], None]


class AlertBook:
    """The debounced conditions of one scope (a camera, or the site) and their open alerts.

    update(type, raw, ts, ...) feeds one condition; a start or end is turned into a message and
    handed to emit(camera, doc) (a Publisher.publish_alert); on_change(summaries) is called with the
    open alerts after every start/end (the status shown by the web page). Thread-safe.
    """

    def __init__(
        self,
        camera: str | None,
        emit: Emit | None = None,
        on_change: Callable[[list[dict[str, Any]]], None] | None = None,
        site: str | None = None,
        snapshot_width: Callable[[], int] | int = 320,
    ):
        self.camera = camera
        self.emit = emit
        self.on_change = on_change
        self.site = site
        self._snapshot_width = snapshot_width
        self._lock = threading.RLock()
        self._debouncers: dict[str, Debouncer] = {}
        self.open: dict[str, Alert] = {}
        self.history: list[tuple[Phase, Alert]] = []  # every transition, oldest first (bounded)

    def _width(self) -> int:
        return self._snapshot_width() if callable(self._snapshot_width) else self._snapshot_width

    def update(
        self,
        kind: str,
        raw: bool | None,
        ts: float,
        hold_s: float,
        clear_s: float,
        details: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        snapshot: np.ndarray | Callable[[], np.ndarray | None] | None = None,
        message: str | None = None,
        key: str | None = None,
    ) -> Phase | None:
        """Feed one sample of condition `kind`. details/snapshot may be callables (only called on a
        start, so the hot path builds nothing). `key` tells apart several alerts of one kind (e.g.
        one per model); it defaults to the kind. Returns the transition, if any."""
        key = key or kind
        with self._lock:
            deb = self._debouncers.get(key)
            if deb is None:
                deb = self._debouncers[key] = Debouncer(hold_s, clear_s)
            deb.hold_s, deb.clear_s = hold_s, clear_s
            phase = deb.update(raw, ts)
            if phase == "start":
                info = KINDS.get(kind)
                alert = Alert(
                    type=kind,
                    camera=self.camera,
                    id=new_alert_id(self.camera or "site", kind, deb.started_at or ts),
                    started_at=deb.started_at if deb.started_at is not None else ts,
                    severity=info.severity if info else "warning",
                    message=message or (info.message if info else kind),
                    details=(details() if callable(details) else dict(details or {})),
                    snapshot=(snapshot() if callable(snapshot) else snapshot)
                    if (info is None or info.snapshot)
                    else None,
                )
                self.open[key] = alert
                self._transition("start", alert, ts)
            elif phase == "end":
                alert = self.open.pop(key, None)
                if alert is not None:
                    alert.ended_at = deb.clear_since if deb.clear_since is not None else ts
                    if details is not None:
                        extra = details() if callable(details) else details
                        alert.details.update({k: v for k, v in extra.items() if k not in alert.details})
                    alert.snapshot = None
                    self._transition("end", alert, ts)
            return phase

    def set_details(self, kind: str, **details: Any) -> None:
        """Add details to an open alert (they go out with its end message)."""
        with self._lock:
            if kind in self.open:
                self.open[kind].details.update(details)

    def is_open(self, kind: str) -> bool:
        with self._lock:
            return kind in self.open

    def pending(self, kind: str) -> bool:
        """The condition is true but has not held long enough yet."""
        with self._lock:
            deb = self._debouncers.get(kind)
            return bool(deb and not deb.active and deb.since is not None)

    def summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a.summary() for a in sorted(self.open.values(), key=lambda a: a.started_at)]

    def _transition(self, phase: Phase, alert: Alert, now: float) -> None:
        self.history.append((phase, alert))
        del self.history[:-1000]
        log_fn = log.warning if phase == "start" and alert.severity in ("major", "critical") else log.info
        log_fn(
            "alert %s %s %s%s",
            phase,
            alert.type,
            alert.camera or "site",
            "" if alert.duration_s is None else f" after {alert.duration_s:.1f} s",
        )
        if self.emit is not None:
            try:
                self.emit(self.camera, alert_doc(alert, phase, self.site, now, self._width()))
            except Exception:
                log.exception("publishing alert %s %s failed", alert.type, phase)
        if self.on_change is not None:
            try:
                self.on_change(self.summaries())
            except Exception:
                log.exception("updating the alert status failed")
