"""Per-camera counters and stage timings, thread-safe, cheap to update from the hot path.

Read by /metrics, MQTT stats and the web page through snapshot().
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

COUNTERS = {  # name -> meaning: the stats message and /metrics (nightwatch_<name>_total) both use it
    "frames": "frames read from the source",
    "frames_dropped": "frames overwritten before the motion gate saw them",
    "bad_frames": "frames skipped because they could not be decoded or had a wrong shape",
    "motion_events": "motion OFF->ON transitions",
    "relights": "lighting changes that re-baselined the motion gate",
    "jobs_dropped": "motion frames dropped or coalesced because the worker was behind",
    "snapshots_limited": "event snapshots not taken because of snapshots.max_events_per_minute",
    "enhanced": "frames run through low-light enhancement",
    "faces": "face crops found",
    "faces_sr": "face crops super-resolved",
    "events_published": "events handed to the publisher",
    "errors": "errors while processing",
    "reconnects": "source reconnects",
}


class CameraStats:
    def __init__(self, camera: str):
        self.camera = camera
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._ms_sum: dict[str, float] = defaultdict(float)
        self._ms_count: dict[str, int] = defaultdict(int)
        self._ms_last: dict[str, float] = {}
        self._listeners: list = []
        self.state: dict[str, Any] = {"connected": False, "motion": False}

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def observe_ms(self, stage: str, ms: float) -> None:
        with self._lock:
            self._ms_sum[stage] += ms
            self._ms_count[stage] += 1
            self._ms_last[stage] = ms
            listeners = list(self._listeners)
        for fn in listeners:
            fn(self.camera, stage, ms)

    def add_timing_listener(self, fn) -> None:
        """fn(camera, stage, ms) is called on every observation (e.g. a Prometheus histogram)."""
        with self._lock:
            self._listeners.append(fn)

    def set_state(self, **kw: Any) -> None:
        with self._lock:
            self.state.update(kw)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "camera": self.camera,
                **self._counts,
                "stage_ms_avg": {k: self._ms_sum[k] / self._ms_count[k] for k in self._ms_count},
                "stage_ms_last": dict(self._ms_last),
                **self.state,
            }
