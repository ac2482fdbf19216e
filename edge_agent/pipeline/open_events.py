"""The events a running agent has open, kept on disk so that a crash does not leave them endless.

<state_dir>/open_events.json maps event id -> {camera, site, started_at, last_ts, frame_seq}. The
worker records an event when its 'new' phase is published, refreshes last_ts/frame_seq on its
updates (at most one write a second; an end or a new event writes at once) and removes it at its
'end'. What is left in the file at the next start was open when the agent died: the agent then
publishes an 'end' for each (pipeline/restart.py).

Every write goes to a temporary file that is then renamed over the old one (os.replace), so a crash
mid-write leaves the old file or the new one, never half of one. A file that cannot be read as
such a mapping is logged by name, moved aside (open_events.json.corrupt-<epoch s>) and treated as
empty. A write that fails is logged and never stops the worker.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_NAME = "open_events.json"
WRITE_INTERVAL_S = 1.0  # updates rewrite the file at most this often


def _valid(record: Any) -> bool:
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    return (
        isinstance(record, dict)
        and isinstance(record.get("camera"), str)
        and isinstance(record.get("site"), str)
        and number(record.get("started_at"))
        and number(record.get("last_ts"))
        and isinstance(record.get("frame_seq"), int)
    )


class OpenEvents:
    """Thread-safe store of the open events; `path` is only touched by load() and the writes."""

    def __init__(
        self,
        path: str | Path,
        write_interval_s: float = WRITE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = Path(path)
        self.write_interval_s = write_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._events: dict[str, dict[str, Any]] = {}
        self._last_write = -math.inf
        self._dirty = False
        self._write_failed = False

    # ------------------------------------------------------------------ reading
    def load(self) -> dict[str, dict[str, Any]]:
        """Read the file (what the previous run left open); it becomes the current state."""
        events = self._read()
        with self._lock:
            self._events = {k: dict(v) for k, v in events.items()}
            return {k: dict(v) for k, v in events.items()}

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.error("cannot read the open events file %s (%s); treated as empty", self.path, exc)
            return {}
        try:
            data = json.loads(text)
            ok = isinstance(data, dict) and all(isinstance(k, str) and _valid(v) for k, v in data.items())
        except ValueError:
            ok = False
        if ok:
            return data
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            os.replace(self.path, aside)
            where = f"moved aside to {aside}"
        except OSError as exc:
            where = f"could not be moved aside ({exc})"
        log.error("the open events file %s is corrupt and %s; treated as empty", self.path, where)
        return {}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._events.items()}

    # ------------------------------------------------------------------ the worker's calls
    def opened(self, event_id: str, camera: str, site: str, started_at: float, ts: float, frame_seq: int) -> None:
        with self._lock:
            self._events[event_id] = {
                "camera": camera,
                "site": site,
                "started_at": float(started_at),
                "last_ts": float(ts),
                "frame_seq": int(frame_seq),
            }
            self._write_locked()

    def updated(self, event_id: str, ts: float, frame_seq: int) -> None:
        with self._lock:
            record = self._events.get(event_id)
            if record is None:
                return
            record["last_ts"] = max(float(ts), record["last_ts"])
            record["frame_seq"] = max(int(frame_seq), record["frame_seq"])
            self._dirty = True
            if self._clock() - self._last_write >= self.write_interval_s:
                self._write_locked()

    def closed(self, event_id: str) -> None:
        with self._lock:
            if self._events.pop(event_id, None) is not None:
                self._write_locked()

    def flush(self) -> None:
        """Write what updates left unwritten (the clean stop calls it)."""
        with self._lock:
            if self._dirty:
                self._write_locked()

    # ------------------------------------------------------------------ writing
    def _write_locked(self) -> None:
        self._last_write = self._clock()
        self._dirty = False
        data = json.dumps(self._events, indent=1, sort_keys=True).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # a power cut must not leave an empty file behind the rename
            os.replace(tmp, self.path)
            self._write_failed = False
        except OSError as exc:
            self._dirty = True
            if not self._write_failed:  # once per failure streak, not once per frame
                log.error("cannot write the open events file %s: %s", self.path, exc)
            self._write_failed = True
